"""The corpus reader: every format, every source kind, and every kind of damaged input."""

from __future__ import annotations

import csv
import gzip
import io
import json
import tracemalloc
import warnings

import pytest

from vocabx.corpus import read_corpus
from vocabx.errors import VocabxError, VocabxWarning


def _read(*sources, **kwargs):
    stream = read_corpus(*sources, **kwargs)
    return list(stream), stream.report


def test_txt_and_md_are_one_document_per_file_in_sorted_order(tmp_path):
    (tmp_path / "b.txt").write_text("second file\nline two\n")
    (tmp_path / "a.md").write_text("# first\n")
    docs, report = _read(tmp_path)
    assert docs == ["# first\n", "second file\nline two\n"]
    assert report.files == 2 and report.docs == 2


def test_line_docs_gives_one_document_per_line_and_counts_blank_lines(tmp_path):
    (tmp_path / "a.txt").write_text("one\n\ntwo\n")
    docs, report = _read(tmp_path / "a.txt", line_docs=True)
    assert docs == ["one", "two"]
    assert report.empty_docs == 1


def test_folders_are_recursive_and_skip_unsupported_types_with_a_reason(tmp_path):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "sub" / "deeper" / "x.txt").write_text("deep")
    (tmp_path / "notes.docx").write_text("not read")
    (tmp_path / ".hidden.txt").write_text("hidden")
    with pytest.warns(VocabxWarning, match=r"notes\.docx: skipped, unsupported file type '\.docx'"):
        docs, report = _read(tmp_path)
    assert docs == ["deep"]
    assert [p for p, _ in report.skipped_files] == [str(tmp_path / "notes.docx")]


def test_a_text_file_beside_record_files_is_read_and_warned_about_once(tmp_path):
    (tmp_path / "part").mkdir()
    (tmp_path / "part" / "a.jsonl").write_text('{"text": "record one"}\n')
    (tmp_path / "README.md").write_text("# what this data is\n")
    for again in (False, True):  # (a second read of the same folder, as adapt's stages do, does not repeat it)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            docs, _ = _read(tmp_path)
        assert docs == ["# what this data is\n", "record one"]  # (still a document: .md is a corpus format)
        ours = [str(w.message) for w in caught if issubclass(w.category, VocabxWarning)]
        assert ours == ([] if again else [
            f"{tmp_path / 'README.md'}: a text file in a folder of record files (.jsonl), read as one document; if it "
            "describes the data rather than being part of it, pass the record files or a glob such as "
            f"{str(tmp_path / '**' / '*.jsonl')!r} instead of the folder"
        ])
    # text files alone, or one named on its own, are the corpus: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _read(tmp_path / "README.md")[0] == ["# what this data is\n"]
        (tmp_path / "notes").mkdir()
        (tmp_path / "notes" / "b.txt").write_text("a note")
        (tmp_path / "notes" / "c.md").write_text("another")
        assert _read(tmp_path / "notes")[0] == ["a note", "another"]


def test_reading_closes_every_file(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "one"}\n')
    (tmp_path / "b.csv").write_text("text\ntwo\n")
    (tmp_path / "c.txt").write_text("three")
    with gzip.open(tmp_path / "d.json.gz", "wt") as f:
        f.write('[{"text": "four"}]')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _read(tmp_path)[0] == ["one", "two", "three", "four"]
        stream = read_corpus(tmp_path)
        assert next(stream) == "one"  # (a reader that stops early)
        del stream
        import gc

        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_jsonl_json_csv_tsv_parquet_and_gzip_all_read_the_text_field(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"id": i, "body": f"document {i}"} for i in range(3)]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "b.json").write_text(json.dumps(rows))
    (tmp_path / "c.json").write_text(json.dumps({"data": rows}))
    with open(tmp_path / "d.csv", "w", newline="") as f:
        w = csv.DictWriter(f, ["id", "body"])
        w.writeheader()
        w.writerows(rows)
    with open(tmp_path / "e.tsv", "w", newline="") as f:
        w = csv.DictWriter(f, ["id", "body"], delimiter="\t")
        w.writeheader()
        w.writerows(rows)
    pq.write_table(pa.table({"id": [0, 1, 2], "body": [r["body"] for r in rows]}), tmp_path / "f.parquet")
    with gzip.open(tmp_path / "g.jsonl.gz", "wt") as f:
        f.write("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "h.txt.gz").write_bytes(gzip.compress(b"gzipped text"))
    docs, report = _read(tmp_path, text_field="body")
    expected = [r["body"] for r in rows]
    assert docs == expected * 6 + expected + ["gzipped text"]
    assert report.files == 8


def test_groups_are_a_record_field_or_else_the_files(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"body": f"document {i}", "site": f"s{i % 2}"} for i in range(4)] + [{"body": "no site"}, {"body": "", "site": "s9"}]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with open(tmp_path / "b.csv", "w", newline="") as f:
        w = csv.DictWriter(f, ["body", "site"])
        w.writeheader()
        w.writerows(r for r in rows if "site" in r)
    pq.write_table(pa.table({"body": ["p0", "p1"], "site": ["s0", "s7"]}), tmp_path / "c.parquet")
    stream = read_corpus(tmp_path, text_field="body", group_field="site")
    docs = list(stream)
    # one label per document yielded (the empty one is skipped with its label); a record without the field: None
    assert docs == [r["body"] for r in rows[:5]] + [f"document {i}" for i in range(4)] + ["p0", "p1"]
    assert stream.groups == ["s0", "s1", "s0", "s1", None, "s0", "s1", "s0", "s1", "s0", "s7"]
    by_file = read_corpus(tmp_path, text_field="body")
    assert len(list(by_file)) == 11
    assert [g.rsplit("/", 1)[-1] for g in by_file.groups] == ["a.jsonl"] * 5 + ["b.csv"] * 4 + ["c.parquet"] * 2
    (tmp_path / "d.txt").write_text("plain")
    with pytest.raises(VocabxError, match=r"d\.txt: --group-field 'site' reads a field of JSON, CSV or parquet records.*leave --group-field out"):
        list(read_corpus(tmp_path / "d.txt", group_field="site"))
    with pytest.raises(VocabxError, match=r"b\.csv: no column 'source'; columns present: body, site; pick one with --group-field"):
        list(read_corpus(tmp_path / "b.csv", text_field="body", group_field="source"))
    # so does a JSON lines file whose first record lacks the field (a later one without it has no group)
    with pytest.raises(VocabxError, match=r"a\.jsonl line 1: no field 'source'; fields present: body, site; pick one with --group-field"):
        list(read_corpus(tmp_path / "a.jsonl", text_field="body", group_field="source"))


def test_json_file_holding_json_lines_is_read_as_json_lines(tmp_path):
    (tmp_path / "a.json").write_text('{"text": "one"}\n{"text": "two"}\n')
    assert _read(tmp_path / "a.json")[0] == ["one", "two"]


def test_globs_select_files(tmp_path):
    (tmp_path / "a.txt").write_text("A")
    (tmp_path / "b.md").write_text("B")
    assert _read(str(tmp_path / "*.txt"))[0] == ["A"]
    with pytest.raises(VocabxError, match=r"glob .*\*\.csv.* matches no files"):
        read_corpus(str(tmp_path / "*.csv"))


def test_stdin_is_one_document_per_line_and_json_lines_are_parsed():
    stdin = io.StringIO('plain line\n{"text": "json line"}\n\nlast\n')
    docs, report = _read("-", stdin=stdin)
    assert docs == ["plain line", "json line", "last"]
    assert report.empty_docs == 1


def test_a_json_line_on_stdin_without_the_field_after_lines_with_it_is_skipped_as_in_a_file():
    stdin = io.StringIO('{"text": "one"}\n{"body": "two"}\n{"text": "three"}\n')
    with pytest.warns(VocabxWarning, match=r"<stdin>: 1 lines hold no 'text' text and were skipped \(line 2: no field 'text'\); each line should be a JSON object"):
        docs, report = _read("-", stdin=stdin)
    assert docs == ["one", "three"] and report.bad_records == 1
    with pytest.raises(VocabxError, match=r"<stdin> line 1: no field 'text'; fields present: body; pick one with --text-field"):
        _read("-", stdin=io.StringIO('{"body": "two"}\n{"text": "three"}\n'))  # (the first: a wrong --text-field)


def test_hf_dataset_from_a_local_folder(tmp_path):
    pytest.importorskip("datasets")
    data = tmp_path / "ds"
    data.mkdir()
    (data / "train.jsonl").write_text('{"text": "from datasets"}\n{"text": "second"}\n')
    assert _read(f"hf:{data}")[0] == ["from datasets", "second"]
    with pytest.raises(VocabxError, match=r"no column 'body'; columns present: text"):
        _read(f"hf:{data}", text_field="body")


def test_hf_dataset_that_cannot_be_loaded_names_the_dataset(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(VocabxError, match=r"cannot load the Hugging Face dataset 'hf:nobody/no-such-dataset'"):
        _read("hf:nobody/no-such-dataset")


def test_missing_field_names_the_fields_that_exist(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"id": 1, "content": "x"}\n')
    with pytest.raises(VocabxError, match=r"a\.jsonl line 1: no field 'text'; fields present: id, content; pick one with --text-field"):
        _read(tmp_path / "a.jsonl")
    (tmp_path / "b.csv").write_text("id,content\n1,x\n")
    with pytest.raises(VocabxError, match=r"b\.csv: no column 'text'; columns present: id, content"):
        _read(tmp_path / "b.csv")


def test_non_text_field_is_an_error_naming_the_type(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": ["a", "list"]}\n')
    with pytest.raises(VocabxError, match=r"field 'text' holds list, not text"):
        _read(tmp_path / "a.jsonl")


def test_malformed_json_lines_are_skipped_counted_and_warned(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "good"}\n{"text": broken\n{"text": "also good"}\n')
    with pytest.warns(VocabxWarning, match=r"1 lines are not valid JSON and were skipped \(lines 2\)"):
        docs, report = _read(tmp_path / "a.jsonl")
    assert docs == ["good", "also good"]
    assert report.bad_records == 1


def test_invalid_utf8_is_replaced_counted_and_warned_once_naming_the_file(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"caf\xe9 and na\xefve and \xff\xfe end")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        docs, report = _read(path)
    assert docs == ["caf\ufffd and na\ufffdve and \ufffd\ufffd end"]
    assert report.replaced_chars == 4
    ours = [w for w in caught if issubclass(w.category, VocabxWarning)]
    assert len(ours) == 1 and str(path) in str(ours[0].message) and "4 invalid UTF-8" in str(ours[0].message)


def test_binary_files_are_skipped_with_a_reason(tmp_path):
    (tmp_path / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    (tmp_path / "blob.txt").write_bytes(bytes(range(32)) * 100)
    (tmp_path / "good.txt").write_text("fine")
    with pytest.warns(VocabxWarning, match="binary file"):
        docs, report = _read(tmp_path)
    assert docs == ["fine"]
    reasons = dict(report.skipped_files)
    assert "binary file" in reasons[str(tmp_path / "image.txt")]
    assert "control bytes" in reasons[str(tmp_path / "blob.txt")]


def test_empty_files_and_empty_documents_are_skipped_and_counted(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "blank.txt").write_text("  \n\n")
    (tmp_path / "docs.jsonl").write_text('{"text": ""}\n{"text": null}\n{"text": "kept"}\n')
    docs, report = _read(tmp_path)
    assert docs == ["kept"]
    assert report.empty_files == 2
    assert report.empty_docs == 3


def test_a_corpus_with_no_text_is_an_error(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(VocabxError, match=r"has no text: 1 file read, 1 empty"):
        _read(tmp_path)
    assert _read(tmp_path, allow_empty=True)[0] == []


def test_nul_bytes_are_removed_counted_and_warned(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"nul\x00 inside\x00 text")
    with pytest.warns(VocabxWarning, match="2 NUL bytes removed"):
        docs, report = _read(tmp_path / "a.txt")
    assert docs == ["nul inside text"]
    assert report.nul_bytes == 2


def test_bom_is_dropped_and_crlf_becomes_lf(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"\xef\xbb\xbfline one\r\nline two\r\n")
    (tmp_path / "b.jsonl").write_bytes(b'\xef\xbb\xbf{"text": "json with bom"}\r\n')
    (tmp_path / "c.csv").write_bytes(b'\xef\xbb\xbftext\r\n"multi\r\nline"\r\n')
    (tmp_path / "d.txt").write_bytes("utf-16 text".encode("utf-16"))
    docs, _ = _read(tmp_path)
    assert docs == ["line one\nline two\n", "json with bom", "multi\nline", "utf-16 text"]


def test_missing_and_unreadable_paths_are_errors_naming_the_path(tmp_path, monkeypatch):
    with pytest.raises(VocabxError, match=r"corpus path '.*nowhere\.txt' does not exist"):
        read_corpus(tmp_path / "nowhere.txt")
    locked = tmp_path / "locked.txt"
    locked.write_text("secret")

    real_open = open

    def deny(path, *args, **kwargs):
        if str(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", deny)
    with pytest.raises(VocabxError, match=r"cannot read corpus file '.*locked\.txt': Permission denied"):
        _read(locked)


def test_a_50_mb_single_line_is_read_without_blowing_memory(tmp_path):
    path = tmp_path / "huge.jsonl"
    line = "hepatosplenomegaly " * (50 * 2**20 // 19)
    with open(path, "w") as f:
        f.write(json.dumps({"text": line}) + "\n")
        f.write(json.dumps({"text": "small"}) + "\n")
    size = len(line)
    del line
    tracemalloc.start()
    lengths = [len(doc) for doc in read_corpus(path)]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert lengths == [size, 5]
    # The line itself, its JSON decoding and one copy; nothing proportional to more than that.
    assert peak < 4 * size, f"peak {peak / 2**20:.0f} MiB for a {size / 2**20:.0f} MiB line"


def test_memory_does_not_grow_with_corpus_size(tmp_path):
    path = tmp_path / "many.jsonl"
    with open(path, "w") as f:
        for i in range(200_000):
            f.write(json.dumps({"text": f"document number {i} about nephrolithiasis"}) + "\n")
    tracemalloc.start()
    count = sum(1 for _ in read_corpus(path))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 200_000
    assert peak < 2 * 2**20, f"peak {peak / 2**20:.1f} MiB while streaming {path.stat().st_size / 2**20:.0f} MiB"


def test_several_sources_are_read_in_the_order_given(tmp_path):
    (tmp_path / "a.txt").write_text("A")
    (tmp_path / "b.txt").write_text("B")
    assert _read(tmp_path / "b.txt", [tmp_path / "a.txt"])[0] == ["B", "A"]


def test_a_json_file_of_json_lines_keeps_records_that_hold_unicode_line_separators(tmp_path):
    # (json.dumps(..., ensure_ascii=False) writes U+2028 and U+0085 as they are; only "\n" ends a line)
    rows = [{"text": "first\u2028record"}, {"text": "second\x85record"}, {"text": "third\x1crecord"}]
    (tmp_path / "a.json").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        docs, report = _read(tmp_path / "a.json")
    assert docs == [r["text"] for r in rows] and report.bad_records == 0


def test_a_file_named_on_its_own_is_read_whatever_its_suffix_and_however_its_path_is_written(tmp_path, monkeypatch):
    (tmp_path / "notes.log").write_text("a log line")
    monkeypatch.chdir(tmp_path)
    for source in ("notes.log", "./notes.log", str(tmp_path / "sub" / ".." / "notes.log")):
        (tmp_path / "sub").mkdir(exist_ok=True)
        docs, report = _read(source)
        assert docs == ["a log line"] and report.skipped_files == [], source
    # found in a folder or by a glob, it is still skipped as an unsupported type
    with pytest.warns(VocabxWarning, match="unsupported file type '.log'"):
        assert _read(tmp_path, allow_empty=True)[0] == []


def test_lone_surrogates_from_json_escapes_become_replacement_characters(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "half \\ud83d of an emoji"}\n{"text": "whole \\ud83d\\ude00 emoji"}\n')
    (tmp_path / "b.json").write_text('[{"text": "low \\udc00 alone"}]')
    with pytest.warns(VocabxWarning, match=r"a\.jsonl: 1 lone surrogates \(JSON escapes such as \\ud800 without their pair\) replaced by U\+FFFD"):
        docs, report = _read(tmp_path)
    assert docs == ["half \ufffd of an emoji", "whole \U0001f600 emoji", "low \ufffd alone"]
    assert report.replaced_chars == 2
    stdin = io.StringIO('{"text": "stdin \\udfff too"}\n')
    assert _read("-", stdin=stdin)[0] == ["stdin \ufffd too"]
    for doc in docs:
        doc.encode("utf-8")  # (what the tokenizer needs)


def test_the_process_stdin_drops_a_bom_and_replaces_invalid_utf8(monkeypatch):
    import sys

    raw = io.BytesIO(b'\xef\xbb\xbf{"text": "caf\xe9 record"}\r\nplain \xff line\n')
    # (a C or POSIX locale, as in many containers, decodes stdin with surrogateescape)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape"))
    with pytest.warns(VocabxWarning, match=r"<stdin>: 2 invalid UTF-8"):
        docs, report = _read("-")
    assert docs == ["caf\ufffd record", "plain \ufffd line"] and report.replaced_chars == 2
    assert not raw.closed  # (the process's stdin is left open)
    docs, _ = _read("-", stdin=io.StringIO('\ufeff{"text": "a record after a BOM"}\n'))
    assert docs == ["a record after a BOM"]


def test_crlf_inside_record_values_becomes_lf_in_every_format(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "a.jsonl").write_text(json.dumps({"text": "jsonl\r\nvalue"}) + "\n")
    (tmp_path / "b.json").write_text(json.dumps([{"text": "json\r\nvalue"}]))
    pq.write_table(pa.table({"text": ["parquet\r\nvalue"]}), tmp_path / "c.parquet")
    (tmp_path / "d.csv").write_bytes(b'text\r\n"csv\r\nvalue"\r\n')
    docs, _ = _read(tmp_path)
    assert docs == ["jsonl\nvalue", "json\nvalue", "parquet\nvalue", "csv\nvalue"]


def test_a_glob_that_matches_folders_reads_them_and_each_file_once(tmp_path):
    for name in ("2024-01", "2024-02"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "notes.txt").write_text(f"notes of {name}")
    (tmp_path / "2024-02" / "more.txt").write_text("more")
    assert _read(str(tmp_path / "2024-*"))[0] == ["notes of 2024-01", "more", "notes of 2024-02"]
    assert _read(str(tmp_path / "**"))[0] == ["notes of 2024-01", "more", "notes of 2024-02"]


def test_json_values_that_hold_no_record_are_skipped_counted_and_warned(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "one"}\n42\nnull\n["a", "list"]\n{"id": 7}\n{"text": "two"}\n')
    with pytest.warns(VocabxWarning, match=r"a\.jsonl: 4 lines hold no 'text' text and were skipped \(line 2: a JSON number, 3: a JSON null, "
                      r"4: a JSON array, 5: no field 'text'\)"):
        docs, report = _read(tmp_path / "a.jsonl")
    assert docs == ["one", "two"] and report.bad_records == 4
    (tmp_path / "b.json").write_text('[{"text": "one"}, 3, {"text": "two"}]')
    with pytest.warns(VocabxWarning, match=r"b\.json: 1 records hold no 'text' text and were skipped \(record 1: a JSON number\)"):
        assert _read(tmp_path / "b.json")[0] == ["one", "two"]
    # a file of which no record has the field: a wrong --text-field, an error at its first record
    (tmp_path / "c.jsonl").write_text('7\n{"id": 1, "body": "x"}\n')
    with pytest.raises(VocabxError, match=r"c\.jsonl line 2: no field 'text'; fields present: id, body; pick one with --text-field"):
        _read(tmp_path / "c.jsonl")
    (tmp_path / "d.jsonl").write_text("1\n2\n")
    with pytest.raises(VocabxError, match=r"has no text: .* 2 unreadable records"):
        _read(tmp_path / "d.jsonl")


def test_control_characters_inside_json_strings_are_kept(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "a raw\ttab"}\n')
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _read(tmp_path / "a.jsonl")[0] == ["a raw\ttab"]


def test_a_readme_beside_record_files_has_no_group_under_group_field(tmp_path):
    (tmp_path / "README.md").write_text("# about this data")
    (tmp_path / "train.jsonl").write_text(json.dumps({"text": "a record", "source": "s1"}) + "\n")
    with pytest.warns(VocabxWarning, match="a text file in a folder of record files"):
        stream = read_corpus(tmp_path, group_field="source")
        docs = list(stream)
    assert docs == ["# about this data", "a record"] and stream.groups == [None, "s1"]
    with pytest.raises(VocabxError, match=r"README\.md: --group-field 'source' reads a field of JSON"):
        list(read_corpus(tmp_path / "README.md", group_field="source"))


def test_a_stray_quote_in_a_tsv_field_does_not_swallow_the_lines_after_it(tmp_path):
    # A quote opening a field and never closed (or closed by another stray quote lines later) made the csv
    # module read the following lines into that one field: documents lost without a word.
    path = tmp_path / "notes.tsv"
    path.write_text(
        'id\ttext\n1\t"Stray quote opens here.\n2\tSecond doc.\n3\tThird doc says "hi" and more.\n'
        '4\t"Quoted" then plain\n5\t"a well-quoted ""field""\nover two lines"\n6\t"runs to the end\n7\tlast doc.\n'
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        docs, report = _read(path)
    assert docs == [
        '"Stray quote opens here.', "Second doc.", 'Third doc says "hi" and more.', '"Quoted" then plain',
        'a well-quoted "field"\nover two lines', '"runs to the end', "last doc.",
    ]
    assert report.docs == 7
    ours = [str(w.message) for w in caught if issubclass(w.category, VocabxWarning)]
    assert len(ours) == 1 and ours[0].startswith(f"{path}: lines 2, 8 open a quoted field that is not closed")
    assert "quotes as plain characters" in ours[0]


def test_a_quote_never_closed_in_a_csv_keeps_the_rows_after_it(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text('id,text\n1,"never closed\n2,second\n3,third\n')
    with pytest.warns(VocabxWarning, match=r"notes\.csv: line 2 opens a quoted field that is not closed"):
        docs, _ = _read(path)
    assert docs == ['"never closed', "second", "third"]


def _truncated_gzip(n_docs: int) -> bytes:
    whole = gzip.compress("".join(json.dumps({"text": f"document {i} " * 20}) + "\n" for i in range(n_docs)).encode())
    return whole[: len(whole) // 2]


def test_a_damaged_gzip_file_in_a_folder_is_skipped_naming_it_and_one_named_alone_is_an_error(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.jsonl").write_text('{"text": "whole file"}\n')
    (folder / "b.jsonl.gz").write_bytes(_truncated_gzip(2000))
    (folder / "c.jsonl.gz").write_bytes(b"not gzip at all")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        docs, report = _read(folder)
    # (what came out of the truncated file before its end is kept, and said)
    assert docs[0] == "whole file" and len(docs) > 1 and all(d.startswith("document ") for d in docs[1:])
    reasons = dict(report.skipped_files)
    assert set(reasons) == {str(folder / "b.jsonl.gz"), str(folder / "c.jsonl.gz")}
    assert f"the gzip file is truncated or damaged after {len(docs) - 1:,} documents" in reasons[str(folder / "b.jsonl.gz")]
    ours = [str(w.message) for w in caught if issubclass(w.category, VocabxWarning)]
    assert len(ours) == 2 and all(m.split(":")[0] in reasons and "download or compress it again" in m for m in ours)
    for name in ("b.jsonl.gz", "c.jsonl.gz"):
        with pytest.raises(VocabxError, match=rf"cannot read corpus file '.*{name}': the gzip file is .*; download or compress it again"):
            _read(folder / name)


def test_damaged_parquet_and_unopenable_files_follow_the_same_rule_as_damaged_gzip(tmp_path, monkeypatch):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.jsonl").write_text('{"text": "kept"}\n')
    (folder / "b.parquet").write_bytes(b"PAR1 cut short")
    (folder / "c.jsonl").write_text('{"text": "locked"}\n')
    real_open = open

    def deny(path, *args, **kwargs):
        if str(path) == str(folder / "c.jsonl"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", deny)
    with pytest.warns(VocabxWarning):
        docs, report = _read(folder)
    assert docs == ["kept"]
    reasons = dict(report.skipped_files)
    assert "not a readable parquet file" in reasons[str(folder / "b.parquet")]
    assert reasons[str(folder / "c.jsonl")] == "Permission denied; check its permissions, or leave it out"
    with pytest.raises(VocabxError, match=r"cannot read corpus file '.*b\.parquet': not a readable parquet file .*; write or download it again"):
        _read(folder / "b.parquet")


def test_a_binary_or_empty_text_file_beside_record_files_gets_one_clear_message(tmp_path):
    PNG = b"\x89PNG"
    (tmp_path / "a.jsonl").write_text('{"text": "record"}\n')
    (tmp_path / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    (tmp_path / "empty.md").write_text("")
    (tmp_path / "blank.txt").write_text("  \n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        docs, report = _read(tmp_path)
    assert docs == ["record"]
    ours = [str(w.message) for w in caught if issubclass(w.category, VocabxWarning)]
    assert ours == [f"{tmp_path / 'image.txt'}: skipped, binary file (starts with {PNG!r})"]
    assert report.empty_files == 2


def test_a_stray_quote_closed_by_another_lines_later_in_a_csv_keeps_the_rows_between(tmp_path):
    # Line 3 opens a quote that line 6's stray quote closes: read as quoted, rows 2-5 were one document.
    path = tmp_path / "notes.csv"
    path.write_text('id,text\n1,first\n2,"stray quote opens here\n3,second\n4,third\n5,size 5"\n6,last\n')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        docs, report = _read(path)
    assert docs == ["first", '"stray quote opens here', "second", "third", 'size 5"', "last"]
    ours = [str(w.message) for w in caught if issubclass(w.category, VocabxWarning)]
    assert len(ours) == 1 and ours[0].startswith(f"{path}: line 3 (to 6) opens a quoted field that is not closed")


def test_a_quoted_csv_field_over_lines_that_hold_commas_is_still_one_field(tmp_path):
    # Each line of the field holds one comma, as a row of this file does, but not a number in the id column.
    path = tmp_path / "notes.csv"
    field = "Patient notes, day 1\nBP 120/80, HR 70\nplan: rest, fluids"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([["id", "text"], [1, "first"], [2, field], [3, 'said "5, then 6"'], [4, "last"]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        docs, _ = _read(path)
    assert docs == ["first", field, 'said "5, then 6"', "last"]


def test_a_quoted_csv_field_over_lines_with_a_rows_comma_count_is_one_field_without_a_number_column(tmp_path):
    # No column holds a number to tell a row from a line of text, and each line of the field holds one
    # comma, as a row of this file does: the quotes are trusted (as csv and pandas read them), not taken
    # for a stray quote that ran over rows.
    path = tmp_path / "notes.csv"
    field = "Patient notes, day one\nBP normal, HR normal\nplan: rest, fluids"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([["title", "text"], ["a", "first"], ["b", field], ["c", "last"]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        docs, _ = _read(path)
    assert docs == ["first", field, "last"]


def test_documents_from_python_are_checked_and_a_dataset_gives_its_text_column(tmp_path):
    from vocabx.corpus import documents

    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"text": ["a", None, "b"], "id": [1, 2, 3]})
    for given in (ds, ds.with_format("arrow"), ds.with_format("pandas"), ds.to_iterable_dataset(), ["a", None, "b"], iter(["a", "b"])):
        assert list(documents(given)) == ["a", "b"]
    (tmp_path / "a.txt").write_text("a note", encoding="utf-8")
    stream = read_corpus(tmp_path / "a.txt")
    assert documents(stream) is stream  # (read_corpus's stream is handed on as it is, its report with it)
    with pytest.raises(VocabxError, match=r"texts is a DatasetDict of splits train; pass one split, such as dataset\['train'\]"):
        documents(datasets.DatasetDict({"train": ds}))
    with pytest.raises(VocabxError, match=r"notes must be a list or iterable of str documents, got int"):
        documents(5, what="notes")
    with pytest.raises(VocabxError, match=r"texts: document 1 is float \(1\.5\), not text"):
        list(documents(["a", 1.5]))

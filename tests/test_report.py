"""Report artifacts: the exact files, their contents, escaping, atomic writes and schema checks."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys

import pytest

from vocabx import report as report_module
from vocabx.errors import VocabxError
from vocabx.report import SCHEMA, TSV_COLUMNS, name_groups, read_report, readable, write_report


def test_a_long_list_of_groups_is_named_in_one_short_line():
    # (30 held-out groups made analyze's summary table some 400 characters wide)
    assert name_groups(["a", "b"]) == "a, b"
    assert name_groups(["a", "b", "c", "d"]) == "a, b, c, d"
    assert name_groups([f"legal-{i:04d}" for i in range(30)]) == "legal-0000, legal-0001, legal-0002 and 27 more"

FILES = {"report.json", "candidates.tsv", "report.md", "report.html", "savings_curve.png", "fragmentation.png"}
NASTY_TOKEN = 'Ġ<&">'


def _candidate(rank: int, token: str, surface: str, kind: str, pieces: list[str], **extra) -> dict:
    count = 1000 // rank
    return {
        "rank": rank,
        "token": token,
        "surface": surface,
        "kind": kind,
        "count": count,
        "doc_count": count // 4,
        "base_pieces": pieces,
        "tokens_saved": count * (len(pieces) - 1),
        "cumulative_saved": 0,
        "score": float(count * (len(pieces) - 1)),
        "specificity": 2.5 if rank % 2 else None,
        "variants": [],
        "example": f"... the {surface.strip()} clause ...",
        **extra,
    }


def _candidates() -> list[dict]:
    rows = [
        ("ĠofĠthe", " of the", "phrase", ["Ġof", "Ġthe"]),
        ("Ġindemnify", " indemnify", "word", ["Ġind", "em", "n", "ify"]),
        ("ification", "ification", "subword", ["ific", "ation"]),
        ("Ġnotwithstanding", " notwithstanding", "word", ["Ġnot", "with", "standing"]),
        (NASTY_TOKEN, ' <&">', "word", ["Ġ<", "&", '">']),
        ("ĠtheĠAgreement", " the Agreement", "phrase", ["Ġthe", "ĠAgreement"]),
        ("ee", "ee", "subword", ["e", "e"]),
    ]
    candidates = [_candidate(i + 1, *row) for i, row in enumerate(rows)]
    candidates[0]["variants"] = [" Of the"]
    candidates[1]["example"] = "a tab\there and a newline\nthere"
    total = 0
    for c in candidates:
        total += c["tokens_saved"]
        c["cumulative_saved"] = total
    return candidates


def _curve(candidates: list[dict], tokens: int) -> list[dict]:
    return [
        {"n": c["rank"], "tokens_saved": c["cumulative_saved"], "fraction": c["cumulative_saved"] / tokens}
        for c in candidates
    ]


@pytest.fixture
def report() -> dict:
    candidates = _candidates()
    return {
        "schema": SCHEMA,
        "vocabx_version": "0.1.0",
        "created": "2026-11-26T18:00:00Z",
        "model": {"spec": "smollm2-135m", "vocab_size": 49152, "family": "byte_bpe", "hidden_size": 576, "tied": True},
        "corpus": {
            "sources": ["corpora/legal"],
            "docs": 300,
            "bytes": 812345,
            "words": 14000,
            "tokens": 17000,
            "tokens_per_word": 1.21,
        },
        "reference": {
            "sources": ["corpora/general"],
            "docs": 100,
            "bytes": 300000,
            "words": 50000,
            "tokens": 55000,
            "tokens_per_word": 1.1,
        },
        "settings": {
            "max_new": 16384,
            "holdout": 0.1,
            "seed": 0,
            "min_count": 5,
            "min_docs": 2,
            "kinds": ["word", "subword", "phrase"],
            "allow_digits": False,
        },
        "candidates": candidates,
        "savings_curve": _curve(candidates, 17000),
        "holdout_curve": [{**p, "fraction": p["fraction"] * 0.9} for p in _curve(candidates, 17000)],
        "recommended_n": 4,
        "recommended": {
            "n": 4,
            "fraction": candidates[3]["cumulative_saved"] / 17000,
            "holdout_fraction": 0.9 * candidates[3]["cumulative_saved"] / 17000,
            "extra_parameters": 2304,
            "extra_mb": 0.01,
        },
        "holdout": {"fraction": 0.1, "docs": 30, "tokens": 1700, "words": 1400},
        "fragmentation": {
            "domain": {"1": 10000, "2": 2500, "3": 900, "4": 300, "5": 150, "6": 80, "7": 40, "8+": 30},
            "reference": {"1": 45000, "2": 4000, "3": 700, "4": 200, "5": 60, "6": 20, "7": 10, "8+": 10},
        },
        "notes": ["--max-new 16384 is more than the 7 candidates found; the curve stops at 7."],
    }


@pytest.fixture
def empty_report(report) -> dict:
    empty = copy.deepcopy(report)
    empty.update(
        candidates=[],
        savings_curve=[],
        holdout_curve=[],
        recommended_n=None,
        recommended=None,
        reference=None,
        holdout=None,
        fragmentation={"domain": {"1": 14000}, "reference": None},
        notes=["No word is split into more than one piece: nothing to add."],
    )
    return empty


def test_writes_exactly_the_six_files_and_returns_their_paths(report, tmp_path):
    out = tmp_path / "report"
    paths = write_report(report, out)
    assert set(paths) == FILES
    assert {p.name for p in out.iterdir()} == FILES
    assert all(path == out / name and path.is_file() for name, path in paths.items())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no staging folder left beside it
    for name in ("savings_curve.png", "fragmentation.png"):
        assert (out / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_report_json_round_trips_with_schema_first(report, tmp_path):
    write_report(report, tmp_path / "r")
    text = (tmp_path / "r" / "report.json").read_text(encoding="utf-8")
    assert text.lstrip("{\n ").startswith('"schema": "vocabx.report/1"')
    assert "ĠofĠthe" in text  # ensure_ascii=False: tokens stay readable in the file
    assert read_report(tmp_path / "r") == report
    assert read_report(tmp_path / "r" / "report.json") == report


def test_schema_is_added_first_when_the_analyzer_leaves_it_out(report, tmp_path):
    del report["schema"]
    write_report(report, tmp_path / "r")
    assert list(read_report(tmp_path / "r"))[0] == "schema"


def test_candidates_tsv_has_a_header_and_one_line_per_candidate(report, tmp_path):
    write_report(report, tmp_path / "r")
    lines = (tmp_path / "r" / "candidates.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t") == list(TSV_COLUMNS)
    assert len(lines) == 1 + len(report["candidates"])
    rows = [dict(zip(TSV_COLUMNS, line.split("\t"), strict=True)) for line in lines[1:]]
    for row, candidate in zip(rows, report["candidates"]):
        assert row["rank"] == str(candidate["rank"])
        assert row["token"] == candidate["token"].replace('"', '\\"')
        assert row["kind"] == candidate["kind"]
        assert row["base_pieces"] == " ".join(candidate["base_pieces"]).replace('"', '\\"')
        assert row["n_base_pieces"] == str(len(candidate["base_pieces"]))
        assert row["cumulative_saved"] == str(candidate["cumulative_saved"])
        assert row["specificity"] == ("" if candidate["specificity"] is None else str(candidate["specificity"]))
    assert rows[1]["example"] == "a tab\\there and a newline\\nthere"


def test_tsv_fields_never_break_a_line(report, tmp_path):
    report["candidates"][0]["example"] = "back\\slash, line\u2028separator, cr\r, form\x0cfeed"
    write_report(report, tmp_path / "r")
    lines = (tmp_path / "r" / "candidates.tsv").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 + len(report["candidates"])
    assert lines[1].split("\t")[-1] == "back\\\\slash, line\\u2028separator, cr\\r, form\\u000cfeed"
    # a field that starts with a quote does not open a quoted field in CSV-style readers
    import csv

    report["candidates"][0]["example"] = '"an unmatched quote, then the next candidates'
    write_report(report, tmp_path / "q")
    with open(tmp_path / "q" / "candidates.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    assert len(rows) == 1 + len(report["candidates"]) and rows[1][-1] == '\\"an unmatched quote, then the next candidates'


def test_report_md_has_the_recommendation_curve_candidates_and_command(report, tmp_path):
    write_report(report, tmp_path / "r")
    md = (tmp_path / "r" / "report.md").read_text(encoding="utf-8")
    assert "N = 4 new tokens" in md
    assert "2,304 extra parameters" in md
    assert "| N | tokens saved | saved | held-out tokens saved | held-out saved |" in md
    for point in report["savings_curve"]:
        row = rf"^\| {point['n']} \| {point['tokens_saved']:,} \| {100 * point['fraction']:.2f}% \|"
        assert re.search(row, md, re.M)
    for kind in ("word", "subword", "phrase"):
        assert f"## Top {kind} candidates" in md
    assert "`ĠofĠthe`" in md and "`␣of the`" in md  # the token with its marker and the readable surface
    assert report["notes"][0] in md
    assert "vocabx analyze corpora/legal --model smollm2-135m -o REPORT_DIR --reference corpora/general" in md
    assert "--max-new 16384" in md and "--kinds word,subword,phrase" in md and "--allow-digits" not in md


def test_a_reference_curve_gets_a_column_and_a_clause_in_the_recommendation(report, tmp_path):
    report["reference_curve"] = [{**p, "fraction": p["fraction"] * 0.1} for p in report["savings_curve"]]
    report["recommended"]["reference_fraction"] = report["reference_curve"][3]["fraction"]
    write_report(report, tmp_path / "r")
    md = (tmp_path / "r" / "report.md").read_text(encoding="utf-8")
    assert "| N | tokens saved | saved | held-out tokens saved | held-out saved | reference saved |" in md
    share = f"{100 * report['recommended']['reference_fraction']:.2f}%"
    assert f"and rewrite {share} of the reference corpus's" in md
    last = report["reference_curve"][-1]
    assert re.search(rf"^\| {last['n']} \|.*\| {100 * last['fraction']:.2f}% \|$", md, re.M)


def test_report_html_is_self_contained_and_escapes_tokens(report, tmp_path):
    write_report(report, tmp_path / "r")
    page = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == 2
    external = re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I)
    assert external == []
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert "<code>Ġ&lt;&amp;&quot;&gt;</code>" in page  # the token with its marker, escaped
    assert "<code>␣&lt;&amp;&quot;&gt;</code>" in page  # the surface, readable and escaped
    assert NASTY_TOKEN not in page and '<&">' not in page
    assert page.count('class="kind kind-word"') == 3
    assert 'class="kind kind-phrase"' in page and 'class="kind kind-subword"' in page
    assert "N = 4 new tokens" in page and "also ␣Of the" in page


def test_html_caps_the_candidates_table(report, tmp_path, monkeypatch):
    monkeypatch.setattr(report_module, "HTML_TOP", 3)
    write_report(report, tmp_path / "r")
    page = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert page.count('<span class="kind ') == 3
    assert "The top 3 of 7 candidates" in page


def test_non_empty_folder_needs_overwrite(report, tmp_path):
    out = tmp_path / "r"
    write_report(report, out)
    with pytest.raises(VocabxError, match=r"r exists and is not empty.*--overwrite.*another -o folder"):
        write_report(report, out)
    report["recommended_n"] = 2
    write_report(report, out, overwrite=True)
    assert read_report(out)["recommended_n"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_an_empty_existing_folder_is_filled(report, tmp_path):
    (tmp_path / "r").mkdir()
    write_report(report, tmp_path / "r")
    assert {p.name for p in (tmp_path / "r").iterdir()} == FILES


def test_overwrite_refuses_a_folder_that_is_not_a_report(report, tmp_path):
    out = tmp_path / "src"
    out.mkdir()
    (out / "keep.py").write_text("precious")
    with pytest.raises(VocabxError, match="not an earlier report"):
        write_report(report, out, overwrite=True)
    assert (out / "keep.py").read_text() == "precious"


def test_the_current_folder_is_never_replaced(report, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(VocabxError, match="is the current folder"):
        write_report(report, ".")
    assert list(tmp_path.iterdir()) == []


def test_the_report_folder_gets_ordinary_permissions(report, tmp_path):
    (tmp_path / "plain").mkdir()
    write_report(report, tmp_path / "r")
    assert (tmp_path / "r").stat().st_mode == (tmp_path / "plain").stat().st_mode


def test_a_report_of_another_schema_is_not_written(report, tmp_path):
    report["schema"] = "vocabx.report/2"
    with pytest.raises(ValueError, match="vocabx.report/2"):
        write_report(report, tmp_path / "r")
    assert list(tmp_path.iterdir()) == []


def test_a_failure_mid_write_leaves_no_report(report, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(report_module, "report_html", broken)  # the last file, after the others are written
    with pytest.raises(RuntimeError, match="disk full"):
        write_report(report, tmp_path / "r")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_overwrite_keeps_the_previous_report(report, tmp_path, monkeypatch):
    write_report(report, tmp_path / "r")
    before = (tmp_path / "r" / "report.json").read_bytes()
    monkeypatch.setattr(report_module, "fragmentation_png", lambda report: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        write_report({**report, "recommended_n": 2}, tmp_path / "r", overwrite=True)
    assert (tmp_path / "r" / "report.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_read_report_rejects_another_schema(tmp_path):
    (tmp_path / "report.json").write_text(json.dumps({"schema": "vocabx.report/0"}))
    with pytest.raises(VocabxError) as info:
        read_report(tmp_path)
    message = str(info.value)
    assert str(tmp_path / "report.json") in message
    assert "'vocabx.report/0'" in message and "'vocabx.report/1'" in message


def test_read_report_names_a_missing_or_broken_file(tmp_path):
    with pytest.raises(VocabxError, match="no report at .*report.json"):
        read_report(tmp_path)
    (tmp_path / "report.json").write_text("{not json")
    with pytest.raises(VocabxError, match="not valid JSON .*line 1"):
        read_report(tmp_path)


def test_an_empty_report_still_renders(empty_report, tmp_path):
    paths = write_report(empty_report, tmp_path / "r")
    assert set(paths) == FILES
    assert read_report(tmp_path / "r") == empty_report
    assert (tmp_path / "r" / "candidates.tsv").read_text(encoding="utf-8") == "\t".join(TSV_COLUMNS) + "\n"
    md = (tmp_path / "r" / "report.md").read_text(encoding="utf-8")
    assert "No recommendation" in md and "No candidates." in md and "nothing to add" in md
    page = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == 2 and "nothing to add" in page


def test_report_with_missing_optional_fields_renders(tmp_path):
    minimal = {"candidates": [{"token": "Ġx", "surface": " x", "kind": "word"}], "savings_curve": None}
    write_report(minimal, tmp_path / "r")
    assert {p.name for p in (tmp_path / "r").iterdir()} == FILES


def test_readable_shows_edge_spaces_and_control_characters():
    assert readable(" of the ") == "␣of the␣"
    assert readable("a\tb\nc\u200b") == "a\\tb\\nc\\u200b"
    assert readable("  ") == "␣␣"
    assert readable("") == ""


def test_importing_vocabx_report_does_not_load_matplotlib():
    code = "import sys, vocabx.report; print('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_the_recommended_point_sits_on_the_held_out_curve_when_there_is_one(report):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    def marked(rep: dict) -> float:
        fig, ax = plt.subplots()
        try:
            report_module._mark_recommended(ax, rep)
            (point,) = [line for line in ax.lines if line.get_label().startswith("recommended N")]
            assert list(point.get_xdata()) == [rep["recommended_n"]]
            return float(point.get_ydata()[0])
        finally:
            plt.close(fig)

    recommended = report["recommended"]
    assert recommended["holdout_fraction"] != recommended["fraction"]
    assert marked(report) == pytest.approx(recommended["holdout_fraction"])  # (the knee is taken there)
    without = copy.deepcopy(report)
    del without["recommended"]["holdout_fraction"]
    assert marked(without) == pytest.approx(recommended["fraction"])


def _md_tables(md: str) -> list[list[int]]:
    """Cells per row of every table that markdown-it (GFM tables) renders from ``md``."""
    from markdown_it import MarkdownIt

    page = MarkdownIt("commonmark").enable("table").render(md)
    return [
        [len(re.findall(r"<t[hd][ >]", row)) for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)]
        for table in re.findall(r"<table>.*?</table>", page, re.S)
    ]


def test_md_escapes_held_out_group_names_in_headers_and_the_recommendation(report, tmp_path):
    report["holdout"]["groups"] = ["a|b", "<c>"]
    write_report(report, tmp_path / "r")
    md = (tmp_path / "r" / "report.md").read_text(encoding="utf-8")
    tables = _md_tables(md)
    assert tables[0] == [4] * 7  # the corpus table: label, analyzed, reference, held out; 7 rows
    assert all(len(set(rows)) == 1 for rows in tables)
    assert "held-out groups: a|b" not in md and "<c>" not in md


def test_a_surface_with_a_backslash_before_a_pipe_keeps_its_table_cell(report, tmp_path):
    # GFM (cmark-gfm, GitHub) reads "\\|" as an escaped backslash and then a cell-ending pipe.
    report["candidates"][1].update(token="a\\|b", surface="a\\|b")
    write_report(report, tmp_path / "r")
    md = (tmp_path / "r" / "report.md").read_text(encoding="utf-8")
    row = next(line for line in md.splitlines() if line.startswith("| 2 |") and "ify" in line)
    assert "\\\\|" not in row and "&#92;&#124;" in row
    assert all(len(set(rows)) == 1 for rows in _md_tables(md))


def test_no_candidates_gives_no_recommendation_not_n_zero(empty_report, tmp_path):
    # what the analyzer writes when nothing is fragmented: N = 0 with its zero cost
    empty_report.update(recommended_n=0, recommended={"n": 0, "fraction": None, "extra_parameters": 0, "extra_mb": 0.0})
    write_report(empty_report, tmp_path / "r")
    for name in ("report.md", "report.html"):
        text = (tmp_path / "r" / name).read_text(encoding="utf-8")
        assert "No recommendation: no candidates were found." in text and "N = 0" not in text


def test_a_cost_under_a_hundredth_of_a_megabyte_is_not_shown_as_zero(report):
    report["recommended"].update(extra_parameters=1152, extra_mb=0.0)
    sentence = report_module._recommendation(report)
    assert "1,152 extra parameters (under 0.01 MB)" in sentence and "0.00 MB" not in sentence

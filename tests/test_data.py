"""Training data: the train/eval split, packing with EOS between documents, the cache, the datasets helper."""

from __future__ import annotations

import builtins
import sys

import numpy as np
import pytest

import tinymodels
from vocabx.data import pack_dataset, pack_texts, split_documents
from vocabx.errors import VocabxError

DOCS = [f"{text} (note {i})" for i, text in enumerate(tinymodels.TRAINING_TEXT[:12])]


@pytest.fixture(scope="module")
def tok():
    return tinymodels.make_tokenizer("byte_bpe")


def _stream(tok, docs):
    eos = tok.eos_token_id
    return [t for d in docs for t in tok(d, add_special_tokens=False)["input_ids"] + [eos]]


def test_split_is_seeded_by_document_and_duplicates_never_straddle():
    docs = [f"document number {i}" for i in range(200)] + ["a repeated document"] * 5
    train, held = split_documents(docs, 0.2, seed=1)
    assert sorted(train + held) == sorted(docs)
    assert 20 < len(held) < 70
    assert ("a repeated document" in train) != ("a repeated document" in held)
    assert split_documents(docs, 0.2, seed=1) == (train, held)
    assert split_documents(docs, 0.2, seed=2)[1] != held


def test_a_small_corpus_still_gets_one_eval_document_with_its_duplicates():
    docs = ["alpha text", "beta text", "alpha text"]
    train, held = split_documents(docs, 0.01, seed=0)
    assert len(held) >= 1 and not set(held) & set(train)
    assert sorted(train + held) == sorted(docs)


def test_max_eval_docs_gives_the_rest_back_to_training():
    docs = [f"doc {i}" for i in range(100)]
    train, held = split_documents(docs, 0.5, seed=0, max_eval_docs=3)
    assert len(held) == 3 and len(train) == 97


def test_eval_fraction_out_of_range_names_the_flag():
    with pytest.raises(VocabxError, match="--eval-fraction must be in"):
        split_documents(["a"], 1.5)


def test_blocks_are_the_documents_joined_by_eos_cut_to_size(tok, tmp_path):
    packed = pack_texts(DOCS, tok, 16, cache_dir=tmp_path)
    stream = _stream(tok, DOCS)
    n = len(stream) // 16
    assert packed.blocks.dtype == np.int32 and packed.blocks.shape == (n, 16)
    assert packed.blocks.reshape(-1).tolist() == stream[: n * 16]
    assert packed.tokens == len(stream) and packed.dropped_tokens == len(stream) - n * 16
    assert packed.docs == len(DOCS)


def test_a_second_pack_of_the_same_texts_comes_from_the_cache(tok, tmp_path):
    first = pack_texts(DOCS, tok, 16, cache_dir=tmp_path)
    again = pack_texts(DOCS, tok, 16, cache_dir=tmp_path)
    assert not first.cached and again.cached
    assert np.array_equal(first.blocks, again.blocks)
    other = pack_texts(DOCS, tok, 8, cache_dir=tmp_path)
    assert not other.cached and other.blocks.shape[1] == 8
    assert not list(tmp_path.glob(".*tmp*"))


def test_the_cache_tells_a_tokenizer_that_splits_special_tokens_apart(tmp_path):
    docs = ["a <|endoftext|> b and some more words here"] * 4
    plain, splitting = tinymodels.make_tokenizer("byte_bpe"), tinymodels.make_tokenizer("byte_bpe")
    splitting.split_special_tokens = True  # (a runtime setting: the same tokenizer.json, other ids)
    expected = pack_texts(docs, splitting, 8, use_cache=False).blocks
    pack_texts(docs, plain, 8, cache_dir=tmp_path)
    again = pack_texts(docs, splitting, 8, cache_dir=tmp_path)
    assert not again.cached and np.array_equal(again.blocks, expected)


def test_without_datasets_the_blocks_are_the_same(tok, tmp_path, monkeypatch):
    expected = pack_texts(DOCS, tok, 16, use_cache=False).blocks
    real_import = builtins.__import__

    def no_datasets(name, *args, **kwargs):
        if name == "datasets":
            raise ImportError("no datasets here")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "datasets", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_datasets)
    assert np.array_equal(pack_texts(DOCS, tok, 16, use_cache=False).blocks, expected)


def test_parallel_tokenizing_gives_the_same_blocks(tok):
    docs = DOCS * 30
    assert np.array_equal(pack_texts(docs, tok, 16, num_proc=2, use_cache=False).blocks, pack_texts(docs, tok, 16, num_proc=1, use_cache=False).blocks)


def test_pack_dataset_matches_pack_texts_and_streams(tok):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"body": DOCS, "id": list(range(len(DOCS)))})
    packed = pack_dataset(ds, tok, 16, text_field="body")
    assert packed.column_names == ["input_ids"]
    assert np.array_equal(np.array(packed["input_ids"]), pack_texts(DOCS, tok, 16, use_cache=False).blocks)
    streamed = pack_dataset(ds.to_iterable_dataset(), tok, 16, text_field="body")
    assert [row["input_ids"] for row in streamed] == packed["input_ids"]
    per_batch = pack_dataset(ds, tok, 16, text_field="body", batch_size=4)
    assert 0 < len(per_batch) <= len(packed)


def test_pack_dataset_names_a_missing_column(tok):
    datasets = pytest.importorskip("datasets")
    with pytest.raises(VocabxError, match="no column 'text'; columns present: body"):
        pack_dataset(datasets.Dataset.from_dict({"body": DOCS}), tok, 16)


@pytest.mark.parametrize("block_size", [1, 0, "8", True])
def test_bad_block_sizes_are_errors(tok, block_size):
    with pytest.raises(VocabxError, match="block_size must be an int of at least 2"):
        pack_texts(DOCS, tok, block_size, use_cache=False)


def test_split_tokens_writes_a_seeded_share_of_occurrences_with_their_pieces():
    from vocabx.data import split_tokens

    blocks = np.array([[5, 1, 5, 2], [7, 5, 9, 9]], dtype=np.int32)
    every, counts = split_tokens(blocks, {5: [3, 4], 7: [8]}, 0.999999, seed=0)
    # the stream 3 4 1 3 4 2 8 3 4 9 9 cut into blocks of 4; the tail that fills no block is dropped
    assert every.tolist() == [[3, 4, 1, 3], [4, 2, 8, 3]] and every.dtype == np.int32
    assert counts == {"occurrences": 4, "split": 4, "tokens": 8, "tokens_after": 11}
    none, counts = split_tokens(blocks, {5: [3, 4]}, 0.0, seed=0)
    assert none.tolist() == blocks.tolist() and counts["split"] == 0

    rng = np.random.default_rng(1)
    big = rng.integers(0, 20, size=(500, 16)).astype(np.int32)
    pieces = {3: [30, 31], 4: [40, 41, 42]}
    half, counts = split_tokens(big, pieces, 0.3, seed=7)
    again, _ = split_tokens(big, pieces, 0.3, seed=7)
    assert half.tolist() == again.tolist()  # seeded
    assert 0.25 < counts["split"] / counts["occurrences"] < 0.35
    # joining the pieces back gives the original stream
    undo = {(30, 31): 3, (40, 41, 42): 4}
    flat, out, i = half.reshape(-1).tolist(), [], 0
    while i < len(flat):
        for seq, tok in undo.items():
            if tuple(flat[i : i + len(seq)]) == seq:
                out.append(tok)
                i += len(seq)
                break
        else:
            out.append(flat[i])
            i += 1
    assert out[:-1] == big.reshape(-1).tolist()[: len(out) - 1]  # (the last may be a cut piece run)
    with pytest.raises(VocabxError, match=r"in \[0, 1\), got 1"):
        split_tokens(blocks, pieces, 1, seed=0)


def test_pack_dataset_gives_the_same_blocks_for_any_num_proc(tok):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"text": DOCS})
    one = pack_dataset(ds, tok, 16, num_proc=1)["input_ids"]
    # (two workers each used to end their shard's last batch early, dropping two tails instead of one)
    assert list(pack_dataset(ds, tok, 16, num_proc=2)["input_ids"]) == list(one)
    assert np.array_equal(np.array(one), pack_texts(DOCS, tok, 16, use_cache=False).blocks)


def test_pack_dataset_packs_each_split_of_a_dataset_dict(tok):
    datasets = pytest.importorskip("datasets")
    splits = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": DOCS}), "test": datasets.Dataset.from_dict({"text": DOCS[:4]})})
    packed = pack_dataset(splits, tok, 16)
    assert isinstance(packed, datasets.DatasetDict) and set(packed) == {"train", "test"}
    assert np.array_equal(np.array(packed["test"]["input_ids"]), pack_texts(DOCS[:4], tok, 16, use_cache=False).blocks)


def test_a_missing_text_is_no_document(tok):
    datasets = pytest.importorskip("datasets")
    with_gaps = [DOCS[0], None, DOCS[1], None]
    expected = pack_texts(DOCS[:2], tok, 8, use_cache=False).blocks
    packed = pack_texts(with_gaps, tok, 8, use_cache=False)
    assert np.array_equal(packed.blocks, expected) and packed.docs == 2
    assert np.array_equal(np.array(pack_dataset(datasets.Dataset.from_dict({"text": with_gaps}), tok, 8)["input_ids"]), expected)


def test_an_empty_text_is_no_document_either(tok):
    datasets = pytest.importorskip("datasets")
    expected = pack_texts(DOCS[:2], tok, 8, use_cache=False).blocks
    packed = pack_texts(["", DOCS[0], "", "", DOCS[1]], tok, 8, use_cache=False)
    assert np.array_equal(packed.blocks, expected) and packed.docs == 2  # (no lone EOS between them)
    given = datasets.Dataset.from_dict({"text": ["", DOCS[0], None, "", DOCS[1]]})
    assert np.array_equal(np.array(pack_dataset(given, tok, 8)["input_ids"]), expected)


def test_pack_dataset_reads_text_whatever_the_dataset_s_format(tok):
    datasets = pytest.importorskip("datasets")
    given = datasets.Dataset.from_dict({"text": DOCS[:3] + [None], "id": [1, 2, 3, 4]})
    expected = pack_texts(DOCS[:3], tok, 8, use_cache=False).blocks
    for fmt in ("arrow", "pandas", "numpy", "torch"):
        assert np.array_equal(np.array(pack_dataset(given.with_format(fmt), tok, 8)["input_ids"]), expected), fmt


def test_a_list_in_a_text_column_is_refused_not_read_as_a_text_pair(tok):
    datasets = pytest.importorskip("datasets")
    pairs = datasets.Dataset.from_dict({"text": [["a b", "c"], ["d", "e"]]})
    with pytest.raises(VocabxError, match=r"column 'text' of the dataset: a document \(\"\['a b', 'c'\]\"\) is list, not text"):
        pack_dataset(pairs, tok, 2)


def test_one_str_is_not_a_list_of_documents(tok):
    with pytest.raises(VocabxError, match=r"texts is one str of 9 characters, not a list of documents .* pass \[text\]"):
        pack_texts("some text", tok, 8, use_cache=False)


def test_a_numpy_block_size_is_an_int(tok):
    assert np.array_equal(pack_texts(DOCS, tok, np.int64(8), use_cache=False).blocks, pack_texts(DOCS, tok, 8, use_cache=False).blocks)


def test_pack_dataset_on_a_stream_whose_columns_are_unknown(tok):
    datasets = pytest.importorskip("datasets")
    stream = datasets.IterableDataset.from_generator(lambda: ({"id": i, "text": d} for i, d in enumerate(DOCS)))
    assert stream.column_names is None
    rows = list(pack_dataset(stream, tok, 16))
    assert all(set(row) == {"input_ids"} for row in rows)
    assert np.array_equal(np.array([row["input_ids"] for row in rows]), pack_texts(DOCS, tok, 16, use_cache=False).blocks)
    bodies = datasets.IterableDataset.from_generator(lambda: ({"body": d} for d in DOCS))
    with pytest.raises(VocabxError, match="no column 'text'; columns present: body; pass text_field="):
        pack_dataset(bodies, tok, 16)


def test_the_cache_is_not_reused_for_other_text_another_tokenizer_or_another_eos(tok, tmp_path):
    import copy

    first = pack_texts(DOCS, tok, 16, cache_dir=tmp_path)
    changed = pack_texts(DOCS[:-1] + [DOCS[-1] + "!"], tok, 16, cache_dir=tmp_path)
    assert not changed.cached
    other_eos = copy.deepcopy(tok)
    other_eos.eos_token = other_eos.convert_ids_to_tokens(5)
    again = pack_texts(DOCS, other_eos, 16, cache_dir=tmp_path)
    assert not again.cached and 5 in again.blocks and not np.array_equal(again.blocks, first.blocks)
    wider = copy.deepcopy(tok)
    wider.add_tokens(["patient was"])
    assert not pack_texts(DOCS, wider, 16, cache_dir=tmp_path).cached


def test_a_damaged_cache_entry_is_packed_again(tok, tmp_path):
    first = pack_texts(DOCS, tok, 16, cache_dir=tmp_path)
    (meta,) = tmp_path.glob("*.json")
    meta.write_text("{trunc")
    again = pack_texts(DOCS, tok, 16, cache_dir=tmp_path)
    assert not again.cached and np.array_equal(again.blocks, first.blocks)
    assert pack_texts(DOCS, tok, 16, cache_dir=tmp_path).cached


def test_a_document_that_is_not_text_is_named(tok):
    with pytest.raises(VocabxError, match=r"document 1 holds a lone surrogate U\+D83D at character 5"):
        pack_texts(["fine", "half \ud83d emoji"], tok, 16, use_cache=False)


def test_an_eos_token_missing_from_the_vocabulary_is_an_error_not_the_unknown_token():
    from vocabx.data import eos_id

    tok = tinymodels.make_tokenizer("wordpiece")
    assert eos_id(tok) == tok.sep_token_id  # (no EOS: the separator)
    tok.eos_token = "</nothere>"
    with pytest.raises(VocabxError, match=r"EOS token '</nothere>' is not in its vocabulary .* set tokenizer\.eos_token"):
        pack_texts(DOCS, tok, 16, use_cache=False)
    for family in ("byte_bpe", "sp_bpe", "unigram"):  # (an EOS that is also the unknown token is fine)
        t = tinymodels.make_tokenizer(family)
        assert eos_id(t) == t.eos_token_id


def test_pack_dataset_names_a_column_that_is_not_text_and_an_input_that_is_not_a_dataset(tok):
    datasets = pytest.importorskip("datasets")
    numbers = datasets.Dataset.from_dict({"text": [1, 2, 3], "body": DOCS[:3]})
    for given in (numbers, numbers.to_iterable_dataset()):
        with pytest.raises(VocabxError, match=r"column 'text' of the dataset: a document \('1'\) is int, not text; .* pass text_field= naming a column of text"):
            list(pack_dataset(given, tok, 16))
    with pytest.raises(VocabxError, match=r"pack_dataset takes a datasets.Dataset or IterableDataset, got list; for a list of texts use vocabx.pack_texts"):
        pack_dataset(DOCS, tok, 16)


def test_an_empty_dataset_packs_into_no_block_with_the_input_ids_column(tok):
    datasets = pytest.importorskip("datasets")
    full = pack_dataset(datasets.Dataset.from_dict({"text": DOCS}), tok, 16)
    for num_proc in (None, 4):  # (more processes than rows, too)
        empty = pack_dataset(datasets.Dataset.from_dict({"text": []}), tok, 16, num_proc=num_proc)
        assert len(empty) == 0 and empty.column_names == ["input_ids"] and empty.features == full.features
    splits = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": DOCS}), "test": datasets.Dataset.from_dict({"text": []})})
    assert pack_dataset(splits, tok, 16)["test"].column_names == ["input_ids"]
    # more processes than rows: the same blocks as one
    assert list(pack_dataset(datasets.Dataset.from_dict({"text": DOCS[:2]}), tok, 8, num_proc=8)["input_ids"]) == list(
        pack_dataset(datasets.Dataset.from_dict({"text": DOCS[:2]}), tok, 8)["input_ids"]
    )


def test_packing_a_document_longer_than_the_model_context_says_nothing_about_indexing_errors():
    # Documents are packed into blocks no longer than the context, so transformers' warning that a
    # sequence longer than model_max_length "will result in indexing errors" is noise to a user here.
    import logging

    datasets = pytest.importorskip("datasets")
    from transformers.utils import logging as hf_logging

    short = tinymodels.make_tokenizer("byte_bpe")
    short.model_max_length = 8
    long_doc = " ".join(DOCS)
    assert len(short(long_doc, add_special_tokens=False, verbose=False)["input_ids"]) > 8
    said: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: said.append(record.getMessage())  # type: ignore[method-assign]
    library, level = hf_logging.get_logger("transformers"), hf_logging.get_verbosity()
    library.addHandler(handler)
    hf_logging.set_verbosity_warning()  # (the CLI's tests may have turned transformers' warnings off)
    try:
        blocks = pack_dataset(datasets.Dataset.from_dict({"text": [long_doc]}), short, 8)
        pack_texts([long_doc], short, 8, use_cache=False)
        assert len(blocks) > 1
        assert not [m for m in said if "indexing errors" in m]
        short("x " * 20, add_special_tokens=False)  # (the warning is still the tokenizer's own for a user's call)
        assert [m for m in said if "indexing errors" in m]
    finally:
        library.removeHandler(handler)
        hf_logging.set_verbosity(level)

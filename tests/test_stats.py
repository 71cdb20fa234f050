"""Corpus statistics: exact token and word counts for every tokenizer family and the real model."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vocabx.stats import backend_of, batched, corpus_stats, splits_words

TEXTS = [
    "The patient was admitted for hepatosplenomegaly.",
    "  Leading spaces,\ttabs\nand newlines  ",
    "Ünïcödé, emoji 😀 and CJK 漢字 mixed with 12345 digits.",
    "x",
]


def _expected_words(tokenizer, text: str) -> int:
    backend = tokenizer.backend_tokenizer
    if not splits_words(backend):
        return len(text.split())
    normalized = backend.normalizer.normalize_str(text) if backend.normalizer else text
    return len(backend.pre_tokenizer.pre_tokenize_str(normalized))


def test_one_str_is_refused_not_counted_one_character_a_document(tiny_tokenizers):
    from vocabx.errors import VocabxError

    with pytest.raises(VocabxError, match=r"texts is one str of 9 characters, not a list of documents"):
        corpus_stats("some text", tiny_tokenizers["byte_bpe"])


def test_counts_match_the_tokenizer_and_its_pre_tokenizer(family_tokenizer):
    stats = corpus_stats(TEXTS, family_tokenizer, batch_size=3)
    assert stats.docs == 4
    assert stats.bytes == sum(len(t.encode()) for t in TEXTS)
    assert stats.tokens == sum(len(family_tokenizer(t, add_special_tokens=False)["input_ids"]) for t in TEXTS)
    assert stats.words == sum(_expected_words(family_tokenizer, t) for t in TEXTS)
    assert stats.tokens_per_word == pytest.approx(stats.tokens / stats.words)
    assert stats.bytes_per_token == pytest.approx(stats.bytes / stats.tokens)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=5))
def test_word_counts_hold_on_arbitrary_unicode(_tiny_tokenizers, texts):
    for tok in _tiny_tokenizers.values():
        stats = corpus_stats(texts, tok)
        assert stats.words == sum(_expected_words(tok, t) for t in texts)
        assert stats.tokens == sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts)


def test_truncation_set_on_the_tokenizer_does_not_cut_counts(tiny_tokenizers):
    tok = tiny_tokenizers["byte_bpe"]
    tok.backend_tokenizer.enable_truncation(4)
    long = "the patient was admitted for chest pain and shortness of breath " * 5
    assert corpus_stats([long], tok).tokens > 4
    assert backend_of(tok) is not tok.backend_tokenizer  # a copy; the user's tokenizer is untouched
    assert tok.backend_tokenizer.truncation is not None


def test_progress_receives_every_byte(tiny_tokenizers):
    seen = []
    corpus_stats(TEXTS, tiny_tokenizers["byte_bpe"], batch_size=2, progress=seen.append)
    assert sum(seen) == sum(len(t.encode()) for t in TEXTS) and len(seen) == 2


def test_errors_in_the_reader_reach_the_caller(tiny_tokenizers):
    def texts():
        yield "fine"
        raise ValueError("reader broke")

    with pytest.raises(ValueError, match="reader broke"):
        corpus_stats(texts(), tiny_tokenizers["byte_bpe"], batch_size=1)


@pytest.mark.parametrize(
    "bad, message", [(None, "document 2 is NoneType, not text"), ("half \ud83d emoji", r"document 2 holds a lone surrogate U\+D83D at character 5")]
)
def test_a_document_that_is_not_text_is_named(tiny_tokenizers, bad, message):
    from vocabx.errors import VocabxError

    with pytest.raises(VocabxError, match=message):
        corpus_stats(["fine", "also fine", bad], tiny_tokenizers["byte_bpe"], batch_size=2)


def test_batched():
    assert list(batched([1, 2, 3, 4, 5], 2)) == [[1, 2], [3, 4], [5]]


@pytest.mark.slow
@pytest.mark.shared
def test_reference_figures_on_the_shared_corpora(shared_corpora, smollm2_tokenizer):
    from vocabx.corpus import read_corpus

    expected = {"legal/cuad": (5_725_661, 4_840_020), "medical/medquad": (4_230_932, 3_743_986)}
    for name, (tokens, words) in expected.items():
        folder = shared_corpora / name
        stats = corpus_stats(read_corpus(folder / "train.jsonl", folder / "test.jsonl"), smollm2_tokenizer)
        assert (stats.tokens, stats.words) == (tokens, words), name

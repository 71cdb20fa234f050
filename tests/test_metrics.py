"""Bits per byte against hand computations with the model's own loss, and token counts."""

from __future__ import annotations

import math

import pytest
import torch

import tinymodels
from vocabx.errors import VocabxError
from vocabx.metrics import bits_per_byte, token_counts, windows
from vocabx.stats import corpus_stats

DOCS = [
    "The patient was admitted for chest pain and shortness of breath.",
    "This Agreement shall be governed by the laws of the State of Delaware, and the Distributor shall "
    "indemnify the Company. Physical examination revealed hepatosplenomegaly.",
    "Ünïcödé 😀",
]


def _by_hand(model, tokenizer, texts, context_id, block_size=10**9) -> tuple[float, int]:
    """Summed NLL (nats) and token count, one document and one window at a time, from the model's own loss."""
    nll, tokens = 0.0, 0
    model.eval()
    with torch.no_grad():
        for text in texts:
            full = [context_id, *tokenizer(text, add_special_tokens=False)["input_ids"]]
            for start in range(0, len(full) - 1, block_size):
                window = torch.tensor([full[start : start + block_size + 1]])
                # The model's loss is the mean over the window's len - 1 shifted targets.
                nll += model(input_ids=window, labels=window).loss.item() * (window.shape[1] - 1)
                tokens += window.shape[1] - 1
    return nll, tokens


def test_two_documents_match_the_models_own_loss(tiny_tokenizers, tiny_lm):
    tokenizer = tiny_tokenizers["byte_bpe"]
    result = bits_per_byte(tiny_lm, tokenizer, DOCS[:2], batch_size=2)
    nll, tokens = _by_hand(tiny_lm, tokenizer, DOCS[:2], tokenizer.bos_token_id)
    n_bytes = sum(len(d.encode()) for d in DOCS[:2])
    assert result["tokens"] == tokens == sum(len(tokenizer(d, add_special_tokens=False)["input_ids"]) for d in DOCS[:2])
    assert result["nll_sum"] == pytest.approx(nll, rel=1e-5)
    assert result["bpb"] == pytest.approx(nll / math.log(2) / n_bytes, rel=1e-5)
    assert (result["bytes"], result["docs"]) == (n_bytes, 2)


def test_long_documents_are_scored_in_windows_covering_every_token_once(tiny_tokenizers, tiny_lm):
    tokenizer = tiny_tokenizers["byte_bpe"]
    windowed = bits_per_byte(tiny_lm, tokenizer, DOCS, block_size=7, batch_size=3)
    whole = bits_per_byte(tiny_lm, tokenizer, DOCS)
    nll, tokens = _by_hand(tiny_lm, tokenizer, DOCS, tokenizer.bos_token_id, block_size=7)
    assert windowed["tokens"] == whole["tokens"] == tokens
    assert windowed["nll_sum"] == pytest.approx(nll, rel=1e-5)
    assert windowed["nll_sum"] != pytest.approx(whole["nll_sum"], rel=1e-5)  # less context per token


def test_windows_share_one_token_so_each_is_a_target_once():
    assert windows([5, 6, 7, 8, 9], 0, 2) == [[0, 5, 6], [6, 7, 8], [8, 9]]
    assert windows([5, 6], 0, 2) == [[0, 5, 6]]
    assert windows([], 0, 2) == []


@pytest.mark.parametrize("batch_size", [1, 2, 5])
def test_result_does_not_depend_on_batch_size(tiny_tokenizers, tiny_lm, batch_size):
    tokenizer = tiny_tokenizers["byte_bpe"]
    reference = bits_per_byte(tiny_lm, tokenizer, DOCS, block_size=16, batch_size=1)
    result = bits_per_byte(tiny_lm, tokenizer, DOCS, block_size=16, batch_size=batch_size)
    assert result["tokens"] == reference["tokens"]
    assert result["nll_sum"] == pytest.approx(reference["nll_sum"], rel=1e-5)


def test_uniform_logits_give_log2_of_the_vocabulary_per_token(tiny_tokenizers, tiny_lm):
    tokenizer = tiny_tokenizers["byte_bpe"]
    with torch.no_grad():
        tiny_lm.get_output_embeddings().weight.zero_()  # every logit 0: a uniform next-token distribution
    result = bits_per_byte(tiny_lm, tokenizer, DOCS, batch_size=2)
    vocab = tiny_lm.config.vocab_size
    assert result["bpb"] == pytest.approx(math.log2(vocab) * result["tokens"] / result["bytes"], rel=1e-6)


def test_without_bos_the_eos_token_is_the_context(tiny_tokenizers):
    tokenizer = tiny_tokenizers["unigram"]
    assert tokenizer.bos_token_id is None
    model = tinymodels.make_causal_lm(len(tokenizer))
    nll, _ = _by_hand(model, tokenizer, DOCS, tokenizer.eos_token_id)
    assert bits_per_byte(model, tokenizer, DOCS)["nll_sum"] == pytest.approx(nll, rel=1e-5)


def test_the_models_training_mode_is_restored(tiny_tokenizers, tiny_lm):
    tiny_lm.train()
    bits_per_byte(tiny_lm, tiny_tokenizers["byte_bpe"], DOCS[:1])
    assert tiny_lm.training


def test_empty_documents_count_as_documents_but_score_nothing(tiny_tokenizers, tiny_lm):
    tokenizer = tiny_tokenizers["byte_bpe"]
    with_empty = bits_per_byte(tiny_lm, tokenizer, ["", DOCS[0], ""])
    alone = bits_per_byte(tiny_lm, tokenizer, [DOCS[0]])
    assert with_empty["docs"] == 3 and with_empty["tokens"] == alone["tokens"]
    assert with_empty["nll_sum"] == pytest.approx(alone["nll_sum"], rel=1e-6)


def test_bad_input_is_an_error_naming_the_fix(tiny_tokenizers, tiny_lm):
    with pytest.raises(VocabxError, match="neither a BOS nor an EOS token"):
        bits_per_byte(tinymodels.make_causal_lm(len(tiny_tokenizers["wordpiece"])), tiny_tokenizers["wordpiece"], DOCS)
    with pytest.raises(VocabxError, match=r"model's embedding matrix has 50 rows.*extended model"):
        bits_per_byte(tinymodels.make_causal_lm(50), tiny_tokenizers["byte_bpe"], DOCS)
    with pytest.raises(VocabxError, match="no text to score"):
        bits_per_byte(tiny_lm, tiny_tokenizers["byte_bpe"], ["", ""])
    with pytest.raises(VocabxError, match="block_size must be a positive int, got 0"):
        bits_per_byte(tiny_lm, tiny_tokenizers["byte_bpe"], DOCS, block_size=0)


def test_token_counts_are_the_corpus_stats(tiny_tokenizers):
    tokenizer = tiny_tokenizers["byte_bpe"]
    counts = token_counts(tokenizer, DOCS)
    assert counts == corpus_stats(DOCS, tokenizer).as_dict()
    assert counts["tokens"] == sum(len(tokenizer(d, add_special_tokens=False)["input_ids"]) for d in DOCS)
    assert counts["bytes"] == sum(len(d.encode()) for d in DOCS) and counts["docs"] == 3


ENGLISH = [
    "The city council met on Tuesday to discuss the new budget for public schools and road repairs.",
    "Photosynthesis is the process by which green plants use sunlight to make food from carbon dioxide and water.",
    "She walked to the station in the rain, bought a ticket, and waited for the evening train to London.",
    "The Roman Empire was one of the largest empires in history, stretching from Britain to Egypt.",
]


@pytest.mark.slow
def test_smollm2_bits_per_byte_on_plain_english_is_plausible(smollm2_tokenizer):
    from vocabx.models import load_model

    result = bits_per_byte(load_model("smollm2-135m"), smollm2_tokenizer, ENGLISH)
    assert math.isfinite(result["bpb"]) and 0.5 < result["bpb"] < 2.5, result
    assert result["tokens"] == token_counts(smollm2_tokenizer, ENGLISH)["tokens"]


def test_text_windows_cut_at_the_same_characters_within_the_block(family_tokenizer):
    from vocabx.metrics import text_windows

    texts = [DOCS[1] * 4, "short one", "x" * 300 + " and then words\n\nafter a break " * 6, DOCS[2] * 40, ""]
    pieces = text_windows(texts, family_tokenizer, 16)
    assert "".join(pieces) == "".join(texts)  # (byte for byte: every byte is scored once)
    assert "short one" in pieces and "" in pieces  # (a text that fits stays whole)
    lengths = [len(family_tokenizer(p, add_special_tokens=False)["input_ids"]) for p in pieces]
    # cut under the tokenization of the whole text: a piece alone may gain its word marker (sentencepiece)
    assert max(lengths) <= 16 + 1
    spaced = [p for p in pieces if p and p[0].isspace()]
    assert len(spaced) >= len(pieces) // 2  # (cut before the whitespace that starts a word)
    with pytest.raises(VocabxError, match="block_size must be a positive int, got 0"):
        text_windows(texts, family_tokenizer, 0)


def test_text_windows_give_both_tokenizers_the_same_text(tiny_tokenizers):
    from vocabx.metrics import text_windows

    tokenizer = tiny_tokenizers["byte_bpe"]
    text = " ".join(f"word{i} and more" for i in range(200))
    pieces = text_windows([text], tokenizer, 32)
    assert len(pieces) > 5 and all(p.startswith(" ") for p in pieces[1:])
    # a piece never starts inside a word, whatever tokenizer scores it next
    assert all(not p[-1].isspace() for p in pieces[:-1])

"""Tiny tokenizers of each major family and tiny random causal LMs, built in the test session.

Families, each trained here in well under a second on a small built-in text:

- ``byte_bpe``: byte-level BPE with the ``Ġ`` space marker (GPT-2, Llama-3, SmolLM2, Qwen2);
- ``sp_bpe``: SentencePiece-style BPE with the ``▁`` metaspace marker and byte fallback (Llama-2, Mistral);
- ``unigram``: Unigram with the metaspace pre-tokenizer (T5, XLM-R);
- ``wordpiece``: lower-casing WordPiece with ``##`` continuations and [CLS]/[SEP] (BERT).

They are real ``PreTrainedTokenizerFast`` objects: they save and load with ``AutoTokenizer``.
"""

from __future__ import annotations

import json
from typing import Any

FAMILIES = ("byte_bpe", "sp_bpe", "unigram", "wordpiece")

TRAINING_TEXT = [
    "The patient was admitted for chest pain and shortness of breath.",
    "Signs and symptoms of the disease include fever, fatigue and joint pain.",
    "This Agreement shall be governed by the laws of the State of Delaware.",
    "The Distributor shall indemnify and hold harmless the Company from any claims.",
    "An echocardiogram showed normal left ventricular function without effusion.",
    "Notwithstanding the foregoing, either party may terminate this Agreement upon notice.",
    "She has a history of hypertension, hyperlipidemia and type 2 diabetes mellitus.",
    "The weather was pleasant and the children played in the park after school.",
    "In accordance with Section 4, the Licensee shall pay all fees within thirty days.",
    "Physical examination revealed hepatosplenomegaly and cervical lymphadenopathy.",
    "We walked to the market, bought some bread and cheese, and went home.",
    "Confidential Information does not include information that is publicly available.",
] * 8


def _tokenizer_of(family: str) -> Any:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    if family == "byte_bpe":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=600,
            special_tokens=["<|endoftext|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(TRAINING_TEXT, trainer)
        return tok
    if family == "sp_bpe":
        return _sentencepiece_bpe()
    if family == "unigram":
        tok = Tokenizer(models.Unigram())
        tok.normalizer = normalizers.NFKC()
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(
            vocab_size=400, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>", show_progress=False
        )
        tok.train_from_iterator(TRAINING_TEXT, trainer)
        tok.post_processor = processors.TemplateProcessing(
            single="$A </s>", special_tokens=[("</s>", tok.token_to_id("</s>"))]
        )
        return tok
    if family == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(
            vocab_size=500, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], show_progress=False
        )
        tok.train_from_iterator(TRAINING_TEXT, trainer)
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
        )
        return tok
    raise ValueError(f"unknown tokenizer family {family!r}; expected one of {FAMILIES}")


def _sentencepiece_bpe() -> Any:
    """Llama-2 style: ``▁`` for spaces, a ``▁`` prepended to the text, and ``<0xNN>`` byte fallback.

    The trainer cannot add the 256 byte pieces as plain (non-special) vocabulary, so the trained vocab is
    shifted to make room for them, as in Llama-2's own vocabulary (ids 3..258).
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    # SentencePiece never merges across a space; training with a splitting Metaspace reproduces that.
    base = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    base.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=500, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False)
    base.train_from_iterator(TRAINING_TEXT, trainer)
    spec = json.loads(base.to_str())
    trained = spec["model"]["vocab"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for byte in range(256):
        vocab[f"<0x{byte:02X}>"] = len(vocab)
    for piece, _ in sorted(trained.items(), key=lambda kv: kv[1]):
        if piece not in vocab:
            vocab[piece] = len(vocab)
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in spec["model"]["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    # The layout of Llama-2's tokenizer.json: spaces become ▁ in the normalizer, no pre-tokenizer.
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ("<unk>", "<s>", "</s>")])
    return tok


_SPECIALS = {
    "byte_bpe": dict(bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>", pad_token="<|endoftext|>"),
    "sp_bpe": dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="</s>"),
    "unigram": dict(eos_token="</s>", unk_token="<unk>", pad_token="<pad>"),
    "wordpiece": dict(unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]"),
}


def make_tokenizer(family: str, model_max_length: int = 256) -> Any:
    """A ``PreTrainedTokenizerFast`` of the given family, trained on :data:`TRAINING_TEXT`."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=_tokenizer_of(family), model_max_length=model_max_length, **_SPECIALS[family]
    )


def make_causal_lm(vocab_size: int, *, tied: bool = True, seed: int = 0, hidden: int = 32, layers: int = 2) -> Any:
    """A randomly initialised Llama causal LM small enough to train on a CPU in milliseconds."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=tied,
    )
    return LlamaForCausalLM(config)

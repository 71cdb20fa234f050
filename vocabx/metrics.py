"""Bits per UTF-8 byte of a causal LM on a set of texts, and token counts: the figures `evaluate` compares.

Bits per byte is the summed negative log-likelihood of every token of the texts, in bits, divided by the
texts' UTF-8 bytes. Per-token loss is not comparable across vocabularies (an extended tokenizer makes
fewer, harder tokens); per-byte loss is, because both tokenizers encode the same bytes.

How the texts are scored:

- each document is encoded without special tokens, and one context token (the tokenizer's BOS, else its
  EOS) is put in front, so the document's first real token is scored too and the context token is not;
- a document longer than ``block_size`` tokens is cut into consecutive windows of ``block_size`` inputs,
  each predicting the next ``block_size`` tokens, so every token is scored exactly once. A token after a
  window boundary sees only its own window as context, which costs a little against a sliding window
  and keeps the cost at one forward pass per token;
- to compare two tokenizers, cut the texts first with :func:`text_windows` under the longer (base)
  tokenization and score the same pieces with both: cut at the same token count instead, the shorter
  tokenization would fit more text in each window, and each of its tokens would see more bytes of context
  than the base's, a gain that comes from the window and not from the model;
- windows of all documents are sorted by length and batched, padded on the right; padding is masked out
  of attention and never scored.

What it leaves out: generation-based metrics, throughput and adoption, which `evaluate` measures.
"""

from __future__ import annotations

import bisect
import math
from typing import Any, Iterable

from vocabx.errors import VocabxError
from vocabx.stats import backend_of, corpus_stats


def token_counts(tokenizer: Any, texts: Iterable[str]) -> dict[str, Any]:
    """Documents, bytes, pre-tokenizer words and tokens (without special tokens) of ``texts``.

    >>> token_counts(load_tokenizer("smollm2-135m"), ["Hello world"])   # doctest: +SKIP
    {'docs': 1, 'bytes': 11, 'words': 2, 'tokens': 2, 'tokens_per_word': 1.0, 'bytes_per_token': 5.5}
    """
    return corpus_stats(texts, tokenizer).as_dict()


def context_token_id(tokenizer: Any) -> int:
    """The token put before each document: BOS, else EOS (a document boundary the model has seen)."""
    for name in ("bos_token_id", "eos_token_id"):
        value = getattr(tokenizer, name, None)
        if value is not None:
            return int(value)
    raise VocabxError(
        "the tokenizer has neither a BOS nor an EOS token, so the first token of a document has no context "
        "to be scored from; set tokenizer.bos_token (or eos_token) to the model's document separator"
    )


def windows(ids: list[int], context_id: int, block_size: int) -> list[list[int]]:
    """Cut ``[context_id] + ids`` into windows of at most ``block_size`` inputs plus the token they predict.

    Consecutive windows share one token: the last target of one is the first input of the next, so each
    token of ``ids`` is a target exactly once. ``[5, 6, 7, 8, 9]``, context 0, block 2 ->
    ``[[0, 5, 6], [6, 7, 8], [8, 9]]`` (inputs ``[0, 5]`` predict ``[5, 6]``, and so on).
    """
    full = [context_id, *ids]
    return [full[start : start + block_size + 1] for start in range(0, len(ids), block_size)]


def text_windows(texts: Iterable[str], tokenizer: Any, block_size: int, *, encodings: list[Any] | None = None) -> list[str]:
    """``texts`` cut into pieces of at most ``block_size`` tokens of ``tokenizer``, at the same characters
    for every tokenizer that scores them.

    A text that fits stays whole. A longer one is cut before the whitespace that starts a word, at the
    last such place that keeps the piece within ``block_size`` tokens (at a token boundary when the block
    holds no whitespace), so the pieces joined give the text back, byte for byte. Cut under the base
    tokenizer, an extended one (never longer) fits each piece too, and both models score the same bytes
    with the same context: ``"one two three four"``, 2 tokens a word, block 4 ->
    ``["one two", " three four"]``. ``encodings``: the texts' encodings under ``tokenizer`` (without
    special tokens), where the caller has them already.
    """
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise VocabxError(f"block_size must be a positive int, got {block_size!r}")
    texts = list(texts)
    if encodings is None:
        encodings = backend_of(tokenizer).encode_batch(texts, add_special_tokens=False) if texts else []
    pieces: list[str] = []
    for text, enc in zip(texts, encodings):
        starts = [start for start, _ in enc.offsets]
        if len(starts) <= block_size:
            pieces.append(text)
            continue
        begin, first = 0, 0  # (the piece's first character, and its first token)
        while len(starts) - first > block_size:
            limit = starts[first + block_size]  # (where the first token past the block starts)
            cut = _word_start_before(text, begin, limit)
            if cut <= begin:
                # (no space in the block: cut at the token boundary; tokens of one character share its
                # offsets, so move on to the first token that starts after the piece's beginning)
                k = first + block_size
                while k < len(starts) and starts[k] <= begin:
                    k += 1
                if k == len(starts):
                    break
                cut = starts[k]
            pieces.append(text[begin:cut])
            begin = cut
            first = bisect.bisect_left(starts, cut, lo=first)
        pieces.append(text[begin:])
    return pieces


def _word_start_before(text: str, begin: int, limit: int) -> int:
    """The last index in ``(begin, limit]`` where whitespace follows a non-space (``begin`` if none)."""
    for c in range(min(limit, len(text) - 1), begin, -1):
        if text[c].isspace() and not text[c - 1].isspace():
            return c
    return begin


def bits_per_byte(
    model: Any,
    tokenizer: Any,
    texts: Iterable[str],
    *,
    block_size: int = 1024,
    batch_size: int = 8,
    device: Any = None,
) -> dict[str, Any]:
    """Score ``texts`` with ``model``: bits per UTF-8 byte, summed NLL (nats), tokens, bytes, documents.

    ``device`` is where to run (the model is moved there); None runs where the model is. The model is put
    in eval mode for the call and its training mode restored afterwards. The first 200 Wikipedia
    paragraphs of ../shared/corpora (figures rounded):

    >>> texts = list(itertools.islice(read_corpus("general/wikipedia-xquad/test.jsonl"), 200))  # doctest: +SKIP
    >>> bits_per_byte(load_model("smollm2-135m"), load_tokenizer("smollm2-135m"), texts)     # doctest: +SKIP
    {'bpb': 1.0226, 'nll_sum': 112073.7, 'tokens': 34301, 'bytes': 158116, 'docs': 200}
    """
    import torch

    problems = [
        f"{flag} must be a positive int, got {value!r}"
        for flag, value in (("block_size", block_size), ("batch_size", batch_size))
        if isinstance(value, bool) or not isinstance(value, int) or value < 1
    ]
    if problems:
        raise VocabxError("; ".join(problems))
    texts = list(texts)
    context_id = context_token_id(tokenizer)
    encodings = backend_of(tokenizer).encode_batch(texts, add_special_tokens=False) if texts else []
    cut = [w for enc in encodings for w in windows(enc.ids, context_id, block_size)]
    n_bytes = sum(len(text.encode("utf-8")) for text in texts)
    if not n_bytes:
        raise VocabxError(f"no text to score: the {len(texts)} documents given are all empty")
    rows = model.get_input_embeddings().weight.shape[0]
    top = max((max(w) for w in cut), default=context_id)
    if top >= rows:
        raise VocabxError(
            f"the tokenizer produced id {top} but the model's embedding matrix has {rows} rows; "
            "pass the model that belongs to this tokenizer (an extended tokenizer needs the extended model)"
        )
    if device is not None:
        model.to(device)
    device = next(model.parameters()).device
    # Longest first: batches hold windows of similar length (little padding), and an out-of-memory
    # error shows on the first batch rather than the last.
    order = sorted(range(len(cut)), key=lambda i: -len(cut[i]))
    nll = torch.zeros((), dtype=torch.float64)
    n_tokens = 0
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(order), batch_size):
                batch = [cut[i] for i in order[start : start + batch_size]]
                width = max(len(w) for w in batch) - 1
                # Padding reuses the context id (pad_token_id may be unset): a valid id, masked, never a target.
                inputs = torch.full((len(batch), width), context_id, dtype=torch.long)
                targets = torch.full((len(batch), width), -100, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, w in enumerate(batch):
                    inputs[row, : len(w) - 1] = torch.tensor(w[:-1])
                    targets[row, : len(w) - 1] = torch.tensor(w[1:])
                    mask[row, : len(w) - 1] = 1
                logits = model(input_ids=inputs.to(device), attention_mask=mask.to(device)).logits
                loss = torch.nn.functional.cross_entropy(
                    logits.float().flatten(0, 1), targets.to(device).flatten(), ignore_index=-100, reduction="sum"
                )
                nll += loss.double().cpu()
                n_tokens += int(mask.sum())
    finally:
        model.train(was_training)
    nll_sum = nll.item()
    return {
        "bpb": nll_sum / math.log(2) / n_bytes,
        "nll_sum": nll_sum,
        "tokens": n_tokens,
        "bytes": n_bytes,
        "docs": len(texts),
    }

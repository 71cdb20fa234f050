"""Corpus statistics under a tokenizer: documents, bytes, words, tokens and their ratios.

Words are the model's own pre-tokenizer words (its normalizer and pre-tokenizer, as the tokenizer applies
them); tokens are counted without special tokens. Both come from one batched pass of the tokenizers
library's Rust encoder: a document's word count is read off the last token's word index, so counting
words costs nothing beyond the encode itself. SentencePiece-style tokenizers (Llama-2, Mistral) have no
splitting pre-tokenizer; for them a word is a whitespace-separated run, which is what their ``▁``
marker stands for.

What it leaves out: per-word fragmentation tables, which the analyzer builds.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Iterator, Sequence, TypeVar

from vocabx.errors import VocabxError

T = TypeVar("T")


@dataclass
class CorpusStats:
    """Counts for one corpus under one tokenizer."""

    docs: int = 0
    bytes: int = 0
    words: int = 0
    tokens: int = 0

    @property
    def tokens_per_word(self) -> float:
        return self.tokens / self.words if self.words else 0.0

    @property
    def bytes_per_token(self) -> float:
        return self.bytes / self.tokens if self.tokens else 0.0

    def add(self, texts: Sequence[str], encodings: Sequence[Any], pre_tokenizer_words: bool) -> None:
        """Count ``texts`` from their encodings (without special tokens); ``pre_tokenizer_words``:
        :func:`splits_words` of the tokenizer (else words are whitespace-separated)."""
        self.docs += len(texts)
        self.bytes += sum(len(text.encode("utf-8")) for text in texts)
        for text, encoding in zip(texts, encodings):
            n = len(encoding.ids)
            self.tokens += n
            if not pre_tokenizer_words:
                self.words += len(text.split())
            elif n:
                # Word indices count the pre-tokenizer's splits from 0; every split yields a token.
                self.words += encoding.word_ids[-1] + 1

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = asdict(self)
        out["tokens_per_word"] = round(self.tokens_per_word, 6)
        out["bytes_per_token"] = round(self.bytes_per_token, 6)
        return out


def backend_of(tokenizer: Any) -> Any:
    """The ``tokenizers.Tokenizer`` behind a transformers fast tokenizer (or the object itself)."""
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    if not hasattr(backend, "encode_batch"):
        raise TypeError(f"expected a fast tokenizer or a tokenizers.Tokenizer, got {type(tokenizer).__name__}")
    if backend.truncation is not None or backend.padding is not None:
        from tokenizers import Tokenizer

        backend = Tokenizer.from_str(backend.to_str())
        backend.no_truncation()
        backend.no_padding()
    return backend


def splits_words(backend: Any) -> bool:
    """Whether a tokenizer's pre-tokenizer splits text into words (False for Llama-2-style layouts)."""
    pre = backend.pre_tokenizer
    return pre is not None and len(pre.pre_tokenize_str("a b")) >= 2


def corpus_stats(
    texts: Iterable[str], tokenizer: Any, *, batch_size: int = 1000, progress: Any = None
) -> CorpusStats:
    """Count documents, UTF-8 bytes, pre-tokenizer words and tokens (no special tokens).

    ``progress``: a callable taking the number of bytes just processed (a progress bar's ``update``),
    True for a bar of its own, or None.

    >>> corpus_stats(["Hello world", "hepatosplenomegaly"], load_tokenizer("smollm2-135m"))  # doctest: +SKIP
    CorpusStats(docs=2, bytes=29, words=3, tokens=9)
    """
    from vocabx.corpus import byte_progress, refuse_one_text

    refuse_one_text(texts)
    with byte_progress(progress, "stats") as update:
        return _corpus_stats(texts, tokenizer, batch_size, update)


def _corpus_stats(texts: Iterable[str], tokenizer: Any, batch_size: int, progress: Any) -> CorpusStats:
    backend = backend_of(tokenizer)
    pre_tokenizer_words = splits_words(backend)
    stats = CorpusStats()
    for batch in prefetch(batched(texts, batch_size)):
        try:
            encodings = backend.encode_batch(batch, add_special_tokens=False)
        except TypeError as exc:  # (the Rust encoder names neither the document nor the problem)
            raise not_text_error(batch, stats.docs) or exc
        before = stats.bytes
        stats.add(batch, encodings, pre_tokenizer_words)
        if progress is not None:
            progress(stats.bytes - before)
    return stats


def not_text_error(texts: Sequence[Any], first_index: int | None = 0) -> VocabxError | None:
    """The error naming the first of ``texts`` that a tokenizer cannot take, or None if all are text.

    ["fine", None] -> VocabxError("document 1 is NoneType, not text; ...")
    """
    for i, text in enumerate(texts):
        where = f"document {first_index + i}" if first_index is not None else f"a document ({str(text)[:40]!r})"
        if not isinstance(text, str):
            return VocabxError(f"{where} is {type(text).__name__}, not text; pass str documents (drop or convert the others)")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            return VocabxError(
                f"{where} holds a lone surrogate U+{ord(text[exc.start]):04X} at character {exc.start}, which is not "
                "valid Unicode and no tokenizer takes it; decode its source with errors='replace' (vocabx.read_corpus "
                "replaces them with U+FFFD)"
            )
    return None


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """[1, 2, 3, 4, 5], 2 -> [1, 2], [3, 4], [5]"""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


_DONE = object()


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Iterate ``items`` in a background thread, ``depth`` ahead of the consumer.

    Reading and JSON parsing (Python, holding the GIL) then overlap with encoding (Rust, which releases
    it). An exception raised by ``items`` is re-raised in the consumer, at the point it happened.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as exc:  # handed over to the consumer, which re-raises it
            q.put(exc)

    thread = threading.Thread(target=produce, name="vocabx-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=1.0)

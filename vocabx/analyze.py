"""Find the words, subwords and phrases of a domain corpus worth adding to a tokenizer, and what they save.

The analysis works in the model's own token space: texts go through the tokenizer's normalizer and
pre-tokenizer, so a word-initial candidate carries the model's space marker (``Ġ`` or ``▁``) and a
word-medial one does not. It runs in three steps:

1. **Count** (:func:`count_corpus`): one streaming pass builds a table of unique pre-tokens ("words") and of
   runs of 2..``max_phrase_words`` consecutive letter-words ("phrases"), each with its count and document
   count (and runs up to twice that long, for the co-occurrence of overlapping phrases). Rare phrases are pruned as it goes, so memory is bounded by what is kept. Counts from shards
   merge (:meth:`Counts.merge`).
2. **Select** (:func:`select_candidates`): a lazy greedy over three kinds of candidate, each step taking
   the candidate with the largest *marginal* saving given those above it:

   - ``word``: a whole pre-token as one vocabulary entry; saves ``count x (pieces - 1)``;
   - ``subword``: a BPE merge of two adjacent pieces, appended after the base merges, as continued BPE
     training on the word table; saves one token per occurrence of the pair;
   - ``phrase``: a run of words as one token; saves ``count x (pieces of its words - 1)`` and consumes
     the occurrences of its words, which lowers their own value.

   Savings are computed from the tables, not by re-encoding the corpus. For words and subwords they are
   exact: they reproduce what the extended tokenizer does (whole-word lookup first, then base merges,
   then the new merges in rank order). Phrase overlaps are accounted for through the n-gram counts
   (a phrase inside or overlapping a chosen one loses the shared occurrences), which is exact for two
   overlapping phrases; chains of three or more overlapping phrases are approximated.
3. **Project** (:func:`project`): the chosen candidates are applied in rank order to the counts of any
   other text, such as held-out documents, giving the honest savings curve.

What it leaves out: writing the report (``vocabx.report``) and building the tokenizer (``vocabx.extend``).
Subwords are BPE merges, so they are offered for BPE tokenizers only; phrases need a tokenizer whose
tokens carry the space (byte-level BPE).
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import gzip
import hashlib
import heapq
import itertools
import json
import math
import operator
import os
import re
import sys
import time
import unicodedata
from collections import Counter, defaultdict, deque
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, NamedTuple

from vocabx.corpus import byte_progress
from vocabx.errors import VocabxError

KINDS = ("word", "subword", "phrase")
COUNTS_SCHEMA = "vocabx.counts/1"
MIN_DOCS = 10
MIN_WORDS = 1000

# ---------------------------------------------------------------------------------------------------
# The tokenizer's view of text


@dataclass
class TokenSpace:
    """What the analysis needs to know about a tokenizer: how it splits text and how it cuts a word."""

    backend: Any
    family: str
    marker: str  # the space marker inside tokens: "Ġ", "▁", or "" when spaces are not part of tokens
    vocab: dict[str, int]
    unk_token: str | None = None
    _pieces: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)
    # tokenizer.json without the vocabulary and merges: model options, pre-tokenizer, decoder
    spec: dict | None = field(default=None, repr=False)
    _joined_words: set[tuple[str, ...]] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, tokenizer: Any) -> "TokenSpace":
        from vocabx.stats import backend_of

        backend = backend_of(tokenizer)
        spec = _light_spec(backend)
        family = tokenizer_family(spec)
        marker = {"byte_bpe": "Ġ", "sp_bpe": "▁", "unigram": "▁"}.get(family, "")
        unk = spec.get("model", {}).get("unk_token")
        return cls(backend=backend, family=family, marker=marker, vocab=backend.get_vocab(), unk_token=unk, spec=spec)

    def options(self) -> dict:
        """The tokenizer.json parts in :attr:`spec` (parsed from the backend if the space was built by hand)."""
        if self.spec is None:
            self.spec = _light_spec(self.backend)
        return self.spec

    def pre_tokens(self, text: str) -> list[tuple[str, str]]:
        """Text -> [(pre-token in token space, its surface text)], as the tokenizer splits it.

        'This Agreement' -> [('This', 'This'), ('ĠAgreement', ' Agreement')] for byte-level BPE.
        """
        backend = self.backend
        if backend.normalizer is not None:
            text = backend.normalizer.normalize_str(text)
        if self.family == "sp_bpe" and (backend.pre_tokenizer is None or not _splits(backend.pre_tokenizer)):
            # SentencePiece-style: spaces become ▁ in the normalizer and nothing splits words; a word is
            # a run starting at a ▁.
            return _split_metaspace(text, self.marker)
        if backend.pre_tokenizer is None:
            return [(text, text)]
        return [(piece, text[start:end]) for piece, (start, end) in backend.pre_tokenizer.pre_tokenize_str(text)]

    def has_fallback(self, pieces: tuple[str, ...]) -> bool:
        """Whether a word was cut into byte-fallback ('<0x41>') or unknown pieces: not a vocabulary word."""
        unk = self.unk_token
        return any(p == unk or (len(p) == 6 and p.startswith("<0x") and p.endswith(">")) for p in pieces)

    def joined_words(self) -> set[tuple[str, ...]]:
        """Vocabulary entries with the space marker after their start, cut before each marker: the
        only entries a phrase's words, joined, can equal (its words after the first each begin with the
        marker and hold no other), as those words. ('ĠofĠthe' -> ('Ġof', 'Ġthe'))"""
        if self._joined_words is None:
            marker = self.marker
            self._joined_words = {_cut_before(t, marker) for t in self.vocab if marker in t[1:]} if marker else set()
        return self._joined_words

    def pieces(self, pre_token: str) -> tuple[str, ...]:
        """How the base model cuts one pre-token: 'Ġhepatosplenomegaly' -> ('Ġhepat', 'os', ...)."""
        cached = self._pieces.get(pre_token)
        if cached is None:
            cached = tuple(t.value for t in self.backend.model.tokenize(pre_token))
            self._pieces[pre_token] = cached
        return cached


def _cut_before(token: str, marker: str) -> tuple[str, ...]:
    """A token cut before each space marker after its start: 'ĠofĠthe' -> ('Ġof', 'Ġthe')."""
    parts, start = [], 0
    i = token.find(marker, 1)
    while i >= 0:
        parts.append(token[start:i])
        start = i
        i = token.find(marker, i + 1)
    parts.append(token[start:])
    return tuple(parts)


def _light_spec(backend: Any) -> dict:
    """A tokenizer.json dict without what is slow to parse (the vocabulary and the merges).

    Read from the backend's model attributes and its pre-tokenizer's and decoder's own JSON; the whole
    file is parsed only when that fails.
    """
    try:
        model = backend.model
        options: dict[str, Any] = {"type": type(model).__name__}
        for key in ("unk_token", "continuing_subword_prefix", "end_of_word_suffix", "dropout", "byte_fallback"):
            if hasattr(model, key):
                options[key] = getattr(model, key)
        parts = {
            name: json.loads(part.__getstate__()) if part is not None else None
            for name, part in (("pre_tokenizer", backend.pre_tokenizer), ("decoder", backend.decoder))
        }
        if options["type"] not in ("BPE", "Unigram", "WordPiece", "WordLevel"):
            raise TypeError(options["type"])
        return {"model": options, **parts}
    except Exception:  # noqa: BLE001 - anything unusual: read the whole file
        spec = json.loads(backend.to_str())
        model = {k: v for k, v in spec.get("model", {}).items() if k not in ("vocab", "merges")}
        return {"model": model, "pre_tokenizer": spec.get("pre_tokenizer"), "decoder": spec.get("decoder")}


def tokenizer_family(spec: dict) -> str:
    """A tokenizer.json dict -> 'byte_bpe', 'sp_bpe', 'unigram', 'wordpiece' (or the model type)."""
    model = spec.get("model", {}).get("type")
    if model == "BPE":
        text = json.dumps(spec.get("pre_tokenizer")) + json.dumps(spec.get("decoder"))
        return "byte_bpe" if "ByteLevel" in text else "sp_bpe"
    return {"Unigram": "unigram", "WordPiece": "wordpiece"}.get(model, str(model).lower())


def _splits(pre_tokenizer: Any) -> bool:
    return len(pre_tokenizer.pre_tokenize_str("a b")) >= 2


def _split_metaspace(text: str, marker: str) -> list[tuple[str, str]]:
    """'▁the▁patient' -> [('▁the', ' the'), ('▁patient', ' patient')]"""
    out, start = [], 0
    for i in range(1, len(text) + 1):
        if i == len(text) or text[i] == marker:
            piece = text[start:i]
            if piece:
                out.append((piece, piece.replace(marker, " ")))
            start = i
    return out


def is_letter_word(surface: str) -> bool:
    """' Agreement' -> True, 'This' -> True, ' (' -> False, ' 2020' -> False, '  the' -> False"""
    word = surface[1:] if surface.startswith(" ") else surface
    return bool(word) and word.isalpha()


def _allowed(surface: str, allow_digits: bool) -> bool:
    """No digits (unless allowed), no control characters, no whitespace but one leading space marker."""
    body = surface[1:] if surface.startswith(" ") else surface
    if not body or not any(ch.isalpha() for ch in body):
        return False
    for ch in body:
        if ch.isspace() or unicodedata.category(ch)[0] == "C" or (ch.isdigit() and not allow_digits):
            return False
        if ch == "\ufffd":
            return False
    return True


def _phrase_word_ok(surface: str, allow_digits: bool) -> tuple[bool, bool]:
    """Whether a word may start a phrase, and whether it may follow another word in one.

    Every word of a phrase passes :func:`_allowed`, and inside a phrase words are joined by exactly one
    space each, so every word after the first starts with one: ``" Agreement"`` -> (True, True),
    ``"This"`` -> (True, False), ``" 2024"`` -> (False, False) unless digits are allowed.
    """
    ok = _allowed(surface, allow_digits)
    return ok, ok and surface.startswith(" ")


# ---------------------------------------------------------------------------------------------------
# Step 1: counting


@dataclass
class Counts:
    """Unique words and phrases of a corpus with counts and document counts. Mergeable across shards."""

    docs: int = 0
    bytes: int = 0
    words: Counter = field(default_factory=Counter)
    word_docs: Counter = field(default_factory=Counter)
    phrases: Counter = field(default_factory=Counter)
    phrase_docs: Counter = field(default_factory=Counter)
    surfaces: dict[str, str] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)
    pruned_below: int = 0
    # maximal runs of letter-words (2+), with whether a phrase may end at the run's end: their count.
    # Only held-out counts keep them, for the exact projection of phrases.
    runs: Counter | None = None
    # The counter's own n-gram table behind ``phrases`` (:class:`_PhraseTable`), which lets the
    # selection seed phrase candidates with numpy; not a field: not saved, and dropped by merge.
    phrase_table = None

    @property
    def n_words(self) -> int:
        return sum(self.words.values())

    def merge(self, other: "Counts") -> "Counts":
        """Add another shard's counts into this one (in place) and return it."""
        self.phrase_table = None
        self.docs += other.docs
        self.bytes += other.bytes
        self.words.update(other.words)
        self.word_docs.update(other.word_docs)
        self.phrases.update(other.phrases)
        self.phrase_docs.update(other.phrase_docs)
        for key, value in other.surfaces.items():
            self.surfaces.setdefault(key, value)
        room = _EXAMPLE_DOCS - len(self.examples)
        if room > 0:
            self.examples.extend(other.examples[:room])
        self.pruned_below = max(self.pruned_below, other.pruned_below)
        if other.runs is not None:
            self.runs = (self.runs or Counter()) + other.runs
        return self

    def save(self, path: str | Path, *, meta: dict | None = None) -> None:
        """Write a gzipped JSON file (``*.counts.json.gz``) that :meth:`load` and ``merge-counts`` read."""
        data = {
            "schema": COUNTS_SCHEMA,
            "meta": meta or {},
            "docs": self.docs,
            "bytes": self.bytes,
            "pruned_below": self.pruned_below,
            "words": self.words,
            "word_docs": self.word_docs,
            "phrases": {"\t".join(k): v for k, v in self.phrases.items()},
            "phrase_docs": {"\t".join(k): v for k, v in self.phrase_docs.items()},
            "surfaces": self.surfaces,
            "examples": self.examples,
            "runs": [[list(words), end_ok, c] for (words, end_ok), c in self.runs.items()] if self.runs is not None else None,
        }
        tmp = Path(f"{path}.tmp")
        with gzip.open(tmp, "wt", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | Path) -> tuple["Counts", dict]:
        try:
            with gzip.open(path, "rt", encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, json.JSONDecodeError) as exc:
            raise VocabxError(f"cannot read counts file {str(path)!r}: {exc}") from exc
        if data.get("schema") != COUNTS_SCHEMA:
            raise VocabxError(f"{path}: schema {data.get('schema')!r}, expected {COUNTS_SCHEMA!r}; write it with vocabx analyze --shard")
        counts = cls(
            docs=data["docs"],
            bytes=data["bytes"],
            words=Counter(data["words"]),
            word_docs=Counter(data["word_docs"]),
            phrases=Counter({tuple(k.split("\t")): v for k, v in data["phrases"].items()}),
            phrase_docs=Counter({tuple(k.split("\t")): v for k, v in data["phrase_docs"].items()}),
            surfaces=data["surfaces"],
            examples=data["examples"],
            pruned_below=data.get("pruned_below", 0),
            runs=Counter({(tuple(w), bool(e)): c for w, e, c in data["runs"]}) if data.get("runs") is not None else None,
        )
        return counts, data.get("meta", {})


_EXAMPLE_DOCS = 400
_EXAMPLE_CHARS = 4000


def count_corpus(
    texts: Iterable[str],
    space: TokenSpace,
    *,
    max_phrase_words: int = 4,
    phrases: bool = True,
    max_phrases: int = 2_000_000,
    batch_bytes: int = 8_000_000,
    runs: bool = False,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> Counts:
    """Count the unique pre-tokens and word runs of a corpus in one streaming pass.

    Words are the tokenizer's pre-tokens. For byte-level BPE with GPT-2's pre-tokenizer (SmolLM2,
    GPT-2, ...) they are split in Python, with the pre-tokenizer's own regex on ASCII text and the
    tokenizer's pre-tokenizer around other characters, and each distinct word is cut into tokens once;
    other tokenizers encode the texts in batches (parallel Rust) and words are read off the encodings.
    Words and word n-grams are then counted with numpy on 64-bit hashes of their token ids, and only new
    unique words are turned back into strings. ``max_phrases`` bounds the n-gram table: when it is
    exceeded, the rarest n-grams are dropped (the threshold rises each time), so a long tail of one-off
    word pairs cannot exhaust memory. ``runs`` also keeps every maximal run of letter-words, which
    :func:`project` needs to project phrases exactly (used for held-out text, which is small).
    ``workers``: cores to use (default: the cores this process may run on); with two or more, a forked
    worker splits the next batch into words while this process counts the current one, grouping each
    n-gram length in a thread of its own.

    >>> c = count_corpus(["the cat sat", "the cat ran"], space)          # doctest: +SKIP
    >>> c.words["Ġcat"], c.phrases[("the", "Ġcat")]                        # doctest: +SKIP
    (2, 2)
    """
    workers = _cores() if workers is None else workers
    counter = _HashCounter(space, max_phrase_words, phrases and space.marker == "Ġ", max_phrases, runs)
    # A forked worker splits the batches (below) and takes one core; the grouping threads share the
    # others. With two cores that leaves one: grouping inline, in this thread, is as fast, and keeps
    # the grouping's arrays in this thread's heap, where they are reused, not in thread arenas that
    # return them to the kernel and fault them in again (a sixth of the minor faults on MedQuAD).
    threads = workers - 1 if counter.python_words and _splits_ahead(workers) else workers
    with _no_hugepage_advice(), _gc_paused(), _thread_map(threads) as counter.map:
        batches = _batches_by_bytes(texts, batch_bytes)
        if counter.python_words:
            stream = _split_ahead(batches, counter.splitter(), workers)
        else:
            stream = ((batch, None) for batch in batches)
        for batch, split in stream:
            counter.add(batch, split)
            if progress is not None:
                progress(sum(len(t.encode("utf-8")) for t in batch))
        return counter.result()


def _inline_map(fn: Callable[..., Any], items: Iterable[tuple]) -> Iterator[Any]:
    return (fn(*args) for args in items)


@contextlib.contextmanager
def _thread_map(workers: int) -> Iterator[Callable[[Callable[..., Any], Iterable[tuple]], Iterator[Any]]]:
    """A lazy ``map(fn, items)`` (each item a tuple of arguments) over ``workers`` threads, results in
    order, or inline with fewer than two. For numpy work that releases the GIL, such as sorting: each
    n-gram length is grouped on its own core. At most ``workers`` calls run ahead of the consumer, so
    the items (large arrays) are made only as they are needed and freed as soon as they are used."""
    if workers < 2:
        yield _inline_map
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vocabx-count") as pool:

        def mapped(fn: Callable[..., Any], items: Iterable[tuple]) -> Iterator[Any]:
            ahead: deque = deque()
            for args in items:
                ahead.append(pool.submit(fn, *args))
                if len(ahead) > workers:
                    yield ahead.popleft().result()
            while ahead:
                yield ahead.popleft().result()

        yield mapped


def _can_fork() -> bool:
    """Whether worker processes may be forked here: on Linux (macOS's system libraries are not
    fork-safe, which is why Python spawns there), and not from a daemonic process (such as a
    multiprocessing pool's worker), which may not have children."""
    import multiprocessing

    return (
        sys.platform.startswith("linux")
        and "fork" in multiprocessing.get_all_start_methods()
        and not multiprocessing.current_process().daemon
    )


def _splits_ahead(workers: int) -> bool:
    """Whether :func:`_split_ahead` gives a corpus of two batches or more to a forked splitting worker."""
    return workers >= 2 and _can_fork()


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _split_ahead(batches: Iterator[list[str]], splitter: "_Splitter", workers: int) -> Iterator[tuple[list[str], "_Split"]]:
    """(batch, its pre-tokens) in order; with two or more cores, a worker process splits the next batch
    while the caller counts this one (the first batch is split half in each process).

    The worker is forked (no start-up imports) and only runs the splitter; the batches and the results
    are the same as splitting inline, so the counts are too. Off Linux (or with one core, one batch, or
    in a daemonic process) everything is split inline.
    """
    first = next(batches, None)
    if first is None:
        return
    second = next(batches, None)
    if second is None or not _splits_ahead(workers):
        yield first, splitter(first)
        for batch in itertools.chain([second] if second is not None else [], batches):
            yield batch, splitter(batch)
        return
    with _splitting_worker(splitter) as pool:
        # The first batch has nothing to overlap with: each process splits half of it.
        half = len(first) // 2
        tail = pool.apply_async(_split_in_worker, (first[half:],))
        pending = pool.apply_async(_split_in_worker, (second,))
        head = splitter(first[:half])
        yield first, _joined(head, tail.get(), half)
        current = second
        for batch in batches:
            split = pending.get()
            pending = pool.apply_async(_split_in_worker, (batch,))
            yield current, split
            current = batch
        yield current, pending.get()


def _joined(a: "_Split", b: "_Split", docs_in_a: int) -> "_Split":
    """The split of two consecutive document lists as one: what splitting their concatenation gives
    (``new_ids`` aside: a surface new to either splitter keeps its ids)."""
    import numpy as np

    local = list(a.local)
    index = {w: i for i, w in enumerate(local)}
    remap = np.empty(len(b.local), dtype=np.int64)
    for j, w in enumerate(b.local):
        i = index.get(w)
        if i is None:
            i = index[w] = len(local)
            local.append(w)
        remap[j] = i
    where = np.concatenate([a.where, remap[b.where]]).astype(np.int32, copy=False)
    keys = np.empty(len(local), dtype=np.uint64)
    keys[: len(a.local)] = a.keys
    keys[remap] = b.keys
    count = np.zeros(len(local), dtype=np.int64)
    docs = np.zeros(len(local), dtype=np.int64)
    count[: len(a.local)], docs[: len(a.local)] = a.count, a.docs
    count[remap] += b.count  # (remap is one-to-one: b's surfaces are distinct)
    docs[remap] += b.docs  # (the halves' documents are distinct)
    new_ids = dict(a.new_ids)
    for j, ids in b.new_ids.items():
        new_ids.setdefault(int(remap[j]), ids)
    return _Split(local, where, a.lengths + b.lengths, a.encoded + [d + docs_in_a for d in b.encoded], keys, count, docs, new_ids)


_WORKER_SPLITTER: "_Splitter | None" = None


def _set_worker_splitter(splitter: "_Splitter") -> None:
    global _WORKER_SPLITTER
    _WORKER_SPLITTER = splitter


def _split_in_worker(batch: list[str]) -> "_Split":
    assert _WORKER_SPLITTER is not None
    return _WORKER_SPLITTER(batch)


def _splitting_worker(splitter: "_Splitter") -> Any:
    """One forked worker process holding ``splitter`` (handed over by the fork, not pickled)."""
    return _forked_worker(_set_worker_splitter, splitter)


@contextlib.contextmanager
def _forked_worker(initializer: Callable[[Any], None], state: Any) -> Iterator[Any]:
    """A pool of one forked worker process, set up by ``initializer(state)`` (the state is handed over
    by the fork, not pickled)."""
    import multiprocessing

    with _quiet_fork():
        pool = multiprocessing.get_context("fork").Pool(1, initializer=initializer, initargs=(state,))
    try:
        yield pool
    finally:
        pool.terminate()
        pool.join()


@contextlib.contextmanager
def _quiet_fork() -> Iterator[None]:
    """Around a fork: the child must not start the tokenizers library's thread pool (nor warn about it);
    setting the variable, for the fork only, tells the library that parallelism is configured."""
    import warnings

    unset = "TOKENIZERS_PARALLELISM" not in os.environ
    if unset:
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # (3.12+: "use of fork() may lead to deadlocks")
            yield
    finally:
        if unset:
            del os.environ["TOKENIZERS_PARALLELISM"]


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector (reference counting still frees everything).

    The tables hold millions of tuples and strings, none in cycles; with the collector on, each full
    collection walks all of them again, which cost about a fifth of an analysis.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextlib.contextmanager
def _no_hugepage_advice() -> Iterator[None]:
    """Keep numpy from advising huge pages for its large arrays while counting.

    Counting allocates many short-lived arrays of tens of MB; where the kernel compacts memory on each
    advised fault (transparent huge pages with ``defrag=madvise``), that kernel time was a third of the
    count. The setting is numpy's own switch (``NUMPY_MADVISE_HUGEPAGE``), restored afterwards.
    """
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray  # type: ignore[no-redef]
    switch = getattr(multiarray, "_set_madvise_hugepage", None)
    if switch is None:
        yield
        return
    before = switch(False)
    try:
        yield
    finally:
        switch(before)


def _batches_by_bytes(texts: Iterable[str], limit: int) -> Iterator[list[str]]:
    batch: list[str] = []
    size = 0
    for text in texts:
        batch.append(text)
        size += len(text)
        if size >= limit:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


_MASK64 = (1 << 64) - 1
_P = 0x9E3779B97F4A7C15  # odd, so its powers are invertible mod 2**64 and positions never cancel
_Q = 0xC2B2AE3D27D4EB4F
_R = 0x27D4EB2F165667C5
_R_INV = pow(_R, -1, 1 << 64)


def _powers(base: int, n: int) -> Any:
    import numpy as np

    out = np.empty(n, dtype=np.uint64)
    value = 1
    for i in range(n):
        out[i] = value
        value = (value * base) & _MASK64
    return out


class _HashCounter:
    """Word and n-gram counts kept as numpy tables keyed by 64-bit hashes of token-id sequences.

    Each distinct word also gets a dense index (in order of first appearance; within a batch, in hash
    order), so per-word counts and flags are numpy arrays and the n-gram table stores its words as
    int32 indexes. Grouping argsorts with ``kind="stable"``: on keys repeated as often as words and
    n-grams are, numpy's default argsort took three to four times as long (MedQuAD: 2.8 s of argsort
    against 1.4 s, under the same load). Document counts come from sorting (group, document) pairs
    packed into one integer.
    """

    def __init__(self, space: TokenSpace, max_phrase_words: int, phrases: bool, max_phrases: int, runs: bool = False):
        import numpy as np

        self.np = np
        self.space = space
        self.max_words = max_phrase_words
        self.longest = 2 * max_phrase_words - 1 if phrases else 0
        self.max_phrases = max_phrases
        self.counts = Counts()
        backend = space.backend
        size = max(backend.get_vocab_size(with_added_tokens=True), max(space.vocab.values(), default=0) + 1)
        self.id_to_token = [backend.id_to_token(i) or "" for i in range(size)]
        marker = space.marker
        self.token_marker = np.array([bool(marker) and t.startswith(marker) for t in self.id_to_token], dtype=bool)
        self.prefix = _continuing_prefix(space)
        # SentencePiece-style tokenizers do not split words before the model: a word starts at a ▁.
        pre = backend.pre_tokenizer
        self.metaspace_words = space.family == "sp_bpe" and (pre is None or not _splits(pre))
        self.word_pow = _powers(_P, 64)
        self.phrase_pow = _powers(_Q, max(self.longest, 1))
        self.word_of: dict[int, str] = {}  # word hash -> pre-token string
        self.index_of: dict[int, int] = {}  # word hash -> dense word index
        self.word_list: list[str] = []  # dense word index -> pre-token string
        self.w_count = np.zeros(0, np.int64)  # by dense word index
        self.w_docs = np.zeros(0, np.int64)
        self.w_letter = np.zeros(0, bool)  # letter word
        self.w_alnum = np.zeros(0, bool)  # starts with a letter or digit
        # the n-gram table: hash, count, documents, length, and where the word indexes of one occurrence
        # are kept: row p_ref of the blocks of its length (word rows are stored once and only indexed
        # as the table is merged and pruned)
        self.p_hash = np.empty(0, np.uint64)
        self.p_count = np.empty(0, np.int64)
        self.p_docs = np.empty(0, np.int64)
        self.p_len = np.empty(0, np.int8)
        self.p_ref = np.empty(0, np.int64)
        self.blocks: dict[int, list[Any]] = defaultdict(list)  # length -> word-index matrices
        self.block_rows: dict[int, int] = defaultdict(int)
        self.pruned_below = 0
        self.collect_runs = runs and phrases
        self.runs: dict[int, list] = {}  # run key -> [count, word hashes, phrase may end at its end]
        self.pending: dict[int, list[int]] = {}  # word hash -> token ids, for words met but not learnt yet
        self.pending_surface: dict[int, str] = {}  # word hash -> its surface, for pending words split in Python
        self.python_words = _splits_like_gpt2(space)
        self.map: Callable[..., Iterator[Any]] = _inline_map  # (count_corpus sets a threaded one)
        added = [t.content for t in backend.get_added_tokens_decoder().values() if t.content]
        self.added_text = re.compile("|".join(re.escape(t) for t in added)) if added else None

    # -- one batch ----------------------------------------------------------------------------------

    def add(self, batch: list[str], split: "_Split | None" = None) -> None:
        """Count one batch of documents (``split``: its pre-tokens, when :meth:`splitter` made them elsewhere)."""
        np = self.np
        counts = self.counts
        counts.docs += len(batch)
        counts.bytes += sum(len(t.encode("utf-8")) for t in batch)
        room = _EXAMPLE_DOCS - len(counts.examples)
        if room > 0:
            counts.examples.extend(t[:_EXAMPLE_CHARS] for t in batch[:room])
        coded = None
        if self.python_words:
            word_hash, word_doc, marker, coded = self._words_split(batch, split or self.splitter()(batch))
        else:
            word_hash, word_doc, marker = self._words_encoded(batch, np.arange(len(batch), dtype=np.int64))
        n_words = len(word_hash)
        if n_words == 0:
            return
        grouped = self._group_coded(coded) if coded is not None else None
        if grouped is None:
            uniq, _, group, cnt, docs = self._group(word_hash, word_doc)
        else:
            uniq, group, cnt, docs = grouped
        index = self._learn_words(uniq)
        self.w_count[index] += cnt
        self.w_docs[index] += docs
        if self.longest >= 2 and n_words >= 2:
            word_index = index[group]
            self._add_ngrams(word_hash, word_index, word_doc, self.w_letter[word_index], marker, self.w_alnum[word_index])

    def _words_encoded(self, texts: list[str], doc_of: Any) -> tuple[Any, Any, Any]:
        """Encode texts with the tokenizer: (word hashes, their documents (from ``doc_of``), whether each
        word's first token carries the space marker). Notes the token ids of words not seen before."""
        np = self.np
        empty = (np.empty(0, np.uint64), np.empty(0, np.int64), np.empty(0, bool))
        if not texts:
            return empty
        encodings = self.space.backend.encode_batch(texts, add_special_tokens=False)
        lengths = np.fromiter((len(e.ids) for e in encodings), np.int64, len(encodings))
        total = int(lengths.sum())
        if total == 0:
            return empty
        ids = np.fromiter((i for e in encodings for i in e.ids), np.int64, total)
        doc = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
        new_doc = np.ones(total, dtype=bool)
        new_doc[1:] = doc[1:] != doc[:-1]
        if self.metaspace_words:
            starts_mask = new_doc | self.token_marker[ids]
        else:
            wid = np.fromiter((w if w is not None else -1 for e in encodings for w in e.word_ids), np.int64, total)
            starts_mask = new_doc.copy()
            starts_mask[1:] |= wid[1:] != wid[:-1]
        del encodings
        starts = np.flatnonzero(starts_mask)
        word_len = np.diff(np.append(starts, total))
        longest_word = int(word_len.max())
        if longest_word > len(self.word_pow):
            self.word_pow = _powers(_P, max(longest_word, 2 * len(self.word_pow)))
        pos = np.arange(total, dtype=np.int64) - np.repeat(starts, word_len)
        with np.errstate(over="ignore"):
            h = (ids + 1).astype(np.uint64) * self.word_pow[pos]
            word_hash = np.add.reduceat(h, starts)
        uniq, first = np.unique(word_hash, return_index=True)
        known, pending = self.index_of, self.pending
        for key, k in zip(uniq.tolist(), first.tolist()):
            if key not in known and key not in pending:
                s = int(starts[k])
                pending[key] = ids[s : s + int(word_len[k])].tolist()
        return word_hash, doc_of[doc[starts]], self.token_marker[ids[starts]]

    def splitter(self) -> "_Splitter":
        """The function that cuts a batch into pre-tokens (picklable state only: it can run in a worker)."""
        return _Splitter(self.added_text, self.space.backend.pre_tokenizer, self.space.backend.model)

    def _words_split(self, batch: list[str], split: _Split) -> tuple[Any, Any, Any, Any]:
        """:meth:`_words_encoded` without encoding the corpus: words split in Python (``split``, from
        :class:`_Splitter`, which cut each distinct word into tokens once); documents that contain an
        added token's text are encoded whole. The fourth item is the split itself for
        :meth:`_group_coded`, or None when some documents were encoded."""
        np = self.np
        known, pending, pending_surface = self.index_of, self.pending, self.pending_surface
        local, where, local_hash = split.local, split.where, split.keys
        for i, ids in split.new_ids.items():
            key = int(local_hash[i])
            if key not in known:
                pending.setdefault(key, ids)
                pending_surface.setdefault(key, local[i])
        local_marker = np.array([w[0] == " " for w in local], dtype=bool)
        word_hash, word_marker = local_hash[where], local_marker[where]
        word_doc = np.repeat(np.arange(len(batch), dtype=np.int64), split.lengths)
        encoded = split.encoded
        if encoded:
            e_hash, e_doc, e_marker = self._words_encoded([batch[d] for d in encoded], np.array(encoded, dtype=np.int64))
            order = np.argsort(np.concatenate([word_doc, e_doc]), kind="stable")
            word_hash = np.concatenate([word_hash, e_hash])[order]
            word_doc = np.concatenate([word_doc, e_doc])[order]
            word_marker = np.concatenate([word_marker, e_marker])[order]
            return word_hash, word_doc, word_marker, None
        return word_hash, word_doc, word_marker, split

    def _learn_words(self, uniq: Any) -> Any:
        """The dense index of each unique word hash, with strings and flags for the words not seen before
        (their token ids noted in ``pending``)."""
        np = self.np
        index_of, word_of, id_to_token, prefix = self.index_of, self.word_of, self.id_to_token, self.prefix
        space, pending, pending_surface = self.space, self.pending, self.pending_surface
        known = len(self.word_list)
        letter, alnum = [], []
        out = []
        for key in uniq.tolist():
            i = index_of.get(key)
            if i is None:
                i = index_of[key] = len(self.word_list)
                pieces = [id_to_token[t] for t in pending.pop(key)]
                toks = pieces
                if prefix:
                    toks = [toks[0]] + [t[len(prefix) :] if t.startswith(prefix) else t for t in toks[1:]]
                word = "".join(toks)
                word_of[key] = word
                self.word_list.append(word)
                # The pieces as encoded: re-tokenizing the joined string would lose byte-fallback and unknown pieces.
                space._pieces.setdefault(word, tuple(pieces))
                # (a word split in Python came with its surface, which is what its pieces decode to)
                surface = pending_surface.pop(key, None)
                if surface is None:
                    surface = _surface_of_piece(word, space)
                if surface is None:
                    surface = word
                self.counts.surfaces[word] = surface
                letter.append(is_letter_word(surface))
                alnum.append(_starts_alnum(surface))
            out.append(i)
        if letter:
            grow = len(self.word_list) - known
            self.w_count = np.concatenate([self.w_count, np.zeros(grow, np.int64)])
            self.w_docs = np.concatenate([self.w_docs, np.zeros(grow, np.int64)])
            self.w_letter = np.concatenate([self.w_letter, np.array(letter, dtype=bool)])
            self.w_alnum = np.concatenate([self.w_alnum, np.array(alnum, dtype=bool)])
        return np.array(out, dtype=np.int64)

    def _group(self, keys: Any, docs: Any, positions: bool = True) -> tuple[Any, Any, Any, Any, Any]:
        """Group equal keys: (sorted unique keys, one position of each, each position's group (None
        unless ``positions``), counts, distinct documents per key (zeros when ``docs`` is None)). ``docs``
        are non-negative and below 2**32.

        [7, 3, 7], docs [0, 0, 1] -> ([3, 7], [1, 0], [1, 0, 1], [1, 2], [1, 2])

        Positions come in document order (``docs`` never decreases) wherever the counter calls this, and
        the stable sort keeps each key's positions in that order, so a key's distinct documents are
        where its run of documents changes: no second sort of (key, document) pairs.
        """
        np = self.np
        n = len(keys)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        head = np.empty(n, dtype=bool)
        head[0] = True
        np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=head[1:])
        first = np.flatnonzero(head)
        uniq = sorted_keys[first]
        del sorted_keys
        cnt = np.diff(first, append=n)
        if docs is None:
            return uniq, order[first], None, cnt, np.zeros(len(uniq), dtype=np.int64)
        pairs = np.cumsum(head, dtype=np.uint64)
        pairs -= np.uint64(1)
        group = None
        if positions:
            group = np.empty(n, dtype=np.int64)
            group[order] = pairs
        in_order = docs[order]
        if n > 1 and not (docs[1:] >= docs[:-1]).all():  # (not document order: pairs sorted instead)
            return uniq, order[first], group, cnt, _distinct_per_code(pairs, in_order, len(uniq))
        changed = head  # (head is not needed any more: a new key, or the same key in a new document)
        changed[1:] |= in_order[1:] != in_order[:-1]
        return uniq, order[first], group, cnt, np.bincount(pairs[changed].astype(np.int64), minlength=len(uniq))

    def _group_coded(self, split: _Split) -> tuple[Any, Any, Any, Any] | None:
        """:meth:`_group` (without positions) for words numbered by a split (``word hash ==
        split.keys[split.where]``, counted per surface by the splitter): only the distinct surfaces are
        sorted, not every position. None when two surfaces share a hash (then :meth:`_group` must merge
        them).

        where [1, 0, 1], keys [7, 3], count [1, 2], docs [1, 2] -> ([3, 7], [1, 0, 1], [1, 2], [1, 2])
        """
        np = self.np
        code_keys = split.keys
        k = len(code_keys)
        order = np.argsort(code_keys, kind="stable")
        uniq = code_keys[order]
        if k > 1 and not (uniq[1:] != uniq[:-1]).all():
            return None
        rank = np.empty(k, dtype=np.int64)
        rank[order] = np.arange(k, dtype=np.int64)
        return uniq, rank[split.where], split.count[order], split.docs[order]

    def _add_ngrams(self, wh: Any, wi: Any, wdoc: Any, letter: Any, marker: Any, alnum: Any) -> None:
        """Count runs of 2..longest letter-words; a run counts only where no letter or digit follows it."""
        np = self.np
        n = len(wh)
        same = np.zeros(n, dtype=bool)
        same[1:] = wdoc[1:] == wdoc[:-1]
        cont = letter & marker & same  # word j can extend a run ending at j - 1
        # after[k]: what follows a run ending just before word k does not glue onto it
        after = np.ones(n + 1, dtype=bool)
        after[1:n] = ~(same[1:] & alnum[1:])
        if self.collect_runs:
            self._add_runs(wh, letter, cont, after)
        def lengths() -> Iterator[tuple[int, Any, Any]]:
            """Per n-gram length: the keys of the n-grams that count, and where each starts."""
            run = letter.copy()
            keys = wh.copy()
            for size in range(2, self.longest + 1):
                m = n - size + 1
                if m <= 0:
                    return
                run = run[:m] & cont[size - 1 : size - 1 + m]
                if not run.any():
                    return
                with np.errstate(over="ignore"):
                    keys = keys[:m] + wh[size - 1 : size - 1 + m] * self.phrase_pow[size - 1]
                where = np.flatnonzero(run & after[size : size + m])
                if len(where):
                    yield size, keys[where], where

        # each length on its own keeps the arrays small (and sorts on a core of its own); document
        # counts only for phrases short enough to be candidates
        def group(size: int, keys: Any, where: Any) -> list[Any]:
            uniq, rep, _, cnt, docs = self._group(keys, wdoc[where] if size <= self.max_words else None, positions=False)
            return [uniq, cnt, docs, np.full(len(uniq), size, dtype=np.int8), where[rep]]

        found = list(self.map(group, lengths()))  # per length: keys, counts, documents, lengths, starts
        if found:
            columns = []
            for j in range(len(found[0])):  # (each column's pieces freed as it is joined)
                columns.append(np.concatenate([f[j] for f in found]))
                for f in found:
                    f[j] = None
            self._merge_table(*columns, wi)

    def _add_runs(self, wh: Any, letter: Any, cont: Any, after: Any) -> None:
        """Count maximal runs of 2+ letter-words, keyed by a hash of their word hashes."""
        np = self.np
        n = len(wh)
        link = np.zeros(n, dtype=bool)
        link[1:] = cont[1:] & letter[:-1]
        starts = np.flatnonzero(letter & ~link)
        breaks = np.flatnonzero(~link)
        ends = np.append(breaks, n)[np.searchsorted(breaks, starts, side="right")]
        keep = ends - starts >= 2
        starts, ends = starts[keep], ends[keep]
        if not len(starts):
            return
        with np.errstate(over="ignore"):
            powers = np.cumprod(np.full(n, _R, dtype=np.uint64))  # R**1 .. R**n
            inverse = np.cumprod(np.full(n, _R_INV, dtype=np.uint64))
            prefix = np.concatenate([[np.uint64(0)], np.cumsum(wh * powers)])
            key = (prefix[ends] - prefix[starts]) * inverse[starts]
            key = key ^ ((ends - starts).astype(np.uint64) * np.uint64(_Q)) ^ after[ends].astype(np.uint64)
        uniq, first, cnt = np.unique(key, return_index=True, return_counts=True)
        wl = wh.tolist()
        for k, i, c in zip(uniq.tolist(), first.tolist(), cnt.tolist()):
            entry = self.runs.get(k)
            if entry is None:
                s0, e0 = int(starts[i]), int(ends[i])
                self.runs[k] = [c, wl[s0:e0], bool(after[e0])]
            else:
                entry[0] += c

    def _merge_table(self, keys: Any, cnt: Any, docs: Any, length: Any, start: Any, wi: Any) -> None:
        """Add one batch's n-grams (``keys`` unique within each length, each length's run sorted; each
        n-gram's words are ``wi[start : start + length]``) to the table. When the merged table would
        hold more than ``max_phrases`` n-grams, the rarest are dropped (the count threshold rising one
        at a time from the last one) until at most half remain.

        The batch's keys are looked up in the sorted table: those found add their counts in place, and
        only the new ones that survive the prune are sorted, get their word rows stored and are
        inserted, so most of a batch's one-off n-grams are never copied at all. (Keys are 64-bit hashes;
        two n-grams of different lengths with the same hash count as one, as two of the same length do.)
        """
        np = self.np
        table = self.p_hash
        new = np.ones(len(keys), dtype=bool)
        if len(table):
            at = np.searchsorted(table, keys)
            np.minimum(at, len(table) - 1, out=at)
            hit = table[at] == keys
            rows = at[hit]
            np.add.at(self.p_count, rows, cnt[hit])
            np.add.at(self.p_docs, rows, docs[hit])
            np.logical_not(hit, out=new)
            del at, hit, rows
        n_new = int(np.count_nonzero(new))
        if len(table) + n_new > self.max_phrases:
            threshold = max(2, self.pruned_below + 1)
            while int(np.count_nonzero(self.p_count >= threshold)) + int(np.count_nonzero(new & (cnt >= threshold))) > self.max_phrases // 2:
                threshold += 1
            self.pruned_below = threshold
            self._columns = tuple(column[self.p_count >= threshold] for column in self._columns)
            new &= cnt >= threshold
        take = np.flatnonzero(new)
        del new
        if not len(take):
            return
        take = take[np.argsort(keys[take], kind="stable")]
        length, start = length[take], start[take]
        # the new n-grams' word rows, stored once per length; the table keeps where each row is
        refs = np.empty(len(take), dtype=np.int64)
        for size in np.unique(length).tolist():
            of_size = np.flatnonzero(length == size)
            words = np.empty((len(of_size), size), dtype=np.int32)
            s0 = start[of_size]
            for j in range(size):
                words[:, j] = wi[s0 + j]
            first_row = self.block_rows[size]
            self.blocks[size].append(words)
            self.block_rows[size] += len(of_size)
            refs[of_size] = np.arange(first_row, first_row + len(of_size), dtype=np.int64)
        batch = (keys[take], cnt[take], docs[take], length, refs)
        if not len(self.p_hash):
            self._columns = batch
            return
        at = np.searchsorted(self.p_hash, batch[0])
        self._columns = tuple(np.insert(column, at, new) for column, new in zip(self._columns, batch))

    @property
    def _columns(self) -> tuple[Any, Any, Any, Any, Any]:
        """The n-gram table's columns: hash, count, documents, length, reference."""
        return self.p_hash, self.p_count, self.p_docs, self.p_len, self.p_ref

    @_columns.setter
    def _columns(self, columns: tuple[Any, Any, Any, Any, Any]) -> None:
        self.p_hash, self.p_count, self.p_docs, self.p_len, self.p_ref = columns

    # -- the result ---------------------------------------------------------------------------------

    def result(self) -> Counts:
        np = self.np
        counts = self.counts
        words = self.word_list
        counts.words = _counter(zip(words, self.w_count.tolist()))
        counts.word_docs = _counter(zip(words, self.w_docs.tolist()))
        counts.pruned_below = self.pruned_below
        # phrase keys as tuples of strings, built column by column for each length, put in the table's
        # (hash) order
        strings = np.array(words + [""], dtype=object)
        table = np.empty(len(self.p_hash), dtype=object)
        # the word indexes of each phrase (-1 after its end)
        lengths = np.unique(self.p_len).tolist()
        matrix = np.full((len(self.p_hash), max(lengths, default=self.max_words)), -1, dtype=np.int32)
        for n in lengths:
            rows = np.flatnonzero(self.p_len == n)
            block = np.concatenate(self.blocks[n])[self.p_ref[rows]]
            table[rows] = np.fromiter(zip(*(strings[block[:, j]].tolist() for j in range(n))), dtype=object, count=len(rows))
            matrix[rows, :n] = block
        keys: list[tuple[str, ...]] = table.tolist()
        phrases = _counter(zip(keys, self.p_count.tolist()))
        has_docs = np.flatnonzero(self.p_docs)
        phrase_docs = _counter(zip(table[has_docs].tolist(), self.p_docs[has_docs].tolist()))
        counts.phrases, counts.phrase_docs = phrases, phrase_docs
        if len(phrases) == len(keys) and len(phrase_docs) == len(has_docs):
            counts.phrase_table = _PhraseTable(counts, keys, self.p_count, self.p_docs, self.p_len, matrix, words, self.max_words)
        if self.collect_runs:
            word_of = self.word_of
            counts.runs = Counter({(tuple(word_of[w] for w in words), end_ok): c for c, words, end_ok in self.runs.values()})
        return counts


class _Split(NamedTuple):
    """A batch cut into pre-tokens by :class:`_Splitter`, with what counting needs of each surface."""

    local: list[str]  # the distinct surfaces, in order of first appearance
    where: Any  # each word's index into ``local`` (int32)
    lengths: list[int]  # the number of words of each document
    encoded: list[int]  # the documents to encode whole instead (no words listed for them)
    keys: Any  # each surface's word hash, the hash of its token ids (uint64)
    count: Any  # each surface's occurrences (int64)
    docs: Any  # the distinct documents each surface occurs in (int64)
    new_ids: dict[int, list[int]]  # surface index -> token ids, for surfaces the splitter met first here


class _Splitter:
    """Cut documents into GPT-2-style pre-token surfaces in Python (for :meth:`_HashCounter.splitter`).

    ASCII text is split with the byte-level pre-tokenizer's regex written for ASCII; the stretches
    around non-ASCII characters, between spaces that surely separate words, go to the tokenizer's own
    pre-tokenizer; documents that contain an added token's text are left to be encoded whole.
    """

    def __init__(self, added_text: Any, pre_tokenizer: Any, model: Any):
        self.added_text = added_text
        self.pre_tokenizer = pre_tokenizer
        self.model = model
        self.keys: dict[str, int] = {}  # surface -> word hash, for the surfaces met so far

    def __call__(self, batch: list[str]) -> _Split:
        """Split ``batch``; each distinct surface not met before is cut into tokens with the model (its
        ids are in ``new_ids``), and occurrences and documents are counted per surface."""
        import numpy as np

        findall = _ASCII_WORDS.findall
        added = self.added_text
        words: list[str] = []
        lengths: list[int] = []
        encoded: list[int] = []
        for d, text in enumerate(batch):
            if added is not None and added.search(text):
                encoded.append(d)
                lengths.append(0)
                continue
            before = len(words)
            if text.isascii():
                words += findall(text)
            else:
                self._split_mixed(text, words)
            lengths.append(len(words) - before)
        local = dict.fromkeys(words)
        for i, surface in enumerate(local):
            local[surface] = i
        where = np.fromiter(map(local.__getitem__, words), np.int32, len(words))
        surfaces = list(local)
        known, tokenize, byte_char = self.keys, self.model.tokenize, _byte_encoder()
        keys = np.empty(len(surfaces), dtype=np.uint64)
        new_ids: dict[int, list[int]] = {}
        for i, surface in enumerate(surfaces):
            key = known.get(surface)
            if key is None:
                ids = [t.id for t in tokenize("".join([byte_char[b] for b in surface.encode("utf-8")]))]
                key = known[surface] = _word_key(ids)
                new_ids[i] = ids
            keys[i] = key
        count = np.bincount(where, minlength=len(surfaces)).astype(np.int64, copy=False)
        docs = _distinct_per_code(where, np.repeat(np.arange(len(batch), dtype=np.int64), lengths), len(surfaces))
        return _Split(surfaces, where, lengths, encoded, keys, count, docs, new_ids)

    def _split_mixed(self, text: str, out: list[str]) -> None:
        """Append the pre-token surfaces of a text with non-ASCII characters to ``out``.

        A space after an ASCII character that is not whitespace always starts a new pre-token, and the
        pre-tokenizer's regex sees nothing to the left of where it starts; so the text is cut there,
        around each run of non-ASCII characters, and each side is split on its own.
        """
        findall = _ASCII_WORDS.findall
        pre_tokenize = self.pre_tokenizer.pre_tokenize_str
        pos = 0
        for m in _NON_ASCII.finditer(text):
            s, e = m.span()
            if s < pos:
                continue
            b = s
            while True:
                b = text.rfind(" ", pos, b)
                if b <= pos or _ascii_solid(text[b - 1]):
                    b = max(b, pos)
                    break
            c = e
            while True:
                c = text.find(" ", c)
                if c < 0:
                    c = len(text)
                    break
                if _ascii_solid(text[c - 1]):
                    break
                c += 1
            out += findall(text, pos, b) if b > pos else ()
            chunk = text[b:c]
            out += [chunk[i:j] for _, (i, j) in pre_tokenize(chunk)]
            pos = c
        if pos < len(text):
            out += findall(text, pos)


def _distinct_per_code(codes: Any, docs: Any, k: int) -> Any:
    """How many distinct documents each of ``k`` codes occurs in, from each position's code and
    document (both below 2**32: packed into one integer and sorted).

    codes [1, 0, 1, 1], docs [0, 0, 0, 1], k 3 -> [1, 2, 0]
    """
    import numpy as np

    packed = codes.astype(np.uint64) << np.uint64(32)
    packed |= docs.astype(np.uint64)
    packed.sort()
    head = np.empty(len(packed), dtype=bool)
    head[:1] = True
    np.not_equal(packed[1:], packed[:-1], out=head[1:])
    return np.bincount((packed[head] >> np.uint64(32)).astype(np.int64), minlength=k)


def _counter(pairs: Iterable[tuple[Any, int]]) -> Counter:
    """Counter(dict(pairs)) without the intermediate dict."""
    out: Counter = Counter()
    dict.update(out, pairs)
    return out


# GPT-2's pre-tokenizer regex ('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)
# for ASCII text, where letters, digits and whitespace are unambiguous (\x1c-\x1f are not whitespace).
_WS = "\t\n\x0b\x0c\r "
_ASCII_WORDS = re.compile(
    f"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^{_WS}A-Za-z0-9]+|[{_WS}]+(?![^{_WS}])|[{_WS}]+"
)
_NON_ASCII = re.compile("[^\x00-\x7f]+")


def _ascii_solid(ch: str) -> bool:
    """An ASCII character that is not whitespace: a space after it always starts a new pre-token."""
    return ch < "\x80" and ch not in _WS


class _PhraseTable:
    """The counter's n-gram table in the order of ``Counts.phrases``: keys, counts, documents, lengths
    and word indexes (into ``words``, -1 after a phrase's end) of every phrase.

    Valid while the Counts it was made for still holds the same phrase dicts with as many keys.
    """

    __slots__ = ("phrases", "phrase_docs", "size", "keys", "count", "docs", "length", "matrix", "words", "candidate_words")

    def __init__(self, counts: "Counts", keys: list, count: Any, docs: Any, length: Any, matrix: Any, words: list[str], candidate_words: int):
        self.phrases, self.phrase_docs, self.size = counts.phrases, counts.phrase_docs, len(counts.phrases)
        self.keys, self.count, self.docs, self.length, self.matrix, self.words = keys, count, docs, length, matrix, words
        self.candidate_words = candidate_words  # the counter's longest candidate (longer n-grams have no document counts)

    def valid_for(self, counts: "Counts", max_words: int) -> bool:
        return (
            counts.phrases is self.phrases
            and counts.phrase_docs is self.phrase_docs
            and len(counts.phrases) == self.size == len(self.keys)
            and max_words <= self.candidate_words
        )


def _word_key(ids: list[int]) -> int:
    """The 64-bit hash of a word's token ids, as :meth:`_HashCounter._words_encoded` computes it with numpy."""
    key, power = 0, 1
    for t in ids:
        key = (key + (t + 1) * power) & _MASK64
        power = (power * _P) & _MASK64
    return key


def _splits_like_gpt2(space: TokenSpace) -> bool:
    """Whether words can be split in Python exactly as the tokenizer does: byte-level BPE with GPT-2's
    pre-tokenizer regex and nothing else before the model (no normalizer, no prefix space, no dropout)."""
    if space.family != "byte_bpe" or space.backend.normalizer is not None:
        return False
    spec = space.options()
    pre, model = spec.get("pre_tokenizer") or {}, spec.get("model") or {}
    if pre.get("type") != "ByteLevel" or pre.get("add_prefix_space") or not pre.get("use_regex", True):
        return False
    if model.get("type") != "BPE" or model.get("dropout") or model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
        return False
    probe = "Hello, world's 'll  x\t\n\n  12.5%!! \x1c\x1fa b\r\n c  "
    return [p for p, _ in space.backend.pre_tokenizer.pre_tokenize_str(probe)] == [
        "".join(_byte_encoder()[b] for b in w.encode("utf-8")) for w in _ASCII_WORDS.findall(probe)
    ]


def _continuing_prefix(space: TokenSpace) -> str:
    """WordPiece's '##' (or a BPE model's continuing-subword prefix), stripped when joining a word."""
    return space.options()["model"].get("continuing_subword_prefix") or ""


def _starts_alnum(surface: str) -> bool:
    return bool(surface) and (surface[0].isalpha() or surface[0].isdigit())


# ---------------------------------------------------------------------------------------------------
# Step 2 and 3: the savings model shared by selection and projection


@dataclass
class Candidate:
    """One proposed token, as it appears in the report."""

    token: str
    surface: str
    kind: str
    count: int
    doc_count: int
    base_pieces: list[str]
    tokens_saved: int = 0
    score: float = 0.0
    specificity: float | None = None
    merge: list[str] | None = None  # for subwords: the two pieces the appended merge joins
    parts: list[str] | None = None  # for phrases: the words (pre-tokens) it joins
    rank: int = 0
    cumulative_saved: int = 0
    variants: list[str] = field(default_factory=list)
    example: str = ""
    groups: int | None = None  # words and phrases of a grouped analysis: the groups they occur in

    def as_dict(self) -> dict:
        out = {name: getattr(self, name) for name in _CANDIDATE_FIELDS}
        for key in ("base_pieces", "merge", "parts", "variants"):  # copies, as dataclasses.asdict makes
            if out[key] is not None:
                out[key] = list(out[key])
        if out["merge"] is None:
            out.pop("merge")
        if out["parts"] is None:
            out.pop("parts")
        if out["groups"] is None:
            out.pop("groups")
        return out


_CANDIDATE_FIELDS = tuple(f.name for f in fields(Candidate))


_second = operator.itemgetter(1)


class _OverlapIndex:
    """Where each chosen phrase overlaps other phrases, pushed to those phrases as it is chosen.

    A chosen phrase q of m words overlaps the end of a phrase P by k words (1 <= k < m) exactly where
    the n-gram U = P + q[k:] occurs, so U ends with q; it overlaps P's start by k words where
    U = q + P[k:] occurs, so U starts with q. Finding the n-grams that start or end with q in the
    counter's table (rows sorted by their first three words, and by their last three read backwards)
    lists every such P with the co-count, once per choice, where looking each union up per P and per
    chosen phrase tries millions of unions that never occur. Only phrases that can still be chosen
    (``live``) get entries. ``right_of[P]`` and ``left_of[P]`` hold the (q, k, co-count) entries in
    the order the q were chosen, for :meth:`SavingsModel._overlapping` to sort by k.
    """

    def __init__(self, table: "_PhraseTable", max_words: int, live: list[tuple[str, ...]]):
        import numpy as np

        self.keys, self.count, self.max_words = table.keys, table.count, max_words
        self.ids = {w: i for i, w in enumerate(table.words)}
        self.base = base = len(table.words) + 1  # word index + 1 in each digit; 0: past the phrase's end
        rows = np.flatnonzero(table.length >= 3)  # (a union is longer than q, which has 2+ words)
        matrix, length = table.matrix[rows].astype(np.int64) + 1, table.length[rows].astype(np.int64)
        if matrix.shape[1] < 4:
            matrix = np.pad(matrix, ((0, 0), (0, 4 - matrix.shape[1])))
        self.sides = []
        for backward in (True, False):
            if backward:  # words L-1, L-2, ...
                at = length[:, None] - 1 - np.arange(4)[None, :]
                digits = np.where(at >= 0, np.take_along_axis(matrix, np.maximum(at, 0), axis=1), 0)
            else:
                digits = matrix[:, :4]
            head = (digits[:, 0] * base + digits[:, 1]) * base + digits[:, 2]
            order = np.argsort(head, kind="stable")
            self.sides.append((rows[order], head[order], digits[order, 3], length[order]))
        # only phrases that can still be chosen get entries (None: no entry yet)
        self.right_of: dict[tuple[str, ...], list[list] | None] = dict.fromkeys(live)
        self.left_of: dict[tuple[str, ...], list[list] | None] = dict.fromkeys(live)

    @staticmethod
    def fits(table: "_PhraseTable") -> bool:
        """Whether three word digits fit in one int64 key."""
        return (len(table.words) + 1) ** 3 < 2**63

    def _rows_with(self, backward: bool, digits: list[int]) -> list[int]:
        """Table rows longer than q whose first words, read forwards or backwards, are q's (``digits``),
        short enough to leave a phrase P of at most ``max_words`` words."""
        rows, head, fourth, length = self.sides[0 if backward else 1]
        b, m = self.base, len(digits)
        first = (digits[0] * b + digits[1]) * b
        if m == 2:
            lo, hi = head.searchsorted([first + 1, first + b]).tolist()  # (first + 0: q's own row)
            if lo == hi:
                return []
            keep = length[lo:hi] <= self.max_words + 1
        else:
            lo, hi = head.searchsorted([first + digits[2], first + digits[2] + 1]).tolist()
            if lo == hi:
                return []
            span = length[lo:hi]
            keep = (span > m) & (span <= self.max_words + m - 1)
            if m == 4:
                keep &= fourth[lo:hi] == digits[3]
        return rows[lo:hi][keep].tolist()

    def add(self, q: tuple[str, ...]) -> None:
        ids = self.ids
        digits = [ids.get(w, -1) + 1 for w in q]
        m = len(q)
        if 0 in digits or not 2 <= m <= 4:
            return
        keys, count, most = self.keys, self.count, self.max_words
        for right in (True, False):
            rows = self._rows_with(right, digits[::-1] if right else digits)
            if not rows:
                continue
            target = self.right_of if right else self.left_of
            get = target.get
            # P = u[:n] (right) or u[m - k:] (left) has n = len(u) - m + k words, k = 1 .. m - 1
            # (entries: None, no entry yet; 0, not a phrase that can be chosen; else a non-empty list)
            if m == 2:  # (most chosen phrases: k = 1 only)
                for row, co in zip(rows, count[rows].tolist()):
                    u = keys[row]
                    p = u[:-1] if right else u[1:]
                    entries = get(p, 0)
                    if entries:
                        entries.append((q, 1, co))
                    elif entries is None:
                        target[p] = [(q, 1, co)]
                continue
            for row, co in zip(rows, count[rows].tolist()):
                u = keys[row]
                n0 = len(u) - m
                for k in range(1, min(m, most - n0 + 1)):
                    p = u[: n0 + k] if right else u[m - k :]
                    entries = get(p, 0)
                    if entries:
                        entries.append((q, k, co))
                    elif entries is None:
                        target[p] = [(q, k, co)]

    def overlapping(self, parts: tuple[str, ...], right: bool) -> list[tuple[tuple[str, ...], int, int]]:
        entries = (self.right_of if right else self.left_of).get(parts)
        if not entries:
            return []
        # by overlap length, in the order chosen within one length (a stable sort)
        return sorted(entries, key=_second) if len(entries) > 1 else entries


class SavingsModel:
    """The token count of a corpus as candidates are added, computed from its word and phrase tables.

    ``apply(candidate)`` adds a candidate and returns the tokens it saves given everything applied
    before; ``gain(candidate)`` is the same without applying. The state is each word's current
    segmentation and remaining count (occurrences not absorbed by a phrase), pair statistics for merges,
    and the remaining count of each phrase.
    """

    def __init__(self, counts: Counts, space: TokenSpace, *, overlaps: _OverlapIndex | None = None):
        self.space = space
        self.counts = counts
        self.remaining: dict[str, int] = dict(counts.words)
        self.seg: dict[str, list[str]] = {}
        self.whole: set[str] = set()
        self.base_tokens = 0
        self.pair_count: Counter = Counter()
        self.pair_words: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.n_now: dict[str, int] = {}  # each counted word's tokens now (what pieces_now returns)
        pair_words, pair_count, seg, n_now = self.pair_words, self.pair_count, self.seg, self.n_now
        for word, count in counts.words.items():
            pieces = space.pieces(word)
            n_now[word] = len(pieces)
            self.base_tokens += count * len(pieces)
            if len(pieces) > 1:
                seg[word] = list(pieces)
                for pair in zip(pieces, pieces[1:]):
                    pair_words[pair].add(word)
                for pair, n in _pair_occurrences(pieces).items():
                    pair_count[pair] += n * count
        self.saved = 0
        self.new_pairs = set()
        # chosen phrases: where each currently fires, and indexes for containment and overlap
        self.fired: dict[tuple[str, ...], int] = {}
        self._containing: dict[tuple[str, ...], list[tuple[str, ...]]] = defaultdict(list)
        self._by_prefix: dict[tuple[str, ...], list[tuple[str, ...]]] = defaultdict(list)
        self._by_suffix: dict[tuple[str, ...], list[tuple[str, ...]]] = defaultdict(list)
        self._fired_first: set[str] = set()  # the first words of the chosen phrases
        # per phrase P and overlap length: how many indexed phrases were read, and the overlaps found
        self._overlap_seen: dict[tuple[tuple[str, ...], bool], list[list]] = {}
        # or, given, the chosen phrases' overlaps pushed to the phrases they overlap (the same lists)
        self._overlaps = overlaps

    # -- current state ------------------------------------------------------------------------------

    def pieces_now(self, word: str) -> int:
        n = self.n_now.get(word)
        if n is not None:
            return n
        if word in self.whole:
            return 1
        seg = self.seg.get(word)
        return len(seg) if seg is not None else len(self.space.pieces(word))

    def gain(self, cand: Candidate) -> int:
        if cand.kind == "word":
            if cand.token in self.whole:
                return 0
            return self.remaining.get(cand.token, 0) * (self.pieces_now(cand.token) - 1)
        if cand.kind == "subword":
            assert cand.merge is not None
            return self.pair_count.get((cand.merge[0], cand.merge[1]), 0)
        assert cand.parts is not None
        return self._phrase_effect(tuple(cand.parts))[0]

    # -- applying -----------------------------------------------------------------------------------

    def apply(self, cand: Candidate) -> int:
        if cand.kind == "word":
            gain = self.gain(cand)
            self._make_whole(cand.token)
        elif cand.kind == "subword":
            assert cand.merge is not None
            gain = self.gain(cand)
            self._merge(cand.merge[0], cand.merge[1], cand.token)
        else:
            assert cand.parts is not None
            gain = self._take_phrase(tuple(cand.parts))
        self.saved += gain
        return gain

    def _set_count(self, word: str, new: int) -> None:
        old = self.remaining.get(word, 0)
        seg = self.seg.get(word)
        if seg is not None and word not in self.whole and new != old:
            for pair, n in _pair_occurrences(seg).items():
                self.pair_count[pair] += n * (new - old)
        self.remaining[word] = new

    def _make_whole(self, word: str) -> None:
        seg = self.seg.get(word)
        if seg is not None:
            for pair, n in _pair_occurrences(seg).items():
                self.pair_count[pair] -= n * self.remaining.get(word, 0)
                self.pair_words[pair].discard(word)
        self.whole.add(word)
        self.n_now[word] = 1

    def _merge(self, a: str, b: str, merged: str) -> None:
        self.new_pairs: set[tuple[str, str]] = set()
        for word in list(self.pair_words.get((a, b), ())):
            if word in self.whole:
                continue
            seg = self.seg[word]
            count = self.remaining.get(word, 0)
            for pair, n in _pair_occurrences(seg).items():
                self.pair_count[pair] -= n * count
            new = _merge_seg(seg, a, b, merged)
            self.seg[word] = new
            self.n_now[word] = len(new)
            for pair, n in _pair_occurrences(new).items():
                self.pair_count[pair] += n * count
            for pair in zip(new, new[1:]):
                self.pair_words[pair].add(word)
                if merged in pair:
                    self.new_pairs.add(pair)
        self.pair_count.pop((a, b), None)
        self.pair_words.pop((a, b), None)

    # -- phrases ------------------------------------------------------------------------------------
    #
    # The extended tokenizer matches phrases leftmost first, and the longest at a given start. So an
    # occurrence of phrase P does not fire inside a chosen phrase that contains it, nor where a chosen
    # phrase starting earlier overlaps its start; and when P fires, chosen phrases inside it or
    # starting inside it stop firing there. Co-occurrence counts of two overlapping phrases come from
    # the n-gram table (the count of their union); chains of three or more overlapping phrases are
    # approximated pairwise.

    def _span_tokens(self, parts: tuple[str, ...]) -> tuple[int, list[int], list[tuple[str, ...]]]:
        """Tokens for a run of words now, chosen sub-phrases applied leftmost-longest.

        Also returns the indices of the words no sub-phrase covers, and the sub-phrases used.
        """
        n, i, tokens, loose, used = len(parts), 0, 0, [], []
        fired, firsts = self.fired, self._fired_first
        while i < n:
            for j in range(n - 1 if i == 0 else n, i + 1, -1) if parts[i] in firsts else ():  # never P itself
                if parts[i:j] in fired:
                    tokens += 1
                    used.append(parts[i:j])
                    i = j
                    break
            else:
                tokens += self.pieces_now(parts[i])
                loose.append(i)
                i += 1
        return tokens, loose, used

    def _overlapping(self, parts: tuple[str, ...], right: bool) -> list[tuple[tuple[str, ...], int, int]]:
        """Chosen phrases overlapping P's start from the left (or its end from the right, with ``right``):
        (phrase, overlap, co-count), by overlap length.

        The index lists only grow and the co-counts are fixed, so each P keeps what it found per overlap
        length and how far it read each list; a re-evaluation reads only the phrases chosen since.
        """
        if self._overlaps is not None:
            return self._overlaps.overlapping(parts, right)
        n = len(parts)
        key = (parts, right)
        state = self._overlap_seen.get(key)
        if state is None:
            state = self._overlap_seen[key] = [[0, []] for _ in range(n - 1)]
        get = self.counts.phrases.get
        index = self._by_prefix if right else self._by_suffix
        found: list[tuple[tuple[str, ...], int, int]] = []
        # (the index keys are proper prefixes and suffixes, so every q listed is longer than k)
        for k in range(1, n):
            seen = state[k - 1]
            qs = index.get(parts[n - k :] if right else parts[:k])
            if qs is not None and len(qs) > seen[0]:
                if right:
                    for q in qs[seen[0] :]:
                        co = get(parts + q[k:])
                        if co:
                            seen[1].append((q, k, co))
                else:
                    tail = parts[k:]
                    for q in qs[seen[0] :]:
                        co = get(q + tail)
                        if co:
                            seen[1].append((q, k, co))
                seen[0] = len(qs)
            found += seen[1]
        return found

    def _phrase_effect(self, parts: tuple[str, ...]) -> tuple[int, int, list, list]:
        """(tokens saved, occurrences where it fires, left overlaps, right overlaps) if P were added now
        (the overlaps are only looked up as far as needed: none where it would not fire)."""
        if not self.fired:  # nothing chosen yet: no containment, no overlap, every word loose
            return self._phrase_effect_alone(parts)
        if parts in self.fired:
            return 0, 0, [], []
        fires = self.counts.phrases.get(parts, 0)
        for q in self._containing.get(parts, ()):
            fires -= self.fired[q]
        if fires <= 0:
            return 0, 0, [], []
        left = self._overlapping(parts, right=False)
        fires -= sum(co for _, _, co in left)
        # A phrase overlapping itself (' very very' in ' very very very') fires only at the leftmost copy.
        n = len(parts)
        if parts.count(parts[0]) > 1:  # (a copy overlapping P's start begins with P's first word)
            for k in range(1, n):
                if parts[k:] == parts[: n - k]:
                    fires -= self.counts.phrases.get(parts + parts[n - k :], 0)
        fires = max(0, fires)
        if not fires:
            return 0, 0, left, []
        right = self._overlapping(parts, right=True)
        span = self._span_tokens(parts)[0]
        gain = fires * (span - 1)
        for q, k, co in right:
            # There q fired, covering P's last k words: before, P's prefix + 1 token; after, 1 token + q's
            # other words, now loose.
            co = min(co, self.fired[q], fires)
            prefix = self._span_tokens(parts[: len(parts) - k])[0]
            rest = sum(self.pieces_now(w) for w in q[k:])
            gain += co * (prefix - rest) - co * (span - 1)
        return gain, fires, left, right

    def _phrase_effect_alone(self, parts: tuple[str, ...]) -> tuple[int, int, list, list]:
        """:meth:`_phrase_effect` while no phrase is chosen (the same figures, without the index look-ups)."""
        phrases = self.counts.phrases
        fires = phrases.get(parts, 0)
        n = len(parts)
        if parts.count(parts[0]) > 1:
            for k in range(1, n):
                if parts[k:] == parts[: n - k]:
                    fires -= phrases.get(parts + parts[n - k :], 0)
        if fires <= 0:
            return 0, 0, [], []
        whole, seg, pieces = self.whole, self.seg, self.space.pieces
        span = 0
        for w in parts:
            if w in whole:
                span += 1
            else:
                s = seg.get(w)
                span += len(s) if s is not None else len(pieces(w))
        return fires * (span - 1), fires, [], []

    def _take_phrase(self, parts: tuple[str, ...]) -> int:
        gain, fires, _, right = self._phrase_effect(parts)
        if fires <= 0:
            return 0
        _, loose, used = self._span_tokens(parts)
        n = len(parts)
        for sub in used:  # chosen phrases inside P stop firing where P fires
            self.fired[sub] = max(0, self.fired[sub] - fires)
        for i in loose:
            self._set_count(parts[i], max(0, self.remaining.get(parts[i], 0) - fires))
        for q, k, co in right:
            co = min(co, self.fired[q], fires)
            self.fired[q] -= co
            for w in q[k:]:  # q's other words go loose there
                self._set_count(w, self.remaining.get(w, 0) + co)
            for i in loose:  # P's words that q covered there were not counted as loose
                if i >= n - k:
                    self._set_count(parts[i], self.remaining.get(parts[i], 0) + co)
        self.fired[parts] = fires
        self._fired_first.add(parts[0])
        for size in range(2, n):
            for i in range(0, n - size + 1):
                self._containing[parts[i : i + size]].append(parts)
        if self._overlaps is not None:
            self._overlaps.add(parts)
        else:
            for k in range(1, n):
                self._by_prefix[parts[:k]].append(parts)
                self._by_suffix[parts[n - k :]].append(parts)
        return gain


def _pair_occurrences(seg: list[str] | tuple[str, ...]) -> dict[tuple[str, str], int]:
    """Non-overlapping adjacent pairs, left to right, as BPE merges them.

    ['a', 'a', 'a'] -> {('a', 'a'): 1};  ['x', 'y', 'x', 'y'] -> {('x', 'y'): 2, ('y', 'x'): 1}
    """
    pairs = list(zip(seg, seg[1:]))
    if len(set(pairs)) == len(pairs):  # (most words: no pair comes twice, so each counts once)
        return dict.fromkeys(pairs, 1)
    out: Counter = Counter()
    last: tuple[str, str] | None = None
    last_end = -1
    for i in range(len(seg) - 1):
        pair = (seg[i], seg[i + 1])
        if pair == last and last_end == i:
            last_end = -1  # overlapping repeat: 'aaa' has one mergeable ('a','a'), not two
            continue
        out[pair] += 1
        last, last_end = pair, i + 1
    return out


def _merge_seg(seg: list[str], a: str, b: str, merged: str) -> list[str]:
    """['x', 'a', 'b', 'a', 'b'], a, b -> ['x', 'ab', 'ab'] (left to right, like BPE)."""
    out, i = [], 0
    while i < len(seg):
        if i + 1 < len(seg) and seg[i] == a and seg[i + 1] == b:
            out.append(merged)
            i += 2
        else:
            out.append(seg[i])
            i += 1
    return out


# ---------------------------------------------------------------------------------------------------
# Selection


@dataclass
class SelectSettings:
    """Knobs of the candidate search. Each field's comment is its help text."""

    max_new: int = 16384  # how many candidates to rank (the curve's x range)
    min_count: int = 5  # fewer occurrences than this: not a candidate
    min_docs: int = 3  # in fewer documents than this: not a candidate (a term of one document is not a domain term)
    kinds: tuple[str, ...] = KINDS  # which kinds of candidate to consider
    allow_digits: bool = False  # SmolLM2 and others split numbers digit by digit on purpose
    max_phrase_words: int = 4  # longest phrase, in words
    min_cohesion: float = 0.0  # leave out phrases whose last word follows their other words in less than this share of those words' occurrences (0: keep all)
    min_groups: int = 1  # words and phrases found in fewer groups of documents (sources, sites: analyze's groups) than this are not candidates (a template of one site is not a domain term; 1: off)

    def __post_init__(self) -> None:
        problems = []
        if self.max_new < 1:
            problems.append(f"--max-new must be at least 1, got {self.max_new}")
        if self.min_count < 1:
            problems.append(f"--min-count must be at least 1, got {self.min_count}")
        if self.min_docs < 1:
            problems.append(f"--min-docs must be at least 1, got {self.min_docs}")
        bad = [k for k in self.kinds if k not in KINDS]
        if bad or not self.kinds:
            problems.append(f"--kinds must be a comma-separated subset of {','.join(KINDS)}, got {','.join(self.kinds) or '(empty)'}")
        if not 2 <= self.max_phrase_words <= 6:
            problems.append(f"--max-phrase-words must be between 2 and 6, got {self.max_phrase_words}")
        if not 0 <= self.min_cohesion <= 1:
            problems.append(f"--min-cohesion must be a share between 0 and 1, got {self.min_cohesion}")
        if isinstance(self.min_groups, bool) or not isinstance(self.min_groups, int) or self.min_groups < 1:
            problems.append(f"--min-groups must be a whole number of at least 1, got {self.min_groups!r}")
        if problems:
            raise VocabxError("; ".join(problems))


@_gc_paused()
def select_candidates(
    counts: Counts,
    space: TokenSpace,
    settings: SelectSettings,
    *,
    weights: Callable[[Candidate], float] | None = None,
    progress: Callable[[int], None] | None = None,
    on_chosen: Callable[[Candidate], None] | None = None,
    spread: "GroupSpread | None" = None,
) -> tuple[list[Candidate], SavingsModel]:
    """Rank candidates greedily by marginal saving (times an optional weight, such as specificity).

    Lazy greedy: every candidate's saving can only fall as others are added, so a popped candidate
    whose re-computed score still beats the next one's stale score is the true best. With ``spread``
    (:func:`group_spread`), words and phrases found in fewer than ``settings.min_groups`` groups are
    left out, and each chosen one records its number of groups.
    """
    model = SavingsModel(counts, space)
    weight = weights or (lambda cand: 1.0)
    heap: list[tuple[float, int, int, Candidate]] = []
    serial = 0

    def push(cand: Candidate) -> None:
        nonlocal serial
        gain = model.gain(cand)
        if gain > 0:
            score = gain * weight(cand)
            if score > 0:
                heapq.heappush(heap, (-score, gain, serial, cand))
                serial += 1

    # the first scores, heapified at once (entries are totally ordered, so pops do not depend on how);
    # without weights, phrases enter as seeds and become candidates only if they are popped
    table = counts.phrase_table if weights is None else None
    if table is not None and not table.valid_for(counts, settings.max_phrase_words):
        table = None
    for cand in _initial_candidates(counts, space, settings, model, seeds=weights is None, table=table, spread=spread):
        if type(cand) is _SeedRows:
            # phrase seeds from the table, gains already computed (all positive): entries as below
            gains, rows = cand.gains, cand.rows.tolist()
            heap += zip((-gains.astype(float)).tolist(), gains.tolist(), range(serial, serial + len(gains)), rows)
            serial += len(gains)
            if rows and _OverlapIndex.fits(table):  # (only these phrases can be chosen)
                model._overlaps = _OverlapIndex(table, settings.max_phrase_words, [table.keys[r] for r in rows])
            continue
        gain = model._phrase_effect(cand.parts)[0] if isinstance(cand, _PhraseSeed) else model.gain(cand)
        if gain > 0:
            score = gain * weight(cand)
            if score > 0:
                heap.append((-score, gain, serial, cand))
                serial += 1
    heapq.heapify(heap)
    chosen: list[Candidate] = []
    while heap and len(chosen) < settings.max_new:
        neg_score, _, _, cand = heapq.heappop(heap)
        if type(cand) is int:  # a row of the phrase table (no weights): a Candidate only once chosen
            gain = model._phrase_effect(table.keys[cand])[0]  # type: ignore[union-attr]
            score = float(gain)
        else:
            if isinstance(cand, _PhraseSeed):
                cand = cand.candidate(space)
            gain = model.gain(cand)
            score = gain * weight(cand)
        if gain <= 0 or score <= 0:
            continue
        if heap and score < -heap[0][0] - 1e-9:
            heapq.heappush(heap, (-score, gain, serial, cand))
            serial += 1
            continue
        if type(cand) is int:
            cand = _table_candidate(table, cand, counts, space)  # type: ignore[arg-type]
        if cand.kind == "subword" and not _merge_eligible(cand, model, settings):
            continue
        cand.tokens_saved = model.apply(cand)
        if not cand.base_pieces:  # (a phrase from the table: see _table_candidate)
            cand.base_pieces = [piece for p in cand.parts or () for piece in space.pieces(p)]
        cand.score = round(score, 3)
        cand.rank = len(chosen) + 1
        cand.cumulative_saved = model.saved
        if spread is not None:
            cand.groups = spread.of(cand)
        chosen.append(cand)
        if progress is not None:
            progress(1)
        if on_chosen is not None:
            on_chosen(cand)
        if cand.kind == "subword":
            for new in _new_merges(cand.token, model, space, settings):
                push(new)
    return chosen, model


class _PhraseSeed:
    """A phrase candidate not built yet: most phrases are never popped from the selection heap."""

    __slots__ = ("parts", "token", "surface", "count", "docs")

    def __init__(self, parts: tuple[str, ...], token: str, surface: str, count: int, docs: int):
        self.parts, self.token, self.surface, self.count, self.docs = parts, token, surface, count, docs

    def candidate(self, space: TokenSpace) -> Candidate:
        pieces = [piece for p in self.parts for piece in space.pieces(p)]
        return Candidate(self.token, self.surface, "phrase", self.count, self.docs, pieces, parts=list(self.parts))


class _SeedRows:
    """Phrase seeds as rows of a :class:`_PhraseTable`, with their gains (in table order)."""

    __slots__ = ("rows", "gains")

    def __init__(self, rows: Any, gains: Any):
        self.rows, self.gains = rows, gains


def _table_candidate(table: _PhraseTable, row: int, counts: Counts, space: TokenSpace) -> Candidate:
    """The phrase candidate of a table row; its base pieces are left empty until it is chosen (most
    popped phrases are not)."""
    parts = table.keys[row]
    surfaces = counts.surfaces
    surface = "".join([surfaces.get(p, p) for p in parts])
    return Candidate("".join(parts), surface, "phrase", int(table.count[row]), int(table.docs[row]), [], parts=list(parts))


def cohesion(parts: tuple[str, ...], count: int, counts: Counts) -> float:
    """The share of the occurrences of a phrase's other words that its last word follows: ``count`` (the
    phrase's) over the count of its first word (two words) or of its phrase without the last word. 1.0
    when that count is unknown (pruned from the table). " signs and symptoms" is near 1 in medical text,
    " of the" about 0.3: whether " the" comes after " of" is a guess, and a token for it taxes every
    " of" that the model must price both ways (benchmarks/RESULTS.md)."""
    head = counts.words.get(parts[0], 0) if len(parts) == 2 else counts.phrases.get(parts[:-1], 0)
    return min(1.0, count / head) if head else 1.0


@dataclass
class GroupSpread:
    """In how many groups of documents (a corpus's sources: sites, firms, files) each word and phrase that
    passes the count rules occurs; ``n`` groups in all."""

    n: int
    words: dict[str, int]
    phrases: dict[tuple[str, ...], int]

    def of(self, cand: Candidate) -> int | None:
        """The candidate's number of groups (None for subwords, which are not filtered by groups)."""
        if cand.kind == "word":
            return self.words.get(cand.token, 0)
        if cand.kind == "phrase" and cand.parts:
            return self.phrases.get(tuple(cand.parts), 0)
        return None


def _group_key(group: Any) -> Any:
    """A group label as a dict key: a JSON list or object label becomes its JSON text."""
    if isinstance(group, (str, int, float, bool, type(None))):
        return group
    return json.dumps(group, sort_keys=True, default=str)


def group_spread(texts: list[str], groups: list[Any], counts: Counts, space: TokenSpace, settings: SelectSettings) -> GroupSpread:
    """Count each group's documents on its own and note, for every word and phrase of ``counts`` that
    passes ``settings``' count rules, how many groups it occurs in.

    ``groups[i]`` labels ``texts[i]``. A phrase that a group's count pruned as rare there (see
    :func:`count_corpus`) does not count as occurring in it. Costs about one more count of the corpus.

    >>> spread = group_spread(texts, ["GARD", "GARD", "NIDDK"], counts, space, SelectSettings())  # doctest: +SKIP
    >>> spread.n, spread.phrases[("Ġsigns", "Ġand", "Ġsymptoms")]                                 # doctest: +SKIP
    (2, 2)
    """
    if len(texts) != len(groups):
        raise VocabxError(f"got {len(texts)} documents but {len(groups)} group labels; give one label per document")
    by_group: dict[Any, list[str]] = {}
    for text, group in zip(texts, groups):
        by_group.setdefault(_group_key(group), []).append(text)
    min_count, min_docs, max_words = settings.min_count, settings.min_docs, settings.max_phrase_words
    word_docs, phrase_docs = counts.word_docs, counts.phrase_docs
    words = dict.fromkeys((w for w, c in counts.words.items() if c >= min_count and word_docs[w] >= min_docs), 0)
    phrases = dict.fromkeys(
        (p for p, c in counts.phrases.items() if c >= min_count and len(p) <= max_words and phrase_docs[p] >= min_docs), 0
    )
    for docs in by_group.values():
        size = sum(len(t) for t in docs)
        # (a small group is counted on this core: forking a splitting worker would cost more than it saves)
        part = count_corpus(docs, space, max_phrase_words=max_words, phrases=bool(phrases), workers=None if size > 2_000_000 else 1)
        for w in part.words.keys() & words.keys():
            words[w] += 1
        for p in part.phrases.keys() & phrases.keys():
            phrases[p] += 1
    return GroupSpread(len(by_group), words, phrases)


def _seed_rows(
    table: _PhraseTable, counts: Counts, space: TokenSpace, settings: SelectSettings, model: SavingsModel, spread: "GroupSpread | None" = None
) -> _SeedRows:
    """The phrase seeds of :func:`_initial_candidates` with the gains that :meth:`SavingsModel._phrase_effect`
    gives them before anything is applied, worked out over the whole table at once; the rows in table
    (``Counts.phrases``) order, only those with a positive gain.
    """
    import numpy as np

    max_words = settings.max_phrase_words
    rows = np.flatnonzero(
        (table.count >= settings.min_count) & (table.length <= max_words) & (table.docs >= settings.min_docs)
    )
    matrix = table.matrix[rows, :max_words]
    used = np.unique(matrix)
    used = used[used >= 0]
    # per word: may start a phrase, may follow another, its pieces now (nothing is applied yet)
    n_all = len(table.words) + 1  # (index -1, after a phrase's end, reads the last entry)
    first_ok = np.zeros(n_all, dtype=bool)
    rest_ok = np.ones(n_all, dtype=bool)
    span_of = np.zeros(n_all, dtype=np.int64)
    surfaces, words, allow = counts.surfaces, table.words, settings.allow_digits
    for i in used.tolist():
        w = words[i]
        first_ok[i], rest_ok[i] = _phrase_word_ok(surfaces.get(w, w), allow)
        span_of[i] = model.pieces_now(w)
    keep = first_ok[matrix[:, 0]] & rest_ok[matrix[:, 1:]].all(axis=1)
    rows, matrix = rows[keep], matrix[keep]
    keys = table.keys
    joined = {words for words in space.joined_words() if words in counts.phrases}  # (usually none)
    if joined:
        in_vocab = np.fromiter((keys[r] in joined for r in rows.tolist()), dtype=bool, count=len(rows))
        rows, matrix = rows[~in_vocab], matrix[~in_vocab]
    if settings.min_cohesion > 0:
        cohesive = np.fromiter(
            (cohesion(keys[r], c, counts) >= settings.min_cohesion for r, c in zip(rows.tolist(), table.count[rows].tolist())),
            dtype=bool,
            count=len(rows),
        )
        rows, matrix = rows[cohesive], matrix[cohesive]
    if spread is not None and settings.min_groups > 1:
        found = spread.phrases
        spread_ok = np.fromiter((found.get(keys[r], 0) >= settings.min_groups for r in rows.tolist()), dtype=bool, count=len(rows))
        rows, matrix = rows[spread_ok], matrix[spread_ok]
    fires = table.count[rows].astype(np.int64)
    # a phrase overlapping itself fires only at the leftmost copy (rows whose first word comes again)
    again = np.flatnonzero((matrix[:, 1:] == matrix[:, :1]).any(axis=1))
    phrases = counts.phrases
    for j in again.tolist():
        parts = keys[int(rows[j])]
        n = len(parts)
        for k in range(1, n):
            if parts[k:] == parts[: n - k]:
                fires[j] -= phrases.get(parts + parts[n - k :], 0)
    gains = fires * (span_of[matrix].sum(axis=1) - 1)
    gains[fires <= 0] = 0
    positive = gains > 0
    return _SeedRows(rows[positive], gains[positive])


def _initial_candidates(
    counts: Counts,
    space: TokenSpace,
    settings: SelectSettings,
    model: SavingsModel,
    seeds: bool = False,
    table: _PhraseTable | None = None,
    spread: "GroupSpread | None" = None,
) -> Iterator[Candidate | _PhraseSeed | _SeedRows]:
    """Words, phrases (as :class:`_PhraseSeed` with ``seeds``; all at once as :class:`_SeedRows` with a
    ``table``) and merges that pass the candidate rules."""
    vocab = space.vocab
    surfaces = counts.surfaces
    min_count, min_docs, allow_digits = settings.min_count, settings.min_docs, settings.allow_digits
    min_groups = settings.min_groups if spread is not None else 1
    if "word" in settings.kinds:
        word_docs = counts.word_docs
        word_groups = spread.words if spread is not None else {}
        for word, count in counts.words.items():
            if count < min_count or word_docs[word] < min_docs or word in vocab:
                continue
            if min_groups > 1 and word_groups.get(word, 0) < min_groups:
                continue
            pieces = space.pieces(word)
            if len(pieces) < 2 or not _allowed(surfaces.get(word, word), allow_digits) or space.has_fallback(pieces):
                continue
            yield Candidate(word, surfaces.get(word, word), "word", count, word_docs[word], list(pieces))
    if "phrase" in settings.kinds and space.marker == "Ġ" and table is not None:
        if model.fired or not seeds:
            raise ValueError("table seeds are the gains of a fresh model")
        yield _seed_rows(table, counts, space, settings, model, spread)
    elif "phrase" in settings.kinds and space.marker == "Ġ":
        phrase_docs, max_words, pieces_of = counts.phrase_docs, settings.max_phrase_words, space.pieces
        # per word: (its surface, whether it may be a phrase's first word, whether it may follow another)
        fit: dict[str, tuple[str, bool, bool]] = {}
        for parts, count in counts.phrases.items():
            if count < min_count or len(parts) > max_words:
                continue
            docs = phrase_docs[parts]
            if docs < min_docs:
                continue
            words = []
            for p in parts:
                f = fit.get(p)
                if f is None:
                    surface = surfaces.get(p, p)
                    f = fit[p] = (surface, *_phrase_word_ok(surface, allow_digits))
                words.append(f)
            if not words[0][1] or not all(f[2] for f in words[1:]):
                continue
            token = "".join(parts)
            if token in vocab:
                continue
            if settings.min_cohesion > 0 and cohesion(parts, count, counts) < settings.min_cohesion:
                continue
            if min_groups > 1 and spread.phrases.get(parts, 0) < min_groups:  # type: ignore[union-attr]
                continue
            if seeds:
                yield _PhraseSeed(parts, token, "".join([f[0] for f in words]), count, docs)
                continue
            pieces = [piece for p in parts for piece in pieces_of(p)]
            yield Candidate(token, "".join(f[0] for f in words), "phrase", count, docs, pieces, parts=list(parts))
    if "subword" in settings.kinds and space.family in ("byte_bpe", "sp_bpe"):
        # the model's pair statistics, still those of the base segmentation: nothing is applied yet
        for (a, b), count in model.pair_count.items():
            cand = _merge_candidate(a, b, count, model.pair_words[(a, b)], space, settings)
            if cand is not None:
                yield cand


def _merge_candidate(
    a: str, b: str, count: int, in_words: set[str], space: TokenSpace, settings: SelectSettings
) -> Candidate | None:
    merged = a + b
    if count < settings.min_count or merged in space.vocab or len(in_words) < 2:
        return None
    surface = _surface_of_piece(merged, space)
    if surface is None or not _allowed(surface, settings.allow_digits):
        return None
    return Candidate(merged, surface, "subword", count, len(in_words), [a, b], merge=[a, b])


def _merge_eligible(cand: Candidate, model: SavingsModel, settings: SelectSettings) -> bool:
    words = {w for w in model.pair_words.get((cand.merge[0], cand.merge[1]), ()) if w not in model.whole}  # type: ignore[index]
    cand.doc_count = len(words)
    return len(words) >= 2


def _new_merges(token: str, model: SavingsModel, space: TokenSpace, settings: SelectSettings) -> Iterator[Candidate]:
    """After a merge creates ``token``, the pairs it forms with its neighbours become candidates."""
    for pair in sorted(model.new_pairs):
        count = model.pair_count.get(pair, 0)
        cand = _merge_candidate(pair[0], pair[1], count, model.pair_words[pair], space, settings)
        if cand is not None:
            yield cand


_BYTE_DECODER: dict[str, int] | None = None


def _byte_decoder() -> dict[str, int]:
    """The inverse of GPT-2's bytes-to-unicode map ('Ġ' -> 32)."""
    global _BYTE_DECODER
    if _BYTE_DECODER is None:
        bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
        cs = bs[:]
        n = 0
        for b in range(256):
            if b not in bs:
                bs.append(b)
                cs.append(256 + n)
                n += 1
        _BYTE_DECODER = {chr(c): b for b, c in zip(bs, cs)}
    return _BYTE_DECODER


_BYTE_ENCODER: list[str] | None = None


def _byte_encoder() -> list[str]:
    """GPT-2's bytes-to-unicode map as a list: byte -> character (32 -> 'Ġ')."""
    global _BYTE_ENCODER
    if _BYTE_ENCODER is None:
        table = [""] * 256
        for ch, b in _byte_decoder().items():
            table[b] = ch
        _BYTE_ENCODER = table
    return _BYTE_ENCODER


def _surface_of_piece(piece: str, space: TokenSpace) -> str | None:
    """'Ġhepat' -> ' hepat' (None when the piece is not whole UTF-8 characters)."""
    if space.family == "byte_bpe":
        decoder = _byte_decoder()
        try:
            return bytes(decoder[ch] for ch in piece).decode("utf-8")
        except (KeyError, UnicodeDecodeError):
            return None
    if space.marker:
        return piece.replace(space.marker, " ")
    return piece


# ---------------------------------------------------------------------------------------------------
# Projection, specificity, curves


def project(chosen: list[Candidate], counts: Counts, space: TokenSpace, points: list[int]) -> list[dict]:
    """Apply the ranked candidates in order to another corpus's counts; the savings at each N in points.

    With the corpus's runs of letter-words (``count_corpus(..., runs=True)``) the projection is exact:
    words and subwords through the savings model, phrases by matching them leftmost-longest in every
    run, as the extended tokenizer's pre-tokenizer does. Without runs, phrase overlaps are estimated.
    """
    wanted = sorted(set(points))
    if counts.runs is None:
        model = SavingsModel(counts, space)
        curve, k = [], 0
        for i, cand in enumerate(chosen, 1):
            model.apply(cand)
            while k < len(wanted) and wanted[k] == i:
                curve.append(_point(i, model.saved, model.base_tokens))
                k += 1
        return curve
    model = SavingsModel(counts, space)
    phrases: set[tuple[str, ...]] = set()
    longest = 1
    curve, k = [], 0
    for i, cand in enumerate(chosen, 1):
        if cand.kind == "phrase":
            assert cand.parts is not None
            phrases.add(tuple(cand.parts))
            longest = max(longest, len(cand.parts))
        else:
            model.apply(cand)
        while k < len(wanted) and wanted[k] == i:
            saved = model.saved + _phrase_savings(counts.runs, phrases, longest, model) if phrases else model.saved
            curve.append(_point(i, saved, model.base_tokens))
            k += 1
    return curve


def _phrase_savings(runs: Counter, phrases: set[tuple[str, ...]], longest: int, model: SavingsModel) -> int:
    """Tokens the phrases save in every run, matched leftmost-longest (a phrase ending a run needs end_ok)."""
    firsts = {p[0] for p in phrases}
    saved = 0
    for (words, end_ok), count in runs.items():
        n = len(words)
        i, run_saved = 0, 0
        while i < n - 1:
            if words[i] in firsts:
                for j in range(min(n, i + longest), i + 1, -1):
                    if (j < n or end_ok) and words[i:j] in phrases:
                        run_saved += sum(model.pieces_now(w) for w in words[i:j]) - 1
                        i = j
                        break
                else:
                    i += 1
            else:
                i += 1
        saved += count * run_saved
    return saved


def _point(n: int, saved: int, base: int) -> dict:
    return {"n": n, "tokens_saved": saved, "fraction": round(saved / base, 6) if base else 0.0}


def curve_points(n: int) -> list[int]:
    """Log-spaced N: 1, 2, 4, ... and n itself. 100 -> [1, 2, 4, 8, 16, 32, 64, 100]"""
    points, p = [], 1
    while p < n:
        points.append(p)
        p *= 2
    if n >= 1:
        points.append(n)
    return points


def specificity(domain: Counts, reference: Counts) -> Callable[[str, tuple[str, ...] | None], float]:
    """Weighted log-odds with an informative Dirichlet prior (Monroe et al. 2008), as a z-score.

    Returns a function of a word (or a phrase's parts): high for terms over-represented in the domain,
    near zero for terms as common everywhere, negative for terms rarer in the domain.
    """
    prior_scale = 1000.0
    n_d, n_r = max(domain.n_words, 1), max(reference.n_words, 1)
    n_all = n_d + n_r

    def z(y_d: int, y_r: int) -> float:
        alpha = prior_scale * (y_d + y_r) / n_all + 0.01
        a0 = prior_scale + 0.01
        delta = math.log((y_d + alpha) / (n_d + a0 - y_d - alpha)) - math.log((y_r + alpha) / (n_r + a0 - y_r - alpha))
        var = 1.0 / (y_d + alpha) + 1.0 / (y_r + alpha)
        return delta / math.sqrt(var)

    def score(token: str, parts: tuple[str, ...] | None = None) -> float:
        if parts is not None:
            return z(domain.phrases.get(parts, 0), reference.phrases.get(parts, 0))
        return z(domain.words.get(token, 0), reference.words.get(token, 0))

    return score


def specificity_weight(z: float) -> float:
    """z-score -> weight in (0, 1]: 1 for clearly domain-specific terms, small for general ones.

    A logistic centred at z = 2 (about two standard deviations over-represented).
    """
    return 1.0 / (1.0 + math.exp(-(z - 2.0)))


def knee(curve: list[dict]) -> int:
    """The N where the curve (fraction against N) bends most: Kneedle's maximum distance above the chord."""
    if not curve:
        return 0
    if len(curve) < 3:
        return curve[-1]["n"]
    xs = [float(p["n"]) for p in curve]
    ys = [p["fraction"] for p in curve]
    x0, x1, y0, y1 = xs[0], xs[-1], ys[0], ys[-1]
    if y1 <= y0 or x1 <= x0:
        return curve[-1]["n"]
    best, best_n = -1.0, curve[-1]["n"]
    for x, y, p in zip(xs, ys, curve):
        d = (y - y0) / (y1 - y0) - (x - x0) / (x1 - x0)
        if d > best:
            best, best_n = d, p["n"]
    return best_n


def fragmentation(counts: Counts, space: TokenSpace, top: int = 8) -> dict[str, int]:
    """Word occurrences by how many pieces the base tokenizer cuts them into: {'1': .., ..., '8+': ..}."""
    hist = Counter()
    for word, count in counts.words.items():
        n = len(space.pieces(word))
        hist[str(n) if n < top else f"{top}+"] += count
    return {k: hist.get(k, 0) for k in [str(i) for i in range(1, top)] + [f"{top}+"]}


# ---------------------------------------------------------------------------------------------------
# The whole analysis


@dataclass
class AnalyzeResult:
    """The report dict (schema vocabx.report/1) and the ranked candidates behind it."""

    report: dict
    candidates: list[Candidate]


def split_holdout(texts: Iterable[str], fraction: float, seed: int) -> tuple[Iterator[str], list[str]]:
    """Route each document to training or holdout by a seeded hash of its text.

    Returns an iterator of training texts and the list that receives holdout texts as the iterator is
    consumed. Exact duplicates of a document go to the same side, so the holdout never contains text
    seen in training.
    """
    held: list[str] = []
    is_held = holdout_test(fraction, seed)

    def train() -> Iterator[str]:
        for text in texts:
            if is_held(text):
                held.append(text)
            else:
                yield text

    return train(), held


def holdout_test(fraction: float, seed: int) -> Callable[[str], bool]:
    """Whether a document goes to the holdout: a seeded hash of its text below ``fraction`` of the range."""
    threshold = int(fraction * 2**64)
    salt = str(seed).encode()

    def is_held(text: str) -> bool:
        digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8, key=salt).digest()
        return int.from_bytes(digest, "big") < threshold

    return is_held


@_gc_paused()
def analyze(
    texts: Iterable[str],
    tokenizer: Any,
    *,
    reference: Iterable[str] | None = None,
    holdout: float | None = 0.1,
    seed: int = 0,
    settings: SelectSettings | None = None,
    model_info: dict | None = None,
    sources: list[str] | None = None,
    reference_sources: list[str] | None = None,
    counts: Counts | None = None,
    held_counts: Counts | None = None,
    progress: Callable[[int], Any] | bool | None = None,
    groups: Iterable[Any] | None = None,
) -> AnalyzeResult:
    """Analyze a domain corpus under a tokenizer: ranked candidates, savings curves, recommended N.

    ``holdout`` is the fraction of documents kept out of selection to measure the honest curve (None or
    0 for none). ``reference``: general text; candidates common there rank lower (:func:`specificity`),
    and the report's ``reference_curve`` projects how much of its first documents (``_REFERENCE_SAMPLE_CHARS``)
    they rewrite. ``counts`` (and ``held_counts``) skip counting, for analysis from merged shard counts.
    ``groups`` labels each text with its group (its source: a site, a firm, a file; ``TextStream.groups``
    from :func:`vocabx.read_corpus`); with ``settings.min_groups`` above 1, words and phrases found in
    fewer groups of the analyzed documents are left out (:func:`group_spread`). ``progress``: a callable
    taking the bytes just counted (a bar's ``update``), True for a bar of its own, or None.
    """
    settings = settings or SelectSettings()
    if holdout is not None and holdout != 0 and not 0 < holdout <= 0.5:
        raise VocabxError(f"--holdout must be in (0, 0.5], got {holdout}")
    started = time.monotonic()
    # (forked before counting, while this process is small; none when the counts are given)
    examples = _Examples.start() if counts is None else _Examples()
    try:
        space = TokenSpace.of(tokenizer)
        notes: list[str] = []
        grouped = settings.min_groups > 1
        if grouped and (counts is not None or groups is None):
            raise VocabxError(
                f"--min-groups {settings.min_groups} needs each document's group: pass a corpus with --group-field FIELD "
                "(or several files, each a group); merged shard counts keep no groups"
            )
        spread = None
        if counts is None:
            train_texts: Iterable[str] = texts
            held: list[str] = []
            train_groups: list[Any] = []
            if grouped:
                all_texts = list(texts)
                labels = list(groups)  # type: ignore[arg-type]  # (read after the texts: a TextStream fills it as it goes)
                if len(labels) != len(all_texts):
                    raise VocabxError(f"got {len(all_texts)} documents but {len(labels)} group labels; give one label per document")
                is_held = holdout_test(holdout, seed) if holdout else (lambda text: False)
                sides = [is_held(t) for t in all_texts]
                held = [t for t, h in zip(all_texts, sides) if h]
                train_texts = [t for t, h in zip(all_texts, sides) if not h]
                train_groups = [_group_key(g) for g, h in zip(labels, sides) if not h]
                n_groups = len(set(train_groups))
                if n_groups < settings.min_groups:
                    raise VocabxError(
                        f"--min-groups {settings.min_groups} but the analyzed documents come from {n_groups} group(s); "
                        "lower --min-groups or check --group-field"
                    )
            elif holdout:
                train_texts, held = split_holdout(texts, holdout, seed)
            with byte_progress(progress, "counting", getattr(texts, "approx_bytes", None)) as update:
                counts = count_corpus(train_texts, space, max_phrase_words=settings.max_phrase_words, phrases="phrase" in settings.kinds, progress=update)
            if grouped:
                spread = group_spread(train_texts, train_groups, counts, space, settings)  # type: ignore[arg-type]
            if held:
                held_counts = count_corpus(held, space, max_phrase_words=settings.max_phrase_words, phrases="phrase" in settings.kinds, runs=True)
            elif holdout:
                notes.append(f"--holdout {holdout} selected no documents; only the in-sample curve is shown.")
        _check_size(counts, sources)
        ref_counts = None
        weights = None
        spec_fn = None
        ref_sample_counts = None
        if reference is not None:
            # Its first documents are counted with their runs of words, for an exact projection of what
            # the new tokens rewrite in general text (what general text pays for right after extend); a
            # reference longer than that is counted whole once more, without runs.
            ref_sample, rest = _head(reference, _REFERENCE_SAMPLE_CHARS)
            ref_sample_counts = count_corpus(ref_sample, space, max_phrase_words=settings.max_phrase_words, phrases="phrase" in settings.kinds, runs=True)
            ref_counts = ref_sample_counts
            if rest is not None:
                ref_counts = count_corpus(itertools.chain(ref_sample, rest), space, max_phrase_words=settings.max_phrase_words, phrases="phrase" in settings.kinds)
            spec_fn = specificity(counts, ref_counts)
            shared = sum(c for w, c in ref_counts.words.items() if w in counts.words) / max(ref_counts.n_words, 1)
            if shared < 0.3:
                notes.append(
                    f"the reference corpus shares only {shared:.0%} of its word occurrences with the domain corpus "
                    "(another language or script?); specificity scores compare little"
                )

            def weights(cand: Candidate) -> float:  # noqa: F811 - the weighted variant
                if cand.kind == "subword":
                    return 1.0
                z = spec_fn(cand.token, tuple(cand.parts) if cand.parts else None)
                cand.specificity = round(z, 3)
                return specificity_weight(z)

        examples.begin(counts.examples)
        chosen, model = select_candidates(counts, space, settings, weights=weights, on_chosen=examples.add, spread=spread)
        found = examples.result()
        if not chosen:
            notes.append(
                "nothing worth adding was found: no word, subword or phrase is fragmented often enough "
                f"(min count {settings.min_count}, min documents {settings.min_docs})"
            )
        elif len(chosen) < settings.max_new:
            notes.append(f"--max-new {settings.max_new} is more than the {len(chosen)} candidates found; the curve stops at {len(chosen)}.")
        points = curve_points(len(chosen))
        in_sample = [_point(c.rank, c.cumulative_saved, model.base_tokens) for c in chosen if c.rank in set(points)]
        held_curve = project(chosen, held_counts, space, points) if held_counts is not None and held_counts.docs else None
        ref_curve = project(chosen, ref_sample_counts, space, points) if ref_sample_counts is not None and ref_sample_counts.docs else None
        recommended_n = knee(held_curve or in_sample)
        _group_variants(chosen)
        for cand, example in zip(chosen, found):
            cand.example = example

        info = dict(model_info or {})
        info.setdefault("vocab_size", len(space.vocab))
        info.setdefault("family", space.family)
        hidden, tied = info.get("hidden_size"), info.get("tied", True)
        report = {
            "schema": "vocabx.report/1",
            "vocabx_version": _version(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "model": info,
            "corpus": _corpus_summary(counts, model.base_tokens, sources) | ({"groups": spread.n} if spread is not None else {}),
            "reference": _corpus_summary(ref_counts, base_tokens(ref_counts, space), reference_sources) | {"projected_docs": ref_sample_counts.docs}
            if ref_counts is not None and ref_sample_counts is not None
            else None,
            "reference_curve": ref_curve,
            "settings": {**asdict(settings), "kinds": list(settings.kinds), "holdout": holdout, "seed": seed},
            "candidates": [c.as_dict() for c in chosen],
            "savings_curve": in_sample,
            "holdout_curve": held_curve,
            "recommended_n": recommended_n,
            "recommended": _recommended(recommended_n, in_sample, held_curve, hidden, tied, reference=ref_curve),
            "holdout": _corpus_summary(held_counts, base_tokens(held_counts, space), None) | {"fraction": holdout}
            if held_counts is not None and held_counts.docs
            else None,
            "fragmentation": {
                "domain": fragmentation(counts, space),
                "reference": fragmentation(ref_counts, space) if ref_counts else None,
            },
            "notes": notes,
            "seconds": round(time.monotonic() - started, 2),
        }
        return AnalyzeResult(report, chosen)
    finally:
        examples.close()


_REFERENCE_SAMPLE_CHARS = 5_000_000
"""The reference corpus's savings curve is projected on its first documents up to this many characters
(the whole of most references): an exact projection keeps every run of words of the text it covers,
and counting 5 MB again takes about a second."""


def _head(texts: Iterable[str], chars: int) -> tuple[list[str], Iterator[str] | None]:
    """The first documents of ``texts`` until they reach ``chars`` characters, and an iterator over the
    rest (None when ``texts`` ended first)."""
    it = iter(texts)
    head: list[str] = []
    size = 0
    for text in it:
        head.append(text)
        size += len(text)
        if size >= chars:
            return head, it
    return head, None


def base_tokens(counts: Counts, space: TokenSpace) -> int:
    """The corpus's token count under the base tokenizer, from its word table."""
    return sum(count * len(space.pieces(word)) for word, count in counts.words.items())


def _check_size(counts: Counts, sources: list[str] | None) -> None:
    where = " ".join(sources) if sources else "the corpus"
    if counts.docs < MIN_DOCS or counts.n_words < MIN_WORDS:
        raise VocabxError(
            f"{where} is too small to analyze: {counts.docs} documents and {counts.n_words} words after the holdout; "
            f"vocabx analyze needs at least {MIN_DOCS} documents and {MIN_WORDS} words"
        )


def _corpus_summary(counts: Counts | None, tokens: int, sources: list[str] | None) -> dict | None:
    if counts is None:
        return None
    words = counts.n_words
    out = {"docs": counts.docs, "bytes": counts.bytes, "words": words, "tokens": tokens, "tokens_per_word": round(tokens / words, 4) if words else 0.0}
    if sources is not None:
        out = {"sources": sources, **out}
    return out


def _recommended(n: int, in_sample: list[dict], held: list[dict] | None, hidden: int | None, tied: bool, reference: list[dict] | None = None) -> dict:
    def at(curve: list[dict] | None) -> float | None:
        if not curve:
            return None
        for p in curve:
            if p["n"] == n:
                return p["fraction"]
        return None

    out: dict[str, Any] = {"n": n, "fraction": at(in_sample), "holdout_fraction": at(held)}
    if reference is not None:
        out["reference_fraction"] = at(reference)
    if hidden:
        params = n * hidden * (1 if tied else 2)
        out["extra_parameters"] = params
        out["extra_mb"] = round(params * 4 / 2**20, 2)  # float32
    return out


def _group_variants(chosen: list[Candidate]) -> None:
    groups: dict[str, list[Candidate]] = defaultdict(list)
    for cand in chosen:
        groups[cand.surface.strip().lower()].append(cand)
    for members in groups.values():
        if len(members) > 1:
            for cand in members:
                cand.variants = [m.surface for m in members if m is not cand]


# Example texts above this many characters are searched by a worker process while the selection runs.
_EXAMPLES_IN_WORKER_CHARS = 200_000


class _Examples:
    """Each chosen candidate's example (its first match in the first documents), found by a worker
    process while the selection runs, or here afterwards.

    :meth:`start` forks the worker before counting, while this process is still small: forked later, it
    would share the counts' pages, and every page the selection then writes would be copied. After
    counting, :meth:`begin` hands it the documents (if they are worth it; otherwise it is stopped and the
    search happens here); ``add(candidate)`` as each is chosen sends chunks of surfaces; :meth:`result`
    returns the examples in the order added. The examples are the same either way.
    """

    CHUNK = 512

    def __init__(self) -> None:
        self.conn: Any = None
        self.process: Any = None
        self.docs: list[str] = []
        self.surfaces: list[str] = []
        self.sent = 0

    @classmethod
    def start(cls, workers: int | None = None) -> "_Examples":
        import multiprocessing

        out = cls()
        workers = _cores() if workers is None else workers
        if workers >= 2 and _can_fork():
            context = multiprocessing.get_context("fork")
            out.conn, child = context.Pipe()
            with _quiet_fork():
                out.process = context.Process(target=_examples_worker, args=(child,), daemon=True)
                out.process.start()
            child.close()
        return out

    def begin(self, docs: list[str], min_chars: int | None = None) -> None:
        self.docs = docs
        if self.conn is not None:
            if sum(map(len, docs)) > (_EXAMPLES_IN_WORKER_CHARS if min_chars is None else min_chars):
                self._send(docs)
            else:
                self.close()

    def add(self, cand: Candidate) -> None:
        self.surfaces.append(cand.surface)
        if self.conn is not None and len(self.surfaces) - self.sent >= self.CHUNK:
            self._send(self.surfaces[self.sent :])
            self.sent = len(self.surfaces)

    def _send(self, message: Any) -> None:
        try:
            self.conn.send(message)
        except OSError:  # (the worker is gone: everything is searched here)
            self.close()

    def result(self) -> list[str]:
        found = None
        if self.conn is not None:
            try:
                self.conn.send(self.surfaces[self.sent :])
                self.conn.send(None)
                found = self.conn.recv()
            except (EOFError, OSError):  # (the worker is gone: everything is searched here)
                pass
            self.close()
        if found is not None and len(found) == len(self.surfaces):
            return found
        finder = _FirstMatch(self.docs)
        return [finder.example(s) for s in self.surfaces]

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.conn.close()
            self.conn = None
        if self.process is not None:
            self.process.join(timeout=5)
            if self.process.is_alive():
                self.process.terminate()
            self.process = None


def _examples_worker(conn: Any) -> None:
    """The example worker: documents first (or None: nothing to do), then chunks of surfaces until
    None, answered with all their examples."""
    try:
        docs = conn.recv()
        if docs is None:
            return
        finder = _FirstMatch(docs)
        finder.prepare()
        found: list[str] = []
        while True:
            surfaces = conn.recv()
            if surfaces is None:  # (all answered at once: answering each chunk could fill the pipe both ways)
                conn.send(found)
                return
            found += [finder.example(s) for s in surfaces]
    except (EOFError, OSError, KeyboardInterrupt):
        return
    finally:
        conn.close()


class _FirstMatch:
    """The first match of many needles in a few documents, joined by a separator no needle contains.

    Needles made of space-led ASCII letter runs (' signs of liver') are looked up in an index of the
    runs ``' ?[A-Za-z]+'`` instead of scanning: where such a needle occurs, each of its words but the
    last is a whole run and the last begins one, all adjacent; and such runs spell the needle.
    Other needles are found with ``str.find``.
    """

    SEP = "\x00"

    def __init__(self, docs: list[str]):
        self.docs = docs
        self.joined = self.SEP.join(docs)
        self.offsets, at = [], 0  # where each document starts in the joined string
        for doc in docs:
            self.offsets.append(at)
            at += len(doc) + 1
        self._runs: list[str] | None = None

    def _index(self) -> None:
        import numpy as np

        pieces = _ASCII_RUN_SPLIT.split(self.joined)  # [gap, run, gap, run, ..., gap]
        ends = list(itertools.accumulate(map(len, pieces)))
        runs = pieces[1::2]
        starts = ends[::2][: len(runs)]  # a run starts where the gap before it ends
        ids: dict[str, int] = {}
        run_id = np.fromiter((ids.setdefault(run, len(ids)) for run in runs), np.int64, len(runs))
        order = np.argsort(run_id, kind="stable")  # the runs of each id, in text order
        bounds = np.searchsorted(run_id[order], np.arange(len(ids) + 1))
        self.np = np
        self._runs, self._ids, self._run_id, self._order, self._bounds = runs, ids, run_id, order, bounds
        self._starts = np.array(starts, dtype=np.int64)
        # adjacent[n]: run n + 1 starts where run n ends
        lengths = np.fromiter(map(len, runs), np.int64, len(runs))
        self._adjacent = np.append(self._starts[1:] == self._starts[:-1] + lengths[:-1], False)
        self._sorted = sorted(ids)
        self._rank = np.empty(len(ids), dtype=np.int64)  # run id -> its place in sorted order
        self._rank[[ids[r] for r in self._sorted]] = np.arange(len(ids))
        # the runs by their place in sorted order (in text order within each): those beginning with a
        # given word have adjacent places, so they are one slice
        run_rank = self._rank[run_id]
        self._by_rank = np.argsort(run_rank, kind="stable")
        self._rank_bounds = np.searchsorted(run_rank[self._by_rank], np.arange(len(ids) + 1))

    def prepare(self) -> None:
        """Build the index of letter runs now (otherwise the first look-up that needs it does)."""
        if self._runs is None:
            self._index()

    def example(self, needle: str, width: int = 60) -> str:
        """The needle's first match with ``width`` characters of context on each side ("" if none)."""
        j = self.find(needle)
        if j < 0:
            return ""
        k = bisect.bisect_right(self.offsets, j) - 1
        doc, i = self.docs[k], j - self.offsets[k]
        start, end = max(0, i - width), min(len(doc), i + len(needle) + width)
        return ("..." if start else "") + doc[start:end].replace("\n", " ") + ("..." if end < len(doc) else "")

    def find(self, needle: str) -> int:
        """Where needle first occurs in the joined documents, or -1."""
        if not needle or self.SEP in needle:
            for k, doc in enumerate(self.docs):
                i = doc.find(needle)
                if i >= 0:
                    return self.offsets[k] + i
            return -1
        words = _ASCII_RUN.findall(needle) if needle[0] == " " else None
        if not words or "".join(words) != needle or any(w[0] != " " for w in words):
            return self.joined.find(needle)
        self.prepare()
        last, ordered = words[-1], self._sorted
        i = bisect.bisect_left(ordered, last)
        if i == len(ordered) or not ordered[i].startswith(last):
            return -1  # no run begins with the last word
        whole = [self._ids.get(w, -1) for w in words[:-1]]
        if -1 in whole:
            return -1
        # the runs where a match can start: from the rarer of the rarest whole word's runs and the runs
        # beginning with the last word (their places in sorted order are [i, end)), back to the start
        end = bisect.bisect_left(ordered, last + "~", i)  # '~' sorts after every letter
        bounds, k = self._bounds, len(words)
        lasts = int(self._rank_bounds[end] - self._rank_bounds[i])
        a = min(range(len(whole)), key=lambda j: bounds[whole[j] + 1] - bounds[whole[j]]) if whole else -1
        if a < 0 or lasts <= bounds[whole[a] + 1] - bounds[whole[a]]:
            where = self._by_rank[self._rank_bounds[i] : self._rank_bounds[end]] - (k - 1)
            where = where[where >= 0]
            last_checked = True
        else:
            where = self._order[bounds[whole[a]] : bounds[whole[a] + 1]] - a
            where = where[(where >= 0) & (where + k <= len(self._runs))]
            last_checked = False
        for j, w in enumerate(whole):
            where = where[self._adjacent[where + j] & (self._run_id[where + j] == w)]
        if not last_checked:
            rank = self._rank[self._run_id[where + k - 1]]
            where = where[(rank >= i) & (rank < end)]
        return int(self._starts[where.min()]) if len(where) else -1


_ASCII_RUN = re.compile(" ?[A-Za-z]+")
_ASCII_RUN_SPLIT = re.compile("( ?[A-Za-z]+)")


def _version() -> str:
    from vocabx import __version__

    return __version__

"""Count a corpus's unique words and word n-grams in one streaming pass (step 1 of the analysis).

:func:`count_corpus` returns :class:`Counts`: every distinct pre-token ("word") and every run of 2 to
2 x ``max_phrase_words`` - 1 letter-words ("phrase"), each with its count and document count, each word's
first documents (:class:`FirstDocs`: subwords' document counts, examples), plus the n-gram table as numpy
columns (:class:`_PhraseTable`) for the selection's vectorized seeding, with a document of each phrase. Words and
n-grams are counted with numpy on 64-bit hashes of their token ids (:class:`_HashCounter`); rare n-grams
are pruned as the pass goes, so memory is bounded by what is kept. With two or more cores a forked worker
splits the next batch into words while this process counts the current one. Counts from shards merge
(:meth:`Counts.merge`) and are saved as versioned JSON (``vocabx.counts/1``).

What it leaves out: which of the counted words and phrases to add (:mod:`vocabx.analyze.selection`).
"""

from __future__ import annotations

import contextlib
import gc
import gzip
import itertools
import json
import os
import re
import sys
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, NamedTuple

from vocabx.analyze.space import (
    _ASCII_WORDS, _NON_ASCII, TokenSpace, _ascii_solid, _byte_encoder, _continuing_prefix, is_letter_word,
    _splits, _splits_like_gpt2, _starts_alnum, _surface_of_piece,
)
from vocabx.errors import VocabxError


COUNTS_SCHEMA = "vocabx.counts/1"


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
    # the first documents each word occurs in (None: not kept, as in counts files written before them)
    first_docs: "FirstDocs | None" = None
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
        self.first_docs = _merged_first_docs(self, other)
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
            "first_docs": self.first_docs.as_json() if self.first_docs is not None else None,
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
            first_docs=FirstDocs.from_json(data["first_docs"]) if data.get("first_docs") else None,
            runs=Counter({(tuple(w), bool(e)): c for w, e, c in data["runs"]}) if data.get("runs") is not None else None,
        )
        return counts, data.get("meta", {})


class FirstDocs:
    """The first documents (numbered in counting order, at most ``keep`` of them) each counted word occurs in.

    Enough to count exactly the distinct documents of words that each occur in at most ``keep``
    documents, such as the rare words a subword joins (:func:`vocabx.analyze.selection.distinct_docs`),
    and to name a document that holds any word, where its example is found. Made from the counter's
    numpy columns; the dict ``word -> documents`` is built on first use.

    >>> FirstDocs(2, {"Ġcat": (0, 3)}).of("Ġcat"), FirstDocs(2, {}).of("Ġdog")
    ((0, 3), ())
    """

    def __init__(self, keep: int, table: dict[str, tuple[int, ...]] | None = None, *, columns: tuple[list[str], Any, Any] | None = None):
        self.keep = keep
        self._table = table
        self._columns = columns  # (words, each entry's word index, its document), entries in counting order

    def of(self, word: str) -> tuple[int, ...]:
        return self.table.get(word, ())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FirstDocs) and self.keep == other.keep and self.table == other.table

    @property
    def table(self) -> dict[str, tuple[int, ...]]:
        if self._table is None:
            self._table = self._from_columns()
        return self._table

    def _from_columns(self) -> dict[str, tuple[int, ...]]:
        import numpy as np

        if self._columns is None:
            return {}
        words, index, docs = self._columns
        self._columns = None
        order = np.argsort(index, kind="stable")  # (a word's documents stay in counting order)
        index, docs = index[order], docs[order].tolist()
        starts = np.flatnonzero(np.diff(index, prepend=-1)).tolist()
        ends = starts[1:] + [len(docs)]
        return {words[i]: tuple(docs[a:b]) for i, a, b in zip(index[starts].tolist(), starts, ends)}

    def merged(self, other: "FirstDocs", offset: int) -> "FirstDocs":
        """These and ``other``'s first documents, ``other``'s numbered after ``offset`` documents of these."""
        keep = min(self.keep, other.keep)
        table = {w: docs[:keep] for w, docs in self.table.items()}
        for word, docs in other.table.items():
            mine = table.get(word, ())
            if len(mine) < keep:
                table[word] = (mine + tuple(d + offset for d in docs))[:keep]
        return FirstDocs(keep, table)

    def as_json(self) -> dict:
        return {"keep": self.keep, "docs": {w: list(d) for w, d in self.table.items()}}

    @classmethod
    def from_json(cls, data: dict) -> "FirstDocs":
        return cls(int(data["keep"]), {w: tuple(d) for w, d in data["docs"].items()})


def _merged_first_docs(counts: Counts, other: Counts) -> FirstDocs | None:
    """The first documents of two shards' counts together (before ``counts`` takes ``other``'s in);
    None unless both kept them. Empty counts (the start of a merge) take the other's as they are."""
    if counts.docs == 0 and not counts.words:
        return other.first_docs
    if other.docs == 0 and not other.words:
        return counts.first_docs
    if counts.first_docs is None or other.first_docs is None:
        return None
    return counts.first_docs.merged(other.first_docs, offset=counts.docs)


KEEP_DOCS = 8
"""How many first documents :func:`count_corpus` keeps per word: subwords' document counts are exact
where their words occur in at most this many documents each, and ``--min-docs`` up to one more is
applied exactly (:func:`vocabx.analyze.selection.distinct_docs`)."""

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
    keep_docs: int = KEEP_DOCS,
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
    n-gram length in a thread of its own. ``keep_docs``: how many first documents to note per word
    (:class:`FirstDocs`, for subwords' document counts and examples; 0: none).

    >>> c = count_corpus(["the cat sat", "the cat ran"], space)          # doctest: +SKIP
    >>> c.words["Ġcat"], c.phrases[("the", "Ġcat")]                        # doctest: +SKIP
    (2, 2)
    """
    workers = usable_cores() if workers is None else workers
    counter = _HashCounter(space, max_phrase_words, phrases and space.marker == "Ġ", max_phrases, runs, keep_docs)
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


def usable_cores() -> int:
    """The cores this process may run on (a container or ``taskset`` may allow fewer than the host has)."""
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
    first = None
    if a.first_docs is not None and b.first_docs is not None:  # (b's surfaces renumbered, its documents after a's)
        b_codes = remap[(b.first_docs >> np.uint64(32)).astype(np.int64)].astype(np.uint64)
        b_docs = (b.first_docs & np.uint64(0xFFFFFFFF)) + np.uint64(docs_in_a)
        first = np.concatenate([a.first_docs, (b_codes << np.uint64(32)) | b_docs])
        first.sort()  # (grouped by surface again, documents ascending: what the counter reads them as)
    return _Split(local, where, a.lengths + b.lengths, a.encoded + [d + docs_in_a for d in b.encoded], keys, count, docs, new_ids, first)


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

    def __init__(self, space: TokenSpace, max_phrase_words: int, phrases: bool, max_phrases: int, runs: bool = False, keep_docs: int = 0):
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
        # each word's first documents (FirstDocs), as (word index, document) entries appended by batch
        self.keep_docs = keep_docs
        self.first_index: list[Any] = []
        self.first_docs: list[Any] = []
        self.doc_offset = 0  # the documents counted before the current batch
        # the n-gram table: hash, count, documents, length, and where the word indexes of one occurrence
        # are kept: row p_ref of the blocks of its length (word rows are stored once and only indexed
        # as the table is merged and pruned)
        self.p_hash = np.empty(0, np.uint64)
        self.p_count = np.empty(0, np.int64)
        self.p_docs = np.empty(0, np.int64)
        self.p_len = np.empty(0, np.int8)
        self.p_ref = np.empty(0, np.int64)
        self.blocks: dict[int, list[Any]] = defaultdict(list)  # length -> word-index matrices
        self.block_docs: dict[int, list[Any]] = defaultdict(list)  # length -> the document of each row (its example's)
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
        self.doc_offset = counts.docs
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
            uniq, _, group, cnt, docs, pairs = self._group_pairs(word_hash, word_doc, distinct=self.keep_docs > 0)
            index = self._learn_words(uniq)
            if self.keep_docs:
                self._keep_first_docs(index[(pairs >> np.uint64(32)).astype(np.int64)], pairs)
        else:
            uniq, group, cnt, docs, rank = grouped
            index = self._learn_words(uniq)
            if self.keep_docs:
                assert coded is not None
                pairs = coded.first_docs  # (each surface's first documents in the batch, by surface number)
                self._keep_first_docs(index[rank[(pairs >> np.uint64(32)).astype(np.int64)]], pairs)
        self.w_count[index] += cnt
        self.w_docs[index] += docs
        if self.longest >= 2 and n_words >= 2:
            word_index = index[group]
            self._add_ngrams(word_hash, word_index, word_doc, self.w_letter[word_index], marker, self.w_alnum[word_index])

    def _keep_first_docs(self, words: Any, pairs: Any) -> None:
        """Note the first documents of each word, up to ``keep_docs`` (before its document count takes
        this batch's in): ``words[i]`` occurs in the batch's document ``pairs[i] & 0xFFFFFFFF``, each
        (word, document) once."""
        np = self.np
        # (no sort: ``pairs`` come grouped by surface or group, documents ascending, and each maps to one word)
        words = words.astype(np.int64, copy=False)
        docs = (pairs & np.uint64(0xFFFFFFFF)).astype(np.int64) + self.doc_offset
        n = len(words)
        head = np.ones(n, dtype=bool)
        head[1:] = words[1:] != words[:-1]
        rank = np.arange(n) - np.maximum.accumulate(np.where(head, np.arange(n), 0))
        keep = rank < self.keep_docs - np.minimum(self.w_docs[words], self.keep_docs)
        self.first_index.append(words[keep].astype(np.int32))
        self.first_docs.append(docs[keep])

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
        return _Splitter(self.added_text, self.space.backend.pre_tokenizer, self.space.backend.model, self.keep_docs)

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
        """:meth:`_group_pairs` without the pairs."""
        return self._group_pairs(keys, docs, positions)[:5]  # type: ignore[return-value]

    def _group_pairs(self, keys: Any, docs: Any, positions: bool = True, distinct: bool = False) -> tuple[Any, Any, Any, Any, Any, Any]:
        """Group equal keys: (sorted unique keys, one position of each, each position's group (None
        unless ``positions``), counts, distinct documents per key (zeros when ``docs`` is None)). ``docs``
        are non-negative and below 2**32.

        [7, 3, 7], docs [0, 0, 1] -> ([3, 7], [1, 0], [1, 0, 1], [1, 2], [1, 2])

        Positions come in document order (``docs`` never decreases) wherever the counter calls this, and
        the stable sort keeps each key's positions in that order, so a key's distinct documents are
        where its run of documents changes: no second sort of (key, document) pairs.

        The sixth item, with ``distinct`` (else None): each (group, document) pair once, packed as
        ``group << 32 | document``.
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
            return uniq, order[first], None, cnt, np.zeros(len(uniq), dtype=np.int64), None
        pairs = np.cumsum(head, dtype=np.uint64)
        pairs -= np.uint64(1)
        group = None
        if positions:
            group = np.empty(n, dtype=np.int64)
            group[order] = pairs
        in_order = docs[order]
        if n > 1 and not (docs[1:] >= docs[:-1]).all():  # (not document order: pairs sorted instead)
            packed = _distinct_pairs(pairs, in_order)
            return uniq, order[first], group, cnt, _per_code(packed, len(uniq)), packed if distinct else None
        changed = head  # (head is not needed any more: a new key, or the same key in a new document)
        changed[1:] |= in_order[1:] != in_order[:-1]
        packed = None
        if distinct:
            packed = (pairs[changed] << np.uint64(32)) | in_order[changed].astype(np.uint64)
        return uniq, order[first], group, cnt, np.bincount(pairs[changed].astype(np.int64), minlength=len(uniq)), packed

    def _group_coded(self, split: _Split) -> tuple[Any, Any, Any, Any, Any] | None:
        """:meth:`_group` (without positions) for words numbered by a split (``word hash ==
        split.keys[split.where]``, counted per surface by the splitter): only the distinct surfaces are
        sorted, not every position. None when two surfaces share a hash (then :meth:`_group` must merge
        them). The fifth item is each surface's group.

        where [1, 0, 1], keys [7, 3], count [1, 2], docs [1, 2] -> ([3, 7], [1, 0, 1], [1, 2], [1, 2], [1, 0])
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
        return uniq, rank[split.where], split.count[order], split.docs[order], rank

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
            self._merge_table(*columns, wi, wdoc)

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

    def _merge_table(self, keys: Any, cnt: Any, docs: Any, length: Any, start: Any, wi: Any, wdoc: Any) -> None:
        """Add one batch's n-grams (``keys`` unique within each length, each length's run sorted; each
        n-gram's words are ``wi[start : start + length]``, first met in the batch's document
        ``wdoc[start]``) to the table. When the merged table would hold more than ``max_phrases``
        n-grams, the rarest are dropped (the count threshold rising one at a time from the last one)
        until at most half remain.

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
            self.block_docs[size].append((wdoc[s0] + self.doc_offset).astype(np.int32))
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
        first = np.empty(len(self.p_hash), dtype=np.int32)  # the document each phrase was first kept from
        for n in lengths:
            rows = np.flatnonzero(self.p_len == n)
            refs = self.p_ref[rows]
            block = np.concatenate(self.blocks[n])[refs]
            table[rows] = np.fromiter(zip(*(strings[block[:, j]].tolist() for j in range(n))), dtype=object, count=len(rows))
            matrix[rows, :n] = block
            first[rows] = np.concatenate(self.block_docs[n])[refs]
        keys: list[tuple[str, ...]] = table.tolist()
        phrases = _counter(zip(keys, self.p_count.tolist()))
        has_docs = np.flatnonzero(self.p_docs)
        phrase_docs = _counter(zip(table[has_docs].tolist(), self.p_docs[has_docs].tolist()))
        counts.phrases, counts.phrase_docs = phrases, phrase_docs
        if len(phrases) == len(keys) and len(phrase_docs) == len(has_docs):
            phrase_table = _PhraseTable(counts, keys, self.p_count, self.p_docs, self.p_len, matrix, words, self.max_words)
            phrase_table.witness = _PhraseDocs(self.p_hash, self.p_len, first, words, self.index_of)
            counts.phrase_table = phrase_table
        if self.keep_docs:
            index = np.concatenate(self.first_index) if self.first_index else np.empty(0, np.int32)
            docs = np.concatenate(self.first_docs) if self.first_docs else np.empty(0, np.int64)
            counts.first_docs = FirstDocs(self.keep_docs, columns=(words, index, docs))
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
    # each surface's first documents here (at most the splitter's keep_docs), as surface << 32 | document
    first_docs: Any = None


class _Splitter:
    """Cut documents into GPT-2-style pre-token surfaces in Python (for :meth:`_HashCounter.splitter`).

    ASCII text is split with the byte-level pre-tokenizer's regex written for ASCII; the stretches
    around non-ASCII characters, between spaces that surely separate words, go to the tokenizer's own
    pre-tokenizer; documents that contain an added token's text are left to be encoded whole.
    """

    def __init__(self, added_text: Any, pre_tokenizer: Any, model: Any, keep_docs: int = 0):
        self.added_text = added_text
        self.pre_tokenizer = pre_tokenizer
        self.model = model
        self.keep_docs = keep_docs
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
        pairs = _distinct_pairs(where, np.repeat(np.arange(len(batch), dtype=np.int64), lengths))
        docs = _per_code(pairs, len(surfaces))
        first = _first_per_code(pairs, docs, self.keep_docs) if self.keep_docs else None
        return _Split(surfaces, where, lengths, encoded, keys, count, docs, new_ids, first)

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
    return _per_code(_distinct_pairs(codes, docs), k)


def _distinct_pairs(codes: Any, docs: Any) -> Any:
    """Each (code, document) pair once, packed as ``code << 32 | document``, sorted.

    codes [1, 0, 1, 1], docs [0, 0, 0, 1] -> [0 << 32 | 0, 1 << 32 | 0, 1 << 32 | 1]
    """
    import numpy as np

    packed = codes.astype(np.uint64) << np.uint64(32)
    packed |= docs.astype(np.uint64)
    packed.sort()
    head = np.empty(len(packed), dtype=bool)
    head[:1] = True
    np.not_equal(packed[1:], packed[:-1], out=head[1:])
    return packed[head]


def _per_code(pairs: Any, k: int) -> Any:
    """How many of the sorted distinct ``pairs`` (:func:`_distinct_pairs`) each of ``k`` codes has."""
    import numpy as np

    return np.bincount((pairs >> np.uint64(32)).astype(np.int64), minlength=k)


def _first_per_code(pairs: Any, per_code: Any, keep: int) -> Any:
    """The first ``keep`` of each code's sorted distinct ``pairs`` (``per_code``: how many it has).

    pairs [0 << 32 | 4, 1 << 32 | 0, 1 << 32 | 1, 1 << 32 | 5], per_code [1, 3], keep 2 -> the first three
    """
    import numpy as np

    starts = np.cumsum(per_code) - per_code
    rank = np.arange(len(pairs)) - starts[(pairs >> np.uint64(32)).astype(np.int64)]
    return pairs[rank < keep]


def _counter(pairs: Iterable[tuple[Any, int]]) -> Counter:
    """Counter(dict(pairs)) without the intermediate dict."""
    out: Counter = Counter()
    dict.update(out, pairs)
    return out


class _PhraseTable:
    """The counter's n-gram table in the order of ``Counts.phrases``: keys, counts, documents, lengths
    and word indexes (into ``words``, -1 after a phrase's end) of every phrase.

    Valid while the Counts it was made for still holds the same phrase dicts with as many keys.
    """

    __slots__ = ("phrases", "phrase_docs", "size", "keys", "count", "docs", "length", "matrix", "words", "candidate_words", "witness")

    def __init__(self, counts: "Counts", keys: list, count: Any, docs: Any, length: Any, matrix: Any, words: list[str], candidate_words: int):
        self.phrases, self.phrase_docs, self.size = counts.phrases, counts.phrase_docs, len(counts.phrases)
        self.keys, self.count, self.docs, self.length, self.matrix, self.words = keys, count, docs, length, matrix, words
        self.candidate_words = candidate_words  # the counter's longest candidate (longer n-grams have no document counts)
        self.witness: "_PhraseDocs | None" = None

    def valid_for(self, counts: "Counts", max_words: int) -> bool:
        return (
            counts.phrases is self.phrases
            and counts.phrase_docs is self.phrase_docs
            and len(counts.phrases) == self.size == len(self.keys)
            and max_words <= self.candidate_words
        )


class _PhraseDocs:
    """A document that holds each phrase of the counter's table (the one its row was made from), looked
    up by the phrase's hash: for the examples of phrases that the first documents do not show."""

    def __init__(self, hashes: Any, length: Any, first: Any, words: list[str], word_keys: dict[int, int]):
        self.hashes, self.length, self.first = hashes, length, first  # (in table order: hashes sorted)
        self.words, self.word_keys = words, word_keys  # word hash -> word index, in word index order

    def of(self, phrases: list[tuple[str, ...]]) -> list[int | None]:
        """The document of each phrase (None for one the table does not hold), looked up all at once."""
        import numpy as np

        if not phrases or not len(self.hashes):
            return [None] * len(phrases)
        hash_of = dict(zip(self.words, self.word_keys))  # (word_keys lists the hashes in word order)
        keys = [_phrase_key(parts, hash_of) for parts in phrases]
        wanted = np.array([k if k is not None else 0 for k in keys], dtype=np.uint64)
        rows = np.minimum(np.searchsorted(self.hashes, wanted), len(self.hashes) - 1)
        sizes = np.array([len(parts) for parts in phrases])
        found = (self.hashes[rows] == wanted) & (self.length[rows] == sizes) & np.array([k is not None for k in keys])
        return [doc if ok else None for doc, ok in zip(self.first[rows].tolist(), found.tolist())]


def _phrase_key(parts: tuple[str, ...], hash_of: dict[str, int]) -> int | None:
    """A phrase's hash as the counter makes it (its word hashes times powers of _Q); None for an unknown word."""
    key, power = 0, 1
    for word in parts:
        h = hash_of.get(word)
        if h is None:
            return None
        key = (key + h * power) & _MASK64
        power = (power * _Q) & _MASK64
    return key


def _word_key(ids: list[int]) -> int:
    """The 64-bit hash of a word's token ids, as :meth:`_HashCounter._words_encoded` computes it with numpy."""
    key, power = 0, 1
    for t in ids:
        key = (key + (t + 1) * power) & _MASK64
        power = (power * _P) & _MASK64
    return key

"""One example context per chosen candidate, found while the analysis runs.

:class:`_Examples` scans the first documents (``Counts.examples``) for the first occurrence of each chosen
token's surface, in a forked worker process while this one selects (inline for small corpora or where
forking is not possible); :class:`_FirstMatch` finds the first match of many surfaces in one pass over a
text. A candidate those documents do not show gets its example from the document where counting met it
(:func:`_witness_examples`), among the documents :class:`_KeptDocs` kept as counting read them. An
analysis from merged shard counts has neither: the corpus the counts came from is read again for the
examples the counts' first documents do not show (:func:`_scan_examples`).
"""

from __future__ import annotations

import bisect
import itertools
import re
from typing import Any, Iterable

from vocabx.analyze.counting import Counts, _batches_by_bytes, _can_fork, usable_cores, _quiet_fork
from vocabx.analyze.selection import Candidate, SavingsModel


# Example texts above this many characters are searched by a worker process while the selection runs.
_EXAMPLES_IN_WORKER_CHARS = 200_000
# The analyzed documents are kept for examples up to this many characters (about as many bytes of
# memory where the corpus is streamed; a list of texts is only referenced).
_KEPT_CHARS = 256_000_000


class _KeptDocs:
    """The analyzed documents as counting reads them, numbered as counting numbers them, until they
    reach ``limit`` characters (``complete`` says whether all were kept)."""

    def __init__(self, limit: int | None = None):
        self.limit = _KEPT_CHARS if limit is None else limit
        self.docs: list[str] = []
        self.chars = 0
        self.complete = True

    def wrap(self, texts: Any) -> Any:
        """``texts``, passed through and kept on the way."""
        for text in texts:
            if self.complete:
                self.chars += len(text)
                if self.chars <= self.limit:
                    self.docs.append(text)
                else:  # (from here on nothing: a document's number must stay its place in the list)
                    self.complete = False
            yield text


def _witness_examples(chosen: list[Candidate], found: list[str], docs: list[str], counts: Counts, model: SavingsModel) -> list[str]:
    """``found`` (the examples of ``chosen``, "" where the first documents show none) with each missing
    one taken from the document where counting met the candidate (:func:`_witnesses`), when it is among
    ``docs``: every candidate that occurs in the kept text gets one. A look-up and a ``str.find`` in one
    document per candidate, where scanning the whole corpus for them took longer than the selection."""
    missing = [i for i, example in enumerate(found) if not example]
    out = list(found)
    for i, doc in zip(missing, _witnesses([chosen[i] for i in missing], counts, model)):
        if doc is not None and doc < len(docs):
            surface = chosen[i].surface
            out[i] = _snippet(docs[doc], docs[doc].find(surface), len(surface))
    return out


# The corpus is searched for missing examples in batches of this many bytes.
_SCAN_BATCH_BYTES = 16_000_000


def _scan_examples(chosen: list[Candidate], found: list[str], texts: Iterable[str]) -> list[str]:
    """``found`` with each missing example taken from the first of ``texts`` that holds the candidate's
    surface: for an analysis from merged counts, whose documents are not at hand. Reads ``texts`` in
    batches until no example is missing (usually a small part of the corpus), so a candidate gets the
    example a one-pass analysis of the same documents would give it."""
    out = list(found)
    missing = [i for i, example in enumerate(out) if not example]
    batches = _batches_by_bytes(texts, _SCAN_BATCH_BYTES)
    while missing:
        batch = next(batches, None)
        if batch is None:
            break
        finder = _FirstMatch(batch)
        for i in missing:
            out[i] = finder.example(chosen[i].surface)
        missing = [i for i in missing if not out[i]]
    return out


def _witnesses(cands: list[Candidate], counts: Counts, model: SavingsModel) -> list[int | None]:
    """A document that holds each candidate's text (None where counting kept none): a word's first
    document, that of a word a subword's merge was applied in, the one a phrase was first counted from."""
    first = counts.first_docs
    out: list[int | None] = []
    for cand in cands:
        word = cand.token if cand.kind == "word" else model.merged_in.get(cand.token) if cand.kind == "subword" else None
        docs = first.of(word) if first is not None and word is not None else ()
        out.append(docs[0] if docs else None)
    table = counts.phrase_table
    phrases = [i for i, cand in enumerate(cands) if cand.kind == "phrase" and cand.parts]
    if phrases and table is not None and table.witness is not None:
        for i, doc in zip(phrases, table.witness.of([tuple(cands[i].parts or ()) for i in phrases])):
            out[i] = doc
    return out


def _snippet(doc: str, i: int, n: int, width: int = 60) -> str:
    """The ``n`` characters at ``doc[i]`` with ``width`` characters of context on each side ("" if i < 0)."""
    if i < 0:
        return ""
    start, end = max(0, i - width), min(len(doc), i + n + width)
    return ("..." if start else "") + doc[start:end].replace("\n", " ") + ("..." if end < len(doc) else "")


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
        workers = usable_cores() if workers is None else workers
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
        return _snippet(self.docs[k], j - self.offsets[k], len(needle), width)

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

"""Choose the candidates greedily by marginal saving (step 2 of the analysis).

:func:`select_candidates` runs a lazy greedy over words, subwords (BPE merges continued on the word
table) and phrases: each step takes the candidate whose saving, given everything chosen above it, is
largest. :class:`SavingsModel` keeps the corpus's token count as candidates are applied, from the word
and phrase tables alone (never re-encoding the corpus): exact for words and subwords; for phrases,
containment and overlaps come from the n-gram counts (:class:`_OverlapIndex` pushes each chosen phrase's
overlaps to the phrases it overlaps), exact for two overlapping phrases, chains of three or more
approximated. :class:`SelectSettings` holds the candidate rules (counts, documents, digits, cohesion,
groups of documents, length). Each token string is chosen once: the extender adds a string once.

What it leaves out: projecting the chosen candidates on other text (:mod:`vocabx.analyze.curve`).
"""

from __future__ import annotations

import heapq
import json
import operator
from collections import Counter, defaultdict
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Iterable, Iterator

from vocabx.analyze.counting import Counts, _PhraseTable, _Q, count_corpus, _gc_paused, _powers, usable_cores
from vocabx.analyze.space import TokenSpace, _allowed, _phrase_word_ok, _surface_of_piece
from vocabx.errors import VocabxError


KINDS = ("word", "subword", "phrase")


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
    # False for a subword whose doc_count is a lower bound (one of its words is in more documents than
    # the counter keeps: :func:`distinct_docs`); None (left out of the report) where it is exact
    doc_count_exact: bool | None = None

    def as_dict(self) -> dict:
        out = {name: getattr(self, name) for name in _CANDIDATE_FIELDS}
        for key in ("base_pieces", "merge", "parts", "variants"):  # copies, as dataclasses.asdict makes
            if out[key] is not None:
                out[key] = list(out[key])
        if out["merge"] is None:
            out.pop("merge")
        if out["parts"] is None:
            out.pop("parts")
        for key in ("groups", "doc_count_exact"):
            if out[key] is None:
                out.pop(key)
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
    chosen phrase tries millions of unions that never occur. Each U's P is found by table row: the
    row of U less its last (or first) j words, worked out for the whole table at once from the
    counter's phrase hashes (:meth:`parents`). Only phrases that can still be chosen (``live``) get
    entries. ``right_of[row]`` and ``left_of[row]`` hold the (q, k, co-count) entries of the phrase of
    that row in the order the q were chosen, for :meth:`SavingsModel._overlapping` to sort by k.
    """

    def __init__(self, table: "_PhraseTable", max_words: int, live: list[int], prepared: tuple[Any, Any]):
        import numpy as np

        self.count, self.max_words = table.count, max_words
        self.ids = {w: i for i, w in enumerate(table.words)}
        self.base = len(table.words) + 1  # word index + 1 in each digit; 0: past the phrase's end
        self.sides, (self.prefix, self.suffix) = prepared  # (:meth:`prepare`)
        n = len(table.keys)
        # the phrases that can still be chosen: by row, and their rows by key (index -1, no row: not live)
        self.live = np.zeros(n + 1, dtype=bool)
        self.live[live] = True
        self.row_of = dict(zip([table.keys[r] for r in live], live))
        # per row, the entries of a live phrase (None: none yet; 0: not a phrase that can be chosen)
        self.right_of: list[list | int | None] = [0] * n
        self.left_of: list[list | int | None] = [0] * n
        for r in live:
            self.right_of[r] = self.left_of[r] = None

    @staticmethod
    def prepare(table: "_PhraseTable") -> tuple[Any, Any]:
        """:meth:`sorted_sides` and :meth:`parents`, made together (on another core: numpy only)."""
        return _OverlapIndex.sorted_sides(table), _OverlapIndex.parents(table)

    @staticmethod
    def sorted_sides(table: "_PhraseTable") -> list[tuple[Any, Any, Any, Any]]:
        """The table's rows of three words or more sorted by their last three words read backwards, and
        by their first three: for each, (rows, key of the three words, fourth word, length), each word
        a digit of its index + 1 (0: past the phrase's end). Numpy only (it releases the GIL), so it can
        be made on another core while the selection sets up (:func:`select_candidates`)."""
        import numpy as np

        base = len(table.words) + 1
        rows = np.flatnonzero(table.length >= 3)  # (a union is longer than q, which has 2+ words)
        matrix, length = table.matrix[rows], table.length[rows].astype(np.int64)
        width = matrix.shape[1]
        sides = []
        for backward in (True, False):
            digits = []
            for j in range(4):
                if backward:  # words L-1, L-2, ...
                    at = length - 1 - j
                    word = matrix[np.arange(len(rows)), np.maximum(at, 0)].astype(np.int64) + 1
                    digits.append(np.where(at >= 0, word, 0))
                else:
                    digits.append(matrix[:, j].astype(np.int64) + 1 if j < width else np.zeros(len(rows), np.int64))
            head = (digits[0] * base + digits[1]) * base + digits[2]
            order = np.argsort(head, kind="stable")
            sides.append((rows[order], head[order], digits[3][order], length[order]))
        return sides

    @staticmethod
    def parents(table: "_PhraseTable") -> tuple[list[Any], list[Any]]:
        """(prefix, suffix): ``prefix[j][row]`` is the row of that row's phrase less its last j words,
        ``suffix[j][row]`` less its first j (j = 1, 2, 3), or -1 where that phrase is not in the table
        or has fewer than two words. Found by the counter's hash of each phrase (the sum of its word
        hashes times powers of a constant, mod 2**64: a word taken off the end is subtracted, one taken
        off the front subtracted and the rest shifted down a power), so the rows are those the counter's
        own table gives the same words; j = 2 and 3 as the parent's parent (every part of a counted
        n-gram is counted at least as often, so it is in the table; where one is not, looked up)."""
        import numpy as np

        witness = table.witness
        hashes, length, matrix = witness.hashes, table.length.astype(np.int64), table.matrix  # type: ignore[union-attr]
        word_hash = np.fromiter(witness.word_keys, dtype=np.uint64, count=len(table.words))  # type: ignore[union-attr]
        powers = _powers(_Q, matrix.shape[1] + 1)
        n = len(hashes)

        def look_up(rows: Any, j: int, front: bool) -> Any:
            """The rows of ``rows``' phrases less their first (``front``) or last j words, or -1."""
            size, terms = length[rows], np.zeros(len(rows), dtype=np.uint64)
            for i in range(j):
                at = np.full(len(rows), i) if front else size - 1 - i
                terms += word_hash[matrix[rows, at]] * powers[at]
            wanted = hashes[rows] - terms
            if front:
                wanted *= np.uint64(pow(_Q, -j, 1 << 64))
            at = np.minimum(np.searchsorted(hashes, wanted), n - 1)
            return np.where((hashes[at] == wanted) & (length[at] == size - j), at, -1)

        rows = np.flatnonzero(length >= 3)
        prefix: list[Any] = [None]
        suffix: list[Any] = [None]
        for front, out in ((False, prefix), (True, suffix)):
            first = np.full(n + 1, -1, dtype=np.int32)  # (index -1, no row: -1 again)
            first[rows] = look_up(rows, 1, front)
            out.append(first[:n])
            for j in (2, 3):
                found = first[out[-1]]
                lost = np.flatnonzero((length >= j + 2) & (found < 0))  # (none where pruning kept every part)
                if len(lost):
                    found[lost] = look_up(lost, j, front)
                out.append(found)
        return prefix, suffix

    @staticmethod
    def fits(table: "_PhraseTable") -> bool:
        """Whether three word digits fit in one int64 key, and the table has the counter's hashes."""
        return (len(table.words) + 1) ** 3 < 2**63 and table.witness is not None and len(table.witness.hashes) == len(table.keys)

    def _rows_with(self, backward: bool, digits: list[int]) -> Any:
        """Table rows longer than q whose first words, read forwards or backwards, are q's (``digits``),
        short enough to leave a phrase P of at most ``max_words`` words."""
        rows, head, fourth, length = self.sides[0 if backward else 1]
        b, m = self.base, len(digits)
        first = (digits[0] * b + digits[1]) * b
        if m == 2:
            lo, hi = head.searchsorted([first + 1, first + b]).tolist()  # (first + 0: q's own row)
            keep = length[lo:hi] <= self.max_words + 1
        else:
            lo, hi = head.searchsorted([first + digits[2], first + digits[2] + 1]).tolist()
            span = length[lo:hi]
            keep = (span > m) & (span <= self.max_words + m - 1)
            if m == 4:
                keep &= fourth[lo:hi] == digits[3]
        return rows[lo:hi][keep]  # (an array: the counts of its rows are read with one look-up)

    def add(self, q: tuple[str, ...]) -> None:
        ids = self.ids
        digits = [ids.get(w, -1) + 1 for w in q]
        m = len(q)
        if 0 in digits or not 2 <= m <= 4:
            return
        count, live = self.count, self.live
        for right in (True, False):
            found = self._rows_with(right, digits[::-1] if right else digits)
            if not len(found):
                continue
            target = self.right_of if right else self.left_of
            parents = self.prefix if right else self.suffix
            for k in range(1, m):
                # P = U less its last m - k words (right: q covers P's last k) or its first m - k (left)
                rows = parents[m - k][found]
                hit = live[rows]  # (row -1, no phrase: the entry past the end, never live)
                for row, co in zip(rows[hit].tolist(), count[found[hit]].tolist()):
                    entries = target[row]
                    if entries is None:
                        target[row] = [(q, k, co)]
                    else:
                        entries.append((q, k, co))  # type: ignore[union-attr]

    def overlapping(self, parts: tuple[str, ...], right: bool) -> list[tuple[tuple[str, ...], int, int]]:
        row = self.row_of.get(parts)
        entries = (self.right_of if right else self.left_of)[row] if row is not None else None
        if not entries:
            return []
        # by overlap length, in the order chosen within one length (a stable sort)
        return sorted(entries, key=_second) if len(entries) > 1 else entries  # type: ignore[arg-type]


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
        pieces_of, count_of = space.pieces, pair_count.get  # (get: a Counter's [] calls __missing__ in Python)
        base_tokens = 0
        for word, count in counts.words.items():
            pieces = pieces_of(word)
            n = len(pieces)
            n_now[word] = n
            base_tokens += count * n
            if n > 1:
                seg[word] = list(pieces)
                for pair, k in _pair_occurrences(pieces).items():  # (its keys: every adjacent pair)
                    pair_words[pair].add(word)
                    pair_count[pair] = count_of(pair, 0) + k * count
        self.base_tokens = base_tokens
        self.saved = 0
        self.new_pairs = set()
        self.merged_in: dict[str, str] = {}  # each applied merge's token: a word that holds it (for its example)
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

    def apply(self, cand: Candidate, effect: tuple[int, int, list, list] | None = None) -> int:
        """``effect``: a phrase's :meth:`_phrase_effect` as just computed (nothing applied since), not
        computed again."""
        if cand.kind == "word":
            gain = self.gain(cand)
            self._make_whole(cand.token)
        elif cand.kind == "subword":
            assert cand.merge is not None
            gain = self.gain(cand)
            self._merge(cand.merge[0], cand.merge[1], cand.token)
        else:
            assert cand.parts is not None
            gain = self._take_phrase(tuple(cand.parts), effect)
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
        words = list(self.pair_words.get((a, b), ()))
        if words:  # (the least string: the same word whatever the order of the set)
            self.merged_in.setdefault(merged, min(words))
        for word in words:
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
        prefixes: dict[int, int] = {}  # (the tokens of P's words before each overlap length: many q share one)
        fired, pieces_now = self.fired, self.pieces_now
        for q, k, co in right:
            # There q fired, covering P's last k words: before, P's prefix + 1 token; after, 1 token + q's
            # other words, now loose.
            co = min(co, fired[q], fires)
            prefix = prefixes.get(k)
            if prefix is None:
                prefix = prefixes[k] = self._span_tokens(parts[: len(parts) - k])[0]
            rest = pieces_now(q[k]) if len(q) == k + 1 else sum(map(pieces_now, q[k:]))
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

    def _take_phrase(self, parts: tuple[str, ...], effect: tuple[int, int, list, list] | None = None) -> int:
        gain, fires, _, right = effect or self._phrase_effect(parts)
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
    max_token_chars: int = 64  # leave out candidates whose text is longer than this many characters (a base64 blob repeated across documents is not a term)

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
        if isinstance(self.max_token_chars, bool) or not isinstance(self.max_token_chars, int) or self.max_token_chars < 1:
            problems.append(f"--max-token-chars must be a whole number of at least 1, got {self.max_token_chars!r}")
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
    # the overlap index's sorted sides and parent rows, made from the phrase table on another core (numpy
    # releases the GIL) while this one sets up the model and the candidates
    table = counts.phrase_table if weights is None else None
    if table is not None and not table.valid_for(counts, settings.max_phrase_words):
        table = None
    prepared = _in_background(_OverlapIndex.prepare, table) if table is not None and _OverlapIndex.fits(table) else None
    model = SavingsModel(counts, space)
    weight = weights or (lambda cand: 1.0)
    heap: _GainHeap | _ScoreHeap = _GainHeap() if weights is None else _ScoreHeap()

    def push(cand: Candidate) -> None:
        gain = model.gain(cand)
        if gain > 0:
            score = gain * weight(cand)
            if score > 0:
                heap.push(score, gain, cand)

    # the first scores, heapified at once (entries are totally ordered, so pops do not depend on how);
    # without weights, phrases enter as seeds and become candidates only if they are popped
    for cand in _initial_candidates(counts, space, settings, model, seeds=weights is None, table=table, spread=spread):
        if type(cand) is _SeedRows:
            # phrase seeds from the table, gains already computed (all positive): entries as below
            rows = cand.rows.tolist()
            heap.extend(cand.gains.tolist(), rows)  # type: ignore[union-attr]  (only without weights)
            if rows and prepared is not None:  # (only these phrases can be chosen)
                model._overlaps = _OverlapIndex(table, settings.max_phrase_words, rows, prepared.result())
            continue
        gain = model._phrase_effect(cand.parts)[0] if isinstance(cand, _PhraseSeed) else model.gain(cand)
        if gain > 0:
            score = gain * weight(cand)
            if score > 0:
                heap.enter(score, gain, cand)
    heap.heapify()
    chosen: list[Candidate] = []
    # Each token string once: the extender adds a string once (a second entry is 'already in the
    # vocabulary', and a merge that makes a chosen word's string would be dropped with it).
    taken: set[str] = set()
    while heap and len(chosen) < settings.max_new:
        cand = heap.pop()
        effect = None
        if type(cand) is int:  # a row of the phrase table (no weights): a Candidate only once chosen
            effect = model._phrase_effect(table.keys[cand])  # type: ignore[union-attr]
            gain = effect[0]
            score = float(gain)
        else:
            if isinstance(cand, _PhraseSeed):
                cand = cand.candidate(space)
            gain = model.gain(cand)
            score = gain * weight(cand)
        if gain <= 0 or score <= 0:
            continue
        if heap and score < heap.top() - 1e-9:
            heap.push(score, gain, cand)
            continue
        if type(cand) is int:
            cand = _table_candidate(table, cand, counts, space)  # type: ignore[arg-type]
        if cand.token in taken or (cand.kind == "subword" and not _merge_eligible(cand, model, settings)):
            continue
        taken.add(cand.token)
        cand.tokens_saved = model.apply(cand, effect)
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


class _ScoreHeap:
    """Candidates by score, highest first; equal scores by gain, then in the order they entered.
    ``enter`` before ``heapify``, ``push`` after."""

    def __init__(self) -> None:
        self.entries: list[tuple[float, int, int, Any]] = []
        self.serial = 0

    def __bool__(self) -> bool:
        return bool(self.entries)

    def enter(self, score: float, gain: int, cand: Any) -> None:
        self.entries.append((-score, gain, self.serial, cand))
        self.serial += 1

    def heapify(self) -> None:
        heapq.heapify(self.entries)

    def push(self, score: float, gain: int, cand: Any) -> None:
        heapq.heappush(self.entries, (-score, gain, self.serial, cand))
        self.serial += 1

    def pop(self) -> Any:
        return heapq.heappop(self.entries)[3]

    def top(self) -> float:
        return -self.entries[0][0]


class _GainHeap:
    """:class:`_ScoreHeap` where each score is its gain (no weights): each entry one int, ``serial -
    gain * 2**40``, so the heap compares ints, not tuples (a few times faster to pop); the candidates
    kept aside by serial."""

    _SHIFT = 1 << 40  # (more entries than this never enter one selection)

    def __init__(self) -> None:
        self.keys: list[int] = []
        self.items: list[Any] = []

    def __bool__(self) -> bool:
        return bool(self.keys)

    def enter(self, score: float, gain: int, cand: Any) -> None:
        self.keys.append(len(self.items) - gain * self._SHIFT)
        self.items.append(cand)

    def extend(self, gains: list[int], cands: list[Any]) -> None:
        """``enter`` for many at once."""
        first, shift = len(self.items), self._SHIFT
        self.keys += [serial - gain * shift for serial, gain in enumerate(gains, first)]
        self.items += cands

    def heapify(self) -> None:
        heapq.heapify(self.keys)

    def push(self, score: float, gain: int, cand: Any) -> None:
        heapq.heappush(self.keys, len(self.items) - gain * self._SHIFT)
        self.items.append(cand)

    def pop(self) -> Any:
        serial = heapq.heappop(self.keys) % self._SHIFT
        cand, self.items[serial] = self.items[serial], None
        return cand

    def top(self) -> int:
        return -(self.keys[0] // self._SHIFT)


def _in_background(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` started on a thread of its own where this process may use two cores or more (else
    run here): a future whose ``result()`` waits for it (and raises what it raised)."""
    from concurrent.futures import Future, ThreadPoolExecutor

    if usable_cores() < 2:
        done: Future = Future()
        done.set_result(fn(*args))
        return done
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vocabx-select")
    future = pool.submit(fn, *args)
    pool.shutdown(wait=False)  # (the thread ends with fn)
    return future


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


def group_key(group: Any) -> Any:
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
        by_group.setdefault(group_key(group), []).append(text)
    min_count, min_docs, max_words = settings.min_count, settings.min_docs, settings.max_phrase_words
    word_docs, phrase_docs = counts.word_docs, counts.phrase_docs
    words = dict.fromkeys((w for w, c in counts.words.items() if c >= min_count and word_docs[w] >= min_docs), 0)
    phrases = dict.fromkeys(
        (p for p, c in counts.phrases.items() if c >= min_count and len(p) <= max_words and phrase_docs[p] >= min_docs), 0
    )
    for docs in by_group.values():
        size = sum(len(t) for t in docs)
        # (a small group is counted on this core: forking a splitting worker would cost more than it saves)
        part = count_corpus(docs, space, max_phrase_words=max_words, phrases=bool(phrases), workers=None if size > 2_000_000 else 1, keep_docs=0)
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
    chars_of = np.zeros(n_all, dtype=np.int64)  # (0 for the last entry, after a phrase's end)
    surfaces, words, allow = counts.surfaces, table.words, settings.allow_digits
    for i in used.tolist():
        w = words[i]
        surface = surfaces.get(w, w)
        first_ok[i], rest_ok[i] = _phrase_word_ok(surface, allow)
        span_of[i] = model.pieces_now(w)
        chars_of[i] = len(surface)
    keep = first_ok[matrix[:, 0]] & rest_ok[matrix[:, 1:]].all(axis=1)
    rows, matrix = rows[keep], matrix[keep]
    short = chars_of[matrix].sum(axis=1) <= settings.max_token_chars
    if not short.all():
        rows, matrix = rows[short], matrix[short]
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


def offered_kinds(space: TokenSpace) -> tuple[str, ...]:
    """The kinds of candidate the analyzer looks for with this tokenizer: subwords are BPE merges, and
    phrases need tokens that carry their space (byte-level BPE)."""
    return ("word",) + (("subword",) if space.family in ("byte_bpe", "sp_bpe") else ()) + (("phrase",) if space.marker == "Ġ" else ())


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
    max_chars = settings.max_token_chars
    min_groups = settings.min_groups if spread is not None else 1
    if "word" in settings.kinds:
        word_docs = counts.word_docs
        word_groups = spread.words if spread is not None else {}
        for word, count in counts.words.items():
            if count < min_count or word_docs[word] < min_docs or word in vocab:
                continue
            if min_groups > 1 and word_groups.get(word, 0) < min_groups:
                continue
            surface = surfaces.get(word, word)
            if len(surface) > max_chars:
                continue
            pieces = space.pieces(word)
            if len(pieces) < 2 or not _allowed(surface, allow_digits) or space.has_fallback(pieces):
                continue
            yield Candidate(word, surface, "word", count, word_docs[word], list(pieces))
    offered = offered_kinds(space)
    if "phrase" in settings.kinds and "phrase" in offered and table is not None:
        if model.fired or not seeds:
            raise ValueError("table seeds are the gains of a fresh model")
        yield _seed_rows(table, counts, space, settings, model, spread)
    elif "phrase" in settings.kinds and "phrase" in offered:
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
            if not words[0][1] or not all(f[2] for f in words[1:]) or sum(len(f[0]) for f in words) > max_chars:
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
    if "subword" in settings.kinds and "subword" in offered:
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
    if surface is None or len(surface) > settings.max_token_chars or not _allowed(surface, settings.allow_digits):
        return None
    return Candidate(merged, surface, "subword", count, len(in_words), [a, b], merge=[a, b])


def _merge_eligible(cand: Candidate, model: SavingsModel, settings: SelectSettings) -> bool:
    """Whether a popped merge joins its pair in two words or more that are not whole, found in
    ``min_docs`` documents or more (a suffix of one document's words is no domain term); sets its
    ``doc_count`` (see :func:`distinct_docs`), and ``doc_count_exact`` to False where that is a lower bound."""
    a, b = cand.merge  # type: ignore[misc]
    seg, whole = model.seg, model.whole
    # (pair_words also lists words that held the pair before another merge took one of its pieces)
    words = [w for w in model.pair_words.get((a, b), ()) if w not in whole and _holds_pair(seg[w], a, b)]
    if len(words) < 2:
        return False
    cand.doc_count, exact = distinct_docs(words, model.counts)
    cand.doc_count_exact = None if exact else False
    return cand.doc_count >= settings.min_docs


def _holds_pair(seg: list[str], a: str, b: str) -> bool:
    return any(x == a and y == b for x, y in zip(seg, seg[1:]))


def distinct_docs(words: Iterable[str], counts: Counts) -> tuple[int, bool]:
    """How many distinct documents hold one of ``words`` at least, and whether that figure is exact.

    Exact when each word occurs in at most ``counts.first_docs.keep`` documents (all of them kept: the
    rare words that a subword joins, mostly); otherwise a lower bound, the larger of the most widespread
    word's documents and those of the words whose documents are all kept, together (not the kept first
    documents of the others, which depend on how the corpus was cut into shards). So ``--min-docs`` up
    to ``keep + 1`` is applied exactly. Counts without kept documents (files written before them) give
    the most widespread word's.

    13 words of one document -> (1, True); a word of 3 documents and another of 2, one shared -> (4, True)
    """
    word_docs, kept = counts.word_docs, counts.first_docs
    most, exact = 0, kept is not None
    union: set[int] = set()
    for word in words:
        n = word_docs.get(word, 0)
        most = max(most, n)
        docs = kept.of(word) if kept is not None else ()
        if n <= len(docs):
            union.update(docs)
        else:
            exact = False
    return max(most, len(union)), exact


def _new_merges(token: str, model: SavingsModel, space: TokenSpace, settings: SelectSettings) -> Iterator[Candidate]:
    """After a merge creates ``token``, the pairs it forms with its neighbours become candidates."""
    for pair in sorted(model.new_pairs):
        count = model.pair_count.get(pair, 0)
        cand = _merge_candidate(pair[0], pair[1], count, model.pair_words[pair], space, settings)
        if cand is not None:
            yield cand

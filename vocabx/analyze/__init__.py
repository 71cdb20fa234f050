"""Find the words, subwords and phrases of a domain corpus worth adding to a tokenizer, and what they save.

The analysis works in the model's own token space: texts go through the tokenizer's normalizer and
pre-tokenizer, so a word-initial candidate carries the model's space marker (``Ġ`` or ``▁``) and a
word-medial one does not. It runs in three steps:

1. **Count** (:func:`count_corpus`, in :mod:`~vocabx.analyze.counting`): one streaming pass builds a
   table of unique pre-tokens ("words") and of runs of 2..``max_phrase_words`` consecutive letter-words
   ("phrases"), each with its count and document count (and runs up to twice that long, for the
   co-occurrence of overlapping phrases). Rare phrases are pruned as it goes, so memory is bounded by
   what is kept. Counts from shards merge (:meth:`Counts.merge`).
2. **Select** (:func:`select_candidates`, in :mod:`~vocabx.analyze.selection`): a lazy greedy over three
   kinds of candidate, each step taking the candidate with the largest *marginal* saving given those
   above it:

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
3. **Project** (:func:`project`, in :mod:`~vocabx.analyze.curve`): the chosen candidates are applied in
   rank order to the counts of any other text, such as held-out documents, giving the honest savings
   curve.

This module runs the three steps (:func:`analyze`); :mod:`~vocabx.analyze.space` holds the tokenizer's
view of text they share, and :mod:`~vocabx.analyze.examples` finds each candidate's example context.

What it leaves out: writing the report (``vocabx.report``) and building the tokenizer (``vocabx.extend``).
Subwords are BPE merges, so they are offered for BPE tokenizers only; phrases need a tokenizer whose
tokens carry the space (byte-level BPE).
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable, Iterator, NamedTuple

from vocabx.analyze.counting import COUNTS_SCHEMA, KEEP_DOCS, Counts, _batches_by_bytes, count_corpus, _gc_paused
from vocabx.analyze.curve import (
    base_tokens, curve_points, fragmentation, knee, _point, project, _recommended, specificity,
    specificity_weight,
)
from vocabx.analyze.examples import _Examples, _KeptDocs, _scan_examples, _witness_examples
from vocabx.analyze.selection import (
    KINDS, Candidate, GroupSpread, SavingsModel, SelectSettings, cohesion, group_key, group_spread, offered_kinds, select_candidates,
)
from vocabx.analyze.space import TokenSpace, is_letter_word, tokenizer_family
from vocabx.corpus import byte_progress, documents
from vocabx.errors import VocabxError, check_holdout

# (the names above without an underscore, and the ones defined below, are the analysis's public API)
__all__ = [
    "COUNTS_SCHEMA", "KINDS", "MIN_DOCS", "MIN_WORDS", "AnalyzeResult", "Candidate", "Counts", "GroupSpread",
    "SavingsModel", "SelectSettings", "TokenSpace", "analyze", "base_tokens", "cohesion", "count_corpus",
    "curve_points", "fragmentation", "GroupSplit", "group_key", "group_spread", "held_out_groups", "holdout_test",
    "is_letter_word", "knee", "offered_kinds", "project", "select_candidates", "specificity", "specificity_weight", "split_by_groups",
    "split_holdout", "tokenizer_family",
]

MIN_DOCS = 10
MIN_WORDS = 1000


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


def held_out_groups(groups: Iterable[Any], fraction: float, seed: int) -> list[Any]:
    """The groups to hold out whole: a seeded choice of ``round(fraction * n)`` of the ``n`` distinct
    groups, at least one and leaving at least one, ordered by a seeded hash of each group's label (so the
    choice does not depend on the order of the documents). Raises with fewer than two groups.

    >>> held_out_groups(["GARD", "GARD", "NIDDK", "CDC", "GHR"], 0.25, 0)  # doctest: +SKIP
    ['NIDDK']
    """
    if not 0 < fraction <= 0.5:
        raise VocabxError(f"--holdout-groups holds out a --holdout share of the groups, in (0, 0.5]; got {fraction}")
    distinct = list(dict.fromkeys(groups))
    if len(distinct) < 2:
        raise VocabxError(
            f"--holdout-groups holds out whole groups, but the documents come from {len(distinct)} group(s); "
            "pass a corpus of several sources (--group-field FIELD, or several files), or leave --holdout-groups out"
        )
    salt = str(seed).encode()

    def rank(group: Any) -> bytes:
        return hashlib.blake2b(str(group).encode("utf-8", "surrogatepass"), digest_size=8, key=salt).digest()

    k = min(len(distinct) - 1, max(1, round(fraction * len(distinct))))
    return sorted(distinct, key=rank)[:k]


class GroupSplit(NamedTuple):
    """Documents split by whole groups (:func:`split_by_groups`)."""

    train: list[str]
    train_groups: list[Any]  # each training text's group key (:func:`group_key`)
    held: list[str]  # the held-out groups' texts, less copies of training texts
    held_groups: list[Any]
    duplicates_left_out: int  # held-out texts left out because a training text is the same


def split_by_groups(texts: list[str], groups: list[Any], fraction: float, seed: int) -> GroupSplit:
    """Hold out the groups :func:`held_out_groups` picks, whole; a held-out text that a training group
    also has (a shared template) is left out of the holdout, which never holds text seen in training."""
    if len(groups) != len(texts):
        raise VocabxError(f"got {len(texts)} documents but {len(groups)} group labels; give one label per document")
    keys = [group_key(g) for g in groups]
    held_groups = held_out_groups(keys, fraction, seed)
    chosen = set(held_groups)
    train = [t for t, k in zip(texts, keys) if k not in chosen]
    seen = set(train)
    in_held = [t for t, k in zip(texts, keys) if k in chosen]
    held = [t for t in in_held if t not in seen]
    return GroupSplit(train, [k for k in keys if k not in chosen], held, held_groups, len(in_held) - len(held))


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
    holdout_groups: bool = False,
    example_texts: Iterable[str] | None = None,
) -> AnalyzeResult:
    """Analyze a domain corpus under a tokenizer: ranked candidates, savings curves, recommended N.

    ``holdout`` is the fraction of documents kept out of selection to measure the honest curve (None or
    0 for none). ``reference``: general text; candidates common there rank lower (:func:`specificity`),
    and the report's ``reference_curve`` projects how much of its first documents (``_REFERENCE_SAMPLE_CHARS``)
    they rewrite. ``counts`` (and ``held_counts``) skip counting, for analysis from merged shard counts.
    ``groups`` labels each text with its group (its source: a site, a firm, a file; ``TextStream.groups``
    from :func:`vocabx.read_corpus`); with ``settings.min_groups`` above 1, words and phrases found in
    fewer groups of the analyzed documents are left out (:func:`group_spread`). With ``holdout_groups``,
    ``holdout`` is a share of the groups, not of the documents: whole groups are held out
    (:func:`held_out_groups`), so the held-out curve measures the savings on sources the selection never
    saw (text a model will meet from other sites, firms or authors), usually lower than on unseen documents
    of the same sources. ``progress``: a callable taking the bytes just counted (a bar's ``update``), True
    for a bar of its own, or None. ``example_texts``: with ``counts``, the analyzed documents they were
    counted from, read (as far as needed) for the examples that the counts' first documents do not show.
    """
    settings = settings or SelectSettings()
    texts = documents(texts, what="texts") if counts is None else texts  # (with counts there may be none)
    reference = None if reference is None else documents(reference, what="reference")
    example_texts = None if example_texts is None else documents(example_texts, what="example_texts")
    if holdout is not None:
        holdout = check_holdout(holdout, what="kept out of selection for the held-out curve") or None
    started = time.monotonic()
    from_counts = counts is not None
    # (forked before counting, while this process is small; none when the counts are given)
    examples = _Examples.start() if counts is None else _Examples()
    kept = _KeptDocs()  # (the analyzed documents, for the examples the first ones do not show)
    try:
        space = TokenSpace.of(tokenizer)
        notes: list[str] = []
        grouped = settings.min_groups > 1
        if holdout_groups and not holdout:
            raise VocabxError("--holdout-groups holds out a --holdout share of the groups, but --holdout is 0; give a share in (0, 0.5]")
        for needed, option in ((grouped, f"--min-groups {settings.min_groups}"), (holdout_groups, "--holdout-groups")):
            if needed and (counts is not None or groups is None):
                raise VocabxError(
                    f"{option} needs each document's group: pass a corpus with --group-field FIELD "
                    "(or several files, each a group); merged shard counts keep no groups"
                )
        spread = None
        held_groups: list[Any] | None = None
        duplicates_left_out = 0
        if counts is None:
            train_texts: Iterable[str] = texts
            held: list[str] = []
            train_groups: list[Any] = []
            if grouped or holdout_groups:
                all_texts = list(texts)
                labels = list(groups)  # type: ignore[arg-type]  # (read after the texts: a TextStream fills it as it goes)
                if len(labels) != len(all_texts):
                    raise VocabxError(f"got {len(all_texts)} documents but {len(labels)} group labels; give one label per document")
                if holdout_groups:
                    train_texts, train_groups, held, held_groups, duplicates_left_out = split_by_groups(all_texts, labels, holdout, seed)  # type: ignore[arg-type]
                else:
                    is_held = holdout_test(holdout, seed) if holdout else (lambda text: False)
                    sides = [is_held(t) for t in all_texts]
                    train_texts = [t for t, h in zip(all_texts, sides) if not h]
                    held = [t for t, h in zip(all_texts, sides) if h]
                    train_groups = [group_key(g) for g, h in zip(labels, sides) if not h]
                n_groups = len(set(train_groups))
                if n_groups < settings.min_groups:
                    raise VocabxError(
                        f"--min-groups {settings.min_groups} but the analyzed documents come from {n_groups} group(s); "
                        "lower --min-groups or check --group-field"
                    )
            elif holdout:
                train_texts, held = split_holdout(texts, holdout, seed)
            with byte_progress(progress, "counting", getattr(texts, "approx_bytes", None)) as update:
                counts = count_corpus(
                    kept.wrap(train_texts), space, max_phrase_words=settings.max_phrase_words, phrases="phrase" in settings.kinds, progress=update,
                    keep_docs=max(KEEP_DOCS, settings.min_docs - 1),  # (min_docs applied to subwords exactly)
                )
            if grouped:
                spread = group_spread(train_texts, train_groups, counts, space, settings)  # type: ignore[arg-type]
            if held:
                held_counts = count_corpus(held, space, max_phrase_words=settings.max_phrase_words, phrases="phrase" in settings.kinds, runs=True, keep_docs=0)
            elif holdout:
                notes.append(f"--holdout {holdout} selected no documents; only the in-sample curve is shown.")
        _check_size(counts, sources, held_counts.docs if held_counts is not None else 0)
        ref_counts = None
        weights = None
        spec_fn = None
        ref_sample_counts = None
        if reference is not None:
            # Its first documents are counted with their runs of words, for an exact projection of what
            # the new tokens rewrite in general text (what general text pays for right after extend); a
            # reference longer than that is counted whole once more, without runs.
            ref_sample, rest = _head(reference, _REFERENCE_SAMPLE_CHARS)
            ref_sample_counts = count_corpus(ref_sample, space, max_phrase_words=settings.max_phrase_words, phrases="phrase" in settings.kinds, runs=True, keep_docs=0)
            ref_counts = ref_sample_counts
            if rest is not None:
                ref_counts = count_corpus(itertools.chain(ref_sample, rest), space, max_phrase_words=settings.max_phrase_words, phrases="phrase" in settings.kinds, keep_docs=0)
            spec_fn = specificity(counts, ref_counts)
            shared = sum(c for w, c in ref_counts.words.items() if w in counts.words) / max(ref_counts.n_words, 1)
            if shared < 0.3:
                notes.append(
                    f"the reference corpus shares only {shared:.0%} of its word occurrences with the domain corpus "
                    "(another language or script?); specificity scores compare little"
                )

            def weighted(cand: Candidate) -> float:
                if cand.kind == "subword":
                    return 1.0
                z = spec_fn(cand.token, tuple(cand.parts) if cand.parts else None)
                cand.specificity = round(z, 3)
                return specificity_weight(z)

            weights = weighted

        offered = offered_kinds(space)
        if "subword" in settings.kinds and "subword" not in offered:
            notes.append(f"subword candidates are BPE merges, and this tokenizer is {space.family}: none were looked for")
        if "phrase" in settings.kinds and "phrase" not in offered:
            notes.append(f"phrase candidates are proposed for byte-level BPE tokenizers, and this one is {space.family}: none were looked for")
        examples.begin(counts.examples)
        chosen, model = select_candidates(counts, space, settings, weights=weights, on_chosen=examples.add, spread=spread)
        found = _witness_examples(chosen, examples.result(), kept.docs, counts, model)
        if from_counts and example_texts is not None and not all(found):
            found = _scan_examples(chosen, found, example_texts)
        no_example = sum(1 for f in found if not f)
        if no_example and from_counts:
            notes.append(
                f"{no_example:,} candidates have no example: their text was not found in the corpus given with the counts"
                if example_texts is not None
                else f"{no_example:,} candidates have no example: merged counts keep the text of their first documents only; "
                "pass the corpus too (vocabx analyze --counts FILE CORPUS...) to find the others"
            )
        elif no_example and not kept.complete:
            notes.append(f"{no_example:,} candidates have no example: examples come from the first {kept.limit:,} characters of the corpus")
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
        if held_curve and chosen and recommended_n == 0:
            notes.append(
                "the held-out documents gain nothing from these candidates at any N (they do not carry over to text the "
                "selection did not see), so the recommended N is 0"
            )
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
            "holdout": _corpus_summary(held_counts, base_tokens(held_counts, space), None)
            | {"fraction": holdout}
            | ({"by": "group", "groups": held_groups, "duplicates_left_out": duplicates_left_out} if held_groups is not None else {})
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
    head = next(_batches_by_bytes(it, chars), [])  # (the first batch ends with the document that reaches chars)
    return head, (it if head and sum(len(t) for t in head) >= chars else None)


def _check_size(counts: Counts, sources: list[str] | None, held_docs: int = 0) -> None:
    where = " ".join(sources) if sources else "the corpus"
    if counts.docs < MIN_DOCS or counts.n_words < MIN_WORDS:
        # (exact copies of a document all go to one side, so a corpus of copies can go to the holdout whole)
        took = f" (which took {held_docs} documents; exact copies of a document all go to the same side)" if held_docs else ""
        raise VocabxError(
            f"{where} is too small to analyze: {counts.docs} document{'' if counts.docs == 1 else 's'} and "
            f"{counts.n_words} word{'' if counts.n_words == 1 else 's'} after the holdout{took}; "
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


def _group_variants(chosen: list[Candidate]) -> None:
    groups: dict[str, list[Candidate]] = defaultdict(list)
    for cand in chosen:
        groups[cand.surface.strip().lower()].append(cand)
    for members in groups.values():
        if len(members) > 1:
            for cand in members:
                cand.variants = [m.surface for m in members if m is not cand]


def _version() -> str:
    from vocabx import __version__

    return __version__

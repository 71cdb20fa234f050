"""The savings curve and the scores around it (step 3 of the analysis).

:func:`project` applies chosen candidates in rank order to the counts of any text (held-out documents, a
reference corpus) and gives the tokens saved at each point of :func:`curve_points`; :func:`knee` picks
the recommended number of new tokens from a curve; :func:`specificity` scores a candidate against
general text (weighted log-odds with an informative prior); :func:`fragmentation` is the
pieces-per-word histogram.

What it leaves out: the choice of candidates (:mod:`vocabx.analyze.selection`).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Callable

from vocabx.analyze.counting import Counts
from vocabx.analyze.selection import Candidate, SavingsModel
from vocabx.analyze.space import TokenSpace


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
    """The N where the curve (fraction against N) bends most: Kneedle's maximum distance above the chord.
    A curve that does not rise gives the smallest N that reaches its highest point, and 0 when it saves
    nothing at any N (adding more would cost rows and buy nothing)."""
    if not curve:
        return 0
    xs = [float(p["n"]) for p in curve]
    ys = [p["fraction"] for p in curve]
    if max(ys) <= 0:
        return 0
    x0, x1, y0, y1 = xs[0], xs[-1], ys[0], ys[-1]
    if y1 <= y0 or x1 <= x0:
        return next(p["n"] for p in curve if p["fraction"] >= max(ys))
    if len(curve) < 3:
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


def base_tokens(counts: Counts, space: TokenSpace) -> int:
    """The corpus's token count under the base tokenizer, from its word table."""
    return sum(count * len(space.pieces(word)) for word, count in counts.words.items())


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

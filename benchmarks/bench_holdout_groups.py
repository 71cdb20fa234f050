"""Which held-out curve predicts the savings on text from other sources: documents held out, or whole groups?

MedQuAD's train.jsonl holds seven NIH sites and its test.jsonl two others. For each way of holding out
(`vocabx analyze --holdout F`, documents of every site; `--holdout F --holdout-groups --group-field
source`, whole sites, one run per seed until every site has been held out once), the analysis of the
rest of train.jsonl gives its held-out curve, and the same ranked candidates are projected exactly on
test.jsonl (other sites, never seen). Reported at N = 1,024 / 4,096 / 8,192: the held-out saving, the
test saving and the difference. smollm2-135m, the analyzer's defaults otherwise.

    python benchmarks/bench_holdout_groups.py [--fraction 0.15] [--out benchmarks/results/holdout_groups_medquad.json]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MEDQUAD = ROOT.parent / "shared" / "corpora" / "medical" / "medquad"
POINTS = (1024, 4096, 8192)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fraction", type=float, default=0.15, help="--holdout: a share of the documents, or of the sites (0.15: one of seven)")
    parser.add_argument("--max-seeds", type=int, default=40, help="seeds tried to hold out every site once")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "holdout_groups_medquad.json")
    args = parser.parse_args()
    if not (MEDQUAD / "train.jsonl").is_file():
        print(f"skipped: {MEDQUAD} is absent (the shared corpora are not here)", file=sys.stderr)
        return 0

    from vocabx import load_tokenizer, read_corpus
    from vocabx.analyze import SelectSettings, TokenSpace, analyze, count_corpus, held_out_groups, project

    started = time.time()
    tokenizer = load_tokenizer("smollm2-135m")
    space = TokenSpace.of(tokenizer)
    stream = read_corpus(MEDQUAD / "train.jsonl", group_field="source")
    texts = list(stream)
    groups = list(stream.groups)
    test = count_corpus(list(read_corpus(MEDQUAD / "test.jsonl")), space, runs=True)
    settings = SelectSettings(max_new=max(POINTS))

    def run(label: str, **options) -> dict:
        t0 = time.time()
        result = analyze(texts, tokenizer, groups=groups, settings=settings, holdout=args.fraction, **options)
        held = {p["n"]: p["fraction"] for p in result.report["holdout_curve"] or []}
        on_test = {p["n"]: p["fraction"] for p in project(result.candidates, test, space, list(POINTS))}
        row = {
            "holdout": label,
            "held_out_docs": result.report["holdout"]["docs"],
            "analyzed_docs": result.report["corpus"]["docs"],
            "points": {
                str(n): {"held_out": round(held[n], 5), "test": round(on_test[n], 5), "difference": round(held[n] - on_test[n], 5)}
                for n in POINTS
                if n in held and n in on_test
            },
            "seconds": round(time.time() - t0, 1),
        }
        print(row, flush=True)
        return row

    rows = [run("documents, every site", seed=0)]
    seen: set = set()
    for seed in range(args.max_seeds):
        (site,) = held_out_groups(groups, args.fraction, seed) or [None]
        if site in seen:
            continue
        seen.add(site)
        rows.append(run(f"site {site}", seed=seed, holdout_groups=True) | {"seed": seed})
        if len(seen) == len(set(groups)):
            break

    def mean_abs(selected: list[dict], n: int) -> float:
        values = [abs(r["points"][str(n)]["difference"]) for r in selected if str(n) in r["points"]]
        return round(sum(values) / len(values), 5) if values else float("nan")

    by_site = rows[1:]
    results = {
        "corpus": str(MEDQUAD),
        "fraction": args.fraction,
        "machine": platform.machine(),
        "rows": rows,
        "mean_abs_difference": {
            str(n): {"documents": mean_abs(rows[:1], n), "sites": mean_abs(by_site, n)} for n in POINTS
        },
        "seconds": round(time.time() - started, 1),
    }
    write_results(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What `--min-cohesion` gives up in length: held-out token reduction with and without cohesive phrases.

For MedQuAD and CUAD (../shared/corpora), the analyzer ranks candidates on train.jsonl (no holdout) with
each --min-cohesion threshold, and the reduction of tokens that its top N would give is projected
(exactly, from the unique word and phrase tables: `vocabx.analyze.project`) on the domain's test.jsonl
and on the general corpora (Wikipedia + web text). No model runs: this is the length side of the
trade; what the cohesive tokens cost a model in bits per byte is measured by the training benchmarks.

    python benchmarks/bench_cohesion.py [--n 8192] [--thresholds 0,0.1,0.2,0.3] [--out benchmarks/results/cohesion.json]
    python benchmarks/bench_cohesion.py --domains medquad --thresholds 0 --min-groups 1,2,3,4 --group-field source \
        --out benchmarks/results/groups.json     # words and phrases of one site left out (analyze --min-groups)
"""

from __future__ import annotations

import argparse
import collections
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_init import DOMAINS, GENERAL, ROOT, SHARED  # noqa: E402
from common import write_results  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=8192)
    parser.add_argument("--thresholds", default="0,0.1,0.2,0.3")
    parser.add_argument("--min-groups", default="1", help="comma-separated values of the analyzer's --min-groups (default 1: off)")
    parser.add_argument("--group-field", help="the record field that names each training document's group (default: the file)")
    parser.add_argument("--domains", default=",".join(DOMAINS), help="comma-separated: medquad, cuad")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "cohesion.json")
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"skipped: {SHARED} not found", file=sys.stderr)
        return 0

    import importlib

    from vocabx import load_tokenizer, read_corpus

    analyzer = importlib.import_module("vocabx.analyze")  # (vocabx.analyze, the attribute, is the function)
    tokenizer = load_tokenizer("smollm2-135m")
    space = analyzer.TokenSpace.of(tokenizer)
    general = analyzer.count_corpus([t for f in GENERAL for t in read_corpus(f)], space, runs=True)
    results: dict = {"n": args.n, "machine": platform.machine(), "corpora": {}}
    grid = [(float(t), int(g)) for t in args.thresholds.split(",") for g in args.min_groups.split(",")]
    for name in args.domains.split(","):
        folder = DOMAINS[name]
        stream = read_corpus(folder / "train.jsonl", group_field=args.group_field)
        train = list(stream)
        test = analyzer.count_corpus(read_corpus(folder / "test.jsonl"), space, runs=True)  # (runs: exact phrase savings)
        rows = {}
        for threshold, min_groups in grid:
            started = time.perf_counter()
            settings = analyzer.SelectSettings(max_new=args.n, min_cohesion=threshold, min_groups=min_groups)
            chosen = analyzer.analyze(train, tokenizer, holdout=None, settings=settings, groups=stream.groups).candidates[: args.n]
            n = len(chosen)
            key = str(threshold) if min_groups == 1 else f"{threshold} groups>={min_groups}"
            rows[key] = {
                "tokens": n,
                "kinds": dict(collections.Counter(c.kind for c in chosen)),
                "test_reduction": analyzer.project(chosen, test, space, [n])[-1]["fraction"],
                "general_reduction": analyzer.project(chosen, general, space, [n])[-1]["fraction"],
                "seconds": round(time.perf_counter() - started, 1),
            }
            print(name, key, rows[key], file=sys.stderr, flush=True)
        results["corpora"][name] = rows
    write_results(args.out, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

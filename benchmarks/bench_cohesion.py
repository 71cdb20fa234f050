"""What `--min-cohesion` gives up in length: held-out token reduction with and without cohesive phrases.

For MedQuAD and CUAD (../shared/corpora), the analyzer ranks candidates on train.jsonl (no holdout) with
each --min-cohesion threshold, and the reduction of tokens that its top N would give is projected
(exactly, from the unique word and phrase tables: `vocabx.analyze.project`) on the domain's test.jsonl
and on the general corpora (Wikipedia + web text). No model runs: this is the length side of the
trade; what the cohesive tokens cost a model in bits per byte is measured by the training benchmarks.

    python benchmarks/bench_cohesion.py [--n 8192] [--thresholds 0,0.1,0.2,0.3] [--out benchmarks/results/cohesion.json]
    python benchmarks/bench_cohesion.py --domains medquad --thresholds 0 --min-groups 1,2,3,4 --group-field source \
        --out benchmarks/results/groups.json     # words and phrases of one site left out (analyze --min-groups)
    python benchmarks/bench_cohesion.py --domains cuad --thresholds 0.2 --n 8192,10000,12000 --reference-general \
        --out benchmarks/results/cohesion_reference_cuad.json   # ranked against general text (analyze --reference)

With several --n, each setting is analyzed once up to the largest and its top N projected for each N.
``--reference-general`` ranks against the general documents after the first 100 of each general file
(``vocabx adapt --reference`` leaves out only the documents its evaluation scores, which are among
those first 100); the general reduction is still projected on every general document.
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
from common import SCORED_GENERAL_DOCS, numbered_documents, write_results  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", default="8192", help="comma-separated numbers of tokens (default 8192)")
    parser.add_argument("--thresholds", default="0,0.1,0.2,0.3")
    parser.add_argument("--min-groups", default="1", help="comma-separated values of the analyzer's --min-groups (default 1: off)")
    parser.add_argument("--group-field", help="the record field that names each training document's group (default: the file)")
    parser.add_argument("--domains", default=",".join(DOMAINS), help="comma-separated: medquad, cuad")
    parser.add_argument("--reference-general", action="store_true", help=f"rank against general text (the analyzer's --reference): the general documents after the first {SCORED_GENERAL_DOCS} of each file")
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
    numbered = numbered_documents(GENERAL)  # (i: the document's place in its file)
    general = analyzer.count_corpus([t for _, t in numbered], space, runs=True)
    reference = [t for i, t in numbered if i >= SCORED_GENERAL_DOCS] if args.reference_general else None
    sizes = sorted({int(x) for x in args.n.split(",")})
    results: dict = {"n": sizes if len(sizes) > 1 else sizes[0], "reference_general": args.reference_general, "machine": platform.machine(), "corpora": {}}
    grid = [(float(t), int(g)) for t in args.thresholds.split(",") for g in args.min_groups.split(",")]
    for name in args.domains.split(","):
        folder = DOMAINS[name]
        stream = read_corpus(folder / "train.jsonl", group_field=args.group_field)
        train = list(stream)
        test = analyzer.count_corpus(read_corpus(folder / "test.jsonl"), space, runs=True)  # (runs: exact phrase savings)
        rows = {}
        for threshold, min_groups in grid:
            started = time.perf_counter()
            settings = analyzer.SelectSettings(max_new=sizes[-1], min_cohesion=threshold, min_groups=min_groups)
            ranked = analyzer.analyze(train, tokenizer, reference=reference, holdout=None, settings=settings, groups=stream.groups).candidates
            seconds = round(time.perf_counter() - started, 1)
            setting = str(threshold) if min_groups == 1 else f"{threshold} groups>={min_groups}"
            for size in sizes:
                chosen = ranked[:size]
                n = len(chosen)
                key = setting if len(sizes) == 1 else f"{setting} n={size}"
                rows[key] = {
                    "tokens": n,
                    "kinds": dict(collections.Counter(c.kind for c in chosen)),
                    "test_reduction": analyzer.project(chosen, test, space, [n])[-1]["fraction"],
                    "general_reduction": analyzer.project(chosen, general, space, [n])[-1]["fraction"],
                    "seconds": seconds,
                }
                print(name, key, rows[key], file=sys.stderr, flush=True)
        results["corpora"][name] = rows
    write_results(args.out, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Analyzer and extender figures on the real corpora, each against its baseline in the same run.

For MedQuAD and CUAD (../shared/corpora), train -> test, with smollm2-135m:

1. `vocabx analyze` on train.jsonl (N up to 8192): wall time against the recipe's (3 below), timed
   alternately --repeat times each and compared by their medians (the machine is shared: single runs
   are noisy); and the projected token reduction on the unseen test.jsonl at N = 1024, 4096, 8192, for
   all kinds and for whole words alone.
2. The real extended tokenizer (top 8192): token reduction on test, docs longer, round-trip failures and
   in-word matches on test, on the general corpora and on train, and how many added tokens train uses.
   The projection and the real figure side by side.
3. The usual recipe, `tokenizer.train_new_from_iterator(train, vocab_size)` keeping the tokens the base
   lacks (in the new tokenizer's merge order), inserted as real vocabulary entries with their merges,
   the best case for the recipe: its held-out savings at N = 1024 and 4096, and its wall time.
4. `vocabx extend` of smollm2-135m by 8192 tokens with initialization and saving: wall time.
5. Peak RSS of analyzing MedQuAD and CUAD together (train + test, 45 MB), in a child process started
   before the benchmark loads anything (a Linux child inherits its parent's peak RSS).

    python benchmarks/bench_vocab.py [--out benchmarks/results/vocab.json] [--repeat 3]
    python benchmarks/bench_vocab.py --only-time    # just the wall times (1 and 3), into the existing --out

The wall times are taken two ways: alternating in this one process (``*_seconds``), and each run in a
fresh process of its own, alternating sides (``*_seconds_fresh``, taken first, before this process
loads anything), which is how `vocabx analyze` runs (one analysis per process); a process that has
already analyzed and trained several times is slower for the analyzer (its heap has grown and
fragmented), not for the recipe's Rust trainer. Each fresh
process loads the tokenizer and reads the corpus before its clock starts, and its time includes its
own garbage collection, as in-process. Each fresh run also records its system time and minor page
faults (``*_sys_seconds_fresh_runs``, ``*_page_faults_fresh_runs``): on a virtual machine whose host
backs memory lazily, a first touch of a page can cost several microseconds, and the analyzer touches
many more pages than the recipe's trainer.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import write_results

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "corpora"
DOMAINS = {"medquad": SHARED / "medical" / "medquad", "cuad": SHARED / "legal" / "cuad"}
GENERAL = [SHARED / "general" / "wikipedia-xquad" / "test.jsonl", SHARED / "general" / "web-ewt" / "test.jsonl"]


def recipe_tokenizer(tokenizer, train: list[str], n: int, trained=None):
    """The usual recipe's first n new tokens, inserted as vocabulary entries with their merges."""
    from vocabx.extend import _wrap

    new_tok = trained or tokenizer.train_new_from_iterator(train, vocab_size=len(tokenizer))
    base_vocab = tokenizer.get_vocab()
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    new_spec = json.loads(new_tok.backend_tokenizer.to_str())
    vocab, merges = spec["model"]["vocab"], spec["model"]["merges"]
    next_id = max(max(vocab.values()), max(t["id"] for t in spec["added_tokens"])) + 1
    added = 0
    for merge in new_spec["model"]["merges"]:
        a, b = merge if isinstance(merge, list) else merge.split(" ")
        token = a + b
        if token in base_vocab or token in vocab or a not in vocab or b not in vocab:
            continue
        vocab[token] = next_id
        next_id += 1
        merges.append([a, b] if isinstance(merges[0], list) else f"{a} {b}")
        added += 1
        if added == n:
            break
    spec["model"]["ignore_merges"] = True
    return _wrap(tokenizer, spec), new_tok


def token_count(tokenizer, texts: list[str]) -> int:
    return sum(len(e.ids) for e in tokenizer.backend_tokenizer.encode_batch(texts, add_special_tokens=False))


def peak_rss_of_analyzing(files: list[Path]) -> float:
    code = (
        "import sys, resource; from vocabx import load_tokenizer, read_corpus; from vocabx.analyze import analyze, SelectSettings;"
        "analyze(read_corpus(sys.argv[1:]), load_tokenizer('smollm2-135m'), settings=SelectSettings(max_new=8192), holdout=0.1);"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code, *map(str, files)], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def time_one(side: str, corpus: Path) -> dict:
    """One timed run of ``side`` (analyze or recipe) in this process (a fresh one: see --time-one):
    wall seconds, and the system-time seconds and minor page faults of the process and of the
    workers it forked and joined (the analyzer's), over the same span."""
    from vocabx import load_tokenizer, read_corpus
    from vocabx.analyze import SelectSettings, analyze

    tokenizer = load_tokenizer("smollm2-135m")
    train = list(read_corpus(corpus))
    gc.collect()

    def usage() -> tuple[float, int]:
        own, forked = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_stime + forked.ru_stime, own.ru_minflt + forked.ru_minflt

    sys_before, faults_before = usage()
    start = time.perf_counter()
    if side == "recipe":
        tokenizer.train_new_from_iterator(train, vocab_size=len(tokenizer))
    else:
        analyze(train, tokenizer, holdout=None, settings=SelectSettings(max_new=8192))
    gc.collect()
    seconds = time.perf_counter() - start
    sys_after, faults_after = usage()
    return {"seconds": seconds, "sys_seconds": sys_after - sys_before, "page_faults": faults_after - faults_before}


def fresh_times(corpus: Path, repeat: int) -> tuple[list[dict], list[dict]]:
    """(recipe runs, analyze runs), each run in a fresh process, the sides alternating."""
    recipe, analyzer = [], []
    for _ in range(repeat):
        for side, runs in (("recipe", recipe), ("analyze", analyzer)):
            out = subprocess.run([sys.executable, __file__, "--time-one", side, str(corpus)], capture_output=True, text=True, check=True)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return recipe, analyzer


def main() -> int:
    if sys.argv[1:2] == ["--time-one"]:
        print(json.dumps(time_one(sys.argv[2], Path(sys.argv[3]))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "vocab.json")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--only-memory", action="store_true", help="measure only the peak RSS of analyzing 45 MB")
    parser.add_argument("--repeat", type=int, default=3, help="time the recipe and analyze this many times each, alternating (medians reported)")
    parser.add_argument("--only-time", action="store_true", help="measure only the analyze and recipe wall times; update them in --out")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    if not SHARED.is_dir():
        print(f"skipped: {SHARED} not found", file=sys.stderr)
        return 0

    results: dict = {"machine": f"{platform.machine()}, {platform.python_version()}", "domains": {}}
    # First, from a parent that has loaded nothing: Linux children inherit the parent's peak RSS.
    if not args.skip_memory and not args.only_time:
        files = [DOMAINS[d] / f for d in DOMAINS for f in ("train.jsonl", "test.jsonl")]
        results["analyze_45mb_peak_rss_mb"] = round(peak_rss_of_analyzing(files), 1)
        print("peak RSS of analyzing 45 MB:", results["analyze_45mb_peak_rss_mb"], "MB", file=sys.stderr)
    if args.only_memory:
        previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
        previous["analyze_45mb_peak_rss_mb"] = results["analyze_45mb_peak_rss_mb"]
        previous.pop("bench_peak_rss_mb", None)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(previous, indent=2) + "\n")
        print(json.dumps(results, indent=2))
        return 0

    # The fresh-process times next, while this parent has still loaded nothing: children started by a
    # parent that had just analyzed in-process (and freed its memory) spent two to three times as long
    # in the kernel on the same page faults (MedQuAD: 2.3-2.7 s of system time against 0.8-1.0 s).
    fresh = {name: fresh_times(folder / "train.jsonl", args.repeat) for name, folder in DOMAINS.items()}

    from vocabx import load_tokenizer, read_corpus
    from vocabx.analyze import SelectSettings, TokenSpace, analyze, count_corpus, curve_points, project
    from vocabx.check import check_corpus
    from vocabx.extend import extend, extend_tokenizer, save_extension, tokens_from_report

    tokenizer = load_tokenizer("smollm2-135m")
    space = TokenSpace.of(tokenizer)
    general = list(read_corpus(GENERAL))
    for name, folder in DOMAINS.items():
        train = list(read_corpus(folder / "train.jsonl"))
        test = list(read_corpus(folder / "test.jsonl"))
        r: dict = {}
        recipe_times, analyze_times = [], []
        load_before = os.getloadavg()[0]  # other jobs on the machine, reported with the times
        for _ in range(args.repeat):  # alternating, so both sides see the same load
            # Each side's time includes collecting its own garbage: analyze pauses the cyclic collector,
            # and the collections it puts off would otherwise land in whatever runs next.
            gc.collect()
            start = time.perf_counter()
            trained = tokenizer.train_new_from_iterator(train, vocab_size=len(tokenizer))
            gc.collect()
            recipe_times.append(round(time.perf_counter() - start, 2))
            start = time.perf_counter()
            result = analyze(train, tokenizer, holdout=None, settings=SelectSettings(max_new=8192))
            gc.collect()
            analyze_times.append(round(time.perf_counter() - start, 2))
        r["recipe_seconds"] = statistics.median(recipe_times)
        r["analyze_seconds"] = statistics.median(analyze_times)
        r["analyze_over_recipe"] = round(r["analyze_seconds"] / r["recipe_seconds"], 2)
        r["recipe_seconds_runs"], r["analyze_seconds_runs"] = recipe_times, analyze_times
        recipe_runs, analyze_runs = fresh[name]
        recipe_fresh = [round(run["seconds"], 2) for run in recipe_runs]
        analyze_fresh = [round(run["seconds"], 2) for run in analyze_runs]
        r["recipe_seconds_fresh"] = statistics.median(recipe_fresh)
        r["analyze_seconds_fresh"] = statistics.median(analyze_fresh)
        r["analyze_over_recipe_fresh"] = round(r["analyze_seconds_fresh"] / r["recipe_seconds_fresh"], 2)
        r["recipe_seconds_fresh_runs"], r["analyze_seconds_fresh_runs"] = recipe_fresh, analyze_fresh
        # what the kernel spent on each side (page faults on first touch of memory dominate it here)
        for side, runs in (("recipe", recipe_runs), ("analyze", analyze_runs)):
            r[f"{side}_sys_seconds_fresh_runs"] = [round(run["sys_seconds"], 2) for run in runs]
            r[f"{side}_page_faults_fresh_runs"] = [run["page_faults"] for run in runs]
        r["load_average_1min_before_after"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        r["timed_on"] = time.strftime("%Y-%m-%d")
        if args.only_time:
            results["domains"][name] = r
            print(name, json.dumps(r), file=sys.stderr)
            continue
        words_only = analyze(train, tokenizer, holdout=None, settings=SelectSettings(max_new=8192, kinds=("word",)))
        test_counts = count_corpus(test, space, runs=True)
        points = [p for p in (1024, 4096, 8192) if p <= len(result.candidates)]
        r["projected_test"] = {p["n"]: p["fraction"] for p in project(result.candidates, test_counts, space, points)}
        wp = project(words_only.candidates, test_counts, space, curve_points(len(words_only.candidates)))
        r["projected_test_words_only"] = {"n": wp[-1]["n"], "fraction": wp[-1]["fraction"]} if wp else None
        base_test = token_count(tokenizer, test)
        r["kinds"] = {k: sum(1 for c in result.candidates if c.kind == k) for k in ("word", "subword", "phrase")}
        real = {}
        for n in points:
            ext, added, _ = extend_tokenizer(tokenizer, tokens_from_report(result.report, n))
            real[n] = round(1 - token_count(ext, test) / base_test, 6)
        r["real_test"] = real
        r["projection_error_pp"] = {n: round(100 * (r["projected_test"][n] - real[n]), 3) for n in points}
        checks = {}
        for label, texts in (("test", test), ("general", general), ("train", train)):
            c = check_corpus(tokenizer, ext, texts, {"added": added})
            checks[label] = {k: c[k] for k in ("docs", "token_reduction", "docs_longer", "roundtrip_failures", "in_word_matches", "added_used", "added")}
        r["checks_at_max"] = checks
        recipe = {}
        for n in (1024, 4096):
            rt, _ = recipe_tokenizer(tokenizer, train, n, trained)
            ours = real.get(n)
            theirs = round(1 - token_count(rt, test) / base_test, 6)
            recipe[n] = {"recipe": theirs, "vocabx": ours, "ratio": round(ours / theirs, 2) if ours and theirs > 0 else None}
        r["vs_recipe_test"] = recipe
        results["domains"][name] = r
        print(name, json.dumps(r), file=sys.stderr)

    if args.only_time:
        previous = json.loads(args.out.read_text()) if args.out.is_file() else {"domains": {}}
        previous["machine"] = results["machine"]
        for name, r in results["domains"].items():
            previous.setdefault("domains", {}).setdefault(name, {}).update(r)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(previous, indent=2) + "\n")
        print(json.dumps(results, indent=2))
        return 0

    # extension of the real model by 8192 tokens, with initialization and saving
    name = "cuad"
    train = list(read_corpus(DOMAINS[name] / "train.jsonl"))
    report = analyze(train, tokenizer, holdout=None, settings=SelectSettings(max_new=8192)).report
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        ext = extend("smollm2-135m", tokens_from_report(report, 8192), tokenizer=tokenizer)
        save_extension(ext, Path(tmp) / "ext")
        results["extend_8192_seconds"] = round(time.perf_counter() - start, 2)
        results["extend_8192_added"] = len(ext.added)
    results["bench_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    write_results(args.out, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

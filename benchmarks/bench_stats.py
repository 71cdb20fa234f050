"""Time `vocabx stats` against plain batch encoding of the same corpus, side by side in one run.

Baseline: the texts already in memory, then `tokenizer(texts)` (transformers' batch encode, no special
tokens), which is what a user would otherwise write. It gets its reading for free; vocabx's time covers
reading the files, encoding and counting words. Each is run `--repeats` times, alternating, and the
median is reported.

    python benchmarks/bench_stats.py                # ../shared/corpora when present, else corpora/
    python benchmarks/bench_stats.py FILE...        # any corpus files
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "corpora"


def default_corpus() -> list[Path]:
    if SHARED.is_dir():
        return [SHARED / d / f for d in ("medical/medquad", "legal/cuad") for f in ("train.jsonl", "test.jsonl")]
    return sorted((ROOT / "corpora").rglob("*.jsonl"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", nargs="*", type=Path)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    files = args.corpus or default_corpus()

    import torch

    from vocabx import corpus_stats, load_tokenizer, read_corpus

    tokenizer = load_tokenizer(args.model)
    texts = list(read_corpus(files))
    plain, ours = [], []
    stats = None
    for _ in range(args.repeats):
        start = time.perf_counter()
        encoded = tokenizer(texts, add_special_tokens=False)
        plain.append(time.perf_counter() - start)
        plain_tokens = sum(len(ids) for ids in encoded["input_ids"])
        del encoded
        start = time.perf_counter()
        stats = corpus_stats(read_corpus(files), tokenizer)
        ours.append(time.perf_counter() - start)
    assert stats is not None and stats.tokens == plain_tokens, (stats, plain_tokens)
    result = {
        "benchmark": "stats",
        "corpus": [str(f.relative_to(ROOT.parent)) if f.is_relative_to(ROOT.parent) else str(f) for f in files],
        "model": args.model,
        "docs": stats.docs,
        "megabytes": round(stats.bytes / 1e6, 2),
        "tokens": stats.tokens,
        "words": stats.words,
        "plain_encode_s": round(statistics.median(plain), 3),
        "vocabx_stats_s": round(statistics.median(ours), 3),
        "ratio": round(statistics.median(ours) / statistics.median(plain), 3),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, Python {platform.python_version()}",
    }
    print(json.dumps(result, indent=2))
    print(
        f"| stats | {result['megabytes']} MB, {stats.docs:,} docs | plain `tokenizer(texts)` {result['plain_encode_s']} s "
        f"| vocabx stats (incl. reading) {result['vocabx_stats_s']} s | **{result['ratio']}x** |",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

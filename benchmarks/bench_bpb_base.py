"""Bits per byte of the base model on general and medical held-out text, and the time each takes.

The reference every later figure is compared against: `vocabx.metrics.bits_per_byte` with the base
smollm2-135m and its own tokenizer on the first `--docs` documents of Wikipedia (XQuAD English) and of
MedQuAD test, from ../shared/corpora. The wall time covers tokenizing and scoring, not loading the model.

    python benchmarks/bench_bpb_base.py                    # 200 docs of each, block 1024, batch 8
    python benchmarks/bench_bpb_base.py --docs 50 --device cuda
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "corpora"
CORPORA = {
    "general/wikipedia-xquad": SHARED / "general" / "wikipedia-xquad" / "test.jsonl",
    "medical/medquad": SHARED / "medical" / "medquad" / "test.jsonl",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--block-size", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    missing = [str(p) for p in CORPORA.values() if not p.is_file()]
    if missing:
        print(f"corpora not found: {', '.join(missing)}", file=sys.stderr)
        return 1

    import torch

    from vocabx import load_model, load_tokenizer, read_corpus
    from vocabx.metrics import bits_per_byte

    tokenizer = load_tokenizer(args.model)
    model = load_model(args.model)
    if args.device:
        model.to(args.device)
    device = next(model.parameters()).device
    results = []
    for name, path in CORPORA.items():
        texts = list(itertools.islice(read_corpus(path), args.docs))
        start = time.perf_counter()
        scored = bits_per_byte(model, tokenizer, texts, block_size=args.block_size, batch_size=args.batch_size)
        seconds = time.perf_counter() - start
        results.append(
            {
                "corpus": name,
                **{k: round(v, 4) if isinstance(v, float) else v for k, v in scored.items()},
                "seconds": round(seconds, 2),
                "tokens_per_second": round(scored["tokens"] / seconds),
            }
        )
    machine = (
        torch.cuda.get_device_name(device) if device.type == "cuda"
        else f"{platform.machine()}, {torch.get_num_threads()} threads, CPU"
    )
    summary = {
        "benchmark": "bpb_base",
        "model": args.model,
        "block_size": args.block_size,
        "batch_size": args.batch_size,
        "machine": f"{machine}, Python {platform.python_version()}, torch {torch.__version__}",
        "results": results,
    }
    print(json.dumps(summary, indent=2))
    for r in results:
        print(
            f"| {r['corpus']} | {r['docs']} docs, {r['bytes']:,} bytes, {r['tokens']:,} tokens "
            f"| bpb {r['bpb']} | {r['seconds']} s |",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

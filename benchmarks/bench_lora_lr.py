"""`lora` on the base model beside bench_rows_update.py's runs: the same documents, steps and scored samples.

bench_rows_update.py trains the extended model and reports its bits per byte against the base model's
on fixed samples; the floor of issues 5 and 6 sets the extended model against `lora` (LoRA on the base
model, base tokenizer) at equal steps. This trains `lora` the same way (seeded sample of --train-docs
train.jsonl documents, --steps steps of 4 x 256 tokens, warmup 2, seed), once per --lr, and scores it
on the same 16 domain test and 16 general documents of 1,200 characters.

    python benchmarks/bench_lora_lr.py [--domain medquad] [--steps 60] [--lr 2e-4,6e-4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench_init import DOMAINS, ROOT, SHARED, bpb
from bench_rows_update import setup
from common import write_results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domain", default="medquad", choices=sorted(DOMAINS))
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--lr", default="2e-4", help="comma-separated LoRA learning rates, one run each")
    parser.add_argument("--lora-r", type=int, default=4, help="LoRA's rank (alpha is twice it, the trainer's default scale; default 4)")
    parser.add_argument("--train-docs", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "lora_lr.json")
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"skipped: {SHARED} not found", file=sys.stderr)
        return 0

    import torch

    import vocabx

    tokenizer, train_docs, domain, general, base_bpb = setup(args.domain, args.train_docs, args.seed)
    base_domain, base_general = base_bpb["domain_bpb"], base_bpb["general_bpb"]
    results: dict = {
        "domain": args.domain, "mode": "lora", "lora_r": args.lora_r, "steps": args.steps, "batch": "4 x 256", "seed": args.seed, "train_docs": args.train_docs,
        "machine": f"torch {torch.__version__}, {torch.get_num_threads()} threads",
        "base": {"domain_bpb": base_domain, "general_bpb": base_general}, "runs": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for lr in [float(x) for x in args.lr.split(",")]:
            started = time.perf_counter()
            run = vocabx.train(
                "smollm2-135m", train_docs, Path(tmp) / "run", overwrite=True, progress=False, eval_texts=train_docs[:2],
                mode="lora", max_steps=args.steps, batch_size=4, block_size=256, lr=lr, lora_r=args.lora_r, lora_alpha=2.0 * args.lora_r,
                warmup_steps=2, eval_every=0, save_every=0, trackers="none", adapter_dtype="fp32", seed=args.seed,
            )
            d, g = bpb(run.model, tokenizer, domain), bpb(run.model, tokenizer, general)
            results["runs"][f"lora@{lr:g}"] = {
                "domain_bpb": d, "general_bpb": g,
                "domain_change": round(d / base_domain - 1, 4), "general_change": round(g / base_general - 1, 4),
                "seconds": round(time.perf_counter() - started),
            }
            print(f"lora@{lr:g}", results["runs"][f"lora@{lr:g}"], file=sys.stderr, flush=True)
            del run
    write_results(args.out, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

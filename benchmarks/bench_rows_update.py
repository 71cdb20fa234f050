"""Training only the new rows: sparse row updates (the default) against plain AdamW over all rows.

smollm2-135m extended by the analyzer's top N candidates for MedQuAD train (`mean_shift` rows), then
`vocabx.train(mode="tokens")` on MedQuAD train documents (seeded sample) for --steps steps of 4 x 256
tokens, once per `--rows-update` setting, same data order; bits per byte of the result on the same
fixed samples as `bench_init.py` (16 MedQuAD test documents and 16 general ones, 1,200 characters
each), against the base model's. No timing: quality only.

    python benchmarks/bench_rows_update.py [--n 8192] [--steps 40] [--embedding-lr 1e-3] [--updates sparse,dense]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from bench_init import DOMAINS, GENERAL, ROOT, SHARED, bpb, sample, top_tokens
from common import write_results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=8192, help="new tokens (default 8192)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--embedding-lr", type=float, default=1e-3)
    parser.add_argument("--updates", default="sparse,dense")
    parser.add_argument("--train-docs", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "rows_update.json")
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"skipped: {SHARED} not found", file=sys.stderr)
        return 0

    import torch

    import vocabx
    from vocabx import load_model, load_tokenizer, read_corpus
    from vocabx.extend import extend, save_extension

    tokenizer = load_tokenizer("smollm2-135m")
    folder = DOMAINS["medquad"]
    docs = list(read_corpus(folder / "train.jsonl"))
    random.Random(0).shuffle(docs)
    train_docs = docs[: args.train_docs]
    general = sample(GENERAL, 16, 1200)
    domain = sample([folder / "test.jsonl"], 16, 1200)

    base = load_model("smollm2-135m")
    base_domain, base_general = bpb(base, tokenizer, domain), bpb(base, tokenizer, general)
    del base
    new = top_tokens(read_corpus(folder / "train.jsonl"), tokenizer, args.n)
    results: dict = {
        "n": args.n, "steps": args.steps, "batch": "4 x 256", "embedding_lr": args.embedding_lr, "train_docs": args.train_docs,
        "machine": f"torch {torch.__version__}, {torch.get_num_threads()} threads",
        "base": {"domain_bpb": base_domain, "general_bpb": base_general}, "runs": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        ext = extend(load_model("smollm2-135m"), new, tokenizer=tokenizer, init="mean_shift")
        d0, g0 = bpb(ext.model, ext.tokenizer, domain), bpb(ext.model, ext.tokenizer, general)
        results["init"] = {"domain_change": round(d0 / base_domain - 1, 4), "general_change": round(g0 / base_general - 1, 4)}
        save_extension(ext, Path(tmp) / "ext")
        del ext
        for update in args.updates.split(","):
            started = time.perf_counter()
            run = vocabx.train(
                str(Path(tmp) / "ext"), train_docs, Path(tmp) / update, overwrite=True, progress=False, eval_texts=train_docs[:2],
                mode="tokens", max_steps=args.steps, batch_size=4, block_size=256, embedding_lr=args.embedding_lr,
                warmup_steps=2, eval_every=0, save_every=0, trackers="none", rows_update=update, adapter_dtype="fp32",
            )
            d, g = bpb(run.model, run.tokenizer, domain), bpb(run.model, run.tokenizer, general)
            results["runs"][update] = {
                "domain_bpb": d, "general_bpb": g,
                "domain_change": round(d / base_domain - 1, 4), "general_change": round(g / base_general - 1, 4),
                "seconds": round(time.perf_counter() - started),
            }
            print(update, results["runs"][update], file=sys.stderr, flush=True)
    write_results(args.out, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

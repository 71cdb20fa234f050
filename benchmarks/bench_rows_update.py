"""Which new rows a training step moves: sparse row updates (the default), active ones, plain AdamW.

smollm2-135m extended by the analyzer's top N candidates for the domain's train.jsonl (`mean_shift`
rows), then `vocabx.train(mode=--mode)` on its train documents (seeded sample) for --steps steps of
4 x 256 tokens, once per `--updates` setting, same data order; bits per byte of the result on the same
fixed samples as `bench_init.py` (16 test documents of the domain and 16 general ones, 1,200
characters each), against the base model's. `active` also moves the rows whose tokens took at least
--row-mass of the probability per 1,000 positions of a step (one run per value of --row-mass). With
--replay F1,F2 each setting runs once per replay fraction: that share of the training blocks comes from
general documents other than the scored ones (each general file's documents after its first 100; the
scored 16 are among those first 100), as `vocabx train --replay` does. With --split-new S1,S2 each
setting runs once per share of the new tokens' occurrences written with their base pieces in training
(`vocabx train --split-new`). No timing: quality only.

    python benchmarks/bench_rows_update.py [--domain medquad] [--mode tokens] [--n 8192] [--steps 40]
        [--embedding-lr 1e-3] [--updates sparse,dense,active] [--row-mass 1,4] [--extended RUN/extended]
        [--replay 0,0.25] [--split-new 0,0.1]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from bench_init import DOMAINS, GENERAL, ROOT, SHARED, bpb, sample, top_tokens
from common import documents_after, write_results


def setup(domain: str, n_train: int, seed: int) -> tuple:
    """What every run of this harness shares (bench_lora_lr.py's too): the base tokenizer, a seeded
    sample of ``n_train`` train.jsonl documents, the 16 domain test and 16 general documents of 1,200
    characters that are scored, and the base model's bits per byte on both."""
    from vocabx import load_model, load_tokenizer, read_corpus

    tokenizer = load_tokenizer("smollm2-135m")
    docs = list(read_corpus(DOMAINS[domain] / "train.jsonl"))
    random.Random(seed).shuffle(docs)
    general = sample(GENERAL, 16, 1200)
    scored = sample([DOMAINS[domain] / "test.jsonl"], 16, 1200)
    base = load_model("smollm2-135m")
    base_bpb = {"domain_bpb": bpb(base, tokenizer, scored), "general_bpb": bpb(base, tokenizer, general)}
    return tokenizer, docs[:n_train], scored, general, base_bpb


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=8192, help="new tokens (default 8192)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--embedding-lr", type=float, default=1e-3)
    parser.add_argument("--lr", type=float, default=2e-4, help="LoRA's peak learning rate (the trainer's default 2e-4)")
    parser.add_argument("--updates", default="sparse,dense")
    parser.add_argument("--domain", default="medquad", choices=sorted(DOMAINS))
    parser.add_argument("--mode", default="tokens", choices=("tokens", "lora+tokens"))
    parser.add_argument("--row-mass", default="1", help="comma-separated thresholds for the active runs")
    parser.add_argument("--min-cohesion", type=float, default=0.0)
    parser.add_argument("--replay", default="0", help="comma-separated replay fractions of general text (0: none)")
    parser.add_argument("--split-new", default="0", help="comma-separated shares of the new tokens' occurrences written with their base pieces in training (vocabx train --split-new; 0: none)")
    parser.add_argument("--extended", type=Path, help="start from this extended model folder (such as an adapt run's RUN/extended, fitted rows) instead of extending by the top --n")
    parser.add_argument("--lora-r", type=int, default=4, help="LoRA's rank with --mode lora+tokens (alpha is twice it, the trainer's default scale; default 4)")
    parser.add_argument("--train-docs", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0, help="seed of the training documents' sample and of training")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "rows_update.json")
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"skipped: {SHARED} not found", file=sys.stderr)
        return 0

    import torch

    import vocabx
    from vocabx import load_model, read_corpus
    from vocabx.extend import extend, save_extension

    folder = DOMAINS[args.domain]
    tokenizer, train_docs, domain, general, base_bpb = setup(args.domain, args.train_docs, args.seed)
    base_domain, base_general = base_bpb["domain_bpb"], base_bpb["general_bpb"]
    replay_docs = documents_after(GENERAL)
    new = None if args.extended else top_tokens(read_corpus(folder / "train.jsonl"), tokenizer, args.n, min_cohesion=args.min_cohesion)
    results: dict = {
        "extended": str(args.extended) if args.extended else None, "domain": args.domain, "mode": args.mode, "min_cohesion": args.min_cohesion, "n": args.n, "steps": args.steps, "batch": "4 x 256", "embedding_lr": args.embedding_lr, "lr": args.lr, "lora_r": args.lora_r, "seed": args.seed, "train_docs": args.train_docs,
        "machine": f"torch {torch.__version__}, {torch.get_num_threads()} threads", "replay_docs": len(replay_docs),
        "base": {"domain_bpb": base_domain, "general_bpb": base_general}, "runs": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        start = args.extended or Path(tmp) / "ext"
        if args.extended:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            model, ext_tokenizer = AutoModelForCausalLM.from_pretrained(start), AutoTokenizer.from_pretrained(start)
        else:
            ext = extend(load_model("smollm2-135m"), new, tokenizer=tokenizer, init="mean_shift")
            save_extension(ext, start)
            model, ext_tokenizer = ext.model, ext.tokenizer
            del ext
        d0, g0 = bpb(model, ext_tokenizer, domain), bpb(model, ext_tokenizer, general)
        results["init"] = {"domain_change": round(d0 / base_domain - 1, 4), "general_change": round(g0 / base_general - 1, 4)}
        del model
        runs = []
        for update in args.updates.split(","):
            masses = [float(m) for m in args.row_mass.split(",")] if update == "active" else [1.0]
            for fraction in [float(f) for f in args.replay.split(",")]:
                for split in [float(f) for f in args.split_new.split(",")]:
                    runs += [((f"active@{m:g}" if update == "active" else update) + (f"+replay@{fraction:g}" if fraction else "") + (f"+split@{split:g}" if split else ""), update, m, fraction, split) for m in masses]
        for name, update, mass, fraction, split in runs:
            started = time.perf_counter()
            run = vocabx.train(
                str(start), train_docs, Path(tmp) / "run", overwrite=True, progress=False, eval_texts=train_docs[:2],
                mode=args.mode, max_steps=args.steps, batch_size=4, block_size=256, embedding_lr=args.embedding_lr, lr=args.lr,
                warmup_steps=2, eval_every=0, save_every=0, trackers="none", rows_update=update, row_mass=mass, adapter_dtype="fp32",
                seed=args.seed, split_new=split, lora_r=args.lora_r, lora_alpha=2.0 * args.lora_r, **({"replay_texts": replay_docs, "replay_fraction": fraction} if fraction else {}),
            )
            d, g = bpb(run.model, run.tokenizer, domain), bpb(run.model, run.tokenizer, general)
            results["runs"][name] = {
                "domain_bpb": d, "general_bpb": g,
                "domain_change": round(d / base_domain - 1, 4), "general_change": round(g / base_general - 1, 4),
                "seconds": round(time.perf_counter() - started),
            }
            print(name, results["runs"][name], file=sys.stderr, flush=True)
            del run
    write_results(args.out, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

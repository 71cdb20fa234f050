"""Quality at equal compute: `lora+tokens` on the extended model against `lora` on the base model.

MedQuAD train -> test (../shared/corpora), smollm2-135m. The extension adds the analyzer's top `--n`
candidates for train.jsonl. Both runs train the same number of optimizer steps on batches of the same
shape from the same training documents, and are scored in bits per byte on the same test documents
(other NIH sites than train) every `--eval-every` steps: the learning curves. Also the test sequences'
length under each tokenizer.

    python benchmarks/bench_quality.py [--steps 60] [--n 8192] [--eval-docs 24] [--fit-steps 60]
    python benchmarks/bench_quality.py --steps 100 --eval-every 50 --fit-steps 60 --lora-r 16   # a larger LoRA

``--fit-steps F`` fits the extension's rows for F steps (vocabx.fit, model frozen, batches of the same
shape) before lora+tokens trains; the fit's seconds are part of that side's time.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

from bench_init import top_tokens
from common import write_results

ROOT = Path(__file__).resolve().parents[1]
MEDQUAD = ROOT.parent / "shared" / "corpora" / "medical" / "medquad"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--n", type=int, default=8192)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--block-size", type=int, default=256)
    parser.add_argument("--train-docs", type=int, default=3000)
    parser.add_argument("--eval-docs", type=int, default=24)
    parser.add_argument("--eval-chars", type=int, default=2000)
    parser.add_argument("--eval-every", type=int, default=20)
    parser.add_argument("--init", default=None, help="initialization of the new rows (default: vocabx adapt's, since training follows)")
    parser.add_argument("--rows-update", default="sparse", choices=("sparse", "dense"))
    parser.add_argument("--sides", default="lora+tokens,lora", help="which sides to run (default both): lora+tokens (extended model), lora (base model)")
    parser.add_argument("--fit-steps", type=int, default=0, help="fit the new rows this many steps before training lora+tokens (vocabx.fit)")
    parser.add_argument("--lr", type=float, default=None, help="LoRA's peak learning rate for both sides (default: vocabx train's)")
    parser.add_argument("--embedding-lr", type=float, default=None, help="the new rows' peak learning rate (default: vocabx train's)")
    parser.add_argument("--lora-r", type=int, default=None, help="LoRA's rank for both sides (default: vocabx train's); alpha stays twice the rank")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "quality.json")
    args = parser.parse_args()
    if not MEDQUAD.is_dir():
        print(f"skipped: {MEDQUAD} not found", file=sys.stderr)
        return 0

    import torch

    from vocabx import load_tokenizer, read_corpus
    from vocabx.evaluate import take
    from vocabx.extend import extend, save_extension
    from vocabx.train import train

    tokenizer = load_tokenizer("smollm2-135m")
    train_texts = list(read_corpus(MEDQUAD / "train.jsonl"))
    test = take(read_corpus(MEDQUAD / "test.jsonl"), args.eval_docs, args.eval_chars)
    new = top_tokens(train_texts, tokenizer, args.n)
    docs = train_texts[: args.train_docs]
    results: dict = {"settings": {}, "machine": f"{platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads"}
    with tempfile.TemporaryDirectory() as tmp:
        ext_dir = Path(tmp) / "ext"
        from vocabx.adapt import ADAPT_INIT

        args.init = args.init or ADAPT_INIT
        ext = extend("smollm2-135m", new, tokenizer=tokenizer, init=args.init)
        started = time.perf_counter()
        if args.fit_steps:
            from vocabx.fit import FitSettings, fit_extension

            settings = FitSettings(steps=args.fit_steps, batch_size=args.batch_size, block_size=args.block_size)
            results["fit"] = fit_extension(ext, docs, base_tokenizer=tokenizer, settings=settings)
            print("fit", json.dumps(results["fit"]), file=sys.stderr, flush=True)
        fit_seconds = time.perf_counter() - started if args.fit_steps else 0.0
        save_extension(ext, ext_dir)
        base_len = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in test)
        ext_len = sum(len(ext.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in test)
        results["test_tokens"] = {"base": base_len, "extended": ext_len, "reduction": round(1 - ext_len / base_len, 4)}
        del ext
        sides = args.sides.split(",")
        for name, source, mode in (("lora+tokens (extended)", str(ext_dir), "lora+tokens"), ("lora (base)", "smollm2-135m", "lora")):
            if mode not in sides:
                continue
            started = time.perf_counter()
            rates = {k: v for k, v in (("lr", args.lr), ("embedding_lr", args.embedding_lr)) if v is not None}
            if args.lora_r is not None:
                rates.update(lora_r=args.lora_r, lora_alpha=2.0 * args.lora_r)
            run = train(
                source, docs, Path(tmp) / mode, mode=mode, max_steps=args.steps, batch_size=args.batch_size,
                block_size=args.block_size, eval_texts=test, eval_every=args.eval_every, save_every=0, seed=0, rows_update=args.rows_update,
                **rates,
            )
            curve = [{"step": h["step"], "eval_bpb": round(h["eval_bpb"], 4)} for h in run.history if h.get("type") == "eval" and h.get("eval_bpb") is not None]
            seconds = time.perf_counter() - started + (fit_seconds if mode == "lora+tokens" else 0.0)
            results[name] = {"eval_bpb": round(run.eval_bpb, 4), "curve": curve, "seconds": round(seconds, 1), "tokens_per_second": run.tokens_per_second}
            print(name, json.dumps(results[name]), file=sys.stderr, flush=True)
    results["settings"] = vars(args) | {"out": str(args.out)}
    write_results(args.out, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

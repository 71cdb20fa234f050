"""The `lora` baseline at equal steps for a `vocabx adapt` run: same training documents, same budget.

Issue 6's floor asks that the adapted model's held-out bits per byte be no worse than `lora` alone (LoRA
on the base model, no new tokens) trained for the same steps. This script reads a finished run folder
written by `vocabx adapt CORPUS --eval TEST --budget B -o RUN`, trains `lora` on the base model with the
run's budget (steps, batch, block, seed, and the run's LoRA learning rate and rank: its budget's or
`--lr`, `--lora-r`) on
the same training documents, scores it with `vocabx.evaluate`
on the same test and general documents, and writes the three sides (base, lora, the run's adapted model)
side by side.

    python benchmarks/bench_adapt_lora.py runs/cuad-standard ../shared/corpora/legal/cuad/train.jsonl \
        --eval ../shared/corpora/legal/cuad/test.jsonl --general ../shared/corpora/general \
        --out benchmarks/results/adapt_lora_cuad.json

A second run of the same corpus and budget (say, after a change to the extension) is set against the
same `lora` adapter with `--work FIRST_RUN/lora-baseline --reuse`, which scores it without retraining.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a finished `vocabx adapt --eval` run folder")
    parser.add_argument("corpus", nargs="+", help="the training corpus given to that run")
    parser.add_argument("--eval", required=True, help="the test corpus given to that run")
    parser.add_argument("--general", help="the general corpus given to that run")
    parser.add_argument("--work", type=Path, help="where the lora adapter goes (default RUN/lora-baseline)")
    parser.add_argument("--reuse", action="store_true", help="score the lora adapter already in --work (trained for another run with the same budget and documents) instead of training it")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    from vocabx.corpus import read_corpus
    from vocabx.evaluate import Side, evaluate, load_side, take
    from vocabx.models import load_model, load_tokenizer
    from vocabx.train import TrainConfig, train

    state = json.loads((args.run / "run.json").read_text())
    plan = state["budget"]
    adapted_metrics = json.loads((args.run / "evaluation" / "metrics.json").read_text())
    model = adapted_metrics["base"]
    train_texts = list(read_corpus(args.corpus))
    test = take([t for t in read_corpus(args.eval) if t.strip()], plan["eval_docs"], plan["eval_chars"])
    general = take(read_corpus(args.general), plan["eval_docs"], plan["eval_chars"]) if args.general else None
    work = args.work or args.run / "lora-baseline"
    # (the run's own LoRA learning rate, so the two sides differ only in the new tokens)
    defaults = TrainConfig()
    lr = plan["lr"] if plan.get("lr") is not None else defaults.lr
    # (and its LoRA rank and alpha)
    run_config = json.loads((args.run / "adapter" / "vocabx_train.json").read_text())["config"]
    rank = {k: run_config.get(k, getattr(defaults, k)) for k in ("lora_r", "lora_alpha")}

    started = time.monotonic()
    if args.reuse:
        summary = json.loads((work / "vocabx_train.json").read_text())
        same = {k: summary.get("config", {}).get(k) for k in ("max_steps", "batch_size", "block_size", "lr", "lora_r", "lora_alpha")}
        wanted = {k: plan[k] for k in ("max_steps", "batch_size", "block_size")} | {"lr": lr} | rank
        if same != wanted:
            parser.error(f"--reuse: {work} was trained with {same}, not this run's budget")
        trained, train_seconds = None, None
    else:
        trained = train(
            model,
            train_texts,
            work,
            mode="lora",
            max_steps=plan["max_steps"],
            batch_size=plan["batch_size"],
            block_size=plan["block_size"],
            seed=0,
            eval_every=0,
            save_every=0,
            overwrite=True,
            lr=lr,
            **rank,
        )
        train_seconds = round(time.monotonic() - started, 1)
    lora = load_side(model, work)
    base = Side(load_model(model), load_tokenizer(model), set(), label=model)
    metrics = evaluate(base, lora, {"domain test": test}, {"general": general} if general else None)

    sides = {}
    for corpus in metrics["corpora"]:
        ours = adapted_metrics["corpora"][corpus]
        theirs = metrics["corpora"][corpus]
        assert ours["base"]["bytes"] == theirs["base"]["bytes"], f"{corpus}: the run scored other documents"
        sides[corpus] = {
            "base_bpb": theirs["base"]["bpb"],
            "lora_bpb": theirs["adapted"]["bpb"],
            "adapted_bpb": ours["adapted"]["bpb"],
            "adapted_vs_lora": round(ours["adapted"]["bpb"] / theirs["adapted"]["bpb"] - 1, 5),
            "lora_vs_base": theirs["bpb_change"],
            "adapted_vs_base": ours["bpb_change"],
            "tokens": {"base": theirs["base"]["tokens"], "adapted": ours["adapted"]["tokens"]},
        }
    write_results(
        args.out,
        {
            "run": str(args.run),
            "model": model,
            "budget": plan,
            "lora_train": {k: v for k, v in trained.as_dict().items() if k in ("train_loss", "eval_bpb", "steps", "tokens_per_second")} if trained else {"reused": str(work)},
            "lora_train_seconds": train_seconds,
            "lora_lr": lr,
            "lora_rank": rank,
            "corpora": sides,
        },
    )


if __name__ == "__main__":
    main()

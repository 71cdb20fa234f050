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

    work = args.work or args.run / "lora-baseline"
    general = list(read_corpus(args.general)) if args.general else None
    if args.reuse:
        summary = json.loads((work / "vocabx_train.json").read_text())
        same = {k: summary.get("config", {}).get(k) for k in ("max_steps", "batch_size", "block_size", "lr", "lora_r", "lora_alpha")}
        wanted = training_settings(args.run)
        if same != wanted:
            parser.error(f"--reuse: {work} was trained with {same}, not this run's budget")
    results = lora_pair(args.run, list(read_corpus(args.corpus)), list(read_corpus(args.eval)), general, work, reuse=args.reuse)
    write_results(args.out, results)


def training_settings(run: Path) -> dict:
    """The run's training budget and LoRA settings (steps, batch, block, learning rate, rank, alpha), which
    its `lora` pair trains with, so that the two sides differ only in the new tokens."""
    from vocabx.train import TrainConfig

    plan = json.loads((run / "run.json").read_text())["budget"]
    defaults = TrainConfig()
    run_config = json.loads((run / "adapter" / "vocabx_train.json").read_text())["config"]
    return (
        {k: plan[k] for k in ("max_steps", "batch_size", "block_size")}
        | {"lr": plan["lr"] if plan.get("lr") is not None else defaults.lr}
        | {k: run_config.get(k, getattr(defaults, k)) for k in ("lora_r", "lora_alpha")}
    )


def lora_pair(run: Path, train_texts: list[str], eval_texts: list[str], general_texts: list[str] | None, work: Path, *, reuse: bool = False) -> dict:
    """Train `lora` on the base model with a finished `vocabx adapt --eval` run's budget on the same
    documents (or, with ``reuse``, score the adapter already in ``work``), score it on the run's own
    test and general documents, and return the three sides (base, lora, the run's adapted model)."""
    from vocabx.evaluate import Side, evaluate, load_side, take
    from vocabx.models import load_model, load_tokenizer
    from vocabx.train import train

    state = json.loads((run / "run.json").read_text())
    plan = state["budget"]
    adapted_metrics = json.loads((run / "evaluation" / "metrics.json").read_text())
    model = adapted_metrics["base"]
    test = take([t for t in eval_texts if t.strip()], plan["eval_docs"], plan["eval_chars"])
    general = take(general_texts, plan["eval_docs"], plan["eval_chars"]) if general_texts else None
    settings = training_settings(run)
    started = time.monotonic()
    if reuse:
        trained, train_seconds = None, None
    else:
        trained = train(model, train_texts, work, mode="lora", seed=0, eval_every=0, save_every=0, overwrite=True, **settings)
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
    return {
        "run": str(run),
        "model": model,
        "budget": plan,
        "lora_train": {k: v for k, v in trained.as_dict().items() if k in ("train_loss", "eval_bpb", "steps", "tokens_per_second")} if trained else {"reused": str(work)},
        "lora_train_seconds": train_seconds,
        "lora_lr": settings["lr"],
        "lora_rank": {k: settings[k] for k in ("lora_r", "lora_alpha")},
        "corpora": sides,
    }

if __name__ == "__main__":
    main()

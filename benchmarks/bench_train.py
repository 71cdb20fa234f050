"""Time vocabx's `lora+tokens` training against the common recipe on CPU, side by side in one run.

The recipe: transformers `Trainer` with PEFT LoRA and `modules_to_save=["embed_tokens", "lm_head"]`, the
usual way to train an extended vocabulary (it copies, trains and saves both embedding matrices). Both
train the same extended smollm2-135m (the medical corpus's top `--top` analyzer candidates added, `mean`
init), with the same LoRA (rank, alpha, dropout, all linear layers of the blocks), batches of 4 blocks
of 256 tokens packed from the same documents, AdamW, cosine schedule, clipping at 1.0. Both run in fp32
(vocabx's CPU default) and, with `--bf16`, also both in bf16 autocast (vocabx `--mixed-precision bf16`,
which also stores the frozen weights in bf16; the recipe `bf16=True`), which pays off on CPUs with
native bf16 (AVX512-BF16, AMX).

Each side runs in its own subprocess, so its peak RSS (``ru_maxrss``: model load, training and saving
included) is its own. The sides alternate for `--rounds` rounds (vocabx, recipe, vocabx, ...), so load
from other processes on the machine falls on both; seconds per step is the median over all rounds' steps
after `--warmup` untimed ones per round, and the load average is reported with the figures.
Adapter size: the weights file each side saves (vocabx: `adapter_model.safetensors` of its export; the
recipe: `model.save_pretrained()` with PEFT's defaults).

    python benchmarks/bench_train.py                 # ../shared/corpora/medical/medquad when present, else corpora/medical
    python benchmarks/bench_train.py --steps 6 --json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
from pathlib import Path

from common import blocks_dataset, step_timer

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "corpora" / "medical" / "medquad"
WORK = ROOT / "build" / "bench_train"
BLOCK, BATCH = 256, 4


def corpus() -> list[Path]:
    if SHARED.is_dir():
        return [SHARED / "train.jsonl"]
    return sorted((ROOT / "corpora" / "medical").glob("*.jsonl"))


def documents(limit: int) -> list[str]:
    from vocabx import read_corpus

    texts = []
    for text in read_corpus(corpus()):
        texts.append(text)
        if len(texts) >= limit:
            break
    return texts


def prepare(top: int, docs: int) -> Path:
    """The extended model folder (made once, cached under build/)."""
    from vocabx import analyze, extend, load_tokenizer, save_extension, tokens_from_report

    ext = WORK / f"ext-top{top}-docs{docs}"
    if (ext / "vocabx.json").is_file():
        return ext
    texts = documents(docs)
    tok = load_tokenizer("smollm2-135m")
    report = analyze(texts, tok, holdout=None).report
    extension = extend("smollm2-135m", tokens_from_report(report, top), tokenizer=tok, check_texts=texts, pad_to_multiple_of=64, base_spec="smollm2-135m")
    save_extension(extension, ext, overwrite=True)
    return ext


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_vocabx(args: argparse.Namespace) -> dict:
    precision = "bf16" if args.worker.endswith("bf16") else "no"
    import vocabx

    texts = documents(args.docs)
    out = WORK / f"out-{args.worker}"
    result = vocabx.train(
        args.ext, texts, out, overwrite=True, progress=False, eval_texts=texts[:2],
        mode="lora+tokens", max_steps=args.warmup + args.steps, batch_size=BATCH, block_size=BLOCK,
        lora_r=args.r, lora_alpha=args.alpha, lora_dropout=0.05, lr=2e-4, warmup_steps=1,
        eval_every=0, save_every=0, trackers="none", mixed_precision=precision,
    )
    times = [r["step_seconds"] for r in result.history if r["type"] == "train"][args.warmup :]
    return {"seconds_per_step": statistics.median(times), "step_seconds": times, "adapter_bytes": result.adapter_bytes, "trainable_parameters": result.trainable_parameters, "peak_rss_mb": peak_rss_mb()}


def worker_recipe(args: argparse.Namespace) -> dict:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

    from vocabx import load_tokenizer, pack_texts

    tok = load_tokenizer(str(args.ext))
    blocks = pack_texts(documents(args.docs), tok, BLOCK).blocks
    model = AutoModelForCausalLM.from_pretrained(args.ext)
    config = LoraConfig(r=args.r, lora_alpha=args.alpha, lora_dropout=0.05, target_modules="all-linear", modules_to_save=["embed_tokens", "lm_head"], task_type="CAUSAL_LM")
    model = get_peft_model(model, config)

    timer = step_timer()
    out = WORK / f"out-{args.worker}"
    training_args = TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=BATCH, max_steps=args.warmup + args.steps, learning_rate=2e-4,
        lr_scheduler_type="cosine", warmup_steps=1, max_grad_norm=1.0, logging_steps=1, save_strategy="no", report_to=[],
        use_cpu=True, bf16=args.worker.endswith("bf16"), dataloader_num_workers=0, seed=0, disable_tqdm=True,
    )
    Trainer(model=model, args=training_args, train_dataset=blocks_dataset(blocks), callbacks=[timer]).train()
    model.save_pretrained(out / "adapter")
    times = timer.times[args.warmup :]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"seconds_per_step": statistics.median(times), "step_seconds": times, "adapter_bytes": (out / "adapter" / "adapter_model.safetensors").stat().st_size, "trainable_parameters": trainable, "peak_rss_mb": peak_rss_mb()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per side (default 8)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps (default 2)")
    parser.add_argument("--top", type=int, default=1000, help="tokens added to the tokenizer (default 1000)")
    parser.add_argument("--docs", type=int, default=2000, help="documents read from the corpus (default 2000)")
    parser.add_argument("--r", type=int, default=None, help="LoRA rank (default: vocabx's default)")
    parser.add_argument("--alpha", type=float, default=None, help="LoRA alpha (default: vocabx's default)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs per side (default 2)")
    parser.add_argument("--bf16", action="store_true", help="also compare both sides in bf16 autocast")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--worker", choices=("vocabx", "recipe", "vocabx-bf16", "recipe-bf16"), help=argparse.SUPPRESS)
    parser.add_argument("--ext", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.r is None or args.alpha is None:
        from vocabx.train import TrainConfig

        args.r = args.r or TrainConfig().lora_r
        args.alpha = args.alpha or TrainConfig().lora_alpha
    if args.worker:
        result = worker_vocabx(args) if args.worker.startswith("vocabx") else worker_recipe(args)
        print(json.dumps(result))
        return 0

    WORK.mkdir(parents=True, exist_ok=True)
    ext = prepare(args.top, args.docs)
    names = ("vocabx", "recipe") + (("vocabx-bf16", "recipe-bf16") if args.bf16 else ())
    runs: dict[str, list[dict]] = {name: [] for name in names}
    load_before = os.getloadavg()
    for _ in range(args.rounds):
        for side in names:
            cmd = [sys.executable, __file__, "--worker", side, "--ext", str(ext), "--steps", str(args.steps), "--warmup", str(args.warmup), "--docs", str(args.docs), "--r", str(args.r), "--alpha", str(args.alpha)]
            run = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TRANSFORMERS_VERBOSITY": "error"})
            if run.returncode != 0:
                print(run.stderr[-3000:], file=sys.stderr)
                return 1
            runs[side].append(json.loads(run.stdout.strip().splitlines()[-1]))
    combined = {side: _combine(rounds) for side, rounds in runs.items()}
    v, r = combined["vocabx"], combined["recipe"]
    manifest = json.loads((ext / "vocabx.json").read_text())
    result = {
        "benchmark": "train",
        "corpus": [str(p.relative_to(ROOT.parent)) if p.is_relative_to(ROOT.parent) else str(p) for p in corpus()],
        "docs": args.docs,
        "added_tokens": len(manifest["added"]),
        "batch": f"{BATCH} x {BLOCK} tokens",
        "lora": {"r": args.r, "alpha": args.alpha, "targets": "all-linear"},
        "timed_steps": args.steps,
        **combined,
        "step_time_ratio": v["seconds_per_step"] / r["seconds_per_step"],
        "peak_rss_ratio": v["peak_rss_mb"] / r["peak_rss_mb"],
        "adapter_size_ratio": v["adapter_bytes"] / r["adapter_bytes"],
        "rounds": args.rounds,
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "torch_threads": _threads(), "python": platform.python_version(), "load_average_before": load_before, "load_average_after": os.getloadavg()},
    }
    rows = [
        ("", "vocabx lora+tokens", "Trainer + modules_to_save", "ratio"),
        ("seconds per step", f"{v['seconds_per_step']:.2f}", f"{r['seconds_per_step']:.2f}", f"{result['step_time_ratio']:.2f}x"),
        ("peak RSS (MB)", f"{v['peak_rss_mb']:,.0f}", f"{r['peak_rss_mb']:,.0f}", f"{result['peak_rss_ratio']:.2f}x"),
        ("adapter (MB)", f"{v['adapter_bytes'] / 1e6:.2f}", f"{r['adapter_bytes'] / 1e6:.1f}", f"{result['adapter_size_ratio']:.2%}"),
        ("trained parameters", f"{v['trainable_parameters']:,}", f"{r['trainable_parameters']:,}", ""),
    ]
    if args.bf16:
        vb, rb = combined["vocabx-bf16"], combined["recipe-bf16"]
        result["bf16"] = {"step_time_ratio": vb["seconds_per_step"] / rb["seconds_per_step"], "peak_rss_ratio": vb["peak_rss_mb"] / rb["peak_rss_mb"], "vocabx_bf16_vs_recipe_fp32": vb["seconds_per_step"] / r["seconds_per_step"]}
        rows += [
            ("bf16: seconds per step", f"{vb['seconds_per_step']:.2f}", f"{rb['seconds_per_step']:.2f}", f"{result['bf16']['step_time_ratio']:.2f}x"),
            ("bf16: peak RSS (MB)", f"{vb['peak_rss_mb']:,.0f}", f"{rb['peak_rss_mb']:,.0f}", f"{result['bf16']['peak_rss_ratio']:.2f}x"),
        ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)))
    if args.json:
        print(json.dumps(result))
    return 0


def _combine(rounds: list[dict]) -> dict:
    """One side's rounds as one figure: the median over all timed steps, the largest peak RSS."""
    steps = [t for r in rounds for t in r["step_seconds"]]
    return {**rounds[-1], "seconds_per_step": statistics.median(steps), "step_seconds": steps, "peak_rss_mb": max(r["peak_rss_mb"] for r in rounds)}


def _threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    raise SystemExit(main())

"""GPU throughput and memory of vocabx `lora+tokens` against the common recipe, bf16, block 2048.

The GPU machine has torch, transformers, peft, accelerate and tokenizers, but no datasets, no gguf and no
network, and a 1B model's weights do not fit a call (the embedded 135M model's take two: gpu_quality.py).
Throughput and memory do not depend on the weights, so the models are randomly initialized Llamas with
SmolLM2-135M's shape and with a 1B shape (Llama-3.2-1B's: 16 blocks of 2048, 32 heads, 8 KV heads, MLP
8192), both tied, over the real SmolLM2 tokenizer extended by the analyzer's top candidates for the
sample medical corpus (made here by ``--prepare`` and carried along in build/gpu-tokenizer). Random
weights make the losses meaningless; throughput and memory are what they would be with real ones.

Sides, each in its own process (clean peak memory), same packed blocks of the repository's corpora/:

- ``vocabx``: ``vocabx.train(mode="lora+tokens")`` with its defaults: frozen weights in bf16, LoRA and the
  new rows in fp32, bf16 autocast, fused AdamW, the row-sparse step, each block compiled (``--compile
  auto`` compiles on a CUDA GPU);
- ``recipe``: transformers ``Trainer`` + PEFT LoRA with ``modules_to_save=["embed_tokens", "lm_head"]``,
  fp32 weights, ``bf16=True`` (autocast), Trainer's default optimizer;
- ``recipe+compile``: the same with ``torch_compile=True``, so that compiling is credited to both sides;
- ``vocabx-eager``: vocabx with ``compile="no"`` (when time allows).
- ``vocabx-dense``: vocabx with ``rows_update="dense"`` (only with ``--sides``): what the sparse row update costs;
- ``vocabx-active``: vocabx with ``rows_update="active"`` (only with ``--sides``), ``vocabx adapt``'s default:
  what summing each new row's probability in the fused loss costs.

LoRA with vocabx's default rank, alpha and dropout on all linear layers of the blocks, on both sides. Tokens/s is the
batch's tokens over the median step time after the warmup steps (each step synchronized); peak memory
is ``torch.cuda.max_memory_allocated()`` over the whole process; MFU counts 6N + 12·L·d·T flops per
token (N: block and output-layer weights; PaLM's convention, which also counts the weight gradients
that LoRA skips) against the GPU's dense bf16 peak.

    python benchmarks/gpu_train.py --prepare            # here: writes build/gpu-tokenizer
    bash benchmarks/gpu_train.sh                        # on the GPU machine (carry build/gpu-tokenizer)
    python benchmarks/gpu_train.py --smoke              # here, on CPU: tiny shapes, checks the code path
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import blocks_dataset, step_timer

ROOT = Path(__file__).resolve().parents[1]
TOKENIZER_DIR = ROOT / "build" / "gpu-tokenizer"
BLOCK = 2048
SHAPES = {
    "smollm2-135m": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3, head_dim=64, batch=8),
    "llama-1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8, head_dim=64, batch=4),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16, batch=2),
}
PEAK_BF16 = {"H100 PCIe": 756e12, "H100": 989e12, "H200": 989e12, "GH200": 989e12, "A100": 312e12, "L40S": 362e12}


def lora_settings() -> dict:
    from vocabx.train import TrainConfig

    c = TrainConfig()
    return dict(r=c.lora_r, alpha=c.lora_alpha, dropout=c.lora_dropout)


def prepare(top: int, folder: Path = TOKENIZER_DIR) -> None:
    """Copy the converted SmolLM2 tokenizer into ``folder``/base and extend it by the medical corpus's top
    candidates into ``folder``/ext."""
    from vocabx import analyze, extend_tokenizer, load_tokenizer, read_corpus, tokens_from_report
    from vocabx.models import resolve_model

    source = Path(resolve_model("smollm2-135m"))
    texts = list(read_corpus(ROOT / "corpora" / "medical"))
    tok = load_tokenizer("smollm2-135m")
    extended, added, _ = extend_tokenizer(tok, tokens_from_report(analyze(texts, tok, holdout=None).report, top))
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "base").mkdir(parents=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(source / name, folder / "base" / name)
    extended.save_pretrained(folder / "ext")
    print(f"wrote {folder}: {len(tok)} base tokens, {len(added)} added")


def texts() -> list[str]:
    from vocabx import read_corpus

    return list(read_corpus(sorted((ROOT / "corpora").rglob("*.jsonl"))))


def make_model(shape: str, vocab_rows: int, tok: object, device: str, dtype: object) -> object:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    spec = {k: v for k, v in SHAPES[shape].items() if k != "batch"}
    config = LlamaConfig(
        vocab_size=vocab_rows, max_position_embeddings=8192, rope_theta=100000.0, tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id, **spec,
    )
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    return model


def flops_per_token(model: object, block: int) -> float:
    config = model.config
    embedding = config.vocab_size * config.hidden_size
    n = sum(p.numel() for name, p in model.named_parameters() if "embed_tokens" not in name and "lora_" not in name and "modules_to_save" not in name and "delta" not in name)
    n = n + (embedding if config.tie_word_embeddings else 0)  # the output layer's matmul, tied or not
    return 6 * n + 12 * config.num_hidden_layers * config.hidden_size * block


def worker(args: argparse.Namespace) -> dict:
    import torch
    from transformers import AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    LORA = lora_settings()
    tok = AutoTokenizer.from_pretrained(args.tokenizer / "ext")
    n_base = len(AutoTokenizer.from_pretrained(args.tokenizer / "base"))
    rows = -(-len(tok) // 64) * 64
    batch = SHAPES[args.shape]["batch"] if not args.smoke else 2
    block = BLOCK if not args.smoke else 64
    docs = texts()
    steps = args.warmup + args.steps
    if args.side.startswith("vocabx"):
        import vocabx

        bf16 = device == "cuda"
        model = make_model(args.shape, rows, tok, device, torch.bfloat16 if bf16 else torch.float32)
        flops = flops_per_token(model, block)
        result = vocabx.train(
            model, docs, args.out / f"run-{args.shape}-{args.side}", tokenizer=tok, overwrite=True, eval_texts=docs[:1], progress=False,
            mode="lora+tokens", new_token_ids=f"{n_base}-{len(tok) - 1}", batch_size=batch, block_size=block, max_steps=steps,
            lora_r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"], warmup_steps=1, eval_every=0, save_every=0,
            compile="no" if args.side == "vocabx-eager" else "auto", trackers="none",
            rows_update={"vocabx-dense": "dense", "vocabx-active": "active"}.get(args.side, "sparse"),
        )
        times = [r["step_seconds"] for r in result.history if r["type"] == "train"][args.warmup :]
        trainable, adapter = result.trainable_parameters, result.adapter_bytes
    else:
        from peft import LoraConfig, get_peft_model
        from transformers import Trainer, TrainingArguments

        from vocabx import pack_texts

        blocks = pack_texts(docs, tok, block, use_cache=False).blocks
        model = make_model(args.shape, rows, tok, device, torch.float32)
        flops = flops_per_token(model, block)
        config = LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"], target_modules="all-linear", modules_to_save=["embed_tokens", "lm_head"], task_type="CAUSAL_LM")
        model = get_peft_model(model, config)

        timer = step_timer(torch.cuda.synchronize if device == "cuda" else None)
        out = args.out / f"run-{args.shape}-{args.side}"
        targs = TrainingArguments(
            output_dir=str(out), per_device_train_batch_size=batch, max_steps=steps, learning_rate=2e-4, lr_scheduler_type="cosine",
            warmup_steps=1, max_grad_norm=1.0, logging_steps=1, save_strategy="no", report_to=[], bf16=device == "cuda",
            use_cpu=device == "cpu", dataloader_num_workers=0, seed=0, disable_tqdm=True, torch_compile=args.side == "recipe+compile",
        )
        trainer = Trainer(model=model, args=targs, train_dataset=blocks_dataset(blocks), callbacks=[timer])
        trainer.train()
        model.save_pretrained(out / "adapter")
        times = timer.times[args.warmup :]
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        adapter = (out / "adapter" / "adapter_model.safetensors").stat().st_size
        optim = str(targs.optim)
    step = statistics.median(times)
    tokens_per_second = batch * block / step
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
    return {
        "shape": args.shape, "side": args.side, "device": name, "batch": batch, "block": block,
        "seconds_per_step": step, "step_seconds": times, "tokens_per_second": tokens_per_second,
        "peak_memory_gb": torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None,
        "flops_per_token": flops, "mfu": tokens_per_second * flops / peak if peak else None,
        "trainable_parameters": trainable, "adapter_bytes": adapter, **({"optim": optim} if not args.side.startswith("vocabx") else {}),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prepare", action="store_true", help="write --tokenizer (default build/gpu-tokenizer; run where the embedded model is)")
    parser.add_argument("--top", type=int, default=1000, help="candidates added by --prepare (default 1000)")
    parser.add_argument("--smoke", action="store_true", help="tiny shapes and blocks on CPU, to check the code path")
    parser.add_argument("--shapes", default="smollm2-135m,llama-1b")
    parser.add_argument("--sides", default="vocabx,recipe,recipe+compile,vocabx-eager", help="which sides to run, in this order (also: vocabx-dense and vocabx-active, vocabx with --rows-update dense or active)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--budget", type=float, default=360, help="seconds; runs that would start after it are skipped (default 360: the whole script then ends within 8 minutes on an H100)")
    parser.add_argument("--tokenizer", type=Path, default=TOKENIZER_DIR)
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or ROOT / "build" / "gpu_out"))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--shape", help=argparse.SUPPRESS)
    parser.add_argument("--side", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare:
        prepare(args.top, args.tokenizer)
        return 0
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    if not (args.tokenizer / "ext" / "tokenizer.json").is_file():
        print(f"no tokenizer in {args.tokenizer}: run `python benchmarks/gpu_train.py --prepare` where the embedded model is, and carry build/gpu-tokenizer", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    shapes = ["tiny"] if args.smoke else args.shapes.split(",")
    plan = [(shape, side) for side in args.sides.split(",") for shape in shapes]
    started = time.monotonic()
    results = []
    for shape, side in plan:
        if time.monotonic() - started > args.budget:
            print(f"skipped {shape} {side}: past the --budget of {args.budget:.0f} s", file=sys.stderr)
            continue
        cmd = [sys.executable, __file__, "--worker", "--shape", shape, "--side", side, "--steps", str(args.steps if not args.smoke else 2), "--warmup", str(args.warmup if not args.smoke else 1), "--tokenizer", str(args.tokenizer), "--out", str(args.out)] + (["--smoke"] if args.smoke else [])
        t0 = time.monotonic()
        run = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TRANSFORMERS_VERBOSITY": "error", "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))})
        if run.returncode != 0:
            print(f"{shape} {side} failed:\n{run.stderr[-3000:]}", file=sys.stderr)
            results.append({"shape": shape, "side": side, "error": run.stderr.strip().splitlines()[-1] if run.stderr.strip() else f"exit {run.returncode}"})
            continue
        result = json.loads(run.stdout.strip().splitlines()[-1])
        result["wall_seconds"] = round(time.monotonic() - t0, 1)
        results.append(result)
        print(f"{shape:13} {side:15} {result['tokens_per_second']:>10,.0f} tok/s  peak {result['peak_memory_gb'] or 0:6.2f} GB  MFU {result['mfu'] or 0:6.1%}  ({result['wall_seconds']} s)", flush=True)
    summary = {"benchmark": "gpu_train", "lora": lora_settings(), "block": BLOCK, "results": results, "ratios": {}}
    for shape in shapes:
        by_side = {r["side"]: r for r in results if r["shape"] == shape and "error" not in r}
        def ratio(a: str, b: str, key: str) -> float | None:
            if a in by_side and b in by_side and by_side[a][key] and by_side[b][key]:
                return by_side[a][key] / by_side[b][key]
            return None

        summary["ratios"][shape] = {
            "tokens_per_second": ratio("vocabx", "recipe", "tokens_per_second"),
            "peak_memory": ratio("vocabx", "recipe", "peak_memory_gb"),
            "tokens_per_second_both_compiled": ratio("vocabx", "recipe+compile", "tokens_per_second"),
            "peak_memory_both_compiled": ratio("vocabx", "recipe+compile", "peak_memory_gb"),
            "tokens_per_second_both_eager": ratio("vocabx-eager", "recipe", "tokens_per_second"),
            "peak_memory_both_eager": ratio("vocabx-eager", "recipe", "peak_memory_gb"),
            "tokens_per_second_sparse_over_dense_rows": ratio("vocabx", "vocabx-dense", "tokens_per_second"),
            "tokens_per_second_active_over_sparse_rows": ratio("vocabx-active", "vocabx", "tokens_per_second"),
            "tokens_per_second_active_vs_recipe": ratio("vocabx-active", "recipe", "tokens_per_second"),
            "peak_memory_active_vs_recipe": ratio("vocabx-active", "recipe", "peak_memory_gb"),
        }
    (args.out / "gpu_train.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary["ratios"]))
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())

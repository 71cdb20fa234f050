"""Row fitting (vocabx.fit) on a GPU: seconds per step and peak memory, bf16, block 2048.

Same setting as gpu_train.py (its shapes, random initialization and the real SmolLM2 tokenizer extended
by the sample medical corpus's top candidates, carried in build/gpu-tokenizer): the fit of every new
row through the shared map, the model frozen in bf16. Seconds per step: the median over the steps after
the first three (each step ends by reading its loss, so queued GPU work is counted); peak memory:
torch.cuda.max_memory_allocated() over the fit. Random weights make the
loss meaningless beyond showing that it falls.

    python benchmarks/gpu_fit.py --out build/gpu_out          # on the GPU machine
    python benchmarks/gpu_fit.py --smoke                      # here, on CPU: tiny shape, checks the code path
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from gpu_train import SHAPES, TOKENIZER_DIR, make_model, texts


def one(shape: str, steps: int, smoke: bool, tokenizer: Path = TOKENIZER_DIR) -> dict:
    import torch
    from transformers import AutoTokenizer

    from vocabx.fit import FitSettings, fit_rows

    device = "cuda" if torch.cuda.is_available() else "cpu"
    ext = AutoTokenizer.from_pretrained(tokenizer / "ext")
    base = AutoTokenizer.from_pretrained(tokenizer / "base")
    new_ids = list(range(len(base), len(ext)))
    surfaces = [ext.convert_tokens_to_string([t]) for t in ext.convert_ids_to_tokens(new_ids)]
    pieces = [base(s, add_special_tokens=False)["input_ids"] for s in surfaces]
    kinds = ["phrase" if " " in s.strip() else "word" for s in surfaces]
    rows = -(-len(ext) // 64) * 64
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = make_model(shape, rows, ext, device, dtype)
    batch = SHAPES[shape]["batch"] if not smoke else 2
    block = 2048 if not smoke else 64
    docs = texts()
    out: dict = {"shape": shape, "device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "new_rows": len(new_ids), "batch": batch, "block": block}
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    marks = [time.perf_counter()]
    summary = fit_rows(
        model, ext, base, new_ids, pieces, kinds, docs, FitSettings(steps=3 + steps, batch_size=batch, block_size=block, bf16=True),
        on_step=lambda step, loss: marks.append(time.perf_counter()),
    )
    per_step = statistics.median(b - a for a, b in zip(marks[4:], marks[5:])) if len(marks) > 5 else marks[-1] - marks[-2]
    out.update(
        seconds_per_step=round(per_step, 4),
        tokens_per_second=round(batch * block / per_step),
        peak_memory_gb=round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else None,
        loss_start=summary["loss_start"],
        loss_end=summary["loss_end"],
        seconds=summary["seconds"],
    )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default="smollm2-135m,llama-1b")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("build/gpu_out"))
    parser.add_argument("--tokenizer", type=Path, default=TOKENIZER_DIR, help="what gpu_train.py --prepare wrote (default build/gpu-tokenizer)")
    args = parser.parse_args()
    if not (args.tokenizer / "ext" / "tokenizer.json").is_file():
        print(f"no tokenizer in {args.tokenizer}: run `python benchmarks/gpu_train.py --prepare` where the embedded model is, and carry build/gpu-tokenizer", file=sys.stderr)
        return 2
    shapes = ["tiny"] if args.smoke else args.shapes.split(",")
    results = [one(shape, 2 if args.smoke else args.steps, args.smoke, args.tokenizer) for shape in shapes]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_fit.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

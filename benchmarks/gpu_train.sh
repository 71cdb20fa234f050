#!/usr/bin/env bash
# vocabx lora+tokens against Trainer + PEFT modules_to_save on one GPU: bf16, block 2048, random-init
# SmolLM2-135M and 1B Llama shapes with the real (extended) SmolLM2 tokenizer. Under 8 minutes on an H100.
#
# Before, where the embedded model is:  python benchmarks/gpu_train.py --prepare   (writes build/gpu-tokenizer)
# On the GPU machine, from the repository root, with build/gpu-tokenizer carried along:
#     bash benchmarks/gpu_train.sh
# Figures go to $OUT/gpu_train.json (default build/gpu_out) and to stdout, with the device's name.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-build/gpu_out}"
mkdir -p "$OUT"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/device.txt"
fi
python -c "import torch, transformers, peft, accelerate; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__, 'accelerate', accelerate.__version__)" | tee -a "$OUT/device.txt"
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" python benchmarks/gpu_train.py --out "$OUT" --budget "${BUDGET:-360}" "$@"

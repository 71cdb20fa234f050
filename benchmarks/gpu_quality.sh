#!/usr/bin/env bash
# The GPU half of benchmarks/gpu_quality.py (its docstring says what it measures). Two calls to one
# machine, the second while it is still warm from the first (ignored files a call left stay there):
#
#   here, first:                  python benchmarks/gpu_quality.py --prepare
#   call 1, carry ["build/gq-1"]: bash benchmarks/gpu_quality.sh --receive
#   call 2, carry ["build/gq-2"]: bash benchmarks/gpu_quality.sh            (timeout_s 600)
#
# Figures go to $OUT/gpu_quality.json (default build/gq-out) after each step, with the device's name.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-build/gq-out}"
mkdir -p "$OUT"
if [ "${1:-}" = "--receive" ]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    exec python3 benchmarks/gpu_quality.py --receive
fi
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/device.txt"
fi
for part in build/gq-1/manifest.json build/gq-2/gguf.part; do
    [ -f "$part" ] || { echo "gpu_quality.sh: $part is not on this machine (a fresh one, if the last went back between the calls): carry build/gq-1 in one call, then build/gq-2 in the next" >&2; exit 2; }
done
# The GPU machine has no gguf package (the embedded model's converter needs it): its wheel came in part 1.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/gq-site build/gq-1/wheels/*.whl
export PYTHONPATH="/tmp/gq-site:$PWD${PYTHONPATH:+:$PYTHONPATH}" VOCABX_HOME="$PWD/build/gq-home" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
python3 benchmarks/gpu_quality.py --out "$OUT" "$@" 2>&1 | tee "$OUT/log.txt"

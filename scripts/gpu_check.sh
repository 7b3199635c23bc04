#!/usr/bin/env bash
# PCReg-Net pairs/s (batch 1 and batched, AMP), training steps/s of each learned method and peak GPU memory,
# in under 5 minutes; rows appended to results/benchmarks/gpu_check.csv. Without a GPU: one line, exit 0.
#   scripts/gpu_check.sh [--seconds 10] [--batch 32] [--out results/benchmarks/gpu_check.csv]
set -euo pipefail
cd "$(dirname "$0")/.."
exec timeout 300 python scripts/gpu_check.py "$@"

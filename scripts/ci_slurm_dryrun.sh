#!/usr/bin/env bash
# CI: dry-run a config through the Slurm profile (no cluster needed) and check every job's sbatch resources:
# memory and wall time everywhere, GPUs only on the learned methods' rules (fit, register_learned).
#   scripts/ci_slurm_dryrun.sh                      # config/paper.yaml, expects GPU jobs
#   scripts/ci_slurm_dryrun.sh config/smoke.yaml    # any other config (GPU jobs not required)
# Needs the `cluster` extra: pip install -e ".[cluster]"
set -euo pipefail
cd "$(dirname "$0")/.."
config="${1:-config/paper.yaml}"
python -c "import snakemake_executor_plugin_slurm" 2>/dev/null || {
  echo "snakemake-executor-plugin-slurm is not installed: pip install -e '.[cluster]'" >&2; exit 1; }
python -m pcreg validate-config "$config"
expect=()
if [[ "$config" == config/paper.yaml ]]; then expect=(--expect-gpu-jobs); fi
# Account/partitions as a user would set them, so the profile's environment handling is exercised too.
PCREG_SLURM_ACCOUNT=ci-account PCREG_SLURM_PARTITION=cpu PCREG_SLURM_GPU_PARTITION=gpu \
  python scripts/check_slurm_dryrun.py --configfile "$config" --jobs 500 "${expect[@]}"

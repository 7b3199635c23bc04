#!/usr/bin/env bash
# CI: dry-run a config through the Slurm profile (no cluster needed) and check every job's sbatch resources
# with the installed plugin: memory and wall time on every job, GPUs only on the learned methods' rules
# (fit, register_learned, audit_learned). A config with learned methods is also checked with device=cuda,
# where each of those jobs must request a GPU.
#   scripts/ci_slurm_dryrun.sh                      # config/paper.yaml
#   scripts/ci_slurm_dryrun.sh config/smoke.yaml
# Needs the `cluster` extra: pip install -e ".[cluster]"
set -euo pipefail
cd "$(dirname "$0")/.."
config="${1:-config/paper.yaml}"
python -c "import snakemake_executor_plugin_slurm" 2>/dev/null || {
  echo "snakemake-executor-plugin-slurm is not installed: pip install -e '.[cluster]'" >&2; exit 1; }
# A login-node check: device: cuda is for the GPU nodes, not this machine.
python -m pcreg validate-config --no-device-check "$config"
# Account and partitions as a user would set them, so the profile's environment handling is exercised too.
export PCREG_SLURM_ACCOUNT=ci-account PCREG_SLURM_PARTITION=cpu PCREG_SLURM_GPU_PARTITION=gpu
python scripts/check_slurm_dryrun.py --configfile "$config" --jobs 500
learned=$(python - "$config" <<'PY'
import sys, yaml
from pcreg.methods.registry import get_method_class
from pcreg.config import validate_config
cfg = validate_config(yaml.safe_load(open(sys.argv[1])))
print(sum(get_method_class(s["method"]).is_trainable() for s in cfg["methods"].values()))
PY
)
if [[ "$learned" -gt 0 ]]; then
  echo "== $config with device=cuda ($learned learned method runs)"
  python scripts/check_slurm_dryrun.py --configfile "$config" --jobs 500 --expect-gpu-jobs --config device=cuda
fi

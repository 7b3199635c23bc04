#!/usr/bin/env bash
# CI: run the smoke workflow through profiles/slurm on a throw-away local Slurm (scripts/slurm_local.sh) and check
#   1. part of it (one dataset, six runs) completes and every pairs.csv equals the local run's (runtimes aside);
#      prints jobs submitted and wall time;
#   2. a job failing on Slurm (over its memory limit) is reported with its Slurm state and log, the other jobs
#      finish (keep-going), and a rerun with enough memory completes the workflow.
#   scripts/ci_slurm_smoke.sh /tmp/pcreg-ci-run1     # working directory of a local smoke run (its results/)
# Needs root (apt, daemons) and the `cluster` extra. The cluster is stopped at the end, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
ref="${1:?usage: $0 LOCAL_RUN_DIR (holding results/**/pairs.csv of a local smoke run)}"
ref="$(cd "$ref" && pwd)"
export PCREG_SLURM_DIR="${PCREG_SLURM_DIR:-/tmp/pcreg-slurm}"
work="$(mktemp -d /tmp/pcreg-ci-slurm.XXXXXX)"
cleanup() {
  scripts/slurm_local.sh stop || true
  rm -rf "$work"
}
trap cleanup EXIT

# A cluster left running by an earlier run (or its saved job queue) must not leak into this one: start from nothing.
scripts/slurm_local.sh stop
rm -rf "$PCREG_SLURM_DIR"
scripts/slurm_local.sh start
eval "$(scripts/slurm_local.sh env)"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"   # jobs run in $work: they import this checkout's code
# Without USER (as in CI sandboxes and cron): the profile must cope (the plugin 1.4.0 reads $USER).
slurm_snakemake() { env -u USER snakemake --profile profiles/slurm "$@"; }
submitted() { grep -c "has been submitted with SLURM jobid" "$1" || true; }

echo "== part of the smoke workflow through profiles/slurm (synthetic-orpam: reference, classical and learned runs)"
# Part of it, not all: the plugin checks job states every 40 s or more (hard-coded in 1.4.0), so the 168 jobs of
# the whole smoke config took 1,256 s on 2 cores against 368 s locally. This part still has every kind of step
# (prepare, fit, register and register_learned, audit and audit_learned, evaluate, the dataset's tables and
# figures, the summary and the manifest).
python - config/smoke.yaml "$work/part.yaml" <<'PY'
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
cfg["datasets"] = {"synthetic-orpam": cfg["datasets"]["synthetic-orpam"]}
cfg["methods"] = {m: cfg["methods"][m] for m in ("identity", "ground_truth", "sift", "syn", "voxelmorph", "pcreg_net")}
yaml.safe_dump(cfg, open(sys.argv[2], "w"), sort_keys=False)
PY
start=$(date +%s)
if ! slurm_snakemake all --configfile "$work/part.yaml" --directory "$work/smoke" > "$work/smoke.log" 2>&1; then
  tail -n 80 "$work/smoke.log"
  echo "FAILED: the smoke workflow through the Slurm profile (log above)"
  exit 1
fi
echo "smoke workflow (part) on Slurm: $(submitted "$work/smoke.log") jobs submitted to Slurm," \
  "$(sacct -X -n -a -S 2020-01-01 -o JobID | wc -l) in Slurm's accounting, took $(( $(date +%s) - start )) s"
python scripts/compare_pairs.py --subset "$ref" "$work/smoke"

echo "== a job failing on Slurm (sift's register jobs get 100 MB), keep-going, rerun"
# A subset: synthetic-orpam with identity and sift; sift's shards exceed their memory and are killed by Slurm.
# The run's own resources (methods.sift.resources) target exactly its jobs; the rerun's config drops them.
python - config/smoke.yaml "$work/ok.yaml" "$work/fail.yaml" <<'PY'
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
cfg["datasets"] = {"synthetic-orpam": cfg["datasets"]["synthetic-orpam"]}
cfg["methods"] = {m: cfg["methods"][m] for m in ("identity", "sift")}
cfg["stats"]["reference"] = "identity"
yaml.safe_dump(cfg, open(sys.argv[2], "w"), sort_keys=False)
cfg["methods"]["sift"]["resources"] = {"register": {"mem_mb": 100}}
yaml.safe_dump(cfg, open(sys.argv[3], "w"), sort_keys=False)
PY
targets=(results/synthetic-orpam/identity/pairs.csv results/synthetic-orpam/sift/pairs.csv)
start=$(date +%s)
if slurm_snakemake "${targets[@]}" --configfile "$work/fail.yaml" --directory "$work/fail" --retries 0 \
    > "$work/fail.log" 2>&1; then
  tail -n 40 "$work/fail.log"
  echo "FAILED: the run with a job over its memory limit succeeded"
  exit 1
fi
grep -E "SLURM-job '[0-9]+' failed, SLURM status is: '[A-Z_]+'" "$work/fail.log" | head -n 4
# The workflow's onerror handler (pcreg/slurm_failures.py): Slurm's reason and the Slurm log, one line per job.
reasons="$(grep -E "^Slurm job [0-9]+ \(rule register\) ended (OUT_OF_MEMORY|FAILED): .*memory limit.*\[Slurm log: .*slurm_logs/rule_register/.*\.log\]" "$work/fail.log" || true)"
echo "$reasons"
ok=1
[[ "$(grep -c . <<< "$reasons")" -eq 2 ]] || { echo "expected 2 jobs reported over their memory limit"; ok=0; }
[[ -s "$work/fail/results/synthetic-orpam/identity/pairs.csv" ]] || { echo "identity did not finish"; ok=0; }
[[ ! -e "$work/fail/results/synthetic-orpam/sift/pairs.csv" ]] || { echo "sift finished despite failing"; ok=0; }
(( ok )) || { tail -n 60 "$work/fail.log"; echo "FAILED: the failure was not reported as expected"; exit 1; }
echo "failing run: $(submitted "$work/fail.log") jobs submitted, identity finished, sift's jobs failed on Slurm" \
  "($(( $(date +%s) - start )) s)"
if ! slurm_snakemake "${targets[@]}" --configfile "$work/ok.yaml" --directory "$work/fail" > "$work/rerun.log" 2>&1
then
  tail -n 60 "$work/rerun.log"
  echo "FAILED: the rerun did not complete"
  exit 1
fi
echo "rerun: $(submitted "$work/rerun.log") jobs submitted (sift only), workflow complete"
for run in identity sift; do
  python - "$ref/results/synthetic-orpam/$run/pairs.csv" "$work/fail/results/synthetic-orpam/$run/pairs.csv" <<'PY'
import sys
import pandas as pd
a, b = (pd.read_csv(p).drop(columns="runtime_s") for p in sys.argv[1:])
sys.exit(f"different from the local run: {sys.argv[2]}" if not a.equals(b) else 0)
PY
done
echo "== Slurm smoke passed"

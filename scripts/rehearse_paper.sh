#!/usr/bin/env bash
# Rehearse the paper protocol end to end (docs/CLUSTER.md, "Rehearsing the paper protocol"):
# build stand-ins of FIRE.7z and the two OR-PAM Hub repositories in the real layouts, serve them on 127.0.0.1,
# run config/paper.yaml itself through the workflow with the overlay config/rehearsal.yaml and the stand-ins'
# sources, then check the paper tables, the known FIRE geometry and the declared memory.
#   scripts/rehearse_paper.sh [WORKDIR]      (default: a new temporary folder; kept for inspection)
# Exit status 0 only if every check passed. Cores: PCREG_REHEARSAL_CORES (default 2). An interrupted rehearsal
# resumes when rerun with the same WORKDIR and PCREG_REHEARSAL_PORT set to the port it used (WORKDIR/server.json):
# the stand-ins are kept, so the sources (URL, checksum) and with them every finished job stay valid.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${1:-$(mktemp -d "${TMPDIR:-/tmp}/pcreg-rehearsal.XXXXXX")}"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"
CORES="${PCREG_REHEARSAL_CORES:-2}"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"   # jobs import this checkout's pcreg, whatever is installed
export HF_HOME="$WORK/hf-home" HF_HUB_DISABLE_TELEMETRY=1   # leave the user's Hugging Face cache alone
unset HF_HUB_OFFLINE PCREG_OFFLINE
cd "$REPO"
start=$(date +%s)

echo "== rehearsal: stand-ins in $WORK/standins"
if [ ! -f "$WORK/standins/standins.json" ]; then
  python -m pcreg.rehearsal build --out "$WORK/standins"
fi

SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
}
trap stop_server EXIT
rm -f "$WORK/server.json"
python -m pcreg.rehearsal serve --standins "$WORK/standins/standins.json" --ready "$WORK/server.json" \
  --port "${PCREG_REHEARSAL_PORT:-0}" > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
python -m pcreg.rehearsal sources --standins "$WORK/standins/standins.json" --ready "$WORK/server.json" \
  --out "$WORK/sources.yaml"

echo "== rehearsal: config/paper.yaml through the workflow (overlay config/rehearsal.yaml, $CORES cores)"
mkdir -p "$WORK/run"
snakemake -s "$REPO/Snakefile" --directory "$WORK/run" --cores "$CORES" all \
  --configfile "$REPO/config/paper.yaml" "$REPO/config/rehearsal.yaml" "$WORK/sources.yaml" --keep-going --quiet rules
stop_server
SERVER_PID=""

echo "== rehearsal: checks"
python -m pcreg.rehearsal check --run-dir "$WORK/run" --standins "$WORK/standins/standins.json"
echo "rehearsal of the paper protocol took $(( $(date +%s) - start )) s (outputs in $WORK/run/results)"

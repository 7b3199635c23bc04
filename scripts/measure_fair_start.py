"""Fair start of the baselines: TRE and EPE per FIRE category with and without a global start.

Usage (from the repository root):
``PYTHONPATH=. python scripts/measure_fair_start.py DATA_ROOT [--split val] [--config config/config.yaml]
[--runs identity,ants_affine,syn,syn_sift_init,demons,demons_sift_init] [--pairs N] [--out OUT.md]``.

Runs the named config runs (their params from the config) on a split of a prepared dataset with landmarks and a
ground-truth field and prints the mean TRE (dataset px, at the landmarks) and EPE (recoverable pixels) per FIRE
category (S/P/A) and overall, with the seconds per pair. The initialisation of the fair-start rows was chosen
with this script on the validation split (docs/LEARNED.md, "Fair starts").
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from pcreg import metrics
from pcreg.datasets.format import PreparedDataset
from pcreg.methods.registry import build_method, run_method


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--split", default="val")
    ap.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    ap.add_argument("--runs", default="identity,ants_affine,syn,syn_sift_init,demons,demons_sift_init")
    ap.add_argument("--pairs", type=int, default=0, help="first N pairs (0: all)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    cfg = yaml.safe_load(args.config.read_text())
    split = PreparedDataset(args.data).split(args.split)
    n = len(split) if args.pairs <= 0 else min(args.pairs, len(split))
    rows = []
    for run_id in args.runs.split(","):
        entry = cfg["methods"][run_id] or {}
        method = build_method(entry.get("method", run_id), entry.get("params", {}), seed=cfg.get("seed", 0))
        for i in range(n):
            pid = split.pair_ids[i]
            moving, fixed = split.pair(i)
            t0 = time.perf_counter()
            result = run_method(method, moving, fixed)
            seconds = time.perf_counter() - t0
            field = result.field if not result.failed else np.zeros((2, *fixed.shape), np.float32)
            marks = split.landmarks_of(pid)
            rows.append({"run": run_id, "pair_id": pid, "category": split.manifest.at[i, "category"],
                         "tre_px": metrics.tre(field, *marks) if marks is not None else np.nan,
                         "epe_px": metrics.epe(field, np.asarray(split.field[i])) if split.field is not None
                         else np.nan, "failed": bool(result.failed), "seconds": seconds})
    df = pd.DataFrame(rows)
    parts = []
    groups = list(df.groupby(["run", "category"], sort=False))
    groups += [((r, "all"), g) for r, g in df.groupby("run", sort=False)]
    for (run_id, cat), g in groups:
        parts.append({"run": run_id, "category": cat, "pairs": len(g), "TRE px": g["tre_px"].mean(),
                      "EPE px": g["epe_px"].mean(), "failed": int(g["failed"].sum()),
                      "s/pair": g["seconds"].mean()})
    table = pd.DataFrame(parts).sort_values(["category", "run"], kind="stable").round(2).to_markdown(index=False)
    text = f"{args.data} split {args.split} ({n} pairs, config {args.config})\n\n{table}\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()

"""Train one learned baseline with config overrides and compare its EPE with its pre-alignment alone.

Usage: ``PYTHONPATH=. python scripts/learned_experiment.py DATA_ROOT RUN_ID WORKDIR [--set key=value ...]
[--config config/config.yaml] [--splits val,test]``

Builds the config run ``RUN_ID`` (e.g. ``voxelmorph``) with its config params, overridden by each
``--set key=value`` (value parsed as YAML), trains it on DATA_ROOT's train split with the harness (validation
on the val split; ``WORKDIR/train_log.csv`` holds the curve), then registers every pair of the named splits and
writes ``WORKDIR/epe.csv`` (per pair: EPE of the network's total field, of its pre-alignment alone, and of the
network's own residual's magnitude) and prints mean EPE per split and FIRE category with the network's gain
over the pre-alignment. Used for the diagnosis in docs/LEARNED.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from pcreg import metrics
from pcreg.datasets.format import PreparedDataset
from pcreg.methods.registry import build_method


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("run_id")
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--set", action="append", default=[], help="key=value (YAML value) overriding a param")
    ap.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    ap.add_argument("--splits", default="val,test")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    cfg = yaml.safe_load(args.config.read_text())
    entry = cfg["methods"][args.run_id] or {}
    params = dict(entry.get("params", {}))
    for item in args.set:
        key, value = item.split("=", 1)
        params[key] = yaml.safe_load(value)
    params["progress"] = False
    data = PreparedDataset(args.data)
    method = build_method(entry.get("method", args.run_id), params, seed=cfg.get("seed", 0), threads=args.threads)
    args.workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    method.fit(data.split("train"), data.split("val"), args.workdir)
    fit_s = time.perf_counter() - t0
    pre = method._prealigner()  # noqa: SLF001 - the pre-alignment alone, the same object the network used
    rows = []
    for split_name in args.splits.split(","):
        split = data.split(split_name)
        for i in range(len(split)):
            moving, fixed = split.pair(i)
            gt = np.asarray(split.field[i])
            total = method.register(moving, fixed).field
            a = pre.field(moving, fixed) if pre.enabled else np.zeros_like(total)
            rows.append({"split": split_name, "pair_id": split.pair_ids[i],
                         "category": split.manifest.at[i, "category"] if "category" in split.manifest else "all",
                         "epe_net": metrics.epe(total, gt), "epe_prealign": metrics.epe(a, gt),
                         "residual_px": float(np.sqrt(((total - a) ** 2).sum(axis=0)).mean())})
    df = pd.DataFrame(rows)
    df.to_csv(args.workdir / "epe.csv", index=False)
    parts = []
    for (split_name, cat), g in list(df.groupby(["split", "category"])) + [
            ((s, "all"), g) for s, g in df.groupby("split")]:
        parts.append({"split": split_name, "category": cat, "pairs": len(g), "EPE prealign": g["epe_prealign"].mean(),
                      "EPE net": g["epe_net"].mean(),
                      "gain %": 100 * (1 - g["epe_net"].mean() / g["epe_prealign"].mean()),
                      "mean |v| px": g["residual_px"].mean()})
    table = pd.DataFrame(parts).round(3).to_markdown(index=False)
    summary = {k: v for k, v in method.train_summary.items() if not isinstance(v, (list, dict))}
    text = (f"{args.run_id} on {args.data}, params {json.dumps(params, sort_keys=True)}\nfit {fit_s:.0f} s; "
            f"{json.dumps(summary, default=str)}\n\n{table}\n")
    print(text)
    (args.workdir / "summary.md").write_text(text)


if __name__ == "__main__":
    main()

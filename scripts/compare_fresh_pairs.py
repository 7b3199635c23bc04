#!/usr/bin/env python
"""Train one learned config run on the prepared training pairs and on fresh pairs per epoch, and compare.

Usage: ``python scripts/compare_fresh_pairs.py DATA_ROOT WORKDIR [--run pcreg_net] [--seeds 0 1]
[--config config/config.yaml] [--threads 1]``

For each seed and each setting of ``fresh_pairs`` (false: the split's prepared pairs every epoch; true: newly
generated synthetic pairs each epoch, ``pcreg/methods/training_data.py``) the run is built with its config params
and trained by the harness on DATA_ROOT (validation on the val split, the workflow's stopping rule), then every test
pair is registered. One row per training run goes to ``WORKDIR/fresh_pairs.csv``: fit wall and CPU seconds,
steps, the first and best validation value, and the test mean NCC (and EPE for a method with a field). This is the
measurement behind the default config's ``fresh_pairs: false`` for PCReg-Net (issue 22; docs/TRAINING.md).
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
from pcreg.methods.base import run_method
from pcreg.methods.registry import build_method
from pcreg.threads import set_threads


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--run", default="pcreg_net")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    set_threads(args.threads)  # as `python -m pcreg fit --threads` does
    cfg = yaml.safe_load(args.config.read_text())
    entry = cfg["methods"][args.run] or {}
    data = PreparedDataset(args.data)
    test = data.split("test")
    rows = []
    for seed in args.seeds:
        for fresh in (False, True):
            params = {**entry.get("params", {}), "fresh_pairs": fresh, "progress": False}
            method = build_method(entry.get("method", args.run), params, seed=cfg.get("seed", 0) + seed,
                                  threads=args.threads)
            workdir = args.workdir / f"seed{seed}-{'fresh' if fresh else 'prepared'}"
            workdir.mkdir(parents=True, exist_ok=True)
            t0, c0 = time.perf_counter(), time.process_time()
            method.fit(data.split("train"), data.split("val"), workdir)
            fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
            ncc, epe = [], []
            for i in range(len(test)):
                moving, fixed = test.pair(i)
                result = run_method(method, moving, fixed)  # the workflow's path: the field warps the image
                ncc.append(metrics.ncc(result.image, fixed))
                if result.field is not None and test.field is not None:
                    epe.append(metrics.epe(result.field, np.asarray(test.field[i])))
            s = method.train_summary
            rows.append({"run": args.run, "seed": seed, "fresh_pairs": fresh, "fit_s": round(fit_s, 1),
                         "fit_cpu_s": round(fit_cpu, 1), "steps": s.get("steps"), "stop": s.get("stop_reason"),
                         "val_first": s.get("initial_value"), "val_best": s.get("best_value"),
                         "test_ncc": float(np.mean(ncc)), "test_epe": float(np.mean(epe)) if epe else np.nan})
            print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    df.to_csv(args.workdir / "fresh_pairs.csv", index=False)
    print(df.round(4).to_markdown(index=False))


if __name__ == "__main__":
    main()

"""Fake method runs for the table/figure/audit tests: pairs.csv and registered.npy written by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pcreg.evaluation.scoring import PAIR_COLUMNS
from pcreg.reporting.tables import Run

CATS = ["S", "S", "P", "A", "S", "P", "A", "P"]


def write_run(root: Path, run_id: str, group: str, values: dict[str, np.ndarray], *, label: str | None = None,
              categories: list[str] | None = None, failed: np.ndarray | None = None,
              registered: np.ndarray | None = None, trainable: bool = False, params: dict | None = None) -> Run:
    """Write ``root/<run_id>/pairs.csv`` (missing metric columns empty) and optionally ``registered.npy``."""
    n = len(next(iter(values.values())))
    cats = categories if categories is not None else CATS[:n]
    df = pd.DataFrame({"pair_id": [f"p{i:02d}" for i in range(n)], "category": cats})
    values = dict(values)
    values.setdefault("cluster", df["pair_id"].to_numpy())
    values.setdefault("n_landmarks", np.full(n, 10 if "tre_orig_px" in values else 0))
    if "tre_orig_px" in values:  # one landmark error per pair unless given: mean = median = max, both directions
        for col in ("tre_orig_median_px", "tre_orig_max_px", "tre_m2f_orig_px", "tre_m2f_orig_median_px",
                    "tre_m2f_orig_max_px"):
            values.setdefault(col, values["tre_orig_px"])
    for col in PAIR_COLUMNS[2:]:
        if col in values:
            df[col] = values[col]
        elif col == "failed":
            df[col] = failed if failed is not None else np.zeros(n, bool)
        elif col == "reason":
            df[col] = ""
        elif col == "runtime_s":
            df[col] = 0.01
        else:
            df[col] = np.nan
    out = root / run_id
    out.mkdir(parents=True, exist_ok=True)
    df[PAIR_COLUMNS].to_csv(out / "pairs.csv", index=False)
    if registered is not None:
        np.save(out / "registered.npy", registered.astype(np.float32))
    return Run(run_id, label or run_id, group, out / "pairs.csv", method=run_id, trainable=trainable,
               params=params or {})


def standard_runs(root: Path, n: int = 8, seed: int = 0) -> list[Run]:
    """identity (field), sift (field, one failed pair), pcreg_net (image output), two ablations."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.5, 0.8, n)
    tre = rng.uniform(5.0, 30.0, n)
    runs = [
        write_run(root, "identity", "reference",
                  {"ncc": base, "ssim": base - 0.1, "psnr": 20 + 5 * base, "tre_px": tre / 2, "tre_orig_px": tre,
                   "epe_px": tre / 3, "folding_pct": np.zeros(n), "sdlogj": np.zeros(n)}, label="Unregistered"),
        write_run(root, "sift", "traditional",
                  {"ncc": base + 0.05, "ssim": base - 0.05, "psnr": 21 + 5 * base, "tre_px": tre / 4,
                   "tre_orig_px": tre / 2, "epe_px": tre / 5, "folding_pct": rng.uniform(0, 1, n),
                   "sdlogj": rng.uniform(0, 0.1, n)},
                  failed=np.arange(n) == 1, label="SIFT"),
        write_run(root, "pcreg_net", "deep",
                  {"ncc": base + 0.2, "ssim": base + 0.1, "psnr": 30 + 5 * base}, label="PCReg-Net",
                  trainable=True, params={"epochs": 3}),
        write_run(root, "pcreg_net_no_contrast", "ablation",
                  {"ncc": base + 0.1, "ssim": base, "psnr": 28 + 5 * base}, label="w/o contrast", trainable=True,
                  params={"epochs": 3}),
        write_run(root, "my_new_ablation", "ablation",
                  {"ncc": base + 0.15, "ssim": base, "psnr": 29 + 5 * base}, label="w/o something", trainable=True),
    ]
    return runs

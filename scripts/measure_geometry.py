"""Measure the ground-truth geometry of a prepared (or configured) synthetic-fundus dataset, per FIRE category.

Per category: pairs, mean |u| (pixels of the dataset's images), overlap (fraction of the fixed image whose
correspondence lies inside the moving image; FIRE: S, A > 75 %, P < 75 %), the non-affine residual (mean
distance between the field and its least-squares affine fit) and its largest value, and the Unregistered and
perfect-registration NCC / SSIM (Gaussian) / PSNR.

    python scripts/measure_geometry.py synthetic-fundus [--configfile config/config.yaml] [--split test]
    python scripts/measure_geometry.py data/synthetic-fundus        # a prepared dataset directory
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from pcreg import metrics
from pcreg.config import load_config, validate_params
from pcreg.datasets import PreparedDataset, get_dataset_type
from pcreg.datasets.fundus_geometry import non_affine_residual, overlap
from pcreg.warp import warp_image


def measure(root: Path, split: str) -> pd.DataFrame:
    """One row per pair: category, |u|, overlap, non-affine residual, Unregistered and perfect metrics."""
    pairs = PreparedDataset(root).split(split)
    if pairs.field is None:
        raise SystemExit(f"{root}: no ground-truth fields")
    rows = []
    for i in range(len(pairs)):
        moving, fixed = pairs.pair(i)
        u = np.asarray(pairs.field[i], np.float64)
        warped = warp_image(moving, u.astype(np.float32))
        rows.append({"category": pairs.manifest["category"].iloc[i], "mean_abs_u_px": float(np.hypot(*u).mean()),
                     "overlap": overlap(u), "non_affine_px": non_affine_residual(u),
                     "unreg_ncc": metrics.ncc(moving, fixed), "unreg_ssim": metrics.ssim_gaussian(moving, fixed),
                     "unreg_psnr": metrics.psnr(moving, fixed), "perfect_ncc": metrics.ncc(warped, fixed),
                     "perfect_ssim": metrics.ssim_gaussian(warped, fixed), "perfect_psnr": metrics.psnr(warped, fixed)})
    return pd.DataFrame(rows)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Means per category and over all pairs (plus the range of the overlap and the largest residual)."""
    def agg(g: pd.DataFrame) -> pd.Series:
        out = g.drop(columns="category").mean()
        out["overlap_min"], out["overlap_max"] = g["overlap"].min(), g["overlap"].max()
        out["non_affine_max_px"] = g["non_affine_px"].max()
        out["pairs"] = len(g)
        return out
    per = {c: agg(g) for c, g in df.groupby("category", sort=True)}
    per["all"] = agg(df)
    return pd.DataFrame(per).T


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="a prepared dataset directory, or a dataset name of the config")
    parser.add_argument("--configfile", default="config/config.yaml")
    parser.add_argument("--split", default="test", choices=["train", "val", "test"])
    args = parser.parse_args()
    target = Path(args.dataset)
    with tempfile.TemporaryDirectory(prefix="pcreg-geometry-") as tmp:
        if (target / "dataset.json").is_file():
            root = target
        else:
            config = load_config(args.configfile)
            spec = config["datasets"][args.dataset]
            module = get_dataset_type(spec["type"])
            root = Path(tmp) / args.dataset
            module.prepare(root, args.dataset, validate_params(module, spec.get("params", {}), args.dataset),
                           config["seed"])
        table = summary(measure(root, args.split))
    cols = ["pairs", "mean_abs_u_px", "overlap", "overlap_min", "overlap_max", "non_affine_px", "non_affine_max_px",
            "unreg_ncc", "unreg_ssim", "unreg_psnr", "perfect_ncc", "perfect_ssim", "perfect_psnr"]
    print(f"{args.dataset} ({args.split} split)")
    print(table[cols].to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()

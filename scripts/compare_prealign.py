"""Mean end-point error of each pre-alignment alone on a prepared split: how the learned rows' ``prealign`` is chosen.

Usage: ``PYTHONPATH=. python scripts/compare_prealign.py DATA_ROOT [--split val]
[--modes none,ants-affine,global-start]``

For every pair of the split (which must store ground-truth fields: the synthetic sets), the EPE (px, over the
recoverable pixels, :func:`pcreg.metrics.epe`) of each pre-alignment field of :class:`baselines._prealign.PreAligner`
(seed 0), printed as a mean per FIRE category (where the manifest has one) and over all pairs. Set
``PCREG_CACHE_DIR`` to share the fields with a later run (pcreg/methods/pair_cache.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from baselines._prealign import PreAligner
from pcreg import metrics
from pcreg.datasets import PreparedDataset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--split", default="val")
    ap.add_argument("--modes", default="none,ants-affine,global-start")
    args = ap.parse_args()
    split = PreparedDataset(args.data).split(args.split)
    if split.field is None:
        raise SystemExit(f"{args.data} {args.split}: no ground-truth fields, no EPE")
    rows = []
    for mode in args.modes.split(","):
        pre = PreAligner(mode, seed=0)
        for i in range(len(split)):
            moving, fixed = (np.asarray(x, np.float32) for x in split.pair(i))
            u = pre.field(moving, fixed) if pre.enabled else np.zeros((2, *fixed.shape), np.float32)
            category = str(split.manifest["category"].iloc[i]) if "category" in split.manifest else ""
            rows.append({"prealign": mode, "category": category, "epe_px": metrics.epe(u, np.asarray(split.field[i]))})
    df = pd.DataFrame(rows)
    by_category = df[df["category"].str.strip().ne("") & df["category"].ne("nan")]
    table = by_category.pivot_table(index="category", columns="prealign", values="epe_px", aggfunc="mean")
    table = pd.concat([table, df.groupby("prealign")["epe_px"].mean().to_frame("all pairs").T])
    print(f"{args.data} {args.split}: mean EPE (px) of each pre-alignment alone, {len(split)} pairs")
    print(table[args.modes.split(",")].round(3).to_markdown())


if __name__ == "__main__":
    main()

"""Re-measure content fidelity of SyN and Demons: where versus whether (the evidence for docs' fidelity finding).

Usage (from the repository root):
``PYTHONPATH=. python scripts/measure_fidelity.py DATA_ROOT [--config config/config.yaml] [--pairs N] [--out OUT.md]``.

Runs Unregistered, SyN and Demons with their parameters from the config on the test split of a prepared
dataset (``DATA_ROOT``, with content-fidelity masks and a ground-truth field) and prints, per method, over the
moving-only features:

- ``kept@GT``: the old definition (the output's contrast at the feature's *ground-truth* fixed-space mask over
  the ground-truth warp's, not clipped): mixes content and placement;
- ``kept``: the suite's definition (:mod:`pcreg.evaluation.fidelity`: at the mask transported by the method's own
  field, clipped) and ``placement_px`` (centroid error);
- ``jac``: mean Jacobian determinant of the method's map over the transported mask divided by the ground truth's
  over the ground-truth mask (< 1: the method compresses the feature more than the ground truth does);
- ``field_err``: the method's mean field error |u - u_gt| (px) over the feature's ground-truth mask, and
  ``r(kept@GT, field_err)``, the Pearson correlation over features.

It also prints the fidelity table's oracles (:func:`pcreg.reporting.fidelity.oracle_scores`: ground-truth warp,
fixed copy, fixed blurred sigma 1.5, fixed median 7x7) with the verdict the table gives them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from pcreg.datasets.format import PreparedDataset
from pcreg.evaluation.fidelity import contrast, feature_scores, transported_mask
from pcreg.methods.registry import build_method, run_method
from pcreg.reporting.fidelity import oracle_scores, verdict
from pcreg.warp import warp_image


def jacobian_det(field: np.ndarray) -> np.ndarray:
    """Determinant of the Jacobian of ``p -> p + u(p)`` (central differences)."""
    dy_dr, dy_dc = np.gradient(np.asarray(field[0], np.float64))
    dx_dr, dx_dc = np.gradient(np.asarray(field[1], np.float64))
    return (1 + dy_dr) * (1 + dx_dc) - dy_dc * dx_dr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    ap.add_argument("--pairs", type=int, default=0, help="first N test pairs (0: all)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    cfg = yaml.safe_load(args.config.read_text())
    test = PreparedDataset(args.data).split("test")
    n = len(test) if args.pairs <= 0 else min(args.pairs, len(test))
    rows = []
    for run_id in ("identity", "syn", "demons"):
        entry = cfg["methods"][run_id] or {}
        method = build_method(entry.get("method", run_id), entry.get("params", {}), seed=cfg.get("seed", 0))
        for i in range(n):
            pid = test.pair_ids[i]
            moving, fixed = test.pair(i)
            gt = np.asarray(test.field[i], np.float32)
            lm, lf = np.asarray(test.lesions_moving[i]), np.asarray(test.lesions_fixed[i])
            kinds = test.lesion_kinds[pid]
            result = run_method(method, moving, fixed)
            if result.failed:
                continue
            out = result.image if result.image is not None else warp_image(moving, result.field)
            scores = {r["label"]: r for r in feature_scores(out, moving, fixed, gt, lm, lf, kinds, result.field)}
            gt_warp = warp_image(moving, gt)
            jac, jac_gt = jacobian_det(result.field), jacobian_det(gt)
            err = np.linalg.norm(result.field - gt, axis=0)
            for label, (kind, _) in kinds.items():
                if kind != "moving_only" or not np.isfinite(scores[label]["score"]):
                    continue
                mask = lf == label
                where = transported_mask(lm == label, result.field)
                rows.append({
                    "method": run_id, "pair_id": pid, "label": label,
                    "kept_at_gt": contrast(out, mask) / contrast(gt_warp, mask),
                    "kept": scores[label]["score"], "placement_px": scores[label]["placement_px"],
                    "jac": (jac[where].mean() / jac_gt[mask].mean()) if where.any() else np.nan,
                    "field_err": err[mask].mean(),
                })
    df = pd.DataFrame(rows)
    summary = []
    for run_id, part in df.groupby("method", sort=False):
        ok = part[["kept_at_gt", "field_err"]].dropna()
        summary.append({
            "method": run_id, "features": len(part),
            "kept@GT mean": part["kept_at_gt"].mean(), "kept mean": part["kept"].mean(),
            "kept median": part["kept"].median(), "placement_px mean": part["placement_px"].mean(),
            "jac ratio mean": part["jac"].mean(), "field_err mean": part["field_err"].mean(),
            "r(kept@GT, field_err)": ok["kept_at_gt"].corr(ok["field_err"]) if len(ok) > 2 else np.nan,
        })
    table = pd.DataFrame(summary).round(3).to_markdown(index=False)
    oracles = oracle_scores(args.data)
    means = oracles.groupby("run", sort=False)[["kept", "invented", "placement_px"]].mean()
    means["kept median"] = oracles.groupby("run", sort=False)["kept"].median()
    means["verdict"] = [verdict(k, i) for k, i in zip(means["kept"], means["invented"])]
    text = (f"{args.data} ({n} test pairs, config {args.config})\n\n{table}\n\n"
            f"Oracles ({len(test)} test pairs):\n\n{means.round(3).to_markdown()}\n")
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()

"""What a learned refinement on top of ANTs' affine stage could gain: EPE and similarity headroom per category.

Usage: ``PYTHONPATH=. python scripts/learned_headroom.py DATA_ROOT [--split val] [--window 9]``

For every pair of the split: the EPE of the ANTs affine pre-alignment (the learned rows' ``prealign:
ants-affine``, seed 0), and the learned baselines' similarity term (local NCC, ``--window``; higher is better)
of the moving image warped by the pre-alignment and by the ground-truth field, and the l2 field-gradient
regulariser (weight lambda in the loss) of the residual ``gt - prealign`` a network would have to output.
Prints means per FIRE category and overall, plus the largest gain in mean EPE that any refinement could bring
if it only fixed the pairs of each category (the others kept at the pre-alignment). Used in docs/LEARNED.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from baselines._prealign import PreAligner
from baselines._registration_losses import GuardedNCC, RegistrationLoss
from pcreg import metrics
from pcreg.datasets.format import PreparedDataset
from pcreg.warp import warp_image


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--split", default="val")
    ap.add_argument("--window", type=int, default=9)
    ap.add_argument("--free-field", type=int, default=0, metavar="N",
                    help="also optimise a free field v per pair (no network) for N Adam steps under the learned "
                    "rows' unsupervised loss (-NCC + lambda * l2 gradient, lambda 1) on top of the pre-alignment, "
                    "and report the EPE it reaches: where the loss itself leads from the pre-alignment")
    args = ap.parse_args()
    split = PreparedDataset(args.data).split(args.split)
    pre = PreAligner("ants-affine", seed=0)
    ncc = GuardedNCC(args.window)
    grad = RegistrationLoss("ncc", 1.0, args.window).grad  # the l2 field-gradient regulariser (weight lambda)

    def sim(a: np.ndarray, b: np.ndarray) -> float:
        return float(ncc(torch.from_numpy(a[None, None].astype(np.float32)),
                         torch.from_numpy(b[None, None].astype(np.float32)))[0])

    def free_field(moving: np.ndarray, fixed: np.ndarray, a: np.ndarray, steps: int) -> np.ndarray:
        from baselines._prealign import compose
        from baselines._spatial import warp

        torch.manual_seed(0)
        m, f = (torch.from_numpy(x[None, None].astype(np.float32)) for x in (moving, fixed))
        at = torch.from_numpy(a[None].astype(np.float32))
        v = torch.zeros_like(at, requires_grad=True)
        opt = torch.optim.Adam([v], lr=0.05)
        for _ in range(steps):
            loss = -ncc(warp(m, compose(at, v)), f).mean() + grad(v)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return compose(at, v.detach())[0].numpy()

    rows = []
    for i in range(len(split)):
        moving, fixed = split.pair(i)
        gt = np.asarray(split.field[i])
        a = pre.field(moving, fixed)
        cat = split.manifest.at[i, "category"] if "category" in split.manifest else None
        epe_free = metrics.epe(free_field(moving, fixed, a, args.free_field), gt) if args.free_field else np.nan
        rows.append({"category": cat if isinstance(cat, str) else "-", "epe_prealign": metrics.epe(a, gt),
                     "epe_free_field": epe_free,
                     "ncc_unregistered": sim(moving, fixed), "ncc_prealign": sim(warp_image(moving, a), fixed),
                     "ncc_gt": sim(warp_image(moving, gt), fixed),
                     # the regulariser of the residual the network would have to output (v ~ gt - a)
                     "grad_residual": float(grad(torch.from_numpy((gt - a)[None].astype(np.float32))))})
    df = pd.DataFrame(rows)
    total = df["epe_prealign"].sum()
    parts = []
    for cat, g in list(df.groupby("category")) + [("all", df)]:
        parts.append({"category": cat, "pairs": len(g), "EPE prealign": g["epe_prealign"].mean(),
                      "EPE free-field optimum": g["epe_free_field"].mean(),
                      "max gain % if only these fixed": 100 * g["epe_prealign"].sum() / total,
                      f"NCC{args.window} unregistered": g["ncc_unregistered"].mean(),
                      f"NCC{args.window} prealign": g["ncc_prealign"].mean(),
                      f"NCC{args.window} ground truth": g["ncc_gt"].mean(),
                      "grad l2 of gt - prealign": g["grad_residual"].mean()})
    print(f"{args.data} split {args.split}\n\n{pd.DataFrame(parts).round(3).to_markdown(index=False)}")


if __name__ == "__main__":
    main()

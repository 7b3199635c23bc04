"""Validation curves of the issue-22 learned-baseline runs: docs/figures/learned_val_epe.png (docs/LEARNED.md).

Usage: ``python scripts/plot_learned_curves.py [--runs docs/figures/learned_runs]
[--out docs/figures/learned_val_epe.png]``

Reads each kept run's harness log ``<runs>/<workdir>/train_log.csv`` (written by
``scripts/learned_experiment.py``) and plots the validation EPE (the harness's 8 val pairs) per optimizer step,
one panel per dataset and method. The dashed line is the pre-alignment alone on the same pairs: the step-0
value of the run whose flow layer starts at N(0, 1e-5) (its field is the pre-alignment's to < 0.01 px); in the
global-start panel, one line per run: its step-0 value (the untrained network on top of the global start).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

#: (panel, workdir, legend); the first run of a panel gives the pre-alignment line.
RUNS = [
    ("synthetic-orpam: VoxelMorph", "vxm_orpam_base", "previous default (lr 1e-3, init 1e-5, sup 1.0)"),
    ("synthetic-orpam: VoxelMorph", "vxm_orpam_e3", "sup 0.1"),
    ("synthetic-orpam: VoxelMorph", "vxm_orpam_e1", "lr 3e-3, init 1e-2 (sup 1.0)"),
    ("synthetic-orpam: VoxelMorph", "vxm_orpam_e5", "lr 3e-3, sup 0.1"),
    ("synthetic-orpam: VoxelMorph", "vxm_orpam_e2", "new default: lr 3e-3, init 1e-2, sup 0.1"),
    ("synthetic-orpam: TransMorph", "tm_orpam_base", "default (lr 5e-4, init 1e-5, sup 1.0)"),
    ("synthetic-orpam: TransMorph", "tm_orpam_t1", "lr 1e-3, init 1e-2, sup 0.1"),
    ("synthetic-fundus", "vxm_base", "VoxelMorph previous default"),
    ("synthetic-fundus", "vxm_init", "VoxelMorph init 1e-2"),
    ("synthetic-fundus", "vxm_fundus_e4", "VoxelMorph new default"),
    ("synthetic-fundus", "vxm_fundus_e6", "VoxelMorph sup 1.0 capped at 3 px"),
    ("synthetic-fundus", "vxm_fundus_e9", "VoxelMorph new default, 1440 steps"),
    ("synthetic-fundus", "tm_fundus_t2", "TransMorph lr 1e-3, init 1e-2, sup 0.1"),
    ("VoxelMorph + global start", "vxm_orpam_gs", "synthetic-orpam (default)"),
    ("VoxelMorph + global start", "vxm_fundus_gs", "synthetic-fundus (default)"),
]
#: Panels whose runs are pre-aligned by the global start (one dashed line per run: each dataset has its own).
GLOBAL_START_PANELS = {"VoxelMorph + global start"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=Path("docs/figures/learned_runs"))
    ap.add_argument("--out", type=Path, default=Path("docs/figures/learned_val_epe.png"))
    args = ap.parse_args()
    panels = list(dict.fromkeys(p for p, _, _ in RUNS))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.0 * len(panels), 3.6), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        ref, top = None, 0.0
        for p, workdir, label in RUNS:
            log_path = args.runs / workdir / "train_log.csv"
            if p != panel or not log_path.exists():
                continue
            log = pd.read_csv(log_path)
            ref = float(log["val_epe"].iloc[0]) if ref is None else ref
            line = ax.plot(log["steps"], log["val_epe"], marker="o", ms=2, lw=1, label=label)[0]
            top = max(top, float(log["val_epe"].max()))
            if panel in GLOBAL_START_PANELS:  # its own start line: step 0, the untrained network on the global start
                ax.axhline(float(log["val_epe"].iloc[0]), ls="--", lw=1, color=line.get_color())
        if panel in GLOBAL_START_PANELS:
            ax.annotate("dashed: step 0 (untrained network on the global start)", (0.02, 0.02),
                        xycoords="axes fraction", fontsize=7, color="grey")
        elif ref is not None:
            ax.axhline(ref, ls="--", lw=1, color="grey")
            ax.annotate("ANTs affine alone", (0.02, ref), xycoords=("axes fraction", "data"), fontsize=7,
                        va="bottom", color="grey")
            if top > 1.06 * ref:  # single-validation spikes would squash the curves: clip them, and say so
                ax.set_ylim(top=1.06 * ref)
                panel += " (spikes above the frame clipped)"
        ax.set_title(panel, fontsize=9)
        ax.set_xlabel("optimizer steps")
        ax.set_ylabel("validation EPE (px, 8 pairs)")
        ax.legend(fontsize=6)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90)


if __name__ == "__main__":
    main()

"""Plot validation EPE per epoch of learned-baseline runs (the evidence figure of docs/LEARNED.md).

Usage: ``python scripts/plot_learned_diagnosis.py OUT.png "panel|label|run_dir" ... [--ref "panel|label|value"]``;
each ``run_dir`` holds a harness ``train_log.csv``; ``--ref`` draws a horizontal reference line
(e.g. the identity's or SIFT's validation EPE).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("runs", nargs="+", help='"panel|label|run_dir"')
    ap.add_argument("--ref", action="append", default=[], help='"panel|label|value"')
    args = ap.parse_args()
    runs = [r.split("|", 2) for r in args.runs]
    panels = list(dict.fromkeys(p for p, _, _ in runs))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        for p, label, run in runs:
            if p != panel:
                continue
            log = pd.read_csv(Path(run) / "train_log.csv")
            ax.plot(log["steps"], log["val_epe"], marker="o", ms=3, label=label)
        for ref in args.ref:
            p, label, value = ref.split("|", 2)
            if p == panel:
                ax.axhline(float(value), ls="--", lw=1, color="grey")
                ax.annotate(label, (0.02, float(value)), xycoords=("axes fraction", "data"), fontsize=7,
                            va="bottom", color="grey")
        ax.set_title(panel, fontsize=9)
        ax.set_xlabel("optimizer steps")
        ax.set_ylabel("validation EPE (px)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90)


if __name__ == "__main__":
    main()

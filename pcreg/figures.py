"""Figures computed from the saved registered images and ``pairs.csv`` files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pcreg.datasets.format import PreparedDataset  # noqa: E402
from pcreg.tables import Run  # noqa: E402


def pick_pairs(categories: Sequence[str], k: int) -> list[int]:
    """``k`` test pairs spread over the split, taking each category in turn where there are several."""
    n = len(categories)
    if n == 0:
        return []
    cats = sorted({c for c in categories if c})
    if len(cats) > 1:
        chosen: list[int] = []
        pools = {c: [i for i, x in enumerate(categories) if x == c] for c in cats}
        while len(chosen) < min(k, n):
            for c in cats:
                if pools[c] and len(chosen) < k:
                    chosen.append(pools[c].pop(0))
        return sorted(chosen)
    return sorted({int(round(x)) for x in np.linspace(0, n - 1, min(k, n))})


def qualitative_grid(data_root: Path, runs: Sequence[Run], out_path: Path, n_pairs: int = 3) -> Path:
    """Grid per test pair: top row moving, fixed, each method's output; bottom row |image − fixed|."""
    dataset = PreparedDataset(data_root)
    test = dataset.split("test")
    chosen = pick_pairs(test.manifest["category"].tolist(), n_pairs)
    outputs = {run.id: np.load(run.pairs_csv.parent / "registered.npy", mmap_mode="r") for run in runs}
    ncols = 2 + len(runs)
    fig, axes = plt.subplots(2 * len(chosen), ncols, figsize=(1.6 * ncols, 3.3 * len(chosen)), squeeze=False)
    for r, i in enumerate(chosen):
        moving, fixed = test.pair(i)
        pid = test.manifest.at[i, "pair_id"]
        cat = test.manifest.at[i, "category"]
        top, bottom = axes[2 * r], axes[2 * r + 1]
        panels = [("moving", moving), ("fixed", fixed)] + [(run.label, np.asarray(outputs[run.id][i])) for run in runs]
        for c, (title, img) in enumerate(panels):
            top[c].imshow(img, cmap="gray", vmin=0, vmax=1)
            top[c].set_title(title if r == 0 else "", fontsize=8)
            if c == 1:
                bottom[c].axis("off")
                continue
            bottom[c].imshow(np.abs(img - fixed), cmap="magma", vmin=0, vmax=0.5)
        top[0].set_ylabel(f"{pid}" + (f" ({cat})" if cat else ""), fontsize=7)
        bottom[0].set_ylabel("|image − fixed|", fontsize=7)
        for ax in (*top, *bottom):
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"{dataset.name}\nbottom rows: |image − fixed|", fontsize=9)
    fig.tight_layout()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path

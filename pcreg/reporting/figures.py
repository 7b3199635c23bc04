"""Figures computed from the saved registered images and ``pairs.csv`` files."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pcreg.datasets.format import PreparedDataset  # noqa: E402
from pcreg.reporting.style import method_color  # noqa: E402
from pcreg.reporting.tables import Run  # noqa: E402


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


def checkerboard(a: np.ndarray, b: np.ndarray, tiles: int = 8) -> np.ndarray:
    """Alternate square tiles of ``a`` and ``b`` (``tiles`` per side): edges that continue across tiles are aligned."""
    h, w = a.shape
    rows = (np.arange(h) * tiles // h)[:, None]
    cols = (np.arange(w) * tiles // w)[None, :]
    return np.where((rows + cols) % 2 == 0, a, b)


def qualitative_grid(data_root: Path, runs: Sequence[Run], out_path: Path, n_pairs: int = 3) -> Path:
    """Grid per test pair, three rows: images; |image − fixed|; checkerboard of image and fixed.

    Columns: moving, fixed, then each method's output (method name coloured as in every other figure).
    """
    dataset = PreparedDataset(data_root)
    test = dataset.split("test")
    chosen = pick_pairs(test.manifest["category"].tolist(), n_pairs)
    outputs = {run.id: np.load(run.pairs_csv.parent / "registered.npy", mmap_mode="r") for run in runs}
    ncols = 2 + len(runs)
    fig, axes = plt.subplots(3 * len(chosen), ncols, figsize=(1.7 * ncols, 5.2 * len(chosen)), squeeze=False)
    for r, i in enumerate(chosen):
        moving, fixed = test.pair(i)
        pid = test.manifest.at[i, "pair_id"]
        cat = test.manifest.at[i, "category"]
        top, middle, bottom = axes[3 * r], axes[3 * r + 1], axes[3 * r + 2]
        panels = [("moving", "black", moving), ("fixed", "black", fixed)]
        panels += [(run.label, method_color(run.id), np.asarray(outputs[run.id][i])) for run in runs]
        for c, (title, color, img) in enumerate(panels):
            top[c].imshow(img, cmap="gray", vmin=0, vmax=1)
            if r == 0:  # wrapped so neighbouring titles never overlap; the method's colour on the frame
                top[c].set_title(textwrap.fill(title, 14), fontsize=7)
            for spine in top[c].spines.values():
                spine.set_edgecolor(color)
                spine.set_linewidth(2.0 if c >= 2 else 0.8)
            if c == 1:
                middle[c].axis("off")
                bottom[c].axis("off")
                continue
            middle[c].imshow(np.abs(img - fixed), cmap="magma", vmin=0, vmax=0.5)
            bottom[c].imshow(checkerboard(img, fixed), cmap="gray", vmin=0, vmax=1)
        top[0].set_ylabel(f"{pid}" + (f" ({cat})" if cat else ""), fontsize=7)
        middle[0].set_ylabel("|image − fixed|", fontsize=7)
        bottom[0].set_ylabel("checkerboard\nimage / fixed", fontsize=7)
        for ax in (*top, *middle, *bottom):
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"{dataset.name}: per pair, row 1 images, row 2 |image − fixed| (0 to 0.5),\n"
                 "row 3 checkerboard of image and fixed (8×8 tiles)", fontsize=9)
    fig.tight_layout()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path

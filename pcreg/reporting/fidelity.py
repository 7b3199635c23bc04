"""The content-fidelity table and figure of a dataset (kept / invented per method, with two oracles).

Rows: every method run (its ``kept`` / ``invented`` columns of ``pairs.csv``,
computed in evaluation by :mod:`pcreg.evaluation.fidelity`) and two oracles computed here
from the dataset: the **ground-truth warp** (the moving image warped by the
ground-truth field: a perfect registration) and the **fixed-copy** oracle (the
output is the fixed image: perfect synthesis). Each cell is the mean over pairs
with a cluster-bootstrap 95 % CI: the unit resampled is the manifest's
``cluster`` (the independent unit) when present, else the temporal
``sequence``, else the pair. The verdict uses the means and the thresholds in
:data:`THRESHOLDS`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import ndimage  # noqa: E402

from pcreg.datasets.format import PreparedDataset  # noqa: E402
from pcreg.errors import UserError  # noqa: E402
from pcreg.evaluation.fidelity import feature_scores, pair_fidelity  # noqa: E402
from pcreg.evaluation.stats import cluster_bootstrap_ci  # noqa: E402
from pcreg.reporting.tables import Run, TableDoc, fmt_ci, fmt_value, sort_runs, write_doc  # noqa: E402
from pcreg.warp import warp_image  # noqa: E402

#: Verdict thresholds on the mean kept / invented: "registers" needs kept >= KEPT_MIN and invented <=
#: INVENTED_MAX; "synthesises" needs kept <= 1 - KEPT_MIN and invented >= 1 - INVENTED_MAX; else "mixed".
THRESHOLDS = {"kept_min": 0.7, "invented_max": 0.3}
GT_WARP = ("gt_warp", "Ground-truth warp (oracle)")
FIXED_COPY = ("fixed_copy", "Fixed-copy (oracle)")


def verdict(kept: float, invented: float, thresholds: dict[str, float] = THRESHOLDS) -> str:
    """``registers`` / ``synthesises`` / ``mixed`` from the mean kept and invented (``n/a`` if either is NaN)."""
    if not (np.isfinite(kept) and np.isfinite(invented)):
        return "n/a"
    if kept >= thresholds["kept_min"] and invented <= thresholds["invented_max"]:
        return "registers"
    if kept <= 1 - thresholds["kept_min"] and invented >= 1 - thresholds["invented_max"]:
        return "synthesises"
    return "mixed"


def cluster_of(manifest: pd.DataFrame) -> tuple[pd.Series, str]:
    """Each pair's independent unit and its name: ``cluster`` column, else ``sequence``, else the pair."""
    for col in ("cluster", "sequence"):
        if col in manifest and manifest[col].fillna("").astype(str).str.len().gt(0).all():
            return manifest[col].astype(str), col
    return manifest["pair_id"].astype(str), "pair"


def oracle_scores(data_root: Path, split: str = "test") -> pd.DataFrame:
    """Per-pair kept / invented of the ground-truth-warp and fixed-copy oracles (``run`` = oracle id)."""
    pairs = PreparedDataset(data_root).split(split)
    if pairs.lesion_kinds is None:
        raise UserError(f"{data_root}: the dataset has no content-fidelity masks (lesions.csv)")
    rows = []
    for i, pid in enumerate(pairs.pair_ids):
        moving, fixed = pairs.pair(i)
        gt = None if pairs.field is None else np.asarray(pairs.field[i])
        args = (moving, fixed, gt, pairs.lesions_moving[i], pairs.lesions_fixed[i], pairs.lesion_kinds[pid])
        gt_warp = warp_image(moving, gt) if gt is not None else None
        if gt_warp is not None:
            rows.append({"run": GT_WARP[0], "pair_id": pid, **pair_fidelity(gt_warp, *args)})
        rows.append({"run": FIXED_COPY[0], "pair_id": pid, **pair_fidelity(fixed, *args)})
    return pd.DataFrame(rows)


def fidelity_table(data_root: Path, runs: Sequence[Run], dataset: str, stem: Path, *, n_boot: int = 2000,
                   seed: int = 0, alpha: float = 0.05) -> list[Path]:
    """Write ``<stem>.{csv,md,tex,html}``: kept and invented per method and oracle, CI and verdict."""
    ds = PreparedDataset(data_root)
    test = ds.split("test")
    clusters, unit = cluster_of(test.manifest)
    cluster = dict(zip(test.manifest["pair_id"].astype(str), clusters))
    oracles = oracle_scores(data_root)
    entries: list[tuple[str, str, str, pd.DataFrame]] = []
    for oid, label in (GT_WARP, FIXED_COPY):
        part = oracles[oracles["run"] == oid]
        if not part.empty:
            entries.append((oid, label, "oracle", part))
    for run in sort_runs(runs):
        df = pd.read_csv(run.pairs_csv, dtype={"pair_id": str})
        for col in ("kept", "invented"):
            df[col] = pd.to_numeric(df[col], errors="coerce") if col in df else np.nan
        entries.append((run.id, run.label, run.group, df))
    data_rows, doc_rows = [], []
    for rid, label, group, df in entries:
        row: dict[str, object] = {"run": rid, "label": label, "group": group}
        cells = [label]
        for col in ("kept", "invented"):
            vals = df[col].to_numpy(np.float64)
            ok = np.isfinite(vals)
            mean = float(vals[ok].mean()) if ok.any() else float("nan")
            low, high = cluster_bootstrap_ci(vals, [cluster.get(p, p) for p in df["pair_id"].astype(str)],
                                             n_boot, seed, alpha)
            row.update({f"{col}_mean": mean, f"{col}_ci_low": low, f"{col}_ci_high": high, f"{col}_n": int(ok.sum())})
            cells.append(f"{fmt_value(mean, 2)} {fmt_ci(low, high, 2)}")
        row["verdict"] = verdict(row["kept_mean"], row["invented_mean"])
        cells.append(str(row["verdict"]))
        data_rows.append(row)
        doc_rows.append(cells)
    n_units = len(set(cluster.values()))
    level = int(round(100 * (1 - alpha)))
    doc = TableDoc(
        columns=["Method", f"Kept (mean, {level}% CI)", f"Invented (mean, {level}% CI)", "Verdict"],
        rows=doc_rows,
        caption=f"{dataset}: content fidelity on {len(test)} test pairs (features present in one image only)",
        notes=[
            "Kept: contrast of a moving-only feature in the output, at its ground-truth position, over its "
            "contrast in the ground-truth warp (1 = kept, 0 = erased). Invented: contrast of the output at a "
            "fixed-only feature over its contrast in the fixed image (0 = not invented, 1 = copied).",
            f"Mean over pairs; {level}% CI by cluster bootstrap ({n_boot} resamples) over {n_units} independent "
            f"units ({unit}).",
            f"Verdict: registers if kept ≥ {THRESHOLDS['kept_min']} and invented ≤ {THRESHOLDS['invented_max']}; "
            f"synthesises if kept ≤ {1 - THRESHOLDS['kept_min']:.1f} and invented ≥ "
            f"{1 - THRESHOLDS['invented_max']:.1f}; mixed otherwise.",
            "A field method only resamples the moving image: it cannot create intensities the moving image "
            "lacks, but it can misplace a feature, compress a moving-only feature or stretch neighbouring "
            "content over a fixed-only one. Intensity metrics (NCC, SSIM, PSNR) cannot tell registration from "
            "synthesis: the fixed-copy oracle scores perfectly on them.",
        ],
    )
    return write_doc(doc, pd.DataFrame(data_rows), stem)


def _crop(image: np.ndarray, centre: tuple[float, float], half: int) -> np.ndarray:
    """``(2 half + 1)²`` window of ``image`` around ``centre`` (edge-padded)."""
    padded = np.pad(np.asarray(image, np.float32), half, mode="edge")
    r, c = int(round(centre[0])) + half, int(round(centre[1])) + half
    return padded[r - half:r + half + 1, c - half:c + half + 1]


def pick_features(data_root: Path, n: int) -> list[tuple[int, int, str, str]]:
    """Up to ``n`` test features, alternating moving-only and fixed-only, from different pairs in order."""
    test = PreparedDataset(data_root).split("test")
    by_kind: dict[str, list[tuple[int, int, str, str]]] = {"moving_only": [], "fixed_only": []}
    for i, pid in enumerate(test.pair_ids):
        present = np.unique(np.asarray(test.lesions_fixed[i]))
        for want in by_kind:  # one feature of each kind per pair at most, for variety
            for label, (kind, name) in sorted(test.lesion_kinds[pid].items()):
                if kind == want and label in present:
                    by_kind[kind].append((i, label, kind, name))
                    break
    chosen = []
    for k in range(n):
        pool = by_kind["moving_only" if k % 2 == 0 else "fixed_only"]
        if k // 2 < len(pool):
            chosen.append(pool[k // 2])
    return chosen


def score_caption(score: float) -> str:
    """A kept/invented score for a crop's caption: one decimal, capped to [0, 1] with '<'/'>' (a contrast ratio
    slightly outside its nominal range is noise around 0 or 1, not more than kept or less than nothing)."""
    if score > 1.0:
        return ">1.0" if score >= 1.05 else "1.0"
    if score < 0.0:
        return "<0.0" if score <= -0.05 else "0.0"
    return f"{score:.1f}"


def fidelity_figure(data_root: Path, runs: Sequence[Run], dataset: str, out_path: Path, n_features: int = 4,
                    half: int = 12) -> Path:
    """Crops around a few features: moving, fixed, ground-truth warp and every method's output.

    The feature's fixed-space mask is outlined in red (the moving crop is centred on the corresponding
    moving-space point, through the ground-truth field); each output panel is titled with its score.
    """
    test = PreparedDataset(data_root).split("test")
    if test.lesion_kinds is None:
        raise UserError(f"{data_root}: the dataset has no content-fidelity masks (lesions.csv)")
    runs = sort_runs(runs)
    outputs = {run.id: np.load(run.result_dir / "registered.npy", mmap_mode="r") for run in runs}
    chosen = pick_features(data_root, n_features)
    ncols = 3 + len(runs)
    fig, axes = plt.subplots(len(chosen), ncols, figsize=(1.3 * ncols, 1.6 * max(len(chosen), 1) + 0.8),
                             squeeze=False)
    for r, (i, label, kind, name) in enumerate(chosen):
        pid = test.pair_ids[i]
        moving, fixed = test.pair(i)
        gt = None if test.field is None else np.asarray(test.field[i])
        mask = np.asarray(test.lesions_fixed[i]) == label
        centre = ndimage.center_of_mass(mask)
        moving_centre = centre if gt is None else (centre[0] + gt[0][mask].mean(), centre[1] + gt[1][mask].mean())
        scoring = (moving, fixed, gt, test.lesions_moving[i], test.lesions_fixed[i], {label: (kind, name)})
        panels = [("moving", moving, moving_centre, None), ("fixed", fixed, centre, None)]
        if gt is not None:
            gt_warp = warp_image(moving, gt)
            panels.append(("GT warp", gt_warp, centre, feature_scores(gt_warp, *scoring)[0]["score"]))
        for run in runs:
            out = np.asarray(outputs[run.id][i])
            panels.append((run.label, out, centre, feature_scores(out, *scoring)[0]["score"]))
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(panels):
                ax.axis("off")
                continue
            title, img, where, score = panels[c]
            ax.imshow(_crop(img, where, half), cmap="gray", vmin=0, vmax=1)
            if title != "moving":
                ax.contour(_crop(mask.astype(np.float32), centre, half), levels=[0.5], colors="red", linewidths=0.6)
            text = textwrap.fill(title, 12) if r == 0 else ""
            if score is not None and np.isfinite(score):
                text = (text + "\n" if text else "") + f"{'kept' if kind == 'moving_only' else 'inv.'} " \
                    + score_caption(score)
            ax.set_title(text, fontsize=6)
        axes[r][0].set_ylabel(f"{pid}\n{kind.replace('_', '-')}\n{name}", fontsize=6)
    fig.suptitle(f"{dataset}: features present in one image only ({2 * half + 1}-px crops; red: where the "
                 "ground truth puts the feature in fixed space)", fontsize=8)
    fig.tight_layout()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=130)
    plt.close(fig)
    return out_path

"""The content-fidelity table and figure of a dataset (kept / invented / placement per method, with oracles).

Rows: every method run (its ``kept`` / ``invented`` / ``placement_px`` columns of
``pairs.csv``, computed in evaluation by :mod:`pcreg.evaluation.fidelity`: a field
method's features where its own field puts them, an image-only method's best
response within the search window) and oracles computed here from the dataset:

- the **ground-truth warp** (the moving image warped by the ground-truth field, a
  perfect registration; scored through the ground-truth field): must keep content;
- the **fixed-copy**, **fixed blurred** (Gaussian σ 1.5) and **fixed median-filtered**
  (7×7) oracles: outputs made from the fixed image alone (image-only). They hold
  none of the moving image's own content and must *not* be classed as keeping it.

Each cell is the mean over pairs with a cluster-bootstrap 95 % CI, next to the
median: the unit resampled is the manifest's ``cluster`` (the independent unit)
when present, else the temporal ``sequence``, else the pair. The verdict applies
:data:`VERDICT_RULE` to the means.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import ndimage  # noqa: E402

from pcreg.datasets.format import PreparedDataset  # noqa: E402
from pcreg.errors import UserError  # noqa: E402
from pcreg.evaluation.fidelity import RATIO_RANGE, SEARCH_PX, feature_scores, pair_fidelity  # noqa: E402
from pcreg.evaluation.stats import cluster_bootstrap_ci  # noqa: E402
from pcreg.reporting.tables import Run, TableDoc, fmt_ci, fmt_value, sort_runs, write_doc  # noqa: E402
from pcreg.warp import warp_image  # noqa: E402

#: The verdict rule on the mean kept (K) and invented (I): "keeps content" needs K >= kept_min and
#: K - I >= margin; "synthesises" needs K - I <= 0; "mixed" otherwise.
VERDICT_RULE = {"kept_min": 0.5, "margin": 0.5}
KEEPS, SYNTHESISES, MIXED = "keeps content", "synthesises", "mixed"
GT_WARP = ("gt_warp", "Ground-truth warp (oracle)")
FIXED_COPY = ("fixed_copy", "Fixed-copy (oracle)")
FIXED_BLUR = ("fixed_blur", "Fixed image blurred, σ 1.5 (oracle)")
FIXED_MEDIAN = ("fixed_median", "Fixed image median-filtered, 7×7 (oracle)")
#: The image-only oracles: an output made from the fixed image alone.
FIXED_ORACLES: dict[tuple[str, str], Callable[[np.ndarray], np.ndarray]] = {
    FIXED_COPY: lambda f: np.asarray(f, np.float32),
    FIXED_BLUR: lambda f: ndimage.gaussian_filter(np.asarray(f, np.float32), 1.5),
    FIXED_MEDIAN: lambda f: ndimage.median_filter(np.asarray(f, np.float32), size=7),
}
COLUMNS = ("kept", "invented", "placement_px")


def verdict(kept: float, invented: float, rule: dict[str, float] = VERDICT_RULE) -> str:
    """``keeps content`` / ``synthesises`` / ``mixed`` from the mean kept and invented (``n/a`` if either is NaN)."""
    if not (np.isfinite(kept) and np.isfinite(invented)):
        return "n/a"
    if kept >= rule["kept_min"] and kept - invented >= rule["margin"]:
        return KEEPS
    if kept - invented <= 0:
        return SYNTHESISES
    return MIXED


def verdict_note(rule: dict[str, float] = VERDICT_RULE) -> str:
    """The verdict rule in words, for the table note."""
    return (f"Verdict (from the means K = kept, I = invented): {KEEPS} if K ≥ {rule['kept_min']} and K − I ≥ "
            f"{rule['margin']}; {SYNTHESISES} if K − I ≤ 0; {MIXED} otherwise.")


def cluster_of(manifest: pd.DataFrame) -> tuple[pd.Series, str]:
    """Each pair's independent unit and its name: ``cluster`` column, else ``sequence``, else the pair."""
    for col in ("cluster", "sequence"):
        if col in manifest and manifest[col].fillna("").astype(str).str.len().gt(0).all():
            return manifest[col].astype(str), col
    return manifest["pair_id"].astype(str), "pair"


def oracle_scores(data_root: Path, split: str = "test") -> pd.DataFrame:
    """Per-pair kept / invented / placement of the oracles (``run`` = oracle id, ``field`` = scored by a field)."""
    pairs = PreparedDataset(data_root).split(split)
    if pairs.lesion_kinds is None:
        raise UserError(f"{data_root}: the dataset has no content-fidelity masks (lesions.csv)")
    rows = []
    for i, pid in enumerate(pairs.pair_ids):
        moving, fixed = pairs.pair(i)
        gt = None if pairs.field is None else np.asarray(pairs.field[i])
        args = (moving, fixed, gt, pairs.lesions_moving[i], pairs.lesions_fixed[i], pairs.lesion_kinds[pid])
        if gt is not None:
            rows.append({"run": GT_WARP[0], "pair_id": pid, "field": True,
                         **pair_fidelity(warp_image(moving, gt), *args, field=gt)})
        for (oid, _), make in FIXED_ORACLES.items():
            rows.append({"run": oid, "pair_id": pid, "field": False, **pair_fidelity(make(fixed), *args)})
    return pd.DataFrame(rows)


def fidelity_table(data_root: Path, runs: Sequence[Run], dataset: str, stem: Path, *, n_boot: int = 2000,
                   seed: int = 0, alpha: float = 0.05) -> list[Path]:
    """Write ``<stem>.{csv,md,tex,html}``: kept, invented and placement per method and oracle, CI and verdict."""
    ds = PreparedDataset(data_root)
    test = ds.split("test")
    clusters, unit = cluster_of(test.manifest)
    cluster = dict(zip(test.manifest["pair_id"].astype(str), clusters))
    oracles = oracle_scores(data_root)
    entries: list[tuple[str, str, str, bool, pd.DataFrame]] = []
    for oid, label in (GT_WARP, *FIXED_ORACLES):
        part = oracles[oracles["run"] == oid]
        if not part.empty:
            entries.append((oid, label, "oracle", bool(part["field"].iloc[0]), part))
    for run in sort_runs(runs):
        df = pd.read_csv(run.pairs_csv, dtype={"pair_id": str})
        for col in COLUMNS:
            df[col] = pd.to_numeric(df[col], errors="coerce") if col in df else np.nan
        entries.append((run.id, run.label, run.group, (run.result_dir / "fields.npy").is_file(), df))
    data_rows, doc_rows = [], []
    search = f"best in ±{SEARCH_PX} px"
    for rid, label, group, has_field, df in entries:
        row: dict[str, object] = {"run": rid, "label": label, "group": group,
                                  "kept_at": "own field" if has_field else search}
        cells = [label]
        for col in COLUMNS:
            vals = df[col].to_numpy(np.float64)
            ok = np.isfinite(vals)
            mean = float(vals[ok].mean()) if ok.any() else float("nan")
            median = float(np.median(vals[ok])) if ok.any() else float("nan")
            low, high = cluster_bootstrap_ci(vals, [cluster.get(p, p) for p in df["pair_id"].astype(str)],
                                             n_boot, seed, alpha)
            row.update({f"{col}_mean": mean, f"{col}_ci_low": low, f"{col}_ci_high": high,
                        f"{col}_median": median, f"{col}_n": int(ok.sum())})
            digits = 1 if col == "placement_px" else 2
            cells += [f"{fmt_value(mean, digits)} {fmt_ci(low, high, digits)}", fmt_value(median, digits)]
        row["kept_minus_invented"] = float(row["kept_mean"]) - float(row["invented_mean"])
        row["verdict"] = verdict(float(row["kept_mean"]), float(row["invented_mean"]))
        cells += [str(row["kept_at"]), fmt_value(row["kept_minus_invented"], 2), str(row["verdict"])]
        data_rows.append(row)
        doc_rows.append(cells)
    n_units = len(set(cluster.values()))
    level = int(round(100 * (1 - alpha)))
    doc = TableDoc(
        columns=["Method", f"Kept (mean, {level}% CI)", "Kept (median)", f"Invented (mean, {level}% CI)",
                 "Invented (median)", f"Placement error, px (mean, {level}% CI)", "Placement (median)",
                 "Kept measured at", "Kept − invented", "Verdict"],
        rows=doc_rows,
        caption=f"{dataset}: content fidelity on {len(test)} test pairs (features present in one image only)",
        notes=[
            "Kept: contrast of a moving-only feature in the output where the method put it, over its contrast "
            "in the ground-truth warp (1 = kept, 0 = erased). A method with a field is scored at the feature's "
            "mask transported by its own field (a feature squeezed to nothing scores 0); an image-only method "
            f"(and the fixed-image oracles) at the best shift of the ground-truth mask within ±{SEARCH_PX} px. "
            "Invented: contrast of the output at a fixed-only feature over its contrast in the fixed image "
            f"(0 = not invented, 1 = copied). Each ratio is clipped to [{RATIO_RANGE[0]}, {RATIO_RANGE[1]}].",
            "Placement error: distance (px) between the centroid of the feature where the method put it and "
            f"its ground-truth centroid (image-only: the length of the best shift, at most {SEARCH_PX}·√2). "
            "Placement is geometry; kept is content.",
            f"Mean over pairs; {level}% CI by cluster bootstrap ({n_boot} resamples) over {n_units} independent "
            f"units ({unit}); median over pairs beside it.",
            verdict_note(),
            "The fixed-image oracles (copy, Gaussian blur σ 1.5, 7×7 median) contain none of the moving image's "
            "own content: a verdict other than 'synthesises' or 'mixed' on them would mean the metric fails. "
            "Intensity metrics (NCC, SSIM, PSNR) cannot tell registration from synthesis: the fixed-copy "
            "oracle scores perfectly on them.",
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
    fields = {run.id: np.load(run.result_dir / "fields.npy", mmap_mode="r") for run in runs
              if (run.result_dir / "fields.npy").is_file()}
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
            panels.append(("GT warp", gt_warp, centre, feature_scores(gt_warp, *scoring, field=gt)[0]["score"]))
        for run in runs:
            out = np.asarray(outputs[run.id][i])
            own = np.asarray(fields[run.id][i]) if run.id in fields else None
            panels.append((run.label, out, centre, feature_scores(out, *scoring, field=own)[0]["score"]))
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

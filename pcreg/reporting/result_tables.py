"""Statistics and geometry tables of one dataset, from the runs' ``pairs.csv``.

- :func:`stats_table`: per run, metric and category (``all`` plus each category
  of the dataset): n, mean ± std, a percentile-bootstrap 95% CI of the mean and
  the paired Wilcoxon signed-rank test against the reference run (PCReg-Net by
  default), Holm-corrected per table (``all``) and per category. Without a
  reference run on the dataset the tests are skipped and the table says so.
- :func:`geometry_table`: TRE at the original resolution per category, the FIRE
  success-rate AUC per category and mAUC, EPE, folding and SDlogJ. A run
  without a field, or a dataset without landmarks, shows ``n/a``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pcreg.evaluation import fire_protocol, stats
from pcreg.reporting.tables import (
    DASH,
    NA,
    Run,
    TableDoc,
    fmt_ci,
    fmt_mean_std,
    fmt_p,
    fmt_value,
    fmt_with_n,
    sort_runs,
)

#: Shown instead of a Holm-adjusted p-value that cannot reach significance on so few units.
DESCRIPTIVE = "descriptive only"

#: Metrics of the statistics table: column -> (header, decimals, tested against the reference).
STATS_METRICS: dict[str, tuple[str, int, bool]] = {
    "ncc": ("NCC", 3, True),
    "ssim": ("SSIM (Gaussian 11x11)", 3, True),
    "ssim_uniform7": ("SSIM (uniform 7x7)", 3, True),
    "psnr": ("PSNR (dB)", 2, True),
    "tre_orig_px": ("TRE (px, original resolution)", 2, True),
    "epe_px": ("EPE (px)", 2, True),
    "folding_pct": ("Folding (%)", 2, True),
    "sdlogj": ("SDlogJ", 3, True),
    "runtime_s": ("Runtime (s/pair)", 4, False),
}


#: What a dataset's ``cluster`` column means, by unit name (stated in the statistics table).
UNIT_DESCRIPTIONS: dict[str, str] = {
    "pair": "each test pair counts once",
    "cluster": "pairs sharing source pixels are one unit: FIRE photographs linked by shared images, a temporal "
               "sequence, or one synthetic eye",
}


def unit_of(pairs: pd.DataFrame) -> str:
    """``pair`` when every pair is its own cluster, else ``cluster``."""
    if "cluster" not in pairs or (pairs["cluster"].astype(str) == pairs["pair_id"].astype(str)).all():
        return "pair"
    return "cluster"


def categories_of(pairs: pd.DataFrame) -> list[str]:
    """The dataset's pair categories in FIRE order (S, P, A) then the others; [] when pairs have none."""
    present = {c for c in pairs["category"].unique() if c}
    return [c for c in fire_protocol.CATEGORIES if c in present] + sorted(present - set(fire_protocol.CATEGORIES))


def _with_all_category(pairs: pd.DataFrame) -> pd.DataFrame:
    """Pairs twice: once under ``scope = all``, once under their own category (when they have one)."""
    every = pairs.assign(scope="all")
    per = pairs[pairs["category"] != ""].assign(scope=lambda d: d["category"])
    return pd.concat([every, per], ignore_index=True)


def stats_table(
    pairs: pd.DataFrame,
    runs: Sequence[Run],
    dataset: str,
    *,
    reference: str,
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
    metrics: dict[str, tuple[str, int, bool]] = STATS_METRICS,
) -> tuple[pd.DataFrame, TableDoc]:
    """Summary statistics and paired tests vs ``reference``; returns the tidy CSV frame and the document.

    The bootstrap uses ``seed`` for every (run, metric, scope), so all runs are
    resampled with the same pair indices (a paired bootstrap). The Holm family is
    every (run, tested metric) of one scope.
    """
    runs = sort_runs(runs)
    metric_cols = [m for m in metrics if m in pairs.columns]
    scoped = _with_all_category(pairs)
    cluster_col = "cluster" if "cluster" in pairs else None
    summary = stats.summarize_frame(scoped, ["scope", "run"], metric_cols, n_boot=n_boot, seed=seed, alpha=alpha,
                                    cluster_col=cluster_col)
    has_ref = reference in set(pairs["run"])
    tested = [m for m in metric_cols if metrics[m][2]]
    if has_ref:
        tests = stats.wilcoxon_vs_reference(scoped, reference, tested, method_col="run", family_cols=("scope",),
                                            cluster_col=cluster_col, alpha=alpha)
        tests = tests.rename(columns={"n_units": "n_units_tested"})
        summary = summary.merge(tests[["scope", "run", "metric", "n_pairs", "n_units_tested", "median_diff", "p",
                                       "p_holm", "descriptive_only"]], on=["scope", "run", "metric"], how="left")
    else:
        for col in ("n_pairs", "n_units_tested", "median_diff", "p", "p_holm", "descriptive_only"):
            summary[col] = np.nan
    summary.insert(0, "dataset", dataset)
    summary = summary.rename(columns={"n_pairs": "n_paired"})
    order_run = {r.id: i for i, r in enumerate(runs)}
    order_metric = {m: i for i, m in enumerate(metric_cols)}
    scopes = ["all", *categories_of(pairs)]
    summary["_s"] = summary["scope"].map({s: i for i, s in enumerate(scopes)})
    summary["_m"] = summary["metric"].map(order_metric)
    summary["_r"] = summary["run"].map(order_run)
    summary = summary.sort_values(["_m", "_s", "_r"]).drop(columns=["_s", "_m", "_r"]).reset_index(drop=True)

    labels = {r.id: r.label for r in runs}
    ref_label = labels.get(reference, reference)
    level = int(round(100 * (1 - alpha)))
    unit = unit_of(pairs)
    columns = ["Method", "Category", "n", f"{unit}s", "mean ± std", f"{level}% CI", f"median Δ vs {ref_label}",
               "p", "p (Holm)"]
    rows: list[list[str] | str] = []
    descriptive = False
    for metric in metric_cols:
        header, dec, test = metrics[metric]
        rows.append(header)
        for r in summary[summary["metric"] == metric].itertuples(index=False):
            is_ref = r.run == reference
            untested = not has_ref or not test or is_ref
            # too few units for any p-value to survive Holm (smallest possible p x family size >= alpha)
            only = not untested and np.isfinite(r.p) and bool(r.descriptive_only)
            descriptive |= only
            rows.append([
                labels.get(r.run, r.run), r.scope, str(int(r.n)) if r.n else "0", str(int(r.n_units)),
                fmt_mean_std(r.mean, r.std, dec), fmt_ci(r.ci_low, r.ci_high, dec),
                DASH if untested else fmt_value(r.median_diff, dec),
                DASH if untested else fmt_p(r.p),
                DASH if untested else (DESCRIPTIVE if only else fmt_p(r.p_holm)),
            ])
    n_units_all = pairs["cluster"].nunique() if cluster_col else pairs["pair_id"].nunique()
    notes = [
        f"Independent unit: {unit} ({UNIT_DESCRIPTIONS.get(unit, unit)}); {n_units_all} units in the test split. "
        f"Mean ± sample std over test pairs; {level}% CI: percentile bootstrap of the mean resampling whole {unit}s, "
        f"{n_boot} resamples, seed {seed} (same resamples for every method). n = pairs where the metric applies, "
        f"{unit}s = units they come from; n/a = does not apply.",
    ]
    if has_ref:
        notes.append(
            f"Paired two-sided Wilcoxon signed-rank test of each method against {ref_label} on per-{unit} means of "
            "the pairs where both have a value; median Δ = median over units of (method − reference). Holm "
            "correction over all (method, metric) tests of one category. — = fewer than "
            f"{stats.MIN_WILCOXON_PAIRS} non-zero paired unit differences (no test possible) or metric not tested.")
    else:
        notes.append(f"No {reference} run on this dataset: the paired tests against it are skipped.")
    if descriptive:
        notes.append(f"{DESCRIPTIVE}: with k {unit}s the smallest two-sided Wilcoxon p-value is 2/2^k; times the "
                     f"Holm family size (the tests of that category) it is not below alpha = {alpha:g}, so no "
                     "difference could be significant whatever the data: the comparison is descriptive only.")
    caption = f"{dataset}: statistics per method and category"
    return summary, TableDoc(columns, rows, caption, notes)


#: pairs.csv columns (mean, median, max point error at the original resolution) per FIRE mapping direction.
DIRECTION_COLUMNS: dict[str, tuple[str, str, str]] = {
    "moving_to_fixed": ("tre_m2f_orig_px", "tre_m2f_orig_median_px", "tre_m2f_orig_max_px"),
    "fixed_to_moving": ("tre_orig_px", "tre_orig_median_px", "tre_orig_max_px"),
}
DIRECTION_NOTES: dict[str, str] = {
    "moving_to_fixed": "moving (_2) points mapped into the fixed (_1) image and measured there, as in "
                       "SuperRetina's test_on_FIRE.py (inverse of the pull-back map, by fixed-point iteration)",
    "fixed_to_moving": "fixed (_1) points mapped through the pull-back field into the moving (_2) image and "
                       "measured there (the suite's TRE)",
}


def _with_landmarks(group: pd.DataFrame) -> pd.DataFrame:
    """The pairs the FIRE protocol scores: those with landmarks (``n_landmarks > 0``), failed or not."""
    if "n_landmarks" in group:
        return group[pd.to_numeric(group["n_landmarks"], errors="coerce").fillna(0) > 0]
    return group[group["tre_orig_px"].notna()]  # pairs.csv from before n_landmarks: best available


def _fire_errors(group: pd.DataFrame, column: str = "tre_orig_px") -> np.ndarray:
    """Per-pair FIRE errors at the original resolution: failed pairs get ``FAILED_ERROR``."""
    e = group[column].to_numpy(np.float64) if column in group else np.full(len(group), np.nan)
    return np.where(group["failed"].to_numpy(bool), fire_protocol.FAILED_ERROR, e)


def _statuses(group: pd.DataFrame, direction: str) -> list[str]:
    """SuperRetina's per-pair status (failed / inaccurate / acceptable) of pairs with landmarks."""
    mean_c, med_c, max_c = DIRECTION_COLUMNS[direction]
    out = []
    for failed, med, mx in zip(group["failed"].to_numpy(bool), group.get(med_c, pd.Series(np.nan, group.index)),
                               group.get(max_c, pd.Series(np.nan, group.index))):
        if failed or not (np.isfinite(med) and np.isfinite(mx)):
            out.append("failed")
        else:
            inaccurate = mx > fire_protocol.INACCURATE_MAX_PX or med > fire_protocol.INACCURATE_MEDIAN_PX
            out.append("inaccurate" if inaccurate else "acceptable")
    return out


def _fmt_status(r: dict, scope: str) -> str:
    vals = [r[f"{k}_pct_{scope}"] for k in ("failed", "inaccurate", "acceptable")]
    if any(not np.isfinite(v) for v in vals):
        return NA
    return " / ".join(f"{v:.0f}" for v in vals)


def working_size_note(working: dict) -> str:
    """``Working size: ...``: the image size the methods registered at, against the original resolution."""
    h, w = working["image_shape"]
    scale = float(working["original_scale"])
    orig = working.get("original_size")
    text = f"Working size: the methods registered {h} x {w} px images"
    if scale != 1.0:
        text += (f" (originals {orig} px)" if orig else "") + f"; 1 working px = {scale:.3g} original px"
    return text + "."


def geometry_table(
    pairs: pd.DataFrame, runs: Sequence[Run], dataset: str, direction: str = fire_protocol.DEFAULT_DIRECTION,
    working: dict | None = None,
) -> tuple[pd.DataFrame, TableDoc, pd.DataFrame]:
    """TRE per category, FIRE AUC and status percentages per category and mAUC, EPE, folding, SDlogJ.

    The FIRE AUC and status are computed over the pairs with landmarks, with the
    errors of ``direction`` (:data:`pcreg.evaluation.fire_protocol.DIRECTIONS`). Returns the
    tidy CSV frame (one row per run), the document and the FIRE success curves
    (``run, category, threshold, success_pct``; empty without landmarks). ``working`` (``image_shape``,
    ``original_scale``, optional ``original_size``) adds a note with the size the methods registered at.
    """
    if direction not in DIRECTION_COLUMNS:
        raise ValueError(f"unknown FIRE direction {direction!r}; expected one of {', '.join(DIRECTION_COLUMNS)}")
    err_col = DIRECTION_COLUMNS[direction][0]
    runs = sort_runs(runs)
    cats = categories_of(pairs)
    scopes = [*cats, "all"]
    rows_csv, curves = [], []
    has_landmarks = bool(pairs["tre_orig_px"].notna().any()) if "tre_orig_px" in pairs else False
    for run in runs:
        g = pairs[pairs["run"] == run.id]
        row: dict[str, object] = {"dataset": dataset, "run": run.id, "label": run.label, "group": run.group,
                                  "n_pairs": len(g), "n_failed": int(g["failed"].sum()), "direction": direction}
        has_tre = bool(g["tre_orig_px"].notna().any())
        lm = _with_landmarks(g)
        row["n_landmark_pairs"] = len(lm)
        for scope in scopes:
            sub = g if scope == "all" else g[g["category"] == scope]
            tre = sub["tre_orig_px"].to_numpy(np.float64)
            s = stats.summarize(tre, n_boot=1, seed=0)
            row[f"tre_{scope}_mean"], row[f"tre_{scope}_std"], row[f"tre_{scope}_n"] = s["mean"], s["std"], s["n"]
            lm_sub = lm if scope == "all" else lm[lm["category"] == scope]
            row[f"n_{scope}"], row[f"auc_{scope}_n"] = len(sub), len(lm_sub)
            if has_tre:
                row[f"auc_{scope}"] = fire_protocol.auc(_fire_errors(lm_sub, err_col)) if len(lm_sub) else np.nan
                pct = fire_protocol.status_counts(_statuses(lm_sub, direction))
            else:
                row[f"auc_{scope}"] = np.nan
                pct = dict.fromkeys(("failed", "inaccurate", "acceptable"), np.nan)
            for k, v in pct.items():
                row[f"{k}_pct_{scope}"] = v
        if has_tre and len(lm):
            aucs = fire_protocol.category_auc(_fire_errors(lm, err_col), lm["category"].replace("", "-"))
            row["mauc"] = float(aucs.loc[aucs["category"] == "mAUC", "auc"].iloc[0])
            curve = fire_protocol.success_table(_fire_errors(lm, err_col), lm["category"])
            curves.append(curve.assign(run=run.id))
        else:
            row["mauc"] = np.nan
        for col in ("epe_px", "folding_pct", "sdlogj"):
            s = stats.summarize(g[col].to_numpy(np.float64) if col in g else [], n_boot=1, seed=0)
            row[f"{col}_mean"], row[f"{col}_std"] = s["mean"], s["std"]
        rows_csv.append(row)
    data = pd.DataFrame(rows_csv)
    curve_df = (pd.concat(curves, ignore_index=True)[["run", "category", "threshold", "success_pct"]] if curves
                else pd.DataFrame(columns=["run", "category", "threshold", "success_pct"]))

    columns = ["Method"]
    columns += [f"TRE {s} (px)" for s in scopes]
    columns += [f"AUC {s}" for s in scopes]
    columns += [f"F / I / A {s} (%)" for s in scopes]
    columns += ["mAUC", "EPE (px)", "Folding (%)", "SDlogJ", "Failed"]
    rows: list[list[str] | str] = []
    for r in data.to_dict("records"):
        cells = [str(r["label"])]
        cells += [fmt_with_n(fmt_mean_std(r[f"tre_{s}_mean"], r[f"tre_{s}_std"], 2), r[f"tre_{s}_n"], r[f"n_{s}"])
                  for s in scopes]
        cells += [fmt_with_n(fmt_value(r[f"auc_{s}"], 3), r[f"auc_{s}_n"], r[f"n_{s}"]) for s in scopes]
        cells += [_fmt_status(r, s) for s in scopes]
        cells += [fmt_value(r["mauc"], 3), fmt_mean_std(r["epe_px_mean"], r["epe_px_std"], 2),
                  fmt_mean_std(r["folding_pct_mean"], r["folding_pct_std"], 2),
                  fmt_mean_std(r["sdlogj_mean"], r["sdlogj_std"], 3), f"{r['n_failed']}/{r['n_pairs']}"]
        rows.append(cells)
    notes = [
        "TRE: mean distance of mapped to true landmarks in pixels of the original images (tre_px × the dataset's "
        "original_scale), mean ± std over pairs. Failed pairs are scored with their fallback (identity) field.",
        "AUC (FIRE protocol): success rate (% of pairs with error < t) at t = 1..25 px of the original resolution, "
        "summed and divided by 2500, over the pairs with landmarks (failed ones included, which never succeed). "
        "mAUC = mean AUC of S, P and A (n/a unless all three categories are present).",
        f"FIRE errors (AUC, F / I / A) are measured with {DIRECTION_NOTES[direction]}. F / I / A: % of pairs with "
        "landmarks that failed / are inaccurate (largest point error > 50 px or median > 20 px, original "
        "resolution) / are acceptable (SuperRetina's summary).",
        "EPE: mean end-point error against the ground-truth field over the pixels whose true source lies inside "
        "the moving image (elsewhere no method can recover it); folding: % of non-positive Jacobian "
        "determinants; SDlogJ: std of the log Jacobian determinant.",
        f"{NA}: the method outputs an image and no displacement field, or the dataset has no landmarks / no "
        "ground-truth field. (n=K): the value covers K of the category's pairs (e.g. patches with landmarks).",
    ]
    if working is not None:
        notes.append(working_size_note(working))
    if not has_landmarks:
        notes.append(f"{dataset} has no landmarks (or no method outputs a field): TRE and AUC do not apply.")
    if not cats:
        notes.append(f"{dataset} has no pair categories: only 'all' is reported.")
    return data, TableDoc(columns, rows, f"{dataset}: geometry (TRE, FIRE AUC, field quality)", notes), curve_df

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
from pcreg.reporting.tables import DASH, NA, Run, TableDoc, fmt_ci, fmt_mean_std, fmt_p, fmt_value, sort_runs

#: Metrics of the statistics table: column -> (header, decimals, tested against the reference).
STATS_METRICS: dict[str, tuple[str, int, bool]] = {
    "ncc": ("NCC", 3, True),
    "ssim": ("SSIM", 3, True),
    "psnr": ("PSNR (dB)", 2, True),
    "tre_orig_px": ("TRE (px, original resolution)", 2, True),
    "epe_px": ("EPE (px)", 2, True),
    "folding_pct": ("Folding (%)", 2, True),
    "sdlogj": ("SDlogJ", 3, True),
    "runtime_s": ("Runtime (s/pair)", 4, False),
}


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
    summary = stats.summarize_frame(scoped, ["scope", "run"], metric_cols, n_boot=n_boot, seed=seed, alpha=alpha)
    has_ref = reference in set(pairs["run"])
    tested = [m for m in metric_cols if metrics[m][2]]
    if has_ref:
        tests = stats.wilcoxon_vs_reference(scoped, reference, tested, method_col="run", family_cols=("scope",))
        summary = summary.merge(tests[["scope", "run", "metric", "n_pairs", "median_diff", "p", "p_holm"]],
                                on=["scope", "run", "metric"], how="left")
    else:
        for col in ("n_pairs", "median_diff", "p", "p_holm"):
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
    columns = ["Method", "Category", "n", "mean ± std", f"{level}% CI", f"median Δ vs {ref_label}", "p", "p (Holm)"]
    rows: list[list[str] | str] = []
    for metric in metric_cols:
        header, dec, test = metrics[metric]
        rows.append(header)
        for r in summary[summary["metric"] == metric].itertuples(index=False):
            is_ref = r.run == reference
            untested = not has_ref or not test or is_ref
            rows.append([
                labels.get(r.run, r.run), r.scope, str(int(r.n)) if r.n else "0",
                fmt_mean_std(r.mean, r.std, dec), fmt_ci(r.ci_low, r.ci_high, dec),
                DASH if untested else fmt_value(r.median_diff, dec),
                DASH if untested else fmt_p(r.p), DASH if untested else fmt_p(r.p_holm),
            ])
    notes = [
        f"Mean ± sample std over test pairs; {level}% CI: percentile bootstrap of the mean, {n_boot} resamples, "
        f"seed {seed} (same resamples for every method). n = pairs where the metric applies; n/a = does not apply.",
    ]
    if has_ref:
        notes.append(
            f"Paired two-sided Wilcoxon signed-rank test of each method against {ref_label} on the pairs where both "
            "have a value; median Δ = median of (method − reference). Holm correction over all (method, metric) "
            "tests of one category. — = fewer than "
            f"{stats.MIN_WILCOXON_PAIRS} non-zero paired differences (no test possible) or metric not tested.")
    else:
        notes.append(f"No {reference} run on this dataset: the paired tests against it are skipped.")
    caption = f"{dataset}: statistics per method and category"
    return summary, TableDoc(columns, rows, caption, notes)


def _fire_errors(group: pd.DataFrame) -> np.ndarray:
    """Per-pair FIRE errors at the original resolution: failed pairs get ``FAILED_ERROR``."""
    e = group["tre_orig_px"].to_numpy(np.float64)
    return np.where(group["failed"].to_numpy(bool), fire_protocol.FAILED_ERROR, e)


def geometry_table(
    pairs: pd.DataFrame, runs: Sequence[Run], dataset: str
) -> tuple[pd.DataFrame, TableDoc, pd.DataFrame]:
    """TRE per category, FIRE AUC per category and mAUC, EPE, folding, SDlogJ.

    Returns the tidy CSV frame (one row per run), the document and the FIRE
    success curves (``run, category, threshold, success_pct``; empty without landmarks).
    """
    runs = sort_runs(runs)
    cats = categories_of(pairs)
    scopes = [*cats, "all"]
    rows_csv, curves = [], []
    has_landmarks = bool(pairs["tre_orig_px"].notna().any()) if "tre_orig_px" in pairs else False
    for run in runs:
        g = pairs[pairs["run"] == run.id]
        row: dict[str, object] = {"dataset": dataset, "run": run.id, "label": run.label, "group": run.group,
                                  "n_pairs": len(g), "n_failed": int(g["failed"].sum())}
        has_tre = bool(g["tre_orig_px"].notna().any())
        for scope in scopes:
            sub = g if scope == "all" else g[g["category"] == scope]
            tre = sub["tre_orig_px"].to_numpy(np.float64)
            s = stats.summarize(tre, n_boot=1, seed=0)
            row[f"tre_{scope}_mean"], row[f"tre_{scope}_std"], row[f"tre_{scope}_n"] = s["mean"], s["std"], s["n"]
            if has_tre:
                keep = sub["tre_orig_px"].notna() | sub["failed"]
                row[f"auc_{scope}"] = fire_protocol.auc(_fire_errors(sub[keep]))
            else:
                row[f"auc_{scope}"] = np.nan
        if has_tre:
            keep = g["tre_orig_px"].notna() | g["failed"]
            aucs = fire_protocol.category_auc(_fire_errors(g[keep]), g.loc[keep, "category"].replace("", "-"))
            row["mauc"] = float(aucs.loc[aucs["category"] == "mAUC", "auc"].iloc[0])
            curve = fire_protocol.success_table(_fire_errors(g[keep]), g.loc[keep, "category"])
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
    columns += ["mAUC", "EPE (px)", "Folding (%)", "SDlogJ", "Failed"]
    rows: list[list[str] | str] = []
    for r in data.to_dict("records"):
        cells = [str(r["label"])]
        cells += [fmt_mean_std(r[f"tre_{s}_mean"], r[f"tre_{s}_std"], 2) for s in scopes]
        cells += [fmt_value(r[f"auc_{s}"], 3) for s in scopes]
        cells += [fmt_value(r["mauc"], 3), fmt_mean_std(r["epe_px_mean"], r["epe_px_std"], 2),
                  fmt_mean_std(r["folding_pct_mean"], r["folding_pct_std"], 2),
                  fmt_mean_std(r["sdlogj_mean"], r["sdlogj_std"], 3), f"{r['n_failed']}/{r['n_pairs']}"]
        rows.append(cells)
    notes = [
        "TRE: mean distance of mapped to true landmarks in pixels of the original images (tre_px × the dataset's "
        "original_scale), mean ± std over pairs. Failed pairs are scored with their fallback (identity) field.",
        "AUC (FIRE protocol): success rate (% of pairs with error < t) at t = 1..25 px of the original resolution, "
        "summed and divided by 2500; failed pairs never succeed. mAUC = mean AUC of S, P and A "
        "(n/a unless all three categories are present).",
        "EPE: mean end-point error against the ground-truth field; folding: % of non-positive Jacobian "
        "determinants; SDlogJ: std of the log Jacobian determinant.",
        f"{NA}: the method outputs an image and no displacement field, or the dataset has no landmarks / no "
        "ground-truth field.",
    ]
    if not has_landmarks:
        notes.append(f"{dataset} has no landmarks (or no method outputs a field): TRE and AUC do not apply.")
    if not cats:
        notes.append(f"{dataset} has no pair categories: only 'all' is reported.")
    return data, TableDoc(columns, rows, f"{dataset}: geometry (TRE, FIRE AUC, field quality)", notes), curve_df

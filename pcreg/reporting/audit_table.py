"""The sanity-audit table: every method's drops next to the fixed-copy oracle.

:func:`audit_table` adds the fixed-copy oracle (:func:`pcreg.evaluation.audit_run.oracle_rows`,
computed on the same pairs and donors), summarises and writes
``results/tables/audit_<dataset>.{csv,md,tex}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pcreg.datasets.format import PreparedDataset
from pcreg.evaluation import audit
from pcreg.evaluation.audit_run import oracle_rows
from pcreg.reporting.tables import Run, TableDoc, fmt_ci, fmt_value, write_doc


def _explain(label: str, row: dict) -> str:
    if str(row["verdict"]).startswith("not audited (method failed"):
        return f"{label}: {row['verdict']}."
    drop = row["ncc_drop_shuffled"]
    ret = row["retained_shuffled"]
    if np.isfinite(ret):
        retained = (f"retains {100 * ret:.0f}% of its above-chance NCC (95% CI {100 * row['retained_ci_low']:.0f}"
                    f"–{100 * row['retained_ci_high']:.0f}%)")
    else:
        retained = "has no NCC above chance"
    text = (f"{label}: NCC {row['ncc_normal']:.3f} on its own pairs, {row['ncc_shuffled']:.3f} with another pair's "
            f"moving image (drop {drop:.3f}; chance {row['chance_ncc']:.3f}) and {row['ncc_blank']:.3f} with a blank "
            f"moving image (drop {row['ncc_drop_blank']:.3f}); it {retained} → {row['verdict']}.")
    if row["geo_check"] != "n/a":
        text += (f" Geometry: its field improves the pair's {row['geo_metric']} by {row['geo_gain_normal']:.2f} px on "
                 f"the true moving image and by {row['geo_gain_shuffled']:.2f} px on another pair's "
                 f"({row['geo_check']}).")
    if row["verdict"] == "copies fixed?":
        text += (" At least half of its advantage over chance survives with the wrong moving image: its intensity "
                 "scores largely measure how well it reproduces the fixed image, not registration.")
    return text


def audit_doc(summary: pd.DataFrame, labels: dict[str, str], dataset: str, n_pairs: int, seed: int,
              blank: str, unit: str = "pair", n_units: int | None = None, geo_metric: str = "n/a") -> TableDoc:
    """The audit table: scores under each condition, the drops, the retained fraction with its CI, the
    geometric test and the verdict."""
    n_units = n_pairs if n_units is None else n_units
    columns = ["Method", "NCC", "NCC blank", "Δ blank", "NCC other pair", "Δ other pair", "SSIM", "Δ SSIM blank",
               "Δ SSIM other", "PSNR (dB)", "Δ PSNR blank", "Δ PSNR other", "Chance NCC", "Retained", "95% CI",
               "Geo gain own (px)", "Geo gain other (px)", "Verdict"]
    rows: list[list[str] | str] = []
    for r in summary.to_dict("records"):
        rows.append([
            labels.get(r["method"], r["method"]),
            fmt_value(r["ncc_normal"], 3), fmt_value(r["ncc_blank"], 3), fmt_value(r["ncc_drop_blank"], 3),
            fmt_value(r["ncc_shuffled"], 3), fmt_value(r["ncc_drop_shuffled"], 3),
            fmt_value(r["ssim_normal"], 3), fmt_value(r["ssim_drop_blank"], 3), fmt_value(r["ssim_drop_shuffled"], 3),
            fmt_value(r["psnr_normal"], 2), fmt_value(r["psnr_drop_blank"], 2), fmt_value(r["psnr_drop_shuffled"], 2),
            fmt_value(r["chance_ncc"], 3), fmt_value(r["retained_shuffled"], 2),
            fmt_ci(r["retained_ci_low"], r["retained_ci_high"], 2),
            fmt_value(r["geo_gain_normal"], 2), fmt_value(r["geo_gain_shuffled"], 2), r["verdict"],
        ])
    blank_text = "a constant image at the moving image's mean" if blank == "mean" else "an all-zero image"
    notes = [
        f"{n_pairs} test pairs drawn with seed {seed}; each method is re-run with the moving image replaced by "
        f"(a) {blank_text} ('blank') and (b) the moving image of another pair ('other pair', the same donor pairs "
        "for every method). Δ = mean over pairs of (normal − modified); a constant output scores NCC 0.",
        "A registration method must lose its advantage when given the wrong moving image. Chance NCC = NCC of the "
        "other pair's moving image with the fixed image (what the unregistered input scores). Retained = (NCC other "
        "pair − chance) / (NCC − chance): 0 for identity, 1 for the fixed-copy oracle; 95% CI: percentile "
        f"bootstrap over the audited pairs' {unit}s ({n_units} units; donors never share a {unit} with the fixed "
        f"image). Verdict: 'copies fixed?' when the whole CI is ≥ {audit.RETAINED_COPY}, 'uses moving' when it is "
        f"below, 'inconclusive' when it straddles it or NCC − chance < {audit.MARGIN_MIN}.",
        f"Geometric test (methods with a field): the field returned for the fixed image and another pair's moving "
        f"image is scored against the fixed pair's own ground truth ({geo_metric}); Geo gain = mean over pairs of "
        "(identity field's error − the field's error), for the true moving image ('own') and another pair's "
        f"('other'). A registering field gains on its own pair and not on another's (≤ {audit.GEO_TOLERANCE:.0%} of "
        "the identity error): then the verdict is 'uses moving (geometry)' whatever the intensities retain, since "
        "a deformable method can also warp unrelated content into the fixed image's shape.",
        *[_explain(labels.get(r["method"], r["method"]), r) for r in summary.to_dict("records")],
    ]
    return TableDoc(columns, rows, f"{dataset}: sanity audit (registration or copying of the fixed image?)", notes)


def audit_table(data_root: Path, runs: Sequence[Run], audit_csvs: Sequence[Path], out_stem: Path, dataset: str, *,
                n_pairs: int | None, seed: int, blank: str = "mean") -> list[Path]:
    """Combine the runs' audit CSVs with the fixed-copy oracle and write the audit table."""
    frames = [oracle_rows(data_root, n_pairs=n_pairs, seed=seed, blank=blank)]
    failed: dict[str, str] = {}  # a method that failed before its first pair: a CSV of one row with the reason
    for p in audit_csvs:
        frame = pd.read_csv(p, dtype={"pair_id": str, "method": str, "cluster": str, "reason": str})
        if "reason" in frame.columns and "ncc" not in frame.columns:
            failed.update(zip(frame["method"], frame["reason"].fillna("")))
        else:
            frames.append(frame)
    rows = pd.concat(frames, ignore_index=True)
    summary = audit.audit_summary(rows, seed=seed)
    # Outputs made elsewhere may lack some audit inputs (NaN rows, see audit_run): no verdict on a partial audit.
    unscored = set(rows.loc[rows["ncc"].isna(), "method"])
    summary.loc[summary["method"].isin(unscored), "verdict"] = "not audited (outputs missing)"
    if failed:
        extra = pd.DataFrame({"method": list(failed), "verdict": [f"not audited (method failed: {why})"
                                                                  for why in failed.values()]})
        summary = pd.concat([summary, extra], ignore_index=True)
    test = PreparedDataset(data_root).split("test")
    geo_metric = "EPE" if test.field is not None else "TRE" if test.landmarks else "n/a"
    summary["geo_metric"] = geo_metric
    labels = {audit.ORACLE: "Fixed-copy oracle", **{r.id: r.label for r in runs}}
    summary.insert(1, "label", summary["method"].map(labels).fillna(summary["method"]))
    summary.insert(0, "dataset", dataset)
    n = int(summary["n_pairs"].iloc[0])
    n_units = int(summary["n_units"].iloc[0])
    unit = "pair" if n_units == n and (test.manifest["cluster"] == test.manifest["pair_id"]).all() else "cluster"
    doc = audit_doc(summary, labels, dataset, n, seed, blank, unit=unit, n_units=n_units, geo_metric=geo_metric)
    return write_doc(doc, summary, out_stem)


def skipped_audit_table(runs: Sequence[Run], out_stem: Path, dataset: str, why: str) -> list[Path]:
    """The audit table of a dataset the audit cannot run on: one row per method, verdict "not audited", and why."""
    data = pd.DataFrame({"dataset": dataset, "method": [r.id for r in runs], "label": [r.label for r in runs],
                         "verdict": "not audited"})
    doc = TableDoc(["Method", "Verdict"], [[r.label, "not audited"] for r in runs],
                   f"{dataset}: sanity audit", notes=[why[0].upper() + why[1:] + "."])
    return write_doc(doc, data, out_stem)

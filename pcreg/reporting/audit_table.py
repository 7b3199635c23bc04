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

from pcreg.evaluation import audit
from pcreg.evaluation.audit_run import oracle_rows
from pcreg.reporting.tables import Run, TableDoc, fmt_value, write_doc


def _explain(label: str, row: dict) -> str:
    drop = row["ncc_drop_shuffled"]
    ret = row["retained_shuffled"]
    retained = f"retains {100 * ret:.0f}% of its above-chance NCC" if np.isfinite(ret) else "has no NCC above chance"
    text = (f"{label}: NCC {row['ncc_normal']:.3f} on its own pairs, {row['ncc_shuffled']:.3f} with another pair's "
            f"moving image (drop {drop:.3f}; chance {row['chance_ncc']:.3f}) and {row['ncc_blank']:.3f} with a blank "
            f"moving image (drop {row['ncc_drop_blank']:.3f}); it {retained} → {row['verdict']}.")
    if row["verdict"] == "copies fixed?":
        text += (" At least half of its advantage over chance survives with the wrong moving image: its intensity "
                 "scores largely measure how well it reproduces the fixed image, not registration.")
    return text


def audit_doc(summary: pd.DataFrame, labels: dict[str, str], dataset: str, n_pairs: int, seed: int,
              blank: str) -> TableDoc:
    """The audit table: scores under each condition, the drops, the retained fraction and the verdict."""
    columns = ["Method", "NCC", "NCC blank", "Δ blank", "NCC other pair", "Δ other pair", "SSIM", "Δ SSIM blank",
               "Δ SSIM other", "PSNR (dB)", "Δ PSNR blank", "Δ PSNR other", "Chance NCC", "Retained", "Verdict"]
    rows: list[list[str] | str] = []
    for r in summary.to_dict("records"):
        rows.append([
            labels.get(r["method"], r["method"]),
            fmt_value(r["ncc_normal"], 3), fmt_value(r["ncc_blank"], 3), fmt_value(r["ncc_drop_blank"], 3),
            fmt_value(r["ncc_shuffled"], 3), fmt_value(r["ncc_drop_shuffled"], 3),
            fmt_value(r["ssim_normal"], 3), fmt_value(r["ssim_drop_blank"], 3), fmt_value(r["ssim_drop_shuffled"], 3),
            fmt_value(r["psnr_normal"], 2), fmt_value(r["psnr_drop_blank"], 2), fmt_value(r["psnr_drop_shuffled"], 2),
            fmt_value(r["chance_ncc"], 3), fmt_value(r["retained_shuffled"], 2), r["verdict"],
        ])
    blank_text = "a constant image at the moving image's mean" if blank == "mean" else "an all-zero image"
    notes = [
        f"{n_pairs} test pairs drawn with seed {seed}; each method is re-run with the moving image replaced by "
        f"(a) {blank_text} ('blank') and (b) the moving image of another pair ('other pair', the same donor pairs "
        "for every method). Δ = mean over pairs of (normal − modified); a constant output scores NCC 0.",
        "A registration method must lose its advantage when given the wrong moving image. Chance NCC = NCC of the "
        "other pair's moving image with the fixed image (what the unregistered input scores). Retained = (NCC other "
        "pair − chance) / (NCC − chance): 0 for identity, 1 for the fixed-copy oracle. Verdict: 'copies fixed?' when "
        f"Retained ≥ {audit.RETAINED_COPY}, 'uses moving' below, 'inconclusive' when NCC − chance < "
        f"{audit.MARGIN_MIN}. A deformable method can also earn this flag by warping unrelated content into the "
        "fixed image's shape; for methods with a field, TRE and EPE (geometry table) measure registration without "
        "relying on intensities.",
        *[_explain(labels.get(r["method"], r["method"]), r) for r in summary.to_dict("records")],
    ]
    return TableDoc(columns, rows, f"{dataset}: sanity audit (registration or copying of the fixed image?)", notes)


def audit_table(data_root: Path, runs: Sequence[Run], audit_csvs: Sequence[Path], out_stem: Path, dataset: str, *,
                n_pairs: int | None, seed: int, blank: str = "mean") -> list[Path]:
    """Combine the runs' audit CSVs with the fixed-copy oracle and write the audit table."""
    frames = [oracle_rows(data_root, n_pairs=n_pairs, seed=seed, blank=blank)]
    frames += [pd.read_csv(p, dtype={"pair_id": str, "method": str}) for p in audit_csvs]
    rows = pd.concat(frames, ignore_index=True)
    summary = audit.audit_summary(rows)
    # Outputs made elsewhere may lack some audit inputs (NaN rows, see audit_run): no verdict on a partial audit.
    unscored = set(rows.loc[rows["ncc"].isna(), "method"])
    summary.loc[summary["method"].isin(unscored), "verdict"] = "not audited (outputs missing)"
    labels = {audit.ORACLE: "Fixed-copy oracle", **{r.id: r.label for r in runs}}
    summary.insert(1, "label", summary["method"].map(labels).fillna(summary["method"]))
    summary.insert(0, "dataset", dataset)
    n = int(summary["n_pairs"].iloc[0])
    doc = audit_doc(summary, labels, dataset, n, seed, blank)
    return write_doc(doc, summary, out_stem)

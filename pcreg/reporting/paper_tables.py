"""The paper's Tables 1-3 in the paper's layout, with the paper's number beside ours.

- Table 1 (:func:`table1`): methods × NCC/SSIM/PSNR, grouped "Traditional
  methods" (the Unregistered/identity row first, as printed) and "Deep learning
  methods". Ablation runs are left to Table 2.
- Table 2 (:func:`ablation_table`): the full model (``pcreg_net``) and the runs of
  group ``ablation``.
- Table 3 (:func:`table3`): intra-frame NCC/SSIM/PSNR and the temporal TNCC and
  TNCG (:mod:`pcreg.evaluation.temporal`), with the odd-only reference row.

The paper's numbers (:mod:`pcreg.reporting.paper_values`) are for the paper's real
datasets; a dataset's ``paper_reference`` (config) names which one to show, and
every paper column says so in its header, e.g. ``NCC (paper, FIRE-Reg-256)``.
Rows the paper prints for methods not run here are kept (ours "not run"), so the
table has the paper's rows; runs the paper does not have are added with "—" as
the paper's value.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pcreg.reporting.paper_values import load_paper_values
from pcreg.reporting.tables import (
    DASH,
    GROUND_TRUTH_NOTE,
    NA,
    Run,
    TableDoc,
    fmt_mean_std,
    fmt_value,
    fmt_with_n,
    is_ground_truth,
)

#: The paper's dataset names as printed.
PAPER_DATASETS = {
    "fire-reg-256": "FIRE-Reg-256",
    "orpam-4k": "OR-PAM-Reg-4K",
    "orpam-temporal-26k": "OR-PAM-Reg-Temporal-26K",
}
INTENSITY = {"ncc": ("NCC", 3), "ssim": ("SSIM", 3), "psnr": ("PSNR (dB)", 2)}
NOT_RUN = "not run"
#: Section of the perfect-registration reference row (after the methods).
CEILING_SECTION = "Reference: perfect registration (not a method)"


def paper_rows(table: int, paper_reference: str | None) -> pd.DataFrame:
    """The paper's printed rows of ``table`` for ``paper_reference`` (wide: one row per printed row)."""
    if not paper_reference:
        return pd.DataFrame(columns=["row", "group", "method_id"])
    df = load_paper_values()
    df = df[(df["table"] == table) & (df["dataset"] == paper_reference)]
    if df.empty:
        return pd.DataFrame(columns=["row", "group", "method_id"])
    wide = df.pivot_table(index=["row", "group", "method_id"], columns="metric", values="value", aggfunc="first",
                          sort=False).reset_index()
    order = {r: i for i, r in enumerate(dict.fromkeys(df["row"]))}
    return wide.sort_values("row", key=lambda s: s.map(order)).reset_index(drop=True)


def paper_header(header: str, paper_reference: str) -> str:
    """``NCC (paper, FIRE-Reg-256)``: the paper's number on its own real dataset."""
    return f"{header} (paper, {PAPER_DATASETS.get(paper_reference, paper_reference)})"


def _paper_note(table: int, paper_reference: str | None, dataset: str) -> str:
    if not paper_reference:
        return (f"No paper_reference is configured for {dataset}: the paper's numbers are not shown. "
                "Set datasets.<name>.paper_reference to one of " + ", ".join(PAPER_DATASETS) + ".")
    name = PAPER_DATASETS.get(paper_reference, paper_reference)
    return (f"Columns marked 'paper, {name}' are the numbers printed in the PCReg-Net paper's Table {table} for "
            f"{name} (pcreg/data/paper_values.csv); the other columns are this suite's results on {dataset}. They are "
            "different datasets unless the two names match; — = the paper prints no value.")


#: The SSIM variant of the paper-layout tables (the paper does not say which it used).
SSIM_NOTE = ("SSIM: Gaussian 11x11 window, sigma 1.5 (Wang et al. 2004, as in common registration code and most "
             "likely the paper); scikit-image's 7x7 uniform variant is in the summary table and pairs.csv "
             "(ssim_uniform7). (n=K): the metric has a value on K of the pairs only (e.g. a degenerate output).")


def _run_stats(summary: pd.DataFrame) -> dict[str, dict]:
    return {r["run"]: r for r in summary.to_dict("records")}


def seed_stats(per_seed: Sequence[dict], metrics: Sequence[str]) -> dict:
    """Mean and sd (ddof 1; 0 for one seed) over training seeds of each metric's test-set mean, in the keys
    ``<m>_mean`` / ``<m>_std`` the table cells read, plus ``n_pairs`` and ``<m>_n`` of the first seed."""
    out: dict[str, object] = {"n_pairs": per_seed[0].get("n_pairs")}
    for m in metrics:
        vals = np.array([float(r.get(f"{m}_mean", np.nan)) for r in per_seed], np.float64)
        vals = vals[np.isfinite(vals)]
        out[f"{m}_mean"] = float(vals.mean()) if vals.size else np.nan
        out[f"{m}_std"] = float(vals.std(ddof=1)) if vals.size > 1 else (0.0 if vals.size else np.nan)
        out[f"{m}_n"] = per_seed[0].get(f"{m}_n")
        out[f"{m}_seeds"] = ";".join(f"{v:.6g}" for v in vals)
    return out


def _metric_cells(stats_row: dict | None, paper_row: dict | None, metrics: dict[str, tuple[str, int]],
                  with_paper: bool) -> list[str]:
    cells = []
    for m, (_, dec) in metrics.items():
        if stats_row is None:
            cells.append(NOT_RUN)
        else:
            cells.append(fmt_with_n(fmt_mean_std(stats_row.get(f"{m}_mean"), stats_row.get(f"{m}_std"), dec),
                                    stats_row.get(f"{m}_n"), stats_row.get("n_pairs")))
        if with_paper:
            value = None if paper_row is None else paper_row.get(m)
            cells.append(fmt_value(value, dec, missing=DASH))
    return cells


def _csv_row(section: str, run: Run | None, paper_row: dict | None, stats_row: dict | None,
             metrics: Sequence[str], paper_reference: str | None, extra: Sequence[str] = ()) -> dict:
    row: dict[str, object] = {
        "section": section, "run": run.id if run else "", "label": run.label if run else "",
        "paper_row": paper_row["row"] if paper_row else "", "paper_dataset": paper_reference or "",
        "n_pairs": stats_row.get("n_pairs", np.nan) if stats_row else np.nan,
    }
    for m in [*metrics, *extra]:
        for k in ("mean", "std", "ci_low", "ci_high"):
            row[f"{m}_{k}"] = stats_row.get(f"{m}_{k}", np.nan) if stats_row else np.nan
        row[f"{m}_paper"] = (paper_row.get(m, np.nan) if paper_row else np.nan)
    return row


def _columns(first: str, metrics: dict[str, tuple[str, int]], paper_reference: str | None,
             with_paper: bool) -> list[str]:
    cols = [first]
    for header, _ in metrics.values():
        cols.append(header)
        if with_paper:
            cols.append(paper_header(header, paper_reference or ""))
    return cols


def _layout(sections: Sequence[tuple[str, set[str]]], runs: Sequence[Run], paper: pd.DataFrame
            ) -> list[tuple[str, Run | None, dict | None]]:
    """(section, run or None, paper row or None) in the paper's order, then the runs the paper lacks."""
    by_id = {r.id: r for r in runs}
    paper_recs = paper.to_dict("records")
    used: set[str] = set()
    out = []
    for title, groups in sections:
        for prow in paper_recs:
            if prow["group"] in groups:
                run = by_id.get(prow["method_id"]) if prow["method_id"] else None
                if run is not None:
                    used.add(run.id)
                out.append((title, run, prow))
        for run in runs:
            if run.id not in used and run.group in groups:
                used.add(run.id)
                out.append((title, run, None))
    return out


def table1(summary: pd.DataFrame, runs: Sequence[Run], dataset: str,
           paper_reference: str | None) -> tuple[pd.DataFrame, TableDoc]:
    """The paper's Table 1 layout for ``dataset`` from a :func:`pcreg.reporting.tables.summarize_runs` frame."""
    paper = paper_rows(1, paper_reference)
    with_paper = not paper.empty
    sections = [("Traditional methods", {"reference", "traditional"}), ("Deep learning methods", {"deep"})]
    stats = _run_stats(summary)
    rows: list[list[str] | str] = []
    data = []
    current = None
    methods = [r for r in runs if r.group != "ablation" and not is_ground_truth(r)]
    ceiling = [(CEILING_SECTION, r, None) for r in runs if is_ground_truth(r)]
    for title, run, prow in [*_layout(sections, methods, paper), *ceiling]:
        if title != current:
            rows.append(title)
            current = title
        srow = stats.get(run.id) if run else None
        label = run.label if run else f"{prow['row']}"
        rows.append([label, *_metric_cells(srow, prow, INTENSITY, with_paper)])
        data.append(_csv_row(title, run, prow, srow, list(INTENSITY), paper_reference))
    notes = [f"{dataset}: mean ± std over the test pairs (registered vs fixed image, data range 1). "
             "95% CIs and paired tests: stats table.", SSIM_NOTE, _paper_note(1, paper_reference, dataset)]
    if paper_reference and not with_paper:
        notes[-1] = (f"The paper's Table 1 has no values for {PAPER_DATASETS.get(paper_reference, paper_reference)} "
                     "(this dataset's paper_reference): no paper columns.")
    if any(r.group == "ablation" for r in runs):
        notes.append("Ablation runs are in the ablation table (the paper's Table 2).")
    if ceiling:
        notes.append(GROUND_TRUTH_NOTE)
    caption = f"Table 1 layout: {dataset}, comparison of methods"
    return pd.DataFrame(data), TableDoc(_columns("Method", INTENSITY, paper_reference, with_paper), rows, caption,
                                        notes)


def ablation_table(summary: pd.DataFrame, runs: Sequence[Run], dataset: str,
                   paper_reference: str | None, full_model: str) -> tuple[pd.DataFrame, TableDoc]:
    """The paper's Table 2 layout: the full model (run ``full_model``, the config's reference) and every
    run of group ``ablation``."""
    paper = paper_rows(2, paper_reference)
    with_paper = not paper.empty
    chosen = [r for r in runs if (r.id == full_model or r.group == "ablation") and not r.seed_of]
    # The paper prints the full model in its ablation table; map it into the "ablation" section.
    paper = paper.assign(group="ablation")
    stats = _run_stats(summary)
    rows: list[list[str] | str] = []
    data = []
    ceiling = [("ceiling", r, None) for r in runs if is_ground_truth(r)]
    for _, run, prow in [*_layout([("Ablation", {"ablation", "deep", "reference", "traditional"})], chosen, paper),
                         *ceiling]:
        label = run.label if run else prow["row"]
        seeds = [run, *[r for r in runs if r.seed_of == run.id]] if run else []
        per_seed = [stats[r.id] for r in seeds if r.id in stats]
        srow = seed_stats(per_seed, list(INTENSITY)) if per_seed else None
        # Epochs and optimizer steps trained (model.json; reporting.training_status), else the configured epochs.
        trained = (getattr(run, "training", None) or {}) if run else {}
        epochs = (trained.get("epochs_trained") or run.params.get("epochs")) if run else None
        steps = trained.get("steps")
        flat = sum(bool((getattr(r, "training", None) or {}).get("did_not_learn")) for r in seeds)
        rows.append([label, *_metric_cells(srow, prow, INTENSITY, with_paper),
                     DASH if epochs is None else (f"{epochs} ({steps} steps)" if steps is not None else str(epochs)),
                     str(len(per_seed)) if run and run.trainable else DASH,
                     f"{flat}/{len(seeds)}" if run and run.trainable else DASH])
        rec = _csv_row("reference" if run and is_ground_truth(run) else "ablation", run, prow, srow,
                       list(INTENSITY), paper_reference)
        rec.update(epochs=epochs, n_seeds=len(per_seed) if run and run.trainable else 0, seeds_did_not_learn=flat,
                   seed_runs=";".join(r.id for r in seeds))
        data.append(rec)
    notes = [f"{dataset}: each cell is the mean ± sd over training seeds (column Seeds) of the test-set mean; "
             "seed 0 is the run itself (its outputs are the row's in every other table), seed k its run "
             "<id>.seed<k> (config `seeds`), trained from config seed + k. A spread across seeds larger than "
             "a difference between rows means that difference is seed luck, not architecture. 'Did not learn' "
             "counts seeds whose best validation value never beat the one before training.",
             SSIM_NOTE, _paper_note(2, paper_reference, dataset)]
    if with_paper:
        notes.append("The paper states its ablations were trained for 20 epochs, yet its 'Full model' row repeats "
                     "Table 1 (100 epochs) digit for digit; the Epochs column gives this suite's epochs (and optimizer "
                     "steps) trained by seed 0.")
    if full_model not in {r.id for r in runs}:
        notes.append(f"No {full_model} run on {dataset}: the full-model row is not run.")
    if ceiling:
        notes.append(GROUND_TRUTH_NOTE)
    columns = _columns("Configuration", INTENSITY, paper_reference, with_paper) + ["Epochs", "Seeds",
                                                                                   "Did not learn"]
    return pd.DataFrame(data), TableDoc(columns, rows, f"Table 2 layout: {dataset}, ablation of PCReg-Net", notes)


# ----------------------------------------------------------------------------------------------------- Table 3


def is_temporal(manifest: pd.DataFrame) -> bool:
    """True when every pair has a sequence id and a frame number (the temporal metrics apply)."""
    if "sequence" not in manifest or "frame" not in manifest or manifest.empty:
        return False
    seq = manifest["sequence"]
    frame = pd.to_numeric(manifest["frame"], errors="coerce")
    return bool(seq.notna().all() and (seq.astype(str) != "").all() and frame.notna().all())


def temporal_by_run(data_root: Path, runs: Sequence[Run]) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """TNCC/TNCG of each run (from its ``registered.npy``) and the odd-only reference.

    Per run: ``tncc``, ``tncc_std`` (over consecutive frame pairs), ``tncg``,
    ``tncg_std`` (std of the per-frame-pair gaps), ``mean_abs_sequence_tncg``,
    ``n_frame_pairs``. The reference: ``odd_only_tncc``, ``odd_only_tncc_std``.
    """
    from pcreg.datasets.format import PreparedDataset
    from pcreg.evaluation.temporal import temporal_pairs, temporal_summary

    test = PreparedDataset(data_root).split("test")
    out: dict[str, dict[str, float]] = {}
    ref: dict[str, float] = {}
    for run in runs:
        registered = np.load(run.result_dir / "registered.npy", mmap_mode="r")
        tp = temporal_pairs(test.manifest["sequence"].astype(str), test.manifest["frame"].astype(int), test.fixed,
                            registered)
        s = temporal_summary(tp)
        gaps = (tp["ncc_odd"] - tp["ncc_merged"]).to_numpy(np.float64)
        out[run.id] = {**s, "tncc_std": float(np.nanstd(tp["ncc_merged"], ddof=1)) if len(tp) > 1 else np.nan,
                       "tncg_std": float(np.nanstd(gaps, ddof=1)) if len(tp) > 1 else np.nan}
        ref = {"odd_only_tncc": s["odd_only_tncc"],
               "odd_only_tncc_std": float(np.nanstd(tp["ncc_odd"], ddof=1)) if len(tp) > 1 else np.nan,
               "n_frame_pairs": s["n_frame_pairs"]}
    return out, ref


def table3(summary: pd.DataFrame, runs: Sequence[Run], dataset: str, paper_reference: str | None,
           temporal: dict[str, dict[str, float]] | None, odd_only: dict[str, float] | None
           ) -> tuple[pd.DataFrame, TableDoc]:
    """The paper's Table 3 layout: intra-frame NCC/SSIM/PSNR, temporal TNCC and TNCG, odd-only reference row.

    ``temporal`` is None for a dataset without sequences: TNCC/TNCG are then ``n/a``.
    """
    paper = paper_rows(3, paper_reference)
    with_paper = not paper.empty
    metrics = {**INTENSITY, "tncc": ("TNCC", 3), "tncg": ("TNCG", 3)}
    stats = _run_stats(summary)
    # Odd-only is a row of its own below the methods; the paper's groups are reference/deep.
    odd_paper = [p for p in paper.to_dict("records") if not p["method_id"]]
    method_paper = paper[paper["method_id"] != ""]
    rows: list[list[str] | str] = []
    data = []
    chosen = [r for r in runs if r.group != "ablation" and not is_ground_truth(r)]
    ceiling = [("ceiling", r, None) for r in runs if is_ground_truth(r)]
    layout = [*_layout([("Methods", {"reference", "traditional", "deep"})], chosen, method_paper), *ceiling]
    for section, run, prow in layout:
        srow = dict(stats.get(run.id, {})) if run else None
        if srow is not None:
            t = (temporal or {}).get(run.id)
            srow["tncc_mean"] = t["tncc"] if t else np.nan
            srow["tncc_std"] = t["tncc_std"] if t else np.nan
            srow["tncg_mean"] = t["tncg"] if t else np.nan
            srow["tncg_std"] = t["tncg_std"] if t else np.nan
        label = run.label if run else prow["row"]
        rows.append([label, *_metric_cells(srow, prow, metrics, with_paper)])
        rec = _csv_row("reference" if section == "ceiling" else "methods", run, prow, srow, list(metrics),
                       paper_reference)
        if run and temporal and run.id in temporal:
            rec["mean_abs_sequence_tncg"] = temporal[run.id]["mean_abs_sequence_tncg"]
            rec["n_frame_pairs"] = temporal[run.id]["n_frame_pairs"]
        data.append(rec)
    prow = odd_paper[0] if odd_paper else None
    odd_row = {"tncc_mean": odd_only["odd_only_tncc"], "tncc_std": odd_only["odd_only_tncc_std"]} if odd_only else {}
    cells = ["Odd-only reference"]
    for m, (_, dec) in metrics.items():
        if m == "tncc":
            cells.append(fmt_mean_std(odd_row.get("tncc_mean"), odd_row.get("tncc_std"), dec) if odd_only else NA)
        else:
            cells.append(DASH)
        if with_paper:
            cells.append(fmt_value(prow.get(m) if prow else None, dec, missing=DASH))
    rows.append(cells)
    rec = _csv_row("reference", None, prow, odd_row, list(metrics), paper_reference)
    rec["label"] = "Odd-only reference"
    data.append(rec)
    notes = [
        f"{dataset}: intra-frame metrics are mean ± std over test pairs (registered even-column image vs the "
        "odd-column image).",
        "Merged frame = odd columns interleaved with the registered even columns; TNCC = mean NCC of consecutive "
        "merged frames (± std over frame pairs); odd-only reference = the same over the odd-column images alone; "
        "TNCG = odd-only TNCC − TNCC (signed; ± std of the per-frame-pair gaps). The CSV also has the mean absolute "
        "per-sequence gap (mean_abs_sequence_tncg).",
        SSIM_NOTE,
        _paper_note(3, paper_reference, dataset),
    ]
    if with_paper and "tncg" in paper.columns:
        notes.append("The paper's printed TNCG (0.002 for both rows) cannot be reproduced from its printed TNCCs "
                     "with the signed definition (see pcreg/data/README.md).")
    if temporal is None:
        notes.append(f"{dataset} has no frame sequences: TNCC and TNCG do not apply (n/a).")
    if ceiling:
        notes.append(GROUND_TRUTH_NOTE)
    caption = f"Table 3 layout: {dataset}, intra-frame and temporal metrics"
    return pd.DataFrame(data), TableDoc(_columns("Setting", metrics, paper_reference, with_paper), rows, caption,
                                        notes)

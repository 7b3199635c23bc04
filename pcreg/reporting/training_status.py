"""How each learned run's training ended, as the tables and figures show it (reporting layer).

A learned run's ``model/model.json`` records ``converged`` (stopped on the validation
plateau after its minimum steps, and learned), ``did_not_learn``, ``steps`` and
``stop_reason`` (:class:`pcreg.methods.training.TrainResult`). A run that did not learn
gets :data:`DID_NOT_LEARN` on its label; one that is otherwise not converged is marked
in every table it appears in: its label gets :data:`MARK`, the table's notes say what
the mark means and list the steps trained per learned run, and the CSV gets
``converged`` / ``did_not_learn`` / ``steps`` / ``stop_reason`` columns.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

#: Appended to the label of a learned run that stopped on its budget before the validation plateau.
MARK = "†"
#: ``stop_reason`` of a run whose fit failed, and the mark on its label (its pairs are all failed).
FIT_FAILED = "fit failed"
FAILED_MARK = "(failed)"
#: Appended to the label of a learned run whose best validation value never beat the one before training
#: (model.json ``did_not_learn``; pcreg.methods.training): not converged, whatever stopped it.
DID_NOT_LEARN = "‡ did not learn"
#: Added to the label of a run whose training batches had ground-truth fields used by its loss (model.json
#: ``gt_field_supervision``): computed from what training did, never typed into a config label.
SUPERVISED = "(GT-field sup.)"
TRAINING_COLUMNS = ["converged", "did_not_learn", "steps", "stop_reason", "epochs_trained"]
#: Params that make up a run's training criterion (runs compared in one table should share them).
CRITERION_PARAMS = ("epochs", "max_steps", "patience", "min_delta")


def read_status(result_dir: Path) -> dict[str, Any]:
    """``converged``/``steps``/``stop_reason`` from ``<result_dir>/model/model.json`` ({} if absent)."""
    path = Path(result_dir) / "model" / "model.json"
    if not path.is_file():
        return {}
    info = json.loads(path.read_text())
    if info.get("status") == "failed":  # pcreg.methods.runner.write_failed_model: the fit raised
        return {"converged": False, "did_not_learn": False, "steps": None, "stop_reason": FIT_FAILED,
                "epochs_trained": None}
    if "converged" not in info:  # a model.json written before the harness recorded it
        return {"converged": False, "did_not_learn": None, "steps": None, "stop_reason": "unknown",
                "epochs_trained": None}
    status = {k: info.get(k) for k in TRAINING_COLUMNS}
    status["did_not_learn"] = bool(info.get("did_not_learn", False))
    status["gt_field_supervision"] = bool(info.get("gt_field_supervision", False))
    if status["did_not_learn"]:
        status["converged"] = False
    return status


def base_label(label: str) -> str:
    """A label without the training marks."""
    for mark in (DID_NOT_LEARN, MARK):
        label = label.removesuffix(" " + mark)
    return label


def with_status(runs: Sequence[Any]) -> list[Any]:
    """Runs (:class:`pcreg.reporting.tables.Run`) with ``training`` filled and :data:`MARK` on non-converged labels."""
    out = []
    for run in runs:
        status = read_status(run.result_dir) if run.trainable else {}
        label = run.label
        if status.get("stop_reason") == FIT_FAILED:
            label = label if label.endswith(FAILED_MARK) else f"{label} {FAILED_MARK}"
        else:
            if status.get("gt_field_supervision") and SUPERVISED not in label:
                label = f"{label} {SUPERVISED}"
            if status and status.get("did_not_learn") and not label.endswith(DID_NOT_LEARN):
                label = f"{base_label(label)} {DID_NOT_LEARN}"
            elif status and not status.get("converged") and not label.endswith(MARK):
                label = f"{label} {MARK}"
        out.append(replace(run, label=label, training=status))
    return out


def training_notes(runs: Sequence[Any]) -> list[str]:
    """Table notes: steps per learned run, differing training criteria, what :data:`MARK` means."""
    learned = [r for r in runs if getattr(r, "training", None)]
    if not learned:
        return []
    parts = []
    for r in learned:
        t = r.training
        steps = "?" if t.get("steps") is None else str(t["steps"])
        state = "converged" if t.get("converged") else f"not converged, {t.get('stop_reason')}"
        if t.get("did_not_learn"):
            state = f"did not learn, {t.get('stop_reason')}"
        parts.append(f"{base_label(r.label)} {steps} ({state})")
    notes = ["Training steps per learned run: " + "; ".join(parts) + "."]
    for method in dict.fromkeys(r.method for r in learned):  # runs of one method (e.g. ablations) should agree
        criteria = {base_label(r.label): tuple((r.params or {}).get(k) for k in CRITERION_PARAMS)
                    for r in learned if r.method == method}
        if len(set(criteria.values())) > 1:
            notes.append(f"{method} runs trained to different criteria (" + ", ".join(CRITERION_PARAMS) + "): "
                         + "; ".join(f"{name} {values}" for name, values in criteria.items()) + ".")
    if any(r.training.get("did_not_learn") for r in learned):
        notes.append(f"{DID_NOT_LEARN}: the run's best validation value never beat its validation before "
                     "training (else its first defined one) by learn_min_gain (0.02 NCC; 2 % of EPE/TRE/loss); "
                     "not converged, whatever stopped it: its row shows an untrained network.")
    if any(not r.training.get("converged") and not r.training.get("did_not_learn")
           and r.training.get("stop_reason") != FIT_FAILED for r in learned):
        notes.append(f"{MARK} not converged: training stopped by its step/epoch budget before the validation "
                     "plateau; its numbers may improve with more training.")
    return notes


#: Pre-alignment param value -> the method id of the row that shows the pre-alignment alone.
PREALIGN_ROWS = {"ants-affine": "ants_affine", "global-start": "global_start"}


def prealign_notes(runs: Sequence[Any]) -> list[str]:
    """For each learned run composed with a pre-alignment: the network's gain over the pre-alignment alone
    (its own row, method ``ants_affine``), in test EPE where both have it, else TRE, from their pairs.csv."""
    notes = []
    alone = {r.method: r for r in runs if r.method in PREALIGN_ROWS.values()}
    for run in runs:
        mode = (getattr(run, "params", None) or {}).get("prealign", "none")
        if not getattr(run, "trainable", False) or mode in (None, "none"):
            continue
        ref = alone.get(PREALIGN_ROWS.get(mode, ""))
        if ref is None:
            notes.append(f"{base_label(run.label)} is pre-aligned with {mode}, whose row is not in this table.")
            continue
        try:
            ours, theirs = pd.read_csv(run.pairs_csv), pd.read_csv(ref.pairs_csv)
        except (OSError, pd.errors.EmptyDataError):
            continue
        for col, name in (("epe_px", "EPE"), ("tre_px", "TRE")):
            a = pd.to_numeric(ours.get(col), errors="coerce").mean() if col in ours else float("nan")
            b = pd.to_numeric(theirs.get(col), errors="coerce").mean() if col in theirs else float("nan")
            if pd.notna(a) and pd.notna(b) and b > 0:
                notes.append(f"{base_label(run.label)}: test {name} {a:.2f} px against {b:.2f} px for its "
                             f"pre-alignment alone ({ref.label}): the network's gain is {100 * (b - a) / b:.1f} %.")
                break
    return notes


def add_training_columns(data: pd.DataFrame, runs: Sequence[Any]) -> pd.DataFrame:
    """``data`` with ``converged``/``steps``/``stop_reason`` per row (by its ``run`` column; empty for others)."""
    if "run" not in data.columns:
        return data
    by_id = {r.id: getattr(r, "training", None) or {} for r in runs}
    data = data.copy()
    for col in TRAINING_COLUMNS:
        data[col] = [by_id.get(run, {}).get(col, "") if isinstance(run, str) else "" for run in data["run"]]
        data[col] = data[col].astype(object).where(data[col].notna(), "")
    return data


def write_run_doc(doc: Any, data: pd.DataFrame, stem: Path, runs: Sequence[Any]) -> list[Path]:
    """:func:`pcreg.reporting.tables.write_doc` with the training notes and CSV columns of ``runs`` added."""
    from pcreg.evaluation.convention_check import convention_notes
    from pcreg.reporting.tables import write_doc

    notes = training_notes(runs) + prealign_notes(runs) + failure_notes(runs) + convention_notes(runs)
    doc.notes = list(doc.notes) + [n for n in notes if n not in doc.notes]
    return write_doc(doc, add_training_columns(data, runs), stem)


def failure_notes(runs: Sequence[Any]) -> list[str]:
    """Table notes: each run with failed pairs, how many and why (its most frequent reasons), from its pairs.csv.

    A method whose fit or set-up failed has every pair failed with the reason (pcreg.methods.runner), so the
    tables say so instead of the benchmark stopping."""
    notes = []
    for run in runs:
        path = Path(run.pairs_csv)
        if not path.is_file():
            continue
        df = pd.read_csv(path, dtype={"reason": str}, usecols=lambda c: c in ("failed", "reason"))
        if "failed" not in df.columns:
            continue
        failed = df["failed"].astype(str).str.lower().isin(["true", "1"])
        if not failed.any():
            continue
        reasons = df.loc[failed, "reason"].fillna("").value_counts() if "reason" in df.columns else pd.Series()
        why = "; ".join(f"{reason or 'no reason given'}" + (f" ({n} pairs)" if len(reasons) > 1 else "")
                        for reason, n in reasons.head(3).items())
        label = run.label.removesuffix(" " + FAILED_MARK).removesuffix(" " + MARK)
        amount = "every pair" if failed.all() else f"{int(failed.sum())} of {len(df)} pairs"
        notes.append(f"{label} failed on {amount}: {why}. Failed pairs are scored as unregistered (the moving image).")
    return notes

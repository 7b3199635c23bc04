"""Non-converged learned runs are marked in tables (label mark, notes, CSV columns) and figures."""

from __future__ import annotations

import json

import pandas as pd

from pcreg.tables import Run, overview_doc, summarize_runs
from pcreg.training_status import MARK, read_status, with_status, write_run_doc


def _run(tmp_path, run_id, trainable, status=None):
    folder = tmp_path / run_id
    (folder / "model").mkdir(parents=True)
    pd.DataFrame({"pair_id": ["a", "b"], "failed": [False, False], "ncc": [0.5, 0.7]}).to_csv(
        folder / "pairs.csv", index=False)
    if status is not None:
        (folder / "model" / "model.json").write_text(json.dumps({"run": run_id, **status}))
    return Run(run_id, run_id.upper(), "deep" if trainable else "traditional", folder / "pairs.csv",
               trainable=trainable)


def test_not_converged_runs_are_marked_in_labels_notes_and_csv(tmp_path):
    runs = with_status([
        _run(tmp_path, "sift", False),
        _run(tmp_path, "net", True, {"converged": True, "steps": 120, "stop_reason": "plateau"}),
        _run(tmp_path, "vxm", True, {"converged": False, "steps": 480, "stop_reason": "max_steps"}),
        _run(tmp_path, "old", True, {}),  # a model.json from before the harness recorded its status
    ])
    labels = {r.id: r.label for r in runs}
    assert labels == {"sift": "SIFT", "net": "NET", "vxm": f"VXM {MARK}", "old": f"OLD {MARK}"}
    assert read_status(tmp_path / "sift") == {}
    summary = summarize_runs(runs, metrics={"ncc": ("NCC", 3)})
    paths = write_run_doc(overview_doc(summary, "t", metrics={"ncc": ("NCC", 3)}), summary, tmp_path / "t", runs)
    csv = pd.read_csv(paths[0], keep_default_na=False, dtype=str).set_index("run")
    assert csv["steps"].to_dict() == {"sift": "", "net": "120", "vxm": "480", "old": ""}
    assert csv["converged"].to_dict() == {"sift": "", "net": "True", "vxm": "False", "old": "False"}
    md = paths[1].read_text()
    assert f"VXM {MARK}" in md and "NET 120 (converged)" in md and "VXM 480 (not converged, max_steps)" in md
    assert f"{MARK} not converged" in md


def test_tables_without_learned_runs_get_no_training_note(tmp_path):
    runs = with_status([_run(tmp_path, "sift", False)])
    summary = summarize_runs(runs, metrics={"ncc": ("NCC", 3)})
    paths = write_run_doc(overview_doc(summary, "t", metrics={"ncc": ("NCC", 3)}), summary, tmp_path / "t", runs)
    assert "Training steps" not in paths[1].read_text()

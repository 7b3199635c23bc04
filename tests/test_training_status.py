"""Non-converged learned runs are marked in tables (label mark, notes, CSV columns) and figures."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from pcreg.reporting.tables import Run, overview_doc, summarize_runs
from pcreg.reporting.training_status import MARK, read_status, with_status, write_run_doc


def _run(tmp_path, run_id, trainable, status=None, params=None):
    folder = tmp_path / run_id
    (folder / "model").mkdir(parents=True)
    pd.DataFrame({"pair_id": ["a", "b"], "failed": [False, False], "ncc": [0.5, 0.7]}).to_csv(
        folder / "pairs.csv", index=False)
    if status is not None:
        (folder / "model" / "model.json").write_text(json.dumps({"run": run_id, **status}))
    return Run(run_id, run_id.upper(), "deep" if trainable else "traditional", folder / "pairs.csv",
               method="net", trainable=trainable, params=params or {})


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
    assert csv["epochs_trained"].to_dict()["old"] == ""
    assert csv["converged"].to_dict() == {"sift": "", "net": "True", "vxm": "False", "old": "False"}
    md = paths[1].read_text()
    assert f"VXM {MARK}" in md and "NET 120 (converged)" in md and "VXM 480 (not converged, max_steps)" in md
    assert f"{MARK} not converged" in md
    assert "different criteria" not in md  # all learned runs here share the (default) criterion


def test_runs_trained_to_different_criteria_are_flagged(tmp_path):
    done = {"converged": True, "steps": 10, "stop_reason": "plateau"}
    runs = with_status([_run(tmp_path, "a", True, done, {"epochs": 20, "patience": 3}),
                        _run(tmp_path, "b", True, done, {"epochs": 40, "patience": 3})])
    summary = summarize_runs(runs, metrics={"ncc": ("NCC", 3)})
    md = write_run_doc(overview_doc(summary, "t", metrics={"ncc": ("NCC", 3)}), summary, tmp_path / "t", runs)[1]
    assert "different criteria" in md.read_text() and "(40, None, 3, None)" in md.read_text()


def test_tables_without_learned_runs_get_no_training_note(tmp_path):
    runs = with_status([_run(tmp_path, "sift", False)])
    summary = summarize_runs(runs, metrics={"ncc": ("NCC", 3)})
    paths = write_run_doc(overview_doc(summary, "t", metrics={"ncc": ("NCC", 3)}), summary, tmp_path / "t", runs)
    assert "Training steps" not in paths[1].read_text()


def test_a_run_that_did_not_learn_is_not_converged_and_gets_its_own_mark(tmp_path):
    from pcreg.reporting.training_status import DID_NOT_LEARN

    runs = with_status([
        _run(tmp_path, "flat", True, {"converged": True, "did_not_learn": True, "steps": 90,
                                       "stop_reason": "plateau"}),
        _run(tmp_path, "net", True, {"converged": True, "did_not_learn": False, "steps": 120,
                                      "stop_reason": "plateau"}),
    ])
    labels = {r.id: r.label for r in runs}
    assert labels == {"flat": f"FLAT {DID_NOT_LEARN}", "net": "NET"} and DID_NOT_LEARN == "‡ did not learn"
    summary = summarize_runs(runs, metrics={"ncc": ("NCC", 3)})
    paths = write_run_doc(overview_doc(summary, "t", metrics={"ncc": ("NCC", 3)}), summary, tmp_path / "t", runs)
    csv = pd.read_csv(paths[0], keep_default_na=False, dtype=str).set_index("run")
    assert csv.loc["flat", "converged"] == "False" and csv.loc["flat", "did_not_learn"] == "True"
    md = paths[1].read_text()
    assert "FLAT 90 (did not learn, plateau)" in md and f"{DID_NOT_LEARN}: the run's best validation" in md
    assert f"{MARK} not converged" not in md


def test_supervision_label_comes_from_what_training_did(tmp_path):
    from pcreg.reporting.training_status import SUPERVISED

    runs = with_status([
        _run(tmp_path, "sup", True, {"converged": True, "steps": 50, "stop_reason": "plateau",
                                      "gt_field_supervision": True}),
        _run(tmp_path, "folder", True, {"converged": True, "steps": 50, "stop_reason": "plateau",
                                         "gt_field_supervision": False}),
    ])
    labels = {r.id: r.label for r in runs}
    assert labels == {"sup": f"SUP {SUPERVISED}", "folder": "FOLDER"}


def test_only_runs_whose_batches_had_fields_are_supervised_and_others_select_on_their_loss():
    from types import SimpleNamespace

    from pcreg.methods.registry import build_method

    vxm = build_method("voxelmorph", {"supervision": 1.0}, seed=0)
    assert vxm.gt_field_supervised(SimpleNamespace(field=np.zeros((1, 2, 4, 4))))
    assert not vxm.gt_field_supervised(SimpleNamespace(field=None))  # a folder dataset: no field, no claim
    assert not build_method("voxelmorph", {}, seed=0).gt_field_supervised(SimpleNamespace(field=np.zeros(1)))


def test_table_note_gives_the_network_gain_over_its_pre_alignment(tmp_path):
    from dataclasses import replace

    vxm = _run(tmp_path, "vxm", True, {"converged": True, "steps": 50, "stop_reason": "plateau"},
               {"prealign": "ants-affine"})
    pd.DataFrame({"pair_id": ["a", "b"], "failed": [False, False], "epe_px": [0.9, 1.1]}).to_csv(vxm.pairs_csv)
    aff = _run(tmp_path, "aff", False)
    pd.DataFrame({"pair_id": ["a", "b"], "failed": [False, False], "epe_px": [1.2, 1.3]}).to_csv(aff.pairs_csv)
    runs = with_status([vxm, replace(aff, method="ants_affine", label="ANTs affine")])
    summary = summarize_runs(runs, metrics={"ncc": ("NCC", 3)})
    md = write_run_doc(overview_doc(summary, "t", metrics={"ncc": ("NCC", 3)}), summary, tmp_path / "t", runs)[1]
    assert "VXM: test EPE 1.00 px against 1.25 px for its pre-alignment alone (ANTs affine): the network's gain " \
           "is 20.0 %." in md.read_text()
    alone = with_status([vxm])
    md = write_run_doc(overview_doc(summary, "t", metrics={"ncc": ("NCC", 3)}), summary, tmp_path / "u", alone)[1]
    assert "whose row is not in this table" in md.read_text()

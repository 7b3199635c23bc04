"""A field read in the wrong convention is flagged in the tables' notes (the suite knows the ground truth)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pcreg.config import validate_params
from pcreg.datasets import PreparedDataset, get_dataset_type
from pcreg.evaluation.convention_check import CHECK_FILE, convention_notes
from pcreg.evaluation.scoring import evaluate_method
from pcreg.field_conventions import invert_push_forward
from pcreg.methods.runner import register_shard
from pcreg.reporting.tables import Run


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    module = get_dataset_type("synthetic-fundus")
    params = validate_params(module, {"image_size": 64, "pairs": {"train": 1, "val": 1, "test": 4}}, "t")
    root = tmp_path_factory.mktemp("d") / "fundus"
    module.prepare(root, "fundus", params, 0)
    return PreparedDataset(root)


def _run(data, tmp_path, transform, convention):
    folder = tmp_path / "outputs" / "fields"
    folder.mkdir(parents=True)
    test = data.split("test")
    for i, pid in enumerate(test.pair_ids):
        np.save(folder / f"{pid}.npy", transform(np.asarray(test.field[i], np.float32)))
    spec = {"id": "mine", "method": "precomputed",
            "params": {"path": str(tmp_path / "outputs"), "convention": convention}}
    shard = register_shard(data.root, spec, 0, 1, tmp_path / "mine" / "shards" / "0.npz", seed=0, threads=1)
    pairs_csv = evaluate_method(data.root, [shard], tmp_path / "mine")
    return Run("mine", "My method", "traditional", pairs_csv, method="precomputed")


def test_the_right_convention_is_not_flagged(data, tmp_path):
    run = _run(data, tmp_path, lambda u: u, {})
    check = json.loads((run.result_dir / CHECK_FILE).read_text())
    assert check["as_stored"] < 1e-3 and check["note"] is None
    assert convention_notes([run]) == []


@pytest.mark.parametrize(("transform", "declared", "expected"), [
    (lambda u: u[::-1], {"order": "row-col"}, "axis order swapped"),  # x-y on disk, declared row-col
    (lambda u: invert_push_forward(u)[0], {"direction": "pull-back"}, "direction reversed"),  # push-forward
])
def test_a_wrong_declaration_is_flagged_in_the_notes(data, tmp_path, transform, declared, expected):
    run = _run(data, tmp_path, transform, declared)
    check = json.loads((run.result_dir / CHECK_FILE).read_text())
    assert check["note"] is not None, check
    assert min(check["alternatives"].values()) < 0.5 * check["as_stored"]
    (note,) = convention_notes([run])
    assert note.startswith("⚠ My method: its fields score EPE") and expected in note

"""The perfect-registration reference row (``ground_truth``): the moving image warped by the ground truth."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.evalfakes import standard_runs, write_run

from pcreg.config import validate_params
from pcreg.datasets import PreparedDataset, get_dataset_type
from pcreg.evaluation import stats
from pcreg.methods.registry import build_method, run_method
from pcreg.methods.runner import register_shard, shard_array_paths
from pcreg.reporting.paper_tables import CEILING_SECTION, ablation_table, table1
from pcreg.reporting.tables import GROUND_TRUTH, is_ground_truth, summarize_runs
from pcreg.warp import warp_image


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("gt") / "f"
    module = get_dataset_type("synthetic-fundus")
    module.prepare(root, "f", validate_params(module, {"image_size": 40, "pairs": {"train": 1, "val": 1, "test": 4}},
                                              "f"), 0)
    return root


def test_shard_runner_gives_the_ground_truth_field_and_its_warp(dataset, tmp_path):
    out = register_shard(dataset, {"method": GROUND_TRUTH, "id": GROUND_TRUTH}, 0, 1, tmp_path / "s.npz", seed=0,
                         threads=1)
    reg_path, field_path = shard_array_paths(out)
    test = PreparedDataset(dataset).split("test")
    fields, registered = np.load(field_path), np.load(reg_path)
    assert not np.load(out)["failed"].any()
    np.testing.assert_array_equal(fields, np.asarray(test.field))
    for i in range(len(test)):
        np.testing.assert_allclose(registered[i], warp_image(test.pair(i)[0], np.asarray(test.field[i])), atol=1e-6)


def test_unbound_ground_truth_is_a_failed_pair_with_a_reason():
    method = build_method(GROUND_TRUTH, seed=0, threads=1, device="cpu")
    moving = np.random.default_rng(0).random((16, 16)).astype(np.float32)
    result = run_method(method, moving, moving, "p0")
    assert result.failed and "ground-truth" in result.reason


def test_ground_truth_is_a_labelled_reference_row_after_the_methods(tmp_path):
    runs = standard_runs(tmp_path)
    n = 8
    gt = write_run(tmp_path, GROUND_TRUTH, "reference", {"ncc": np.full(n, 0.95), "ssim": np.full(n, 0.9),
                                                         "psnr": np.full(n, 27.0)},
                   label="perfect registration (ground truth)")
    runs = [runs[0], gt, *runs[1:]]
    assert is_ground_truth(gt) and not is_ground_truth(runs[0])
    data, doc = table1(summarize_runs(runs), runs, "synth", "fire-reg-256")
    at = doc.rows.index(CEILING_SECTION)
    assert doc.rows[at + 1][0] == "perfect registration (ground truth)" and at == len(doc.rows) - 2
    assert doc.rows[1][0] == "Unregistered"  # the paper's first row stays first
    assert data.iloc[-1]["run"] == GROUND_TRUTH and any("not a method" in note for note in doc.notes)
    _, doc = ablation_table(summarize_runs(runs), runs, "synth", "fire-reg-256", "pcreg_net")
    assert doc.rows[-1][0] == "perfect registration (ground truth)"


def test_descriptive_only_where_no_p_value_can_survive_holm():
    # 7 units: smallest p = 2/128 = 0.0156; with 48 tests Holm makes it 0.75 (issue 19)
    assert stats.smallest_wilcoxon_p(7) == pytest.approx(0.015625)
    assert not stats.can_reach_significance(7, 48, 0.05)
    assert stats.can_reach_significance(32, 48, 0.05)
    assert not stats.can_reach_significance(5, 1, 0.05)
    assert stats.can_reach_significance(6, 1, 0.05)  # 2/64 = 0.031

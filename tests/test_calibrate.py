"""Calibration check (``python -m pcreg calibrate``): the synthetic datasets are as hard as the paper's."""

import numpy as np
import pytest

from pcreg.cli import main
from pcreg.config import load_config, validate_params
from pcreg.datasets import PreparedDataset, get_dataset_type
from pcreg.metrics import ncc, psnr
from pcreg.reporting.calibrate import (
    BANDS,
    PERFECT_BOUNDS,
    calibration_table,
    paper_unregistered,
    perfect_metrics,
    perfect_table,
    ssim_gaussian,
    unregistered_metrics,
)
from pcreg.warp import warp_image


def _prepare(root, name, spec, seed):
    module = get_dataset_type(spec["type"])
    module.prepare(root / name, name, validate_params(module, spec.get("params", {}), name), seed)
    return root / name


def test_ssim_gaussian_matches_scikit_image_on_known_cases():
    rng = np.random.default_rng(0)
    a = rng.random((40, 40))
    assert ssim_gaussian(a, a) == pytest.approx(1.0)
    assert ssim_gaussian(a, rng.random((40, 40))) < 0.2


def test_unregistered_metrics_are_the_means_over_the_test_pairs(tmp_path):
    spec = {"type": "synthetic-fundus",
            "params": {"image_size": 48, "pairs": {"train": 1, "val": 1, "test": 3}}}
    root = _prepare(tmp_path, "f", spec, 0)
    m = unregistered_metrics(root)
    test = PreparedDataset(root).split("test")
    pairs = [test.pair(i) for i in range(3)]
    assert m["pairs"] == 3
    assert m["ncc"] == pytest.approx(np.mean([ncc(a, b) for a, b in pairs]))
    assert m["psnr"] == pytest.approx(np.mean([psnr(a, b) for a, b in pairs]))
    assert m["ssim_gauss"] == pytest.approx(np.mean([ssim_gaussian(a, b) for a, b in pairs]))


def test_paper_unregistered_rows_come_from_paper_values():
    assert paper_unregistered("fire-reg-256") == {"ncc": 0.762, "psnr": 22.36, "ssim_gauss": 0.494,
                                                  "ssim_uniform7": 0.494}
    assert paper_unregistered("orpam-temporal-26k")["ncc"] == pytest.approx(0.190)
    assert paper_unregistered("nope") == {}


def test_perfect_metrics_warp_the_moving_images_by_the_ground_truth(tmp_path):
    spec = {"type": "synthetic-fundus", "params": {"image_size": 48, "pairs": {"train": 1, "val": 2, "test": 1}}}
    root = _prepare(tmp_path, "f", spec, 0)
    val = PreparedDataset(root).split("val")
    warped = [warp_image(val.pair(i)[0], np.asarray(val.field[i])) for i in range(2)]
    m = perfect_metrics(root, "val")
    assert m["ncc"] == pytest.approx(np.mean([ncc(w, val.pair(i)[1]) for i, w in enumerate(warped)]))
    assert m["ncc"] > unregistered_metrics(root, "val")["ncc"]
    table = perfect_table({"ncc": 0.99, "ssim_gauss": 0.9, "ssim_uniform7": 0.9, "psnr": 30.0}, "fire-reg-256")
    assert list(table["within"]) == ["NO", "yes", "", "yes"]  # NCC above 0.97: no appearance change left


@pytest.mark.parametrize("name", ["synthetic-fundus", "synthetic-orpam"])
def test_default_synthetic_datasets_are_calibrated_at_both_ends_on_the_validation_split(tmp_path, name):
    """The data contract (issue 19): on the default configuration's validation split, the Unregistered row is
    within the bands of the paper's Unregistered row, and the perfect-registration row (moving warped by the
    ground truth) reaches the paper's best warping rows while some appearance change remains."""
    config = load_config("config/config.yaml")
    spec = config["datasets"][name]
    root = _prepare(tmp_path, name, spec, config["seed"])
    table = calibration_table(unregistered_metrics(root, "val"), paper_unregistered(spec["paper_reference"]))
    banded = table[table["band"].notna()]
    assert len(banded) == len(BANDS)
    assert (banded["within"] == "yes").all(), table.to_string()
    perfect = perfect_table(perfect_metrics(root, "val"), spec["paper_reference"])
    bounded = perfect[perfect["within"] != ""]
    assert len(bounded) == len(PERFECT_BOUNDS[spec["paper_reference"]])
    assert (bounded["within"] == "yes").all(), perfect.to_string()
    # enough independent units for the statistics (one eye / one sequence per cluster)
    test = PreparedDataset(root).split("test")
    assert test.manifest["cluster"].nunique() >= 30


def test_calibrate_cli_prints_measured_next_to_paper(tmp_path, capsys):
    spec = {"type": "synthetic-orpam",
            "params": {"height": 40, "width": 32, "sequences": {"train": 1, "val": 1, "test": 1}, "frames": 2}}
    root = _prepare(tmp_path, "o", spec, 0)
    assert main(["calibrate", str(root)]) == 0
    out = capsys.readouterr().out
    assert "orpam-temporal-26k" in out and "0.190" in out and "18.900" in out
    measured = unregistered_metrics(root, "val")  # the validation split by default
    assert f"{measured['ncc']:.3f}" in out
    assert "perfect registration" in out and f"{perfect_metrics(root, 'val')['ncc']:.3f}" in out
    assert main(["calibrate", str(root), "--reference", "orpam-4k"]) == 0
    assert "0.167" in capsys.readouterr().out


def test_calibrate_cli_unknown_dataset_is_one_clear_line(capsys):
    assert main(["calibrate", "no-such-dataset"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "neither a prepared dataset directory" in err[0]

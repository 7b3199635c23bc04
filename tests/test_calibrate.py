"""Calibration check (``python -m pcreg calibrate``): the synthetic datasets are as hard as the paper's."""

import numpy as np
import pytest

from pcreg.calibrate import (
    BANDS,
    calibration_table,
    paper_unregistered,
    ssim_gaussian,
    unregistered_metrics,
)
from pcreg.cli import main
from pcreg.config import load_config, validate_params
from pcreg.datasets import PreparedDataset, get_dataset_type
from pcreg.metrics import ncc, psnr


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
            "params": {"image_size": 48, "crop_px": 64, "pairs": {"train": 1, "val": 1, "test": 3}}}
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


@pytest.mark.parametrize("name", ["synthetic-fundus", "synthetic-orpam"])
def test_default_synthetic_datasets_are_within_the_bands_of_their_paper_reference(tmp_path, name):
    config = load_config("config/config.yaml")
    spec = config["datasets"][name]
    root = _prepare(tmp_path, name, spec, config["seed"])
    table = calibration_table(unregistered_metrics(root), paper_unregistered(spec["paper_reference"]))
    banded = table[table["band"].notna()]
    assert len(banded) == len(BANDS)
    assert (banded["within"] == "yes").all(), table.to_string()


def test_calibrate_cli_prints_measured_next_to_paper(tmp_path, capsys):
    spec = {"type": "synthetic-orpam",
            "params": {"height": 40, "width": 32, "sequences": {"train": 1, "val": 1, "test": 1}, "frames": 2}}
    root = _prepare(tmp_path, "o", spec, 0)
    assert main(["calibrate", str(root)]) == 0
    out = capsys.readouterr().out
    assert "orpam-temporal-26k" in out and "0.190" in out and "18.900" in out
    measured = unregistered_metrics(root)
    assert f"{measured['ncc']:.3f}" in out
    assert main(["calibrate", str(root), "--reference", "orpam-4k"]) == 0
    assert "0.167" in capsys.readouterr().out


def test_calibrate_cli_unknown_dataset_is_one_clear_line(capsys):
    assert main(["calibrate", "no-such-dataset"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "neither a prepared dataset directory" in err[0]

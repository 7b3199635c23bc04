"""elastix B-spline through itk-elastix: the field convention, constant inputs, files, determinism."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from pcreg.methods.check import DX, DY, shifted_pair
from pcreg.methods.registry import build_method, run_method

pytest.importorskip("itk")


@pytest.fixture(scope="module")
def method():
    return build_method("elastix", {"iterations": 60}, seed=0, threads=1)


def test_known_shift_is_a_pull_back_field_in_rows_cols(method) -> None:
    moving, fixed = shifted_pair((96, 96))
    result = run_method(method, moving, fixed)
    assert not result.failed, result.reason
    inner = (slice(24, -24), slice(24, -24))
    rows, cols = np.median(result.field[0][inner]), np.median(result.field[1][inner])
    assert rows == pytest.approx(DY, abs=0.3) and cols == pytest.approx(DX, abs=0.3)
    assert np.abs(result.image - fixed)[inner].mean() < 0.3 * np.abs(moving - fixed)[inner].mean()


def test_constant_images_fail_with_a_reason_before_elastix_is_called(method, monkeypatch) -> None:
    import itk

    def boom(*args, **kwargs):  # elastix has segfaulted on a constant image: it must never see one
        raise AssertionError("elastix called on a constant image")

    monkeypatch.setattr(itk, "elastix_registration_method", boom)
    moving, fixed = shifted_pair()
    for m, f, which in ((np.full_like(moving, 0.5), fixed, "moving"), (moving, np.zeros_like(fixed), "fixed")):
        result = run_method(method, m, f)
        assert result.failed and f"{which} image is constant" in result.reason
        assert not result.field.any()


def test_writes_nothing_in_the_working_directory_and_is_deterministic(method, tmp_path: Path) -> None:
    moving, fixed = shifted_pair()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        a = run_method(method, moving, fixed)
        b = run_method(build_method("elastix", {"iterations": 60}, seed=0, threads=1), moving, fixed)
    finally:
        os.chdir(cwd)
    assert list(tmp_path.iterdir()) == []  # transformix's deformationField.nii went to a temporary folder
    np.testing.assert_array_equal(a.field, b.field)

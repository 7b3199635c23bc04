"""Demons (SimpleITK): direction and axis order of its field, accuracy, determinism, failures."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.pairs import deformed_pair_with_landmarks, shifted_pair

from pcreg.methods.registry import build_method, run_method
from pcreg.metrics import tre

pytest.importorskip("SimpleITK")


@pytest.mark.parametrize("variant", ["diffeomorphic", "fast_symmetric", "classic"])
def test_recovers_known_smooth_deformation(variant: str) -> None:
    moving, fixed, gt, fixed_xy, moving_xy = deformed_pair_with_landmarks(size=128, mean_disp=5.0, seed=1)
    before = tre(np.zeros_like(gt), fixed_xy, moving_xy)
    result = run_method(build_method("demons", {"variant": variant}, threads=1), moving, fixed)
    assert not result.failed, result.reason
    assert before == pytest.approx(5.0, abs=0.1)
    assert tre(result.field, fixed_xy, moving_xy) <= 1.0


def test_shift_has_right_sign_and_axis() -> None:
    # Moving content shifted right 3 px and up 2 px: u[0] (rows) = -2, u[1] (cols) = +3.
    moving, fixed = shifted_pair(size=128, dx=3, dy=-2, seed=0)
    result = run_method(build_method("demons", threads=1), moving, fixed)
    assert not result.failed, result.reason
    inner = result.field[:, 16:-16, 16:-16]
    assert inner[0].mean() == pytest.approx(-2.0, abs=0.3)
    assert inner[1].mean() == pytest.approx(3.0, abs=0.3)


def test_two_runs_bit_identical_whatever_the_threads() -> None:
    moving, fixed, *_ = deformed_pair_with_landmarks(size=96, mean_disp=4.0, seed=2)
    first = run_method(build_method("demons", threads=1), moving, fixed)
    second = run_method(build_method("demons", threads=1), moving, fixed)
    two_threads = run_method(build_method("demons", threads=2), moving, fixed)
    assert not first.failed and np.abs(first.field).max() > 0.5
    assert np.array_equal(first.field, second.field)
    assert np.array_equal(first.field, two_threads.field)


def test_histogram_matching_undoes_a_monotone_intensity_change() -> None:
    # A gamma change of the moving image misleads demons unless histogram matching undoes it.
    moving, fixed, gt, fixed_xy, moving_xy = deformed_pair_with_landmarks(size=128, mean_disp=5.0, seed=1)
    moving = moving**2.5
    on = run_method(build_method("demons", {"histogram_matching": True}, threads=1), moving, fixed)
    off = run_method(build_method("demons", {"histogram_matching": False}, threads=1), moving, fixed)
    assert not on.failed, on.reason
    assert tre(on.field, fixed_xy, moving_xy) <= 1.0
    assert tre(off.field, fixed_xy, moving_xy) > 2.0


def test_broken_inputs_do_not_crash() -> None:
    moving, fixed = shifted_pair(size=64, seed=0)
    method = build_method("demons", threads=1)
    const = run_method(method, np.full_like(moving, 0.5), fixed)
    assert const.failed and "constant" in const.reason
    assert np.array_equal(const.image, np.full_like(moving, 0.5))
    tiny = run_method(method, moving[:5, :7], fixed[:5, :7])  # smaller than the coarsest shrink factor
    assert tiny.field.shape == (2, 5, 7)
    assert tiny.failed or np.all(np.isfinite(tiny.field))

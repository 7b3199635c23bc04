"""Horn-Schunck baseline: accuracy on a known smooth field, sign/axis of a shift, determinism, normalisation."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.pairs import deformed_pair, landmarks, shifted_pair
from scipy import ndimage

from baselines.horn_schunck import hs_average, upsample_field
from pcreg.errors import UserError
from pcreg.methods.registry import build_method, run_method
from pcreg.metrics import tre

SIZE = 128


@pytest.fixture(scope="module")
def smooth_pair():
    moving, fixed, gt = deformed_pair(SIZE, seed=0, mean_disp=5.0)
    fixed_xy, moving_xy = landmarks(gt, n=40, margin=16, seed=0)
    return moving, fixed, gt, fixed_xy, moving_xy


def test_recovers_smooth_deformation(smooth_pair):
    moving, fixed, gt, fixed_xy, moving_xy = smooth_pair
    before = tre(np.zeros_like(gt), fixed_xy, moving_xy)
    result = run_method(build_method("horn_schunck", seed=0, threads=1), moving, fixed)
    assert not result.failed, result.reason
    after = tre(result.field, fixed_xy, moving_xy)
    assert before > 4.0
    assert after <= 1.0, f"TRE {before:.2f} -> {after:.2f} px"


def test_shift_sign_and_axis():
    moving, fixed = shifted_pair(SIZE, dx=3, dy=-2, seed=0)  # content moves right 3, up 2
    result = run_method(build_method("horn_schunck", seed=0, threads=1), moving, fixed)
    inner = result.field[:, 16:-16, 16:-16]
    assert abs(inner[0].mean() - (-2.0)) < 0.3
    assert abs(inner[1].mean() - 3.0) < 0.3


def test_deterministic(smooth_pair):
    moving, fixed = smooth_pair[:2]
    a = run_method(build_method("horn_schunck", seed=0, threads=1), moving, fixed).field
    b = run_method(build_method("horn_schunck", seed=0, threads=1), moving, fixed).field
    assert np.array_equal(a, b)


def test_identical_images_give_zero_field(smooth_pair):
    fixed = smooth_pair[1]
    field = build_method("horn_schunck", seed=0, threads=1).register(fixed.copy(), fixed).field
    assert field.shape == (2, *fixed.shape) and field.dtype == np.float32
    assert np.abs(field).max() < 1e-4


def test_histogram_normalisation_handles_appearance_change(smooth_pair):
    """A monotone intensity change of the moving image breaks raw brightness constancy, not histogram matching."""
    moving, fixed, gt, fixed_xy, moving_xy = smooth_pair
    moving = 0.2 + 0.6 * np.sqrt(moving)
    matched = run_method(build_method("horn_schunck", {"normalize": "histogram"}, threads=1), moving, fixed)
    raw = run_method(build_method("horn_schunck", {"normalize": "none"}, threads=1), moving, fixed)
    assert tre(matched.field, fixed_xy, moving_xy) <= 1.0
    assert raw.failed or tre(raw.field, fixed_xy, moving_xy) > 2.0


def test_averaging_kernel_and_upsampling():
    rng = np.random.default_rng(0)
    component = rng.random((20, 30)).astype(np.float32)
    kernel = np.array([[1, 2, 1], [2, 0, 2], [1, 2, 1]]) / 12.0  # Horn & Schunck's weights
    expected = ndimage.correlate(component.astype(np.float64), kernel, mode="nearest")
    np.testing.assert_allclose(hs_average(component), expected, atol=1e-6)
    coarse = np.stack([np.full((8, 10), -1.0, np.float32), np.full((8, 10), 1.5, np.float32)])
    fine = upsample_field(coarse, (16, 20))
    np.testing.assert_allclose(fine[0], -2.0, atol=1e-6)  # displacements double with the grid
    np.testing.assert_allclose(fine[1], 3.0, atol=1e-6)


def test_params_validated():
    method = build_method("horn_schunck")
    assert {"alpha", "iterations", "warps", "levels", "sigma", "normalize"} <= set(method.params)
    with pytest.raises(UserError, match="alpha"):
        build_method("horn_schunck", {"alpha": -1.0})

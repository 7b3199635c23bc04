"""pcreg.metrics on hand-checked geometry (folding, SDlogJ, EPE, TRE) and SSIM/PSNR against scikit-image."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from pcreg.metrics import epe, folding_and_sdlogj, jacobian_determinant, psnr, recoverable_mask, ssim, tre
from pcreg.warp import field_from_matrix, shift_field


def _folding_field(h: int = 20, w: int = 24, c0: int = 8, length: int = 4) -> np.ndarray:
    """u_x(c) = -2 * clip(c - c0, 0, length): columns c0..c0+length fold, everything else is a translation."""
    field = np.zeros((2, h, w), np.float32)
    cols = np.arange(w, dtype=np.float64)
    field[1] = -2.0 * np.clip(cols - c0, 0, length)[None, :]
    return field


def test_folding_known_region_and_sdlogj_by_hand():
    field = _folding_field()
    det = jacobian_determinant(field)
    # Central differences: slope -2 inside the ramp -> det = 1 - 2 = -1; at the two ramp ends the
    # difference spans one flat and one ramp step: (-2 - 0) / 2 = -1 -> det = 0; flat parts -> det = 1.
    np.testing.assert_allclose(det[:, 9:12], -1.0)
    np.testing.assert_allclose(det[:, [8, 12]], 0.0)
    np.testing.assert_allclose(det[:, [7, 13]], 1.0)
    folding, sdlogj = folding_and_sdlogj(field, crop=2)
    # Cropped to 16 x 20: 5 folded columns (8..12, det <= 0) of 20 -> 25 %.
    assert folding == pytest.approx(25.0)
    # log det: 5 of 20 columns at log(1e-9) (clipped), 15 at 0 -> std = |log 1e-9| * sqrt(p (1 - p)), p = 1/4.
    assert sdlogj == pytest.approx(-np.log(1e-9) * np.sqrt(0.25 * 0.75))
    # Without cropping the border rows/columns are included: still the same 5 of 24 columns.
    assert folding_and_sdlogj(field, crop=0)[0] == pytest.approx(100 * 5 / 24)


def test_no_folding_for_smooth_and_affine_fields():
    # Uniform scaling by 1.1 about the origin: det = 1.21 everywhere -> no folding, SDlogJ 0.
    field = field_from_matrix(np.diag([1.1, 1.1, 1.0]), (16, 16))
    np.testing.assert_allclose(jacobian_determinant(field), 1.21, rtol=1e-5)
    folding, sdlogj = folding_and_sdlogj(field)
    assert folding == 0.0 and sdlogj == pytest.approx(0.0, abs=1e-6)
    # A shear u_x = 0.5 * row keeps area: det = 1.
    shear = np.zeros((2, 12, 12), np.float32)
    shear[1] = 0.5 * np.arange(12)[:, None]
    np.testing.assert_allclose(jacobian_determinant(shear), 1.0, atol=1e-6)
    # A small smooth random field does not fold, and its SDlogJ is small but positive.
    rng = np.random.default_rng(0)
    smooth = np.stack([ndimage.gaussian_filter(rng.normal(size=(32, 32)), 4) * 5 for _ in range(2)])
    folding, sdlogj = folding_and_sdlogj(smooth.astype(np.float32))
    assert folding == 0.0 and 0.0 < sdlogj < 0.5


def test_epe_hand_checked():
    gt = shift_field((8, 8), dx=1.0, dy=2.0)
    est = shift_field((8, 8), dx=4.0, dy=6.0)  # differs by (3, 4) everywhere
    assert epe(est, gt) == pytest.approx(5.0)
    assert epe(gt, gt) == 0.0
    half = gt.copy()
    half[:, :4] += np.array([3.0, 4.0], np.float32)[:, None, None]  # wrong on half the pixels
    assert epe(half, gt, mask=np.ones((8, 8), bool)) == pytest.approx(2.5)


def test_epe_ignores_pixels_whose_source_is_outside_the_moving_image():
    """u_gt = (dy, dx) = (2, 1) on 8x8: p + u_gt(p) is inside for rows 0..5 and columns 0..6 only."""
    gt = shift_field((8, 8), dx=1.0, dy=2.0)
    mask = recoverable_mask(gt)
    assert mask.sum() == 6 * 7 and mask[:6, :7].all()
    est = gt.copy()
    est[:, 6:, :] += 100.0  # huge errors only where nothing can be recovered: they must not count
    assert epe(est, gt) == pytest.approx(0.0)
    est[:, :3, :] += np.array([3.0, 4.0], np.float32)[:, None, None]  # rows 0..2 wrong by 5 px
    assert epe(est, gt) == pytest.approx(5.0 * 3 * 7 / 42)


def test_tre_hand_checked():
    # Moving = fixed shifted by +3 px in x and -2 px in y: u = (dy, dx) = (-2, 3).
    field = shift_field((32, 32), dx=3.0, dy=-2.0)
    fixed_xy = np.array([[10.0, 10.0], [5.5, 20.25]])
    assert tre(field, fixed_xy, fixed_xy + [3.0, -2.0]) == pytest.approx(0.0, abs=1e-9)
    # Truth 3 px right and 4 px down of the prediction for one point, exact for the other: mean (5 + 0) / 2.
    truth = fixed_xy + [3.0, -2.0]
    truth[0] += [3.0, 4.0]
    assert tre(field, fixed_xy, truth) == pytest.approx(2.5)
    # Bilinear sampling between pixels: u_x = 0.1 * x sampled at x = 10.5 is 1.05.
    lin = np.zeros((2, 16, 16), np.float32)
    lin[1] = 0.1 * np.arange(16)[None, :]
    assert tre(lin, np.array([[10.5, 3.0]]), np.array([[11.55, 3.0]])) == pytest.approx(0.0, abs=1e-6)


def test_ssim_psnr_match_scikit_image():
    rng = np.random.default_rng(1)
    a = ndimage.gaussian_filter(rng.uniform(size=(40, 48)), 1.0)
    b = np.clip(a + rng.normal(0, 0.05, size=a.shape), 0, 1)
    assert ssim(b, a) == pytest.approx(structural_similarity(b, a, data_range=1.0), abs=1e-10)
    assert psnr(b, a) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=1.0), abs=1e-10)
    assert ssim(a, a) == pytest.approx(1.0) and psnr(a, a) == np.inf

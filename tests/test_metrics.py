"""Intensity metrics against scikit-image and simple identities."""

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from pcreg.metrics import ncc, psnr, ssim, ssim_gaussian


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    from pcreg.datasets.synthetic_fundus import make_pair

    p = make_pair(rng, "P", image_size=64)
    return p["moving"], p["fixed"]


def test_ssim_matches_skimage(pair):
    a, b = pair
    ours = ssim(a, b)
    ref = structural_similarity(a.astype(np.float64), b.astype(np.float64), data_range=1.0)
    assert abs(ours - ref) < 1e-4
    assert 0.0 < ours < 1.0


def test_gaussian_ssim_is_wang_et_al(pair):
    """ssim_gaussian is the 11x11, sigma 1.5 Gaussian-window SSIM of Wang et al. (their MATLAB ssim_index:
    'valid' filtering, population variances), transcribed here independently; it differs from the 7x7 uniform one."""
    from scipy.signal import convolve2d

    a, b = (x.astype(np.float64) for x in pair)
    r = np.arange(-5, 6)
    g = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 1.5**2))
    win = g / g.sum()

    def filt(x):
        return convolve2d(x, win, mode="valid")

    mu_a, mu_b = filt(a), filt(b)
    va, vb, cov = filt(a * a) - mu_a**2, filt(b * b) - mu_b**2, filt(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    ref = (((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (va + vb + c2))).mean()
    assert ssim_gaussian(a, b) == pytest.approx(ref, abs=1e-6)
    assert abs(ssim_gaussian(a, b) - ssim(a, b)) > 1e-3
    assert ssim_gaussian(a, a) == pytest.approx(1.0)


def test_psnr_matches_skimage(pair):
    a, b = pair
    assert abs(psnr(a, b) - peak_signal_noise_ratio(b, a, data_range=1.0)) < 1e-4


def test_ncc_properties(pair):
    a, b = pair
    assert ncc(a, a) == pytest.approx(1.0)
    assert ncc(a, 2.0 * a + 0.1) == pytest.approx(1.0)  # invariant to gain and offset
    assert ncc(a, 1.0 - a) == pytest.approx(-1.0)
    assert -1.0 < ncc(a, b) < 1.0
    assert np.isnan(ncc(np.ones((4, 4)), a[:4, :4]))  # undefined for a constant image
    assert psnr(a, a) == float("inf")

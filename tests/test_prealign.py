"""Pre-alignment stage of the learned baselines: field composition and the SIFT pre-alignment field."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.learned import smooth_image, t
from scipy import ndimage

from baselines._prealign import PreAligner, compose
from baselines._spatial import warp
from pcreg.warp import field_from_matrix, warp_image

torch.set_num_threads(1)


def _smooth_field(rng: np.random.Generator, shape, amp: float) -> np.ndarray:
    return np.stack([ndimage.gaussian_filter(rng.standard_normal(shape), 6) * amp for _ in range(2)]).astype(np.float32)


def test_compose_equals_warping_twice():
    """warp(warp(moving, a), v) == warp(moving, compose(a, v)) away from the borders."""
    rng = np.random.default_rng(0)
    moving = smooth_image(rng, (64, 64), sigma=3.0)
    matrix = np.array([[1.03, 0.02, -2.5], [-0.01, 0.98, 1.5], [0.0, 0.0, 1.0]])
    a = torch.from_numpy(field_from_matrix(matrix, moving.shape))[None]
    v = torch.from_numpy(_smooth_field(rng, moving.shape, 30.0))[None]
    assert float(v.abs().max()) > 1.0  # a real deformation, not a near-identity
    twice = warp(warp(t(moving), a), v)
    once = warp(t(moving), compose(a, v))
    inner = (slice(None), slice(None), slice(8, -8), slice(8, -8))
    # Two bilinear interpolations vs one: equal up to interpolation smoothing of a smooth image.
    np.testing.assert_allclose(once[inner].numpy(), twice[inner].numpy(), atol=2e-2)
    # The wrong order (a(p) + v(p + a(p))) is measurably worse.
    wrong = a + warp(v, a)
    err_right = float((once - twice)[inner].abs().mean())
    err_wrong = float((warp(t(moving), wrong) - twice)[inner].abs().mean())
    assert err_right < 0.25 * err_wrong


def test_compose_with_zero_fields():
    rng = np.random.default_rng(1)
    a = torch.from_numpy(_smooth_field(rng, (32, 32), 10.0))[None]
    zero = torch.zeros_like(a)
    torch.testing.assert_close(compose(a, zero), a)
    torch.testing.assert_close(compose(zero, a), a)


@pytest.mark.parametrize("mode", ["sift-affine", "ants-affine", "global-start"])
def test_prealignment_recovers_an_affine_transform(mode):
    """The pre-alignment field of an affinely moved textured image is close to the true field."""
    rng = np.random.default_rng(2)
    fixed = smooth_image(rng, (128, 128), sigma=1.5)
    matrix = np.array([[1.04, 0.03, -3.0], [-0.02, 0.97, 2.0], [0.0, 0.0, 1.0]])  # fixed -> moving points
    true = field_from_matrix(matrix, fixed.shape)
    # moving(p + u(p)) = fixed(p): build moving by warping fixed with the inverse transform.
    moving = warp_image(fixed, field_from_matrix(np.linalg.inv(matrix), fixed.shape))
    pre = PreAligner(mode)
    est = pre.field(moving, fixed)
    inner = (slice(None), slice(16, -16), slice(16, -16))
    epe = np.sqrt(((est - true)[inner] ** 2).sum(0)).mean()
    assert epe < 0.5, epe
    assert np.sqrt((true[inner] ** 2).sum(0)).mean() > 2.0  # the transform is not trivial
    assert pre.fields(t(moving), t(fixed)).shape == (1, 2, 128, 128)
    assert not PreAligner("none").enabled


@pytest.mark.parametrize("run,mode,label", [("ants_affine", "ants-affine", "ANTs affine"),
                                             ("global_start", "global-start", "Global start")])
def test_pre_alignment_rows_are_the_learned_rows_pre_alignment(run, mode, label):
    """Each pre-alignment row gives, pair for pair, the field a learned row with that ``prealign`` composes with;
    the global start is the fair start of SyN and Demons (init: auto)."""
    from baselines._global_init import global_field
    from pcreg.methods.registry import build_method

    rng = np.random.default_rng(0)
    fixed = smooth_image(rng, (64, 64), sigma=2.0)
    moving = np.roll(fixed, (2, -3), axis=(0, 1))
    row = build_method(run, {}, seed=0)
    assert row.label.startswith(label)
    field = row.register(moving, fixed).field
    np.testing.assert_array_equal(field, PreAligner(mode, seed=0).field(moving, fixed))
    if mode == "global-start":
        np.testing.assert_array_equal(field, global_field(moving, fixed, "auto", 0)[0])
    # moving(p) = fixed(p - (2, -3)), so the pull-back field is about (2, -3) inside the image
    assert abs(np.median(field[0][8:-8, 8:-8]) - 2.0) < 0.5 and abs(np.median(field[1][8:-8, 8:-8]) + 3.0) < 0.5
    assert row.register(np.zeros_like(fixed), fixed).failed


def test_supervision_term_is_the_suites_epe_over_the_recoverable_pixels():
    from baselines._registration_losses import endpoint_error
    from pcreg import metrics

    rng = np.random.default_rng(1)
    gt = np.zeros((2, 2, 24, 24), np.float32)
    gt[:, 1] = 6.0  # the right 6 columns come from outside the moving image: not recoverable
    field = gt + rng.normal(0, 1.0, gt.shape).astype(np.float32)
    ours = float(endpoint_error(torch.from_numpy(field), torch.from_numpy(gt), eps=0.0))
    suite = np.mean([metrics.epe(field[i], gt[i]) for i in range(2)])  # equal-sized masks: the mean of means
    assert ours == pytest.approx(suite, rel=1e-5)


def test_supervision_cap_counts_gross_errors_as_the_cap_without_gradient():
    from baselines._registration_losses import endpoint_error

    gt = torch.zeros((1, 2, 8, 8))
    field = torch.zeros((1, 2, 8, 8))
    field[0, 0, :4] = 30.0  # half the pixels 30 px off (a failed pre-alignment), half 0.5 px off
    field[0, 0, 4:] = 0.5
    field.requires_grad_(True)
    loss = endpoint_error(field, gt, eps=0.0, cap=3.0)
    assert float(loss) == pytest.approx((3.0 + 0.5) / 2, rel=1e-5)
    loss.backward()
    assert torch.all(field.grad[0, :, :4] == 0) and torch.all(field.grad[0, 0, 4:] > 0)
    assert float(endpoint_error(field, gt, eps=0.0)) == pytest.approx((30.0 + 0.5) / 2, rel=1e-5)  # no cap

"""SIFT + RANSAC baseline: accuracy on a known homography, sign/axis of a shift, determinism, failure path."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.pairs import deformed_pair, landmarks, shifted_pair, similarity_matrix

from baselines.sift import check_transform
from pcreg.errors import UserError
from pcreg.methods.registry import build_method, run_method
from pcreg.metrics import tre

SIZE = 128


@pytest.fixture(scope="module")
def similarity_pair():
    """Rotation 4 deg, scale 1.04 and a (3, -2.5) px shift: a transform both models can express."""
    matrix = similarity_matrix((SIZE, SIZE), angle_deg=4.0, scale=1.04, dx=3.0, dy=-2.5)
    moving, fixed, gt = deformed_pair(SIZE, seed=0, matrix=matrix)
    fixed_xy, moving_xy = landmarks(gt, n=40, margin=16, seed=0)
    return moving, fixed, gt, fixed_xy, moving_xy


@pytest.mark.parametrize("model", ["homography", "affine"])
def test_recovers_known_transform(similarity_pair, model):
    moving, fixed, gt, fixed_xy, moving_xy = similarity_pair
    before = tre(np.zeros_like(gt), fixed_xy, moving_xy)
    result = run_method(build_method("sift", {"model": model}, seed=0, threads=1), moving, fixed)
    assert not result.failed, result.reason
    after = tre(result.field, fixed_xy, moving_xy)
    assert before > 4.0
    assert after <= 1.0, f"TRE {before:.2f} -> {after:.2f} px"
    # the registered image is the moving image warped by the field: it should now resemble the fixed one
    inner = (slice(16, -16), slice(16, -16))
    assert np.abs(result.image - fixed)[inner].mean() < 0.5 * np.abs(moving - fixed)[inner].mean()


def test_shift_sign_and_axis():
    moving, fixed = shifted_pair(SIZE, dx=3, dy=-2, seed=0)  # content moves right 3, up 2
    result = run_method(build_method("sift", seed=0, threads=1), moving, fixed)
    assert not result.failed, result.reason
    inner = result.field[:, 16:-16, 16:-16]
    assert abs(inner[0].mean() - (-2.0)) < 0.3
    assert abs(inner[1].mean() - 3.0) < 0.3


def test_deterministic(similarity_pair):
    moving, fixed = similarity_pair[:2]
    fields = [run_method(build_method("sift", seed=3, threads=t), moving, fixed).field for t in (1, 1, 2)]
    assert np.array_equal(fields[0], fields[1])
    assert np.array_equal(fields[0], fields[2])  # thread count does not change the result either


@pytest.mark.parametrize("kind", ["blank", "noise"])
def test_failure_falls_back_to_identity(kind):
    fixed = shifted_pair(SIZE, seed=0)[1]
    if kind == "blank":
        moving = np.full_like(fixed, 0.4)
    else:
        moving = np.random.default_rng(0).random(fixed.shape).astype(np.float32)
    method = build_method("sift", seed=0, threads=1)
    reg = method.register(moving, fixed)
    assert reg.failed and reg.reason
    assert reg.field is not None and not reg.field.any()
    result = run_method(method, moving, fixed)
    assert result.failed and result.reason == reg.reason
    assert not result.field.any()
    np.testing.assert_array_equal(result.image, moving)


def test_implausible_model_is_rejected():
    """A half-turn is matched fine by rotation-invariant SIFT but moves pixels by more than max_shift."""
    fixed = shifted_pair(SIZE, seed=0)[1]
    moving = np.ascontiguousarray(fixed[::-1, ::-1])
    reg = build_method("sift", seed=0, threads=1).register(moving, fixed)
    assert reg.failed and "displacement out of bounds" in reg.reason
    assert not reg.field.any()
    # the same pair passes once the bound is relaxed: the check, not the matching, rejected it
    relaxed = build_method("sift", {"max_shift": 2.0}, seed=0, threads=1).register(moving, fixed)
    assert not relaxed.failed, relaxed.reason


def test_check_transform_bounds():
    shape = (64, 64)
    ok, reason = check_transform(np.eye(3), shape, max_scale=2.0, max_shift=0.5)
    assert ok is not None and reason == "" and not ok.any()
    mirror = np.diag([-1.0, 1.0, 1.0])
    assert "reflects" in check_transform(mirror, shape, 2.0, 0.5)[1]
    zoom = np.diag([3.0, 3.0, 1.0])
    assert "scale" in check_transform(zoom, shape, 2.0, 0.5)[1]
    far = np.eye(3)
    far[0, 2] = 40.0
    assert "displacement" in check_transform(far, shape, 2.0, 0.5)[1]
    horizon = np.eye(3)
    horizon[2, 0] = -0.05  # w = 1 - 0.05 x vanishes inside the image
    assert "infinity" in check_transform(horizon, shape, 2.0, 0.5)[1]


def test_params_validated():
    method = build_method("sift")
    assert method.params["ratio"] == 0.75 and method.params["model"] == "homography"
    with pytest.raises(UserError, match="model"):
        build_method("sift", {"model": "projective"})
    with pytest.raises(UserError):
        build_method("sift", {"ratio_test": 0.8})

"""The fair start of SyN and Demons (baselines/_global_init.py): large projective motion with partial overlap."""

from __future__ import annotations

import numpy as np
import pytest

from baselines._global_init import (
    _upscale_affine_field,
    ants_affine_field,
    compose_fields,
    global_field,
    linear_part,
    overlap_mask,
    plausible,
    rigid_field,
)
from pcreg.config import validate_params
from pcreg.datasets import PreparedDataset, get_dataset_type
from pcreg.methods.registry import build_method
from pcreg.warp import identity_grid, warp_image


@pytest.fixture(scope="module")
def projective_pair(tmp_path_factory):
    """A synthetic-fundus test pair of FIRE's P class (camera-rotation homography, overlap < 75 %, appearance
    change, local deformation) at 128 px; the one with the largest unregistered error of three."""
    root = tmp_path_factory.mktemp("data") / "fundus"
    dtype = get_dataset_type("synthetic-fundus")
    dtype.prepare(root, "fundus", validate_params(
        dtype, {"image_size": 128, "pairs": {"train": 1, "val": 1, "test": 3},
                "categories": {"S": 0.0, "P": 1.0, "A": 0.0}}, "params"), 0)
    test = PreparedDataset(root).split("test")
    assert set(test.manifest["category"]) == {"P"}
    i = int(np.argmax([np.linalg.norm(np.asarray(f), axis=0).mean() for f in test.field]))
    moving, fixed = test.pair(i)
    gt = np.asarray(test.field[i], np.float32)
    return np.asarray(moving, np.float32), np.asarray(fixed, np.float32), gt, overlap_mask(gt)


def _epe(field, gt, ok):
    return float(np.linalg.norm(field - gt, axis=0)[ok].mean())


def test_rigid_field_and_composition_follow_the_pull_back_convention():
    shape = (32, 40)
    img = np.random.default_rng(0).random(shape).astype(np.float32)
    shift = np.zeros((2, *shape), np.float32)
    shift[0], shift[1] = 2.0, -3.0
    rot = rigid_field(shape, 10.0, (0.0, 0.0))
    both = compose_fields(rot, shift)  # warp by rot first, then by shift
    np.testing.assert_allclose(warp_image(img, both)[8:-8, 8:-8],
                               warp_image(warp_image(img, rot), shift)[8:-8, 8:-8], atol=2e-2)
    np.testing.assert_allclose(linear_part(rot), [[np.cos(np.deg2rad(10)), -np.sin(np.deg2rad(10))],
                                                  [np.sin(np.deg2rad(10)), np.cos(np.deg2rad(10))]], atol=1e-4)
    assert plausible(rot) and not plausible(rigid_field(shape, 0.0, (0.0, 0.0)) - 0.9 * identity_grid(shape))


def _affine_field(shape, a_mat, b):
    grid = identity_grid(shape)
    q = np.einsum("ij,jhw->ihw", np.asarray(a_mat, np.float64), grid) + np.asarray(b, np.float64)[:, None, None]
    return (q - grid).astype(np.float32)


def test_an_affine_field_found_on_a_subsampled_grid_is_carried_back_exactly():
    a_mat, b = [[1.02, -0.05], [0.04, 0.97]], [3.5, -2.0]
    k, o = 3, 1  # subsampled pixel i sits at full-resolution k i + k//2
    full = _affine_field((90, 90), a_mat, b)
    # The same map on the subsampled grid: i -> (q(k i + o) - o) / k
    small_grid = identity_grid((30, 30))
    q_small = (small_grid * k + o + _affine_field((90, 90), a_mat, b)[:, o::k, o::k] - o) / k
    back = _upscale_affine_field((q_small - small_grid).astype(np.float32), k, (90, 90))
    np.testing.assert_allclose(back, full, atol=1e-3)


def test_ants_affine_on_a_large_pair_recovers_a_known_rotation_and_shift_through_the_subsampled_copies():
    from scipy import ndimage

    rng = np.random.default_rng(3)
    fixed = ndimage.gaussian_filter(rng.random((300, 300)), 6).astype(np.float32)
    fixed = (fixed - fixed.min()) / np.ptp(fixed)
    truth = rigid_field(fixed.shape, 4.0, (6.0, -9.0))
    t = np.deg2rad(4.0)
    rot_t = np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])  # R(4 deg) transposed
    inverse = rigid_field(fixed.shape, -4.0, tuple(-rot_t @ np.array([6.0, -9.0])))
    moving = warp_image(fixed, inverse)  # so that fixed(p) = moving(p + truth(p)) away from the borders
    ok = np.zeros(fixed.shape, bool)
    ok[60:-60, 60:-60] = True
    field = ants_affine_field(moving, fixed, seed=0, work_px=100)  # subsampled by 3
    assert field is not None
    assert np.linalg.norm(field - truth, axis=0)[ok].mean() < 0.5


def test_fair_start_brings_syn_and_demons_well_below_unregistered(projective_pair):
    moving, fixed, gt, ok = projective_pair
    unregistered = _epe(np.zeros_like(gt), gt, ok)
    assert unregistered > 10.0
    start, which = global_field(moving, fixed, "auto", 0)
    assert which in ("sift", "ants-multistart") and _epe(start, gt, ok) < 0.15 * unregistered
    syn = build_method("syn", {"init": "auto"}, seed=0).register(moving, fixed)
    demons = build_method("demons", {"init": "auto"}, seed=0).register(moving, fixed)
    assert _epe(syn.field, gt, ok) < 0.15 * unregistered
    assert _epe(demons.field, gt, ok) < 0.3 * unregistered
    # Deterministic: the same start and result run to run.
    again = build_method("syn", {"init": "auto"}, seed=0).register(moving, fixed)
    np.testing.assert_array_equal(syn.field, again.field)


def test_published_syn_is_unchanged_without_init(projective_pair):
    moving, fixed, gt, ok = projective_pair
    plain = build_method("syn", {}, seed=0)
    assert plain.params["init"] == "none"
    a = plain.register(moving, fixed).field
    b = build_method("syn", {"init": "none"}, seed=0).register(moving, fixed).field
    np.testing.assert_array_equal(a, b)


def test_a_constant_image_fails_with_the_methods_reason_not_a_crash():
    fixed = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    result = build_method("syn", {"init": "auto"}, seed=0).register(np.full((32, 32), 0.4, np.float32), fixed)
    assert result.failed and "constant" in result.reason

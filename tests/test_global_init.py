"""The fair start of SyN and Demons (baselines/_global_init.py): large projective motion with partial overlap."""

from __future__ import annotations

import numpy as np
import pytest

from baselines._global_init import (
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

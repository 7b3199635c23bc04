"""Training data of the harness: fresh synthetic pairs per epoch and consistent augmentation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import ndimage

from pcreg.config import validate_params
from pcreg.datasets import PreparedDataset, get_dataset_type
from pcreg.methods.training_data import Augmented, FreshPairs, augment_pair, augment_points, training_dataset
from pcreg.warp import warp_image


def _smooth(rng, shape, sigma, scale=1.0):
    return (ndimage.gaussian_filter(rng.standard_normal(shape), sigma) * scale).astype(np.float32)


@pytest.mark.parametrize(("flip_rows", "flip_cols", "rot90"), list(itertools.product([False, True], [False, True],
                                                                                        range(4))))
def test_augmented_field_keeps_the_convention(flip_rows, flip_cols, rot90):
    """warp(moving', field') == aug(warp(moving, field)) for every flip/rotation, and landmarks follow."""
    rng = np.random.default_rng(0)
    shape = (24, 24)
    moving = _smooth(rng, shape, 2.0)
    field = np.stack([_smooth(rng, shape, 4.0, 30.0), _smooth(rng, shape, 4.0, 30.0)])
    assert np.abs(field).max() > 1.0  # a real deformation, not a near-identity one
    fixed = warp_image(moving, field)
    kw = {"flip_rows": flip_rows, "flip_cols": flip_cols, "rot90": rot90}
    m_aug, f_aug, u_aug = augment_pair(moving, fixed, field, **kw)
    np.testing.assert_allclose(warp_image(m_aug, u_aug), f_aug, atol=1e-5)
    # A landmark goes where its pixel goes.
    image = np.zeros((20, 30), np.float32)
    image[3, 7] = 1.0
    aug_image = augment_pair(image, image, None, **kw)[0]
    row, col = np.argwhere(aug_image == 1.0)[0]
    np.testing.assert_array_equal(augment_points(np.array([[7.0, 3.0]]), image.shape, **kw), [[col, row]])


FUNDUS = {"image_size": 32, "pairs": {"train": 3, "val": 1, "test": 1}}


def _prepared(tmp_path):
    module = get_dataset_type("synthetic-fundus")
    module.prepare(tmp_path / "ds", "ds", validate_params(module, dict(FUNDUS), "test"), 0)
    return PreparedDataset(tmp_path / "ds").split("train")


def test_synthetic_training_pairs_are_fresh_each_epoch_and_reproducible(tmp_path):
    split = _prepared(tmp_path)
    data = training_dataset(split, {}, seed=0)
    assert isinstance(data, FreshPairs) and len(data) == 3
    data.set_epoch(1)
    first = [t.numpy().copy() for t in data[0]]
    assert first[0].shape == (1, 32, 32) and first[2].shape == (2, 32, 32)
    assert not np.array_equal(first[0][0], split.moving[0])  # not the prepared pair
    data.set_epoch(2)
    assert not np.array_equal(data[0][0].numpy(), first[0])  # new draws next epoch
    again = training_dataset(split, {}, seed=0)
    again.set_epoch(1)
    for a, b in zip(again[0], first):
        np.testing.assert_array_equal(a.numpy(), b)  # same seed and epoch: the same pair
    assert training_dataset(split, {"fresh_pairs": False}, seed=0) is split


def test_orpam_training_pairs(tmp_path):
    module = get_dataset_type("synthetic-orpam")
    params = validate_params(module, {"height": 32, "width": 32, "frames": 2,
                                      "sequences": {"train": 1, "val": 1, "test": 1}}, "test")
    moving, fixed, field = module.training_pairs(params, 0, 1, 3)
    assert moving.shape == fixed.shape == (3, 32, 32) and field.shape == (3, 2, 32, 32)
    # row-dependent lags, and the half-column offset of the backward sweep's sampling grid (docs/CONVENTIONS.md)
    assert np.abs(field[:, 0]).max() > 0 and np.all(field[:, 1] == -0.5)


def test_augmentation_is_deterministic_per_item_and_epoch(tmp_path):
    split = _prepared(tmp_path)
    data = training_dataset(split, {"fresh_pairs": False, "augment_flips": True, "augment_rot90": True,
                                    "augment_intensity": 0.2}, seed=0)
    assert isinstance(data, Augmented)
    data.set_epoch(3)
    a = [t.numpy() for t in data[1]]
    b = [t.numpy() for t in data[1]]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    changed = [not np.array_equal(data[i][0].numpy()[0], split.moving[i]) for i in range(len(split))]
    assert any(changed)


def test_a_learned_baseline_trains_on_fresh_pairs_with_the_global_start_shared_on_disk(tmp_path, monkeypatch):
    """fresh_pairs: true for VoxelMorph: each epoch's new pairs are pre-aligned (global start), and their fields are
    written to the disk cache that the rows showing the pre-alignment read."""
    from pcreg.methods.pair_cache import ENV
    from pcreg.methods.registry import build_method

    monkeypatch.setenv(ENV, str(tmp_path / "cache"))
    split = _prepared(tmp_path)
    params = {"epochs": 2, "batch_size": 3, "progress": False, "prealign": "global-start", "fresh_pairs": True,
              "patience": 0}
    method = build_method("voxelmorph", params, seed=0, threads=1, device="cpu")
    method.fit(split, None, tmp_path / "work")
    stored = list((tmp_path / "cache").rglob("*.npz"))
    assert len(stored) >= 2 * len(split)  # two epochs of new pairs, none of them the prepared ones
    assert len(method._prealigner()._cache) >= 2 * len(split)  # noqa: SLF001 - what training pre-aligned

"""The learned baselines' losses on pairs with large flat regions (FIRE-like black corners, a saturated disc)."""

from __future__ import annotations

import neurite as ne
import numpy as np
import pytest
import torch
from scipy import ndimage

from baselines._registration_losses import GuardedNCC, RegistrationLoss
from pcreg.datasets.format import DatasetWriter, PreparedDataset

torch.set_num_threads(1)


def fundus_like(size: int = 64, shift: tuple[int, int] = (0, 0), seed: int = 0) -> np.ndarray:
    """Texture inside a circular field of view, black (0) outside it, with a saturated (flat 1.0) optic disc."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    fov = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (0.45 * size) ** 2
    disc = (yy - 0.4 * size) ** 2 + (xx - 0.6 * size) ** 2 < (0.08 * size) ** 2
    tex = ndimage.gaussian_filter(rng.random((size, size)), 2)
    tex = (tex - tex.min()) / (tex.max() - tex.min())
    img = np.where(fov, np.where(disc, 1.0, 0.2 + 0.7 * tex), 0.0)
    return np.roll(img, shift, (0, 1)).astype(np.float32)


def t(*images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack(images))[:, None]


def test_neurite_ncc_fails_on_these_pairs_and_the_guarded_one_does_not():
    fixed = [fundus_like(256, seed=s) for s in range(4) for _ in range(2)]
    moving = [np.roll(f, shift, (0, 1)) for f, shift in zip(fixed, [(2, 3), (1, 2)] * 4)]
    with pytest.raises(AssertionError, match="NCC coefficients must be finite"):
        ne.nn.modules.NCC(window_size=21)(t(*moving), t(*fixed))
    scores = GuardedNCC(window_size=21)(t(*moving), t(*fixed))
    assert scores.shape == (8,) and torch.isfinite(scores).all() and ((scores > 0) & (scores < 1)).all()


def test_flat_windows_have_no_correlation():
    const_a, const_b = np.full((64, 64), 0.7, np.float32), np.full((64, 64), 0.3, np.float32)
    inner = (slice(None), slice(None), slice(4, -4), slice(4, -4))  # windows clear of the zero padding
    assert float(GuardedNCC().local(t(const_a), t(const_b))[inner].abs().max()) == 0.0
    img = fundus_like(64)
    cc = GuardedNCC().local(t(img), t(np.roll(img, 1, 1)))[0, 0].numpy()
    assert cc[5, 5] == 0.0  # the black corner: no correlation (neurite: rounding noise)
    assert cc[32, 32] > 0.2  # textured inside the field of view


def test_guarded_ncc_matches_neurite_on_textured_images():
    rng = np.random.default_rng(1)
    a = ndimage.gaussian_filter(rng.random((48, 48)), 1.5).astype(np.float32)
    b = ndimage.gaussian_filter(rng.random((48, 48)), 1.5).astype(np.float32)
    ours = GuardedNCC(window_size=9)(t(a, b), t(b, a)).mean()
    theirs = ne.nn.modules.NCC(window_size=9)(t(a, b), t(b, a)).mean()
    assert float(ours) == pytest.approx(float(theirs), rel=1e-4)


@pytest.mark.parametrize("window", [9, 21])
def test_registration_loss_is_finite_with_gradients_on_flat_regions(window):
    fixed = fundus_like(64)
    moving = fundus_like(64, shift=(1, 2))
    warped = t(moving).requires_grad_(True)
    flow = torch.zeros(1, 2, 64, 64, requires_grad=True)
    total, parts = RegistrationLoss("ncc", 1.0, window)(warped, t(fixed), flow)
    total.backward()
    assert torch.isfinite(total) and torch.isfinite(warped.grad).all()
    assert float(parts["similarity"]) < 0


def _fov_dataset(root, size=64):
    sizes = {"train": 4, "val": 2, "test": 1}
    with DatasetWriter(root, name="fov", dataset_type="test", image_shape=(size, size), split_sizes=sizes,
                       has_field=False) as writer:
        for split, n in sizes.items():
            for i in range(n):
                fixed = fundus_like(size, seed=i)
                writer.add(split, f"{split}{i}", np.roll(fixed, [(1, 2), (2, 3)][i % 2], (0, 1)), fixed)
    return PreparedDataset(root)


@pytest.mark.parametrize("name", ["voxelmorph", "transmorph"])
def test_a_fit_step_runs_on_black_bordered_pairs(tmp_path, name):
    from pcreg.methods.registry import build_method

    ds = _fov_dataset(tmp_path / "ds", 256)  # the size at which neurite's NCC stopped this fit
    params = {"epochs": 1, "batch_size": 2, "progress": False, "ncc_window": 21}
    if name == "transmorph":
        params.update(variant="transmorph-small", drop_path_rate=0.0)
    method = build_method(name, params, seed=0, threads=1, device="cpu")
    method.fit(ds.split("train"), ds.split("val"), tmp_path / "work")
    log = (tmp_path / "work" / "train_log.csv").read_text().splitlines()
    loss = float(log[-1].split(",")[2])  # the trained epoch (row 1 is the validation before training)
    assert np.isfinite(loss)

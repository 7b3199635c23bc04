"""Shared fixtures for the learned-method tests (VoxelMorph, TransMorph): tiny datasets and checks."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy import ndimage

from pcreg.warp import warp_image


def smooth_image(rng: np.random.Generator, shape=(64, 64), sigma: float = 2.0) -> np.ndarray:
    """A smooth random image in [0, 1]."""
    img = ndimage.gaussian_filter(rng.random(shape), sigma)
    return ((img - img.min()) / (img.max() - img.min())).astype(np.float32)


def t(img: np.ndarray) -> torch.Tensor:
    """``(H, W)`` array -> ``(1, 1, H, W)`` tensor."""
    return torch.from_numpy(np.ascontiguousarray(img))[None, None]


def write_pairs(root, n_train=4, n_val=2, shape=(64, 64), seed=0):  # noqa: ANN001, ANN201
    """A tiny prepared dataset of smoothly deformed pairs; ``field`` is the exact pull-back (fixed = moving o field)."""
    from pcreg.datasets.format import DatasetWriter, PreparedDataset

    rng = np.random.default_rng(seed)
    with DatasetWriter(root, name="tiny", dataset_type="test", image_shape=shape,
                       split_sizes={"train": n_train, "val": n_val}, has_field=True) as writer:
        for split, n in (("train", n_train), ("val", n_val)):
            for i in range(n):
                moving = smooth_image(rng, shape)
                field = np.stack([ndimage.gaussian_filter(rng.standard_normal(shape), 8) * 40 for _ in range(2)])
                field = field.astype(np.float32)
                writer.add(split, f"{split}{i}", moving, warp_image(moving, field), field=field)
    ds = PreparedDataset(root)
    return ds.split("train"), ds.split("val")


def check_checkpoint_round_trip(make_method: Callable, tmp_path) -> tuple:  # noqa: ANN001
    """fit -> load gives identical weights and fields, and the loaded method runs; returns the two fields."""
    from pcreg.methods.registry import run_method

    train, val = write_pairs(tmp_path / "ds")
    work = tmp_path / "work"
    trained = make_method()
    trained.fit(train, val, work)
    assert (work / "best.pt").is_file() and (work / "last.pt").is_file()
    assert len((work / "train_log.csv").read_text().strip().splitlines()) == 4  # header + epoch 0 (before training) + 2

    loaded = make_method()
    loaded.load(work)
    for (k, a), (k2, b) in zip(trained.model.state_dict().items(), loaded.model.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    moving, fixed = val.pair(0)
    r1, r2 = trained.register(moving, fixed), loaded.register(moving, fixed)
    assert r1.field.shape == (2, 64, 64) and r1.image is None
    np.testing.assert_array_equal(r1.field, r2.field)
    result = run_method(loaded, moving, fixed)
    assert not result.failed and result.image.shape == (64, 64)
    return r1.field, r2.field

"""Training datasets of the harness: fresh synthetic pairs per epoch, and augmentation (dataset layer).

- :class:`FreshPairs`: for a synthetic dataset type whose module offers
  ``training_pairs(params, seed, epoch, n) -> (moving, fixed, field)``, each
  epoch trains on ``n`` newly generated pairs (new deformation and appearance
  draws from the training regions, seeded by the config seed and the epoch) instead
  of the same prepared pairs again. ``n`` is the size of the prepared train split.
- :class:`Augmented`: flips, 90-degree rotations (square images) and intensity
  jitter, drawn per (seed, epoch, item) and applied consistently to both images and
  the ground-truth field (:func:`augment_pair`) and to landmarks
  (:func:`augment_points`), so that ``warp(moving', field') == aug(warp(moving, field))``.
  Off by default (it would change the paper's protocol).

:func:`training_dataset` picks what a method's params ask for. Both datasets are told
the epoch through ``set_epoch`` by :func:`pcreg.training.train` before each epoch.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset


class FreshPairs(Dataset):
    """``n`` pairs regenerated for every epoch by ``generate(epoch) -> (moving, fixed, field)`` arrays."""

    def __init__(self, generate: Callable[[int], tuple[np.ndarray, np.ndarray, np.ndarray]], n: int):
        self.generate, self.n = generate, int(n)
        self.epoch: int | None = None
        self.arrays: tuple[np.ndarray, ...] = ()

    def set_epoch(self, epoch: int) -> None:
        """Generate the pairs of ``epoch`` (once; the arrays are kept until the next epoch)."""
        if epoch != self.epoch:
            self.arrays = self.generate(epoch)
            self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.epoch is None:
            self.set_epoch(1)
        moving, fixed, field = (a[i] for a in self.arrays)
        return _tensor(moving)[None], _tensor(fixed)[None], _tensor(field)


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a, np.float32))  # a writable copy


def _rot90_field(field: np.ndarray) -> np.ndarray:
    """A pull-back field of the image rotated by ``np.rot90`` (counter-clockwise): positions and vectors rotate.

    ``np.rot90`` maps output (i, j) to input (j, W-1-i), so with u' the rotated field
    ``u'(q) = A u(T^-1 q)``, A = [[0, -1], [1, 0]] (rows, cols).
    """
    rows, cols = np.rot90(field[0]), np.rot90(field[1])
    return np.stack([-cols, rows])


def augment_pair(moving: np.ndarray, fixed: np.ndarray, field: np.ndarray | None, *, flip_rows: bool = False,
                 flip_cols: bool = False, rot90: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The same flips and ``rot90`` quarter turns (counter-clockwise, after the flips) of both images and the field."""
    def image(a: np.ndarray) -> np.ndarray:
        a = a[::-1] if flip_rows else a
        a = a[:, ::-1] if flip_cols else a
        return np.ascontiguousarray(np.rot90(a, rot90))

    if field is not None:
        field = np.array(field, np.float32)
        if flip_rows:
            field = np.stack([-field[0][::-1], field[1][::-1]])
        if flip_cols:
            field = np.stack([field[0][:, ::-1], -field[1][:, ::-1]])
        for _ in range(rot90 % 4):
            field = _rot90_field(field)
        field = np.ascontiguousarray(field)
    return image(moving), image(fixed), field


def augment_points(xy: np.ndarray, shape: tuple[int, int], *, flip_rows: bool = False, flip_cols: bool = False,
                   rot90: int = 0) -> np.ndarray:
    """Landmarks ``(K, 2)`` as ``(x, y)`` moved like :func:`augment_pair` moves the image of ``shape`` (H, W)."""
    h, w = shape
    x, y = np.asarray(xy, np.float64).T.copy()
    if flip_rows:
        y = h - 1 - y
    if flip_cols:
        x = w - 1 - x
    for _ in range(rot90 % 4):  # np.rot90: (row, col) -> (W-1-col, row); the width becomes the height
        x, y = y, w - 1 - x
        h, w = w, h
    return np.stack([x, y], axis=1)


class Augmented(Dataset):
    """Wraps a training Dataset of ``(moving, fixed[, field])`` items with random, consistent augmentation.

    Per item, drawn from ``(seed, epoch, i)``: a row flip and a column flip (each with
    probability 1/2, if ``flips``), 0-3 quarter turns (if ``rot90`` and the images
    are square), and independent gain/offset jitter of each image by up to
    ``intensity`` (then clipped to [0, 1]; the field is unchanged by intensity).
    """

    def __init__(self, base: Dataset, seed: int, *, flips: bool, rot90: bool, intensity: float):
        self.base, self.seed = base, int(seed)
        self.flips, self.rot90, self.intensity = flips, rot90, float(intensity)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        item = self.base[i]
        moving, fixed = item[0][0].numpy(), item[1][0].numpy()
        field = item[2].numpy() if len(item) > 2 else None
        rng = np.random.default_rng([self.seed, self.epoch, i])
        flip_rows, flip_cols = (bool(b) for b in rng.integers(0, 2, size=2)) if self.flips else (False, False)
        turns = int(rng.integers(0, 4)) if self.rot90 and moving.shape[0] == moving.shape[1] else 0
        moving, fixed, field = augment_pair(moving, fixed, field, flip_rows=flip_rows, flip_cols=flip_cols,
                                            rot90=turns)
        if self.intensity > 0:
            gain = 1.0 + rng.uniform(-self.intensity, self.intensity, size=2)
            offset = rng.uniform(-self.intensity, self.intensity, size=2) / 2
            moving = np.clip(moving * gain[0] + offset[0], 0.0, 1.0)
            fixed = np.clip(fixed * gain[1] + offset[1], 0.0, 1.0)
        out = (_tensor(moving)[None], _tensor(fixed)[None])
        return out if field is None else (*out, _tensor(field))


def dataset_info(split: Any) -> dict[str, Any]:
    """The prepared dataset's ``dataset.json`` (type, params in ``spec``) of a split read from disk, else {}."""
    root = getattr(split, "root", None)
    path = Path(root) / "dataset.json" if root is not None else None
    return json.loads(path.read_text()) if path is not None and path.is_file() else {}


def _generate(dataset_type: str, spec: dict[str, Any], seed: int, epoch: int, *, n: int) -> tuple[np.ndarray, ...]:
    from pcreg.datasets import get_dataset_type

    return get_dataset_type(dataset_type).training_pairs(spec, seed, epoch, n)


def training_dataset(split: Any, params: dict[str, Any], seed: int) -> Any:
    """What the harness trains on: fresh synthetic pairs and/or augmentation as ``params`` ask, else ``split``."""
    from pcreg.datasets import DATASET_TYPES, get_dataset_type
    from pcreg.training import PairDataset

    data: Any = split
    info = dataset_info(split)
    if params.get("fresh_pairs", True) and info.get("type") in DATASET_TYPES and len(split):
        module = get_dataset_type(info["type"])
        if hasattr(module, "training_pairs"):
            # A partial, not a lambda: DataLoader workers may need to pickle the dataset.
            generate = partial(_generate, info["type"], info.get("spec", {}), seed, n=len(split))
            data = FreshPairs(generate, len(split))
    flips, rot90 = bool(params.get("augment_flips", False)), bool(params.get("augment_rot90", False))
    intensity = float(params.get("augment_intensity", 0.0))
    if flips or rot90 or intensity > 0:
        base = data if isinstance(data, Dataset) else PairDataset(data)
        data = Augmented(base, seed, flips=flips, rot90=rot90, intensity=intensity)
    return data

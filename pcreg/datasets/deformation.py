"""Random smooth deformations used by the synthetic datasets (appearance: :mod:`pcreg.datasets.acquisition`)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from pcreg.warp import identity_grid


def affine_field(
    shape: tuple[int, int],
    rng: np.random.Generator,
    *,
    max_rotation_deg: float,
    max_shift_px: float,
    max_scale: float,
) -> np.ndarray:
    """Pull-back field of a random affine map about the image centre, ``(2, H, W)``."""
    h, w = shape
    angle = np.deg2rad(rng.uniform(-max_rotation_deg, max_rotation_deg))
    scale = 1.0 + rng.uniform(-max_scale, max_scale)
    shift = rng.uniform(-max_shift_px, max_shift_px, size=2)
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    grid = identity_grid(shape)
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    y, x = grid[0] - cy, grid[1] - cx
    my = s * x + c * y + cy + shift[0]
    mx = c * x - s * y + cx + shift[1]
    return np.stack([my - grid[0], mx - grid[1]]).astype(np.float32)


def elastic_field(
    shape: tuple[int, int], rng: np.random.Generator, *, amplitude_px: float, grid: int = 4
) -> np.ndarray:
    """Smooth random field: a coarse ``grid x grid`` lattice of displacements, cubic-interpolated.

    Each component's maximum absolute value is scaled to ``amplitude_px``.
    """
    h, w = shape
    field = np.empty((2, h, w), np.float32)
    for k in range(2):
        coarse = rng.normal(size=(grid, grid))
        fine = ndimage.zoom(coarse, (h / grid, w / grid), order=3, mode="nearest")[:h, :w]
        peak = np.abs(fine).max()
        field[k] = fine * (amplitude_px / peak if peak > 0 else 0.0)
    return field

"""Random smooth deformations and appearance changes used by the synthetic datasets."""

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


def illumination_field(shape: tuple[int, int], rng: np.random.Generator, strength: float) -> np.ndarray:
    """Smooth multiplicative illumination map around 1 (``1 ± strength``)."""
    h, w = shape
    coarse = rng.uniform(-1, 1, size=(3, 3))
    fine = ndimage.zoom(coarse, (h / 3, w / 3), order=3, mode="nearest")[:h, :w]
    return (1.0 + strength * fine).astype(np.float32)


def change_appearance(
    image: np.ndarray,
    rng: np.random.Generator,
    *,
    illumination: float,
    gamma: float,
    contrast: float,
    blur_sigma: float,
    noise_std: float,
) -> np.ndarray:
    """Apply a random illumination field, gamma, contrast, blur and Gaussian noise; result clipped to [0, 1].

    Each argument is the maximum strength; the actual strength is drawn from ``rng``.
    """
    out = np.clip(image, 0.0, 1.0).astype(np.float64)
    if illumination > 0:
        out = out * illumination_field(out.shape, rng, rng.uniform(0, illumination))
    if gamma > 0:
        out = np.clip(out, 0, None) ** np.exp(rng.uniform(-gamma, gamma))
    if contrast > 0:
        c = 1.0 + rng.uniform(-contrast, contrast)
        out = (out - out.mean()) * c + out.mean() + rng.uniform(-contrast, contrast) * 0.1
    if blur_sigma > 0:
        out = ndimage.gaussian_filter(out, rng.uniform(0, blur_sigma))
    if noise_std > 0:
        out = out + rng.normal(0.0, rng.uniform(0, noise_std), size=out.shape)
    return np.clip(out, 0.0, 1.0).astype(np.float32)

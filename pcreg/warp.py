"""The suite's one warping routine and field helpers.

Convention (docs/CONVENTIONS.md): a displacement field ``u`` has shape
``(2, H, W)`` with ``u[0]`` along rows (y) and ``u[1]`` along columns (x), in
fixed-image pixels, and is a pull-back field: ``warped(p) = moving(p + u(p))``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def identity_grid(shape: tuple[int, int]) -> np.ndarray:
    """Pixel coordinates ``(2, H, W)``: ``grid[0]`` = row index, ``grid[1]`` = column index."""
    h, w = shape
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    return np.stack([rows, cols])


def check_field(field: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Return ``field`` as float32 after checking it is ``(2, H, W)`` for an image of ``shape``."""
    field = np.asarray(field)
    if field.shape != (2, *shape):
        raise ValueError(f"displacement field must have shape (2, {shape[0]}, {shape[1]}), got {field.shape}")
    if not np.all(np.isfinite(field)):
        raise ValueError("displacement field contains NaN or infinite values")
    return field.astype(np.float32, copy=False)


def warp_image(moving: np.ndarray, field: np.ndarray, order: int = 1) -> np.ndarray:
    """Warp ``moving`` into fixed space: ``out(p) = moving(p + u(p))``.

    Bilinear interpolation (``order=1``) with replicated borders; the output is
    float32 of the same shape as ``moving``.
    """
    moving = np.asarray(moving, dtype=np.float32)
    field = check_field(field, moving.shape)
    coords = identity_grid(moving.shape) + field
    out = ndimage.map_coordinates(moving, coords, order=order, mode="nearest")
    return out.astype(np.float32, copy=False)


def sample_field(field: np.ndarray, points_xy: np.ndarray) -> np.ndarray:
    """Bilinearly sample ``field`` at points given as ``(x, y)``; returns ``(N, 2)`` as ``(dx, dy)``."""
    points_xy = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    coords = np.stack([points_xy[:, 1], points_xy[:, 0]])  # (row, col) for map_coordinates
    dy = ndimage.map_coordinates(np.asarray(field[0], np.float64), coords, order=1, mode="nearest")
    dx = ndimage.map_coordinates(np.asarray(field[1], np.float64), coords, order=1, mode="nearest")
    return np.stack([dx, dy], axis=1)


def map_points(field: np.ndarray, fixed_xy: np.ndarray) -> np.ndarray:
    """Map fixed-image points ``(x, y)`` to the moving image through the pull-back field."""
    fixed_xy = np.asarray(fixed_xy, dtype=np.float64).reshape(-1, 2)
    return fixed_xy + sample_field(field, fixed_xy)


def shift_field(shape: tuple[int, int], dx: float, dy: float) -> np.ndarray:
    """Constant field for a moving image whose content is shifted by ``(dx, dy)`` relative to fixed."""
    field = np.empty((2, *shape), dtype=np.float32)
    field[0] = dy
    field[1] = dx
    return field


def field_from_matrix(matrix: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Dense field of a 3x3 homogeneous transform acting on ``(x, y, 1)`` fixed->moving points."""
    matrix = np.asarray(matrix, dtype=np.float64)
    grid = identity_grid(shape)
    x, y = grid[1].ravel(), grid[0].ravel()
    pts = matrix @ np.stack([x, y, np.ones_like(x)])
    w = pts[2]
    w = np.where(np.abs(w) < 1e-12, 1e-12, w)
    mx, my = pts[0] / w, pts[1] / w
    field = np.stack([(my - y).reshape(shape), (mx - x).reshape(shape)])
    return field.astype(np.float32)

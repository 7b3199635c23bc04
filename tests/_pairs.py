"""Synthetic test pairs with known geometry, shared by the classical-method tests.

Everything is built from scikit-image's bundled retina photograph (green channel,
where vessels have the most contrast), so no download is needed.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage

from pcreg.warp import identity_grid, map_points, warp_image


@lru_cache(maxsize=1)
def _retina_green(zoom: float = 0.25) -> np.ndarray:
    """The retina green channel in [0, 1], downscaled so that small crops contain several vessels."""
    from skimage import data, transform

    green = transform.rescale(data.retina()[..., 1].astype(np.float32) / 255.0, zoom, anti_aliasing=True)
    # Stretch the contrast of the fundus (the central half) to [0, 1] once for the whole image, so that
    # crops at different offsets keep exactly the same intensities.
    h, w = green.shape
    lo, hi = np.percentile(green[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4], [1, 99])
    return np.clip((green - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def retina_crop(size: int = 128, seed: int = 0, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """A ``size`` x ``size`` crop of the retina, position drawn from ``seed`` inside the fundus disc.

    ``offset`` = (rows, cols) moves the crop window, which is how shifted copies are made.
    """
    image = _retina_green()
    rng = np.random.default_rng(seed)
    centre = np.array(image.shape) // 2
    jitter = rng.integers(-image.shape[0] // 8, image.shape[0] // 8 + 1, size=2)
    r0, c0 = centre + jitter - size // 2 + np.asarray(offset)
    if r0 < 0 or c0 < 0 or r0 + size > image.shape[0] or c0 + size > image.shape[1]:
        raise ValueError(f"crop of size {size} does not fit the retina image")
    return np.ascontiguousarray(image[r0 : r0 + size, c0 : c0 + size])


def smooth_field(shape: tuple[int, int], mean_disp: float, seed: int = 0, sigma: float | None = None) -> np.ndarray:
    """A smooth random ``(2, H, W)`` field whose mean displacement magnitude is ``mean_disp`` pixels."""
    rng = np.random.default_rng(seed)
    sigma = sigma if sigma is not None else min(shape) / 6.0
    noise = rng.standard_normal((2, *shape))
    field = np.stack([ndimage.gaussian_filter(c, sigma, mode="reflect") for c in noise])
    field *= mean_disp / np.sqrt((field**2).sum(axis=0)).mean()
    return field.astype(np.float32)


def deformed_pair(
    size: int = 128, mean_disp: float = 5.0, seed: int = 0, margin: int = 16, step: int = 8
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(moving, fixed, gt_field, fixed_xy, moving_xy) related by a known smooth field, same appearance.

    ``fixed`` is the retina crop pulled back through ``gt_field`` (so ``gt_field`` is the exact answer).
    Landmarks lie on a regular grid inside ``margin``, are mapped with the ground-truth field, and the
    field is scaled so that their mean displacement (the unregistered TRE) is ``mean_disp``.
    """
    moving = retina_crop(size, seed)
    grid = identity_grid(moving.shape)[:, margin:-margin:step, margin:-margin:step]
    fixed_xy = np.stack([grid[1].ravel(), grid[0].ravel()], axis=1)
    gt = smooth_field(moving.shape, mean_disp, seed + 1)
    gt *= np.float32(mean_disp / np.linalg.norm(map_points(gt, fixed_xy) - fixed_xy, axis=1).mean())
    fixed = np.clip(warp_image(moving, gt, order=3), 0.0, 1.0)
    return moving, fixed, gt, fixed_xy, map_points(gt, fixed_xy)


def shifted_pair(size: int = 128, dx: int = 3, dy: int = -2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(moving, fixed) where the moving content is the fixed content shifted by ``(dx, dy)`` pixels.

    ``dx`` is rightwards and ``dy`` downwards (``dy = -2`` moves the content up), so the correct
    pull-back field is :func:`pcreg.warp.shift_field` ``(shape, dx, dy)``: ``u[0] = dy``, ``u[1] = dx``.
    """
    fixed = retina_crop(size, seed)
    moving = retina_crop(size, seed, offset=(-dy, -dx))
    return moving, fixed

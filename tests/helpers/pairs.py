"""Test pairs with known geometry, cut from scikit-image's retina photograph (no download needed).

Pairs follow docs/CONVENTIONS.md: the ground-truth field ``gt`` satisfies
``fixed(p) = moving(p + gt(p))``, so a perfect method returns ``gt``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from pcreg.warp import field_from_matrix, map_points, warp_image


def retina_image(scale: float = 0.5) -> np.ndarray:
    """Green channel of ``skimage.data.retina()`` resized by ``scale``, float32 in [0, 1]."""
    from skimage import data, transform

    green = data.retina()[..., 1].astype(np.float32) / 255.0
    out = transform.rescale(green, scale, order=1, anti_aliasing=True, preserve_range=True)
    # Stretch the fundus's contrast (central half, 1-99th percentiles) to [0, 1] once for the whole image,
    # so crops at any position share one intensity scale and intensity-driven methods see real contrast.
    h, w = out.shape
    lo, hi = np.percentile(out[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4], [1, 99])
    return np.clip((out - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def retina_crop(size: int = 128, seed: int = 0, scale: float = 0.5) -> np.ndarray:
    """A ``size`` x ``size`` crop at a seeded position inside the fundus (away from the black surround)."""
    image = retina_image(scale)
    h, w = image.shape
    rng = np.random.default_rng(seed)
    lo_r, hi_r = int(0.25 * h), int(0.75 * h) - size
    lo_c, hi_c = int(0.25 * w), int(0.75 * w) - size
    r0 = int(rng.integers(lo_r, max(hi_r, lo_r + 1)))
    c0 = int(rng.integers(lo_c, max(hi_c, lo_c + 1)))
    return np.ascontiguousarray(image[r0 : r0 + size, c0 : c0 + size])


def smooth_field(shape: tuple[int, int], mean_disp: float, seed: int = 0, sigma: float | None = None) -> np.ndarray:
    """A smooth random field ``(2, H, W)`` whose mean displacement magnitude is ``mean_disp`` px."""
    rng = np.random.default_rng(seed)
    sigma = sigma if sigma is not None else max(shape) / 6.0
    field = np.stack([ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="reflect") for _ in range(2)])
    field *= mean_disp / np.sqrt((field**2).sum(axis=0)).mean()
    return field.astype(np.float32)


def similarity_matrix(shape: tuple[int, int], angle_deg: float, scale: float, dx: float, dy: float) -> np.ndarray:
    """3x3 map of fixed ``(x, y, 1)`` to moving points: rotation and scale about the centre, then a shift."""
    cy, cx = (shape[0] - 1) / 2.0, (shape[1] - 1) / 2.0
    a = np.deg2rad(angle_deg)
    lin = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    centre = np.array([cx, cy])
    m = np.eye(3)
    m[:2, :2] = lin
    m[:2, 2] = centre - lin @ centre + np.array([dx, dy])
    return m


def deformed_pair(
    size: int = 128, seed: int = 0, mean_disp: float = 5.0, matrix: np.ndarray | None = None, pad: int = 24,
    scale: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(moving, fixed, gt)``: fixed is a retina crop warped by a known field (smooth, or ``matrix``'s).

    The warp is done on a crop padded by ``pad`` px and then cropped, so the
    fixed image has no replicated-border artefacts.
    """
    big = retina_crop(size + 2 * pad, seed, scale)
    if matrix is None:
        gt_big = smooth_field(big.shape, mean_disp, seed)
        inner_mag = np.sqrt((gt_big[:, pad : pad + size, pad : pad + size] ** 2).sum(axis=0)).mean()
        gt_big *= mean_disp / inner_mag  # the mean is over the returned crop, not the padded one
    else:
        shift = np.eye(3)
        shift[:2, 2] = pad  # the matrix is given in crop coordinates; conjugate it to the padded grid
        gt_big = field_from_matrix(shift @ matrix @ np.linalg.inv(shift), big.shape)
    fixed_big = warp_image(big, gt_big)
    inner = (slice(pad, pad + size), slice(pad, pad + size))
    moving, fixed = big[inner], fixed_big[inner]
    gt = gt_big[(slice(None), *inner)]
    return np.ascontiguousarray(moving), np.ascontiguousarray(fixed), np.ascontiguousarray(gt)


def landmarks(gt: np.ndarray, n: int = 40, margin: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` seeded fixed points ``(x, y)`` at least ``margin`` px from the border, and their moving points."""
    h, w = gt.shape[1:]
    rng = np.random.default_rng(seed)
    fixed_xy = np.stack([rng.uniform(margin, w - 1 - margin, n), rng.uniform(margin, h - 1 - margin, n)], axis=1)
    return fixed_xy, map_points(gt, fixed_xy)


def shifted_pair(size: int = 128, dx: int = 3, dy: int = -2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(moving, fixed)`` with moving content shifted by integer ``(dx, dy)``: ``moving(p + (dy, dx)) = fixed(p)``.

    Both are exact crops of one image (no interpolation); the correct field is
    ``u[0] = dy``, ``u[1] = dx`` everywhere.
    """
    pad = max(abs(dx), abs(dy))
    big = retina_crop(size + 2 * pad, seed)
    fixed = big[pad : pad + size, pad : pad + size]
    moving = big[pad - dy : pad - dy + size, pad - dx : pad - dx + size]
    return np.ascontiguousarray(moving), np.ascontiguousarray(fixed)


def deformed_pair_with_landmarks(
    size: int = 128, mean_disp: float = 5.0, seed: int = 0, scale: float = 0.25
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(moving, fixed, gt, fixed_xy, moving_xy)``: :func:`deformed_pair` plus its :func:`landmarks`.

    The crop comes from the retina at ``scale`` (0.25: more vessels per crop). The field is scaled so
    that the landmarks' mean displacement (the unregistered TRE) is ``mean_disp``; the field is linear
    in ``mean_disp`` for a given seed, so one probe at 1 px gives the scale.
    """
    _, _, probe = deformed_pair(size=size, seed=seed, mean_disp=1.0, scale=scale)
    fixed_xy, moved = landmarks(probe, seed=seed)
    factor = mean_disp / float(np.linalg.norm(moved - fixed_xy, axis=1).mean())
    moving, fixed, gt = deformed_pair(size=size, seed=seed, mean_disp=factor, scale=scale)
    return moving, fixed, gt, fixed_xy, map_points(gt, fixed_xy)

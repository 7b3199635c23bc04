"""Per-pair metrics: intensity (NCC, SSIM, PSNR), landmarks (TRE), fields (EPE, folding, SDlogJ).

Intensity metrics compare the registered image with the fixed image, data
range 1, as in the paper. SSIM follows scikit-image's definition (7x7 uniform
window, K1 = 0.01, K2 = 0.03, sample covariance, mean over the valid interior),
and PSNR is 10 log10(1 / MSE); tests check both against scikit-image.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from pcreg.warp import map_points


def ncc(a: np.ndarray, b: np.ndarray, eps: float = 1e-12) -> float:
    """Global zero-normalised cross-correlation (Pearson correlation) of two images."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    a = a - a.mean()
    b = b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    if denom < eps:
        return float("nan")
    return float((a * b).sum() / denom)


def psnr(image: np.ndarray, reference: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB (``inf`` for identical images)."""
    mse = float(np.mean((np.asarray(image, np.float64) - np.asarray(reference, np.float64)) ** 2))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(data_range**2 / mse))


def ssim(image: np.ndarray, reference: np.ndarray, data_range: float = 1.0, win_size: int = 7) -> float:
    """Structural similarity with scikit-image's default (uniform window) definition."""
    x = np.asarray(image, np.float64)
    y = np.asarray(reference, np.float64)
    if x.shape != y.shape:
        raise ValueError(f"SSIM needs images of one shape, got {x.shape} and {y.shape}")
    npix = win_size**2
    cov_norm = npix / (npix - 1)
    ux = ndimage.uniform_filter(x, win_size, mode="reflect")
    uy = ndimage.uniform_filter(y, win_size, mode="reflect")
    uxx = ndimage.uniform_filter(x * x, win_size, mode="reflect")
    uyy = ndimage.uniform_filter(y * y, win_size, mode="reflect")
    uxy = ndimage.uniform_filter(x * y, win_size, mode="reflect")
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    pad = (win_size - 1) // 2
    return float(s[pad:-pad, pad:-pad].mean())


def tre(field: np.ndarray, fixed_xy: np.ndarray, moving_xy: np.ndarray) -> float:
    """Mean target registration error in pixels: fixed landmarks mapped through ``field`` vs ``moving_xy``."""
    pred = map_points(field, fixed_xy)
    return float(np.linalg.norm(pred - np.asarray(moving_xy, np.float64), axis=1).mean())


def epe(field: np.ndarray, gt_field: np.ndarray) -> float:
    """Mean end-point error in pixels between a field and the ground-truth field."""
    diff = np.asarray(field, np.float64) - np.asarray(gt_field, np.float64)
    return float(np.sqrt((diff**2).sum(axis=0)).mean())


def jacobian_determinant(field: np.ndarray) -> np.ndarray:
    """Determinant of the Jacobian of ``x -> x + u(x)`` by central differences, shape ``(H, W)``."""
    u = np.asarray(field, np.float64)
    duy_dy, duy_dx = np.gradient(u[0])
    dux_dy, dux_dx = np.gradient(u[1])
    return (1.0 + duy_dy) * (1.0 + dux_dx) - duy_dx * dux_dy


def folding_and_sdlogj(field: np.ndarray, crop: int = 2) -> tuple[float, float]:
    """Learn2Reg deformation regularity: (% of non-positive Jacobian determinants, std of log det).

    Folding is counted before any clipping; the log uses determinants clipped to
    [1e-9, 1e9] as in Learn2Reg. ``crop`` border pixels are ignored.
    """
    det = jacobian_determinant(field)
    if crop > 0:
        det = det[crop:-crop, crop:-crop]
    folding = float(100.0 * np.mean(det <= 0))
    sdlogj = float(np.log(np.clip(det, 1e-9, 1e9)).std())
    return folding, sdlogj

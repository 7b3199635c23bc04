"""Per-pair metrics: intensity (NCC, SSIM, PSNR), landmarks (TRE), fields (EPE, folding, SDlogJ).

Intensity metrics compare the registered image with the fixed image, data
range 1, as in the paper. Two SSIM variants: :func:`ssim_gaussian` is Wang et
al.'s (11x11 Gaussian window, sigma 1.5, population covariance; what common
registration code and most likely the paper use) and :func:`ssim` is
scikit-image's default (7x7 uniform window, K1 = 0.01, K2 = 0.03, sample
covariance, mean over the valid interior). PSNR is 10 log10(1 / MSE); tests
check all three against scikit-image. EPE is averaged over the pixels whose
ground-truth source ``p + u_gt(p)`` lies inside the moving image
(:func:`recoverable_mask`): elsewhere no method can know the answer.
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


def ssim_gaussian(image: np.ndarray, reference: np.ndarray, data_range: float = 1.0) -> float:
    """SSIM of Wang et al. (2004): 11x11 Gaussian window with sigma 1.5, population covariance (scikit-image)."""
    from skimage.metrics import structural_similarity

    x = np.asarray(image, np.float64)
    y = np.asarray(reference, np.float64)
    if x.shape != y.shape:
        raise ValueError(f"SSIM needs images of one shape, got {x.shape} and {y.shape}")
    return float(structural_similarity(x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                       data_range=data_range))


def tre(field: np.ndarray, fixed_xy: np.ndarray, moving_xy: np.ndarray) -> float:
    """Mean target registration error in pixels: fixed landmarks mapped through ``field`` vs ``moving_xy``."""
    pred = map_points(field, fixed_xy)
    return float(np.linalg.norm(pred - np.asarray(moving_xy, np.float64), axis=1).mean())


def recoverable_mask(gt_field: np.ndarray) -> np.ndarray:
    """Pixels ``p`` whose ground-truth source ``p + u_gt(p)`` lies inside the moving image (pixel centres).

    Outside it the moving image holds no content for ``p``, so no method can
    recover the displacement there (the warp only extrapolates the border).
    """
    u = np.asarray(gt_field, np.float64)
    h, w = u.shape[1:]
    rows, cols = np.mgrid[:h, :w]
    sy, sx = rows + u[0], cols + u[1]
    return (sy >= 0) & (sy <= h - 1) & (sx >= 0) & (sx <= w - 1)


def epe(field: np.ndarray, gt_field: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean end-point error in pixels between a field and the ground-truth field.

    ``mask``: the pixels averaged over (default :func:`recoverable_mask` of ``gt_field``);
    NaN when it is empty.
    """
    diff = np.asarray(field, np.float64) - np.asarray(gt_field, np.float64)
    err = np.sqrt((diff**2).sum(axis=0))
    keep = recoverable_mask(gt_field) if mask is None else np.asarray(mask, bool)
    return float(err[keep].mean()) if keep.any() else float("nan")


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

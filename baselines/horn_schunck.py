r"""Coarse-to-fine Horn-Schunck optical flow with warping, as a registration method.

Horn & Schunck (1981), "Determining optical flow", Artificial Intelligence 17,
minimise over the flow :math:`w = (w_y, w_x)`

.. math:: E(w) = \int (I_x w_x + I_y w_y + I_t)^2 + \alpha^2 (|\nabla w_x|^2 + |\nabla w_y|^2)\,dp,

whose Euler-Lagrange equations, with the Laplacian approximated as
:math:`\nabla^2 w \approx \bar w - w` (their eq. 9-10, :math:`\bar w` the
average with weights 1/6 for edge neighbours and 1/12 for diagonal ones,
their Fig. 2), give the Jacobi-style iteration (their eq. 11-12)

.. math:: w^{k+1} = \bar w^k - \nabla I \, \frac{I_x \bar w_x^k + I_y \bar w_y^k + I_t}{\alpha^2 + I_x^2 + I_y^2}.

Here the brightness-constancy term is linearised around the current warp
:math:`u` (the field from the coarser level or the previous warp): with
:math:`M_u(p) = M(p + u(p))` the moving image warped by the shared routine,
:math:`M(p + w(p)) \approx M_u(p) + \nabla M_u \cdot (w - u)`, so
:math:`I_t = M_u - F - \nabla M_u \cdot u` and the smoothness term acts on the
whole field :math:`w`, not on the increment. Spatial derivatives are central
differences averaged over :math:`M_u` and :math:`F` (as HS average both frames).
The result is the suite's pull-back field: ``u[0]`` rows, ``u[1]`` columns,
``warped(p) = moving(p + u(p))``.
"""

from __future__ import annotations

import numpy as np

from pcreg.methods.base import Method, Registration
from pcreg.warp import warp_image

_CENTRAL = np.array([-0.5, 0.0, 0.5], np.float32)
_HS_KERNEL = np.array([[1, 2, 1], [2, 0, 2], [1, 2, 1]], np.float32) / 12.0


def hs_average(component: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Horn-Schunck neighbourhood average of one flow component: 1/6 edge, 1/12 diagonal neighbours.

    OpenCV's ``filter2D`` (about 20x faster than ``scipy.ndimage.correlate``
    here, and exact); borders are replicated, i.e. zero normal derivative of
    the flow.
    """
    import cv2

    return cv2.filter2D(component, cv2.CV_32F, _HS_KERNEL, dst=out, borderType=cv2.BORDER_REPLICATE)


def normalize_pair(moving: np.ndarray, fixed: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Map intensities for the brightness-constancy term, then divide both by the fixed image's std.

    ``none`` keeps intensities; ``zscore`` makes each image zero-mean, unit-std
    (removes a global gain/offset between domains); ``histogram`` matches the
    moving image's histogram to the fixed one (any monotone intensity change).
    The common rescaling makes ``alpha`` independent of the overall contrast.
    """
    moving = np.asarray(moving, np.float32)
    fixed = np.asarray(fixed, np.float32)
    if mode == "zscore":
        moving = (moving - moving.mean()) / max(float(moving.std()), 1e-6)
        fixed = (fixed - fixed.mean()) / max(float(fixed.std()), 1e-6)
    elif mode == "histogram":
        from skimage.exposure import match_histograms

        moving = match_histograms(moving, fixed).astype(np.float32)
    scale = np.float32(1.0 / max(float(fixed.std()), 1e-6))
    return moving * scale, fixed * scale


def _resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize with pixel-centre alignment (scikit-image), float32."""
    from skimage.transform import resize

    return resize(image, shape, order=1, mode="edge", anti_aliasing=False, preserve_range=True).astype(np.float32)


def pyramid(image: np.ndarray, levels: int, min_size: int = 8) -> list[np.ndarray]:
    """Gaussian pyramid, finest first: blur (sigma 1) and halve until ``levels`` or ``min_size``."""
    from scipy import ndimage

    out = [image]
    while len(out) < levels:
        prev = out[-1]
        shape = ((prev.shape[0] + 1) // 2, (prev.shape[1] + 1) // 2)
        if min(shape) < min_size:
            break
        out.append(_resize(ndimage.gaussian_filter(prev, 1.0, mode="nearest"), shape))
    return out


def upsample_field(field: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a ``(2, h, w)`` field to ``shape`` and scale each component by the grid ratio (about 2)."""
    ratios = (shape[0] / field.shape[1], shape[1] / field.shape[2])
    return np.stack([_resize(field[c], shape) * np.float32(ratios[c]) for c in range(2)])


def horn_schunck_level(
    moving: np.ndarray, fixed: np.ndarray, init: np.ndarray, alpha: float, iterations: int, warps: int
) -> np.ndarray:
    """Refine ``init`` (pull-back field) at one pyramid level: ``warps`` re-linearisations of HS Jacobi sweeps."""
    from scipy import ndimage

    def grad(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (
            ndimage.correlate1d(image, _CENTRAL, axis=0, mode="nearest"),
            ndimage.correlate1d(image, _CENTRAL, axis=1, mode="nearest"),
        )

    fy, fx = grad(fixed)
    alpha2 = np.float32(alpha * alpha)
    w = init.astype(np.float32, copy=True)
    avg = np.empty_like(w)
    t = np.empty_like(fixed)
    tmp = np.empty_like(fixed)
    for _ in range(warps):
        warped = warp_image(moving, w)
        my, mx = grad(warped)
        iy, ix = 0.5 * (my + fy), 0.5 * (mx + fx)
        it = warped - fixed - ix * w[1] - iy * w[0]  # linearised around the current field w
        inv_den = 1.0 / (alpha2 + ix * ix + iy * iy)
        for _ in range(iterations):  # Jacobi sweeps, in place on preallocated buffers
            hs_average(w[0], avg[0])
            hs_average(w[1], avg[1])
            np.multiply(ix, avg[1], out=t)
            np.multiply(iy, avg[0], out=tmp)
            t += tmp
            t += it
            t *= inv_den
            np.multiply(iy, t, out=tmp)
            np.subtract(avg[0], tmp, out=w[0])
            np.multiply(ix, t, out=tmp)
            np.subtract(avg[1], tmp, out=w[1])
    return w


class HornSchunck(Method):
    """Horn-Schunck optical flow, coarse-to-fine with warping (see the module docstring for the equations)."""

    name = "horn_schunck"
    label = "Horn-Schunck"
    PARAMS_SCHEMA = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "alpha": {
                "type": "number",
                "exclusiveMinimum": 0,
                "default": 0.3,
                "description": "Smoothness weight alpha (energy weight alpha^2), in units of the fixed image's "
                "intensity std per pixel (intensities are divided by it).",
            },
            "iterations": {
                "type": "integer",
                "minimum": 1,
                "default": 100,
                "description": "Jacobi iterations per warp at each pyramid level.",
            },
            "warps": {
                "type": "integer",
                "minimum": 1,
                "default": 2,
                "description": "Re-warpings (re-linearisations of brightness constancy) per pyramid level.",
            },
            "levels": {
                "type": "integer",
                "minimum": 1,
                "default": 4,
                "description": "Pyramid levels (factor 2 each); fewer if the image gets smaller than 8 px.",
            },
            "sigma": {
                "type": "number",
                "minimum": 0,
                "default": 1.0,
                "description": "Gaussian pre-smoothing of both images in pixels (0 = none).",
            },
            "normalize": {
                "enum": ["none", "zscore", "histogram"],
                "default": "histogram",
                "description": "Intensity normalisation for cross-domain pairs: none, zscore (each image zero-mean "
                "unit-std) or histogram (moving histogram-matched to fixed).",
            },
        },
    }

    def register(self, moving: np.ndarray, fixed: np.ndarray) -> Registration:
        import cv2
        from scipy import ndimage

        cv2.setNumThreads(self.threads)  # filter2D; the numpy/scipy parts are single-threaded
        p = self.params
        moving, fixed = normalize_pair(moving, fixed, p["normalize"])
        if p["sigma"] > 0:
            moving = ndimage.gaussian_filter(moving, p["sigma"], mode="nearest")
            fixed = ndimage.gaussian_filter(fixed, p["sigma"], mode="nearest")
        pyr_m, pyr_f = pyramid(moving, p["levels"]), pyramid(fixed, p["levels"])
        field = np.zeros((2, *pyr_f[-1].shape), np.float32)
        for m, f in zip(reversed(pyr_m), reversed(pyr_f)):
            if field.shape[1:] != f.shape:
                field = upsample_field(field, f.shape)
            field = horn_schunck_level(m, f, field, p["alpha"], p["iterations"], p["warps"])
        return Registration(field=field)

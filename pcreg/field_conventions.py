"""Converting displacement fields from other conventions into the suite's (docs/CONVENTIONS.md).

Fields made elsewhere come in four common conventions: the component order is
``row-col`` (``u[0]`` along rows, the suite's) or ``x-y`` (``u[0]`` along
columns, OpenCV/flow libraries), and the direction is ``pull-back`` (defined on
the fixed grid, ``warped(p) = moving(p + u(p))``, the suite's) or
``push-forward`` (defined on the moving grid: the moving point ``q`` goes to
``q + v(q)`` in the fixed image). A push-forward field is turned into a
pull-back one by fixed-point inversion (:func:`invert_push_forward`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from pcreg.warp import identity_grid

DIRECTIONS = ("pull-back", "push-forward")
ORDERS = ("row-col", "x-y")


def as_channels_first(field: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``(2, H, W)`` from ``(2, H, W)`` or ``(H, W, 2)``; ValueError naming the expected shapes otherwise."""
    field = np.asarray(field)
    h, w = shape
    if field.shape == (2, h, w):
        return field
    if field.shape == (h, w, 2):
        return np.moveaxis(field, -1, 0)
    raise ValueError(f"field has shape {field.shape}, expected (2, {h}, {w}) or ({h}, {w}, 2)")


def invert_push_forward(v: np.ndarray, iterations: int = 100, tol: float = 1e-4) -> tuple[np.ndarray, float]:
    """Pull-back field ``u`` (fixed grid) of a push-forward field ``v`` (moving grid), both ``(2, H, W)`` row-col.

    ``u`` solves ``u(p) = -v(p + u(p))`` (the moving point ``p + u(p)`` is sent to
    ``p``), found by the fixed-point iteration ``u <- -v(p + u)`` with bilinear
    sampling and replicated borders, from ``u = -v``. It converges when ``v`` is
    smooth enough to be invertible (Jacobian of ``v`` below 1 in norm). Returns
    ``u`` and the final residual ``max |u + v(p + u)|`` in pixels.
    """
    v = np.asarray(v, dtype=np.float64)
    grid = identity_grid(v.shape[1:])
    u = -v.copy()
    residual = np.inf
    for _ in range(max(1, iterations)):
        coords = grid + u
        sampled = np.stack([ndimage.map_coordinates(v[c], coords, order=1, mode="nearest") for c in range(2)])
        new_u = -sampled
        residual = float(np.max(np.abs(new_u - u)))
        u = new_u
        if residual < tol:
            break
    return u.astype(np.float32), residual


def to_suite_field(field: np.ndarray, shape: tuple[int, int], *, direction: str = "pull-back",
                   order: str = "row-col", iterations: int = 100, tol: float = 1e-3) -> np.ndarray:
    """Convert ``field`` (``(2, H, W)`` or ``(H, W, 2)``) in the declared convention to the suite's.

    ValueError when the shape is wrong, a value is not finite, or a push-forward
    field does not invert (residual above ``tol`` pixels).
    """
    if direction not in DIRECTIONS or order not in ORDERS:
        raise ValueError(f"unknown convention {direction!r}/{order!r}; expected {DIRECTIONS} and {ORDERS}")
    u = as_channels_first(field, shape).astype(np.float64)
    if not np.all(np.isfinite(u)):
        raise ValueError("field contains NaN or infinite values")
    if order == "x-y":
        u = u[::-1]
    if direction == "push-forward":
        u, residual = invert_push_forward(u, iterations=iterations, tol=tol / 10)
        if residual > tol:
            raise ValueError(f"push-forward field did not invert (fixed-point residual {residual:.3g} px after "
                             f"{iterations} iterations); is it folding?")
    return np.ascontiguousarray(u, dtype=np.float32)

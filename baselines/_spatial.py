"""Differentiable warping in the suite's field convention, and size padding for networks.

The suite's convention (docs/CONVENTIONS.md): a field ``u`` of shape ``(B, 2, H, W)``
in pixels, ``u[:, 0]`` along rows and ``u[:, 1]`` along columns, pull-back:
``warped(p) = moving(p + u(p))``. :func:`warp` is the torch counterpart of
:func:`pcreg.warp.warp_image` (bilinear, replicated borders), so a network trained
through it predicts the field that the shared numpy routine then applies.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pixel_to_grid(field: torch.Tensor) -> torch.Tensor:
    """Absolute sampling grid for ``grid_sample`` from a pixel field ``(B, 2, H, W)``.

    Returns ``(B, H, W, 2)`` with ``(x, y)`` normalised to ``[-1, 1]`` for
    ``align_corners=True`` (pixel centres at integer coordinates, the corners at -1 and 1).
    """
    _, _, h, w = field.shape
    rows = torch.arange(h, device=field.device, dtype=field.dtype)
    cols = torch.arange(w, device=field.device, dtype=field.dtype)
    grid_r, grid_c = torch.meshgrid(rows, cols, indexing="ij")
    r = grid_r + field[:, 0]
    c = grid_c + field[:, 1]
    # A 1-pixel axis has no extent; map it to 0 instead of dividing by zero.
    y = 2.0 * r / max(h - 1, 1) - 1.0
    x = 2.0 * c / max(w - 1, 1) - 1.0
    return torch.stack([x, y], dim=-1)


def warp(moving: torch.Tensor, field: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Warp ``moving`` ``(B, C, H, W)`` by the pull-back pixel field ``(B, 2, H, W)``.

    Matches :func:`pcreg.warp.warp_image`: ``out(p) = moving(p + u(p))``, bilinear,
    with border values replicated.
    """
    b, _, h, w = moving.shape
    if tuple(field.shape) != (b, 2, h, w):
        raise ValueError(f"field must be (B, 2, H, W) matching moving {tuple(moving.shape)}, got {tuple(field.shape)}")
    grid = pixel_to_grid(field.to(moving.dtype))
    return F.grid_sample(moving, grid, mode=mode, padding_mode="border", align_corners=True)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad ``x`` ``(B, C, H, W)`` at the bottom/right (edge-replicated) to a multiple of ``multiple``.

    Returns the padded tensor and the original ``(H, W)``; crop outputs with ``[..., :H, :W]``.
    Padding only at the far edges keeps pixel coordinates, so a field predicted on the
    padded grid is the field of the original grid after cropping.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x, (h, w)

"""Unsupervised registration losses: image similarity + lambda * field smoothness.

The terms are neurite's (the loss package of the official VoxelMorph): local NCC
(``neurite.nn.modules.NCC``, the squared local correlation in [0, 1], negated here so
that lower is better), MSE, and the l2 spatial-gradient ("diffusion") regulariser
``SpatialGradient(penalty='l2')``, which is VoxelMorph's ``Grad('l2')`` and
TransMorph's ``Grad2d(penalty='l2')``. They are evaluated in float32 with autocast
off.

The local NCC is :class:`GuardedNCC`: neurite's formula (same box sums, same
``eps``), guarded for flat regions. Neurite's NCC asserts that every local
coefficient lies in [0, 1]; on pairs with large uniform areas (FIRE's black corners
outside the field of view, a saturated optic disc) float32 cancellation in the
local variances breaks that and the assertion stops training (and with it the whole
benchmark), while flat windows that pass the check add noise (a constant pair scores
about 0.06 instead of 0). Here a window where either image is flat (local standard
deviation below :data:`FLAT_STD`) has no correlation (coefficient 0, as an exact
computation gives), negative variances from rounding are clamped to 0, and the
coefficients are clipped to [0, 1].
"""

from __future__ import annotations

import neurite as ne
import torch
from torch import nn

SIMILARITIES = ("ncc", "mse")

#: Local standard deviation (intensities in [0, 1]) below which a window counts as flat: a quarter of an
#: 8-bit grey level, far above float32 rounding of the local moments and far below any texture.
FLAT_STD = 1e-3


class GuardedNCC(nn.Module):
    """Local NCC (mean squared local correlation in [0, 1], as ``neurite.nn.modules.NCC``), safe on flat regions.

    Returns one score per image ``(B,)`` of ``(B, 1, H, W)`` inputs. Same box sums and ``eps`` as neurite, so on
    textured images the two agree to float rounding (tested); see the module docstring for the guard.
    """

    def __init__(self, window_size: int = 9, eps: float = 1e-5, flat_std: float = FLAT_STD):
        super().__init__()
        self.window_size = int(window_size)
        self.eps = float(eps)
        self.flat_std = float(flat_std)

    def forward(self, tensor1: torch.Tensor, tensor2: torch.Tensor) -> torch.Tensor:
        return self.local(tensor1, tensor2).reshape(tensor1.shape[0], -1).mean(dim=1)

    def local(self, tensor1: torch.Tensor, tensor2: torch.Tensor) -> torch.Tensor:
        """The local coefficients ``(B * C, 1, H, W)`` in [0, 1] (zero-padded windows at the border, as neurite)."""
        if tensor1.shape != tensor2.shape:
            raise ValueError(f"shape mismatch: {tuple(tensor1.shape)} vs {tuple(tensor2.shape)}")
        a = tensor1.reshape(-1, 1, *tensor1.shape[2:])
        c = tensor2.reshape(-1, 1, *tensor2.shape[2:])
        win = [self.window_size] * (a.ndim - 2)
        sums = ne.nn.functional.box_filter(torch.cat((a, c, a * a, c * c, a * c), dim=1), window_size=win)
        a_sum, c_sum, a2_sum, c2_sum, ac_sum = sums.chunk(5, dim=1)
        n = float(self.window_size ** len(win))
        cross = ac_sum - a_sum * c_sum / n
        a_var = (a2_sum - a_sum.square() / n).clamp_min(0.0)
        c_var = (c2_sum - c_sum.square() / n).clamp_min(0.0)
        flat = n * self.flat_std**2
        textured = (a_var > flat) & (c_var > flat)
        cc = torch.where(textured, cross.square() / (a_var * c_var + self.eps), torch.zeros_like(cross))
        return cc.clamp(0.0, 1.0)

#: The VoxelMorph paper's regularisation weights (Balakrishnan et al. 2019, Sec. IV):
#: lambda = 1 is best with NCC and 0.01 with MSE (intensities in [0, 1]).
VOXELMORPH_LAMBDA = {"ncc": 1.0, "mse": 0.01}


class RegistrationLoss(nn.Module):
    """``similarity(warped, fixed) + lam * gradient_l2(flow)``; returns the total and its parts."""

    def __init__(self, similarity: str = "ncc", lam: float = 1.0, ncc_window: int = 9):
        super().__init__()
        if similarity not in SIMILARITIES:
            raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")
        self.similarity = similarity
        self.lam = float(lam)
        self.ncc = GuardedNCC(window_size=int(ncc_window))
        self.mse = ne.nn.modules.MSE()
        self.grad = ne.nn.modules.SpatialGradient(penalty="l2")

    def similarity_term(self, warped: torch.Tensor, fixed: torch.Tensor) -> torch.Tensor:
        """Dissimilarity of ``warped`` and ``fixed`` ``(B, 1, H, W)`` (lower is better)."""
        if self.similarity == "ncc":
            return -self.ncc(warped, fixed).mean()
        return self.mse(warped, fixed)

    def forward(
        self, warped: torch.Tensor, fixed: torch.Tensor, flow: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        device_type = warped.device.type
        with torch.autocast(device_type=device_type, enabled=False):
            sim = self.similarity_term(warped.float(), fixed.float())
            reg = self.grad(flow.float())
            total = sim + self.lam * reg
        # Parts stay tensors (detached) so logging them costs no device synchronisation.
        return total, {"similarity": sim.detach(), "smoothness": reg.detach()}


def endpoint_error(field: torch.Tensor, gt_field: torch.Tensor, eps: float = 1e-6, cap: float = 0.0) -> torch.Tensor:
    """Mean end-point error (px) of a batch of fields ``(B, 2, H, W)`` over the recoverable pixels;
    differentiable at zero error (``eps``).

    The supervision term of the learned baselines where the training split stores the
    ground-truth field (the synthetic sets). Like the suite's EPE metric
    (:func:`pcreg.metrics.epe`) it averages only over pixels whose ground-truth source
    ``p + u_gt(p)`` lies inside the moving image (elsewhere nothing in the images says
    where the pixel came from); a batch item with no such pixel contributes nothing.

    ``cap`` > 0 (px): pixels whose error exceeds it count as ``cap`` (no gradient), so pairs the
    pre-alignment got grossly wrong -- far outside any local refinement's capture range -- do not
    drive training; the mean is still over all recoverable pixels.
    """
    with torch.autocast(device_type=field.device.type, enabled=False):
        diff = field.float() - gt_field.float()
        err = torch.sqrt((diff * diff).sum(dim=1) + eps)
        if cap > 0:
            err = err.clamp(max=float(cap))
        h, w = gt_field.shape[-2:]
        rows = torch.arange(h, device=field.device, dtype=torch.float32)[:, None]
        cols = torch.arange(w, device=field.device, dtype=torch.float32)[None, :]
        src_r, src_c = rows + gt_field[:, 0].float(), cols + gt_field[:, 1].float()
        mask = ((src_r >= 0) & (src_r <= h - 1) & (src_c >= 0) & (src_c <= w - 1)).float()
        return (err * mask).sum() / mask.sum().clamp_min(1.0)

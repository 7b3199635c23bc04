"""Unsupervised registration losses: image similarity + lambda * field smoothness.

The terms are neurite's (the loss package of the official VoxelMorph): local NCC
(``neurite.nn.modules.NCC``, the squared local correlation in [0, 1], negated here so
that lower is better), MSE, and the l2 spatial-gradient ("diffusion") regulariser
``SpatialGradient(penalty='l2')``, which is VoxelMorph's ``Grad('l2')`` and
TransMorph's ``Grad2d(penalty='l2')``. They are evaluated in float32 with autocast
off: neurite's NCC asserts its local coefficients lie in [0, 1], which half precision
can break.
"""

from __future__ import annotations

import neurite as ne
import torch
from torch import nn

SIMILARITIES = ("ncc", "mse")

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
        self.ncc = ne.nn.modules.NCC(window_size=int(ncc_window))
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


def endpoint_error(field: torch.Tensor, gt_field: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Mean end-point error (px) of a batch of fields ``(B, 2, H, W)`` over the recoverable pixels;
    differentiable at zero error (``eps``).

    The supervision term of the learned baselines where the training split stores the
    ground-truth field (the synthetic sets). Like the suite's EPE metric
    (:func:`pcreg.metrics.epe`) it averages only over pixels whose ground-truth source
    ``p + u_gt(p)`` lies inside the moving image (elsewhere nothing in the images says
    where the pixel came from); a batch item with no such pixel contributes nothing.
    """
    with torch.autocast(device_type=field.device.type, enabled=False):
        diff = field.float() - gt_field.float()
        err = torch.sqrt((diff * diff).sum(dim=1) + eps)
        h, w = gt_field.shape[-2:]
        rows = torch.arange(h, device=field.device, dtype=torch.float32)[:, None]
        cols = torch.arange(w, device=field.device, dtype=torch.float32)[None, :]
        src_r, src_c = rows + gt_field[:, 0].float(), cols + gt_field[:, 1].float()
        mask = ((src_r >= 0) & (src_r <= h - 1) & (src_c >= 0) & (src_c <= w - 1)).float()
        return (err * mask).sum() / mask.sum().clamp_min(1.0)

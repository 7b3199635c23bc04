"""Differentiable image losses: SSIM and the L1/MSE/SSIM composite used by PCReg-Net.

SSIM here is the suite's metric definition (``pcreg.metrics.ssim``, i.e.
scikit-image's default): a **7x7 uniform window**, K1 = 0.01, K2 = 0.03, data
range 1, sample covariance (N/(N-1)), averaged over the valid interior (no
padding). So ``1 - ssim_torch`` optimises exactly the SSIM that is reported.
A uniform window was chosen over the Gaussian of Wang et al. for that reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def ssim_torch(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, win_size: int = 7) -> torch.Tensor:
    """Mean SSIM of ``x`` and ``y`` (``(B, C, H, W)``), computed in float32; a 0-d tensor.

    Matches :func:`pcreg.metrics.ssim` per image; for a batch it is the mean over
    images (all images have the same number of interior pixels).
    """
    x = x.float()
    y = y.float()
    npix = win_size * win_size
    cov_norm = npix / (npix - 1)

    def mean(t: torch.Tensor) -> torch.Tensor:  # valid-region box filter
        return F.avg_pool2d(t, win_size, stride=1)

    ux, uy = mean(x), mean(y)
    vx = cov_norm * (mean(x * x) - ux * ux)
    vy = cov_norm * (mean(y * y) - uy * uy)
    vxy = cov_norm * (mean(x * y) - ux * uy)
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean()


@dataclass(frozen=True)
class CompositeLoss:
    """``a * L1 + b * MSE + c * (1 - SSIM)`` between a prediction and a target image.

    The paper's weights were lost in extraction; the suite's defaults are equal
    weights ``a = b = c = 1`` (L1 for robust pixel supervision, MSE against large
    deviations, SSIM for structure), set in the method's params.
    """

    l1: float = 1.0
    mse: float = 1.0
    ssim: float = 1.0

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        pred = pred.float()  # under autocast keep the loss in float32
        target = target.float()
        loss = pred.new_zeros(())
        if self.l1:
            loss = loss + self.l1 * F.l1_loss(pred, target)
        if self.mse:
            loss = loss + self.mse * F.mse_loss(pred, target)
        if self.ssim:
            loss = loss + self.ssim * (1.0 - ssim_torch(pred, target))
        return loss


def pcreg_loss(
    final: torch.Tensor, coarse: torch.Tensor, fixed: torch.Tensor, loss: CompositeLoss, aux_weight: float
) -> torch.Tensor:
    """PCReg-Net's objective ``L(final, F) + λ L(coarse, F)`` with ``λ = aux_weight``.

    When ``final`` is ``coarse`` (single-stage variant) only ``L(coarse, F)`` is
    used: the auxiliary term would merely rescale the same loss.
    """
    main = loss(final, fixed)
    if final is coarse or aux_weight == 0:
        return main
    return main + aux_weight * loss(coarse, fixed)

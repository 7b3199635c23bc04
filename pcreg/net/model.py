"""PCReg-Net: progressive contrast-guided registration (image-to-image, no displacement field).

Reconstruction of the paper's four modules (its equations were lost in extraction):

1. **Registration U-Net** ``R``: a 4-level encoder (widths 32/64/128/256, 2x2
   max-pool between levels, one Conv3x3-BN-ReLU block per level), a decoder with
   bilinear up-sampling, skip concatenation and one block per level, and a 1x1
   head to one channel, giving the coarse image ``C``. It also returns its four
   encoder feature maps ``r_1..r_4``. Its input is the moving image alone
   (``registration_input="moving"``, the paper's wording) or moving and fixed
   stacked (``"moving_fixed"``).
2. **Reference feature extractor** ``E``: an encoder of the same widths applied to
   the fixed image (weights not shared), giving ``f_1..f_4``.
3. **Multi-scale contrast module**: ``c_l = ReLU(BN(Conv1x1([r_l, f_l])))``,
   2C -> C channels at each scale.
4. **Refinement U-Net with feature injection**: input ``[C, c_1]`` (1 + 32
   channels), the same encoder/decoder shape; at each of the four decoder levels
   ``d_l <- d_l + P_l(resize(c_l))`` with a 1x1 projection ``P_l`` (C -> C); a 1x1
   head gives the final image.

Parameter count (base width 32, ``registration_input="moving"``): **2,601,282**
(1.6 % above the paper's 2.56M): registration U-Net 970,113, reference encoder
388,800, contrast convs 175,520, refinement U-Net 979,329, injection projections
87,520. ``"moving_fixed"`` adds 288 (one more input channel of the first conv).

Ablation flags (the same model class):

- ``contrast=False``: no reference encoder and no contrast convs; the refinement
  stage receives the registration features ``r_l`` in place of ``c_l``. With the
  moving-only registration input the fixed image then reaches nothing at all
  (the network can only translate the moving image's appearance).
- ``injection=False``: no projections / residual additions; only the finest
  contrast feature (refinement input) is used, so the reference encoder and the
  contrast module are built for the finest scale only.
- ``single_stage=True``: the registration U-Net alone; ``final`` is the coarse image.
- ``λ = 0`` (no auxiliary loss) is a loss setting, not a model flag
  (see :func:`pcreg.net.loss.pcreg_loss`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pcreg.net.blocks import Decoder, Encoder, resize_to

REGISTRATION_INPUTS = ("moving", "moving_fixed")


@dataclass
class PCRegNetOutput:
    """What :meth:`PCRegNet.forward` returns: the final and coarse images ``(B, 1, H, W)``.

    ``contrast`` holds the features handed to the refinement stage (finest
    first); it is empty for the single-stage variant.
    """

    final: torch.Tensor
    coarse: torch.Tensor
    contrast: list[torch.Tensor]


class UNet(nn.Module):
    """Single-block-per-level U-Net with a 1x1 head; returns (image, encoder features)."""

    def __init__(self, in_ch: int, widths: tuple[int, ...]):
        super().__init__()
        self.encoder = Encoder(in_ch, widths)
        self.decoder = Decoder(widths)
        self.head = nn.Conv2d(widths[0], 1, 1)

    def forward(self, x: torch.Tensor, inject=None) -> tuple[torch.Tensor, list[torch.Tensor]]:  # noqa: ANN001
        feats = self.encoder(x)
        return self.head(self.decoder(feats, inject)), feats


class PCRegNet(nn.Module):
    """PCReg-Net (see the module docstring for the architecture and the ablation flags)."""

    def __init__(
        self,
        *,
        base_width: int = 32,
        levels: int = 4,
        registration_input: str = "moving",
        contrast: bool = True,
        injection: bool = True,
        single_stage: bool = False,
    ):
        super().__init__()
        if registration_input not in REGISTRATION_INPUTS:
            raise ValueError(f"registration_input must be one of {REGISTRATION_INPUTS}, got {registration_input!r}")
        self.widths = tuple(base_width * 2**i for i in range(levels))
        self.registration_input = registration_input
        self.contrast_enabled = bool(contrast)
        self.injection_enabled = bool(injection)
        self.single_stage = bool(single_stage)
        self.registration = UNet(2 if registration_input == "moving_fixed" else 1, self.widths)
        if self.single_stage:
            return
        # Scales whose contrast features are consumed: all of them with injection, the finest otherwise.
        used = self.widths if self.injection_enabled else self.widths[:1]
        if self.contrast_enabled:
            self.reference = Encoder(1, used)
            self.contrast = nn.ModuleList(
                nn.Sequential(nn.Conv2d(2 * c, c, 1), nn.BatchNorm2d(c), nn.ReLU(inplace=True)) for c in used
            )
        self.refinement = UNet(1 + self.widths[0], self.widths)
        if self.injection_enabled:
            self.inject_proj = nn.ModuleList(nn.Conv2d(c, c, 1) for c in self.widths)

    def forward(self, moving: torch.Tensor, fixed: torch.Tensor) -> PCRegNetOutput:
        """Register ``moving`` to ``fixed`` (both ``(B, 1, H, W)``)."""
        reg_in = moving if self.registration_input == "moving" else torch.cat([moving, fixed], dim=1)
        coarse, reg_feats = self.registration(reg_in)
        if self.single_stage:
            return PCRegNetOutput(final=coarse, coarse=coarse, contrast=[])
        if self.contrast_enabled:
            ref_feats = self.reference(fixed)
            cfeats = [conv(torch.cat([r, f], dim=1)) for conv, r, f in zip(self.contrast, reg_feats, ref_feats)]
        else:
            cfeats = reg_feats if self.injection_enabled else reg_feats[:1]

        inject = None
        if self.injection_enabled:

            def inject(level: int, x: torch.Tensor) -> torch.Tensor:
                return x + self.inject_proj[level](resize_to(cfeats[level], x))

        final, _ = self.refinement(torch.cat([coarse, cfeats[0]], dim=1), inject)
        return PCRegNetOutput(final=final, coarse=coarse, contrast=cfeats)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (BatchNorm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

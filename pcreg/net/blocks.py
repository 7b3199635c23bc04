"""Building blocks shared by the suite's U-Net style models."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvBlock(nn.Sequential):
    """One Conv3x3 -> BatchNorm -> ReLU block (the paper's single-convolution level).

    The convolution keeps its bias, as a plain ``nn.Conv2d`` does; the documented
    parameter count of PCReg-Net (2,601,282) includes these biases.
    """

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__(nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


class Encoder(nn.Module):
    """A plain encoder: one :class:`ConvBlock` per level, 2x2 max-pool between levels.

    ``forward`` returns the feature map of every level, finest first
    (level ``i`` has ``widths[i]`` channels at 1/2**i of the input size).
    """

    def __init__(self, in_ch: int, widths: tuple[int, ...]):
        super().__init__()
        chans = (in_ch, *widths)
        self.blocks = nn.ModuleList(ConvBlock(chans[i], chans[i + 1]) for i in range(len(widths)))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i, block in enumerate(self.blocks):
            if i > 0:
                x = F.max_pool2d(x, 2)
            x = block(x)
            feats.append(x)
        return feats


def resize_to(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Bilinearly resize ``x`` to the spatial size of ``ref`` (a no-op if they already match).

    ``align_corners=False`` (the PyTorch default, half-pixel centres) keeps the
    up-sampled grid consistent with 2x2 max-pooling; it also lets images whose
    sides are not multiples of 8 pass through (max-pool floors, resize restores).
    """
    if x.shape[-2:] == ref.shape[-2:]:
        return x
    return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=False)


class Decoder(nn.Module):
    """U-Net decoder: bilinear up-sampling, skip concatenation, one :class:`ConvBlock` per level.

    Given encoder features ``[e1, e2, e3, e4]`` (finest first) it produces the
    decoder features ``[d4, d3, d2, d1]`` (coarsest first), with ``d4 = e4``.
    An optional ``inject(level, feature)`` callback adds a residual to each
    decoder level before it is used further (PCReg-Net's feature injection).
    """

    def __init__(self, widths: tuple[int, ...]):
        super().__init__()
        # Level i (from coarse to fine) merges the upsampled widths[i+1] with the skip widths[i].
        self.blocks = nn.ModuleList(
            ConvBlock(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(len(widths) - 1))
        )

    def forward(self, feats: list[torch.Tensor], inject=None) -> torch.Tensor:  # noqa: ANN001 - optional callable
        n = len(feats)
        x = feats[-1]
        if inject is not None:
            x = inject(n - 1, x)
        for j, block in enumerate(self.blocks):
            level = n - 2 - j
            skip = feats[level]
            x = block(torch.cat([resize_to(x, skip), skip], dim=1))
            if inject is not None:
                x = inject(level, x)
        return x


def fuse_conv_bn(model: nn.Module) -> nn.Module:
    """Fold every eval-mode BatchNorm2d that directly follows a Conv2d (inside an ``nn.Sequential``) into it.

    For inference only: the returned model (modified in place, set to eval
    mode) computes the same function up to float rounding with one memory pass
    less per block. Training must use the unfused model.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    model.eval()
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        for i in range(len(module) - 1):
            conv, bn = module[i], module[i + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                module[i] = fuse_conv_bn_eval(conv, bn)
                module[i + 1] = nn.Identity()
    return model

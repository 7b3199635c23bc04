"""TransMorph-2D (Chen et al., "TransMorph: Transformer for unsupervised medical image
registration", Medical Image Analysis 2022), written from the paper and the official
configuration; no maintained package provides it.

Architecture (official 2-D configuration, ``CONFIGS["transmorph"]``):

- input: moving and fixed stacked as 2 channels;
- Swin Transformer encoder: 4x4 patch embedding to 96 channels + LayerNorm, 4 stages
  of depths 2/2/4/2 with 4/4/8/8 heads, window 8, MLP ratio 4, no qkv bias, relative
  position bias, shifted windows (every second block, with attention masks), patch
  merging (2x2 neighbours, 4C -> 2C) between stages, stochastic depth 0.3, a
  LayerNorm on each stage output;
- convolutional decoder: five blocks (bilinear x2 upsampling, concatenated skip,
  two Conv3x3-InstanceNorm-LeakyReLU) with skips from the encoder stages (1/16, 1/8,
  1/4) and from two conv layers on the input at 1/2 (after 3x3 average pooling) and
  full resolution;
- registration head: Conv3x3 16 -> 2 with weights ~ N(0, 1e-5) (``flow_init_std``), so training starts
  near the identity;
- spatial transformer in the suite's convention (:func:`baselines._spatial.warp`).

About 31.0M parameters; ``transmorph-small`` (embed 48, heads 4/4/4/4, as the official
"TransMorph-Small") has about 7.8M.

Two deliberate deviations, both only where the official code would attend to padding:
a stage smaller than the window uses a window of the stage's size without shift (as
the original Swin Transformer does), and windows padded at the image border mask the
padded tokens out of attention (the official code lets zero padding take part). Inputs
of any size are padded (edge-replicated, bottom/right) to a multiple of 32 and the
field is cropped back.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from baselines._spatial import pad_to_multiple, warp


@dataclass(frozen=True)
class TransMorphConfig:
    """Hyper-parameters of TransMorph-2D (defaults: the official 2-D configuration)."""

    embed_dim: int = 96
    depths: tuple[int, ...] = (2, 2, 4, 2)
    num_heads: tuple[int, ...] = (4, 4, 8, 8)
    window_size: int = 8
    patch_size: int = 4
    in_chans: int = 2
    mlp_ratio: float = 4.0
    qkv_bias: bool = False
    drop_rate: float = 0.0
    attn_drop_rate: float = 0.0
    drop_path_rate: float = 0.3
    reg_head_chan: int = 16
    flow_init_std: float = 1e-5  # std of the registration head's weights (official: 1e-5)

    @property
    def size_multiple(self) -> int:
        """Input sizes are padded to a multiple of this (patch size x 2 per patch merging)."""
        return self.patch_size * 2 ** (len(self.depths) - 1)


CONFIGS: dict[str, TransMorphConfig] = {
    "transmorph": TransMorphConfig(),
    "transmorph-small": TransMorphConfig(embed_dim=48, num_heads=(4, 4, 4, 4)),
}


def get_config(variant: str, **overrides) -> TransMorphConfig:
    """The named configuration with ``overrides`` applied (e.g. ``drop_path_rate=0``)."""
    if variant not in CONFIGS:
        raise ValueError(f"unknown TransMorph variant {variant!r}; expected one of {', '.join(CONFIGS)}")
    return replace(CONFIGS[variant], **overrides)


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth: drop the residual branch per sample with probability ``p``, rescale the rest."""
    if p == 0.0 or not training:
        return x
    keep = 1.0 - p
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask / keep


class DropPath(nn.Module):
    """Module form of :func:`drop_path` (what timm calls ``DropPath``)."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Mlp(nn.Module):
    """Transformer feed-forward: Linear - GELU - Linear, with dropout."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


def relative_position_index(wh: int, ww: int, max_window: int) -> torch.Tensor:
    """Index ``(wh*ww, wh*ww)`` into a ``(2*max_window-1)**2`` relative-position bias table.

    Offsets of a window smaller than ``max_window`` are a subset of the full window's, so
    the same learned table serves stages smaller than the window.
    """
    coords = torch.stack(torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij")).flatten(1)
    rel = coords[:, :, None] - coords[:, None, :]  # (2, N, N)
    span = 2 * max_window - 1
    return (rel[0] + max_window - 1) * span + (rel[1] + max_window - 1)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows, with a learned relative position bias."""

    def __init__(self, dim: int, window_size: int, num_heads: int, qkv_bias: bool, attn_drop: float, proj_drop: float):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by {num_heads} heads")
        self.window_size = window_size
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self._index_cache: dict[tuple[int, int, str], torch.Tensor] = {}

    def _bias(self, wh: int, ww: int) -> torch.Tensor:
        key = (wh, ww, str(self.relative_position_bias_table.device))
        if key not in self._index_cache:
            idx = relative_position_index(wh, ww, self.window_size)
            self._index_cache[key] = idx.to(self.relative_position_bias_table.device)
        idx = self._index_cache[key]
        n = wh * ww
        return self.relative_position_bias_table[idx.reshape(-1)].reshape(n, n, -1).permute(2, 0, 1)

    def forward(self, x: torch.Tensor, window: tuple[int, int], mask: torch.Tensor | None) -> torch.Tensor:
        """``x``: ``(num_windows*B, N, C)``; ``mask``: ``(num_windows, N, N)`` of 0 / -100, or None."""
        bw, n, c = x.shape
        qkv = self.qkv(x).reshape(bw, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * self.scale) @ k.transpose(-2, -1)
        attn = attn + self._bias(*window).unsqueeze(0).to(attn.dtype)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(bw // nw, nw, self.num_heads, n, n) + mask[None, :, None].to(attn.dtype)
            attn = attn.view(bw, self.num_heads, n, n)
        attn = self.attn_drop(attn.softmax(dim=-1))
        out = (attn @ v).transpose(1, 2).reshape(bw, n, c)
        return self.proj_drop(self.proj(out))


def window_partition(x: torch.Tensor, wh: int, ww: int) -> torch.Tensor:
    """``(B, H, W, C)`` -> ``(B*num_windows, wh*ww, C)``."""
    b, h, w, c = x.shape
    x = x.view(b, h // wh, wh, w // ww, ww, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, wh * ww, c)


def window_reverse(windows: torch.Tensor, wh: int, ww: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: ``(B*num_windows, wh*ww, C)`` -> ``(B, H, W, C)``."""
    c = windows.shape[-1]
    b = windows.shape[0] // ((h // wh) * (w // ww))
    x = windows.view(b, h // wh, w // ww, wh, ww, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


def attention_mask(
    h: int, w: int, hp: int, wp: int, window: tuple[int, int], shift: tuple[int, int], device: torch.device
) -> torch.Tensor | None:
    """Mask ``(num_windows, N, N)`` for a (possibly shifted, possibly padded) window layout.

    Tokens may attend to each other only if they lie in the same region of the cyclic
    shift (the Swin mask) and are both real or both padding. ``None`` if nothing is masked.
    """
    wh, ww = window
    sh, sw = shift
    if not (sh or sw) and hp == h and wp == w:
        return None
    region = torch.zeros(hp, wp, dtype=torch.long)
    if sh or sw:
        hs = (slice(0, hp - wh), slice(hp - wh, hp - sh), slice(hp - sh, hp)) if sh else (slice(0, hp),)
        ws = (slice(0, wp - ww), slice(wp - ww, wp - sw), slice(wp - sw, wp)) if sw else (slice(0, wp),)
        label = 0
        for a in hs:
            for b in ws:
                region[a, b] = label
                label += 1
    pad = torch.zeros(hp, wp, dtype=torch.long)
    pad[h:, :] = 1
    pad[:, w:] = 1
    # The features are rolled by (-sh, -sw) before partitioning; roll the padding labels alike.
    pad = torch.roll(pad, shifts=(-sh, -sw), dims=(0, 1))
    labels = (region * 2 + pad)[None, :, :, None].float()
    labels = window_partition(labels, wh, ww).squeeze(-1)  # (num_windows, N)
    different = labels[:, None, :] != labels[:, :, None]
    return torch.zeros(different.shape).masked_fill(different, -100.0).to(device)


class SwinBlock(nn.Module):
    """(Shifted-)window attention + MLP, each with pre-LayerNorm and a residual."""

    def __init__(self, dim: int, num_heads: int, window_size: int, shifted: bool, cfg: TransMorphConfig, dp: float):
        super().__init__()
        self.shifted = shifted
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, num_heads, cfg.qkv_bias, cfg.attn_drop_rate, cfg.drop_rate)
        self.drop_path = DropPath(dp)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * cfg.mlp_ratio), cfg.drop_rate)

    def forward(self, x: torch.Tensor, h: int, w: int, layout: dict) -> torch.Tensor:
        b, length, c = x.shape
        wh, ww = layout["window"]
        sh, sw = layout["shift"] if self.shifted else (0, 0)
        hp, wp = layout["padded"]
        shortcut = x
        x = self.norm1(x).view(b, h, w, c)
        if hp != h or wp != w:
            x = F.pad(x, (0, 0, 0, wp - w, 0, hp - h))
        if sh or sw:
            x = torch.roll(x, shifts=(-sh, -sw), dims=(1, 2))
        mask = layout["mask_shifted"] if self.shifted else layout["mask_plain"]
        x = window_reverse(self.attn(window_partition(x, wh, ww), (wh, ww), mask), wh, ww, hp, wp)
        if sh or sw:
            x = torch.roll(x, shifts=(sh, sw), dims=(1, 2))
        x = x[:, :h, :w, :].reshape(b, length, c)
        x = shortcut + self.drop_path(x)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """Concatenate 2x2 neighbouring tokens (4C), LayerNorm, and project to 2C."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, int, int]:
        b, _, c = x.shape
        x = x.view(b, h, w, c)
        if h % 2 or w % 2:
            x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        h2, w2 = x.shape[1], x.shape[2]
        return self.reduction(self.norm(x.view(b, h2 * w2, 4 * c))), h2, w2


class SwinStage(nn.Module):
    """``depth`` Swin blocks (every second one shifted) and an optional patch merging."""

    def __init__(self, dim: int, depth: int, num_heads: int, cfg: TransMorphConfig, dps: list[float], merge: bool):
        super().__init__()
        self.window_size = cfg.window_size
        self.blocks = nn.ModuleList(
            SwinBlock(dim, num_heads, cfg.window_size, shifted=i % 2 == 1, cfg=cfg, dp=dps[i]) for i in range(depth)
        )
        self.downsample = PatchMerging(dim) if merge else None
        self._layouts: dict[tuple[int, int, str], dict] = {}  # masks are rebuilt only for new sizes/devices

    def layout(self, h: int, w: int, device: torch.device) -> dict:
        """Window, shift, padded size and masks of this stage at token resolution ``(h, w)``."""
        key = (h, w, str(device))
        if key not in self._layouts:
            self._layouts[key] = self._make_layout(h, w, device)
        return self._layouts[key]

    def _make_layout(self, h: int, w: int, device: torch.device) -> dict:
        # A stage no larger than the window is one window, without shift (as in Swin).
        wh, ww = min(self.window_size, h), min(self.window_size, w)
        shift = (wh // 2 if h > self.window_size else 0, ww // 2 if w > self.window_size else 0)
        hp, wp = -(-h // wh) * wh, -(-w // ww) * ww
        return {
            "window": (wh, ww),
            "shift": shift,
            "padded": (hp, wp),
            "mask_plain": attention_mask(h, w, hp, wp, (wh, ww), (0, 0), device),
            "mask_shifted": attention_mask(h, w, hp, wp, (wh, ww), shift, device),
        }

    def forward(self, x: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor, int, int]:
        """Returns the stage output (before merging) and the merged tokens with their size."""
        layout = self.layout(h, w, x.device)
        for block in self.blocks:
            x = block(x, h, w, layout)
        if self.downsample is None:
            return x, x, h, w
        merged, h2, w2 = self.downsample(x, h, w)
        return x, merged, h2, w2


class SwinEncoder(nn.Module):
    """Patch embedding + Swin stages; returns the normalised output of every stage as ``(B, C, H, W)``."""

    def __init__(self, cfg: TransMorphConfig):
        super().__init__()
        self.patch_embed = nn.Conv2d(cfg.in_chans, cfg.embed_dim, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.patch_norm = nn.LayerNorm(cfg.embed_dim)
        self.pos_drop = nn.Dropout(cfg.drop_rate)
        n = len(cfg.depths)
        dpr = torch.linspace(0, cfg.drop_path_rate, sum(cfg.depths)).tolist()  # stochastic depth grows with depth
        self.num_features = [cfg.embed_dim * 2**i for i in range(n)]
        self.stages = nn.ModuleList()
        start = 0
        for i in range(n):
            d = cfg.depths[i]
            self.stages.append(
                SwinStage(self.num_features[i], d, cfg.num_heads[i], cfg, dpr[start : start + d], merge=i < n - 1)
            )
            start += d
        self.out_norms = nn.ModuleList(nn.LayerNorm(f) for f in self.num_features)
        self.apply(_init_swin_weights)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.patch_embed(x)
        b, c, h, w = x.shape
        x = self.pos_drop(self.patch_norm(x.flatten(2).transpose(1, 2)))
        outs = []
        for stage, norm, nf in zip(self.stages, self.out_norms, self.num_features):
            out, x, h2, w2 = stage(x, h, w)
            outs.append(norm(out).view(b, h, w, nf).permute(0, 3, 1, 2).contiguous())
            h, w = h2, w2
        return outs


def _init_swin_weights(m: nn.Module) -> None:
    """Swin initialisation: truncated normal (std 0.02) for linear layers, unit LayerNorms."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


class ConvNormAct(nn.Sequential):
    """Conv3x3 (no bias) - InstanceNorm - LeakyReLU, TransMorph's ``Conv2dReLU`` without batch norm."""

    def __init__(self, cin: int, cout: int):
        super().__init__(
            nn.Conv2d(cin, cout, kernel_size=3, padding=1, bias=False),
            nn.InstanceNorm2d(cout),
            nn.LeakyReLU(inplace=True),
        )


class DecoderBlock(nn.Module):
    """Bilinear x2 upsampling, concatenation with a skip, two :class:`ConvNormAct`."""

    def __init__(self, cin: int, cout: int, skip: int):
        super().__init__()
        self.conv1 = ConvNormAct(cin + skip, cout)
        self.conv2 = ConvNormAct(cout, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv2(self.conv1(torch.cat([x, skip], dim=1)))


class TransMorph2D(nn.Module):
    """TransMorph for 2-D pairs: ``forward(moving, fixed) -> (warped, flow)``.

    ``flow`` is ``(B, 2, H, W)`` in the suite's convention (pixels, channel 0 = rows,
    pull-back) and ``warped = warp(moving, flow)``.
    """

    def __init__(self, cfg: TransMorphConfig | None = None):
        super().__init__()
        cfg = cfg or TransMorphConfig()
        self.cfg = cfg
        e, r = cfg.embed_dim, cfg.reg_head_chan
        self.encoder = SwinEncoder(cfg)
        self.up0 = DecoderBlock(8 * e, 4 * e, 4 * e)
        self.up1 = DecoderBlock(4 * e, 2 * e, 2 * e)
        self.up2 = DecoderBlock(2 * e, e, e)
        self.up3 = DecoderBlock(e, e // 2, e // 2)
        self.up4 = DecoderBlock(e // 2, r, r)
        self.c1 = ConvNormAct(cfg.in_chans, e // 2)  # half-resolution conv skip
        self.c2 = ConvNormAct(cfg.in_chans, r)  # full-resolution conv skip
        self.avg_pool = nn.AvgPool2d(3, stride=2, padding=1)
        self.reg_head = nn.Conv2d(r, 2, kernel_size=3, padding=1)
        # Near-zero initial flow: training starts at the identity transform.
        nn.init.normal_(self.reg_head.weight, mean=0.0, std=cfg.flow_init_std)
        nn.init.zeros_(self.reg_head.bias)

    def flow(self, moving: torch.Tensor, fixed: torch.Tensor) -> torch.Tensor:
        """The displacement field ``(B, 2, H, W)`` for ``moving``/``fixed`` ``(B, 1, H, W)``."""
        if moving.shape != fixed.shape or moving.ndim != 4:
            shapes = f"{tuple(moving.shape)}, {tuple(fixed.shape)}"
            raise ValueError(f"moving and fixed must both be (B, 1, H, W); got {shapes}")
        x, (h, w) = pad_to_multiple(torch.cat([moving, fixed], dim=1), self.cfg.size_multiple)
        f5 = self.c2(x)
        f4 = self.c1(self.avg_pool(x))
        feats = self.encoder(x)
        y = self.up0(feats[3], feats[2])
        y = self.up1(y, feats[1])
        y = self.up2(y, feats[0])
        y = self.up3(y, f4)
        y = self.up4(y, f5)
        return self.reg_head(y)[..., :h, :w]

    def forward(self, moving: torch.Tensor, fixed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flow = self.flow(moving, fixed)
        return warp(moving, flow), flow


def build_transmorph(variant: str = "transmorph", **overrides) -> TransMorph2D:
    """A TransMorph-2D of the named configuration (``transmorph`` or ``transmorph-small``)."""
    return TransMorph2D(get_config(variant, **overrides))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

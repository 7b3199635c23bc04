"""Fast inference helpers for the suite's convolutional models (CPU and CUDA).

Why a batch of 8 ran ~3x slower *per pair* than batch 1 on a 2-core CPU
(PCReg-Net at 256x256, measured with ``scripts/bench_pcreg_speed.py --explain``):

- **Page faults, not arithmetic.** A full-resolution activation of one pair is
  8-25 MB (32-96 channels x 256 x 256 x 4 B); at batch 8 it is 64-200 MB. glibc's
  ``malloc`` serves blocks above its mmap threshold (dynamic, at most 32 MB) with
  a fresh ``mmap`` and returns them with ``munmap`` on free, so every large
  activation of every forward is page-faulted in again and zeroed by the kernel:
  ~140,000 minor faults (~0.55 GB touched) and ~0.27 s of system time per pair at
  batch 8 against ~47,000 faults and ~0.09 s at batch 1 (where most blocks fit
  under the threshold and are recycled). The faulting time is the batch-8
  slowdown. ``aten::cat`` and the first conv of each level, which write fresh
  outputs, show it in the profiler. :func:`keep_freed_memory` turns ``mmap`` off
  for ``malloc`` and heap trimming off, so freed activations are reused: minor
  faults per pair drop to ~0.
- **Memory format.** In NCHW, oneDNN reorders every convolution's input and
  output to its blocked layout and back; ``channels_last`` (NHWC) convolutions,
  ``cat`` along channels and ``upsample_bilinear2d`` run without reorders
  (~1.2-1.4x).
- **BatchNorm.** In train mode BN normalises with batch statistics (two extra
  passes, and a batch-dependent result); inference must use ``eval()``. Folding
  the eval BN into the preceding conv (:func:`pcreg.models.blocks.fuse_conv_bn`)
  removes one pass per block.
- **Threads / cache.** On a CPU one 256x256 image already gives each conv
  65,536 output pixels, plenty to fill 2 cores; batching adds no arithmetic
  efficiency, only a larger working set (none of it fits in cache either way).
  So the CPU "batched" path runs micro-batches (default 1 pair) on a warm
  allocator, and its throughput per pair is that of batch 1 or better.
  ``bilinear`` with ``align_corners`` True or False costs the same.

On CUDA the batched path matters: bf16/fp16 autocast, channels_last (tensor
cores want NHWC) and large batches; see :class:`FastPredictor`.
"""

from __future__ import annotations

import copy
import ctypes
import sys
from collections.abc import Callable

import torch
from torch import nn

from pcreg.models.blocks import fuse_conv_bn

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_allocator_tuned = False


def keep_freed_memory() -> bool:
    """Make glibc ``malloc`` keep freed memory for reuse (no ``mmap``, no heap trimming); process-wide.

    Large activations are then recycled instead of being page-faulted in on every
    forward (see the module docstring). The process keeps its peak memory until
    it exits, which suits registration and benchmark processes. Returns False
    (and does nothing) where glibc is not the allocator.
    """
    global _allocator_tuned
    if _allocator_tuned:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    except (OSError, AttributeError):
        return False
    _allocator_tuned = bool(ok)
    return _allocator_tuned


def optimize_for_inference(model: nn.Module, device: torch.device | str, channels_last: bool = True) -> nn.Module:
    """A copy of ``model`` in eval mode with BatchNorm folded, moved to ``device``, optionally channels_last."""
    fast = fuse_conv_bn(copy.deepcopy(model).eval()).to(device)
    if channels_last:
        fast = fast.to(memory_format=torch.channels_last)
    return fast


class FastPredictor:
    """Batched inference of a two-input model ``forward(moving, fixed)`` with the fast settings above.

    ``output`` picks the tensor to return from the model's output (default: the
    output itself, or its ``.final`` attribute when it has one). ``chunk`` is
    the micro-batch size: 0 = automatic (1 pair on CPU, the whole batch on
    CUDA). ``amp_dtype`` (CUDA only) is ``"bfloat16"``, ``"float16"`` or None for
    float32.
    """

    def __init__(
        self,
        model: nn.Module,
        device: torch.device | str = "cpu",
        *,
        channels_last: bool = True,
        fuse: bool = True,
        chunk: int = 0,
        amp_dtype: str | None = "bfloat16",
        output: Callable | None = None,
        tune_allocator: bool = True,
    ):
        self.device = torch.device(device)
        if fuse:
            self.model = optimize_for_inference(model, self.device, channels_last)
        else:
            self.model = copy.deepcopy(model).eval().to(self.device)
            if channels_last:
                self.model = self.model.to(memory_format=torch.channels_last)
        self.channels_last = channels_last
        self.chunk = chunk
        self.amp = self.device.type == "cuda" and amp_dtype is not None
        self.amp_dtype = getattr(torch, amp_dtype) if amp_dtype else torch.float32
        self.output = output or (lambda out: getattr(out, "final", out))
        if tune_allocator and self.device.type == "cpu":
            keep_freed_memory()

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    @torch.inference_mode()
    def __call__(self, moving: torch.Tensor, fixed: torch.Tensor) -> torch.Tensor:
        """Registered images ``(B, 1, H, W)`` (float32, on ``self.device``) for batches ``(B, 1, H, W)``."""
        chunk = self.chunk or (1 if self.device.type == "cpu" else len(moving))
        outs = []
        for start in range(0, len(moving), chunk):
            m = self._prep(moving[start:start + chunk])
            f = self._prep(fixed[start:start + chunk])
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp):
                outs.append(self.output(self.model(m, f)).float())
        return outs[0] if len(outs) == 1 else torch.cat(outs)

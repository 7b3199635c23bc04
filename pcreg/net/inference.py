"""Fast inference helpers for the suite's convolutional models (CPU and CUDA).

Why a batch of 8 ran ~3x slower *per pair* than batch 1 on a 2-core CPU
(PCReg-Net, 256x256, 30.1 GFLOPs per pair; ``scripts/bench_pcreg_speed.py --explain``):

- **Page faults, not arithmetic.** A full-resolution activation of one pair is
  8-25 MB (32-96 channels x 256 x 256 x 4 B); at batch 8 it is 64-200 MB. glibc's
  ``malloc`` serves blocks above its mmap threshold (dynamic, at most 32 MB) with
  a fresh ``mmap`` and gives them back with ``munmap`` on free, so every large
  activation of every forward is page-faulted in again and zeroed by the
  kernel: ~155,000 minor faults (~0.6 GB) and ~0.30 s of system time per pair at
  batch 8 (plus the cache pollution of the zeroing) against ~45,000 faults and
  ~0.05 s at batch 1, where most blocks fit under the threshold and are
  recycled. ``aten::cat`` and the convolutions that write fresh outputs show it
  in the profiler. :func:`keep_freed_memory` turns ``mmap`` off for ``malloc``
  and heap trimming off, so freed activations are reused: 0 faults per pair,
  and batch 8 runs as fast per pair as batch 1 (measured ~4.0 vs ~4.1 pairs/s,
  where the default allocator gave ~1.1-1.8 vs ~3-4).
- **Memory format.** In NCHW, oneDNN reorders every convolution's input and
  output to its blocked layout and back, and ``upsample_bilinear2d`` is ~3.5x
  slower than in ``channels_last`` (NHWC), where convolutions, the channel
  ``cat`` and up-sampling need no reorders. ``align_corners`` True vs False
  makes no measurable difference.
- **BatchNorm.** In train mode BN normalises with batch statistics (extra
  passes, and a batch-dependent result); inference must use ``eval()``. Folding
  the eval BN into the preceding conv (:func:`pcreg.net.blocks.fuse_conv_bn`)
  removes one pass per block. Channels_last + folding: ~1.4x at batch 1
  (~5.5 vs ~3.9 pairs/s with 2 threads, best of several runs).
- **Threads / cache.** One 256x256 image already gives each conv 65,536 output
  pixels, plenty to fill 2 cores: batching adds no arithmetic efficiency on a
  CPU, only a larger working set. So the CPU "batched" path runs micro-batches
  (default 1 pair) on a warm allocator; its throughput per pair equals batch 1
  (measured 6.07 vs 6.07 pairs/s best-of). On a shared machine, OpenMP with as
  many threads as cores stalls whenever another process takes a core (single
  timings then swing up to 5x): benchmark with best-of-N, interleaved.

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

from pcreg.net.blocks import fuse_conv_bn

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

"""bfloat16 on the CPU: detect support, and the autocast context the harness and inference use (method layer).

bf16 autocast runs convolutions and matmuls in bfloat16 through oneDNN, which is
fast only where the CPU has native bf16 instructions (AVX512-BF16 or AMX-BF16);
elsewhere oneDNN emulates them and bf16 is *slower* than fp32. So it is used only
where detected, never assumed: :func:`cpu_bf16_supported` needs the CPU flags
(``/proc/cpuinfo`` on Linux), an AVX-512 (or better) kernel path in this torch build
(``torch.backends.cpu.get_cpu_capability()``) and oneDNN's own bf16 check. Where it
is not supported, a method asking for ``cpu_bf16`` runs in float32 (one log line).

Results in bf16 differ from fp32 by rounding (checked by ``scripts/bench_training.py``),
but a bf16 run is as deterministic on one machine as an fp32 one.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from pathlib import Path

import torch

_BF16_FLAGS = {"avx512_bf16", "amx_bf16"}


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags from ``/proc/cpuinfo`` (empty where it cannot be read)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


@functools.cache
def cpu_bf16_supported() -> bool:
    """True where this CPU and torch build run bf16 natively (see the module docstring)."""
    capability = torch.backends.cpu.get_cpu_capability()
    if not (capability.startswith("AVX512") or "AMX" in capability):
        return False
    if not _BF16_FLAGS & cpu_flags():
        return False
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(check()) if check is not None else True


def use_cpu_bf16(requested: bool) -> bool:
    """Whether to autocast to bf16 on the CPU: ``requested`` and supported (a log line when refused)."""
    if requested and not cpu_bf16_supported():
        _warn_once()
        return False
    return bool(requested)


@functools.cache
def _warn_once() -> None:
    print("cpu_bf16 requested but this CPU has no native bfloat16 (avx512_bf16/amx_bf16): running in float32",
          file=sys.stderr, flush=True)


def cpu_autocast(enabled: bool) -> contextlib.AbstractContextManager:
    """``torch.autocast("cpu", bfloat16)`` when ``enabled`` (after :func:`use_cpu_bf16`), else a no-op."""
    return torch.autocast("cpu", dtype=torch.bfloat16) if enabled else contextlib.nullcontext()

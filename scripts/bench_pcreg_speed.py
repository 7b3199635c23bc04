#!/usr/bin/env python
"""Speed benchmark of PCReg-Net: parameters, GFLOPs per pair, pairs/s at batch 1 and batched.

For the CPU it times two paths at batch 1 and at ``--batch``:

- ``naive``: eval mode, NCHW, BatchNorm unfused, the default allocator, the
  whole batch in one forward (what a plain script does);
- ``fast``: :class:`pcreg.net.inference.FastPredictor` (BatchNorm folded,
  channels_last, freed memory kept by the allocator, micro-batches of one pair).

On CUDA (when present): float32 at batch 1, and the batched path with bf16 (or
``--gpu-amp float16``) autocast + channels_last at ``--gpu-batch``, optionally
``--compile`` (torch.compile), with warm-up and ``torch.cuda.synchronize``.

``--explain`` adds the diagnostic variants behind the docstring of
:mod:`pcreg.net.inference` (train-mode BN, allocator, memory format, BN
folding, micro-batching; minor page faults and system time per pair).

Timing: each variant is timed over several rounds, interleaved with the others,
and both the best and the median throughput are reported: on a shared machine
the best is the closest to what the hardware can do. Rows are appended to
``--out`` (CSV).

    python scripts/bench_pcreg_speed.py --size 256 --batch 8 --device cpu
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from pcreg.net.inference import FastPredictor, keep_freed_memory  # noqa: E402
from pcreg.net.model import PCRegNet, count_parameters  # noqa: E402

COLUMNS = [
    "timestamp", "device", "device_name", "threads", "size", "batch", "path", "pairs_per_s_best",
    "pairs_per_s_median", "ms_per_pair_best", "minflt_per_pair", "sys_s_per_pair", "params", "gflops_per_pair",
    "torch",
]


@dataclass
class Variant:
    """One timed configuration: ``run()`` processes ``batch`` pairs."""

    name: str
    batch: int
    run: Callable[[], object]
    sync: Callable[[], None] = lambda: None
    times: list[float] = field(default_factory=list)
    minflt: int = 0
    sys_s: float = 0.0

    def time_once(self) -> None:
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        self.sync()
        t0 = time.perf_counter()
        self.run()
        self.sync()
        self.times.append(time.perf_counter() - t0)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        self.minflt += r1.ru_minflt - r0.ru_minflt
        self.sys_s += r1.ru_stime - r0.ru_stime

    def summary(self) -> dict[str, float]:
        n = len(self.times) * self.batch
        return {
            "pairs_per_s_best": self.batch / min(self.times),
            "pairs_per_s_median": self.batch / statistics.median(self.times),
            "ms_per_pair_best": 1000 * min(self.times) / self.batch,
            "minflt_per_pair": self.minflt / n,
            "sys_s_per_pair": self.sys_s / n,
        }


def gflops_per_pair(model: torch.nn.Module, size: int) -> float:
    """Forward GFLOPs of one pair counted by ``torch.utils.flop_counter`` (convs as 2 x MACs; BN/ReLU excluded)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.rand(1, 1, size, size)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.eval()(x, x)
    return counter.get_total_flops() / 1e9


def measure(variants: list[Variant], rounds: int, warmup: int) -> None:
    """Warm up every variant, then time them in interleaved rounds (shared-machine load hits all alike)."""
    for v in variants:
        for _ in range(warmup):
            v.run()
        v.sync()
    for _ in range(rounds):
        for v in variants:
            v.time_once()


def cpu_variants(model: PCRegNet, size: int, batch: int, explain: bool) -> tuple[list[Variant], list[Variant]]:
    """(variants using the default allocator, variants after :func:`keep_freed_memory`)."""

    def pair(b: int, cl: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(b)
        m, f = torch.rand(b, 1, size, size, generator=g), torch.rand(b, 1, size, size, generator=g)
        if cl:
            m, f = m.contiguous(memory_format=torch.channels_last), f.contiguous(memory_format=torch.channels_last)
        return m, f

    def plain(b: int, cl: bool, fuse: bool, train_bn: bool = False) -> Callable[[], object]:
        net = FastPredictor(model, "cpu", channels_last=cl, fuse=fuse, chunk=b, tune_allocator=False).model
        if train_bn:
            net.train()
        m, f = pair(b, cl)

        def run() -> object:
            with torch.inference_mode():
                return net(m, f)

        return run

    def fast(b: int, chunk: int = 0) -> Callable[[], object]:
        pred = FastPredictor(model, "cpu", chunk=chunk, tune_allocator=False)
        m, f = pair(b)
        return lambda: pred(m, f)

    before: list[Variant] = []
    for b in sorted({1, batch}):
        before.append(Variant(f"naive b{b}", b, plain(b, False, False)))
    if explain:
        for b in sorted({1, batch}):
            before.append(Variant(f"train-mode BN b{b}", b, plain(b, False, False, train_bn=True)))
            before.append(Variant(f"channels_last+fused, default allocator b{b}", b, plain(b, True, True)))
    after: list[Variant] = []
    if explain:
        for b in sorted({1, batch}):
            after.append(Variant(f"NCHW unfused, kept memory b{b}", b, plain(b, False, False)))
            after.append(Variant(f"channels_last+fused, kept memory, one forward b{b}", b, plain(b, True, True)))
    for b in sorted({1, batch}):
        after.append(Variant(f"fast b{b}", b, fast(b)))
    return before, after


def explain_upsample(size: int) -> None:
    """Bilinear up-sampling cost: align_corners True vs False, NCHW vs channels_last."""
    x = torch.rand(8, 64, size // 2, size // 2)
    for cl in (False, True):
        xx = x.contiguous(memory_format=torch.channels_last) if cl else x
        for ac in (False, True):
            F.interpolate(xx, scale_factor=2, mode="bilinear", align_corners=ac)
            t0 = time.perf_counter()
            for _ in range(3):
                F.interpolate(xx, scale_factor=2, mode="bilinear", align_corners=ac)
            dt = (time.perf_counter() - t0) / 3
            fmt = "channels_last" if cl else "NCHW"
            print(f"  upsample (8,64,{size // 2},{size // 2}) x2 {fmt:13s} align_corners={ac!s:5s}: {1000 * dt:.1f} ms")


def gpu_variants(model: PCRegNet, size: int, gpu_batch: int, amp: str, compile_: bool) -> list[Variant]:
    dev = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    sync = torch.cuda.synchronize

    def inputs(b: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.rand(b, 1, size, size, device=dev), torch.rand(b, 1, size, size, device=dev)

    out: list[Variant] = []
    fp32 = FastPredictor(model, dev, channels_last=False, amp_dtype=None)
    m1, f1 = inputs(1)
    out.append(Variant("cuda fp32 b1", 1, lambda: fp32(m1, f1), sync))
    fast = FastPredictor(model, dev, channels_last=True, amp_dtype=amp)
    out.append(Variant(f"cuda {amp} channels_last b1", 1, lambda: fast(m1, f1), sync))
    batched = FastPredictor(model, dev, channels_last=True, amp_dtype=amp)
    if compile_:
        batched.model = torch.compile(batched.model)
    mb, fb = inputs(gpu_batch)
    tag = "+compile" if compile_ else ""
    out.append(Variant(f"cuda {amp} channels_last{tag} b{gpu_batch}", gpu_batch, lambda: batched(mb, fb), sync))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", type=int, default=256, help="image side (default 256)")
    ap.add_argument("--batch", type=int, default=8, help="CPU batch size of the batched path (default 8)")
    ap.add_argument("--gpu-batch", type=int, default=128, help="CUDA batch size of the batched path (default 128)")
    ap.add_argument("--gpu-amp", choices=["bfloat16", "float16"], default="bfloat16")
    ap.add_argument("--compile", action="store_true", help="torch.compile the CUDA batched model")
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                    help="auto: CPU, and CUDA too when present")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: all cores)")
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds per variant (default 5)")
    ap.add_argument("--explain", action="store_true", help="also time the diagnostic CPU variants")
    ap.add_argument("--out", default="results/benchmarks/pcreg_speed.csv")
    args = ap.parse_args(argv)

    torch.manual_seed(0)
    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    model = PCRegNet().eval()
    params = count_parameters(model)
    gflops = gflops_per_pair(model, args.size)
    print(f"PCReg-Net: {params:,} parameters, {gflops:.2f} GFLOPs per {args.size}x{args.size} pair")

    rows: list[dict] = []
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    common = {"timestamp": stamp, "size": args.size, "params": params, "gflops_per_pair": round(gflops, 3),
              "torch": torch.__version__}
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    if args.device == "cuda" and not torch.cuda.is_available():
        print("CUDA requested but not available", file=sys.stderr)
        return 2
    if args.device in ("auto", "cpu"):
        before, after = cpu_variants(model, args.size, args.batch, args.explain)
        measure(before, args.rounds, warmup=1)
        keep_freed_memory()  # process-wide and irreversible: the default-allocator variants are timed first
        measure(after, args.rounds, warmup=2)
        name = platform.processor() or platform.machine()
        for v in before + after:
            rows.append({**common, "device": "cpu", "device_name": name, "threads": threads, "batch": v.batch,
                         "path": v.name, **v.summary()})
        if args.explain:
            explain_upsample(args.size)
    if use_cuda:
        variants = gpu_variants(model, args.size, args.gpu_batch, args.gpu_amp, args.compile)
        measure(variants, max(args.rounds, 10), warmup=10)
        for v in variants:
            rows.append({**common, "device": "cuda", "device_name": torch.cuda.get_device_name(), "threads": threads,
                         "batch": v.batch, "path": v.name, **v.summary()})

    print(f"{'path':55s} {'batch':>5s} {'best/s':>8s} {'median/s':>8s} {'faults/pair':>11s} {'sys s/pair':>10s}")
    for r in rows:
        print(f"{r['device'] + ' ' + r['path']:55s} {r['batch']:5d} {r['pairs_per_s_best']:8.2f} "
              f"{r['pairs_per_s_median']:8.2f} {r['minflt_per_pair']:11.0f} {r['sys_s_per_pair']:10.3f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    new = not out.is_file()
    with open(out, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
        for r in rows:
            writer.writerow({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items() if k in COLUMNS})
    print(f"wrote {len(rows)} rows to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python
"""What the suite's GPU claims rest on, measured in a few minutes (scripts/gpu_check.sh runs this).

On the first visible CUDA GPU, with config/paper.yaml's model settings at 256 x 256:

- PCReg-Net inference pairs/s: float32 at batch 1, AMP (bfloat16 where supported, else float16) with
  channels_last at batch 1 and at ``--batch`` (the workflow's ``inference_batch_size`` default on CUDA is 32),
  through :class:`pcreg.net.inference.FastPredictor`, as the register step runs it;
- training steps/s of each learned method of paper.yaml (VoxelMorph, TransMorph, PCReg-Net) at its batch
  size (8) under AMP, the method's own ``training_loss`` with Adam (float16 with a gradient scaler);
- the peak GPU memory of each (``torch.cuda.max_memory_allocated``).

Each measurement warms up, then runs until ``--seconds`` have passed (at least 3 timed iterations); the
median iteration time gives the rate. Rows go to ``--out`` (CSV, appended) and are printed. Without a CUDA
GPU it prints one line and exits 0.

    scripts/gpu_check.sh                  # or: python scripts/gpu_check.py --seconds 10 --batch 32
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COLUMNS = ["timestamp", "device_name", "kind", "method", "size", "batch", "precision", "pairs_per_s",
           "steps_per_s", "median_s", "iterations", "peak_gpu_mem_mb", "torch"]


def _timed(run: Callable[[], None], sync: Callable[[], None], seconds: float, warmup: int = 3) -> tuple[float, int]:
    """Median seconds per call of ``run`` after ``warmup`` calls, over ``seconds`` (at least 3 calls)."""
    for _ in range(warmup):
        run()
    sync()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < 3 or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        run()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), len(times)


def paper_params(method: str) -> dict:
    """The params of ``method``'s main run in config/paper.yaml (not an ablation)."""
    from pcreg.config import load_config

    cfg = load_config(ROOT / "config" / "paper.yaml")
    return dict(cfg["methods"][method].get("params", {}))


def main(argv: list[str] | None = None) -> int:
    """Measure and write the CSV; 0 also when there is no GPU."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32, help="batched inference size")
    ap.add_argument("--seconds", type=float, default=10.0, help="timing window per measurement")
    ap.add_argument("--methods", nargs="+", default=["pcreg_net", "voxelmorph", "transmorph"])
    ap.add_argument("--out", type=Path, default=Path("results/benchmarks/gpu_check.csv"))
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                    help="cpu: only exercises this script's code path (tests); the numbers mean nothing")
    args = ap.parse_args(argv)

    import torch

    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU visible to torch (torch.cuda.is_available() is False): nothing measured")
        return 0
    from pcreg.methods.registry import build_method
    from pcreg.net.inference import FastPredictor

    dev = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    amp = "bfloat16" if not cuda or torch.cuda.is_bf16_supported() else "float16"
    name = torch.cuda.get_device_name() if cuda else "cpu (code-path check)"
    peak_mb = (lambda: torch.cuda.max_memory_allocated() / 2**20) if cuda else (lambda: float("nan"))
    reset = (lambda: (torch.cuda.empty_cache(), torch.cuda.reset_peak_memory_stats())) if cuda else (lambda: None)
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    rows = []

    def record(kind: str, method: str, batch: int, precision: str, median_s: float, n: int) -> None:
        peak = peak_mb()
        rate = batch / median_s
        row = {"timestamp": stamp, "device_name": name, "kind": kind, "method": method, "size": args.size,
               "batch": batch, "precision": precision, "pairs_per_s": round(rate, 2),
               "steps_per_s": round(1.0 / median_s, 3) if kind == "train" else "", "median_s": round(median_s, 5),
               "iterations": n, "peak_gpu_mem_mb": round(peak, 1), "torch": torch.__version__}
        rows.append(row)
        steps = f", {row['steps_per_s']} steps/s" if kind == "train" else ""
        print(f"{kind:9s} {method:11s} batch {batch:3d} {precision:9s} {rate:9.1f} pairs/s{steps}, "
              f"peak GPU memory {peak:8.0f} MB", flush=True)

    # PCReg-Net inference (paper.yaml's model: default widths).
    method = build_method("pcreg_net", {**paper_params("pcreg_net"), "progress": False}, seed=0,
                          device=args.device)
    model = method.new_model()
    for batch, precision, channels_last in ((1, None, False), (1, amp, True), (args.batch, amp, True)):
        reset()
        predictor = FastPredictor(model, dev, channels_last=channels_last, amp_dtype=precision)
        m = torch.rand(batch, 1, args.size, args.size, device=dev)
        f = torch.rand(batch, 1, args.size, args.size, device=dev)
        with torch.no_grad():
            median_s, n = _timed(lambda p=predictor, m=m, f=f: p(m, f), sync, args.seconds)
        record("inference", "pcreg_net", batch, precision or "float32", median_s, n)
        del predictor, m, f

    # Training steps of each learned method at paper.yaml's batch size, under AMP as the training harness runs.
    for name_ in args.methods:
        params = {**paper_params(name_), "progress": False}
        batch = int(params.get("batch_size", 8))
        reset()
        meth = build_method(name_, params, seed=0, device=args.device)
        net = meth.new_model().to(dev).train()
        opt = torch.optim.Adam(net.parameters(), lr=1e-4)
        dtype = getattr(torch, amp)
        scaler = torch.amp.GradScaler(args.device, enabled=dtype == torch.float16)
        gen = torch.Generator().manual_seed(0)
        moving = torch.rand(batch, 1, args.size, args.size, generator=gen).to(dev)
        fixed = torch.rand(batch, 1, args.size, args.size, generator=gen).to(dev)

        def step(meth=meth, net=net, opt=opt, scaler=scaler, moving=moving, fixed=fixed, dtype=dtype) -> None:
            opt.zero_grad(set_to_none=True)
            with torch.autocast(args.device, dtype=dtype):
                loss, _ = meth.training_loss(net, moving, fixed)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()

        median_s, n = _timed(step, sync, args.seconds)
        record("train", name_, batch, amp, median_s, n)
        del meth, net, opt, moving, fixed

    args.out.parent.mkdir(parents=True, exist_ok=True)
    new = not args.out.is_file()
    with open(args.out, "a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        if new:
            w.writeheader()
        w.writerows(rows)
    print(f"gpu_check: {len(rows)} rows appended to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Training throughput of the learned methods: pairs/s and steps/s, float32 vs bfloat16, per batch size.

For each method (``--methods``, built with the params of ``--config`` when given, else
the method defaults with the CPU-sized overrides below) and each batch size, times
full training steps (forward, loss, backward, Adam step) of the method's own
``training_loss`` in float32 and, where the CPU runs bf16 natively
(:func:`pcreg.cpu_precision.cpu_bf16_supported`; on CUDA always), under bf16
autocast, optionally also in channels_last (``--channels-last``). It also times
PCReg-Net inference at ``--infer-size`` (the workflow's path: ``prepare_inference``,
batch 1) in fp32 and bf16 and reports the largest output difference between them.

Timing: every variant is warmed up, then timed in interleaved rounds (a shared
machine's load hits all variants alike); best and median are reported, and the
ratio bf16/fp32 is computed from the medians of the same run. Rows are appended to
``--out`` (CSV); the "speedup_vs_fp32" column compares each variant with the fp32
variant of the same method and batch size.

    python scripts/bench_training.py --threads 2 --batches 1 8
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from baselines import build_method  # noqa: E402
from pcreg.cpu_precision import cpu_autocast, cpu_bf16_supported  # noqa: E402

COLUMNS = ["timestamp", "device", "cpu_bf16_native", "threads", "kind", "method", "size", "batch", "precision",
           "channels_last", "pairs_per_s_best", "pairs_per_s_median", "steps_per_s_median", "speedup_vs_fp32",
           "max_abs_diff_vs_fp32", "torch"]

#: CPU-sized params when no config is given (the default config's sizes).
DEFAULT_PARAMS = {
    "pcreg_net": {"base_width": 16},
    "voxelmorph": {},
    "transmorph": {"variant": "transmorph-small"},
}


@dataclass
class Variant:
    """One timed configuration; ``run()`` processes ``batch`` pairs."""

    method: str
    batch: int
    precision: str
    channels_last: bool
    run: Callable[[], object]
    kind: str = "train"
    times: list[float] = field(default_factory=list)

    def median(self) -> float:
        return statistics.median(self.times)


def _params(method: str, config: Path | None) -> dict:
    if config is None:
        return dict(DEFAULT_PARAMS.get(method, {}))
    from pcreg.config import load_config

    cfg = load_config(config)
    for run_id, spec in cfg["methods"].items():
        if spec.get("method", run_id) == method:
            return dict(spec.get("params", {}))
    return dict(DEFAULT_PARAMS.get(method, {}))


def train_variant(method_name: str, params: dict, size: int, batch: int, bf16: bool, channels_last: bool,
                  device: torch.device) -> Variant:
    """A closure doing one training step of ``method_name`` on a random batch."""
    method = build_method(method_name, {**params, "progress": False}, seed=0, threads=torch.get_num_threads(),
                          device=device.type)
    model = method.new_model().to(device).train()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    moving = torch.rand(batch, 1, size, size, generator=gen).to(device).contiguous(memory_format=fmt)
    fixed = torch.rand(batch, 1, size, size, generator=gen).to(device).contiguous(memory_format=fmt)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        ctx = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16) if device.type == "cuda" \
            else cpu_autocast(bf16)
        with ctx:
            loss, _ = method.training_loss(model, moving, fixed)
        loss.backward()
        opt.step()
        sync()

    return Variant(method_name, batch, "bf16" if bf16 else "fp32", channels_last, step)


def inference_variants(params: dict, size: int, device: torch.device) -> tuple[list[Variant], float]:
    """PCReg-Net inference at batch 1 (the workflow's path) in fp32 and bf16, and their max output difference."""
    method = build_method("pcreg_net", {**params, "progress": False}, seed=0, threads=torch.get_num_threads(),
                          device=device.type)
    model = method.prepare_inference(method.new_model().to(device).eval())
    gen = torch.Generator().manual_seed(1)
    moving, fixed = (torch.rand(1, 1, size, size, generator=gen).to(device) for _ in range(2))
    outputs: dict[bool, torch.Tensor] = {}

    def runner(bf16: bool) -> Callable[[], object]:
        def run() -> None:
            ctx = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16) if device.type == "cuda" \
                else cpu_autocast(bf16)
            with torch.inference_mode(), ctx:
                outputs[bf16] = method.predict(model, moving, fixed)[0].float()
            if device.type == "cuda":
                torch.cuda.synchronize()
        return run

    variants = [Variant("pcreg_net", 1, "fp32", True, runner(False), kind="inference"),
                Variant("pcreg_net", 1, "bf16", True, runner(True), kind="inference")]
    for v in variants:
        v.run()
    diff = float((outputs[True] - outputs[False]).abs().max())
    return variants, diff


def measure(variants: list[Variant], rounds: int, warmup: int) -> None:
    """Warm up each variant, then time all of them in interleaved rounds."""
    for v in variants:
        for _ in range(warmup):
            v.run()
    for _ in range(rounds):
        for v in variants:
            t0 = time.perf_counter()
            v.run()
            v.times.append(time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--methods", nargs="+", default=["pcreg_net", "voxelmorph", "transmorph"])
    ap.add_argument("--config", type=Path, help="take each method's params from this workflow config")
    ap.add_argument("--size", type=int, default=128, help="training image side (default 128, the default config)")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8], help="batch sizes (default 1 8)")
    ap.add_argument("--infer-size", type=int, default=256, help="PCReg-Net inference image side (0 = skip)")
    ap.add_argument("--channels-last", action="store_true", help="also time channels_last training variants")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per variant (default 3)")
    ap.add_argument("--out", default="results/benchmarks/training_throughput.csv")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    device = torch.device(args.device)
    native = device.type == "cuda" or cpu_bf16_supported()
    precisions = [False, True] if native else [False]
    if not native:
        print("this CPU has no native bf16: timing float32 only", file=sys.stderr)
    rows = []
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    base = {"timestamp": stamp, "device": device.type if device.type == "cuda" else platform.processor() or "cpu",
            "cpu_bf16_native": cpu_bf16_supported(), "threads": torch.get_num_threads(), "torch": torch.__version__}
    for name in args.methods:
        params = _params(name, args.config)
        for batch in args.batches:
            variants = [train_variant(name, params, args.size, batch, bf16, cl, device)
                        for cl in ([False, True] if args.channels_last else [False]) for bf16 in precisions]
            measure(variants, args.rounds, warmup=1)
            rows += _rows(variants, base, args.size, {})
            print(f"{name} batch {batch}: " + ", ".join(
                f"{v.precision}{'+cl' if v.channels_last else ''} {v.batch / v.median():.2f} pairs/s"
                for v in variants), flush=True)
    if args.infer_size and "pcreg_net" in args.methods:
        variants, diff = inference_variants(_params("pcreg_net", args.config), args.infer_size, device)
        if not native:
            variants = variants[:1]
        measure(variants, max(args.rounds, 5), warmup=2)
        rows += _rows(variants, base, args.infer_size, {"bf16": diff, "fp32": 0.0} if native else {"fp32": 0.0})
        print("pcreg_net inference: " + ", ".join(f"{v.precision} {1 / v.median():.2f} pairs/s" for v in variants)
              + (f"; max |bf16 - fp32| = {diff:.4f}" if native else ""), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    new = not out.is_file()
    with open(out, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {out}")
    return 0


def _rows(variants: list[Variant], base: dict, size: int, diffs: dict[str, float]) -> list[dict]:
    ref = {(v.channels_last): v.median() for v in variants if v.precision == "fp32"}
    fp32 = ref.get(False, next(iter(ref.values()), float("nan")))
    return [{**base, "kind": v.kind, "method": v.method, "size": size, "batch": v.batch, "precision": v.precision,
             "channels_last": v.channels_last, "pairs_per_s_best": v.batch / min(v.times),
             "pairs_per_s_median": v.batch / v.median(), "steps_per_s_median": 1 / v.median(),
             "speedup_vs_fp32": fp32 / v.median(), "max_abs_diff_vs_fp32": diffs.get(v.precision, "")}
            for v in variants]


if __name__ == "__main__":
    raise SystemExit(main())

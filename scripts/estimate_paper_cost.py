#!/usr/bin/env python
"""What config/paper.yaml costs: time and peak memory per dataset x method, on one GPU and on CPU-only Slurm.

Measured here, cheaply, each in a fresh forked process (CPU time of the process, so that other users of a
shared machine do not count; peak resident memory of that process):

- classical runs (every non-learned run of paper.yaml with its own params, 1 thread): CPU seconds per pair at
  256 px (FIRE-Reg-256, OR-PAM) and at whole FIRE's working size (768 px), on ``scripts/bench_classical.py``'s
  retina pairs;
- learned methods (paper.yaml params, 256 px, float32, 2 threads): CPU seconds per training step at paper.yaml's
  batch size and per inference pair, and the FLOPs of both (``torch.utils.flop_counter``).

Extrapolated (and said so in the output): training steps = epochs x ceil(train pairs / batch) (an upper bound:
plateau stopping can end earlier); CPU-only Slurm time = CPU seconds / the job's threads (linear scaling
assumed: optimistic for training); one GPU = FLOPs / ``--gpu-tflops`` effective (an ASSUMPTION until
``scripts/gpu_check.sh`` has measured steps/s on the GPU); classical methods run on CPUs in both setups.
Dataset sizes: the published split sizes (FIRE-Reg-256 8,018 / 978 / 973 patches, whole FIRE 133 test pairs
without P37, OR-PAM from ``pcreg.datasets.orpam.EXPECTED_SIZES``); OR-PAM images are assumed 256 x 256 (their
native size could not be checked). Disk: prepared datasets (float32 moving + fixed), registered test images
and fields per run, the FIRE archive.

    python scripts/estimate_paper_cost.py      # a few minutes; writes results/benchmarks/paper_cost.csv
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

#: Test-time image side (px) and (train, val, test) pairs of each dataset of paper.yaml.
DATASETS = {
    "fire-reg-256": (256, (8018, 978, 973)),
    "fire": (768, (0, 0, 133)),
    "or-pam-reg-4k": (256, (3396, 420, 432)),
    "or-pam-reg-temporal-26k": (256, (21240, 2596, 2714)),
}
LEARNED = ("pcreg_net", "voxelmorph", "transmorph")
FIRE_ARCHIVE_GB = 0.277


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _classical(args: tuple[str, int, int]) -> dict:
    """CPU s per pair of a classical run of paper.yaml at ``size`` (median over ``pairs`` after a warm-up)."""
    from bench_classical import make_pairs

    from pcreg.config import load_config
    from pcreg.methods.registry import build_method, run_method

    run, size, pairs = args
    spec = load_config(ROOT / "config" / "paper.yaml")["methods"][run]
    method = build_method(spec["method"], spec.get("params", {}), seed=0, threads=1)
    data = make_pairs(size, pairs + 1)
    run_method(method, *data[0][:2])
    times = []
    for moving, fixed, _ in data[1:]:
        t0 = time.process_time()
        run_method(method, moving, fixed)
        times.append(time.process_time() - t0)
    return {"cpu_s_per_pair": float(np.median(times)), "peak_rss_mb": _maxrss_mb()}


def _learned(args: tuple[str, int]) -> dict:
    """CPU s per training step (paper batch) and per inference pair, FLOPs of both, at ``size``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from pcreg.config import load_config
    from pcreg.methods.registry import build_method

    name, size = args
    torch.set_num_threads(2)
    params = {**load_config(ROOT / "config" / "paper.yaml")["methods"][name].get("params", {}), "progress": False}
    batch = int(params.get("batch_size", 8))
    method = build_method(name, params, seed=0, threads=2, device="cpu")
    model = method.new_model().train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    moving, fixed = (torch.rand(batch, 1, size, size, generator=gen) for _ in range(2))

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss, _ = method.training_loss(model, moving, fixed)
        loss.backward()
        opt.step()

    counter = FlopCounterMode(display=False)
    with counter:  # the warm-up step, counted
        step()
    train_flops = counter.get_total_flops() / batch
    t0 = time.process_time()
    step()
    train_cpu = time.process_time() - t0
    model.eval()
    m1, f1 = moving[:1], fixed[:1]
    counter = FlopCounterMode(display=False)
    with torch.no_grad():
        with counter:
            method.training_loss(model, m1, f1)  # forward (and the loss, small) of one pair
        t0 = time.process_time()
        method.training_loss(model, m1, f1)
        infer_cpu = time.process_time() - t0
    return {"batch": batch, "cpu_s_per_step": train_cpu, "train_gflop_per_pair": train_flops / 1e9,
            "cpu_s_per_pair": infer_cpu, "infer_gflop_per_pair": counter.get_total_flops() / 1e9,
            "params_m": sum(p.numel() for p in model.parameters()) / 1e6, "peak_rss_mb": _maxrss_mb()}


def _in_child(fn, args):  # noqa: ANN001, ANN202 - one measurement per fresh process (its own peak RSS)
    with mp.get_context("fork").Pool(1) as pool:
        return pool.apply(fn, (args,))


def main(argv: list[str] | None = None) -> int:
    """Measure, extrapolate, write the CSV and print the Markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=2, help="classical pairs timed per method and size")
    ap.add_argument("--gpu-tflops", type=float, default=40.0,
                    help="ASSUMED effective mixed-precision TFLOP/s of one GPU (replace by gpu_check.sh's figures)")
    ap.add_argument("--fit-threads", type=int, default=8, help="threads of a CPU-only training job (paper.yaml: 8)")
    ap.add_argument("--out", type=Path, default=Path("results/benchmarks/paper_cost.csv"))
    args = ap.parse_args(argv)

    import pandas as pd

    from pcreg.config import load_config

    cfg = load_config(ROOT / "config" / "paper.yaml")
    # Each classical run at the working sizes of the datasets it runs on (whole FIRE: 768 px, the others 256 px).
    sizes = {run: sorted({DATASETS[d][0] for d in DATASETS if not spec.get("datasets") or d in spec["datasets"]})
             for run, spec in cfg["methods"].items() if spec["method"] not in LEARNED}
    classical = {(m, s): _in_child(_classical, (m, s, args.pairs)) for m, ss in sizes.items() for s in ss}
    learned_ids = sorted({spec["method"] for spec in cfg["methods"].values() if spec["method"] in LEARNED})
    learned = {m: _in_child(_learned, (m, 256)) for m in learned_ids}
    for (m, s), r in classical.items():
        print(f"measured {m:16s} {s:4d} px: {r['cpu_s_per_pair']:.3f} CPU s/pair, peak RSS {r['peak_rss_mb']:.0f} MB")
    for m, r in learned.items():
        print(f"measured {m:12s} 256 px: {r['cpu_s_per_step']:.2f} CPU s/step (batch {r['batch']}), "
              f"{r['train_gflop_per_pair']:.1f} GFLOP/training pair, {r['cpu_s_per_pair']:.3f} CPU s and "
              f"{r['infer_gflop_per_pair']:.1f} GFLOP per inference pair, {r['params_m']:.2f} M params, "
              f"peak RSS {r['peak_rss_mb']:.0f} MB")

    rows = []
    gpu_flops = args.gpu_tflops * 1e12
    for run, spec in cfg["methods"].items():
        method = spec["method"]
        for d, (size, (n_train, _n_val, n_test)) in DATASETS.items():
            if spec.get("datasets") and d not in spec["datasets"]:
                continue
            row = {"dataset": d, "run": run, "method": method, "size": size, "test_pairs": n_test}
            field = method != "pcreg_net"
            if method in learned:
                r = learned[method]
                epochs, batch = int(spec["params"].get("epochs", 100)), r["batch"]
                steps = epochs * math.ceil(n_train / batch)
                cpu_fit_h = steps * r["cpu_s_per_step"] / args.fit_threads / 3600
                gpu_fit_h = steps * batch * r["train_gflop_per_pair"] * 1e9 / gpu_flops / 3600
                row.update(train_steps=steps, cpu_fit_h=cpu_fit_h, gpu_fit_h=gpu_fit_h,
                           cpu_register_core_h=n_test * r["cpu_s_per_pair"] / 3600,
                           gpu_register_h=n_test * r["infer_gflop_per_pair"] * 1e9 / gpu_flops / 3600,
                           peak_rss_mb=r["peak_rss_mb"])
            else:
                r = classical[(run, size)]
                core_h = n_test * r["cpu_s_per_pair"] / 3600
                row.update(train_steps=0, cpu_fit_h=0.0, gpu_fit_h=0.0, cpu_register_core_h=core_h,
                           gpu_register_h=float("nan"), peak_rss_mb=r["peak_rss_mb"])
            row["results_gb"] = n_test * size * size * 4 * (3 if field else 1) / 1e9
            rows.append(row)
    df = pd.DataFrame(rows)
    disk_data = sum(sum(n) * 2 * s * s * 4 for s, n in DATASETS.values()) / 1e9
    disk = disk_data + df["results_gb"].sum() + 2 * FIRE_ARCHIVE_GB
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)

    print(f"\nEstimates (gpu: {args.gpu_tflops:g} effective TFLOP/s ASSUMED; CPU fit on {args.fit_threads} threads, "
          "linear scaling assumed; training steps are the epoch budget, an upper bound):\n")
    print("| dataset | run | train steps | fit, 1 GPU (h) | fit, CPU job (h) | register, 1 GPU (h) | "
          "register, CPU (core-h) | peak RSS (MB) | results (GB) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in df.to_dict("records"):
        def h(v: float) -> str:
            return "-" if not np.isfinite(v) or v == 0 else (f"{v:.2f}" if v < 10 else f"{v:.0f}")
        print(f"| {r['dataset']} | {r['run']} | {r['train_steps'] or '-'} | {h(r['gpu_fit_h'])} | {h(r['cpu_fit_h'])} "
              f"| {h(r['gpu_register_h'])} | {h(r['cpu_register_core_h'])} | {r['peak_rss_mb']:.0f} "
              f"| {r['results_gb']:.2f} |")
    tot_gpu = df["gpu_fit_h"].sum() + df["gpu_register_h"].fillna(0).sum()
    tot_cpu_fit = df["cpu_fit_h"].sum()
    classical_core_h = df.loc[df["train_steps"] == 0, "cpu_register_core_h"].sum()
    learned_core_h = df.loc[df["train_steps"] > 0, "cpu_register_core_h"].sum()
    print(f"\nTotals: one GPU {tot_gpu:.1f} GPU-h (training and learned inference, serial on that GPU) plus "
          f"{classical_core_h:.1f} CPU core-h of classical methods (parallel on the machine's cores); CPU-only: "
          f"{tot_cpu_fit:.0f} h of {args.fit_threads}-thread training jobs ({tot_cpu_fit * args.fit_threads:.0f} "
          f"core-h) plus {classical_core_h + learned_core_h:.1f} core-h of registration. Disk: {disk_data:.1f} GB "
          f"prepared data + {df['results_gb'].sum():.1f} GB results + {2 * FIRE_ARCHIVE_GB:.2f} GB FIRE archive "
          f"and extraction = {disk:.1f} GB.")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

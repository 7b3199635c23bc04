"""Seconds per pair of the classical baselines, beside the issue's budgets (a benchmark, not a test).

Pairs are crops of scikit-image's retina photograph (green channel) whose fixed
image is the crop warped by a smooth random field with a known mean
displacement, so the end-point error against that field is printed too as a
sanity check. Each method runs once on the first pair as a warm-up (imports,
caches), then on every pair; the CSV holds the per-method summary.

    PYTHONPATH=$PWD python scripts/bench_classical.py --size 256 --pairs 5 --threads 1
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from pcreg.methods.registry import available_methods, build_method, run_method
from pcreg.metrics import epe
from pcreg.warp import warp_image

#: Seconds per 256x256 pair allowed by the issue "Classical baselines".
BUDGETS_S = {"sift": 0.05, "horn_schunck": 0.3, "demons": 1.5, "syn": 1.5}


def make_pairs(size: int, count: int, mean_disp: float = 5.0, seed: int = 0) -> list[tuple[np.ndarray, ...]]:
    """``count`` (moving, fixed, gt) triples: retina crops and the crops warped by a smooth known field."""
    from skimage import data, transform

    green = data.retina()[..., 1].astype(np.float32) / 255.0
    # Scale so a crop of `size` spans about a third of the fundus whatever the size asked for.
    image = transform.rescale(green, size / 512.0, order=1, anti_aliasing=True, preserve_range=True)
    image = image.astype(np.float32)
    h, w = image.shape
    pad = size // 8
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(count):
        r0 = int(rng.integers(int(0.2 * h), max(int(0.8 * h) - size - 2 * pad, int(0.2 * h) + 1)))
        c0 = int(rng.integers(int(0.2 * w), max(int(0.8 * w) - size - 2 * pad, int(0.2 * w) + 1)))
        big = image[r0 : r0 + size + 2 * pad, c0 : c0 + size + 2 * pad]
        field = np.stack([ndimage.gaussian_filter(rng.standard_normal(big.shape), big.shape[0] / 6.0) for _ in "yx"])
        inner = (slice(pad, pad + size), slice(pad, pad + size))
        field *= mean_disp / np.sqrt((field[(slice(None), *inner)] ** 2).sum(axis=0)).mean()
        field = field.astype(np.float32)
        fixed = warp_image(big, field)  # warped on the padded crop: no replicated borders inside
        pairs.append((big[inner].copy(), fixed[inner].copy(), field[(slice(None), *inner)].copy()))
    return pairs


def bench(name: str, pairs: list[tuple[np.ndarray, ...]], threads: int) -> dict[str, object]:
    """Time ``name`` (default parameters) on every pair after one warm-up run."""
    method = build_method(name, seed=0, threads=threads)
    run_method(method, *pairs[0][:2])
    times, epes, failed = [], [], 0
    for moving, fixed, gt in pairs:
        start = time.perf_counter()
        result = run_method(method, moving, fixed)
        times.append(time.perf_counter() - start)
        failed += int(result.failed)
        if result.field is not None:
            epes.append(epe(result.field, gt))
    budget = BUDGETS_S.get(name)
    median = statistics.median(times)
    return {
        "method": name,
        "label": method.label or name,
        "median_s": round(median, 4),
        "mean_s": round(statistics.fmean(times), 4),
        "max_s": round(max(times), 4),
        "budget_s": budget if budget is not None else "",
        "within_budget": "" if budget is None else median <= budget,
        "failed": failed,
        "epe_px": round(statistics.fmean(epes), 3) if epes else "",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="pair size in pixels (budgets are for 256)")
    parser.add_argument("--pairs", type=int, default=5, help="number of pairs timed per method")
    parser.add_argument("--threads", type=int, default=1, help="threads given to each method")
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/classical_speed.csv"), help="CSV path")
    parser.add_argument("--methods", nargs="+", default=list(BUDGETS_S), help="methods to time")
    args = parser.parse_args(argv)

    pairs = make_pairs(args.size, args.pairs)
    epe_before = statistics.fmean(epe(np.zeros_like(gt), gt) for _, _, gt in pairs)
    print(f"{args.pairs} pairs, {args.size}x{args.size}, {args.threads} thread(s), EPE before {epe_before:.2f} px")
    rows = []
    for name in args.methods:
        if name not in available_methods():
            print(f"{name:>14}: skipped (no baselines/{name}.py on this branch)")
            continue
        row = bench(name, pairs, args.threads)
        row.update(size=args.size, pairs=args.pairs, threads=args.threads)
        rows.append(row)
        budget = f"budget {row['budget_s']} s ({'ok' if row['within_budget'] else 'OVER'})" if row["budget_s"] else ""
        print(
            f"{name:>14}: {row['median_s']:.4f} s/pair median (max {row['max_s']:.4f})  {budget}  "
            f"EPE {row['epe_px']} px, {row['failed']} failed"
        )
    if rows:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Peak memory and time of each pipeline step on a dataset the size of OR-PAM-Reg-Temporal-26K, at 1x and 4x.

For each scale it generates a ``synthetic-orpam`` dataset with the real set's split sizes
(21,240 / 2,596 / 2,714 pairs = 26,550; 180 / 22 / 23 sequences of 118 frames) times the scale,
at a small image size so that it fits any disk, and runs in subprocesses, as the workflow does:

- ``prepare``: ``python -m pcreg prepare`` (generates and writes the dataset);
- ``register``: ``python -m pcreg register`` with the identity method, all test pairs in ONE shard
  (the worst case: shard size grows with the dataset);
- ``evaluate``: ``python -m pcreg evaluate`` (merges the shard, scores every pair, writes the arrays);
- ``load-train``: one epoch of a ``torch.utils.data.DataLoader`` (2 workers, batch 32, shuffled,
  pinned memory when CUDA is present) over the training split read with ``pcreg.streaming.PairRows``,
  the data-loading part of a training epoch;
- ``load-train-mmap``: the same epoch reading the split through ``np.load(mmap_mode="r")``, for comparison.

Memory is sampled every 20 ms over the step's whole process tree (workers included): ``peak_rss_mb`` is the
largest sum of resident memory, ``peak_anon_mb`` the largest sum of anonymous (non-file-backed) memory,
which is what cannot be reclaimed; ``maxrss_mb`` is the kernel's ``ru_maxrss`` of the step's main process.
A tiny baseline (``--baseline``, one sequence per split = 354 pairs) measures each step's fixed cost
(interpreter, imports, DataLoader workers), so that the printed marginal ratio ``(t4x - t0) / (t1x - t0)``
tests linearity in the number of pairs without the start-up time. Results go to
``results/benchmarks/memory.csv`` and a table with the 2 GB bound and the 4x/1x ratios is printed.

    python scripts/bench_memory.py                    # 1x and 4x at 32x32 (a few minutes, ~2.5 GB of disk)
    python scripts/bench_memory.py --scales 0.05 0.2  # quick check
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: OR-PAM-Reg-Temporal-26K split sizes: 21,240 / 2,596 / 2,714 = 118 frames x 180 / 22 / 23 sequences.
FRAMES = 118
SEQUENCES = {"train": 180, "val": 22, "test": 23}
BOUND_MB = 2048


def _tree_memory(pid: int) -> tuple[int, int]:
    """``(rss, anon)`` bytes summed over ``pid`` and its descendants (from /proc/<pid>/status)."""
    import psutil

    rss = anon = 0
    try:
        procs = [psutil.Process(pid)]
        procs += procs[0].children(recursive=True)
    except psutil.NoSuchProcess:
        return 0, 0
    for p in procs:
        try:
            with open(f"/proc/{p.pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1]) * 1024
                    elif line.startswith("RssAnon:"):
                        anon += int(line.split()[1]) * 1024
        except (FileNotFoundError, ProcessLookupError):
            continue
    return rss, anon


def measure(cmd: list[str], env: dict[str, str] | None = None, interval: float = 0.02) -> dict[str, float]:
    """Run ``cmd``; return wall time and peak memory (tree RSS, tree anonymous, ru_maxrss) in MB."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = {"rss": 0, "anon": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            rss, anon = _tree_memory(proc.pid)
            peak["rss"], peak["anon"] = max(peak["rss"], rss), max(peak["anon"], anon)
            done.wait(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    done.set()
    thread.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr[-3000:]}")
    return {"wall_s": wall, "peak_rss_mb": peak["rss"] / 2**20, "peak_anon_mb": peak["anon"] / 2**20,
            "maxrss_mb": usage.ru_maxrss / 1024}


def load_epoch(root: str, mode: str, batch_size: int, workers: int) -> None:
    """One shuffled epoch over the training split through a DataLoader (the data side of training)."""
    import numpy as np
    import torch
    from torch.utils.data import DataLoader

    from pcreg.streaming import PairRows

    class MmapPairs:
        """Pairs read from np.load(mmap_mode='r') arrays (what PairSplit gives)."""

        def __init__(self, folder: Path):
            self.moving = np.load(folder / "moving.npy", mmap_mode="r")
            self.fixed = np.load(folder / "fixed.npy", mmap_mode="r")

        def __len__(self) -> int:
            return len(self.moving)

        def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
            return np.array(self.moving[i]), np.array(self.fixed[i])

    data = PairRows(root, "train") if mode == "pread" else MmapPairs(Path(root) / "train")
    torch.manual_seed(0)
    loader = DataLoader(data, batch_size=batch_size, shuffle=True, num_workers=workers,
                        pin_memory=torch.cuda.is_available(), persistent_workers=False)
    total, n = 0.0, 0
    for moving, fixed in loader:
        total += float((moving - fixed).abs().mean())  # touch every batch as a training step would
        n += len(moving)
    if n != len(data):
        raise RuntimeError(f"epoch saw {n} of {len(data)} pairs")


def run_scale(scale: float, size: int, work: Path, workers: int) -> list[dict]:
    """All steps at one scale; returns one row per step."""
    sequences = {k: max(1, round(v * scale)) for k, v in SEQUENCES.items()}
    spec = {"type": "synthetic-orpam",
            "params": {"height": size, "width": size, "frames": FRAMES, "sequences": sequences, "vessels": 8}}
    n_pairs = FRAMES * sum(sequences.values())
    data, out = work / "data", work / "results"
    py = [sys.executable, "-m", "pcreg"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    from pcreg.specs import write_spec

    spec_json = write_spec(work / "specs" / "dataset.json", spec)
    run_json = write_spec(work / "specs" / "identity.json", {"id": "identity", "method": "identity", "params": {}})
    steps = [
        ("prepare", py + ["prepare", "--name", "bench", "--spec", spec_json, "--out", str(data), "--seed", "0"]),
        ("register", py + ["register", "--data", str(data), "--run", run_json, "--shard", "0", "--shards", "1",
                           "--out", str(out / "shards" / "0.npz")]),
        ("evaluate", py + ["evaluate", "--data", str(data), "--out", str(out), str(out / "shards" / "0.npz")]),
    ]
    for mode in ("pread", "mmap"):
        steps.append((f"load-train{'' if mode == 'pread' else '-mmap'}",
                      [sys.executable, str(Path(__file__).resolve()), "--load-epoch", str(data), "--mode", mode,
                       "--workers", str(workers)]))
    rows = []
    for name, cmd in steps:
        m = measure(cmd, env)
        rows.append({"scale": scale, "pairs": n_pairs, "test_pairs": FRAMES * sequences["test"],
                     "image": f"{size}x{size}", "step": name, **{k: round(v, 2) for k, v in m.items()},
                     "bound_mb": BOUND_MB, "within_bound": m["peak_rss_mb"] < BOUND_MB})
        print(f"  {scale:g}x {name:16} {m['wall_s']:8.1f} s  rss {m['peak_rss_mb']:7.1f} MB  "
              f"anon {m['peak_anon_mb']:7.1f} MB", flush=True)
    rows.append({"scale": scale, "pairs": n_pairs, "step": "disk", "image": f"{size}x{size}",
                 "dataset_mb": round(sum(f.stat().st_size for f in data.rglob("*") if f.is_file()) / 2**20, 1)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 4.0])
    parser.add_argument("--baseline", type=float, default=0.001,
                        help="scale of the fixed-cost baseline run (0 to skip; 0.001 = one sequence per split)")
    parser.add_argument("--size", type=int, default=32, help="image height and width (>= 32)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the load steps")
    parser.add_argument("--out", default=str(ROOT / "results" / "benchmarks" / "memory.csv"))
    parser.add_argument("--workdir", help="where the datasets are written (default: a temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the generated datasets")
    parser.add_argument("--load-epoch", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="pread", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load_epoch:
        load_epoch(args.load_epoch, args.mode, 32, args.workers)
        return 0

    import pandas as pd

    base = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="pcreg-bench-memory-"))
    rows = []
    try:
        for scale in ([args.baseline] if args.baseline else []) + list(args.scales):
            work = base / f"x{scale:g}"
            shutil.rmtree(work, ignore_errors=True)
            print(f"scale {scale:g}x ({FRAMES * sum(max(1, round(v * scale)) for v in SEQUENCES.values())} pairs, "
                  f"{args.size}x{args.size})", flush=True)
            rows += run_scale(scale, args.size, work, args.workers)
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(base, ignore_errors=True)
    table = pd.DataFrame(rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)

    steps = table[table["step"] != "disk"]
    lo, hi = min(args.scales), max(args.scales)
    print(f"\npeak memory and time per step (bound {BOUND_MB} MB; ratios {hi:g}x / {lo:g}x)")
    print(f"{'step':16} {'scale':>5} {'pairs':>7} {'wall s':>8} {'rss MB':>8} {'anon MB':>8} {'bound':>6}")
    for _, r in steps.iterrows():
        print(f"{r['step']:16} {r['scale']:5g} {int(r['pairs']):7d} {r['wall_s']:8.1f} {r['peak_rss_mb']:8.1f} "
              f"{r['peak_anon_mb']:8.1f} {'ok' if r['within_bound'] else 'OVER':>6}")
    if lo != hi:
        pairs = {sc: steps[steps.scale == sc].pairs.iloc[0] for sc in steps.scale.unique()}
        n0 = pairs[args.baseline] if args.baseline else 0
        print(f"\n{'step':16} {'time ratio':>10} {'marginal':>9} {'rss ratio':>10} {'anon ratio':>10}"
              f"   (pairs ratio {pairs[hi] / pairs[lo]:.2f}; marginal = time above the {n0}-pair baseline, "
              f"expected {(pairs[hi] - n0) / (pairs[lo] - n0):.2f})")
        for step, grp in steps.groupby("step", sort=False):
            a, b = grp[grp.scale == lo].iloc[0], grp[grp.scale == hi].iloc[0]
            base = grp[grp.scale == args.baseline].wall_s.iloc[0] if args.baseline else 0.0
            marginal = f"{(b.wall_s - base) / (a.wall_s - base):9.2f}" if a.wall_s - base > 0.5 else f"{'n/a':>9}"
            print(f"{step:16} {b.wall_s / a.wall_s:10.2f} {marginal} {b.peak_rss_mb / a.peak_rss_mb:10.2f} "
                  f"{b.peak_anon_mb / a.peak_anon_mb:10.2f}")
    print(f"\nwrote {out}")
    return 0 if bool(steps["within_bound"].all()) else 1


if __name__ == "__main__":
    sys.exit(main())

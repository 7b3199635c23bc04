"""Overhead of running a method in a worker process (pcreg.methods.isolation) against running it in-process.

Usage: PYTHONPATH=$PWD python scripts/bench_isolation.py [--pairs 200] [--size 256]
Prints the wall time per pair of the identity method both ways and the worker's start-up time.
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np

from pcreg.methods.isolation import PairWorker
from pcreg.methods.registry import build_method, run_method


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    moving = rng.random((args.pairs, args.size, args.size), dtype=np.float32)
    fixed = rng.random((args.pairs, args.size, args.size), dtype=np.float32)

    method = build_method("identity", {})
    t0 = time.perf_counter()
    for m, f in zip(moving, fixed):
        run_method(method, m, f)
    inline = (time.perf_counter() - t0) / args.pairs

    def factory():  # noqa: ANN202
        return build_method("identity", {})

    with PairWorker(factory, log=io.BytesIO()) as worker:
        t0 = time.perf_counter()
        worker.start()
        startup = time.perf_counter() - t0
        t0 = time.perf_counter()
        for m, f in zip(moving, fixed):
            worker.run(m[None], f[None])
        isolated = (time.perf_counter() - t0) / args.pairs
    print(f"identity, {args.pairs} pairs of {args.size}x{args.size}: in-process {inline * 1e3:.2f} ms/pair, "
          f"in a worker {isolated * 1e3:.2f} ms/pair (overhead {(isolated - inline) * 1e3:.2f} ms/pair); "
          f"worker start {startup * 1e3:.0f} ms")


if __name__ == "__main__":
    main()

"""Compare the per-pair metrics of two workflow runs: every ``results/**/pairs.csv`` must be identical.

Runtimes (``runtime_s``) are left out: they differ from run to run. Both runs must have written the same set
of ``pairs.csv`` files (with ``--subset``, the second run's must be among the first's). Used by CI to check
that the smoke workflow gives the same numbers locally and through the Slurm profile (scripts/ci_slurm_smoke.sh).

    python scripts/compare_pairs.py /tmp/run-local /tmp/run-slurm     # two working directories
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd


def pairs_files(root: Path) -> set[Path]:
    """Paths of the ``pairs.csv`` files under ``root/results``, relative to ``root``."""
    return {p.relative_to(root) for p in (root / "results").rglob("pairs.csv")}


def compare(a: Path, b: Path, subset: bool = False) -> list[str]:
    """Differences between the runs in working directories ``a`` and ``b`` (empty when identical). With
    ``subset``, ``b`` may hold fewer files than ``a`` (a run of part of ``a``'s config): each of ``b``'s must be
    in ``a`` and equal."""
    fa, fb = pairs_files(a), pairs_files(b)
    only_a = [] if subset else [f"only in {a}: {f}" for f in sorted(fa - fb)]
    problems = only_a + [f"only in {b}: {f}" for f in sorted(fb - fa)]
    if not fa and not fb:
        problems.append(f"no pairs.csv under {a}/results or {b}/results")
    for f in sorted(fa & fb):
        x = pd.read_csv(a / f).drop(columns="runtime_s", errors="ignore")
        y = pd.read_csv(b / f).drop(columns="runtime_s", errors="ignore")
        if not x.equals(y):
            problems.append(f"different: {f}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path, help="working directory of the first run (holds results/)")
    parser.add_argument("b", type=Path, help="working directory of the second run")
    parser.add_argument("--subset", action="store_true", help="the second run ran part of the first's config")
    args = parser.parse_args(argv)
    problems = compare(args.a, args.b, subset=args.subset)
    n = len(pairs_files(args.a) & pairs_files(args.b))
    total = pairs_files(args.b) if args.subset else pairs_files(args.a) | pairs_files(args.b)
    for p in problems:
        print(p)
    print(f"pairs.csv identical (runtimes aside): {n - sum(p.startswith('different') for p in problems)} of "
          f"{len(total)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

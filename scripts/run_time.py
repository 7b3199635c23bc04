#!/usr/bin/env python
"""Where a workflow run's time went: its span, and the wall and CPU seconds of its jobs by rule and run.

Reads the ``benchmark:`` files Snakemake wrote under ``<results_dir>/benchmarks/rules/<rule>/...`` (one TSV per
job: wall ``s`` and ``cpu_time``); a job's end is its file's modification time and its start that minus ``s``, so
the span is from the first job's start to the last job's end (Snakemake's own start-up before the first job is not
in it). ``busy cores`` is the jobs' summed CPU time over the span: on a 2-core machine, 2.0 is a run that never left
a core idle. ``cores/fit`` is each training run's CPU time over its wall time, the measure behind the default
config's ``threads.fit`` (issue 22).

    python scripts/run_time.py results [--csv PATH]   # the per-rule table, default results/benchmarks/run_time.csv
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import pandas as pd


def job_rows(results_dir: Path) -> pd.DataFrame:
    """One row per benchmarked job: rule, dataset, run (seed suffix kept), wall s, CPU s, end time."""
    root = results_dir / "benchmarks" / "rules"
    rows = []
    for path in sorted(root.rglob("*.tsv")):
        parts = path.relative_to(root).parts
        bench = pd.read_csv(path, sep="\t")
        if bench.empty:
            continue
        rule = parts[0]
        dataset = parts[1] if len(parts) > 2 else ""
        run = parts[2] if len(parts) > 3 else (path.stem if len(parts) == 3 else "")
        rows.append({"rule": rule, "dataset": dataset, "run": run.removesuffix(".tsv"),
                     "wall_s": float(bench["s"].iloc[0]), "cpu_s": float(bench["cpu_time"].iloc[0]),
                     "end": path.stat().st_mtime})
    if not rows:
        raise SystemExit(f"no benchmark files under {root}: run the workflow first")
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results_dir", type=Path)
    parser.add_argument("--csv", type=Path, help="where to write the per-rule table "
                        "(default: <results_dir>/benchmarks/run_time.csv)")
    args = parser.parse_args(argv)
    jobs = job_rows(args.results_dir)
    span = float(jobs["end"].max() - (jobs["end"] - jobs["wall_s"]).min())
    print(f"{len(jobs)} jobs, span {span:.0f} s ({span / 60:.1f} min), wall sum {jobs['wall_s'].sum():.0f} s, "
          f"CPU sum {jobs['cpu_s'].sum():.0f} s, busy cores {jobs['cpu_s'].sum() / max(span, 1e-9):.2f}")
    by_rule = jobs.groupby("rule").agg(jobs=("wall_s", "size"), wall_s=("wall_s", "sum"), cpu_s=("cpu_s", "sum"))
    print(by_rule.sort_values("cpu_s", ascending=False).round(0).to_string())
    fits = jobs[jobs["rule"] == "fit"].copy()
    if len(fits):
        fits["cores"] = fits["cpu_s"] / fits["wall_s"]
        groups: dict[str, list[float]] = defaultdict(list)
        for _, r in fits.iterrows():
            groups[f"{r['dataset']}/{r['run'].split('.seed')[0]}"].append(r["wall_s"])
        print("\nfits (wall s per training seed):")
        for key, walls in sorted(groups.items()):
            print(f"  {key}: " + ", ".join(f"{w:.0f}" for w in walls))
        print(f"cores/fit: median {fits['cores'].median():.2f} (min {fits['cores'].min():.2f}, "
              f"max {fits['cores'].max():.2f})")
    by_rule.to_csv(args.csv or args.results_dir / "benchmarks" / "run_time.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())

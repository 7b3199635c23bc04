"""Choose elastix's settings on the validation split (EPE to the ground-truth field, seconds per pair).

Prepares the default config's synthetic-fundus in a temporary directory (or reads ``--data``), runs a small
grid of settings of ``baselines/elastix.py`` on the val split and prints one line per setting; the chosen
defaults are stated in config/config.yaml.

    PYTHONPATH=$PWD python scripts/tune_elastix.py --pairs 12
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from pcreg.config import load_config, validate_params
from pcreg.datasets import PreparedDataset, get_dataset_type
from pcreg.methods.registry import build_method, run_method
from pcreg.metrics import epe, recoverable_mask

#: The settings tried (affine stage, final grid spacing in px, bending-energy weight, iterations per level).
GRID = [(True, 8.0, 0.1, 200), (True, 16.0, 0.1, 200), (True, 16.0, 1.0, 200), (True, 32.0, 1.0, 200),
        (True, 16.0, 10.0, 200), (False, 16.0, 1.0, 200), (True, 32.0, 1.0, 100)]


def _setting(text: str) -> tuple[bool, float, float, int]:
    affine, spacing, bending, *iterations = text.split(":")
    return affine.lower() == "true", float(spacing), float(bending), int(iterations[0]) if iterations else 200


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="a prepared dataset directory (default: prepare the config's dataset)")
    ap.add_argument("--configfile", default="config/config.yaml")
    ap.add_argument("--dataset", default="synthetic-fundus")
    ap.add_argument("--pairs", type=int, default=12)
    ap.add_argument("--grid", type=_setting, nargs="+", default=GRID,
                    help="settings affine:grid_spacing:bending_weight[:iterations], e.g. true:16:1:200")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="pcreg-tune-elastix-") as tmp:
        root = Path(args.data) if args.data else None
        if root is None:
            config = load_config(args.configfile)
            spec = config["datasets"][args.dataset]
            module = get_dataset_type(spec["type"])
            root = module.prepare(Path(tmp) / args.dataset, args.dataset,
                                  validate_params(module, spec.get("params", {}), args.dataset), config["seed"])
        val = PreparedDataset(root).split("val")
        n = min(args.pairs, len(val))
        before = [epe(np.zeros_like(val.field[i]), np.asarray(val.field[i]), recoverable_mask(np.asarray(val.field[i])))
                  for i in range(n)]
        print(f"{root.name} val, {n} pairs: unregistered EPE {np.mean(before):.3f} px")
        for affine, spacing, bending, iterations in args.grid:
            params = {"affine": affine, "grid_spacing": spacing, "bending_weight": bending, "iterations": iterations}
            method = build_method("elastix", params, seed=0, threads=1)
            errors, times, failed = [], [], 0
            for i in range(n):
                moving, fixed = val.pair(i)
                start = time.process_time()  # CPU time of this process: other users of the machine do not count
                result = run_method(method, moving, fixed)
                times.append(time.process_time() - start)
                gt = np.asarray(val.field[i])
                errors.append(epe(result.field, gt, recoverable_mask(gt)))
                failed += result.failed
            print(f"affine={affine!s:5} grid_spacing={spacing:4.0f} bending_weight={bending:5.1f} "
                  f"iterations={iterations}: EPE {np.mean(errors):.3f} px (median {np.median(errors):.3f}), "
                  f"{statistics.median(times):.2f} CPU s/pair, failed {failed}", flush=True)


if __name__ == "__main__":
    main()

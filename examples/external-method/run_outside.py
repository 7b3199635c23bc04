"""Run DIS optical flow on an exported dataset outside the workflow, writing a ``precomputed`` folder.

    python -m pcreg export synthetic-fundus external/export --configfile config/external-example.yaml
    python examples/external-method/run_outside.py external/export external/dis-precomputed

Reads ``test/moving|fixed/<pair_id>.png`` (16-bit PNG, as a tool without numpy would) and the audit
inputs, and writes ``fields/<id>.npy`` in OpenCV's own convention, flow (H, W, 2) with (x, y)
components, so the config declares ``convention: {order: x-y}``; plus ``runtimes.csv``.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import cv2
import numpy as np


def read_png16(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED).astype(np.float32) / 65535.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--preset", default="medium", choices=["ultrafast", "fast", "medium"])
    args = parser.parse_args()
    cv2.setNumThreads(1)
    from pcreg_dis_flow import PRESETS

    (args.out_dir / "fields").mkdir(parents=True, exist_ok=True)
    jobs = []
    for folder, column in (("test", "pair_id"), ("audit", "audit_id")):
        table = args.export_dir / folder / "pairs.csv"
        if table.is_file():
            with open(table) as fh:
                jobs += [(folder, row[column]) for row in csv.DictReader(fh)]
    rows = []
    for folder, pid in jobs:
        moving = read_png16(args.export_dir / folder / "moving" / f"{pid}.png")
        fixed = read_png16(args.export_dir / folder / "fixed" / f"{pid}.png")
        start = time.perf_counter()
        dis = cv2.DISOpticalFlow_create(PRESETS[args.preset])
        dis.setVariationalRefinementIterations(5)
        to8 = lambda img: np.round(img * 255.0).astype(np.uint8)  # noqa: E731
        flow = dis.calc(to8(fixed), to8(moving), None)  # (H, W, 2), (x, y): fixed(p) ~ moving(p + flow(p))
        rows.append((pid, time.perf_counter() - start))
        np.save(args.out_dir / "fields" / f"{pid}.npy", flow)
    with open(args.out_dir / "runtimes.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([("pair_id", "runtime_s"), *rows])
    print(f"wrote {len(rows)} fields to {args.out_dir}")


if __name__ == "__main__":
    main()

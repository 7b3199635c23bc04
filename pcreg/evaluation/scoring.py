"""Per-pair evaluation of one method on one dataset: merge its shards, score every test pair.

Writes, in the method's result directory:

- ``pairs.csv``: one row per test pair in manifest order (columns :data:`PAIR_COLUMNS`);
  a metric that does not apply is left empty (no landmarks, no ground-truth
  field, or an image-output method for the geometric columns). ``cluster`` is
  the pair's independent unit for the statistics (from the manifest),
  ``n_landmarks`` its number of landmarks (0: none; FIRE AUC uses pairs with
  landmarks only). ``ssim`` is the Gaussian 11x11 SSIM of Wang et al.,
  ``ssim_uniform7`` scikit-image's 7x7 uniform one. ``tre_*`` maps the fixed
  landmarks into the moving image (the suite's direction), ``tre_m2f_*`` the
  moving landmarks into the fixed image (SuperRetina's); ``*_median``/``*_max``
  are the per-pair median / largest point error at the original resolution
  (FIRE's inaccurate rule). ``epe_px`` averages over pixels whose ground-truth
  source lies inside the moving image; ``kept``, ``invented`` and ``placement_px``
  (:mod:`pcreg.evaluation.fidelity`; a field method's features are scored where its own field puts them)
  only where the dataset has content-fidelity masks;
- ``registered.npy``: the registered test images ``(N, H, W)`` float32, in manifest order;
- ``fields.npy``: the displacement fields ``(N, 2, H, W)`` float32 (field methods only).

Evaluation streams: pairs are processed in blocks of :data:`BLOCK` in manifest
order, each block's rows are read from the shard files and the dataset with
positioned reads (:mod:`pcreg.streaming`), scored, and appended to the output
arrays, so memory stays at one block whatever the number of pairs. The result
depends only on which pair each shard holds, not on the number or order of the
shards.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from pcreg import metrics
from pcreg.datasets.format import PreparedDataset
from pcreg.errors import disk_full_is_one_line
from pcreg.evaluation import fire_protocol
from pcreg.evaluation.convention_check import CHECK_FILE, check_fields
from pcreg.evaluation.fidelity import pair_fidelity
from pcreg.methods.runner import shard_array_paths
from pcreg.streaming import NpyRowWriter, iter_blocks, npy_layout, read_rows

PAIR_COLUMNS = [
    "pair_id", "category", "cluster", "n_landmarks", "ncc", "ssim", "ssim_uniform7", "psnr",
    "tre_px", "tre_orig_px", "tre_orig_median_px", "tre_orig_max_px",
    "tre_m2f_orig_px", "tre_m2f_orig_median_px", "tre_m2f_orig_max_px",
    "epe_px", "folding_pct", "sdlogj", "kept", "invented", "placement_px", "runtime_s", "failed", "reason",
]

#: Pairs scored (and held in memory) at once.
BLOCK = 64


@dataclass
class ShardIndex:
    """Where each test pair's outputs are: shard number and row in that shard, plus the per-pair scalars."""

    files: list[tuple[Path, Path]]
    shard_of: np.ndarray
    row_of: np.ndarray
    runtime_s: np.ndarray
    failed: np.ndarray
    reason: np.ndarray
    outputs_field: bool

    def rows(self, which: int, start: int, stop: int) -> np.ndarray:
        """Registered images (``which=0``) or fields (``which=1``) of pairs ``[start, stop)``."""
        parts = []
        shard, row = self.shard_of[start:stop], self.row_of[start:stop]
        k = 0
        while k < len(shard):  # runs of consecutive pairs from the same shard are read in one go
            s, r0 = shard[k], row[k]
            run = 1
            while k + run < len(shard) and shard[k + run] == s and row[k + run] == r0 + run:
                run += 1
            parts.append(read_rows(self.files[s][which], int(r0), int(r0) + run))
            k += run
        return np.concatenate(parts) if parts else np.zeros((0,), np.float32)


def index_shards(shard_files: Iterable[Path], n_pairs: int) -> ShardIndex:
    """Read the shards' metadata; every pair must be covered exactly once and all arrays must match."""
    files = sorted(Path(f) for f in shard_files)
    if not files:
        raise ValueError("no shard files given")
    shard_of = np.full(n_pairs, -1, np.int64)
    row_of = np.zeros(n_pairs, np.int64)
    seen = np.zeros(n_pairs, np.int64)
    runtime = np.full(n_pairs, np.nan)
    failed = np.zeros(n_pairs, bool)
    reason = np.array([""] * n_pairs, dtype=object)
    flags = set()
    arrays = []
    for s, f in enumerate(files):
        with np.load(f, allow_pickle=False) as sh:
            idx = sh["indices"].astype(np.int64)
            if len(idx) and (idx.min() < 0 or idx.max() >= n_pairs):
                raise ValueError(f"{f}: pair indices outside the split's {n_pairs} pairs")
            flags.add(bool(sh["outputs_field"]))
            np.add.at(seen, idx, 1)
            shard_of[idx], row_of[idx] = s, np.arange(len(idx))
            runtime[idx], failed[idx], reason[idx] = sh["runtime_s"], sh["failed"], sh["reason"]
        reg, fld = shard_array_paths(f)
        n_reg, n_fld = npy_layout(reg)[1][0], npy_layout(fld)[1][0]
        if n_reg != len(idx) or n_fld not in (0, len(idx)):
            raise ValueError(f"{f}: {len(idx)} pairs but {n_reg} images and {n_fld} fields")
        arrays.append((reg, fld))
    if len(flags) != 1:
        raise ValueError("shards disagree on whether the method outputs fields")
    if not np.all(seen == 1):
        raise ValueError(f"shards cover {int((seen > 0).sum())} of {n_pairs} pairs (some missing or repeated)")
    return ShardIndex(arrays, shard_of, row_of, runtime, failed, reason, flags.pop())


def score_pair(
    registered: np.ndarray,
    fixed: np.ndarray,
    field: np.ndarray | None,
    gt_field: np.ndarray | None,
    landmarks: tuple[np.ndarray, np.ndarray] | None,
    original_scale: float = 1.0,
) -> dict[str, float]:
    """All per-pair metrics that apply; the others are NaN (written as empty cells)."""
    row = {
        "n_landmarks": 0 if landmarks is None else len(landmarks[0]),
        "ncc": metrics.ncc(registered, fixed),
        "ssim": metrics.ssim_gaussian(registered, fixed),
        "ssim_uniform7": metrics.ssim(registered, fixed),
        "psnr": metrics.psnr(registered, fixed),
        "tre_px": np.nan, "epe_px": np.nan, "folding_pct": np.nan, "sdlogj": np.nan,
    }
    for prefix in ("tre_orig", "tre_m2f_orig"):
        row[f"{prefix}_px"] = row[f"{prefix}_median_px"] = row[f"{prefix}_max_px"] = np.nan
    if field is not None:
        if landmarks is not None and len(landmarks[0]):
            row["tre_px"] = metrics.tre(field, *landmarks)
            for prefix, direction in (("tre_orig", "fixed_to_moving"), ("tre_m2f_orig", "moving_to_fixed")):
                d = fire_protocol.directional_point_errors(field, *landmarks, direction) * original_scale
                row[f"{prefix}_px"] = float(d.mean())
                row[f"{prefix}_median_px"], row[f"{prefix}_max_px"] = float(np.median(d)), float(d.max())
        if gt_field is not None:
            row["epe_px"] = metrics.epe(field, gt_field)
        row["folding_pct"], row["sdlogj"] = metrics.folding_and_sdlogj(field)
    return row


def evaluate_method(data_root: Path, shard_files: Iterable[Path], out_dir: Path, split: str = "test") -> Path:
    """Merge shards, score every pair, write ``pairs.csv``, ``registered.npy`` and ``fields.npy``, streaming."""
    dataset = PreparedDataset(data_root)
    pairs = dataset.split(split)
    n = len(pairs)
    h, w = dataset.image_shape
    index = index_shards(shard_files, n)
    folder = dataset.root / split
    has_gt = (folder / "field.npy").is_file()
    out_dir.mkdir(parents=True, exist_ok=True)
    writers = [NpyRowWriter(out_dir / "registered.npy", (n, h, w))]
    if index.outputs_field:
        writers.append(NpyRowWriter(out_dir / "fields.npy", (n, 2, h, w)))
    rows = []
    try:
        progress = tqdm(total=n, desc=f"evaluate {out_dir.name}", unit="pair")
        for a, b in iter_blocks(n, BLOCK):
            registered = index.rows(0, a, b)
            fields = index.rows(1, a, b) if index.outputs_field else None
            fixed = read_rows(folder / "fixed.npy", a, b)
            gt = read_rows(folder / "field.npy", a, b) if has_gt else None
            moving = read_rows(folder / "moving.npy", a, b) if pairs.lesion_kinds is not None else None
            for k, i in enumerate(range(a, b)):
                pid = pairs.manifest.at[i, "pair_id"]
                row = {"pair_id": pid, "category": pairs.manifest.at[i, "category"],
                       "cluster": pairs.manifest.at[i, "cluster"]}
                row.update(score_pair(registered[k], fixed[k], None if fields is None else fields[k],
                                      None if gt is None else gt[k], pairs.landmarks_of(pid),
                                      dataset.original_scale))
                if moving is not None:
                    row.update(pair_fidelity(registered[k], moving[k], fixed[k], None if gt is None else gt[k],
                                             pairs.lesions_moving[i], pairs.lesions_fixed[i],
                                             pairs.lesion_kinds[pid], None if fields is None else fields[k]))
                row.update(runtime_s=index.runtime_s[i], failed=bool(index.failed[i]), reason=index.reason[i])
                rows.append(row)
            writers[0].write(registered)
            if fields is not None:
                writers[1].write(fields)
            progress.update(b - a)
        progress.close()
    except BaseException:
        for wr in writers:
            wr.abort()
        raise
    for wr in writers:
        wr.close()
    if not index.outputs_field:
        (out_dir / "fields.npy").unlink(missing_ok=True)  # a stale file from an earlier field method
        (out_dir / CHECK_FILE).unlink(missing_ok=True)
    else:  # fields that score much better in another convention are flagged in the tables' notes
        check_fields(data_root, np.load(out_dir / "fields.npy", mmap_mode="r"), index.failed, out_dir, split)
    table = pd.DataFrame(rows, columns=PAIR_COLUMNS)
    tmp = out_dir / "pairs.csv.tmp"
    with disk_full_is_one_line(out_dir / "pairs.csv", tmp):
        table.to_csv(tmp, index=False)
        os.replace(tmp, out_dir / "pairs.csv")
    return out_dir / "pairs.csv"

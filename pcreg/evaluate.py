"""Per-pair evaluation of one method on one dataset: merge its shards, score every test pair.

Writes, in the method's result directory:

- ``pairs.csv``: one row per test pair in manifest order with ``pair_id, category,
  ncc, ssim, psnr, tre_px, tre_orig_px, epe_px, folding_pct, sdlogj, runtime_s,
  failed, reason``; a metric that does not apply is left empty (no landmarks, no
  ground-truth field, or an image-output method for the geometric columns);
- ``registered.npy``: the registered test images ``(N, H, W)`` float32, in manifest order;
- ``fields.npy``: the displacement fields ``(N, 2, H, W)`` float32 (field methods only).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from pcreg import metrics
from pcreg.datasets.format import PreparedDataset

PAIR_COLUMNS = [
    "pair_id", "category", "ncc", "ssim", "psnr", "tre_px", "tre_orig_px", "epe_px",
    "folding_pct", "sdlogj", "runtime_s", "failed", "reason",
]


def merge_shards(shard_files: Iterable[Path], n_pairs: int) -> dict[str, np.ndarray]:
    """Merge shard files into arrays in test-split order; every pair must be covered exactly once."""
    shards = [np.load(f, allow_pickle=False) for f in sorted(shard_files)]
    if not shards:
        raise ValueError("no shard files given")
    outputs_field = bool(shards[0]["outputs_field"])
    first = shards[0]["registered"]
    merged = {
        "registered": np.zeros((n_pairs, *first.shape[1:]), np.float32),
        "fields": np.zeros((n_pairs, 2, *first.shape[1:]), np.float32) if outputs_field else None,
        "runtime_s": np.full(n_pairs, np.nan),
        "failed": np.zeros(n_pairs, bool),
        "reason": np.array([""] * n_pairs, dtype=object),
    }
    seen = np.zeros(n_pairs, int)
    for sh in shards:
        idx = sh["indices"]
        seen[idx] += 1
        merged["registered"][idx] = sh["registered"]
        if outputs_field:
            merged["fields"][idx] = sh["fields"]
        merged["runtime_s"][idx] = sh["runtime_s"]
        merged["failed"][idx] = sh["failed"]
        merged["reason"][idx] = sh["reason"]
    if not np.all(seen == 1):
        raise ValueError(f"shards cover {int((seen > 0).sum())} of {n_pairs} pairs (some missing or repeated)")
    return merged


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
        "ncc": metrics.ncc(registered, fixed),
        "ssim": metrics.ssim(registered, fixed),
        "psnr": metrics.psnr(registered, fixed),
        "tre_px": np.nan, "tre_orig_px": np.nan, "epe_px": np.nan, "folding_pct": np.nan, "sdlogj": np.nan,
    }
    if field is not None:
        if landmarks is not None:
            row["tre_px"] = metrics.tre(field, *landmarks)
            row["tre_orig_px"] = row["tre_px"] * original_scale
        if gt_field is not None:
            row["epe_px"] = metrics.epe(field, gt_field)
        row["folding_pct"], row["sdlogj"] = metrics.folding_and_sdlogj(field)
    return row


def evaluate_method(data_root: Path, shard_files: Iterable[Path], out_dir: Path, split: str = "test") -> Path:
    """Merge shards, score every pair, write ``pairs.csv``, ``registered.npy`` and ``fields.npy``."""
    dataset = PreparedDataset(data_root)
    pairs = dataset.split(split)
    merged = merge_shards(shard_files, len(pairs))
    rows = []
    for i in tqdm(range(len(pairs)), desc=f"evaluate {out_dir.name}", unit="pair"):
        pid = pairs.manifest.at[i, "pair_id"]
        field = merged["fields"][i] if merged["fields"] is not None else None
        gt = np.asarray(pairs.field[i]) if pairs.field is not None else None
        row = {"pair_id": pid, "category": pairs.manifest.at[i, "category"]}
        row.update(score_pair(merged["registered"][i], np.asarray(pairs.fixed[i]), field, gt,
                              pairs.landmarks_of(pid), dataset.original_scale))
        row.update(runtime_s=merged["runtime_s"][i], failed=bool(merged["failed"][i]), reason=merged["reason"][i])
        rows.append(row)
    out_dir.mkdir(parents=True, exist_ok=True)
    _save_npy(out_dir / "registered.npy", merged["registered"])
    if merged["fields"] is not None:
        _save_npy(out_dir / "fields.npy", merged["fields"])
    table = pd.DataFrame(rows, columns=PAIR_COLUMNS)
    tmp = out_dir / "pairs.csv.tmp"
    table.to_csv(tmp, index=False)
    os.replace(tmp, out_dir / "pairs.csv")
    return out_dir / "pairs.csv"


def _save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)

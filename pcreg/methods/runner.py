"""Run one method on a shard of a dataset's test split and save what it produced.

A shard is three files. ``<shard>.npz`` holds, for the pairs it covers: their row
``indices`` in the test split, ``runtime_s``, ``failed``, ``reason`` and
``outputs_field``; beside it ``<shard>.registered.npy`` holds the registered
images ``(n, H, W)`` and ``<shard>.fields.npy`` the fields ``(n, 2, H, W)`` (zero
rows for image-output methods), in the order of ``indices``. The images and
fields are streamed to disk pair by pair and the pairs are read block by block,
so a shard job's memory does not grow with the shard; the ``.npz`` is written
last, so its presence means the shard is complete. Shards are merged by
:mod:`pcreg.evaluation.scoring`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from pcreg.datasets.format import PreparedDataset
from pcreg.methods.registry import build_method, get_method_class, run_method_batch
from pcreg.streaming import NpyRowWriter, iter_blocks, read_rows

#: Pairs read from the dataset at once by a shard job.
READ_BLOCK = 64


def shard_array_paths(shard_path: Path) -> tuple[Path, Path]:
    """``(registered, fields)`` array files that accompany shard file ``<shard>.npz``."""
    stem = shard_path.name.removesuffix(".npz")
    return shard_path.with_name(f"{stem}.registered.npy"), shard_path.with_name(f"{stem}.fields.npy")


def shard_indices(n_pairs: int, shard: int, n_shards: int) -> np.ndarray:
    """Contiguous, balanced block of pair indices for ``shard`` (0-based) of ``n_shards``."""
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} out of range for {n_shards} shards")
    return np.array_split(np.arange(n_pairs), n_shards)[shard]


def run_seed(spec: dict[str, Any], seed: int) -> int:
    """The seed a run uses: the config seed plus the run's ``seed_offset`` (its training seed, see ``seeds``)."""
    return int(seed) + int(spec.get("seed_offset", 0) or 0)


def make_method(spec: dict[str, Any], *, seed: int, threads: int, device: str = "cpu"):  # noqa: ANN201
    """Build the method of a run spec (``{"method": ..., "params": ...}``); only trainable ones get ``device``.

    ``seed`` is the config seed; the method gets :func:`run_seed` (a training seed of its own per seed run)."""
    seed = run_seed(spec, seed)
    cls = get_method_class(spec["method"])
    if cls.is_trainable():
        from pcreg.methods.training import resolve_device  # torch: only for learned methods

        device = str(resolve_device(device))
    else:
        device = "cpu"
    return build_method(spec["method"], spec.get("params", {}), seed=seed, threads=threads, device=device)


def load_method(spec: dict[str, Any], *, seed: int, threads: int, device: str = "cpu",  # noqa: ANN201
                model_dir: Path | None = None):
    """The method of a run spec ready to register: built, and for a trainable one its trained model loaded."""
    method = make_method(spec, seed=seed, threads=threads, device=device)
    if method.is_trainable():
        if model_dir is None:
            raise ValueError(f"{spec['method']} is trainable: a model directory is required")
        method.load(model_dir)
    return method


def fit_method(data_root: Path, spec: dict[str, Any], out_dir: Path, *, seed: int, threads: int, device: str) -> Path:
    """Train a trainable method on the train split (validated on val); write ``model.json`` last."""
    dataset = PreparedDataset(data_root)
    method = make_method(spec, seed=seed, threads=threads, device=device)
    out_dir.mkdir(parents=True, exist_ok=True)
    method.fit(dataset.split("train"), dataset.split("val"), out_dir)
    summary = {"run": spec.get("id"), "method": spec["method"], "params": method.params, "seed": run_seed(spec, seed),
               "dataset": dataset.name, **getattr(method, "train_summary", {})}
    tmp = out_dir / "model.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, out_dir / "model.json")
    return out_dir / "model.json"


def register_shard(
    data_root: Path,
    spec: dict[str, Any],
    shard: int,
    n_shards: int,
    out_path: Path,
    *,
    seed: int,
    threads: int,
    device: str = "cpu",
    model_dir: Path | None = None,
    split: str = "test",
) -> Path:
    """Register the pairs of one shard and write them to ``out_path`` (written atomically)."""
    dataset = PreparedDataset(data_root)
    pairs = dataset.split(split)
    method = load_method(spec, seed=seed, threads=threads, device=device, model_dir=model_dir)
    if method.needs_ground_truth:  # the perfect-registration reference reads the split's fields
        method.bind_ground_truth(pairs)
    idx = shard_indices(len(pairs), shard, n_shards)
    h, w = dataset.image_shape
    runtime = np.zeros(len(idx))
    failed = np.zeros(len(idx), bool)
    reasons: list[str] = []
    label = f"{spec.get('id', spec['method'])} {dataset.name} shard {shard + 1}/{n_shards}"
    reg_path, field_path = shard_array_paths(out_path)
    n_fields = len(idx) if method.outputs_field else 0
    folder = dataset.root / split
    ids = pairs.pair_ids
    # Pairs per call: learned methods batch on a GPU (inference_batch_size), everything else runs pair by pair.
    batch = max(1, int(getattr(method, "inference_batch_size", 1)))
    progress = tqdm(total=len(idx), desc=label, unit="pair")
    with NpyRowWriter(reg_path, (len(idx), h, w)) as reg_out, NpyRowWriter(field_path, (n_fields, 2, h, w)) as fld_out:
        # Shard indices are a contiguous block (shard_indices), read a few dozen pairs at a time.
        for a, b in iter_blocks(len(idx), READ_BLOCK):
            lo, hi = int(idx[a]), int(idx[b - 1]) + 1
            moving, fixed = read_rows(folder / "moving.npy", lo, hi), read_rows(folder / "fixed.npy", lo, hi)
            for c in range(a, b, batch):  # idx is contiguous, so block row = k - a
                results = run_method_batch(method, moving[c - a : min(c + batch, b) - a],
                                           fixed[c - a : min(c + batch, b) - a],
                                           [ids[int(i)] for i in idx[c : min(c + batch, b)]])
                for k, result in enumerate(results, start=c):
                    reg_out.write(result.image)
                    if method.outputs_field:
                        fld_out.write(result.field if result.field is not None else np.zeros((2, h, w), np.float32))
                    runtime[k], failed[k] = result.runtime_s, result.failed
                    reasons.append(result.reason)
                    progress.update()
    progress.close()
    tmp = out_path.with_name(out_path.name + ".tmp.npz")
    np.savez(tmp, indices=idx, runtime_s=runtime, failed=failed, reason=np.array(reasons, dtype=str),
             outputs_field=np.array(method.outputs_field))
    os.replace(tmp, out_path)
    return out_path

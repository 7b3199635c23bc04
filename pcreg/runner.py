"""Run one method on a shard of a dataset's test split and save what it produced.

A shard file (``.npz``) holds, for the pairs it covers: their row ``indices`` in
the test split, the ``registered`` images, the ``fields`` (empty for
image-output methods), ``runtime_s``, ``failed`` and ``reason``. Shards are
merged by :mod:`pcreg.evaluate`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from baselines import build_method, get_method_class, run_method
from pcreg.datasets.format import PreparedDataset


def shard_indices(n_pairs: int, shard: int, n_shards: int) -> np.ndarray:
    """Contiguous, balanced block of pair indices for ``shard`` (0-based) of ``n_shards``."""
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} out of range for {n_shards} shards")
    return np.array_split(np.arange(n_pairs), n_shards)[shard]


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible to torch, else ``cpu``."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def make_method(spec: dict[str, Any], *, seed: int, threads: int, device: str = "cpu"):  # noqa: ANN201
    """Build the method of a run spec (``{"method": ..., "params": ...}``)."""
    cls = get_method_class(spec["method"])
    dev = resolve_device(device) if cls.is_trainable() else "cpu"
    return build_method(spec["method"], spec.get("params", {}), seed=seed, threads=threads, device=dev)


def fit_method(data_root: Path, spec: dict[str, Any], out_dir: Path, *, seed: int, threads: int, device: str) -> Path:
    """Train a trainable method on the train split (validated on val); write ``model.json`` last."""
    dataset = PreparedDataset(data_root)
    method = make_method(spec, seed=seed, threads=threads, device=device)
    out_dir.mkdir(parents=True, exist_ok=True)
    method.fit(dataset.split("train"), dataset.split("val"), out_dir)
    summary = {"run": spec.get("id"), "method": spec["method"], "params": method.params, "seed": seed,
               "dataset": dataset.name}
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
    method = make_method(spec, seed=seed, threads=threads, device=device)
    if method.is_trainable():
        if model_dir is None:
            raise ValueError(f"{spec['method']} is trainable: a model directory is required")
        method.load(model_dir)
    idx = shard_indices(len(pairs), shard, n_shards)
    h, w = dataset.image_shape
    registered = np.zeros((len(idx), h, w), np.float32)
    fields = np.zeros((len(idx), 2, h, w), np.float32) if method.outputs_field else np.zeros((0,), np.float32)
    runtime = np.zeros(len(idx))
    failed = np.zeros(len(idx), bool)
    reasons: list[str] = []
    label = f"{spec.get('id', spec['method'])} {dataset.name} shard {shard + 1}/{n_shards}"
    for k, i in enumerate(tqdm(idx, desc=label, unit="pair")):
        moving, fixed = pairs.pair(int(i))
        result = run_method(method, moving, fixed)
        registered[k] = result.image
        if method.outputs_field and result.field is not None:
            fields[k] = result.field
        runtime[k], failed[k] = result.runtime_s, result.failed
        reasons.append(result.reason)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp.npz")
    np.savez(tmp, indices=idx, registered=registered, fields=fields, runtime_s=runtime, failed=failed,
             reason=np.array(reasons, dtype=str), outputs_field=np.array(method.outputs_field))
    os.replace(tmp, out_path)
    return out_path

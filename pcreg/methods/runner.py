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

import functools
import json
import os
import traceback
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from pcreg.datasets.format import PreparedDataset
from pcreg.errors import MethodFailed, UserError, disk_full_is_one_line
from pcreg.methods.isolation import DEFAULT_LOG_CAP_KB, DEFAULT_PAIR_TIMEOUT_S, PairWorker
from pcreg.methods.registry import build_method, get_method_class
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
                model_dir: Path | None = None, ground_truth: tuple[Path, str] | None = None):
    """The method of a run spec ready to register: built, and for a trainable one its trained model loaded.

    ``ground_truth = (data_root, split)`` hands the split's fields to a method that reads them (the
    perfect-registration reference, ``needs_ground_truth``)."""
    method = make_method(spec, seed=seed, threads=threads, device=device)
    if getattr(method, "needs_ground_truth", False):
        if ground_truth is None:
            raise ValueError(f"{spec['method']} needs the dataset's ground-truth fields")
        method.bind_ground_truth(PreparedDataset(ground_truth[0]).split(ground_truth[1]))
    if method.is_trainable():
        if model_dir is None:
            raise ValueError(f"{spec['method']} is trainable: a model directory is required")
        method.load(model_dir)
    return method


def method_worker(spec: dict[str, Any], *, seed: int, threads: int, device: str = "cpu",
                  model_dir: Path | None = None, label: str | None = None,
                  ground_truth: tuple[Path, str] | None = None) -> PairWorker:
    """A :class:`~pcreg.methods.isolation.PairWorker` that builds the run's method (:func:`load_method`) in a
    worker process, with the run's ``pair_timeout_s`` and ``log_cap_kb`` (config; defaults in the isolation
    module)."""
    factory = functools.partial(load_method, spec, seed=seed, threads=threads, device=device, model_dir=model_dir,
                                ground_truth=ground_truth)
    return PairWorker(factory, pair_timeout_s=float(spec.get("pair_timeout_s", DEFAULT_PAIR_TIMEOUT_S)),
                      log_cap_kb=int(spec.get("log_cap_kb", DEFAULT_LOG_CAP_KB)),
                      label=label or str(spec.get("id", spec["method"])))


def fit_method(data_root: Path, spec: dict[str, Any], out_dir: Path, *, seed: int, threads: int, device: str) -> Path:
    """Train a trainable method on the train split (validated on val); write ``model.json`` last."""
    dataset = PreparedDataset(data_root)
    method = make_method(spec, seed=seed, threads=threads, device=device)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        method.fit(dataset.split("train"), dataset.split("val"), out_dir)
    except UserError:
        raise
    except Exception as exc:  # the traceback goes to the job's log; the error is one line naming the run
        traceback.print_exc()
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        reason = f"{type(exc).__name__}: {first}"
        raise MethodFailed(f"training {spec.get('id', spec['method'])} on {dataset.name} failed: {reason} "
                           "(traceback above in this log)", reason) from None
    summary = {"run": spec.get("id"), "method": spec["method"], "params": method.params, "seed": run_seed(spec, seed),
               "dataset": dataset.name, **getattr(method, "train_summary", {})}
    tmp = out_dir / "model.json.tmp"
    with disk_full_is_one_line(out_dir / "model.json", tmp):
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
    idx = shard_indices(len(pairs), shard, n_shards)
    h, w = dataset.image_shape
    runtime = np.zeros(len(idx))
    failed = np.zeros(len(idx), bool)
    reasons: list[str] = []
    label = f"{spec.get('id', spec['method'])} {dataset.name} shard {shard + 1}/{n_shards}"
    reg_path, field_path = shard_array_paths(out_path)
    folder = dataset.root / split
    ids = pairs.pair_ids
    # The method lives in a worker process (pcreg.methods.isolation): a pair that hangs or crashes it is a
    # failed pair, and the shard goes on.
    with method_worker(spec, seed=seed, threads=threads, device=device, model_dir=model_dir, label=label,
                       ground_truth=(Path(data_root), split)) as worker:
        worker.start()
        outputs_field = bool(worker.outputs_field)
        n_fields = len(idx) if outputs_field else 0
        # Pairs per call: learned methods batch on a GPU (inference_batch_size), everything else runs pair by pair.
        batch = worker.batch
        progress = tqdm(total=len(idx), desc=label, unit="pair")
        with (NpyRowWriter(reg_path, (len(idx), h, w)) as reg_out,
              NpyRowWriter(field_path, (n_fields, 2, h, w)) as fld_out):
            # Shard indices are a contiguous block (shard_indices), read a few dozen pairs at a time.
            for a, b in iter_blocks(len(idx), READ_BLOCK):
                lo, hi = int(idx[a]), int(idx[b - 1]) + 1
                moving, fixed = read_rows(folder / "moving.npy", lo, hi), read_rows(folder / "fixed.npy", lo, hi)
                for c in range(a, b, batch):  # idx is contiguous, so block row = k - a
                    results = worker.run(moving[c - a : min(c + batch, b) - a],
                                         fixed[c - a : min(c + batch, b) - a],
                                         [ids[int(i)] for i in idx[c : min(c + batch, b)]])
                    for k, result in enumerate(results, start=c):
                        reg_out.write(result.image)
                        if outputs_field:
                            fld_out.write(result.field if result.field is not None
                                          else np.zeros((2, h, w), np.float32))
                        runtime[k], failed[k] = result.runtime_s, result.failed
                        reasons.append(result.reason)
                        progress.update()
        progress.close()
    tmp = out_path.with_name(out_path.name + ".tmp.npz")
    with disk_full_is_one_line(out_path, tmp):
        np.savez(tmp, indices=idx, runtime_s=runtime, failed=failed, reason=np.array(reasons, dtype=str),
                 outputs_field=np.array(outputs_field))
        os.replace(tmp, out_path)
    return out_path


# --- One method cannot take down the benchmark -----------------------------------------------------------------
# A method whose fit, or whose set-up before its first pair, fails leaves a failure marker instead of failing its
# job: model.json with status "failed" and the reason, or a shard of failed pairs (the moving image, a zero field,
# the reason), so every other method's tables, figures and the report are still made, and this method shows as
# failed, with the reason, in each of them. Infrastructure errors still fail the job (rerun to resume).

#: Status of a model.json written for a fit that failed.
FIT_FAILED = "failed"


def is_infrastructure_error(exc: BaseException) -> bool:
    """True for errors of the machine or of the user's setup, not of the method: they fail the job.

    A :class:`~pcreg.errors.UserError` (a config or input the user must fix, one line), out of memory (host or
    GPU), and operating-system errors (disk full, a missing file, a lost mount).
    """
    from pcreg.errors import UserError

    return isinstance(exc, (UserError, MemoryError, OSError)) or type(exc).__name__ == "OutOfMemoryError"


def failure_reason(exc: BaseException) -> str:
    """One line: the exception's type and message (for a :class:`MethodFailed`, the method's own error)."""
    if isinstance(exc, MethodFailed):
        return exc.reason[:500]
    text = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {text}"[:500]


def write_failed_model(out_dir: Path, spec: dict[str, Any], *, seed: int, dataset: str, reason: str) -> Path:
    """``model.json`` of a run whose fit failed: ``status`` failed and ``reason`` (written atomically)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {"run": spec.get("id"), "method": spec["method"], "params": spec.get("params", {}), "seed": seed,
               "dataset": dataset, "status": FIT_FAILED, "reason": reason, "converged": False, "steps": None,
               "stop_reason": f"fit failed: {reason}", "epochs_trained": None}
    tmp = out_dir / "model.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, out_dir / "model.json")
    return out_dir / "model.json"


def fit_failure(model_dir: Path | None) -> str | None:
    """The reason a run's fit failed (from its model.json), or None when it did not fail (or is not learned)."""
    path = Path(model_dir) / "model.json" if model_dir is not None else None
    if path is None or not path.is_file():
        return None
    info = json.loads(path.read_text())
    return str(info.get("reason", "unknown")) if info.get("status") == FIT_FAILED else None


def write_failed_shard(data_root: Path, spec: dict[str, Any], shard: int, n_shards: int, out_path: Path,
                       reason: str, split: str = "test") -> Path:
    """A shard in :func:`register_shard`'s format with every pair failed for ``reason`` (identity outputs)."""
    dataset = PreparedDataset(data_root)
    n = len(dataset.split(split))
    idx = shard_indices(n, shard, n_shards)
    h, w = dataset.image_shape
    outputs_field = bool(get_method_class(spec["method"]).outputs_field)
    reg_path, field_path = shard_array_paths(out_path)
    folder = dataset.root / split
    with NpyRowWriter(reg_path, (len(idx), h, w)) as reg_out, \
            NpyRowWriter(field_path, (len(idx) if outputs_field else 0, 2, h, w)) as fld_out:
        for a, b in iter_blocks(len(idx), READ_BLOCK):
            lo, hi = int(idx[a]), int(idx[b - 1]) + 1
            for image in read_rows(folder / "moving.npy", lo, hi):
                reg_out.write(np.asarray(image, np.float32))
                if outputs_field:
                    fld_out.write(np.zeros((2, h, w), np.float32))
    tmp = out_path.with_name(out_path.name + ".tmp.npz")
    np.savez(tmp, indices=idx, runtime_s=np.full(len(idx), np.nan), failed=np.ones(len(idx), bool),
             reason=np.array([reason] * len(idx), dtype=str), outputs_field=np.array(outputs_field))
    os.replace(tmp, out_path)
    return out_path

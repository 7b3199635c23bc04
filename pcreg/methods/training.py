"""The suite's shared training harness for learned registration methods.

Every trainable torch method (PCReg-Net, VoxelMorph, TransMorph, ...) trains
through :func:`train`; methods only supply a model and two callables:

- ``loss_fn(model, moving, fixed[, field]) -> (loss, registered)`` for a batch
  ``(B, 1, H, W)``: the scalar training loss and the registered image. When the
  split stores ground-truth fields, batches carry them (``(B, 2, H, W)``, suite
  convention) and they are passed as ``field=`` to a ``loss_fn`` that accepts
  that keyword (``None`` otherwise), so a method may use them as supervision;
- optionally ``predict_fn(model, moving, fixed) -> (registered, field_or_None)``,
  used for the validation metrics (default: the ``registered`` of ``loss_fn``).

What the harness does (one place, so every method gets the same treatment):

- Adam with (L2) weight decay, ``CosineAnnealingLR`` stepped once per epoch over
  ``epochs``, gradient clipping by global norm (``grad_clip``);
- budget and stopping: at most ``epochs`` epochs and (``max_steps`` > 0) at most
  ``max_steps`` optimizer steps; with ``patience`` > 0 training stops on a
  validation plateau (:class:`pcreg.methods.validation.Plateau`: no improvement of the
  selection metric by more than ``min_delta`` for ``patience`` validations, one
  validation per epoch), but never before ``min_steps_fraction`` of the step
  budget (a plateau detector that fires at the start calls a run that never
  started "converged"). The model is validated once before any step (the log's
  epoch-0 row); a run whose best validation value never beats that reference
  (or, where it is undefined, the first finite one; for NCC at least the NCC
  of the unregistered validation pairs, ``val_ncc_unregistered``: an output no
  closer to the fixed image than the moving image is no registration) by
  ``learn_min_gain`` (absolute for NCC, relative for EPE/TRE/loss) *did not learn*.
  :class:`TrainResult` says ``converged`` (plateau reached and learned),
  ``did_not_learn``, ``steps`` and ``stop_reason`` (``plateau``, ``max_steps``,
  ``epochs``); a run stopped by its budget is *not converged*;
- mixed precision on CUDA (``torch.autocast`` + ``GradScaler`` for float16;
  bfloat16 needs no scaler); on CPU ``amp`` is ignored and ``cpu_bf16`` turns on
  bfloat16 autocast where the CPU supports it natively (:mod:`pcreg.methods.cpu_precision`);
- determinism: the caller seeds model initialisation; the harness seeds the
  global RNGs from ``seed`` and draws each epoch's shuffle from a generator
  seeded with ``(seed, epoch)``, so a resumed run sees exactly the batches an
  uninterrupted one would;
- a checkpoint after every epoch, ``last.pt`` (model, optimizer, scheduler,
  scaler, epoch, best score, history, RNG states), and ``best.pt`` (model weights
  of the epoch with the best validation score), both written atomically
  (temporary file + ``os.replace``);
- **best model = best validation registration metric**
  (:mod:`pcreg.methods.validation`: EPE against the ground-truth field, else TRE at the
  landmarks, else the method's loss for field methods, else NCC for image-output
  methods; ``selection="loss"``: the method's own validation loss whatever the
  data offer, for unsupervised runs that must never see the ground truth);
  without a validation split, the lowest training loss;
- a per-epoch log ``train_log.csv`` with the columns :data:`LOG_COLUMNS`,
  rewritten atomically from the checkpointed history (so it never holds epochs
  that a resumed run will redo);
- resume: if ``last.pt`` exists in ``workdir`` and carries the same
  ``fingerprint`` (method parameters and prepared data, see
  :mod:`pcreg.methods.fingerprint`), training continues after its epoch ("resumed at
  epoch k" is logged) and a finished run returns at once; on a different
  fingerprint the old checkpoints are moved aside to ``stale/<timestamp>/`` and training
  starts over (one log line says so).
"""

from __future__ import annotations

import csv
import inspect
import math
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from pcreg import metrics
from pcreg.errors import UserError, disk_full_is_one_line
from pcreg.methods.validation import Plateau, choose_metric, pair_scores, score_of

LOG_COLUMNS = ["epoch", "steps", "train_loss", "val_loss", "val_ncc", "val_ssim", "val_psnr", "val_epe", "val_tre",
               "lr", "seconds", "val_ncc_unregistered"]
STALE = "stale"
LAST = "last.pt"
BEST = "best.pt"
LOG = "train_log.csv"

LossFn = Callable[..., tuple[torch.Tensor, torch.Tensor]]
PredictFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, "torch.Tensor | None"]]


@dataclass
class TrainConfig:
    """Settings of one training run (the defaults are the paper's where it states them).

    ``device`` is ``"cpu"``, ``"cuda"`` (or ``"cuda:N"``) or ``"auto"``
    (CUDA when available). ``amp`` enables mixed precision on CUDA only, in
    ``amp_dtype`` (``"bfloat16"``, ``"float16"`` with a GradScaler, or ``"auto"``:
    bfloat16 where the GPU supports it). ``num_workers`` < 0 means: ``threads``
    DataLoader workers on CUDA (to keep the GPU fed), none on CPU.
    ``val_max_pairs`` caps the validation pairs per epoch (0 = all).
    ``threads`` sets ``torch.set_num_threads`` for the run (0 = leave as is).
    ``channels_last`` trains in NHWC memory format (faster convolutions with
    tensor cores on CUDA; it changes only the memory layout, not the result
    beyond float rounding). ``cpu_bf16`` autocasts to bfloat16 on a CPU with native
    bf16 (:mod:`pcreg.methods.cpu_precision`; float32 elsewhere). ``epochs`` is the maximum number of epochs (and the
    length of the cosine schedule), ``max_steps`` (> 0) caps optimizer steps,
    ``patience``/``min_delta`` define the validation plateau (``patience`` 0: no
    early stopping, the run trains its whole budget and is reported not converged).
    """

    epochs: int = 100
    max_steps: int = 0
    patience: int = 0
    min_delta: float = 0.0
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-5
    min_lr: float = 0.0
    grad_clip: float = 1.0
    amp: bool = True
    amp_dtype: str = "auto"
    seed: int = 0
    num_workers: int = 0
    device: str = "auto"
    threads: int = 0
    val_max_pairs: int = 0
    channels_last: bool = False
    cpu_bf16: bool = False
    progress: bool = True
    #: Plateau stopping only after this fraction of the step budget (``max_steps``, else epochs x batches).
    min_steps_fraction: float = 0.5
    #: "Did not learn": the best validation value beats the reference (the validation before training, else the
    #: first finite one) by less than this: absolute for NCC, a fraction of the reference for EPE/TRE/loss.
    learn_min_gain: float = 0.02
    #: What selects the best model and stops on the plateau: ``auto`` (pcreg.methods.validation.choose_metric)
    #: or ``loss`` (the method's own validation loss, never the ground truth).
    selection: str = "auto"


@dataclass
class TrainResult:
    """Outcome of :func:`train`: the per-epoch history and where things were written."""

    history: list[dict[str, float]]
    best_epoch: int
    #: Selection key of the best epoch: (signed selection metric, -val loss); see ``pcreg.methods.validation.score_of``.
    best_score: tuple[float, float]
    workdir: Path
    resumed_from: int = 0
    #: Optimizer steps trained in total (including those before a resume).
    steps: int = 0
    #: ``plateau`` (converged), ``max_steps`` or ``epochs`` (budget exhausted first).
    stop_reason: str = "epochs"
    #: The validation metric that selected ``best.pt`` (:mod:`pcreg.methods.validation`), or ``train_loss``.
    selection_metric: str = "train_loss"
    extra: dict[str, Any] = field(default_factory=dict)
    #: The validation before any training step (``epoch`` 0; {} without a validation split).
    initial: dict[str, float] = field(default_factory=dict)
    #: Plateau stopping was allowed from this many steps on.
    min_steps: int = 0
    learn_min_gain: float = 0.02

    @property
    def reference_value(self) -> float:
        """What "learning" is measured against: the initial validation's value, else the first finite one; for
        NCC (image outputs) at least the NCC of the unregistered validation pairs (doing nothing)."""
        key = _LOG_KEY.get(self.selection_metric, "")
        ref = float("nan")
        for row in [self.initial, *self.history]:
            value = float(row.get(key, float("nan"))) if row else float("nan")
            if math.isfinite(value):
                ref = value
                break
        floor = float(self.initial.get("val_ncc_unregistered", float("nan"))) if self.initial else float("nan")
        if self.selection_metric == "ncc" and math.isfinite(floor):
            ref = floor if not math.isfinite(ref) else max(ref, floor)
        return ref

    @property
    def best_value(self) -> float:
        best = self.history[self.best_epoch - 1] if 0 < self.best_epoch <= len(self.history) else {}
        return float(best.get(_LOG_KEY.get(self.selection_metric, ""), float("nan")))

    @property
    def did_not_learn(self) -> bool:
        """True when the best validation value never beat the reference by ``learn_min_gain`` (absolute for NCC,
        relative for EPE/TRE/loss); also when no validation value was ever defined."""
        return not learned(self.selection_metric, self.reference_value, self.best_value, self.learn_min_gain)

    @property
    def converged(self) -> bool:
        """True when training stopped on the validation plateau rather than on its budget, and learned."""
        return self.stop_reason == "plateau" and not self.did_not_learn

    def summary(self) -> dict[str, Any]:
        """What ``model.json`` records about the training run."""
        return {"converged": self.converged, "did_not_learn": self.did_not_learn, "steps": self.steps,
                "min_steps": self.min_steps, "epochs_trained": len(self.history),
                "stop_reason": self.stop_reason, "best_epoch": self.best_epoch,
                "selection_metric": self.selection_metric,
                "initial_value": _json_float(self.reference_value), "best_value": _json_float(self.best_value),
                "learn_min_gain": self.learn_min_gain}

    @property
    def best_path(self) -> Path:
        return self.workdir / BEST

    @property
    def last_path(self) -> Path:
        return self.workdir / LAST


_LOG_KEY = {"epe": "val_epe", "tre": "val_tre", "loss": "val_loss", "ncc": "val_ncc", "train_loss": "train_loss"}


def learned(metric: str, reference: float, best: float, min_gain: float) -> bool:
    """Whether ``best`` beats ``reference`` meaningfully: by ``min_gain`` for NCC (absolute), by ``min_gain`` of
    ``|reference|`` for the lower-is-better metrics (EPE, TRE, losses). Undefined values never count as learning."""
    if not (math.isfinite(reference) and math.isfinite(best)):
        return False
    if metric == "ncc":
        return best - reference >= min_gain
    return reference - best >= min_gain * max(abs(reference), 1e-12)


def _json_float(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


class PairDataset(Dataset):
    """Torch view of a :class:`pcreg.datasets.format.PairSplit` (memory-mapped arrays).

    Item ``i`` is ``(moving, fixed)``, each a ``(1, H, W)`` float32 tensor, or
    ``(moving, fixed, field)`` with the ``(2, H, W)`` ground-truth field when the
    split stores fields (``with_field`` None = whenever it does); only that pair is
    read from disk. ``indices`` restricts the view to some pairs;
    :meth:`landmarks_at` gives item ``i``'s landmarks.
    """

    def __init__(self, split: Any, indices: list[int] | None = None, with_field: bool | None = None):
        self.split = split
        self.indices = list(range(len(split))) if indices is None else list(indices)
        has = getattr(split, "field", None) is not None
        self.with_field = has if with_field is None else bool(with_field and has)
        self.landmarks = {i: split.landmarks_of(pid) for i, pid in enumerate(split.pair_ids)} \
            if getattr(split, "landmarks", None) else {}
        # Splits read from disk are streamed with positioned reads (pcreg.streaming.PairRows): iterating
        # a memory map keeps every page touched resident, which grows with the dataset.
        root = getattr(split, "root", None)
        self.rows = None
        if root is not None:
            from pcreg.streaming import PairRows

            self.rows = PairRows(root, split.name, with_field=self.with_field)

    def landmarks_at(self, i: int) -> tuple[np.ndarray, np.ndarray] | None:
        """``(fixed_xy, moving_xy)`` of item ``i``, or None."""
        return self.landmarks.get(self.indices[i])

    def __len__(self) -> int:
        return len(self.indices)

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers get the streaming reader only, not the memory-mapped split.
        state = dict(self.__dict__)
        if self.rows is not None:
            state["split"] = None
        return state

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        j = self.indices[i]
        if self.rows is not None:
            arrays = self.rows[j]
        else:
            arrays = (*self.split.pair(j), self.split.field[j]) if self.with_field else self.split.pair(j)
        # np.array copies: memory-mapped rows are read-only and torch wants writable memory.
        moving, fixed = (torch.from_numpy(np.array(a, np.float32))[None] for a in arrays[:2])
        if self.with_field:
            return moving, fixed, torch.from_numpy(np.array(arrays[2], np.float32))
        return moving, fixed


def unpack_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``(moving, fixed, field or None)`` of a batch of 2- or 3-tuples."""
    return batch[0], batch[1], (batch[2] if len(batch) > 2 else None)


def accepts_field(fn: Callable) -> bool:
    """Whether ``fn`` takes a ``field`` keyword (the ground-truth field of the batch)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "field" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _loss_caller(loss_fn: LossFn) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """``call(model, moving, fixed, field)``: passes ``field`` on only to a ``loss_fn`` that accepts it."""
    if accepts_field(loss_fn):
        return lambda model, m, f, fld: loss_fn(model, m, f, field=fld)
    return lambda model, m, f, fld: loss_fn(model, m, f)


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA if available else CPU; otherwise ``torch.device(device)``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"config error at device: {device!r}, but {cuda_status()}; set device: auto (CUDA where "
                        "present, else the CPU) or cpu, or run this job on a machine with a GPU")
    return dev


def cuda_status() -> str:
    """Why torch sees no CUDA device here, in words (CPU-only build, or no GPU/driver)."""
    if torch.version.cuda is None:
        return f"this torch ({torch.__version__}) is a CPU-only build"
    return f"torch {torch.__version__} (CUDA {torch.version.cuda}) finds no CUDA device on this machine"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) RNGs."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - for third-party code drawing from the global RNG
    torch.manual_seed(seed)  # also seeds every CUDA device


def _rng_state() -> dict[str, Any]:
    """Every RNG's state as plain data (tensors, numbers, strings): loadable with ``weights_only=True``."""
    name, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    state = {"python": random.getstate(),
             "numpy": [name, torch.from_numpy(np.asarray(keys, np.int64)), int(pos), int(has_gauss), float(cached)],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then ``os.replace`` onto ``path``.

    Checkpoints hold plain data only (tensors, dicts, lists, numbers, strings), so that
    :func:`load_checkpoint` can read them with ``weights_only=True``. A full disk is
    one :class:`~pcreg.errors.UserError` naming the file (the partial file is removed).
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with disk_full_is_one_line(path, tmp):
        with open(tmp, "wb") as fh:  # a Python file: a full disk is a plain OSError (ENOSPC), not torch's
            torch.save(obj, fh)      # "unexpected pos" RuntimeError
        os.replace(tmp, path)


class CheckpointError(UserError):
    """A checkpoint that cannot be read as plain data (truncated, garbage, or a pickle that would run code)."""


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint read as data only (``torch.load(..., weights_only=True)``): never runs code from the file.

    Raises :class:`CheckpointError` naming the file if it is truncated, garbage,
    or holds anything but plain data (a crafted pickle is refused, not run).
    """
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file; all mean the same here
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            why = "it holds more than plain data (loading it would run code), so it is refused"
        else:
            why = f"it is truncated or not a checkpoint ({type(exc).__name__}: {first[:200]})"
        raise CheckpointError(f"unreadable checkpoint {path}: {why}") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointError(f"unreadable checkpoint {path}: not a checkpoint of this suite (no model state)")
    return ckpt


def _write_log(history: list[dict[str, float]], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with disk_full_is_one_line(path, tmp):
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=LOG_COLUMNS)
            writer.writeheader()
            for row in history:
                writer.writerow({k: row.get(k, "") for k in LOG_COLUMNS})
        os.replace(tmp, path)


def load_weights(model: nn.Module, path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load the ``"model"`` state of a ``best.pt``/``last.pt`` checkpoint into ``model``; returns the checkpoint.

    The file is read as data only (:func:`load_checkpoint`); a checkpoint that does not fit the
    model is a :class:`CheckpointError` too.
    """
    ckpt = load_checkpoint(path, map_location)
    try:
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise CheckpointError(f"unreadable checkpoint {path}: it does not fit the model ({first})") from None
    return ckpt


def _epoch_loader(dataset: Dataset, config: TrainConfig, epoch: int, shuffle: bool, pin: bool) -> DataLoader:
    # A fresh generator per epoch seeded from (seed, epoch): the order depends on nothing else,
    # which is what makes a resumed run identical to an uninterrupted one.
    gen = torch.Generator()
    gen.manual_seed(config.seed * 1_000_003 + epoch)
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        shuffle=shuffle,
        generator=gen,
        num_workers=_workers(config, pin),
        pin_memory=pin,
        drop_last=False,
        persistent_workers=False,
    )


def _workers(config: TrainConfig, cuda: bool) -> int:
    """DataLoader workers: as configured, or (``num_workers < 0``) the job's threads on CUDA, none on CPU."""
    if config.num_workers >= 0:
        return config.num_workers
    return max(1, config.threads) if cuda else 0


def evaluate(
    model: nn.Module,
    loss_fn: LossFn,
    dataset: Dataset,
    config: TrainConfig,
    device: torch.device,
    predict_fn: PredictFn | None = None,
) -> dict[str, Any]:
    """Validation: mean loss and per-pair registration numbers of ``dataset`` (see :mod:`pcreg.methods.validation`).

    Returns ``val_loss``, ``val_ncc``/``val_ssim``/``val_psnr`` (registered vs
    fixed), ``val_epe`` (predicted vs ground-truth field) and ``val_tre`` (at the
    landmarks) -- NaN where not computable -- and ``metric``, the selection metric
    these data allow. The model is put in eval mode (BatchNorm uses running
    statistics) and no gradients are kept; mixed precision is used as in training.
    """
    model.eval()
    call = _loss_caller(loss_fn)
    losses: list[float] = []
    rows: list[dict[str, float]] = []
    unregistered: list[float] = []
    field_out, has_gt, has_lm = False, False, False
    use_amp, amp_dtype = _amp_settings(config, device)
    loader = _epoch_loader(dataset, config, 0, shuffle=False, pin=device.type == "cuda")
    landmarks_at = getattr(dataset, "landmarks_at", None)
    k = 0  # item index of the batch's first pair (the loader keeps the order)
    with torch.no_grad():
        for batch in loader:
            moving, fixed, gt = unpack_batch(batch)
            unregistered.extend(metrics.ncc(m, f) for m, f in zip(moving.float().numpy()[:, 0],
                                                                   fixed.float().numpy()[:, 0]))
            moving, fixed = _to(moving, device, config), _to(fixed, device, config)
            gt_dev = None if gt is None else gt.to(device)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                loss, registered = call(model, moving, fixed, gt_dev)
                field = None
                if predict_fn is not None:
                    registered, field = predict_fn(model, moving, fixed)
            losses.append(float(loss) * len(moving))
            reg = registered.float().cpu().numpy()[:, 0]
            fix = fixed.float().cpu().numpy()[:, 0]
            fld = None if field is None else field.float().cpu().numpy()
            gtn = None if gt is None else gt.numpy()
            field_out |= fld is not None
            has_gt |= gtn is not None
            for j in range(len(reg)):
                lm = landmarks_at(k + j) if landmarks_at is not None else None
                has_lm |= lm is not None
                rows.append(pair_scores(reg[j], fix[j], None if fld is None else fld[j],
                                        None if gtn is None else gtn[j], lm))
            k += len(reg)
    n = max(len(rows), 1)

    def mean(key: str) -> float:
        values = [r[key] for r in rows if key in r]
        return float(np.mean(values)) if values else float("nan")  # NaN if a prediction is constant (NCC)

    return {"val_loss": sum(losses) / n, "val_ncc": mean("ncc"), "val_ssim": mean("ssim"), "val_psnr": mean("psnr"),
            "val_epe": mean("epe"), "val_tre": mean("tre"),
            "val_ncc_unregistered": float(np.nanmean(unregistered)) if unregistered else float("nan"),
            "metric": "loss" if config.selection == "loss" else choose_metric(field_out, has_gt, has_lm)}


def _to(x: torch.Tensor, device: torch.device, config: TrainConfig) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if config.channels_last else x


def _amp_settings(config: TrainConfig, device: torch.device) -> tuple[bool, torch.dtype]:
    """Whether autocast is on and its dtype; ``auto`` = bfloat16 where the GPU supports it, else float16.

    On the CPU: bfloat16 when ``cpu_bf16`` is asked for and the CPU runs it natively, else no autocast.
    """
    if config.amp_dtype not in ("auto", "float16", "bfloat16"):
        raise ValueError(f"amp_dtype must be auto, float16 or bfloat16, got {config.amp_dtype!r}")
    if device.type == "cpu" and config.cpu_bf16:
        from pcreg.methods.cpu_precision import use_cpu_bf16

        return use_cpu_bf16(True), torch.bfloat16
    use = bool(config.amp and device.type == "cuda")
    name = config.amp_dtype
    if name == "auto":
        name = "bfloat16" if use and torch.cuda.is_bf16_supported() else "float16"
    return use, getattr(torch, name)


def _say(message: str) -> None:
    """One line on stderr (the workflow's fit log)."""
    print(f"training: {message}", file=sys.stderr, flush=True)


def move_aside(workdir: Path, names: tuple[str, ...] = (LAST, BEST, LOG)) -> Path:
    """Move ``names`` (those present) of ``workdir`` to a new ``workdir/stale/<timestamp>/``; return that folder.

    Each event gets its own folder (a numbered suffix where two fall in one second): earlier stale sets
    are kept, never overwritten or deleted.
    """
    base = Path(workdir) / STALE / time.strftime("%Y%m%d-%H%M%S")
    target, n = base, 1
    while target.exists():
        n += 1
        target = base.with_name(f"{base.name}-{n}")
    target.mkdir(parents=True)
    for name in names:
        if (Path(workdir) / name).exists():
            os.replace(Path(workdir) / name, target / name)
    return target


def _move_aside(workdir: Path, reason: str) -> None:
    """Move the checkpoints and log of an incompatible earlier run to ``workdir/stale/<timestamp>/``."""
    stale = move_aside(workdir)
    _say(f"{reason}: earlier checkpoint moved to {stale}, training starts over")


def train(
    model: nn.Module,
    loss_fn: LossFn,
    train_data: Any,
    val_data: Any,
    workdir: str | Path,
    config: TrainConfig,
    *,
    predict_fn: PredictFn | None = None,
    callback: Callable[[int, dict[str, float]], None] | None = None,
    fingerprint: str | None = None,
) -> TrainResult:
    """Train ``model`` with ``loss_fn`` on ``train_data``, validating on ``val_data``; checkpoints in ``workdir``.

    ``train_data``/``val_data`` are :class:`PairSplit` objects or torch Datasets
    yielding ``(moving, fixed)`` or ``(moving, fixed, field)``; ``val_data`` may be
    ``None`` or empty. A training Dataset with a ``set_epoch(epoch)`` method (fresh
    synthetic pairs, augmentation) is told each epoch before it is iterated. The
    model's initial weights must already be seeded by the caller (see
    :class:`pcreg.methods.learned.LearnedMethod`). ``callback(epoch, row)`` runs after
    each epoch's checkpoint is written (tests use it to simulate an interruption).
    ``fingerprint`` identifies what the checkpoint was trained from (defaults to
    the config): a ``last.pt`` with another one is moved aside, not resumed.
    On return ``model`` holds the **last** epoch's weights; ``best.pt`` holds the best.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    use_amp, amp_dtype = _amp_settings(config, device)
    call = _loss_caller(loss_fn)
    if fingerprint is None:
        from pcreg.methods.fingerprint import digest

        fingerprint = digest({k: v for k, v in asdict(config).items() if k not in _COSMETIC})

    train_ds = train_data if isinstance(train_data, Dataset) else PairDataset(train_data)
    val_ds = None
    if val_data is not None and len(val_data) > 0:
        val_ds = val_data if isinstance(val_data, Dataset) else PairDataset(val_data)
        if config.val_max_pairs and len(val_ds) > config.val_max_pairs:
            # Evenly spaced subset: deterministic and covering the whole split.
            idx = np.linspace(0, len(val_ds) - 1, config.val_max_pairs).round().astype(int).tolist()
            if isinstance(val_ds, PairDataset):
                val_ds = PairDataset(val_ds.split, [val_ds.indices[i] for i in idx], val_ds.with_field)
            else:
                val_ds = torch.utils.data.Subset(val_ds, idx)
    if len(train_ds) == 0:
        raise ValueError("the training split is empty")

    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=max(config.epochs, 1), eta_min=config.min_lr
    )
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)

    start_epoch, history, steps, stop_reason, metric, initial = 0, [], 0, None, "train_loss", {}
    best_score, best_epoch = (-math.inf, -math.inf), 0
    plateau = Plateau(config.patience, config.min_delta)
    last_path = workdir / LAST
    ckpt = None
    if last_path.is_file():
        try:
            ckpt = load_checkpoint(last_path, map_location=device)
        except CheckpointError as exc:  # a truncated or unsafe last.pt: kept aside, training starts over
            _move_aside(workdir, str(exc))
    if ckpt is not None:
        if ckpt.get("fingerprint") != fingerprint:
            _move_aside(workdir, "checkpoint from other parameters or data")
        else:
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            scaler.load_state_dict(ckpt["scaler"])
            _set_rng_state(ckpt["rng"])
            start_epoch, history = int(ckpt["epoch"]), list(ckpt["history"])
            best_score, best_epoch = tuple(ckpt["best_score"]), int(ckpt["best_epoch"])
            steps, stop_reason, metric = int(ckpt["steps"]), ckpt["stop_reason"], ckpt["metric"]
            plateau.load(ckpt["plateau"])
            initial = dict(ckpt.get("initial", {}))
            _say(f"resumed at epoch {start_epoch} (step {steps})" if stop_reason is None
                 else f"already trained ({stop_reason} at epoch {start_epoch}, step {steps})")
    elif (workdir / BEST).is_file():
        _move_aside(workdir, "best.pt without last.pt")
    resumed_from = start_epoch
    batches = math.ceil(len(train_ds) / config.batch_size)
    budget = config.epochs * batches if not config.max_steps else min(config.max_steps, config.epochs * batches)
    min_steps = math.ceil(config.min_steps_fraction * budget)
    if start_epoch == 0 and val_ds is not None and config.epochs > 0:  # the untrained model: the reference
        initial = {"epoch": 0, "steps": 0, "train_loss": float("nan"), "lr": optimizer.param_groups[0]["lr"],
                   **{k: v for k, v in evaluate(model, loss_fn, val_ds, config, device, predict_fn).items()
                      if k != "metric"}, "seconds": 0.0}

    epoch = start_epoch
    while stop_reason is None and epoch < config.epochs:
        epoch += 1
        t0 = time.perf_counter()
        model.train()
        if hasattr(train_ds, "set_epoch"):
            train_ds.set_epoch(epoch)
        loader = _epoch_loader(train_ds, config, epoch, shuffle=True, pin=device.type == "cuda")
        total, count = 0.0, 0
        lr = optimizer.param_groups[0]["lr"]
        bar = _progress(len(loader), f"epoch {epoch}/{config.epochs}", config.progress)
        for batch in loader:
            moving, fixed, gt = unpack_batch(batch)
            moving, fixed = _to(moving, device, config), _to(fixed, device, config)
            gt = None if gt is None else gt.to(device)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                loss, _ = call(model, moving, fixed, gt)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite training loss at epoch {epoch}")
            scaler.scale(loss).backward()
            if config.grad_clip and config.grad_clip > 0:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            steps += 1
            total += float(loss.detach()) * len(moving)
            count += len(moving)
            if bar is not None:
                bar.update()
                bar.set_postfix(loss=f"{total / count:.4f}")
            if config.max_steps and steps >= config.max_steps:
                break  # the budget may end mid-epoch: validate and stop
        if bar is not None:
            bar.close()
        scheduler.step()

        row: dict[str, Any] = {"epoch": epoch, "steps": steps, "train_loss": total / count, "lr": lr}
        if val_ds is not None:
            scores = evaluate(model, loss_fn, val_ds, config, device, predict_fn)
            metric = scores.pop("metric")
            row.update(scores)
            score = score_of(metric, row[_LOG_KEY[metric]], row["val_loss"])
        else:
            row.update({k: float("nan") for k in LOG_COLUMNS if k.startswith("val_")})
            score = score_of("loss", row["train_loss"], row["train_loss"])
        row["seconds"] = time.perf_counter() - t0
        history.append(row)

        if score > best_score:
            best_score, best_epoch = score, epoch
            atomic_save({"model": model.state_dict(), "epoch": epoch, "score": score, "config": asdict(config),
                         "fingerprint": fingerprint}, workdir / BEST)
        if plateau.update(score[0]) and steps >= min_steps:  # never before the minimum number of steps
            stop_reason = "plateau"
        elif config.max_steps and steps >= config.max_steps:
            stop_reason = "max_steps"
        elif epoch >= config.epochs:
            stop_reason = "epochs"
        atomic_save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "epoch": epoch,
                "steps": steps,
                "stop_reason": stop_reason,
                "metric": metric,
                "plateau": plateau.state(),
                "initial": initial,
                "best_score": best_score,
                "best_epoch": best_epoch,
                "history": history,
                "rng": _rng_state(),
                "config": asdict(config),
                "fingerprint": fingerprint,
            },
            last_path,
        )
        _write_log(([initial] if initial else []) + history, workdir / LOG)
        if callback is not None:
            callback(epoch, row)

    if stop_reason is None:  # epochs == 0, or a budget met by a resumed run's longer config
        stop_reason = "max_steps" if config.max_steps and steps >= config.max_steps else "epochs"
    if not (workdir / BEST).is_file():  # epochs == 0: keep the contract that best.pt exists after training
        atomic_save({"model": model.state_dict(), "epoch": 0, "score": best_score, "config": asdict(config),
                     "fingerprint": fingerprint}, workdir / BEST)
        _write_log(([initial] if initial else []) + history, workdir / LOG)
    metric = metric if val_ds is not None else "train_loss"
    result = TrainResult(history, best_epoch, best_score, workdir, resumed_from, steps, stop_reason, metric,
                         initial=initial, min_steps=min_steps, learn_min_gain=config.learn_min_gain)
    if result.did_not_learn:
        _say(f"did not learn: best validation {metric} {result.best_value:.4g} vs {result.reference_value:.4g} "
             f"before training ({stop_reason} after {steps} steps)")
    elif stop_reason != "plateau":
        _say(f"not converged: stopped by its budget ({stop_reason}) after {steps} steps")
    else:
        _say(f"converged (validation plateau) after {steps} steps (minimum {min_steps}), best epoch {best_epoch}")
    return result


#: TrainConfig fields that do not change what is trained (left out of the default fingerprint).
_COSMETIC = {"progress", "num_workers", "threads", "device"}


def _progress(total: int, desc: str, enabled: bool) -> Any:
    """A progress bar of ``total`` steps, updated by hand, or None.

    Never wrap the DataLoader itself: ``tqdm.auto`` (``tqdm_asyncio``) calls ``iter()`` on its iterable when it is
    created and again when iterated, and each DataLoader iterator draws from the epoch's generator, so the bar
    would change the order of the training pairs (a run with ``progress: false`` trained differently)."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)

"""The suite's shared training harness for learned registration methods.

Every trainable torch method (PCReg-Net, VoxelMorph, TransMorph, ...) trains
through :func:`train`; methods only supply a model and two callables:

- ``loss_fn(model, moving, fixed) -> (loss, registered)`` for a batch
  ``(B, 1, H, W)``: the scalar training loss and the registered image;
- optionally ``predict_fn(model, moving, fixed) -> (registered, field_or_None)``,
  used for the validation metrics (default: the ``registered`` of ``loss_fn``).

What the harness does (one place, so every method gets the same treatment):

- Adam with (L2) weight decay, ``CosineAnnealingLR`` stepped once per epoch over
  ``epochs``, gradient clipping by global norm (``grad_clip``);
- mixed precision only on CUDA (``torch.autocast`` + ``GradScaler`` for float16;
  bfloat16 needs no scaler); on CPU ``amp`` is ignored;
- determinism: the caller seeds model initialisation; the harness seeds the
  global RNGs from ``seed`` and draws each epoch's shuffle from a generator
  seeded with ``(seed, epoch)``, so a resumed run sees exactly the batches an
  uninterrupted one would;
- a checkpoint after every epoch, ``last.pt`` (model, optimizer, scheduler,
  scaler, epoch, best score, history, RNG states), and ``best.pt`` (model weights
  of the epoch with the best validation score), both written atomically
  (temporary file + ``os.replace``);
- **best model = highest mean validation NCC** (the suite's headline metric),
  epochs with undefined NCC (constant output) ranked by validation loss;
  without a validation split, the lowest training loss;
- a per-epoch log ``train_log.csv`` with the columns :data:`LOG_COLUMNS`,
  rewritten atomically from the checkpointed history (so it never holds epochs
  that a resumed run will redo);
- resume: if ``last.pt`` exists in ``workdir`` training continues after its
  epoch; a finished run returns at once.
"""

from __future__ import annotations

import csv
import math
import os
import random
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

LOG_COLUMNS = ["epoch", "train_loss", "val_loss", "val_ncc", "val_ssim", "val_psnr", "lr", "seconds"]
LAST = "last.pt"
BEST = "best.pt"
LOG = "train_log.csv"

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
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
    beyond float rounding).
    """

    epochs: int = 100
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
    progress: bool = True


@dataclass
class TrainResult:
    """Outcome of :func:`train`: the per-epoch history and where things were written."""

    history: list[dict[str, float]]
    best_epoch: int
    #: Selection key of the best epoch: (mean val NCC, -val loss); see ``_score``.
    best_score: tuple[float, float]
    workdir: Path
    resumed_from: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def best_path(self) -> Path:
        return self.workdir / BEST

    @property
    def last_path(self) -> Path:
        return self.workdir / LAST


class PairDataset(Dataset):
    """Torch view of a :class:`pcreg.datasets.format.PairSplit` (memory-mapped arrays).

    Item ``i`` is ``(moving, fixed)``, each a ``(1, H, W)`` float32 tensor; only
    that pair is read from disk. ``indices`` restricts the view to some pairs.
    """

    def __init__(self, split: Any, indices: list[int] | None = None):
        self.split = split
        self.indices = list(range(len(split))) if indices is None else list(indices)
        # Splits read from disk are streamed with positioned reads (pcreg.streaming.PairRows): iterating
        # a memory map keeps every page touched resident, which grows with the dataset.
        root = getattr(split, "root", None)
        self.rows = None
        if root is not None:
            from pcreg.streaming import PairRows

            self.rows = PairRows(root, split.name)

    def __len__(self) -> int:
        return len(self.indices)

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers get the streaming reader only, not the memory-mapped split.
        state = dict(self.__dict__)
        if self.rows is not None:
            state["split"] = None
        return state

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.rows is not None:
            moving, fixed = self.rows[self.indices[i]]
        else:
            moving, fixed = self.split.pair(self.indices[i])
        # np.array copies: memory-mapped rows are read-only and torch wants writable memory.
        return torch.from_numpy(np.array(moving, np.float32))[None], torch.from_numpy(np.array(fixed, np.float32))[None]


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA if available else CPU; otherwise ``torch.device(device)``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available")
    return dev


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) RNGs."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - for third-party code drawing from the global RNG
    torch.manual_seed(seed)  # also seeds every CUDA device


def _rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(),  # noqa: NPY002
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then ``os.replace`` onto ``path``."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _write_log(history: list[dict[str, float]], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=LOG_COLUMNS)
        writer.writeheader()
        for row in history:
            writer.writerow({k: row.get(k, "") for k in LOG_COLUMNS})
    os.replace(tmp, path)


def load_weights(model: nn.Module, path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load the ``"model"`` state of a ``best.pt``/``last.pt`` checkpoint into ``model``; returns the checkpoint."""
    ckpt = torch.load(Path(path), map_location=map_location, weights_only=False)
    model.load_state_dict(ckpt["model"])
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
) -> dict[str, float]:
    """Validation: mean loss and mean per-pair NCC/SSIM/PSNR (``pcreg.metrics``) of registered vs fixed.

    The model is put in eval mode (BatchNorm uses running statistics) and no
    gradients are kept; mixed precision is used as in training.
    """
    model.eval()
    losses, nccs, ssims, psnrs = [], [], [], []
    use_amp, amp_dtype = _amp_settings(config, device)
    loader = _epoch_loader(dataset, config, 0, shuffle=False, pin=device.type == "cuda")
    with torch.no_grad():
        for moving, fixed in loader:
            moving, fixed = _to(moving, device, config), _to(fixed, device, config)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                loss, registered = loss_fn(model, moving, fixed)
                if predict_fn is not None:
                    registered, _ = predict_fn(model, moving, fixed)
            losses.append(float(loss) * len(moving))
            reg = registered.float().cpu().numpy()[:, 0]
            fix = fixed.float().cpu().numpy()[:, 0]
            for r, f in zip(reg, fix):
                nccs.append(metrics.ncc(r, f))
                ssims.append(metrics.ssim(r, f))
                psnrs.append(min(metrics.psnr(r, f), 100.0))  # identical images: cap inf for averaging
    n = max(len(nccs), 1)
    return {
        "val_loss": sum(losses) / n,
        "val_ncc": float(np.mean(nccs)),  # NaN if any prediction is constant (NCC undefined)
        "val_ssim": float(np.mean(ssims)) if ssims else float("nan"),
        "val_psnr": float(np.mean(psnrs)) if psnrs else float("nan"),
    }


def _to(x: torch.Tensor, device: torch.device, config: TrainConfig) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if config.channels_last else x


def _amp_settings(config: TrainConfig, device: torch.device) -> tuple[bool, torch.dtype]:
    """Whether autocast is on and its dtype; ``auto`` = bfloat16 where the GPU supports it, else float16."""
    if config.amp_dtype not in ("auto", "float16", "bfloat16"):
        raise ValueError(f"amp_dtype must be auto, float16 or bfloat16, got {config.amp_dtype!r}")
    use = bool(config.amp and device.type == "cuda")
    name = config.amp_dtype
    if name == "auto":
        name = "bfloat16" if use and torch.cuda.is_bf16_supported() else "float16"
    return use, getattr(torch, name)


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
) -> TrainResult:
    """Train ``model`` with ``loss_fn`` on ``train_data``, validating on ``val_data``; checkpoints in ``workdir``.

    ``train_data``/``val_data`` are :class:`PairSplit` objects or torch Datasets
    yielding ``(moving, fixed)``; ``val_data`` may be ``None`` or empty. The
    model's initial weights must already be seeded by the caller (see
    :class:`pcreg.methods.learned.LearnedMethod`). ``callback(epoch, row)`` runs after
    each epoch's checkpoint is written (tests use it to simulate an interruption).
    On return ``model`` holds the **last** epoch's weights; ``best.pt`` holds the best.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    use_amp, amp_dtype = _amp_settings(config, device)

    train_ds = train_data if isinstance(train_data, Dataset) else PairDataset(train_data)
    val_ds = None
    if val_data is not None and len(val_data) > 0:
        val_ds = val_data if isinstance(val_data, Dataset) else PairDataset(val_data)
        if config.val_max_pairs and len(val_ds) > config.val_max_pairs:
            # Evenly spaced subset: deterministic and covering the whole split.
            idx = np.linspace(0, len(val_ds) - 1, config.val_max_pairs).round().astype(int).tolist()
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

    start_epoch, history = 0, []
    best_score, best_epoch = (-math.inf, -math.inf), 0
    last_path = workdir / LAST
    if last_path.is_file():
        ckpt = torch.load(last_path, map_location=device, weights_only=False)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        _set_rng_state(ckpt["rng"])
        start_epoch, history = int(ckpt["epoch"]), list(ckpt["history"])
        best_score, best_epoch = tuple(ckpt["best_score"]), int(ckpt["best_epoch"])
    resumed_from = start_epoch

    for epoch in range(start_epoch + 1, config.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        loader = _epoch_loader(train_ds, config, epoch, shuffle=True, pin=device.type == "cuda")
        total, count = 0.0, 0
        lr = optimizer.param_groups[0]["lr"]
        bar = _progress(loader, f"epoch {epoch}/{config.epochs}", config.progress)
        for moving, fixed in bar:
            moving, fixed = _to(moving, device, config), _to(fixed, device, config)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                loss, _ = loss_fn(model, moving, fixed)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite training loss at epoch {epoch}")
            scaler.scale(loss).backward()
            if config.grad_clip and config.grad_clip > 0:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            total += float(loss.detach()) * len(moving)
            count += len(moving)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{total / count:.4f}")
        scheduler.step()

        row: dict[str, float] = {"epoch": epoch, "train_loss": total / count, "lr": lr}
        if val_ds is not None:
            row.update(evaluate(model, loss_fn, val_ds, config, device, predict_fn))
            score = _score(row["val_ncc"], row["val_loss"])
        else:
            row.update(val_loss=float("nan"), val_ncc=float("nan"), val_ssim=float("nan"), val_psnr=float("nan"))
            score = _score(float("nan"), row["train_loss"])
        row["seconds"] = time.perf_counter() - t0
        history.append(row)

        if score > best_score:
            best_score, best_epoch = score, epoch
            atomic_save({"model": model.state_dict(), "epoch": epoch, "score": score, "config": asdict(config)},
                        workdir / BEST)
        atomic_save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "epoch": epoch,
                "best_score": best_score,
                "best_epoch": best_epoch,
                "history": history,
                "rng": _rng_state(),
                "config": asdict(config),
            },
            last_path,
        )
        _write_log(history, workdir / LOG)
        if callback is not None:
            callback(epoch, row)

    if not (workdir / BEST).is_file():  # epochs == 0: keep the contract that best.pt exists after training
        atomic_save({"model": model.state_dict(), "epoch": 0, "score": best_score, "config": asdict(config)},
                    workdir / BEST)
        _write_log(history, workdir / LOG)
    return TrainResult(history, best_epoch, best_score, workdir, resumed_from)


def _score(ncc: float, loss: float) -> tuple[float, float]:
    """Model-selection key, larger is better: mean NCC first, then lower loss.

    NCC is undefined (NaN) for a constant prediction, typical of the first epochs;
    such epochs rank below any defined NCC and among themselves by loss.
    """
    return (ncc if math.isfinite(ncc) else -2.0, -loss if math.isfinite(loss) else -math.inf)


def _progress(iterable: Any, desc: str, enabled: bool) -> Any:
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, leave=False, dynamic_ncols=True)

"""Base class of the suite's trainable torch methods (PCReg-Net, VoxelMorph, TransMorph, ...).

A subclass sets ``name``/``label``/``outputs_field`` and a ``PARAMS_SCHEMA`` built
with :func:`with_training_params`, and implements three methods:

- ``build_model(self) -> nn.Module`` (from ``self.params``);
- ``training_loss(self, model, moving, fixed, field=None) -> (loss, registered)``
  for a batch ``(B, 1, H, W)``; ``field`` is the batch's ground-truth field
  ``(B, 2, H, W)`` in the suite convention when the training split has one, else
  ``None`` (a method may ignore it, or use it as supervision);
- ``predict(self, model, moving, fixed) -> (registered (B,1,H,W), field (B,2,H,W) or None)``;
  a field must follow the suite convention (pixels, ``u[0]`` rows, ``u[1]`` cols,
  pull-back in fixed space: ``warped(p) = moving(p + u(p))``).

This base class does the rest: :meth:`fit` trains through the shared harness
:func:`pcreg.methods.training.train` (checkpoints, resume guarded by a fingerprint of
params and data, log, plateau stopping, model selection by a validation metric
that measures registration -- see :mod:`pcreg.methods.validation`) and keeps its
outcome in ``self.train_summary`` (``converged``, ``steps``, ``stop_reason``...),
:meth:`load` restores ``best.pt``, :meth:`register` runs ``predict`` on one pair
and returns ``Registration(field=...)`` or ``Registration(image=...)`` according
to ``outputs_field``. ``self.device`` may be ``"cpu"``, ``"cuda"`` or ``"auto"``;
``self.threads`` sets torch's intra-op threads; ``self.seed`` seeds the model
initialisation and the training.

This module itself imports no torch at import time (the workflow imports method
modules cheaply); torch is imported inside the methods.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from pcreg.methods.base import Method, Registration

#: JSON-schema properties of the shared training settings (defaults follow the paper where it states them).
TRAINING_PARAMS_SCHEMA: dict[str, dict[str, Any]] = {
    "epochs": {"type": "integer", "minimum": 0, "default": 100,
               "description": "Maximum training epochs, one validation each; also the length of the cosine "
                              "learning-rate schedule (paper: 100)."},
    "max_steps": {"type": "integer", "minimum": 0, "default": 0,
                  "description": "Maximum optimizer steps (0 = only the epochs limit). A run that reaches this "
                                 "or the epochs limit before the validation plateau is reported not converged."},
    "patience": {"type": "integer", "minimum": 0, "default": 5,
                 "description": "Stop after this many validations (epochs) without an improvement of the "
                                "selection metric by more than min_delta (0 = no plateau stopping: the run trains "
                                "its whole budget and is reported not converged)."},
    "min_delta": {"type": "number", "minimum": 0, "default": 0.001,
                  "description": "Minimum improvement that resets patience, in units of the selection metric "
                                 "(px for EPE/TRE, NCC units for NCC; see pcreg.methods.validation)."},
    "min_steps_fraction": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.5,
                           "description": "Plateau stopping only after this fraction of the step budget (max_steps, "
                                          "else epochs x batches per epoch)."},
    "learn_min_gain": {"type": "number", "minimum": 0, "default": 0.02,
                       "description": "A run whose best validation value beats the validation before training by "
                                      "less than this (absolute for NCC, relative for EPE/TRE/loss) is marked "
                                      "did_not_learn (and not converged)."},
    "selection": {"enum": ["auto", "loss"], "default": "auto",
                  "description": "Model selection and plateau metric: auto = EPE with ground-truth fields, else TRE, "
                                 "else the loss (field methods) or NCC (image methods); loss = the method's own "
                                 "validation loss, never the ground truth."},
    "batch_size": {"type": "integer", "minimum": 1, "default": 8, "description": "Pairs per batch (paper: 8)."},
    "lr": {"type": "number", "exclusiveMinimum": 0, "default": 1e-3, "description": "Adam learning rate."},
    "weight_decay": {"type": "number", "minimum": 0, "default": 1e-5,
                     "description": "Adam (L2) weight decay."},
    "min_lr": {"type": "number", "minimum": 0, "default": 0.0,
               "description": "Final learning rate of the cosine annealing schedule."},
    "grad_clip": {"type": "number", "minimum": 0, "default": 1.0,
                  "description": "Max global gradient norm (0 disables clipping; paper: 1.0)."},
    "amp": {"type": "boolean", "default": True,
            "description": "Mixed precision on CUDA (ignored on CPU)."},
    "amp_dtype": {"enum": ["auto", "float16", "bfloat16"], "default": "auto",
                  "description": "Autocast dtype on CUDA: auto = bfloat16 where supported, else float16 "
                                 "(with a GradScaler)."},
    "num_workers": {"type": "integer", "minimum": -1, "default": -1,
                    "description": "DataLoader worker processes; -1 = the job's threads on CUDA, 0 on CPU."},
    "val_max_pairs": {"type": "integer", "minimum": 0, "default": 0,
                      "description": "Validation pairs evaluated per epoch, evenly spaced (0 = all)."},
    "channels_last": {"type": "boolean", "default": False,
                      "description": "Train in channels_last (NHWC) memory format; recommended on CUDA."},
    "cpu_bf16": {"type": "boolean", "default": False,
                 "description": "bfloat16 autocast for training and inference on a CPU with native bf16 "
                                "(avx512_bf16/amx_bf16, detected); float32 elsewhere. (methods.cpu_precision)"},
    "progress": {"type": "boolean", "default": True, "description": "Show a tqdm progress bar per epoch."},
    "fresh_pairs": {"type": "boolean", "default": True,
                    "description": "Synthetic datasets: train each epoch on newly generated pairs from the training "
                                   "regions (seeded by seed and epoch) instead of the prepared train split again."},
    "augment_flips": {"type": "boolean", "default": False,
                      "description": "Random row/column flips of each training pair (images and field together)."},
    "augment_rot90": {"type": "boolean", "default": False,
                      "description": "Random quarter turns of each training pair (square images only)."},
    "augment_intensity": {"type": "number", "minimum": 0, "maximum": 0.5, "default": 0.0,
                          "description": "Independent gain/offset jitter of each training image by up to this much "
                                         "(0 = off)."},
    "inference_batch_size": {"type": "integer", "minimum": 0, "default": 0,
                             "description": "Test pairs per forward pass when registering; 0 = auto: 32 on CUDA, "
                                            "1 on CPU (no gain there, and per-pair results stay bit-identical)."},
}


def with_training_params(model_props: dict[str, Any], **default_overrides: Any) -> dict[str, Any]:
    """A method's ``PARAMS_SCHEMA``: its own properties merged with :data:`TRAINING_PARAMS_SCHEMA`.

    ``default_overrides`` change the default of training properties, e.g.
    ``with_training_params(props, lr=1e-4)``. Unknown override names raise.
    """
    props = copy.deepcopy(TRAINING_PARAMS_SCHEMA)
    clash = set(props) & set(model_props)
    if clash:
        raise ValueError(f"model params clash with training params: {sorted(clash)}")
    for key, value in default_overrides.items():
        if key not in props:
            raise KeyError(f"{key!r} is not a training parameter")
        props[key]["default"] = value
    props.update(copy.deepcopy(model_props))
    return {"type": "object", "properties": props, "additionalProperties": False}


class LearnedMethod(Method):
    """Trainable torch method; see the module docstring for what subclasses implement."""

    PARAMS_SCHEMA: ClassVar[dict[str, Any]] = with_training_params({})

    def __init__(self, params: dict[str, Any] | None = None, *, seed: int = 0, threads: int = 1,
                 device: str = "auto"):
        super().__init__(params, seed=seed, threads=threads, device=device)
        self.model = None  # built by fit() or load()
        self.train_summary: dict[str, Any] = {}  # set by fit()

    # -- to implement -------------------------------------------------------------------------
    def build_model(self):  # noqa: ANN201 - returns torch.nn.Module (torch not imported here)
        """The untrained ``nn.Module`` described by ``self.params``."""
        raise NotImplementedError

    def training_loss(self, model, moving, fixed, field=None):  # noqa: ANN001, ANN201
        """``(loss, registered)`` for a batch ``(B, 1, H, W)`` (model in train or eval mode).

        ``field``: the batch's ground-truth field ``(B, 2, H, W)`` (suite convention) or None.
        """
        raise NotImplementedError

    def predict(self, model, moving, fixed):  # noqa: ANN001, ANN201
        """``(registered (B,1,H,W), field (B,2,H,W) in the suite convention or None)``."""
        raise NotImplementedError

    def prepare_inference(self, model):  # noqa: ANN001, ANN201
        """Hook run by :meth:`load` on the eval-mode model before inference (default: unchanged).

        Subclasses may return a faster equivalent (e.g. BatchNorm folded, channels_last).
        """
        return model

    # -- provided -----------------------------------------------------------------------------
    def torch_device(self):  # noqa: ANN201
        """The ``torch.device`` that ``self.device`` names (``"auto"``: CUDA when available)."""
        from pcreg.methods.training import resolve_device

        return resolve_device(self.device)

    def train_config(self):  # noqa: ANN201
        """The :class:`pcreg.methods.training.TrainConfig` built from ``self.params``, seed, threads and device."""
        from pcreg.methods.training import TrainConfig

        names = set(TrainConfig.__dataclass_fields__) - {"seed", "device", "threads"}
        kwargs = {k: v for k, v in self.params.items() if k in names}
        return TrainConfig(**kwargs, seed=self.seed, device=self.device, threads=self.threads)

    def new_model(self):  # noqa: ANN201
        """Build the model with torch seeded from ``self.seed`` (reproducible initial weights)."""
        import torch

        torch.manual_seed(self.seed)
        return self.build_model()

    def fit(self, train, val, workdir: Path) -> None:  # noqa: ANN001 - PairSplit
        """Train on ``train`` validating on ``val`` (may be None); resumes from ``workdir/last.pt``.

        Afterwards the method holds the best-validation weights (``best.pt``) and
        ``self.train_summary`` says how training went (for ``model.json``).
        A checkpoint from other params, data or training code is not resumed (:mod:`pcreg.methods.fingerprint`).
        """
        import torch

        from pcreg.methods.fingerprint import method_code, training_fingerprint
        from pcreg.methods.training import train as run_training

        torch.set_num_threads(max(self.threads, 1))
        model = self.new_model()
        config = self.train_config()
        supervised = self.gt_field_supervised(train)
        if "supervision" in self.params and not supervised:
            # Unsupervised (or no field to supervise with): select and stop on the method's own validation loss,
            # never on the ground truth the published method does not see.
            config.selection = "loss"
        result = run_training(
            model, self.training_loss, self.training_data(train), val, Path(workdir), config,
            predict_fn=self.predict, fingerprint=training_fingerprint(self.params, self.seed, train, val,
                                                                      method_code(type(self))),
        )
        self.train_summary = {**result.summary(), "gt_field_supervision": supervised}
        self.load(result.workdir)

    def gt_field_supervised(self, train) -> bool:  # noqa: ANN001 - PairSplit
        """Whether training batches carry ground-truth fields that the loss uses (a ``supervision`` weight > 0 on a
        split that stores fields): recorded in model.json, and the only case a label may say "GT-field sup."."""
        weight = float(self.params.get("supervision", 0.0) or 0.0)
        return weight > 0 and getattr(train, "field", None) is not None

    def training_data(self, train):  # noqa: ANN001, ANN201
        """What to train on for split ``train``: fresh synthetic pairs per epoch and/or augmentation, as the
        params ask (:func:`pcreg.methods.training_data.training_dataset`), else the split itself."""
        from pcreg.methods.training_data import training_dataset

        return training_dataset(train, self.params, self.seed)

    def load(self, workdir: Path) -> None:
        """Load ``workdir/best.pt`` into a freshly built model, in eval mode on ``self.device``.

        An unreadable checkpoint (truncated, garbage, or not plain data) is one
        :class:`~pcreg.errors.UserError` naming the file; the checkpoints and
        ``model.json`` are moved to ``workdir/stale/<timestamp>/`` so that the next
        run of the workflow retrains instead of repeating the failure.
        """
        from pcreg.errors import UserError
        from pcreg.methods.training import BEST, LAST, LOG, CheckpointError, load_weights, move_aside

        path = Path(workdir) / BEST
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: train {self.name} first")
        model = self.new_model()
        try:
            load_weights(model, path)
        except CheckpointError as exc:
            stale = move_aside(Path(workdir), (BEST, LAST, LOG, "model.json"))
            raise UserError(f"{exc}; it was moved to {stale} with model.json: run the workflow again to retrain "
                            f"{self.name}") from None
        self.model = self.prepare_inference(model.to(self.torch_device()).eval())

    @property
    def inference_batch_size(self) -> int:
        """Pairs per forward pass in the workflow's register step (see the ``inference_batch_size`` param)."""
        n = int(self.params.get("inference_batch_size", 0))
        if n > 0:
            return n
        return 32 if self.torch_device().type == "cuda" else 1

    def register_batch(self, moving: np.ndarray, fixed: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Run ``predict`` on ``(N, H, W)`` stacks; returns ``(images (N,H,W), fields (N,2,H,W) or None)``."""
        import torch

        if self.model is None:
            raise RuntimeError(f"{self.name}: call fit() or load() before register()")
        torch.set_num_threads(max(self.threads, 1))
        device = self.torch_device()
        m = torch.from_numpy(np.array(moving, np.float32))[:, None].to(device)  # a copy: inputs may be read-only
        f = torch.from_numpy(np.array(fixed, np.float32))[:, None].to(device)
        from pcreg.methods.cpu_precision import cpu_autocast, use_cpu_bf16

        bf16 = device.type == "cpu" and use_cpu_bf16(bool(self.params.get("cpu_bf16", False)))
        with torch.inference_mode(), cpu_autocast(bf16):
            image, fld = self.predict(self.model, m, f)
        image = image.float().cpu().numpy()[:, 0]
        return image, (None if fld is None else fld.float().cpu().numpy())

    def register(self, moving: np.ndarray, fixed: np.ndarray) -> Registration:
        """Register one pair ``(H, W)``: a field for field methods, an image otherwise."""
        image, fld = self.register_batch(np.asarray(moving)[None], np.asarray(fixed)[None])
        if self.outputs_field:
            if fld is None:
                raise RuntimeError(f"{self.name}: outputs_field is True but predict() returned no field")
            return Registration(field=fld[0].astype(np.float32))
        return Registration(image=image[0].astype(np.float32))

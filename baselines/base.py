"""The method interface every registration method implements.

A method is a class in its own module ``baselines/<name>.py`` deriving from
:class:`Method`, with a unique ``name`` (the name used in the config), a JSON
schema for its parameters (``PARAMS_SCHEMA``, with documented defaults), an
optional :meth:`Method.fit` on the training split, and :meth:`Method.register`.

``register`` returns a :class:`Registration`: either a displacement field in the
suite's convention (docs/CONVENTIONS.md) or, for methods that synthesise an
image (PCReg-Net), an image and no field. The registered image of a field
method is always produced by :func:`run_method` with the shared warping
routine, so the image and the field cannot disagree.

Heavy libraries (torch, SimpleITK, ANTs) are imported inside methods, not at
module import, so that the workflow can inspect methods cheaply.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from pcreg.warp import check_field, warp_image


@dataclass
class Registration:
    """What a method returns for one pair.

    Exactly one of ``field`` (``(2, H, W)`` pull-back field) and ``image`` is set,
    unless ``failed`` is true, in which case both may be ``None``.
    """

    field: np.ndarray | None = None
    image: np.ndarray | None = None
    failed: bool = False
    reason: str = ""


@dataclass
class PairResult:
    """A pair after :func:`run_method`: the registered image, the field (or None), timing, failure."""

    image: np.ndarray
    field: np.ndarray | None
    runtime_s: float
    failed: bool
    reason: str


class Method:
    """Base class of registration methods. Subclasses set ``name`` and implement ``register``."""

    name: ClassVar[str] = ""
    #: Display name used in tables (defaults to ``name``).
    label: ClassVar[str] = ""
    #: True if the method outputs a displacement field (geometry metrics apply).
    outputs_field: ClassVar[bool] = True
    #: JSON schema of the ``params`` mapping in the config; defaults are filled from it.
    PARAMS_SCHEMA: ClassVar[dict[str, Any]] = {"type": "object", "properties": {}, "additionalProperties": False}

    def __init__(self, params: dict[str, Any] | None = None, *, seed: int = 0, threads: int = 1, device: str = "cpu"):
        self.params = dict(params or {})
        self.seed = int(seed)
        self.threads = int(threads)
        self.device = device

    @classmethod
    def is_trainable(cls) -> bool:
        """True if the method overrides :meth:`fit` (it then has a training step in the workflow)."""
        return cls.fit is not Method.fit

    def fit(self, train, val, workdir: Path) -> None:  # noqa: ANN001 - PairSplit, avoided import cycle
        """Train on ``train`` (validating on ``val``), writing checkpoints under ``workdir``."""
        raise NotImplementedError(f"{self.name} has no training step")

    def load(self, workdir: Path) -> None:
        """Load what :meth:`fit` wrote to ``workdir`` (trainable methods only)."""

    def register(self, moving: np.ndarray, fixed: np.ndarray) -> Registration:
        """Register ``moving`` to ``fixed`` (both ``(H, W)`` float32 in [0, 1])."""
        raise NotImplementedError


def run_method(method: Method, moving: np.ndarray, fixed: np.ndarray) -> PairResult:
    """Run ``method`` on one pair; never raises for a method failure.

    Exceptions and failed registrations fall back to the identity (the moving
    image, a zero field) and are reported with a reason.
    """
    moving = np.asarray(moving, dtype=np.float32)
    fixed = np.asarray(fixed, dtype=np.float32)
    zero = np.zeros((2, *moving.shape), np.float32) if method.outputs_field else None
    start = time.perf_counter()
    try:
        result = method.register(moving, fixed)
        runtime = time.perf_counter() - start
    except Exception as exc:  # a bad pair must never stop the run
        return PairResult(moving.copy(), zero, time.perf_counter() - start, True, f"{type(exc).__name__}: {exc}")
    if result.failed:
        if result.field is not None and method.outputs_field:
            field = check_field(result.field, moving.shape)
            return PairResult(warp_image(moving, field), field, runtime, True, result.reason or "failed")
        return PairResult(moving.copy(), zero, runtime, True, result.reason or "failed")
    try:
        if method.outputs_field:
            if result.field is None or result.image is not None:
                raise ValueError(f"{method.name} must return a field and no image")
            field = check_field(result.field, moving.shape)
            return PairResult(warp_image(moving, field), field, runtime, False, "")
        if result.image is None or result.field is not None:
            raise ValueError(f"{method.name} must return an image and no field")
        image = np.asarray(result.image, dtype=np.float32)
        if image.shape != moving.shape or not np.all(np.isfinite(image)):
            raise ValueError(f"{method.name} returned an image of shape {image.shape} or with non-finite values")
        return PairResult(image, None, runtime, False, "")
    except ValueError as exc:
        return PairResult(moving.copy(), zero, runtime, True, str(exc))

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

A method that needs to know which pair it registers (e.g. ``precomputed``,
which reads outputs made elsewhere) sets ``wants_pair_ids = True``; its
``register`` is then called with the keyword ``pair_id``. The perfect-registration
reference (``ground_truth``) also sets ``needs_ground_truth = True``: it is given
the split's ground-truth fields before it registers.

Heavy libraries (torch, SimpleITK, ANTs) are imported inside methods, not at
module import, so that the workflow can inspect methods cheaply; import them in
the optional :meth:`Method.setup` hook, which runs once per worker before the
first pair and is not counted in any pair's runtime.

In the workflow a method runs in a worker process (:mod:`pcreg.methods.isolation`):
a pair that takes longer than the config's ``pair_timeout_s`` is a failed pair
("timed out after N s"), a pair on which the method crashes the process (a
segfault) is a failed pair ("the method crashed (signal N)"), and the run goes
on with a fresh worker. Image outputs are checked like inputs
(:func:`check_output_image`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from pcreg.errors import UserError
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
    #: Runtime reported by the method itself (outputs made elsewhere); None: measured here. NaN: unknown.
    runtime_s: float | None = None


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
    #: True if ``register`` takes the keyword ``pair_id`` (the pair's id in the dataset manifest).
    wants_pair_ids: ClassVar[bool] = False
    #: True for references that read the dataset's ground-truth field (``ground_truth``): the shard runner calls
    #: ``bind_ground_truth(split)`` before registering, and the workflow runs them only on datasets with fields.
    needs_ground_truth: ClassVar[bool] = False

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

    def setup(self) -> None:
        """Optional hook, called once per worker process before the first pair, outside any timing.

        Import heavy libraries, load lookup tables or warm up a JIT here: the
        runtime of a pair measures :meth:`register` only, so a library loaded on
        the first pair would otherwise be charged to that pair. Called after
        :meth:`load` for trainable methods. The default does nothing.
        """

    def register(self, moving: np.ndarray, fixed: np.ndarray) -> Registration:
        """Register ``moving`` to ``fixed`` (both ``(H, W)`` float32 in [0, 1]).

        An image output (``outputs_field = False``) must be a float array of the
        pair's shape with values in [0, 1]: anything else is a failed pair with
        the reason (see :func:`check_output_image`).
        """
        raise NotImplementedError


def run_method(method: Method, moving: np.ndarray, fixed: np.ndarray, pair_id: str | None = None) -> PairResult:
    """Run ``method`` on one pair; never raises for a method failure.

    Exceptions and failed registrations fall back to the identity (the moving
    image, a zero field) and are reported with a reason. A :class:`UserError`
    (bad input the user must fix, e.g. a malformed precomputed file) is raised.
    ``pair_id`` is passed on to methods that want it (``wants_pair_ids``).
    """
    moving = np.asarray(moving, dtype=np.float32)
    fixed = np.asarray(fixed, dtype=np.float32)
    start = time.perf_counter()
    try:
        if method.wants_pair_ids:
            result = method.register(moving, fixed, pair_id=pair_id)
        else:
            result = method.register(moving, fixed)
    except UserError:
        raise
    except Exception as exc:  # a bad pair must never stop the run
        return _fallback(method, moving, time.perf_counter() - start, f"{type(exc).__name__}: {exc}")
    return _finish(method, moving, result, time.perf_counter() - start)


def run_method_batch(method: Method, moving: np.ndarray, fixed: np.ndarray,
                     pair_ids: list[str] | None = None) -> list[PairResult]:
    """Run ``method`` on stacks ``(N, H, W)`` of pairs, in one call where the method can batch.

    Methods with ``register_batch(moving, fixed) -> (images, fields or None)``
    (the learned methods, worthwhile on a GPU) are called once for the stack and
    each pair is charged the batch time divided by ``N``; if the batched call
    raises, the pairs are run one by one so that a bad pair cannot fail the
    others. Every pair goes through the same checks and warping as
    :func:`run_method`. ``pair_ids`` (one per pair) go to methods that want them.
    """
    moving = np.asarray(moving, dtype=np.float32)
    fixed = np.asarray(fixed, dtype=np.float32)
    batch = getattr(method, "register_batch", None)
    if batch is None or len(moving) < 2 or method.wants_pair_ids:
        ids = list(pair_ids) if pair_ids is not None else [None] * len(moving)
        return [run_method(method, m, f, pid) for m, f, pid in zip(moving, fixed, ids)]
    start = time.perf_counter()
    try:
        images, fields = batch(moving, fixed)
    except Exception:
        return [run_method(method, m, f) for m, f in zip(moving, fixed)]
    per_pair = (time.perf_counter() - start) / len(moving)
    if method.outputs_field:
        if fields is None:
            return [_fallback(method, m, per_pair, f"{method.name} returned no fields") for m in moving]
        return [_finish(method, m, Registration(field=u), per_pair) for m, u in zip(moving, fields)]
    return [_finish(method, m, Registration(image=img), per_pair) for m, img in zip(moving, images)]


def _fallback(method: Method, moving: np.ndarray, runtime: float, reason: str) -> PairResult:
    """The identity result (moving image, zero field) marked failed with ``reason``."""
    zero = np.zeros((2, *moving.shape), np.float32) if method.outputs_field else None
    return PairResult(moving.copy(), zero, runtime, True, reason)


def _finish(method: Method, moving: np.ndarray, result: Registration, runtime: float) -> PairResult:
    """Check a method's :class:`Registration` and turn it into a :class:`PairResult` (warping fields here)."""
    if result.runtime_s is not None:
        runtime = float(result.runtime_s)
    if result.failed:
        if result.field is not None and method.outputs_field:
            field = check_field(result.field, moving.shape)
            return PairResult(warp_image(moving, field), field, runtime, True, result.reason or "failed")
        return _fallback(method, moving, runtime, result.reason or "failed")
    try:
        if method.outputs_field:
            if result.field is None or result.image is not None:
                raise ValueError(f"{method.name} must return a field and no image")
            field = check_field(result.field, moving.shape)
            image = warp_image(moving, field)
            _check_not_degenerate(method, image, moving)
            return PairResult(image, field, runtime, False, "")
        if result.image is None or result.field is not None:
            raise ValueError(f"{method.name} must return an image and no field")
        image = check_output_image(method, result.image, moving.shape)
        _check_not_degenerate(method, image, moving)
        return PairResult(image, None, runtime, False, "")
    except ValueError as exc:
        return _fallback(method, moving, runtime, str(exc))


#: How far outside [0, 1] an image output may reach (float rounding of a clamped or resampled output).
OUTPUT_RANGE_TOLERANCE = 1e-3


def check_output_image(method: Method, image: object, shape: tuple[int, ...]) -> np.ndarray:
    """An image output checked like an input: float dtype, ``shape``, finite, within [0, 1]; as float32.

    Raises ``ValueError`` with the reason otherwise (the pair is then a failed pair): an image in
    [0, 255], of an integer dtype or in [-1, 1] is not silently scored as a registration.
    """
    arr = np.asarray(image)
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{method.name} returned an image of dtype {arr.dtype}; a float image in [0, 1] is expected")
    if arr.shape != tuple(shape):
        raise ValueError(f"{method.name} returned an image of shape {arr.shape}, expected {tuple(shape)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{method.name} returned an image with non-finite values (NaN or inf)")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -OUTPUT_RANGE_TOLERANCE or hi > 1 + OUTPUT_RANGE_TOLERANCE:
        raise ValueError(f"{method.name} returned an image with values in [{lo:.4g}, {hi:.4g}], outside [0, 1]")
    return arr.astype(np.float32, copy=False)


#: A registered image whose intensity range is below this is constant (an undertrained network's output).
DEGENERATE_RANGE = 1e-6


def _check_not_degenerate(method: Method, image: np.ndarray, moving: np.ndarray) -> None:
    """Raise ``ValueError`` for a constant output from a non-constant moving image.

    Such an output carries no registration (NCC is undefined on it), so it is a
    failure with a reason, not a pair silently dropped from the NCC mean. A
    constant moving image (the audit's blank input) legitimately gives one.
    """
    if np.ptp(image) < DEGENERATE_RANGE and np.ptp(moving) >= DEGENERATE_RANGE:
        raise ValueError(f"degenerate output: {method.name} returned a constant image "
                         f"(value {float(image.flat[0]):.4g})")

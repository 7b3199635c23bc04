"""The plug-in contract of a registration method, as checks that say what is wrong in one line each.

One definition, two users: ``python -m pcreg check-method NAME`` (any method: a built-in name, an entry
point or ``"pkg.mod:Class"``) and ``tests/test_plugin_contracts.py`` (every registered method). Each check
returns a list of problems (empty: the method honours that part of the contract):

- :func:`check_params`: the ``PARAMS_SCHEMA`` defaults validate (or a required param is one clear error);
- :func:`check_known_shift`: on a pair related by a known shift the field has the suite's convention
  (pull-back, rows first; docs/CONVENTIONS.md) and the registered image is closer to the fixed one;
- :func:`check_output`: kind (field xor image), shape, dtype and value range of what ``register`` returns
  (an image method's image is float in [0, 1]; a field is finite, ``(2, H, W)``);
- :func:`check_constant_inputs`: a constant moving image (the audit's blank), a zero image and a constant
  fixed image never raise and never give non-finite output; a failure carries a reason;
- :func:`check_determinism`: a fresh instance with the same seed gives the same output, bit for bit;
- :func:`check_timing`: the first pair is not much slower than the next ones (library loading inside
  ``register`` is timed as the first pair of every shard: load in ``__init__`` or ``setup()``).

A method that kills the process (a segfault in a C library) cannot report itself: the command runs the
checks in a child process and names the check that was running when it died.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import ndimage

from pcreg.errors import UserError
from pcreg.methods.base import Method, Registration, run_method
from pcreg.methods.registry import get_method_class
from pcreg.schema import validate_params
from pcreg.warp import shift_field, warp_image

SHAPE = (64, 64)
#: The pull-back field that registers the test pair: moving content sits at +3 px in x, -2 px in y.
DY, DX = -2.0, 3.0
#: Interior compared on the known shift (the border has no content to match after the shift).
INNER = (slice(16, -16), slice(16, -16))
#: Tolerance of the [0, 1] range of an output image (float rounding of interpolation).
RANGE_TOL = 1e-4
#: The first pair may take this many times the median of the next ones (and at least SLOW_FIRST_S) before
#: the timing check calls it a problem.
SLOW_FIRST_FACTOR = 5.0
SLOW_FIRST_S = 1.0

#: A function that makes a fresh method instance (same seed every time).
Factory = Callable[[], Method]


def texture(seed: int = 0, shape: tuple[int, int] = SHAPE) -> np.ndarray:
    """A smooth random texture in [0, 1] (float32), the fixed image of the known-shift pair."""
    rng = np.random.default_rng(seed)
    img = ndimage.gaussian_filter(rng.random((shape[0] + 16, shape[1] + 16)), 2.0)[8:-8, 8:-8]
    return ((img - img.min()) / (img.max() - img.min())).astype(np.float32)


def shifted_pair(shape: tuple[int, int] = SHAPE) -> tuple[np.ndarray, np.ndarray]:
    """(moving, fixed) with ``warp(moving, u) = fixed`` for the constant field u = (DY, DX)."""
    fixed = texture(shape=shape)
    moving = warp_image(fixed, -shift_field(shape, dx=DX, dy=DY)).astype(np.float32)
    return moving, fixed


def method_factory(name: str, params: dict[str, Any] | None = None, device: str = "cpu") -> Factory:
    """Fresh, seeded instances of method ``name``; trainable ones get freshly initialised weights (no fit),
    and ``setup()`` (optional hook: warm-up before timing) is called when the method has one."""
    cls = get_method_class(name)
    validated = validate_params(cls, params or {}, f"method {name!r}")

    def make() -> Method:
        method = cls(dict(validated), seed=0, threads=1, device=device)
        if method.is_trainable():
            method.model = method.prepare_inference(method.new_model().to(method.torch_device()).eval())
        setup = getattr(method, "setup", None)
        if callable(setup):
            setup()
        return method

    return make


def check_params(cls: type[Method]) -> list[str]:
    """The class is a Method with a name, and its schema's defaults alone are valid (or a required param
    left out is one clear error)."""
    problems = []
    if not cls.name:
        problems.append("params: the class sets no `name` (the id used in the config)")
    try:
        validate_params(cls, {}, f"methods.{cls.name}.params")
    except UserError as exc:
        if not cls.PARAMS_SCHEMA.get("required"):
            problems.append(f"params: the PARAMS_SCHEMA defaults are not valid: {exc}")
    return problems


def _raw(method: Method, moving: np.ndarray, fixed: np.ndarray) -> Registration | str:
    """What ``register`` returns, or the exception it raised as text."""
    try:
        return method.register(moving, fixed)
    except Exception as exc:  # reported as a problem, never raised
        return f"{type(exc).__name__}: {exc}"


def check_output(cls: type[Method], make: Factory) -> list[str]:
    """Kind, shape, dtype and range of what ``register`` returns on the known-shift pair."""
    moving, fixed = shifted_pair()
    raw = _raw(make(), moving, fixed)
    if isinstance(raw, str):
        return [f"output: register raised on an ordinary pair: {raw}"]
    if not isinstance(raw, Registration):
        return [f"output: register returned {type(raw).__name__}, not a Registration"]
    if raw.failed:
        return [f"output: failed on an ordinary pair (a smooth texture shifted by 3 px): {raw.reason or 'no reason'}"]
    problems = []
    if cls.outputs_field:
        if raw.field is None or raw.image is not None:
            return ["output: outputs_field is True, so register must return a field and no image"]
        field = np.asarray(raw.field)
        if field.shape != (2, *SHAPE):
            problems.append(f"output: field of shape {field.shape}, expected (2, H, W) = {(2, *SHAPE)}")
        elif not np.issubdtype(field.dtype, np.floating):
            problems.append(f"output: field of dtype {field.dtype}, expected float")
        elif not np.isfinite(field).all():
            problems.append("output: the field has non-finite values")
        return problems
    if raw.image is None or raw.field is not None:
        return ["output: outputs_field is False, so register must return an image and no field"]
    image = np.asarray(raw.image)
    if image.shape != SHAPE:
        return [f"output: image of shape {image.shape}, expected {SHAPE} (the fixed image's)"]
    if not np.issubdtype(image.dtype, np.floating):
        problems.append(f"output: image of dtype {image.dtype}, expected float in [0, 1]")
    if not np.isfinite(image).all():
        problems.append("output: the image has non-finite values")
    else:
        lo, hi = float(image.min()), float(image.max())
        if lo < -RANGE_TOL or hi > 1 + RANGE_TOL:
            problems.append(f"output: image values in [{lo:.3g}, {hi:.3g}], outside [0, 1] (clip the output, or "
                            "rescale: the metrics compare it with the fixed image in [0, 1])")
    return problems


def check_known_shift(cls: type[Method], make: Factory) -> list[str]:
    """On a pair related by the shift (DY, DX) the field's median is that shift (rows first, pull-back)."""
    if not cls.outputs_field or cls.is_trainable() or cls.name == "identity":
        return []  # no field / an untrained network / the identity by definition: nothing to check
    moving, fixed = shifted_pair()
    result = run_method(make(), moving, fixed)
    if result.failed:
        return [f"known shift: failed: {result.reason}"]
    u = float(np.median(result.field[0][INNER])), float(np.median(result.field[1][INNER]))
    problems = []
    if abs(u[0] - DY) >= 1.0 or abs(u[1] - DX) >= 1.0:
        hint = ""
        if abs(u[0] - DX) < 1.0 and abs(u[1] - DY) < 1.0:
            hint = ": components swapped (the suite's field is (rows, cols); SimpleITK/elastix give (x, y))"
        elif abs(u[0] + DY) < 1.0 and abs(u[1] + DX) < 1.0:
            hint = ": sign flipped (the suite's field pulls back: warped(p) = moving(p + u(p)))"
        problems.append(f"known shift: field median (rows, cols) = ({u[0]:.2f}, {u[1]:.2f}), expected "
                        f"({DY:g}, {DX:g}){hint}")
    before = float(np.abs(moving - fixed)[INNER].mean())
    after = float(np.abs(result.image - fixed)[INNER].mean())
    if after >= 0.5 * before:
        problems.append(f"known shift: the registered image is not closer to the fixed one (mean |error| "
                        f"{before:.3f} before, {after:.3f} after)")
    return problems


def check_constant_inputs(cls: type[Method], make: Factory) -> list[str]:
    """Constant and blank images never raise, give finite output of the right shape, and a failure says why."""
    moving, fixed = shifted_pair()
    cases = {
        "a constant moving image (0.5)": (np.full(SHAPE, 0.5, np.float32), fixed),
        "a blank moving image (zeros)": (np.zeros(SHAPE, np.float32), fixed),
        "a constant fixed image (0.5)": (moving, np.full(SHAPE, 0.5, np.float32)),
    }
    problems = []
    for what, (m, f) in cases.items():
        raw = _raw(make(), m, f)
        if isinstance(raw, str):
            problems.append(f"constant input: raised on {what} ({raw}); return Registration(failed=True, "
                            "reason=...) instead")
            continue
        result = run_method(make(), m, f)
        if result.image.shape != SHAPE or not np.isfinite(result.image).all():
            problems.append(f"constant input: non-finite or misshaped output on {what}")
        if result.failed and not result.reason:
            problems.append(f"constant input: failed on {what} without a reason")
    return problems


def check_determinism(cls: type[Method], make: Factory) -> list[str]:
    """Two fresh instances with the same seed give the same image (and field), bit for bit."""
    moving, fixed = shifted_pair()
    a, b = run_method(make(), moving, fixed), run_method(make(), moving, fixed)
    if not np.array_equal(a.image, b.image) or (a.field is not None and not np.array_equal(a.field, b.field)):
        diff = float(np.abs(a.image - b.image).max())
        return [f"determinism: two runs with the same seed differ (max |image difference| {diff:.3g}); seed every "
                "random choice from self.seed and run single-threaded where threads change the result"]
    return []


def check_timing(cls: type[Method], make: Factory, repeats: int = 3) -> tuple[list[str], str]:
    """Per-pair times of one instance; a first pair much slower than the rest is a problem (loading or
    compiling inside ``register``). Returns the problems and a one-line summary of the times."""
    moving, fixed = shifted_pair()
    method = make()
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        run_method(method, moving, fixed)
        times.append(time.perf_counter() - start)
    rest = float(np.median(times[1:]))
    info = f"timing: first pair {times[0]:.3f} s, median of the next {repeats} {rest:.3f} s at {SHAPE[0]} px"
    if times[0] > max(SLOW_FIRST_FACTOR * rest, SLOW_FIRST_S):
        return [f"timing: the first pair took {times[0]:.2f} s, the next ones {rest:.2f} s: load libraries and "
                "warm up in __init__ or setup(), not in register (the first pair of every shard is timed)"], info
    return [], info


#: The checks, in the order they run (timing last: it is informational unless the first pair is slow).
CHECKS: dict[str, Callable[[type[Method], Factory], list[str]]] = {
    "output": check_output,
    "known shift": check_known_shift,
    "constant inputs": check_constant_inputs,
    "determinism": check_determinism,
}


def run_checks(name: str, params: dict[str, Any] | None = None, *,
               progress: Callable[[str], None] | None = None) -> tuple[list[str], list[str]]:
    """Every check on method ``name``: (problems, info lines). ``progress`` is told each check's name
    before it runs (the command uses it to name the check that crashed the process)."""
    cls = get_method_class(name)
    problems = check_params(cls)
    kind = "field" if cls.outputs_field else "image"
    trained = ", trainable (checked with untrained weights)" if cls.is_trainable() else ""
    info = [f"method {cls.name or name!r} ({cls.__module__}.{cls.__name__}): {kind} output{trained}"]
    if cls.wants_pair_ids:
        info.append("reads outputs made elsewhere by pair id: array checks do not apply (tests/test_external.py)")
        return problems, info
    if problems:
        return problems, info
    make = method_factory(name, params)
    for check, func in CHECKS.items():
        if progress:
            progress(check)
        problems += func(cls, make)
    if progress:
        progress("timing")
    timing_problems, timing_info = check_timing(cls, make)
    return problems + timing_problems, [*info, timing_info]

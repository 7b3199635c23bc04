"""The FIRE evaluation protocol (as in SuperRetina's ``test_on_FIRE.py`` / ``common/eval_util.py``).

Per pair, the error is the mean Euclidean distance between the mapped and the
true control points **at the original resolution** (FIRE images are 2912 px;
a dataset at reduced resolution multiplies its pixel errors by
``original_scale``, e.g. 2912 / 256 = 11.375). Then:

- a failed pair gets the error ``FAILED_ERROR = 1e6`` and never succeeds;
- a non-failed pair is *inaccurate* if its largest point error exceeds 50 px
  or its median point error exceeds 20 px, otherwise *acceptable*;
- the success rate at threshold ``t`` is the percentage of pairs with
  error ``< t`` (strict), for ``t = 1, ..., 25`` px;
- the AUC of a category is the sum of its 25 success percentages divided by
  2500 (= 25 thresholds × 100 %), so it lies in [0, 1];
- mAUC is the mean of the AUCs of categories S, P and A.

Mapping direction. SuperRetina maps the points of image ``_2`` (the suite's
moving image) into image ``_1`` (fixed) and measures there; the suite's TRE
maps the fixed points through the pull-back field into the moving image and
measures there. For a field ``u`` (``x -> x + u(x)`` from fixed to moving) the
first needs the inverse map, found per point by fixed-point iteration
(:func:`map_points_to_fixed`). Both are computed per pair; the geometry table
uses :data:`DEFAULT_DIRECTION` (SuperRetina's) unless told otherwise.

"Failed" in this suite is a pair whose method reported failure (``PairResult.failed``);
such a pair's fallback field (identity) is *not* scored, as SuperRetina scores
a pair without a homography as failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from pcreg.warp import map_points, sample_field

FAILED_ERROR = 1e6
THRESHOLDS: tuple[int, ...] = tuple(range(1, 26))
CATEGORIES: tuple[str, ...] = ("S", "P", "A")
INACCURATE_MAX_PX = 50.0
INACCURATE_MEDIAN_PX = 20.0
#: ``moving_to_fixed``: SuperRetina's test_on_FIRE.py (``_2`` points mapped into ``_1``);
#: ``fixed_to_moving``: the suite's TRE (fixed points mapped through the pull-back field).
DIRECTIONS: tuple[str, ...] = ("moving_to_fixed", "fixed_to_moving")
DEFAULT_DIRECTION = "moving_to_fixed"


def map_points_to_fixed(field: np.ndarray, moving_xy: np.ndarray, iterations: int = 100) -> np.ndarray:
    """Invert the pull-back map at points: ``q`` with ``q + u(q) = moving_xy``, by fixed-point iteration.

    ``q <- m - u(q)`` converges when the field's gradient is below 1 (no folding
    near the point); otherwise the last iterate is returned and the error measured
    at it reflects the non-invertible field.
    """
    m = np.asarray(moving_xy, np.float64).reshape(-1, 2)
    q = m - sample_field(field, m)
    for _ in range(iterations):
        nxt = m - sample_field(field, q)
        if np.max(np.abs(nxt - q), initial=0.0) < 1e-6:
            return nxt
        q = nxt
    return q


def directional_point_errors(
    field: np.ndarray, fixed_xy: np.ndarray, moving_xy: np.ndarray, direction: str
) -> np.ndarray:
    """Per-point errors (dataset pixels) in the image the points are mapped into (see :data:`DIRECTIONS`)."""
    if direction == "fixed_to_moving":
        return point_errors(field, fixed_xy, moving_xy)
    if direction == "moving_to_fixed":
        pred = map_points_to_fixed(field, moving_xy)
        return np.linalg.norm(pred - np.asarray(fixed_xy, np.float64).reshape(-1, 2), axis=1)
    raise ValueError(f"unknown FIRE mapping direction {direction!r}; expected one of {', '.join(DIRECTIONS)}")


def point_errors(field: np.ndarray, fixed_xy: np.ndarray, moving_xy: np.ndarray) -> np.ndarray:
    """Per-point distances (dataset pixels) between fixed points mapped through ``field`` and ``moving_xy``."""
    pred = map_points(field, fixed_xy)
    return np.linalg.norm(pred - np.asarray(moving_xy, np.float64).reshape(-1, 2), axis=1)


def to_original_resolution(
    errors_px: Iterable[float], original_scale: float, failed: Iterable[bool] | None = None
) -> np.ndarray:
    """Errors in original-resolution pixels (``errors_px * original_scale``); failed/NaN pairs get ``FAILED_ERROR``."""
    e = np.asarray(errors_px, dtype=np.float64) * float(original_scale)
    bad = np.isnan(e)
    if failed is not None:
        bad |= np.asarray(failed, dtype=bool)
    return np.where(bad, FAILED_ERROR, e)


def pair_status(point_errors_orig: np.ndarray, failed: bool = False) -> dict[str, float | str]:
    """FIRE summary of one pair from its per-point errors at the original resolution.

    Returns ``error`` (mean, or ``FAILED_ERROR``), ``median``, ``max`` and
    ``status``: ``failed``, ``inaccurate`` (max > 50 or median > 20) or ``acceptable``.
    """
    d = np.asarray(point_errors_orig, dtype=np.float64)
    if failed or d.size == 0 or not np.all(np.isfinite(d)):
        return {"error": FAILED_ERROR, "median": float("nan"), "max": float("nan"), "status": "failed"}
    med, mx = float(np.median(d)), float(d.max())
    status = "inaccurate" if (mx > INACCURATE_MAX_PX or med > INACCURATE_MEDIAN_PX) else "acceptable"
    return {"error": float(d.mean()), "median": med, "max": mx, "status": status}


def success_curve(errors: Iterable[float], thresholds: Sequence[float] = THRESHOLDS) -> np.ndarray:
    """Percentage of pairs with error strictly below each threshold (NaN counts as failed)."""
    e = np.asarray(errors, dtype=np.float64).ravel()
    if e.size == 0:
        return np.full(len(thresholds), np.nan)
    e = np.where(np.isnan(e), FAILED_ERROR, e)
    t = np.asarray(thresholds, dtype=np.float64)
    return 100.0 * (e[None, :] < t[:, None]).mean(axis=1)


def auc(errors: Iterable[float], thresholds: Sequence[float] = THRESHOLDS) -> float:
    """Area under the success curve: sum of success percentages / (100 × number of thresholds)."""
    curve = success_curve(errors, thresholds)
    return float(curve.sum() / (100.0 * len(thresholds)))


def category_auc(
    errors: Iterable[float], categories: Iterable[str], thresholds: Sequence[float] = THRESHOLDS
) -> pd.DataFrame:
    """AUC per FIRE category, pooled over all pairs (``all``), and ``mAUC`` (mean of S, P, A).

    Rows: ``category, n, auc``. ``mAUC`` is NaN unless S, P and A all have pairs
    (SuperRetina requires all three); categories other than S/P/A are reported
    but not part of mAUC.
    """
    e = np.asarray(errors, dtype=np.float64).ravel()
    cats = np.asarray(list(categories), dtype=object)
    if cats.shape != e.shape:
        raise ValueError(f"{e.size} errors but {cats.size} categories")
    names = [c for c in CATEGORIES if c in set(cats)] + sorted({str(c) for c in cats} - set(CATEGORIES))
    rows = [{"category": c, "n": int((cats == c).sum()), "auc": auc(e[cats == c], thresholds)} for c in names]
    rows.append({"category": "all", "n": int(e.size), "auc": auc(e, thresholds) if e.size else float("nan")})
    per = {r["category"]: r["auc"] for r in rows}
    m = float(np.mean([per[c] for c in CATEGORIES])) if all(c in per for c in CATEGORIES) else float("nan")
    rows.append({"category": "mAUC", "n": int(sum((cats == c).sum() for c in CATEGORIES)), "auc": m})
    return pd.DataFrame(rows, columns=["category", "n", "auc"])


def success_table(
    errors: Iterable[float], categories: Iterable[str], thresholds: Sequence[float] = THRESHOLDS
) -> pd.DataFrame:
    """Long table ``category, threshold, success_pct`` (per category and ``all``) for the success-curve figure."""
    e = np.asarray(errors, dtype=np.float64).ravel()
    cats = np.asarray(list(categories), dtype=object)
    groups = [(c, e[cats == c]) for c in CATEGORIES if c in set(cats)] + [("all", e)]
    rows = [
        {"category": c, "threshold": float(t), "success_pct": float(s)}
        for c, errs in groups
        for t, s in zip(thresholds, success_curve(errs, thresholds))
    ]
    return pd.DataFrame(rows, columns=["category", "threshold", "success_pct"])


def status_counts(statuses: Iterable[str]) -> dict[str, float]:
    """Percentages of ``failed``, ``inaccurate`` and ``acceptable`` pairs (SuperRetina's summary line)."""
    s = pd.Series(list(statuses), dtype=object)
    n = len(s)
    keys = ("failed", "inaccurate", "acceptable")
    return {k: (100.0 * float((s == k).sum()) / n if n else float("nan")) for k in keys}

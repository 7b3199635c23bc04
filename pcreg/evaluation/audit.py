"""Sanity audit: does a method register the moving image, or reproduce the fixed one?

NCC, SSIM and PSNR compare the output with the fixed image, so a method that
ignores the moving image and outputs (something like) the fixed image scores
perfectly. The audit runs each method three times per test pair:

- ``normal``: the real pair;
- ``blank``: the moving image replaced by a blank image (by default a constant
  at the moving image's mean intensity, which removes all structure but keeps
  the brightness, so a drop measures lost structure and not a brightness change;
  ``blank="zeros"`` uses an all-zero image);
- ``shuffled``: the moving image replaced by the moving image of another pair,
  ``donor = (i + k) mod N`` with one ``k`` in ``1..N-1`` drawn from the seed, so
  no pair gets its own moving image and every moving image is used once.

A ``fixed-copy`` oracle (output = fixed image) is audited like any method.

NCC of a constant output is undefined (``pcreg.metrics.ncc`` gives NaN); the
audit scores it 0, the correlation of an image with no structure.

Verdict (from :func:`audit_summary`), on mean NCC: ``chance`` is the NCC of the
fixed image with the donor moving image itself (what identity scores under
``shuffled``), ``margin = normal - chance`` and
``retained = (shuffled - chance) / margin``: the fraction of a method's
above-chance NCC that survives when it is given the wrong moving image. By
construction identity retains 0 and the fixed-copy oracle 1. A method retaining
at least ``RETAINED_COPY = 0.5`` (closer to the oracle than to identity) is
flagged ``copies fixed?``; with ``margin < MARGIN_MIN = 0.05`` the method does
not beat chance by enough for the ratio to mean anything (``inconclusive``).
Since a handful of pairs decides little, ``retained`` gets a percentile-bootstrap
CI (resampling the audited pairs' clusters, seeded), and the flag needs the
whole CI: ``copies fixed?`` when it lies at or above ``RETAINED_COPY``, ``uses
moving`` when below, else ``inconclusive``.

Geometric test (methods with a field, datasets with a ground-truth field or
landmarks): the intensity test cannot tell a method that copies the fixed image
from a deformable method that warps unrelated content into the fixed image's
shape. The field a method returns for the fixed image and *another pair's*
moving image is scored against the fixed pair's own ground truth (EPE, else
TRE): it must not improve on the identity field, while the field from the true
moving image should. ``geo_gain_<condition> = mean(error of identity - error of
the field)``. When the normal gain is positive and the shuffled gain is at most
``GEO_TOLERANCE`` of the identity error, the field follows the pair, not the
fixed image: the verdict is ``uses moving (geometry)`` whatever the intensities
retain.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from pcreg.metrics import ncc, psnr, ssim

Register = Callable[[np.ndarray, np.ndarray], np.ndarray]

CONDITIONS = ("normal", "blank", "shuffled")
METRICS = ("ncc", "ssim", "psnr")
ORACLE = "fixed-copy"
RETAINED_COPY = 0.5
MARGIN_MIN = 0.05
#: Shuffled geometric gain allowed, as a share of the identity error (sub-pixel noise of a field method).
GEO_TOLERANCE = 0.05
#: Geometric error of a field for audited pair ``i`` (EPE or TRE against that pair's ground truth).
Geometry = Callable[[int, np.ndarray], float]


def fixed_copy(moving: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """The oracle that ignores the moving image and outputs the fixed image."""
    return np.array(fixed, dtype=np.float32, copy=True)


def identity(moving: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """Outputs the moving image unchanged (the "Unregistered" row)."""
    return np.array(moving, dtype=np.float32, copy=True)


def derangement(n: int, seed: int, groups: Sequence[str] | None = None) -> np.ndarray:
    """Donor index of each pair: ``(i + k) mod n`` with ``k`` in ``1..n-1`` from ``seed`` (never ``i`` itself).

    With ``groups`` (e.g. the temporal sequence of each pair) that hold more than
    one value, a donor from the pair's own group is replaced by the next pair in
    the cyclic order from another group: frames of one sequence show nearly the
    same content, which would make "another pair's moving image" no test at all.
    """
    if n < 2:
        raise ValueError("the shuffled condition needs at least 2 pairs")
    k = 1 + int(np.random.default_rng(seed).integers(n - 1))
    donors = (np.arange(n) + k) % n
    if groups is not None and len(set(groups)) > 1:
        g = list(groups)
        for i in range(n):
            while g[donors[i]] == g[i]:
                donors[i] = (donors[i] + 1) % n
    return donors


def select_pairs(n_total: int, n: int | None, seed: int) -> np.ndarray:
    """Sorted indices of ``n`` pairs drawn without replacement from ``seed`` (all pairs if ``n`` is None or larger)."""
    if n is None or n >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(seed).choice(n_total, size=n, replace=False))


def blank_like(moving: np.ndarray, mode: str = "mean") -> np.ndarray:
    """A structureless stand-in for ``moving``: constant at its mean (``mean``) or all zeros (``zeros``)."""
    if mode == "mean":
        return np.full(moving.shape, float(np.mean(moving)), dtype=np.float32)
    if mode == "zeros":
        return np.zeros(moving.shape, dtype=np.float32)
    raise ValueError(f"unknown blank mode {mode!r}; expected 'mean' or 'zeros'")


def _ncc0(a: np.ndarray, b: np.ndarray) -> float:
    value = ncc(a, b)
    return 0.0 if np.isnan(value) else value


def score(output: np.ndarray, fixed: np.ndarray) -> dict[str, float]:
    """NCC (0 for a constant output), SSIM and PSNR of ``output`` against ``fixed``."""
    return {"ncc": _ncc0(output, fixed), "ssim": ssim(output, fixed), "psnr": psnr(output, fixed)}


def audit_pairs(
    register: Register,
    moving: np.ndarray,
    fixed: np.ndarray,
    seed: int,
    *,
    method: str = "",
    pair_ids: Sequence[str] | None = None,
    blank: str = "mean",
    groups: Sequence[str] | None = None,
    geometry: Geometry | None = None,
) -> pd.DataFrame:
    """Score ``register`` on every pair under the three conditions.

    ``register`` returns the output image, or ``(image, field)`` for a method with a
    field; with ``geometry`` the field's error against the audited pair's own ground
    truth is recorded (``geo_error``), next to the identity field's (``geo_identity``).

    ``moving`` and ``fixed`` are ``(N, H, W)`` (e.g. a test split's arrays, or
    a subset from :func:`select_pairs`). Returns one row per pair and condition:
    ``method, pair_id, index, condition, donor, input_ncc, ncc, ssim, psnr``,
    where ``input_ncc`` is the NCC of the image given as moving with the fixed
    image (for ``shuffled`` the chance level). ``groups`` (one per pair, e.g. the
    temporal sequence or the cluster) keeps donors out of a pair's own group
    (:func:`derangement`) and is recorded as ``cluster`` (the bootstrap's unit).
    """
    n = len(fixed)
    if len(moving) != n:
        raise ValueError(f"{len(moving)} moving but {n} fixed images")
    donors = derangement(n, seed, groups)
    ids = list(pair_ids) if pair_ids is not None else [str(i) for i in range(n)]
    rows = []
    for i in range(n):
        fix = np.asarray(fixed[i], dtype=np.float32)
        inputs = {
            "normal": (np.asarray(moving[i], dtype=np.float32), i),
            "blank": (blank_like(np.asarray(moving[i], dtype=np.float32), blank), -1),
            "shuffled": (np.asarray(moving[donors[i]], dtype=np.float32), int(donors[i])),
        }
        geo_identity = geometry(i, np.zeros((2, *fix.shape), np.float32)) if geometry else float("nan")
        for condition, (mov, donor) in inputs.items():
            result = register(mov, fix)
            field = None
            if isinstance(result, tuple):
                result, field = result
            out = np.asarray(result, dtype=np.float32)
            geo = geometry(i, field) if (geometry is not None and field is not None) else float("nan")
            rows.append({"method": method, "pair_id": ids[i], "index": i, "condition": condition, "donor": donor,
                         "cluster": str(groups[i]) if groups is not None else ids[i],
                         "input_ncc": _ncc0(mov, fix), **score(out, fix),
                         "geo_error": geo, "geo_identity": geo_identity if field is not None else float("nan")})
    return pd.DataFrame(rows)


def audit_methods(
    registers: Mapping[str, Register],
    moving: np.ndarray,
    fixed: np.ndarray,
    seed: int,
    *,
    pair_ids: Sequence[str] | None = None,
    blank: str = "mean",
    include_oracle: bool = True,
) -> pd.DataFrame:
    """:func:`audit_pairs` for several methods (same donors for all), plus the ``fixed-copy`` oracle first."""
    regs = dict(registers)
    if include_oracle:
        regs = {ORACLE: fixed_copy, **{k: v for k, v in regs.items() if k != ORACLE}}
    frames = [audit_pairs(r, moving, fixed, seed, method=name, pair_ids=pair_ids, blank=blank)
              for name, r in regs.items()]
    return pd.concat(frames, ignore_index=True)


def _paired_drop(normal: pd.Series, other: pd.Series) -> pd.Series:
    """``normal - other`` per pair, 0 where the two are equal (so inf - inf for PSNR gives 0, not NaN)."""
    diff = normal - other
    return diff.where(normal != other, 0.0)


def _retained(normal: np.ndarray, shuffled: np.ndarray, chance: np.ndarray) -> float:
    margin = normal.mean() - chance.mean()
    return float((shuffled.mean() - chance.mean()) / margin) if margin > 0 else float("nan")


def retained_ci(wide: pd.DataFrame, clusters: pd.Series, n_boot: int, seed: int, alpha: float = 0.05
                ) -> tuple[float, float]:
    """Percentile-bootstrap CI of ``retained``, resampling whole clusters of audited pairs (seeded)."""
    normal = wide[("ncc", "normal")].to_numpy(np.float64)
    shuffled = wide[("ncc", "shuffled")].to_numpy(np.float64)
    chance = wide[("input_ncc", "shuffled")].to_numpy(np.float64)
    _, code = np.unique(clusters.astype(str).to_numpy(), return_inverse=True)
    k = int(code.max()) + 1
    members = [np.flatnonzero(code == j) for j in range(k)]
    rng = np.random.default_rng(seed)
    values = np.empty(n_boot)
    for b in range(n_boot):
        idx = np.concatenate([members[j] for j in rng.integers(0, k, size=k)])
        values[b] = _retained(normal[idx], shuffled[idx], chance[idx])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(values, (alpha / 2, 1 - alpha / 2))
    return float(low), float(high)


def audit_summary(df: pd.DataFrame, n_boot: int = 2000, seed: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """Per method: mean score under each condition, mean paired drops, ``chance``, ``retained`` with its CI,
    the geometric test and ``verdict``.

    Columns: ``method, n_pairs, n_units``, then for each metric ``<m>_normal, <m>_blank,
    <m>_shuffled, <m>_drop_blank, <m>_drop_shuffled``, then ``chance_ncc,
    retained_shuffled, retained_ci_low, retained_ci_high, geo_identity, geo_normal,
    geo_shuffled, geo_gain_normal, geo_gain_shuffled, geo_check, intensity_verdict,
    verdict``. Drops are means over pairs of ``normal - condition``.
    """
    if "cluster" not in df:
        df = df.assign(cluster=df["pair_id"].astype(str))
    for col in ("geo_error", "geo_identity"):
        if col not in df:
            df = df.assign(**{col: np.nan})
    rows = []
    for method, grp in df.groupby("method", sort=False):
        wide = grp.pivot(index="pair_id", columns="condition",
                         values=[*METRICS, "input_ncc", "geo_error", "geo_identity"])
        clusters = grp[grp["condition"] == "normal"].set_index("pair_id")["cluster"].reindex(wide.index)
        row: dict[str, object] = {"method": method, "n_pairs": int(len(wide)), "n_units": int(clusters.nunique())}
        for m in METRICS:
            for c in CONDITIONS:
                row[f"{m}_{c}"] = float(wide[(m, c)].mean())
            row[f"{m}_drop_blank"] = float(_paired_drop(wide[(m, "normal")], wide[(m, "blank")]).mean())
            row[f"{m}_drop_shuffled"] = float(_paired_drop(wide[(m, "normal")], wide[(m, "shuffled")]).mean())
        chance = float(wide[("input_ncc", "shuffled")].mean())
        margin = row["ncc_normal"] - chance
        retained = (row["ncc_shuffled"] - chance) / margin if margin > 0 else float("nan")
        low, high = retained_ci(wide, clusters, n_boot, seed, alpha) if margin > 0 else (float("nan"),) * 2
        row["chance_ncc"] = chance
        row["retained_shuffled"] = retained
        row["retained_ci_low"], row["retained_ci_high"] = low, high
        geo_id = float(wide[("geo_identity", "normal")].mean())
        row["geo_identity"] = geo_id
        for c in ("normal", "shuffled"):
            row[f"geo_{c}"] = float(wide[("geo_error", c)].mean())
            row[f"geo_gain_{c}"] = float((wide[("geo_identity", c)] - wide[("geo_error", c)]).mean())
        row["geo_check"] = geo_check(row["geo_gain_normal"], row["geo_gain_shuffled"], geo_id)
        row["intensity_verdict"] = verdict(margin, retained, low, high)
        row["verdict"] = ("uses moving (geometry)" if row["geo_check"] == "field follows the pair"
                          else row["intensity_verdict"])
        rows.append(row)
    return pd.DataFrame(rows)


def geo_check(gain_normal: float, gain_shuffled: float, identity_error: float) -> str:
    """``field follows the pair`` (the true moving image improves the geometry, another pair's does not),
    ``field ignores the pair`` (another pair's moving image improves it too: the field is fitted to the fixed
    image) or ``no registration`` (no gain even on the true pair); ``n/a`` without a field or ground truth."""
    if not (np.isfinite(gain_normal) and np.isfinite(gain_shuffled) and np.isfinite(identity_error)):
        return "n/a"
    if gain_shuffled > GEO_TOLERANCE * identity_error:
        return "field ignores the pair"
    return "field follows the pair" if gain_normal > GEO_TOLERANCE * identity_error else "no registration"


def verdict(margin: float, retained: float, ci_low: float | None = None, ci_high: float | None = None) -> str:
    """``inconclusive`` (NCC within ``MARGIN_MIN`` of chance, or the CI of ``retained`` straddles
    ``RETAINED_COPY``), ``copies fixed?`` (CI at or above it) or ``uses moving`` (CI below it).

    Without a CI the point estimate decides (as if the CI were a point).
    """
    if not margin >= MARGIN_MIN:
        return "inconclusive"
    low = retained if ci_low is None or not np.isfinite(ci_low) else ci_low
    high = retained if ci_high is None or not np.isfinite(ci_high) else ci_high
    if low >= RETAINED_COPY:
        return "copies fixed?"
    if high < RETAINED_COPY:
        return "uses moving"
    return "inconclusive"

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
) -> pd.DataFrame:
    """Score ``register`` on every pair under the three conditions.

    ``moving`` and ``fixed`` are ``(N, H, W)`` (e.g. a test split's arrays, or
    a subset from :func:`select_pairs`). Returns one row per pair and condition:
    ``method, pair_id, index, condition, donor, input_ncc, ncc, ssim, psnr``,
    where ``input_ncc`` is the NCC of the image given as moving with the fixed
    image (for ``shuffled`` the chance level). ``groups`` (one per pair, e.g. the
    temporal sequence) keeps donors out of a pair's own group (:func:`derangement`).
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
        for condition, (mov, donor) in inputs.items():
            out = np.asarray(register(mov, fix), dtype=np.float32)
            rows.append({"method": method, "pair_id": ids[i], "index": i, "condition": condition, "donor": donor,
                         "input_ncc": _ncc0(mov, fix), **score(out, fix)})
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


def audit_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per method: mean score under each condition, mean paired drops, ``chance``, ``retained`` and ``verdict``.

    Columns: ``method, n_pairs``, then for each metric ``<m>_normal, <m>_blank,
    <m>_shuffled, <m>_drop_blank, <m>_drop_shuffled``, then ``chance_ncc,
    retained_shuffled, verdict``. Drops are means over pairs of
    ``normal - condition``.
    """
    rows = []
    for method, grp in df.groupby("method", sort=False):
        wide = grp.pivot(index="pair_id", columns="condition", values=[*METRICS, "input_ncc"])
        row: dict[str, object] = {"method": method, "n_pairs": int(len(wide))}
        for m in METRICS:
            for c in CONDITIONS:
                row[f"{m}_{c}"] = float(wide[(m, c)].mean())
            row[f"{m}_drop_blank"] = float(_paired_drop(wide[(m, "normal")], wide[(m, "blank")]).mean())
            row[f"{m}_drop_shuffled"] = float(_paired_drop(wide[(m, "normal")], wide[(m, "shuffled")]).mean())
        chance = float(wide[("input_ncc", "shuffled")].mean())
        margin = row["ncc_normal"] - chance
        retained = (row["ncc_shuffled"] - chance) / margin if margin > 0 else float("nan")
        row["chance_ncc"] = chance
        row["retained_shuffled"] = retained
        row["verdict"] = verdict(margin, retained)
        rows.append(row)
    return pd.DataFrame(rows)


def verdict(margin: float, retained: float) -> str:
    """``inconclusive`` (NCC within ``MARGIN_MIN`` of chance), ``copies fixed?`` or ``uses moving``."""
    if not margin >= MARGIN_MIN:
        return "inconclusive"
    return "copies fixed?" if retained >= RETAINED_COPY else "uses moving"

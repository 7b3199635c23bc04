"""Summary statistics and paired tests for per-pair metrics.

- :func:`summarize`: mean ± std and a percentile-bootstrap 95% CI of the mean.
- :func:`paired_wilcoxon`: two-sided Wilcoxon signed-rank test on paired values.
- :func:`holm`: Holm-Bonferroni step-down adjustment of a family of p-values.
- :func:`summarize_frame`, :func:`wilcoxon_vs_reference`: the same on a tidy
  per-pair table (one row per dataset × method × pair, one column per metric).

Missing values: ``NaN`` means "no value" (e.g. TRE for an image-output method)
and is dropped. Infinite values are kept: PSNR is ``+inf`` for an output equal
to the fixed image, and a mean over values containing ``+inf`` is ``+inf``.
All randomness comes from the ``seed`` argument (the config's seed).

Independent units. Pairs that share source pixels (overlapping patches of one
FIRE pair, frames of one sequence) are not independent; given a ``cluster`` id
per value, the bootstrap resamples whole clusters (:func:`cluster_bootstrap_ci`)
and the paired test runs on per-cluster means of the paired values
(:func:`wilcoxon_vs_reference` with ``cluster_col``). With one pair per cluster
both reduce to the per-pair versions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

#: Paired tests with fewer non-zero differences than this return NaN: with
#: n <= 5 the smallest two-sided exact p-value is 2 / 2**5 = 0.0625, so the test
#: could never reject at 0.05 and a p-value would only reflect the sample size.
MIN_WILCOXON_PAIRS = 6
_BOOT_CHUNK = 512  # resamples drawn at a time, to bound memory for large test splits


def _clean(values: Iterable[float]) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).ravel()
    return x[~np.isnan(x)]


def bootstrap_ci(values: Iterable[float], n_boot: int, seed: int, alpha: float = 0.05) -> tuple[float, float]:
    """Percentile-bootstrap ``(1 - alpha)`` confidence interval of the mean, ignoring NaN.

    ``n_boot`` resamples of the non-NaN values (with replacement, same size) are
    drawn with ``numpy.random.default_rng(seed)``; the interval is the
    ``alpha/2`` and ``1 - alpha/2`` quantiles of their means (linear
    interpolation; order statistics without interpolation when some means are
    infinite, since interpolating between infinities is undefined). Because the
    resample indices depend only on ``seed`` and the number of values, methods
    evaluated on the same pairs are resampled identically (a paired bootstrap).
    Returns ``(nan, nan)`` when there are no values.
    """
    x = _clean(values)
    if x.size == 0:
        return float("nan"), float("nan")
    if n_boot < 1:
        raise ValueError("n_boot must be at least 1")
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot, dtype=np.float64)
    for start in range(0, n_boot, _BOOT_CHUNK):
        stop = min(start + _BOOT_CHUNK, n_boot)
        idx = rng.integers(0, x.size, size=(stop - start, x.size))
        means[start:stop] = x[idx].mean(axis=1)
    return _percentile_interval(means, alpha)


def _percentile_interval(means: np.ndarray, alpha: float) -> tuple[float, float]:
    """The (alpha/2, 1 - alpha/2) quantiles of bootstrap means; with infinite means, order statistics
    (interpolating between +inf and a finite value would give NaN)."""
    q = (alpha / 2, 1 - alpha / 2)
    if np.all(np.isfinite(means)):
        low, high = np.quantile(means, q)
    else:
        low = np.quantile(means, q[0], method="lower")
        high = np.quantile(means, q[1], method="higher")
    return float(low), float(high)


def cluster_bootstrap_ci(
    values: Iterable[float], clusters: Iterable[object], n_boot: int, seed: int, alpha: float = 0.05
) -> tuple[float, float]:
    """Percentile-bootstrap CI of the mean over values when values come in dependent ``clusters``.

    Each resample draws as many clusters as there are (with replacement,
    ``numpy.random.default_rng(seed)``) and takes the mean of all values of the
    drawn clusters (so the estimate is the pair-weighted mean, as reported). NaN
    values are dropped first; a cluster left without values is not drawn.
    Quantiles as in :func:`bootstrap_ci`.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    c = np.asarray(list(clusters), dtype=object).ravel()
    if c.shape != x.shape:
        raise ValueError(f"{x.size} values but {c.size} cluster ids")
    keep = ~np.isnan(x)
    x, c = x[keep], c[keep]
    if x.size == 0:
        return float("nan"), float("nan")
    if n_boot < 1:
        raise ValueError("n_boot must be at least 1")
    _, code = np.unique(c.astype(str), return_inverse=True)
    k = int(code.max()) + 1
    sums = np.bincount(code, weights=x, minlength=k)  # +inf values keep their cluster's sum at +inf
    counts = np.bincount(code, minlength=k).astype(np.float64)
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot, dtype=np.float64)
    for start in range(0, n_boot, _BOOT_CHUNK):
        stop = min(start + _BOOT_CHUNK, n_boot)
        idx = rng.integers(0, k, size=(stop - start, k))
        means[start:stop] = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    return _percentile_interval(means, alpha)


def summarize(
    values: Iterable[float], n_boot: int = 10000, seed: int = 0, alpha: float = 0.05,
    clusters: Iterable[object] | None = None,
) -> dict[str, float]:
    """``mean``, ``std`` (sample, ddof=1), bootstrap ``ci_low``/``ci_high`` of the mean, ``n`` (non-NaN count)
    and ``n_units`` (independent units among them: clusters, or ``n`` without ``clusters``).

    With ``clusters`` the CI is a cluster bootstrap (:func:`cluster_bootstrap_ci`).
    ``std`` is NaN for fewer than two values or when values are infinite.
    """
    raw = np.asarray(values, dtype=np.float64).ravel()
    x = _clean(raw)
    n = int(x.size)
    if n == 0:
        nan = float("nan")
        return {"mean": nan, "std": nan, "ci_low": nan, "ci_high": nan, "n": 0, "n_units": 0}
    finite = bool(np.all(np.isfinite(x)))
    mean = float(x.mean()) if finite else float(np.mean(x))  # +inf if any +inf (NaN if +inf and -inf)
    std = float(x.std(ddof=1)) if (n > 1 and finite) else float("nan")
    if clusters is None:
        low, high = bootstrap_ci(x, n_boot, seed, alpha)
        units = n
    else:
        c = np.asarray(list(clusters), dtype=object).ravel()
        low, high = cluster_bootstrap_ci(raw, c, n_boot, seed, alpha)
        units = len({str(v) for v in c[~np.isnan(raw)]})
    return {"mean": mean, "std": std, "ci_low": low, "ci_high": high, "n": n, "n_units": units}


def paired_wilcoxon(a: Sequence[float], b: Sequence[float], min_pairs: int = MIN_WILCOXON_PAIRS) -> float:
    """Two-sided Wilcoxon signed-rank p-value of the paired differences ``a - b``.

    Only pairs where both values are finite are used, and zero differences are
    discarded (scipy's default ``zero_method='wilcox'``). Returns NaN when fewer
    than ``min_pairs`` non-zero differences remain, which includes the case of
    all differences being zero (identical methods: no evidence either way).
    scipy chooses the exact null distribution for small samples without ties
    and the normal approximation otherwise.
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired samples must have one length, got {a.size} and {b.size}")
    keep = np.isfinite(a) & np.isfinite(b)
    d = a[keep] - b[keep]
    if np.count_nonzero(d) < max(1, min_pairs):
        return float("nan")
    return float(sps.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


def smallest_wilcoxon_p(n_units: int) -> float:
    """The smallest two-sided exact Wilcoxon signed-rank p-value with ``n_units`` non-zero differences:
    ``2 / 2**n`` (every difference of one sign)."""
    return 2.0 / 2.0 ** max(int(n_units), 0)


def can_reach_significance(n_units: int, family_size: int, alpha: float = 0.05) -> bool:
    """Whether a paired test on ``n_units`` units can be significant at ``alpha`` after Holm over ``family_size``
    tests: the smallest possible adjusted p-value is ``family_size * 2 / 2**n_units``. Where it cannot, the
    comparison is descriptive only, whatever the data."""
    return smallest_wilcoxon_p(n_units) * max(int(family_size), 1) < alpha


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1).

    NaN entries stay NaN and do not count towards the family size ``m``. With
    the non-NaN p-values sorted ascending, ``adj_(i) = max_{j<=i} min(1, (m - j + 1) p_(j))``
    (1-based ``j``), returned in the input order.
    """
    p = np.asarray(pvalues, dtype=np.float64).ravel()
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = (m - np.arange(m)) * p[order]
    out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out


def summarize_frame(
    df: pd.DataFrame, by: Sequence[str], metrics: Sequence[str], n_boot: int, seed: int, alpha: float = 0.05,
    cluster_col: str | None = None,
) -> pd.DataFrame:
    """Tidy summary: one row per group of ``by`` and metric with ``mean, std, ci_low, ci_high, n, n_units``.

    Metrics absent from ``df`` or all-NaN in a group give ``n = 0`` and NaN
    statistics (tables print those as "n/a"). With ``cluster_col`` the CI is a
    cluster bootstrap over that column's units.
    """
    rows = []
    for key, grp in df.groupby(list(by), sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        clusters = grp[cluster_col] if cluster_col and cluster_col in grp else None
        for metric in metrics:
            values = grp[metric] if metric in grp else np.full(len(grp), np.nan)
            rows.append({**dict(zip(by, key)), "metric": metric,
                         **summarize(values, n_boot, seed, alpha, clusters=clusters)})
    return pd.DataFrame(rows, columns=[*by, "metric", "mean", "std", "ci_low", "ci_high", "n", "n_units"])


def wilcoxon_vs_reference(
    df: pd.DataFrame,
    reference: str,
    metrics: Sequence[str],
    method_col: str = "method",
    pair_col: str = "pair_id",
    family_cols: Sequence[str] = ("dataset",),
    cluster_col: str | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Paired Wilcoxon test of every method against ``reference`` on every metric, Holm-corrected.

    Pairs are matched on ``pair_col``. With ``cluster_col`` (the independent
    unit), the paired values are first averaged per cluster over the pairs where
    both are finite and the test runs on the per-cluster means. The Holm family
    is all (method, metric) tests within one group of ``family_cols`` (by
    default one dataset), so the family-wise error rate holds per results table.
    Returns rows with ``n_pairs`` (paired values), ``n_units`` (values tested:
    clusters, or pairs), ``median_diff`` (method - reference, over the tested
    values), ``p``, ``p_holm`` and ``descriptive_only``: True where even the
    smallest possible p-value on that many units, times the Holm family size,
    is not below ``alpha`` (:func:`can_reach_significance`), so the test cannot
    show a difference whatever the data.
    """
    family_cols = [c for c in family_cols if c in df.columns]
    groups = df.groupby(family_cols, sort=False) if family_cols else [((), df)]
    out = []
    for key, fam in groups:
        key = key if isinstance(key, tuple) else (key,)
        ref_cols = [pair_col, *[m for m in metrics if m in fam.columns]]
        ref = fam.loc[fam[method_col] == reference, ref_cols]
        rows = []
        for method, grp in fam[fam[method_col] != reference].groupby(method_col, sort=False):
            joined = grp.merge(ref, on=pair_col, how="inner", suffixes=("", "__ref"), validate="one_to_one")
            for metric in metrics:
                if metric not in joined or f"{metric}__ref" not in joined:
                    continue
                a = joined[metric].to_numpy(np.float64)
                b = joined[f"{metric}__ref"].to_numpy(np.float64)
                both = np.isfinite(a) & np.isfinite(b)
                n_paired = int(both.sum())
                if cluster_col and cluster_col in joined:
                    units = pd.DataFrame({"c": joined[cluster_col].astype(str)[both], "a": a[both], "b": b[both]})
                    per = units.groupby("c", sort=True)[["a", "b"]].mean()
                    a, b = per["a"].to_numpy(), per["b"].to_numpy()
                else:
                    a, b = a[both], b[both]
                rows.append({
                    **dict(zip(family_cols, key)),
                    method_col: method,
                    "reference": reference,
                    "metric": metric,
                    "n_pairs": n_paired,
                    "n_units": int(a.size),
                    "median_diff": float(np.median(a - b)) if a.size else float("nan"),
                    "p": paired_wilcoxon(a, b),
                })
        if rows:
            fam_df = pd.DataFrame(rows)
            fam_df["p_holm"] = holm(fam_df["p"].to_numpy())
            m = int(fam_df["p"].notna().sum())
            fam_df["descriptive_only"] = [not can_reach_significance(k, m, alpha) for k in fam_df["n_units"]]
            out.append(fam_df)
    cols = [*family_cols, method_col, "reference", "metric", "n_pairs", "n_units", "median_diff", "p", "p_holm",
            "descriptive_only"]
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=cols)

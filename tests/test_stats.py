"""Bootstrap, Wilcoxon and Holm wiring checked on known inputs and against scipy / statsmodels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from pcreg.evaluation.stats import (
    bootstrap_ci,
    holm,
    paired_wilcoxon,
    summarize,
    summarize_frame,
    wilcoxon_vs_reference,
)


def test_bootstrap_is_deterministic_and_seed_dependent():
    x = np.random.default_rng(1).normal(size=50)
    assert bootstrap_ci(x, 500, seed=7) == bootstrap_ci(x, 500, seed=7)
    assert bootstrap_ci(x, 500, seed=7) != bootstrap_ci(x, 500, seed=8)


def test_bootstrap_matches_scipy_percentile_and_normal_theory():
    x = np.random.default_rng(2).normal(loc=3.0, scale=2.0, size=200)
    low, high = bootstrap_ci(x, 4000, seed=0)
    ref = sps.bootstrap((x,), np.mean, n_resamples=4000, method="percentile", confidence_level=0.95,
                        rng=np.random.default_rng(0)).confidence_interval
    # Two independent Monte-Carlo estimates of the same interval: agree to a few % of its width.
    width = high - low
    assert abs(low - ref.low) < 0.08 * width and abs(high - ref.high) < 0.08 * width
    # Normal theory: mean ± 1.96 s / sqrt(n).
    half = 1.96 * x.std(ddof=1) / np.sqrt(x.size)
    assert width / 2 == pytest.approx(half, rel=0.1)
    assert low < x.mean() < high


def test_bootstrap_ignores_nan_and_handles_degenerate_input():
    x = np.array([1.0, 2.0, np.nan, 3.0, 4.0])
    assert bootstrap_ci(x, 300, seed=3) == bootstrap_ci(x[~np.isnan(x)], 300, seed=3)
    assert bootstrap_ci([5.0], 100, seed=0) == (5.0, 5.0)
    assert all(np.isnan(bootstrap_ci([np.nan, np.nan], 100, seed=0)))


def test_bootstrap_with_infinite_values_is_defined():
    # PSNR is +inf for a perfect output: every resample containing it has mean +inf.
    x = np.array([np.inf] * 9 + [30.0])
    low, high = bootstrap_ci(x, 1000, seed=0)
    assert high == np.inf and not np.isnan(low)


def test_summarize_known_values():
    s = summarize([1.0, 2.0, 3.0, 4.0, np.nan], n_boot=2000, seed=0)
    assert s["n"] == 4 and s["mean"] == pytest.approx(2.5)
    assert s["std"] == pytest.approx(np.std([1, 2, 3, 4], ddof=1))
    assert 1.0 <= s["ci_low"] < 2.5 < s["ci_high"] <= 4.0
    empty = summarize([np.nan], n_boot=10, seed=0)
    assert empty["n"] == 0 and np.isnan(empty["mean"])


def test_paired_wilcoxon_matches_scipy_and_rules():
    rng = np.random.default_rng(4)
    a = rng.normal(size=40)
    b = a + rng.normal(0.3, 1.0, size=40)
    assert paired_wilcoxon(a, b) == pytest.approx(sps.wilcoxon(a, b).pvalue)
    # Hand-checked exact case: 6 differences all positive, distinct ranks -> p = 2 / 2**6.
    assert paired_wilcoxon([1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 0, 0]) == pytest.approx(2 / 64)
    # Non-finite pairs are dropped before testing.
    a2 = np.append(a, [np.nan, np.inf])
    b2 = np.append(b, [0.0, 1.0])
    assert paired_wilcoxon(a2, b2) == pytest.approx(paired_wilcoxon(a, b))
    # Identical methods and too few non-zero differences give NaN.
    assert np.isnan(paired_wilcoxon(a, a))
    assert np.isnan(paired_wilcoxon([1, 2, 3, 4, 5], [0, 0, 0, 0, 0]))
    assert np.isnan(paired_wilcoxon([1, 2, 3, 4, 5, 6, 7], [1, 2, 3, 0, 0, 0, 0]))  # only 4 non-zero
    with pytest.raises(ValueError):
        paired_wilcoxon([1, 2], [1, 2, 3])


def test_holm_matches_statsmodels():
    rng = np.random.default_rng(5)
    for _ in range(20):
        p = rng.uniform(0, 0.2, size=rng.integers(1, 12))
        expected = multipletests(p, method="holm")[1]
        np.testing.assert_allclose(holm(p), expected, rtol=1e-12)
    # Hand-checked: sorted 0.01, 0.02, 0.04 with m = 3 -> 0.03, 0.04, max(0.04, 0.04) = 0.04.
    np.testing.assert_allclose(holm([0.04, 0.01, 0.02]), [0.04, 0.03, 0.04])


def test_holm_nan_aware_and_monotone():
    p = np.array([0.01, np.nan, 0.03, 0.5, np.nan])
    adj = holm(p)
    assert np.isnan(adj[1]) and np.isnan(adj[4])
    np.testing.assert_allclose(adj[[0, 2, 3]], multipletests(p[[0, 2, 3]], method="holm")[1])
    order = np.argsort(p[[0, 2, 3]])
    assert np.all(np.diff(adj[[0, 2, 3]][order]) >= 0)
    assert np.all(np.isnan(holm([np.nan, np.nan])))


def _pairs_table() -> pd.DataFrame:
    rng = np.random.default_rng(6)
    n = 30
    base = rng.uniform(0.5, 0.9, size=n)
    rows = []
    for method, shift in [("pcreg_net", 0.05), ("demons", 0.0), ("copy", 0.05)]:
        for i in range(n):
            ncc = base[i] + shift + (rng.normal(0, 0.01) if method == "demons" else 0.0)
            rows.append({"dataset": "d", "method": method, "pair_id": f"p{i}", "ncc": ncc, "tre_px": np.nan})
    return pd.DataFrame(rows)


def test_wilcoxon_vs_reference_wiring():
    df = _pairs_table()
    res = wilcoxon_vs_reference(df, "pcreg_net", ["ncc", "tre_px"])
    res = res.set_index(["method", "metric"])
    # demons is lower on every pair by ~0.05: all 30 signs negative -> tiny p; same as a direct scipy call.
    ref = df[df.method == "pcreg_net"].set_index("pair_id")["ncc"]
    dem = df[df.method == "demons"].set_index("pair_id")["ncc"].loc[ref.index]
    assert res.loc[("demons", "ncc"), "p"] == pytest.approx(sps.wilcoxon(dem, ref).pvalue)
    assert res.loc[("demons", "ncc"), "median_diff"] < -0.04
    # identical to the reference -> NaN p; TRE absent for all -> NaN, n_pairs 0.
    assert np.isnan(res.loc[("copy", "ncc"), "p"])
    assert res.loc[("demons", "tre_px"), "n_pairs"] == 0 and np.isnan(res.loc[("demons", "tre_px"), "p"])
    # Holm over the family of 4 tests, of which 1 is non-NaN: p_holm equals p.
    assert res.loc[("demons", "ncc"), "p_holm"] == pytest.approx(res.loc[("demons", "ncc"), "p"])


def test_summarize_frame_layout():
    df = _pairs_table()
    out = summarize_frame(df, ["dataset", "method"], ["ncc", "tre_px"], n_boot=200, seed=0)
    assert len(out) == 6 and set(out.columns) >= {"mean", "std", "ci_low", "ci_high", "n"}
    row = out[(out.method == "demons") & (out.metric == "ncc")].iloc[0]
    assert row["n"] == 30 and row["ci_low"] < row["mean"] < row["ci_high"]
    assert (out[out.metric == "tre_px"]["n"] == 0).all()

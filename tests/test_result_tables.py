"""Statistics and geometry tables: bootstrap/Wilcoxon/Holm wiring and FIRE AUC against independent computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers.evalfakes import standard_runs, write_run
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from pcreg.reporting.result_tables import geometry_table, stats_table
from pcreg.reporting.tables import doc_to_latex, doc_to_markdown, load_pairs, summarize_runs


@pytest.fixture
def runs(tmp_path):
    return standard_runs(tmp_path)


def _row(df, run, metric, scope="all"):
    hit = df[(df["run"] == run) & (df["metric"] == metric) & (df["scope"] == scope)]
    assert len(hit) == 1
    return hit.iloc[0]


def test_stats_bootstrap_ci_matches_a_direct_resampling(runs):
    pairs = load_pairs(runs)
    data, _ = stats_table(pairs, runs, "d", reference="pcreg_net", n_boot=500, seed=11)
    x = pd.read_csv(runs[1].pairs_csv)["ncc"].to_numpy()
    # Independent percentile bootstrap with the same seed: same resample indices, same quantiles.
    idx = np.random.default_rng(11).integers(0, x.size, size=(500, x.size))
    low, high = np.quantile(x[idx].mean(axis=1), [0.025, 0.975])
    row = _row(data, "sift", "ncc")
    assert row["ci_low"] == pytest.approx(low) and row["ci_high"] == pytest.approx(high)
    assert row["mean"] == pytest.approx(x.mean()) and row["std"] == pytest.approx(x.std(ddof=1))


def test_stats_wilcoxon_against_pcreg_net_and_holm(runs):
    pairs = load_pairs(runs)
    data, doc = stats_table(pairs, runs, "d", reference="pcreg_net", n_boot=200, seed=0)
    a = pd.read_csv(runs[0].pairs_csv)
    ref = pd.read_csv(runs[2].pairs_csv)
    for metric in ("ncc", "ssim", "psnr"):
        expected = sps.wilcoxon(a[metric] - ref[metric]).pvalue
        row = _row(data, "identity", metric)
        assert row["p"] == pytest.approx(expected)
        assert row["median_diff"] == pytest.approx(np.median(a[metric] - ref[metric]))
    # TRE: pcreg_net outputs an image, so no paired values and no test.
    assert np.isnan(_row(data, "identity", "tre_orig_px")["p"])
    # Holm over every (run, metric) test of the scope 'all', as statsmodels computes it.
    fam = data[(data["scope"] == "all") & data["p"].notna()]
    assert len(fam) >= 9
    assert np.allclose(fam["p_holm"], multipletests(fam["p"], method="holm")[1])
    # The reference itself is never tested; its row shows dashes.
    md = doc_to_markdown(doc)
    assert "median Δ vs PCReg-Net" in md
    assert np.isnan(_row(data, "pcreg_net", "ncc")["p"])


def test_stats_per_category_breakdown(runs):
    pairs = load_pairs(runs)
    data, _ = stats_table(pairs, runs, "d", reference="pcreg_net", n_boot=100, seed=0)
    df = pd.read_csv(runs[0].pairs_csv, keep_default_na=False, na_values=[""])
    for cat in ("S", "P", "A"):
        sub = df[df["category"] == cat]
        row = _row(data, "identity", "ncc", cat)
        assert row["n"] == len(sub) and row["mean"] == pytest.approx(sub["ncc"].mean())
    assert set(data["scope"]) == {"all", "S", "P", "A"}


def test_stats_without_pcreg_net_skip_the_tests_with_a_note(runs):
    subset = [r for r in runs if r.id in ("identity", "sift")]
    data, doc = stats_table(load_pairs(subset), subset, "d", reference="pcreg_net", n_boot=100, seed=0)
    assert data["p"].isna().all() and data["p_holm"].isna().all()
    assert any("No pcreg_net run" in n for n in doc.notes)
    assert "\\begin{tabular}" in doc_to_latex(doc)


def test_geometry_table_auc_and_na(tmp_path, runs):
    pairs = load_pairs(runs)
    data, doc, curves = geometry_table(pairs, runs, "d")
    df = pd.read_csv(runs[1].pairs_csv, keep_default_na=False, na_values=[""])
    e = np.where(df["failed"], 1e6, df["tre_orig_px"])
    # AUC by hand: sum over t = 1..25 of the % of pairs with error < t, divided by 2500.
    manual = {c: sum(100 * np.mean(e[df["category"] == c] < t) for t in range(1, 26)) / 2500 for c in "SPA"}
    sift = data.set_index("run").loc["sift"]
    for c in "SPA":
        assert sift[f"auc_{c}"] == pytest.approx(manual[c])
    assert sift["mauc"] == pytest.approx(np.mean(list(manual.values())))
    assert sift["tre_S_mean"] == pytest.approx(df.loc[df["category"] == "S", "tre_orig_px"].mean())
    # The failed pair never succeeds, even at t = 25, although its fallback TRE is small.
    assert curves[(curves["run"] == "sift") & (curves["category"] == "all")]["success_pct"].max() <= 100 * 7 / 8
    # PCReg-Net outputs an image: every geometric cell is n/a, none is a number.
    md = doc_to_markdown(doc)
    pcreg_line = next(line for line in md.splitlines() if line.startswith("| PCReg-Net"))
    assert pcreg_line.count("n/a") == 4 + 4 + 1 + 3
    assert set(curves["run"]) == {"identity", "sift"}


def test_geometry_without_landmarks_or_categories(tmp_path):
    run = write_run(tmp_path, "identity", "reference", {"ncc": np.full(4, 0.5), "epe_px": np.ones(4)},
                    categories=[""] * 4)
    data, doc, curves = geometry_table(load_pairs([run]), [run], "orpam")
    assert curves.empty and np.isnan(data.loc[0, "mauc"])
    assert doc.columns[1:3] == ["TRE all (px)", "AUC all"]
    assert any("no landmarks" in n for n in doc.notes)


def test_summary_keeps_infinite_psnr_and_formats_it(tmp_path):
    run = write_run(tmp_path, "copy", "reference", {"ncc": np.ones(3), "psnr": np.full(3, np.inf)})
    summary = summarize_runs([run], n_boot=50)
    assert np.isinf(summary.loc[0, "psnr_mean"])
    from pcreg.reporting.tables import overview_doc

    md = doc_to_markdown(overview_doc(summary, "c"))
    assert "∞" in md and "$\\infty$" in doc_to_latex(overview_doc(summary, "c"))

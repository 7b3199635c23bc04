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
    assert pcreg_line.count("n/a") == 4 + 4 + 4 + 1 + 3
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


def test_fire_auc_counts_only_pairs_with_landmarks(tmp_path):
    """Issue 12 item 1: two patches at 2 px, one landmark-free patch, one landmark-free failed patch -> 0.92.

    Success is 0 % at t = 1, 2 and 100 % at t = 3..25 (23 thresholds): AUC = 23 * 100 / 2500. Counting the
    landmark-free failed patch as error 1e6 gave 23 * 66.7 / 2500 = 0.613.
    """
    run = write_run(tmp_path, "sift", "traditional",
                    {"ncc": np.full(4, 0.5), "tre_orig_px": np.array([2.0, 2.0, np.nan, np.nan]),
                     "n_landmarks": np.array([10, 10, 0, 0])},
                    categories=["S"] * 4, failed=np.array([False, False, False, True]))
    data, _, _ = geometry_table(load_pairs([run]), [run], "fire-reg-256")
    assert data.loc[0, "auc_S"] == pytest.approx(0.92)
    assert data.loc[0, "auc_all"] == pytest.approx(0.92)
    assert data.loc[0, "n_landmark_pairs"] == 2
    # A failed pair WITH landmarks still scores 1e6: AUC drops to 2/3 of 0.92.
    run = write_run(tmp_path, "sift", "traditional",
                    {"ncc": np.full(4, 0.5), "tre_orig_px": np.array([2.0, 2.0, 1.0, np.nan]),
                     "n_landmarks": np.array([10, 10, 10, 0])},
                    categories=["S"] * 4, failed=np.array([False, False, True, False]))
    data, _, _ = geometry_table(load_pairs([run]), [run], "fire-reg-256")
    assert data.loc[0, "auc_S"] == pytest.approx(0.92 * 2 / 3)


def _superretina_auc(errors_by_category: dict[str, list[float]]) -> dict[str, float]:
    """Direct transcription of SuperRetina's compute_auc (test_on_FIRE.py): strict <, t = 1..25, / (25 * 100)."""
    limit = 25
    out = {}
    for cat, errs in errors_by_category.items():
        errs = np.array(errs)
        g = np.zeros(limit + 1)
        for i in range(1, limit + 1):
            g[i] = np.sum(errs < i) * 100 / errs.shape[0]
        out[cat] = np.sum(g[1:]) / (limit * 100)
    out["mAUC"] = (out["S"] + out["P"] + out["A"]) / 3.0
    return out


def test_fire_direction_and_status_match_superretina(tmp_path):
    """Issue 12 item 2: by default the _2 (moving) points are mapped into _1 (fixed) and measured there,
    as SuperRetina does; the AUC and the failed / inaccurate / acceptable shares then equal a direct
    transcription of their code on the same inputs (the inverse map here is the exact affine inverse)."""
    from pcreg.evaluation.scoring import score_pair
    from pcreg.warp import field_from_matrix

    rng = np.random.default_rng(3)
    shape, scale = (64, 64), 4.0
    img = rng.uniform(0, 1, shape).astype(np.float32)
    cats = ["S", "S", "S", "P", "P", "P", "A", "A", "A"]
    rows, by_cat, statuses = [], {"S": [], "P": [], "A": []}, []
    fwd = {"S": [], "P": [], "A": []}
    for k, cat in enumerate(cats):
        a = np.array([[1.0 + 0.04 * (k - 4), 0.05, 2.0], [-0.03, 0.95, -1.5], [0, 0, 1]])  # fixed -> moving
        field = field_from_matrix(a, shape)
        fixed_xy = rng.uniform(12, 50, (10, 2))
        moving_xy = (fixed_xy @ a[:2, :2].T + a[:2, 2]) + rng.normal(0, 0.1 * (k + 1) ** 2, (10, 2))
        row = score_pair(img, img, field, None, (fixed_xy, moving_xy), scale)
        row.update(failed=False)
        if k == 8:
            row["failed"] = True  # a failed pair with landmarks: error 1e6, status failed
        rows.append(row)
        # SuperRetina: map the _2 points into _1 with the inverse transform, distances there, original pixels.
        pred = (moving_xy - a[:2, 2]) @ np.linalg.inv(a[:2, :2]).T
        dis = np.linalg.norm(pred - fixed_xy, axis=1) * scale
        fwd[cat].append(1e6 if row["failed"] else
                        np.linalg.norm(fixed_xy @ a[:2, :2].T + a[:2, 2] - moving_xy, axis=1).mean() * scale)
        if row["failed"]:
            by_cat[cat].append(1e6)
            statuses.append("failed")
        else:
            by_cat[cat].append(dis.mean())
            statuses.append("inaccurate" if dis.max() > 50 or np.median(dis) > 20 else "acceptable")
    frame = pd.DataFrame(rows)
    values = {c: frame[c].to_numpy() for c in frame.columns if c != "failed"}
    run = write_run(tmp_path, "syn", "traditional", values, categories=cats, failed=frame["failed"].to_numpy())
    pairs = load_pairs([run])
    data, doc, _ = geometry_table(pairs, [run], "fire")
    ref = _superretina_auc(by_cat)
    for c in ("S", "P", "A"):
        assert data.loc[0, f"auc_{c}"] == pytest.approx(ref[c], abs=1e-3)
    assert data.loc[0, "mauc"] == pytest.approx(ref["mAUC"], abs=1e-3)
    assert 0.05 < ref["mAUC"] < 0.95  # the example spans the thresholds, so it can tell directions apart
    for k in ("failed", "inaccurate", "acceptable"):
        assert data.loc[0, f"{k}_pct_all"] == pytest.approx(100 * statuses.count(k) / len(statuses))
    assert {"acceptable", "inaccurate", "failed"} <= set(statuses)
    assert any("SuperRetina's test_on_FIRE.py" in n for n in doc.notes)
    # The other direction is offered, measured in the moving image, and gives other numbers here.
    other, doc2, _ = geometry_table(pairs, [run], "fire", direction="fixed_to_moving")
    assert other.loc[0, "mauc"] == pytest.approx(_superretina_auc(fwd)["mAUC"], abs=1e-3)
    assert not np.allclose(frame["tre_orig_px"], frame["tre_m2f_orig_px"], rtol=0.02)
    assert any("the suite's TRE" in n for n in doc2.notes)


def test_stats_resample_and_test_independent_units_not_overlapping_pairs(tmp_path):
    """Issue 12 item 4: 5 clusters of 8 near-identical pairs carry the information of 5 values, not 40.

    The CI must be the cluster bootstrap's (as wide as that of the 5 cluster means), the paired test runs
    on 5 per-cluster means (fewer than MIN_WILCOXON_PAIRS: no test) and the table names unit and count.
    """
    from pcreg.evaluation import stats

    rng = np.random.default_rng(0)
    centre = rng.normal(0.6, 0.1, 5)
    clusters = np.repeat([f"F{k}" for k in range(5)], 8)
    ncc = np.repeat(centre, 8) + rng.normal(0, 1e-3, 40)
    runs = [write_run(tmp_path, "identity", "reference", {"ncc": ncc, "cluster": clusters}, categories=[""] * 40),
            write_run(tmp_path, "pcreg_net", "deep", {"ncc": ncc + 0.05 + rng.normal(0, 0.01, 40),
                                                      "cluster": clusters}, categories=[""] * 40)]
    data, doc = stats_table(load_pairs(runs), runs, "fire-reg-256", reference="pcreg_net", n_boot=2000, seed=0)
    row = _row(data, "identity", "ncc", "all")
    assert row["n"] == 40 and row["n_units"] == 5
    low, high = stats.bootstrap_ci(centre, 2000, 0)  # what 5 independent values allow
    assert row["ci_high"] - row["ci_low"] > 0.6 * (high - low)
    naive_low, naive_high = stats.bootstrap_ci(ncc, 2000, 0)  # the overconfident per-pair interval
    assert row["ci_high"] - row["ci_low"] > 1.5 * (naive_high - naive_low)
    assert np.isnan(row["p"])  # 5 units: no test, although 40 paired differences are all positive
    assert any("Independent unit: cluster" in n and "5 units" in n for n in doc.notes)
    assert "clusters" in doc.columns


def test_tables_show_per_metric_n_where_it_differs_from_the_pairs(tmp_path):
    """A metric defined on fewer pairs than the table covers says so in its cell: (n=K)."""
    from pcreg.reporting.paper_tables import table1
    from pcreg.reporting.tables import overview_doc

    ncc = np.linspace(0.5, 0.9, 8)
    ncc[2] = np.nan  # e.g. an output NCC is undefined on
    run = write_run(tmp_path, "pcreg_net", "deep", {"ncc": ncc, "ssim": np.full(8, 0.7), "psnr": np.full(8, 20.0)})
    summary = summarize_runs([run])
    overview = doc_to_markdown(overview_doc(summary, "c"))
    line = next(x for x in overview.splitlines() if "pcreg_net" in x)
    assert "(n=7)" in line and line.count("(n=") == 1  # only NCC; SSIM and PSNR cover all 8 pairs
    _, doc = table1(summary, [run], "d", None)
    assert "(n=7)" in doc_to_markdown(doc)

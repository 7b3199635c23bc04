"""The paper's Tables 1-3 in its layout: our numbers, the paper's beside them, temporal metrics by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers.evalfakes import standard_runs, write_run

from pcreg.config import validate_params
from pcreg.datasets import PreparedDataset, get_dataset_type
from pcreg.reporting.paper_tables import ablation_table, is_temporal, table1, table3, temporal_by_run
from pcreg.reporting.paper_values import load_paper_values
from pcreg.reporting.tables import doc_to_latex, doc_to_markdown, summarize_runs


def _paper(table, dataset, method_id, metric):
    df = load_paper_values()
    return float(df[(df["table"] == table) & (df["dataset"] == dataset) & (df["method_id"] == method_id)
                    & (df["metric"] == metric)]["value"].iloc[0])


def test_table1_layout_and_paper_columns(tmp_path):
    runs = standard_runs(tmp_path)
    data, doc = table1(summarize_runs(runs), runs, "synth", "fire-reg-256")
    assert doc.columns == ["Method", "NCC", "NCC (paper, FIRE-Reg-256)", "SSIM", "SSIM (paper, FIRE-Reg-256)",
                           "PSNR (dB)", "PSNR (dB) (paper, FIRE-Reg-256)"]
    # Sections in the paper's order; identity (group reference) printed first under the traditional methods.
    assert doc.rows[0] == "Traditional methods" and doc.rows[1][0] == "Unregistered"
    deep_at = doc.rows.index("Deep learning methods")
    labels = [r[0] for r in doc.rows if not isinstance(r, str)]
    assert labels.index("PCReg-Net") > labels.index("SAS-Net [17]") > deep_at - 1
    # Every paper value of Table 1 is there, next to ours; methods not run say so.
    for rec in data.to_dict("records"):
        if rec["paper_row"]:
            method_id = rec["run"] or ""
            if method_id:
                assert rec["ncc_paper"] == _paper(1, "fire-reg-256", method_id, "ncc")
    sas = next(r for r in doc.rows if not isinstance(r, str) and r[0] == "SAS-Net [17]")
    assert sas[1] == "not run" and sas[2] == "0.748" and sas[6] == "32.21"
    ours = pd.read_csv(runs[2].pairs_csv)["ncc"]
    pc = next(r for r in doc.rows if not isinstance(r, str) and r[0] == "PCReg-Net")
    assert pc[1] == f"{ours.mean():.3f} ± {ours.std(ddof=1):.3f}" and pc[2] == "0.991"
    # Ablations are not in Table 1.
    assert "w/o contrast" not in labels
    assert "FIRE-Reg-256" in doc_to_latex(doc) and "0.991" in doc_to_markdown(doc)


def test_table1_without_or_with_other_paper_reference(tmp_path):
    runs = standard_runs(tmp_path)[:2]
    _, doc = table1(summarize_runs(runs), runs, "synth", None)
    assert doc.columns == ["Method", "NCC", "SSIM", "PSNR (dB)"]
    assert [r[0] for r in doc.rows if not isinstance(r, str)] == ["Unregistered", "SIFT"]
    _, doc = table1(summarize_runs(runs), runs, "synth", "orpam-4k")
    assert doc.columns == ["Method", "NCC", "SSIM", "PSNR (dB)"]
    assert any("no values" in n for n in doc.notes)


def test_ablation_table(tmp_path):
    runs = standard_runs(tmp_path)
    data, doc = ablation_table(summarize_runs(runs), runs, "synth", "fire-reg-256", "pcreg_net")
    labels = [r[0] for r in doc.rows]
    # The paper's five rows in its order (not-run ones included), then the extra ablation run.
    assert labels == ["PCReg-Net", "w/o contrast", "w/o Feature injection", "Single stage only",
                      "w/o Auxiliary loss", "w/o something"]
    assert doc.rows[1][2] == "0.961" and doc.rows[2][1] == "not run"
    assert doc.rows[0][-3] == "3" and doc.rows[-1][-3] == "—"
    assert doc.columns[-2:] == ["Seeds", "Did not learn"] and doc.rows[1][-2] == "1"
    assert data.loc[data["run"] == "pcreg_net_no_contrast", "ncc_paper"].iloc[0] == 0.961
    assert any("20 epochs" in n for n in doc.notes)


def test_ablation_rows_are_mean_and_sd_over_training_seeds(tmp_path):
    from dataclasses import replace

    from helpers.evalfakes import write_run

    runs = standard_runs(tmp_path)
    base = pd.read_csv(runs[3].pairs_csv)
    for k, shift in ((1, 0.02), (2, -0.04)):  # two further seeds of "w/o contrast", their test means shifted
        extra = write_run(tmp_path, f"pcreg_net_no_contrast.seed{k}", "ablation",
                          {"ncc": base["ncc"].to_numpy() + shift, "ssim": base["ssim"].to_numpy(),
                           "psnr": base["psnr"].to_numpy()}, label="w/o contrast", trainable=True)
        runs.append(replace(extra, seed_of="pcreg_net_no_contrast"))
    data, doc = ablation_table(summarize_runs(runs), runs, "synth", "fire-reg-256", "pcreg_net")
    labels = [r[0] for r in doc.rows]
    assert labels.count("w/o contrast") == 1  # the seeds make one row, not three
    row = next(r for r in doc.rows if r[0] == "w/o contrast")
    means = [base["ncc"].mean() + d for d in (0.0, 0.02, -0.04)]
    assert row[1] == f"{np.mean(means):.3f} ± {np.std(means, ddof=1):.3f}" and row[-2] == "3"
    rec = data[data["run"] == "pcreg_net_no_contrast"].iloc[0]
    assert rec["n_seeds"] == 3 and rec["ncc_std"] > 0.02


@pytest.fixture(scope="module")
def orpam(tmp_path_factory):
    root = tmp_path_factory.mktemp("orpam") / "data"
    module = get_dataset_type("synthetic-orpam")
    params = validate_params(module, {"height": 32, "width": 16, "sequences": {"train": 1, "val": 1, "test": 2},
                                      "frames": 4}, "t")
    module.prepare(root, "orpam", params, 0)
    return root


def _merged(odd, even):
    # Independent interleave: stack the two column sets and flatten (odd column first).
    return np.stack([odd, even], axis=-1).reshape(odd.shape[0], -1)


def test_table3_temporal_metrics_by_hand(orpam, tmp_path):
    test = PreparedDataset(orpam).split("test")
    assert is_temporal(test.manifest)
    moving, fixed = np.asarray(test.moving), np.asarray(test.fixed)
    n = len(test)
    res = tmp_path / "res"
    runs = [write_run(res, "identity", "reference", {"ncc": np.full(n, 0.5)}, categories=[""] * n,
                      registered=moving, label="Unregistered"),
            write_run(res, "copy", "deep", {"ncc": np.full(n, 0.9)}, categories=[""] * n, registered=fixed)]
    temporal, odd = temporal_by_run(orpam, runs)
    seqs = test.manifest["sequence"].to_numpy()
    for run, reg in (("identity", moving), ("copy", fixed)):
        nccs, odds = [], []
        for s in np.unique(seqs):
            idx = np.flatnonzero(seqs == s)
            idx = idx[np.argsort(test.manifest["frame"].to_numpy()[idx])]
            for a, b in zip(idx[:-1], idx[1:]):
                nccs.append(np.corrcoef(_merged(fixed[a], reg[a]).ravel(), _merged(fixed[b], reg[b]).ravel())[0, 1])
                odds.append(np.corrcoef(fixed[a].ravel(), fixed[b].ravel())[0, 1])
        assert len(nccs) == 2 * 3
        assert temporal[run]["tncc"] == pytest.approx(np.mean(nccs))
        assert temporal[run]["tncg"] == pytest.approx(np.mean(odds) - np.mean(nccs))
        assert odd["odd_only_tncc"] == pytest.approx(np.mean(odds))
    data, doc = table3(summarize_runs(runs), runs, "orpam", "orpam-temporal-26k", temporal, odd)
    assert doc.columns[-4:] == ["TNCC", "TNCC (paper, OR-PAM-Reg-Temporal-26K)", "TNCG",
                                "TNCG (paper, OR-PAM-Reg-Temporal-26K)"]
    rows = {r[0]: r for r in doc.rows}
    assert rows["Unregistered"][8] == "0.962" and rows["Unregistered"][10] == "0.002"
    assert rows["PCReg-Net (26K)"][1] == "not run"
    assert rows["Odd-only reference"][7].startswith(f"{odd['odd_only_tncc']:.3f}")
    assert rows["Odd-only reference"][8] == "0.963" and rows["Odd-only reference"][1] == "—"
    assert rows["copy"][2] == "—"  # a run the paper does not have: no paper value
    ref = data[data["label"] == "Odd-only reference"].iloc[0]
    assert ref["tncc_mean"] == pytest.approx(odd["odd_only_tncc"]) and ref["tncc_paper"] == 0.963


def test_table3_without_sequences_is_na(tmp_path):
    run = write_run(tmp_path, "identity", "reference", {"ncc": np.full(3, 0.5)}, categories=[""] * 3)
    _, doc = table3(summarize_runs([run]), [run], "x", "orpam-4k", None, None)
    assert doc.rows[0][-2:] == ["n/a", "—"] and doc.rows[0][2] == "0.167"
    assert any("no frame sequences" in n for n in doc.notes)

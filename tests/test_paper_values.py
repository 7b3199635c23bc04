"""The paper's Tables 1-3 as data: complete, consistent and sourced."""

from __future__ import annotations

import re

import pytest

from pcreg.reporting.paper_values import COLUMNS, load_paper_values, paper_value

RUN_IDS = {
    "identity", "sift", "demons", "horn_schunck", "syn", "voxelmorph", "transmorph", "pcreg_net",
    "pcreg_net_no_contrast", "pcreg_net_no_injection", "pcreg_net_single_stage", "pcreg_net_no_aux", "",
}


@pytest.fixture(scope="module")
def pv():
    return load_paper_values()


def test_layout_and_sources(pv):
    assert list(pv.columns) == COLUMNS
    assert len(pv) == 59  # T1 9 x 3, T2 5 x 3, T3 3 + 3 + 5 + 5 + 1
    assert pv.groupby("table").size().to_dict() == {1: 27, 2: 15, 3: 17}
    assert set(pv["metric"]) == {"ncc", "ssim", "psnr", "tncc", "tncg"}
    assert set(pv["group"]) <= {"traditional", "deep", "ablation", "reference"}
    assert set(pv["method_id"]) <= RUN_IDS
    assert not pv.duplicated(["table", "dataset", "row", "metric"]).any()
    assert pv["value"].notna().all()
    for _, r in pv.iterrows():
        assert re.fullmatch(rf"PCReg-Net paper, Table {r['table']}, row '{re.escape(r['row'])}', column '.+'",
                            r["source"])


def test_key_values(pv):
    assert paper_value(1, "fire-reg-256", "pcreg_net", "ncc") == 0.991
    assert paper_value(1, "fire-reg-256", "pcreg_net", "psnr") == 43.40
    assert paper_value(1, "fire-reg-256", "identity", "ncc") == 0.762
    assert paper_value(1, "fire-reg-256", "horn_schunck", "ssim") == 0.506
    assert paper_value(2, "fire-reg-256", "pcreg_net_single_stage", "psnr") == 34.56
    assert paper_value(3, "orpam-4k", "pcreg_net", "ncc") == 0.968
    assert paper_value(3, "orpam-temporal-26k", "pcreg_net", "tncc") == 0.964
    assert paper_value(3, "orpam-4k", "pcreg_net", "tncc") is None  # printed as a dash
    odd = pv[(pv["table"] == 3) & (pv["row"] == "Odd-only ref")]
    assert len(odd) == 1 and odd.iloc[0]["metric"] == "tncc" and odd.iloc[0]["value"] == 0.963
    assert odd.iloc[0]["method_id"] == "" and odd.iloc[0]["group"] == "reference"
    sas = pv[pv["row"] == "SAS-Net [17]"]
    assert len(sas) == 3 and (sas["method_id"] == "").all()


def test_table2_full_model_repeats_table1(pv):
    t1 = pv[(pv.table == 1) & (pv.method_id == "pcreg_net")].set_index("metric")["value"]
    t2 = pv[(pv.table == 2) & (pv.row == "Full model")].set_index("metric")["value"]
    assert t1.to_dict() == t2.to_dict()


def test_printed_decimals(pv):
    psnr = pv[pv.metric == "psnr"]
    assert (psnr["decimals"] == 2).all() and (pv[pv.metric != "psnr"]["decimals"] == 3).all()

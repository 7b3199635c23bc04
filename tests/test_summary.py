"""The one-page summary: ranking by geometric error, reference rows, verdicts, marks, best values, conclusion."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from helpers.evalfakes import write_run  # noqa: E402

from pcreg.reporting.summary import (  # noqa: E402
    OWN_MARK,
    summarize_dataset,
    to_markdown,
    to_text,
    write_summary,
)
from pcreg.reporting.training_status import with_status  # noqa: E402

N = 8


def _runs(root: Path, *, with_gt: bool = True, gap: float = 4.0):
    rng = np.random.default_rng(0)
    tre = rng.uniform(10, 20, N)
    ncc = rng.uniform(0.6, 0.7, N)
    runs = [write_run(root, "identity", "reference", {"ncc": ncc, "tre_orig_px": tre}, label="Unregistered")]
    if with_gt:
        runs.append(write_run(root, "ground_truth", "reference", {"ncc": ncc + 0.2, "tre_orig_px": tre * 0.01},
                              label="perfect registration (ground truth)"))
    runs += [
        write_run(root, "syn", "traditional", {"ncc": ncc + 0.1, "tre_orig_px": tre - 8}, label="SyN"),
        write_run(root, "sift", "traditional", {"ncc": ncc + 0.05, "tre_orig_px": tre - 8 + gap}, label="SIFT",
                  failed=np.array([True] + [False] * (N - 1))),
        write_run(root, "pcreg_net", "deep", {"ncc": ncc + 0.3}, label="PCReg-Net", trainable=True),
        write_run(root, "mine", "traditional", {"ncc": ncc + 0.02, "tre_orig_px": tre - 1}, label="Mine"),
        write_run(root, "pcreg_net_no_aux", "ablation", {"ncc": ncc}, label="w/o aux"),
    ]
    # the user's method is brought by import path (not one of baselines/ or pcreg/)
    runs[-2] = type(runs[-2])(**{**runs[-2].__dict__, "method": "helpers.bad_methods:Swapped"})
    model = root / "pcreg_net" / "model"
    model.mkdir(parents=True)
    (model / "model.json").write_text(json.dumps({"converged": False, "steps": 10, "stop_reason": "budget",
                                                  "did_not_learn": True}))
    tables = root / "tables"
    tables.mkdir()
    pd.DataFrame({"method": ["fixed-copy", "identity", "syn", "sift", "pcreg_net", "mine"],
                  "verdict": ["copies fixed?", "uses moving", "uses moving (geometry)", "uses moving (geometry)",
                              "copies fixed?", "uses moving (geometry)"]}).to_csv(tables / "audit_d.csv", index=False)
    pd.DataFrame({"run": ["gt_warp", "syn", "pcreg_net"], "verdict": ["registers", "registers", "synthesises"]}) \
        .to_csv(tables / "fidelity_d.csv", index=False)
    return with_status(runs), tables


def test_ranked_by_tre_with_reference_rows_verdicts_and_marks(tmp_path: Path) -> None:
    runs, tables = _runs(tmp_path)
    s = summarize_dataset("d", runs, audit_csv=tables / "audit_d.csv", fidelity_csv=tables / "fidelity_d.csv",
                          n_boot=200)
    ids = [r["run"] for r in s.rows]
    assert s.geo == "tre_orig_px" and "pcreg_net_no_aux" not in ids  # ablations stay in their own table
    assert ids == ["ground_truth", "syn", "sift", "mine", "identity", "pcreg_net"]  # by TRE, image-only last
    ranks = {r["run"]: r["rank"] for r in s.rows}
    assert ranks == {"ground_truth": "", "syn": 1, "sift": 2, "mine": 3, "identity": "", "pcreg_net": ""}
    row = {r["run"]: r for r in s.rows}
    assert row["pcreg_net"]["audit"] == "copies fixed?" and row["pcreg_net"]["fidelity"] == "synthesises"
    # did not learn, and only that: a run that never learned is not also "stopped by its budget" (†)
    assert row["pcreg_net"]["label"] == "PCReg-Net ‡ did not learn" and row["pcreg_net"]["did_not_learn"]
    assert row["sift"]["n_failed"] == 1 and row["mine"]["own"] and not row["syn"]["own"]
    assert np.isfinite(row["syn"]["tre_orig_px_ci_low"]) and row["syn"]["tre_orig_px_ci_low"] <= \
        row["syn"]["tre_orig_px_mean"] <= row["syn"]["tre_orig_px_ci_high"]
    text = s.conclusion
    assert text.startswith("On d, SyN registers best: TRE")
    assert "Its lead over SIFT is significant" in text  # 8 units, every difference the same sign
    assert "PCReg-Net ‡ did not learn synthesises rather than registers" in text
    assert "Your method Mine ranks 3 of 3" in text and "SIFT 1/8" in text


def test_a_close_runner_up_is_descriptive_only(tmp_path: Path) -> None:
    runs, tables = _runs(tmp_path, gap=0.0)  # SIFT's errors equal SyN's: no difference to test
    s = summarize_dataset("d", runs, audit_csv=tables / "audit_d.csv", n_boot=100)
    assert "descriptive only" in s.conclusion


def test_formats_mark_best_values_directions_and_the_users_method(tmp_path: Path) -> None:
    runs, tables = _runs(tmp_path, with_gt=False)  # no perfect-registration row: handled
    s = summarize_dataset("d", runs, audit_csv=tables / "audit_d.csv", fidelity_csv=tables / "fidelity_d.csv",
                          n_boot=100)
    md = to_markdown([s], "t")
    assert "TRE (orig. px) ↓" in md and "NCC ↑" in md and "Runtime (s, median) ↓" in md
    syn_line = next(line for line in md.splitlines() if line.startswith("| 1 | SyN"))
    assert "| **" in syn_line  # SyN's TRE is the best of the methods
    pcreg_line = next(line for line in md.splitlines() if "PCReg-Net" in line and line.startswith("|"))
    assert "**0.9" in pcreg_line or "**0.8" in pcreg_line  # the best NCC (reference rows excluded)
    assert f"Mine {OWN_MARK}" in md
    out = write_summary([s], tmp_path / "summary", tmp_path / "fragment.html")
    html = (tmp_path / "summary.html").read_text()
    assert "class='own'" in html and "<b>" in html and html.startswith("<!DOCTYPE html>")
    assert "<html" not in (tmp_path / "fragment.html").read_text()
    assert len(out) == 5 and "synthesises" in (tmp_path / "summary.txt").read_text()
    assert to_text([s]).count("\n") < 15  # compact


def test_without_a_geometric_metric_ranks_by_ncc_and_says_so(tmp_path: Path) -> None:
    a = write_run(tmp_path, "identity", "reference", {"ncc": np.full(N, 0.5)}, label="Unregistered")
    b = write_run(tmp_path, "demons", "traditional", {"ncc": np.full(N, 0.7)}, label="Demons")
    s = summarize_dataset("d", [a, b], n_boot=50)
    assert s.geo == "" and s.rows[0]["run"] == "demons" and "scores the highest NCC" in s.conclusion
    assert any("No geometric metric" in n for n in s.notes)

"""The workflow writes every table and figure of the evaluation, and the HTML report bundles them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent

TINY = {
    "seed": 1,
    "shards": 1,
    "device": "cpu",
    "stats": {"n_boot": 200},
    "audit": {"pairs": 3},
    "figures": {"qualitative_pairs": 1},
    "datasets": {
        "fundus": {"type": "synthetic-fundus", "paper_reference": "fire-reg-256",
                   "params": {"image_size": 32, "crop_px": 48, "pairs": {"train": 1, "val": 1, "test": 4}}},
        "orpam": {"type": "synthetic-orpam", "paper_reference": "orpam-temporal-26k",
                  "params": {"height": 32, "width": 16, "sequences": {"train": 1, "val": 1, "test": 1},
                             "frames": 3}},
    },
    "methods": {"identity": {"group": "reference"}},
}


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory",
                           str(workdir), *args], capture_output=True, text=True)


def test_dry_run_lists_the_conditional_tables(tmp_path):
    cfg = tmp_path / "c.yaml"
    spec = dict(TINY, methods={"identity": {"group": "reference"},
                               "identity_abl": {"method": "identity", "group": "ablation", "datasets": ["fundus"]}})
    cfg.write_text(yaml.safe_dump(spec))
    proc = _snakemake(tmp_path, "-n", "all", "--configfile", str(cfg))
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    assert "results/tables/table3_orpam.md" in out and "results/tables/table3_fundus.md" not in out
    assert "results/tables/ablation_fundus.md" in out and "results/tables/ablation_orpam.md" not in out
    assert "results/fundus/identity_abl/audit.csv" in out


@pytest.mark.slow
def test_workflow_writes_every_table_figure_and_the_report(tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    proc = _snakemake(tmp_path, "--cores", "2", "all", "--configfile", str(cfg))
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = tmp_path / "results"
    for d in ("fundus", "orpam"):
        for stem in (d, f"table1_{d}", f"stats_{d}", f"geometry_{d}", f"audit_{d}"):
            for ext in ("csv", "md", "tex", "html"):
                assert (res / "tables" / f"{stem}.{ext}").stat().st_size > 50, stem
        for fig in ("qualitative", "boxplots", "speed", "fire_success", "training"):
            assert (res / "figures" / f"{d}_{fig}.png").stat().st_size > 5000, fig
        audit = pd.read_csv(res / "tables" / f"audit_{d}.csv").set_index("method")
        assert audit.loc["fixed-copy", "ncc_normal"] == pytest.approx(1.0)
        assert audit.loc["identity", "retained_shuffled"] == pytest.approx(0.0, abs=1e-9)
    assert "NCC (paper, FIRE-Reg-256)" in (res / "tables" / "table1_fundus.md").read_text()
    assert "TNCC (paper, OR-PAM-Reg-Temporal-26K)" in (res / "tables" / "table3_orpam.md").read_text()
    report = _snakemake(tmp_path, "--report", str(res / "report.html"), "--configfile", str(cfg))
    assert report.returncode == 0, report.stderr[-2000:]
    html = (res / "report.html").read_text()
    assert "audit_fundus.html" in html and "orpam_fire_success.png" in html

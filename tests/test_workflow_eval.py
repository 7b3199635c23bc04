"""Which evaluation tables the workflow plans (the full run is checked in test_workflow.py)."""

from __future__ import annotations

import yaml
from _workflow import run_snakemake

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


def test_dry_run_lists_the_conditional_tables(tmp_path):
    cfg = tmp_path / "c.yaml"
    spec = dict(TINY, methods={"identity": {"group": "reference"},
                               "identity_abl": {"method": "identity", "group": "ablation", "datasets": ["fundus"]}})
    cfg.write_text(yaml.safe_dump(spec))
    proc = run_snakemake(tmp_path, "-n", "all", "--configfile", str(cfg))
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    assert "results/tables/table3_orpam.md" in out and "results/tables/table3_fundus.md" not in out
    assert "results/tables/ablation_fundus.md" in out and "results/tables/ablation_orpam.md" not in out
    assert "results/fundus/identity_abl/audit.csv" in out

"""The example external package (examples/external-method): DIS flow's convention, and its config in the workflow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers.pairs import retina_crop
from helpers.workflow import ROOT, run_snakemake

from pcreg.reporting.outputs import ALWAYS_TABLES, table_stem
from pcreg.warp import shift_field, warp_image

EXAMPLE = ROOT / "examples" / "external-method"
sys.path.insert(0, str(EXAMPLE / "src"))  # what `pip install -e examples/external-method` puts on the path


def test_dis_flow_recovers_a_known_shift_in_the_suite_convention():
    from pcreg_dis_flow import DISFlow

    from pcreg.methods.registry import build_method, run_method

    fixed = retina_crop(96, seed=1)
    truth = shift_field(fixed.shape, dx=3.0, dy=-2.0)  # moving content shifted right 3 and up 2: u = (-2, +3)
    moving = warp_image(fixed, -truth)  # moving(p) = fixed(p - u), so fixed(p) = moving(p + u)
    method = build_method("pcreg_dis_flow:DISFlow")
    assert isinstance(method, DISFlow)
    result = run_method(method, moving, fixed)
    inner = result.field[:, 16:-16, 16:-16]
    assert np.median(inner[0]) == pytest.approx(-2.0, abs=0.25)
    assert np.median(inner[1]) == pytest.approx(3.0, abs=0.25)
    inner_err = np.abs(result.image - fixed)[16:-16, 16:-16].mean()
    assert inner_err < 0.5 * np.abs(moving - fixed)[16:-16, 16:-16].mean()


def _installed(site):
    """A dist-info declaring the example's entry point, as `pip install` writes it."""
    dist = site / "pcreg_dis_flow-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: pcreg-dis-flow\nVersion: 0.1.0\n")
    import tomllib

    declared = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]["entry-points"]
    lines = [f"{name} = {target}" for name, target in declared["pcreg_bench.methods"].items()]
    (dist / "entry_points.txt").write_text("\n".join(["[pcreg_bench.methods]", *lines]) + "\n")


@pytest.mark.slow
def test_example_config_runs_through_the_workflow(tmp_path, monkeypatch):
    """config/external-example.yaml: entry point, import path and a precomputed folder in every table and the audit."""
    _installed(tmp_path / "site")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path / "site"), str(EXAMPLE / "src"), str(ROOT)]))
    config = yaml.safe_load((ROOT / "config" / "external-example.yaml").read_text())
    config["stats"]["n_boot"] = 200
    cfg = tmp_path / "example.yaml"
    cfg.write_text(yaml.safe_dump(config))
    ds = "synthetic-fundus"
    proc = run_snakemake(tmp_path, "--cores", "2", f"data/{ds}/dataset.json", "--configfile", str(cfg))
    assert proc.returncode == 0, proc.stderr[-3000:]
    for cmd in ([sys.executable, "-m", "pcreg", "export", ds, "external/export", "--configfile", str(cfg)],
                [sys.executable, str(EXAMPLE / "run_outside.py"), "external/export", "external/dis-precomputed"]):
        out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-2000:]
    proc = run_snakemake(tmp_path, "--cores", "2", "all", "--configfile", str(cfg))
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = tmp_path / "results"
    runs = ["dis_flow", "dis_flow_fast", "dis_precomputed"]
    dis = pd.read_csv(res / ds / "dis_flow" / "pairs.csv")
    pre = pd.read_csv(res / ds / "dis_precomputed" / "pairs.csv")
    ident = pd.read_csv(res / ds / "identity" / "pairs.csv")
    assert not dis["failed"].any() and not pre["failed"].any()
    assert dis["tre_px"].mean() < ident["tre_px"].mean()  # DIS registers
    # Outside on the 16-bit PNGs (a different quantisation path to DIS's 8-bit input), inside on the arrays.
    np.testing.assert_allclose(pre["tre_px"], dis["tre_px"], atol=0.5)
    assert pre["runtime_s"].notna().all()  # from runtimes.csv
    labels = {"dis_flow": "DIS optical flow", "dis_flow_fast": "DIS flow (fast preset)",
              "dis_precomputed": "DIS flow (precomputed)"}
    for kind in ALWAYS_TABLES:
        text = Path(table_stem(kind, ds, res / "tables") + ".md").read_text()
        for r in runs:
            assert labels[r] in text, (kind, r)
    audit = pd.read_csv(table_stem("audit", ds, res / "tables") + ".csv").set_index("method")
    for r in runs:  # the precomputed run was audited on the exported audit inputs, not skipped
        assert np.isfinite(audit.loc[r, ["ncc_blank", "ncc_shuffled"]].astype(float)).all()
    report = run_snakemake(tmp_path, "--report", str(res / "report.html"), "--configfile", str(cfg))
    assert report.returncode == 0, report.stderr[-2000:]

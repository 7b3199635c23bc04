"""The Snakemake workflow end to end on a tiny config, and the determinism of a run."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers.workflow import ROOT, run_snakemake
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from pcreg.config import validate_params
from pcreg.datasets import PreparedDataset, get_dataset_type
from pcreg.evaluation.scoring import evaluate_method
from pcreg.methods.runner import register_shard, shard_indices
from pcreg.reporting.outputs import (
    ALWAYS_TABLES,
    LANDMARK_PLOTS,
    PLOTS,
    TABLE_EXTS,
    figure_path,
    summary_stem,
    table_stem,
)

TINY = {
    "seed": 3,
    "shards": 2,
    "device": "cpu",
    "stats": {"n_boot": 200},
    "audit": {"pairs": 3},
    "figures": {"qualitative_pairs": 1},
    "datasets": {
        "fundus": {"type": "synthetic-fundus", "paper_reference": "fire-reg-256",
                   "params": {"image_size": 32, "pairs": {"train": 2, "val": 1, "test": 3}}},
        "orpam": {"type": "synthetic-orpam", "paper_reference": "orpam-temporal-26k",
                  "params": {"height": 32, "width": 16, "sequences": {"train": 1, "val": 1, "test": 2},
                             "frames": 2}},
        # the user's own pairs: the hand-made example folder (moving/, fixed/, landmarks/)
        "pairs": {"type": "folder",
                  "params": {"path": str(ROOT / "examples" / "folder-pairs"), "image_size": [64, 64],
                             "fractions": {"train": 0.5, "val": 0.0, "test": 0.5}}},
    },
    "methods": {"identity": {"group": "reference"}},
}


def test_shards_cover_every_pair_once():
    for n, k in ((7, 3), (2, 2), (5, 1), (3, 5)):
        idx = np.concatenate([shard_indices(n, s, k) for s in range(k)])
        assert sorted(idx.tolist()) == list(range(n))


def test_runs_are_deterministic(tmp_path):
    module = get_dataset_type("synthetic-fundus")
    params = validate_params(module, TINY["datasets"]["fundus"]["params"], "t")
    module.prepare(tmp_path / "d", "d", params, 0)
    spec = {"id": "identity", "method": "identity", "params": {}}
    tables = []
    for run in ("a", "b"):
        shards = [register_shard(tmp_path / "d", spec, s, 2, tmp_path / run / f"{s}.npz", seed=0, threads=1)
                  for s in range(2)]
        tables.append(pd.read_csv(evaluate_method(tmp_path / "d", shards, tmp_path / run)).drop(columns="runtime_s"))
    pd.testing.assert_frame_equal(tables[0], tables[1])
    assert len(tables[0]) == 3 and tables[0]["tre_px"].notna().all()


@pytest.mark.slow
def test_workflow_end_to_end(tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    proc = run_snakemake(tmp_path, "--cores", "2", "all", "--configfile", str(cfg))
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = tmp_path / "results"
    for name in ("fundus", "orpam", "pairs"):
        for ext in ("csv", "md", "tex"):
            assert Path(f"{table_stem('summary', name, res / 'tables')}.{ext}").is_file()
        assert Path(figure_path("qualitative", name, res / "figures")).stat().st_size > 1000
        pairs = pd.read_csv(res / name / "identity" / "pairs.csv")
        registered = np.load(res / name / "identity" / "registered.npy")
        test = PreparedDataset(tmp_path / "data" / name).split("test")
        assert list(pairs["pair_id"]) == test.pair_ids
        for i, row in pairs.iterrows():
            fixed = np.asarray(test.fixed[i])
            assert abs(row["ssim_uniform7"] - structural_similarity(registered[i], fixed, data_range=1.0)) < 1e-4
            gaussian = structural_similarity(registered[i], fixed, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                             use_sample_covariance=False)
            assert abs(row["ssim"] - gaussian) < 1e-4
            assert abs(row["psnr"] - peak_signal_noise_ratio(fixed, registered[i], data_range=1.0)) < 1e-4
    assert pd.read_csv(res / "pairs" / "identity" / "pairs.csv")["tre_px"].notna().all()  # landmarks were read
    # every evaluation table and figure, and the report
    for d in ("fundus", "orpam"):
        for kind in ALWAYS_TABLES:
            for ext in TABLE_EXTS:
                assert Path(f"{table_stem(kind, d, res / 'tables')}.{ext}").stat().st_size > 50, kind
        for fig in ("qualitative", *PLOTS):
            if fig in LANDMARK_PLOTS and d == "orpam":  # no landmarks: no placeholder figure
                assert not Path(figure_path(fig, d, res / "figures")).exists()
                continue
            assert Path(figure_path(fig, d, res / "figures")).stat().st_size > 5000, fig
        audit = pd.read_csv(table_stem("audit", d, res / "tables") + ".csv").set_index("method")
        assert audit.loc["fixed-copy", "ncc_normal"] == pytest.approx(1.0)
        assert audit.loc["identity", "retained_shuffled"] == pytest.approx(0.0, abs=1e-9)
        # content fidelity: synthetic datasets carry feature masks; the folder example has none
        fidelity = pd.read_csv(table_stem("fidelity", d, res / "tables") + ".csv").set_index("run")
        assert fidelity.loc["gt_warp", "verdict"] == "keeps content"
        assert fidelity.loc["fixed_copy", "verdict"] == "synthesises"
        # The blurred / median-filtered oracles are rows; whether they fail is checked at realistic sizes
        # (tests/test_fidelity.py, 64 px and up): at this test's 32 px the ±3 px search is fooled (docs/DATASETS.md).
        assert {"fixed_blur", "fixed_median"} <= set(fidelity.index)
        assert fidelity["placement_px_mean"].notna().any()
        assert Path(figure_path("fidelity", d, res / "figures")).stat().st_size > 5000
        assert pd.read_csv(res / d / "identity" / "pairs.csv")["kept"].notna().any()
    assert not Path(table_stem("fidelity", "pairs", res / "tables") + ".csv").exists()
    assert "NCC (paper, FIRE-Reg-256)" in Path(table_stem("table1", "fundus", res / "tables") + ".md").read_text()
    table3 = Path(table_stem("table3", "orpam", res / "tables") + ".md").read_text()
    assert "TNCC (paper, OR-PAM-Reg-Temporal-26K)" in table3
    report = run_snakemake(tmp_path, "--report", str(res / "report.html"), "--configfile", str(cfg))
    assert report.returncode == 0, report.stderr[-2000:]
    html = (res / "report.html").read_text()
    assert "audit_fundus.html" in html and "fundus_fire_success.png" in html and "fidelity_orpam.html" in html
    assert "orpam_fire_success.png" not in html  # no placeholder figure
    assert "pcreg-bench: the run" in html and "On fundus, only reference rows" in html  # landing page: the summary
    # the summary: one section per dataset, the Unregistered row, the verdicts; printed at the end of the run
    summary = Path(summary_stem(res) + ".md").read_text()
    assert all(f"## {d}" in summary for d in ("fundus", "orpam", "pairs")) and "Unregistered" in summary
    rows = pd.read_csv(summary_stem(res) + ".csv")
    assert set(rows["dataset"]) == {"fundus", "orpam", "pairs"} and (rows["audit"] != "—").all()
    assert (rows.loc[rows["dataset"] != "pairs", "fidelity"] != "—").all()  # the folder example has no masks
    # the run ends with the compact summary, after a short `all` job (its inputs: the summary and the manifest)
    tail = proc.stderr[proc.stderr.rindex("localrule all:"):]
    assert "== fundus" in tail and len(tail[: tail.index("== fundus")]) < 1500, tail[:3000]
    manifest = json.loads((res / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["packages"]["numpy"] and "datasets" in manifest["config"]
    # A second invocation has nothing left to do.
    again = run_snakemake(tmp_path, "--cores", "2", "all", "--configfile", str(cfg), "-n")
    assert "Nothing to be done" in again.stdout + again.stderr


def test_bad_config_fails_the_workflow_with_the_key(tmp_path):
    bad = dict(TINY, shards=0)
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump(bad))
    proc = run_snakemake(tmp_path, "-n", "all", "--configfile", str(cfg))
    assert proc.returncode != 0
    assert "config error at shards: 0 is less than the minimum of 1" in proc.stderr + proc.stdout


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
    assert "results/figures/fundus_fire_success.png" in out and "results/figures/orpam_fire_success.png" not in out
    assert "results/summary.md" in out


@pytest.mark.slow
def test_changing_a_folder_image_re_prepares_and_rescores(tmp_path):
    """Issue 12 item 11: prepare depends on the folder's files, not only on the config."""
    import os
    import shutil

    src = tmp_path / "src"
    shutil.copytree(ROOT / "examples" / "folder-pairs", src)
    config = {"seed": 0, "shards": 1, "device": "cpu",
              "datasets": {"mine": {"type": "folder", "params": {"path": str(src), "image_size": [64, 64]}}},
              "methods": {"identity": {"group": "reference"}, "sift": {"group": "traditional"}}}
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(config))
    work = tmp_path / "work"
    targets = ["results/mine/identity/pairs.csv", "results/mine/sift/pairs.csv"]
    first = run_snakemake(work, *targets, "--cores", "1", "--configfile", str(cfg))
    assert first.returncode == 0, first.stderr[-3000:]
    before = pd.read_csv(work / targets[0]).set_index("pair_id")
    assert before.loc["pair01", "ncc"] < 0.99
    # Replace a moving image by its fixed image, keeping an OLD modification time (as cp -p or a restore would).
    moving = src / "moving" / "pair01.png"
    old = moving.stat()
    shutil.copyfile(src / "fixed" / "pair01.png", moving)
    os.utime(moving, ns=(old.st_atime_ns, old.st_mtime_ns - 10**9))
    second = run_snakemake(work, *targets, "--cores", "1", "--configfile", str(cfg))
    assert second.returncode == 0, second.stderr[-3000:]
    assert "rule prepare:" in second.stderr and "rule evaluate:" in second.stderr
    after = pd.read_csv(work / targets[0]).set_index("pair_id")
    assert after.loc["pair01", "ncc"] == pytest.approx(1.0)  # identity on a pair of two equal images
    assert (pd.read_csv(work / targets[1])["ncc"].notna()).all()
    # Nothing changed since: nothing reruns.
    third = run_snakemake(work, *targets, "--cores", "1", "--configfile", str(cfg))
    assert third.returncode == 0 and "Nothing to be done" in third.stdout + third.stderr


@pytest.mark.slow
def test_after_kill_9_unlock_then_rerun_completes(tmp_path):
    """Issue 12 item 14: a killed Snakemake leaves its lock; the failing job path and README give the way out."""
    import os
    import signal
    import subprocess
    import sys
    import time

    config = {"seed": 0, "shards": 1, "device": "cpu",
              "datasets": {"mine": {"type": "folder", "params": {"path": str(ROOT / "examples" / "folder-pairs"),
                                                                  "image_size": [64, 64]}}},
              "methods": {"identity": {"group": "reference"}}}
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(config))
    work = tmp_path / "work"
    args = ["results/mine/identity/pairs.csv", "--cores", "1", "--configfile", str(cfg)]
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory",
                             str(work), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    locks = work / ".snakemake" / "locks"
    deadline = time.time() + 60
    while time.time() < deadline and not (locks.is_dir() and any(locks.iterdir())):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # only the process group started here
    proc.wait()
    locked = run_snakemake(work, *args)
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
    assert run_snakemake(work, *args, "--unlock").returncode == 0
    done = run_snakemake(work, *args)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (work / "results" / "mine" / "identity" / "pairs.csv").is_file()


def test_a_failed_job_prints_the_resume_and_unlock_hint(tmp_path):
    config = {"datasets": {"mine": {"type": "folder", "params": {"path": str(tmp_path / "missing")}}},
              "methods": {"identity": {"group": "reference"}}}
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(config))
    failed = run_snakemake(tmp_path / "work", "data/mine/dataset.json", "--cores", "1", "--configfile", str(cfg))
    assert failed.returncode != 0
    assert "Rerunning the same command resumes" in failed.stderr and "--unlock" in failed.stderr

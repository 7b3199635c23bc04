"""Result figures and the CLI commands that write the tables and figures of a dataset."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
from helpers.evalfakes import standard_runs

from pcreg.cli import main
from pcreg.reporting.figures import checkerboard
from pcreg.reporting.outputs import TABLE_EXTS, curves_path, figure_path, table_stem
from pcreg.reporting.style import KNOWN_COLORS, method_color
from pcreg.specs import write_spec


def test_method_colors_are_fixed_distinct_and_stable():
    known = [c for k, c in KNOWN_COLORS.items()]
    assert len(set(known)) == len(known)
    assert method_color("pcreg_net") == "#d62728"
    assert method_color("some_new_run") == method_color("some_new_run")
    assert method_color("some_new_run").startswith("#") and len(method_color("some_new_run")) == 7


def test_checkerboard_alternates_tiles():
    a, b = np.zeros((8, 8)), np.ones((8, 8))
    cb = checkerboard(a, b, tiles=4)
    assert cb[0, 0] == 0 and cb[0, 2] == 1 and cb[2, 0] == 1 and cb[2, 2] == 0
    assert cb.sum() == 32


def _runs_json(runs, path):
    """The run-list file the workflow writes for the table and figure commands."""
    return write_spec(path, [{"id": r.id, "label": r.label, "group": r.group, "pairs_csv": str(r.pairs_csv),
                              "method": r.method, "trainable": r.trainable, "params": r.params} for r in runs])


def test_plots_command_writes_every_figure(tmp_path):
    runs = standard_runs(tmp_path / "res")
    log = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [1.0, 0.5, 0.3], "val_loss": [1.1, 0.6, 0.4],
                        "val_ncc": [0.5, 0.7, 0.8], "val_ssim": [0.4, 0.6, 0.7], "val_psnr": [20, 24, 26],
                        "lr": [1e-3] * 3, "seconds": [1.0] * 3})
    (runs[2].result_dir / "model").mkdir()
    log.to_csv(runs[2].result_dir / "model" / "train_log.csv", index=False)
    out, run_list = tmp_path / "figures", _runs_json(runs, tmp_path / "runs.json")
    assert main(["plots", "--dataset", "d", "--runs", run_list, "--out-dir", str(out)]) == 0
    sizes = {}
    for name in ("boxplots", "speed", "fire_success", "training"):
        img = mpimg.imread(figure_path(name, "d", out))
        sizes[name] = img.shape
        assert img.ndim == 3 and img.shape[0] > 200 and img.std() > 0.01  # not a blank canvas
    # FIRE curves: one panel per category S, P, A plus 'all' (wide); training: two panels.
    assert sizes["fire_success"][1] > 3 * sizes["fire_success"][0]
    # Without a train log there is a one-panel message figure instead.
    (runs[2].result_dir / "model" / "train_log.csv").unlink()
    assert main(["plots", "--dataset", "d", "--runs", run_list, "--out-dir", str(out)]) == 0
    assert mpimg.imread(figure_path("training", "d", out)).shape[1] < sizes["training"][1]


def test_aggregate_and_ablation_commands(tmp_path):
    runs = standard_runs(tmp_path / "res")
    out = tmp_path / "tables"
    args = ["--dataset", "d", "--runs", _runs_json(runs, tmp_path / "runs.json"), "--paper-reference", "fire-reg-256",
            "--reference", "pcreg_net"]
    assert main(["aggregate", *args, "--out-dir", str(out), "--n-boot", "200", "--seed", "5"]) == 0
    for kind in ("summary", "table1", "stats", "geometry"):
        for ext in TABLE_EXTS:
            assert Path(f"{table_stem(kind, 'd', out)}.{ext}").stat().st_size > 100
    assert Path(curves_path("d", out)).is_file()
    stats = pd.read_csv(table_stem("stats", "d", out) + ".csv")
    assert stats["p_holm"].notna().any()
    assert main(["ablation", *args, "--out-stem", str(out / "ablation_d")]) == 0
    assert "w/o Feature injection" in (out / "ablation_d.md").read_text()
    (tmp_path / "bad.json").write_text("not json")
    for bad in ("bad.json", "none.json"):  # not JSON, missing: one clear line, exit status 2
        bad_args = ["--dataset", "d", "--runs", str(tmp_path / bad), "--reference", "pcreg_net"]
        assert main(["aggregate", *bad_args, "--out-dir", str(out)]) == 2

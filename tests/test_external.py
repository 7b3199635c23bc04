"""Methods from outside the suite: import paths / entry points, precomputed outputs, export and its round trip."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from pcreg.cli import main
from pcreg.config import validate_config, validate_params
from pcreg.datasets import PreparedDataset, get_dataset_type
from pcreg.errors import UserError
from pcreg.evaluation.scoring import evaluate_method
from pcreg.export import export_dataset
from pcreg.field_conventions import invert_push_forward, to_suite_field
from pcreg.image_io import read_image
from pcreg.methods.registry import Method, build_method, get_method_class, run_method
from pcreg.methods.runner import register_shard
from pcreg.specs import write_spec
from pcreg.warp import identity_grid, shift_field

METRICS = ["ncc", "ssim", "psnr", "tre_px", "tre_orig_px", "epe_px", "folding_pct", "sdlogj", "failed"]
SMOKE_FUNDUS = {"image_size": 64, "pairs": {"train": 2, "val": 1, "test": 4}}


@pytest.fixture(scope="module")
def fundus(tmp_path_factory):
    """A smoke-sized synthetic-fundus dataset (landmarks and ground-truth fields)."""
    root = tmp_path_factory.mktemp("data") / "fundus"
    dtype = get_dataset_type("synthetic-fundus")
    dtype.prepare(root, "fundus", validate_params(dtype, SMOKE_FUNDUS, "params"), 0)
    return root


def _pairs_csv(data, spec, out, shards=1):
    files = [register_shard(data, spec, s, shards, out / "shards" / f"{s}.npz", seed=0, threads=1)
             for s in range(shards)]
    evaluate_method(data, files, out)
    return pd.read_csv(out / "pairs.csv", dtype={"pair_id": str})


def _run_outside(export_dir, out_dir, method_name, suffix, params=None, audit=False):
    """Register the exported test pairs (and audit inputs) with a built-in method outside the workflow.

    Writes fields/<id>.npy, runtimes.csv, and failed.csv for the pairs the method failed on.
    """
    method = build_method(method_name, params, seed=0)
    (out_dir / "fields").mkdir(parents=True)
    jobs = [("test", pid) for pid in pd.read_csv(export_dir / "test" / "pairs.csv", dtype={"pair_id": str})["pair_id"]]
    if audit:
        jobs += [("audit", aid) for aid in pd.read_csv(export_dir / "audit" / "pairs.csv")["audit_id"]]
    rows, failed = [], []
    for folder, pid in jobs:
        moving = read_image(export_dir / folder / "moving" / f"{pid}{suffix}")
        fixed = read_image(export_dir / folder / "fixed" / f"{pid}{suffix}")
        result = run_method(method, moving, fixed)
        rows.append({"pair_id": pid, "runtime_s": result.runtime_s})
        if result.failed:  # the method's own failure, declared with its reason
            failed.append({"pair_id": pid, "reason": result.reason})
        else:
            np.save(out_dir / "fields" / f"{pid}.npy", result.field)
    pd.DataFrame(rows).to_csv(out_dir / "runtimes.csv", index=False)
    pd.DataFrame(failed, columns=["pair_id", "reason"]).to_csv(out_dir / "failed.csv", index=False)


# --- registry: import paths and entry points ---------------------------------------------------------------

class ShiftByOne(Method):
    """A method defined outside baselines/: a constant one-pixel field."""

    name = "shift_by_one"
    PARAMS_SCHEMA = {"type": "object", "additionalProperties": False,
                     "properties": {"dy": {"type": "number", "default": 1.0}}}

    def register(self, moving, fixed):
        return type(self).result(moving.shape, self.params["dy"])

    @staticmethod
    def result(shape, dy):
        from pcreg.methods.registry import Registration

        return Registration(field=shift_field(shape, 0.0, dy))


class NotAMethod:
    pass


def test_import_path_resolves_and_validates_params():
    cls = get_method_class("test_external:ShiftByOne")
    assert cls is ShiftByOne
    config = validate_config({"datasets": {"d": {"type": "synthetic-fundus"}},
                              "methods": {"mine": {"method": "test_external:ShiftByOne", "params": {"dy": 2.0}}}})
    assert config["methods"]["mine"]["params"] == {"dy": 2.0}
    with pytest.raises(UserError, match=r"methods\.mine\.params\.dy"):
        validate_config({"datasets": {"d": {"type": "synthetic-fundus"}},
                         "methods": {"mine": {"method": "test_external:ShiftByOne", "params": {"dy": "x"}}}})


@pytest.mark.parametrize("target, message", [
    ("no_such_module_xyz:Thing", "cannot import module 'no_such_module_xyz'"),
    ("test_external:Missing", "module 'test_external' has no attribute 'Missing'"),
    ("test_external:NotAMethod", "is not a subclass of pcreg.methods.base.Method"),
    ("test_external:Method", "does not implement the Method interface"),
    ("no_such_name", "unknown method 'no_such_name'"),
])
def test_bad_method_names_give_one_line_naming_the_key(target, message):
    with pytest.raises(UserError) as err:
        validate_config({"datasets": {"d": {"type": "synthetic-fundus"}}, "methods": {"mine": {"method": target}}})
    text = str(err.value)
    assert text.startswith("config error at methods.mine.method: ") and message in text and "\n" not in text


def test_entry_point_group_is_searched(tmp_path, monkeypatch):
    """A package declaring [project.entry-points."pcreg_bench.methods"] is found by name (a dist-info on the path)."""
    dist = tmp_path / "extpkg-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: extpkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[pcreg_bench.methods]\nshift_one = test_external:ShiftByOne\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert get_method_class("shift_one") is ShiftByOne


# --- field conventions ----------------------------------------------------------------------------------------

def test_push_forward_inversion_recovers_the_pull_back_field():
    h, w = 48, 40
    grid = identity_grid((h, w))
    # A smooth push-forward field v on the moving grid (max |Dv| well below 1, so invertible).
    v = np.stack([2.0 * np.sin(grid[1] / 9.0) + 1.0, 1.5 * np.cos(grid[0] / 7.0) - 0.5])
    u, residual = invert_push_forward(v, iterations=200, tol=1e-6)
    assert residual < 1e-5
    # Inverse property in the interior: sending p + u(p) forward by v comes back to p.
    from scipy import ndimage

    back = np.stack([ndimage.map_coordinates(v[c], grid + u, order=1) for c in range(2)]) + u
    assert np.max(np.abs(back[:, 4:-4, 4:-4])) < 1e-3
    # A constant push-forward shift inverts exactly to its negative.
    u_const, _ = invert_push_forward(np.stack([np.full((h, w), 2.5), np.full((h, w), -1.0)]))
    np.testing.assert_allclose(u_const[0], -2.5, atol=1e-6)
    np.testing.assert_allclose(u_const[1], 1.0, atol=1e-6)


def test_conventions_convert_to_the_suite_field():
    shape = (20, 24)
    truth = shift_field(shape, dx=3.0, dy=-2.0)  # moving = fixed shifted by (+3, -2): u = (-2, +3)
    xy_last = np.moveaxis(truth[::-1], 0, -1)  # (H, W, 2) with (x, y) components
    np.testing.assert_allclose(to_suite_field(xy_last, shape, order="x-y"), truth)
    np.testing.assert_allclose(to_suite_field(-truth, shape, direction="push-forward"), truth, atol=1e-5)
    with pytest.raises(ValueError, match="expected"):
        to_suite_field(np.zeros((2, 20, 20)), shape)
    with pytest.raises(ValueError, match="NaN"):
        to_suite_field(np.full((2, *shape), np.nan), shape)


# --- export and precomputed round trip ----------------------------------------------------------------------

def test_export_writes_images_ids_conventions_and_audit_inputs(fundus, tmp_path):
    out = export_dataset(fundus, tmp_path / "export", audit_pairs=3, seed=0)
    test = PreparedDataset(fundus).split("test")
    ids = pd.read_csv(out / "test" / "pairs.csv", dtype={"pair_id": str})["pair_id"].tolist()
    assert ids == test.pair_ids
    for i, pid in enumerate(ids):
        np.testing.assert_array_equal(np.load(out / "test" / "moving" / f"{pid}.npy"), test.moving[i])
        png = read_image(out / "test" / "fixed" / f"{pid}.png")
        assert np.max(np.abs(png - test.fixed[i])) <= 0.5 / 65535 + 1e-7
    assert not (out / "test" / "field").exists() and (out / "train" / "field").is_dir()
    lm = pd.read_csv(out / "landmarks.csv", dtype={"pair_id": str})
    assert set(lm["split"]) <= {"train", "val", "test"} and set(lm.loc[lm["split"] == "test", "pair_id"]) == set(ids)
    audit = pd.read_csv(out / "audit" / "pairs.csv")
    assert sorted(audit["condition"].unique()) == ["blank", "shuffled"] and len(audit) == 6
    assert "pull-back" in (out / "README.md").read_text()


def test_round_trip_through_export_gives_the_workflow_metrics(fundus, tmp_path):
    """SyN on the exported NPYs, outside the workflow, imported as precomputed = SyN inside the workflow.

    (SyN rather than SIFT: on the calibrated synthetic fundus SIFT fails on most smoke-sized pairs, which would
    make the comparison one of fallbacks.)
    """
    syn = {"reg_iterations": [20, 10, 0]}
    inside = _pairs_csv(fundus, {"id": "syn", "method": "syn", "params": syn}, tmp_path / "inside", shards=2)
    export = export_dataset(fundus, tmp_path / "export", splits=("test",), audit_pairs=3)
    _run_outside(export, tmp_path / "syn-npy", "syn", ".npy", syn, audit=True)
    spec = {"id": "ext", "method": "precomputed",
            "params": validate_params(get_method_class("precomputed"), {"path": str(tmp_path / "syn-npy")}, "p")}
    outside = _pairs_csv(fundus, spec, tmp_path / "outside")
    assert (~inside["failed"]).sum() >= 2
    cols = ["pair_id", *METRICS, "reason"]
    pd.testing.assert_frame_equal(outside[cols].fillna(""), inside[cols].fillna(""))
    # The audit too: SyN audited inside the workflow = its precomputed outputs for the exported audit inputs.
    from pcreg.evaluation.audit_run import audit_run

    audit_in = pd.read_csv(audit_run(fundus, {"id": "x", "method": "syn", "params": syn}, tmp_path / "a1.csv",
                                     n_pairs=3, seed=0))
    audit_out = pd.read_csv(audit_run(fundus, {**spec, "id": "x"}, tmp_path / "a2.csv", n_pairs=3, seed=0))
    pd.testing.assert_frame_equal(audit_out, audit_in)
    runtimes = pd.read_csv(tmp_path / "syn-npy" / "runtimes.csv", dtype={"pair_id": str})
    runtimes = runtimes[runtimes["pair_id"].isin(outside["pair_id"])]
    measured = outside.set_index("pair_id").loc[runtimes["pair_id"], "runtime_s"]
    np.testing.assert_allclose(measured, runtimes["runtime_s"])
    # The 16-bit PNG path, with a method continuous in its input (SIFT's keypoints can flip on a 1/65535 change):
    # Horn-Schunck on the quantised PNGs scores within a small tolerance of Horn-Schunck inside the workflow.
    hs = {"id": "hs", "method": "horn_schunck", "params": {"alpha": 1.0, "iterations": 30, "warps": 1}}
    inside = _pairs_csv(fundus, hs, tmp_path / "hs-inside")
    _run_outside(export, tmp_path / "hs-png", "horn_schunck", ".png", hs["params"])
    spec["params"] = {**spec["params"], "path": str(tmp_path / "hs-png")}
    png = _pairs_csv(fundus, spec, tmp_path / "png")
    cols = ["ncc", "ssim", "psnr", "tre_px", "epe_px"]
    # (the calibrated synthetic images are 8-bit quantised already, so 16 bits may even round-trip exactly)
    np.testing.assert_allclose(png[cols], inside[cols], atol=1e-3, rtol=1e-3)


def test_broken_precomputed_folder_fails_pairs_or_gives_one_line(fundus, tmp_path, capsys):
    test = PreparedDataset(fundus).split("test")
    ids, shape = test.pair_ids, test.moving.shape[1:]
    folder = tmp_path / "broken"
    (folder / "fields").mkdir(parents=True)
    for pid in ids[1:]:
        np.save(folder / "fields" / f"{pid}.npy", np.zeros((2, *shape), np.float32))
    spec = {"id": "ext", "method": "precomputed", "params": {"path": str(folder)}}
    pairs = _pairs_csv(fundus, spec, tmp_path / "out")
    assert pairs["failed"].tolist() == [True] + [False] * (len(ids) - 1)
    assert ids[0] in pairs.loc[0, "reason"] and "no precomputed output" in pairs.loc[0, "reason"]
    assert pairs["runtime_s"].isna().all()  # no runtimes.csv: the column is empty

    capsys.readouterr()
    for bad, message in ((np.zeros((2, 5, 5)), "expected (2,"), (np.full((2, *shape), np.nan), "NaN")):
        np.save(folder / "fields" / f"{ids[2]}.npy", bad)
        code = main(["register", "--data", str(fundus), "--run", write_spec(tmp_path / "spec.json", spec),
                     "--shard", "0", "--shards", "1",
                     "--out", str(tmp_path / "x.npz")])
        err = capsys.readouterr().err
        # The error is one line (after tqdm's progress bar, which ends in a carriage return).
        errors = [line[line.index("pcreg: error:"):] for line in err.splitlines() if "pcreg: error:" in line]
        assert code == 2 and "Traceback" not in err and len(errors) == 1
        assert f"{ids[2]}.npy" in errors[0] and message in errors[0]


def test_precomputed_images_png_and_tif(fundus, tmp_path):
    """Image outputs (16-bit PNG, float TIFF) are scored as images; a wrong-shape image is refused."""
    import tifffile

    from pcreg.image_io import write_png16

    test = PreparedDataset(fundus).split("test")
    folder = tmp_path / "imgs"
    (folder / "images").mkdir(parents=True)
    for i, pid in enumerate(test.pair_ids):
        if i % 2:
            write_png16(folder / "images" / f"{pid}.png", test.fixed[i])
        else:
            tifffile.imwrite(folder / "images" / f"{pid}.tif", np.asarray(test.fixed[i], np.float32))
    spec = {"id": "ext", "method": "precomputed", "params": {"path": str(folder)}}
    pairs = _pairs_csv(fundus, spec, tmp_path / "out")
    assert not pairs["failed"].any() and pairs["ncc"].min() > 0.999
    assert pairs["tre_px"].isna().all()  # an image-output method has no geometry metrics
    tifffile.imwrite(folder / "images" / f"{test.pair_ids[0]}.tif", np.zeros((3, 3), np.float32))
    with pytest.raises(UserError, match=r"\.tif: image has shape \(3, 3\)"):
        _pairs_csv(fundus, spec, tmp_path / "out2")


def test_export_command_resolves_a_config_dataset_name(fundus, tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(textwrap.dedent(f"""
        data_dir: {fundus.parent}
        audit: {{pairs: 2}}
        datasets: {{fundus: {{type: synthetic-fundus}}}}
        methods: {{identity: {{}}}}
    """))
    assert main(["export", "fundus", str(tmp_path / "e"), "--configfile", str(config), "--splits", "test"]) == 0
    assert len(pd.read_csv(tmp_path / "e" / "audit" / "pairs.csv")) == 4
    assert main(["export", "nope", str(tmp_path / "e"), "--configfile", str(config)]) == 2
    assert "neither a prepared dataset" in capsys.readouterr().err



def test_precomputed_is_audited_on_the_exported_audit_inputs(fundus, tmp_path):
    """With outputs for the audit ids the audit scores them; without, those conditions are unscored, not faked."""
    from pcreg.evaluation.audit_run import audit_run
    from pcreg.reporting.audit_table import audit_table
    from pcreg.reporting.tables import Run

    export = export_dataset(fundus, tmp_path / "export", splits=("test",), audit_pairs=3, seed=0)
    folder = tmp_path / "hs"
    _run_outside(export, folder, "horn_schunck", ".npy", {"alpha": 1.0, "iterations": 30, "warps": 1})
    spec = {"id": "ext", "method": "precomputed", "params": {"path": str(folder)}}
    partial = audit_run(fundus, spec, tmp_path / "partial.csv", n_pairs=3, seed=0)
    df = pd.read_csv(partial)
    assert df.loc[df["condition"] == "normal", "ncc"].notna().all()
    assert df.loc[df["condition"] != "normal", "ncc"].isna().all()
    runs = [Run("ext", "Ext", "traditional", tmp_path / "p.csv")]
    audit_table(fundus, runs, [partial], tmp_path / "audit_partial", "fundus", n_pairs=3, seed=0)
    table = pd.read_csv(tmp_path / "audit_partial.csv").set_index("method")
    assert table.loc["ext", "verdict"] == "not audited (outputs missing)"
    # Now with the audit inputs registered too: the same scores as Horn-Schunck audited inside the workflow.
    _run_outside(export, tmp_path / "hs-all", "horn_schunck", ".npy", {"alpha": 1.0, "iterations": 30, "warps": 1},
                 audit=True)
    spec["params"]["path"] = str(tmp_path / "hs-all")
    full = pd.read_csv(audit_run(fundus, spec, tmp_path / "full.csv", n_pairs=3, seed=0))
    hs = {"id": "ext", "method": "horn_schunck", "params": {"alpha": 1.0, "iterations": 30, "warps": 1}}
    inside = pd.read_csv(audit_run(fundus, hs, tmp_path / "inside.csv", n_pairs=3, seed=0))
    pd.testing.assert_frame_equal(full, inside)


def test_precomputed_is_audited_on_a_clustered_dataset_with_16_pairs(tmp_path):
    """The export and the audit draw donors from one pool (other clusters): every exported "other pair" input is
    the one the audit asks for, on 16 audited pairs of a dataset whose clusters repeat and whose sequence is empty
    (FIRE-Reg-256's patches of one photograph pair; the case where a donor pool by sequence broke the lookup)."""
    from pcreg.datasets.format import DatasetWriter
    from pcreg.evaluation import audit
    from pcreg.evaluation.audit_inputs import DONOR_GROUP, audit_cases
    from pcreg.evaluation.audit_run import audit_run

    data, rng, shape = tmp_path / "clustered", np.random.default_rng(0), (32, 32)
    with DatasetWriter(data, name="clustered", dataset_type="test", image_shape=shape,
                       split_sizes={"test": 20}, has_field=False) as writer:
        for i in range(20):
            img = ndimage.gaussian_filter(rng.random(shape), 2).astype(np.float32)
            img = (img - img.min()) / (img.max() - img.min())
            writer.add("test", f"p{i:02d}", img, np.roll(img, 1, axis=1), cluster=f"c{i // 4}")
    test = PreparedDataset(data).split("test")
    idx = audit.select_pairs(len(test), 16, 0)
    clusters = [str(test.manifest.at[int(i), "cluster"]) for i in idx]
    assert DONOR_GROUP == "cluster" and len(set(clusters)) < len(clusters)  # clusters repeat: the case that broke
    cases = [c for c in audit_cases(data, 16, 0) if c.condition == "shuffled"]
    donors = audit.derangement(16, 0, clusters)
    assert any(clusters[donors[k]] != clusters[k] for k in range(16))
    for k, case in enumerate(cases):  # the donor is the audit's donor, from another cluster
        assert np.array_equal(case.moving, np.asarray(test.moving[int(idx[donors[k]])], np.float32))
        assert clusters[donors[k]] != clusters[k]
    export = export_dataset(data, tmp_path / "export", splits=("test",), audit_pairs=16, seed=0)
    assert "cluster" in pd.read_csv(export / "test" / "pairs.csv").columns
    _run_outside(export, tmp_path / "id", "identity", ".npy", audit=True)
    spec = {"id": "ext", "method": "precomputed", "params": {"path": str(tmp_path / "id")}}
    df = pd.read_csv(audit_run(data, spec, tmp_path / "ext.csv", n_pairs=16, seed=0))
    assert df["pair_id"].nunique() == 16
    assert df["ncc"].notna().all()  # every condition found its exported input: none unscored


def test_export_leaves_out_landmarks_a_dataset_type_does_not_allow(fundus, tmp_path, monkeypatch):
    module = get_dataset_type("synthetic-fundus")
    monkeypatch.setattr(module, "EXPORT_LANDMARKS", False, raising=False)
    monkeypatch.setattr(module, "EXPORT_LANDMARKS_WHY", "license forbids redistribution", raising=False)
    out = export_dataset(fundus, tmp_path / "export", splits=("test",), audit_pairs=2)
    assert not (out / "landmarks.csv").exists()
    import json

    assert "license forbids" in json.loads((out / "export.json").read_text())["landmarks"]


EXTERNAL_MODULE = '''
from pcreg.methods.base import Method, Registration
import numpy as np


class Learner(Method):
    name = "learner"
    PARAMS_SCHEMA = {"type": "object", "additionalProperties": False,
                     "properties": {"epochs": {"type": "integer", "default": 1}}}

    def fit(self, train, val, workdir):
        pass

    def register(self, moving, fixed):
        return Registration(field=np.zeros((2, *moving.shape), np.float32))
'''


def test_workflow_gives_an_external_trainable_method_the_fit_and_gpu_rules(tmp_path):
    """An import-path class with fit() is a learned method to the workflow: fit, register_learned, a GPU."""
    import os
    import subprocess

    from helpers.workflow import ROOT

    (tmp_path / "ext_learner.py").write_text(EXTERNAL_MODULE)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(textwrap.dedent("""
        device: cuda
        shards: 3
        datasets: {fundus: {type: synthetic-fundus, params: {image_size: 32}}}
        methods: {mine: {method: "ext_learner:Learner", group: deep, params: {epochs: 2}}}
    """))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory",
                           str(tmp_path), "-n", "-p", "results/fundus/mine/pairs.csv", "--configfile", str(cfg)],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "rule fit:" in out and out.count("rule register_learned:") == 3 and "gpu=1" in out
    # the run spec file the jobs get names the class by its import path
    specs = [f.read_text() for f in (tmp_path / "results" / "specs").rglob("*.json")]
    assert any("ext_learner:Learner" in text for text in specs)

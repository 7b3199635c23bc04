"""Safe to run (issue 23, workflow level; issue 20 item 5): odd paths never run, results follow the code, a
run's config is its own, results_dir keeps runs apart, odd folder datasets and a failing method do not stop it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers.workflow import ROOT, run_snakemake

from pcreg.reporting.outputs import figure_path, table_stem

#: A method whose training raises (as VoxelMorph's NCC assertion on flat backgrounds did), and one whose set-up
#: raises: plug-ins given by import path, from a folder put on PYTHONPATH.
BROKEN = '''
from pcreg.methods.base import Method, Registration


class BrokenFit(Method):
    name = "broken_fit"
    label = "Broken fit"

    def fit(self, train, val, workdir):
        raise AssertionError("NCC coefficients must be finite and in [0, 1]")

    def load(self, workdir):
        raise RuntimeError("never loaded: the fit failed")

    def register(self, moving, fixed):
        return Registration(image=fixed)


class BrokenSetup(Method):
    name = "broken_setup"
    label = "Broken set-up"

    def __init__(self, params=None, **kwargs):
        super().__init__(params, **kwargs)
        raise RuntimeError("libfoo.so: cannot open shared object")

    def register(self, moving, fixed):
        return Registration(image=fixed)
'''


def copy_checkout(dest: Path) -> Path:
    """The files a run needs (Snakefile, workflow, package, plug-ins, configs), copied to ``dest``."""
    dest.mkdir(parents=True)
    for name in ("Snakefile", "environment.yml", "pyproject.toml"):
        shutil.copy2(ROOT / name, dest / name)
    for name in ("workflow", "pcreg", "baselines", "config"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def snakemake(snakefile: Path, workdir: Path, *args: str, env: dict | None = None,
              background: bool = False) -> subprocess.CompletedProcess | subprocess.Popen:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "--directory", str(workdir), *args]
    if background:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    return subprocess.run(cmd, capture_output=True, text=True, env=env)


TINY_FUNDUS = {"type": "synthetic-fundus",
               "params": {"image_size": 32, "pairs": {"train": 2, "val": 1, "test": 3}}}


@pytest.fixture(scope="module")
def odd_run(tmp_path_factory):
    """One small run from a checkout at a path with a space, with a data_dir and a results_dir that a shell
    would execute, a one-pair folder dataset whose image names hold braces, and two failing methods."""
    tmp = tmp_path_factory.mktemp("safety")
    checkout = copy_checkout(tmp / "check out")
    plugins = tmp / "plug ins"
    plugins.mkdir()
    (plugins / "brokenmethods.py").write_text(BROKEN)
    one = tmp / "one pair"
    for sub in ("moving", "fixed"):
        (one / sub).mkdir(parents=True)
        shutil.copyfile(ROOT / "examples" / "folder-pairs" / sub / "pair01.png", one / sub / "p{1}.png")
    markers = [tmp / f"pwned{i}" for i in range(4)]
    config = {
        "seed": 0, "shards": 1, "device": "cpu", "stats": {"n_boot": 100}, "audit": {"pairs": 3},
        "figures": {"qualitative_pairs": 1},
        "data_dir": f"da ta $(touch {markers[0]}) ; touch {markers[1]} & `touch {markers[2]}` 'q\"",
        "results_dir": f"res ults;$(touch {markers[3]})",
        "datasets": {"fundus": TINY_FUNDUS,
                     "one": {"type": "folder", "params": {"path": str(one), "image_size": [32, 32]}}},
        "methods": {"identity": {"group": "reference"},
                    "broken_fit": {"method": "brokenmethods:BrokenFit", "group": "deep", "datasets": ["fundus"]},
                    "broken_setup": {"method": "brokenmethods:BrokenSetup", "group": "traditional",
                                     "datasets": ["fundus"]}},
    }
    cfg = tmp / "odd config.yaml"
    cfg.write_text(yaml.safe_dump(config))
    work = tmp / "work dir"
    env = {**os.environ, "PYTHONPATH": str(plugins)}
    start = time.time()
    proc = snakemake(checkout / "Snakefile", work, "--cores", "2", "all", "--configfile", str(cfg), env=env)
    return {"proc": proc, "work": work, "res": work / config["results_dir"], "data": work / config["data_dir"],
            "markers": markers, "tmp": tmp, "seconds": time.time() - start}


@pytest.mark.slow
def test_odd_paths_run_and_nothing_in_them_is_executed(odd_run):
    proc = odd_run["proc"]
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert not [m for m in odd_run["markers"] if m.exists()], "a command from the config was executed"
    res = odd_run["res"]
    assert (odd_run["data"] / "fundus" / "dataset.json").is_file()
    for d in ("fundus", "one"):
        assert Path(table_stem("summary", d, res / "tables") + ".md").is_file()
        assert Path(figure_path("qualitative", d, res / "figures")).is_file()
    manifest = json.loads((res / "manifest.json").read_text())
    assert manifest["config"]["results_dir"].startswith("res ults;$(")
    # Per result, which code made it (issue 23 item 4).
    code = manifest["code"][str(Path(os.path.relpath(res, odd_run["work"])) / "fundus" / "identity" / "pairs.csv")]
    assert code["evaluate"].startswith("evaluate:") and code["register"].startswith("method:")
    # Nothing was written outside the results folder and the data folder (issue 20 item 5).
    tops = {Path(os.path.relpath(p, odd_run["work"])).parts[0] for p in (res, odd_run["data"])}
    assert {p.name for p in odd_run["work"].iterdir()} == {".snakemake", *tops}


@pytest.mark.slow
def test_a_failing_method_is_reported_failed_and_the_rest_is_produced(odd_run):
    assert odd_run["proc"].returncode == 0
    res = odd_run["res"]
    model = json.loads((res / "fundus" / "broken_fit" / "model" / "model.json").read_text())
    assert model["status"] == "failed" and "NCC coefficients must be finite" in model["reason"]
    for run, why in (("broken_fit", "fit failed: AssertionError: NCC coefficients"),
                     ("broken_setup", "RuntimeError: libfoo.so")):
        pairs = pd.read_csv(res / "fundus" / run / "pairs.csv")
        assert pairs["failed"].all() and pairs["reason"].str.startswith(why.split(":")[0]).all(), pairs["reason"]
        assert pairs["reason"].str.contains(why.split(": ", 1)[1]).all()
    summary = pd.read_csv(table_stem("summary", "fundus", res / "tables") + ".csv").set_index("run")
    assert summary.loc["broken_fit", "n_failed"] == 3 and summary.loc["identity", "n_failed"] == 0
    text = Path(table_stem("summary", "fundus", res / "tables") + ".md").read_text()
    assert "Broken fit (failed)" in text and "failed on every pair: fit failed: AssertionError" in text
    assert "Broken set-up failed on every pair: RuntimeError: libfoo.so" in text
    for kind in ("stats", "geometry", "table1"):
        assert "libfoo.so" in Path(table_stem(kind, "fundus", res / "tables") + ".md").read_text(), kind
    audit = pd.read_csv(table_stem("audit", "fundus", res / "tables") + ".csv").set_index("method")
    assert audit.loc["broken_fit", "verdict"].startswith("not audited (method failed: fit failed: AssertionError")
    assert audit.loc["identity", "verdict"] != "" and not audit.loc["identity", "verdict"].startswith("not audited")
    assert Path(figure_path("boxplots", "fundus", res / "figures")).stat().st_size > 1000


@pytest.mark.slow
def test_a_one_pair_folder_dataset_with_braces_in_names_finishes_without_audit(odd_run):
    assert odd_run["proc"].returncode == 0
    res = odd_run["res"]
    pairs = pd.read_csv(res / "one" / "identity" / "pairs.csv", dtype={"pair_id": str})
    assert list(pairs["pair_id"]) == ["p{1}"]
    audit = Path(table_stem("audit", "one", res / "tables") + ".md").read_text()
    assert "Audit skipped: the dataset has 1 test pair(s), and the audit needs at least 2" in audit


def _tiny_config(results_dir: str = "results", **methods: dict) -> dict:
    return {"seed": 0, "shards": 1, "device": "cpu", "results_dir": results_dir, "datasets": {"fundus": TINY_FUNDUS},
            "methods": methods or {"identity": {"group": "reference"}}}


@pytest.mark.slow
def test_changed_code_reruns_exactly_the_steps_that_run_it(tmp_path):
    """Issue 23 item 4: edit the scoring code (or a method's, or a precomputed folder) and its results rerun."""
    import numpy as np

    checkout = copy_checkout(tmp_path / "checkout")
    outputs = tmp_path / "outputs"
    config = _tiny_config(identity={"group": "reference"},
                          mine={"method": "precomputed", "group": "traditional",
                                "params": {"path": str(outputs), "output": "image"}})
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(config))
    work = tmp_path / "work"
    targets = ["results/fundus/identity/pairs.csv", "--cores", "2", "--configfile", str(cfg)]
    first = snakemake(checkout / "Snakefile", work, *targets)
    assert first.returncode == 0, first.stderr[-3000:]
    # Outputs made elsewhere for the precomputed run: the fixed images.
    from pcreg.datasets import PreparedDataset

    test = PreparedDataset(work / "data" / "fundus").split("test")
    (outputs / "images").mkdir(parents=True)
    for i, pair_id in enumerate(test.pair_ids):
        np.save(outputs / "images" / f"{pair_id}.npy", np.asarray(test.fixed[i], np.float32))
    mine = ["results/fundus/mine/pairs.csv", *targets[1:]]
    assert snakemake(checkout / "Snakefile", work, *mine).returncode == 0

    def dry(*target: str) -> str:
        proc = snakemake(checkout / "Snakefile", work, "-n", *target, *targets[1:])
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc.stdout + proc.stderr

    both = ["results/fundus/identity/pairs.csv", "results/fundus/mine/pairs.csv"]
    assert "Nothing to be done" in dry(*both)
    scoring = checkout / "pcreg" / "evaluation" / "scoring.py"
    original = scoring.read_text()
    # A documentation edit changes no result: nothing reruns.
    scoring.write_text(original.replace('"""', '"""Edited docstring. ', 1) + "\n# a comment\n")
    assert "Nothing to be done" in dry(*both)
    # A code edit of the scoring reruns evaluation, and only evaluation.
    scoring.write_text(original + "\n_SCALE = 1.0\n")
    out = dry(*both)
    assert "rule evaluate:" in out and "rule register:" not in out and "rule prepare:" not in out
    assert "Params have changed" in out or "params" in out.lower()
    scoring.write_text(original)
    assert "Nothing to be done" in dry(*both)
    # A method's own code reruns that method's registration, not the others'.
    identity = checkout / "baselines" / "identity.py"
    identity.write_text(identity.read_text() + "\n_EDITED = True\n")
    out = dry(*both)
    assert "rule register:" in out and "results/fundus/identity/shards/0.npz" in out
    assert "results/fundus/mine/shards/0.npz" not in out
    # Replacing a precomputed method's output file rescores it (its modification time may even be older).
    first_file = outputs / "images" / f"{test.pair_ids[0]}.npy"
    stat = first_file.stat()
    np.save(first_file, np.asarray(test.moving[0], np.float32))
    os.utime(first_file, ns=(stat.st_atime_ns, stat.st_mtime_ns - 10**9))
    assert "results/fundus/mine/shards/0.npz" in dry("results/fundus/mine/pairs.csv")


@pytest.mark.slow
def test_a_dry_run_with_another_config_leaves_a_running_runs_parameters_alone(tmp_path):
    """Issue 23 item 5: spec files are per configuration, so a second invocation cannot change a running one."""
    fundus = {"type": "synthetic-fundus",  # enough training pairs that preparing takes a few seconds
              "params": {"image_size": 32, "pairs": {"train": 400, "val": 1, "test": 1}}}

    def config(lr: float) -> Path:
        cfg = {"seed": 0, "shards": 1, "device": "cpu", "datasets": {"fundus": fundus},
               "methods": {"voxelmorph": {"group": "deep", "params": {"epochs": 1, "max_steps": 1, "batch_size": 2,
                                                                      "lr": lr, "val_max_pairs": 1}}}}
        path = tmp_path / f"lr{lr}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return path

    work = tmp_path / "work"
    target = "results/fundus/voxelmorph/model/model.json"
    running = snakemake(ROOT / "Snakefile", work, target, "--cores", "1", "--configfile", str(config(1e-3)),
                        background=True)
    prepare_log = work / "results" / "logs" / "prepare" / "fundus.log"
    deadline = time.time() + 120
    while time.time() < deadline and not prepare_log.exists() and running.poll() is None:
        time.sleep(0.1)
    assert prepare_log.exists(), "the first run did not start its jobs"
    dry = run_snakemake(work, target, "-n", "--cores", "1", "--configfile", str(config(5e-3)))
    assert dry.returncode == 0, dry.stderr[-2000:]
    fit_started = (work / "results" / "logs" / "fit" / "fundus" / "voxelmorph.log").exists()
    out, _ = running.communicate(timeout=600)
    assert running.returncode == 0, out[-3000:]
    assert not fit_started, "the fit started before the dry run: the test could not check anything"
    model = json.loads((work / target).read_text())
    assert model["params"]["lr"] == pytest.approx(1e-3)


@pytest.mark.slow
def test_two_results_dirs_never_overwrite_each_other(tmp_path):
    """Issue 20 item 5: configs with different results_dir share prepared data and nothing else."""
    work = tmp_path / "work"
    runs = {}
    for name, alpha in (("a", 1.0), ("b", 30.0)):
        cfg = tmp_path / f"{name}.yaml"
        cfg.write_text(yaml.safe_dump(_tiny_config(f"results/{name}", horn_schunck={
            "group": "traditional", "params": {"alpha": alpha, "iterations": 5, "warps": 1}})))
        runs[name] = cfg
        proc = run_snakemake(work, f"results/{name}/fundus/horn_schunck/pairs.csv", "--cores", "2",
                             "--configfile", str(cfg))
        assert proc.returncode == 0, proc.stderr[-3000:]
    a = work / "results" / "a" / "fundus" / "horn_schunck" / "pairs.csv"
    b = work / "results" / "b" / "fundus" / "horn_schunck" / "pairs.csv"
    assert not pd.read_csv(a)["ncc"].equals(pd.read_csv(b)["ncc"])  # two different runs, both kept
    assert not (work / "results" / "fundus").exists() and not (work / "results" / "logs").exists()
    assert (work / "results" / "a" / "logs").is_dir() and (work / "results" / "b" / "specs").is_dir()
    again = run_snakemake(work, str(a.relative_to(work)), "-n", "--cores", "1", "--configfile", str(runs["a"]))
    assert "Nothing to be done" in again.stdout + again.stderr


def test_symlinked_folders_of_a_folder_dataset_are_listed(tmp_path):
    """Issue 23 item 4: a folder dataset whose moving/ and fixed/ are links is fingerprinted through them."""
    from pcreg.datasets.source_files import fingerprint, source_files

    real = tmp_path / "real"
    shutil.copytree(ROOT / "examples" / "folder-pairs", real)
    linked = tmp_path / "linked"
    linked.mkdir()
    for sub in ("moving", "fixed"):
        (linked / sub).symlink_to(real / sub, target_is_directory=True)
    spec = {"type": "folder", "params": {"path": str(linked)}}
    files = source_files(spec)
    assert sorted(p.relative_to(linked).as_posix() for p in files) == [
        f"{sub}/pair0{i}.png" for sub in ("fixed", "moving") for i in range(1, 5)]
    before = fingerprint(files)
    (real / "moving" / "pair01.png").write_bytes((real / "fixed" / "pair01.png").read_bytes())
    assert fingerprint(source_files(spec)) != before


def test_precomputed_outputs_from_another_dataset_are_refused_in_one_line(tmp_path, capsys):
    """Issue 23 item 4: outputs carrying the export.json of other test pairs (another seed) are not scored."""
    import numpy as np

    from pcreg.cli import main
    from pcreg.config import validate_params
    from pcreg.datasets import PreparedDataset, get_dataset_type
    from pcreg.export import export_dataset
    from pcreg.specs import write_spec

    dtype = get_dataset_type("synthetic-fundus")
    for seed in (0, 1):
        dtype.prepare(tmp_path / f"seed{seed}", "fundus", validate_params(dtype, TINY_FUNDUS["params"], "p"), seed)
    export = export_dataset(tmp_path / "seed1", tmp_path / "export", splits=("test",), audit_pairs=2, seed=0)
    outputs = tmp_path / "outputs"
    (outputs / "images").mkdir(parents=True)
    test = PreparedDataset(tmp_path / "seed1").split("test")
    for i, pair_id in enumerate(test.pair_ids):  # same pair ids in both seeds: only the content differs
        np.save(outputs / "images" / f"{pair_id}.npy", np.asarray(test.fixed[i], np.float32))
    shutil.copyfile(export / "export.json", outputs / "export.json")
    capsys.readouterr()  # progress bars of the preparation
    spec = write_spec(tmp_path / "run.json", {"id": "mine", "method": "precomputed",
                                              "params": {"path": str(outputs), "output": "image"}})

    def register(data: str) -> int:
        return main(["register", "--data", str(tmp_path / data), "--run", spec, "--shard", "0", "--shards", "1",
                     "--out", str(tmp_path / data / "shard.npz")])

    assert register("seed0") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "export.json was exported from dataset 'fundus' with other test" in err
    assert not (tmp_path / "seed0" / "shard.npz").exists()
    assert register("seed1") == 0 and (tmp_path / "seed1" / "shard.npz").is_file()


def test_code_fingerprints_change_with_code_not_with_comments(tmp_path):
    from pcreg.code_fingerprint import code_fingerprint, python_digest

    root = tmp_path / "root"
    shutil.copytree(ROOT / "pcreg", root / "pcreg", ignore=shutil.ignore_patterns("__pycache__"))
    before = {s: code_fingerprint(s, root=root) for s in ("prepare", "evaluate", "report", "method")}
    metrics = root / "pcreg" / "metrics.py"
    text = metrics.read_text()
    assert python_digest(text) == python_digest(text.replace('"""', '"""Reworded. ', 1) + "\n# note\n")
    metrics.write_text(text + "\ndef ncc_scale():\n    return 2.0\n")
    after = {s: code_fingerprint(s, root=root) for s in before}
    assert after["evaluate"] != before["evaluate"] and after["report"] != before["report"]
    assert after["method"] != before["method"]  # training validates with the metrics
    assert after["prepare"] == before["prepare"]  # preparing (downloading) a dataset does not use them

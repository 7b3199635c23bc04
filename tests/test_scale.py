"""Scaling: streamed shards and evaluation, shard-count independence, cluster profiles, GPU requests."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pcreg.config import validate_params
from pcreg.datasets import DatasetWriter, get_dataset_type
from pcreg.evaluation.scoring import evaluate_method, index_shards
from pcreg.methods.runner import register_shard, shard_array_paths
from pcreg.streaming import NpyRowWriter, PairRows, read_rows

ROOT = Path(__file__).resolve().parent.parent
IDENTITY = {"id": "identity", "method": "identity", "params": {}}
needs_slurm = pytest.mark.skipif(importlib.util.find_spec("snakemake_executor_plugin_slurm") is None,
                                 reason="snakemake-executor-plugin-slurm (extra `cluster`) is not installed")


def _orpam(root: Path, test_sequences: int = 3, frames: int = 3) -> Path:
    module = get_dataset_type("synthetic-orpam")
    params = validate_params(module, {"height": 32, "width": 16, "frames": frames,
                                      "sequences": {"train": 1, "val": 1, "test": test_sequences}}, "t")
    return module.prepare(root, "orpam", params, 5)


def test_row_writer_and_reader_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.random((11, 2, 3, 4)).astype(np.float32)
    with NpyRowWriter(tmp_path / "a.npy", a.shape) as w:
        w.write(a[:4])
        for row in a[4:]:
            w.write(row)
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), a)
    np.testing.assert_array_equal(read_rows(tmp_path / "a.npy", 3, 7), a[3:7])
    assert read_rows(tmp_path / "a.npy", 9, 50).shape == (2, 2, 3, 4)
    # An incomplete file never appears under its name.
    with pytest.raises(ValueError, match="5 of 11 rows"), NpyRowWriter(tmp_path / "b.npy", a.shape) as w:
        w.write(a[:5])
    assert not (tmp_path / "b.npy").exists() and not list(tmp_path.glob("b.npy*"))
    with pytest.raises(ValueError, match="expected"), NpyRowWriter(tmp_path / "c.npy", a.shape) as w:
        w.write(a[:2, :1])


def test_pair_rows_match_the_split(tmp_path):
    from pcreg.datasets import PreparedDataset

    root = _orpam(tmp_path / "d")
    split = PreparedDataset(root).split("test")
    rows = PairRows(root, "test", with_field=True)
    assert len(rows) == len(split) == 9
    for i in (0, 4, 8):
        moving, fixed, field = rows[i]
        np.testing.assert_array_equal(moving, split.moving[i])
        np.testing.assert_array_equal(fixed, split.fixed[i])
        np.testing.assert_array_equal(field, split.field[i])
    with pytest.raises(IndexError):
        rows[9]


def test_merge_is_independent_of_shard_count_and_order(tmp_path):
    root = _orpam(tmp_path / "d")  # 9 test pairs
    outputs = {}
    for n_shards in (1, 3, 4, 12):  # 12 > 9 pairs: some shards are empty
        shards = [register_shard(root, IDENTITY, s, n_shards, tmp_path / f"s{n_shards}" / f"{s}.npz", seed=0,
                                 threads=1) for s in range(n_shards)]
        out = tmp_path / f"r{n_shards}"
        evaluate_method(root, list(reversed(shards)), out)
        outputs[n_shards] = out
    ref = pd.read_csv(outputs[1] / "pairs.csv").drop(columns="runtime_s")
    assert len(ref) == 9 and ref["epe_px"].notna().all()
    for n_shards, out in outputs.items():
        pd.testing.assert_frame_equal(pd.read_csv(out / "pairs.csv").drop(columns="runtime_s"), ref)
        for name in ("registered.npy", "fields.npy"):
            np.testing.assert_array_equal(np.load(out / name), np.load(outputs[1] / name), err_msg=f"{n_shards}")
    # The shard arrays hold exactly the shard's pairs, and a missing shard is an error naming the coverage.
    reg, fld = shard_array_paths(tmp_path / "s3" / "1.npz")
    assert np.load(reg).shape == (3, 32, 16) and np.load(fld).shape == (3, 2, 32, 16)
    with pytest.raises(ValueError, match="cover 6 of 9 pairs"):
        index_shards([tmp_path / "s3" / "0.npz", tmp_path / "s3" / "2.npz"], 9)


def _big_dataset(root: Path, n_test: int, size: int = 48) -> Path:
    rng = np.random.default_rng(1)
    with DatasetWriter(root, name="big", dataset_type="test", image_shape=(size, size),
                       split_sizes={"train": 1, "val": 1, "test": n_test}, has_field=True) as w:
        for split, n in (("train", 1), ("val", 1), ("test", n_test)):
            for i in range(n):
                img = rng.random((size, size), dtype=np.float32)
                w.add(split, f"{split}-{i}", img, img, field=np.zeros((2, size, size), np.float32))
    return root


def _evaluate_peak_mb(root: Path, shards: list[Path], out: Path) -> float:
    code = ("import resource, sys\nfrom pathlib import Path\nfrom pcreg.evaluation.scoring import evaluate_method\n"
            "evaluate_method(Path(sys.argv[1]), [Path(p) for p in sys.argv[3:]], Path(sys.argv[2]))\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    proc = subprocess.run([sys.executable, "-c", code, str(root), str(out), *map(str, shards)], capture_output=True,
                          text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": ""})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return float(proc.stdout.split()[-1])


def test_evaluate_memory_does_not_grow_with_pairs(tmp_path):
    """Evaluating 10x the pairs costs no more memory: nothing is held per pair but the table rows.

    At 2,400 pairs of 48x48 the images, fields and ground truth that a non-streaming evaluation
    holds are ~130 MB, far above the 40 MB tolerance."""
    peaks = {}
    for n in (240, 2400):
        root = _big_dataset(tmp_path / f"d{n}", n)
        shards = [register_shard(root, IDENTITY, s, 2, tmp_path / f"s{n}" / f"{s}.npz", seed=0, threads=1)
                  for s in range(2)]
        peaks[n] = _evaluate_peak_mb(root, shards, tmp_path / f"r{n}")
        assert np.load(tmp_path / f"r{n}" / "fields.npy", mmap_mode="r").shape == (n, 2, 48, 48)
    assert peaks[2400] - peaks[240] < 40, peaks


# --- workflow: profiles, resources, GPU requests -------------------------------------------------------------

FAKE_LEARNED = '''
import numpy as np
from pcreg.methods.base import Method, Registration


class FakeLearned(Method):
    """A trainable stand-in (tests only): learns nothing, returns a zero field."""

    name = "fake_learned"
    PARAMS_SCHEMA = {"type": "object", "additionalProperties": False, "properties": {}}

    def fit(self, train, val, workdir):
        pass

    def register(self, moving, fixed):
        return Registration(field=np.zeros((2, *moving.shape), np.float32))
'''


@pytest.fixture(scope="module")
def repo_with_learned(tmp_path_factory):
    """A copy of the workflow with a trainable method added, and a config using it."""
    dst = tmp_path_factory.mktemp("repo")
    for name in ("Snakefile", "workflow", "pcreg", "baselines", "config", "profiles", "scripts", "environment.yml"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dst / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, dst / name)
    (dst / "baselines" / "fake_learned.py").write_text(FAKE_LEARNED)
    cfg = {
        "device": "cuda", "shards": 2,
        "datasets": {"orpam": {"type": "synthetic-orpam", "params": {"height": 32, "width": 16}}},
        "methods": {"identity": {"group": "reference", "shards": 1},
                    "learned": {"method": "fake_learned", "group": "deep", "shards": 3,
                                "resources": {"fit": {"gpu_model": "a100"}}}},
    }
    (dst / "cluster-test.yaml").write_text(yaml.safe_dump(cfg))
    return dst


def _check(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(repo / "scripts" / "check_slurm_dryrun.py"), "--configfile",
                           str(repo / "cluster-test.yaml"), *args], capture_output=True, text=True, cwd=repo)


@needs_slurm
def test_slurm_dryrun_requests_gpus_only_for_learned_jobs(repo_with_learned):
    proc = _check(repo_with_learned, "--expect-gpu-jobs", "--show", "3")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    table = {line.split()[0]: line.split()[1:3] for line in proc.stdout.splitlines()[1:] if line[:1].isalpha()}
    # fit once; register_learned per its own shard count (3); identity registers in 1 CPU shard.
    assert table["fit"] == ["1", "1"] and table["register_learned"] == ["3", "3"]
    assert table["audit_learned"] == ["1", "1"] and table["audit"] == ["1", "0"]
    assert table["register"] == ["1", "0"] and table["evaluate"][1] == "0" and table["prepare"][1] == "0"
    assert "--gpus=a100:1" in proc.stdout and "--cpus-per-gpu=8" in proc.stdout
    assert "--cpus-per-gpu=2" in proc.stdout  # register_learned's default
    assert " 5 requesting GPUs" in proc.stdout


@needs_slurm
def test_slurm_dryrun_cpu_device_requests_no_gpu(repo_with_learned):
    proc = _check(repo_with_learned, "--config", "device=cpu")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "requesting GPUs" in proc.stdout and " 0 requesting GPUs" in proc.stdout


@needs_slurm
def test_slurm_profile_takes_account_and_partitions_from_the_environment(repo_with_learned):
    env = {"PCREG_SLURM_ACCOUNT": "proj1", "PCREG_SLURM_PARTITION": "cpuq", "PCREG_SLURM_GPU_PARTITION": "gpuq"}
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--profile", "profiles/slurm", "-n", "-F", "all",
         "--configfile", "cluster-test.yaml"],
        capture_output=True, text=True, cwd=repo_with_learned, env={**os.environ, **env})
    assert proc.returncode == 0, proc.stderr[-3000:]
    blocks = proc.stdout.split("\nrule ")
    for block in blocks[1:]:
        rule = block.split(":")[0]
        if rule == "all":
            continue
        assert "slurm_account=proj1" in block
        assert (("slurm_partition=gpuq" in block) if rule in ("fit", "register_learned", "audit_learned")
                else ("slurm_partition=cpuq" in block)), block
    assert proc.stdout.count("rule audit_learned:") == 1 and proc.stdout.count("rule register_learned:") == 3


@needs_slurm
def test_local_profile_serializes_gpu_jobs(repo_with_learned):
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--profile", "profiles/local", "-n", "-F", "all",
                           "--configfile", "cluster-test.yaml"], capture_output=True, text=True, cwd=repo_with_learned)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = proc.stdout + proc.stderr
    assert "Using profile profiles/local" in text
    assert text.count("gpu=1") == 5  # fit, 3 register_learned shards, audit_learned: each needs the profile's GPU
    cfg = yaml.safe_load((ROOT / "profiles" / "local" / "config.yaml").read_text())
    assert cfg["resources"] == {"gpu": 1}


@needs_slurm
def test_parse_dryrun_reads_jobs():
    sys.path.insert(0, str(ROOT / "scripts"))
    from check_slurm_dryrun import check, parse_dryrun

    text = ("[Mon]\nrule fit:\n    wildcards: dataset=d, run=r\n    threads: 4\n"
            "    resources: tmpdir=/tmp, runtime=60, mem_mb=100, gpu=1, cpus_per_gpu=4\n"
            "[Mon]\nrule evaluate:\n    resources: tmpdir=/tmp, gpu=1, mem_mb=100\n")
    jobs = parse_dryrun(text)
    assert [j["rule"] for j in jobs] == ["fit", "evaluate"] and jobs[0]["threads"] == 4
    assert jobs[0]["wildcards"] == {"dataset": "d", "run": "r"} and jobs[0]["resources"]["gpu"] == 1
    problems = check(jobs, "cuda")
    assert any("evaluate" in p and "not a GPU rule" in p for p in problems)
    assert any("evaluate" in p and "runtime" in p for p in problems)
    assert not any(p.startswith("fit") for p in problems)
    assert "--gpus=1" in jobs[0]["sbatch"] and "--cpus-per-gpu=4" in jobs[0]["sbatch"]
    json.dumps(jobs)  # plain data

"""The rehearsal's parts: stand-ins the adapters accept, with the geometry they claim; the server; the checks.

The whole rehearsal (scripts/rehearse_paper.sh, ~10 min on 2 cores) runs in CI (.ci/run), not here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pcreg.config import validate_config, validate_params
from pcreg.datasets import fire, orpam
from pcreg.datasets.download import Remote, fetch
from pcreg.datasets.format import PreparedDataset
from pcreg.rehearsal import checks, standins
from pcreg.rehearsal.overlay import sources_overlay
from pcreg.rehearsal.server import RehearsalServer

pytestmark = [pytest.mark.timeout(300), pytest.mark.filterwarnings("ignore:orpam")]
ROOT = Path(__file__).resolve().parents[1]
SIZE = 512  # the stand-in scaled down from 2912 px (same layout, proportions and motions)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[standins.FireTruth]]:
    return standins.write_fire_tree(tmp_path_factory.mktemp("fire"), seed=0, size=SIZE)


def test_fire_standin_has_the_layout_the_adapter_reads(tree) -> None:
    root, truths = tree
    assert fire.find_root(root.parent) == root
    pairs = fire.list_pairs(root)  # P37 dropped by default, like the real one
    assert [p.pair_id for p in pairs] == ["A01", "A02", "P01", "P02", "S01", "S02"]
    assert {p.category for p in pairs} == {"S", "P", "A"}
    assert (root / "Ground Truth" / "control_points_P37_1_2.txt").is_file()
    assert (root / "Masks" / "mask.png").is_file() and (root / "Masks" / "feature_mask.png").is_file()
    import cv2

    img = cv2.imread(str(root / "Images" / "S01_1.jpg"), cv2.IMREAD_UNCHANGED)
    assert img.shape == (SIZE, SIZE, 3) and img.dtype == np.uint8
    h_of = {t.pair_id: t.homography for t in truths}
    for p in pairs:  # control points are exactly the homography of their fixed points, inside the FOV
        assert p.fixed_xy.shape == (10, 2)
        np.testing.assert_allclose(p.moving_xy, standins.apply_homography(h_of[p.pair_id], p.fixed_xy), atol=0.01)


def test_fire_standin_images_follow_the_homography(tree) -> None:
    """moving(H p) = fixed(p): warping the fixed image by H reproduces the moving one (S pair, inside the FOV)."""
    import cv2

    root, truths = tree
    t = next(t for t in truths if t.pair_id == "S01")
    fixed = cv2.imread(str(root / "Images" / "S01_1.jpg"), cv2.IMREAD_GRAYSCALE).astype(np.float64)
    moving = cv2.imread(str(root / "Images" / "S01_2.jpg"), cv2.IMREAD_GRAYSCALE).astype(np.float64)
    predicted = cv2.warpPerspective(fixed, t.homography, (SIZE, SIZE))
    inner = cv2.erode(standins.fov_mask(SIZE).astype(np.uint8), np.ones((41, 41))) > 0
    inner &= cv2.warpPerspective(inner.astype(np.uint8), t.homography, (SIZE, SIZE)) > 0

    def ncc(a: np.ndarray, b: np.ndarray) -> float:  # of the detail (vessels): illumination removed
        a, b = a - cv2.GaussianBlur(a, (0, 0), 8), b - cv2.GaussianBlur(b, (0, 0), 8)
        a, b = a[inner] - a[inner].mean(), b[inner] - b[inner].mean()
        return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))

    assert ncc(predicted, moving) > 0.9 and ncc(predicted, moving) > ncc(fixed, moving) + 0.15  # aligned by H
    assert np.hypot(*t.homography[:2, 2]) > 0  # it is a real motion


def test_prepare_from_served_archive_and_hub(tmp_path: Path, tree) -> None:
    """FIRE.7z over HTTP (sha256 pinned, Range honoured) and both OR-PAM repositories through the fake Hub."""
    import py7zr

    root, _ = tree
    archive = tmp_path / "FIRE.7z"
    with py7zr.SevenZipFile(archive, "w") as zf:
        zf.writeall(root, arcname="FIRE")
    sha = standins.sha256_of(archive)
    repos = {}
    for variant, rid in orpam.REPOS.items():
        for rel, data in standins.orpam_repo_files(variant).items():
            (tmp_path / "hub" / rid / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / "hub" / rid / rel).write_bytes(data)
        repos[rid] = tmp_path / "hub" / rid
    server = RehearsalServer(archive, repos).start()
    try:
        import requests

        r = requests.get(f"{server.url}/fire/FIRE.7z", headers={"Range": "bytes=10-"}, timeout=10)
        assert r.status_code == 206 and r.content == archive.read_bytes()[10:]
        overlay = sources_overlay(server.url, sha)
        params = validate_params(fire, {**overlay["datasets"]["fire"]["params"], "cache_dir": str(tmp_path / "dl"),
                                        "image_size": 64}, "p")
        ds = PreparedDataset(fire.prepare(tmp_path / "fire", "fire", params, 0))
        assert len(ds.split("test")) == 6 and ds.original_scale == pytest.approx(SIZE / 64)
        assert fetch(Remote(f"{server.url}/fire/FIRE.7z", sha, "FIRE.7z"), tmp_path / "dl").is_file()
        for name, variant in (("or-pam-reg-4k", "4k"), ("or-pam-reg-temporal-26k", "temporal-26k")):
            p = validate_params(orpam, {**overlay["datasets"][name]["params"], "variant": variant,
                                        "cache_dir": str(tmp_path / "dl")}, "p")
            out = PreparedDataset(orpam.prepare(tmp_path / name, name, p, 0))
            test = out.split("test")
            if variant == "4k":
                assert len(test) == standins.ORPAM_4K["test"]
            else:
                n_seq, n_frames = standins.ORPAM_TEMPORAL["test"]
                assert len(test) == n_seq * n_frames
                assert test.manifest["sequence"].nunique() == n_seq
            assert out.image_shape == standins.ORPAM_SHAPE
            assert out.meta["spec"]["commit"] == server.commits[orpam.REPOS[variant]]
    finally:
        server.close()
    assert any("/resolve/" in r for r in server.requests)


def test_overlays_keep_paper_yaml_and_validate() -> None:
    """paper.yaml + rehearsal.yaml + sources, merged as Snakemake merges --configfile values, is a valid config
    that changes only sources, checksums, device, sizes and training lengths."""
    from snakemake.utils import update_config

    paper = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    merged = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    update_config(merged, yaml.safe_load((ROOT / "config" / "rehearsal.yaml").read_text()))
    update_config(merged, sources_overlay("http://127.0.0.1:1", "0" * 64))
    cfg = validate_config(merged)
    rows = [r for r, spec in cfg["methods"].items() if not spec.get("seed_of")]  # seed runs <id>.seed<k> aside
    assert list(cfg["datasets"]) == list(paper["datasets"]) and rows == list(paper["methods"])
    for run, spec in paper["methods"].items():  # fewer training seeds at most, never none
        assert 1 <= cfg["methods"][run].get("seeds", 1) <= spec.get("seeds", 1), run
    for run, spec in paper["methods"].items():
        got = cfg["methods"][run]
        assert got["label"] == spec["label"] and got["group"] == spec["group"]
        changed = {k for k in spec.get("params", {}) if got["params"][k] != spec["params"][k]}
        assert changed <= {"epochs", "batch_size"}, (run, changed)
    assert cfg["datasets"]["fire"]["params"]["image_size"] == paper["datasets"]["fire"]["params"]["image_size"] >= 768
    assert cfg["datasets"]["fire-reg-256"]["params"]["patch_size"] == 256
    assert cfg["device"] == "cpu"


def test_geometry_check_maps_points_through_a_known_field(tmp_path: Path) -> None:
    """A run whose field is the exact (translation) truth passes; the identity fails by the shift."""
    shift = np.array([3.0, -2.0])  # (dx, dy) in working px
    scale = 4.0
    h = np.eye(3)
    h[:2, 2] = shift * scale  # in original px: x2 = x1 + shift * scale (pixel-centre aligned resize keeps it)
    x1 = np.array([[100.0, 120.0], [300.0, 200.0]])
    run = tmp_path / "run"
    gt = run / "data" / "downloads" / "FIRE" / "FIRE" / "Ground Truth"
    gt.mkdir(parents=True)
    np.savetxt(gt / "control_points_S01_1_2.txt", np.hstack([x1, standins.apply_homography(h, x1)]))
    from pcreg.datasets.format import DatasetWriter

    n = 128
    with DatasetWriter(run / "data" / "fire", name="fire", dataset_type="fire", image_shape=(n, n),
                       split_sizes={"train": 0, "val": 0, "test": 1}, has_field=False, spec={},
                       original_scale=scale) as w:
        w.add("test", "S01", np.zeros((n, n), np.float32), np.zeros((n, n), np.float32), category="S")
    field = np.zeros((1, 2, n, n), np.float32)
    field[0, 0], field[0, 1] = shift[1], shift[0]  # row-col pull-back: p + u(p) = p + (dx, dy)
    for r, f in (("sift", field), ("identity", np.zeros_like(field))):
        (run / "results" / "fire" / r).mkdir(parents=True)
        np.save(run / "results" / "fire" / r / "fields.npy", f)
    truth = [{"pair_id": "S01", "category": "S", "homography": h.tolist()}]
    rows = checks.geometry_rows(run, truth, runs=("identity", "sift"))
    err = rows.set_index("run")["mean_error_orig_px"]
    assert err["sift"] < 1e-6 and err["identity"] == pytest.approx(np.hypot(*shift) * scale)
    assert checks.geometry_problems(rows.assign(category="S")) == []
    assert checks.geometry_problems(rows[rows["run"] == "identity"]) == [
        "geometry: no sift pairs of categories S/P/A to check"]
    bad = rows.assign(mean_error_orig_px=[50.0, 50.0])
    assert any("sift on S01 misses" in p for p in checks.geometry_problems(bad))


def test_memory_check_reads_benchmark_files(tmp_path: Path) -> None:
    bench = tmp_path / "results" / "benchmarks" / "rules" / "register" / "fire" / "syn"
    bench.mkdir(parents=True)
    pd.DataFrame({"s": [1.0], "max_rss": [2500.0]}).to_csv(bench / "0.tsv", sep="\t", index=False)
    config = {"resources": {"register": {"mem_mb": 2000}}, "methods": {"syn": {}}}
    assert checks.memory_problems(tmp_path, config) == [
        "memory: register/fire/syn/0 peaked at 2500 MB, above the 2000 MB its step declares"]
    config["methods"]["syn"] = {"resources": {"register": {"mem_mb": 4000}}}
    assert checks.memory_problems(tmp_path, config) == []


def test_expected_files_cover_the_paper_tables() -> None:
    files = checks.expected_files({"fire-reg-256": {"ablation": True}, "or-pam-reg-4k": {"table3": True}})
    for name in ("results/tables/table1_fire-reg-256.csv", "results/tables/ablation_fire-reg-256.csv",
                 "results/tables/table3_or-pam-reg-4k.csv", "results/tables/geometry_fire-reg-256.md"):
        assert name in files


def test_gpu_check_without_a_gpu_says_so_in_one_line() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: scripts/gpu_check.sh measures for real (minutes)")
    out = subprocess.run([str(ROOT / "scripts" / "gpu_check.sh")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    assert out.stdout.strip().count("\n") == 0 and "no CUDA GPU" in out.stdout


def test_gpu_check_code_path_on_cpu(tmp_path: Path) -> None:
    """The measuring code runs (on the CPU, numbers meaningless) and writes its CSV rows."""
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--device", "cpu", "--size", "32",
                          "--batch", "2", "--seconds", "0", "--methods", "voxelmorph", "--out",
                          str(tmp_path / "g.csv")], capture_output=True, text=True, timeout=280)
    assert out.returncode == 0, out.stderr[-2000:]
    df = pd.read_csv(tmp_path / "g.csv")
    assert list(df["kind"]) == ["inference"] * 3 + ["train"]
    assert list(df["batch"])[:3] == [1, 1, 2] and (df["pairs_per_s"] > 0).all()
    assert json.loads(json.dumps(list(df.columns))) == [
        "timestamp", "device_name", "kind", "method", "size", "batch", "precision", "pairs_per_s", "steps_per_s",
        "median_s", "iterations", "peak_gpu_mem_mb", "torch"]

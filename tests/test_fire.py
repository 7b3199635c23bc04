"""FIRE: control-point parsing, pair listing, resolution and patch mappings, both dataset types, the protocol."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from helpers.fire_layout import PAIRS, SIZE, make_fire_tree  # noqa: E402

from pcreg.config import validate_params  # noqa: E402
from pcreg.datasets import fire, fire_reg_256  # noqa: E402
from pcreg.datasets.folder import read_gray, resample  # noqa: E402
from pcreg.datasets.format import PreparedDataset  # noqa: E402
from pcreg.errors import UserError  # noqa: E402
from pcreg.metrics import tre  # noqa: E402

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def fire_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_fire_tree(tmp_path_factory.mktemp("fire"))


def test_parse_control_points_columns(tmp_path: Path) -> None:
    path = tmp_path / "control_points_S01_1_2.txt"
    rows = np.arange(40, dtype=float).reshape(10, 4) + 0.25
    path.write_text("\n".join(" ".join(f"{v:.2f}" for v in r) for r in rows) + "\n")
    fixed_xy, moving_xy = fire.parse_control_points(path)
    assert fixed_xy.shape == moving_xy.shape == (10, 2)
    np.testing.assert_allclose(fixed_xy, rows[:, :2])  # x1 y1: image _1 = fixed
    np.testing.assert_allclose(moving_xy, rows[:, 2:])  # x2 y2: image _2 = moving


@pytest.mark.parametrize("text", ["1 2 3\n4 5 6\n", "1 2 three 4\n", "", "1 2 3 nan\n"])
def test_parse_control_points_rejects_bad_files(tmp_path: Path, text: str) -> None:
    path = tmp_path / "control_points_S01_1_2.txt"
    path.write_text(text)
    with pytest.raises(UserError, match="control_points_S01_1_2.txt"):
        fire.parse_control_points(path)


def test_list_pairs_categories_and_p37(fire_tree: Path) -> None:
    pairs = fire.list_pairs(fire.find_root(fire_tree.parent), ["P37"])  # found one level below
    assert [p.pair_id for p in pairs] == sorted(set(PAIRS) - {"P37"})
    assert {p.pair_id: p.category for p in pairs}["A01"] == "A"
    for p in pairs:
        assert p.fixed_path.name.endswith("_1.jpg") and p.moving_path.name.endswith("_2.jpg")
        # the tiny layout's moving points are the fixed points shifted by the pair's translation
        np.testing.assert_allclose(p.moving_xy - p.fixed_xy, np.tile(PAIRS[p.pair_id], (10, 1)), atol=1e-3)
    assert "P37" in [p.pair_id for p in fire.list_pairs(fire_tree, [])]


def test_missing_image_is_a_clear_error(tmp_path: Path) -> None:
    root = make_fire_tree(tmp_path, top="")
    (root / "Images" / "S02_2.jpg").unlink()
    with pytest.raises(UserError, match="S02_2.jpg"):
        fire.list_pairs(root)
    with pytest.raises(UserError, match="not a FIRE folder"):
        fire.find_root(root / "Images")


def test_resize_mapping_matches_image_resampling() -> None:
    # A bright 8x8 block centred at original (x, y) = (43.5, 20.5) must land where to_dataset_xy says.
    img = np.zeros((128, 128), np.float32)
    img[17:25, 40:48] = 1.0
    small = resample(img, (32, 32))
    ys, xs = np.mgrid[:32, :32]
    centroid = np.array([(small * xs).sum(), (small * ys).sum()]) / small.sum()
    np.testing.assert_allclose(centroid, fire.to_dataset_xy(np.array([43.5, 20.5]), 4.0), atol=1e-6)
    pts = np.random.default_rng(0).uniform(0, 2912, (20, 2))
    np.testing.assert_allclose(fire.to_original_xy(fire.to_dataset_xy(pts, 11.375), 11.375), pts)


def _patch_params(fire_tree: Path, **kw: object) -> dict:
    base = {"source_dir": str(fire_tree), "working_size": 64, "patch_size": 32, "stride": 16,
            "fractions": {"train": 0.5, "val": 0.0, "test": 0.5}}
    return validate_params(fire_reg_256, {**base, **kw}, "test")


def test_patch_landmarks_map_back_to_original_positions(fire_tree: Path, tmp_path: Path) -> None:
    ds = PreparedDataset(fire_reg_256.prepare(tmp_path / "p", "p", _patch_params(fire_tree), seed=3))
    scale = ds.original_scale
    assert scale == pytest.approx(SIZE / 64)
    originals = {p.pair_id: p for p in fire.list_pairs(fire_tree)}
    lms = pd.read_csv(tmp_path / "p" / "landmarks.csv", dtype={"pair_id": str})
    assert len(lms) > 0
    for _, row in lms.iterrows():
        pair_id, _, _ = fire_reg_256.parse_patch_id(row["pair_id"])
        f = fire_reg_256.patch_to_original(np.array([[row["fixed_x"], row["fixed_y"]]]), row["pair_id"], scale)
        m = fire_reg_256.patch_to_original(np.array([[row["moving_x"], row["moving_y"]]]), row["pair_id"], scale)
        src = originals[pair_id]
        k = int(np.argmin(np.linalg.norm(src.fixed_xy - f, axis=1)))
        np.testing.assert_allclose(f[0], src.fixed_xy[k], atol=1e-3)  # same original position (CSV has 4 decimals)
        np.testing.assert_allclose(m[0], src.moving_xy[k], atol=1e-3)
        assert (0 <= row[["fixed_x", "fixed_y", "moving_x", "moving_y"]].to_numpy()).all()
        assert (row[["fixed_x", "fixed_y", "moving_x", "moving_y"]].to_numpy() <= 31).all()
    # Every control point inside a window with both ends shows up in that window (none lost, none invented).
    n_expected = 0
    for src in originals.values():
        f, m = fire.to_dataset_xy(src.fixed_xy, scale), fire.to_dataset_xy(src.moving_xy, scale)
        for x0, y0 in fire_reg_256.windows(fire.read_mask(fire_tree, (64, 64)), 64, 32, 16, 0.9):
            n_expected += len(fire_reg_256.landmarks_in_patch(f, m, x0, y0, 32)[0])
    assert len(lms) == n_expected


def test_patches_are_same_window_crops(fire_tree: Path, tmp_path: Path) -> None:
    ds = PreparedDataset(fire_reg_256.prepare(tmp_path / "p", "p", _patch_params(fire_tree), seed=0))
    split = ds.split("train")
    pid = split.pair_ids[0]
    pair_id, x0, y0 = fire_reg_256.parse_patch_id(pid)
    src = {p.pair_id: p for p in fire.list_pairs(fire_tree)}[pair_id]
    fixed_full = resample(read_gray(src.fixed_path), (64, 64))
    moving_full = resample(read_gray(src.moving_path), (64, 64))
    moving, fixed = split.pair(0)
    np.testing.assert_allclose(fixed, fixed_full[y0:y0 + 32, x0:x0 + 32], atol=1e-6)
    np.testing.assert_allclose(moving, moving_full[y0:y0 + 32, x0:x0 + 32], atol=1e-6)


def test_split_by_pair_never_shares_a_pair(fire_tree: Path, tmp_path: Path) -> None:
    ds = PreparedDataset(fire_reg_256.prepare(tmp_path / "p", "p", _patch_params(fire_tree), seed=1))
    owner = ds.manifest.assign(fire_pair=ds.manifest["pair_id"].str[:3]).groupby("fire_pair")["split"].nunique()
    assert (owner == 1).all()
    assert set(ds.manifest["split"]) == {"train", "test"}
    assert ds.meta["spec"]["leaky_split"] is False


def test_patch_level_split_warns_and_leaks(fire_tree: Path, tmp_path: Path) -> None:
    params = _patch_params(fire_tree, split_by="patch")
    with pytest.warns(UserWarning, match="leakage"):
        ds = PreparedDataset(fire_reg_256.prepare(tmp_path / "p", "p", params, seed=1))
    owner = ds.manifest.assign(fire_pair=ds.manifest["pair_id"].str[:3]).groupby("fire_pair")["split"].nunique()
    assert (owner > 1).any()
    assert ds.meta["spec"]["leaky_split"] is True


def test_split_pairs_stratified_and_seeded() -> None:
    pairs = [fire.FirePair(f"{c}{i:02d}", c, Path(), Path(), np.zeros((1, 2)), np.zeros((1, 2)))
             for c, n in (("S", 71), ("P", 48), ("A", 14)) for i in range(1, n + 1)]
    frac = {"train": 0.8, "val": 0.1, "test": 0.1}
    alone = {p.pair_id: p.pair_id for p in pairs}  # no shared photographs
    a, b, c = (fire.split_pairs(pairs, frac, s, alone) for s in (0, 0, 1))
    assert a == b and a != c
    tally = pd.Series(a).groupby([pd.Series(a).index.str[0], pd.Series(a).values]).size()
    # train and val rounded per category, test takes the rest: S 57/7/7, P 38/5/5, A 11/1/2
    assert [tally[(c, s)] for c in "SPA" for s in ("train", "val", "test")] == [57, 7, 7, 38, 5, 5, 11, 1, 2]


def test_fire_whole_images_tre_at_original_resolution(fire_tree: Path, tmp_path: Path) -> None:
    params = validate_params(fire, {"source_dir": str(fire_tree), "image_size": 32}, "test")
    ds = PreparedDataset(fire.prepare(tmp_path / "f", "f", params, seed=0))
    assert ds.original_scale == pytest.approx(SIZE / 32)
    test = ds.split("test")
    assert len(test) == len(PAIRS) - 1 and len(ds.split("train")) == 0  # full protocol set, P37 dropped
    assert set(test.manifest["category"]) == {"S", "P", "A"}
    zero = np.zeros((2, 32, 32), np.float32)
    for pid in test.pair_ids:
        fixed_xy, moving_xy = test.landmarks_of(pid)
        # the unregistered TRE, scaled back, is the mean control-point distance in original pixels
        expected = float(np.linalg.norm(PAIRS[pid]))
        assert tre(zero, fixed_xy, moving_xy) * ds.original_scale == pytest.approx(expected, abs=2e-3)


def test_pairs_sharing_a_photograph_are_split_together(tmp_path: Path) -> None:
    """FIRE reuses photographs across pairs under other names: group by file content, split by group."""
    import shutil

    fire_tree = make_fire_tree(tmp_path / "own")  # modified below: not the shared fixture
    shutil.copyfile(fire_tree / "Images" / "P01_2.jpg", fire_tree / "Images" / "S02_1.jpg")  # same bytes, new name
    pairs = fire.list_pairs(fire_tree, ["P37"])
    groups = fire.image_components(pairs)
    assert groups["S02"] == groups["P01"] == "P01+S02" and groups["S01"] == "S01" and groups["A01"] == "A01"
    frac = {"train": 0.5, "val": 0.0, "test": 0.5}
    for seed in range(12):
        split = fire.split_pairs(pairs, frac, seed)
        assert split["S02"] == split["P01"], seed
    ds = PreparedDataset(fire_reg_256.prepare(tmp_path / "p", "p", _patch_params(fire_tree), seed=1))
    m = ds.manifest.assign(fire_pair=ds.manifest["pair_id"].str[:3])
    assert m.groupby("cluster")["split"].nunique().max() == 1
    assert set(m.loc[m["fire_pair"].isin(["S02", "P01"]), "cluster"]) == {"P01+S02"}
    assert set(m.loc[m["fire_pair"] == "S01", "cluster"]) == {"S01"}

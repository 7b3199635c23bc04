"""Synthetic datasets: determinism, exact ground truth, disjoint splits, the on-disk format."""

import numpy as np
import pytest

from pcreg.config import validate_params
from pcreg.datasets import PreparedDataset, get_dataset_type
from pcreg.datasets.synthetic_fundus import SPLIT_QUADRANTS, load_source, make_pair
from pcreg.datasets.synthetic_orpam import _invert_shift
from pcreg.metrics import ncc, tre
from pcreg.warp import map_points, warp_image


def _prepare(tmp_path, type_name, params, seed=0, name="ds"):
    module = get_dataset_type(type_name)
    module.prepare(tmp_path / name, name, validate_params(module, params, "test"), seed)
    return PreparedDataset(tmp_path / name)


FUNDUS = {"image_size": 48, "crop_px": 64, "pairs": {"train": 4, "val": 2, "test": 6}}
ORPAM = {"height": 40, "width": 32, "sequences": {"train": 1, "val": 1, "test": 2}, "frames": 3}


def test_fundus_ground_truth_is_exact_without_appearance_change():
    rng = np.random.default_rng(1)
    for category in "SPA":
        p = make_pair(rng, category, image_size=64, crop_px=96, quadrants=SPLIT_QUADRANTS["test"], appearance=False)
        warped = warp_image(p["moving"], p["field"])
        inner = (slice(8, -8), slice(8, -8))
        # Fixed and warped moving sample the same source points (bilinear of a bilinear sample: small error).
        assert np.abs(warped - p["fixed"])[inner].mean() < 0.01
        assert ncc(warped[inner], p["fixed"][inner]) > 0.98
        assert tre(p["field"], p["fixed_xy"], p["moving_xy"]) < 1e-3
        np.testing.assert_allclose(map_points(p["field"], p["fixed_xy"]), p["moving_xy"])


def test_fundus_categories_differ_in_displacement():
    rng = np.random.default_rng(2)
    mags = {c: np.mean([np.abs(make_pair(rng, c, image_size=64, crop_px=96, quadrants=SPLIT_QUADRANTS["train"])
                               ["field"]).mean() for _ in range(6)]) for c in "SP"}
    assert mags["P"] > 2 * mags["S"]


def test_fundus_splits_use_disjoint_source_regions():
    rng = np.random.default_rng(3)
    half = load_source()[0].shape[0] // 2
    for split, quadrants in SPLIT_QUADRANTS.items():
        for _ in range(5):
            p = make_pair(rng, "P", image_size=64, crop_px=96, quadrants=quadrants)
            r, c = p["source_center"]
            rad = p["source_radius"]
            q = (int(r // half), int(c // half))
            assert q in quadrants, split
            # the whole footprint stays inside the quadrant
            assert q[0] * half <= r - rad and r + rad <= (q[0] + 1) * half
            assert q[1] * half <= c - rad and c + rad <= (q[1] + 1) * half
    used = [q for qs in SPLIT_QUADRANTS.values() for q in qs]
    assert len(used) == len(set(used))


def test_fundus_dataset_is_deterministic_and_well_formed(tmp_path):
    a = _prepare(tmp_path / "a", "synthetic-fundus", FUNDUS, seed=7)
    b = _prepare(tmp_path / "b", "synthetic-fundus", FUNDUS, seed=7)
    c = _prepare(tmp_path / "c", "synthetic-fundus", FUNDUS, seed=8)
    ta, tb, tc = a.split("test"), b.split("test"), c.split("test")
    assert np.array_equal(ta.moving, tb.moving) and np.array_equal(ta.field, tb.field)
    assert not np.array_equal(ta.moving, tc.moving)
    assert len(ta) == 6 and ta.moving.shape == (6, 48, 48) and ta.field.shape == (6, 2, 48, 48)
    assert ta.moving.dtype == np.float32 and 0.0 <= float(np.min(ta.moving)) and float(np.max(ta.moving)) <= 1.0
    assert set(ta.manifest["category"]) <= {"S", "P", "A"}
    for pid in ta.pair_ids:
        fixed_xy, moving_xy = ta.landmarks_of(pid)
        assert fixed_xy.shape == (10, 2)
        i = ta.pair_ids.index(pid)
        assert tre(np.asarray(ta.field[i]), fixed_xy, moving_xy) < 1e-3
    assert a.original_scale == pytest.approx(64 / 48)


def test_orpam_ground_truth_and_sequences(tmp_path):
    ds = _prepare(tmp_path, "synthetic-orpam", ORPAM, seed=0)
    test = ds.split("test")
    assert len(test) == 6
    assert list(test.manifest["frame"]) == [0, 1, 2, 0, 1, 2]
    assert test.manifest["sequence"].nunique() == 2
    assert not set(test.manifest["sequence"]) & set(ds.split("train").manifest["sequence"])
    for i in range(len(test)):
        moving, fixed = test.pair(i)
        field = np.asarray(test.field[i])
        # half a column between the sweeps, plus the lag along the fast axis
        assert np.all(field[1] == -0.5) and np.abs(field[0]).max() > 0.1
        inner = (slice(6, -6), slice(None))
        assert ncc(warp_image(moving, field)[inner], fixed[inner]) > ncc(moving[inner], fixed[inner])


def test_orpam_ground_truth_maximises_ncc_among_nearby_subpixel_shifts():
    """Warping by the ground truth aligns the sweeps better than the same field shifted by up to a pixel."""
    from pcreg.datasets import synthetic_orpam as so

    rng = np.random.default_rng(5)
    h, w = 96, 64
    layers = so.render_vessel_layers((h, 2 * w), 20, rng)
    scores = {}
    frames = [so.make_frame(layers, np.ones(len(layers)), (0.0, 0.0), rng, 4.0, 0.85, 0.01)
              for _ in range(3)]
    inner = (slice(10, -10), slice(4, -4))
    for dy in (-0.5, -0.25, 0.0, 0.25, 0.5):
        for dx in (-0.5, -0.25, 0.0, 0.25, 0.5):
            shifted = [f["field"] + np.array([dy, dx], np.float32)[:, None, None] for f in frames]
            scores[dy, dx] = np.mean([ncc(warp_image(f["moving"], u)[inner], f["fixed"][inner])
                                      for f, u in zip(frames, shifted)])
    assert max(scores, key=scores.get) == (0.0, 0.0), scores


def test_invert_shift_is_the_pull_back_of_the_backward_sweep():
    y = np.arange(50, dtype=float)
    delta = 1.5 + 0.8 * np.sin(y / 9.0)
    u = _invert_shift(delta)
    # y + u lands where the backward sweep's displaced position equals y
    np.testing.assert_allclose(y + u + np.interp(y + u, y, delta), y, atol=1e-6)


def test_missing_dataset_gives_clear_error(tmp_path):
    from pcreg.errors import UserError

    with pytest.raises(UserError, match="no prepared dataset"):
        PreparedDataset(tmp_path / "nope")

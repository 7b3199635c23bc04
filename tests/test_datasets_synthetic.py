"""Synthetic datasets: determinism, exact ground truth, disjoint splits, the on-disk format."""

import numpy as np
import pytest
from scipy import ndimage

from pcreg.config import validate_params
from pcreg.datasets import PreparedDataset, get_dataset_type
from pcreg.datasets.fundus_geometry import homography_field, intrinsics, non_affine_residual, overlap, rotation
from pcreg.datasets.synthetic_fundus import make_pair, original_scale
from pcreg.datasets.synthetic_orpam import _invert_shift
from pcreg.metrics import ncc, recoverable_mask, ssim_gaussian, tre
from pcreg.warp import map_points, warp_image


def _prepare(tmp_path, type_name, params, seed=0, name="ds"):
    module = get_dataset_type(type_name)
    module.prepare(tmp_path / name, name, validate_params(module, params, "test"), seed)
    return PreparedDataset(tmp_path / name)


FUNDUS = {"image_size": 48, "pairs": {"train": 4, "val": 2, "test": 6}}
ORPAM = {"height": 40, "width": 32, "sequences": {"train": 1, "val": 1, "test": 2}, "frames": 3}


def test_fundus_ground_truth_is_exact_without_appearance_change():
    rng = np.random.default_rng(1)
    for category in "SPA":
        p = make_pair(rng, category, image_size=64, appearance=False)
        warped = warp_image(p["moving"], p["field"])
        # where the correspondence lies inside the moving image (away from its border)
        inner = recoverable_mask(p["field"]) & (ndimage.binary_erosion(np.ones((64, 64), bool), iterations=3))
        # fixed and warped moving sample the same scene points (bilinear of a sub-pixel average: small error)
        assert np.abs(warped - p["fixed"])[inner].mean() < 0.01
        assert ncc(warped[inner], p["fixed"][inner]) > 0.98
        assert tre(p["field"], p["fixed_xy"], p["moving_xy"]) < 1e-3
        np.testing.assert_allclose(map_points(p["field"], p["fixed_xy"]), p["moving_xy"])


def test_fundus_ground_truth_beats_nearby_fields():
    """The ground-truth warp aligns better than the same field shifted by a pixel (the geometry is right): SSIM,
    which sees the fine structure that a pixel of misalignment destroys."""
    rng = np.random.default_rng(4)
    p = make_pair(rng, "S", image_size=96)
    base = ssim_gaussian(warp_image(p["moving"], p["field"]), p["fixed"])
    for d in ((1, 0), (0, 1), (-1, 0), (0, -1)):
        shifted = p["field"] + np.array(d, np.float32)[:, None, None]
        assert ssim_gaussian(warp_image(p["moving"], shifted), p["fixed"]) < base - 0.05


def test_fundus_categories_follow_fires_overlap_definitions():
    """S and A: overlap > 75 %; P: overlap < 75 % (Hernandez-Matas et al. 2017); the field is not affine."""
    rng = np.random.default_rng(2)
    for category in "SPA":
        for _ in range(3):
            p = make_pair(rng, category, image_size=64)
            assert (p["overlap"] < 0.75) == (category == "P"), (category, p["overlap"])
            assert p["overlap"] == pytest.approx(overlap(p["field"]))
            assert non_affine_residual(p["field"]) > 0.05


def test_homography_is_a_camera_rotation():
    """Pure pan of the camera: the map is a homography, about f tan(angle) px of translation at the centre."""
    K = intrinsics(128)
    H = K @ rotation(np.radians(5.0), 0.0, 0.0) @ np.linalg.inv(K)
    field = homography_field(H / H[2, 2], (128, 128))
    c = 63.5
    assert field[1, 64, 64] == pytest.approx(K[0, 0] * np.tan(np.radians(5.0)), rel=0.02)
    assert abs(field[0, 64, 64]) < 0.2
    # projective: the horizontal displacement differs between the left and right edges (not a translation)
    assert abs(field[1, int(c), 0] - field[1, int(c), 127]) > 0.5


def test_each_pair_is_its_own_eye():
    rng1, rng2 = np.random.default_rng(9), np.random.default_rng(9)
    a, b = make_pair(rng1, "S", image_size=48), make_pair(rng2, "S", image_size=48)
    assert np.array_equal(a["moving"], b["moving"])  # determinism
    c = make_pair(rng1, "S", image_size=48)
    assert abs(ncc(a["moving"], c["moving"])) < 0.5  # a new eye, not a new crop of one photograph


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
    assert a.original_scale == pytest.approx(original_scale(48))
    assert original_scale(128) == pytest.approx(14.7, abs=0.1)  # a 2912-px, 45-degree photograph
    # every pair its own eye: one cluster per pair
    assert ta.manifest["cluster"].nunique() == len(ta)


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


def test_acquisition_models_shot_noise_jpeg_and_static_vignetting():
    from pcreg.datasets.acquisition import jpeg, shot_and_read_noise, vignetting

    rng = np.random.default_rng(0)
    dark = shot_and_read_noise(np.full((64, 64), 0.1), rng, photons=400, read_std=0.0)
    bright = shot_and_read_noise(np.full((64, 64), 0.8), rng, photons=400, read_std=0.0)
    # Poisson: variance = signal / photons
    assert dark.var() == pytest.approx(0.1 / 400, rel=0.15) and bright.var() == pytest.approx(0.8 / 400, rel=0.15)
    img = rng.random((32, 32)).astype(np.float32)
    out = jpeg(img, 40)
    assert out.dtype == np.float32 and 0 < np.abs(out - img).mean() < 0.2 and np.array_equal(out, jpeg(img, 40))
    v = vignetting((33, 33), rng, strength=0.5, centre_jitter=0.0)
    assert v[16, 16] == pytest.approx(1.0) and v[0, 0] < v[16, 0] < 1.0

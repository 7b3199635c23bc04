"""Content fidelity: feature masks in the dataset format, kept / invented metrics, table and figure."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pcreg.config import validate_params
from pcreg.datasets import PreparedDataset, get_dataset_type
from pcreg.datasets.lesions import disc_profile
from pcreg.evaluation.fidelity import contrast, pair_fidelity, ring
from pcreg.reporting.outputs import figure_path
from pcreg.warp import warp_image


def _handmade(shift=(2.0, -3.0), size=64, seed=0):
    """A textured scene; moving has a dark dot (moving-only), fixed = scene pulled back by a constant shift plus
    a bright dot (fixed-only). Returns moving, fixed, gt field, labels and kinds."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size + 16, 0:size + 16].astype(np.float64)
    scene = 0.4 + 0.1 * np.sin(xx / 7.0) * np.cos(yy / 9.0) + 0.003 * rng.normal(size=yy.shape)
    gt = np.zeros((2, size, size), np.float32)
    gt[0], gt[1] = shift
    moving_scene = scene[8:8 + size, 8:8 + size].copy()
    dot_m = disc_profile((size, size), (30.0, 22.0), 2.5)
    moving = (moving_scene * (1 - 0.5 * dot_m)).astype(np.float32)
    fixed = warp_image(moving_scene.astype(np.float32), gt)
    dot_f = disc_profile((size, size), (40.0, 45.0), 2.5)
    fixed = (fixed + 0.3 * dot_f).astype(np.float32)
    labels_moving = np.zeros((size, size), np.uint8)
    labels_moving[dot_m > 0.5] = 1
    labels_fixed = np.zeros((size, size), np.uint8)
    labels_fixed[warp_image(dot_m.astype(np.float32), gt) > 0.5] = 1
    labels_fixed[dot_f > 0.5] = 2
    kinds = {1: ("moving_only", "microaneurysm"), 2: ("fixed_only", "exudate")}
    return moving, fixed, gt, labels_moving, labels_fixed, kinds


def test_contrast_is_mask_minus_ring_and_ignores_offsets():
    img = np.full((20, 20), 0.3)
    mask = np.zeros((20, 20), bool)
    mask[8:12, 8:12] = True
    img[mask] = 0.7
    assert not (ring(mask) & mask).any() and ring(mask).any()
    assert contrast(img, mask) == pytest.approx(0.4)
    assert contrast(img + 0.2, mask) == pytest.approx(0.4)


def test_ground_truth_warp_keeps_and_does_not_invent():
    moving, fixed, gt, lm, lf, kinds = _handmade()
    out = pair_fidelity(warp_image(moving, gt), moving, fixed, gt, lm, lf, kinds, field=gt)
    assert out["kept"] == pytest.approx(1.0, abs=1e-6)  # the reference is the GT warp itself
    assert out["placement_px"] == pytest.approx(0.0, abs=1e-6)
    searched = pair_fidelity(warp_image(moving, gt), moving, fixed, gt, lm, lf, kinds)  # as an image-only output
    assert searched["kept"] == pytest.approx(1.0, abs=0.1) and searched["placement_px"] <= 1.0
    assert abs(out["invented"]) < 0.1


def test_fixed_copy_oracle_erases_and_invents():
    moving, fixed, gt, lm, lf, kinds = _handmade()
    out = pair_fidelity(fixed, moving, fixed, gt, lm, lf, kinds)
    assert abs(out["kept"]) < 0.2  # the best of 49 shifts over a background without the dot
    assert out["invented"] == pytest.approx(1.0)


def test_blurred_and_median_filtered_fixed_images_are_not_classed_as_keeping_content():
    from pcreg.reporting.fidelity import FIXED_BLUR, FIXED_MEDIAN, FIXED_ORACLES, KEEPS, verdict

    moving, fixed, gt, lm, lf, kinds = _handmade()
    for oracle in (FIXED_BLUR, FIXED_MEDIAN):
        out = pair_fidelity(FIXED_ORACLES[oracle](fixed), moving, fixed, gt, lm, lf, kinds)
        assert out["kept"] < 0.3, oracle
        assert verdict(out["kept"], out["invented"]) != KEEPS, oracle
    gt_warp = pair_fidelity(warp_image(moving, gt), moving, fixed, gt, lm, lf, kinds, field=gt)
    assert verdict(gt_warp["kept"], gt_warp["invented"]) == KEEPS


def test_content_is_scored_where_the_method_put_it_and_placement_separately():
    moving, fixed, gt, lm, lf, kinds = _handmade(shift=(4.0, -5.0))
    zero = np.zeros_like(gt)
    # Unregistered (a zero field): the dot is intact, only misplaced by |(4, -5)| = 6.4 px.
    unregistered = pair_fidelity(moving, moving, fixed, gt, lm, lf, kinds, field=zero)
    assert unregistered["kept"] == pytest.approx(1.0, abs=0.15)
    assert unregistered["placement_px"] == pytest.approx(np.hypot(4, 5), abs=0.6)
    # The same output scored at the ground-truth position (no field, search ±3 px) is not kept: beyond the window.
    image_only = pair_fidelity(moving, moving, fixed, gt, lm, lf, kinds)
    assert image_only["kept"] < 0.5
    # A ground-truth warp shifted by 2 px: kept with its own field and with the search; placement ~2 px.
    off = gt.copy()
    off[1] += 2.0
    shifted = warp_image(moving, off)
    with_field = pair_fidelity(shifted, moving, fixed, gt, lm, lf, kinds, field=off)
    searched = pair_fidelity(shifted, moving, fixed, gt, lm, lf, kinds)
    assert with_field["kept"] == pytest.approx(1.0, abs=0.1) and searched["kept"] == pytest.approx(1.0, abs=0.1)
    assert with_field["placement_px"] == pytest.approx(2.0, abs=0.5) and searched["placement_px"] == 2.0
    # Without a ground-truth field the reference is the feature's contrast in the moving image itself.
    no_gt = pair_fidelity(warp_image(moving, gt), moving, fixed, None, lm, lf, kinds, field=gt)
    assert no_gt["kept"] == pytest.approx(1.0, abs=0.15)


def test_a_field_that_squeezes_the_feature_away_erases_it_and_ratios_are_clipped():
    from pcreg.evaluation.fidelity import RATIO_RANGE

    moving, fixed, gt, lm, lf, kinds = _handmade()
    # A field that pulls every fixed pixel from one far corner of the moving image: the dot's mask is empty.
    far = np.zeros_like(gt)
    far[0], far[1] = -gt.shape[1], -gt.shape[2]
    assert pair_fidelity(warp_image(moving, far), moving, fixed, gt, lm, lf, kinds, field=far)["kept"] == 0.0
    boosted = warp_image(moving, gt)
    boosted = boosted.mean() + 5.0 * (boosted - boosted.mean())  # contrast x5
    out = pair_fidelity(boosted, moving, fixed, gt, lm, lf, kinds, field=gt)
    assert out["kept"] == RATIO_RANGE[1]


def test_no_features_of_a_kind_gives_nan():
    moving, fixed, gt, lm, lf, kinds = _handmade()
    out = pair_fidelity(fixed, moving, fixed, gt, lm, lf, {2: kinds[2]})
    assert np.isnan(out["kept"]) and out["invented"] == pytest.approx(1.0)


SMALL = {
    "synthetic-fundus": {"image_size": 64, "pairs": {"train": 1, "val": 1, "test": 4}},
    "synthetic-orpam": {"height": 64, "width": 64, "sequences": {"train": 1, "val": 1, "test": 2}, "frames": 2},
}


def _prepare(tmp_path, type_name, params=None, name="ds"):
    module = get_dataset_type(type_name)
    module.prepare(tmp_path / name, name, validate_params(module, params or SMALL[type_name], "t"), 0)
    return PreparedDataset(tmp_path / name)


@pytest.mark.parametrize("type_name", list(SMALL))
def test_synthetic_pairs_carry_masks_consistent_with_the_ground_truth(tmp_path, type_name):
    ds = _prepare(tmp_path, type_name)
    assert ds.meta["has_lesions"]
    test = ds.split("test")
    assert test.lesions_fixed.shape == test.moving.shape and test.lesions_fixed.dtype == np.uint8
    kept, invented = [], []
    for i, pid in enumerate(test.pair_ids):
        kinds = test.lesion_kinds[pid]
        assert sorted(k for k, _ in kinds.values()) == ["fixed_only"] * 2 + ["moving_only"] * 2
        lm, lf = np.asarray(test.lesions_moving[i]), np.asarray(test.lesions_fixed[i])
        gt = np.asarray(test.field[i])
        for label, (kind, _) in kinds.items():
            assert (lf == label).any()
            if kind == "moving_only":  # the fixed-space mask is the moving-space mask pulled back by the field
                pulled = warp_image((lm == label).astype(np.float32), gt) > 0.5
                assert (pulled == (lf == label)).mean() > 0.99
            else:
                assert not (lm == label).any()
        moving, fixed = test.pair(i)
        args = (moving, fixed, gt, lm, lf, kinds)
        gt_score = pair_fidelity(warp_image(moving, gt), *args, field=gt)
        copy_score = pair_fidelity(fixed, *args)
        kept.append((gt_score["kept"], copy_score["kept"]))
        invented.append((gt_score["invented"], copy_score["invented"]))
    kept, invented = np.nanmean(kept, axis=0), np.nanmean(invented, axis=0)
    assert kept[0] == pytest.approx(1.0, abs=0.03) and invented[0] <= 0.2  # ground-truth warp, its own field
    assert kept[1] <= 0.3 and invented[1] == pytest.approx(1.0)  # fixed-copy oracle (best of the search)


def test_folder_lesion_masks_are_read(tmp_path):
    import cv2

    src = tmp_path / "pairs"
    rng = np.random.default_rng(0)
    for sub in ("moving", "fixed", "lesions/moving", "lesions/fixed"):
        (src / sub).mkdir(parents=True)
    for name in ("a", "b", "c"):
        for side in ("moving", "fixed"):
            cv2.imwrite(str(src / side / f"{name}.png"), (rng.random((32, 32)) * 255).astype(np.uint8))
    lm = np.zeros((32, 32), np.uint8)
    lm[5:8, 5:8] = 1
    lf = np.zeros((32, 32), np.uint8)
    lf[6:9, 6:9] = 1
    lf[20:23, 20:23] = 2
    for name in ("a", "b", "c"):
        cv2.imwrite(str(src / "lesions" / "moving" / f"{name}.png"), lm)
        cv2.imwrite(str(src / "lesions" / "fixed" / f"{name}.png"), lf)
    params = {"path": str(src), "image_size": [32, 32], "fractions": {"train": 0, "val": 0, "test": 1}}
    module = get_dataset_type("folder")
    assert module.has_lesions(params)
    ds = _prepare(tmp_path, "folder", params, name="f")
    test = ds.split("test")
    pid = test.pair_ids[0]
    assert test.lesion_kinds[pid] == {1: ("moving_only", "lesion"), 2: ("fixed_only", "lesion")}
    assert np.array_equal(test.lesions_fixed[0], lf) and np.array_equal(test.lesions_moving[0], lm)


def test_folder_moving_label_without_fixed_position_is_one_clear_error(tmp_path):
    import cv2

    from pcreg.datasets.lesions import folder_lesions
    from pcreg.errors import UserError

    m = np.zeros((8, 8), np.uint8)
    m[2, 2] = 3
    cv2.imwrite(str(tmp_path / "m.png"), m)
    cv2.imwrite(str(tmp_path / "f.png"), np.zeros((8, 8), np.uint8))
    with pytest.raises(UserError, match="label\\(s\\) 3 have no fixed-space position"):
        folder_lesions(tmp_path / "m.png", tmp_path / "f.png", (8, 8), "none")


def test_evaluation_writes_kept_and_invented_and_the_table_and_figure(tmp_path):
    from pcreg.evaluation.scoring import evaluate_method
    from pcreg.methods.runner import register_shard
    from pcreg.reporting.fidelity import fidelity_figure, fidelity_table
    from pcreg.reporting.tables import Run

    ds = _prepare(tmp_path, "synthetic-fundus")
    shard = register_shard(ds.root, {"id": "identity", "method": "identity", "params": {}}, 0, 1,
                           tmp_path / "identity" / "shard-0.npz", seed=0, threads=1)
    pairs_csv = evaluate_method(ds.root, [shard], tmp_path / "identity")
    pairs = pd.read_csv(pairs_csv)
    assert {"kept", "invented", "placement_px"} <= set(pairs.columns) and pairs["kept"].notna().all()
    runs = [Run("identity", "Unregistered", "reference", pairs_csv, method="identity")]
    paths = fidelity_table(ds.root, runs, "ds", tmp_path / "tables" / "fidelity_ds", n_boot=200)
    assert [p.suffix for p in paths] == [".csv", ".md", ".tex", ".html"]
    table = pd.read_csv(paths[0]).set_index("run")
    assert table.loc["gt_warp", "verdict"] == "keeps content"
    for oracle in ("fixed_copy", "fixed_blur", "fixed_median"):  # made from the fixed image: must fail
        assert table.loc[oracle, "verdict"] != "keeps content", oracle
        assert table.loc[oracle, "kept_at"].startswith("best in")
    # Unregistered keeps the content (a zero field moves nothing), misplaced by the ground-truth motion.
    assert table.loc["identity", "kept_mean"] > 0.8 and table.loc["identity", "placement_px_mean"] > 0.5
    assert table.loc["identity", "kept_at"] == "own field"
    assert table.loc["identity", "kept_ci_low"] <= table.loc["identity", "kept_mean"] <= \
        table.loc["identity", "kept_ci_high"]
    assert {"kept_median", "invented_median", "placement_px_median", "kept_minus_invented"} <= set(table.columns)
    md = paths[1].read_text()
    assert "keeps content if K ≥ 0.5 and K − I ≥ 0.5" in md and "Placement error" in md
    fig = fidelity_figure(ds.root, runs, "ds", Path(figure_path("fidelity", "ds", tmp_path / "figures")))
    assert fig.is_file() and fig.stat().st_size > 1000


def test_cluster_bootstrap_resamples_whole_clusters():
    from pcreg.evaluation.stats import cluster_bootstrap_ci

    # Two clusters with constant values: every resample mean is one of 0, 0.5, 1 (never anything else).
    values = [0.0] * 5 + [1.0] * 5
    low, high = cluster_bootstrap_ci(values, ["a"] * 5 + ["b"] * 5, 500, 0)
    assert low == 0.0 and high == 1.0
    low_p, high_p = cluster_bootstrap_ci(values, [str(i) for i in range(10)], 500, 0)
    assert 0.0 < low_p < high_p < 1.0  # pairs as units: a much narrower interval

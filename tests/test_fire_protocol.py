"""FIRE protocol: success curve, AUC / mAUC and the inaccurate flag on hand-checked examples."""

from __future__ import annotations

import numpy as np
import pytest

from pcreg.evaluation.fire_protocol import (
    FAILED_ERROR,
    auc,
    category_auc,
    pair_status,
    point_errors,
    status_counts,
    success_curve,
    success_table,
    to_original_resolution,
)
from pcreg.warp import shift_field


def test_auc_hand_checked_four_pairs():
    # Errors (original px) 0.5, 3.2, 30, failed. Success = % of the 4 pairs with error < t:
    #   t = 1, 2, 3   -> only 0.5           -> 25 % (3 thresholds)
    #   t = 4 .. 25   -> 0.5 and 3.2        -> 50 % (22 thresholds); 30 and failed never succeed
    # sum = 3 * 25 + 22 * 50 = 1175, AUC = 1175 / 2500 = 0.47
    errors = to_original_resolution([0.5, 3.2, 30.0, 0.0], 1.0, failed=[False, False, False, True])
    assert errors[3] == FAILED_ERROR
    curve = success_curve(errors)
    assert curve.shape == (25,)
    np.testing.assert_allclose(curve[:3], 25.0)
    np.testing.assert_allclose(curve[3:], 50.0)
    assert auc(errors) == pytest.approx(0.47)


def test_threshold_is_strict_and_nan_is_failure():
    assert success_curve([1.0], thresholds=[1, 2]).tolist() == [0.0, 100.0]
    assert auc([np.nan]) == 0.0
    assert auc([0.0]) == 1.0


def test_category_auc_and_mauc_hand_checked():
    # S: 0.5, 3.2 -> 50 % at t = 1..3, 100 % at t = 4..25 -> (150 + 2200) / 2500 = 0.94
    # P: 30, failed -> 0
    # A: 10 -> 100 % for t = 11..25 (15 thresholds) -> 1500 / 2500 = 0.6
    # mAUC = (0.94 + 0 + 0.6) / 3
    errors = [0.5, 30.0, 10.0, 3.2, FAILED_ERROR]
    cats = ["S", "P", "A", "S", "P"]
    table = category_auc(errors, cats).set_index("category")
    assert table.loc["S", "auc"] == pytest.approx(0.94)
    assert table.loc["P", "auc"] == pytest.approx(0.0)
    assert table.loc["A", "auc"] == pytest.approx(0.6)
    assert table.loc["mAUC", "auc"] == pytest.approx((0.94 + 0.0 + 0.6) / 3)
    assert table.loc["all", "n"] == 5 and table.loc["S", "n"] == 2
    # mAUC needs all three categories.
    assert np.isnan(category_auc([1.0, 2.0], ["S", "P"]).set_index("category").loc["mAUC", "auc"])
    curve = success_table(errors, cats)
    assert set(curve["category"]) == {"S", "P", "A", "all"} and len(curve) == 4 * 25
    a = curve[(curve.category == "A")].set_index("threshold")["success_pct"]
    assert a.loc[10.0] == 0.0 and a.loc[11.0] == 100.0


def test_original_resolution_scaling():
    scale = 2912 / 256
    np.testing.assert_allclose(to_original_resolution([0.1, 2.0, np.nan], scale), [1.1375, 22.75, FAILED_ERROR])


def test_inaccurate_flag_superretina_rule():
    assert pair_status(np.full(10, 5.0))["status"] == "acceptable"
    s = pair_status(np.array([10.0] * 9 + [60.0]))  # max 60 > 50, median 10
    assert s["status"] == "inaccurate" and s["max"] == 60.0 and s["error"] == pytest.approx(15.0)
    assert pair_status(np.full(10, 25.0))["status"] == "inaccurate"  # median 25 > 20
    assert pair_status(np.array([20.0] * 9 + [50.0]))["status"] == "acceptable"  # limits are strict
    f = pair_status(np.full(10, 1.0), failed=True)
    assert f["status"] == "failed" and f["error"] == FAILED_ERROR
    counts = status_counts(["failed", "acceptable", "acceptable", "inaccurate"])
    assert counts == {"failed": 25.0, "inaccurate": 25.0, "acceptable": 50.0}


def test_point_errors_through_a_field():
    # Moving = fixed shifted by (+3, -2): the correct field maps (10, 10) -> (13, 8).
    field = shift_field((32, 32), dx=3.0, dy=-2.0)
    fixed_xy = np.array([[10.0, 10.0], [20.0, 5.0]])
    np.testing.assert_allclose(point_errors(field, fixed_xy, fixed_xy + [3.0, -2.0]), [0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(point_errors(field, fixed_xy, fixed_xy + [6.0, 2.0]), [5.0, 5.0])  # 3-4-5 triangle


def test_moving_to_fixed_inverts_a_smooth_nonlinear_field():
    """map_points_to_fixed solves q + u(q) = m (SuperRetina's direction needs the inverse of the pull-back map)."""
    from pcreg.evaluation.fire_protocol import directional_point_errors, map_points_to_fixed
    from pcreg.warp import map_points

    yy, xx = np.mgrid[:64, :64].astype(np.float64)
    field = np.stack([3.0 * np.sin(xx / 11.0) + 1.0, 2.0 * np.cos(yy / 9.0) - 2.0]).astype(np.float32)
    fixed_xy = np.array([[20.0, 30.0], [40.5, 12.25], [33.0, 45.0]])
    moving_xy = map_points(field, fixed_xy)
    np.testing.assert_allclose(map_points_to_fixed(field, moving_xy), fixed_xy, atol=1e-4)
    np.testing.assert_allclose(directional_point_errors(field, fixed_xy, moving_xy, "moving_to_fixed"), 0, atol=1e-4)
    # A landmark off by (3, 4) in the moving image: forward error exactly 5; inverse error = the pull-back of it.
    off = moving_xy + [3.0, 4.0]
    np.testing.assert_allclose(directional_point_errors(field, fixed_xy, off, "fixed_to_moving"), 5.0)
    back = directional_point_errors(field, fixed_xy, off, "moving_to_fixed")
    assert np.all(back > 2.0) and not np.allclose(back, 5.0, atol=0.05)

"""The geometric convention of docs/CONVENTIONS.md: pull-back fields, (rows, cols) components, (x, y) points."""

import numpy as np

from pcreg.metrics import tre
from pcreg.warp import field_from_matrix, map_points, shift_field, warp_image


def _blob(shape=(40, 50), center=(20.0, 25.0), sigma=3.0):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return np.exp(-((yy - center[0]) ** 2 + (xx - center[1]) ** 2) / (2 * sigma**2)).astype(np.float32)


def test_known_shift_sign_and_axis():
    # Moving content is the fixed content shifted +3 px in x (right) and -2 px in y (up).
    fixed = _blob(center=(20.0, 25.0))
    moving = _blob(center=(18.0, 28.0))
    field = shift_field(fixed.shape, dx=3.0, dy=-2.0)
    assert field[0].mean() == -2.0 and field[1].mean() == 3.0  # u[0] rows, u[1] cols
    warped = warp_image(moving, field)
    np.testing.assert_allclose(warped, fixed, atol=1e-5)
    # The opposite sign or swapped components do not register the pair.
    assert np.abs(warp_image(moving, -field) - fixed).max() > 0.5
    assert np.abs(warp_image(moving, field[::-1].copy()) - fixed).max() > 0.5


def test_landmarks_map_fixed_to_moving():
    field = shift_field((40, 50), dx=3.0, dy=-2.0)
    fixed_xy = np.array([[25.0, 20.0], [10.0, 5.0]])  # (x, y)
    moved = map_points(field, fixed_xy)
    np.testing.assert_allclose(moved, [[28.0, 18.0], [13.0, 3.0]])
    assert tre(field, fixed_xy, moved) == 0.0
    assert abs(tre(np.zeros_like(field), fixed_xy, moved) - np.hypot(3, 2)) < 1e-12


def test_field_from_matrix_maps_fixed_points_to_moving_points():
    # A homogeneous (x, y, 1) transform: rotation about (10, 8) plus a shift.
    a = np.deg2rad(5)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    to_c = np.array([[1, 0, -10], [0, 1, -8], [0, 0, 1.0]])
    back = np.array([[1, 0, 10 + 1.5], [0, 1, 8 - 0.5], [0, 0, 1.0]])
    m = back @ rot @ to_c
    field = field_from_matrix(m, (30, 40))
    pts = np.array([[3.0, 4.0], [20.0, 25.0], [39.0, 0.0]])
    expected = (m @ np.c_[pts, np.ones(3)].T).T[:, :2]
    np.testing.assert_allclose(map_points(field, pts), expected, atol=1e-4)


def test_warp_rejects_bad_fields():
    img = np.zeros((8, 9), np.float32)
    for bad in (np.zeros((9, 8, 2)), np.zeros((2, 8, 8)), np.full((2, 8, 9), np.nan)):
        try:
            warp_image(img, bad)
        except ValueError:
            continue
        raise AssertionError("bad field accepted")

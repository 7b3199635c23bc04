"""SyN (ANTsPy): axis order and direction of the composed field, accuracy, determinism, failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers.pairs import deformed_pair_with_landmarks, retina_crop, shifted_pair

from pcreg.methods.registry import build_method, run_method
from pcreg.metrics import tre
from pcreg.warp import identity_grid, warp_image

ants = pytest.importorskip("ants")


def test_recovers_known_smooth_deformation() -> None:
    moving, fixed, gt, fixed_xy, moving_xy = deformed_pair_with_landmarks(size=128, mean_disp=5.0, seed=1)
    before = tre(np.zeros_like(gt), fixed_xy, moving_xy)
    result = run_method(build_method("syn", threads=1), moving, fixed)
    assert not result.failed, result.reason
    assert before == pytest.approx(5.0, abs=0.1)
    assert tre(result.field, fixed_xy, moving_xy) <= 1.0


def test_shift_has_right_sign_and_axis_on_a_non_square_image() -> None:
    # Moving content shifted right 3 px and up 2 px: u[0] (rows) = -2, u[1] (cols) = +3. A 96x128 image
    # also catches a transposed field (its shape would be wrong).
    moving, fixed = shifted_pair(size=160, dx=3, dy=-2, seed=0)
    moving, fixed = moving[:96, :128], fixed[:96, :128]
    result = run_method(build_method("syn", threads=1), moving, fixed)
    assert not result.failed, result.reason
    assert result.field.shape == (2, 96, 128)
    inner = result.field[:, 16:-16, 16:-16]
    assert inner[0].mean() == pytest.approx(-2.0, abs=0.3)
    assert inner[1].mean() == pytest.approx(3.0, abs=0.3)


def test_composed_field_reproduces_ants_own_warp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Independently of registration accuracy: warping with our converted field must give the image ANTs
    # itself produces from the same affine + deformable transforms (catches direction / component mix-ups).
    moving, fixed, *_ = deformed_pair_with_landmarks(size=96, mean_disp=4.0, seed=3)
    moving = moving[:, :80]  # non-square, so swapped axes cannot go unnoticed
    fixed = fixed[:, :80]
    method = build_method("syn", threads=1)
    result = run_method(method, moving, fixed)
    assert not result.failed, result.reason
    fi = ants.from_numpy(fixed.astype(np.float32))
    mi = ants.from_numpy(moving.astype(np.float32))
    monkeypatch.setenv("ANTS_RANDOM_SEED", str(method.seed + 1))  # the same run as the method's
    reg = ants.registration(fi, mi, type_of_transform="SyN", outprefix=str(tmp_path / "r"), grad_step=0.3)
    by_ants = ants.apply_transforms(fi, mi, reg["fwdtransforms"], interpolator="linear").numpy()
    ours = warp_image(moving, result.field)
    assert np.abs(result.field).max() > 1.0  # a non-trivial transform, or the comparison proves nothing
    # ANTs fills points mapped outside the moving image with 0, the suite replicates the border: compare inside.
    target = identity_grid(moving.shape) + result.field
    limit = np.array(moving.shape, dtype=np.float64).reshape(2, 1, 1) - 1
    inside = np.all((target >= 0) & (target <= limit), axis=0)
    assert inside.mean() > 0.8
    assert np.abs(ours - by_ants)[inside].max() < 1e-3


def test_two_runs_bit_identical_and_seed_matters() -> None:
    moving, fixed, *_ = deformed_pair_with_landmarks(size=96, mean_disp=4.0, seed=2)
    first = run_method(build_method("syn", threads=1, seed=0), moving, fixed)
    second = run_method(build_method("syn", threads=1, seed=0), moving, fixed)
    other = run_method(build_method("syn", threads=1, seed=5), moving, fixed)
    assert not first.failed and np.abs(first.field).max() > 0.5
    assert np.array_equal(first.field, second.field)
    assert not np.array_equal(first.field, other.field)  # the seed reaches ANTs' random sampling


def test_broken_inputs_do_not_crash() -> None:
    fixed = retina_crop(64, seed=0)
    method = build_method("syn", threads=1)
    const = run_method(method, np.full_like(fixed, 0.5), fixed)
    assert const.failed and "constant" in const.reason
    tiny = run_method(method, fixed[:6, :7], fixed[:6, :7] ** 2)  # ANTs itself fails on this one
    assert tiny.field.shape == (2, 6, 7)
    assert tiny.failed or np.all(np.isfinite(tiny.field))

"""Sanity audit: the fixed-copy oracle shows no drop, identity the full drop, a real registerer a large one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage
from skimage.registration import phase_cross_correlation

from pcreg.evaluation.audit import (
    ORACLE,
    audit_methods,
    audit_pairs,
    audit_summary,
    blank_like,
    derangement,
    fixed_copy,
    identity,
    select_pairs,
)
from pcreg.metrics import ncc
from pcreg.warp import shift_field, warp_image


def _pairs(n: int = 6, size: int = 48, seed: int = 0):
    """Smooth random textures (fixed) and copies shifted by a few pixels (moving)."""
    rng = np.random.default_rng(seed)
    fixed, moving = [], []
    for _ in range(n):
        f = ndimage.gaussian_filter(rng.uniform(size=(size, size)), 2.0)
        f = (f - f.min()) / (f.max() - f.min())
        dy, dx = rng.integers(-4, 5, size=2)
        fixed.append(f)
        moving.append(np.roll(f, (int(dy), int(dx)), axis=(0, 1)))
    return np.array(moving, np.float32), np.array(fixed, np.float32)


def shift_register(moving: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """A genuine (rigid-shift) registration: phase correlation, then the suite's warp."""
    shift, _, _ = phase_cross_correlation(fixed, moving, normalization=None)
    if not np.all(np.isfinite(shift)):
        shift = np.zeros(2)
    # warped(p) = moving(p + u): moving content sits at fixed + (-shift), so u = -shift.
    field = shift_field(moving.shape, dx=-float(shift[1]), dy=-float(shift[0]))
    return warp_image(moving, field)


def test_derangement_and_selection():
    for n in (2, 3, 10):
        for seed in range(5):
            d = derangement(n, seed)
            assert sorted(d) == list(range(n)) and np.all(d != np.arange(n))
    assert np.array_equal(derangement(10, 3), derangement(10, 3))
    with pytest.raises(ValueError):
        derangement(1, 0)
    s = select_pairs(100, 10, seed=1)
    assert len(set(s)) == 10 and np.array_equal(s, select_pairs(100, 10, seed=1))
    assert np.array_equal(select_pairs(5, None, 0), np.arange(5))


def test_blank_like():
    m = np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)
    np.testing.assert_array_equal(blank_like(m), np.full((2, 2), 0.5))
    np.testing.assert_array_equal(blank_like(m, "zeros"), np.zeros((2, 2)))
    with pytest.raises(ValueError):
        blank_like(m, "noise")


def test_shift_register_is_a_real_registration():
    moving, fixed = _pairs()
    # np.roll wraps content around while the warp replicates borders, so a perfect shift scores just below 1.
    before = [ncc(m, f) for m, f in zip(moving, fixed)]
    after = [ncc(shift_register(m, f), f) for m, f in zip(moving, fixed)]
    assert min(after) > 0.93 and np.mean(after) > np.mean(before) + 0.4


def test_oracle_identity_and_registerer():
    moving, fixed = _pairs()
    df = audit_methods({"identity": identity, "shift": shift_register}, moving, fixed, seed=4,
                       pair_ids=[f"p{i}" for i in range(len(fixed))])
    assert list(df["method"].unique()) == [ORACLE, "identity", "shift"]
    assert len(df) == 3 * 3 * len(fixed)
    summary = audit_summary(df).set_index("method")

    oracle = summary.loc[ORACLE]
    # Fixed-copy: NCC 1 and no drop under any condition (PSNR inf - inf counted as no drop).
    assert oracle["ncc_normal"] == pytest.approx(1.0) and oracle["ncc_shuffled"] == pytest.approx(1.0)
    for m in ("ncc", "ssim", "psnr"):
        assert oracle[f"{m}_drop_blank"] == 0.0 and oracle[f"{m}_drop_shuffled"] == 0.0
    assert oracle["psnr_normal"] == np.inf
    assert oracle["retained_shuffled"] == pytest.approx(1.0) and oracle["verdict"] == "copies fixed?"

    ident = summary.loc["identity"]
    # Identity shows the full drop: blank -> NCC 0 (drop = its normal NCC), shuffled -> exactly chance.
    assert ident["ncc_blank"] == 0.0
    assert ident["ncc_drop_blank"] == pytest.approx(ident["ncc_normal"])
    assert ident["ncc_shuffled"] == pytest.approx(ident["chance_ncc"])
    assert ident["retained_shuffled"] == pytest.approx(0.0, abs=1e-12)
    assert ident["ncc_drop_shuffled"] == pytest.approx(ident["ncc_normal"] - ident["chance_ncc"])

    reg = summary.loc["shift"]
    assert reg["ncc_normal"] > 0.95 and reg["ncc_drop_shuffled"] > 0.5 and reg["ncc_drop_blank"] > 0.9
    assert reg["verdict"] == "uses moving" and reg["retained_shuffled"] < 0.5
    assert reg["psnr_drop_shuffled"] > 10


def test_partial_copier_is_flagged_with_its_drop():
    moving, fixed = _pairs()

    def blend(m: np.ndarray, f: np.ndarray) -> np.ndarray:  # mostly the fixed image, a little of the moving one
        return 0.8 * f + 0.2 * m

    s = audit_summary(audit_pairs(blend, moving, fixed, seed=0, method="blend")).iloc[0]
    assert s["verdict"] == "copies fixed?"
    assert 0.0 < s["ncc_drop_shuffled"] < 0.1 and s["retained_shuffled"] > 0.8


def test_shuffled_condition_uses_the_donor_and_is_seeded():
    moving, fixed = _pairs(n=4)
    a = audit_pairs(identity, moving, fixed, seed=2)
    b = audit_pairs(identity, moving, fixed, seed=2)
    assert a.equals(b)
    sh = a[a.condition == "shuffled"]
    donors = derangement(4, 2)
    assert list(sh["donor"]) == list(donors)
    for _, row in sh.iterrows():
        assert row["ncc"] == pytest.approx(ncc(moving[row["donor"]], fixed[row["index"]]))
    assert np.array_equal(fixed_copy(moving[0], fixed[0]), fixed[0])


def test_donors_come_from_another_sequence():
    from pcreg.evaluation.audit import derangement

    groups = ["s0", "s0", "s0", "s1", "s1", "s2"]
    for seed in range(6):
        donors = derangement(len(groups), seed, groups)
        assert all(groups[d] != groups[i] for i, d in enumerate(donors))
        assert list(donors) == list(derangement(len(groups), seed, groups))  # deterministic
    # one group (not temporal): the plain cyclic shift
    np.testing.assert_array_equal(derangement(4, 2, ["", "", "", ""]), derangement(4, 2))


def _shifted_pairs(n: int = 12, size: int = 48, seed: int = 0):
    """Like _pairs, with each pair's ground-truth pull-back field (a constant shift)."""
    rng = np.random.default_rng(seed)
    fixed, moving, fields = [], [], []
    for _ in range(n):
        f = ndimage.gaussian_filter(rng.uniform(size=(size, size)), 2.0)
        f = (f - f.min()) / (f.max() - f.min())
        dy, dx = (int(v) for v in rng.integers(2, 6, size=2) * rng.choice([-1, 1], size=2))
        fixed.append(f)
        moving.append(np.roll(f, (dy, dx), axis=(0, 1)))
        fields.append(shift_field((size, size), dx=float(dx), dy=float(dy)))  # moving(p + (dx, dy)) = fixed(p)
    return np.array(moving, np.float32), np.array(fixed, np.float32), fields


def test_verdict_needs_the_ci_to_clear_the_threshold():
    """A method copying the fixed image on half of the pairs retains about half: its CI straddles 0.5."""
    moving, fixed = _pairs(n=12)
    copied = {fixed[i].tobytes() for i in range(0, 12, 2)}

    def half(m: np.ndarray, f: np.ndarray) -> np.ndarray:
        return f.copy() if f.tobytes() in copied else m.copy()

    s = audit_summary(audit_pairs(half, moving, fixed, seed=1, method="half"), seed=0).iloc[0]
    assert s["retained_ci_low"] < 0.5 < s["retained_ci_high"]
    assert s["verdict"] == "inconclusive" and s["intensity_verdict"] == "inconclusive"
    from pcreg.evaluation.audit import verdict

    assert verdict(0.3, 0.6, 0.55, 0.7) == "copies fixed?" and verdict(0.3, 0.4, 0.2, 0.45) == "uses moving"
    assert verdict(0.3, 0.6, 0.3, 0.8) == "inconclusive"


def test_geometric_test_tells_registration_from_fitting_the_fixed_image():
    """The field from another pair's moving image must not improve the fixed pair's EPE."""
    from pcreg.metrics import epe

    moving, fixed, fields = _shifted_pairs()

    def geometry(i, field):
        return epe(field, fields[i], mask=np.ones(fields[i].shape[1:], bool))

    def shift_with_field(m, f):
        shift, _, _ = phase_cross_correlation(f, m, normalization=None)
        u = shift_field(m.shape, dx=-float(shift[1]), dy=-float(shift[0]))
        return warp_image(m, u), u

    truth = {f.tobytes(): u for f, u in zip(fixed, fields)}

    def knows_fixed(m, f):  # a field fitted to the fixed image alone (here: looked up), whatever the moving image
        u = truth[f.tobytes()]
        return warp_image(m, u), u

    df = pd.concat([audit_pairs(shift_with_field, moving, fixed, 0, method="shift", geometry=geometry),
                    audit_pairs(knows_fixed, moving, fixed, 0, method="cheat", geometry=geometry)])
    s = audit_summary(df).set_index("method")
    assert s.loc["shift", "geo_gain_normal"] > 3 and s.loc["shift", "geo_gain_shuffled"] < 0
    assert s.loc["shift", "geo_check"] == "field follows the pair"
    assert s.loc["shift", "verdict"] == "uses moving (geometry)"
    assert s.loc["cheat", "geo_gain_shuffled"] == pytest.approx(s.loc["cheat", "geo_identity"])
    assert s.loc["cheat", "geo_check"] == "field ignores the pair"
    assert s.loc["cheat", "verdict"] != "uses moving (geometry)"


def test_default_config_audits_enough_pairs():
    import yaml

    from pcreg.config import validate_config

    root = Path(__file__).resolve().parent.parent
    default = validate_config(yaml.safe_load((root / "config" / "config.yaml").read_text()))
    assert default["audit"]["pairs"] >= 16

"""TNCC / TNCG and the merged-frame column layout on hand-made sequences."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from pcreg.evaluation.temporal import (
    consecutive_ncc,
    merge_frame,
    odd_only_tncc,
    per_sequence,
    temporal_pairs,
    temporal_summary,
    tncc,
    tncg,
)


def test_merge_frame_column_layout():
    odd = np.array([[10.0, 11.0, 12.0], [13.0, 14.0, 15.0]])
    even = -odd
    m = merge_frame(odd, even)
    assert m.shape == (2, 6)
    # Paper's 1-based odd columns 1, 3, 5 = 0-based 0, 2, 4 hold the odd (fixed) image.
    np.testing.assert_array_equal(m[0], [10, -10, 11, -11, 12, -12])
    np.testing.assert_array_equal(m[:, 0::2], odd)
    np.testing.assert_array_equal(m[:, 1::2], even)
    with pytest.raises(ValueError):
        merge_frame(odd, even[:, :2])


def test_tncc_hand_checked():
    x = np.random.default_rng(0).uniform(size=(8, 8))
    # NCC(x, x) = 1, NCC(x, 1 - x) = -1, NCC(1 - x, 2x + 3) = -1 -> mean of (1, -1, -1) = -1/3.
    frames = [x, x, 1 - x, 2 * x + 3]
    np.testing.assert_allclose(consecutive_ncc(frames), [1, -1, -1], atol=1e-12)
    assert tncc(frames) == pytest.approx(-1 / 3)
    assert odd_only_tncc(frames) == tncc(frames)
    assert np.isnan(tncc([x]))
    # A constant frame has no NCC and its pairs drop out of the mean.
    assert tncc([x, x, np.zeros_like(x)]) == pytest.approx(1.0)
    assert tncg(0.963, 0.964) == pytest.approx(-0.001)


def _sequence(rng: np.random.Generator, n_frames: int, shape=(32, 16)):
    """Odd-column frames of a slowly changing scene, and even-column frames of the same scene."""
    base = ndimage.gaussian_filter(rng.uniform(size=shape), 1.5)
    odd, even_true = [], []
    for _ in range(n_frames):
        base = 0.9 * base + 0.1 * ndimage.gaussian_filter(rng.uniform(size=shape), 1.5)
        odd.append(base.copy())
        even_true.append(0.8 * base + 0.05)  # same geometry, different intensity (backward scan)
    return np.array(odd), np.array(even_true)


def test_temporal_pairs_against_direct_computation_and_registration_quality():
    rng = np.random.default_rng(1)
    odd_a, even_a = _sequence(rng, 5)
    odd_b, even_b = _sequence(rng, 3)
    fixed = np.concatenate([odd_a, odd_b])
    registered = np.concatenate([even_a, even_b])
    # Unregistered: every even frame misaligned by its own random shift (jitter between frames).
    shifts = rng.integers(-3, 4, size=(len(fixed), 2))
    shifts[shifts[:, 1] == 0, 1] = 2
    unregistered = np.array([np.roll(e, tuple(s), axis=(0, 1)) for e, s in zip(registered, shifts)])
    seq = ["a"] * 5 + ["b"] * 3
    frame = [0, 1, 2, 3, 4, 10, 11, 12]
    # Rows given in a scrambled order must give the same result.
    perm = rng.permutation(len(seq))
    pairs = temporal_pairs(np.array(seq)[perm], np.array(frame)[perm], fixed[perm], registered[perm])
    assert len(pairs) == 4 + 2 and list(pairs["frame_a"][:4]) == [0, 1, 2, 3]
    # Independent computation of one row with np.corrcoef on a hand-built merged frame.
    def merged(i):
        out = np.empty((32, 32))
        out[:, ::2], out[:, 1::2] = fixed[i], registered[i]
        return out
    expected = np.corrcoef(merged(5).ravel(), merged(6).ravel())[0, 1]
    row = pairs[(pairs.sequence == "b") & (pairs.frame_a == 10)].iloc[0]
    assert row["ncc_merged"] == pytest.approx(expected)
    assert row["ncc_odd"] == pytest.approx(np.corrcoef(fixed[5].ravel(), fixed[6].ravel())[0, 1])

    good = temporal_summary(pairs)
    bad = temporal_summary(temporal_pairs(seq, frame, fixed, unregistered))
    assert good["odd_only_tncc"] == pytest.approx(bad["odd_only_tncc"])  # reference ignores the even columns
    assert good["n_frame_pairs"] == 6 and good["n_sequences"] == 2
    assert bad["tncc"] < good["tncc"] - 0.01
    assert bad["tncg"] > good["tncg"] + 0.01
    assert abs(good["tncg"]) < 0.02  # correctly registered even columns stay close to the odd-only reference
    # Pooled over frame pairs, not averaged over sequences.
    assert good["tncc"] == pytest.approx(pairs["ncc_merged"].mean())
    seqs = per_sequence(pairs)
    assert list(seqs["n_frame_pairs"]) == [4, 2]
    assert good["mean_abs_sequence_tncg"] == pytest.approx(seqs["tncg"].abs().mean())


def test_temporal_pairs_gaps_and_duplicates():
    rng = np.random.default_rng(2)
    fixed = rng.uniform(size=(4, 8, 8))
    pairs = temporal_pairs(["s"] * 4, [0, 1, 5, 6], fixed, fixed, max_gap=1)
    assert list(zip(pairs.frame_a, pairs.frame_b)) == [(0, 1), (5, 6)]
    assert len(temporal_pairs(["s"] * 4, [0, 1, 5, 6], fixed, fixed)) == 3
    with pytest.raises(ValueError):
        temporal_pairs(["s"] * 4, [0, 1, 1, 2], fixed, fixed)
    with pytest.raises(ValueError):
        temporal_pairs(["s"] * 3, [0, 1, 2], fixed, fixed)

"""The disk cache of per-pair global transforms (pcreg/methods/pair_cache.py): shared, keyed, never stale."""

from __future__ import annotations

import numpy as np
import pytest

from pcreg.methods.pair_cache import ENV, cached_field, pair_key


@pytest.fixture()
def pair():
    rng = np.random.default_rng(0)
    return rng.random((16, 20)).astype(np.float32), rng.random((16, 20)).astype(np.float32)


class Counter:
    def __init__(self, value: float = 1.5):
        self.calls, self.value = 0, value

    def __call__(self):
        self.calls += 1
        return np.full((2, 16, 20), self.value, np.float32), "sift"


def test_without_the_environment_variable_nothing_is_cached(pair, tmp_path, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    compute = Counter()
    for _ in range(2):
        field, label = cached_field("k", "v1", *pair, compute)
    assert compute.calls == 2 and label == "sift" and not any(tmp_path.iterdir())


def test_a_second_call_reads_the_entry_and_a_code_change_recomputes(pair, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, str(tmp_path / "cache"))
    compute = Counter()
    first = cached_field("k", "v1", *pair, compute)
    second = cached_field("k", "v1", *pair, Counter(9.0))  # would give another value if it were called
    np.testing.assert_array_equal(first[0], second[0])
    assert second[1] == "sift" and compute.calls == 1
    assert len(list((tmp_path / "cache" / "k").glob("*.npz"))) == 1
    changed = Counter(2.0)
    assert cached_field("k", "v2", *pair, changed)[0][0, 0, 0] == 2.0 and changed.calls == 1  # another version
    other = Counter(3.0)
    moving, fixed = pair
    cached_field("k", "v1", moving, fixed + np.float32(1e-3), other)  # another pair
    assert other.calls == 1
    assert pair_key("k", "v1", moving, fixed) != pair_key("k", "v1", moving.T.copy(), fixed.T.copy())


@pytest.mark.parametrize("damage", ["truncated", "wrong shape", "not finite"])
def test_a_damaged_entry_is_recomputed_and_replaced(pair, tmp_path, monkeypatch, damage):
    monkeypatch.setenv(ENV, str(tmp_path))
    cached_field("k", "v1", *pair, Counter())
    (entry,) = (tmp_path / "k").glob("*.npz")
    if damage == "truncated":  # a job killed while writing (the rename makes this unlikely, not impossible)
        entry.write_bytes(entry.read_bytes()[:50])
    else:
        bad = np.zeros((2, 3, 3), np.float32) if damage == "wrong shape" else np.full((2, 16, 20), np.nan, np.float32)
        np.savez(entry, field=bad, label=np.asarray("x"))
    fresh = Counter(4.0)
    assert cached_field("k", "v1", *pair, fresh)[0][0, 0, 0] == 4.0 and fresh.calls == 1
    assert cached_field("k", "v1", *pair, Counter(5.0))[0][0, 0, 0] == 4.0  # replaced


def test_an_unwritable_cache_costs_the_cache_not_the_result(pair, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(ENV, str(blocker))
    field, label = cached_field("k", "v1", *pair, Counter())
    assert field[0, 0, 0] == 1.5 and label == "sift"


def test_the_global_start_is_the_same_with_and_without_the_cache(tmp_path, monkeypatch):
    """The fair start is deterministic, so a run's numbers do not depend on what the cache holds."""
    from scipy import ndimage

    from baselines._global_init import global_field

    rng = np.random.default_rng(5)
    fixed = ndimage.gaussian_filter(rng.random((64, 64)), 2).astype(np.float32)
    fixed = (fixed - fixed.min()) / np.ptp(fixed)
    moving = np.roll(fixed, (3, -2), axis=(0, 1))
    monkeypatch.delenv(ENV, raising=False)
    plain = global_field(moving, fixed, "auto", 0)
    monkeypatch.setenv(ENV, str(tmp_path))
    stored = global_field(moving, fixed, "auto", 0)
    read = global_field(moving, fixed, "auto", 0)
    assert len(list(tmp_path.rglob("*.npz"))) == 1
    for got in (stored, read):
        np.testing.assert_array_equal(got[0], plain[0])
        assert got[1] == plain[1]

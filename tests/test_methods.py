"""The method interface: registry, run_method's guarantees, identity."""

import numpy as np
import pytest

from pcreg.errors import UserError
from pcreg.methods.registry import Method, Registration, available_methods, build_method, get_method_class, run_method
from pcreg.warp import shift_field, warp_image


def test_registry_finds_methods_by_name():
    assert "identity" in available_methods()
    assert get_method_class("identity").name == "identity"
    with pytest.raises(UserError, match="unknown method"):
        get_method_class("does_not_exist")


def test_identity_returns_moving_and_zero_field():
    rng = np.random.default_rng(0)
    moving, fixed = rng.random((2, 16, 12)).astype(np.float32)
    res = run_method(build_method("identity"), moving, fixed)
    assert not res.failed and np.array_equal(res.image, moving)
    assert res.field.shape == (2, 16, 12) and not res.field.any()
    assert res.runtime_s >= 0


class _Shift(Method):
    name = "unit_shift"

    def register(self, moving, fixed):
        return Registration(field=shift_field(moving.shape, 1.0, 0.0))


class _Boom(Method):
    name = "unit_boom"

    def register(self, moving, fixed):
        raise RuntimeError("matcher exploded")


class _ImageOut(Method):
    name = "unit_image"
    outputs_field = False

    def register(self, moving, fixed):
        return Registration(image=fixed * 0.5)


def test_registered_image_is_the_moving_image_warped_by_the_field():
    moving = np.random.default_rng(1).random((10, 10)).astype(np.float32)
    res = _Shift().register(moving, moving)
    out = run_method(_Shift(), moving, moving)
    np.testing.assert_array_equal(out.image, warp_image(moving, res.field))


def test_failures_fall_back_to_identity_and_never_raise():
    moving = np.random.default_rng(2).random((8, 8)).astype(np.float32)
    out = run_method(_Boom(), moving, moving)
    assert out.failed and "matcher exploded" in out.reason
    assert np.array_equal(out.image, moving) and not out.field.any()


def test_image_output_methods_have_no_field():
    moving = np.random.default_rng(3).random((8, 8)).astype(np.float32)
    out = run_method(_ImageOut(), moving, moving)
    assert out.field is None and np.allclose(out.image, moving * 0.5)


def test_params_are_validated_against_the_method_schema():
    with pytest.raises(UserError, match="method 'identity'"):
        build_method("identity", {"unexpected": 1})


class _BatchShift(Method):
    """Shifts by one pixel; batched like the learned methods, and breaks on a pair of all ones."""

    name = "unit_batch_shift"
    calls = 0

    def register(self, moving, fixed):
        if np.all(moving == 1.0):
            raise RuntimeError("bad pair")
        return Registration(field=shift_field(moving.shape, 1.0, 0.0))

    def register_batch(self, moving, fixed):
        type(self).calls += 1
        fields = np.stack([self.register(m, f).field for m, f in zip(moving, fixed)])
        return None, fields


def test_batched_runs_match_pair_by_pair_runs():
    from pcreg.methods.registry import run_method_batch

    rng = np.random.default_rng(4)
    moving, fixed = rng.random((2, 5, 9, 7)).astype(np.float32)
    _BatchShift.calls = 0
    batched = run_method_batch(_BatchShift(), moving, fixed)
    assert _BatchShift.calls == 1  # one call for the stack
    single = [run_method(_BatchShift(), m, f) for m, f in zip(moving, fixed)]
    for b, s in zip(batched, single):
        np.testing.assert_array_equal(b.image, s.image)
        np.testing.assert_array_equal(b.field, s.field)
        assert not b.failed
    assert len({b.runtime_s for b in batched}) == 1  # each pair is charged the batch time / N


def test_a_bad_pair_in_a_batch_fails_alone():
    from pcreg.methods.registry import run_method_batch

    rng = np.random.default_rng(5)
    moving, fixed = rng.random((2, 3, 8, 8)).astype(np.float32)
    moving[1] = 1.0
    results = run_method_batch(_BatchShift(), moving, fixed)
    assert [r.failed for r in results] == [False, True, False]
    assert "bad pair" in results[1].reason and np.array_equal(results[1].image, moving[1])


class _Constant(Method):
    name = "unit_constant"
    outputs_field = False

    def register(self, moving, fixed):
        return Registration(image=np.full_like(fixed, 0.42))  # what an undertrained network can output


def test_a_constant_output_is_a_failure_with_a_reason():
    """A constant registered image used to be scored failed = False with NCC left blank (n silently smaller)."""
    moving, fixed = np.random.default_rng(4).random((2, 8, 8)).astype(np.float32)
    out = run_method(_Constant(), moving, fixed)
    assert out.failed and "degenerate output" in out.reason and "constant" in out.reason
    assert np.array_equal(out.image, moving)  # the identity fallback, like every failure
    # A constant moving image (the audit's blank input) legitimately gives a constant output.
    blank = np.full((8, 8), 0.3, np.float32)
    assert not run_method(build_method("identity"), blank, fixed).failed

"""PCReg-Net: parameter count, shapes, what each ablation flag changes, and its loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pcreg.config import validate_params
from pcreg.methods.registry import get_method_class
from pcreg.metrics import ssim
from pcreg.net.loss import CompositeLoss, pcreg_loss, ssim_torch
from pcreg.net.model import PCRegNet, count_parameters

#: The documented count (pcreg/net/model.py); the paper states 2.56M.
PARAMS_DEFAULT = 2_601_282


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _net(**kw) -> PCRegNet:
    torch.manual_seed(0)
    return PCRegNet(**kw).eval()


def _pair(shape=(2, 1, 32, 32), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g), torch.rand(shape, generator=g)


def test_parameter_count_matches_documentation_and_paper():
    net = PCRegNet()
    n = count_parameters(net)
    assert n == PARAMS_DEFAULT
    assert abs(n - 2.56e6) / 2.56e6 < 0.03
    parts = {k: count_parameters(getattr(net, k)) for k in ("registration", "reference", "contrast", "refinement",
                                                             "inject_proj")}
    assert parts == {"registration": 970_113, "reference": 388_800, "contrast": 175_520, "refinement": 979_329,
                     "inject_proj": 87_520}
    # moving+fixed input: one more input channel in the first 3x3 conv (32 * 9 weights).
    assert count_parameters(PCRegNet(registration_input="moving_fixed")) == PARAMS_DEFAULT + 32 * 9
    assert count_parameters(PCRegNet(single_stage=True)) == parts["registration"]


@pytest.mark.parametrize("shape", [(2, 1, 32, 32), (1, 1, 36, 28)])
@pytest.mark.parametrize(
    "flags", [{}, {"registration_input": "moving_fixed"}, {"contrast": False}, {"injection": False},
              {"single_stage": True}]
)
def test_output_shapes(shape, flags):
    moving, fixed = _pair(shape)
    out = _net(base_width=4, **flags)(moving, fixed)
    assert out.final.shape == out.coarse.shape == shape
    assert torch.isfinite(out.final).all()
    if not flags.get("single_stage"):
        assert out.contrast[0].shape == (shape[0], 4, *shape[2:])


def test_invalid_registration_input_is_rejected():
    with pytest.raises(ValueError):
        PCRegNet(registration_input="fixed")


def _fixed_sensitivity(net: PCRegNet) -> tuple[float, float]:
    """Max change of (final, coarse) when only the fixed image is replaced."""
    moving, fixed = _pair()
    _, other = _pair(seed=1)
    with torch.no_grad():
        a, b = net(moving, fixed), net(moving, other)
    return float((a.final - b.final).abs().max()), float((a.coarse - b.coarse).abs().max())


def test_fixed_image_reaches_output_only_through_contrast_path():
    final_full, coarse_full = _fixed_sensitivity(_net(base_width=4))
    assert final_full > 1e-4 and coarse_full == 0.0  # the registration U-Net sees the moving image only
    # Without the contrast module the fixed image has no path at all (moving-only registration input).
    final_nc, coarse_nc = _fixed_sensitivity(_net(base_width=4, contrast=False))
    assert final_nc == 0.0 and coarse_nc == 0.0
    # With moving+fixed input the coarse stage sees it.
    _, coarse_mf = _fixed_sensitivity(_net(base_width=4, registration_input="moving_fixed"))
    assert coarse_mf > 1e-4


def test_no_contrast_has_no_fixed_gradient_and_no_reference_modules():
    net = _net(base_width=4, contrast=False)
    assert not hasattr(net, "reference") and not hasattr(net, "contrast")
    moving, fixed = _pair()
    fixed.requires_grad_(True)
    net(moving, fixed).final.sum().backward()
    assert fixed.grad is None or torch.count_nonzero(fixed.grad) == 0
    full = _net(base_width=4)
    fixed2 = fixed.detach().clone().requires_grad_(True)
    full(moving, fixed2).final.sum().backward()
    assert torch.count_nonzero(fixed2.grad) > 0


def test_no_injection_equals_full_model_with_zeroed_injection():
    full = _net(base_width=4)
    with torch.no_grad():
        for proj in full.inject_proj:
            proj.weight.zero_()
            proj.bias.zero_()
    ablated = PCRegNet(base_width=4, injection=False).eval()
    missing, unexpected = ablated.load_state_dict(full.state_dict(), strict=False)
    assert not missing  # every ablated module is a module of the full model
    assert any(k.startswith("inject_proj") for k in unexpected)
    moving, fixed = _pair()
    with torch.no_grad():
        torch.testing.assert_close(ablated(moving, fixed).final, full(moving, fixed).final)
        # ...and the injection does change the computation once its projections are non-zero.
        intact = _net(base_width=4)
        assert not torch.allclose(intact(moving, fixed).final, full(moving, fixed).final)


def test_single_stage_output_is_the_registration_unet():
    full = _net(base_width=4)
    single = PCRegNet(base_width=4, single_stage=True).eval()
    missing, _ = single.load_state_dict(full.state_dict(), strict=False)
    assert not missing
    moving, fixed = _pair()
    with torch.no_grad():
        out = single(moving, fixed)
        assert out.final is out.coarse
        torch.testing.assert_close(out.final, full(moving, fixed).coarse)
    assert _fixed_sensitivity(single) == (0.0, 0.0)


def test_auxiliary_loss_weight():
    moving, fixed = _pair()
    net = _net(base_width=4)
    out = net(moving, fixed)
    loss = CompositeLoss()
    main, aux = loss(out.final, fixed), loss(out.coarse, fixed)
    torch.testing.assert_close(pcreg_loss(out.final, out.coarse, fixed, loss, 0.0), main)
    torch.testing.assert_close(pcreg_loss(out.final, out.coarse, fixed, loss, 0.5), main + 0.5 * aux)
    # Single stage: the loss is L(coarse, F), whatever λ.
    torch.testing.assert_close(pcreg_loss(out.coarse, out.coarse, fixed, loss, 0.5), aux)

    # λ changes the gradient reaching the registration U-Net's head (the coarse image).
    def head_grad(lam: float) -> torch.Tensor:
        net.zero_grad()
        o = net(moving, fixed)
        pcreg_loss(o.final, o.coarse, fixed, loss, lam).backward()
        return net.registration.head.weight.grad.clone()

    assert not torch.allclose(head_grad(0.0), head_grad(1.0))


def test_composite_loss_terms():
    pred, target = _pair((1, 1, 24, 24))
    assert float(CompositeLoss(1, 0, 0)(pred, target)) == pytest.approx(float((pred - target).abs().mean()), rel=1e-6)
    assert float(CompositeLoss(0, 1, 0)(pred, target)) == pytest.approx(float(((pred - target) ** 2).mean()), rel=1e-6)
    assert float(CompositeLoss()(target, target)) == pytest.approx(0.0, abs=1e-6)


def test_torch_ssim_matches_suite_metric_and_has_gradients():
    rng = np.random.default_rng(0)
    a = rng.random((40, 33)).astype(np.float32)
    b = np.clip(a + 0.1 * rng.standard_normal(a.shape), 0, 1).astype(np.float32)
    ta = torch.from_numpy(a)[None, None].requires_grad_(True)
    value = ssim_torch(ta, torch.from_numpy(b)[None, None])
    assert float(value.detach()) == pytest.approx(ssim(a, b), abs=1e-5)
    value.backward()
    assert torch.isfinite(ta.grad).all() and ta.grad.abs().sum() > 0


def test_method_schema_defaults_and_ablation_params():
    cls = get_method_class("pcreg_net")
    assert cls.outputs_field is False and cls.label == "PCReg-Net"
    params = validate_params(cls, {}, "test")
    assert params["registration_input"] == "moving" and params["aux_weight"] == 0.5
    assert params["epochs"] == 100 and params["batch_size"] == 8 and params["grad_clip"] == 1.0
    for schema in cls.PARAMS_SCHEMA["properties"].values():
        assert "default" in schema and "description" in schema
    for ablation in ({"contrast": False}, {"injection": False}, {"single_stage": True}, {"aux_weight": 0}):
        method = cls(validate_params(cls, ablation, "test"), device="cpu")
        model = method.build_model()
        assert isinstance(model, PCRegNet)
    assert count_parameters(cls(validate_params(cls, {}, "t")).build_model()) == PARAMS_DEFAULT


def test_fast_predictor_matches_the_model():
    from pcreg.net.inference import FastPredictor

    net = _net(base_width=4)
    # Non-trivial running statistics, so that folding BatchNorm is really exercised.
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 2.0)
    moving, fixed = _pair((3, 1, 32, 32))
    with torch.no_grad():
        ref = net(moving, fixed).final
    for chunk in (0, 2, 3):
        out = FastPredictor(net, "cpu", chunk=chunk, tune_allocator=False)(moving, fixed)
        torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_speed_benchmark_script_writes_its_table(tmp_path, monkeypatch):
    import importlib.util
    import sys
    from pathlib import Path

    import pandas as pd

    path = Path(__file__).resolve().parent.parent / "scripts" / "bench_pcreg_speed.py"
    spec = importlib.util.spec_from_file_location("bench_pcreg_speed", path)
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, bench)  # dataclasses look their module up there
    spec.loader.exec_module(bench)
    out = tmp_path / "speed.csv"
    assert bench.main(["--size", "32", "--batch", "2", "--device", "cpu", "--threads", "1", "--rounds", "1",
                       "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert set(table["path"]) == {"naive b1", "naive b2", "fast b1", "fast b2"}
    assert (table["params"] == PARAMS_DEFAULT).all()
    assert (table["pairs_per_s_best"] > 0).all()
    # FLOPs scale with the pixel count: 30.1 GFLOPs at 256x256 -> 1/64 of it at 32x32.
    assert table["gflops_per_pair"].iloc[0] == pytest.approx(30.12 / 64, rel=0.02)

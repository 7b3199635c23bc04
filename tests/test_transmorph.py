"""TransMorph-2D: warping convention, parameter counts, attention masks, training, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.learned import check_checkpoint_round_trip, smooth_image, t, write_pairs
from scipy import ndimage

from baselines._spatial import pad_to_multiple, warp
from baselines._transmorph_net import (
    SwinBlock,
    SwinStage,
    build_transmorph,
    count_parameters,
    get_config,
)
from pcreg.warp import shift_field, warp_image

torch.set_num_threads(1)


def shifted_pair(rng: np.random.Generator, shape=(64, 64)) -> tuple[np.ndarray, np.ndarray]:
    """(moving, fixed) where moving is fixed shifted by +3 px in x and -2 px in y."""
    fixed = smooth_image(rng, shape)
    # moving(p) = fixed(p - (dy, dx)) with (dy, dx) = (-2, +3): pull back with u = (+2, -3).
    moving = warp_image(fixed, shift_field(shape, dx=-3.0, dy=2.0))
    return moving, fixed


def test_torch_warp_matches_shared_routine_on_known_shift():
    moving, fixed = shifted_pair(np.random.default_rng(0))
    field = shift_field(moving.shape, dx=3.0, dy=-2.0)  # u[0] = -2, u[1] = +3
    assert field[0, 0, 0] == -2 and field[1, 0, 0] == 3
    out = warp(t(moving), torch.from_numpy(field)[None])[0, 0].numpy()
    np.testing.assert_allclose(out, warp_image(moving, field), atol=1e-5)
    # The shift is undone away from the borders the shift exposed.
    np.testing.assert_allclose(out[4:-4, 4:-4], fixed[4:-4, 4:-4], atol=1e-5)


def test_torch_warp_matches_shared_routine_on_smooth_field():
    rng = np.random.default_rng(1)
    img = smooth_image(rng, (48, 40), sigma=1.5)
    field = np.stack([ndimage.gaussian_filter(rng.standard_normal((48, 40)), 4) * 20 for _ in range(2)])
    field = field.astype(np.float32)
    assert np.abs(field).max() > 2  # a real deformation, some of it reaching over the border
    out = warp(t(img), torch.from_numpy(field)[None])[0, 0].numpy()
    np.testing.assert_allclose(out, warp_image(img, field), atol=1e-5)


def test_model_spatial_transformer_follows_suite_convention():
    """A constant flow from the registration head warps moving back onto fixed."""
    moving, fixed = shifted_pair(np.random.default_rng(2))
    model = build_transmorph("transmorph-small", drop_path_rate=0.0).eval()
    with torch.no_grad():
        model.reg_head.weight.zero_()
        model.reg_head.bias.copy_(torch.tensor([-2.0, 3.0]))
        warped, flow = model(t(moving), t(fixed))
    assert flow.shape == (1, 2, 64, 64)
    assert torch.allclose(flow[0, 0], torch.tensor(-2.0)) and torch.allclose(flow[0, 1], torch.tensor(3.0))
    np.testing.assert_allclose(warped[0, 0, 4:-4, 4:-4].numpy(), fixed[4:-4, 4:-4], atol=1e-5)


def test_parameter_counts():
    # Official 2-D TransMorph: ~31M (embed 96, depths 2/2/4/2, heads 4/4/8/8, window 8);
    # TransMorph-Small: embed 48, heads 4/4/4/4, ~7.8M.
    assert count_parameters(build_transmorph("transmorph")) == 31_013_570
    assert count_parameters(build_transmorph("transmorph-small")) == 7_776_650
    with pytest.raises(ValueError, match="unknown TransMorph variant"):
        get_config("transmorph-huge")


def test_initial_flow_is_near_identity_and_any_size_works():
    model = build_transmorph("transmorph-small").eval()
    x = torch.rand(2, 1, 72, 50)  # not a multiple of 32: padded inside, cropped back
    with torch.no_grad():
        warped, flow = model(x, torch.rand(2, 1, 72, 50))
    assert flow.shape == (2, 2, 72, 50) and warped.shape == x.shape
    assert 0 < flow.abs().max() < 1e-2


def test_shifted_window_mask_blocks_wraparound():
    """In a shifted block, tokens wrapped around by the cyclic shift must not see each other."""
    torch.manual_seed(0)
    cfg = get_config("transmorph-small", drop_path_rate=0.0)
    stage = SwinStage(16, 2, 2, cfg, [0.0, 0.0], merge=False)
    block: SwinBlock = stage.blocks[1]
    assert block.shifted
    h = w = 16  # two windows of 8 per axis, shift 4
    layout = stage.layout(h, w, torch.device("cpu"))
    x = torch.randn(1, h * w, 16)
    y0 = block(x, h, w, layout)
    x2 = x.clone()
    x2[0, 0] += 5.0  # token (0, 0); after the shift it shares a window with (15, 15) but is not its neighbour
    y1 = block(x2, h, w, layout)
    diff = (y1 - y0).abs().sum(-1).view(h, w)
    assert diff[0, 0] > 0 and diff[0, 1] > 0  # its own shifted window reacts
    assert diff[15, 15] == 0 and diff[15, 0] == 0 and diff[0, 15] == 0


def test_padded_tokens_are_masked():
    """A stage whose size is not a multiple of the window gives the same result as the unpadded computation."""
    torch.manual_seed(0)
    cfg = get_config("transmorph-small", drop_path_rate=0.0)
    stage = SwinStage(16, 1, 2, cfg, [0.0], merge=False).eval()
    block = stage.blocks[0]
    h, w = 12, 8  # rows padded to 16: the second row of windows holds 4 real and 4 padded rows
    x = torch.randn(1, h * w, 16)
    y = block(x, h, w, stage.layout(h, w, torch.device("cpu")))
    # The same 4 real rows alone (a 4x8 stage is one window, no padding) must give the same output.
    lower = x.view(1, h, w, 16)[:, 8:].reshape(1, 4 * w, 16)
    y_lower = block(lower, 4, w, stage.layout(4, w, torch.device("cpu")))
    torch.testing.assert_close(y.view(1, h, w, 16)[:, 8:].reshape(1, 4 * w, 16), y_lower, atol=1e-5, rtol=1e-5)


def test_pad_to_multiple_keeps_coordinates():
    x = torch.arange(6.0).view(1, 1, 2, 3)
    padded, (h, w) = pad_to_multiple(x, 4)
    assert padded.shape == (1, 1, 4, 4) and (h, w) == (2, 3)
    torch.testing.assert_close(padded[..., :2, :3], x)
    assert padded[0, 0, 3, 3] == x[0, 0, 1, 2]  # edge replicated


# --- the method, through the shared training harness -------------------------------------------


def small_method(**params):
    from pcreg.methods.registry import build_method

    base = {"variant": "transmorph-small", "drop_path_rate": 0.0, "epochs": 2, "batch_size": 2,
            "lr": 1e-3, "progress": False}
    return build_method("transmorph", {**base, **params}, seed=3, threads=1, device="cpu")


def test_schema_defaults_are_the_paper_configuration():
    from pcreg.methods.registry import build_method

    method = build_method("transmorph", {})
    assert method.params["variant"] == "transmorph" and method.params["loss"] == "ncc"
    assert method.params["lambda"] == 1.0 and method.params["lr"] == 1e-4
    assert method.label == "TransMorph" and method.outputs_field


def test_loss_falls_when_overfitting_a_few_pairs(tmp_path):
    train, _ = write_pairs(tmp_path / "ds", n_train=4, n_val=1)
    method = small_method()
    model = method.new_model()
    moving = torch.from_numpy(np.array(train.moving))[:, None]
    fixed = torch.from_numpy(np.array(train.fixed))[:, None]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(12):
        loss, registered = method.training_loss(model, moving, fixed)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert registered.shape == moving.shape
    assert np.mean(losses[-3:]) < losses[0] - 0.05, losses


def test_checkpoint_round_trip_through_fit_and_load(tmp_path):
    field, _ = check_checkpoint_round_trip(small_method, tmp_path)
    assert np.abs(field).max() > 1e-3  # training moved the flow away from its ~1e-5 initialisation


def test_flow_init_std_sets_the_registration_heads_initial_spread():
    """Default: the official N(0, 1e-5) registration head; ``flow_init_std`` widens it (docs/LEARNED.md)."""
    default = small_method().new_model().reg_head.weight
    wide = small_method(flow_init_std=1e-2).new_model().reg_head.weight
    assert 0.5e-5 < float(default.std()) < 2e-5
    assert 0.5e-2 < float(wide.std()) < 2e-2

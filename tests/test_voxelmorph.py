"""VoxelMorph from the official package: convention, architecture/params, losses, training, checkpoints."""

from __future__ import annotations

import numpy as np
import torch
from helpers.learned import check_checkpoint_round_trip, smooth_image, t, write_pairs

from pcreg.warp import shift_field, warp_image

torch.set_num_threads(1)


def method(**params):
    from pcreg.methods.registry import build_method

    base = {"epochs": 2, "batch_size": 2, "lr": 1e-3, "progress": False}
    return build_method("voxelmorph", {**base, **params}, seed=5, threads=1, device="cpu")


def test_package_spatial_transformer_follows_suite_convention():
    """Moving shifted +3 px in x, -2 px in y is warped back by u[0] = -2, u[1] = +3 (the package's own warp)."""
    rng = np.random.default_rng(0)
    fixed = smooth_image(rng)
    moving = warp_image(fixed, shift_field(fixed.shape, dx=-3.0, dy=2.0))
    m = method()
    model = m.new_model().eval()
    with torch.no_grad():  # make the flow layer output the constant field (-2, +3)
        model.flow_layer.conv0.weight.zero_()
        model.flow_layer.conv0.bias.copy_(torch.tensor([-2.0, 3.0]))
        disp, warped = model(t(moving), t(fixed), return_warped_source=True)
        registered, field = m.predict(model, t(moving), t(fixed))
    np.testing.assert_allclose(disp[0, :, 0, 0].numpy(), [-2.0, 3.0], atol=1e-6)
    np.testing.assert_allclose(warped[0, 0, 4:-4, 4:-4].numpy(), fixed[4:-4, 4:-4], atol=1e-5)
    # predict() returns the same field and the suite's warp of it.
    torch.testing.assert_close(field, disp)
    np.testing.assert_allclose(registered[0, 0].numpy(), warp_image(moving, field[0].numpy()), atol=1e-5)


def test_architecture_and_parameter_count():
    model = method().new_model()
    # Encoder 16/32/32/32 + bottleneck 32 + decoder 32/32/32/32 + 1x1 out conv + 3x3 flow conv (2-D).
    assert sum(p.numel() for p in model.parameters()) == 102_040
    convs = [mod for mod in model.model.modules() if isinstance(mod, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 32, 32, 32, 32, 32, 32, 32, 2]
    acts = [mod for mod in model.modules() if isinstance(mod, torch.nn.LeakyReLU)]
    assert acts and all(a.negative_slope == 0.2 for a in acts)
    # Images that are not a multiple of 16 are padded and the field cropped back.
    m = method()
    _, field = m.predict(model.eval(), torch.rand(1, 1, 40, 52), torch.rand(1, 1, 40, 52))
    assert field.shape == (1, 2, 40, 52)


def test_lambda_defaults_follow_the_paper():
    assert method().lam == 1.0
    assert method(loss="mse").lam == 0.01
    assert method(loss="mse", **{"lambda": 0.5}).lam == 0.5


def test_loss_terms_have_the_right_sign():
    from baselines._registration_losses import RegistrationLoss

    rng = np.random.default_rng(1)
    fixed = t(smooth_image(rng))
    other = t(smooth_image(rng))
    zero = torch.zeros(1, 2, 64, 64)
    rough = torch.randn(1, 2, 64, 64)
    for kind in ("ncc", "mse"):
        loss = RegistrationLoss(kind, lam=1.0)
        same, _ = loss(fixed, fixed, zero)
        diff, _ = loss(other, fixed, zero)
        assert same < diff
        _, parts = loss(fixed, fixed, rough)
        assert parts["smoothness"] > 0
    ncc_same, _ = RegistrationLoss("ncc", lam=0.0)(fixed, fixed, zero)
    assert abs(float(ncc_same) + 1.0) < 1e-3  # negated squared local correlation of identical images


def test_loss_falls_when_overfitting_a_few_pairs(tmp_path):
    # 32x32 keeps this fast; the package initialises the flow layer at ~1e-5, so learning starts
    # slowly and needs ~100 steps of a larger learning rate than the paper's.
    train, _ = write_pairs(tmp_path / "ds", n_train=4, n_val=1, shape=(32, 32))
    m = method()
    model = m.new_model()
    moving = torch.from_numpy(np.array(train.moving))[:, None]
    fixed = torch.from_numpy(np.array(train.fixed))[:, None]
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(100):
        loss, registered = m.training_loss(model, moving, fixed)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert registered.shape == moving.shape
    assert np.mean(losses[-5:]) < losses[0] - 0.1, losses


def test_diffeomorphic_variant_trains_and_predicts():
    m = method(integration_steps=7)
    model = m.new_model()
    x, y = torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32)
    loss, registered = m.training_loss(model, x, y)
    loss.backward()
    assert registered.shape == x.shape and torch.isfinite(loss)
    _, field = m.predict(model.eval(), x, y)
    assert field.shape == (2, 2, 32, 32)


def test_checkpoint_round_trip_through_fit_and_load(tmp_path):
    field, _ = check_checkpoint_round_trip(method, tmp_path)


def test_batched_inference_matches_pair_by_pair(tmp_path):
    from pcreg.methods.registry import run_method, run_method_batch

    train, val = write_pairs(tmp_path / "ds", n_train=2, n_val=3)
    m = method(epochs=1)
    m.fit(train, val, tmp_path / "work")
    # Unsupervised: selected on its own validation loss, never the ground-truth EPE the split offers.
    assert m.train_summary["selection_metric"] == "loss" and m.train_summary["gt_field_supervision"] is False
    assert m.inference_batch_size == 1  # auto on CPU
    m.params["inference_batch_size"] = 3
    assert m.inference_batch_size == 3
    moving, fixed = np.asarray(val.moving), np.asarray(val.fixed)
    batched = run_method_batch(m, moving, fixed)
    for i, b in enumerate(batched):
        single = run_method(m, moving[i], fixed[i])
        assert not b.failed
        np.testing.assert_allclose(b.field, single.field, atol=1e-5)
        np.testing.assert_allclose(b.image, single.image, atol=1e-5)


def test_flow_init_std_sets_the_flow_layers_initial_spread():
    """Default: the package's N(0, 1e-5) flow layer (voxelmorph #527); ``flow_init_std`` widens it (docs/LEARNED.md)."""
    default = method().new_model().flow_layer.conv0.weight
    wide = method(flow_init_std=1e-2).new_model().flow_layer.conv0.weight
    assert 0.5e-5 < float(default.std()) < 2e-5
    assert 0.5e-2 < float(wide.std()) < 2e-2

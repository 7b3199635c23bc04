"""The learned deformable baselines register: trained models beat the identity on synthetic shifts/affines."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.learned import smooth_image

from pcreg import metrics
from pcreg.warp import field_from_matrix, shift_field, warp_image

torch.set_num_threads(1)


def _write(root, pairs: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]], with_field: bool):  # noqa: ANN001, ANN202
    from pcreg.datasets.format import DatasetWriter, PreparedDataset

    shape = pairs["train"][0][0].shape
    with DatasetWriter(root, name="tiny", dataset_type="test", image_shape=shape,
                       split_sizes={k: len(v) for k, v in pairs.items()}, has_field=with_field) as writer:
        for split, items in pairs.items():
            for i, (moving, fixed, field) in enumerate(items):
                writer.add(split, f"{split}{i}", moving, fixed, field=field if with_field else None)
    ds = PreparedDataset(root)
    return ds.split("train"), ds.split("val")


def _shift_pairs(rng: np.random.Generator, n: int, shape=(32, 32)) -> list:
    out = []
    for _ in range(n):
        fixed = smooth_image(rng, shape, sigma=2.5)
        dx, dy = rng.uniform(-2.0, 2.0, 2)
        field = shift_field(shape, dx, dy)
        moving = warp_image(fixed, shift_field(shape, -dx, -dy))  # moving(p + u) = fixed(p)
        out.append((moving, fixed, field))
    return out


def _affine_pairs(rng: np.random.Generator, n: int, shape=(96, 96)) -> list:
    out = []
    for _ in range(n):
        fixed = smooth_image(rng, shape, sigma=1.5)
        a = np.eye(3)
        a[:2, :2] += rng.uniform(-0.04, 0.04, (2, 2))
        a[:2, 2] = rng.uniform(-3.0, 3.0, 2)
        moving = warp_image(fixed, field_from_matrix(np.linalg.inv(a), shape))
        out.append((moving, fixed, field_from_matrix(a, shape)))
    return out


def _mean_epe(method, val) -> tuple[float, float]:  # noqa: ANN001
    """Mean EPE of the trained method and of the identity on ``val``."""
    got, ident = [], []
    for i in range(len(val)):
        moving, fixed = val.pair(i)
        gt = np.asarray(val.field[i]) if val.field is not None else None
        got.append(metrics.epe(method.register(moving, fixed).field, gt))
        ident.append(metrics.epe(np.zeros_like(gt), gt))
    return float(np.mean(got)), float(np.mean(ident))


def test_voxelmorph_supervision_pulls_the_field_to_the_ground_truth():
    """No pre-alignment: training on a few shifted pairs with the supervision term moves the network's field
    towards their ground-truth fields (EPE well below the identity's)."""
    from pcreg.methods.registry import build_method

    rng = np.random.default_rng(0)
    pairs = _shift_pairs(rng, 4)
    moving = torch.from_numpy(np.stack([p[0] for p in pairs]))[:, None]
    fixed = torch.from_numpy(np.stack([p[1] for p in pairs]))[:, None]
    gt = torch.from_numpy(np.stack([p[2] for p in pairs]))
    m = build_method("voxelmorph", {"supervision": 1.0}, seed=0, threads=1, device="cpu")
    model = m.new_model()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(100):
        loss, _ = m.training_loss(model, moving, fixed, field=gt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        _, field = m.predict(model.eval(), moving, fixed)
    got = np.mean([metrics.epe(f, g) for f, g in zip(field.numpy(), gt.numpy())])
    ident = np.mean([metrics.epe(np.zeros_like(g), g) for g in gt.numpy()])
    assert got < 0.6 * ident, (got, ident)


@pytest.mark.parametrize("name", ["voxelmorph", "transmorph"])
def test_prealigned_method_registers_affine_pairs_without_fields(tmp_path, name):
    """Unsupervised path (no ground-truth field, as on a folder dataset): SIFT pre-alignment + network."""
    from pcreg.methods.registry import build_method

    rng = np.random.default_rng(1)
    pairs = {"train": _affine_pairs(rng, 2), "val": _affine_pairs(rng, 2)}
    train, _ = _write(tmp_path / "ds", pairs, False)
    params = {"epochs": 1, "batch_size": 2, "progress": False, "prealign": "sift-affine"}
    if name == "transmorph":
        params["variant"] = "transmorph-small"
    m = build_method(name, params, seed=0, threads=1, device="cpu")
    m.fit(train, None, tmp_path / "work")
    _, val = _write(tmp_path / "ds_gt", pairs, True)
    got, ident = _mean_epe(m, val)
    assert got < 0.3 * ident, (got, ident)

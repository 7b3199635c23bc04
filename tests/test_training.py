"""The shared training harness (pcreg/methods/training.py) and the LearnedMethod base class, on tiny data."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from pcreg.datasets.format import DatasetWriter, PreparedDataset
from pcreg.methods.learned import TRAINING_PARAMS_SCHEMA, with_training_params
from pcreg.methods.registry import build_method, run_method
from pcreg.methods.training import BEST, LAST, LOG, LOG_COLUMNS, PairDataset, TrainConfig, load_weights, train
from pcreg.net.loss import CompositeLoss, pcreg_loss
from pcreg.net.model import PCRegNet

SIZE = 32


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _blob(rng: np.random.Generator) -> np.ndarray:
    img = ndimage.gaussian_filter(rng.random((SIZE, SIZE)), 2.0)
    return ((img - img.min()) / (img.max() - img.min())).astype(np.float32)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """8 train / 4 val / 2 test pairs: moving = fixed shifted by one pixel with a contrast change."""
    root = tmp_path_factory.mktemp("data") / "tiny"
    rng = np.random.default_rng(0)
    sizes = {"train": 8, "val": 4, "test": 2}
    with DatasetWriter(root, name="tiny", dataset_type="test", image_shape=(SIZE, SIZE), split_sizes=sizes,
                       has_field=False) as writer:
        for split, n in sizes.items():
            for i in range(n):
                fixed = _blob(rng)
                moving = 0.2 + 0.6 * np.roll(fixed, (1, -1), axis=(0, 1))
                writer.add(split, f"{split}{i}", moving, fixed)
    return PreparedDataset(root)


def _model() -> PCRegNet:
    torch.manual_seed(0)
    return PCRegNet(base_width=4)


def _loss_fn(model, moving, fixed):
    out = model(moving, fixed)
    return pcreg_loss(out.final, out.coarse, fixed, CompositeLoss(), 0.5), out.final


def _config(**kw) -> TrainConfig:
    base = dict(epochs=4, batch_size=4, lr=3e-3, seed=3, device="cpu", progress=False)
    base.update(kw)
    return TrainConfig(**base)


def test_pair_dataset_yields_channel_first_float_tensors(dataset):
    ds = PairDataset(dataset.split("train"))
    moving, fixed = ds[2]
    assert moving.shape == fixed.shape == (1, SIZE, SIZE)
    assert moving.dtype == torch.float32
    m, f = dataset.split("train").pair(2)
    np.testing.assert_array_equal(moving[0].numpy(), m)
    np.testing.assert_array_equal(fixed[0].numpy(), f)


def test_overfitting_a_few_pairs_lowers_the_loss(dataset, tmp_path):
    result = train(_model(), _loss_fn, dataset.split("train"), None, tmp_path, _config(epochs=12, lr=1e-2))
    losses = [row["train_loss"] for row in result.history]
    assert len(losses) == 12
    assert losses[-1] < 0.6 * losses[0], losses


def test_checkpoints_log_and_roundtrip(dataset, tmp_path):
    model = _model()
    result = train(model, _loss_fn, dataset.split("train"), dataset.split("val"), tmp_path, _config(epochs=2))
    for name in (LAST, BEST, LOG):
        assert (tmp_path / name).is_file()
    assert not list(tmp_path.glob("*.tmp"))
    with open(tmp_path / LOG) as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]  # epoch 0: the validation before training
    assert list(rows[0]) == LOG_COLUMNS
    assert all(np.isfinite(float(r["val_psnr"])) for r in rows)
    # best.pt restores exactly the weights of the best epoch; last.pt those of the final epoch.
    restored = _model()
    ckpt = load_weights(restored, tmp_path / LAST)
    assert ckpt["epoch"] == 2
    for key, value in model.state_dict().items():
        assert torch.equal(value, restored.state_dict()[key]), key
    best = load_weights(_model(), tmp_path / BEST)
    assert best["epoch"] == result.best_epoch
    # A finished run is not retrained.
    again = train(_model(), _loss_fn, dataset.split("train"), dataset.split("val"), tmp_path, _config(epochs=2))
    assert again.resumed_from == 2 and len(again.history) == 2


class _Interrupt(Exception):
    pass


def test_resumed_training_matches_uninterrupted(dataset, tmp_path):
    train_split, val_split = dataset.split("train"), dataset.split("val")
    full = _model()
    ref = train(full, _loss_fn, train_split, val_split, tmp_path / "full", _config())

    def stop_after_two(epoch, row):
        if epoch == 2:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        train(_model(), _loss_fn, train_split, val_split, tmp_path / "cut", _config(), callback=stop_after_two)
    torch.manual_seed(12345)  # disturb the global RNG: the resumed run must not depend on it
    resumed_model = _model()
    resumed = train(resumed_model, _loss_fn, train_split, val_split, tmp_path / "cut", _config())
    assert resumed.resumed_from == 2
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]
    for a, b in zip(ref.history, resumed.history):
        assert a["train_loss"] == b["train_loss"]
        assert a["val_loss"] == b["val_loss"]
    for key, value in full.state_dict().items():
        assert torch.equal(resumed_model.state_dict()[key], value), key  # bitwise on CPU


def test_the_progress_bar_does_not_change_what_is_trained(dataset, tmp_path):
    """``progress`` is cosmetic (left out of the fingerprint): with and without the bar, the same pairs in the same
    order, the same weights. Wrapping the DataLoader in tqdm.auto drew its iterator twice and reshuffled."""
    train_split, val_split = dataset.split("train"), dataset.split("val")
    models = {}
    runs = {}
    for progress in (False, True):
        models[progress] = _model()
        runs[progress] = train(models[progress], _loss_fn, train_split, val_split, tmp_path / str(progress),
                               _config(epochs=2, progress=progress))
    assert [r["train_loss"] for r in runs[True].history] == [r["train_loss"] for r in runs[False].history]
    for key, value in models[False].state_dict().items():
        assert torch.equal(models[True].state_dict()[key], value), key


def test_with_training_params_merges_and_overrides():
    schema = with_training_params({"width": {"type": "integer", "default": 4, "description": "w"}}, lr=1e-4)
    assert schema["additionalProperties"] is False
    assert schema["properties"]["lr"]["default"] == 1e-4
    assert TRAINING_PARAMS_SCHEMA["lr"]["default"] == 1e-3  # the shared schema is not mutated
    assert {"epochs", "batch_size", "weight_decay", "grad_clip", "amp", "width"} <= set(schema["properties"])
    with pytest.raises(KeyError):
        with_training_params({}, not_a_param=1)
    with pytest.raises(ValueError):
        with_training_params({"lr": {"type": "number", "default": 1.0, "description": "x"}})


def test_learned_method_fit_load_register(dataset, tmp_path):
    params = {"epochs": 3, "batch_size": 4, "base_width": 8, "lr": 1e-2, "progress": False}
    method = build_method("pcreg_net", params, seed=1, threads=1, device="cpu")
    assert method.is_trainable() and method.outputs_field is False
    method.fit(dataset.split("train"), dataset.split("val"), tmp_path)
    moving, fixed = dataset.split("test").pair(0)
    result = run_method(method, moving, fixed)
    assert not result.failed, result.reason
    assert result.field is None and result.image.shape == (SIZE, SIZE)
    assert result.image.min() >= 0.0 and result.image.max() <= 1.0
    # A second instance loading best.pt gives the same image.
    other = build_method("pcreg_net", params, seed=1, threads=1, device="cpu")
    other.load(tmp_path)
    np.testing.assert_array_equal(other.register(moving, fixed).image, result.image)
    with pytest.raises(FileNotFoundError):
        build_method("pcreg_net", params, device="cpu").load(tmp_path / "missing")


def test_pair_dataset_streams_rows_from_disk(dataset):
    import pickle

    split = dataset.split("train")
    ds = PairDataset(split, indices=[3, 0])
    assert ds.rows is not None  # positioned reads, not the memory map
    moving, fixed = ds[0]
    ref_moving, ref_fixed = split.pair(3)
    assert moving.shape == (1, SIZE, SIZE)
    np.testing.assert_array_equal(moving[0].numpy(), ref_moving)
    np.testing.assert_array_equal(fixed[0].numpy(), ref_fixed)
    clone = pickle.loads(pickle.dumps(ds))  # what a DataLoader worker receives
    assert clone.split is None
    np.testing.assert_array_equal(clone[1][0].numpy(), ds[1][0].numpy())


def test_amp_and_worker_defaults():
    from pcreg.methods.training import _amp_settings, _workers

    use, dtype = _amp_settings(TrainConfig(amp_dtype="auto"), torch.device("cpu"))
    assert not use  # mixed precision is a CUDA-only path
    assert _amp_settings(TrainConfig(amp_dtype="bfloat16"), torch.device("cpu"))[1] == torch.bfloat16
    with pytest.raises(ValueError, match="amp_dtype"):
        _amp_settings(TrainConfig(amp_dtype="int8"), torch.device("cpu"))
    assert _workers(TrainConfig(num_workers=-1, threads=4), cuda=True) == 4
    assert _workers(TrainConfig(num_workers=-1, threads=4), cuda=False) == 0
    assert _workers(TrainConfig(num_workers=2), cuda=False) == 2


def test_batches_carry_the_ground_truth_field_and_validation_scores_registration(tmp_path):
    """A split with fields: loss_fn gets field=, a field-output predict_fn is selected on EPE."""
    from helpers.learned import write_pairs

    train_split, val_split = write_pairs(tmp_path / "ds", n_train=2, n_val=2, shape=(16, 16))
    seen = []

    class Shift(torch.nn.Module):  # a learnable constant field
        def __init__(self):
            super().__init__()
            self.u = torch.nn.Parameter(torch.zeros(2, 1, 1))

    def loss_fn(model, moving, fixed, field=None):
        seen.append(None if field is None else tuple(field.shape))
        return ((model.u - field.mean(dim=(2, 3), keepdim=True)) ** 2).mean(), moving

    def predict_fn(model, moving, fixed):
        return moving, model.u.expand(len(moving), 2, *moving.shape[2:])

    result = train(Shift(), loss_fn, train_split, val_split, tmp_path / "w", _config(epochs=3, lr=0.5),
                   predict_fn=predict_fn)
    assert seen[0] == (2, 2, 16, 16)
    assert result.selection_metric == "epe"
    epes = [row["val_epe"] for row in result.history]
    gt = np.asarray(val_split.field, np.float64)
    # EPE is the evaluation's end-point error (pcreg.metrics.epe: over recoverable pixels) against the stored
    # ground truth, averaged over the val pairs, recomputed here from the final field.
    from pcreg.metrics import epe

    u = torch.load(tmp_path / "w" / LAST, weights_only=True)["model"]["u"].numpy()
    full = np.broadcast_to(u, gt.shape[1:])
    assert epes[-1] == pytest.approx(np.mean([epe(full, g) for g in gt]), rel=1e-5)
    # A loss_fn without the keyword still works (the field is not passed).
    plain = train(_model(), _loss_fn, train_split, None, tmp_path / "plain", _config(epochs=1))
    assert plain.steps == 1 and plain.selection_metric == "train_loss"


def test_checkpoint_from_other_params_is_moved_aside_and_retrained(dataset, tmp_path, capsys):
    params = {"epochs": 2, "batch_size": 4, "base_width": 4, "progress": False}
    split_train, split_val = dataset.split("train"), dataset.split("val")
    build_method("pcreg_net", params, seed=1, threads=1, device="cpu").fit(split_train, split_val, tmp_path)
    first = torch.load(tmp_path / LAST, weights_only=True)  # plain data: loads without running code
    capsys.readouterr()
    # Same params: a finished run is not retrained, and the log says where it stands.
    build_method("pcreg_net", params, seed=1, threads=1, device="cpu").fit(split_train, split_val, tmp_path)
    assert "already trained" in capsys.readouterr().err
    # Another learning rate: the old checkpoint is moved aside and training starts over.
    method = build_method("pcreg_net", {**params, "lr": 1e-2}, seed=1, threads=1, device="cpu")
    method.fit(split_train, split_val, tmp_path)
    err = capsys.readouterr().err
    assert "training starts over" in err
    (first_set,) = (tmp_path / "stale").iterdir()
    assert (first_set / LAST).is_file()
    second = torch.load(tmp_path / LAST, weights_only=True)
    assert second["fingerprint"] != first["fingerprint"] and second["config"]["lr"] == 1e-2
    key = "registration.encoder.blocks.0.0.weight"
    assert not torch.equal(second["model"][key], first["model"][key])
    assert method.train_summary["steps"] == 4  # 2 epochs x 2 batches, trained again from scratch
    # Another width (checkpoint shapes no longer fit): retrains instead of failing to load.
    wider = build_method("pcreg_net", {**params, "base_width": 6}, seed=1, threads=1, device="cpu")
    wider.fit(split_train, split_val, tmp_path)
    assert "training starts over" in capsys.readouterr().err
    # Two events, two stale sets: the first one is kept as it was.
    sets = sorted((tmp_path / "stale").iterdir())
    assert len(sets) == 2 and first_set in sets
    assert torch.equal(torch.load(first_set / LAST, weights_only=True)["model"][key], first["model"][key])


def test_a_checkpoint_of_other_training_code_is_not_resumed(dataset, tmp_path, capsys, monkeypatch):
    """The fit job reruns when its code changes (the rule's ``code`` parameter); the harness must then train
    again, not find the old checkpoint "already trained" and hand back weights of the old code."""
    import pcreg.methods.fingerprint as fp

    params = {"epochs": 1, "batch_size": 4, "base_width": 4, "progress": False}
    split_train, split_val = dataset.split("train"), dataset.split("val")
    build_method("pcreg_net", params, seed=1, threads=1, device="cpu").fit(split_train, split_val, tmp_path)
    capsys.readouterr()
    build_method("pcreg_net", params, seed=1, threads=1, device="cpu").fit(split_train, split_val, tmp_path)
    assert "already trained" in capsys.readouterr().err  # same code: reused
    real = fp.method_code
    monkeypatch.setattr(fp, "method_code", lambda cls: real(cls) + "-edited")
    build_method("pcreg_net", params, seed=1, threads=1, device="cpu").fit(split_train, split_val, tmp_path)
    err = capsys.readouterr().err
    assert "training starts over" in err and "already trained" not in err
    assert len(list((tmp_path / "stale").iterdir())) == 1


def test_the_training_fingerprint_follows_the_methods_code():
    """method_code is the workflow's fit `code` parameter: the harness, the method's module, library versions."""
    import inspect

    from pcreg.code_fingerprint import code_fingerprint, module_sources
    from pcreg.methods.fingerprint import method_code
    from pcreg.methods.registry import get_method_class

    cls = get_method_class("pcreg_net")
    assert method_code(cls) == code_fingerprint("method", module_sources(inspect.getsourcefile(cls)))
    assert method_code(cls) != method_code(get_method_class("voxelmorph"))


class _TouchesAFile:
    """A pickle payload that would create a file when unpickled (what a crafted checkpoint can do)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _trained(dataset, tmp_path, params):
    method = build_method("pcreg_net", params, seed=1, threads=1, device="cpu")
    method.fit(dataset.split("train"), dataset.split("val"), tmp_path)
    (tmp_path / "model.json").write_text("{}")  # what the workflow's fit step writes last
    return method


def test_a_crafted_checkpoint_never_runs_and_training_starts_over(dataset, tmp_path, capsys):
    params = {"epochs": 1, "batch_size": 4, "base_width": 4, "progress": False}
    _trained(dataset, tmp_path, params)
    marker = tmp_path / "pwned"
    torch.save({"model": {}, "payload": _TouchesAFile(marker)}, tmp_path / LAST)
    capsys.readouterr()
    build_method("pcreg_net", params, seed=1, threads=1, device="cpu").fit(dataset.split("train"),
                                                                          dataset.split("val"), tmp_path)
    assert not marker.exists()
    err = capsys.readouterr().err
    assert f"unreadable checkpoint {tmp_path / LAST}" in err and "training starts over" in err
    assert torch.load(tmp_path / LAST, weights_only=True)["epoch"] == 1  # retrained


@pytest.mark.parametrize("damage", ["truncated", "garbage", "crafted"])
def test_an_unreadable_best_checkpoint_is_one_line_and_the_next_run_retrains(dataset, tmp_path, damage):
    from pcreg.errors import UserError

    params = {"epochs": 1, "batch_size": 4, "base_width": 4, "progress": False}
    _trained(dataset, tmp_path, params)
    marker = tmp_path / "pwned"
    best = tmp_path / BEST
    if damage == "truncated":
        best.write_bytes(best.read_bytes()[:300])
    elif damage == "garbage":
        best.write_bytes(b"not a checkpoint at all" * 10)
    else:
        torch.save({"model": {}, "payload": _TouchesAFile(marker)}, best)
    with pytest.raises(UserError) as info:
        build_method("pcreg_net", params, seed=1, threads=1, device="cpu").load(tmp_path)
    message = str(info.value)
    assert "\n" not in message and f"unreadable checkpoint {best}" in message and "retrain" in message
    assert not marker.exists()
    # model.json no longer says "done": the workflow's fit step runs again; the bad file is kept aside.
    assert not (tmp_path / "model.json").exists() and not best.exists()
    (stale,) = (tmp_path / "stale").iterdir()
    assert (stale / BEST).is_file() and (stale / "model.json").is_file()


def test_interrupted_run_logs_where_it_resumes(dataset, tmp_path, capsys):
    def stop_after_one(epoch, row):
        if epoch == 1:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        train(_model(), _loss_fn, dataset.split("train"), None, tmp_path, _config(epochs=2), callback=stop_after_one)
    capsys.readouterr()
    result = train(_model(), _loss_fn, dataset.split("train"), None, tmp_path, _config(epochs=2))
    assert "resumed at epoch 1" in capsys.readouterr().err and result.resumed_from == 1


def test_plateau_stops_training_and_budget_marks_not_converged(dataset, tmp_path):
    from pcreg.methods.validation import Plateau

    plateau = Plateau(patience=2, min_delta=0.1)
    assert [plateau.update(s) for s in (0.0, 0.05, 0.5, 0.55, 0.58)] == [False, False, False, False, True]
    # A huge min_delta: no validation ever improves enough, so the run stops after `patience` more epochs...
    stopped = train(_model(), _loss_fn, dataset.split("train"), dataset.split("val"), tmp_path / "a",
                    _config(epochs=10, patience=2, min_delta=10.0, min_steps_fraction=0.0))
    assert stopped.stop_reason == "plateau" and len(stopped.history) == 3
    assert stopped.selection_metric == "ncc"
    # ... and a run whose best validation never beats the one before training did not learn: not converged.
    assert stopped.did_not_learn and not stopped.converged
    assert stopped.summary()["did_not_learn"] is True and stopped.summary()["converged"] is False
    # Plateau stopping waits for half the step budget (10 epochs x 2 steps): not before step 10.
    waited = train(_model(), _loss_fn, dataset.split("train"), dataset.split("val"), tmp_path / "w",
                   _config(epochs=10, patience=2, min_delta=10.0))
    assert waited.stop_reason == "plateau" and waited.min_steps == 10 and waited.steps == 10
    assert len(waited.history) == 5
    # The step budget ends training mid-epoch (batches of 4 over 8 pairs: 2 steps per epoch).
    capped = train(_model(), _loss_fn, dataset.split("train"), dataset.split("val"), tmp_path / "b",
                   _config(epochs=10, patience=5, max_steps=3))
    assert not capped.converged and capped.stop_reason == "max_steps" and capped.steps == 3
    assert [r["steps"] for r in capped.history] == [2, 3]
    summary = capped.summary()
    assert summary["converged"] is False and summary["steps"] == 3 and summary["stop_reason"] == "max_steps"


def test_did_not_learn_rule_compares_the_best_with_the_reference():
    from pcreg.methods.training import TrainResult, learned

    assert learned("ncc", 0.77, 0.80, 0.02) and not learned("ncc", 0.77, 0.785, 0.02)
    assert learned("epe", 2.0, 1.9, 0.02) and not learned("epe", 2.0, 1.99, 0.02)  # relative for EPE/loss
    assert not learned("ncc", float("nan"), float("nan"), 0.02)
    # The reference is the validation before training; where that is undefined, the first finite one.
    hist = [{"epoch": 1, "val_ncc": 0.776}, {"epoch": 2, "val_ncc": 0.779}, {"epoch": 3, "val_ncc": 0.781}]
    flat = TrainResult(hist, 3, (0.781, 0.0), Path("."), stop_reason="plateau", selection_metric="ncc",
                       initial={"epoch": 0, "val_ncc": float("nan")})
    assert flat.reference_value == 0.776 and flat.did_not_learn and not flat.converged
    good = TrainResult(hist, 3, (0.781, 0.0), Path("."), stop_reason="plateau", selection_metric="ncc",
                       initial={"epoch": 0, "val_ncc": 0.70})
    assert not good.did_not_learn and good.converged
    # An image-output run that climbs from a garbage start (NCC -0.37) only to the unregistered level did not learn.
    climb = [{"epoch": 1, "val_ncc": -0.37}, {"epoch": 2, "val_ncc": 0.776}, {"epoch": 3, "val_ncc": 0.78}]
    copier = TrainResult(climb, 3, (0.78, 0.0), Path("."), stop_reason="plateau", selection_metric="ncc",
                         initial={"epoch": 0, "val_ncc": float("nan"), "val_ncc_unregistered": 0.775})
    assert copier.reference_value == 0.775 and copier.did_not_learn and not copier.converged


def test_selection_on_the_loss_never_uses_the_ground_truth(dataset, tmp_path):
    result = train(_model(), _loss_fn, dataset.split("train"), dataset.split("val"), tmp_path,
                   _config(epochs=1, selection="loss"))
    assert result.selection_metric == "loss"


def test_cpu_bf16_is_detected_not_assumed(monkeypatch, capsys):
    from pcreg.methods import cpu_precision
    from pcreg.methods.training import _amp_settings

    cpu_precision.cpu_bf16_supported.cache_clear()
    monkeypatch.setattr(cpu_precision, "cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    assert not cpu_precision.cpu_bf16_supported()  # no avx512_bf16/amx_bf16 flag: float32
    use, _ = _amp_settings(TrainConfig(cpu_bf16=True), torch.device("cpu"))
    assert not use and "running in float32" in capsys.readouterr().err
    cpu_precision.cpu_bf16_supported.cache_clear()
    monkeypatch.setattr(cpu_precision, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert not cpu_precision.cpu_bf16_supported()  # a torch build without AVX-512 kernels: float32
    cpu_precision.cpu_bf16_supported.cache_clear()


@pytest.mark.skipif(not __import__("pcreg.methods.cpu_precision").methods.cpu_precision.cpu_bf16_supported(),
                    reason="this CPU has no native bf16")
def test_cpu_bf16_training_is_deterministic_and_close_to_fp32(dataset, tmp_path):
    runs = [train(_model(), _loss_fn, dataset.split("train"), dataset.split("val"), tmp_path / f"b{i}",
                  _config(epochs=2, cpu_bf16=True)) for i in range(2)]
    assert [r["train_loss"] for r in runs[0].history] == [r["train_loss"] for r in runs[1].history]
    fp32 = train(_model(), _loss_fn, dataset.split("train"), dataset.split("val"), tmp_path / "f", _config(epochs=2))
    assert runs[0].history[0]["train_loss"] != fp32.history[0]["train_loss"]  # bf16 was really used
    assert runs[0].history[0]["train_loss"] == pytest.approx(fp32.history[0]["train_loss"], rel=0.05)


def test_a_failing_fit_is_one_clear_error_naming_the_run(dataset, tmp_path, capsys):
    from pcreg.errors import MethodFailed
    from pcreg.methods.base import Method
    from pcreg.methods.runner import fit_method

    class Broken(Method):
        name = "broken"

        def fit(self, train, val, workdir):
            raise FloatingPointError("non-finite training loss at epoch 3")

        def register(self, moving, fixed):
            raise NotImplementedError

    globals()["Broken"] = Broken  # importable as test_training:Broken
    with pytest.raises(MethodFailed) as info:  # not a UserError: the fit job records the method as failed
        fit_method(dataset.root, {"id": "vxm", "method": "test_training:Broken"}, tmp_path / "model", seed=0,
                   threads=1, device="cpu")
    message = str(info.value)
    assert message.startswith(f"training vxm on {dataset.name} failed: FloatingPointError: non-finite training "
                              "loss at epoch 3") and "\n" not in message
    assert "Traceback" in capsys.readouterr().err  # the details stay in the job's log
    assert not (tmp_path / "model" / "model.json").exists()

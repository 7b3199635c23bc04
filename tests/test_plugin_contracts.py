"""Contracts every registered plug-in honours: parametrized over ALL methods and dataset types.

A new method (baselines/foo.py) or dataset type (pcreg/datasets/foo.py) is picked up
by the registries and tested here without writing a test:
- methods: the field convention on a known shift, the kind of output, a constant
  image survived with a ``failed`` flag (never an exception), determinism;
- dataset types: the on-disk format of docs/DATASETS.md and disjoint splits.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).parent))
from helpers.fire_layout import make_fire_tree  # noqa: E402

from pcreg.datasets import PreparedDataset, available_dataset_types, get_dataset_type  # noqa: E402
from pcreg.datasets.format import MANIFEST_COLUMNS, SPLITS  # noqa: E402
from pcreg.errors import UserError  # noqa: E402
from pcreg.methods.base import Method  # noqa: E402
from pcreg.methods.registry import available_methods, build_method, get_method_class, run_method  # noqa: E402
from pcreg.schema import validate_params  # noqa: E402
from pcreg.warp import shift_field, warp_image  # noqa: E402

SHAPE = (64, 64)
DY, DX = -2.0, 3.0  # the pull-back field that registers the pair: moving content sits at +3 px x, -2 px y


def _texture(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = ndimage.gaussian_filter(rng.random((SHAPE[0] + 16, SHAPE[1] + 16)), 2.0)[8:-8, 8:-8]
    return ((img - img.min()) / (img.max() - img.min())).astype(np.float32)


def _shifted_pair() -> tuple[np.ndarray, np.ndarray]:
    fixed = _texture()
    # warp(moving, u) = fixed for the constant field u: moving = fixed pulled back by -u.
    moving = warp_image(fixed, -shift_field(SHAPE, dx=DX, dy=DY)).astype(np.float32)
    return moving, fixed


def _method(name: str) -> Method:
    """Method ``name`` ready to register: trainable ones get freshly initialised, seeded weights (no fit)."""
    if get_method_class(name).needs_ground_truth:
        pytest.skip("a reference that reads the dataset's ground-truth field (nothing to register from the images "
                    "alone); tests/test_ground_truth.py")
    if get_method_class(name).wants_pair_ids:
        pytest.skip("reads outputs made elsewhere by pair id (no arrays to register); tests/test_external.py")
    method = build_method(name, seed=0, threads=1, device="cpu")
    if method.is_trainable():
        method.model = method.prepare_inference(method.new_model().to(method.torch_device()).eval())
    return method


@pytest.mark.parametrize("name", available_methods())
def test_method_is_found_and_declares_its_params(name: str) -> None:
    cls = get_method_class(name)
    assert issubclass(cls, Method) and cls.name == name
    if cls.PARAMS_SCHEMA.get("required"):  # e.g. precomputed needs its folder: leaving it out is one clear error
        with pytest.raises(UserError):
            validate_params(cls, {}, f"methods.{name}.params")
    else:
        assert validate_params(cls, {}, f"methods.{name}.params") is not None  # defaults alone are valid


@pytest.mark.parametrize("name", available_methods())
def test_method_honours_the_field_convention_on_a_known_shift(name: str) -> None:
    cls = get_method_class(name)
    if cls.is_trainable():
        pytest.skip("trainable: an untrained network has no registration to check; its own tests fit it first")
    if not cls.outputs_field:
        pytest.skip("outputs an image, not a field")
    moving, fixed = _shifted_pair()
    result = run_method(_method(name), moving, fixed)
    inner = (slice(16, -16), slice(16, -16))
    if name == "identity":
        assert not result.field.any()
        return
    assert not result.failed, result.reason
    u = np.median(result.field[0][inner]), np.median(result.field[1][inner])
    assert abs(u[0] - DY) < 1.0 and abs(u[1] - DX) < 1.0, f"field (rows, cols) = {u}, expected ({DY}, {DX})"
    err_before = np.abs(moving - fixed)[inner].mean()
    assert np.abs(result.image - fixed)[inner].mean() < 0.5 * err_before


@pytest.mark.parametrize("name", available_methods())
def test_method_output_kind_constant_image_and_determinism(name: str) -> None:
    moving, fixed = _shifted_pair()
    a = run_method(_method(name), moving, fixed)
    assert a.image.shape == SHAPE and a.image.dtype == np.float32 and np.isfinite(a.image).all()
    cls = get_method_class(name)
    if cls.outputs_field:
        assert a.field is not None and a.field.shape == (2, *SHAPE) and np.isfinite(a.field).all()
    else:
        assert a.field is None
    # Deterministic: a fresh instance with the same seed gives the same output, bit for bit.
    b = run_method(_method(name), moving, fixed)
    np.testing.assert_array_equal(a.image, b.image)
    # A constant image never raises: the row says whether the method failed.
    flat = np.full(SHAPE, 0.5, np.float32)
    c = run_method(_method(name), flat, fixed)
    assert isinstance(c.failed, bool) and c.image.shape == SHAPE and np.isfinite(c.image).all()
    if c.failed:
        assert c.reason


def test_methods_can_be_named_by_import_path() -> None:
    cls = get_method_class("baselines.identity:Identity")
    assert cls is get_method_class("identity")
    for bad, words in (("baselines.identity:Nope", "no attribute"), ("no_such_pkg.mod:X", "cannot import"),
                       ("pcreg.errors:UserError", "not a subclass")):
        with pytest.raises(UserError, match=words):
            get_method_class(bad)


# -- dataset types ---------------------------------------------------------------------------------------


def _small_params(type_name: str, tmp_path: Path) -> dict | None:
    """Small params for the built-in types (local fixtures instead of downloads); None: the schema defaults."""
    repo = Path(__file__).resolve().parent.parent
    if type_name in ("fire", "fire-reg-256"):
        tree = make_fire_tree(tmp_path / "fire-src")
        if type_name == "fire":
            return {"source_dir": str(tree), "image_size": 32, "fractions": {"train": 0.5, "val": 0.0, "test": 0.5}}
        return {"source_dir": str(tree), "working_size": 64, "patch_size": 32, "stride": 16,
                "fractions": {"train": 0.5, "val": 0.0, "test": 0.5}}
    return {
        "synthetic-fundus": {"image_size": 48, "pairs": {"train": 4, "val": 2, "test": 6}},
        "synthetic-orpam": {"height": 40, "width": 32, "sequences": {"train": 1, "val": 1, "test": 2}, "frames": 3},
        "folder": {"path": str(repo / "examples" / "folder-pairs"), "image_size": [64, 64],
                   "fractions": {"train": 0.5, "val": 0.0, "test": 0.5}},
    }.get(type_name)


@pytest.mark.parametrize("type_name", available_dataset_types())
def test_dataset_type_writes_the_format_with_disjoint_splits(type_name: str, tmp_path: Path) -> None:
    module = get_dataset_type(type_name)
    assert module.TYPE == type_name
    params = _small_params(type_name, tmp_path)
    if type_name == "orpam":
        pytest.skip("needs the OR-PAM repository (downloaded); its local-copy layouts are covered in test_orpam.py")
    params = validate_params(module, params or {}, f"datasets.{type_name}.params")
    root = module.prepare(tmp_path / "out", "d", params, 0)
    ds = PreparedDataset(root)
    assert list(ds.manifest.columns[: len(MANIFEST_COLUMNS)]) == MANIFEST_COLUMNS
    seen: dict[str, str] = {}
    total = 0
    for split in SPLITS:
        part = ds.split(split)
        total += len(part)
        for i, pid in enumerate(part.pair_ids):
            assert pid not in seen, f"pair {pid} in both {seen[pid]} and {split}"
            seen[pid] = split
            moving, fixed = part.pair(i)
            assert moving.shape == fixed.shape == ds.image_shape
            assert np.isfinite(moving).all() and np.isfinite(fixed).all()
    assert total == len(ds.manifest) and len(ds.split("test")) > 0
    if getattr(module, "TEMPORAL", False):  # frames of one sequence never straddle two splits
        by_split = ds.manifest.groupby("split")["sequence"].apply(set)
        for a in by_split.index:
            for b in by_split.index:
                assert a == b or not (by_split[a] & by_split[b])

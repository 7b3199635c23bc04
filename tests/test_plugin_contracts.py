"""Contracts every registered plug-in honours: parametrized over ALL methods and dataset types.

A new method (baselines/foo.py) or dataset type (pcreg/datasets/foo.py) is picked up
by the registries and tested here without writing a test:
- methods: the checks of ``python -m pcreg check-method`` (pcreg/methods/check.py, one definition): the
  field convention on a known shift, the kind, dtype and range of the output, constant and blank images
  survived with a ``failed`` flag (never an exception), determinism;
- dataset types: the on-disk format of docs/DATASETS.md and disjoint splits.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from helpers.fire_layout import make_fire_tree  # noqa: E402

from pcreg.datasets import PreparedDataset, available_dataset_types, get_dataset_type  # noqa: E402
from pcreg.datasets.format import MANIFEST_COLUMNS, SPLITS  # noqa: E402
from pcreg.errors import UserError  # noqa: E402
from pcreg.methods.base import Method  # noqa: E402
from pcreg.methods.check import (  # noqa: E402
    Factory,
    check_constant_inputs,
    check_determinism,
    check_known_shift,
    check_output,
    check_params,
    method_factory,
    shifted_pair,
)
from pcreg.methods.registry import available_methods, get_method_class, run_method  # noqa: E402
from pcreg.schema import validate_params  # noqa: E402


def _make(name: str) -> Factory:
    """Fresh seeded instances of ``name`` (trainable ones with untrained weights), as check-method makes them."""
    if get_method_class(name).needs_ground_truth:
        pytest.skip("a reference that reads the dataset's ground-truth field (nothing to register from the images "
                    "alone); tests/test_ground_truth.py")
    if get_method_class(name).wants_pair_ids:
        pytest.skip("reads outputs made elsewhere by pair id (no arrays to register); tests/test_external.py")
    return method_factory(name)


@pytest.mark.parametrize("name", available_methods())
def test_method_is_found_and_declares_its_params(name: str) -> None:
    cls = get_method_class(name)
    assert issubclass(cls, Method) and cls.name == name
    assert check_params(cls) == []
    if cls.PARAMS_SCHEMA.get("required"):  # e.g. precomputed needs its folder: leaving it out is one clear error
        with pytest.raises(UserError):
            validate_params(cls, {}, f"methods.{name}.params")


@pytest.mark.parametrize("name", available_methods())
def test_method_honours_the_field_convention_on_a_known_shift(name: str) -> None:
    cls = get_method_class(name)
    if cls.is_trainable():
        pytest.skip("trainable: an untrained network has no registration to check; its own tests fit it first")
    if not cls.outputs_field:
        pytest.skip("outputs an image, not a field")
    make = _make(name)
    if name == "identity":
        assert not run_method(make(), *shifted_pair()).field.any()
        return
    assert check_known_shift(cls, make) == []


@pytest.mark.parametrize("name", available_methods())
def test_method_output_kind_range_constant_images_and_determinism(name: str) -> None:
    cls, make = get_method_class(name), _make(name)
    assert check_output(cls, make) == []
    assert check_constant_inputs(cls, make) == []
    assert check_determinism(cls, make) == []


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

"""Dataset types: each module prepares one kind of dataset into the shared on-disk format.

A dataset type module defines ``TYPE`` (the name used in the config),
``PARAMS_SCHEMA`` (JSON schema of its ``params``, with defaults) and
``prepare(root, name, params, seed) -> Path``. Type ``foo-bar`` is the module
``pcreg/datasets/foo_bar.py``, found by the same mechanism as methods
(:mod:`pcreg.plugins`): an installed package may add types under the
entry-point group ``pcreg_bench.datasets`` or be named ``"pkg.mod:"``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from pcreg.datasets.format import DatasetWriter, PairSplit, PreparedDataset
from pcreg.plugins import PluginKind

__all__ = ["DATASETS", "available_dataset_types", "DatasetWriter", "PairSplit", "PreparedDataset", "get_dataset_type"]

REQUIRED = ("TYPE", "PARAMS_SCHEMA", "prepare")  #: what a dataset type module must define
#: Public modules of pcreg/datasets that are helpers, not dataset types.
NOT_TYPES = frozenset({"format", "download", "acquisition", "lesions", "source_files", "retina_model",
                       "fundus_geometry"})


def _check(obj: Any) -> str | None:
    missing = [a for a in REQUIRED if not hasattr(obj, a)]
    return f"{getattr(obj, '__name__', obj)!r} does not define {', '.join(missing)}" if missing else None


#: Dataset types: modules of ``pcreg/datasets/`` (type ``foo-bar`` is ``foo_bar.py``), import paths, entry points.
DATASETS = PluginKind(
    kind="dataset type", package="pcreg.datasets", group="pcreg_bench.datasets",
    pick=lambda module, _name: module, check=_check, not_plugins=NOT_TYPES, dashed_names=True,
)


def available_dataset_types() -> list[str]:
    """Names of the registered dataset types (built-in and installed)."""
    return DATASETS.available()


def get_dataset_type(name: str) -> ModuleType:
    """The module implementing dataset type ``name`` (built-in, entry point or ``"pkg.mod:"``); a clear error else."""
    return DATASETS.resolve(name)

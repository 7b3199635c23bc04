"""Dataset types: each module prepares one kind of dataset into the shared on-disk format.

A dataset type module defines ``TYPE`` (the name used in the config),
``PARAMS_SCHEMA`` (JSON schema of its ``params``, with defaults) and
``prepare(root, name, params, seed) -> Path``. Register new types in
``DATASET_TYPES``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from pcreg.datasets.format import DatasetWriter, PairSplit, PreparedDataset
from pcreg.errors import UserError

__all__ = ["DATASET_TYPES", "DatasetWriter", "PairSplit", "PreparedDataset", "get_dataset_type"]

#: Dataset type name -> module implementing it.
DATASET_TYPES: dict[str, str] = {
    "synthetic-fundus": "pcreg.datasets.synthetic_fundus",
    "synthetic-orpam": "pcreg.datasets.synthetic_orpam",
    "fire": "pcreg.datasets.fire",
    "fire-reg-256": "pcreg.datasets.fire_reg_256",
    "orpam": "pcreg.datasets.orpam",
    "folder": "pcreg.datasets.folder",
}


def get_dataset_type(name: str) -> ModuleType:
    """The module implementing dataset type ``name``; a clear error for an unknown type."""
    if name not in DATASET_TYPES:
        raise UserError(f"unknown dataset type {name!r}; available: {', '.join(sorted(DATASET_TYPES))}")
    return importlib.import_module(DATASET_TYPES[name])

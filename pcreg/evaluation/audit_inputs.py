"""The sanity audit's modified inputs, named, so that methods run elsewhere can be audited too.

The audit (:mod:`pcreg.evaluation.audit_run`) re-runs a method on a seeded subset of test
pairs with the moving image replaced by a blank image and by another pair's
moving image. :func:`audit_cases` builds exactly those inputs and names them
``<pair_id>~blank`` and ``<pair_id>~other`` (the normal condition is the test pair
itself, named by its ``pair_id``); ``python -m pcreg export`` writes them, and a
``precomputed`` method reads its outputs for them by these names.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pcreg.datasets.format import PreparedDataset
from pcreg.evaluation import audit

#: Name suffix of each audit condition's input ("" for the unmodified test pair).
SUFFIX = {"normal": "", "blank": "~blank", "shuffled": "~other"}


@dataclass
class AuditCase:
    """One audit input: its name, condition, the test pair it belongs to, and the images."""

    audit_id: str
    condition: str
    pair_id: str
    moving: np.ndarray
    fixed: np.ndarray


#: The manifest column that defines the donor pool: a donor never comes from the audited pair's own
#: ``cluster`` (the independent unit: no shared source region, sequence or photograph). The one definition,
#: used by the audit in the workflow, the export of the audit inputs and the methods that read them.
DONOR_GROUP = "cluster"


def audited_subset(data_root: Path, n_pairs: int | None, seed: int) -> tuple[Any, np.ndarray, list[str]]:
    """The test split, the indices of the audited pairs and each one's donor group (:data:`DONOR_GROUP`)."""
    test = PreparedDataset(data_root).split("test")
    idx = audit.select_pairs(len(test), n_pairs, seed)
    groups = [str(test.manifest.at[int(i), DONOR_GROUP]) for i in idx]
    return test, idx, groups


def audit_cases(data_root: Path, n_pairs: int | None, seed: int, blank: str = "mean") -> Iterator[AuditCase]:
    """Every input :func:`pcreg.evaluation.audit.audit_pairs` gives a method in the workflow's audit, in its order."""
    test, idx, groups = audited_subset(data_root, n_pairs, seed)
    donors = audit.derangement(len(idx), seed, groups)
    for k, i in enumerate(idx):
        pair_id = test.pair_ids[int(i)]
        moving, fixed = test.pair(int(i))
        inputs = {"normal": moving, "blank": audit.blank_like(moving, blank),
                  "shuffled": np.asarray(test.moving[int(idx[donors[k]])], np.float32)}
        for condition, mov in inputs.items():
            yield AuditCase(pair_id + SUFFIX[condition], condition, pair_id, mov, fixed)


def input_key(moving: np.ndarray, fixed: np.ndarray) -> str:
    """Digest of an input pair's exact float32 contents (how the audit's calls are matched to their names)."""
    digest = hashlib.sha1(np.ascontiguousarray(moving, np.float32).tobytes())
    digest.update(np.ascontiguousarray(fixed, np.float32).tobytes())
    return digest.hexdigest()


def case_names(data_root: Path, n_pairs: int | None, seed: int, blank: str = "mean") -> dict[str, AuditCase]:
    """:func:`audit_cases` keyed by :func:`input_key`."""
    return {input_key(c.moving, c.fixed): c for c in audit_cases(data_root, n_pairs, seed, blank)}

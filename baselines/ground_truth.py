"""The perfect-registration reference: the moving image warped by the dataset's ground-truth field.

Not a method: it reads the answer. It shows, next to every method, the ceiling a
registration can reach on a dataset with ground-truth fields (the synthetic
ones): the intensity metrics of a perfect warp (which stay below 1 because the
two images differ in appearance and where the moving image does not cover the
fixed one), a zero TRE/EPE, and the content-fidelity of a perfect warp. The
shard runner hands it the test split (:meth:`GroundTruth.bind_ground_truth`);
a dataset without fields has no such row (the workflow leaves it out).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from pcreg.methods.base import Method, Registration

#: Label of the reference row in every table (docs/CONTRACTS: id ``ground_truth``, group ``reference``).
LABEL = "perfect registration (ground truth)"


class GroundTruth(Method):
    """Returns the pair's ground-truth pull-back field (docs/CONVENTIONS.md), looked up by pair id."""

    name = "ground_truth"
    label = LABEL
    wants_pair_ids = True
    needs_ground_truth = True

    def __init__(self, params: dict[str, Any] | None = None, **kwargs: Any):
        super().__init__(params, **kwargs)
        self._fields: Any = None
        self._index: dict[str, int] = {}

    def bind_ground_truth(self, split: Any) -> None:
        """Use the fields of ``split`` (a :class:`pcreg.datasets.format.PairSplit`)."""
        if split.field is None:
            raise ValueError(f"split {split.name!r} has no ground-truth fields: no perfect-registration row")
        self._fields = split.field
        self._index = {pid: i for i, pid in enumerate(split.pair_ids)}

    def register(self, moving: np.ndarray, fixed: np.ndarray, pair_id: str | None = None) -> Registration:
        if self._fields is None:
            raise RuntimeError("ground_truth needs the dataset's ground-truth fields (bind_ground_truth)")
        if pair_id not in self._index:
            raise KeyError(f"no ground-truth field for pair {pair_id!r}")
        return Registration(field=np.asarray(self._fields[self._index[pair_id]], np.float32))

    PARAMS_SCHEMA: ClassVar[dict[str, Any]] = {"type": "object", "properties": {}, "additionalProperties": False}

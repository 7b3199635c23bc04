"""Outputs made elsewhere (another environment, another cluster), scored like any other method.

``params.path`` is a folder with, per test pair (named by its ``pair_id``, see
``python -m pcreg export`` and docs/EXTERNAL.md)::

    fields/<pair_id>.npy                  displacement field, (2, H, W) or (H, W, 2), float
    images/<pair_id>.{npy,png,tif,tiff}   registered image (H, W), used when output = image
    runtimes.csv                          optional: pair_id, runtime_s
    failed.csv                            optional: pair_id, reason (pairs the method itself failed on)

A field is declared in ``params.convention`` (``direction``: pull-back or
push-forward, ``order``: row-col or x-y) and converted to the suite's
convention (:mod:`pcreg.field_conventions`); the registered image of a field is
then made by the suite's warping routine, as for every field method. A pair with
no file is a failed pair (identity) with the reason, as is a pair listed in
``failed.csv`` (with the method's own reason); a file of the wrong shape
or with non-finite values stops the run with one line naming the file.

A convention declared wrong is caught where the suite knows the answer: at
evaluation the fields of a few test pairs are also scored with the axes swapped
and the direction reversed, and the tables' notes flag a run whose fields score
clearly better in another convention (:mod:`pcreg.evaluation.convention_check`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from pcreg.errors import UserError
from pcreg.field_conventions import DIRECTIONS, ORDERS, to_suite_field
from pcreg.image_io import IMAGE_SUFFIXES, read_image
from pcreg.methods.base import Method, Registration


class Precomputed(Method):
    """Reads each pair's field or registered image from a folder written by an external method."""

    name = "precomputed"
    label = "Precomputed"
    wants_pair_ids = True
    PARAMS_SCHEMA: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["path"],
        "properties": {
            "path": {"type": "string", "description": "Folder of outputs (relative to the working directory)."},
            "output": {"type": "string", "enum": ["auto", "field", "image"], "default": "auto",
                       "description": "Read fields/ or images/; auto: fields/ when it exists, else images/."},
            "convention": {
                "type": "object", "additionalProperties": False, "default": {},
                "description": "Convention of the fields on disk; the suite's is pull-back, row-col.",
                "properties": {
                    "direction": {"type": "string", "enum": list(DIRECTIONS), "default": "pull-back"},
                    "order": {"type": "string", "enum": list(ORDERS), "default": "row-col"},
                },
            },
            "runtimes": {"type": "string", "default": "runtimes.csv",
                         "description": "CSV (pair_id, runtime_s) inside path; absent: runtimes left empty."},
            "invert_iterations": {"type": "integer", "minimum": 1, "default": 100,
                                  "description": "Fixed-point iterations inverting a push-forward field."},
        },
    }

    def __init__(self, params: dict[str, Any] | None = None, **kwargs: Any):
        super().__init__(params, **kwargs)
        self.root = Path(self.params["path"])
        if not self.root.is_dir():
            raise UserError(f"precomputed: folder not found: {self.root}")
        output = self.params.get("output", "auto")
        if output == "auto":
            output = "field" if (self.root / "fields").is_dir() else "image"
        if not (self.root / f"{output}s").is_dir():
            raise UserError(f"precomputed: {self.root} has no {output}s/ folder")
        # Instance attribute: whether this run scores fields depends on its folder, not on the class.
        self.outputs_field = output == "field"
        runtimes = self._read_table(self.root / self.params.get("runtimes", "runtimes.csv"), "runtime_s")
        self.runtimes = {k: float(v) for k, v in runtimes.items()}
        self.declared_failed = {k: str(v) for k, v in self._read_table(self.root / "failed.csv", "reason").items()}

    @staticmethod
    def _read_table(path: Path, column: str) -> dict[str, Any]:
        """``pair_id -> column`` of an optional CSV in the folder ({} when absent)."""
        if not path.is_file():
            return {}
        try:
            table = pd.read_csv(path, dtype={"pair_id": str, "reason": str}, keep_default_na=False)
            values = table[column].astype(float) if column == "runtime_s" else table[column]
            return dict(zip(table["pair_id"], values))
        except (KeyError, ValueError, pd.errors.ParserError) as exc:
            raise UserError(f"{path}: expected columns pair_id, {column} ({exc})") from None

    def has_output(self, pair_id: str) -> bool:
        """True if the folder has an output for ``pair_id`` or declares that the method failed on it."""
        return pair_id in self.declared_failed or self._find(pair_id) is not None

    def _find(self, pair_id: str) -> Path | None:
        if self.outputs_field:
            path = self.root / "fields" / f"{pair_id}.npy"
            return path if path.is_file() else None
        for suffix in IMAGE_SUFFIXES:
            path = self.root / "images" / f"{pair_id}{suffix}"
            if path.is_file():
                return path
        return None

    def register(self, moving: np.ndarray, fixed: np.ndarray, *, pair_id: str | None = None) -> Registration:
        if pair_id is None:
            raise UserError("precomputed: the pair id is required (run it through the suite's runner)")
        runtime = self.runtimes.get(pair_id, float("nan"))
        if pair_id in self.declared_failed:
            return Registration(failed=True, reason=self.declared_failed[pair_id], runtime_s=runtime)
        path = self._find(pair_id)
        if path is None:
            kind = "fields/<id>.npy" if self.outputs_field else "images/<id>.{npy,png,tif}"
            return Registration(failed=True, reason=f"no precomputed output for {pair_id} ({kind} in {self.root})",
                                runtime_s=runtime)
        try:
            if self.outputs_field:
                conv = self.params.get("convention", {})
                field = to_suite_field(np.load(path, allow_pickle=False), moving.shape,
                                       direction=conv.get("direction", "pull-back"),
                                       order=conv.get("order", "row-col"),
                                       iterations=self.params.get("invert_iterations", 100))
                return Registration(field=field, runtime_s=runtime)
            image = read_image(path)
        except (ValueError, OSError) as exc:
            raise UserError(f"precomputed file {path}: {exc}") from None
        if image.shape != moving.shape:
            raise UserError(f"precomputed file {path}: image has shape {image.shape}, expected {moving.shape}")
        if not np.all(np.isfinite(image)):
            raise UserError(f"precomputed file {path}: image contains NaN or infinite values")
        return Registration(image=image, runtime_s=runtime)

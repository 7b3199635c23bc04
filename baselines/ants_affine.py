"""ANTs' affine stage alone: the pre-alignment of the learned rows, as a row of its own.

VoxelMorph and TransMorph rows with ``prealign: ants-affine`` compose their network's
field with this global transform (:class:`baselines._prealign.PreAligner`). Reporting
the transform alone shows what the network adds on top of it (the table note gives
the gain). The same code path, parameters and seed as the pre-alignment, so the two
fields are identical pair for pair.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from pcreg.methods.base import Method, Registration


class AntsAffine(Method):
    """The learned rows' ANTs affine pre-alignment (mutual information, multi-resolution) on its own."""

    name = "ants_affine"
    label = "ANTs affine"
    PARAMS_SCHEMA: ClassVar[dict[str, Any]] = {"type": "object", "additionalProperties": False, "properties": {}}

    def register(self, moving: np.ndarray, fixed: np.ndarray) -> Registration:
        if getattr(self, "_pre", None) is None:
            from baselines._prealign import PreAligner

            self._pre = PreAligner("ants-affine", seed=self.seed)
        for what, image in (("moving", moving), ("fixed", fixed)):
            if float(np.ptp(image)) < 1e-6:
                return Registration(failed=True, reason=f"{what} image is constant")
        return Registration(field=self._pre.field(np.asarray(moving, np.float32), np.asarray(fixed, np.float32)))

"""ANTs' affine stage alone: the pre-alignment of the learned rows, as a row of its own.

VoxelMorph and TransMorph rows with ``prealign: ants-affine`` compose their network's
field with this global transform (:class:`baselines._prealign.PreAligner`). Reporting
the transform alone shows what the network adds on top of it (the table note gives
the gain). The same code path, parameters and seed as the pre-alignment, so the two
fields are identical pair for pair.
"""

from __future__ import annotations

from typing import Any, ClassVar

from baselines._prealign import PreAlignmentRow
from pcreg.methods.base import Method


class AntsAffine(PreAlignmentRow, Method):
    """The learned rows' ANTs affine pre-alignment (mutual information, multi-resolution) on its own."""

    name = "ants_affine"
    label = "ANTs affine"
    PREALIGN = "ants-affine"
    PARAMS_SCHEMA: ClassVar[dict[str, Any]] = {"type": "object", "additionalProperties": False, "properties": {}}

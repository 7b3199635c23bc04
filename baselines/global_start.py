"""The fair start alone: SIFT's homography, a multi-start ANTs affine or the identity, chosen per pair.

The global transform that starts ``syn_sift_init`` and ``demons_sift_init``
(:func:`baselines._global_init.global_field`, ``init: auto``) and that pre-aligns the
learned rows with ``prealign: global-start``, reported as a row of its own, so that a
table shows what the deformable stage or the network adds on top of it (the table note
gives a learned row's gain). The same code path and seed as the pre-alignment, so the
fields are identical pair for pair (and shared on disk, :mod:`pcreg.methods.pair_cache`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from baselines._prealign import PreAlignmentRow
from pcreg.methods.base import Method


class GlobalStart(PreAlignmentRow, Method):
    """The global start (SIFT / multi-start affine / identity, by overlap-weighted normalised MI) on its own."""

    name = "global_start"
    label = "Global start (SIFT / multi-start affine)"
    PREALIGN = "global-start"
    PARAMS_SCHEMA: ClassVar[dict[str, Any]] = {"type": "object", "additionalProperties": False, "properties": {}}

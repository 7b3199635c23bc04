"""Content fidelity: does a method keep what only the moving image shows, and invent what only the fixed shows?

Intensity metrics (NCC, SSIM, PSNR) reward an output that looks like the fixed
image, whether it got there by moving the moving image (registration) or by
painting the fixed image (synthesis). Features present in only one image of a
pair tell the two apart (masks and kinds: :mod:`pcreg.datasets.format`):

- **kept** (moving-only features): the feature's contrast in the method's
  output, at the position where the ground truth puts it in fixed space,
  divided by its contrast in the moving image warped by the ground-truth field.
  1 = kept, 0 = erased. Without a ground-truth field, the denominator is the
  feature's contrast in the moving image at its moving-space mask.
- **invented** (fixed-only features): the output's contrast at the feature,
  divided by the feature's contrast in the fixed image. 0 = not invented,
  1 = copied from the fixed image.

*Contrast* is the mean intensity over the feature's mask minus the mean over a
ring around it (from ``RING_GAP`` to ``RING_WIDTH + RING_GAP`` pixels outside
the mask), so a smooth background or an intensity offset does not count. A
feature whose reference contrast is below ``MIN_CONTRAST`` (lost in noise) is
not scored. A pair's value is the mean over its features of that kind.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from pcreg.warp import warp_image

#: Ring around a feature used as its local background: gap and width in pixels.
RING_GAP = 1
RING_WIDTH = 3
#: Smallest reference contrast (intensity units) for a feature to be scored.
MIN_CONTRAST = 0.02


def ring(mask: np.ndarray, gap: int = RING_GAP, width: int = RING_WIDTH) -> np.ndarray:
    """Pixels between ``gap`` and ``gap + width`` (chessboard dilations) outside ``mask``."""
    inner = ndimage.binary_dilation(mask, iterations=gap) if gap > 0 else mask
    outer = ndimage.binary_dilation(mask, iterations=gap + width)
    return outer & ~inner


def contrast(image: np.ndarray, mask: np.ndarray) -> float:
    """Mean of ``image`` over ``mask`` minus its mean over the ring around ``mask`` (NaN if either is empty)."""
    mask = np.asarray(mask, bool)
    background = ring(mask)
    if not mask.any() or not background.any():
        return float("nan")
    img = np.asarray(image, np.float64)
    return float(img[mask].mean() - img[background].mean())


def _ratio(output: np.ndarray, reference: np.ndarray, mask: np.ndarray,
           ref_mask: np.ndarray | None = None) -> float:
    ref = contrast(reference, mask if ref_mask is None else ref_mask)
    if not np.isfinite(ref) or abs(ref) < MIN_CONTRAST:
        return float("nan")
    return contrast(output, mask) / ref


def feature_scores(
    output: np.ndarray,
    moving: np.ndarray,
    fixed: np.ndarray,
    gt_field: np.ndarray | None,
    labels_moving: np.ndarray,
    labels_fixed: np.ndarray,
    kinds: dict[int, tuple[str, str]],
) -> list[dict]:
    """One row per feature of a pair: ``label``, ``kind``, ``name``, ``score`` (kept or invented ratio)."""
    labels_fixed = np.asarray(labels_fixed)
    labels_moving = np.asarray(labels_moving)
    reference_moving = warp_image(moving, gt_field) if gt_field is not None else None
    rows = []
    for label, (kind, name) in sorted(kinds.items()):
        mask = labels_fixed == label
        if kind == "moving_only":
            if reference_moving is not None:
                score = _ratio(output, reference_moving, mask)
            else:  # reference: the moving image at the feature's moving-space mask
                score = _ratio(output, moving, mask, ref_mask=labels_moving == label)
        else:
            score = _ratio(output, fixed, mask)
        rows.append({"label": label, "kind": kind, "name": name, "score": score})
    return rows


def pair_fidelity(
    output: np.ndarray,
    moving: np.ndarray,
    fixed: np.ndarray,
    gt_field: np.ndarray | None,
    labels_moving: np.ndarray,
    labels_fixed: np.ndarray,
    kinds: dict[int, tuple[str, str]],
) -> dict[str, float]:
    """``kept`` and ``invented`` of one pair: the mean over its moving-only / fixed-only features (NaN if none)."""
    rows = feature_scores(output, moving, fixed, gt_field, labels_moving, labels_fixed, kinds)
    out = {}
    for key, kind in (("kept", "moving_only"), ("invented", "fixed_only")):
        vals = np.array([r["score"] for r in rows if r["kind"] == kind], np.float64)
        vals = vals[np.isfinite(vals)]
        out[key] = float(vals.mean()) if vals.size else float("nan")
    return out

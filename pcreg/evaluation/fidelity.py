"""Content fidelity: does a method keep what only the moving image shows, and invent what only the fixed shows?

Intensity metrics (NCC, SSIM, PSNR) reward an output that looks like the fixed
image, whether it got there by moving the moving image (registration) or by
painting the fixed image (synthesis). Features present in only one image of a
pair tell the two apart (masks and kinds: :mod:`pcreg.datasets.format`). Two
questions are kept apart: *whether* a moving-only feature survived (content,
``kept``) and *where* it was put (``placement_px``).

- **kept** (moving-only features): the feature's contrast in the method's
  output *where the method put it*, divided by its reference contrast.

  * A method with a displacement field: at the feature's moving-space mask
    transported into fixed space by the method's **own** field
    (``mask_fixed(p) = mask_moving(p + u(p))``, bilinear, >= 0.5). A feature the
    field squeezes to nothing scores 0 (erased).
  * An image-only method (no field): the best (largest) ratio over integer
    shifts of the feature's ground-truth fixed-space mask within
    ``±SEARCH_PX`` pixels in rows and columns, of the contrast the output has
    there *beyond the fixed image's* (output minus fixed): the fixed image lacks
    a moving-only feature, so whatever the search finds there that the fixed
    image does not have came from the moving image (a bright vessel next to the
    feature, present in both, does not count).

  The reference is the feature's contrast in the moving image warped by the
  ground-truth field, at the moving-space mask transported by the ground-truth
  field (without a ground-truth field: the moving image at the moving-space
  mask). 1 = kept, 0 = erased.
- **placement_px** (moving-only features): the distance between the centroid of
  the mask where the method put the feature (transported mask, or the best
  shift of the search) and the centroid of its ground-truth fixed-space mask.
  For an image-only method it is the length of the best shift, so at most
  ``SEARCH_PX·√2`` (NaN where nothing beyond the fixed image was found).
- **invented** (fixed-only features): the output's contrast at the feature,
  divided by the feature's contrast in the fixed image. 0 = not invented,
  1 = copied from the fixed image.

Every ratio is clipped to :data:`RATIO_RANGE` so that a feature with a small
reference contrast cannot dominate a mean. *Contrast* is the mean intensity over
the feature's mask minus the mean over a ring around it (from ``RING_GAP`` to
``RING_WIDTH + RING_GAP`` pixels outside the mask), so a smooth background or an
intensity offset does not count. A feature whose reference contrast is below
``MIN_CONTRAST`` (lost in noise) is not scored. A pair's value is the mean over
its features of that kind.
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
#: Half-width (pixels) of the search window for image-only methods: shifts -SEARCH_PX..SEARCH_PX per axis.
SEARCH_PX = 3
#: Every kept / invented ratio is clipped to this range.
RATIO_RANGE = (-0.5, 1.5)


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


def _clip(ratio: float) -> float:
    return float(np.clip(ratio, *RATIO_RANGE)) if np.isfinite(ratio) else float("nan")


def _reference(image: np.ndarray, mask: np.ndarray) -> float:
    """A feature's reference contrast, NaN when it is lost in noise (below :data:`MIN_CONTRAST`)."""
    ref = contrast(image, mask)
    return ref if np.isfinite(ref) and abs(ref) >= MIN_CONTRAST else float("nan")


def _centroid(mask: np.ndarray) -> np.ndarray:
    return np.array(ndimage.center_of_mass(np.asarray(mask, np.float64)))


def transported_mask(mask_moving: np.ndarray, field: np.ndarray) -> np.ndarray:
    """A moving-space mask carried into fixed space by a pull-back field (bilinear, threshold 0.5)."""
    return warp_image(np.asarray(mask_moving, np.float32), field) >= 0.5


def best_shift_contrast(output: np.ndarray, mask: np.ndarray, ref: float, baseline: np.ndarray | None = None,
                        search: int = SEARCH_PX) -> tuple[float, tuple[int, int]]:
    """Largest ``contrast / ref`` of ``output - baseline`` over integer shifts of ``mask`` (and its ring) within
    ``±search``: the contrast the output has there beyond the baseline's (the fixed image, which lacks a
    moving-only feature; ``None``: none subtracted).

    Returns the ratio and the shift ``(dy, dx)`` that gives it; pixels shifted off the image are dropped.
    """
    img = np.asarray(output, np.float64)
    if baseline is not None:
        img = img - np.asarray(baseline, np.float64)
    h, w = img.shape
    inner, outer = np.nonzero(mask), np.nonzero(ring(mask))
    best, where = -np.inf, (0, 0)
    shifts = sorted(((dy, dx) for dy in range(-search, search + 1) for dx in range(-search, search + 1)),
                    key=lambda s: (s[0] ** 2 + s[1] ** 2, s))  # nearest first: a tie keeps the smaller shift
    for dy, dx in shifts:
        vals = []
        for r, c in (inner, outer):
            r2, c2 = r + dy, c + dx
            ok = (r2 >= 0) & (r2 < h) & (c2 >= 0) & (c2 < w)
            vals.append(img[r2[ok], c2[ok]])
        if not vals[0].size or not vals[1].size:
            continue
        ratio = (vals[0].mean() - vals[1].mean()) / ref
        if ratio > best:
            best, where = ratio, (dy, dx)
    return (float(best) if np.isfinite(best) else float("nan")), where


def feature_scores(
    output: np.ndarray,
    moving: np.ndarray,
    fixed: np.ndarray,
    gt_field: np.ndarray | None,
    labels_moving: np.ndarray,
    labels_fixed: np.ndarray,
    kinds: dict[int, tuple[str, str]],
    field: np.ndarray | None = None,
) -> list[dict]:
    """One row per feature of a pair: ``label``, ``kind``, ``name``, ``score`` (kept or invented ratio, clipped)
    and ``placement_px`` (moving-only features; NaN for fixed-only ones). ``field`` is the method's own field
    (``None`` for an image-only method)."""
    labels_fixed = np.asarray(labels_fixed)
    labels_moving = np.asarray(labels_moving)
    reference_moving = warp_image(moving, gt_field) if gt_field is not None else None
    rows = []
    for label, (kind, name) in sorted(kinds.items()):
        mask = labels_fixed == label
        placement = float("nan")
        if kind == "moving_only":
            mask_moving = labels_moving == label
            if reference_moving is not None:  # the ground-truth warp at the mask the ground truth transports
                ref_mask = transported_mask(mask_moving, gt_field)
                ref = _reference(reference_moving, ref_mask if ref_mask.any() else mask)
            else:
                ref = _reference(moving, mask_moving)
            if not np.isfinite(ref):
                score = float("nan")
            elif field is not None:
                where = transported_mask(mask_moving, field)
                if not where.any():  # squeezed out of existence by the field: erased
                    score = 0.0
                else:
                    score = contrast(output, where) / ref
                    if mask.any():
                        placement = float(np.linalg.norm(_centroid(where) - _centroid(mask)))
            elif mask.any():
                score, (dy, dx) = best_shift_contrast(output, mask, ref, baseline=fixed)
                placement = float(np.hypot(dy, dx)) if score > 0 else float("nan")  # nothing found: no place
            else:
                score = float("nan")
        else:
            ref = _reference(fixed, mask)
            score = contrast(output, mask) / ref if np.isfinite(ref) else float("nan")
        rows.append({"label": label, "kind": kind, "name": name, "score": _clip(score), "placement_px": placement})
    return rows


def pair_fidelity(
    output: np.ndarray,
    moving: np.ndarray,
    fixed: np.ndarray,
    gt_field: np.ndarray | None,
    labels_moving: np.ndarray,
    labels_fixed: np.ndarray,
    kinds: dict[int, tuple[str, str]],
    field: np.ndarray | None = None,
) -> dict[str, float]:
    """``kept``, ``invented`` and ``placement_px`` of one pair: means over its moving-only / fixed-only features
    (NaN if none). ``field``: the method's own displacement field, ``None`` for an image-only method."""
    rows = feature_scores(output, moving, fixed, gt_field, labels_moving, labels_fixed, kinds, field)
    out = {}
    for key, kind, col in (("kept", "moving_only", "score"), ("invented", "fixed_only", "score"),
                           ("placement_px", "moving_only", "placement_px")):
        vals = np.array([r[col] for r in rows if r["kind"] == kind], np.float64)
        vals = vals[np.isfinite(vals)]
        out[key] = float(vals.mean()) if vals.size else float("nan")
    return out

"""A fair start for the deformable baselines: a global transform found before SyN or Demons run.

SyN's own affine stage (ANTs, mutual information, started at the images' centres)
and Demons (no global stage) do not find large global motion: on pairs with
projective maps and partial overlap (FIRE's P class) they end near or above the
Unregistered error (issue 22). The field starts such methods from a feature-based
or multi-start global search; this module offers both, as configurable parts of a
row (the published configuration stays its own row):

- ``sift``: the suite's SIFT + RANSAC homography (:class:`baselines.sift.SIFT`,
  with its sanity checks: enough inliers, no reflection, bounded scale and shift);
- ``ants-multistart``: ANTs' affine registration (mutual information) started from
  several rigid starts: an exhaustive search at about :data:`COARSE_PX` pixels over
  rotations :data:`ROTATIONS_DEG` about the image centre and every integer shift up
  to :data:`MAX_SHIFT` of the image size, scored by normalised mutual information;
  the :data:`REFINE` best distinct starts are refined by ANTs (on copies of at most
  :data:`AFFINE_PX` pixels: a global start needs no finer grid, and at FIRE's 768-px
  working size this cuts the refinements' cost about tenfold), and the best of starts
  and refinements by normalised MI at full resolution is kept;
- ``auto``: both of the above; the candidate (or the identity) with the highest
  normalised mutual information between the warped moving image and the fixed
  image, over the pixels that sample inside the moving image (at least
  :data:`MIN_OVERLAP` of them), wins. SIFT is thus used where it works and the
  multi-start affine search is its fallback.

:func:`with_initial` runs a registration on the moving image pre-warped by the
global field ``a`` and composes: ``u(p) = v(p) + a(p + v(p))`` (one pull-back
field, docs/CONVENTIONS.md). Everything is seeded (ANTs with a fixed seed and one
thread), so a pair's result does not change run to run.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import ndimage

from pcreg.warp import identity_grid, warp_image

#: Initial rotations (degrees) of the multi-start affine search.
ROTATIONS_DEG = (-30.0, -20.0, -10.0, 0.0, 10.0, 20.0, 30.0)
#: Size (pixels) of the low-resolution images the exhaustive start search runs on.
COARSE_PX = 32
#: Largest start translation searched, as a fraction of the image size.
MAX_SHIFT = 0.4
#: Largest scale change (either way) a global start may have.
MAX_SCALE = 1.5
#: Largest image side ANTs' affine refinement runs on; larger pairs are smoothed and subsampled by an integer
#: factor first, and the affine found is carried back to the full grid exactly.
AFFINE_PX = 256
#: Starts refined by ANTs (the best by normalised MI before refinement).
REFINE = 3
#: Smallest fraction of fixed pixels that must sample inside the moving image for a candidate to count.
MIN_OVERLAP = 0.25
INIT_CHOICES = ("none", "sift", "ants-multistart", "auto")

#: The JSON-schema property SyN and Demons share.
INIT_PARAM: dict[str, Any] = {
    "init": {
        "enum": list(INIT_CHOICES), "default": "none",
        "description": "Global start before the method runs (baselines._global_init): none (as published), sift "
        "(SIFT + RANSAC homography with sanity checks), ants-multistart (ANTs affine from several rotations and "
        "phase-correlation translations, chosen by normalised mutual information) or auto (both; the candidate "
        "with the highest normalised mutual information, identity included, wins).",
    },
}


def overlap_mask(field: np.ndarray) -> np.ndarray:
    """Fixed pixels whose pull-back position lies inside the moving image."""
    h, w = field.shape[1:]
    pos = identity_grid((h, w)) + field
    return (pos[0] >= 0) & (pos[0] <= h - 1) & (pos[1] >= 0) & (pos[1] <= w - 1)


def quantize(image: np.ndarray, bins: int) -> np.ndarray:
    """Intensity bin (0..bins-1) of every pixel, equal-width between the 1st and 99th percentiles."""
    img = np.asarray(image, np.float64)
    lo, hi = np.percentile(img, [1.0, 99.0])
    return np.clip(((img - lo) / max(hi - lo, 1e-9) * bins).astype(np.int64), 0, bins - 1)


def _entropy(q: np.ndarray) -> float:
    q = q[q > 0]
    return float(-(q * np.log(q)).sum())


def nmi_of_bins(qa: np.ndarray, qb: np.ndarray, bins: int) -> float:
    """Normalised MI ``(H(A) + H(B)) / H(A, B)`` of two arrays of intensity bins (1 = independent)."""
    if qa.size < 16:
        return 1.0
    p = np.bincount((qa * bins + qb).ravel(), minlength=bins * bins).reshape(bins, bins) / qa.size
    return (_entropy(p.sum(axis=0)) + _entropy(p.sum(axis=1))) / max(_entropy(p), 1e-12)


def normalized_mi(a: np.ndarray, b: np.ndarray, mask: np.ndarray, bins: int = 32) -> float:
    """Studholme's normalised mutual information of ``a`` and ``b`` over ``mask`` (bins from the masked values)."""
    x, y = np.asarray(a, np.float64)[mask], np.asarray(b, np.float64)[mask]
    if x.size < 16 or np.ptp(x) < 1e-9 or np.ptp(y) < 1e-9:
        return 1.0
    return nmi_of_bins(quantize(x, bins), quantize(y, bins), bins)


def linear_part(field: np.ndarray) -> np.ndarray:
    """The 2x2 linear part of the affine map that best fits ``p -> p + field(p)`` (least squares)."""
    grid = identity_grid(field.shape[1:]).reshape(2, -1)
    design = np.vstack([grid, np.ones(grid.shape[1])]).T
    coef, *_ = np.linalg.lstsq(design, (grid + field.reshape(2, -1)).T, rcond=None)
    return coef[:2].T


def plausible(field: np.ndarray) -> bool:
    """A global start must keep orientation and scale within :data:`MAX_SCALE` (singular values of its linear
    part) and overlap the moving image by :data:`MIN_OVERLAP`."""
    lin = linear_part(field)
    sv = np.linalg.svd(lin, compute_uv=False)
    return bool(np.linalg.det(lin) > 0 and sv.min() >= 1 / MAX_SCALE and sv.max() <= MAX_SCALE
                and overlap_mask(field).mean() >= MIN_OVERLAP)


def score(moving: np.ndarray, fixed: np.ndarray, field: np.ndarray) -> float:
    """Normalised MI of ``moving`` warped by ``field`` and ``fixed`` over their overlap; -inf for an implausible
    field (:func:`plausible`)."""
    mask = overlap_mask(field)
    if mask.mean() < MIN_OVERLAP or not plausible(field):
        return -np.inf
    return overlap_weighted(normalized_mi(warp_image(moving, field), fixed, mask), float(mask.mean()))


def overlap_weighted(nmi: float, overlap: float) -> float:
    """``(NMI - 1) * sqrt(overlap)``: normalised MI favours small overlaps (fewer, more alike pixels); weighting
    its excess over independence by the square root of the overlap fraction counters that."""
    return (nmi - 1.0) * np.sqrt(overlap)


def rigid_field(shape: tuple[int, int], angle_deg: float, shift: tuple[float, float]) -> np.ndarray:
    """Pull-back field of ``p -> R(angle)(p - c) + c + shift`` in (row, col) pixels, ``c`` the image centre."""
    grid = identity_grid(shape)
    c = np.array([(shape[0] - 1) / 2.0, (shape[1] - 1) / 2.0])[:, None, None]
    t = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    q = np.einsum("ij,jhw->ihw", rot, grid - c) + c + np.asarray(shift, np.float64)[:, None, None]
    return (q - grid).astype(np.float32)


def ants_affine_field(moving: np.ndarray, fixed: np.ndarray, seed: int, angle_deg: float = 0.0,
                      shift: tuple[float, float] = (0.0, 0.0), work_px: int = AFFINE_PX) -> np.ndarray | None:
    """ANTs' affine registration (Mattes MI) from the rigid start ``(angle_deg, shift)``; the pull-back field of
    the result on the fixed grid, or None if ANTs fails. Seeded, one ITK thread (bit-reproducible).

    Pairs larger than ``work_px`` are registered on copies subsampled by the smallest integer factor ``k`` that
    brings them within it (Gaussian pre-smoothing, samples at full-resolution pixels ``k i + k//2``); the affine
    map found there is refitted exactly and evaluated on the full grid."""
    if max(fixed.shape) > work_px and moving.shape == fixed.shape:
        k = int(np.ceil(max(fixed.shape) / work_px))
        small = ants_affine_field(_downsample(moving, k).astype(np.float32), _downsample(fixed, k).astype(np.float32),
                                  seed, angle_deg, (shift[0] / k, shift[1] / k), work_px)
        return None if small is None else _upscale_affine_field(small, k, fixed.shape)
    import ants

    from baselines.syn import SyN, _to_ants

    SyN._set_threads(1)
    fixed_img, moving_img = _to_ants(ants, fixed), _to_ants(ants, moving)
    previous = os.environ.get("ANTS_RANDOM_SEED")
    os.environ["ANTS_RANDOM_SEED"] = str(seed % (2**31 - 2) + 1)
    try:
        with tempfile.TemporaryDirectory(prefix="pcreg-init-") as tmp:
            t = np.deg2rad(angle_deg)
            centre = [(fixed.shape[0] - 1) / 2.0, (fixed.shape[1] - 1) / 2.0]
            tx = ants.create_ants_transform(
                transform_type="AffineTransform", dimension=2,
                matrix=np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]),
                center=centre, translation=list(map(float, shift)))
            init_path = os.path.join(tmp, "init.mat")
            ants.write_transform(tx, init_path)
            reg = ants.registration(fixed_img, moving_img, type_of_transform="Affine", initial_transform=[init_path],
                                    outprefix=os.path.join(tmp, "reg"), aff_metric="mattes", aff_sampling=32,
                                    aff_random_sampling_rate=0.2)
            if not reg["fwdtransforms"]:
                return None
            composed = ants.apply_transforms(fixed_img, moving_img, reg["fwdtransforms"],
                                             compose=os.path.join(tmp, "composed"))
            arr = ants.image_read(composed).numpy()
    except (RuntimeError, ValueError):
        return None
    finally:
        if previous is None:
            os.environ.pop("ANTS_RANDOM_SEED", None)
        else:
            os.environ["ANTS_RANDOM_SEED"] = previous
    field = np.moveaxis(np.asarray(arr, np.float32), -1, 0)
    return field if field.shape == (2, *fixed.shape) and np.all(np.isfinite(field)) else None


def _upscale_affine_field(small: np.ndarray, k: int, shape: tuple[int, int]) -> np.ndarray | None:
    """The pull-back field on the full grid ``shape`` of the affine map whose field on the grid subsampled by ``k``
    (pixel ``i`` at full-resolution ``k i + k//2``) is ``small``: ``q(p) = A (p - o) + k b + o`` where the small
    map is ``i -> A i + b`` (least squares over every pixel; exact for an affine field)."""
    grid = identity_grid(small.shape[1:]).reshape(2, -1).astype(np.float64)
    design = np.vstack([grid, np.ones(grid.shape[1])]).T
    coef, *_ = np.linalg.lstsq(design, (grid + small.reshape(2, -1)).T, rcond=None)  # (3, 2): [A^T; b]
    a_mat, b = coef[:2].T, coef[2]
    o = float(k // 2)
    full = identity_grid(shape).reshape(2, -1).astype(np.float64)
    q = a_mat @ (full - o) + (k * b + o)[:, None]
    field = (q - full).reshape(2, *shape).astype(np.float32)
    return field if np.all(np.isfinite(field)) else None


def _downsample(image: np.ndarray, factor: int) -> np.ndarray:
    img = ndimage.gaussian_filter(np.asarray(image, np.float64), 0.5 * factor) if factor > 1 else image
    return np.asarray(img, np.float64)[factor // 2::factor, factor // 2::factor]


def coarse_starts(moving: np.ndarray, fixed: np.ndarray, n: int = REFINE) -> list[tuple[float, float, float, float]]:
    """The ``n`` best rigid starts ``(score, angle_deg, shift_row, shift_col)`` of an exhaustive search at about
    :data:`COARSE_PX` pixels: every rotation in :data:`ROTATIONS_DEG`, every integer shift of the rotated
    low-resolution moving image up to :data:`MAX_SHIFT` of the image size, scored by normalised MI over the overlap.
    ``(shift_row, shift_col)`` are full-resolution pixels, measured on the rotated image (see
    :func:`_rotation_then_shift`); starts closer than 2 coarse pixels to a better one are dropped."""
    factor = max(1, int(round(min(fixed.shape) / COARSE_PX)))
    bins = 16
    f_low = quantize(_downsample(fixed, factor), bins)
    h, w = f_low.shape
    reach = int(np.ceil(MAX_SHIFT * max(h, w)))
    found = []
    for angle in ROTATIONS_DEG:
        rot = rigid_field(moving.shape, angle, (0.0, 0.0))
        m_low = quantize(_downsample(warp_image(moving, rot), factor), bins)
        valid = _downsample(overlap_mask(rot).astype(np.float64), factor) > 0.99
        for dr in range(-reach, reach + 1):
            for dc in range(-reach, reach + 1):
                # fixed(p) against rotated(p + s): the overlapping windows of the two arrays
                fr = slice(max(0, -dr), min(h, h - dr)), slice(max(0, -dc), min(w, w - dc))
                mr = slice(max(0, dr), min(h, h + dr)), slice(max(0, dc), min(w, w + dc))
                ok = valid[mr]
                if ok.sum() < MIN_OVERLAP * h * w:
                    continue
                nmi = nmi_of_bins(m_low[mr][ok], f_low[fr][ok], bins)
                found.append((overlap_weighted(nmi, ok.sum() / (h * w)), angle,
                              float(dr * factor), float(dc * factor)))
    found.sort(key=lambda t: (-t[0], abs(t[1]), abs(t[2]) + abs(t[3])))
    chosen: list[tuple[float, float, float, float]] = []
    for cand in found:
        if all(c[1] != cand[1] or max(abs(c[2] - cand[2]), abs(c[3] - cand[3])) > 2 * factor for c in chosen):
            chosen.append(cand)
        if len(chosen) == n:
            break
    return chosen


def multistart_affine(moving: np.ndarray, fixed: np.ndarray, seed: int = 0) -> tuple[np.ndarray, float]:
    """The best ANTs affine over the multi-start search (see the module docstring) and its normalised MI."""
    best_field = np.zeros((2, *fixed.shape), np.float32)
    best_score = score(moving, fixed, best_field)
    c = ((fixed.shape[0] - 1) / 2.0, (fixed.shape[1] - 1) / 2.0)
    for _, angle, dr, dc in [(0.0, 0.0, 0.0, 0.0), *coarse_starts(moving, fixed)]:  # ANTs' own start too
        pull = _rotation_then_shift(fixed.shape, angle, (dr, dc))
        # As an ANTs rigid transform: p + u(p) = R(p - c) + c + t, with t = u(c) (= R s).
        t = tuple(float(ndimage.map_coordinates(pull[k], [[c[0]], [c[1]]], order=1)[0]) for k in range(2))
        for field in (pull, ants_affine_field(moving, fixed, seed, angle_deg=angle, shift=t)):
            if field is None:
                continue
            s = score(moving, fixed, field)
            if s > best_score:
                best_field, best_score = field, s
    return best_field, best_score


def warp_image_field(field: np.ndarray, by: np.ndarray) -> np.ndarray:
    """Each component of ``field`` sampled at ``p + by(p)`` (the suite's warp, replicated borders)."""
    return np.stack([warp_image(field[k], by) for k in range(2)])


def _rotation_then_shift(shape: tuple[int, int], angle: float, shift: tuple[float, float]) -> np.ndarray:
    """Pull-back field of: shift by ``shift`` (measured on the rotated image), then the rotation about the centre.

    ``rotated(p) = moving(p + r(p))`` and ``rotated(p + s)`` matches ``fixed(p)``, so the total pull-back is
    ``u(p) = s + r(p + s)``.
    """
    s = np.zeros((2, *shape), np.float32)
    s[0], s[1] = shift
    return compose_fields(rigid_field(shape, angle, (0.0, 0.0)), s)


def compose_fields(a: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Pull-back field of warping by ``a`` first and then by ``v``: ``u(p) = v(p) + a(p + v(p))``."""
    return (np.asarray(v, np.float32) + warp_image_field(np.asarray(a, np.float32), v)).astype(np.float32)


def sift_homography(moving: np.ndarray, fixed: np.ndarray, seed: int = 0) -> np.ndarray | None:
    """The suite's SIFT homography (CLAHE, its sanity checks), or None where it fails them."""
    from pcreg.methods.registry import build_method

    result = build_method("sift", {"model": "homography", "contrast": "clahe"}, seed=seed).register(moving, fixed)
    return None if result.failed or result.field is None else np.asarray(result.field, np.float32)


def global_field(moving: np.ndarray, fixed: np.ndarray, mode: str, seed: int = 0) -> tuple[np.ndarray, str]:
    """The global start of ``mode`` (:data:`INIT_CHOICES`) and which candidate it is (``sift``, ``ants-multistart``
    or ``identity``)."""
    if mode not in INIT_CHOICES:
        raise ValueError(f"init must be one of {INIT_CHOICES}, got {mode!r}")
    zero = np.zeros((2, *fixed.shape), np.float32)
    if mode == "none":
        return zero, "identity"
    from pcreg.methods.pair_cache import cached_field, code_version

    moving, fixed = np.asarray(moving, np.float32), np.asarray(fixed, np.float32)
    version = code_version("baselines/_global_init.py", "baselines/syn.py", "baselines/sift.py")
    # Shared on disk by every row that needs this pair's global start (pcreg/methods/pair_cache.py).
    return cached_field(f"global-start-{mode}-seed{seed}", version, moving, fixed,
                        lambda: _global_field(moving, fixed, mode, seed))


def _global_field(moving: np.ndarray, fixed: np.ndarray, mode: str, seed: int) -> tuple[np.ndarray, str]:
    zero = np.zeros((2, *fixed.shape), np.float32)
    candidates = [(score(moving, fixed, zero), "identity", zero)]
    if mode in ("sift", "auto"):
        field = sift_homography(moving, fixed, seed)
        if field is not None:
            candidates.append((score(moving, fixed, field), "sift", field))
    if mode in ("ants-multistart", "auto"):
        field, s = multistart_affine(moving, fixed, seed)
        candidates.append((s, "ants-multistart", field))
    if mode == "sift" and len(candidates) > 1:  # asked for SIFT: use it wherever it passes its checks
        return candidates[1][2], "sift"
    best = max(candidates, key=lambda c: c[0])
    return best[2], best[1]


def with_initial(register: Callable[[np.ndarray, np.ndarray], Any], moving: np.ndarray, fixed: np.ndarray,
                 mode: str, seed: int = 0) -> Any:
    """Run ``register(pre_warped_moving, fixed)`` (a :class:`pcreg.methods.base.Registration` with a field) after
    the global start of ``mode``, and return it with the composed total field."""
    from dataclasses import replace

    if float(np.ptp(moving)) < 1e-6 or float(np.ptp(fixed)) < 1e-6:  # nothing to match: the method says why
        return register(moving, fixed)
    a, _ = global_field(moving, fixed, mode, seed)
    result = register(warp_image(moving, a), fixed)
    if result.failed or result.field is None:
        return result
    return replace(result, field=compose_fields(a, result.field))

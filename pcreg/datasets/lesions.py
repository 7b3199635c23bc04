"""Content-fidelity features for the synthetic datasets: small features present in only one image.

A *moving-only* feature (a microaneurysm, a small haemorrhage or exudate on the
fundus; a short vessel segment on OR-PAM) is drawn into the moving image's
scene; its position in fixed space follows from the ground-truth pull-back field
(``mask_fixed(p) = mask_moving(p + u(p))``), which is where a registration must
put it. A *fixed-only* feature is drawn into the fixed image's scene; no
registration of the moving image can produce it. Masks and kinds are stored in
the dataset format (:mod:`pcreg.datasets.format`) and scored by
:mod:`pcreg.fidelity`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pcreg.errors import UserError
from pcreg.warp import warp_image

#: Content-fidelity features per pair (both synthetic datasets' ``features`` param).
FEATURES_SCHEMA = {
    "type": "object", "additionalProperties": False, "default": {},
    "description": "Content-fidelity features per pair: present in the moving (fixed) image only, with masks.",
    "properties": {
        "moving_only": {"type": "integer", "minimum": 0, "maximum": 8, "default": 2},
        "fixed_only": {"type": "integer", "minimum": 0, "maximum": 8, "default": 2},
    },
}

#: Fundus features: (name, polarity, radius range and amplitude range; radii in pixels of a 128-px image).
FUNDUS_FEATURES: list[tuple[str, int, tuple[float, float], tuple[float, float]]] = [
    ("microaneurysm", -1, (1.6, 2.4), (0.45, 0.6)),
    ("haemorrhage", -1, (2.5, 4.0), (0.4, 0.55)),
    ("exudate", +1, (2.0, 3.5), (0.25, 0.4)),
]

#: Scene kinds, moving-only features first: label ``k`` (1-based) is feature ``k - 1`` of this order.
KINDS = ("moving_only", "fixed_only")


def disc_profile(shape: tuple[int, int], centre_rc: tuple[float, float], radius: float) -> np.ndarray:
    """A disc of ``radius`` with a soft (logistic, 0.5 px) edge, 1 inside and 0 outside; 0.5 on the rim."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    r = np.hypot(yy - centre_rc[0], xx - centre_rc[1])
    return 1.0 / (1.0 + np.exp(np.clip((r - radius) / 0.5, -50, 50)))


def _spread_centres(shape: tuple[int, int], n: int, min_dist: float, rng: np.random.Generator,
                    taken: list[np.ndarray], margin: float) -> list[np.ndarray]:
    """``n`` random centres at least ``min_dist`` from each other and from ``taken`` (best effort)."""
    h, w = shape
    out: list[np.ndarray] = []
    for _ in range(n):
        best, best_d = None, -1.0
        for _ in range(30):
            c = np.array([rng.uniform(margin, h - 1 - margin), rng.uniform(margin, w - 1 - margin)])
            d = min((float(np.hypot(*(c - t))) for t in taken + out), default=np.inf)
            if d >= min_dist:
                best = c
                break
            if d > best_d:
                best, best_d = c, d
        out.append(best)
    return out


def fundus_features(
    shape: tuple[int, int], field: np.ndarray, n_moving: int, n_fixed: int, rng: np.random.Generator
) -> dict:
    """Draw the features of one fundus pair.

    Returns ``moving_layers`` / ``fixed_layers``: lists of ``(profile, polarity, amplitude)`` to apply to the
    moving / fixed scene (:func:`apply_fundus_features`), the label images ``labels_moving`` and
    ``labels_fixed`` (uint8) and ``kinds`` ``{label: (kind, name)}``.
    """
    k = shape[0] / 128.0
    margin = 0.12 * shape[0]
    centres = _spread_centres(shape, n_moving + n_fixed, 14 * k, rng, [], margin)
    labels_moving = np.zeros(shape, np.uint8)
    labels_fixed = np.zeros(shape, np.uint8)
    moving_layers, fixed_layers, kinds = [], [], {}
    for i, centre in enumerate(centres):
        label = i + 1
        name, polarity, radii, amps = FUNDUS_FEATURES[rng.integers(len(FUNDUS_FEATURES))]
        profile = disc_profile(shape, tuple(centre), rng.uniform(*radii) * k)
        amplitude = rng.uniform(*amps)
        if i < n_moving:  # drawn in moving space; its fixed-space mask is the mask pulled back by the field
            moving_layers.append((profile, polarity, amplitude))
            labels_moving[profile > 0.5] = label
            labels_fixed[warp_image(profile.astype(np.float32), field) > 0.5] = label
            kinds[label] = ("moving_only", name)
        else:
            fixed_layers.append((profile, polarity, amplitude))
            labels_fixed[profile > 0.5] = label
            kinds[label] = ("fixed_only", name)
    return {"moving_layers": moving_layers, "fixed_layers": fixed_layers, "labels_moving": labels_moving,
            "labels_fixed": labels_fixed, "kinds": kinds}


def apply_fundus_features(scene: np.ndarray, layers: list[tuple[np.ndarray, int, float]]) -> np.ndarray:
    """Darken (multiplicatively: a lesion absorbs) or brighten (additively: a reflective exudate) the scene."""
    out = np.asarray(scene, np.float64).copy()
    for profile, polarity, amplitude in layers:
        if polarity < 0:
            out = out * (1.0 - amplitude * profile)
        else:
            out = out + amplitude * profile
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def vessel_segment(shape: tuple[int, int], rng: np.random.Generator, *, length: tuple[float, float],
                   radius: tuple[float, float], margin: float) -> np.ndarray:
    """A short straight vessel segment (Gaussian cross-section, peak 1) on a raster of ``shape``."""
    h, w = shape
    y0, x0 = rng.uniform(margin, h - margin), rng.uniform(2 * margin, w - 2 * margin)
    angle = rng.uniform(0, np.pi)
    half = rng.uniform(*length) / 2
    dy, dx = np.sin(angle), np.cos(angle)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    t = np.clip((yy - y0) * dy + (xx - x0) * dx, -half, half)
    dist = np.hypot(yy - (y0 + t * dy), xx - (x0 + t * dx))
    return np.exp(-0.5 * (dist / rng.uniform(*radius)) ** 2)


def stack_labels(masks: list[np.ndarray], shape: tuple[int, int], first_label: int = 1) -> np.ndarray:
    """Label image (uint8) of boolean ``masks``, labels ``first_label, first_label + 1, ...``."""
    labels = np.zeros(shape, np.uint8)
    for i, m in enumerate(masks):
        labels[m] = first_label + i
    return labels


def read_label_png(path: Path, shape: tuple[int, int], mode: str) -> np.ndarray:
    """An 8-bit label mask (0 = background) brought to ``shape`` like its image (nearest-neighbour; ``mode``:
    ``resize``, ``pad`` or ``none``, as the ``folder`` dataset's ``resize``)."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise UserError(f"cannot read lesion mask {path} (not an image OpenCV can decode, or unreadable)")
    if img.ndim == 3:
        img = img[..., 0]
    if img.dtype != np.uint8:
        raise UserError(f"{path}: lesion masks must be 8-bit label images (0 = background), got {img.dtype}")
    if img.shape == tuple(shape):
        return img
    if mode == "resize":
        return cv2.resize(img, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    if mode == "pad" and img.shape[0] <= shape[0] and img.shape[1] <= shape[1]:
        out = np.zeros(shape, np.uint8)
        out[:img.shape[0], :img.shape[1]] = img
        return out
    raise UserError(f"{path}: lesion mask is {img.shape[0]}x{img.shape[1]}, its image is {shape[0]}x{shape[1]}")


def folder_lesions(moving_png: Path | None, fixed_png: Path | None, shape: tuple[int, int], mode: str,
                   ) -> tuple[np.ndarray, np.ndarray, dict[int, tuple[str, str]]]:
    """A ``folder`` pair's masks: a label in both masks is moving-only (moving-space mask in ``moving_png``,
    where it should land after registration in ``fixed_png``); a label only in ``fixed_png`` is fixed-only."""
    labels_moving = read_label_png(moving_png, shape, mode) if moving_png else np.zeros(shape, np.uint8)
    labels_fixed = read_label_png(fixed_png, shape, mode) if fixed_png else np.zeros(shape, np.uint8)
    in_moving, in_fixed = set(np.unique(labels_moving)) - {0}, set(np.unique(labels_fixed)) - {0}
    orphans = sorted(in_moving - in_fixed)
    if orphans:
        raise UserError(f"{moving_png}: label(s) {', '.join(map(str, orphans))} have no fixed-space position in "
                        f"{fixed_png} (a moving-only feature needs both masks)")
    kinds = {int(k): ("moving_only" if k in in_moving else "fixed_only", "lesion") for k in sorted(in_fixed)}
    return labels_moving, labels_fixed, kinds

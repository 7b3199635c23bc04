"""``synthetic-fundus``: FIRE-like pairs cut from the fundus photograph that scikit-image ships.

Source: ``skimage.data.retina()`` (1411x1411 RGB), green channel (the channel
with the best vessel contrast), scaled to [0, 1]. It ships with scikit-image,
so the dataset is built offline.

Geometry. Each pair samples a square region of ``crop_px`` source pixels,
resampled to ``image_size``. With ``c`` the region centre, ``s`` the scale
and ``R`` a random rotation/flip of the square (8 variants), the moving image is
``moving(y) = S(c + s R (y - o))`` and the fixed image is
``fixed(x) = S(c + s R (x + u(x) - o))``, so ``moving(x + u(x)) = fixed(x)``
holds exactly: ``u`` is the ground-truth pull-back field (docs/CONVENTIONS.md).
``u`` = small affine (about the centre) + elastic (cubic-interpolated random
4x4 lattice).

Categories, like FIRE's (magnitudes in pixels of a 128-px image, scaled with
``image_size``):
- ``S`` nearly aligned: rotation <= 1 deg, shift <= 1.5 px, elastic <= 1 px; mild appearance change.
- ``P`` larger displacement: rotation <= 4 deg, shift <= 6 px, scale <= 4 %, elastic <= 2.5 px; mild appearance.
- ``A`` appearance / anatomical change: moderate displacement, strong appearance change, and a local
  lesion-like blob added to the moving image only.
Appearance changes (illumination field, gamma, contrast, blur, noise) are applied
to the moving image; the fixed image gets only mild noise.

Splits. The source is divided into quadrants: top-left and bottom-right give
train pairs, top-right test, bottom-left validation. A pair's whole footprint
(its region plus the displacement margin) stays inside its quadrant, so no
source pixel is shared between splits.

Landmarks. Ten points per pair are drawn in the fixed image among pixels of
high vessel contrast (away from the border, with their moving position inside
the image); ``moving_xy = fixed_xy + u(fixed_xy)``.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage
from tqdm import tqdm

from pcreg.datasets.deformation import affine_field, change_appearance, elastic_field
from pcreg.datasets.format import DatasetWriter
from pcreg.errors import UserError
from pcreg.warp import identity_grid, map_points

TYPE = "synthetic-fundus"

PARAMS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "image_size": {"type": "integer", "minimum": 32, "maximum": 512, "default": 128,
                       "description": "Side of the square images in pixels."},
        "crop_px": {"type": "integer", "minimum": 32, "maximum": 460, "default": 192,
                    "description": "Side of the source region (pixels of the 1411-px photograph) per pair."},
        "pairs": {
            "type": "object", "additionalProperties": False, "default": {},
            "description": "Number of pairs per split.",
            "properties": {
                "train": {"type": "integer", "minimum": 1, "default": 48},
                "val": {"type": "integer", "minimum": 1, "default": 12},
                "test": {"type": "integer", "minimum": 1, "default": 24},
            },
        },
        "categories": {
            "type": "object", "additionalProperties": False, "default": {},
            "description": "Relative frequency of the FIRE-like categories S, P, A.",
            "properties": {
                "S": {"type": "number", "minimum": 0, "default": 0.45},
                "P": {"type": "number", "minimum": 0, "default": 0.35},
                "A": {"type": "number", "minimum": 0, "default": 0.2},
            },
        },
        "landmarks": {"type": "integer", "minimum": 1, "maximum": 50, "default": 10,
                      "description": "Landmark correspondences per pair (FIRE has 10)."},
    },
}

#: Category settings in pixels of a 128-px image (scaled with image_size).
CATEGORY_SETTINGS: dict[str, dict[str, dict[str, float]]] = {
    "S": {"geometry": {"max_rotation_deg": 1.0, "max_shift_px": 1.5, "max_scale": 0.01, "elastic_px": 1.0},
          "appearance": {"illumination": 0.15, "gamma": 0.15, "contrast": 0.1, "blur_sigma": 0.5, "noise_std": 0.01}},
    "P": {"geometry": {"max_rotation_deg": 4.0, "max_shift_px": 6.0, "max_scale": 0.04, "elastic_px": 2.5},
          "appearance": {"illumination": 0.15, "gamma": 0.15, "contrast": 0.1, "blur_sigma": 0.5, "noise_std": 0.01}},
    "A": {"geometry": {"max_rotation_deg": 2.0, "max_shift_px": 3.0, "max_scale": 0.02, "elastic_px": 1.5},
          "appearance": {"illumination": 0.3, "gamma": 0.3, "contrast": 0.2, "blur_sigma": 0.8, "noise_std": 0.02}},
}

#: Quadrants (row half, column half) of the source assigned to each split.
SPLIT_QUADRANTS = {"train": [(0, 0), (1, 1)], "val": [(1, 0)], "test": [(0, 1)]}

_DIHEDRAL = [np.array(m, float) for m in (
    [[1, 0], [0, 1]], [[0, -1], [1, 0]], [[-1, 0], [0, -1]], [[0, 1], [-1, 0]],
    [[1, 0], [0, -1]], [[-1, 0], [0, 1]], [[0, 1], [1, 0]], [[0, -1], [-1, 0]],
)]


@lru_cache(maxsize=4)
def load_source(blur_sigma: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The green channel of ``skimage.data.retina()`` in [0, 1] and its field-of-view mask."""
    from skimage import data

    rgb = data.retina()
    green = rgb[..., 1].astype(np.float32) / 255.0
    fov = ndimage.binary_erosion(rgb.max(axis=-1) > 20, iterations=5)
    if blur_sigma > 0:
        green = ndimage.gaussian_filter(green, blur_sigma)
    return green, fov


def _max_displacement(image_size: int) -> float:
    """Upper bound of |u| in image pixels over all categories (affine at the corner + shift + elastic)."""
    k = image_size / 128.0
    half_diag = image_size / math.sqrt(2)
    bound = 0.0
    for cat in CATEGORY_SETTINGS.values():
        g = cat["geometry"]
        rot = half_diag * (2 * math.sin(math.radians(g["max_rotation_deg"]) / 2) + g["max_scale"])
        bound = max(bound, rot + math.sqrt(2) * (g["max_shift_px"] * k + g["elastic_px"] * k))
    return bound


def make_field(shape: tuple[int, int], category: str, rng: np.random.Generator) -> np.ndarray:
    """Random ground-truth pull-back field of ``category`` for an image of ``shape``."""
    g = CATEGORY_SETTINGS[category]["geometry"]
    k = shape[0] / 128.0
    field = affine_field(shape, rng, max_rotation_deg=g["max_rotation_deg"], max_shift_px=g["max_shift_px"] * k,
                         max_scale=g["max_scale"])
    return field + elastic_field(shape, rng, amplitude_px=g["elastic_px"] * k)


def sample_region(source: np.ndarray, center_rc: np.ndarray, scale: float, rotation: np.ndarray,
                  coords: np.ndarray) -> np.ndarray:
    """Sample ``source`` at patch coordinates ``coords`` (2, H, W) mapped by centre, scale and rotation."""
    h, w = coords.shape[1:]
    off = coords.reshape(2, -1) - np.array([[(h - 1) / 2.0], [(w - 1) / 2.0]])
    src = center_rc[:, None] + scale * (rotation @ off)
    return ndimage.map_coordinates(source, src, order=1, mode="nearest").reshape(h, w).astype(np.float32)


def _lesion(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A local additive blob (bright or dark), standing in for an anatomical change."""
    h, w = shape
    cy, cx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
    radius = rng.uniform(0.04, 0.09) * h
    yy, xx = np.mgrid[0:h, 0:w]
    blob = np.exp(-(((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius**2)))
    return (rng.choice([-1.0, 1.0]) * rng.uniform(0.2, 0.4) * blob).astype(np.float32)


def pick_landmarks(
    fixed: np.ndarray, field: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` fixed points ``(x, y)`` on high-contrast structure and their moving positions."""
    h, w = fixed.shape
    margin = max(2, int(0.08 * h))
    structure = ndimage.gaussian_gradient_magnitude(fixed.astype(np.float64), 1.5)
    rows, cols = np.mgrid[0:h, 0:w]
    moved_r, moved_c = rows + field[0], cols + field[1]
    ok = (
        (rows >= margin) & (rows < h - margin) & (cols >= margin) & (cols < w - margin)
        & (moved_r >= 1) & (moved_r <= h - 2) & (moved_c >= 1) & (moved_c <= w - 2)
    )
    cand = np.flatnonzero(ok.ravel())
    if len(cand) < n:
        raise ValueError("not enough valid landmark positions")
    weights = structure.ravel()[cand] ** 2 + 1e-12
    chosen = rng.choice(cand, size=n, replace=False, p=weights / weights.sum())
    fixed_xy = np.stack([cols.ravel()[chosen], rows.ravel()[chosen]], axis=1).astype(np.float64)
    return fixed_xy, map_points(field, fixed_xy)


def make_pair(
    rng: np.random.Generator,
    category: str,
    *,
    image_size: int,
    crop_px: int,
    quadrants: list[tuple[int, int]],
    n_landmarks: int = 10,
    appearance: bool = True,
) -> dict[str, np.ndarray]:
    """One synthetic pair: ``moving``, ``fixed``, ``field`` (ground truth), ``fixed_xy``, ``moving_xy``.

    Also returns ``source_center`` (row, col) and ``source_radius``: every source pixel the pair uses lies
    within ``source_radius`` (Chebyshev distance) of the centre.
    """
    scale = crop_px / image_size
    source, fov = load_source(0.5 * scale if scale > 1 else 0.0)
    half = source.shape[0] // 2
    footprint = (crop_px / 2) * math.sqrt(2) + _max_displacement(image_size) * scale + 2
    if footprint * 2 > half:
        raise UserError(f"crop_px={crop_px} is too large for the quadrant split of the "
                        f"{source.shape[0]}-px source image; use a smaller crop_px")
    shape = (image_size, image_size)
    coords = identity_grid(shape)
    for _ in range(200):
        qr, qc = quadrants[rng.integers(len(quadrants))]
        center = np.array([qr * half + rng.uniform(footprint, half - footprint),
                           qc * half + rng.uniform(footprint, half - footprint)])
        r0, c0 = int(center[0] - crop_px / 2), int(center[1] - crop_px / 2)
        if fov[r0:r0 + crop_px, c0:c0 + crop_px].mean() >= 0.9:
            break
    else:
        raise UserError("could not place a synthetic-fundus region inside the field of view; reduce crop_px")
    rotation = _DIHEDRAL[rng.integers(len(_DIHEDRAL))]
    field = make_field(shape, category, rng)
    moving = sample_region(source, center, scale, rotation, coords)
    fixed = sample_region(source, center, scale, rotation, coords + field)
    if appearance:
        moving = change_appearance(moving, rng, **CATEGORY_SETTINGS[category]["appearance"])
        if category == "A":
            moving = np.clip(moving + _lesion(shape, rng), 0.0, 1.0)
        fixed = np.clip(fixed + rng.normal(0.0, 0.005, size=shape), 0.0, 1.0).astype(np.float32)
    fixed_xy, moving_xy = pick_landmarks(fixed, field, n_landmarks, rng)
    return {"moving": moving, "fixed": fixed, "field": field.astype(np.float32),
            "fixed_xy": fixed_xy, "moving_xy": moving_xy, "source_center": center, "source_radius": footprint}


def _categories(n: int, fractions: dict[str, float], rng: np.random.Generator) -> list[str]:
    """Category labels for ``n`` pairs, in proportion to ``fractions`` (largest remainder), shuffled."""
    names = [c for c in ("S", "P", "A") if fractions.get(c, 0) > 0]
    if not names:
        raise UserError("synthetic-fundus: at least one category fraction must be positive")
    total = sum(fractions[c] for c in names)
    exact = [n * fractions[c] / total for c in names]
    counts = [int(e) for e in exact]
    for i in np.argsort([-(e - int(e)) for e in exact])[: n - sum(counts)]:
        counts[i] += 1
    labels = [c for c, k in zip(names, counts) for _ in range(k)]
    rng.shuffle(labels)
    return labels


def prepare(root: Path, name: str, params: dict, seed: int) -> Path:
    """Generate the dataset deterministically from ``seed`` and write it to ``root``."""
    size = params["image_size"]
    sizes = params["pairs"]
    with DatasetWriter(root, name=name, dataset_type=TYPE, image_shape=(size, size), split_sizes=sizes,
                       has_field=True, spec=params, original_scale=params["crop_px"] / size) as writer:
        for split_index, split in enumerate(("train", "val", "test")):
            rng = np.random.default_rng([seed, split_index])
            labels = _categories(sizes[split], params["categories"], rng)
            for i, category in enumerate(tqdm(labels, desc=f"{name} {split}", unit="pair")):
                pair = make_pair(rng, category, image_size=size, crop_px=params["crop_px"],
                                 quadrants=SPLIT_QUADRANTS[split], n_landmarks=params["landmarks"])
                writer.add(split, f"{split}-{i:05d}", pair["moving"], pair["fixed"], field=pair["field"],
                           category=category, fixed_xy=pair["fixed_xy"], moving_xy=pair["moving_xy"])
    return root


def training_pairs(params: dict, seed: int, epoch: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` fresh training pairs ``(moving, fixed, field)`` for ``epoch`` (harness hook, see pcreg.training_data).

    Drawn like the prepared train split (same regions, categories and generator) but
    from the generator seeded by ``(seed, "train", epoch)``, so every epoch sees new
    deformations and appearance changes and two runs see the same ones.
    """
    rng = np.random.default_rng([seed, 0, epoch])
    pairs = [make_pair(rng, category, image_size=params["image_size"], crop_px=params["crop_px"],
                       quadrants=SPLIT_QUADRANTS["train"], n_landmarks=params["landmarks"])
             for category in _categories(n, params["categories"], rng)]
    return tuple(np.stack([p[k] for p in pairs]).astype(np.float32) for k in ("moving", "fixed", "field"))

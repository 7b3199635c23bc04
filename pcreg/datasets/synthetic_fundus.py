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
- ``S`` nearly aligned: rotation <= 1 deg, shift <= 1.5 px, elastic <= 1 px.
- ``P`` larger displacement: rotation <= 4 deg, shift <= 6 px, scale <= 4 %, elastic <= 2.5 px.
- ``A`` appearance / anatomical change: moderate displacement, stronger acquisition differences, and a
  local lesion-like blob added to the moving image only.
Scene and acquisition. The scene carries a smooth reflectance variation of the
tissue (:data:`SCENE`), drawn on the moving grid and pulled back through the
ground truth, so it moves with the content. Each image of a pair is then a
separate photograph of the scene (:func:`pcreg.datasets.acquisition.fundus_camera`,
settings :data:`CAMERA`): exposure, the camera's vignetting (in image
coordinates), a weak smooth illumination difference, gamma, defocus blur,
Poisson shot noise plus read noise, 8-bit quantisation and JPEG compression
(FIRE ships JPEGs). None of this moves content, so the ground truth stays
exact. The settings are calibrated so that the default configuration's
Unregistered row matches the paper's FIRE-Reg-256 one (``python -m pcreg
calibrate``; docs/DATASETS.md).

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

from pcreg.datasets.acquisition import fundus_camera, smooth_gain
from pcreg.datasets.deformation import affine_field, elastic_field
from pcreg.datasets.format import DatasetWriter
from pcreg.datasets.lesions import FEATURES_SCHEMA, apply_fundus_features, fundus_features
from pcreg.errors import UserError
from pcreg.warp import identity_grid, map_points, warp_image

TYPE = "synthetic-fundus"
#: The test pairs have landmarks (TRE, FIRE success curves apply).
LANDMARKS = True

#: Pairs carry content-fidelity feature masks (workflow/rules/fidelity.smk builds their table and figure).
LESIONS = True

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
        "features": FEATURES_SCHEMA,
    },
}

#: Camera settings shared by every category: maximum strength of each acquisition effect
#: (:func:`pcreg.datasets.acquisition.fundus_camera`), drawn independently for the moving and the fixed image.
CAMERA: dict[str, float] = {
    "gain": 1.5, "exposure": 0.1, "vignetting": 0.3, "vignetting_jitter": 0.0, "illumination": 0.05,
    "gamma": 0.15, "blur_sigma": 0.8, "photons": 450.0, "read_noise": 0.01,
    "jpeg_quality_min": 40, "jpeg_quality_max": 80,
}

#: Scene settings: strength of the smooth reflectance variation attached to the tissue.
SCENE: dict[str, float] = {"pigmentation": 0.35}

#: Category settings: geometry in pixels of a 128-px image (scaled with image_size), and the camera
#: settings that differ from :data:`CAMERA` (category A: stronger appearance change between visits).
CATEGORY_SETTINGS: dict[str, dict[str, dict[str, float]]] = {
    "S": {"geometry": {"max_rotation_deg": 1.0, "max_shift_px": 1.5, "max_scale": 0.01, "elastic_px": 1.0},
          "appearance": {}},
    "P": {"geometry": {"max_rotation_deg": 4.0, "max_shift_px": 6.0, "max_scale": 0.04, "elastic_px": 2.5},
          "appearance": {}},
    "A": {"geometry": {"max_rotation_deg": 2.0, "max_shift_px": 3.0, "max_scale": 0.02, "elastic_px": 1.5},
          "appearance": {"exposure": 0.2, "illumination": 0.3, "gamma": 0.3, "blur_sigma": 1.2}},
}


def camera_settings(category: str) -> dict[str, float]:
    """The acquisition settings of ``category``: :data:`CAMERA` updated by the category's overrides."""
    return {**CAMERA, **CATEGORY_SETTINGS[category]["appearance"]}


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
    features: tuple[int, int] = (0, 0),
) -> dict[str, np.ndarray]:
    """One synthetic pair: ``moving``, ``fixed``, ``field`` (ground truth), ``fixed_xy``, ``moving_xy``.

    Also returns ``source_center`` (row, col) and ``source_radius``: every source pixel the pair uses lies
    within ``source_radius`` (Chebyshev distance) of the centre. With ``features = (n_moving, n_fixed)``
    it draws that many moving-only / fixed-only features (:func:`pcreg.datasets.lesions.fundus_features`)
    and returns ``lesions = (labels_moving, labels_fixed, kinds)``.
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
    if appearance and SCENE["pigmentation"] > 0:
        # Smooth reflectance variation of the fundus itself (pigmentation, choroidal background): part of the
        # scene, so it moves with the tissue; drawn on the moving grid and pulled back to fixed space exactly.
        gain = smooth_gain(shape, rng, SCENE["pigmentation"]).astype(np.float32)
        moving = moving * gain
        fixed = fixed * warp_image(gain, field)
    lesions = None
    if features[0] or features[1]:
        feats = fundus_features(shape, field, features[0], features[1], rng)
        moving = apply_fundus_features(moving, feats["moving_layers"])
        fixed = apply_fundus_features(fixed, feats["fixed_layers"])
        lesions = (feats["labels_moving"], feats["labels_fixed"], feats["kinds"])
    if appearance:
        if category == "A":
            moving = np.clip(moving + _lesion(shape, rng), 0.0, 1.0)
        settings = camera_settings(category)
        moving = fundus_camera(moving, rng, settings)
        fixed = fundus_camera(fixed, rng, settings)
    fixed_xy, moving_xy = pick_landmarks(fixed, field, n_landmarks, rng)
    return {"moving": moving, "fixed": fixed, "field": field.astype(np.float32),
            "fixed_xy": fixed_xy, "moving_xy": moving_xy, "source_center": center, "source_radius": footprint,
            "lesions": lesions}


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
    features = (params["features"]["moving_only"], params["features"]["fixed_only"])
    with DatasetWriter(root, name=name, dataset_type=TYPE, image_shape=(size, size), split_sizes=sizes,
                       has_field=True, spec=params, original_scale=params["crop_px"] / size,
                       has_lesions=any(features)) as writer:
        for split_index, split in enumerate(("train", "val", "test")):
            rng = np.random.default_rng([seed, split_index])
            labels = _categories(sizes[split], params["categories"], rng)
            for i, category in enumerate(tqdm(labels, desc=f"{name} {split}", unit="pair")):
                pair = make_pair(rng, category, image_size=size, crop_px=params["crop_px"],
                                 quadrants=SPLIT_QUADRANTS[split], n_landmarks=params["landmarks"],
                                 features=features)
                # cluster: pairs whose region centres fall in one crop_px cell of the source overlap (stats unit)
                cell = (np.asarray(pair["source_center"]) // params["crop_px"]).astype(int)
                writer.add(split, f"{split}-{i:05d}", pair["moving"], pair["fixed"], field=pair["field"],
                           category=category, fixed_xy=pair["fixed_xy"], moving_xy=pair["moving_xy"],
                           lesions=pair["lesions"], cluster=f"{split}-r{cell[0]}c{cell[1]}")
    return root


def training_pairs(params: dict, seed: int, epoch: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` fresh training pairs ``(moving, fixed, field)`` for ``epoch`` (harness hook: pcreg.methods.training_data).

    Drawn like the prepared train split (same regions, categories and generator) but
    from the generator seeded by ``(seed, "train", epoch)``, so every epoch sees new
    deformations and appearance changes and two runs see the same ones.
    """
    rng = np.random.default_rng([seed, 0, epoch])
    pairs = [make_pair(rng, category, image_size=params["image_size"], crop_px=params["crop_px"],
                       quadrants=SPLIT_QUADRANTS["train"], n_landmarks=params["landmarks"])
             for category in _categories(n, params["categories"], rng)]
    return tuple(np.stack([p[k] for p in pairs]).astype(np.float32) for k in ("moving", "fixed", "field"))

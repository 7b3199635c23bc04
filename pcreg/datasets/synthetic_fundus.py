"""``synthetic-fundus``: FIRE-like pairs of procedurally generated eyes, each pair its own eye.

Scene. Every pair (train, validation and test alike) is drawn from its own
random eye (:mod:`pcreg.datasets.retina_model`: a vessel tree of arteries and
veins grown from the optic disc with Murray's-law calibres and tortuous paths,
the optic disc and cup, the macula, a choroidal background texture), rendered
at ``supersample`` times the working resolution, so the finest vessels are
sub-pixel in the images. Test clusters are therefore independent by
construction: the ``cluster`` column names the eye. A dataset is a function of
the config seed and nothing else (no photograph is needed; offline).

Geometry (:mod:`pcreg.datasets.fundus_geometry`). The moving image sees a square
part of the scene; the fixed image is the view after a camera rotation (pan,
tilt, roll and a change of magnification: a homography ``H``) plus a smooth
non-rigid residual ``r``. The ground-truth pull-back field is
``u(p) = H(p) - p + r(p)``, and the fixed image is rendered by sampling the scene
at ``p + u(p)`` for every sub-pixel ``p`` before the sub-pixels are averaged,
so ``moving(p + u(p)) = fixed(p)`` holds up to interpolation
(docs/CONVENTIONS.md). Categories are FIRE's (Hernandez-Matas et al. 2017):
``S`` overlap > 75 %, no anatomical change; ``P`` overlap < 75 %; ``A`` overlap
> 75 % with anatomical change (new lesions in the later image, vessel calibre
change). Magnitudes: :data:`pcreg.datasets.fundus_geometry.CATEGORY_GEOMETRY`.

Acquisition. Each image of a pair is a separate photograph
(:func:`pcreg.datasets.acquisition.fundus_camera`, settings :data:`CAMERA`):
exposure, the camera's vignetting and a smooth illumination difference (in
image coordinates, so they do not move with the tissue), gamma, defocus blur,
shot and read noise of the integrated pixel, 8-bit quantisation and JPEG (FIRE
ships JPEGs). None of this moves content, so the ground truth stays exact. The
settings are calibrated on the default configuration's validation split at both
ends (``python -m pcreg calibrate``, docs/DATASETS.md): the Unregistered row
within the bands of the paper's FIRE-Reg-256 Unregistered row, and the
moving image warped by the ground truth (a perfect registration) at or above
the paper's best warping rows.

Landmarks. Ten points per pair are drawn in the fixed image among pixels of
high vessel contrast (away from the border, with their moving position inside
the image); ``moving_xy = fixed_xy + u(fixed_xy)``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage
from tqdm import tqdm

from pcreg.datasets import fundus_geometry as geo
from pcreg.datasets.acquisition import fundus_camera
from pcreg.datasets.format import DatasetWriter
from pcreg.datasets.lesions import FEATURES_SCHEMA, apply_fundus_features, disc_profile, fundus_features
from pcreg.datasets.retina_model import make_eye, render_scene
from pcreg.errors import UserError
from pcreg.warp import map_points

TYPE = "synthetic-fundus"
#: The test pairs have landmarks (TRE, FIRE success curves apply).
LANDMARKS = True

#: Pairs carry content-fidelity feature masks (workflow/rules/fidelity.smk builds their table and figure).
LESIONS = True

#: Every pair has a ground-truth field: the workflow adds the perfect-registration reference (``ground_truth``).
GROUND_TRUTH_FIELD = True

PARAMS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "image_size": {"type": "integer", "minimum": 32, "maximum": 512, "default": 128,
                       "description": "Side of the square images in pixels."},
        "supersample": {"type": "integer", "minimum": 1, "maximum": 4, "default": 2,
                        "description": "Sub-pixels per image pixel (per axis) at which the scene is rendered and "
                                       "sampled before averaging to the image."},
        "pairs": {
            "type": "object", "additionalProperties": False, "default": {},
            "description": "Number of pairs per split (each pair is its own eye).",
            "properties": {
                "train": {"type": "integer", "minimum": 1, "default": 48},
                "val": {"type": "integer", "minimum": 1, "default": 16},
                "test": {"type": "integer", "minimum": 1, "default": 32},
            },
        },
        "categories": {
            "type": "object", "additionalProperties": False, "default": {},
            "description": "Relative frequency of FIRE's categories S, P, A.",
            "properties": {
                "S": {"type": "number", "minimum": 0, "default": 0.5},
                "P": {"type": "number", "minimum": 0, "default": 0.25},
                "A": {"type": "number", "minimum": 0, "default": 0.25},
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
    "gain": 0.6, "exposure": 0.05, "vignetting": 0.2, "vignetting_jitter": 0.05, "illumination": 0.2,
    "gamma": 0.1, "haze": 0.04, "blur_sigma": 0.3, "photons": 20000.0, "read_noise": 0.003,
    "jpeg_quality_min": 85, "jpeg_quality_max": 95,
}

#: Anatomical change of category A between the visits: vessel calibre factor range of the later (fixed)
#: image and the number of new lesions (haemorrhages, exudates) that appear in it.
ANATOMICAL_CHANGE: dict[str, tuple[float, float]] = {"calibre": (1.1, 1.25), "new_lesions": (2, 4)}

#: Margin of the scene map around the moving view, in pixels of a 128-px image: above the largest displacement
#: component of any category (46 px on the default test split); were a fixed-image corner to reach beyond it, it
#: would see the map's mirrored border, which has no correspondence in the moving image either way.
MAP_MARGIN_PX = 56.0


def original_scale(image_size: int) -> float:
    """Pixels of a 2912-px, 45-degree photograph (FIRE's format) per image pixel: the working image spans the
    central 30 degrees of such a photograph (pinhole: half-widths scale with the tangent of the half-angle)."""
    return (2912 / 2) * np.tan(np.radians(geo.HALF_FOV_DEG)) / (np.tan(np.radians(22.5)) * image_size / 2)


def camera_settings(category: str) -> dict[str, float]:
    """The acquisition settings of ``category`` (the same camera for every category)."""
    return dict(CAMERA)


def _anatomical_change(shape: tuple[int, int], rng: np.random.Generator) -> list[tuple[np.ndarray, int, float]]:
    """New lesions of a later visit (category A), as layers for :func:`apply_fundus_features`."""
    k = shape[0] / 128.0
    layers = []
    for _ in range(int(rng.integers(ANATOMICAL_CHANGE["new_lesions"][0], ANATOMICAL_CHANGE["new_lesions"][1] + 1))):
        centre = rng.uniform(0.1, 0.9, size=2) * np.array(shape)
        if rng.random() < 0.5:
            layers.append((disc_profile(shape, tuple(centre), rng.uniform(1.5, 4.0) * k), -1, rng.uniform(0.3, 0.5)))
        else:
            layers.append((disc_profile(shape, tuple(centre), rng.uniform(1.0, 3.0) * k), 1, rng.uniform(0.2, 0.35)))
    return layers


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
    supersample: int = 2,
    n_landmarks: int = 10,
    appearance: bool = True,
    features: tuple[int, int] = (0, 0),
    views: int = 1,
) -> dict[str, np.ndarray] | list[dict[str, np.ndarray]]:
    """One synthetic pair of a new eye: ``moving``, ``fixed``, ``field`` (ground truth), ``fixed_xy``,
    ``moving_xy``, ``overlap`` and ``lesions``.

    With ``features = (n_moving, n_fixed)`` it draws that many moving-only / fixed-only features
    (:func:`pcreg.datasets.lesions.fundus_features`) and returns ``lesions = (labels_moving, labels_fixed,
    kinds)``. ``views > 1`` returns a list of that many pairs of the same eye (fresh training pairs share
    an eye to save the scene's rendering); ``appearance=False`` skips the camera and the anatomical change.
    """
    size, ss = image_size, supersample
    k = size / 128.0
    margin = int(np.ceil(MAP_MARGIN_PX * k))
    eye = make_eye(rng, (size + 2 * margin) * ss, float(ss))
    scene = render_scene(eye)
    changed = None
    out = []
    for _ in range(views):
        g = geo.pair_geometry(size, rng, category)
        # sub-pixel centres of a pixel p: p - 1/2 + (j + 1/2) / ss
        offset, step = -0.5 + 0.5 / ss, 1.0 / ss
        fine = geo.homography_field(g["H"], (size * ss, size * ss), step, offset) \
            + geo.lattice_field(g["lattice"], size, step, offset)
        ys, xs = np.meshgrid(offset + step * np.arange(size * ss), offset + step * np.arange(size * ss),
                             indexing="ij")
        # scene pixel i is centred on image coordinate (i + 1/2) / ss - 1/2 - margin
        to_scene_m = (np.stack([ys, xs]) + margin + 0.5) * ss - 0.5
        to_scene_f = (np.stack([ys, xs]) + fine + margin + 0.5) * ss - 0.5
        moving = geo.downsample(geo.sample_view(scene, to_scene_m), ss)
        if appearance and category == "A":
            if changed is None:
                changed = render_scene(eye, calibre=rng.uniform(*ANATOMICAL_CHANGE["calibre"]))
            fixed = geo.downsample(geo.sample_view(changed, to_scene_f), ss)
            fixed = apply_fundus_features(fixed, _anatomical_change(fixed.shape, rng))
        else:
            fixed = geo.downsample(geo.sample_view(scene, to_scene_f), ss)
        field = g["field"]
        lesions = None
        if features[0] or features[1]:
            feats = fundus_features(moving.shape, field, features[0], features[1], rng)
            moving = apply_fundus_features(moving, feats["moving_layers"])
            fixed = apply_fundus_features(fixed, feats["fixed_layers"])
            lesions = (feats["labels_moving"], feats["labels_fixed"], feats["kinds"])
        if appearance:
            settings = camera_settings(category)
            moving = fundus_camera(moving, rng, settings)
            fixed = fundus_camera(fixed, rng, settings)
        fixed_xy, moving_xy = pick_landmarks(fixed, field, n_landmarks, rng)
        out.append({"moving": moving.astype(np.float32), "fixed": fixed.astype(np.float32), "field": field,
                    "fixed_xy": fixed_xy, "moving_xy": moving_xy, "overlap": g["overlap"], "lesions": lesions})
    return out[0] if views == 1 else out


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
                       has_field=True, spec=params, original_scale=original_scale(size),
                       has_lesions=any(features)) as writer:
        for split_index, split in enumerate(("train", "val", "test")):
            rng = np.random.default_rng([seed, split_index])
            labels = _categories(sizes[split], params["categories"], rng)
            for i, category in enumerate(tqdm(labels, desc=f"{name} {split}", unit="pair")):
                pair = make_pair(rng, category, image_size=size, supersample=params["supersample"],
                                 n_landmarks=params["landmarks"], features=features)
                # every pair is its own eye: one independent unit of the statistics
                writer.add(split, f"{split}-{i:05d}", pair["moving"], pair["fixed"], field=pair["field"],
                           category=category, fixed_xy=pair["fixed_xy"], moving_xy=pair["moving_xy"],
                           lesions=pair["lesions"], cluster=f"{split}-eye{i:05d}")
    return root


#: Fresh training pairs drawn per eye (the scene's rendering is shared by that many camera motions).
VIEWS_PER_TRAINING_EYE = 4


def training_pairs(params: dict, seed: int, epoch: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` fresh training pairs ``(moving, fixed, field)`` for ``epoch`` (harness hook: pcreg.methods.training_data).

    Drawn like the prepared train split (new eyes, same categories and generator) from the generator seeded by
    ``(seed, 0, epoch)``, so every epoch sees new eyes, motions and appearance changes and two runs see the same
    ones. :data:`VIEWS_PER_TRAINING_EYE` consecutive pairs of one category share an eye.
    """
    rng = np.random.default_rng([seed, 0, epoch])
    pairs: list[dict[str, np.ndarray]] = []
    labels = _categories(n, params["categories"], rng)
    while len(pairs) < n:
        category = labels[len(pairs)]
        views = min(VIEWS_PER_TRAINING_EYE, n - len(pairs))
        pairs += make_pair(rng, category, image_size=params["image_size"], supersample=params["supersample"],
                           n_landmarks=params["landmarks"], views=views) if views > 1 else \
            [make_pair(rng, category, image_size=params["image_size"], supersample=params["supersample"],
                       n_landmarks=params["landmarks"])]
    return tuple(np.stack([p[k] for p in pairs]).astype(np.float32) for k in ("moving", "fixed", "field"))

"""Geometry of a pair of fundus photographs: a camera rotation (a homography) plus a smooth non-rigid residual.

The camera model. A fundus camera looks at the retina through the eye's optics;
between two visits the camera (or the eye) turns by a small rotation ``R``
about the centre of projection and the magnification changes a little. For a
pinhole camera with intrinsics ``K`` (focal length ``f`` pixels, principal
point at the image centre), points of the two images are then related by the
homography ``H = K S R K^-1`` (``S`` the change of magnification): translation
comes from the pan/tilt angles (about ``f tan(angle)`` pixels), an in-plane
rotation from the roll, and a projective (keystone) component that grows with
the pan/tilt angle and is what makes the map non-affine. The retina is curved
and the eye's optics are not a pinhole, so a smooth non-rigid residual is added
(a cubic-interpolated random lattice), standing in for the difference between
the spherical eye model used by FIRE's ground truth (Hernandez-Matas et al.
2017) and the homography.

The ground truth is the pull-back field ``u(p) = H(p) - p + r(p)`` in fixed-image
pixels: ``warped(p) = moving(p + u(p))`` (docs/CONVENTIONS.md). Categories
follow FIRE's definitions (Hernandez-Matas et al. 2017): S, overlap > 75 % and
no anatomical change; P, overlap < 75 %; A, overlap > 75 % with anatomical
change. The *overlap* here is the fraction of the fixed image whose ground-truth
correspondence lies inside the moving image (:func:`overlap`).
"""

from __future__ import annotations

import cv2
import numpy as np

#: Geometry per category in pixels of a 128-px image (scaled with the image size); angles in degrees.
#: ``shift`` is the image translation the pan/tilt produces (drawn in [lo, hi]; category P instead draws the
#: translation that leaves an overlap in ``target_overlap``), ``overlap`` the range the pair must fall in
#: (FIRE's definitions; drawn again otherwise), ``residual`` the largest non-rigid displacement.
CATEGORY_GEOMETRY: dict[str, dict[str, tuple[float, float] | float]] = {
    "S": {"shift": (2.0, 9.0), "roll": 4.0, "zoom": 0.03, "residual": 1.2, "overlap": (0.75, 1.0)},
    "P": {"target_overlap": (0.66, 0.74), "roll": 6.0, "zoom": 0.05, "residual": 1.5, "overlap": (0.0, 0.75)},
    "A": {"shift": (2.0, 9.0), "roll": 4.0, "zoom": 0.03, "residual": 1.2, "overlap": (0.75, 1.0)},
}

#: Field of view of the working image: a 128-px image spans about 30 degrees (a 45-degree fundus camera's
#: central part), which sets the focal length ``f = (size / 2) / tan(15 deg)``.
HALF_FOV_DEG = 15.0


def intrinsics(size: int) -> np.ndarray:
    """Pinhole intrinsics of the working image (principal point at the centre)."""
    f = (size / 2.0) / np.tan(np.radians(HALF_FOV_DEG))
    c = (size - 1) / 2.0
    return np.array([[f, 0, c], [0, f, c], [0, 0, 1]], np.float64)


def rotation(pan: float, tilt: float, roll: float) -> np.ndarray:
    """Rotation matrix from pan (about y), tilt (about x) and roll (about the optical axis), radians."""
    cy, sy = np.cos(pan), np.sin(pan)
    cx, sx = np.cos(tilt), np.sin(tilt)
    cz, sz = np.cos(roll), np.sin(roll)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ rx @ ry


def camera_homography(size: int, rng: np.random.Generator, category: str) -> np.ndarray:
    """Homography (x, y, 1) of fixed-image pixels to moving-image pixels for a random camera motion."""
    g = CATEGORY_GEOMETRY[category]
    k = size / 128.0
    K = intrinsics(size)
    f = K[0, 0]
    direction = rng.uniform(-np.pi, np.pi)
    if "shift" in g:
        shift = rng.uniform(*g["shift"]) * k
    else:  # the translation that leaves an overlap drawn from g["target_overlap"]: (1 - t|c|/n)(1 - t|s|/n) = o
        o = rng.uniform(*g["target_overlap"])
        c, s = abs(np.cos(direction)), abs(np.sin(direction))
        qa, qb, qc = c * s / size**2, -(c + s) / size, 1.0 - o
        shift = (-qb - np.sqrt(qb * qb - 4 * qa * qc)) / (2 * qa) if qa > 1e-9 else qc * size / (c + s)
    pan = np.arctan(shift * np.cos(direction) / f)
    tilt = np.arctan(shift * np.sin(direction) / f)
    roll = np.radians(rng.uniform(-g["roll"], g["roll"]))
    zoom = 1.0 + rng.uniform(-g["zoom"], g["zoom"])
    S = np.diag([zoom, zoom, 1.0])
    H = K @ S @ rotation(pan, tilt, roll) @ np.linalg.inv(K)
    return H / H[2, 2]


def homography_field(H: np.ndarray, shape: tuple[int, int], step: float = 1.0,
                     offset: float = 0.0) -> np.ndarray:
    """Pull-back field ``H(p) - p`` (rows, cols) at the points ``offset + step * index`` of a grid of ``shape``."""
    h, w = shape
    ys, xs = np.meshgrid(offset + step * np.arange(h), offset + step * np.arange(w), indexing="ij")
    den = H[2, 0] * xs + H[2, 1] * ys + H[2, 2]
    mx = (H[0, 0] * xs + H[0, 1] * ys + H[0, 2]) / den
    my = (H[1, 0] * xs + H[1, 1] * ys + H[1, 2]) / den
    return np.stack([my - ys, mx - xs]).astype(np.float64)


def residual_lattice(rng: np.random.Generator, amplitude_px: float, grid: int = 5) -> np.ndarray:
    """Random ``(2, grid, grid)`` lattice of the non-rigid residual, each component's peak = ``amplitude_px``."""
    coarse = rng.normal(size=(2, grid, grid))
    peak = np.abs(coarse).max(axis=(1, 2), keepdims=True)
    return coarse * (amplitude_px / np.maximum(peak, 1e-12))


def lattice_field(lattice: np.ndarray, size: int, step: float = 1.0, offset: float = 0.0) -> np.ndarray:
    """The residual at the points ``offset + step * index`` (index < size / step): the bicubic spline surface
    through the lattice nodes, which span the image's corners; the same function at any sampling density."""
    from scipy.interpolate import RectBivariateSpline

    n = int(round(size / step))
    grid = lattice.shape[1]
    nodes = np.linspace(0.0, size - 1.0, grid)
    t = np.clip(offset + step * np.arange(n), 0.0, size - 1.0)
    return np.stack([RectBivariateSpline(nodes, nodes, lattice[c], kx=3, ky=3)(t, t)
                     for c in range(2)]).astype(np.float64)


def pair_geometry(size: int, rng: np.random.Generator, category: str, tries: int = 50) -> dict:
    """A homography and residual lattice whose overlap falls in the category's range (FIRE's definitions)."""
    g = CATEGORY_GEOMETRY[category]
    lo, hi = g["overlap"]
    for _ in range(tries):
        H = camera_homography(size, rng, category)
        lattice = residual_lattice(rng, g["residual"] * size / 128.0)
        field = homography_field(H, (size, size)) + lattice_field(lattice, size)
        ov = overlap(field)
        if lo < ov <= hi:
            return {"H": H, "lattice": lattice, "field": field.astype(np.float32), "overlap": ov}
    raise RuntimeError(f"no {category} geometry with overlap in ({lo}, {hi}] after {tries} draws")


def overlap(field: np.ndarray) -> float:
    """Fraction of the fixed image whose correspondence ``p + u(p)`` lies inside the moving image."""
    h, w = field.shape[1:]
    rows, cols = np.mgrid[0:h, 0:w]
    r, c = rows + field[0], cols + field[1]
    return float(((r >= -0.5) & (r <= h - 0.5) & (c >= -0.5) & (c <= w - 0.5)).mean())


def non_affine_residual(field: np.ndarray) -> float:
    """Mean distance between the field and its least-squares affine fit (pixels)."""
    h, w = field.shape[1:]
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    A = np.stack([rows.ravel(), cols.ravel(), np.ones(h * w)], 1)
    fit = np.stack([A @ np.linalg.lstsq(A, field[c].ravel(), rcond=None)[0] for c in range(2)])
    return float(np.hypot(*(field.reshape(2, -1) - fit)).mean())


def sample_view(scene: np.ndarray, to_scene: np.ndarray) -> np.ndarray:
    """Sample ``scene`` (bilinear) at the scene coordinates ``to_scene`` (2, h, w) = (rows, cols)."""
    return cv2.remap(scene, to_scene[1].astype(np.float32), to_scene[0].astype(np.float32),
                     interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def downsample(image: np.ndarray, factor: int) -> np.ndarray:
    """Box average over ``factor x factor`` blocks (a sensor pixel integrates the finer image)."""
    h, w = image.shape
    return image.reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))

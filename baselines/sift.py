"""SIFT keypoints + Lowe ratio test + RANSAC homography (or affine) fit, as a dense field.

The fitted 3x3 transform maps fixed points ``(x, y)`` to moving points, which is
exactly the suite's pull-back field (docs/CONVENTIONS.md), so the field is
:func:`pcreg.warp.field_from_matrix` of it. When matching fails or the model is
implausible the method returns the identity, marked failed with the reason.
"""

from __future__ import annotations

import numpy as np

from pcreg.methods.base import Method, Registration
from pcreg.warp import field_from_matrix


def to_uint8(image: np.ndarray, contrast: str, clip_limit: float = 2.0, tiles: int = 8) -> np.ndarray:
    """Convert a float image in [0, 1] to uint8 for OpenCV's SIFT.

    ``none``: scale by 255. ``minmax``: stretch the 1st..99th percentile to
    0..255 (robust to outliers). ``clahe``: ``minmax`` followed by OpenCV's
    contrast-limited adaptive histogram equalisation, which evens out local
    contrast differences between the two domains.
    """
    import cv2

    image = np.asarray(image, np.float32)
    if contrast == "none":
        return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    lo, hi = np.percentile(image, [1.0, 99.0])
    if hi - lo < 1e-6:  # flat image: nothing to stretch
        stretched = np.zeros_like(image)
    else:
        stretched = np.clip((image - lo) / (hi - lo), 0.0, 1.0)
    out = np.rint(stretched * 255.0).astype(np.uint8)
    if contrast == "clahe":
        out = cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=(int(tiles), int(tiles))).apply(out)
    return out


def check_transform(
    matrix: np.ndarray, shape: tuple[int, int], max_scale: float, max_shift: float
) -> tuple[np.ndarray | None, str]:
    """Sanity-check a fixed->moving 3x3 transform; returns ``(field, "")`` or ``(None, reason)``.

    Rejected: non-finite entries, a linear part that reflects (determinant <= 0)
    or scales outside ``[1/max_scale, max_scale]`` (singular values), a
    projective denominator that changes sign over the image, and any
    displacement larger than ``max_shift`` times the image size.
    """
    if not np.all(np.isfinite(matrix)) or abs(matrix[2, 2]) < 1e-12:
        return None, "degenerate transform"
    matrix = matrix / matrix[2, 2]
    lin = matrix[:2, :2]
    det = float(np.linalg.det(lin))
    if det <= 0:
        return None, f"transform reflects or collapses the image (det={det:.3g})"
    sv = np.linalg.svd(lin, compute_uv=False)
    if sv.max() > max_scale or sv.min() < 1.0 / max_scale:
        return None, f"transform scale out of bounds (singular values {sv.min():.3g}, {sv.max():.3g})"
    h, w = shape
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], np.float64).T
    if np.any((matrix @ corners)[2] <= 1e-6):  # w is affine in (x, y): positive at the corners => everywhere
        return None, "projective transform sends part of the image to infinity"
    field = field_from_matrix(matrix, shape)
    largest = float(np.sqrt((field.astype(np.float64) ** 2).sum(axis=0)).max())
    if largest > max_shift * max(h, w):
        return None, f"displacement out of bounds ({largest:.1f} px > {max_shift} x image size)"
    return field, ""


class SIFT(Method):
    """OpenCV SIFT matching with a RANSAC-fitted global homography or affine transform."""

    name = "sift"
    label = "SIFT"
    PARAMS_SCHEMA = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "model": {
                "enum": ["homography", "affine"],
                "default": "homography",
                "description": "Global transform fitted to the matches: cv2.findHomography or cv2.estimateAffine2D.",
            },
            "nfeatures": {
                "type": "integer",
                "minimum": 0,
                "default": 500,
                "description": "Keep at most this many strongest SIFT keypoints per image (0 = all); bounds the "
                "descriptor and matching time (about 0.05 s per 256x256 pair at 500).",
            },
            "n_octave_layers": {
                "type": "integer",
                "minimum": 1,
                "default": 3,
                "description": "SIFT layers per octave (cv2.SIFT_create nOctaveLayers).",
            },
            "contrast_threshold": {
                "type": "number",
                "exclusiveMinimum": 0,
                "default": 0.04,
                "description": "SIFT contrast threshold (OpenCV's default); lower keeps weaker keypoints.",
            },
            "edge_threshold": {
                "type": "number",
                "exclusiveMinimum": 0,
                "default": 10.0,
                "description": "SIFT edge-response threshold (cv2.SIFT_create edgeThreshold).",
            },
            "sigma": {
                "type": "number",
                "exclusiveMinimum": 0,
                "default": 1.6,
                "description": "Gaussian sigma of SIFT's base octave.",
            },
            "ratio": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": 1,
                "default": 0.75,
                "description": "Lowe ratio test: keep a match if best distance < ratio x second best.",
            },
            "contrast": {
                "enum": ["none", "minmax", "clahe"],
                "default": "clahe",
                "description": "Conversion of each [0, 1] image to uint8 before SIFT: none (x255), minmax "
                "(1-99 percentile stretch), clahe (stretch then CLAHE, evens out cross-domain contrast).",
            },
            "clahe_clip": {
                "type": "number",
                "exclusiveMinimum": 0,
                "default": 2.0,
                "description": "CLAHE clip limit (contrast: clahe).",
            },
            "clahe_tiles": {
                "type": "integer",
                "minimum": 1,
                "default": 8,
                "description": "CLAHE tile grid size per axis (contrast: clahe).",
            },
            "ransac_threshold": {
                "type": "number",
                "exclusiveMinimum": 0,
                "default": 3.0,
                "description": "RANSAC reprojection threshold in pixels.",
            },
            "ransac_max_iters": {
                "type": "integer",
                "minimum": 1,
                "default": 2000,
                "description": "Maximum RANSAC iterations.",
            },
            "ransac_confidence": {
                "type": "number",
                "exclusiveMinimum": 0,
                "exclusiveMaximum": 1,
                "default": 0.995,
                "description": "RANSAC confidence.",
            },
            "min_inliers": {
                "type": "integer",
                "minimum": 3,
                "default": 10,
                "description": "Fail (identity fallback) if RANSAC keeps fewer inliers than this.",
            },
            "max_scale": {
                "type": "number",
                "exclusiveMinimum": 1,
                "default": 2.0,
                "description": "Fail if the transform's linear part scales by more than this (or less than 1/this).",
            },
            "max_shift": {
                "type": "number",
                "exclusiveMinimum": 0,
                "default": 0.5,
                "description": "Fail if any pixel is displaced by more than this fraction of the image size.",
            },
        },
    }

    def _match(self, moving: np.ndarray, fixed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ratio-test matches as ``(fixed_xy, moving_xy)`` arrays ``(N, 2)``, in a canonical order."""
        import cv2

        p = self.params
        sift = cv2.SIFT_create(
            nfeatures=p["nfeatures"],
            nOctaveLayers=p["n_octave_layers"],
            contrastThreshold=p["contrast_threshold"],
            edgeThreshold=p["edge_threshold"],
            sigma=p["sigma"],
        )
        images = [to_uint8(im, p["contrast"], p["clahe_clip"], p["clahe_tiles"]) for im in (fixed, moving)]
        (kp_f, des_f), (kp_m, des_m) = (sift.detectAndCompute(im, None) for im in images)
        if des_f is None or des_m is None or len(kp_f) < 2 or len(kp_m) < 2:
            return np.empty((0, 2)), np.empty((0, 2))
        matches = cv2.BFMatcher(cv2.NORM_L2).knnMatch(des_f, des_m, k=2)
        good = [m[0] for m in matches if len(m) == 2 and m[0].distance < p["ratio"] * m[1].distance]
        fixed_xy = np.array([kp_f[m.queryIdx].pt for m in good], np.float64).reshape(-1, 2)
        moving_xy = np.array([kp_m[m.trainIdx].pt for m in good], np.float64).reshape(-1, 2)
        # Sort so RANSAC sees the same sequence whatever order threaded detection produced.
        order = np.lexsort((moving_xy[:, 1], moving_xy[:, 0], fixed_xy[:, 1], fixed_xy[:, 0]))
        return fixed_xy[order], moving_xy[order]

    def register(self, moving: np.ndarray, fixed: np.ndarray) -> Registration:
        import cv2

        cv2.setNumThreads(self.threads)
        p = self.params
        zero = np.zeros((2, *fixed.shape), np.float32)
        needed = 4 if p["model"] == "homography" else 3
        try:
            fixed_xy, moving_xy = self._match(moving, fixed)
            if len(fixed_xy) < max(needed, p["min_inliers"]):
                return Registration(field=zero, failed=True, reason=f"too few SIFT matches ({len(fixed_xy)})")
            src = fixed_xy.astype(np.float32).reshape(-1, 1, 2)  # fixed -> moving, the pull-back direction
            dst = moving_xy.astype(np.float32).reshape(-1, 1, 2)
            cv2.setRNGSeed(self.seed)
            if p["model"] == "homography":
                matrix, mask = cv2.findHomography(
                    src,
                    dst,
                    cv2.RANSAC,
                    p["ransac_threshold"],
                    maxIters=p["ransac_max_iters"],
                    confidence=p["ransac_confidence"],
                )
            else:
                affine, mask = cv2.estimateAffine2D(
                    src,
                    dst,
                    method=cv2.RANSAC,
                    ransacReprojThreshold=p["ransac_threshold"],
                    maxIters=p["ransac_max_iters"],
                    confidence=p["ransac_confidence"],
                )
                matrix = None if affine is None else np.vstack([affine, [0.0, 0.0, 1.0]])
        except cv2.error as exc:
            return Registration(field=zero, failed=True, reason=f"OpenCV error: {str(exc).strip().splitlines()[-1]}")
        if matrix is None or mask is None:
            return Registration(field=zero, failed=True, reason=f"RANSAC found no {p['model']}")
        inliers = int(np.count_nonzero(mask))
        if inliers < p["min_inliers"]:
            return Registration(field=zero, failed=True, reason=f"too few RANSAC inliers ({inliers})")
        field, reason = check_transform(np.asarray(matrix, np.float64), fixed.shape, p["max_scale"], p["max_shift"])
        if field is None:
            return Registration(field=zero, failed=True, reason=reason)
        return Registration(field=field)

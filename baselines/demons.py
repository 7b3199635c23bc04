"""Demons (Thirion; Vercauteren et al.) through SimpleITK, in a multi-resolution scheme written here.

SimpleITK's demons filters work at one resolution only, so the pyramid is built
here: at each level both images are Gaussian-smoothed and shrunk, the filter
runs from the field of the previous level (resampled onto the new grid), and the
last level's field is resampled onto the full-resolution fixed grid.

Images are wrapped with spacing 1 and origin 0, so physical coordinates equal
pixel coordinates (x = column, y = row). The demons field is defined on the
fixed grid and maps a fixed point to its moving point (ITK warps the moving
image with it), i.e. it is already the suite's pull-back field; only the
component order (x, y) -> (rows, cols) is changed. ``tests/test_demons.py``
checks both facts on a known shift.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from baselines._global_init import INIT_PARAM, with_initial
from pcreg.methods.base import Method, Registration

_VARIANTS = {
    "diffeomorphic": "DiffeomorphicDemonsRegistrationFilter",
    "fast_symmetric": "FastSymmetricForcesDemonsRegistrationFilter",
    "classic": "DemonsRegistrationFilter",
}


class Demons(Method):
    """Multi-resolution SimpleITK demons, optionally after histogram matching of moving to fixed."""

    name = "demons"
    label = "Demons"
    PARAMS_SCHEMA: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            **INIT_PARAM,
            "variant": {
                "enum": list(_VARIANTS),
                "default": "diffeomorphic",
                "description": "Demons filter: diffeomorphic (Vercauteren 2009), fast_symmetric (symmetric forces) "
                "or classic (Thirion).",
            },
            "shrink_factors": {
                "type": "array",
                "items": {"type": "integer", "minimum": 1},
                "minItems": 1,
                "default": [4, 2, 1],
                "description": "Downsampling factor of each pyramid level, coarse to fine.",
            },
            "smoothing_sigmas": {
                "type": "array",
                "items": {"type": "number", "minimum": 0},
                "minItems": 1,
                "default": [2.0, 1.0, 0.0],
                "description": "Gaussian sigma (full-resolution pixels) applied to both images before shrinking, "
                "one per level; 0 = no smoothing.",
            },
            "iterations": {
                "type": "array",
                "items": {"type": "integer", "minimum": 0},
                "minItems": 1,
                "default": [100, 50, 20],
                "description": "Demons iterations at each level, coarse to fine.",
            },
            "standard_deviations": {
                "type": "number",
                "minimum": 0,
                "default": 1.5,
                "description": "Gaussian sigma (pixels of the level's grid) smoothing the displacement field after "
                "each iteration (elastic-like regularisation); 0 = no smoothing.",
            },
            "update_field_standard_deviations": {
                "type": "number",
                "minimum": 0,
                "default": 0.0,
                "description": "Gaussian sigma (pixels of the level's grid) smoothing each update field (fluid-like "
                "regularisation); 0 = off.",
            },
            "max_step_length": {
                "type": "number",
                "minimum": 0,
                "default": 2.0,
                "description": "Largest update per iteration in pixels of the level's grid (diffeomorphic and "
                "fast_symmetric only; 0 = unlimited).",
            },
            "intensity_difference_threshold": {
                "type": "number",
                "minimum": 0,
                "default": 0.001,
                "description": "Pixels whose intensity difference is below this do not contribute to the update.",
            },
            "histogram_matching": {
                "type": "boolean",
                "default": True,
                "description": "Match the moving image's histogram to the fixed image's first (demons assumes equal "
                "intensities; helps cross-domain pairs).",
            },
            "histogram_levels": {
                "type": "integer",
                "minimum": 2,
                "default": 256,
                "description": "Number of histogram bins used by histogram matching.",
            },
            "match_points": {
                "type": "integer",
                "minimum": 1,
                "default": 15,
                "description": "Number of quantiles matched by histogram matching.",
            },
            "threshold_at_mean": {
                "type": "boolean",
                "default": False,
                "description": "Histogram matching ignores pixels darker than the image mean (e.g. a black "
                "background); off by default because it also drops dark vessels.",
            },
        },
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Import here (about 0.5 s) rather than in the first register(), so it is not timed as the first pair.
        import SimpleITK  # noqa: F401

    def register(self, moving: np.ndarray, fixed: np.ndarray) -> Registration:
        if self.params["init"] != "none":  # a fair start (baselines._global_init), composed with the result
            return with_initial(self._register, moving, fixed, self.params["init"], self.seed)
        return self._register(moving, fixed)

    def _register(self, moving: np.ndarray, fixed: np.ndarray) -> Registration:
        import SimpleITK as sitk

        p = self.params
        levels = len(p["shrink_factors"])
        if len(p["smoothing_sigmas"]) != levels or len(p["iterations"]) != levels:
            raise ValueError("shrink_factors, smoothing_sigmas and iterations must have one entry per level")
        for what, image in (("moving", moving), ("fixed", fixed)):
            if float(np.ptp(image)) < 1e-6:  # no gradient: demons would only drift on the other image's forces
                return Registration(failed=True, reason=f"{what} image is constant")
        # Procedural calls (smoothing, shrinking, resampling) use the global default; the filter gets it too.
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(self.threads)

        fixed_img = _to_sitk(fixed)
        moving_img = _to_sitk(moving)
        if p["histogram_matching"]:
            matcher = sitk.HistogramMatchingImageFilter()
            matcher.SetNumberOfHistogramLevels(p["histogram_levels"])
            matcher.SetNumberOfMatchPoints(p["match_points"])
            matcher.SetThresholdAtMeanIntensity(p["threshold_at_mean"])
            matcher.SetNumberOfThreads(self.threads)
            moving_img = matcher.Execute(moving_img, fixed_img)

        demons = self._make_filter(sitk)
        field = None  # sitkVectorFloat64 on the current level's fixed grid
        for factor, sigma, iters in zip(p["shrink_factors"], p["smoothing_sigmas"], p["iterations"], strict=True):
            fixed_l = _level(sitk, fixed_img, factor, sigma)
            moving_l = _level(sitk, moving_img, factor, sigma)
            if field is None:
                field = _zero_field(sitk, fixed_l)
            else:
                field = _resample_field(sitk, field, fixed_l)
            if iters == 0:
                continue
            demons.SetNumberOfIterations(int(iters))
            field = demons.Execute(fixed_l, moving_l, field)
        field = _resample_field(sitk, field, fixed_img)

        arr = sitk.GetArrayFromImage(field)  # (H, W, 2) with components (x, y)
        out = np.stack([arr[..., 1], arr[..., 0]]).astype(np.float32)
        if not np.all(np.isfinite(out)):
            return Registration(failed=True, reason="demons produced a non-finite displacement field")
        return Registration(field=out)

    def _make_filter(self, sitk: Any) -> Any:
        """The configured SimpleITK demons filter (iterations are set per level)."""
        p = self.params
        demons = getattr(sitk, _VARIANTS[p["variant"]])()
        demons.SetNumberOfThreads(self.threads)
        demons.SetSmoothDisplacementField(p["standard_deviations"] > 0)
        if p["standard_deviations"] > 0:
            demons.SetStandardDeviations(float(p["standard_deviations"]))
        demons.SetSmoothUpdateField(p["update_field_standard_deviations"] > 0)
        if p["update_field_standard_deviations"] > 0:
            demons.SetUpdateFieldStandardDeviations(float(p["update_field_standard_deviations"]))
        demons.SetIntensityDifferenceThreshold(float(p["intensity_difference_threshold"]))
        if p["variant"] != "classic":  # the classic filter has no step limit
            demons.SetMaximumUpdateStepLength(float(p["max_step_length"]))
        return demons


def _to_sitk(image: np.ndarray) -> Any:
    """A float32 SimpleITK image with spacing 1 and origin 0 (physical = pixel coordinates, x = column)."""
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(np.ascontiguousarray(image, dtype=np.float32))
    img.SetSpacing((1.0, 1.0))
    img.SetOrigin((0.0, 0.0))
    return img


def _level(sitk: Any, image: Any, factor: int, sigma: float) -> Any:
    """``image`` smoothed with ``sigma`` (physical = full-resolution pixels) and shrunk by ``factor``.

    ``sitk.Shrink`` sets the new spacing and origin so that the shrunk grid covers the same physical
    region, so fields of different levels can be resampled onto each other in physical coordinates.
    """
    if sigma > 0:
        image = sitk.SmoothingRecursiveGaussian(image, float(sigma))
    if factor > 1:
        image = sitk.Shrink(image, [int(factor)] * image.GetDimension())
    return image


def _zero_field(sitk: Any, reference: Any) -> Any:
    """A zero displacement field (sitkVectorFloat64) on the grid of ``reference``."""
    field = sitk.Image(reference.GetSize(), sitk.sitkVectorFloat64, reference.GetDimension())
    field.CopyInformation(reference)
    return field


def _resample_field(sitk: Any, field: Any, reference: Any) -> Any:
    """``field`` linearly resampled onto the grid of ``reference``; vectors stay in physical units.

    Points beyond the coarse grid (when a size is not divisible by the shrink factor) take the nearest
    value rather than zero.
    """
    return sitk.Resample(field, reference, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkVectorFloat64, True)

"""elastix B-spline registration (Klein et al., 2010; Shamonin et al., 2014) through ``itk-elastix``.

Stages: an affine stage (mutual information, multi-resolution) followed by a cubic B-spline stage whose
metric is Mattes mutual information plus a bending-energy penalty (elastix's ``TransformBendingEnergyPenalty``),
both on elastix's smoothing image pyramid. The defaults (grid spacing, penalty weight, iterations) were chosen
on the validation split of the default synthetic-fundus (``scripts/tune_elastix.py``; see the config comment).

Geometry: images enter ITK through ``itk.image_view_from_array``-style copies with spacing 1 and origin 0, so
physical coordinates are pixel coordinates with x = column, y = row. transformix's deformation field is
defined on the fixed grid and displaces a fixed point into the moving image (elastix warps the moving image
with it): the suite's pull-back field, in (x, y) order; only the component order is changed here.
``tests/test_elastix.py`` checks it on a known shift.

Determinism: one thread and a fixed ``RandomSeed`` (from the method seed) for both stages' random samplers;
two runs are bit-identical (checked by the contract tests). elastix writes its files (``TransformParameters``,
``deformationField.nii``) into a temporary directory per call, never the working directory.

A constant (or blank) image gives an undefined mutual information, and elastix has crashed the process on one
(a segfault): such a pair is returned as a failed identity with a reason before elastix is called.

ITK loads its modules lazily; the first registration in a process costs 10-20 s. The warm-up
(:meth:`Elastix.setup`, also run from ``__init__``) builds the parameter maps once, so the time is not
charged to the first pair.
"""

from __future__ import annotations

import tempfile
from typing import Any

import numpy as np

from pcreg.methods.base import Method, Registration

#: Inputs whose intensity range is below this are treated as constant (mutual information undefined).
CONSTANT_RANGE = 1e-6


class Elastix(Method):
    """elastix affine + B-spline (mutual information + bending energy), one composed displacement field."""

    name = "elastix"
    label = "elastix B-spline"
    PARAMS_SCHEMA: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "affine": {
                "type": "boolean",
                "default": True,
                "description": "Run an affine stage (mutual information) before the B-spline stage.",
            },
            "grid_spacing": {
                "type": "number",
                "exclusiveMinimum": 0,
                "default": 32.0,
                "description": "Final B-spline control-point spacing in pixels (elastix's "
                "FinalGridSpacingInPhysicalUnits; coarser is stiffer).",
            },
            "bending_weight": {
                "type": "number",
                "minimum": 0,
                "default": 1.0,
                "description": "Weight of the bending-energy penalty relative to mutual information (1.0).",
            },
            "resolutions": {
                "type": "integer",
                "minimum": 1,
                "default": 3,
                "description": "Pyramid levels of each stage (smoothing pyramid, coarse to fine).",
            },
            "iterations": {
                "type": "integer",
                "minimum": 1,
                "default": 100,
                "description": "Optimizer iterations per level of the B-spline stage (affine: half of it).",
            },
            "histogram_bins": {
                "type": "integer",
                "minimum": 4,
                "default": 32,
                "description": "Histogram bins of Mattes mutual information.",
            },
            "spatial_samples": {
                "type": "integer",
                "minimum": 64,
                "default": 2048,
                "description": "Random samples per iteration of the B-spline stage (seeded).",
            },
        },
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._parameters: Any = None
        self.setup()

    def setup(self) -> None:
        """Load ITK and build the parameter maps once (ITK's lazy loading is 10-20 s), outside per-pair timing."""
        if self._parameters is not None:
            return
        import itk

        itk.MultiThreaderBase.SetGlobalDefaultNumberOfThreads(1)
        self._parameters = self._parameter_object(itk)

    def _parameter_object(self, itk: Any) -> Any:
        p = self.params
        levels = str(p["resolutions"])
        common = {
            "NumberOfResolutions": [levels],
            "MaximumNumberOfThreads": ["1"],
            "NumberOfHistogramBins": [str(p["histogram_bins"])],
            "RandomSeed": [str(self.seed % (2**31 - 1) + 1)],
            "WriteResultImage": ["false"],
            "ResultImageFormat": ["nii"],
            "DefaultPixelValue": ["0"],
        }
        parameters = itk.ParameterObject.New()
        if p["affine"]:
            affine = parameters.GetDefaultParameterMap("affine", p["resolutions"])
            affine.update(common)
            affine.update({"ImageSampler": ["RandomCoordinate"], "NumberOfSpatialSamples": [str(p["spatial_samples"])],
                           "MaximumNumberOfIterations": [str(max(1, p["iterations"] // 2))],
                           "AutomaticTransformInitialization": ["true"],
                           "AutomaticTransformInitializationMethod": ["CenterOfGravity"]})
            parameters.AddParameterMap(affine)
        bspline = parameters.GetDefaultParameterMap("bspline", p["resolutions"], float(p["grid_spacing"]))
        bspline.update(common)
        bspline.update({
            "Metric": ["AdvancedMattesMutualInformation", "TransformBendingEnergyPenalty"],
            "Metric0Weight": ["1.0"],
            "Metric1Weight": [str(float(p["bending_weight"]))],
            "MaximumNumberOfIterations": [str(p["iterations"])],
            "NumberOfSpatialSamples": [str(p["spatial_samples"])],
            "ImageSampler": ["RandomCoordinate"],
            "NewSamplesEveryIteration": ["true"],
        })
        parameters.AddParameterMap(bspline)
        return parameters

    def register(self, moving: np.ndarray, fixed: np.ndarray) -> Registration:
        for what, image in (("moving", moving), ("fixed", fixed)):
            if float(np.ptp(image)) < CONSTANT_RANGE:  # elastix has segfaulted on a constant image
                return Registration(failed=True, reason=f"{what} image is constant (mutual information undefined; "
                                    "elastix not called)")
        self.setup()
        import itk

        fixed_img = itk.image_from_array(np.ascontiguousarray(fixed, dtype=np.float32))
        moving_img = itk.image_from_array(np.ascontiguousarray(moving, dtype=np.float32))
        with tempfile.TemporaryDirectory(prefix="pcreg-elastix-") as tmp:
            _, transform = itk.elastix_registration_method(
                fixed_img, moving_img, parameter_object=self._parameters, log_to_console=False,
                output_directory=tmp)
            field = itk.transformix_deformation_field(moving_img, transform, log_to_console=False,
                                                      output_directory=tmp)
        xy = np.asarray(itk.array_from_image(field), dtype=np.float32)  # (H, W, 2): components (x=col, y=row)
        return Registration(field=np.stack([xy[..., 1], xy[..., 0]]))

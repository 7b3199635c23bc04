"""SyN (Avants et al., 2008) through ANTsPy, with its affine and deformable parts composed into one field.

Geometry: images enter ANTs through ``ants.from_numpy`` with spacing 1, origin 0
and identity direction, so physical coordinates are pixel coordinates, and ANTs'
first axis (ITK "x") is the numpy row axis. Hence component 0 of an ANTs field
is the row displacement -- the suite's order, unlike SimpleITK's (x=col, y=row).

Direction: ANTs warps images with the *forward* transforms (``fwdtransforms``),
which map fixed-space points to moving-space points (warped(p) = moving(T(p)));
that is why mapping landmarks from moving to fixed needs the *inverse*
transforms. The composed forward field, defined on the fixed grid, is therefore
already the suite's pull-back field. ``tests/test_syn.py`` checks both facts.

Determinism: ANTs samples the affine metric randomly and reduces across
threads in varying order. Two runs are bit-identical only with a fixed random
seed (``ANTS_RANDOM_SEED``; 0 means "seed from the clock", so the method seed
is shifted by one) and one ITK thread. ANTs' ITK reads its thread count from
``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS`` once per process, at its first use, so
the first registration in a process fixes it for the rest of that process.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from typing import Any

import numpy as np

from baselines._global_init import INIT_PARAM, with_initial
from pcreg.methods.base import Method, Registration

_THREADS_ENV = "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"
_SEED_ENV = "ANTS_RANDOM_SEED"
#: The ITK thread count ANTs was first run with in this process (it cannot change afterwards).
_itk_threads_in_process: int | None = None


class SyN(Method):
    """ANTs SyN (affine + symmetric diffeomorphic normalisation), one composed displacement field."""

    name = "syn"
    label = "SyN"
    PARAMS_SCHEMA: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "type_of_transform": {
                "type": "string",
                "default": "SyN",
                "description": "ants.registration transform type, e.g. SyN (affine + SyN), SyNOnly, SyNRA, "
                "ElasticSyN, antsRegistrationSyNQuickRepro[s]; any type ANTsPy accepts.",
            },
            "grad_step": {
                "type": "number",
                "exclusiveMinimum": 0,
                "default": 0.3,
                "description": "SyN gradient step (ANTsPy's default is 0.2; 0.3 converges within the time budget).",
            },
            "flow_sigma": {
                "type": "number",
                "minimum": 0,
                "default": 3.0,
                "description": "Gaussian sigma (voxels) smoothing the update (velocity) field.",
            },
            "total_sigma": {
                "type": "number",
                "minimum": 0,
                "default": 0.0,
                "description": "Gaussian sigma (voxels) smoothing the total displacement field.",
            },
            "reg_iterations": {
                "type": "array",
                "items": {"type": "integer", "minimum": 0},
                "minItems": 1,
                "default": [40, 20, 0],
                "description": "SyN iterations per level, coarse to fine; level i of n is shrunk by 2^(n-1-i).",
            },
            "syn_metric": {
                "enum": ["mattes", "meansquares", "demons", "CC"],
                "default": "mattes",
                "description": "Similarity of the deformable stage (mattes = Mattes mutual information).",
            },
            "syn_sampling": {
                "type": "integer",
                "minimum": 1,
                "default": 32,
                "description": "Histogram bins of the deformable metric (or CC radius).",
            },
            "aff_metric": {
                "enum": ["mattes", "meansquares", "GC"],
                "default": "mattes",
                "description": "Similarity of the affine stage.",
            },
            "aff_sampling": {
                "type": "integer",
                "minimum": 1,
                "default": 32,
                "description": "Histogram bins of the affine metric.",
            },
            "aff_random_sampling_rate": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": 1,
                "default": 0.2,
                "description": "Fraction of pixels sampled (regular grid with random jitter, seeded) by the affine "
                "metric.",
            },
            **INIT_PARAM,
            "deterministic": {
                "type": "boolean",
                "default": True,
                "description": "Run ANTs on one thread so that two runs are bit-identical (several threads give "
                "run-to-run differences even with a fixed seed); false uses the rule's threads.",
            },
        },
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Import here (about 2.5 s) rather than in the first register(), so it is not timed as the first pair.
        import ants  # noqa: F401

    def register(self, moving: np.ndarray, fixed: np.ndarray) -> Registration:
        if self.params["init"] != "none":  # a fair start (baselines._global_init), composed with the result
            return with_initial(self._register, moving, fixed, self.params["init"], self.seed)
        return self._register(moving, fixed)

    def _register(self, moving: np.ndarray, fixed: np.ndarray) -> Registration:
        for what, image in (("moving", moving), ("fixed", fixed)):
            if float(np.ptp(image)) < 1e-6:  # mutual information of a constant image is undefined
                return Registration(failed=True, reason=f"{what} image is constant")
        p = self.params
        self._set_threads(1 if p["deterministic"] else self.threads)
        import ants

        fixed_img = _to_ants(ants, fixed)
        moving_img = _to_ants(ants, moving)
        previous_seed = os.environ.get(_SEED_ENV)
        os.environ[_SEED_ENV] = str(self.seed % (2**31 - 2) + 1)  # ANTs treats 0 as "no fixed seed"
        try:
            with tempfile.TemporaryDirectory(prefix="pcreg-syn-") as tmp:
                reg = ants.registration(
                    fixed_img,
                    moving_img,
                    type_of_transform=p["type_of_transform"],
                    outprefix=os.path.join(tmp, "reg"),
                    grad_step=p["grad_step"],
                    flow_sigma=p["flow_sigma"],
                    total_sigma=p["total_sigma"],
                    reg_iterations=tuple(p["reg_iterations"]),
                    syn_metric=p["syn_metric"],
                    syn_sampling=p["syn_sampling"],
                    aff_metric=p["aff_metric"],
                    aff_sampling=p["aff_sampling"],
                    aff_random_sampling_rate=p["aff_random_sampling_rate"],
                )
                if not reg["fwdtransforms"]:
                    return Registration(failed=True, reason="ANTs returned no transforms")
                # One displacement field on the fixed grid for the whole forward chain (deformable after affine).
                composed = ants.apply_transforms(
                    fixed_img, moving_img, reg["fwdtransforms"], compose=os.path.join(tmp, "composed")
                )
                arr = ants.image_read(composed).numpy()  # (H, W, 2), component 0 = rows (ANTs' x axis)
        finally:
            if previous_seed is None:
                os.environ.pop(_SEED_ENV, None)
            else:
                os.environ[_SEED_ENV] = previous_seed
        field = np.moveaxis(np.asarray(arr, dtype=np.float32), -1, 0)
        if field.shape != (2, *fixed.shape) or not np.all(np.isfinite(field)):
            return Registration(failed=True, reason=f"ANTs returned an unusable field of shape {field.shape}")
        return Registration(field=np.ascontiguousarray(field))

    @staticmethod
    def _set_threads(threads: int) -> None:
        """Ask ANTs' ITK for ``threads`` threads; only the first request in a process takes effect."""
        global _itk_threads_in_process
        if _itk_threads_in_process is None:
            os.environ[_THREADS_ENV] = str(threads)
            _itk_threads_in_process = threads
        elif _itk_threads_in_process != threads:
            warnings.warn(
                f"ANTs already runs with {_itk_threads_in_process} thread(s) in this process; "
                f"cannot switch to {threads}",
                RuntimeWarning,
                stacklevel=3,
            )


def _to_ants(ants: Any, image: np.ndarray) -> Any:
    """A float ANTs image with spacing 1, origin 0, identity direction (ANTs' x axis = numpy rows)."""
    return ants.from_numpy(
        np.ascontiguousarray(image, dtype=np.float32), origin=(0.0, 0.0), spacing=(1.0, 1.0), direction=np.eye(2)
    )

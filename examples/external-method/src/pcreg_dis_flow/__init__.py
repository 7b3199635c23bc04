"""DIS optical flow (Kroeger et al., ECCV 2016; OpenCV's ``cv2.DISOpticalFlow``) as a pcreg-bench method.

An example of a method that lives in its own package: it derives from the
suite's :class:`pcreg.methods.base.Method`, declares its parameters' JSON schema,
and is found through the ``pcreg_bench.methods`` entry point (pyproject.toml)
or by its import path ``pcreg_dis_flow:DISFlow``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from pcreg.methods.base import Method, Registration

__all__ = ["DISFlow", "dis_field"]

PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}  # cv2.DISOPTICAL_FLOW_PRESET_*


def dis_field(moving: np.ndarray, fixed: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """The suite's pull-back field ``(2, H, W)`` (row, col) from DIS flow computed from fixed to moving.

    ``calc(I0, I1)`` returns ``flow`` with ``I0(p) ~ I1(p + flow(p))`` and components
    ``(x, y)``; with ``I0 = fixed`` and ``I1 = moving`` that is exactly the suite's
    pull-back field, once the components are swapped to (row, col).
    """
    import cv2

    dis = cv2.DISOpticalFlow_create(PRESETS[params["preset"]])
    if params.get("patch_size"):
        dis.setPatchSize(int(params["patch_size"]))
        dis.setPatchStride(max(1, int(params["patch_size"]) // 2))
    dis.setVariationalRefinementIterations(int(params["refinement_iterations"]))
    to8 = lambda img: np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)  # DIS takes 8-bit grey  # noqa: E731
    flow = dis.calc(to8(fixed), to8(moving), None)
    return np.stack([flow[..., 1], flow[..., 0]]).astype(np.float32)


class DISFlow(Method):
    """Dense inverse search optical flow: coarse-to-fine patch matching plus variational refinement."""

    name = "dis_flow"
    label = "DIS optical flow"
    PARAMS_SCHEMA: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "preset": {"type": "string", "enum": list(PRESETS), "default": "medium",
                       "description": "OpenCV preset (speed/accuracy trade-off)."},
            "patch_size": {"type": "integer", "minimum": 0, "default": 0,
                           "description": "Patch size in pixels (stride half of it); 0 keeps the preset's."},
            "refinement_iterations": {"type": "integer", "minimum": 0, "default": 5,
                                      "description": "Variational refinement iterations per scale."},
        },
    }

    def register(self, moving: np.ndarray, fixed: np.ndarray) -> Registration:
        import cv2

        cv2.setNumThreads(self.threads)
        return Registration(field=dis_field(moving, fixed, self.params))

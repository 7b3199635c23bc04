"""The "Unregistered" reference: the moving image unchanged (a zero displacement field)."""

from __future__ import annotations

import numpy as np

from pcreg.methods.base import Method, Registration


class Identity(Method):
    """Returns a zero field, so the registered image is the moving image itself."""

    name = "identity"
    label = "Unregistered"

    def register(self, moving: np.ndarray, fixed: np.ndarray) -> Registration:
        return Registration(field=np.zeros((2, *moving.shape), np.float32))

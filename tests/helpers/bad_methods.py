"""Deliberately broken methods for ``python -m pcreg check-method`` (tests/test_check_method.py)."""

from __future__ import annotations

import os
import signal

import numpy as np

from pcreg.methods.base import Method, Registration


class OutOfRange(Method):
    """An image method whose output leaves [0, 1] (a contrast stretch gone wrong)."""

    name = "out_of_range"
    outputs_field = False

    def register(self, moving: np.ndarray, fixed: np.ndarray) -> Registration:
        return Registration(image=(fixed * 3.0 - 1.0).astype(np.float32))


class Swapped(Method):
    """A field method that returns the right shift in (x, y) order instead of (rows, cols)."""

    name = "swapped"

    def register(self, moving: np.ndarray, fixed: np.ndarray) -> Registration:
        field = np.zeros((2, *moving.shape), np.float32)
        field[0], field[1] = 3.0, -2.0  # the known shift is (rows, cols) = (-2, 3)
        return Registration(field=field)


class CrashesOnConstant(Method):
    """Kills its process on a constant image, as elastix did (a segfault in the library)."""

    name = "crashes_on_constant"

    def register(self, moving: np.ndarray, fixed: np.ndarray) -> Registration:
        if float(np.ptp(moving)) == 0.0:
            os.kill(os.getpid(), signal.SIGSEGV)
        return Registration(field=np.zeros((2, *moving.shape), np.float32))

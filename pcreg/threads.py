"""Limit every numerical library to the thread count of the current workflow job.

Parallel jobs on a small machine oversubscribe its cores unless torch, ITK
(SimpleITK and ANTs), OpenCV and the BLAS/OpenMP pools are limited explicitly.
Call :func:`set_threads` before heavy libraries are imported; libraries already
imported are limited through their own APIs.
"""

from __future__ import annotations

import os
import sys

_ENV_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS",
)


def set_threads(n: int) -> None:
    """Use at most ``n`` threads in this process (environment plus already-imported libraries)."""
    n = max(1, int(n))
    for var in _ENV_VARS:
        os.environ[var] = str(n)
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(n)
    if "SimpleITK" in sys.modules:
        import SimpleITK as sitk

        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(n)
    if "cv2" in sys.modules:
        import cv2

        cv2.setNumThreads(n)

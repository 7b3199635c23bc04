"""Reading and writing single images for exchange with tools outside the suite (export, precomputed).

Images in the suite are ``(H, W)`` float32 in ``[0, 1]``. On disk: ``.npy``
(float, as is), ``.png`` (8- or 16-bit grey, scaled by 255 or 65535; the
export writes 16-bit) and ``.tif``/``.tiff`` (integer images scaled like PNG,
float images as is).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".npy", ".png", ".tif", ".tiff")


def write_png16(path: Path, image: np.ndarray) -> None:
    """``image`` in [0, 1] as a 16-bit grey PNG (``round(65535 * value)``)."""
    import cv2

    data = np.round(np.clip(np.asarray(image, np.float64), 0.0, 1.0) * 65535.0).astype(np.uint16)
    if not cv2.imwrite(str(path), data):
        raise OSError(f"could not write {path}")


def read_image(path: Path) -> np.ndarray:
    """An image file as float32 (integers scaled to [0, 1]); ValueError if it is not a 2-D grey image."""
    suffix = path.suffix.lower()
    if suffix == ".npy":
        data = np.load(path, allow_pickle=False)
    elif suffix in (".tif", ".tiff"):
        import tifffile

        data = tifffile.imread(path)
    elif suffix == ".png":
        import cv2

        data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if data is None:
            raise ValueError("not a readable PNG")
    else:
        raise ValueError(f"unsupported image format {suffix!r}; use one of {', '.join(IMAGE_SUFFIXES)}")
    data = np.asarray(data)
    if data.ndim != 2:
        raise ValueError(f"expected a 2-D grey image, got shape {data.shape}")
    if np.issubdtype(data.dtype, np.integer):
        return (data.astype(np.float64) / np.iinfo(data.dtype).max).astype(np.float32)
    return data.astype(np.float32)

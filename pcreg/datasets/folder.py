"""Dataset type ``folder``: your own image pairs from a directory.

Layouts (``layout: auto`` picks the first that fits):

- ``subfolders``: ``<path>/moving/<name>.<ext>`` and ``<path>/fixed/<name>.<ext>``,
  paired by file stem (``name``);
- ``suffix``: ``<path>/<name>_moving.<ext>`` and ``<path>/<name>_fixed.<ext>``.

Optional landmarks: ``<path>/landmarks/<name>.csv`` with a header
``fixed_x,fixed_y,moving_x,moving_y`` in pixels of the original images
(``x`` = column, ``y`` = row, pixel centres at integers; docs/CONVENTIONS.md).

Optional content-fidelity masks (:mod:`pcreg.evaluation.fidelity`): ``<path>/lesions/moving/<name>.png``
and ``<path>/lesions/fixed/<name>.png``, 8-bit label images (0 = background) of
the pair's size. A label in both is a feature present only in the moving image
(its moving-space mask, and where it must land in fixed space); a label only in
the fixed mask is a feature present only in the fixed image.

Images: 8-bit or 16-bit grayscale or RGB(A), any format OpenCV reads (PNG,
TIFF, JPEG, BMP...). Intensities are divided by the type's full range
(255 or 65535, so 16-bit data keep their relative brightness), colour is
converted to gray by ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B) or by
taking one channel, alpha is dropped. The moving and fixed image of a pair must
have the same size. ``resize: resize`` resamples every image to ``image_size``
(area averaging when shrinking, bilinear when enlarging; landmarks follow),
``resize: pad`` pads with zeros at the bottom/right (landmarks unchanged; an
image larger than ``image_size`` is an error), ``resize: none`` requires all
images to share one size.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pcreg.datasets.format import SPLITS, DatasetWriter, check_input_outside, check_replaceable
from pcreg.datasets.lesions import folder_lesions
from pcreg.errors import UserError

TYPE = "folder"

IMAGE_EXTS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm")
LANDMARK_HEADER = ["fixed_x", "fixed_y", "moving_x", "moving_y"]

PARAMS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "path": {"type": "string", "default": "", "description": "Directory holding the image pairs (required)."},
        "layout": {
            "type": "string", "enum": ["auto", "subfolders", "suffix"], "default": "auto",
            "description": "subfolders: moving/<name> + fixed/<name>; suffix: <name>_moving + <name>_fixed.",
        },
        "moving_dir": {"type": "string", "default": "moving", "description": "Subfolder of moving images."},
        "fixed_dir": {"type": "string", "default": "fixed", "description": "Subfolder of fixed images."},
        "moving_suffix": {"type": "string", "default": "_moving", "description": "Stem suffix of moving images."},
        "fixed_suffix": {"type": "string", "default": "_fixed", "description": "Stem suffix of fixed images."},
        "landmarks_dir": {
            "type": "string", "default": "landmarks",
            "description": "Subfolder of optional <name>.csv landmark files (fixed_x,fixed_y,moving_x,moving_y).",
        },
        "image_size": {
            "type": "array", "items": {"type": "integer", "minimum": 8}, "minItems": 2, "maxItems": 2,
            "default": [256, 256], "description": "Output size [H, W] for resize/pad.",
        },
        "resize": {
            "type": "string", "enum": ["resize", "pad", "none"], "default": "resize",
            "description": "How images reach image_size: resample, zero-pad bottom/right, or require one size.",
        },
        "color": {
            "type": "string", "enum": ["luma", "red", "green", "blue"], "default": "luma",
            "description": "RGB to gray: BT.601 luma or a single channel.",
        },
        "fractions": {
            "type": "object", "additionalProperties": False, "default": {"train": 0.0, "val": 0.0, "test": 1.0},
            "description": "Share of pairs per split (seeded shuffle by name; rounded, test takes the rest).",
            "properties": {s: {"type": "number", "minimum": 0, "maximum": 1, "default": 0.0,
                               "description": f"Share of pairs in {s}."} for s in SPLITS},
        },
    },
}


# ---------------------------------------------------------------------------------------------- image input
JPEG_EXTS = (".jpg", ".jpeg")
_JPEG_EOI = b"\xff\xd9"


def check_jpeg_complete(path: Path) -> None:
    """Refuse a truncated JPEG: the file must end with the end-of-image marker ``FF D9``.

    OpenCV decodes a truncated JPEG anyway (grey rows, a warning only), so the
    check is on the bytes. Trailing padding (NUL, whitespace) some writers add is
    allowed; inside entropy-coded data ``FF`` is always stuffed, so ``FF D9`` can
    only be the real end marker.
    """
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - 4096))
        tail = f.read().rstrip(b"\x00 \t\r\n")
    if not tail.endswith(_JPEG_EOI):
        raise UserError(f"{path}: truncated or corrupt JPEG (no end-of-image marker FF D9); "
                        "re-copy or re-export the file")


def _imread(path: Path) -> np.ndarray:
    """``cv2.imread(..., IMREAD_UNCHANGED)`` with one-line errors for unreadable or truncated files."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise UserError(f"cannot read image {path} (not an image OpenCV can decode, or unreadable)")
    if path.suffix.lower() in JPEG_EXTS:
        check_jpeg_complete(path)
    return img


def read_gray(path: str | Path, color: str = "luma") -> np.ndarray:
    """Read an 8/16-bit grayscale or RGB(A) image as float32 ``(H, W)`` in [0, 1] (see module docstring)."""
    path = Path(path)
    img = _imread(path)
    if img.dtype == np.uint8:
        img = img.astype(np.float32) / 255.0
    elif img.dtype == np.uint16:
        img = img.astype(np.float32) / 65535.0
    else:
        raise UserError(f"{path}: unsupported pixel type {img.dtype}; use 8- or 16-bit images")
    if img.ndim == 3:
        if img.shape[2] == 2:  # gray + alpha
            img = img[:, :, 0]
        elif img.shape[2] in (3, 4):
            b, g, r = img[:, :, 0], img[:, :, 1], img[:, :, 2]  # OpenCV stores BGR
            img = {"luma": 0.299 * r + 0.587 * g + 0.114 * b, "red": r, "green": g, "blue": b}[color]
        else:
            raise UserError(f"{path}: {img.shape[2]} channels; expected gray, RGB or RGBA")
    return np.ascontiguousarray(img, dtype=np.float32)


def resample(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize to ``shape`` (H, W): area averaging when shrinking, bilinear when enlarging.

    Both keep pixel centres aligned: ``x_new = (x_old + 0.5) * W_new / W_old - 0.5``.
    """
    import cv2

    h, w = shape
    if img.shape == (h, w):
        return img.astype(np.float32, copy=False)
    shrink = h < img.shape[0] or w < img.shape[1]
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(img.astype(np.float32, copy=False), (w, h), interpolation=interp)


def rescale_xy(xy: np.ndarray, scale_xy: tuple[float, float]) -> np.ndarray:
    """Map points ``(x, y)`` through a resize by ``scale_xy`` (new px per old px), pixel centres aligned."""
    s = np.asarray(scale_xy, np.float64)
    return (np.asarray(xy, np.float64) + 0.5) * s - 0.5


# ---------------------------------------------------------------------------------------------- pairing
@dataclass
class FolderPair:
    name: str
    moving: Path
    fixed: Path
    landmarks: Path | None


def _images_by_stem(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_EXTS:
            if p.stem in found:
                raise UserError(f"{folder}: two images named {p.stem!r} ({found[p.stem].name}, {p.name})")
            found[p.stem] = p
    return found


def natural_key(text: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def find_pairs(root: Path, params: dict) -> list[FolderPair]:
    """Match moving and fixed files by name; a clear error lists unmatched files."""
    if not params["path"]:
        raise UserError("folder dataset: set params.path to the directory holding your image pairs")
    if not root.is_dir():
        raise UserError(f"folder dataset: {root} is not a directory")
    layout = params["layout"]
    if layout == "auto":
        layout = "subfolders" if (root / params["moving_dir"]).is_dir() else "suffix"
    if layout == "subfolders":
        mdir, fdir = root / params["moving_dir"], root / params["fixed_dir"]
        for d in (mdir, fdir):
            if not d.is_dir():
                raise UserError(f"folder dataset: missing subfolder {d} (layout 'subfolders')")
        moving, fixed = _images_by_stem(mdir), _images_by_stem(fdir)
    else:
        ms, fs = params["moving_suffix"], params["fixed_suffix"]
        files = _images_by_stem(root)
        moving = {s[: -len(ms)]: p for s, p in files.items() if s.endswith(ms)}
        fixed = {s[: -len(fs)]: p for s, p in files.items() if s.endswith(fs)}
    only_m = sorted(set(moving) - set(fixed))
    only_f = sorted(set(fixed) - set(moving))
    if only_m or only_f:
        parts = []
        if only_m:
            parts.append("moving without fixed: " + ", ".join(moving[n].name for n in only_m[:10]))
        if only_f:
            parts.append("fixed without moving: " + ", ".join(fixed[n].name for n in only_f[:10]))
        raise UserError(f"folder dataset {root} ({layout} layout): unmatched files; " + "; ".join(parts))
    if not moving:
        raise UserError(
            f"folder dataset {root}: no image pairs found (layout {layout!r}; expected "
            + (f"{params['moving_dir']}/<name> and {params['fixed_dir']}/<name>" if layout == "subfolders"
               else f"<name>{params['moving_suffix']}.<ext> and <name>{params['fixed_suffix']}.<ext>")
            + f", extensions {', '.join(IMAGE_EXTS)})"
        )
    lm_dir = root / params["landmarks_dir"]
    pairs = []
    for name in sorted(moving, key=natural_key):
        lm = lm_dir / f"{name}.csv"
        pairs.append(FolderPair(name, moving[name], fixed[name], lm if lm.is_file() else None))
    return pairs


def read_landmarks(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(fixed_xy, moving_xy)`` from a landmark CSV (header fixed_x,fixed_y,moving_x,moving_y)."""
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read landmark file {path}: {exc}") from None
    missing = [c for c in LANDMARK_HEADER if c not in df.columns]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}; expected header {','.join(LANDMARK_HEADER)}")
    cols = []
    for col in LANDMARK_HEADER:
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(np.float64)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            row = int(bad[0])
            # Row numbers as a spreadsheet shows them: the header is line 1, data start at line 2.
            raise UserError(f"{path}: row {row + 2} (line of the file), column {col}: "
                            f"{df[col].iloc[row]!r} is not a finite number")
        cols.append(values)
    arr = np.stack(cols, axis=1) if len(df) else np.zeros((0, 4))
    return arr[:, :2], arr[:, 2:]


def assign_splits(names: list[str], fractions: dict[str, float], seed: int) -> dict[str, str]:
    """Seeded shuffle of ``names`` cut by ``fractions`` (train, val rounded; test takes the rest)."""
    total = sum(fractions.get(s, 0.0) for s in SPLITS)
    if total <= 0:
        raise UserError("split fractions sum to 0; give at least one split a positive share")
    order = sorted(names, key=natural_key)
    perm = np.random.default_rng(seed).permutation(len(order))
    n = len(order)
    n_train = math.floor(n * fractions.get("train", 0.0) / total + 0.5)
    n_val = min(n - n_train, math.floor(n * fractions.get("val", 0.0) / total + 0.5))
    out = {}
    for rank, i in enumerate(perm):
        out[order[i]] = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"
    return out


def fit_to_shape(
    img: np.ndarray, shape: tuple[int, int], mode: str, where: str
) -> tuple[np.ndarray, tuple[float, float]]:
    """Bring ``img`` to ``shape``; returns the image and the (x, y) scale applied to coordinates."""
    h, w = img.shape
    if mode == "resize":
        return resample(img, shape), (shape[1] / w, shape[0] / h)
    if mode == "pad":
        if h > shape[0] or w > shape[1]:
            raise UserError(f"{where}: image is {h}x{w}, larger than image_size {shape[0]}x{shape[1]} "
                            "(resize: pad never crops; use resize: resize or a larger image_size)")
        out = np.zeros(shape, np.float32)
        out[:h, :w] = img
        return out, (1.0, 1.0)
    return img, (1.0, 1.0)


LESIONS_DIR = "lesions"


def has_landmarks(params: dict) -> bool:
    """Whether the folder provides landmarks (``<path>/<landmarks_dir>/``): TRE and FIRE curves apply."""
    return (Path(params.get("path", "")).expanduser() / params.get("landmarks_dir", "landmarks")).is_dir()


def has_lesions(params: dict) -> bool:
    """Whether the folder provides content-fidelity masks (``<path>/lesions/``)."""
    return (Path(params.get("path", "")).expanduser() / LESIONS_DIR).is_dir()


def prepare(root: Path, name: str, params: dict, seed: int) -> Path:
    """Read the pairs under ``params['path']`` and write them in the shared format at ``root``."""
    src = Path(params["path"]).expanduser()
    check_input_outside(src, root, "folder (params.path)")  # prepare would replace the user's own files
    check_replaceable(root)
    pairs = find_pairs(src, params)
    split_of = assign_splits([p.name for p in pairs], params["fractions"], seed)

    # Check every image (and landmark file) up front so a bad file fails before anything is written.
    shapes = {}
    for p in pairs:
        if p.landmarks is not None:
            read_landmarks(p.landmarks)
        for label, path in (("moving", p.moving), ("fixed", p.fixed)):
            img = _imread(path)
            shapes[(p.name, label)] = img.shape[:2]
        if shapes[(p.name, "moving")] != shapes[(p.name, "fixed")]:
            raise UserError(f"folder dataset: size mismatch in pair {p.name!r}: moving {p.moving.name} is "
                            f"{shapes[(p.name, 'moving')]}, fixed {p.fixed.name} is {shapes[(p.name, 'fixed')]} "
                            "(H, W); the two images of a pair must have the same size")
    sizes = sorted({shapes[(p.name, 'fixed')] for p in pairs})
    if params["resize"] == "none":
        if len(sizes) > 1:
            raise UserError(f"folder dataset: images have different sizes {sizes[:5]} and resize is 'none'; "
                            "use resize: resize or pad")
        shape = tuple(sizes[0])
    else:
        shape = tuple(params["image_size"])

    # One original_scale when every pair is resized by the same isotropic factor; else TRE stays in dataset px.
    scales = set()
    for hw in sizes:
        s = (shape[1] / hw[1], shape[0] / hw[0]) if params["resize"] == "resize" else (1.0, 1.0)
        scales.add((round(s[0], 9), round(s[1], 9)))
    original_scale = 1.0
    if len(scales) == 1:
        sx, sy = scales.pop()
        if abs(sx - sy) < 1e-9:
            original_scale = 1.0 / sx

    counts = {s: sum(1 for v in split_of.values() if v == s) for s in SPLITS}
    spec = {"source": str(src.resolve()), "resize": params["resize"], "color": params["color"],
            "original_sizes": [list(s) for s in sizes], "isotropic_scale": original_scale != 1.0 or len(sizes) == 1}
    lesions_dir = src / LESIONS_DIR if has_lesions(params) else None
    with DatasetWriter(root, name=name, dataset_type=TYPE, image_shape=shape, split_sizes=counts,
                       has_field=False, spec=spec, original_scale=original_scale,
                       has_lesions=lesions_dir is not None) as writer:
        for split in SPLITS:
            for p in pairs:
                if split_of[p.name] != split:
                    continue
                mov, scale = fit_to_shape(read_gray(p.moving, params["color"]), shape, params["resize"], str(p.moving))
                fix, _ = fit_to_shape(read_gray(p.fixed, params["color"]), shape, params["resize"], str(p.fixed))
                fixed_xy = moving_xy = None
                if p.landmarks is not None:
                    f_xy, m_xy = read_landmarks(p.landmarks)
                    fixed_xy, moving_xy = rescale_xy(f_xy, scale), rescale_xy(m_xy, scale)
                lesions = None
                if lesions_dir is not None:
                    found = [lesions_dir / side / f"{p.name}.png" for side in ("moving", "fixed")]
                    lesions = folder_lesions(*[f if f.is_file() else None for f in found], shape, params["resize"])
                writer.add(split, p.name, mov, fix, fixed_xy=fixed_xy, moving_xy=moving_xy, lesions=lesions)
    return Path(root)

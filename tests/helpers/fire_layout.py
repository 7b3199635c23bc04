"""Builds tiny FIRE-layout folders and FIRE.7z archives for the tests (small images, known geometry)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

#: Pair id -> (dx, dy) translation of the moving image (_2) relative to the fixed one (_1).
PAIRS = {"S01": (2.0, -1.0), "S02": (0.0, 3.0), "P01": (6.0, 4.0), "P37": (1.0, 1.0), "A01": (-3.0, 2.0)}
SIZE = 128


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    from scipy import ndimage

    return ndimage.gaussian_filter(rng.random((size, size)), 2.0)


def control_points(pid: str, rng: np.random.Generator, n: int = 10) -> np.ndarray:
    """Rows x1 y1 x2 y2 with (x2, y2) = (x1, y1) + shift, spread over the image."""
    dx, dy = PAIRS[pid]
    p1 = rng.uniform(12, SIZE - 12, size=(n, 2))
    return np.hstack([p1, p1 + [dx, dy]])


def make_fire_tree(base: Path, seed: int = 0, top: str = "FIRE") -> Path:
    """Write ``base/<top>/{Images, Ground Truth, Masks}`` and return ``base/<top>``."""
    import cv2

    rng = np.random.default_rng(seed)
    root = base / top if top else base
    for sub in ("Images", "Ground Truth", "Masks"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for pid, (dx, dy) in PAIRS.items():
        tex = _texture(rng, SIZE + 16)
        tex = (tex - tex.min()) / (tex.max() - tex.min())
        fixed = tex[8:8 + SIZE, 8:8 + SIZE]
        # moving(p + (dx, dy)) = fixed(p): the moving content sits at +shift.
        moving = np.roll(fixed, (int(dy), int(dx)), axis=(0, 1))
        for suffix, img in (("1", fixed), ("2", moving)):
            rgb = np.stack([img * 0.3, img * 0.9, img * 0.6], axis=-1)  # RGB like a fundus photo
            cv2.imwrite(str(root / "Images" / f"{pid}_{suffix}.jpg"), (rgb[:, :, ::-1] * 255).astype(np.uint8))
        np.savetxt(root / "Ground Truth" / f"control_points_{pid}_1_2.txt", control_points(pid, rng), fmt="%.3f")
    yy, xx = np.mgrid[:SIZE, :SIZE]
    mask = ((yy - SIZE / 2 + 0.5) ** 2 + (xx - SIZE / 2 + 0.5) ** 2) < (SIZE / 2) ** 2
    cv2.imwrite(str(root / "Masks" / "mask.png"), mask.astype(np.uint8) * 255)
    return root


def make_fire_archive(base: Path, seed: int = 0) -> tuple[Path, str]:
    """``base/FIRE.7z`` holding a tiny FIRE tree under ``FIRE/``; returns (path, sha256)."""
    import py7zr

    tree = make_fire_tree(base / "src", seed)
    archive = base / "FIRE.7z"
    with py7zr.SevenZipFile(archive, "w") as zf:
        zf.writeall(tree, arcname="FIRE")
    return archive, hashlib.sha256(archive.read_bytes()).hexdigest()

"""Stand-ins of FIRE and of the two OR-PAM repositories, in the real datasets' exact layouts and formats.

FIRE (``FIRE.7z``, top folder ``FIRE/``, as the archive the adapter downloads)::

    Images/<ID>_1.jpg, Images/<ID>_2.jpg          2912 x 2912 RGB JPEGs
    Ground Truth/control_points_<ID>_1_2.txt      10 rows "x1 y1 x2 y2"
    Masks/mask.png, Masks/feature_mask.png        2912 x 2912 field-of-view masks

Each pair shows one procedural retina-like scene (a vessel tree grown from an optic disc, fovea, smooth
illumination and texture) through the same circular field of view, photographed twice: ``_1`` with the identity
and ``_2`` through a known homography ``H`` (``moving(H p) = fixed(p)`` for a fixed-image pixel ``p``), with a
different exposure. The control points are ``x2 = H x1`` for points inside both fields of view, so the ground
truth is exact. Categories follow FIRE's definitions: S (small motion, overlap > 75 %), P (a shift of about a
quarter of the image, overlap < 75 %), A (small motion plus new lesions in ``_2``: anatomical change); P37 exists
with deliberately wrong control points, like the real one (the adapter drops it).

OR-PAM (``chengliuyan/OR-PAM-Reg-4K`` and ``chengliuyan/OR-PAM-Reg-Temporal-26K``): ``<split>/even/<name>.png``
(backward scan, moving) and ``<split>/odd/<name>.png`` (forward scan, fixed), frames from the suite's bidirectional
OR-PAM model (:func:`pcreg.datasets.synthetic_orpam.make_sequence`); the temporal set names frames
``seq<NN>_<FFFF>.png`` so the adapter reads sequence and frame from the name.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pcreg.datasets.orpam import REPOS

#: FIRE's image side (px).
FIRE_SIZE = 2912
#: Pairs of the FIRE stand-in: id -> category. Two per category plus P37 (wrong ground truth, excluded).
FIRE_PAIRS = {"S01": "S", "S02": "S", "P01": "P", "P02": "P", "A01": "A", "A02": "A", "P37": "P"}
#: Radius of the circular field of view (px), centred in the image.
FOV_RADIUS = 1400.0
#: OR-PAM stand-in: frame size (rows, columns of one scan direction) and pairs per split.
ORPAM_SHAPE = (256, 256)
ORPAM_4K = {"train": 4, "val": 2, "test": 3}
#: Temporal set: (sequences, frames per sequence) per split.
ORPAM_TEMPORAL = {"train": (2, 2), "val": (1, 2), "test": (2, 3)}


@dataclass
class FireTruth:
    """The known geometry of one stand-in pair: ``moving_xy = H(fixed_xy)`` in original pixels."""

    pair_id: str
    category: str
    homography: np.ndarray

    def to_json(self) -> dict:
        """Plain-JSON form (``truth.json``)."""
        return {"pair_id": self.pair_id, "category": self.category, "homography": self.homography.tolist()}


def apply_homography(h: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Points ``(N, 2)`` (x, y) mapped by the 3 x 3 homography ``h``."""
    xy = np.asarray(xy, np.float64)
    p = np.hstack([xy, np.ones((len(xy), 1))]) @ np.asarray(h, np.float64).T
    return p[:, :2] / p[:, 2:3]


def fov_radius(size: int = FIRE_SIZE) -> float:
    """Radius (px) of the field of view of a ``size`` image (FIRE's proportions)."""
    return FOV_RADIUS * size / FIRE_SIZE


def fov_mask(size: int = FIRE_SIZE) -> np.ndarray:
    """The circular field of view (bool, ``size`` x ``size``)."""
    yy, xx = np.mgrid[:size, :size]
    c = (size - 1) / 2.0
    return (yy - c) ** 2 + (xx - c) ** 2 <= fov_radius(size) ** 2


def _vessel_tree(canvas: np.ndarray, rng: np.random.Generator, disc: tuple[float, float]) -> None:
    """Draw dark vessels (value subtracted) on ``canvas``: random-walk branches grown from the optic disc."""
    import cv2

    n = canvas.shape[0]
    stack = [(disc[0], disc[1], rng.uniform(0, 2 * np.pi), 22.0, 0) for _ in range(9)]
    for i in range(len(stack)):
        x, y, _, w, d = stack[i]
        stack[i] = (x, y, 2 * np.pi * i / len(stack) + rng.uniform(-0.2, 0.2), w, d)
    layer = np.zeros_like(canvas)
    while stack:
        x, y, ang, width, depth = stack.pop()
        pts = [(x, y)]
        steps = int(rng.integers(25, 45))
        for s in range(steps):
            ang += rng.normal(0, 0.12)
            x, y = x + 28 * np.cos(ang), y + 28 * np.sin(ang)
            pts.append((x, y))
            if not (0 <= x < n and 0 <= y < n):
                break
            if depth < 5 and s > 6 and rng.random() < 0.07:
                stack.append((x, y, ang + rng.choice([-1, 1]) * rng.uniform(0.4, 0.9), width * 0.72, depth + 1))
        poly = np.round(np.array(pts) * 4).astype(np.int32)  # 2 fractional bits: sub-pixel anti-aliased lines
        cv2.polylines(layer, [poly], False, 1.0, thickness=max(2, int(round(width))), lineType=cv2.LINE_AA,
                      shift=2)
    canvas -= 0.35 * cv2.GaussianBlur(layer, (0, 0), 2.0)


def retina_scene(rng: np.random.Generator, size: int) -> np.ndarray:
    """A gray retina-like scene on a ``size`` x ``size`` canvas, values about 0..1."""
    import cv2

    yy, xx = np.mgrid[:size, :size].astype(np.float32) / size
    scene = 0.55 + 0.12 * np.cos(3.0 * (xx - 0.5)) * np.cos(2.5 * (yy - 0.5))
    coarse = rng.random((96, 96)).astype(np.float32)
    fine = rng.random((768, 768)).astype(np.float32)
    scene += 0.10 * cv2.resize(cv2.GaussianBlur(coarse, (0, 0), 2.0), (size, size), interpolation=cv2.INTER_CUBIC)
    scene += 0.06 * cv2.resize(cv2.GaussianBlur(fine, (0, 0), 1.0), (size, size), interpolation=cv2.INTER_CUBIC)
    disc = (size * rng.uniform(0.38, 0.45), size * rng.uniform(0.45, 0.55))
    fovea = (size * 0.62, size * 0.5)
    scene += 0.35 * np.exp(-(((xx * size - disc[0]) ** 2 + (yy * size - disc[1]) ** 2) / (2 * 120.0 ** 2)))
    scene -= 0.15 * np.exp(-(((xx * size - fovea[0]) ** 2 + (yy * size - fovea[1]) ** 2) / (2 * 200.0 ** 2)))
    _vessel_tree(scene, rng, disc)
    return scene.astype(np.float32)


def _lesions(scene: np.ndarray, rng: np.random.Generator, n: int = 12) -> np.ndarray:
    """A copy of ``scene`` with bright exudates and dark haemorrhages added (FIRE's category A)."""
    import cv2

    out = scene.copy()
    size = scene.shape[0]
    for _ in range(n):
        c = (int(rng.uniform(0.3, 0.7) * size), int(rng.uniform(0.3, 0.7) * size))
        cv2.circle(out, c, int(rng.uniform(15, 45)), float(rng.choice([0.05, 0.95])), -1, lineType=cv2.LINE_AA)
    return out


def homography_of(category: str, rng: np.random.Generator, size: int = FIRE_SIZE) -> np.ndarray:
    """A fixed-to-moving homography of ``category`` (pixel coordinates of the ``size`` image)."""
    c, k = (size - 1) / 2.0, size / FIRE_SIZE
    ang = np.deg2rad(rng.uniform(-3, 3))
    scale = rng.uniform(0.97, 1.03)
    if category == "P":
        direction = rng.uniform(0, 2 * np.pi)
        shift = k * rng.uniform(650, 750) * np.array([np.cos(direction), np.sin(direction)])
    else:
        shift = k * rng.uniform(-60, 60, size=2)
    a = scale * np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    h = np.eye(3)
    h[:2, :2] = a
    h[:2, 2] = np.array([c, c]) - a @ np.array([c, c]) + shift
    h[2, :2] = rng.uniform(-4e-6, 4e-6, size=2) / k  # a little perspective: the eye is not a plane
    return h


def _photograph(scene: np.ndarray, to_image: np.ndarray, margin: int, gain: float, gamma: float,
                tint: tuple[float, float, float], rng: np.random.Generator, size: int) -> np.ndarray:
    """The scene seen through ``to_image`` (scene canvas -> image px), as an 8-bit RGB fundus photograph."""
    import cv2

    shift = np.array([[1, 0, -margin], [0, 1, -margin], [0, 0, 1]], np.float64)
    gray = cv2.warpPerspective(scene, to_image @ shift, (size, size), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT)
    gray = np.clip(gain * np.clip(gray, 0, None) ** gamma, 0, 1)
    gray += rng.normal(0, 0.01, size=(size // 4, size // 4)).astype(np.float32).repeat(4, 0).repeat(4, 1)
    rgb = np.clip(np.stack([gray * t for t in tint], axis=-1), 0, 1) * fov_mask(size)[..., None]
    return (rgb * 255 + 0.5).astype(np.uint8)


def control_points(h: np.ndarray, rng: np.random.Generator, n: int = 10, size: int = FIRE_SIZE) -> np.ndarray:
    """Rows ``x1 y1 x2 y2``: ``n`` points inside both fields of view (with a margin), ``x2 = H x1``."""
    c, r = (size - 1) / 2.0, fov_radius(size)
    rows = []
    while len(rows) < n:
        p = rng.uniform(c - r, c + r, size=2)
        q = apply_homography(h, p[None])[0]
        if np.hypot(*(p - c)) < 0.85 * r and np.hypot(*(q - c)) < 0.85 * r:
            rows.append(np.concatenate([p, q]))
    return np.array(rows)


def write_fire_tree(base: Path, seed: int = 0, size: int = FIRE_SIZE) -> tuple[Path, list[FireTruth]]:
    """Write ``base/FIRE/{Images, Ground Truth, Masks}``; return the folder and the known geometry of each pair.

    ``size`` other than FIRE's 2912 (tests) scales the scene, the field of view and the motions alike.
    """
    import cv2

    root = base / "FIRE"
    for sub in ("Images", "Ground Truth", "Masks"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    margin = int(round(900 * size / FIRE_SIZE))
    truths = []
    for k, (pid, cat) in enumerate(FIRE_PAIRS.items()):
        rng = np.random.default_rng([seed, k])
        scene = retina_scene(rng, size + 2 * margin)
        h = homography_of(cat, rng, size)
        fixed = _photograph(scene, np.eye(3), margin, 1.0, 1.0, (0.85, 0.55, 0.25), rng, size)
        moving_scene = _lesions(scene, rng) if cat == "A" else scene
        moving = _photograph(moving_scene, h, margin, rng.uniform(0.85, 1.1), rng.uniform(0.85, 1.15),
                             (0.9, 0.5, 0.2), rng, size)
        for suffix, img in (("1", fixed), ("2", moving)):
            cv2.imwrite(str(root / "Images" / f"{pid}_{suffix}.jpg"), img[:, :, ::-1],
                        [cv2.IMWRITE_JPEG_QUALITY, 92])
        cp = control_points(h, rng, size=size)
        if pid == "P37":  # like the real P37: its ground truth is wrong
            cp[:, 2:] += rng.uniform(-300, 300, size=cp[:, 2:].shape) * size / FIRE_SIZE
        np.savetxt(root / "Ground Truth" / f"control_points_{pid}_1_2.txt", cp, fmt="%.2f", delimiter=" ")
        truths.append(FireTruth(pid, cat, h))
    mask = fov_mask(size).astype(np.uint8) * 255
    cv2.imwrite(str(root / "Masks" / "mask.png"), mask)
    cv2.imwrite(str(root / "Masks" / "feature_mask.png"), mask)
    return root, truths


def sha256_of(path: Path) -> str:
    """SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_fire_archive(out: Path, seed: int = 0) -> tuple[Path, str, list[FireTruth]]:
    """``out/FIRE.7z`` (top folder ``FIRE/``, LZMA2 like the original); returns path, SHA-256, geometry."""
    import shutil

    import py7zr

    tree, truths = write_fire_tree(out / "fire-src", seed)
    archive = out / "FIRE.7z"
    archive.unlink(missing_ok=True)
    with py7zr.SevenZipFile(archive, "w", filters=[{"id": py7zr.FILTER_LZMA2, "preset": 1}]) as zf:
        zf.writeall(tree, arcname="FIRE")
    shutil.rmtree(out / "fire-src")
    return archive, sha256_of(archive), truths


def _png(img: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def orpam_repo_files(variant: str, seed: int = 0) -> dict[str, bytes]:
    """Relative path -> bytes of a stand-in OR-PAM repository (``4k`` or ``temporal-26k``)."""
    from pcreg.datasets.synthetic_orpam import make_sequence

    params = {"height": ORPAM_SHAPE[0], "width": ORPAM_SHAPE[1], "vessels": 13, "max_misalignment_px": 6.0}
    files = {"README.md": f"# Stand-in of {REPOS[variant]} (pcreg-bench rehearsal)\n".encode()}
    for s_index, split in enumerate(("train", "val", "test")):
        rng = np.random.default_rng([seed, 7 if variant == "4k" else 8, s_index])
        if variant == "4k":
            frames = [f for _ in range(ORPAM_4K[split]) for f in make_sequence({**params, "frames": 1}, rng)]
            names = [f"{i + 1:04d}" for i in range(len(frames))]
        else:
            n_seq, n_frames = ORPAM_TEMPORAL[split]
            frames, names = [], []
            for q in range(n_seq):
                for t, f in enumerate(make_sequence({**params, "frames": n_frames}, rng)):
                    frames.append(f)
                    names.append(f"seq{q + 1:02d}_{t + 1:04d}")
        for name, f in zip(names, frames):
            files[f"{split}/even/{name}.png"] = _png(f["moving"])
            files[f"{split}/odd/{name}.png"] = _png(f["fixed"])
    return files


def build(out: Path, seed: int = 0) -> dict:
    """Every stand-in under ``out``: ``FIRE.7z``, ``hub/<repo id>/...``; writes and returns ``standins.json``."""
    out.mkdir(parents=True, exist_ok=True)
    archive, sha, truths = build_fire_archive(out, seed)
    repos = {}
    for variant, repo_id in REPOS.items():
        root = out / "hub" / repo_id
        for rel, data in orpam_repo_files(variant, seed).items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
        repos[repo_id] = str(root)
    info = {"fire_archive": str(archive), "fire_sha256": sha, "fire_truth": [t.to_json() for t in truths],
            "hub_root": str(out / "hub"), "repos": repos}
    (out / "standins.json").write_text(json.dumps(info, indent=1) + "\n")
    return info

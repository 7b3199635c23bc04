"""``synthetic-orpam``: bidirectional OR-PAM-like pairs and temporal sequences.

Model of the acquisition. A vessel map ``V`` (bright vessels on a dark
background, rendered at the full raster: ``H`` rows x ``2W`` scan lines) is
scanned column by column; the fast axis runs along each column (rows, ``y``).
Forward sweeps acquire the odd columns (1-based; 0-based even indices
``0, 2, ...``) and form the fixed image; backward sweeps acquire the even
columns and form the moving image. A backward sweep lands displaced along the
fast axis by ``delta(y)`` (sub-pixel to a few pixels, varying along the sweep
because the scanner's velocity is not uniform) and has its own gain, offset
and noise::

    fixed(y, j)  = V(y, 2j)                                  + noise
    moving(y, j) = g * V(y + delta(y), 2j + 1) + offset      + noise

The ground-truth pull-back field is ``u_x = 0`` and ``u_y(y) = y' - y`` with
``y' + delta(y') = y`` (solved by fixed-point iteration), so that
``moving(y + u_y, j)`` samples the same physical row as ``fixed(y, j)``; the
remaining difference is the neighbouring scan line and the intensity model,
which is the cross-domain part of the task.

Temporal sequences. Every pair belongs to a sequence of ``frames`` frames of one
vessel map that changes slowly (a small drift and per-vessel pulsation), as
needed by the temporal metrics (TNCC/TNCG). Splits are disjoint by sequence
(different vessel maps). No landmarks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage
from tqdm import tqdm

from pcreg.datasets.format import DatasetWriter

TYPE = "synthetic-orpam"

PARAMS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "height": {"type": "integer", "minimum": 32, "maximum": 1024, "default": 128,
                   "description": "Rows of each image (samples along the fast axis)."},
        "width": {"type": "integer", "minimum": 16, "maximum": 1024, "default": 128,
                  "description": "Columns of each image (the full raster has twice as many scan lines)."},
        "sequences": {
            "type": "object", "additionalProperties": False, "default": {},
            "description": "Number of temporal sequences (distinct vessel maps) per split.",
            "properties": {
                "train": {"type": "integer", "minimum": 1, "default": 6},
                "val": {"type": "integer", "minimum": 1, "default": 2},
                "test": {"type": "integer", "minimum": 1, "default": 3},
            },
        },
        "frames": {"type": "integer", "minimum": 2, "maximum": 1000, "default": 8,
                   "description": "Frames per sequence (each frame is one pair)."},
        "max_misalignment_px": {"type": "number", "minimum": 0, "maximum": 10, "default": 3.0,
                                "description": "Largest backward-sweep displacement |delta(y)| in pixels."},
        "vessels": {"type": "integer", "minimum": 1, "maximum": 100, "default": 14,
                    "description": "Vessel segments per map (branches included)."},
    },
}


def render_vessel_layers(shape: tuple[int, int], n_vessels: int, rng: np.random.Generator) -> np.ndarray:
    """Vessel intensity layers ``(n, H, W)``: smooth random curves with a Gaussian cross-section."""
    h, w = shape
    layers = np.zeros((n_vessels, h, w), np.float32)
    trunk_points: list[tuple[float, float, float]] = []
    for k in range(n_vessels):
        if trunk_points and rng.random() < 0.6:  # a branch leaving an existing vessel
            y, x, heading = trunk_points[rng.integers(len(trunk_points))]
            heading += rng.choice([-1, 1]) * rng.uniform(0.4, 1.1)
            radius = rng.uniform(0.6, 1.6)
        else:  # a trunk entering from the left or the top
            if rng.random() < 0.5:
                y, x, heading = rng.uniform(0, h), 0.0, rng.uniform(-0.6, 0.6)
            else:
                y, x, heading = 0.0, rng.uniform(0, w), np.pi / 2 + rng.uniform(-0.6, 0.6)
            radius = rng.uniform(1.4, 3.0)
        length = int(rng.uniform(0.4, 1.2) * (h + w))
        turn = ndimage.gaussian_filter1d(rng.normal(0, 0.12, size=length), 8)
        mask = np.zeros(shape, bool)
        for step in range(length):
            heading += turn[step]
            y += np.sin(heading)
            x += np.cos(heading)
            if not (0 <= y < h and 0 <= x < w):
                break
            mask[int(y), int(x)] = True
            if step % 7 == 0:
                trunk_points.append((y, x, heading))
        if mask.any():
            dist = ndimage.distance_transform_edt(~mask)
            layers[k] = np.exp(-0.5 * (dist / radius) ** 2) * rng.uniform(0.55, 1.0)
    return layers


def _misalignment(h: int, max_px: float, rng: np.random.Generator) -> np.ndarray:
    """Row-dependent backward-sweep displacement ``delta(y)``, smooth, ``|delta| <= max_px``."""
    y = np.arange(h, dtype=np.float64)
    base = rng.uniform(0.3, 0.6) * max_px * rng.choice([-1, 1])
    period = rng.uniform(0.7, 2.0) * h
    wave = rng.uniform(0.1, 0.35) * max_px * np.sin(2 * np.pi * y / period + rng.uniform(0, 2 * np.pi))
    delta = base + wave
    return np.clip(delta, -max_px, max_px)


def _invert_shift(delta: np.ndarray, iterations: int = 30) -> np.ndarray:
    """``u(y)`` with ``y + u + delta(y + u) = y``, i.e. the pull-back of ``y' -> y' + delta(y')``."""
    y = np.arange(len(delta), dtype=np.float64)
    u = -delta.copy()
    for _ in range(iterations):
        u = -np.interp(y + u, y, delta)
    return u


def make_frame(
    layers: np.ndarray,
    weights: np.ndarray,
    drift: tuple[float, float],
    rng: np.random.Generator,
    max_misalignment_px: float,
    gain: float,
    offset: float,
) -> dict[str, np.ndarray]:
    """One bidirectional frame: ``moving``, ``fixed`` and the ground-truth ``field``."""
    _, h, w2 = layers.shape
    full = np.tensordot(weights, layers, axes=1) + 0.04
    full = ndimage.shift(full, drift, order=3, mode="nearest")
    w = w2 // 2
    rows = np.arange(h, dtype=np.float64)
    delta = _misalignment(h, max_misalignment_px, rng)
    fixed = full[:, 0::2]
    yy = np.repeat((rows + delta)[:, None], w, axis=1)
    xx = np.repeat((2 * np.arange(w) + 1)[None, :], h, axis=0).astype(np.float64)
    backward = ndimage.map_coordinates(full, [yy, xx], order=3, mode="nearest")
    fixed = fixed + rng.normal(0, 0.01, size=fixed.shape)
    moving = gain * backward + offset + rng.normal(0, 0.02, size=backward.shape)
    field = np.zeros((2, h, w), np.float32)
    field[0] = _invert_shift(delta)[:, None]
    return {"moving": np.clip(moving, 0, 1).astype(np.float32), "fixed": np.clip(fixed, 0, 1).astype(np.float32),
            "field": field}


def prepare(root: Path, name: str, params: dict, seed: int) -> Path:
    """Generate the dataset deterministically from ``seed`` and write it to ``root``."""
    h, w, frames = params["height"], params["width"], params["frames"]
    n_seq = params["sequences"]
    sizes = {split: n * frames for split, n in n_seq.items()}
    with DatasetWriter(root, name=name, dataset_type=TYPE, image_shape=(h, w), split_sizes=sizes,
                       has_field=True, spec=params) as writer:
        for split_index, split in enumerate(("train", "val", "test")):
            rng = np.random.default_rng([seed, split_index])
            index = 0
            for s in tqdm(range(n_seq[split]), desc=f"{name} {split}", unit="sequence"):
                layers = render_vessel_layers((h, 2 * w), params["vessels"], rng)
                phase = rng.uniform(0, 2 * np.pi, size=len(layers))
                gain, offset = rng.uniform(0.75, 0.9), rng.uniform(0.03, 0.08)
                velocity = rng.uniform(-0.3, 0.3, size=2)
                for t in range(frames):
                    weights = 1.0 + 0.06 * np.sin(2 * np.pi * t / max(frames, 2) + phase)
                    frame = make_frame(layers, weights, (velocity[0] * t, velocity[1] * t), rng,
                                       params["max_misalignment_px"], gain, offset)
                    writer.add(split, f"{split}-s{s:03d}-f{t:03d}", frame["moving"], frame["fixed"],
                               field=frame["field"], sequence=f"{split}-s{s:03d}", frame=t)
                    index += 1
    return root


def training_pairs(params: dict, seed: int, epoch: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` fresh training frames ``(moving, fixed, field)`` for ``epoch`` (harness hook, see pcreg.training_data).

    New vessel maps and sweeps drawn like the prepared train split's, from the
    generator seeded by ``(seed, "train", epoch)``: new pairs every epoch, the same ones in every run.
    """
    h, w, frames = params["height"], params["width"], params["frames"]
    rng = np.random.default_rng([seed, 0, epoch])
    out: list[dict[str, np.ndarray]] = []
    while len(out) < n:
        layers = render_vessel_layers((h, 2 * w), params["vessels"], rng)
        phase = rng.uniform(0, 2 * np.pi, size=len(layers))
        gain, offset = rng.uniform(0.75, 0.9), rng.uniform(0.03, 0.08)
        velocity = rng.uniform(-0.3, 0.3, size=2)
        for t in range(min(frames, n - len(out))):
            weights = 1.0 + 0.06 * np.sin(2 * np.pi * t / max(frames, 2) + phase)
            out.append(make_frame(layers, weights, (velocity[0] * t, velocity[1] * t), rng,
                                  params["max_misalignment_px"], gain, offset))
    return tuple(np.stack([p[k] for p in out]).astype(np.float32) for k in ("moving", "fixed", "field"))

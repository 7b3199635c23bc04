"""``synthetic-orpam``: bidirectional OR-PAM-like pairs and temporal sequences.

Model of the acquisition. A vessel map ``V`` (thin bright vessels on a dark
background, composed as a maximum-amplitude projection, rendered at the full
raster: ``H`` rows x ``2W`` scan lines) is scanned column by column; the fast
axis runs along each column (rows, ``y``). Forward sweeps acquire the raster
columns ``0, 2, ...`` and form the fixed image; backward sweeps acquire the
columns ``1, 3, ...`` and form the moving image. Backward line ``j`` lands
displaced along the fast axis by ``delta(y, j)``: a constant trigger delay, a
sinusoid along the sweep (the galvanometer's non-uniform velocity) and a
line-to-line timing jitter, up to ``max_misalignment_px``. The backward sweep
also has its own gain, offset and noise::

    fixed(y, j)  = V(y, 2j)                                      + noise_f
    moving(y, j) = g * V(y + delta(y, j), 2j + 1) + offset       + noise_b

Ground truth. Moving column ``j`` sits at raster column ``2j + 1``, i.e. half
an image column to the right of fixed column ``j``; so ``u_x = -1/2``
everywhere, and ``u_y(y, j) = y' - y`` with ``y' + delta(y', j - 1/2) = y``
(fixed-point iteration), the lag at column ``j - 1/2`` being the mean of the
two neighbouring backward lines' lags. Then ``moving(p + u(p))`` samples the
physical point of ``fixed(p)`` (docs/CONVENTIONS.md); what remains is the
intensity model (and bilinear interpolation across a line), the cross-domain
part of the task. The settings are in :data:`SCANNER`, calibrated against the
paper's Unregistered row (``python -m pcreg calibrate``).

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
from pcreg.datasets.lesions import FEATURES_SCHEMA, vessel_segment
from pcreg.warp import warp_image

TYPE = "synthetic-orpam"
#: No landmarks: TRE and the FIRE success curves do not apply (no figure is drawn for them).
LANDMARKS = False

#: Pairs carry content-fidelity feature masks (workflow/rules/fidelity.smk builds their table and figure).
LESIONS = True

#: Every pair has a ground-truth field: the workflow adds the perfect-registration reference (``ground_truth``).
GROUND_TRUTH_FIELD = True

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
                "train": {"type": "integer", "minimum": 1, "default": 24},
                "val": {"type": "integer", "minimum": 1, "default": 12},
                "test": {"type": "integer", "minimum": 1, "default": 30},
            },
        },
        "frames": {"type": "integer", "minimum": 2, "maximum": 1000, "default": 2,
                   "description": "Frames per sequence (each frame is one pair)."},
        "max_misalignment_px": {"type": "number", "minimum": 0, "maximum": 10, "default": 10.0,
                                "description": "Largest backward-sweep displacement |delta(y)| in pixels."},
        "vessels": {"type": "integer", "minimum": 1, "maximum": 100, "default": 9,
                    "description": "Vessel segments per map (branches included)."},
        "features": FEATURES_SCHEMA,
    },
}


#: Physical settings of the simulated scanner and tissue (raster pixels; intensities in [0, 1]). Calibrated so
#: that the default configuration's Unregistered row matches the paper's OR-PAM-Reg-Temporal-26K one
#: (``python -m pcreg calibrate``; docs/DATASETS.md).
SCANNER: dict[str, tuple[float, float] | float] = {
    # Gaussian cross-section sigma of trunks and branches, >= 1.1 raster columns: the thinnest vessels are about
    # 2.6 line spacings wide (FWHM), so the forward and the backward sweep image the same vessels
    "trunk_radius": (1.3, 1.9),
    "branch_radius": (1.1, 1.4),
    "trunk_angle": 0.3,              # largest angle of a trunk to the slow axis (radians)
    "branch_angle": (0.3, 0.7),      # angle between a branch and its parent (radians)
    "amplitude": (0.25, 0.5),        # peak signal of a vessel
    "background": 0.04,              # tissue background signal
    "backward_gain": (0.75, 0.9),    # backward sweep's gain relative to the forward sweep
    "backward_offset": (0.0, 0.025),  # ... and its offset
    "forward_noise": 0.003,          # noise std of the forward (fixed) sweep
    "backward_noise": 0.005,         # ... and of the backward (moving) sweep
    "line_jitter_px": 1.0,           # std of the line-to-line lag jitter
    "lag_base": (0.6, 0.9),         # constant lag (trigger delay) as a fraction of max_misalignment_px
    "segment_length": (10.0, 18.0),  # content-fidelity vessel segments: length,
    "segment_radius": (0.9, 1.3),    # ... cross-section sigma
    "segment_amplitude": (0.25, 0.4),  # ... and peak signal
}


def render_vessel_layers(shape: tuple[int, int], n_vessels: int, rng: np.random.Generator) -> np.ndarray:
    """Vessel intensity layers ``(n, H, W)``: smooth random curves with a Gaussian cross-section."""
    h, w = shape
    layers = np.zeros((n_vessels, h, w), np.float32)
    trunk_points: list[tuple[float, float, float]] = []
    for k in range(n_vessels):
        if trunk_points and rng.random() < 0.6:  # a branch leaving an existing vessel
            y, x, heading = trunk_points[rng.integers(len(trunk_points))]
            heading += rng.choice([-1, 1]) * rng.uniform(*SCANNER["branch_angle"])
            radius = rng.uniform(*SCANNER["branch_radius"])
        else:  # a trunk entering from the left or the right, across the fast axis within ``trunk_angle``
            spread = SCANNER["trunk_angle"]
            if rng.random() < 0.5:
                y, x, heading = rng.uniform(0, h), 0.0, rng.uniform(-spread, spread)
            else:
                y, x, heading = rng.uniform(0, h), w - 1.0, np.pi + rng.uniform(-spread, spread)
            radius = rng.uniform(*SCANNER["trunk_radius"])
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
            layers[k] = np.exp(-0.5 * (dist / radius) ** 2) * rng.uniform(*SCANNER["amplitude"])
    return layers


def scan_lag(h: int, w: int, max_px: float, jitter_px: float, rng: np.random.Generator) -> np.ndarray:
    """Backward-sweep lag along the fast axis, ``(H, W + 1)``: column ``k`` is the lag of backward line ``k``.

    A constant offset (the trigger delay between the two sweep directions), a
    sinusoid along the sweep (the galvanometer's non-uniform velocity) and a
    line-to-line jitter (timing jitter, correlated over about one line), clipped
    to ``|delta| <= max_px``. One extra column so that the lag half a line
    before the first backward line is defined.
    """
    y = np.arange(h, dtype=np.float64)
    base = rng.uniform(*SCANNER["lag_base"]) * max_px * rng.choice([-1, 1])
    period = rng.uniform(0.7, 2.0) * h
    wave = rng.uniform(0.15, 0.35) * max_px * np.sin(2 * np.pi * y / period + rng.uniform(0, 2 * np.pi))
    jitter = ndimage.gaussian_filter1d(rng.normal(0.0, 1.0, size=w + 1), 1.0)
    jitter *= jitter_px / max(float(jitter.std()), 1e-12)
    return np.clip(base + wave[:, None] + jitter[None, :], -max_px, max_px)


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
    line_jitter_px: float = 0.0,
    noise: tuple[float, float] = (0.01, 0.02),
    background: float = 0.04,
    features: tuple[int, int] = (0, 0),
) -> dict[str, np.ndarray]:
    """One bidirectional frame: ``moving``, ``fixed``, the ground-truth ``field`` and the lag ``delta``.

    ``noise`` is the (forward, backward) sweep's noise standard deviation. With ``features = (n_moving,
    n_fixed)``, that many short vessel segments are present during the backward (forward) sweep only, e.g. a
    capillary perfused at one sweep and not the other; ``lesions = (labels_moving, labels_fixed, kinds)``.
    """
    _, h, w2 = layers.shape
    # OR-PAM images are maximum-amplitude projections along depth: overlapping vessels do not add up.
    full = (weights[:, None, None] * layers).max(axis=0)
    full = ndimage.shift(full, drift, order=3, mode="nearest")
    segments = [vessel_segment((h, w2), rng, length=SCANNER["segment_length"], radius=SCANNER["segment_radius"],
                               margin=max_misalignment_px + 6) * rng.uniform(*SCANNER["segment_amplitude"])
                for _ in range(features[0] + features[1])]
    seen_backward = np.maximum.reduce([full, *segments[:features[0]]]) + background
    full = np.maximum.reduce([full, *segments[features[0]:]]) + background
    w = w2 // 2
    rows = np.arange(h, dtype=np.float64)
    lag = scan_lag(h, w, max_misalignment_px, line_jitter_px, rng)
    delta = lag[:, 1:]  # backward line j (raster column 2j + 1)
    fixed = full[:, 0::2]
    yy = rows[:, None] + delta
    xx = np.repeat((2 * np.arange(w) + 1)[None, :], h, axis=0).astype(np.float64)
    backward = ndimage.map_coordinates(seen_backward, [yy, xx], order=3, mode="nearest")
    fixed = fixed + rng.normal(0, noise[0], size=fixed.shape)
    moving = gain * backward + offset + rng.normal(0, noise[1], size=backward.shape)
    # Moving column j is raster column 2j + 1, half an image column right of fixed column j (raster 2j): the
    # fixed pixel's physical point is found in the moving image half a column to the left, at column j - 1/2,
    # where the lag is the mean of the two neighbouring backward lines' lags (lag[:, 0] stands for line -1).
    half_lag = 0.5 * (lag[:, :-1] + lag[:, 1:])
    field = np.empty((2, h, w), np.float32)
    field[0] = np.stack([_invert_shift(half_lag[:, j]) for j in range(w)], axis=1)
    field[1] = -0.5
    lesions = None
    if segments:
        labels_moving, labels_fixed = np.zeros((h, w), np.uint8), np.zeros((h, w), np.uint8)
        kinds = {}
        for i, seg in enumerate(segments):
            core = seg > 0.5 * seg.max()  # the segment's core on the raster
            if i < features[0]:  # seen by the backward sweep: mask in moving space, pulled back to fixed space
                in_moving = ndimage.map_coordinates(core.astype(np.float32), [yy, xx], order=1, mode="constant")
                labels_moving[in_moving > 0.5] = i + 1
                labels_fixed[warp_image(in_moving.astype(np.float32), field) > 0.5] = i + 1
                kinds[i + 1] = ("moving_only", "vessel_segment")
            else:
                labels_fixed[core[:, 0::2]] = i + 1
                kinds[i + 1] = ("fixed_only", "vessel_segment")
        lesions = (labels_moving, labels_fixed, kinds)
    return {"moving": np.clip(moving, 0, 1).astype(np.float32), "fixed": np.clip(fixed, 0, 1).astype(np.float32),
            "field": field, "delta": delta.astype(np.float32), "lesions": lesions}


def make_sequence(params: dict, rng: np.random.Generator, features: tuple[int, int] = (0, 0)
                  ) -> list[dict[str, np.ndarray]]:
    """One temporal sequence of ``params["frames"]`` frames: one vessel map, one scanner state, slow drift."""
    h, w, frames = params["height"], params["width"], params["frames"]
    layers = render_vessel_layers((h, 2 * w), params["vessels"], rng)
    phase = rng.uniform(0, 2 * np.pi, size=len(layers))
    gain, offset = rng.uniform(*SCANNER["backward_gain"]), rng.uniform(*SCANNER["backward_offset"])
    velocity = rng.uniform(-0.3, 0.3, size=2)
    out = []
    for t in range(frames):
        weights = 1.0 + 0.06 * np.sin(2 * np.pi * t / max(frames, 2) + phase)
        out.append(make_frame(layers, weights, (velocity[0] * t, velocity[1] * t), rng,
                              params["max_misalignment_px"], gain, offset, SCANNER["line_jitter_px"],
                              (SCANNER["forward_noise"], SCANNER["backward_noise"]), SCANNER["background"],
                              features))
    return out


def prepare(root: Path, name: str, params: dict, seed: int) -> Path:
    """Generate the dataset deterministically from ``seed`` and write it to ``root``."""
    h, w, frames = params["height"], params["width"], params["frames"]
    n_seq = params["sequences"]
    sizes = {split: n * frames for split, n in n_seq.items()}
    features = (params["features"]["moving_only"], params["features"]["fixed_only"])
    with DatasetWriter(root, name=name, dataset_type=TYPE, image_shape=(h, w), split_sizes=sizes,
                       has_field=True, spec=params, has_lesions=any(features)) as writer:
        for split_index, split in enumerate(("train", "val", "test")):
            rng = np.random.default_rng([seed, split_index])
            index = 0
            for s in tqdm(range(n_seq[split]), desc=f"{name} {split}", unit="sequence"):
                for t, frame in enumerate(make_sequence(params, rng, features)):
                    writer.add(split, f"{split}-s{s:03d}-f{t:03d}", frame["moving"], frame["fixed"],
                               field=frame["field"], sequence=f"{split}-s{s:03d}", frame=t, lesions=frame["lesions"])
                    index += 1
    return root


def training_pairs(params: dict, seed: int, epoch: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` fresh training frames ``(moving, fixed, field)`` for ``epoch`` (harness hook: methods.training_data).

    New vessel maps and sweeps drawn like the prepared train split's, from the
    generator seeded by ``(seed, "train", epoch)``: new pairs every epoch, the same ones in every run.
    """
    rng = np.random.default_rng([seed, 0, epoch])
    out: list[dict[str, np.ndarray]] = []
    while len(out) < n:
        out += make_sequence(params, rng)[: n - len(out)]
    return tuple(np.stack([p[k] for p in out]).astype(np.float32) for k in ("moving", "fixed", "field"))

"""Dataset type ``fire-reg-256``: 256 x 256 patch pairs cut from FIRE, in the spirit of the paper's FIRE-Reg-256.

The paper (8,018 / 978 / 973 patches) does not say how its patches were cut;
this is the rule used here, fixed and documented (docs/DATASETS.md):

1. Both images of a pair (``<ID>_1`` fixed, ``<ID>_2`` moving) are resized from
   2912 x 2912 to ``working_size`` x ``working_size`` (area averaging).
2. Windows of ``patch_size`` x ``patch_size`` are laid on a regular grid with
   ``stride`` from the top-left corner; a window is kept if at least
   ``min_fov_fraction`` of it lies inside FIRE's field-of-view mask
   (``Masks/mask.png``; the whole image when the archive has no mask).
   The same windows are used for every pair.
3. The moving and fixed patch of a window are cut at the **same coordinates**
   from the two (unregistered) images, so the patch pair keeps the pair's
   own misalignment: small for S pairs, large for P and A pairs.
4. A control point is kept for a patch when both its fixed and its moving
   position lie inside the window (pixel centres ``0 .. patch_size - 1``); it
   is stored in patch coordinates: ``patch_xy = dataset_xy - (x0, y0)`` with
   ``dataset_xy = (orig_xy + 0.5) / s - 0.5``, ``s = 2912 / working_size``
   (``original_scale``). :func:`patch_to_original` inverts it.
5. Splits are drawn per group of FIRE pairs that share a photograph (by
   file content; by category, with the seed; :func:`pcreg.datasets.fire.split_pairs`),
   so no photograph contributes patches to two splits. The group is each
   patch's ``cluster`` (the statistics' independent unit). ``split_by: patch`` draws the split over patches
   instead, like a random patch-level split; it leaks (overlapping patches of
   one image pair end up in train and test) and warns.

Defaults (1024 px working size, stride 96, FOV >= 90 %) give about 60 patches
per pair, about 8,000 patches in all, close to the paper's 9,969.
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import numpy as np

from pcreg.datasets import fire
from pcreg.datasets.folder import resample
from pcreg.datasets.format import SPLITS, DatasetWriter, check_input_outside
from pcreg.errors import UserError

TYPE = "fire-reg-256"
#: The test pairs have landmarks (TRE, FIRE success curves apply).
LANDMARKS = True

PARAMS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        **fire.SOURCE_PARAMS,
        "patch_size": {"type": "integer", "minimum": 16, "default": 256, "description": "Patch side in pixels."},
        "working_size": {"type": "integer", "minimum": 16, "default": 1024,
                         "description": "Images are resized to this side before cutting patches (FIRE: 2912)."},
        "stride": {"type": "integer", "minimum": 1, "default": 96, "description": "Grid step between windows."},
        "min_fov_fraction": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.9,
                             "description": "Keep a window if this share of it is inside the field-of-view mask."},
        "split_by": {"type": "string", "enum": ["pair", "patch"], "default": "pair",
                     "description": "pair: no photograph in two splits (pairs sharing one are split together); "
                                    "patch: paper-style random split (leaks)."},
        "fractions": fire._fractions_schema({"train": 0.8, "val": 0.1, "test": 0.1}),
    },
}

_PATCH_ID = re.compile(r"^(?P<pair>[SPA]\d+)_y(?P<y>\d+)_x(?P<x>\d+)$")


def patch_id(pair_id: str, x0: int, y0: int) -> str:
    """Pair id of a patch: ``<ID>_y<y0>_x<x0>`` (window origin in working-size pixels)."""
    return f"{pair_id}_y{y0:04d}_x{x0:04d}"


def parse_patch_id(pid: str) -> tuple[str, int, int]:
    """``(fire_pair_id, x0, y0)`` of a patch id."""
    m = _PATCH_ID.match(pid)
    if not m:
        raise ValueError(f"not a fire-reg-256 patch id: {pid!r}")
    return m.group("pair"), int(m.group("x")), int(m.group("y"))


def windows(mask: np.ndarray | None, size: int, patch: int, stride: int, min_fov: float) -> list[tuple[int, int]]:
    """Origins ``(x0, y0)`` of the kept windows, row-major."""
    if patch > size:
        raise UserError(f"fire-reg-256: patch_size {patch} is larger than working_size {size}")
    starts = range(0, size - patch + 1, stride)
    kept = []
    for y0 in starts:
        for x0 in starts:
            inside = 1.0 if mask is None else float(mask[y0:y0 + patch, x0:x0 + patch].mean())
            if inside >= min_fov:
                kept.append((x0, y0))
    if not kept:
        raise UserError(f"fire-reg-256: no window has {min_fov:.0%} of its area in the field of view; "
                        "lower min_fov_fraction or patch_size")
    return kept


def landmarks_in_patch(fixed_xy: np.ndarray, moving_xy: np.ndarray, x0: int, y0: int,
                       patch: int) -> tuple[np.ndarray, np.ndarray]:
    """Points (working-size px) whose fixed and moving positions both fall in the window, in patch px."""
    off = np.array([x0, y0], np.float64)
    f, m = fixed_xy - off, moving_xy - off
    hi = patch - 1
    keep = ((f >= 0) & (f <= hi)).all(axis=1) & ((m >= 0) & (m <= hi)).all(axis=1)
    return f[keep], m[keep]


def patch_to_original(xy: np.ndarray, pid: str, original_scale: float) -> np.ndarray:
    """Patch-pixel points of patch ``pid`` -> original FIRE image pixels."""
    _, x0, y0 = parse_patch_id(pid)
    return fire.to_original_xy(np.asarray(xy, np.float64) + np.array([x0, y0], np.float64), original_scale)


def _patch_splits(n: int, fractions: dict[str, float], seed: int) -> list[str]:
    total = sum(fractions.get(s, 0.0) for s in SPLITS)
    n_train = math.floor(n * fractions.get("train", 0.0) / total + 0.5)
    n_val = min(n - n_train, math.floor(n * fractions.get("val", 0.0) / total + 0.5))
    labels = ["train"] * n_train + ["val"] * n_val + ["test"] * (n - n_train - n_val)
    perm = np.random.default_rng(seed).permutation(n)
    return [labels[r] for r in np.argsort(perm)]


def prepare(root: Path, name: str, params: dict, seed: int) -> Path:
    """Cut patch pairs from FIRE by the rule in the module docstring and write them at ``root``."""
    fire_root = fire.locate(params)
    check_input_outside(fire_root, root, "FIRE folder")
    pairs = fire.list_pairs(fire_root, params["exclude_pairs"])
    size, patch = params["working_size"], params["patch_size"]
    orig = fire.image_width(pairs[0].fixed_path)
    scale = orig / size
    wins = windows(fire.read_mask(fire_root, (size, size)), size, patch, params["stride"], params["min_fov_fraction"])

    # Split of every (pair, window), decided before any image is read (the writer needs split sizes).
    items = [(p, x0, y0) for p in pairs for (x0, y0) in wins]
    group_of = fire.image_components(pairs)
    if params["split_by"] == "pair":
        of_pair = fire.split_pairs(pairs, params["fractions"], seed, group_of)
        labels = [of_pair[p.pair_id] for p, _, _ in items]
    else:
        warnings.warn("fire-reg-256 with split_by: patch puts overlapping patches of one image pair (and one "
                      "photograph) in train and test: scores are optimistic (leakage); use split_by: pair for "
                      "honest numbers", stacklevel=2)
        labels = _patch_splits(len(items), params["fractions"], seed)
    counts = {s: labels.count(s) for s in SPLITS}
    spec = {"source": params["source_dir"] or params["url"], "original_size": orig,
            "sha256": None if params["source_dir"] else params["sha256"],
            "working_size": size, "patch_size": patch, "stride": params["stride"],
            "min_fov_fraction": params["min_fov_fraction"], "windows_per_pair": len(wins),
            "split_by": params["split_by"], "leaky_split": params["split_by"] == "patch",
            "fixed": "<ID>_1", "moving": "<ID>_2", "excluded": list(params["exclude_pairs"])}
    by_pair: dict[str, list[tuple[int, int, str]]] = {}
    for (p, x0, y0), split in zip(items, labels):
        by_pair.setdefault(p.pair_id, []).append((x0, y0, split))
    with DatasetWriter(root, name=name, dataset_type=TYPE, image_shape=(patch, patch), split_sizes=counts,
                       has_field=False, spec=spec, original_scale=scale) as writer:
        # One pass over the pairs (each pair decoded once); within a split, rows follow pair then window order.
        for p in pairs:
            moving, fixed = fire.load_pair(p, params["color"], orig)
            moving, fixed = resample(moving, (size, size)), resample(fixed, (size, size))
            f_xy, m_xy = fire.to_dataset_xy(p.fixed_xy, scale), fire.to_dataset_xy(p.moving_xy, scale)
            for x0, y0, split in by_pair[p.pair_id]:
                fk, mk = landmarks_in_patch(f_xy, m_xy, x0, y0, patch)
                writer.add(split, patch_id(p.pair_id, x0, y0), moving[y0:y0 + patch, x0:x0 + patch],
                           fixed[y0:y0 + patch, x0:x0 + patch], category=p.category,
                           cluster=group_of[p.pair_id],
                           fixed_xy=fk if len(fk) else None, moving_xy=mk if len(mk) else None)
    return Path(root)

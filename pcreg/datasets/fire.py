"""FIRE (Hernandez-Matas et al., 2017): download, control points, and the dataset type ``fire``.

Archive layout (``FIRE.7z``; the top folder may be ``FIRE/`` or absent)::

    Images/<ID>_1.jpg, Images/<ID>_2.jpg          ID = category letter + number, e.g. S01, P37, A14
    Ground Truth/control_points_<ID>_1_2.txt      10 rows "x1 y1 x2 y2" (image _1, image _2)
    Masks/mask.png, Masks/feature_mask.png        field-of-view masks (2912 x 2912)

Conventions of this suite:

- ``<ID>_1`` is the **fixed** image and ``<ID>_2`` the **moving** one, so
  ``fixed_xy = (x1, y1)`` and ``moving_xy = (x2, y2)``.
- Categories S (>75 % overlap), P (<75 % overlap), A (anatomical change) come
  from the first letter of the ID and fill the manifest's ``category`` column.
- P37 is excluded by default (``exclude_pairs``), as in the literature: its
  ground truth is known to be wrong (leaving S 71 / P 48 / A 14 pairs).
- Resizing keeps pixel centres aligned: ``x_ds = (x_orig + 0.5) / s - 0.5``
  with ``s`` original px per dataset px (``original_scale``), so distances scale
  exactly by ``s`` and TRE in original pixels is ``tre_px * original_scale``.

The dataset type ``fire`` stores whole pairs resized to ``image_size`` and is
evaluated with the standard FIRE protocol (:mod:`pcreg.evaluation.fire_protocol`). By default
every pair goes to ``test`` (the protocol's full set); with other fractions,
pairs are split per category by :func:`split_pairs`, the same rule and seed as
``fire-reg-256``, so the two datasets put the same pairs in the same splits.
Pairs that share a photograph (compared by file content) are split together
and share one ``cluster`` (the statistics' independent unit).
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pcreg.datasets.download import Remote, extract_7z, fetch
from pcreg.datasets.folder import read_gray, resample
from pcreg.datasets.format import SPLITS, DatasetWriter, check_input_outside
from pcreg.errors import UserError

TYPE = "fire"
#: The test pairs have landmarks (TRE, FIRE success curves apply).
LANDMARKS = True

#: The official archive. Size and SHA-256 as reported by a public data card (see docs/DATASETS.md).
FIRE_URL = "https://projects.ics.forth.gr/cvrl/fire/FIRE.7z"
FIRE_SHA256 = "4f164d89a572d88a5f46bf7fe433813a21561163c83481d6e101573621f79700"
FIRE_SIZE = 276_589_879
CATEGORIES = ("S", "P", "A")
_CP_NAME = re.compile(r"^control_points_([SPA])(\d+)_1_2\.txt$")

#: Parameters shared by ``fire`` and ``fire-reg-256`` (where the data come from, how images are read).
SOURCE_PARAMS = {
    "url": {"type": "string", "default": FIRE_URL, "description": "Where FIRE.7z is downloaded from."},
    "sha256": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$", "default": FIRE_SHA256,
               "description": "Pinned SHA-256 of FIRE.7z; a file that does not match is never used."},
    "cache_dir": {"type": "string", "default": "data/downloads",
                  "description": "Downloads (FIRE.7z) and the extracted archive (FIRE/) live here."},
    "source_dir": {"type": "string", "default": "",
                   "description": "An already-extracted FIRE folder to use instead of downloading (optional)."},
    "exclude_pairs": {"type": "array", "items": {"type": "string"}, "default": ["P37"],
                      "description": "Pair ids left out (P37: wrong ground truth, dropped as in the literature)."},
    "color": {"type": "string", "enum": ["luma", "red", "green", "blue"], "default": "luma",
              "description": "RGB to gray: BT.601 luma or one channel (green has the most vessel contrast)."},
}


def _fractions_schema(default: dict[str, float]) -> dict:
    return {
        "type": "object", "additionalProperties": False, "default": default,
        "description": "Share of FIRE image pairs per split, drawn per category (S/P/A) with the seed.",
        "properties": {s: {"type": "number", "minimum": 0, "maximum": 1, "default": default[s],
                           "description": f"Share of pairs in {s}."} for s in SPLITS},
    }


PARAMS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        **SOURCE_PARAMS,
        "image_size": {"type": "integer", "minimum": 32, "default": 512,
                       "description": "Whole images are resized to image_size x image_size (FIRE: 2912 x 2912)."},
        "fractions": _fractions_schema({"train": 0.0, "val": 0.0, "test": 1.0}),
    },
}


@dataclass
class FirePair:
    """One FIRE pair: ``<ID>_1`` fixed, ``<ID>_2`` moving, points in original pixels."""

    pair_id: str
    category: str
    fixed_path: Path
    moving_path: Path
    fixed_xy: np.ndarray
    moving_xy: np.ndarray


def parse_control_points(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a FIRE control-point file: rows ``x1 y1 x2 y2`` -> ``(fixed_xy, moving_xy)``, each ``(K, 2)``."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # an empty file is reported below, not as a warning
            arr = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot parse FIRE control points {path}: {exc}") from None
    if arr.ndim != 2 or arr.shape[1] != 4 or len(arr) == 0:
        raise UserError(f"{path}: expected rows of 4 numbers 'x1 y1 x2 y2', got an array of shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise UserError(f"{path}: non-finite control-point coordinates")
    return arr[:, 0:2].copy(), arr[:, 2:4].copy()


def find_root(folder: Path) -> Path:
    """The directory holding ``Images/`` and ``Ground Truth/`` (``folder`` itself or one level below)."""
    candidates = [folder] + sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    for c in candidates:
        if (c / "Images").is_dir() and (c / "Ground Truth").is_dir():
            return c
    found = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_dir())[:20] if folder.is_dir() else []
    raise UserError(f"{folder}: not a FIRE folder (expected Images/ and 'Ground Truth/' in it or one level below); "
                    f"found folders: {', '.join(found) or 'none'}")


def list_pairs(root: Path, exclude: list[str] | tuple[str, ...] = ("P37",)) -> list[FirePair]:
    """Every pair with a control-point file, sorted by id, minus ``exclude``; clear errors for missing images."""
    gt = root / "Ground Truth"
    pairs, missing = [], []
    for cp in sorted(gt.iterdir()):
        m = _CP_NAME.match(cp.name)
        if not m:
            continue
        pid = f"{m.group(1)}{m.group(2)}"
        if pid in exclude:
            continue
        fixed_path, moving_path = root / "Images" / f"{pid}_1.jpg", root / "Images" / f"{pid}_2.jpg"
        missing += [str(p) for p in (fixed_path, moving_path) if not p.is_file()]
        fixed_xy, moving_xy = parse_control_points(cp)
        pairs.append(FirePair(pid, m.group(1), fixed_path, moving_path, fixed_xy, moving_xy))
    if missing:
        raise UserError(f"FIRE folder {root}: missing images {', '.join(missing[:6])}"
                        + (f" and {len(missing) - 6} more" if len(missing) > 6 else ""))
    if not pairs:
        raise UserError(f"FIRE folder {root}: no control_points_<ID>_1_2.txt files in {gt}")
    return pairs


def locate(params: dict) -> Path:
    """The extracted FIRE folder: ``source_dir`` if given, else download, verify and extract FIRE.7z."""
    if params.get("source_dir"):
        return find_root(Path(params["source_dir"]).expanduser())
    from filelock import FileLock

    cache = Path(params["cache_dir"])
    cache.mkdir(parents=True, exist_ok=True)
    remote = Remote(url=params["url"], sha256=params["sha256"].lower(), fname="FIRE.7z",
                    size=FIRE_SIZE if params["sha256"].lower() == FIRE_SHA256 else None,
                    allow_unverified_tls=True)
    # fire and fire-reg-256 share one download and one extraction, and their prepare jobs run at once:
    # one job downloads and extracts while the other waits, then finds both in place.
    with FileLock(str(cache / "FIRE.7z.lock")):
        archive = fetch(remote, cache)
        return find_root(extract_7z(archive, cache / "FIRE", remote.sha256))


def read_mask(root: Path, shape: tuple[int, int]) -> np.ndarray | None:
    """FIRE's field-of-view mask resized to ``shape`` as bool, or ``None`` if the archive has none."""
    path = root / "Masks" / "mask.png"
    if not path.is_file():
        return None
    return resample(read_gray(path), shape) > 0.5


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def image_components(pairs: list[FirePair]) -> dict[str, str]:
    """Pair id -> id of its group of pairs linked by a shared photograph (same file content).

    FIRE has 129 images in 134 pairs: some photographs appear in two pairs
    (under different names), so those pairs are not independent. Images are
    compared by SHA-256 of the file's bytes, not by name; pairs sharing an image
    (transitively) form one group, named by its member ids joined with ``+``
    (a pair without shared images is its own group, named by its id).
    """
    parent = {p.pair_id: p.pair_id for p in pairs}

    def find(a: str) -> str:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    owner: dict[str, str] = {}
    for p in pairs:
        for path in (p.fixed_path, p.moving_path):
            digest = _sha256(path)
            if digest in owner:
                parent[find(p.pair_id)] = find(owner[digest])
            else:
                owner[digest] = p.pair_id
    members: dict[str, list[str]] = {}
    for p in pairs:
        members.setdefault(find(p.pair_id), []).append(p.pair_id)
    names = {root: "+".join(sorted(ids)) for root, ids in members.items()}
    return {p.pair_id: names[find(p.pair_id)] for p in pairs}


def split_pairs(
    pairs: list[FirePair], fractions: dict[str, float], seed: int, groups: dict[str, str] | None = None
) -> dict[str, str]:
    """Pair id -> split, drawn per category with ``seed`` (train and val rounded, test takes the rest).

    The unit drawn is a group of pairs sharing a photograph (:func:`image_components`),
    so no photograph (and no image pair) contributes to two splits. A group
    belongs to the category of its first pair in S, P, A order; groups are
    shuffled per category and assigned to train until it holds its share of
    the category's pairs, then to val, then test (with no shared photographs
    this is a shuffle of pair ids cut by the rounded shares). ``groups``: pair
    id -> group id, computed from the image files when not given.
    """
    total = sum(fractions.get(s, 0.0) for s in SPLITS)
    if total <= 0:
        raise UserError("split fractions sum to 0; give at least one split a positive share")
    group_of = image_components(pairs) if groups is None else groups
    category = {p.pair_id: p.category for p in pairs}
    rank_of = {c: i for i, c in enumerate(CATEGORIES)}
    groups: dict[str, list[str]] = {}
    for pid in sorted(group_of):
        groups.setdefault(group_of[pid], []).append(pid)
    out: dict[str, str] = {}
    for k in range(len(CATEGORIES)):
        mine = sorted(g for g, ids in groups.items()
                      if min((rank_of[category[i]], i) for i in ids)[0] == k)
        rng = np.random.default_rng([seed, k])
        mine = [mine[i] for i in rng.permutation(len(mine))]
        n = sum(len(groups[g]) for g in mine)
        n_train = math.floor(n * fractions.get("train", 0.0) / total + 0.5)
        n_val = min(n - n_train, math.floor(n * fractions.get("val", 0.0) / total + 0.5))
        taken = 0
        for g in mine:
            split = "train" if taken < n_train else "val" if taken < n_train + n_val else "test"
            for pid in groups[g]:
                out[pid] = split
            taken += len(groups[g])
    return out


def to_dataset_xy(xy: np.ndarray, scale: float) -> np.ndarray:
    """Original-image points -> points of an image resized by 1/``scale`` (pixel centres aligned)."""
    return (np.asarray(xy, np.float64) + 0.5) / scale - 0.5


def to_original_xy(xy: np.ndarray, scale: float) -> np.ndarray:
    """Inverse of :func:`to_dataset_xy`."""
    return (np.asarray(xy, np.float64) + 0.5) * scale - 0.5


def image_width(path: Path) -> int:
    """Width of an image from its header (no decoding)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return int(im.size[0])
    except OSError as exc:
        raise UserError(f"cannot read image {path}: {exc}") from None


def load_pair(pair: FirePair, color: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(moving, fixed)`` at the original resolution; both must be ``size`` x ``size``."""
    fixed = read_gray(pair.fixed_path, color)
    moving = read_gray(pair.moving_path, color)
    if fixed.shape != (size, size) or moving.shape != (size, size):
        raise UserError(f"FIRE pair {pair.pair_id}: images are {moving.shape} (moving) and {fixed.shape} (fixed); "
                        f"expected {size} x {size} like the other pairs")
    return moving, fixed


def prepare(root: Path, name: str, params: dict, seed: int) -> Path:
    """Whole FIRE pairs resized to ``image_size``; landmarks in dataset pixels, ``original_scale`` recorded."""
    fire_root = locate(params)
    check_input_outside(fire_root, root, "FIRE folder")
    pairs = list_pairs(fire_root, params["exclude_pairs"])
    group_of = image_components(pairs)
    split_of = split_pairs(pairs, params["fractions"], seed, group_of)
    size = params["image_size"]
    counts = {s: sum(1 for v in split_of.values() if v == s) for s in SPLITS}
    orig = image_width(pairs[0].fixed_path)
    scale = orig / size
    spec = {"source": params["source_dir"] or params["url"], "original_size": orig,
            "sha256": None if params["source_dir"] else params["sha256"],
            "fixed": "<ID>_1", "moving": "<ID>_2", "excluded": list(params["exclude_pairs"])}
    with DatasetWriter(root, name=name, dataset_type=TYPE, image_shape=(size, size), split_sizes=counts,
                       has_field=False, spec=spec, original_scale=scale) as writer:
        for split in SPLITS:
            for pair in pairs:
                if split_of[pair.pair_id] != split:
                    continue
                moving, fixed = load_pair(pair, params["color"], orig)
                writer.add(split, pair.pair_id, resample(moving, (size, size)), resample(fixed, (size, size)),
                           category=pair.category, cluster=group_of[pair.pair_id],
                           fixed_xy=to_dataset_xy(pair.fixed_xy, scale),
                           moving_xy=to_dataset_xy(pair.moving_xy, scale))
    return Path(root)

"""The on-disk format shared by every prepared dataset (synthetic and real).

A prepared dataset is a directory::

    <root>/dataset.json           metadata: name, type, image_shape, split sizes, flags, spec
    <root>/manifest.csv           one row per pair: pair_id, split, index, category, sequence, frame, cluster
    <root>/<split>/moving.npy     (N, H, W) float32 in [0, 1], read memory-mapped
    <root>/<split>/fixed.npy      (N, H, W) float32 in [0, 1], read memory-mapped
    <root>/<split>/field.npy      (N, 2, H, W) float32 ground-truth pull-back field (optional)
    <root>/landmarks.csv          pair_id, point, fixed_x, fixed_y, moving_x, moving_y (optional)
    <root>/<split>/lesions_moving.npy  (N, H, W) uint8 feature labels in moving-image space (optional)
    <root>/<split>/lesions_fixed.npy   (N, H, W) uint8 feature labels in fixed-image space (optional)
    <root>/lesions.csv            pair_id, label, kind, name (optional, with the two arrays above)

Content-fidelity features (optional; ``has_lesions`` in dataset.json). Small
features present in only one image of a pair, for the kept/invented metrics
(:mod:`pcreg.evaluation.fidelity`). Each feature has a label ``1..255`` within its pair and a
``kind``: ``moving_only`` (present in the moving image only: a registration
must keep it) or ``fixed_only`` (present in the fixed image only: a
registration cannot produce it). ``lesions_moving`` marks the moving-only
features where they are in the moving image; ``lesions_fixed`` marks the
fixed-only features and the moving-only features *where the ground truth puts
them* in fixed space (``mask_fixed(p) = mask_moving(p + u(p))``). Label 0 is
background. ``name`` says what the feature is (``microaneurysm``, ``exudate``,
``vessel_segment``...).

``index`` is the row of the pair in its split's arrays; manifest order within a
split is index order. ``cluster`` names the pair's independent unit for the
statistics (pairs of one cluster share source pixels: patches of one FIRE
pair, frames of one sequence, overlapping synthetic regions); by default the
pair's ``sequence`` or, without one, its ``pair_id``. Datasets prepared before
the column existed load with that default. Arrays are written row by row straight to their files
(:class:`pcreg.streaming.NpyRowWriter`), so datasets larger than memory stream
to disk with memory bounded by one pair, and the whole directory is
written under a temporary name and renamed at the end, so an interrupted
preparation never leaves a directory that looks complete.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pcreg.errors import UserError
from pcreg.streaming import NpyRowWriter

FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
MANIFEST_COLUMNS = ["pair_id", "split", "index", "category", "sequence", "frame", "cluster"]
LANDMARK_COLUMNS = ["pair_id", "point", "fixed_x", "fixed_y", "moving_x", "moving_y"]
LESION_COLUMNS = ["pair_id", "label", "kind", "name"]
LESION_KINDS = ("moving_only", "fixed_only")


#: What a prepared dataset's folder may hold: everything :class:`DatasetWriter` writes, nothing else.
_OWN_TOP = {"dataset.json", "manifest.csv", "landmarks.csv", "lesions.csv", *SPLITS}
_OWN_SPLIT = {"moving.npy", "fixed.npy", "field.npy", "lesions_moving.npy", "lesions_fixed.npy"}
#: Marker file of the temporary folder a :class:`DatasetWriter` writes into.
PARTIAL_MARKER = ".pcreg-partial"


def is_prepared_dataset(root: Path) -> bool:
    """True if ``root`` holds a dataset this suite prepared (or is empty): the only folders prepare replaces.

    The suite's own ``dataset.json`` (with its ``format_version``) identifies it; so does the rest of the
    layout with nothing else in it (Snakemake removes ``dataset.json`` before it re-runs a prepare job).
    """
    root = Path(root)
    meta = root / "dataset.json"
    if meta.is_file():
        try:
            return "format_version" in json.loads(meta.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError, OSError):
            return False
    if not any(root.iterdir()):
        return True
    return _only_own_files(root) and (root / "manifest.csv").is_file()


def _only_own_files(root: Path) -> bool:
    """True if ``root`` holds nothing but names a :class:`DatasetWriter` writes."""
    for entry in root.iterdir():
        if entry.name not in {*_OWN_TOP, PARTIAL_MARKER} or entry.is_symlink():
            return False
        if entry.name in SPLITS:
            if not entry.is_dir() or any(f.name not in _OWN_SPLIT | {f"{n}.partial" for n in _OWN_SPLIT}
                                         for f in entry.iterdir()):
                return False
    return True


def check_replaceable(root: Path) -> None:
    """Raise a one-line :class:`UserError` unless ``root`` is absent or a dataset this suite prepared.

    Prepare never deletes what the suite did not create: a user's folder at the output path stops it.
    """
    root = Path(root)
    if root.is_symlink() or (root.exists() and not root.is_dir()):
        raise UserError(f"{root} exists and is not a folder this suite prepared; prepare stopped without "
                        "touching it: move it away, or choose another data_dir or dataset name")
    if root.exists() and not is_prepared_dataset(root):
        names = sorted(p.name for p in root.iterdir())[:4]
        raise UserError(f"{root} exists and is not a dataset prepared by this suite (no dataset.json of ours; it "
                        f"holds {', '.join(names)}{', ...' if len(names) == 4 else ''}); prepare stopped without "
                        "touching it: move it away, or choose another data_dir or dataset name")


def check_input_outside(source: Path, root: Path, what: str = "path") -> None:
    """Refuse (one line) an input folder ``source`` that lies inside the output folder ``root`` (or is it)."""
    src, out = Path(source).expanduser().resolve(), Path(root).expanduser().resolve()
    if src == out or out in src.parents:
        raise UserError(f"the input {what} {source} lies inside the dataset's output folder {root}, which "
                        "prepare replaces: move the input elsewhere (or choose another data_dir or dataset name); "
                        "nothing was changed")


@dataclass
class PairSplit:
    """One split of a prepared dataset; arrays are memory-mapped, rows follow ``manifest``."""

    name: str
    manifest: pd.DataFrame
    moving: np.ndarray
    fixed: np.ndarray
    field: np.ndarray | None
    landmarks: dict[str, tuple[np.ndarray, np.ndarray]]
    #: The prepared dataset's directory (``<root>/<name>/moving.npy`` ...), when read from disk.
    root: Path | None = None
    #: Content-fidelity feature labels ``(N, H, W)`` in moving / fixed space and each pair's
    #: ``{label: (kind, name)}``; ``None`` when the dataset has none.
    lesions_moving: np.ndarray | None = None
    lesions_fixed: np.ndarray | None = None
    lesion_kinds: dict[str, dict[int, tuple[str, str]]] | None = None

    def __len__(self) -> int:
        return len(self.manifest)

    @property
    def pair_ids(self) -> list[str]:
        return self.manifest["pair_id"].tolist()

    def pair(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``(moving, fixed)`` of pair ``i`` as float32 arrays in memory."""
        return np.asarray(self.moving[i], dtype=np.float32), np.asarray(self.fixed[i], dtype=np.float32)

    def landmarks_of(self, pair_id: str) -> tuple[np.ndarray, np.ndarray] | None:
        """``(fixed_xy, moving_xy)`` arrays of shape ``(K, 2)``, or ``None`` if the pair has none."""
        return self.landmarks.get(pair_id)


class PreparedDataset:
    """Read access to a prepared dataset directory."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        meta_path = self.root / "dataset.json"
        if not meta_path.is_file():
            raise UserError(f"no prepared dataset at {self.root} (missing {meta_path.name}); "
                            "run the prepare step first")
        self.meta = json.loads(meta_path.read_text())
        if self.meta.get("format_version") != FORMAT_VERSION:
            raise UserError(f"{meta_path}: unsupported format_version {self.meta.get('format_version')!r}")
        self.manifest = pd.read_csv(self.root / "manifest.csv",
                                    dtype={"pair_id": str, "category": str, "sequence": str, "cluster": str})
        for col in ("category", "sequence"):
            self.manifest[col] = self.manifest[col].fillna("")
        self.manifest["cluster"] = default_clusters(self.manifest)
        lm_path = self.root / "landmarks.csv"
        self._landmarks = pd.read_csv(lm_path, dtype={"pair_id": str}) if lm_path.is_file() else None
        les_path = self.root / "lesions.csv"
        self._lesions = (pd.read_csv(les_path, dtype={"pair_id": str, "kind": str, "name": str})
                         if les_path.is_file() else None)

    @property
    def name(self) -> str:
        return self.meta["name"]

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.meta["image_shape"])

    @property
    def original_scale(self) -> float:
        """Original-resolution pixels per pixel of this dataset (1.0 when not resampled)."""
        return float(self.meta.get("original_scale", 1.0))

    def split(self, name: str) -> PairSplit:
        if name not in SPLITS:
            raise UserError(f"unknown split {name!r}; expected one of {', '.join(SPLITS)}")
        rows = self.manifest[self.manifest["split"] == name].sort_values("index").reset_index(drop=True)
        folder = self.root / name
        moving = np.load(folder / "moving.npy", mmap_mode="r")
        fixed = np.load(folder / "fixed.npy", mmap_mode="r")
        field_path = folder / "field.npy"
        field = np.load(field_path, mmap_mode="r") if field_path.is_file() else None
        if len(moving) != len(rows) or len(fixed) != len(rows):
            raise UserError(f"{folder}: arrays hold {len(moving)} pairs but the manifest lists {len(rows)}")
        landmarks: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if self._landmarks is not None:
            ids = set(rows["pair_id"])
            for pid, grp in self._landmarks[self._landmarks["pair_id"].isin(ids)].groupby("pair_id", sort=False):
                grp = grp.sort_values("point")
                landmarks[pid] = (
                    grp[["fixed_x", "fixed_y"]].to_numpy(np.float64),
                    grp[["moving_x", "moving_y"]].to_numpy(np.float64),
                )
        split = PairSplit(name, rows, moving, fixed, field, landmarks, root=self.root)
        if self._lesions is not None and (folder / "lesions_fixed.npy").is_file():
            split.lesions_moving = np.load(folder / "lesions_moving.npy", mmap_mode="r")
            split.lesions_fixed = np.load(folder / "lesions_fixed.npy", mmap_mode="r")
            kinds: dict[str, dict[int, tuple[str, str]]] = {pid: {} for pid in rows["pair_id"]}
            for r in self._lesions[self._lesions["pair_id"].isin(kinds)].itertuples():
                kinds[r.pair_id][int(r.label)] = (r.kind, r.name)
            split.lesion_kinds = kinds
        return split


def default_clusters(manifest: pd.DataFrame) -> pd.Series:
    """The ``cluster`` column with gaps filled: the pair's ``sequence``, else its ``pair_id``."""
    given = manifest["cluster"] if "cluster" in manifest else pd.Series("", index=manifest.index)
    given = given.fillna("").astype(str)
    fallback = manifest["sequence"].where(manifest["sequence"] != "", manifest["pair_id"])
    return given.where(given != "", fallback)


class DatasetWriter:
    """Streams pairs into the on-disk format; ``close()`` makes the dataset visible atomically.

    Use as a context manager: on an exception the temporary directory is removed
    and nothing is left at ``root``.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        name: str,
        dataset_type: str,
        image_shape: tuple[int, int],
        split_sizes: dict[str, int],
        has_field: bool,
        spec: dict | None = None,
        original_scale: float = 1.0,
        has_lesions: bool = False,
    ):
        self.root = Path(root)
        check_replaceable(self.root)  # before anything is written: never delete what the suite did not create
        self.tmp = self.root.with_name(self.root.name + ".partial")
        if self.tmp.exists():
            if not (self.tmp / PARTIAL_MARKER).is_file() and not _only_own_files(self.tmp):
                raise UserError(f"{self.tmp} exists and was not left by this suite; prepare stopped without "
                                "touching it: move it away")
            shutil.rmtree(self.tmp)
        self.tmp.mkdir(parents=True)
        (self.tmp / PARTIAL_MARKER).touch()
        self.image_shape = tuple(int(s) for s in image_shape)
        self.split_sizes = {s: int(split_sizes.get(s, 0)) for s in SPLITS}
        self.meta = {
            "format_version": FORMAT_VERSION,
            "name": name,
            "type": dataset_type,
            "image_shape": list(self.image_shape),
            "splits": self.split_sizes,
            "has_gt_field": bool(has_field),
            "has_landmarks": False,
            "has_lesions": bool(has_lesions),
            "original_scale": float(original_scale),
            "spec": spec or {},
        }
        self._arrays: dict[str, dict[str, NpyRowWriter]] = {}
        self._count = dict.fromkeys(SPLITS, 0)
        self._rows: list[dict] = []
        self._landmarks: list[dict] = []
        self._lesions: list[dict] = []
        h, w = self.image_shape
        for split, n in self.split_sizes.items():
            folder = self.tmp / split
            folder.mkdir()
            arrays = {
                "moving": NpyRowWriter(folder / "moving.npy", (n, h, w)),
                "fixed": NpyRowWriter(folder / "fixed.npy", (n, h, w)),
            }
            if has_field:
                arrays["field"] = NpyRowWriter(folder / "field.npy", (n, 2, h, w))
            if has_lesions:
                arrays["lesions_moving"] = NpyRowWriter(folder / "lesions_moving.npy", (n, h, w), np.uint8)
                arrays["lesions_fixed"] = NpyRowWriter(folder / "lesions_fixed.npy", (n, h, w), np.uint8)
            self._arrays[split] = arrays

    def add(
        self,
        split: str,
        pair_id: str,
        moving: np.ndarray,
        fixed: np.ndarray,
        *,
        field: np.ndarray | None = None,
        category: str = "",
        sequence: str = "",
        frame: int | None = None,
        cluster: str = "",
        fixed_xy: np.ndarray | None = None,
        moving_xy: np.ndarray | None = None,
        lesions: tuple[np.ndarray, np.ndarray, dict[int, tuple[str, str]]] | None = None,
    ) -> None:
        """Append one pair to ``split`` (images float in [0, 1], shape ``image_shape``).

        ``lesions`` = ``(labels_moving, labels_fixed, {label: (kind, name)})`` (see the module docstring);
        required when the dataset was opened with ``has_lesions``.
        ``cluster``: the pair's independent unit for the statistics (default: ``sequence``, else ``pair_id``).
        """
        i = self._count[split]
        if i >= self.split_sizes[split]:
            raise ValueError(f"split {split!r} is full ({self.split_sizes[split]} pairs)")
        for label, img in (("moving", moving), ("fixed", fixed)):
            if img.shape != self.image_shape:
                raise ValueError(f"{pair_id}: {label} image has shape {img.shape}, expected {self.image_shape}")
            self._arrays[split][label].write(np.clip(img, 0.0, 1.0))
        if "field" in self._arrays[split]:
            if field is None:
                raise ValueError(f"{pair_id}: this dataset stores ground-truth fields; none given")
            self._arrays[split]["field"].write(field)
        if "lesions_fixed" in self._arrays[split]:
            if lesions is None:
                raise ValueError(f"{pair_id}: this dataset stores content-fidelity masks; none given")
            labels_moving, labels_fixed, kinds = lesions
            for key, labels in (("lesions_moving", labels_moving), ("lesions_fixed", labels_fixed)):
                if labels.shape != self.image_shape:
                    raise ValueError(f"{pair_id}: {key} has shape {labels.shape}, expected {self.image_shape}")
                self._arrays[split][key].write(np.asarray(labels, np.uint8))
            for label, (kind, what) in sorted(kinds.items()):
                if kind not in LESION_KINDS:
                    raise ValueError(f"{pair_id}: feature kind {kind!r} is not one of {LESION_KINDS}")
                self._lesions.append({"pair_id": pair_id, "label": int(label), "kind": kind, "name": what})
        self._rows.append(
            {"pair_id": pair_id, "split": split, "index": i, "category": category, "sequence": sequence,
             "frame": "" if frame is None else int(frame), "cluster": cluster or sequence or pair_id}
        )
        if fixed_xy is not None and moving_xy is not None:
            for k, (f, m) in enumerate(zip(np.asarray(fixed_xy), np.asarray(moving_xy))):
                self._landmarks.append(
                    {"pair_id": pair_id, "point": k, "fixed_x": f[0], "fixed_y": f[1],
                     "moving_x": m[0], "moving_y": m[1]}
                )
        self._count[split] = i + 1

    def close(self) -> Path:
        """Flush, check every split is complete, and move the dataset into place."""
        for split, n in self.split_sizes.items():
            if self._count[split] != n:
                raise ValueError(f"split {split!r} has {self._count[split]} of {n} pairs")
            for arr in self._arrays[split].values():
                arr.close()
        self._arrays.clear()
        pd.DataFrame(self._rows, columns=MANIFEST_COLUMNS).to_csv(self.tmp / "manifest.csv", index=False)
        if self._landmarks:
            self.meta["has_landmarks"] = True
            pd.DataFrame(self._landmarks, columns=LANDMARK_COLUMNS).to_csv(
                self.tmp / "landmarks.csv", index=False, float_format="%.4f"
            )
        if self.meta["has_lesions"]:
            pd.DataFrame(self._lesions, columns=LESION_COLUMNS).to_csv(self.tmp / "lesions.csv", index=False)
        (self.tmp / "dataset.json").write_text(json.dumps(self.meta, indent=2, sort_keys=True) + "\n")
        (self.tmp / PARTIAL_MARKER).unlink()
        if self.root.exists():
            check_replaceable(self.root)  # checked again: the folder may have changed while preparing
            shutil.rmtree(self.root)
        self.tmp.rename(self.root)
        return self.root

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            for arrays in self._arrays.values():
                for arr in arrays.values():
                    arr.abort()
            self._arrays.clear()
            shutil.rmtree(self.tmp, ignore_errors=True)

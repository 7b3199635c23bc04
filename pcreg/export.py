"""Export a prepared dataset for a method that runs outside the suite (``python -m pcreg export``).

Layout of ``<out_dir>`` (documented for users in docs/EXTERNAL.md)::

    README.md, export.json         what is here, the conventions, the pair lists
    <split>/pairs.csv              pair_id, index, category, sequence, frame, cluster (split = test, train, val)
    <split>/moving/<pair_id>.npy   float32 (H, W) in [0, 1]: the exact arrays the suite scores
    <split>/moving/<pair_id>.png   the same as 16-bit grey PNG (round(65535 * value))
    <split>/fixed/<pair_id>.{npy,png}
    <split>/field/<pair_id>.npy    ground-truth pull-back field (2, H, W), train and val only
    landmarks.csv                  split, pair_id, point, fixed_x, fixed_y, moving_x, moving_y (if allowed)
    audit/pairs.csv, audit/{moving,fixed}/<audit_id>.{npy,png}   the sanity audit's modified inputs

A method run elsewhere writes ``fields/<pair_id>.npy`` or ``images/<pair_id>.*``
for the test pairs (and the audit ids) into a folder that a ``precomputed`` run
reads (with ``runtimes.csv`` and ``failed.csv`` optional).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pcreg.datasets.format import SPLITS, PreparedDataset
from pcreg.errors import UserError
from pcreg.evaluation.audit_inputs import audit_cases
from pcreg.image_io import write_png16

CONVENTIONS = {
    "images": "(H, W) float32 in [0, 1]; array index [row, col]; PNG = round(65535 * value), 16-bit grey",
    "field": ("(2, H, W) float32 pull-back field in fixed-image pixels: warped(p) = moving(p + u(p)); "
              "u[0] along rows (y, down), u[1] along columns (x, right)"),
    "landmarks": "(x, y) pixels, x = column, y = row; pixel centres at integer coordinates",
    "outputs": ("fields/<pair_id>.npy ((2, H, W) or (H, W, 2); another convention declared in the precomputed "
                "run's params.convention) or images/<pair_id>.{npy,png,tif}; optional runtimes.csv "
                "(pair_id, runtime_s); copy export.json beside them and the suite checks they were made "
                "from this dataset"),
}


def test_fingerprint(root: Path) -> str:
    """Content digest of a prepared dataset's test pairs (their ids, moving and fixed images, ground-truth fields):
    ``export.json`` carries it, so outputs can be checked against the data they are scored on."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    h.update("\n".join(PreparedDataset(root).split("test").pair_ids).encode())
    for name in ("moving.npy", "fixed.npy", "field.npy"):
        path = Path(root) / "test" / name
        if path.is_file():
            with open(path, "rb") as fh:
                while chunk := fh.read(1 << 22):
                    h.update(chunk)
    return h.hexdigest()


def check_outputs_match(folder: Path, data_root: Path) -> None:
    """Refuse (one line) outputs whose ``export.json`` says they were exported from other test pairs.

    Outputs without an ``export.json`` are accepted as they are (nothing to check against).
    """
    info_path = Path(folder) / "export.json"
    if not info_path.is_file():
        return
    try:
        info = json.loads(info_path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{info_path}: not valid JSON ({exc})") from None
    exported = info.get("test_fingerprint")
    if exported is None:
        raise UserError(f"{info_path} has no test_fingerprint (written by an older export): export the dataset "
                        "again, or remove export.json from the outputs folder")
    current = test_fingerprint(data_root)
    if exported != current:
        raise UserError(f"{info_path} was exported from dataset {info.get('dataset')!r} with other test pairs than "
                        f"{data_root} (fingerprint {exported} != {current}: another seed, size or version of the "
                        "data): run the method on a fresh export of this dataset")


def resolve_dataset(dataset: str, configfile: Path | None) -> tuple[Path, dict[str, Any]]:
    """A prepared dataset directory, or a config dataset name under its ``data_dir``; and the config's audit."""
    config: dict[str, Any] = {}
    if configfile is not None or not (Path(dataset) / "dataset.json").is_file():
        from pcreg.config import load_config

        config = load_config(configfile or Path("config/config.yaml"))
    if (Path(dataset) / "dataset.json").is_file():
        return Path(dataset), config
    if dataset not in config["datasets"]:
        raise UserError(f"{dataset!r} is neither a prepared dataset directory nor a dataset of the config "
                        f"({', '.join(config['datasets'])})")
    return Path(config["data_dir"]) / dataset, config


def _write_pair_images(folder: Path, name: str, moving: np.ndarray, fixed: np.ndarray) -> None:
    for kind, image in (("moving", moving), ("fixed", fixed)):
        (folder / kind).mkdir(parents=True, exist_ok=True)
        np.save(folder / kind / f"{name}.npy", np.asarray(image, np.float32))
        write_png16(folder / kind / f"{name}.png", image)


def _landmarks_allowed(dataset_type: str) -> tuple[bool, str]:
    """A dataset type can forbid exporting landmarks (``EXPORT_LANDMARKS = False``, with ``EXPORT_LANDMARKS_WHY``)."""
    from pcreg.datasets import get_dataset_type

    try:
        module = get_dataset_type(dataset_type)
    except UserError:
        return True, ""
    return bool(getattr(module, "EXPORT_LANDMARKS", True)), str(getattr(module, "EXPORT_LANDMARKS_WHY", ""))


def export_dataset(data_root: Path, out_dir: Path, *, splits: tuple[str, ...] = SPLITS, audit_pairs: int | None = 8,
                   seed: int = 0, blank: str = "mean") -> Path:
    """Write the inputs an external method needs into ``out_dir`` (replaced if present); return it."""
    dataset = PreparedDataset(data_root)
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir())
                                                      and not (out_dir / "export.json").is_file())):
        raise UserError(f"{out_dir} exists and is not an export of this suite (no export.json); export stopped "
                        "without touching it: choose another output folder")  # never delete what we did not write
    tmp = out_dir.with_name(out_dir.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    counts = {}
    for split in splits:
        pairs = dataset.split(split)
        counts[split] = len(pairs)
        folder = tmp / split
        folder.mkdir()
        pairs.manifest[["pair_id", "index", "category", "sequence", "frame", "cluster"]].to_csv(folder / "pairs.csv",
                                                                                     index=False)
        for i, pair_id in enumerate(pairs.pair_ids):
            _write_pair_images(folder, pair_id, *pairs.pair(i))
            if split != "test" and pairs.field is not None:  # the test fields are the answers
                (folder / "field").mkdir(exist_ok=True)
                np.save(folder / "field" / f"{pair_id}.npy", np.asarray(pairs.field[i], np.float32))
    allowed, why = _landmarks_allowed(dataset.meta.get("type", ""))
    lm_src = dataset.root / "landmarks.csv"
    landmarks = "none in this dataset"
    if lm_src.is_file() and allowed:
        lm = pd.read_csv(lm_src, dtype={"pair_id": str})
        split_of = dict(zip(dataset.manifest["pair_id"], dataset.manifest["split"]))
        lm.insert(0, "split", lm["pair_id"].map(split_of))
        lm[lm["split"].isin(splits)].to_csv(tmp / "landmarks.csv", index=False)
        landmarks = "landmarks.csv"
    elif lm_src.is_file():
        landmarks = f"not exported: {why or 'the dataset type does not allow it'}"
    audit_rows = []
    if "test" in splits and counts["test"] >= 2:
        for case in audit_cases(dataset.root, audit_pairs, seed, blank):
            if case.condition != "normal":  # the normal condition is the test pair itself
                _write_pair_images(tmp / "audit", case.audit_id, case.moving, case.fixed)
                audit_rows.append({"audit_id": case.audit_id, "pair_id": case.pair_id, "condition": case.condition})
        pd.DataFrame(audit_rows, columns=["audit_id", "pair_id", "condition"]).to_csv(tmp / "audit" / "pairs.csv",
                                                                                     index=False)
    info = {
        "dataset": dataset.name, "test_fingerprint": test_fingerprint(dataset.root),
        "type": dataset.meta.get("type"), "image_shape": list(dataset.image_shape),
        "splits": counts, "conventions": CONVENTIONS, "landmarks": landmarks,
        "audit": {"pairs": audit_pairs, "seed": seed, "blank": blank, "inputs": len(audit_rows)},
    }
    (tmp / "export.json").write_text(json.dumps(info, indent=2) + "\n")
    (tmp / "README.md").write_text(_readme(info))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return out_dir


def _readme(info: dict[str, Any]) -> str:
    h, w = info["image_shape"]
    splits = ", ".join(f"{s}: {n} pairs" for s, n in info["splits"].items())
    conv = "\n".join(f"- **{k}**: {v}" for k, v in info["conventions"].items())
    return f"""# {info['dataset']} exported for an external method

Images {h} x {w}; {splits}. Register `<split>/moving/<pair_id>` to `<split>/fixed/<pair_id>`
(the `.npy` files are the exact arrays the suite scores; the 16-bit PNGs are quantised to 1/65535).

{conv}

Landmarks: {info['landmarks']}. Test landmarks and fields are for reference: a method must not use them.

Write, for every test pair, `fields/<pair_id>.npy` (or `images/<pair_id>.png`) into a folder and add to the
config a run `{{method: precomputed, params: {{path: <folder>}}, datasets: [{info['dataset']}]}}`. To be audited,
also write outputs for the ids in `audit/pairs.csv` (inputs in `audit/moving`, `audit/fixed`). See docs/EXTERNAL.md.
"""

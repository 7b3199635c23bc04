"""Dataset type ``orpam``: OR-PAM-Reg-4K and OR-PAM-Reg-Temporal-26K from the Hugging Face Hub.

``variant: 4k`` is ``chengliuyan/OR-PAM-Reg-4K`` (4,248 pairs, 3,396/420/432),
``variant: temporal-26k`` is ``chengliuyan/OR-PAM-Reg-Temporal-26K`` (26,550
pairs, 21,240/2,596/2,714). In bidirectional OR-PAM the backward-scan (even)
columns are registered to the forward-scan (odd) columns, so the **even** image
is the moving one and the **odd** image the fixed one.

The repositories' file layout could not be inspected when this adapter was
written. Every assumption about it lives in :data:`LAYOUT`; when a snapshot
does not fit, preparation stops with a message listing what it found (folders,
file counts, extensions), and ``moving_dir`` / ``fixed_dir`` can name the role
folders explicitly. Assumed layout: per split a folder (``train``, ``val``...)
holding one folder of moving images and one of fixed images (``even``/``odd``,
``moving``/``fixed``...), images paired by their path relative to the role
folder; the role folders may also sit above the split folders.

Temporal order (for TNCC/TNCG): ``sequence`` is the file's sub-folder plus the
file stem without its last number, ``frame`` is that last number
(``seq03/0005.png`` and ``seq03_0005.png`` are both sequence ``seq03``, frame
5). Rows of a split are written sorted by (sequence, frame), so consecutive rows
of a sequence are consecutive frames.

Download: ``huggingface_hub.snapshot_download`` at ``revision``, resolved first
to a commit so the whole snapshot comes from one commit; the commit is recorded
in ``dataset.json``. The Hub writes each file under a temporary name and renames
it when complete, and a rerun resumes; this adapter trusts a snapshot only after
``snapshot_download`` returned and it wrote ``.pcreg-complete``.
"""

from __future__ import annotations

import os
import re
import warnings
from collections import Counter
from pathlib import Path

from pcreg.datasets.folder import IMAGE_EXTS, fit_to_shape, natural_key, read_gray
from pcreg.datasets.format import SPLITS, DatasetWriter, check_input_outside
from pcreg.errors import UserError

TYPE = "orpam"
#: No landmarks: TRE and the FIRE success curves do not apply (no figure is drawn for them).
LANDMARKS = False

REPOS = {"4k": "chengliuyan/OR-PAM-Reg-4K", "temporal-26k": "chengliuyan/OR-PAM-Reg-Temporal-26K"}
#: Split sizes published with the datasets (checked after preparation; a difference only warns).
EXPECTED_SIZES = {"4k": {"train": 3396, "val": 420, "test": 432},
                  "temporal-26k": {"train": 21240, "val": 2596, "test": 2714}}

#: Every assumption about the repositories' layout (names compared case-insensitively).
LAYOUT = {
    "split_dirs": {"train": ("train", "training"), "val": ("val", "valid", "validation"),
                   "test": ("test", "testing")},
    "moving_dirs": ("even", "moving", "backward", "bwd", "source", "src", "input"),
    "fixed_dirs": ("odd", "fixed", "forward", "fwd", "target", "tgt", "reference", "ref"),
    "image_exts": IMAGE_EXTS,
    "max_depth": 3,  # how deep below the snapshot root the split/role folders are searched for
}

PARAMS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "variant": {"type": "string", "enum": sorted(REPOS), "default": "4k",
                    "description": "4k: OR-PAM-Reg-4K; temporal-26k: OR-PAM-Reg-Temporal-26K (fills sequence/frame)."},
        "repo_id": {"type": "string", "default": "", "description": "Override the Hugging Face dataset id."},
        "revision": {"type": "string", "default": "main",
                     "description": "Branch, tag or commit to download; give a 40-hex commit to pin the data."},
        "endpoint": {"type": "string", "default": "",
                     "description": "Hub base URL (default: huggingface_hub's, i.e. HF_ENDPOINT or huggingface.co)."},
        "cache_dir": {"type": "string", "default": "data/downloads",
                      "description": "The snapshot is stored in <cache_dir>/<repo name>@<commit>/."},
        "source_dir": {"type": "string", "default": "",
                       "description": "A local copy of the dataset repository to use instead of downloading."},
        "moving_dir": {"type": "string", "default": "", "description": "Name of the moving-image folders (auto)."},
        "fixed_dir": {"type": "string", "default": "", "description": "Name of the fixed-image folders (auto)."},
        "image_size": {"type": "array", "items": {"type": "integer", "minimum": 8}, "minItems": 2, "maxItems": 2,
                       "default": [256, 256], "description": "[H, W] for resize: resize or pad."},
        "resize": {"type": "string", "enum": ["none", "resize", "pad"], "default": "none",
                   "description": "Keep the native size (all images must share it), resample, or zero-pad."},
        "color": {"type": "string", "enum": ["luma", "red", "green", "blue"], "default": "luma",
                  "description": "RGB to gray (OR-PAM maximum-amplitude projections are usually gray already)."},
    },
}

_COMMIT = re.compile(r"^[0-9a-f]{40}$")


# ---------------------------------------------------------------------------------------------- download
def _hub_url(endpoint: str, repo_id: str, revision: str) -> str:
    from huggingface_hub import constants

    return f"{(endpoint or constants.ENDPOINT).rstrip('/')}/datasets/{repo_id}/tree/{revision}"


def download_snapshot(params: dict) -> tuple[Path, str]:
    """Local snapshot directory and its commit: ``source_dir``, a completed earlier download, or a new one."""
    repo_id = params["repo_id"] or REPOS[params["variant"]]
    if params["source_dir"]:
        src = Path(params["source_dir"]).expanduser()
        if not src.is_dir():
            raise UserError(f"orpam: source_dir {src} is not a directory")
        return src, f"local copy {src.resolve()}"
    revision = params["revision"]
    cache = Path(params["cache_dir"])
    name = repo_id.split("/")[-1]
    if _COMMIT.match(revision):
        done = cache / f"{name}@{revision}"
        if (done / ".pcreg-complete").is_file():
            return done, revision
    url = _hub_url(params["endpoint"], repo_id, revision)
    manual = cache / f"{name}@<commit>"
    hint = (f"; download the dataset repository by other means (e.g. git clone of {url.split('/tree/')[0]} at "
            f"revision {revision}) and set params.source_dir to it, or place it at {manual} with a "
            ".pcreg-complete file")
    if os.environ.get("PCREG_OFFLINE", "").strip().lower() in {"1", "true", "yes"}:
        raise UserError(f"orpam: {repo_id} is not available offline (PCREG_OFFLINE is set): it comes from {url}"
                        + hint)
    from huggingface_hub import HfApi, snapshot_download

    try:
        commit = HfApi(endpoint=params["endpoint"] or None).dataset_info(repo_id, revision=revision).sha
        if not _COMMIT.match(revision):
            warnings.warn(f"orpam: revision {revision!r} of {repo_id} is not pinned; it resolved to commit {commit}. "
                          f"Set revision: {commit} to pin the data", stacklevel=2)
        target = cache / f"{name}@{commit}"
        if not (target / ".pcreg-complete").is_file():
            snapshot_download(repo_id, repo_type="dataset", revision=commit, local_dir=target,
                              endpoint=params["endpoint"] or None)
    except Exception as exc:  # noqa: BLE001 - the Hub raises many types (HTTP, network, repo/revision not found)
        text = " ".join(str(exc).split())[:300]
        raise UserError(f"orpam: could not download {url}: {exc.__class__.__name__}: {text}" + hint) from None
    (target / ".pcreg-complete").write_text(commit + "\n")
    return target, commit


# ---------------------------------------------------------------------------------------------- layout
def _match(name: str, candidates: tuple[str, ...] | list[str]) -> bool:
    return name.lower() in {c.lower() for c in candidates}


def _images_under(folder: Path) -> dict[str, Path]:
    """Images below ``folder`` by relative path without extension (``seq03/0005``)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix.lower() in LAYOUT["image_exts"]:
            out[p.relative_to(folder).with_suffix("").as_posix()] = p
    return out


def _summary(root: Path, limit: int = 12) -> str:
    """What a snapshot holds: folders (two levels) with file counts by extension."""
    rows = []
    for d in sorted([root] + [p for p in root.rglob("*") if p.is_dir() and len(p.relative_to(root).parts) <= 2
                              and not any(part.startswith(".") for part in p.relative_to(root).parts)]):
        exts = Counter(p.suffix.lower() or "(none)" for p in d.iterdir() if p.is_file())
        if exts or d == root:
            rel = d.relative_to(root).as_posix() if d != root else "."
            rows.append(f"{rel}/: " + (", ".join(f"{n} {e}" for e, n in exts.most_common(4)) or "no files"))
    more = f" (+{len(rows) - limit} more folders)" if len(rows) > limit else ""
    return "; ".join(rows[:limit]) + more


def find_layout(root: Path, params: dict) -> dict[str, tuple[Path, Path]]:
    """Split -> (moving folder, fixed folder), by :data:`LAYOUT`; a clear error that lists what was found."""
    moving_names = (params["moving_dir"],) if params.get("moving_dir") else LAYOUT["moving_dirs"]
    fixed_names = (params["fixed_dir"],) if params.get("fixed_dir") else LAYOUT["fixed_dirs"]
    dirs = [p for p in root.rglob("*") if p.is_dir() and len(p.relative_to(root).parts) <= LAYOUT["max_depth"]
            and not any(part.startswith(".") for part in p.relative_to(root).parts)]
    found: dict[str, tuple[Path, Path]] = {}
    for split, names in LAYOUT["split_dirs"].items():
        for d in sorted(dirs):
            if not _match(d.name, names):
                continue
            # <split>/<role>/...
            kids = [k for k in d.iterdir() if k.is_dir()]
            mov = [k for k in kids if _match(k.name, moving_names)]
            fix = [k for k in kids if _match(k.name, fixed_names)]
            # <role>/<split>/...
            if not (mov and fix) and _match(d.parent.name, moving_names):
                sib = [s / d.name for s in d.parent.parent.iterdir() if s.is_dir() and _match(s.name, fixed_names)]
                mov, fix = [d], [s for s in sib if s.is_dir()]
            elif not (mov and fix) and _match(d.parent.name, fixed_names):
                sib = [s / d.name for s in d.parent.parent.iterdir() if s.is_dir() and _match(s.name, moving_names)]
                mov, fix = [s for s in sib if s.is_dir()], [d]
            if mov and fix:
                found[split] = (mov[0], fix[0])
                break
    if not found:
        parquet = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.parquet"))[:3]
        note = (f" It holds parquet files ({', '.join(parquet)}...), which this adapter does not read yet."
                if parquet else "")
        raise UserError(
            f"orpam: the snapshot at {root} does not match the expected layout (split folders "
            f"{'/'.join(n for v in LAYOUT['split_dirs'].values() for n in v[:1])} each with a moving folder "
            f"({'/'.join(moving_names)}) and a fixed folder ({'/'.join(fixed_names)}); see LAYOUT in "
            f"pcreg/datasets/orpam.py, or set params.moving_dir / fixed_dir).{note} Found: {_summary(root)}"
        )
    return found


def sequence_and_frame(rel: str) -> tuple[str, int | None]:
    """``seq03/0005`` or ``seq03_0005`` -> (``seq03``, 5); a name without a number -> (name, None)."""
    parent, _, stem = rel.rpartition("/")
    m = re.search(r"(\d+)(?!.*\d)", stem)
    if not m:
        return rel, None
    prefix = stem[: m.start()].rstrip("_-. ")
    seq = "/".join(p for p in (parent, prefix) if p)
    return seq, int(m.group(1))


def list_pairs(root: Path, params: dict) -> dict[str, list[tuple[str, Path, Path, str, int | None]]]:
    """Split -> rows ``(pair_id, moving, fixed, sequence, frame)`` in temporal order; unmatched files fail."""
    temporal = params["variant"] == "temporal-26k"
    out = {}
    for split, (mdir, fdir) in find_layout(root, params).items():
        mov, fix = _images_under(mdir), _images_under(fdir)
        only_m, only_f = sorted(set(mov) - set(fix)), sorted(set(fix) - set(mov))
        if only_m or only_f:
            raise UserError(f"orpam: {split}: {len(only_m)} moving images without a fixed one "
                            f"({', '.join(only_m[:5])}) and {len(only_f)} fixed without a moving one "
                            f"({', '.join(only_f[:5])}) in {mdir} / {fdir}")
        if not mov:
            raise UserError(f"orpam: {split}: no images in {mdir} (extensions {', '.join(LAYOUT['image_exts'])}); "
                            f"found: {_summary(mdir.parent)}")
        rows = []
        for rel in mov:
            seq, frame = sequence_and_frame(rel)
            rows.append((rel, mov[rel], fix[rel], seq if temporal else "", frame if temporal else None))
        rows.sort(key=lambda r: (natural_key(r[3]), r[4] if r[4] is not None else -1, natural_key(r[0])))
        out[split] = rows
    ids = Counter(r[0] for rows in out.values() for r in rows)
    if any(n > 1 for n in ids.values()):  # the same file name in two splits: make pair ids unique
        out = {s: [(f"{s}/{r[0]}",) + r[1:] for r in rows] for s, rows in out.items()}
    return out


def prepare(root: Path, name: str, params: dict, seed: int) -> Path:
    """Download (or take) the snapshot, map it by :data:`LAYOUT`, and write the shared format at ``root``."""
    snapshot, commit = download_snapshot(params)
    check_input_outside(snapshot, root, "snapshot folder")
    pairs = list_pairs(snapshot, params)
    counts = {s: len(pairs.get(s, [])) for s in SPLITS}
    expected = EXPECTED_SIZES[params["variant"]]
    if not params["repo_id"] and counts != expected:
        warnings.warn(f"orpam {params['variant']}: split sizes {counts} differ from the published {expected}",
                      stacklevel=2)
    first = next(iter(next(iter(pairs.values()))))
    if params["resize"] == "none":
        shape = read_gray(first[2], params["color"]).shape
    else:
        shape = tuple(params["image_size"])
    spec = {"repo_id": params["repo_id"] or REPOS[params["variant"]], "revision": params["revision"],
            "commit": commit, "variant": params["variant"], "moving": "even (backward scan)",
            "fixed": "odd (forward scan)", "resize": params["resize"]}
    with DatasetWriter(root, name=name, dataset_type=TYPE, image_shape=shape, split_sizes=counts, has_field=False,
                       spec=spec) as writer:
        for split in SPLITS:
            for pid, mpath, fpath, seq, frame in pairs.get(split, []):
                mov, fix = read_gray(mpath, params["color"]), read_gray(fpath, params["color"])
                if mov.shape != fix.shape:
                    raise UserError(f"orpam: size mismatch in pair {pid}: {mpath} is {mov.shape}, {fpath} is "
                                    f"{fix.shape}")
                if params["resize"] == "none" and mov.shape != shape:
                    raise UserError(f"orpam: {mpath} is {mov.shape}, other images {shape}; set resize: resize or pad")
                mov, _ = fit_to_shape(mov, shape, params["resize"], str(mpath))
                fix, _ = fit_to_shape(fix, shape, params["resize"], str(fpath))
                writer.add(split, pid, mov, fix, sequence=seq, frame=frame)
    return Path(root)

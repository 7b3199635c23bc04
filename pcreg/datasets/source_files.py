"""What a prepared dataset is made from on the user's disk, so the workflow re-prepares when it changes.

Datasets read from a user's folder (type ``folder``) depend on that folder's
files, not only on the config: replacing, fixing, adding or removing an image
must re-prepare the dataset and rerun everything downstream. The workflow's
``prepare`` rule lists :func:`source_files` as its input (a new, removed or
newer file triggers a rerun) and passes :func:`fingerprint` as a parameter (a
changed name, size or modification time triggers one even when the new file's
time is older, e.g. a file restored with ``cp -p``). Both only stat files.
Symlinked folders are followed (``moving/`` may be a link to the images' real
place), and a file is stated through its links, so changing the target counts.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

#: Dataset types whose content is a folder of the user's files, and the parameter naming it.
FOLDER_TYPES: dict[str, str] = {"folder": "path"}


def source_files(spec: dict) -> list[Path]:
    """Every regular, non-hidden file under a folder dataset's directory (sorted); [] for other types."""
    key = FOLDER_TYPES.get(spec.get("type", ""))
    folder = (spec.get("params") or {}).get(key, "") if key else ""
    if not folder:
        return []
    return folder_files(Path(folder).expanduser())


def folder_files(root: Path) -> list[Path]:
    """Every regular, non-hidden file under ``root``, following symlinked folders (sorted; [] if no folder)."""
    if not root.is_dir():
        return []  # the job itself reports the missing folder in one line
    found: list[Path] = []
    seen: set[tuple[int, int]] = set()
    for top, dirs, files in os.walk(root, followlinks=True):
        st = os.stat(top)
        if (st.st_dev, st.st_ino) in seen:  # a link back up the tree: listed once
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(top) / f for f in files if not f.startswith(".") and (Path(top) / f).is_file()]
    return sorted(found)


def fingerprint(files: list[Path]) -> str:
    """SHA-256 of the files' names, sizes and modification times (``""`` for no files)."""
    if not files:
        return ""
    h = hashlib.sha256()
    for p in files:
        st = p.stat()
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()

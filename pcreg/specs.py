"""Spec files: how the workflow hands a job its inputs that are not data (a run's config, a run list).

The Snakefile writes each spec (a method run's config section, a dataset's run
list, a dataset's spec, the validated config) to a small JSON file when it
parses the config, and a job reads the file it is given (``--run FILE``,
``--runs FILE``, ...) instead of JSON on its command line.

A spec's file name carries a hash of its content (:func:`write_named_spec`):
``runs/voxelmorph-3f2a....json``. A file, once written, never changes, so a
second invocation with another config (a dry run, a run refused by the lock, a
concurrent run) writes files of its own and cannot change the parameters of a
run in progress; and a changed config gives a job a new input file, which
Snakemake reruns exactly as it would for changed rule parameters.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from pcreg.errors import UserError


def write_spec(path: str | Path, obj: Any) -> str:
    """Write ``obj`` as JSON to ``path`` unless the file already holds exactly that; return the path."""
    path = Path(path)
    text = spec_text(obj)
    if not (path.is_file() and path.read_text() == text):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(path)  # atomic: a job never reads half a spec
    return str(path)


def spec_text(obj: Any) -> str:
    """The JSON text a spec file holds (keys sorted, so equal specs give equal files)."""
    return json.dumps(obj, indent=1, sort_keys=True) + "\n"


def write_named_spec(folder: str | Path, name: str, obj: Any) -> str:
    """Write ``obj`` to ``<folder>/<name>-<content hash>.json`` (once: it never changes after); return the path."""
    digest = hashlib.sha256(spec_text(obj).encode()).hexdigest()[:16]
    return write_spec(Path(folder) / f"{name}-{digest}.json", obj)


def read_spec(path: str | Path) -> Any:
    """The JSON in spec file ``path``; one clear :class:`UserError` if it is missing or not JSON."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"spec file not found: {path}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"invalid JSON in spec file {path}: {exc}") from None

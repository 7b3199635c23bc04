"""Spec files: how the workflow hands a job its inputs that are not data (a run's config, a run list).

The Snakefile writes each spec (a method run's config section, a dataset's run
list, a dataset's spec, the validated config) to a small JSON file when it
parses the config, and a job reads the file it is given (``--run FILE``,
``--runs FILE``, ...) instead of JSON on its command line. A file is rewritten
only when its content changes, so its modification time tells Snakemake which
jobs a config change affects, exactly as rule parameters would.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pcreg.errors import UserError


def write_spec(path: str | Path, obj: Any) -> str:
    """Write ``obj`` as JSON to ``path`` unless the file already holds exactly that; return the path."""
    path = Path(path)
    text = json.dumps(obj, indent=1, sort_keys=True) + "\n"
    if not (path.is_file() and path.read_text() == text):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(path)  # atomic: a job never reads half a spec
    return str(path)


def read_spec(path: str | Path) -> Any:
    """The JSON in spec file ``path``; one clear :class:`UserError` if it is missing or not JSON."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"spec file not found: {path}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"invalid JSON in spec file {path}: {exc}") from None

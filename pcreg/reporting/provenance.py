"""Provenance of methods from outside the repository, for ``results/manifest.json``.

A built-in method is pinned by the suite's git commit; a method from another
package is not, and a precomputed folder even less. For each such run the
manifest records where its class came from (module file, distribution and
version) or, for ``precomputed``, a digest of the folder's files.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import inspect
from pathlib import Path
from typing import Any


def _distribution(module: str) -> dict[str, str | None]:
    top = module.split(".")[0]
    names = importlib.metadata.packages_distributions().get(top, [])
    if not names:
        return {"distribution": None, "version": None}
    return {"distribution": names[0], "version": importlib.metadata.version(names[0])}


def folder_digest(root: Path) -> dict[str, Any]:
    """Number of files and a SHA-256 over their relative paths and contents (sorted), or ``missing``."""
    if not root.is_dir():
        return {"path": str(root), "missing": True}
    digest = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.is_file())
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return {"path": str(root), "files": len(files), "sha256": digest.hexdigest()}


def external_methods(config: dict[str, Any]) -> dict[str, Any]:
    """Per method run not implemented by a module of ``baselines/``: its origin, or its folder's digest."""
    from pcreg.methods.registry import get_method_class

    out: dict[str, Any] = {}
    for run, spec in config.get("methods", {}).items():
        cls = get_method_class(spec.get("method", run))
        if cls.__module__ == "baselines.precomputed":
            out[run] = {"precomputed": folder_digest(Path(spec.get("params", {}).get("path", "")))}
        elif not cls.__module__.startswith("baselines."):
            out[run] = {"class": f"{cls.__module__}:{cls.__qualname__}", "file": inspect.getsourcefile(cls),
                        **_distribution(cls.__module__)}
    return out

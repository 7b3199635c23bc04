"""Fingerprints of the code a workflow step runs, so that results follow the code.

Snakemake reruns a job when its parameters change, but not when a Python module
that its command imports changes: after an edit of the scoring code every table
would stay "up to date", computed by the old code. The workflow therefore gives
each rule a ``code`` parameter: :func:`code_fingerprint` of the source files the
step runs (by stage, :data:`STAGES`, plus a method's own module for the steps
that run a method) and of the key libraries' versions. A change in any of them
reruns exactly the jobs of the steps that use it, and the manifest records the
fingerprint of every result.

Comments, docstrings and formatting do not count: a Python file is fingerprinted
by its syntax tree without docstrings (:func:`python_digest`), so a documentation
edit reruns nothing, while any change of code does.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

#: The checkout: ``pcreg/`` and ``baselines/`` lie here.
ROOT = Path(__file__).resolve().parent.parent

#: Libraries whose version changes every result they take part in (absent ones count as absent).
KEY_LIBRARIES = (
    "numpy", "scipy", "torch", "scikit-image", "SimpleITK", "antspyx", "opencv-python-headless", "pandas",
    "matplotlib", "voxelmorph", "neurite", "itk-elastix",
)

#: Every job runs through the command line and these core utilities.
_CORE = ("pcreg/__init__.py", "pcreg/__main__.py", "pcreg/cli.py", "pcreg/errors.py", "pcreg/field_conventions.py",
         "pcreg/image_io.py", "pcreg/metrics.py", "pcreg/plugins.py", "pcreg/schema.py", "pcreg/specs.py",
         "pcreg/streaming.py", "pcreg/threads.py", "pcreg/warp.py")

#: Preparing a dataset (a download, for the real ones) runs the dataset types and these utilities only: an edit
#: of the command line or the metrics does not re-prepare.
_PREPARE = ("pcreg/errors.py", "pcreg/field_conventions.py", "pcreg/image_io.py", "pcreg/plugins.py",
            "pcreg/schema.py", "pcreg/streaming.py", "pcreg/threads.py", "pcreg/warp.py", "pcreg/datasets")

#: Stage -> the package files and folders (relative to :data:`ROOT`) whose code produces its outputs.
STAGES: dict[str, tuple[str, ...]] = {
    "prepare": _PREPARE,
    # fit/register/audit also hash the method's own module (method_sources)
    "method": (*_CORE, "pcreg/datasets", "pcreg/methods"),
    "evaluate": (*_CORE, "pcreg/datasets", "pcreg/evaluation", "pcreg/methods/runner.py"),
    "audit": (*_CORE, "pcreg/datasets", "pcreg/methods", "pcreg/evaluation"),
    "report": (*_CORE, "pcreg/datasets", "pcreg/evaluation", "pcreg/reporting", "pcreg/data"),
}
#: File types hashed inside a folder of :data:`STAGES` (code and the data tables it reads).
_SUFFIXES = (".py", ".csv", ".json", ".yaml")


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return tree


def python_digest(text: str) -> str:
    """Digest of Python source by its syntax tree without docstrings (the text itself if it does not parse)."""
    try:
        canonical = ast.dump(_strip_docstrings(ast.parse(text)))
    except SyntaxError:
        canonical = text
    return hashlib.sha256(canonical.encode()).hexdigest()


@lru_cache(maxsize=4096)
def _file_digest(path: Path, size: int, mtime_ns: int) -> str:  # size/mtime: the cache key of one version
    data = path.read_bytes()
    if path.suffix == ".py":
        return python_digest(data.decode("utf-8", errors="replace"))
    return hashlib.sha256(data).hexdigest()


def _files(entry: Path) -> list[Path]:
    if entry.is_file():
        return [entry]
    if entry.is_dir():
        return sorted(p for p in entry.rglob("*") if p.suffix in _SUFFIXES and p.is_file()
                      and "__pycache__" not in p.parts)
    return []


def library_versions(names: Iterable[str] = KEY_LIBRARIES) -> dict[str, str | None]:
    """Installed version of each library (``None`` where it is not installed)."""
    return dict(_versions(tuple(names)))


@lru_cache(maxsize=16)
def _versions(names: tuple[str, ...]) -> tuple[tuple[str, str | None], ...]:
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return tuple(versions.items())


def files_fingerprint(entries: Iterable[str | Path], root: Path = ROOT) -> str:
    """Digest of the code in ``entries`` (files, or folders searched for code and data tables) under ``root``."""
    h = hashlib.sha256()
    for entry in entries:
        path = Path(entry) if Path(entry).is_absolute() else root / entry
        for f in _files(path):
            st = f.stat()
            name = f.relative_to(root) if f.is_relative_to(root) else f
            h.update(f"{name}\0{_file_digest(f, st.st_size, st.st_mtime_ns)}\n".encode())
    return h.hexdigest()[:16]


def code_fingerprint(stage: str, extra: Iterable[str | Path] = (), root: Path = ROOT) -> str:
    """Fingerprint of ``stage``'s code (:data:`STAGES`), the ``extra`` files (a method's module) and the key
    libraries' versions: equal exactly when a rerun of the step would run the same code."""
    h = hashlib.sha256()
    h.update(files_fingerprint((*STAGES[stage], *extra), root).encode())
    h.update(repr(sorted(library_versions().items())).encode())
    return f"{stage}:{h.hexdigest()[:16]}"


def module_sources(source_file: str | Path, root: Path = ROOT) -> list[Path]:
    """The files that make up a method whose class is defined in ``source_file``.

    A module of ``baselines/`` with the private helpers it may use (``baselines/_*.py``); a module inside a
    package of the suite (``pcreg/net/``) with its whole package; a module from elsewhere (a user's package)
    with the other Python files of its folder.
    """
    path = Path(source_file).resolve()
    baselines = root / "baselines"
    if path.parent == baselines:
        return [path, *sorted(baselines.glob("_*.py"))]
    if path.is_relative_to(root / "pcreg"):
        return [path.parent]
    return sorted(path.parent.glob("*.py"))


def method_code(method_class: type, stage: str = "method") -> str:
    """The code fingerprint of the steps that run a method (``stage`` "method": fit and register; "audit"): the
    stage's code, the method's own module (:func:`module_sources`) and the key libraries' versions. The workflow's
    ``code`` parameter of those rules, and part of a training checkpoint's fingerprint."""
    import inspect

    return code_fingerprint(stage, module_sources(inspect.getsourcefile(method_class)))


def jobs_run_this_checkout(root: str | Path = ROOT) -> None:
    """Put ``root`` first on ``PYTHONPATH`` of this process, so the jobs it starts import this checkout's code.

    The fingerprints above describe the checkout the Snakefile lies in; a job started from another working
    directory (``--directory``) would otherwise import whatever ``pcreg`` is installed.
    """
    import os

    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(root)]
    os.environ["PYTHONPATH"] = os.pathsep.join([str(root), *rest])

"""Registration methods, one module each, found by name.

A method named ``foo`` lives in ``baselines/foo.py`` and defines a
:class:`~baselines.base.Method` subclass with ``name = "foo"``. Adding a method
is that one file plus an entry under ``methods:`` in the config.

Methods from outside the repository resolve through the same function,
:func:`get_method_class`: ``"package.module:ClassName"`` (an import path), or a
name declared by an installed package in the entry-point group
:data:`ENTRY_POINT_GROUP` (``[project.entry-points."pcreg_bench.methods"]``).
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

from baselines.base import Method, PairResult, Registration, run_method, run_method_batch
from pcreg.errors import UserError

__all__ = [
    "Method", "PairResult", "Registration", "run_method", "run_method_batch",
    "available_methods", "get_method_class", "build_method", "ENTRY_POINT_GROUP",
]

_NOT_METHODS = {"base", "learned"}  # learned.py: base class of trainable methods
#: Entry-point group in which installed packages declare methods (name = "module:Class").
ENTRY_POINT_GROUP = "pcreg_bench.methods"


def available_methods() -> list[str]:
    """Names of the method modules in this package."""
    here = Path(__file__).parent
    return sorted(
        m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_") and m.name not in _NOT_METHODS
    )


def get_method_class(name: str) -> type[Method]:
    """The method class called ``name``: a module of this package, ``"module:Class"``, or an entry point.

    Raises a one-line :class:`UserError` when nothing is found or what is found is not a :class:`Method`.
    """
    if ":" not in name and name in available_methods():
        module = importlib.import_module(f"baselines.{name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, Method) and obj is not Method and obj.name == name:
                return obj
        raise UserError(f"baselines/{name}.py defines no Method subclass with name = {name!r}")
    target = name
    if ":" not in name:
        from importlib.metadata import entry_points

        found = [ep.value for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
        if not found:
            raise UserError(f"unknown method {name!r}; available methods: {', '.join(available_methods())}; "
                            f"or an import path 'module:Class', or an installed {ENTRY_POINT_GROUP!r} entry point")
        target = found[0]
    module_name, _, attr = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:  # an import error of any kind inside user code: one line, no traceback
        raise UserError(f"cannot import method {target!r}: {type(exc).__name__}: {exc}") from None
    if not (isinstance(obj, type) and issubclass(obj, Method)):
        raise UserError(f"{target!r} is not a subclass of baselines.base.Method")
    if not isinstance(obj.PARAMS_SCHEMA, dict) or not callable(getattr(obj, "register", None)) \
            or obj.register is Method.register:
        raise UserError(f"{target!r} does not implement the Method interface (register, PARAMS_SCHEMA)")
    return obj


def build_method(name: str, params: dict[str, Any] | None = None, **kwargs: Any) -> Method:
    """Instantiate method ``name`` with ``params`` (defaults filled and validated from its schema)."""
    from pcreg.config import validate_params

    cls = get_method_class(name)
    return cls(validate_params(cls, params or {}, where=f"method {name!r}"), **kwargs)

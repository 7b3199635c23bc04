"""Registration methods, one module each, found by name.

A method named ``foo`` lives in ``baselines/foo.py`` and defines a
:class:`~baselines.base.Method` subclass with ``name = "foo"``. Adding a method
is that one file plus an entry under ``methods:`` in the config.
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
    "available_methods", "get_method_class", "build_method",
]

_NOT_METHODS = {"base", "learned"}  # learned.py: base class of trainable methods


def available_methods() -> list[str]:
    """Names of the method modules in this package."""
    here = Path(__file__).parent
    return sorted(
        m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_") and m.name not in _NOT_METHODS
    )


def get_method_class(name: str) -> type[Method]:
    """The method class called ``name``; a clear :class:`UserError` if there is none."""
    if name not in available_methods():
        raise UserError(f"unknown method {name!r}; available methods: {', '.join(available_methods())}")
    module = importlib.import_module(f"baselines.{name}")
    for obj in vars(module).values():
        if isinstance(obj, type) and issubclass(obj, Method) and obj is not Method and obj.name == name:
            return obj
    raise UserError(f"baselines/{name}.py defines no Method subclass with name = {name!r}")


def build_method(name: str, params: dict[str, Any] | None = None, **kwargs: Any) -> Method:
    """Instantiate method ``name`` with ``params`` (defaults filled and validated from its schema)."""
    from pcreg.config import validate_params

    cls = get_method_class(name)
    return cls(validate_params(cls, params or {}, where=f"method {name!r}"), **kwargs)

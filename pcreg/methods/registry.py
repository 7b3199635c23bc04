"""The one registry of registration methods: plug-ins found by name.

A method named ``foo`` lives in ``baselines/foo.py`` (or is PCReg-Net, in
:mod:`pcreg.net.method`) and defines a :class:`~pcreg.methods.base.Method`
subclass with ``name = "foo"``. Adding a method is that one file plus an entry
under ``methods:`` in the config. This is the only place the core loads a
plug-in module, by name through :mod:`importlib` (see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from typing import Any

from pcreg.errors import UserError
from pcreg.methods.base import Method, PairResult, Registration, run_method, run_method_batch

__all__ = [
    "Method", "PairResult", "Registration", "run_method", "run_method_batch",
    "available_methods", "get_method_class", "build_method",
]

#: Package whose public modules are methods, one each (modules starting with "_" are private helpers).
PLUGIN_PACKAGE = "baselines"
#: Methods that live outside PLUGIN_PACKAGE: name -> module.
EXTRA_METHODS: dict[str, str] = {"pcreg_net": "pcreg.net.method"}


def _method_modules() -> dict[str, str]:
    """Method name -> module path, for every method the registry knows."""
    spec = importlib.util.find_spec(PLUGIN_PACKAGE)
    where = list(spec.submodule_search_locations or []) if spec else []
    found = {m.name: f"{PLUGIN_PACKAGE}.{m.name}" for m in pkgutil.iter_modules(where) if not m.name.startswith("_")}
    return {**found, **EXTRA_METHODS}


def available_methods() -> list[str]:
    """Names of the registered methods."""
    return sorted(_method_modules())


def get_method_class(name: str) -> type[Method]:
    """The method class called ``name``; a clear :class:`UserError` if there is none."""
    if name not in available_methods():
        raise UserError(f"unknown method {name!r}; available methods: {', '.join(available_methods())}")
    module = importlib.import_module(_method_modules()[name])
    for obj in vars(module).values():
        if isinstance(obj, type) and issubclass(obj, Method) and obj is not Method and obj.name == name:
            return obj
    raise UserError(f"{_method_modules()[name]} defines no Method subclass with name = {name!r}")


def build_method(name: str, params: dict[str, Any] | None = None, **kwargs: Any) -> Method:
    """Instantiate method ``name`` with ``params`` (defaults filled and validated from its schema)."""
    from pcreg.schema import validate_params

    cls = get_method_class(name)
    return cls(validate_params(cls, params or {}, where=f"method {name!r}"), **kwargs)

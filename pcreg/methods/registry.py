"""The one registry of registration methods: plug-ins found by name.

A method named ``foo`` lives in ``baselines/foo.py`` (or is PCReg-Net, in
:mod:`pcreg.net.method`) and defines a :class:`~pcreg.methods.base.Method`
subclass with ``name = "foo"``. Adding a method is that one file plus an entry
under ``methods:`` in the config. A method outside this repository is named by
import path (``method: "mypkg.mod:MyMethod"``) or installed under the entry-point
group ``pcreg_bench.methods`` (:mod:`pcreg.plugins`). This is the only place the
core loads a method module, by name (see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from pcreg.errors import UserError
from pcreg.methods.base import Method, PairResult, Registration, run_method, run_method_batch
from pcreg.plugins import PluginKind
from pcreg.schema import validate_params

__all__ = [
    "Method", "PairResult", "Registration", "run_method", "run_method_batch",
    "available_methods", "get_method_class", "build_method",
]


def _pick(module: ModuleType, name: str) -> type[Method]:
    """The Method subclass called ``name`` in a built-in method module."""
    for obj in vars(module).values():
        if isinstance(obj, type) and issubclass(obj, Method) and obj is not Method and obj.name == name:
            return obj
    raise UserError(f"{module.__name__} defines no Method subclass with name = {name!r}")


def _check(obj: Any) -> str | None:
    if not (isinstance(obj, type) and issubclass(obj, Method)):
        return f"{obj!r} is not a subclass of pcreg.methods.base.Method"
    if obj is Method or obj.register is Method.register:
        return f"{obj!r} does not implement the Method interface (no register method)"
    return None


#: Methods: public modules of ``baselines/`` (one per method), PCReg-Net, import paths and entry points.
METHODS = PluginKind(
    kind="method", package="baselines", group="pcreg_bench.methods", pick=_pick, check=_check,
    extra={"pcreg_net": "pcreg.net.method"},
)


def available_methods() -> list[str]:
    """Names of the registered methods (built-in and installed)."""
    return METHODS.available()


def get_method_class(name: str) -> type[Method]:
    """The method class called ``name`` (a built-in name, an entry point or ``"pkg.mod:Class"``).

    Anything else is one clear :class:`UserError`.
    """
    return METHODS.resolve(name)


def build_method(name: str, params: dict[str, Any] | None = None, **kwargs: Any) -> Method:
    """Instantiate method ``name`` with ``params`` (defaults filled and validated from its schema)."""
    cls = get_method_class(name)
    return cls(validate_params(cls, params or {}, where=f"method {name!r}"), **kwargs)

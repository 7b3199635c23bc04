"""The one plug-in mechanism, shared by methods and dataset types.

A plug-in of a kind is found by its config name in this order:

1. an import path ``"pkg.mod:Attr"`` (``"pkg.mod:"`` names the module itself);
2. an installed entry point of the kind's group (``pcreg_bench.methods``,
   ``pcreg_bench.datasets``), so an installed package can add plug-ins;
3. a built-in module: name ``foo-bar`` is module ``<package>.foo_bar``, found by
   scanning the kind's package (``baselines``, ``pcreg.datasets``), plus the
   kind's ``extra`` modules (PCReg-Net lives in :mod:`pcreg.net.method`).

Every plug-in declares ``PARAMS_SCHEMA`` (JSON schema of its ``params``,
validated by :mod:`pcreg.schema`) and is checked against the kind's interface
when it is loaded: a bad name or a non-conforming object is one :class:`UserError`.
This is a core utility: it knows no kind; :mod:`pcreg.methods.registry` and
:mod:`pcreg.datasets` define theirs.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from pcreg.errors import UserError


@dataclass(frozen=True)
class PluginKind:
    """One kind of plug-in and where its members are found."""

    kind: str  #: "method" or "dataset type", used in messages
    package: str  #: package scanned for built-in plug-in modules
    group: str  #: entry-point group of installed plug-ins
    pick: Callable[[ModuleType, str], Any]  #: the plug-in object of a built-in module (or raise UserError)
    check: Callable[[Any], str | None]  #: why an object is not a plug-in of this kind, None when it is
    not_plugins: frozenset[str] = frozenset()  #: public modules of ``package`` that are not plug-ins
    extra: dict[str, str] = field(default_factory=dict)  #: name -> module, plug-ins outside ``package``
    dashed_names: bool = False  #: module foo_bar is named foo-bar (dataset types: fire-reg-256)

    def builtin_modules(self) -> dict[str, str]:
        """Built-in plug-in name -> module path."""
        spec = importlib.util.find_spec(self.package)
        where = list(spec.submodule_search_locations or []) if spec else []
        found = {
            (m.name.replace("_", "-") if self.dashed_names else m.name): f"{self.package}.{m.name}"
            for m in pkgutil.iter_modules(where)
            if not m.name.startswith("_") and m.name not in self.not_plugins
        }
        return {**found, **self.extra}

    def entry_points(self) -> dict[str, importlib.metadata.EntryPoint]:
        """Installed plug-ins of this kind, by entry-point name."""
        return {ep.name: ep for ep in importlib.metadata.entry_points(group=self.group)}

    def available(self) -> list[str]:
        """Names of every built-in and installed plug-in of this kind."""
        return sorted({*self.builtin_modules(), *self.entry_points()})

    def resolve(self, name: str) -> Any:
        """The plug-in called ``name`` (import path, entry point or built-in), checked against the interface."""
        if ":" in name:
            obj = _import_path(name, self.kind)
        elif name in (eps := self.entry_points()):
            try:
                obj = eps[name].load()
            except Exception as exc:  # an installed package that fails to import: one line, not a traceback
                raise UserError(f"{self.kind} {name!r} (entry point {eps[name].value}) failed to load: {exc}") from None
        elif name in (mods := self.builtin_modules()):
            obj = self.pick(importlib.import_module(mods[name]), name)
        else:
            raise UserError(f"unknown {self.kind} {name!r}; available {self.kind}s: {', '.join(self.available())} "
                            "(or an import path 'pkg.module:Name')")
        problem = self.check(obj)
        if problem:
            raise UserError(f"{self.kind} {name!r} is not usable: {problem}")
        return obj


def _import_path(path: str, kind: str) -> Any:
    """The object at ``"pkg.mod:Attr"`` (the module itself for ``"pkg.mod:"``)."""
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError(f"{kind} {path!r}: cannot import module {module_name!r} ({exc})") from None
    if not attr:
        return module
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UserError(f"{kind} {path!r}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj

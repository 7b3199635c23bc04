"""JSON-schema validation with defaults: the one way configs and plug-in ``params`` are checked.

A core utility (no pcreg imports but :mod:`pcreg.errors`), so the plug-in
registries can validate ``params`` without importing the workflow config module.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonschema

from pcreg.errors import UserError


def _with_defaults(validator_class: type) -> type:
    """A validator class that also writes schema defaults into the instance."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):  # noqa: ANN001
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def _path(error: jsonschema.ValidationError, prefix: str) -> str:
    parts = [prefix] if prefix else []
    parts += [str(p) for p in error.absolute_path]
    return ".".join(parts) or "(top level)"


def validate(instance: dict[str, Any], schema: dict[str, Any], where: str = "") -> dict[str, Any]:
    """Validate ``instance`` in place (filling defaults); raise :class:`UserError` naming the key."""
    errors = sorted(_Validator(schema).iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        raise UserError(f"config error at {_path(err, where)}: {err.message}")
    return instance


def validate_params(cls: Any, params: dict[str, Any], where: str) -> dict[str, Any]:
    """Validate a method's or dataset type's ``params`` against its ``PARAMS_SCHEMA``."""
    return validate(copy.deepcopy(params), cls.PARAMS_SCHEMA, where)

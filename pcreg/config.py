"""Loading and validating the workflow config against its JSON schemas.

The top-level structure is ``workflow/schemas/config.schema.yaml``. Each
dataset type and each method carries the schema of its own ``params``
(``PARAMS_SCHEMA``), so a new method brings its parameters' validation with it.
Validation fills the schemas' defaults, and a bad value fails with one line
naming the key, e.g. ``config error at datasets.synthetic-fundus.params.image_size: ...``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from pcreg.errors import UserError
from pcreg.schema import validate, validate_params

__all__ = ["SCHEMA_PATH", "load_schema", "validate", "validate_config", "validate_params"]

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "config.schema.yaml"


def load_schema(path: Path = SCHEMA_PATH) -> dict[str, Any]:
    with open(path) as fh:
        return yaml.safe_load(fh)


#: Config keys that are folders of the workflow's outputs (every output path derives from them).
PATH_KEYS = ("data_dir", "results_dir")


def _check_path(value: str, key: str) -> None:
    """A folder key may hold any character a shell would misread (jobs get it quoted), but not braces or newlines.

    Snakemake reads ``{...}`` in a path as a wildcard, and a newline cannot be a job's argument.
    """
    bad = sorted({c for c in value if c in "{}\n\0"})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        raise UserError(f"config error at {key}: {value!r} contains {shown}: Snakemake reads braces in a path as "
                        "a wildcard, and a job cannot be given a newline; choose a folder name without them")


def _named(lookup: Any, name: str, key: str) -> Any:
    """``lookup(name)``, with a failure reported as a config error at ``key``."""
    try:
        return lookup(name)
    except UserError as exc:
        raise UserError(f"config error at {key}: {exc}") from None


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    """Validate the whole workflow config, fill every default, and return it."""
    from pcreg.datasets import get_dataset_type
    from pcreg.methods.registry import get_method_class
    from pcreg.reporting.paper_values import paper_datasets

    given_reference = (config.get("stats") or {}).get("reference")
    config = validate(copy.deepcopy(dict(config)), load_schema())
    for key in PATH_KEYS:
        _check_path(config[key], key)
    for name, spec in config["datasets"].items():
        dtype = _named(get_dataset_type, spec["type"], f"datasets.{name}.type")
        spec["params"] = validate_params(dtype, spec.get("params", {}), f"datasets.{name}.params")
        if "paper_reference" in spec and spec["paper_reference"] not in paper_datasets():
            raise UserError(f"config error at datasets.{name}.paper_reference: {spec['paper_reference']!r} is not "
                            f"one of {paper_datasets()}")
    for run_id, spec in config["methods"].items():
        spec.setdefault("method", run_id)
        cls = _named(get_method_class, spec["method"], f"methods.{run_id}.method")
        spec.setdefault("label", cls.label or run_id)
        # Per-pair isolation limits travel in the run's spec file (pcreg.methods.runner.method_worker).
        spec.setdefault("pair_timeout_s", config["pair_timeout_s"])
        spec.setdefault("log_cap_kb", config["log_cap_kb"])
        spec["params"] = validate_params(cls, spec.get("params", {}), f"methods.{run_id}.params")
        for ds in spec.get("datasets", []):
            if ds not in config["datasets"]:
                raise UserError(f"config error at methods.{run_id}.datasets: unknown dataset {ds!r}")
    # A reference given in the config must be one of its runs (the schema's default may be absent: no tests then).
    reference = given_reference
    if reference is not None and reference not in config["methods"]:
        raise UserError(f"config error at stats.reference: {reference!r} is not a method run of this config "
                        f"({', '.join(config['methods'])}); every method is tested against it")
    config["methods"] = expand_seeds(config["methods"])
    return config


def seed_run_id(run_id: str, k: int) -> str:
    """The id of training seed ``k`` (>= 1) of run ``run_id``; seed 0 keeps the run's own id."""
    return f"{run_id}.seed{k}"


def expand_seeds(methods: dict[str, Any]) -> dict[str, Any]:
    """Runs with ``seeds: N`` > 1 followed by ``N - 1`` copies ``<id>.seed<k>`` (``seed_offset`` k, ``seed_of``
    the run id): each trains from its own seed (config seed + k) and keeps its outputs in its own folder. The run
    itself is seed 0: its registered outputs and pairs.csv are the row's in every table but the ablation table,
    which reports the mean ± sd over all seeds. Idempotent (already expanded copies are kept as they are)."""
    out: dict[str, Any] = {}
    for run_id, spec in methods.items():
        out[run_id] = spec
        if spec.get("seed_of"):
            continue
        spec.setdefault("seed_offset", 0)
        for k in range(1, int(spec.get("seeds", 1))):
            sid = seed_run_id(run_id, k)
            if sid in methods:
                continue
            copy_spec = copy.deepcopy(spec)
            copy_spec.update(seeds=1, seed_offset=k, seed_of=run_id)
            if spec.get("seed_datasets"):  # the further seeds only where they are reported
                copy_spec["datasets"] = list(spec["seed_datasets"])
            copy_spec.pop("seed_datasets", None)
            out[sid] = copy_spec
    return out


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file and validate it (a missing file is one clear error)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    return validate_config(yaml.safe_load(path.read_text()) or {})

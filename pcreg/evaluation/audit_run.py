"""The sanity audit in the workflow: run a method on modified inputs, then tabulate every method's drops.

:func:`audit_run` re-runs one method run (built and loaded exactly as
:mod:`pcreg.methods.runner` does) on a seeded subset of test pairs under the three
conditions of :mod:`pcreg.evaluation.audit` (normal, blank moving image, another pair's
moving image) and writes one CSV per run. :func:`oracle_rows` scores the
fixed-copy oracle on the same pairs and donors; the table itself is made by
:mod:`pcreg.reporting.audit_table`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pcreg.datasets.format import PreparedDataset
from pcreg.errors import disk_full_is_one_line
from pcreg.evaluation import audit
from pcreg.evaluation.audit_inputs import audited_subset


def _subset(data_root: Path, n_pairs: int | None, seed: int
            ) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Audited test pairs: moving, fixed, pair ids and clusters (donors come from other clusters: no shared
    source region, sequence or photograph with the fixed image)."""
    test, idx, clusters = audited_subset(data_root, n_pairs, seed)
    moving = np.stack([np.asarray(test.moving[i], np.float32) for i in idx])
    fixed = np.stack([np.asarray(test.fixed[i], np.float32) for i in idx])
    return moving, fixed, [test.pair_ids[i] for i in idx], clusters


def _geometry(data_root: Path, n_pairs: int | None, seed: int) -> audit.Geometry | None:
    """Error of a field against audited pair ``i``'s ground truth: EPE with a ground-truth field, else TRE."""
    from pcreg import metrics

    test = PreparedDataset(data_root).split("test")
    idx = audit.select_pairs(len(test), n_pairs, seed)
    if test.field is not None:
        return lambda i, field: metrics.epe(field, np.asarray(test.field[idx[i]], np.float32))
    marks = [test.landmarks_of(test.pair_ids[j]) for j in idx]
    if not any(m is not None for m in marks):
        return None
    return lambda i, field: metrics.tre(field, *marks[i]) if marks[i] is not None else float("nan")


def audit_run(data_root: Path, spec: dict[str, Any], out_csv: Path, *, n_pairs: int | None, seed: int,
              threads: int = 1, device: str = "cpu", model_dir: Path | None = None, blank: str = "mean") -> Path:
    """Audit one method run on ``n_pairs`` test pairs drawn from ``seed``; write its per-pair CSV atomically."""
    from pcreg.methods.runner import load_method, method_worker

    moving, fixed, ids, clusters = _subset(data_root, n_pairs, seed)
    missing: set[tuple[str, str]] = set()
    with contextlib.ExitStack() as stack:
        if spec_wants_pair_ids(spec):  # outputs made elsewhere: each audit input is looked up by its name
            method = load_method(spec, seed=seed, threads=threads, device=device, model_dir=model_dir)
            register = _named_register(method, data_root, n_pairs, seed, blank, missing)
        else:  # in a worker process, as in the shard jobs: a crash or a hang on an input is a failed input
            worker = stack.enter_context(method_worker(spec, seed=seed, threads=threads, device=device,
                                                       model_dir=model_dir, label=f"audit {spec.get('id', '')}"))

            def register(mov: np.ndarray, fix: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
                result = worker.run(mov[None], fix[None])[0]
                return result.image, result.field

        df = audit.audit_pairs(register, moving, fixed, seed, method=spec.get("id", spec["method"]), pair_ids=ids,
                               blank=blank, groups=clusters, geometry=_geometry(data_root, n_pairs, seed))
        if missing:  # no output for that input: not scored (rather than scored as the identity fallback)
            gone = [(p, c) in missing for p, c in zip(df["pair_id"], df["condition"])]
            df.loc[gone, list(audit.METRICS)] = np.nan
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_csv.with_name(out_csv.name + ".tmp")
    with disk_full_is_one_line(out_csv, tmp):
        df.to_csv(tmp, index=False)
        tmp.replace(out_csv)
    return out_csv


def spec_wants_pair_ids(spec: dict[str, Any]) -> bool:
    """True if the run's method reads outputs made elsewhere by pair id (it then runs in the job's process)."""
    from pcreg.errors import UserError
    from pcreg.methods.registry import get_method_class

    try:
        return bool(get_method_class(spec["method"]).wants_pair_ids)
    except UserError:  # not found by name here: the worker builds it (and says what is wrong)
        return False


def _named_register(method: Any, data_root: Path, n_pairs: int | None, seed: int, blank: str,
                    missing: set[tuple[str, str]]) -> audit.Register:
    """``register`` for a method that wants pair ids: audit inputs get their names (pcreg.evaluation.audit_inputs).

    Inputs for which the method has no output (``has_output``, e.g. a precomputed folder without them)
    are collected in ``missing``; a declared failure is scored like a failure inside the workflow.
    """
    from pcreg.errors import UserError
    from pcreg.evaluation.audit_inputs import case_names, input_key
    from pcreg.methods.registry import run_method

    cases = case_names(data_root, n_pairs, seed, blank)
    has_output = getattr(method, "has_output", lambda _pair_id: True)

    def register(mov: np.ndarray, fix: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        case = cases.get(input_key(mov, fix))
        if case is None:  # the audit changed its conditions without audit_inputs following
            raise UserError("audit input not among pcreg.evaluation.audit_inputs.audit_cases: "
                            "the two modules are out of step")
        if not has_output(case.audit_id):
            missing.add((case.pair_id, case.condition))
        result = run_method(method, mov, fix, case.audit_id)
        return result.image, result.field

    return register


def oracle_rows(data_root: Path, *, n_pairs: int | None, seed: int, blank: str = "mean") -> pd.DataFrame:
    """The fixed-copy oracle on the same pairs and donors as :func:`audit_run`."""
    moving, fixed, ids, clusters = _subset(data_root, n_pairs, seed)
    return audit.audit_pairs(audit.fixed_copy, moving, fixed, seed, method=audit.ORACLE, pair_ids=ids, blank=blank,
                             groups=clusters)

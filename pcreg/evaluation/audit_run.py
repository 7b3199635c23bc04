"""The sanity audit in the workflow: run a method on modified inputs, then tabulate every method's drops.

:func:`audit_run` re-runs one method run (built and loaded exactly as
:mod:`pcreg.methods.runner` does) on a seeded subset of test pairs under the three
conditions of :mod:`pcreg.evaluation.audit` (normal, blank moving image, another pair's
moving image) and writes one CSV per run. :func:`oracle_rows` scores the
fixed-copy oracle on the same pairs and donors; the table itself is made by
:mod:`pcreg.reporting.audit_table`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pcreg.datasets.format import PreparedDataset
from pcreg.evaluation import audit


def _subset(data_root: Path, n_pairs: int | None, seed: int
            ) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Audited test pairs: moving, fixed, pair ids and temporal sequences (donors come from other sequences)."""
    test = PreparedDataset(data_root).split("test")
    idx = audit.select_pairs(len(test), n_pairs, seed)
    moving = np.stack([np.asarray(test.moving[i], np.float32) for i in idx])
    fixed = np.stack([np.asarray(test.fixed[i], np.float32) for i in idx])
    sequences = [str(test.manifest.at[int(i), "sequence"]) for i in idx]
    return moving, fixed, [test.pair_ids[i] for i in idx], sequences


def audit_run(data_root: Path, spec: dict[str, Any], out_csv: Path, *, n_pairs: int | None, seed: int,
              threads: int = 1, device: str = "cpu", model_dir: Path | None = None, blank: str = "mean") -> Path:
    """Audit one method run on ``n_pairs`` test pairs drawn from ``seed``; write its per-pair CSV atomically."""
    from pcreg.methods.registry import run_method
    from pcreg.methods.runner import load_method

    method = load_method(spec, seed=seed, threads=threads, device=device, model_dir=model_dir)
    moving, fixed, ids, sequences = _subset(data_root, n_pairs, seed)

    def register(mov: np.ndarray, fix: np.ndarray) -> np.ndarray:
        return run_method(method, mov, fix).image

    df = audit.audit_pairs(register, moving, fixed, seed, method=spec.get("id", spec["method"]), pair_ids=ids,
                           blank=blank, groups=sequences)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_csv.with_name(out_csv.name + ".tmp")
    df.to_csv(tmp, index=False)
    tmp.replace(out_csv)
    return out_csv


def oracle_rows(data_root: Path, *, n_pairs: int | None, seed: int, blank: str = "mean") -> pd.DataFrame:
    """The fixed-copy oracle on the same pairs and donors as :func:`audit_run`."""
    moving, fixed, ids, sequences = _subset(data_root, n_pairs, seed)
    return audit.audit_pairs(audit.fixed_copy, moving, fixed, seed, method=audit.ORACLE, pair_ids=ids, blank=blank,
                             groups=sequences)

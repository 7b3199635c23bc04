"""Does a method's field follow the convention it was read in? Compare it with the conventions it could be in.

A field read in the wrong convention (a push-forward field declared pull-back, x-y
declared row-col; typically a ``precomputed`` folder) is scored without complaint and
just looks like a poor method. Where the suite knows the answer (a ground-truth
field, else landmarks), :func:`check_fields` scores a few pairs' fields as stored
*and* under the alternatives -- axes swapped, direction reversed (the field
inverted), both -- and when an alternative is clearly better (error below
:data:`RATIO` times the stored one and at least :data:`MIN_GAIN_PX` px lower) it
writes a note that the tables show (:func:`convention_notes`).

The check costs a few inversions per run (:data:`CHECK_PAIRS` pairs,
:data:`INVERT_ITERATIONS` fixed-point iterations): 1.4-1.6 s per run at 256² on the
suite's 2-core development machine (busy; timed on synthetic-fundus ground-truth fields).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pcreg import metrics
from pcreg.datasets.format import PreparedDataset
from pcreg.field_conventions import invert_push_forward

#: Result file beside a run's ``pairs.csv``.
CHECK_FILE = "convention_check.json"
#: Pairs checked per run (evenly spaced over the split, failed pairs skipped).
CHECK_PAIRS = 4
#: Fixed-point iterations of the inversion: enough to tell a right from a wrong direction.
INVERT_ITERATIONS = 15
#: An alternative is "clearly better" below this fraction of the stored field's error ...
RATIO = 0.5
#: ... and at least this many pixels (of the dataset's images) lower.
MIN_GAIN_PX = 0.5

ALTERNATIVES = ("axis order swapped (x-y vs row-col)", "direction reversed (push-forward vs pull-back)",
                "axis order swapped and direction reversed")


def _variants(field: np.ndarray) -> dict[str, np.ndarray]:
    swapped = np.ascontiguousarray(field[::-1])
    return {
        "as stored": field,
        ALTERNATIVES[0]: swapped,
        ALTERNATIVES[1]: invert_push_forward(field, iterations=INVERT_ITERATIONS)[0],
        ALTERNATIVES[2]: invert_push_forward(swapped, iterations=INVERT_ITERATIONS)[0],
    }


def check_fields(data_root: Path, fields: np.ndarray, failed: np.ndarray, out_dir: Path,
                 split: str = "test") -> dict[str, Any] | None:
    """Score up to :data:`CHECK_PAIRS` of ``fields`` (``(N, 2, H, W)``, suite convention) in each convention.

    Writes ``out_dir/convention_check.json`` (removed where nothing can be checked) and returns its content:
    the mean error (EPE, else TRE, dataset px) per convention, and ``note`` when an alternative is clearly better.
    """
    path = Path(out_dir) / CHECK_FILE
    path.unlink(missing_ok=True)
    pairs = PreparedDataset(data_root).split(split)
    usable = [i for i in range(len(pairs)) if not failed[i] and np.any(fields[i])]
    if pairs.field is not None:
        metric = "EPE"

        def error(i: int, u: np.ndarray) -> float:
            return metrics.epe(u, np.asarray(pairs.field[i], np.float32))
    else:
        usable = [i for i in usable if pairs.landmarks_of(pairs.pair_ids[i]) is not None]
        metric = "TRE"

        def error(i: int, u: np.ndarray) -> float:
            return metrics.tre(u, *pairs.landmarks_of(pairs.pair_ids[i]))
    if not usable:
        return None
    chosen = [usable[int(k)] for k in np.unique(np.linspace(0, len(usable) - 1, CHECK_PAIRS).round())]
    errors: dict[str, list[float]] = {}
    for i in chosen:
        for name, u in _variants(np.asarray(fields[i], np.float32)).items():
            errors.setdefault(name, []).append(error(i, u))
    means = {name: float(np.nanmean(v)) for name, v in errors.items()}
    stored = means.pop("as stored")
    best = min(means, key=lambda k: means[k] if np.isfinite(means[k]) else np.inf)
    note = None
    if np.isfinite(stored) and means[best] < RATIO * stored and stored - means[best] >= MIN_GAIN_PX:
        note = (f"its fields score {metric} {stored:.2f} px as read but {means[best]:.2f} px with the {best} "
                f"({len(chosen)} test pairs): check the field convention (docs/CONVENTIONS.md; a precomputed "
                "folder declares it in params.convention)")
    result = {"metric": metric, "pairs": [pairs.pair_ids[i] for i in chosen], "as_stored": stored,
              "alternatives": means, "note": note}
    path.write_text(json.dumps(result, indent=2) + "\n")
    return result


def convention_notes(runs: Sequence[Any]) -> list[str]:
    """Table notes of the runs whose fields look like another convention (``convention_check.json``)."""
    notes = []
    for run in runs:
        path = Path(run.result_dir) / CHECK_FILE
        if not path.is_file():
            continue
        try:
            note = json.loads(path.read_text()).get("note")
        except (json.JSONDecodeError, OSError):
            continue
        if note:
            notes.append(f"⚠ {run.label}: {note}.")
    return notes

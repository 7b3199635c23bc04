"""Validation scoring and the plateau criterion of the training harness (:mod:`pcreg.training`).

Model selection and early stopping use one validation metric per run, chosen
from what the validation split and the method offer (first that applies):

1. ``epe`` -- mean end-point error (px) of the predicted field against the
   ground-truth field, when the split stores fields and the method outputs one;
2. ``tre`` -- mean target registration error (px) of the predicted field at the
   split's landmarks, when it has landmarks and the method outputs a field;
3. ``loss`` -- the method's own validation loss, for field-output methods on
   splits with neither (for VoxelMorph and TransMorph: local NCC plus the
   smoothness term, the criterion the issue asks for);
4. ``ncc`` -- mean global NCC of the registered image vs the fixed image, for
   image-output methods (PCReg-Net): the suite's headline metric for them. Its
   training loss (L1 + MSE + SSIM to the fixed image) would reward blurring
   towards the fixed image's mean as much as NCC does; NCC is what the tables
   report, so selecting on it keeps selection and reporting the same.

Lower is better for ``epe``/``tre``/``loss``, higher for ``ncc``; :class:`Plateau`
turns a metric into a "larger is better" score and tracks improvement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pcreg import metrics

#: Validation metrics in order of preference, and whether larger values are better.
SELECTION_METRICS: dict[str, bool] = {"epe": False, "tre": False, "loss": False, "ncc": True}


def choose_metric(has_field_output: bool, has_gt_field: bool, has_landmarks: bool) -> str:
    """The selection metric for a run (see the module docstring)."""
    if has_field_output and has_gt_field:
        return "epe"
    if has_field_output and has_landmarks:
        return "tre"
    return "loss" if has_field_output else "ncc"


def pair_scores(
    registered: np.ndarray,
    fixed: np.ndarray,
    field: np.ndarray | None,
    gt_field: np.ndarray | None,
    landmarks: tuple[np.ndarray, np.ndarray] | None,
) -> dict[str, float]:
    """Per-pair validation numbers: ``ncc``, ``ssim``, ``psnr`` and, where computable, ``epe``/``tre``."""
    out = {
        "ncc": metrics.ncc(registered, fixed),
        "ssim": metrics.ssim(registered, fixed),
        "psnr": min(metrics.psnr(registered, fixed), 100.0),  # identical images: cap inf for averaging
    }
    if field is not None and gt_field is not None:
        out["epe"] = metrics.epe(field, gt_field)
    if field is not None and landmarks is not None and len(landmarks[0]):
        out["tre"] = metrics.tre(field, landmarks[0], landmarks[1])
    return out


def score_of(metric: str, value: float, loss: float) -> tuple[float, float]:
    """Selection key, larger is better: the signed metric first, then lower loss.

    An undefined metric (NaN NCC of a constant prediction, typical of the first
    epochs) ranks below any defined value and among such epochs by loss.
    """
    sign = 1.0 if SELECTION_METRICS[metric] else -1.0
    first = sign * value if math.isfinite(value) else -math.inf
    return (first, -loss if math.isfinite(loss) else -math.inf)


@dataclass
class Plateau:
    """Early stopping on a validation plateau.

    A validation counts as an improvement when its score beats the best so far by
    more than ``min_delta`` (in the units of the selection metric: px for
    EPE/TRE, NCC units for NCC); after ``patience`` validations without one the
    run has converged. ``patience = 0`` disables the criterion (fixed budget).
    """

    patience: int
    min_delta: float
    best: float = -math.inf
    since: int = 0

    def update(self, score: float) -> bool:
        """Record one validation score; True when the plateau is reached."""
        if score > self.best + self.min_delta or not math.isfinite(self.best):
            if math.isfinite(score):
                self.best, self.since = score, 0
                return False
        self.since += 1
        return self.patience > 0 and self.since >= self.patience

    def state(self) -> dict[str, float]:
        return {"best": self.best, "since": self.since}

    def load(self, state: dict[str, float]) -> None:
        self.best, self.since = float(state["best"]), int(state["since"])

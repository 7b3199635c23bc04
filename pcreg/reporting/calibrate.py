"""Calibration check at both ends: a dataset's Unregistered row and its perfect-registration row.

The synthetic datasets stand in for the paper's benchmarks only if they are as
hard *and* as solvable:

- their Unregistered row (moving vs fixed, no registration) should match the
  paper's Unregistered row of the dataset named by ``paper_reference`` (bands
  :data:`BANDS`: ±0.05 NCC, ±0.05 SSIM, ±1.5 dB PSNR);
- their perfect-registration row (the moving image warped by the ground-truth
  field) should reach at least the paper's best warping rows on that benchmark
  and leave some appearance change (:data:`PERFECT_BOUNDS`), so that a good
  registration can be told from a bad one.

SSIM is reported twice: the Gaussian 11x11, sigma = 1.5 window of Wang et al.
(what the paper most likely printed, and the one the bands apply to) and
scikit-image's default 7x7 uniform window. docs/DATASETS.md has the numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from skimage.metrics import structural_similarity

from pcreg import metrics
from pcreg.datasets.format import PreparedDataset
from pcreg.reporting.paper_values import load_paper_values
from pcreg.warp import warp_image

#: Tolerance of each metric for "within the band" (issue 13); the synthetic data is calibrated on the
#: Gaussian SSIM, the one the paper-layout tables show; the 7x7 uniform one is reported for reference.
BANDS = {"ncc": 0.05, "ssim_gauss": 0.05, "psnr": 1.5}

#: Bounds ``(lowest, highest)`` (``None``: open) of the perfect-registration row per paper benchmark. FIRE-Reg-256:
#: at least the paper's best warping rows (VoxelMorph 0.820 / 0.916 / 25.42, TransMorph 0.832 / 0.876 / 25.51;
#: SSIM at 0.85), with some appearance change left (NCC <= 0.97). OR-PAM: both sweeps image the same vessels.
PERFECT_BOUNDS: dict[str, dict[str, tuple[float | None, float | None]]] = {
    "fire-reg-256": {"ncc": (0.82, 0.97), "ssim_gauss": (0.85, None), "psnr": (25.0, None)},
    "orpam-temporal-26k": {"ncc": (0.90, None)},
    "orpam-4k": {"ncc": (0.90, None)},
}

#: The paper's benchmark each synthetic dataset type stands in for, when the config does not say.
DEFAULT_REFERENCE = {"synthetic-fundus": "fire-reg-256", "synthetic-orpam": "orpam-temporal-26k"}


def ssim_gaussian(image: np.ndarray, reference: np.ndarray) -> float:
    """SSIM with the Gaussian 11x11, sigma = 1.5 window (Wang et al. 2004), via scikit-image."""
    return float(structural_similarity(np.asarray(image, np.float64), np.asarray(reference, np.float64),
                                       data_range=1.0, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))


def unregistered_metrics(root: str | Path, split: str = "test", warp: bool = False) -> dict[str, float]:
    """Mean NCC, SSIM (Gaussian and 7x7 uniform) and PSNR of moving vs fixed over ``split``'s pairs; with
    ``warp`` the moving image is first warped by the ground-truth field (a perfect registration)."""
    pairs = PreparedDataset(root).split(split)
    if warp and pairs.field is None:
        raise ValueError(f"{root}: no ground-truth field, no perfect-registration row")
    rows = []
    for i in range(len(pairs)):
        moving, fixed = pairs.pair(i)
        if warp:
            moving = warp_image(moving, np.asarray(pairs.field[i]))
        rows.append({"ncc": metrics.ncc(moving, fixed), "ssim_gauss": ssim_gaussian(moving, fixed),
                     "ssim_uniform7": metrics.ssim(moving, fixed), "psnr": metrics.psnr(moving, fixed)})
    out = pd.DataFrame(rows).mean().to_dict()
    out["pairs"] = float(len(pairs))
    return out


def perfect_metrics(root: str | Path, split: str = "test") -> dict[str, float]:
    """The perfect-registration row: :func:`unregistered_metrics` of the moving images warped by the ground truth."""
    return unregistered_metrics(root, split, warp=True)


def perfect_table(measured: dict[str, float], reference: str) -> pd.DataFrame:
    """One row per metric of the perfect-registration row: measured, lowest, highest, within."""
    bounds = PERFECT_BOUNDS.get(reference, {})
    rows = []
    for key, label in (("ncc", "NCC"), ("ssim_gauss", "SSIM (Gaussian 11x11)"),
                       ("ssim_uniform7", "SSIM (7x7 uniform)"), ("psnr", "PSNR (dB)")):
        lo, hi = bounds.get(key, (None, None))
        ok = "" if key not in bounds else (
            "yes" if (lo is None or measured[key] >= lo) and (hi is None or measured[key] <= hi) else "NO")
        rows.append({"metric": label, "measured": measured[key], "lowest": np.nan if lo is None else lo,
                     "highest": np.nan if hi is None else hi, "within": ok})
    return pd.DataFrame(rows)


def paper_unregistered(reference: str) -> dict[str, float]:
    """The paper's Unregistered row (NCC, SSIM, PSNR) of benchmark ``reference`` (empty if it prints none)."""
    df = load_paper_values()
    hit = df[(df["dataset"] == reference) & (df["method_id"] == "identity")
             & df["metric"].isin(["ncc", "ssim", "psnr"])]
    out = {m: float(v) for m, v in zip(hit["metric"], hit["value"])}
    if "ssim" in out:  # the paper does not say which SSIM it printed: compare both variants with it
        out["ssim_gauss"] = out["ssim_uniform7"] = out.pop("ssim")
    return out


def calibration_table(measured: dict[str, float], paper: dict[str, float]) -> pd.DataFrame:
    """One row per metric: measured, paper, difference, band and whether it is within the band."""
    rows = []
    for key, label in (("ncc", "NCC"), ("ssim_gauss", "SSIM (Gaussian 11x11)"),
                       ("ssim_uniform7", "SSIM (7x7 uniform)"), ("psnr", "PSNR (dB)")):
        ref = paper.get(key, np.nan)
        band = BANDS.get(key, np.nan)
        diff = measured[key] - ref
        within = "" if np.isnan(band) or np.isnan(ref) else ("yes" if abs(diff) <= band else "NO")
        rows.append({"metric": label, "measured": measured[key], "paper": ref, "difference": diff,
                     "band": band, "within": within})
    return pd.DataFrame(rows)


def format_report(name: str, reference: str, measured: dict[str, float], table: pd.DataFrame,
                  perfect: dict[str, float] | None = None, perfect_rows: pd.DataFrame | None = None,
                  split: str = "test") -> str:
    """Plain-text report printed by ``python -m pcreg calibrate``: both rows, each next to its band."""
    def num(v: float) -> str:
        return "-" if np.isnan(v) else f"{v:.3f}"

    lines = [f"{name}: Unregistered row over {int(measured['pairs'])} {split} pairs vs the paper's {reference}"]
    lines.append(f"{'metric':<24}{'measured':>10}{'paper':>10}{'diff':>10}{'band':>8}  within")
    for r in table.itertuples():
        band = "" if np.isnan(r.band) else f"±{r.band:g}"
        lines.append(f"{r.metric:<24}{num(r.measured):>10}{num(r.paper):>10}{num(r.difference):>10}"
                     f"{band:>8}  {r.within}")
    if perfect is not None and perfect_rows is not None:
        lines.append("")
        lines.append(f"{name}: perfect registration (moving warped by the ground truth) over "
                     f"{int(perfect['pairs'])} {split} pairs")
        lines.append(f"{'metric':<24}{'measured':>10}{'lowest':>10}{'highest':>10}  within")
        for r in perfect_rows.itertuples():
            lines.append(f"{r.metric:<24}{num(r.measured):>10}{num(r.lowest):>10}{num(r.highest):>10}  {r.within}")
    return "\n".join(lines)

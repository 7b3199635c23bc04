"""Tables computed from ``pairs.csv`` files, written as CSV, Markdown and LaTeX.

The CSV keeps full precision (``<metric>_mean``, ``<metric>_std``); Markdown and
LaTeX show ``mean ± std``. A metric that does not apply to a method (no field,
no landmarks) is shown as ``n/a``, never as a number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

#: Metric column in pairs.csv -> (header, decimals).
SUMMARY_METRICS: dict[str, tuple[str, int]] = {
    "ncc": ("NCC", 3),
    "ssim": ("SSIM", 3),
    "psnr": ("PSNR (dB)", 2),
    "tre_px": ("TRE (px)", 2),
    "epe_px": ("EPE (px)", 2),
    "folding_pct": ("Folding (%)", 2),
    "sdlogj": ("SDlogJ", 3),
    "runtime_s": ("Runtime (s/pair)", 3),
}

GROUP_ORDER = ["reference", "traditional", "deep", "ablation"]


@dataclass(frozen=True)
class Run:
    """One method run as it appears in a table."""

    id: str
    label: str
    group: str
    pairs_csv: Path


def summarize_runs(runs: Sequence[Run], metrics: dict[str, tuple[str, int]] = SUMMARY_METRICS) -> pd.DataFrame:
    """Mean and standard deviation of each metric per run (NaN where the metric does not apply)."""
    rows = []
    for run in runs:
        pairs = pd.read_csv(run.pairs_csv)
        row: dict[str, object] = {"run": run.id, "label": run.label, "group": run.group, "n_pairs": len(pairs),
                                  "n_failed": int(pairs["failed"].astype(bool).sum())}
        for col in metrics:
            values = pd.to_numeric(pairs[col], errors="coerce").to_numpy(float)
            values = values[np.isfinite(values)]
            row[f"{col}_mean"] = float(values.mean()) if len(values) else np.nan
            row[f"{col}_std"] = float(values.std(ddof=1)) if len(values) > 1 else (0.0 if len(values) else np.nan)
        rows.append(row)
    table = pd.DataFrame(rows)
    order = {g: i for i, g in enumerate(GROUP_ORDER)}
    table["_g"] = table["group"].map(order).fillna(len(order))
    return table.sort_values("_g", kind="stable").drop(columns="_g").reset_index(drop=True)


def format_mean_std(mean: float, std: float, decimals: int, latex: bool = False) -> str:
    """``mean ± std`` with fixed decimals, or ``n/a`` when the mean is not a number."""
    if mean is None or not math.isfinite(mean):
        return "n/a"
    pm = " $\\pm$ " if latex else " ± "
    return f"{mean:.{decimals}f}{pm}{std:.{decimals}f}"


def display_frame(summary: pd.DataFrame, metrics: dict[str, tuple[str, int]] = SUMMARY_METRICS,
                  latex: bool = False) -> pd.DataFrame:
    """Human-readable table: one row per run, ``mean ± std`` cells."""
    out = pd.DataFrame({"Group": summary["group"], "Method": summary["label"]})
    for col, (header, dec) in metrics.items():
        out[header] = [format_mean_std(m, s, dec, latex) for m, s in zip(summary[f"{col}_mean"], summary[f"{col}_std"])]
    out["Failed"] = [f"{f}/{n}" for f, n in zip(summary["n_failed"], summary["n_pairs"])]
    return out


def to_markdown(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table."""
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _tex_escape(text: str) -> str:
    for a, b in (("\\", "\\textbackslash{}"), ("&", "\\&"), ("%", "\\%"), ("_", "\\_"), ("#", "\\#")):
        text = text.replace(a, b)
    return text


def to_latex(frame: pd.DataFrame, caption: str) -> str:
    """A standalone ``tabular`` (booktabs) with a caption comment; cells may already contain LaTeX."""
    cols = list(frame.columns)
    lines = [f"% {caption}", "\\begin{tabular}{" + "l" * 2 + "c" * (len(cols) - 2) + "}", "\\toprule",
             " & ".join(_tex_escape(c) for c in cols) + " \\\\", "\\midrule"]
    for row in frame.itertuples(index=False):
        cells = [str(v) if "$" in str(v) else _tex_escape(str(v)) for v in row]
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


def write_table(summary: pd.DataFrame, stem: Path, caption: str,
                metrics: dict[str, tuple[str, int]] = SUMMARY_METRICS) -> list[Path]:
    """Write ``<stem>.csv`` (full precision), ``<stem>.md`` and ``<stem>.tex``."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".csv"), stem.with_suffix(".md"), stem.with_suffix(".tex")]
    summary.to_csv(paths[0], index=False)
    paths[1].write_text(f"**{caption}**\n\n" + to_markdown(display_frame(summary, metrics)))
    paths[2].write_text(to_latex(display_frame(summary, metrics, latex=True), caption))
    return paths

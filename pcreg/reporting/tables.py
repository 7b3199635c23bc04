"""Tables computed from ``pairs.csv`` files, written as CSV, Markdown and LaTeX.

Every table is written three ways from one computation: the CSV keeps full
precision in tidy columns (``<metric>_mean``, ``<metric>_std``, ...), Markdown
and LaTeX show formatted cells. Cell conventions, the same in every table:

- ``mean ± std``; ``∞`` for an infinite value (PSNR of an output equal to the
  fixed image);
- ``n/a``: the metric does not apply (no field, no landmarks, no ground truth),
  never a made-up number;
- ``—``: no value printed (the paper has no number there, or a test was not run).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: Metric column in pairs.csv -> (header, decimals).
#: ↑/↓: higher/lower is better.
SUMMARY_METRICS: dict[str, tuple[str, int]] = {
    "ncc": ("NCC ↑", 3),
    "ssim": ("SSIM (Gaussian 11x11) ↑", 3),
    "ssim_uniform7": ("SSIM (uniform 7x7) ↑", 3),
    "psnr": ("PSNR (dB) ↑", 2),
    "tre_orig_px": ("TRE (px, original resolution) ↓", 2),  # the unit of the geometry table and the plots
    "epe_px": ("EPE (px) ↓", 2),
    "folding_pct": ("Folding (%) ↓", 2),
    "sdlogj": ("SDlogJ ↓", 3),
    "runtime_s": ("Runtime (s/pair) ↓", 3),
}

GROUP_ORDER = ["reference", "traditional", "deep", "ablation"]
NA = "n/a"
DASH = "—"


@dataclass(frozen=True)
class Run:
    """One method run as it appears in tables and figures."""

    id: str
    label: str
    group: str
    pairs_csv: Path
    method: str = ""
    trainable: bool = False
    params: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    #: How training ended, for learned runs (``converged``, ``steps``, ``stop_reason``; reporting.training_status).
    training: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    #: For a further training seed (config ``seeds``): the run id it is a seed of; "" for the run itself.
    seed_of: str = ""

    @property
    def result_dir(self) -> Path:
        """``results/<dataset>/<run>/``: where pairs.csv, registered.npy and model/ live."""
        return self.pairs_csv.parent


#: Method id of the perfect-registration reference (baselines/ground_truth.py): the moving image warped by the
#: dataset's ground-truth field, shown as a labelled reference row (the ceiling), never ranked as a method.
GROUND_TRUTH = "ground_truth"

#: Note of every table that shows the perfect-registration reference row.
GROUND_TRUTH_NOTE = ("perfect registration (ground truth): the moving image warped by the dataset's ground-truth "
                     "field, a reference (the ceiling a registration can reach on these data), not a method; its "
                     "intensity metrics stay below 1 because the two images differ in appearance and the moving "
                     "image does not cover the whole fixed image.")


def is_ground_truth(run: Run) -> bool:
    """True for the perfect-registration reference row."""
    return run.method == GROUND_TRUTH or (not run.method and run.id == GROUND_TRUTH)


def sort_runs(runs: Sequence[Run]) -> list[Run]:
    """Runs in table order: by group (reference, traditional, deep, ablation), config order within a group."""
    order = {g: i for i, g in enumerate(GROUP_ORDER)}
    return sorted(runs, key=lambda r: order.get(r.group, len(order)))


# ----------------------------------------------------------------------------------------------- cell formatting


def fmt_value(value: float | None, decimals: int, missing: str = NA) -> str:
    """A number with fixed decimals; ``∞`` for infinity; ``missing`` for None/NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    value = float(value)
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return f"{value:.{decimals}f}"


def fmt_mean_std(mean: float | None, std: float | None, decimals: int) -> str:
    """``mean ± std``; just the mean when the std is undefined; ``n/a`` when there is no mean."""
    m = fmt_value(mean, decimals)
    if m == NA or std is None or not math.isfinite(float(std)) or not math.isfinite(float(mean)):
        return m
    return f"{m} ± {float(std):.{decimals}f}"


def fmt_with_n(cell: str, n: float | None, n_pairs: float | None) -> str:
    """``cell (n=K)`` when the metric has a value on fewer pairs than the table covers (and on some)."""
    if cell == NA or n is None or n_pairs is None or not (math.isfinite(float(n)) and math.isfinite(float(n_pairs))):
        return cell
    if 0 < int(n) < int(n_pairs):
        return f"{cell} (n={int(n)})"
    return cell


def fmt_ci(low: float | None, high: float | None, decimals: int) -> str:
    """``[low, high]`` or ``n/a``."""
    if low is None or high is None or math.isnan(float(low)) or math.isnan(float(high)):
        return NA
    return f"[{fmt_value(low, decimals)}, {fmt_value(high, decimals)}]"


def fmt_p(p: float | None) -> str:
    """A p-value with 3 significant digits (``<0.001`` below that); ``—`` when no test was possible."""
    if p is None or math.isnan(float(p)):
        return DASH
    return "<0.001" if p < 1e-3 else f"{p:.3f}"


# ------------------------------------------------------------------------------------------------ documents


@dataclass
class TableDoc:
    """A formatted table: header cells, rows (a ``str`` row is a section heading), caption and notes."""

    columns: list[str]
    rows: list[list[str] | str]
    caption: str
    notes: list[str] = field(default_factory=list)


def doc_to_markdown(doc: TableDoc) -> str:
    """Caption in bold, a GitHub-flavoured table (section rows in italics), notes as a list."""
    n = len(doc.columns)
    lines = [f"**{doc.caption}**", "", "| " + " | ".join(doc.columns) + " |", "|" + "---|" * n]
    for row in doc.rows:
        if isinstance(row, str):
            lines.append("| *" + row + "* |" + " |" * (n - 1))
        else:
            lines.append("| " + " | ".join(str(c) for c in row) + " |")
    if doc.notes:
        lines.append("")
        lines += [f"- {note}" for note in doc.notes]
    return "\n".join(lines) + "\n"


_LATEX_SYMBOLS = {"±": "$\\pm$", "∞": "$\\infty$", "−": "$-$", "—": "---", "Δ": "$\\Delta$", "≥": "$\\geq$",
                  "≤": "$\\leq$", "|": "$|$", "<": "$<$", ">": "$>$", "×": "$\\times$",
                  "↑": "$\\uparrow$", "↓": "$\\downarrow$"}


def latex_cell(text: str) -> str:
    """Escape LaTeX specials and map the unicode symbols the tables use to LaTeX."""
    out = []
    for ch in str(text):
        if ch in "\\":
            out.append("\\textbackslash{}")
        elif ch in "&%_#{}$":
            out.append("\\" + ch)
        else:
            out.append(_LATEX_SYMBOLS.get(ch, ch))
    return "".join(out)


def doc_to_latex(doc: TableDoc) -> str:
    """A booktabs ``table`` with caption; section rows span all columns; notes follow as a footnote block."""
    n = len(doc.columns)
    lines = ["\\begin{table}[ht]", "\\centering", "\\small", f"\\caption{{{latex_cell(doc.caption)}}}",
             "\\begin{tabular}{l" + "c" * (n - 1) + "}", "\\toprule",
             " & ".join(latex_cell(c) for c in doc.columns) + " \\\\", "\\midrule"]
    first = True
    for row in doc.rows:
        if isinstance(row, str):
            if not first:
                lines.append("\\midrule")
            lines.append(f"\\multicolumn{{{n}}}{{l}}{{\\textit{{{latex_cell(row)}}}}} \\\\")
        else:
            lines.append(" & ".join(latex_cell(c) for c in row) + " \\\\")
        first = False
    lines += ["\\bottomrule", "\\end{tabular}"]
    if doc.notes:
        lines.append("\\par\\footnotesize " + " ".join(latex_cell(n_) for n_ in doc.notes))
    lines.append("\\end{table}")
    return "\n".join(lines) + "\n"


# Wide tables (the audit's 18 columns) must fit the report's frame: small cells, headers that wrap, the table
# never wider than the page (no verdict column cut off at the right edge).
_HTML_STYLE = ("body{font-family:sans-serif;font-size:12px;margin:4px} table{border-collapse:collapse;width:100%;"
               "table-layout:auto} th,td{border:1px solid #ccc;padding:2px 4px;text-align:center;font-size:11px}"
               " th{white-space:normal;overflow-wrap:anywhere;vertical-align:bottom} td:first-child{text-align:left}"
               ""
               " tr.section td{background:#eee;font-style:italic;text-align:left} caption{font-weight:bold;"
               "text-align:left;padding:4px 0}")


def doc_to_html(doc: TableDoc) -> str:
    """A standalone HTML page of the table (what the Snakemake report shows inline)."""
    n = len(doc.columns)
    lines = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'>", f"<style>{_HTML_STYLE}</style></head><body>",
             f"<table><caption>{html.escape(doc.caption)}</caption>",
             "<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in doc.columns) + "</tr>"]
    for row in doc.rows:
        if isinstance(row, str):
            lines.append(f"<tr class='section'><td colspan='{n}'>{html.escape(row)}</td></tr>")
        else:
            lines.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>")
    lines.append("</table>")
    if doc.notes:
        lines.append("<ul>" + "".join(f"<li>{html.escape(note)}</li>" for note in doc.notes) + "</ul>")
    lines.append("</body></html>")
    return "\n".join(lines) + "\n"


def write_doc(doc: TableDoc, data: pd.DataFrame, stem: Path) -> list[Path]:
    """Write ``<stem>.csv`` (``data``, full precision), ``.md``, ``.tex`` and ``.html`` (``doc``).

    The HTML page is what the Snakemake report shows; the other three are the tables proper.
    """
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_name(stem.name + ext) for ext in (".csv", ".md", ".tex", ".html")]
    data.to_csv(paths[0], index=False)
    paths[1].write_text(doc_to_markdown(doc))
    paths[2].write_text(doc_to_latex(doc))
    paths[3].write_text(doc_to_html(doc))
    return paths


# ------------------------------------------------------------------------------------------------ overview


def load_pairs(runs: Sequence[Run]) -> pd.DataFrame:
    """All runs' pairs.csv stacked into one tidy frame with a ``run`` column (``category`` "" when absent)."""
    frames = []
    for run in runs:
        df = pd.read_csv(run.pairs_csv, dtype={"pair_id": str, "category": str, "reason": str, "cluster": str})
        df["category"] = df["category"].fillna("")
        # pairs.csv written before these columns existed: one unit per pair; landmarks where TRE was scored
        if "cluster" not in df:
            df["cluster"] = df["pair_id"]
        df["cluster"] = df["cluster"].fillna(df["pair_id"])
        if "n_landmarks" not in df:
            df["n_landmarks"] = df["tre_orig_px"].notna().astype(int) if "tre_orig_px" in df else 0
        df["failed"] = df["failed"].astype(str).str.lower().isin(["true", "1"])
        df.insert(0, "run", run.id)
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=["run", "pair_id", "category", "failed"])
    return pd.concat(frames, ignore_index=True)


def summarize_runs(runs: Sequence[Run], metrics: dict[str, tuple[str, int]] = SUMMARY_METRICS,
                   n_boot: int = 0, seed: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """Mean, std (and with ``n_boot`` > 0 a bootstrap CI of the mean) of each metric per run.

    NaN where a metric does not apply. Rows are in :func:`sort_runs` order.
    """
    from pcreg.evaluation.stats import summarize

    rows = []
    for run in sort_runs(runs):
        pairs = pd.read_csv(run.pairs_csv)
        row: dict[str, object] = {"run": run.id, "label": run.label, "group": run.group, "n_pairs": len(pairs),
                                  "n_failed": int(pairs["failed"].astype(str).str.lower().isin(["true", "1"]).sum())}
        for col in metrics:
            values = pd.to_numeric(pairs[col], errors="coerce").to_numpy(float) if col in pairs else np.array([])
            s = summarize(values, n_boot=max(n_boot, 1), seed=seed, alpha=alpha)
            row[f"{col}_mean"], row[f"{col}_std"], row[f"{col}_n"] = s["mean"], s["std"], s["n"]
            if s["n"] == 1:
                row[f"{col}_std"] = 0.0
            if n_boot > 0:
                row[f"{col}_ci_low"], row[f"{col}_ci_high"] = s["ci_low"], s["ci_high"]
        rows.append(row)
    return pd.DataFrame(rows)


def display_frame(summary: pd.DataFrame, metrics: dict[str, tuple[str, int]] = SUMMARY_METRICS) -> pd.DataFrame:
    """Human-readable table: one row per run, ``mean ± std`` cells."""
    out = pd.DataFrame({"Group": summary["group"], "Method": summary["label"]})
    for col, (header, dec) in metrics.items():
        n_col = summary[f"{col}_n"] if f"{col}_n" in summary else [None] * len(summary)
        out[header] = [fmt_with_n(fmt_mean_std(m, s, dec), n, total) for m, s, n, total in
                       zip(summary[f"{col}_mean"], summary[f"{col}_std"], n_col, summary["n_pairs"])]
    out["Failed"] = [f"{f}/{n}" for f, n in zip(summary["n_failed"], summary["n_pairs"])]
    return out


def overview_doc(summary: pd.DataFrame, caption: str, metrics: dict[str, tuple[str, int]] = SUMMARY_METRICS,
                 notes: Sequence[str] = ()) -> TableDoc:
    """Overview table: one row per run grouped by group, every metric as ``mean ± std``."""
    frame = display_frame(summary, metrics)
    rows: list[list[str] | str] = []
    last = None
    for group, row in zip(summary["group"], frame.drop(columns="Group").itertuples(index=False)):
        if group != last:
            rows.append(str(group))
            last = group
        rows.append([str(c) for c in row])
    return TableDoc(["Method", *list(frame.columns[2:])], rows, caption, list(notes))


def write_table(summary: pd.DataFrame, stem: Path, caption: str,
                metrics: dict[str, tuple[str, int]] = SUMMARY_METRICS, notes: Sequence[str] = ()) -> list[Path]:
    """Write the overview ``<stem>.csv`` (full precision), ``.md``, ``.tex`` and ``.html``."""
    return write_doc(overview_doc(summary, caption, metrics, notes), summary, stem)

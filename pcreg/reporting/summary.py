"""The one-page summary of a run: per dataset, every method ranked by geometric accuracy, with a conclusion.

``python -m pcreg summary`` writes ``<results>/summary.md`` and ``summary.html`` (the report's landing
page) and ``summary.txt`` (the compact version the end of a Snakemake run prints). Per dataset, one row
per method (ablations stay in their own table), ranked by the geometric error -- TRE at the original
resolution where the pairs have landmarks, else the end-point error to the ground-truth field (dataset
pixels) -- with its confidence interval, next to the reference rows (perfect registration ``ground_truth``
where the dataset has one, Unregistered ``identity``); then the intensity metrics, the audit and
content-fidelity verdicts, the median runtime, the failures and the training marks (†: stopped by its
budget before the validation plateau; ‡: did not learn). Every cell is computed from the run's files; the
sentence under each table is generated from the same numbers.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pcreg.evaluation.stats import paired_wilcoxon, summarize
from pcreg.reporting.tables import DASH, NA, Run, fmt_ci, fmt_p, fmt_value, load_pairs
from pcreg.reporting.training_status import FIT_FAILED
from pcreg.reporting.training_status import MARK as BUDGET_MARK

#: Marks of learned runs (the tables' marks).
NO_LEARN_MARK = "‡"
#: Marks a method outside the suite's built-in set (the user's own), in every format.
OWN_MARK = "◆"
#: Reference rows: perfect registration (moving warped by the ground-truth field) and Unregistered.
REFERENCE_IDS = ("ground_truth", "identity")
#: Metric -> (header, decimals, higher is better).
INTENSITY = {"ncc": ("NCC", 3, True), "ssim": ("SSIM", 3, True), "psnr": ("PSNR (dB)", 2, True)}
#: Audit / fidelity verdicts that say a method does not register (it synthesises or copies the fixed image).
SYNTH_AUDIT = ("copies fixed?",)
SYNTH_FIDELITY = ("synthesises",)


@dataclass
class DatasetSummary:
    """One dataset's summary: the table (one dict per row, ranked), the geometric metric and the sentence."""

    dataset: str
    geo: str  # "tre_orig_px", "epe_px" or "" (no geometric metric: ranked by NCC)
    rows: list[dict]
    conclusion: str
    notes: list[str] = field(default_factory=list)


def geometric_metric(pairs: pd.DataFrame) -> str:
    """TRE at the original resolution where any pair has landmarks, else EPE, else "" (none applies)."""
    for col in ("tre_orig_px", "epe_px"):
        if col in pairs and pd.to_numeric(pairs[col], errors="coerce").notna().any():
            return col
    return ""


GEO_HEADER = {"tre_orig_px": "TRE (orig. px)", "epe_px": "EPE (px)", "": "TRE/EPE"}


def _did_not_learn(run: Run) -> bool:
    """model.json's ``did_not_learn`` (absent: False)."""
    path = run.result_dir / "model" / "model.json"
    if not run.trainable or not path.is_file():
        return False
    return bool(json.loads(path.read_text()).get("did_not_learn", False))


def is_builtin(run: Run) -> bool:
    """True for the suite's own methods (baselines/*, PCReg-Net), False for a method brought by the user."""
    from pcreg.methods.registry import get_method_class

    try:
        module = get_method_class(run.method or run.id).__module__
    except Exception:  # a method that cannot be loaded here is not one of ours
        return False
    return module.startswith(("baselines.", "pcreg."))


def _verdicts(csv: Path | None, key: str) -> dict[str, str]:
    """``{run id: verdict}`` from an audit or fidelity table CSV (empty when the table does not exist)."""
    if csv is None or not Path(csv).is_file():
        return {}
    df = pd.read_csv(csv, dtype=str)
    if key not in df or "verdict" not in df:
        return {}
    return dict(zip(df[key], df["verdict"].fillna(NA)))


def _unit_means(pairs: pd.DataFrame, run_id: str, col: str) -> pd.Series:
    """Mean of ``col`` per independent unit (cluster) of one run."""
    g = pairs[pairs["run"] == run_id]
    return pd.to_numeric(g[col], errors="coerce").groupby(g["cluster"].astype(str)).mean()


def summarize_dataset(dataset: str, runs: Sequence[Run], *, audit_csv: Path | None = None,
                      fidelity_csv: Path | None = None, n_boot: int = 2000, seed: int = 0,
                      alpha: float = 0.05) -> DatasetSummary:
    """The ranked rows and the conclusion of one dataset."""
    runs = [r for r in runs if r.group != "ablation"]
    pairs = load_pairs(runs)
    geo = geometric_metric(pairs)
    rank_col = geo or "ncc"
    audit = _verdicts(audit_csv, "method")
    fidelity = _verdicts(fidelity_csv, "run")
    rows = []
    for run in runs:
        g = pairs[pairs["run"] == run.id]
        label = run.label
        marks = []
        # training_status.with_status already marks most labels; a run that did not learn or whose fit failed is
        # not "stopped by its budget", so it never gets the budget mark
        no_learn = _did_not_learn(run)
        failed_fit = bool(run.training) and run.training.get("stop_reason") == FIT_FAILED
        if (run.training and not run.training.get("converged") and not no_learn and not failed_fit
                and BUDGET_MARK not in label):
            marks.append(BUDGET_MARK)
        if no_learn and NO_LEARN_MARK not in label:
            marks.append(NO_LEARN_MARK)
        own = not is_builtin(run)
        row: dict = {"run": run.id, "label": " ".join([label, *marks]), "group": run.group, "own": own,
                     "reference": run.id in REFERENCE_IDS, "n_pairs": len(g), "n_failed": int(g["failed"].sum())}
        for col in dict.fromkeys([geo, *INTENSITY]) if geo else INTENSITY:
            values = pd.to_numeric(g[col], errors="coerce").to_numpy(float) if col in g else np.array([])
            s = summarize(values, n_boot=n_boot, seed=seed, alpha=alpha) if np.isfinite(values).any() else {}
            row[f"{col}_mean"] = s.get("mean", math.nan)
            row[f"{col}_ci_low"], row[f"{col}_ci_high"] = s.get("ci_low", math.nan), s.get("ci_high", math.nan)
        runtime = pd.to_numeric(g.get("runtime_s"), errors="coerce") if "runtime_s" in g else pd.Series(dtype=float)
        row["runtime_median_s"] = float(runtime.median()) if runtime.notna().any() else math.nan
        row["audit"] = audit.get(run.id, DASH)
        row["fidelity"] = fidelity.get(run.id, DASH) if fidelity else DASH
        row["did_not_learn"] = NO_LEARN_MARK in row["label"]
        row["budget_stopped"] = BUDGET_MARK in row["label"]
        rows.append(row)

    def key(row: dict) -> tuple:
        value = row.get(f"{rank_col}_mean", math.nan)
        if not np.isfinite(value):
            return (1, -row.get("ncc_mean", -math.inf) if np.isfinite(row.get("ncc_mean", math.nan)) else math.inf)
        return (0, value if geo else -value)

    rows.sort(key=key)
    rank = 0
    for row in rows:
        if row["reference"] or not np.isfinite(row.get(f"{rank_col}_mean", math.nan)):
            row["rank"] = ""
        else:
            rank += 1
            row["rank"] = rank
    conclusion = _conclusion(dataset, rows, pairs, geo, alpha)
    notes = []
    if not geo:
        notes.append("No geometric metric applies on this dataset (no landmarks, no ground-truth field): "
                     "ranked by NCC, which a method that synthesises the fixed image can win.")
    return DatasetSummary(dataset, geo, rows, conclusion, notes)


def _fmt_geo(row: dict, geo: str) -> str:
    return fmt_value(row.get(f"{geo}_mean"), 2) if geo else NA


def _conclusion(dataset: str, rows: list[dict], pairs: pd.DataFrame, geo: str, alpha: float) -> str:
    """One paragraph from the numbers: who registers best, whether the lead is significant, who synthesises."""
    rank_col = geo or "ncc"
    header = GEO_HEADER[geo] if geo else "NCC"
    ranked = [r for r in rows if r["rank"] != ""]
    by_id = {r["run"]: r for r in rows}
    parts = []
    if ranked:
        best = ranked[0]
        refs = []
        for rid, name in (("identity", "Unregistered"), ("ground_truth", "perfect registration")):
            if rid in by_id and np.isfinite(by_id[rid].get(f"{rank_col}_mean", math.nan)):
                refs.append(f"{name} {fmt_value(by_id[rid][f'{rank_col}_mean'], 2 if geo else 3)}")
        ref_text = f" (against {' and '.join(refs)})" if refs else ""
        unit = header.split(" (")[-1].rstrip(")") if geo else ""
        value = fmt_value(best[f"{rank_col}_mean"], 2 if geo else 3)
        unreg = by_id.get("identity")
        no_gain = bool(geo and unreg is not None and np.isfinite(unreg.get(f"{geo}_ci_low", math.nan))
                       and best[f"{geo}_mean"] >= unreg[f"{geo}_ci_low"])
        what = ("has the lowest error" if no_gain else "registers best") if geo else \
            "scores the highest NCC (no geometric metric applies)"
        parts.append(f"On {dataset}, {best['label']} {what}: {header.split(' (')[0]} {value}"
                     f"{' ' + unit if geo else ''}{ref_text}.")
        if no_gain:
            parts.append("That is within the Unregistered row's CI: no method clearly registers this dataset.")
        if len(ranked) > 1:
            second = ranked[1]
            a, b = _unit_means(pairs, best["run"], rank_col), _unit_means(pairs, second["run"], rank_col)
            common = a.index.intersection(b.index)
            p = paired_wilcoxon(a[common].to_numpy(), b[common].to_numpy()) if len(common) else math.nan
            if np.isfinite(p) and p < alpha:
                parts.append(f"Its lead over {second['label']} is significant (paired Wilcoxon over {len(common)} "
                             f"independent units, p = {fmt_p(p)}).")
            elif np.isfinite(p):
                parts.append(f"Its lead over {second['label']} is not significant (p = {fmt_p(p)} over "
                             f"{len(common)} independent units): the order of the top two is descriptive only.")
            else:
                parts.append(f"Too few independent units ({len(common)}) to test its lead over {second['label']}: "
                             "the ranking is descriptive only.")
    if not ranked:
        parts.append(f"On {dataset}, only reference rows were run: nothing to rank.")
    synth = [r["label"] for r in rows if r["audit"] in SYNTH_AUDIT or r["fidelity"] in SYNTH_FIDELITY]
    if synth:
        many = len(synth) > 1
        parts.append(f"{', '.join(synth)} {'synthesise' if many else 'synthesises'} rather than "
                     f"{'register' if many else 'registers'} (audit or content-fidelity verdict): "
                     f"{'their' if many else 'its'} intensity scores do not measure registration.")
    elif any(r["audit"] != DASH for r in rows):
        parts.append("No method was found to synthesise the fixed image (audit"
                     f"{' and content fidelity' if any(r['fidelity'] != DASH for r in rows) else ''}).")
    own = [r for r in rows if r["own"]]
    for r in own:
        place = f"ranks {r['rank']} of {len(ranked)}" if r["rank"] != "" else "has no geometric rank"
        parts.append(f"Your method {r['label']} {place}.")
    failed = [f"{r['label']} {r['n_failed']}/{r['n_pairs']}" for r in rows if r["n_failed"]]
    if failed:
        parts.append("Failed pairs: " + ", ".join(failed) + ".")
    return " ".join(parts)


# --------------------------------------------------------------------------------------------------- formats


def _columns(geo: str) -> list[tuple[str, str, bool | None]]:
    """(key, header, higher is better or None) of the table's value columns."""
    cols: list[tuple[str, str, bool | None]] = [(f"{geo}", f"{GEO_HEADER[geo]} ↓", False)] if geo else []
    cols += [(k, f"{h} ↑", hi) for k, (h, _, hi) in INTENSITY.items()]
    return cols


def _best(rows: list[dict], key: str, higher: bool) -> float:
    """Best mean of ``key`` among the methods (reference rows excluded)."""
    vals = [r.get(f"{key}_mean", math.nan) for r in rows if not r["reference"]]
    vals = [v for v in vals if np.isfinite(v)]
    if not vals:
        return math.nan
    return max(vals) if higher else min(vals)


def table_cells(s: DatasetSummary) -> tuple[list[str], list[list[tuple[str, bool]]]]:
    """Header and rows of cells ``(text, is_best)`` of one dataset's table."""
    cols = _columns(s.geo)
    header = ["#", "Method", *[h for _, h, _ in cols], "Audit", "Fidelity", "Runtime (s, median) ↓", "Failed"]
    decimals = {s.geo: 2, **{k: d for k, (_, d, _) in INTENSITY.items()}}
    best = {k: _best(s.rows, k, bool(hi)) for k, _, hi in cols}
    best_rt = _best([{**r, "rt_mean": r["runtime_median_s"]} for r in s.rows], "rt", False)
    out = []
    for r in s.rows:
        label = r["label"] + (f" {OWN_MARK}" if r["own"] else "")
        cells = [(str(r["rank"]) if r["rank"] != "" else "ref" if r["reference"] else "", False), (label, False)]
        for k, _, _ in cols:
            mean = r.get(f"{k}_mean", math.nan)
            text = fmt_value(mean, decimals[k])
            if k == s.geo and text != NA:
                text += " " + fmt_ci(r.get(f"{k}_ci_low"), r.get(f"{k}_ci_high"), decimals[k])
            cells.append((text, not r["reference"] and np.isfinite(mean) and mean == best[k]))
        rt = r["runtime_median_s"]
        cells += [(r["audit"], False), (r["fidelity"], False),
                  (fmt_value(rt, 3), not r["reference"] and np.isfinite(rt) and rt == best_rt),
                  (f"{r['n_failed']}/{r['n_pairs']}", False)]
        out.append(cells)
    return header, out


LEGEND = (f"↓/↑: lower/higher is better; **bold**: the best method (reference rows excluded); 'ref': reference "
          f"row (perfect registration = moving image warped by the ground-truth field; Unregistered = identity). "
          f"Geometric error with its 95% bootstrap CI. {BUDGET_MARK}: training stopped by its budget before the "
          f"validation plateau; {NO_LEARN_MARK}: did not learn (no better than its start on validation); "
          f"{OWN_MARK}: a method outside the suite's built-in set (yours). Audit: does the output depend on the "
          "moving image (sanity audit table); Fidelity: are features present in one image only kept or invented "
          "(content-fidelity table); —: not measured on this dataset.")


def to_markdown(summaries: Sequence[DatasetSummary], title: str) -> str:
    lines = [f"# {title}", ""]
    for s in summaries:
        header, rows = table_cells(s)
        lines += [f"## {s.dataset}", "", f"{s.conclusion}", "", "| " + " | ".join(header) + " |",
                  "|" + "---|" * len(header)]
        for cells in rows:
            lines.append("| " + " | ".join(f"**{t}**" if b else t for t, b in cells) + " |")
        lines += [""] + [f"- {n}" for n in s.notes] + ([""] if s.notes else [])
    lines += [LEGEND, ""]
    return "\n".join(lines)


_CSS = ("body{font-family:sans-serif;font-size:13px;max-width:100%} table{border-collapse:collapse;width:100%;"
        "table-layout:auto} th,td{border:1px solid #ccc;padding:2px 5px;text-align:center;font-size:12px}"
        " td:nth-child(2){text-align:left} tr.ref td{color:#555;font-style:italic} tr.own td{background:#fff3b0}"
        " p.conclusion{font-size:14px;margin:6px 0 10px 0} h2{margin:18px 0 4px 0;font-size:17px}"
        " .legend{font-size:11px;color:#444}")


#: For the Snakemake report's landing page only: its description column is 32rem wide beside the rule graph,
#: so a summary table would run under the graph; the description gets the full width and the graph wraps below.
_REPORT_CSS = ("div.grow.flex.items-start{flex-wrap:wrap} div.prose.max-w-lg{max-width:none !important;width:100%}"
               " div.prose table{margin:0}")


def to_html(summaries: Sequence[DatasetSummary], title: str, standalone: bool = True) -> str:
    """The summary as HTML; ``standalone`` False gives a fragment for the Snakemake report's landing page."""
    body = [f"<h1>{html.escape(title)}</h1>"] if standalone else []  # the report's page has its own title
    for s in summaries:
        header, rows = table_cells(s)
        body += [f"<h2>{html.escape(s.dataset)}</h2>", f"<p class='conclusion'>{html.escape(s.conclusion)}</p>",
                 "<table>", "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"]
        for r, cells in zip(s.rows, rows):
            cls = "own" if r["own"] else "ref" if r["reference"] else ""
            tds = "".join(f"<td>{'<b>' if b else ''}{html.escape(t)}{'</b>' if b else ''}</td>" for t, b in cells)
            body.append(f"<tr class='{cls}'>{tds}</tr>")
        body.append("</table>")
        body += [f"<p class='legend'>{html.escape(n)}</p>" for n in s.notes]
    body.append(f"<p class='legend'>{html.escape(LEGEND.replace('**bold**', 'bold'))}</p>")
    if not standalone:
        return f"<style>{_CSS} {_REPORT_CSS}</style>\n" + "\n".join(body) + "\n"
    return ("<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n" + "\n".join(body)
            + "\n</body></html>\n")


def to_text(summaries: Sequence[DatasetSummary], width: int = 28) -> str:
    """The compact terminal version: per dataset the ranked methods with the geometric error, NCC and verdicts,
    and the conclusion."""
    lines = []
    for s in summaries:
        lines.append(f"== {s.dataset}")
        geo = GEO_HEADER[s.geo] if s.geo else "NCC"
        lines.append(f"   {'#':>3}  {'method':<{width}} {geo:>15} {'NCC':>6}  audit / fidelity")
        for r in s.rows:
            label = (r["label"] + (f" {OWN_MARK}" if r["own"] else ""))[:width]
            rank = str(r["rank"]) if r["rank"] != "" else "ref" if r["reference"] else "-"
            lines.append(f"   {rank:>3}  {label:<{width}} {_fmt_geo(r, s.geo):>15} "
                         f"{fmt_value(r.get('ncc_mean'), 3):>6}  {r['audit']} / {r['fidelity']}")
        lines.append("   " + s.conclusion)
    return "\n".join(lines) + "\n"


def to_frame(summaries: Sequence[DatasetSummary]) -> pd.DataFrame:
    """Every row of every dataset, full precision (the CSV)."""
    return pd.DataFrame([{"dataset": s.dataset, "geo_metric": s.geo, **r} for s in summaries for r in s.rows])


def write_summary(summaries: Sequence[DatasetSummary], out_stem: Path, fragment: Path | None = None,
                  title: str = "pcreg-bench summary") -> list[Path]:
    """Write ``<stem>.md``, ``.html``, ``.txt`` (terminal) and ``.csv``, and the report's HTML ``fragment``."""
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    paths = {ext: out_stem.with_name(out_stem.name + ext) for ext in (".md", ".html", ".txt", ".csv")}
    paths[".md"].write_text(to_markdown(summaries, title))
    paths[".html"].write_text(to_html(summaries, title))
    paths[".txt"].write_text(to_text(summaries))
    to_frame(summaries).to_csv(paths[".csv"], index=False)
    if fragment is not None:
        fragment.write_text(to_html(summaries, title, standalone=False))
        return [*paths.values(), fragment]
    return list(paths.values())

"""Figures of one dataset's results: box plots, speed vs accuracy, FIRE success curves, training curves.

Every figure labels its axes with units and uses :func:`pcreg.reporting.style.method_color`.
A panel whose metric does not apply says so in the panel instead of plotting
a made-up value.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import matplotlib.ticker as mticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from adjustText import adjust_text  # noqa: E402

from pcreg.reporting.style import method_color  # noqa: E402
from pcreg.reporting.tables import Run, sort_runs  # noqa: E402

#: Box-plot panels: pairs.csv column -> axis label.
BOX_METRICS: dict[str, str] = {
    "ncc": "NCC (registered vs fixed)",
    "ssim": "SSIM (registered vs fixed)",
    "psnr": "PSNR (dB)",
    "tre_orig_px": "TRE (px, original resolution)",
    "epe_px": "EPE (px)",
    "folding_pct": "Folding (% of pixels)",
    "sdlogj": "SDlogJ",
}


def _save(fig: plt.Figure, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out


def _message(ax: plt.Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=9, wrap=True, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def box_plots(pairs: pd.DataFrame, runs: Sequence[Run], dataset: str, out: Path) -> Path:
    """One panel per metric, one box per run (all test pairs); ``n/a`` where the metric does not apply."""
    runs = sort_runs(runs)
    ncols = 4
    nrows = int(np.ceil(len(BOX_METRICS) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols + 0.3 * len(runs), 3.4 * nrows), squeeze=False)
    for ax, (col, ylabel) in zip(axes.flat, BOX_METRICS.items()):
        positions, data, colors = [], [], []
        for k, run in enumerate(runs):
            v = pd.to_numeric(pairs.loc[pairs["run"] == run.id, col], errors="coerce").to_numpy(np.float64) \
                if col in pairs else np.array([])
            v = v[np.isfinite(v)]  # PSNR of an exact copy is +inf: not drawable
            if v.size:
                positions.append(k)
                data.append(v)
                colors.append(method_color(run.id))
            else:
                ax.text(k, 0.5, "n/a", ha="center", va="center", fontsize=7, color="0.4",
                        transform=ax.get_xaxis_transform())
        if data:
            bp = ax.boxplot(data, positions=positions, widths=0.6, patch_artist=True, showfliers=True)
            for patch, c in zip(bp["boxes"], colors):
                patch.set_facecolor(c)
                patch.set_alpha(0.7)
            for median in bp["medians"]:
                median.set_color("black")
        ax.set_xlim(-0.6, len(runs) - 0.4)
        ax.set_xticks(range(len(runs)))
        ax.set_xticklabels([r.label for r in runs], rotation=45, ha="right", fontsize=7)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(BOX_METRICS):]:
        ax.axis("off")
    fig.suptitle(f"{dataset}: per-pair metrics on the test split (n/a: metric does not apply)", fontsize=10)
    fig.tight_layout()
    return _save(fig, out)


def speed_accuracy(pairs: pd.DataFrame, runs: Sequence[Run], dataset: str, out: Path) -> Path:
    """Pairs per second (1 / median runtime, log scale) against mean NCC and against mean TRE (original px)."""
    runs = sort_runs(runs)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    missing_tre, no_runtime = [], []
    labels: dict[plt.Axes, list] = {ax: [] for ax in axes}
    for run in runs:
        g = pairs[pairs["run"] == run.id]
        runtime = pd.to_numeric(g["runtime_s"], errors="coerce").median()  # a slow first pair does not dominate
        speed = 1.0 / max(float(runtime), 1e-9) if np.isfinite(runtime) else np.nan
        if not np.isfinite(speed) and run.group != "reference":  # e.g. precomputed outputs without runtimes
            no_runtime.append(run.label)
        for ax, col in zip(axes, ("ncc", "tre_orig_px")):
            v = pd.to_numeric(g[col], errors="coerce").to_numpy(np.float64)
            v = v[np.isfinite(v)]
            if run.group == "reference" and v.size:
                # A reference row (Unregistered) costs nothing: its speed is meaningless, its accuracy a baseline.
                ax.axhline(v.mean(), color=method_color(run.id), ls="--", lw=1, label=f"{run.label} (reference)")
                ax.annotate(f"{run.label} (reference)", (0.01, v.mean()), xycoords=("axes fraction", "data"),
                            textcoords="offset points", xytext=(0, 3), fontsize=7)
                continue
            if not v.size or not np.isfinite(speed):
                if col == "tre_orig_px" and np.isfinite(speed):
                    missing_tre.append(run.label)
                continue
            err = v.std(ddof=1) if v.size > 1 else 0.0
            ax.errorbar(speed, v.mean(), yerr=err, fmt="o", color=method_color(run.id), capsize=3, label=run.label)
            labels[ax].append(ax.text(speed, v.mean(), run.label, fontsize=7, color="0.15"))
    for ax, ylabel in zip(axes, ("NCC (mean ± std, higher is better)", "TRE (px, original resolution; lower is "
                                                                       "better)")):
        ax.set_xscale("log")
        # 1-2-5 ticks as plain numbers: a narrow log range otherwise gets overlapping "3x10^0" minor labels
        ax.xaxis.set_major_locator(mticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(mticker.FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(mticker.NullFormatter())
        ax.set_xlabel("Speed (pairs/s, log scale; 1 / median runtime per pair)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, which="both")
    if missing_tre:
        # top of the TRE panel: the empty side, since lower TRE is better
        axes[1].text(0.02, 0.98, "n/a (no field or no landmarks): " + ", ".join(missing_tre), fontsize=7,
                     transform=axes[1].transAxes, va="top", wrap=True)
    if no_runtime:
        axes[0].text(0.02, 0.02, "not shown (no runtime): " + ", ".join(no_runtime), fontsize=7,
                     transform=axes[0].transAxes, va="bottom", wrap=True)
    if not axes[1].has_data():
        axes[1].set_xscale("linear")
        _message(axes[1], f"TRE does not apply on {dataset}\n(no landmarks, or no method outputs a field)")
    axes[0].set_title("Speed vs NCC", fontsize=9)
    axes[1].set_title("Speed vs TRE", fontsize=9)
    fig.suptitle(f"{dataset}: speed vs accuracy (runtime measured per pair, this machine)", fontsize=10)
    fig.tight_layout()
    for ax, texts in labels.items():  # labels moved apart (and off the points) once the layout is final
        if len(texts) > 1:
            adjust_text(texts, ax=ax, arrowprops={"arrowstyle": "-", "color": "0.5", "lw": 0.5})
    return _save(fig, out)


def fire_success_curves(curves: pd.DataFrame, runs: Sequence[Run], dataset: str, out: Path,
                        aucs: pd.DataFrame | None = None) -> Path:
    """Success rate (% of pairs with error < t) against t = 1..25 px, one panel per category and 'all'.

    ``curves`` is the long table ``run, category, threshold, success_pct``;
    ``aucs`` (optional) has ``run`` and ``auc_<category>`` columns for the legend.
    """
    runs = sort_runs(runs)
    cats = [c for c in ("S", "P", "A") if c in set(curves["category"])] + (["all"] if len(curves) else [])
    if not cats:
        fig, ax = plt.subplots(figsize=(6, 3))
        _message(ax, f"FIRE success curves do not apply on {dataset}:\nno landmarks, or no method outputs a field.")
        ax.set_title(f"{dataset}: FIRE success rate", fontsize=10)
        return _save(fig, out)
    fig, axes = plt.subplots(1, len(cats), figsize=(3.6 * len(cats), 3.6), squeeze=False, sharey=True)
    auc_by_run = aucs.set_index("run") if aucs is not None and len(aucs) else None
    for ax, cat in zip(axes[0], cats):
        for run in runs:
            c = curves[(curves["run"] == run.id) & (curves["category"] == cat)].sort_values("threshold")
            if c.empty:
                continue
            label = run.label
            if auc_by_run is not None and run.id in auc_by_run.index and f"auc_{cat}" in auc_by_run.columns:
                label += f" (AUC {auc_by_run.at[run.id, f'auc_{cat}']:.3f})"
            ax.plot(c["threshold"], c["success_pct"], color=method_color(run.id), marker=".", label=label)
        ax.set_title({"S": "S (>75% overlap)", "P": "P (<75% overlap)", "A": "A (anatomical change)",
                      "all": "all pairs"}[cat], fontsize=9)
        ax.set_xlabel("Error threshold t (px, original resolution)")
        ax.set_xlim(1, 25)
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    axes[0][0].set_ylabel("Success rate (% of pairs with error < t)")
    fig.suptitle(f"{dataset}: FIRE success-rate curves (image-output methods have no landmark error)", fontsize=10)
    fig.tight_layout()
    return _save(fig, out)


def _steps_text(run: Run, df: pd.DataFrame) -> str:
    """"N steps, converged" / "N steps, not converged" from the run's training status (else the log)."""
    status = getattr(run, "training", None) or {}
    steps = status.get("steps") or (int(df["steps"].iloc[-1]) if "steps" in df and len(df) else None)
    state = "converged" if status.get("converged") else "not converged"
    return f"{steps} steps, {state}" if steps is not None else state


def training_curves(runs: Sequence[Run], dataset: str, out: Path) -> Path:
    """Loss (train solid, val dashed), validation NCC and (where logged) EPE/TRE per optimizer step.

    The legend gives each run's steps trained and whether it converged (validation plateau).
    """
    logs = {}
    for run in sort_runs(runs):
        path = run.result_dir / "model" / "train_log.csv"
        if run.trainable and path.is_file():
            df = pd.read_csv(path)
            if len(df) and "epoch" in df:
                logs[run.id] = (run, df)
    if not logs:
        fig, ax = plt.subplots(figsize=(6, 3))
        trainable = [r.label for r in runs if r.trainable]
        text = (f"No training logs on {dataset}." if trainable else f"No learned methods on {dataset}.")
        if trainable:
            text += "\n(" + ", ".join(trainable) + " wrote no model/train_log.csv)"
        _message(ax, text)
        ax.set_title(f"{dataset}: training curves", fontsize=10)
        return _save(fig, out)
    geometric = any(c in df and df[c].notna().any() for _, df in logs.values() for c in ("val_epe", "val_tre"))
    fig, axes = plt.subplots(1, 3 if geometric else 2, figsize=(16 if geometric else 11, 4))
    for run, df in logs.values():
        color = method_color(run.id)
        # x = optimizer steps (logs before the step column: epochs); the legend says steps trained and status.
        x = df["steps"] if "steps" in df else df["epoch"]
        name = f"{run.label} ({_steps_text(run, df)})"
        if "train_loss" in df:
            axes[0].plot(x, df["train_loss"], color=color, label=f"{name} train")
        if "val_loss" in df:
            axes[0].plot(x, df["val_loss"], color=color, linestyle="--", label=f"{run.label} val")
        if "val_ncc" in df:
            axes[1].plot(x, df["val_ncc"], color=color, marker=".", label=name)
        for col, style in (("val_epe", "-"), ("val_tre", ":")):
            if geometric and col in df and df[col].notna().any():
                axes[2].plot(x, df[col], color=color, marker=".", linestyle=style,
                             label=f"{name} {col.removeprefix('val_').upper()}")
    axes[0].set_ylabel("Loss (each method's own training loss)")
    axes[0].set_yscale("log" if all((d.get("train_loss", pd.Series([1])) > 0).all() for _, d in logs.values())
                       else "linear")
    axes[1].set_ylabel("Validation NCC")
    if geometric:
        axes[2].set_ylabel("Validation EPE (solid) / TRE (dotted), px")
    steps = all("steps" in df for _, df in logs.values())
    for ax in axes:
        ax.set_xlabel("Optimizer steps" if steps else "Epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=1, frameon=False)
    fig.suptitle(f"{dataset}: training curves of the learned methods (solid: train, dashed: validation)",
                 fontsize=10)
    fig.tight_layout()
    return _save(fig, out)

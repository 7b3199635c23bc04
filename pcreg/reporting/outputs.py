"""Every table's and figure's file name, defined once.

The Snakemake rules (targets, outputs), the CLI (what it writes) and the tests
take names from here; a name is never spelled out anywhere else. Names are
templates in ``{dataset}`` so a rule can pass the wildcard through unchanged:
``table_stem("stats", "{dataset}")`` is ``results/tables/stats_{dataset}``.

Every output of a run lies under the config's ``results_dir`` (default
``results``): tables, figures, per-method results, logs, benchmarks, spec files
and the manifest. The workflow (workflow/rules/common.smk) derives each path
from it with the helpers below, so two configs with different ``results_dir``
never write to the same file.
"""

from __future__ import annotations

from pathlib import Path

#: The config's default ``results_dir``.
RESULTS_DIR = "results"
TABLES_DIR = f"{RESULTS_DIR}/tables"
FIGURES_DIR = f"{RESULTS_DIR}/figures"
#: Every table is written in these formats (html: the report's view).
TABLE_EXTS = ("csv", "md", "tex", "html")

#: Table kind -> file stem in TABLES_DIR.
TABLES = {
    "summary": "{dataset}",
    "table1": "table1_{dataset}",
    "stats": "stats_{dataset}",
    "geometry": "geometry_{dataset}",
    "audit": "audit_{dataset}",
    "table3": "table3_{dataset}",  # only for temporal datasets
    "ablation": "ablation_{dataset}",  # only when the dataset has ablation runs
    "fidelity": "fidelity_{dataset}",  # only when the dataset has content-fidelity feature masks
}
#: Tables every dataset has (table3 and ablation are conditional).
ALWAYS_TABLES = ("summary", "table1", "stats", "geometry", "audit")
#: The FIRE success curves behind the geometry table (CSV only).
CURVES = "fire_curves_{dataset}.csv"

#: The run's one-page summary (results/summary.md, .html, .txt, .csv) and the fragment of it that the
#: Snakemake report's landing page embeds (workflow/report/workflow.rst).
SUMMARY = "summary"
SUMMARY_EXTS = ("md", "html", "txt", "csv")
SUMMARY_FRAGMENT = "summary-report.html"

#: Figure kind -> file name in FIGURES_DIR.
FIGURES = {
    "qualitative": "{dataset}_qualitative.png",
    "boxplots": "{dataset}_boxplots.png",
    "speed": "{dataset}_speed.png",
    "fire_success": "{dataset}_fire_success.png",
    "training": "{dataset}_training.png",
    "fidelity": "{dataset}_fidelity.png",  # only when the dataset has content-fidelity feature masks
}
#: The figures drawn by ``python -m pcreg plots`` (the qualitative grid is its own command); fire_success
#: only for datasets with landmarks (a figure that does not apply is not drawn).
PLOTS = ("boxplots", "speed", "fire_success", "training")
LANDMARK_PLOTS = ("fire_success",)


def table_name(kind: str, dataset: str) -> str:
    """File stem (no directory, no extension) of table ``kind`` of ``dataset``."""
    return TABLES[kind].format(dataset=dataset)


def table_stem(kind: str, dataset: str, tables_dir: str | Path = TABLES_DIR) -> str:
    """Path without extension of table ``kind`` of ``dataset``."""
    return str(Path(tables_dir) / table_name(kind, dataset))


def table_files(kind: str, dataset: str, exts: tuple[str, ...] = TABLE_EXTS,
                tables_dir: str | Path = TABLES_DIR) -> list[str]:
    """Every file of table ``kind`` of ``dataset``."""
    return [f"{table_stem(kind, dataset, tables_dir)}.{ext}" for ext in exts]


def curves_path(dataset: str, tables_dir: str | Path = TABLES_DIR) -> str:
    """The FIRE success-curve CSV of ``dataset``."""
    return str(Path(tables_dir) / CURVES.format(dataset=dataset))


def figure_path(kind: str, dataset: str, figures_dir: str | Path = FIGURES_DIR) -> str:
    """Path of figure ``kind`` of ``dataset``."""
    return str(Path(figures_dir) / FIGURES[kind].format(dataset=dataset))


def tables_dir(results_dir: str | Path = RESULTS_DIR) -> str:
    """The tables folder of a results folder."""
    return str(Path(results_dir) / "tables")


def figures_dir(results_dir: str | Path = RESULTS_DIR) -> str:
    """The figures folder of a results folder."""
    return str(Path(results_dir) / "figures")


def run_dir(dataset: str, run: str, results_dir: str | Path = RESULTS_DIR) -> str:
    """``<results_dir>/<dataset>/<run>``: a method run's pairs.csv, registered.npy, shards/, model/, audit.csv."""
    return str(Path(results_dir) / dataset / run)


def logs_dir(results_dir: str | Path = RESULTS_DIR) -> str:
    """Every job's log lies under this folder (``<step>/<dataset>[/<run>[/<shard>]].log``)."""
    return str(Path(results_dir) / "logs")


def benchmarks_dir(results_dir: str | Path = RESULTS_DIR) -> str:
    """Snakemake's per-job benchmark TSVs."""
    return str(Path(results_dir) / "benchmarks" / "rules")


def specs_dir(results_dir: str | Path = RESULTS_DIR) -> str:
    """The spec files jobs read (pcreg.specs), named by a hash of their content."""
    return str(Path(results_dir) / "specs")


def manifest_path(results_dir: str | Path = RESULTS_DIR) -> str:
    """The provenance manifest of a results folder."""
    return str(Path(results_dir) / "manifest.json")


def summary_stem(results_dir: str | Path = RESULTS_DIR) -> str:
    """Path without extension of the run's summary (``results/summary``)."""
    return str(Path(results_dir) / SUMMARY)


def summary_files(results_dir: str | Path = RESULTS_DIR) -> list[str]:
    """Every file of the summary, the report's fragment included."""
    return [f"{summary_stem(results_dir)}.{ext}" for ext in SUMMARY_EXTS] + [str(Path(results_dir) / SUMMARY_FRAGMENT)]

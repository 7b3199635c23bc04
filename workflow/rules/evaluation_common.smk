# Helpers of the table, figure and audit rules (aggregate.smk, audit.smk): run lists and conditional targets.
import os
import re

from pcreg.datasets import get_dataset_type
from pcreg.reporting.paper_values import temporal_paper_datasets
from pcreg.reporting.outputs import (
    ALWAYS_TABLES,
    LANDMARK_PLOTS,
    PLOTS,
    curves_path,
    figure_path,
    figures_dir,
    summary_files,
    summary_stem,
    table_files,
    table_stem,
    tables_dir,
)

TABLES = tables_dir(RES)
FIGURES = figures_dir(RES)

TEMPORAL_PAPER_DATASETS = temporal_paper_datasets()  # from pcreg/data/paper_values.csv
# Only configured dataset names: the summary table "{dataset}.csv" must not also match "table1_<dataset>.csv".
DATASET_RE = "|".join(re.escape(d) for d in DATASETS)


def paper_reference_arg(dataset):
    """The dataset's paper reference ("" for none: the command reads it as none)."""
    return config["datasets"][dataset].get("paper_reference") or ""


def has_table3(dataset):
    """A paper reference with a Table 3 (OR-PAM), or a dataset type that declares itself temporal (TEMPORAL = True)."""
    spec = config["datasets"][dataset]
    return spec.get("paper_reference") in TEMPORAL_PAPER_DATASETS or getattr(get_dataset_type(spec["type"]), "TEMPORAL", False)


def has_ablation(dataset):
    return any(config["methods"][r]["group"] == "ablation" for r in runs_for(dataset))


def has_lesions(dataset):
    """A dataset type that declares feature masks: LESIONS = True, or has_lesions(params) for optional ones."""
    spec = config["datasets"][dataset]
    dataset_type = get_dataset_type(spec["type"])
    check = getattr(dataset_type, "has_lesions", None)
    if callable(check):
        return bool(check(spec.get("params", {})))
    return bool(getattr(dataset_type, "LESIONS", False))


def has_landmarks(dataset):
    """A dataset type that declares landmarks: LANDMARKS = True/False, or has_landmarks(params); unknown: True."""
    spec = config["datasets"][dataset]
    dataset_type = get_dataset_type(spec["type"])
    check = getattr(dataset_type, "has_landmarks", None)
    if callable(check):
        return bool(check(spec.get("params", {})))
    return bool(getattr(dataset_type, "LANDMARKS", True))


def plots_of(dataset):
    """The figures of `python -m pcreg plots` that apply to ``dataset`` (no placeholder figures)."""
    return [p for p in PLOTS if p not in LANDMARK_PLOTS or has_landmarks(dataset)]


def fidelity_targets():
    return [
        path
        for d in DATASETS
        if has_lesions(d)
        for path in table_files("fidelity", d, tables_dir=TABLES) + [figure_path("fidelity", d, FIGURES)]
    ]


def dataset_pairs(w):
    """The dataset's run list and every run's pairs.csv."""
    return [run_list_path(w.dataset)] + [pairs_csv(w.dataset, r) for r in runs_for(w.dataset)]


def evaluation_targets():
    """Every table and figure of every dataset (the conditional ones where they apply)."""
    targets = []
    for d in DATASETS:
        for kind in ALWAYS_TABLES:
            targets += table_files(kind, d, tables_dir=TABLES)
        targets.append(curves_path(d, TABLES))
        if has_table3(d):
            targets += table_files("table3", d, tables_dir=TABLES)
        if has_ablation(d):
            targets += table_files("ablation", d, tables_dir=TABLES)
        targets.append(figure_path("qualitative", d, FIGURES))
        targets += [figure_path(p, d, FIGURES) for p in plots_of(d)]
    return targets + fidelity_targets()

# Helpers of the table, figure and audit rules (aggregate.smk, audit.smk): run lists and conditional targets.
import os
import re

from pcreg.datasets import get_dataset_type
from pcreg.reporting.paper_values import temporal_paper_datasets
from pcreg.reporting.outputs import (ALWAYS_TABLES, LANDMARK_PLOTS, PLOTS, curves_path, figure_path, summary_files,
                                     summary_stem, table_files, table_stem)

TEMPORAL_PAPER_DATASETS = temporal_paper_datasets()  # from pcreg/data/paper_values.csv
# Only configured dataset names: the summary table "{dataset}.csv" must not also match "table1_<dataset>.csv".
DATASET_RE = "|".join(re.escape(d) for d in DATASETS)


def paper_reference_arg(dataset):
    ref = config["datasets"][dataset].get("paper_reference")
    return f"--paper-reference {ref}" if ref else ""


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
        for path in table_files("fidelity", d) + [figure_path("fidelity", d)]
    ]


def dataset_pairs(w):
    """The dataset's run list and every run's pairs.csv."""
    return [run_list_path(w.dataset)] + [f"results/{w.dataset}/{r}/pairs.csv" for r in runs_for(w.dataset)]


def evaluation_targets():
    """Every table and figure of every dataset (the conditional ones where they apply)."""
    targets = []
    for d in DATASETS:
        for kind in ALWAYS_TABLES:
            targets += table_files(kind, d)
        targets.append(curves_path(d))
        if has_table3(d):
            targets += table_files("table3", d)
        if has_ablation(d):
            targets += table_files("ablation", d)
        targets.append(figure_path("qualitative", d))
        targets += [figure_path(p, d) for p in plots_of(d)]
    return targets + fidelity_targets()

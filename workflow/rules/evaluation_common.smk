# Helpers of the table, figure and audit rules (aggregate.smk, audit.smk): run lists and conditional targets.
import os
import re

from pcreg.datasets import get_dataset_type

PAPER_ORPAM = ("orpam-4k", "orpam-temporal-26k")
TABLE_EXTS = ["csv", "md", "tex", "html"]  # html: the report's view
PLOTS = ["boxplots", "speed", "fire_success", "training"]
# Only configured dataset names: "results/tables/{dataset}.csv" must not also match "table1_<dataset>.csv".
DATASET_RE = "|".join(re.escape(d) for d in DATASETS)


def eval_runs_json(dataset):
    """The runs of a dataset as the JSON the table/figure commands take (with method, trainable, params)."""
    return json.dumps([
        {"id": r, "label": config["methods"][r]["label"], "group": config["methods"][r]["group"],
         "method": config["methods"][r]["method"], "trainable": is_trainable(r),
         "params": config["methods"][r]["params"], "pairs_csv": f"results/{dataset}/{r}/pairs.csv"}
        for r in runs_for(dataset)
    ])


def paper_reference_arg(dataset):
    ref = config["datasets"][dataset].get("paper_reference")
    return f"--paper-reference {ref}" if ref else ""


def has_table3(dataset):
    """An OR-PAM paper reference, or a dataset type that declares itself temporal (TEMPORAL = True)."""
    spec = config["datasets"][dataset]
    return spec.get("paper_reference") in PAPER_ORPAM or getattr(get_dataset_type(spec["type"]), "TEMPORAL", False)


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


def fidelity_targets():
    return [
        path
        for d in DATASETS
        if has_lesions(d)
        for path in [f"results/tables/fidelity_{d}.{ext}" for ext in TABLE_EXTS]
        + [f"results/figures/{d}_fidelity.png"]
    ]


def dataset_pairs(w):
    return [f"results/{w.dataset}/{r}/pairs.csv" for r in runs_for(w.dataset)]


def evaluation_targets():
    """Every table and figure of every dataset (the conditional ones where they apply)."""
    targets = []
    for d in DATASETS:
        for stem in (d, f"table1_{d}", f"stats_{d}", f"geometry_{d}", f"audit_{d}"):
            targets += [f"results/tables/{stem}.{ext}" for ext in TABLE_EXTS]
        targets.append(f"results/tables/fire_curves_{d}.csv")
        if has_table3(d):
            targets += [f"results/tables/table3_{d}.{ext}" for ext in TABLE_EXTS]
        if has_ablation(d):
            targets += [f"results/tables/ablation_{d}.{ext}" for ext in TABLE_EXTS]
        targets.append(f"results/figures/{d}_qualitative.png")
        targets += [f"results/figures/{d}_{p}.png" for p in PLOTS]
    return targets + fidelity_targets()

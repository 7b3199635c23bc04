# Shared definitions: paths, run lists and helpers used by the rules.
from baselines import get_method_class

DATA = config["data_dir"]
DATASETS = list(config["datasets"])
SHARDS = list(range(config["shards"]))
THREADS = config["threads"]


wildcard_constraints:
    dataset=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    run=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    shard=r"\d+",


def runs_for(dataset):
    """Method run ids that apply to ``dataset`` (config order)."""
    return [r for r, spec in config["methods"].items() if not spec.get("datasets") or dataset in spec["datasets"]]


def run_spec(run):
    spec = dict(config["methods"][run])
    spec["id"] = run
    return spec


def is_trainable(run):
    return get_method_class(config["methods"][run]["method"]).is_trainable()


def runs_json(dataset):
    """The runs of a dataset as the JSON the aggregate/figures commands take."""
    return json.dumps([
        {"id": r, "label": config["methods"][r]["label"], "group": config["methods"][r]["group"],
         "pairs_csv": f"results/{dataset}/{r}/pairs.csv"}
        for r in runs_for(dataset)
    ])


def register_inputs(w):
    """The prepared dataset, plus the trained model for learned methods."""
    inputs = [f"{DATA}/{w.dataset}/dataset.json"]
    if is_trainable(w.run):
        inputs.append(f"results/{w.dataset}/{w.run}/model/model.json")
    return inputs

# Shared definitions: paths, run lists and helpers used by the rules.
import re

from pcreg.datasets import get_dataset_type
from pcreg.datasets.source_files import fingerprint, source_files
from pcreg.methods.registry import get_method_class
from pcreg.specs import write_spec

DATA = config["data_dir"]
DATASETS = list(config["datasets"])
THREADS = config["threads"]
RESOURCES = config["resources"]


wildcard_constraints:
    dataset=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    run=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    shard=r"\d+",


def needs_ground_truth(run):
    """True for the perfect-registration reference (``ground_truth``), which reads the dataset's fields."""
    return get_method_class(config["methods"][run]["method"]).needs_ground_truth


def has_ground_truth_field(dataset):
    """True for dataset types whose every pair has a ground-truth field (the synthetic ones)."""
    return bool(getattr(get_dataset_type(config["datasets"][dataset]["type"]), "GROUND_TRUTH_FIELD", False))


def runs_for(dataset):
    """Method run ids that apply to ``dataset`` (config order); the ground-truth reference only with fields."""
    return [r for r, spec in config["methods"].items()
            if (not spec.get("datasets") or dataset in spec["datasets"])
            and (has_ground_truth_field(dataset) or not needs_ground_truth(r))]


def audited_runs(dataset):
    """Runs of the sanity audit: every run but the ground-truth reference (it reads the answer, not the images)
    and the further training seeds (``<id>.seed<k>``; the run itself, seed 0, is audited)."""
    return [r for r in primary_runs(dataset) if not needs_ground_truth(r)]


def primary_runs(dataset):
    """``runs_for(dataset)`` without the extra training seeds (``<id>.seed<k>``, config ``seeds``): the runs
    that are audited and shown as rows; the seeds count only in the ablation table's mean ± sd."""
    return [r for r in runs_for(dataset) if not config["methods"][r].get("seed_of")]


def run_spec(run):
    spec = dict(config["methods"][run])
    spec["id"] = run
    return spec


def is_trainable(run):
    return get_method_class(config["methods"][run]["method"]).is_trainable()


def shards_of(run):
    """Number of test-pair shards of a method run (its own `shards`, else the top-level one)."""
    return config["methods"][run].get("shards", config["shards"])


def uses_gpu(run):
    """True for the jobs that get a GPU: learned methods, unless the config pins the CPU."""
    return config["device"] != "cpu" and is_trainable(run)


def job_resources(step, run):
    """Scheduler resources of a `fit`/`register_learned` job: config defaults, the run's overrides; a GPU
    (and CPUs per GPU, GPU model) only when the run uses one."""
    res = {**RESOURCES[step], **config["methods"][run].get("resources", {}).get(step, {})}
    if not uses_gpu(run) or res["gpu"] == 0:
        res.update(gpu=0, cpus_per_gpu=None, gpu_model=None)
    return res


def job_resource(step, key):
    """Resource callable for ``key`` of a job of ``step``; None (unset) where it does not apply."""
    def get(wildcards):
        value = job_resources(step, wildcards.run).get(key)
        return None if value == "" else value
    return get


def run_constraint(runs, exclude=False):
    """Wildcard regex matching exactly the run ids ``runs`` (``exclude``: any run id but those)."""
    names = "|".join(re.escape(r) for r in sorted(runs, key=len, reverse=True))
    exact = rf"(?:{names})(?![A-Za-z0-9_.-])" if runs else r"(?!)"
    return rf"(?!{exact})[A-Za-z0-9][A-Za-z0-9_.-]*" if exclude else exact


# Learned methods train (rule fit) and register in their own rule (register_learned), the only rules that
# can ask for a GPU; a profile can then send exactly these to a GPU partition with set-resources.
LEARNED_RUNS = [r for r in config["methods"] if is_trainable(r)]


# A job reads its spec from a file, never JSON on its command line (pcreg/specs.py). The files are
# (re)written here, when the config is parsed, only where their content changed: their mtimes then make
# Snakemake re-run exactly the jobs a config change affects.
SPECS = "results/specs"


def dataset_spec_path(dataset):
    """A dataset's spec (type, params), next to the prepared data so that a fresh results/ keeps it."""
    return f"{DATA}/.specs/{dataset}.json"


def run_spec_path(run):
    """A method run's config section (with its id)."""
    return f"{SPECS}/runs/{run}.json"


def run_list_path(dataset):
    """The runs of a dataset, the list the table, figure and audit-table commands read."""
    return f"{SPECS}/run-lists/{dataset}.json"


CONFIG_SPEC = f"{SPECS}/config.json"


def run_list(dataset):
    """The runs of a dataset: id, label, group, method, trainable, params and their pairs.csv."""
    return [
        {"id": r, "label": config["methods"][r]["label"], "group": config["methods"][r]["group"],
         "method": config["methods"][r]["method"], "trainable": is_trainable(r),
         "params": config["methods"][r]["params"], "pairs_csv": f"results/{dataset}/{r}/pairs.csv",
         "seed_of": config["methods"][r].get("seed_of", "")}
        for r in runs_for(dataset)
    ]


for _d in DATASETS:
    write_spec(dataset_spec_path(_d), {k: config["datasets"][_d][k] for k in ("type", "params")})
    write_spec(run_list_path(_d), run_list(_d))
for _r in config["methods"]:
    write_spec(run_spec_path(_r), run_spec(_r))
write_spec(CONFIG_SPEC, config)


def register_inputs(w):
    """The run's spec and the prepared dataset, plus the trained model for learned methods."""
    inputs = [run_spec_path(w.run), f"{DATA}/{w.dataset}/dataset.json"]
    if is_trainable(w.run):
        inputs.append(f"results/{w.dataset}/{w.run}/model/model.json")
    return inputs


def dataset_source_files(wildcards):
    """A folder dataset's files (pcreg/datasets/source_files.py): changing them re-prepares the dataset."""
    return [str(p) for p in source_files(config["datasets"][wildcards.dataset])]


def dataset_fingerprint(wildcards):
    """Names, sizes and mtimes of those files, hashed: a parameter (not derived from input, which Snakemake
    ignores for reruns), so a replaced file re-prepares even when its modification time is older."""
    return fingerprint(source_files(config["datasets"][wildcards.dataset]))

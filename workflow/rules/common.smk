# Shared definitions: paths, run lists and helpers used by the rules.
# Every path a rule writes derives from config results_dir (RES) or data_dir (DATA), through the helpers of
# pcreg/reporting/outputs.py; every value a shell command gets is quoted ({params.x:q}, {input:q}, {log:q}), so a
# path with spaces, quotes, $(...), ; or & is passed as it is and never run.
import os
import re

from pcreg.code_fingerprint import code_fingerprint, method_code
from pcreg.datasets import get_dataset_type
from pcreg.datasets.source_files import fingerprint, folder_files, source_files
from pcreg.methods.registry import get_method_class
from pcreg.reporting.outputs import benchmarks_dir, logs_dir, manifest_path, run_dir, specs_dir
from pcreg.specs import write_named_spec

DATA = config["data_dir"]
RES = config["results_dir"]
LOGS = logs_dir(RES)
BENCH = benchmarks_dir(RES)
MANIFEST = manifest_path(RES)
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


def result_dir(dataset, run):
    """``<results_dir>/<dataset>/<run>``: a run's pairs.csv, registered.npy, shards/, model/ and audit.csv."""
    return run_dir(dataset, run, RES)


def pairs_csv(dataset, run):
    return f"{result_dir(dataset, run)}/pairs.csv"


def model_json(dataset, run):
    return f"{result_dir(dataset, run)}/model/model.json"


# A job reads its spec from a file, never JSON on its command line (pcreg/specs.py). Each file's name carries a
# hash of its content, so one written here, when the config is parsed, never changes: a second invocation with
# another config (a dry run, a refused or a concurrent run) cannot change a running job's parameters, and a
# changed config gives the job a new input, which reruns it.
SPECS = specs_dir(RES)


def dataset_spec_path(dataset):
    """A dataset's spec (type, params), next to the prepared data so that a fresh results folder keeps it."""
    return _DATASET_SPECS[dataset]


def run_spec_path(run):
    """A method run's config section (with its id)."""
    return _RUN_SPECS[run]


def run_list_path(dataset):
    """The runs of a dataset, the list the table, figure and audit-table commands read."""
    return _RUN_LISTS[dataset]


def run_list(dataset):
    """The runs of a dataset: id, label, group, method, trainable, params and their pairs.csv."""
    return [
        {"id": r, "label": config["methods"][r]["label"], "group": config["methods"][r]["group"],
         "method": config["methods"][r]["method"], "trainable": is_trainable(r),
         "params": config["methods"][r]["params"], "pairs_csv": pairs_csv(dataset, r),
         "seed_of": config["methods"][r].get("seed_of", "")}
        for r in runs_for(dataset)
    ]


_DATASET_SPECS = {d: write_named_spec(f"{DATA}/.specs", d, {k: config["datasets"][d][k] for k in ("type", "params")})
                  for d in DATASETS}
_RUN_LISTS = {d: write_named_spec(f"{SPECS}/run-lists", d, run_list(d)) for d in DATASETS}
_RUN_SPECS = {r: write_named_spec(f"{SPECS}/runs", r, run_spec(r)) for r in config["methods"]}
CONFIG_SPEC = write_named_spec(SPECS, "config", config)


def register_inputs(w):
    """The run's spec and the prepared dataset, plus the trained model for learned methods."""
    inputs = [run_spec_path(w.run), f"{DATA}/{w.dataset}/dataset.json"]
    if is_trainable(w.run):
        inputs.append(model_json(w.dataset, w.run))
    return inputs


def dataset_source_files(wildcards):
    """A folder dataset's files (pcreg/datasets/source_files.py): changing them re-prepares the dataset.

    Files whose names hold a brace are left out: Snakemake would read it as a wildcard of the path (a
    WildcardError that stops every dataset). dataset_fingerprint still covers them."""
    return [str(p) for p in source_files(config["datasets"][wildcards.dataset]) if not set("{}") & set(str(p))]


def dataset_fingerprint(wildcards):
    """Names, sizes and mtimes of those files, hashed: a parameter (not derived from input, which Snakemake
    ignores for reruns), so a replaced file re-prepares even when its modification time is older."""
    return fingerprint(source_files(config["datasets"][wildcards.dataset]))


def model_arg(w):
    """The trained model's folder for a learned run ("" for others: the command reads it as no model)."""
    return f"{result_dir(w.dataset, w.run)}/model" if is_trainable(w.run) else ""


# Results follow the code (pcreg/code_fingerprint.py): each rule has a `code` parameter, a fingerprint of the
# source its step runs (a method's own module for the steps that run one) and of the key libraries' versions,
# so that editing, say, the scoring code reruns evaluation. Computed once per invocation.
_CODE = {stage: code_fingerprint(stage) for stage in ("prepare", "evaluate", "report")}


def _method_code(method):
    return {stage: method_code(get_method_class(method), stage) for stage in ("method", "audit")}


_BY_METHOD = {m: _method_code(m) for m in {spec["method"] for spec in config["methods"].values()}}
_METHOD_CODE = {r: _BY_METHOD[spec["method"]] for r, spec in config["methods"].items()}


def method_code(stage):
    """`code` parameter of a job that runs a method (stage "method": fit, register; "audit")."""
    def get(wildcards):
        return _METHOD_CODE[wildcards.run][stage]
    return get


def precomputed_content(wildcards):
    """Names, sizes and mtimes of a precomputed run's folder (followed through links), hashed: replacing the
    method's outputs rescores it. "" for every other method."""
    spec = config["methods"][wildcards.run]
    if get_method_class(spec["method"]).name != "precomputed":
        return ""
    return fingerprint(folder_files(Path(spec["params"]["path"]).expanduser()))


def code_of_results():
    """Per result, the fingerprints of the code that produced it (for the manifest)."""
    out = {}
    for d in DATASETS:
        for r in runs_for(d):
            stages = {"prepare": _CODE["prepare"], "evaluate": _CODE["evaluate"], "audit": _METHOD_CODE[r]["audit"],
                      "register": _METHOD_CODE[r]["method"]}
            if is_trainable(r):
                stages["fit"] = _METHOD_CODE[r]["method"]
            out[pairs_csv(d, r)] = stages
    out["tables and figures"] = {"report": _CODE["report"]}
    return out


CODE_SPEC = write_named_spec(SPECS, "code", code_of_results())

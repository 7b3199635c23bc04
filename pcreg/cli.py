"""Command line of the suite (``python -m pcreg <command>``); the Snakemake rules call these.

Each command does one step of the workflow. Specs (a dataset's or a method
run's config section, a dataset's run list, the config) come as JSON files
written by the workflow (:mod:`pcreg.specs`), never as JSON on the command line.
A problem the user can fix is reported as one line on stderr with exit status 2,
never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pcreg.errors import UserError
from pcreg.threads import set_threads


def _json(path: str) -> Any:
    """A spec file written by the workflow (pcreg.specs)."""
    from pcreg.specs import read_spec

    return read_spec(path)


def cmd_validate_config(args: argparse.Namespace) -> None:
    import yaml
    from snakemake.utils import update_config

    from pcreg.config import validate_config

    merged: dict[str, Any] = {}
    for path in args.configfile:
        if not Path(path).is_file():
            raise UserError(f"config file not found: {path}")
        update_config(merged, yaml.safe_load(Path(path).read_text()) or {})  # key by key, as Snakemake merges
    config = validate_config(merged)
    if config["device"] == "cuda" and not args.no_device_check:
        import torch

        if not torch.cuda.is_available():
            from pcreg.methods.training import cuda_status

            raise UserError(f"config error at device: 'cuda', but {cuda_status()}; set device: auto or cpu (or, "
                            "where jobs run on GPU nodes of a cluster, pass --no-device-check on the login node)")
    print(f"config OK: {len(config['datasets'])} dataset(s), {len(config['methods'])} method run(s)")


_CHECK_MARK = "::check "


def cmd_check_method(args: argparse.Namespace) -> None:
    """The plug-in contract checks on one method, one line per problem; exit 1 on problems.

    The checks run in a child process, so that a method that kills the process (a segfault in a C library)
    is reported with the check that was running, not as a dead terminal."""
    import signal
    import subprocess

    if args.in_process:
        _check_method_here(args)
        return
    cmd = [sys.executable, "-m", "pcreg", "check-method", args.method, "--in-process"]
    if args.params:
        cmd += ["--params", args.params]
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, bufsize=1)
    current = "loading the method"
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith(_CHECK_MARK):
            current = line[len(_CHECK_MARK):].strip()
        else:
            print(line, end="", flush=True)
    code = child.wait()
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        print(f"PROBLEM crash: the method crashed the process (signal {-code}, {name}) during the '{current}' check; "
              "in a benchmark run that pair is a failed pair (guard the input in register before calling the library)")
        sys.exit(1)
    sys.exit(code)


def _check_method_here(args: argparse.Namespace) -> None:
    import yaml

    from pcreg.methods.check import run_checks

    params = None
    if args.params:
        if not Path(args.params).is_file():
            raise UserError(f"params file not found: {args.params}")
        params = yaml.safe_load(Path(args.params).read_text()) or {}
        if not isinstance(params, dict):
            raise UserError(f"{args.params}: expected a mapping of the method's params")
    problems, info = run_checks(args.method, params, progress=lambda c: print(f"{_CHECK_MARK}{c}", flush=True))
    for line in info:
        print(line)
    for line in problems:
        print(f"PROBLEM {line}")
    print(f"{len(problems)} problem(s)" if problems else "OK: the method honours the plug-in contract")
    if problems:
        sys.exit(1)


def cmd_prepare(args: argparse.Namespace) -> None:
    from pcreg.datasets import get_dataset_type
    from pcreg.schema import validate_params

    spec = _json(args.spec)
    module = get_dataset_type(spec["type"])
    params = validate_params(module, spec.get("params", {}), f"datasets.{args.name}.params")
    module.prepare(Path(args.out), args.name, params, args.seed)


def _method_failed(what: str, spec: dict[str, Any], reason: str) -> None:
    """Say in the job's log that the method failed and that its results are marked failed (the run goes on)."""
    import traceback

    traceback.print_exc()
    print(f"pcreg: {spec.get('id', spec['method'])}: {what} failed ({reason}); its results are marked failed in "
          "every table and the other methods go on. Fix the method and rerun.", file=sys.stderr)


def _check_precomputed(spec: dict[str, Any], data: Path) -> None:
    """Outputs made elsewhere must come from this dataset's test pairs (their export.json, when present)."""
    from pcreg.export import check_outputs_match
    from pcreg.methods.registry import get_method_class

    if get_method_class(spec["method"]).name == "precomputed" and spec.get("params", {}).get("path"):
        check_outputs_match(Path(spec["params"]["path"]).expanduser(), data)


def cmd_fit(args: argparse.Namespace) -> None:
    from pcreg.methods.runner import failure_reason, fit_method, is_infrastructure_error, write_failed_model

    spec = _json(args.run)
    try:
        fit_method(Path(args.data), spec, Path(args.out), seed=args.seed, threads=args.threads, device=args.device)
    except Exception as exc:  # the method failed: mark it failed, so that every other method goes on
        if is_infrastructure_error(exc):
            raise
        reason = failure_reason(exc)
        _method_failed("training", spec, reason)
        write_failed_model(Path(args.out), spec, seed=args.seed, dataset=Path(args.data).name, reason=reason)


def cmd_register(args: argparse.Namespace) -> None:
    from pcreg.methods.runner import (
        failure_reason,
        fit_failure,
        is_infrastructure_error,
        register_shard,
        write_failed_shard,
    )

    spec = _json(args.run)
    _check_precomputed(spec, Path(args.data))
    model = Path(args.model) if args.model else None
    reason = fit_failure(model)
    if reason is not None:  # nothing to register with: every pair failed, with the reason
        write_failed_shard(Path(args.data), spec, args.shard, args.shards, Path(args.out), f"fit failed: {reason}")
        return
    try:
        register_shard(Path(args.data), spec, args.shard, args.shards, Path(args.out), seed=args.seed,
                       threads=args.threads, device=args.device, model_dir=model)
    except Exception as exc:  # a failure outside any one pair (building or loading the method)
        if is_infrastructure_error(exc):
            raise
        reason = failure_reason(exc)
        _method_failed("registration", spec, reason)
        write_failed_shard(Path(args.data), spec, args.shard, args.shards, Path(args.out), reason)


def cmd_evaluate(args: argparse.Namespace) -> None:
    from pcreg.evaluation.scoring import evaluate_method

    evaluate_method(Path(args.data), [Path(p) for p in args.shard_files], Path(args.out))


def _runs(text: str, seeds: bool = False):  # noqa: ANN202
    """The runs of a run list; without ``seeds``, the further training seeds (``<id>.seed<k>``) are left out:
    only the ablation table uses them (mean ± sd over seeds)."""
    from pcreg.reporting.tables import Run
    from pcreg.reporting.training_status import with_status

    runs = [Run(r["id"], r["label"], r["group"], Path(r["pairs_csv"]), method=r.get("method", r["id"]),
                trainable=bool(r.get("trainable", False)), params=r.get("params") or {},
                seed_of=r.get("seed_of") or "") for r in _json(text)]
    if not seeds:
        runs = [r for r in runs if not r.seed_of]
    return with_status(runs)  # labels of non-converged learned runs marked, in every table and figure


def cmd_aggregate(args: argparse.Namespace) -> None:
    from pcreg.reporting.outputs import curves_path, table_stem
    from pcreg.reporting.paper_tables import table1
    from pcreg.reporting.result_tables import geometry_table, stats_table
    from pcreg.reporting.tables import GROUND_TRUTH_NOTE, is_ground_truth, load_pairs, overview_doc, summarize_runs
    from pcreg.reporting.training_status import write_run_doc as write_doc

    runs = _runs(args.runs)
    out = Path(args.out_dir)
    ds = args.dataset
    summary = summarize_runs(runs, n_boot=args.n_boot, seed=args.seed, alpha=args.alpha)
    notes = ["n/a: the metric does not apply (no field, no landmarks or no ground-truth field). "
             "TRE in pixels of the original images (as in the geometry table and the box and speed plots); "
             "EPE in pixels of the dataset's images. The CSV has the bootstrap CIs."]
    if any(is_ground_truth(r) for r in runs):
        notes.append(GROUND_TRUTH_NOTE)
    write_doc(overview_doc(summary, f"{ds}: test pairs, mean ± std per method", notes=notes),
              summary, Path(table_stem("summary", ds, out)), runs)
    pairs = load_pairs(runs)
    data, doc = table1(summary, runs, ds, args.paper_reference)
    write_doc(doc, data, Path(table_stem("table1", ds, out)), runs)
    data, doc = stats_table(pairs, runs, ds, reference=args.reference, n_boot=args.n_boot, seed=args.seed,
                            alpha=args.alpha)
    write_doc(doc, data, Path(table_stem("stats", ds, out)), runs)
    working = None
    if args.data:
        from pcreg.datasets.format import PreparedDataset

        prepared = PreparedDataset(args.data)
        working = {"image_shape": prepared.image_shape, "original_scale": prepared.original_scale,
                   "original_size": prepared.meta.get("spec", {}).get("original_size")}
    data, doc, curves = geometry_table(pairs, runs, ds, direction=args.fire_direction, working=working)
    write_doc(doc, data, Path(table_stem("geometry", ds, out)), runs)
    curves.to_csv(curves_path(ds, out), index=False)


def cmd_summary(args: argparse.Namespace) -> None:
    from pcreg.reporting.outputs import table_stem
    from pcreg.reporting.summary import summarize_dataset, write_summary

    summaries = []
    for name, runs in args.dataset:
        summaries.append(summarize_dataset(
            name, _runs(runs), audit_csv=Path(table_stem("audit", name, args.tables_dir) + ".csv"),
            fidelity_csv=Path(table_stem("fidelity", name, args.tables_dir) + ".csv"), n_boot=args.n_boot,
            seed=args.seed, alpha=args.alpha))
    write_summary(summaries, Path(args.out_stem), Path(args.fragment) if args.fragment else None)


def cmd_table3(args: argparse.Namespace) -> None:
    from pcreg.datasets.format import PreparedDataset
    from pcreg.reporting.paper_tables import is_temporal, table3, temporal_by_run
    from pcreg.reporting.tables import summarize_runs
    from pcreg.reporting.training_status import write_run_doc as write_doc

    runs = _runs(args.runs)
    summary = summarize_runs(runs)
    temporal = odd = None
    if is_temporal(PreparedDataset(args.data).split("test").manifest):
        temporal, odd = temporal_by_run(Path(args.data), [r for r in runs if r.group != "ablation"])
    data, doc = table3(summary, runs, args.dataset, args.paper_reference, temporal, odd)
    write_doc(doc, data, Path(args.out_stem), runs)


def cmd_ablation(args: argparse.Namespace) -> None:
    from pcreg.reporting.paper_tables import ablation_table
    from pcreg.reporting.tables import summarize_runs
    from pcreg.reporting.training_status import write_run_doc as write_doc

    runs = _runs(args.runs, seeds=True)
    data, doc = ablation_table(summarize_runs(runs), runs, args.dataset, args.paper_reference, args.reference)
    write_doc(doc, data, Path(args.out_stem), runs)


#: Test pairs the audit needs (its shuffled condition gives each pair another pair's moving image).
AUDIT_MIN_PAIRS = 2


def _audit_skipped(data: Path) -> str | None:
    """Why the audit cannot run on this dataset (one line), or None."""
    from pcreg.datasets.format import PreparedDataset

    n = len(PreparedDataset(data).split("test"))
    if n < AUDIT_MIN_PAIRS:
        return (f"audit skipped: the dataset has {n} test pair(s), and the audit needs at least {AUDIT_MIN_PAIRS} "
                "(it gives each pair another pair's moving image)")
    return None


def _write_csv(frame: Any, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(out)


def cmd_audit(args: argparse.Namespace) -> None:
    import pandas as pd

    from pcreg.evaluation.audit_run import audit_run
    from pcreg.methods.runner import failure_reason, fit_failure, is_infrastructure_error

    spec = _json(args.run)
    _check_precomputed(spec, Path(args.data))
    skipped = _audit_skipped(Path(args.data))
    if skipped:
        print(f"pcreg: {skipped}", file=sys.stderr)
        _write_csv(pd.DataFrame({"method": [], "pair_id": [], "condition": [], "reason": []}), Path(args.out))
        return
    model = Path(args.model) if args.model else None
    reason = fit_failure(model)
    if reason is None:
        try:
            audit_run(Path(args.data), spec, Path(args.out), n_pairs=args.pairs, seed=args.seed,
                      threads=args.threads, device=args.device, model_dir=model, blank=args.blank)
            return
        except Exception as exc:  # the method failed outside any one pair: not audited, with the reason
            if is_infrastructure_error(exc):
                raise
            reason = failure_reason(exc)
            _method_failed("the audit", spec, reason)
    else:
        reason = f"fit failed: {reason}"
    _write_csv(pd.DataFrame({"method": [spec.get("id", spec["method"])], "pair_id": [""], "condition": [""],
                             "reason": [reason]}), Path(args.out))


def cmd_audit_table(args: argparse.Namespace) -> None:
    from pcreg.reporting.audit_table import audit_table, skipped_audit_table

    skipped = _audit_skipped(Path(args.data))
    if skipped:
        print(f"pcreg: {skipped}", file=sys.stderr)
        skipped_audit_table(_runs(args.runs), Path(args.out_stem), args.dataset, skipped)
        return
    audit_table(Path(args.data), _runs(args.runs), [Path(p) for p in args.audit_files], Path(args.out_stem),
                args.dataset, n_pairs=args.pairs, seed=args.seed, blank=args.blank)


def cmd_fidelity(args: argparse.Namespace) -> None:
    from pcreg.reporting.fidelity import fidelity_figure, fidelity_table

    runs = _runs(args.runs)
    fidelity_table(Path(args.data), runs, args.dataset, Path(args.out_stem), n_boot=args.n_boot, seed=args.seed,
                   alpha=args.alpha)
    fidelity_figure(Path(args.data), runs, args.dataset, Path(args.figure), n_features=args.features)


def cmd_figures(args: argparse.Namespace) -> None:
    from pcreg.reporting.figures import qualitative_grid

    qualitative_grid(Path(args.data), _runs(args.runs), Path(args.out), n_pairs=args.pairs)


def cmd_plots(args: argparse.Namespace) -> None:
    from pcreg.reporting.outputs import PLOTS, figure_path
    from pcreg.reporting.plots import box_plots, fire_success_curves, speed_accuracy, training_curves
    from pcreg.reporting.result_tables import geometry_table
    from pcreg.reporting.tables import load_pairs

    runs = _runs(args.runs)
    out, ds = Path(args.out_dir), args.dataset
    pairs = load_pairs(runs)
    wanted = set(args.only or PLOTS)
    if "boxplots" in wanted:
        box_plots(pairs, runs, ds, Path(figure_path("boxplots", ds, out)))
    if "speed" in wanted:
        speed_accuracy(pairs, runs, ds, Path(figure_path("speed", ds, out)))
    if "fire_success" in wanted:
        geometry, _, curves = geometry_table(pairs, runs, ds, direction=args.fire_direction)
        fire_success_curves(curves, runs, ds, Path(figure_path("fire_success", ds, out)), aucs=geometry)
    if "training" in wanted:
        training_curves(runs, ds, Path(figure_path("training", ds, out)))


def cmd_export(args: argparse.Namespace) -> None:
    from pcreg.export import export_dataset, resolve_dataset

    root, config = resolve_dataset(args.dataset, Path(args.configfile) if args.configfile else None)
    audit = config.get("audit", {})
    out = export_dataset(root, Path(args.out_dir), splits=tuple(args.splits),
                         audit_pairs=audit.get("pairs", args.audit_pairs), seed=config.get("seed", args.seed),
                         blank=audit.get("blank", args.blank))
    print(f"exported {root} to {out}")


def cmd_manifest(args: argparse.Namespace) -> None:
    from pcreg.manifest import write_manifest

    write_manifest(_json(args.config), Path(args.out), Path(args.repo), code=_json(args.code) if args.code else None)


def cmd_calibrate(args: argparse.Namespace) -> None:
    import tempfile

    from pcreg.config import load_config, validate_params
    from pcreg.datasets import get_dataset_type
    from pcreg.datasets.format import PreparedDataset
    from pcreg.reporting.calibrate import (
        DEFAULT_REFERENCE,
        calibration_table,
        format_report,
        paper_unregistered,
        perfect_metrics,
        perfect_table,
        unregistered_metrics,
    )

    target = Path(args.dataset)
    reference = args.reference
    with tempfile.TemporaryDirectory(prefix="pcreg-calibrate-") as tmp:
        if (target / "dataset.json").is_file():
            root = target
            name = target.name
            if reference is None:
                meta = json.loads((target / "dataset.json").read_text())
                reference = DEFAULT_REFERENCE.get(meta.get("type", ""))
        else:
            config = load_config(args.configfile)
            name = args.dataset
            if name not in config["datasets"]:
                raise UserError(f"{name!r} is neither a prepared dataset directory nor a dataset of "
                                f"{args.configfile} ({', '.join(config['datasets'])})")
            spec = config["datasets"][name]
            reference = reference or spec.get("paper_reference") or DEFAULT_REFERENCE.get(spec["type"])
            root = Path(config["data_dir"]) / name
            if not (root / "dataset.json").is_file():  # not prepared yet: generate it in a temporary directory
                module = get_dataset_type(spec["type"])
                root = Path(tmp) / name
                module.prepare(root, name, validate_params(module, spec.get("params", {}), name), config["seed"])
        if not reference:
            raise UserError(f"no paper reference for {name}; pass --reference (e.g. fire-reg-256)")
        paper = paper_unregistered(reference)
        if not paper:
            raise UserError(f"the paper prints no Unregistered row for {reference!r}")
        measured = unregistered_metrics(root, args.split)
        perfect = rows = None
        if PreparedDataset(root).split(args.split).field is not None:
            perfect = perfect_metrics(root, args.split)
            rows = perfect_table(perfect, reference)
        print(format_report(name, reference, measured, calibration_table(measured, paper), perfect, rows,
                            args.split))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pcreg", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate-config", help="validate config file(s) (merged in order) against the schemas")
    p.add_argument("configfile", nargs="+")
    p.add_argument("--no-device-check", action="store_true",
                   help="do not check that `device: cuda` has a CUDA device on this machine (cluster login nodes)")
    p.set_defaults(func=cmd_validate_config)

    p = sub.add_parser("check-method", help="run the plug-in contract checks on a method (built-in name, entry "
                       "point or pkg.mod:Class); one line per problem, exit 1 on problems")
    p.add_argument("method", help="a method name (e.g. syn) or an import path (mypkg.mymod:MyMethod)")
    p.add_argument("--params", help="YAML/JSON file with the method's params (default: its schema's defaults)")
    p.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_check_method)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--threads", type=int, default=1)

    p = sub.add_parser("prepare", help="prepare (generate or download) a dataset")
    p.add_argument("--name", required=True)
    p.add_argument("--spec", required=True, help="JSON file with the dataset's config section")
    p.add_argument("--out", required=True)
    common(p)
    p.set_defaults(func=cmd_prepare)

    for name, func, helptext in (("fit", cmd_fit, "train a learned method on the train split"),
                                 ("register", cmd_register, "register one shard of the test split")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--data", required=True, help="prepared dataset directory")
        p.add_argument("--run", required=True, help="JSON file with the method run's config section")
        p.add_argument("--out", required=True)
        p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
        common(p)
        if name == "register":
            p.add_argument("--shard", type=int, required=True)
            p.add_argument("--shards", type=int, required=True)
            p.add_argument("--model", help="model directory written by fit (trainable methods)")
        p.set_defaults(func=func)

    p = sub.add_parser("evaluate", help="merge a method's shards and score every test pair")
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True, help="the method's result directory")
    p.add_argument("shard_files", nargs="+")
    common(p)
    p.set_defaults(func=cmd_evaluate)

    runs_help = "JSON file with the list of runs {id, label, group, pairs_csv[, method, trainable, params]}"
    paper_help = "the paper dataset whose numbers are shown beside ours (a dataset of pcreg/data/paper_values.csv)"
    reference_help = "the reference run (config stats.reference): every method is tested against it"

    p = sub.add_parser("aggregate", help="summary, Table 1, statistics and geometry tables of a dataset")
    p.add_argument("--dataset", required=True)
    p.add_argument("--runs", required=True, help=runs_help)
    p.add_argument("--out-dir", required=True, help="tables directory (results/tables)")
    p.add_argument("--paper-reference", default=None, help=paper_help)
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples of the 95%% CI")
    p.add_argument("--alpha", type=float, default=0.05, help="1 - confidence level of the CI")
    p.add_argument("--reference", required=True, help=reference_help)
    p.add_argument("--data", default=None, help="prepared dataset directory (states its working size in the "
                   "geometry table's notes)")
    p.add_argument("--fire-direction", default="moving_to_fixed", choices=["moving_to_fixed", "fixed_to_moving"],
                   help="FIRE AUC errors: moving landmarks into the fixed image (SuperRetina) or the reverse")
    common(p)
    p.set_defaults(func=cmd_aggregate)

    p = sub.add_parser("summary", help="the one-page summary of a run (every dataset's ranked methods and conclusion)")
    p.add_argument("--dataset", nargs=2, action="append", required=True, metavar=("NAME", "RUNS"),
                   help="a dataset and its run list (repeat per dataset)")
    p.add_argument("--tables-dir", required=True, help="tables directory (audit and fidelity tables are read here)")
    p.add_argument("--out-stem", required=True, help="summary path without extension (results/summary)")
    p.add_argument("--fragment", help="also write the HTML fragment the report's landing page embeds")
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples of the 95%% CI")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level; 1 - confidence level of the CI")
    common(p)
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("table3", help="the paper's Table 3 (intra-frame and temporal metrics) of a dataset")
    p.add_argument("--dataset", required=True)
    p.add_argument("--data", required=True, help="prepared dataset directory")
    p.add_argument("--runs", required=True, help=runs_help)
    p.add_argument("--out-stem", required=True)
    p.add_argument("--paper-reference", default=None, help=paper_help)
    common(p)
    p.set_defaults(func=cmd_table3)

    p = sub.add_parser("ablation", help="the paper's Table 2 (ablation) of a dataset")
    p.add_argument("--dataset", required=True)
    p.add_argument("--reference", required=True, help="the full model's run id (config stats.reference)")
    p.add_argument("--runs", required=True, help=runs_help)
    p.add_argument("--out-stem", required=True)
    p.add_argument("--paper-reference", default=None, help=paper_help)
    common(p)
    p.set_defaults(func=cmd_ablation)

    p = sub.add_parser("audit", help="re-run a method with a blank / another pair's moving image (sanity audit)")
    p.add_argument("--data", required=True, help="prepared dataset directory")
    p.add_argument("--run", required=True, help="JSON file with the method run's config section")
    p.add_argument("--out", required=True, help="per-pair audit CSV")
    p.add_argument("--pairs", type=int, default=16, help="test pairs audited (drawn from the seed)")
    p.add_argument("--blank", default="mean", choices=["mean", "zeros"])
    p.add_argument("--model", help="model directory written by fit (trainable methods)")
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    common(p)
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("audit-table", help="the audit table of a dataset (with the fixed-copy oracle)")
    p.add_argument("--dataset", required=True)
    p.add_argument("--data", required=True, help="prepared dataset directory")
    p.add_argument("--runs", required=True, help=runs_help)
    p.add_argument("--out-stem", required=True)
    p.add_argument("--pairs", type=int, default=16)
    p.add_argument("--blank", default="mean", choices=["mean", "zeros"])
    p.add_argument("audit_files", nargs="+", help="the runs' audit CSVs")
    common(p)
    p.set_defaults(func=cmd_audit_table)

    p = sub.add_parser("figures", help="qualitative grid of a dataset")
    p.add_argument("--data", required=True)
    p.add_argument("--runs", required=True, help=runs_help)
    p.add_argument("--out", required=True)
    p.add_argument("--pairs", type=int, default=3)
    common(p)
    p.set_defaults(func=cmd_figures)

    p = sub.add_parser("plots", help="box plots, speed vs accuracy, FIRE success and training curves of a dataset")
    p.add_argument("--dataset", required=True)
    p.add_argument("--runs", required=True, help=runs_help)
    p.add_argument("--out-dir", required=True, help="figures directory (results/figures)")
    p.add_argument("--fire-direction", default="moving_to_fixed", choices=["moving_to_fixed", "fixed_to_moving"],
                   help="FIRE success-curve errors (as for aggregate)")
    p.add_argument("--only", nargs="+", choices=["boxplots", "speed", "fire_success", "training"],
                   help="draw only these figures (default: all)")
    common(p)
    p.set_defaults(func=cmd_plots)

    p = sub.add_parser("export", help="write a dataset's images, pair ids and conventions for an external method")
    p.add_argument("dataset", help="a prepared dataset directory, or a dataset name of the config")
    p.add_argument("out_dir")
    p.add_argument("--configfile", help="config whose data_dir, seed and audit apply (default config/config.yaml "
                   "when the dataset is given by name)")
    p.add_argument("--splits", nargs="+", default=["test", "train", "val"], choices=["test", "train", "val"])
    p.add_argument("--audit-pairs", type=int, default=8, help="audited test pairs (without a config)")
    p.add_argument("--blank", default="mean", choices=["mean", "zeros"], help="audit blank (without a config)")
    common(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("manifest", help="write the provenance manifest")
    p.add_argument("--config", required=True, help="JSON file with the validated config")
    p.add_argument("--out", required=True)
    p.add_argument("--repo", default=".")
    p.add_argument("--code", help="JSON file: per result, the fingerprints of the code that produced it")
    p.set_defaults(func=cmd_manifest)

    p = sub.add_parser("fidelity", help="content-fidelity table (kept / invented) and figure of a dataset")
    p.add_argument("--dataset", required=True)
    p.add_argument("--data", required=True, help="prepared dataset directory")
    p.add_argument("--runs", required=True, help="the dataset's method runs as JSON")
    p.add_argument("--out-stem", required=True, help="table path without extension")
    p.add_argument("--figure", required=True, help="figure path (.png)")
    p.add_argument("--features", type=int, default=4, help="features shown in the figure")
    p.add_argument("--n-boot", type=int, default=2000)
    p.add_argument("--alpha", type=float, default=0.05)
    common(p)
    p.set_defaults(func=cmd_fidelity)

    p = sub.add_parser("calibrate", help="a dataset's Unregistered and perfect-registration rows next to their "
                                         "bands (calibration check, validation split by default)")
    p.add_argument("dataset", help="a prepared dataset directory, or a dataset name of the config")
    p.add_argument("--configfile", default="config/config.yaml", help="config that defines the dataset name")
    p.add_argument("--reference", help="the paper's benchmark (fire-reg-256, orpam-temporal-26k, orpam-4k)")
    p.add_argument("--split", default="val", choices=["train", "val", "test"])
    p.set_defaults(func=cmd_calibrate)
    return parser


#: Commands that run a method: they get a scratch folder of their own for temporary files (TMPDIR), removed at
#: the end, so that a method, or the library it calls (ANTs, ITK), never leaves files behind in a shared /tmp or
#: the checkout. Relative paths in a method's params (a precomputed folder) still resolve from the working
#: directory; a method that writes into its working directory should write under tempfile.gettempdir() instead.
SCRATCH_COMMANDS = ("fit", "register", "audit")


def _with_scratch_tmpdir(args: argparse.Namespace) -> None:
    import os
    import shutil
    import tempfile

    scratch = tempfile.mkdtemp(prefix=f"pcreg-{args.command}-")
    before = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = scratch
    tempfile.tempdir = scratch
    try:
        args.func(args)
    finally:
        tempfile.tempdir = None
        if before is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = before
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    set_threads(getattr(args, "threads", 1))
    if getattr(args, "paper_reference", None) == "":  # the workflow passes "" for a dataset without one
        args.paper_reference = None
    try:
        if args.command in SCRATCH_COMMANDS:
            _with_scratch_tmpdir(args)
        else:
            args.func(args)
    except UserError as exc:
        print(f"pcreg: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"pcreg: error: file not found: {exc.filename}", file=sys.stderr)
        return 2
    return 0

"""Command line of the suite (``python -m pcreg <command>``); the Snakemake rules call these.

Each command does one step of the workflow. Specs (a dataset's or a method
run's config section) are passed as JSON so that a rule's parameters are
exactly what the step sees. A problem the user can fix is reported as one line
on stderr with exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pcreg.errors import UserError
from pcreg.threads import set_threads


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"invalid JSON argument: {exc}") from exc


def cmd_validate_config(args: argparse.Namespace) -> None:
    import yaml

    from pcreg.config import validate_config

    merged: dict[str, Any] = {}
    for path in args.configfile:
        if not Path(path).is_file():
            raise UserError(f"config file not found: {path}")
        merged.update(yaml.safe_load(Path(path).read_text()) or {})
    config = validate_config(merged)
    print(f"config OK: {len(config['datasets'])} dataset(s), {len(config['methods'])} method run(s)")


def cmd_prepare(args: argparse.Namespace) -> None:
    from pcreg.config import validate_params
    from pcreg.datasets import get_dataset_type

    spec = _json(args.spec)
    module = get_dataset_type(spec["type"])
    params = validate_params(module, spec.get("params", {}), f"datasets.{args.name}.params")
    module.prepare(Path(args.out), args.name, params, args.seed)


def cmd_fit(args: argparse.Namespace) -> None:
    from pcreg.runner import fit_method

    fit_method(Path(args.data), _json(args.run), Path(args.out), seed=args.seed, threads=args.threads,
               device=args.device)


def cmd_register(args: argparse.Namespace) -> None:
    from pcreg.runner import register_shard

    register_shard(Path(args.data), _json(args.run), args.shard, args.shards, Path(args.out), seed=args.seed,
                   threads=args.threads, device=args.device, model_dir=Path(args.model) if args.model else None)


def cmd_evaluate(args: argparse.Namespace) -> None:
    from pcreg.evaluate import evaluate_method

    evaluate_method(Path(args.data), [Path(p) for p in args.shard_files], Path(args.out))


def _runs(text: str):  # noqa: ANN202
    from pcreg.tables import Run

    return [Run(r["id"], r["label"], r["group"], Path(r["pairs_csv"])) for r in _json(text)]


def cmd_aggregate(args: argparse.Namespace) -> None:
    from pcreg.tables import summarize_runs, write_table

    summary = summarize_runs(_runs(args.runs))
    write_table(summary, Path(args.out_stem), f"{args.dataset}: test pairs, mean ± std per method")


def cmd_figures(args: argparse.Namespace) -> None:
    from pcreg.figures import qualitative_grid

    qualitative_grid(Path(args.data), _runs(args.runs), Path(args.out), n_pairs=args.pairs)


def cmd_manifest(args: argparse.Namespace) -> None:
    from pcreg.manifest import write_manifest

    write_manifest(_json(args.config), Path(args.out), Path(args.repo))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pcreg", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate-config", help="validate config file(s) (merged in order) against the schemas")
    p.add_argument("configfile", nargs="+")
    p.set_defaults(func=cmd_validate_config)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--threads", type=int, default=1)

    p = sub.add_parser("prepare", help="prepare (generate or download) a dataset")
    p.add_argument("--name", required=True)
    p.add_argument("--spec", required=True, help="the dataset's config section as JSON")
    p.add_argument("--out", required=True)
    common(p)
    p.set_defaults(func=cmd_prepare)

    for name, func, helptext in (("fit", cmd_fit, "train a learned method on the train split"),
                                 ("register", cmd_register, "register one shard of the test split")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--data", required=True, help="prepared dataset directory")
        p.add_argument("--run", required=True, help="the method run's config section as JSON")
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

    p = sub.add_parser("aggregate", help="summary tables of a dataset")
    p.add_argument("--dataset", required=True)
    p.add_argument("--runs", required=True, help="JSON list of {id, label, group, pairs_csv}")
    p.add_argument("--out-stem", required=True)
    common(p)
    p.set_defaults(func=cmd_aggregate)

    p = sub.add_parser("figures", help="qualitative grid of a dataset")
    p.add_argument("--data", required=True)
    p.add_argument("--runs", required=True, help="JSON list of {id, label, group, pairs_csv}")
    p.add_argument("--out", required=True)
    p.add_argument("--pairs", type=int, default=3)
    common(p)
    p.set_defaults(func=cmd_figures)

    p = sub.add_parser("manifest", help="write the provenance manifest")
    p.add_argument("--config", required=True, help="the validated config as JSON")
    p.add_argument("--out", required=True)
    p.add_argument("--repo", default=".")
    p.set_defaults(func=cmd_manifest)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    set_threads(getattr(args, "threads", 1))
    try:
        args.func(args)
    except UserError as exc:
        print(f"pcreg: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"pcreg: error: file not found: {exc.filename}", file=sys.stderr)
        return 2
    return 0

"""Dry-run the workflow through the Slurm profile and check what every job would ask Slurm for.

Runs ``snakemake --profile profiles/slurm --dry-run --forceall`` (no cluster needed), reads each job's
rule, wildcards, threads and resources from the dry-run output, renders the ``sbatch`` options the
installed snakemake-executor-plugin-slurm would use (its own ``get_submit_command`` and
``set_gres_string``, so an invalid GPU model or CPU setting fails here as it would at submission), and
checks that:

- every job declares ``mem_mb`` and ``runtime``;
- only the GPU rules (``fit``, ``register_learned``, ``audit_learned``) request GPUs, and with ``device`` other than cpu
  each of their jobs does (unless the config sets ``gpu: 0``).

Exit status 0 when all checks pass, 1 otherwise; a table of jobs per rule is printed either way.

    python scripts/check_slurm_dryrun.py --configfile config/paper.yaml
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
GPU_RULES = {"fit", "register_learned", "audit_learned"}


class _Resources(dict):
    """A job's resources as the plugin reads them: ``res.get(key)`` and ``res.key``."""

    def __getattr__(self, key: str):  # noqa: ANN204
        try:
            return self[key]
        except KeyError as exc:
            raise AttributeError(key) from exc


def _value(text: str) -> int | float | str:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_dryrun(text: str) -> list[dict]:
    """Jobs of a Snakemake dry-run printout: ``{rule, wildcards, threads, resources}`` each."""
    jobs: list[dict] = []
    job: dict | None = None
    for line in text.splitlines():
        m = re.match(r"^(local)?rule (\S+):$", line)
        if m:
            job = {"rule": m.group(2), "local": bool(m.group(1)), "wildcards": {}, "threads": 1, "resources": {}}
            jobs.append(job)
            continue
        if job is None or not line.startswith("    "):
            if line.strip() and not line.startswith("["):
                job = None
            continue
        key, _, rest = line.strip().partition(": ")
        if key == "threads":
            job["threads"] = int(rest)
        elif key in ("wildcards", "resources"):
            for item in rest.split(", "):
                k, _, v = item.partition("=")
                job[key][k] = _value(v)
    return jobs


def sbatch_options(job: dict) -> str:
    """The sbatch options (account and partition aside) the Slurm plugin would submit this job with."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    res = _Resources(job["resources"])
    fake = SimpleNamespace(resources=res, threads=job["threads"], name=job["rule"], wildcards=job["wildcards"])
    params = {"run_uuid": "RUN", "slurm_logfile": "LOG", "comment_str": f"rule_{job['rule']}", "account": "",
              "partition": f"-p {res['slurm_partition']}" if res.get("slurm_partition") else "", "workdir": "."}
    call = get_submit_command(fake, params) + set_gres_string(fake)
    # Keep what the rule decides: memory, time, CPUs, GPUs, partition.
    keep = re.findall(r"(?:--mem \d+|-t \d+|--cpus-per-(?:task|gpu)=\d+|--gpus=\S+|--gres=\S+|-p \S+)", call)
    return " ".join(keep)


def check(jobs: list[dict], device: str) -> list[str]:
    """Problems found in the parsed jobs (empty when none)."""
    problems = []
    for job in jobs:
        rule, res = job["rule"], job["resources"]
        where = f"{rule} {job['wildcards']}"
        if job["local"] or rule == "all":
            continue
        for key in ("mem_mb", "runtime"):
            if not isinstance(res.get(key), int) or res[key] <= 0:
                problems.append(f"{where}: no valid {key} ({res.get(key)!r})")
        gpu = res.get("gpu", 0) or 0
        if gpu and rule not in GPU_RULES:
            problems.append(f"{where}: requests {gpu} GPU(s) but is not a GPU rule")
        if rule in GPU_RULES and device == "cpu" and gpu:
            problems.append(f"{where}: requests a GPU although device is cpu")
        try:
            job["sbatch"] = sbatch_options(job)
        except Exception as exc:  # the plugin's own validation of the resources
            problems.append(f"{where}: the Slurm plugin rejects its resources: {exc}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False,
                                     epilog="Other arguments are passed to snakemake (e.g. --config device=cpu).")
    parser.add_argument("--configfile", default=str(ROOT / "config" / "paper.yaml"))
    parser.add_argument("--profile", default=str(ROOT / "profiles" / "slurm"))
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--expect-gpu-jobs", action="store_true",
                        help="fail unless at least one job requests a GPU (a config with learned methods)")
    parser.add_argument("--show", type=int, default=2, help="example jobs printed per rule")
    args, extra = parser.parse_known_args(argv)

    import yaml

    sys.path.insert(0, str(ROOT))
    from pcreg.config import validate_config

    device = validate_config(yaml.safe_load(Path(args.configfile).read_text()))["device"]
    device = next((e.split("=", 1)[1] for e in extra if e.startswith("device=")), device)  # --config device=...
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--profile", args.profile,
           "--executor", "slurm", "--jobs", str(args.jobs), "--dry-run", "--forceall", "all",
           "--configfile", args.configfile, *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        print(out[-4000:])
        print(f"dry-run failed (exit {proc.returncode}): {' '.join(cmd)}")
        return 1
    jobs = parse_dryrun(out)
    problems = check(jobs, device)
    by_rule: dict[str, list[dict]] = defaultdict(list)
    for job in jobs:
        by_rule[job["rule"]].append(job)
    print(f"{'rule':18} {'jobs':>5} {'gpu jobs':>8}  sbatch options (examples)")
    for rule, rjobs in by_rule.items():
        n_gpu = sum(1 for j in rjobs if (j["resources"].get("gpu") or 0) > 0)
        examples = sorted({j.get("sbatch", "") for j in rjobs})[: args.show]
        print(f"{rule:18} {len(rjobs):5d} {n_gpu:8d}  {' | '.join(e for e in examples if e)}")
    n_gpu = sum(1 for j in jobs if (j["resources"].get("gpu") or 0) > 0)
    if args.expect_gpu_jobs and n_gpu == 0:
        problems.append("no job requests a GPU, but GPU jobs were expected")
    print(f"{len(jobs)} jobs, {n_gpu} requesting GPUs (device: {device})")
    for p in problems:
        print(f"PROBLEM: {p}")
    print("slurm dry-run check: " + ("FAILED" if problems else "OK"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

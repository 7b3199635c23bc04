# pcreg-bench workflow: prepare -> (fit) -> register (sharded) -> evaluate -> tables, figures, audit, manifest.
# Rules are thin: each calls the package's command line (python -m pcreg ...); logic lives in pcreg/ and baselines/.
import json
import os
import sys
from pathlib import Path

import time

import yaml
from snakemake.exceptions import WorkflowError

sys.path.insert(0, workflow.basedir)
workflow_start = time.time()
from pcreg.code_fingerprint import jobs_run_this_checkout  # noqa: E402
from pcreg.config import validate_config  # noqa: E402
from pcreg.errors import UserError  # noqa: E402
from pcreg.methods.pair_cache import ENV as PAIR_CACHE_ENV  # noqa: E402

# Jobs run this checkout's code (the code that common.smk fingerprints), from any working directory.
jobs_run_this_checkout(workflow.basedir)


# The default config is read only when no --configfile is given, so that a config file
# (smoke.yaml, paper.yaml) replaces the default instead of being merged into it.
if "datasets" not in config:
    _overrides = dict(config)
    config.clear()
    config.update(yaml.safe_load(Path(workflow.basedir, "config", "config.yaml").read_text()))
    config.update(_overrides)
try:
    _validated = validate_config(config)
except UserError as exc:
    raise WorkflowError(str(exc)) from None
config.clear()
config.update(_validated)

# Per-pair global transforms shared on disk by the rows that compute the same ones (the fair-start rows, the
# learned rows' pre-alignment and the rows that show it alone; pcreg/methods/pair_cache.py), next to the data.
os.environ.setdefault(PAIR_CACHE_ENV, str(Path(config["data_dir"], ".cache").resolve()))


# The report's landing page: the run's summary (workflow/report/workflow.rst embeds results/summary-report.html).
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/register.smk"
include: "workflow/rules/evaluation_common.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/audit.smk"
include: "workflow/rules/fidelity.smk"


# `all` asks for the summary (which takes every table, figure and pairs.csv as input) and the manifest only:
# Snakemake prints each job's inputs, and `all` listing every output made a run end with a 10 KB dump.
rule all:
    input:
        summary_files(RES),
        MANIFEST,
    default_target: True


onsuccess:
    # The end of a run: the compact summary (results/summary.txt), not a list of files. Only when this
    # invocation made the summary (a run of one target leaves an older summary unprinted).
    from pcreg.reporting.outputs import summary_stem

    _txt = Path(f"{summary_stem(RES)}.txt")
    if _txt.is_file() and _txt.stat().st_mtime >= workflow_start:
        print(f"\n{_txt.read_text()}Full summary: {summary_stem(RES)}.md / .html; report: snakemake --report "
              f"{RES}/report.html --configfile <the same config>", file=sys.stderr)


onerror:
    # The Slurm executor reports a failed job with its state only; print Slurm's reason (memory or time limit)
    # from each failed job's Slurm log next to it.
    from pcreg.slurm_failures import slurm_failure_lines

    for _log in [log] if isinstance(log, (str, Path)) else (log or []):  # Snakemake 9 passes a list of log files
        if Path(_log).is_file():
            for _line in slurm_failure_lines(Path(_log).read_text(errors="replace")):
                print(_line, file=sys.stderr)
    # Snakemake's own lock message is easy to miss after a kill; say what to do in one place.
    print(f"pcreg-bench: a job failed; its log under {LOGS}/ says why. Rerunning the same command resumes. "
          "If Snakemake itself was killed (kill -9, power loss) and a rerun says the directory cannot be locked, "
          "run the same command once with --unlock added, then rerun it.", file=sys.stderr)

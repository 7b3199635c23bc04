# pcreg-bench workflow: prepare -> (fit) -> register (sharded) -> evaluate -> tables, figures, audit, manifest.
# Rules are thin: each calls the package's command line (python -m pcreg ...); logic lives in pcreg/ and baselines/.
import json
import sys
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError

sys.path.insert(0, workflow.basedir)
from pcreg.code_fingerprint import jobs_run_this_checkout  # noqa: E402
from pcreg.config import validate_config  # noqa: E402
from pcreg.errors import UserError  # noqa: E402

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


include: "workflow/rules/common.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/register.smk"
include: "workflow/rules/evaluation_common.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/audit.smk"
include: "workflow/rules/fidelity.smk"


rule all:
    input:
        evaluation_targets(),
        [pairs_csv(d, r) for d in DATASETS for r in runs_for(d)],
        MANIFEST,
    default_target: True


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

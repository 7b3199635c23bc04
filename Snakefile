# pcreg-bench workflow: prepare -> (fit) -> register (sharded) -> evaluate -> tables, figures, audit, manifest.
# Rules are thin: each calls the package's command line (python -m pcreg ...); logic lives in pcreg/ and baselines/.
import json
import sys
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError

sys.path.insert(0, workflow.basedir)
from pcreg.config import validate_config  # noqa: E402
from pcreg.errors import UserError  # noqa: E402


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
        [f"results/{d}/{r}/pairs.csv" for d in DATASETS for r in runs_for(d)],
        "results/manifest.json",
    default_target: True

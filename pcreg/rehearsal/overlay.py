"""The third config file of the rehearsal: where the sources are (a port chosen at run time) and their checksums."""

from __future__ import annotations

from pathlib import Path

import yaml

FIRE_DATASETS = ("fire-reg-256", "fire")
ORPAM_DATASETS = ("or-pam-reg-4k", "or-pam-reg-temporal-26k")


def sources_overlay(url: str, fire_sha256: str) -> dict:
    """Config overlay: FIRE's ``url`` and ``sha256`` for both FIRE datasets, the Hub ``endpoint`` for OR-PAM."""
    datasets = {d: {"params": {"url": f"{url}/fire/FIRE.7z", "sha256": fire_sha256}} for d in FIRE_DATASETS}
    datasets.update({d: {"params": {"endpoint": url}} for d in ORPAM_DATASETS})
    return {"datasets": datasets}


def write_yaml(path: Path, data: dict) -> None:
    """Write ``data`` as YAML with a header saying where it comes from."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Written by python -m pcreg.rehearsal sources (scripts/rehearse_paper.sh): the stand-ins' "
                    "sources.\n" + yaml.safe_dump(data, sort_keys=False))

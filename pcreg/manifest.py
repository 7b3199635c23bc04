"""``results/manifest.json``: what produced the results (versions, platform, config, seed, commit)."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from pcreg.code_fingerprint import library_versions
from pcreg.reporting.provenance import external_methods

#: Distributions whose versions are recorded.
KEY_PACKAGES = [
    "torch", "numpy", "scipy", "SimpleITK", "antspyx", "opencv-python-headless", "scikit-image", "pandas",
    "matplotlib", "snakemake", "voxelmorph", "neurite", "pcreg-bench",
]


def package_versions() -> dict[str, str | None]:
    """Installed version of each of :data:`KEY_PACKAGES` (the one lookup, pcreg.code_fingerprint)."""
    return library_versions(KEY_PACKAGES)


def git_commit(repo: Path) -> dict[str, Any]:
    """Commit hash and whether the working tree had uncommitted changes (``None`` outside git)."""
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def build_manifest(config: dict[str, Any], repo: Path, code: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything needed to say what produced a results directory; ``code``: per result, the fingerprints
    (pcreg.code_fingerprint) of the code of each step that produced it."""
    cuda = None
    try:
        import torch

        cuda = {"available": torch.cuda.is_available(), "version": torch.version.cuda,
                "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]}
    except ImportError:
        pass
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages": package_versions(),
        "cuda": cuda,
        "git": git_commit(repo),
        "seed": config.get("seed"),
        "config": config,
        "external_methods": external_methods(config),
        "code": code or {},
    }


def write_manifest(config: dict[str, Any], out: Path, repo: Path, code: dict[str, Any] | None = None) -> Path:
    """Write the manifest (:func:`build_manifest`) to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(build_manifest(config, repo, code), indent=2, sort_keys=True) + "\n")
    return out

"""Running the Snakemake workflow from tests: in a temporary working directory, on a tiny config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """``snakemake -s <repo>/Snakefile --directory workdir ...``; outputs land under ``workdir``."""
    return subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory",
                           str(workdir), *args], capture_output=True, text=True)

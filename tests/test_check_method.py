"""``python -m pcreg check-method``: one line per contract problem, a non-zero exit, crashes named."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _check(method: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    return subprocess.run([sys.executable, "-m", "pcreg", "check-method", method], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_a_good_method_passes() -> None:
    out = _check("identity")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "OK" in out.stdout and "PROBLEM" not in out.stdout


@pytest.mark.parametrize(("method", "words"), [
    ("helpers.bad_methods:OutOfRange", "outside [0, 1]"),
    ("helpers.bad_methods:Swapped", "components swapped"),
    ("helpers.bad_methods:CrashesOnConstant", "crashed the process (signal 11"),
])
def test_a_broken_method_is_flagged_in_one_line(method: str, words: str) -> None:
    out = _check(method)
    assert out.returncode == 1, out.stdout + out.stderr
    problems = [line for line in out.stdout.splitlines() if line.startswith("PROBLEM")]
    assert problems and any(words in line for line in problems), out.stdout
    if "Crashes" in method:
        assert "'constant inputs' check" in problems[-1]


def test_an_unknown_method_is_one_error() -> None:
    out = _check("no_such_pkg.mod:X")
    assert out.returncode == 2 and "cannot import" in out.stderr and "Traceback" not in out.stderr

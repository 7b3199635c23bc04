"""Every documented command runs as written: README.md, docs/*.md, examples/*/README.md, config headers.

The commands are extracted from the fenced ``bash``/``sh`` blocks of the Markdown files, from inline code
spans that are whole commands (``snakemake ...``, ``python -m pcreg ...``, ``python scripts/...``) and from
the ``#   command`` lines of each config file's header. Each runs in a copy of the repository (so that a dry
run's spec files never touch a real run's results), as written, except:

- ``snakemake``: as a dry run (``-n``; ``--report`` and ``--unlock`` need a finished or locked run, so their
  command is dry-run without that flag) -- a real run is heavy, needs the network or a GPU;
- ``python scripts/X.py``: ``--help`` (benchmarks take minutes); ``python -m pcreg <cmd>``: as written for
  the quick commands (validate-config, check-method of a built-in method), ``<cmd> --help`` for the rest;
- not run, listed: ``pip install`` (network; ``pip install -e examples/external-method`` is stood in for by
  its package and entry point on ``PYTHONPATH``), ``python -m pytest`` (this suite), root-only and
  cluster-daemon commands.

``export VAR=value`` lines apply to the commands after them in the same block.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "examples").glob("*/README.md"))]
CONFIGS = sorted((ROOT / "config").glob("*.yaml"))
#: Repository folders a documented command may read (copied into the scratch checkout).
COPIED = ("Snakefile", "pyproject.toml", "workflow", "config", "pcreg", "baselines", "examples", "profiles",
          "scripts", "tests")
#: python -m pcreg commands that run as written (quick, offline).
QUICK_PCREG = ("validate-config",)
#: Built-in methods check-method may run as written (seconds).
QUICK_METHODS = ("identity", "sift", "demons", "horn_schunck")
#: Inline code spans that are whole commands.
INLINE = re.compile(r"`((?:snakemake |python -m pcreg |python scripts/)[^`]*)`")


@dataclass(frozen=True)
class Command:
    source: str
    text: str
    env: tuple[tuple[str, str], ...] = ()


def _split(line: str) -> list[str]:
    """The commands of one line: a trailing ``# comment`` dropped (quotes respected), split at ``&&``."""
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError:
        return [line.strip()]
    parts: list[list[str]] = [[]]
    for token in tokens:
        if token == "&&":
            parts.append([])
        else:
            parts[-1].append(token)
    return [shlex.join(p) for p in parts if p]


def _block_commands(source: str, block: str) -> list[Command]:
    out, env = [], {}
    joined = re.sub(r"\\\n\s*", " ", block)
    for raw in joined.splitlines():
        for part in _split(raw):
            if part.startswith("export "):
                key, _, value = part[len("export "):].partition("=")
                env[key] = value
                continue
            out.append(Command(source, part, tuple(sorted(env.items()))))
    return out


def documented_commands() -> list[Command]:
    """Every documented command, in document order, deduplicated."""
    commands: list[Command] = []
    for doc in DOCS:
        text = doc.read_text()
        name = str(doc.relative_to(ROOT))
        for m in re.finditer(r"^[ \t]*```(bash|sh|shell)\n(.*?)^[ \t]*```", text, re.M | re.S):
            commands += _block_commands(name, m.group(2))
        prose = re.sub(r"^[ \t]*```.*?^[ \t]*```", "", text, flags=re.M | re.S)
        for m in INLINE.finditer(re.sub(r"\s*\n\s*", " ", prose)):
            if "..." not in m.group(1) and "<" not in m.group(1):  # a fragment or a template, not a command
                commands += _block_commands(name, m.group(1))
    for cfg in CONFIGS:
        header = []
        for line in cfg.read_text().splitlines():
            if not line.startswith("#"):
                break
            body = line[1:].strip()
            if re.match(r"(snakemake|python|pip) ", body):
                header.append(body)
        commands += _block_commands(str(cfg.relative_to(ROOT)), "\n".join(header))
    seen, unique = set(), []
    for c in commands:
        if (c.text, c.env) not in seen:
            seen.add((c.text, c.env))
            unique.append(c)
    return unique


def plan(cmd: Command) -> tuple[list[str] | None, str]:
    """The argv to run for ``cmd`` and what is checked, or (None, why it is not run)."""
    argv = shlex.split(cmd.text)
    prog = argv[0]
    if prog == "pip":
        return None, "installs packages (network)"
    if prog in ("sudo", "sinfo", "eval") or prog.startswith(("scripts/slurm_local", "~/")):
        return None, "root, a cluster's daemons or a separate environment"
    if prog == "snakemake":
        args = argv[1:]
        for flag in ("--report", "--unlock"):
            if flag in args:
                i = args.index(flag)
                del args[i: i + (2 if flag == "--report" else 1)]
        if "--directory" in args:  # a scratch directory of the docs: keep it inside the copy
            i = args.index("--directory")
            args[i + 1] = "scratch-run"
        return [sys.executable, "-m", "snakemake", *args, "-n", "--quiet"], "dry run"
    if prog == "scripts/rehearse_paper.sh":
        return None, "the paper-protocol rehearsal: a CI stage of its own (.ci/run), 10-15 min"
    if prog == "scripts/gpu_check.sh":  # on a machine without a GPU: one line, exit 0
        return ["bash", *argv], "as written"
    if prog == "python" and argv[1:3] == ["-m", "pytest"]:
        return None, "the test suite itself"
    if prog == "python" and argv[1:3] == ["-m", "venv"]:
        return None, "creates a separate environment"
    if prog == "python" and argv[1:3] == ["-m", "pcreg"]:
        sub = argv[3] if len(argv) > 3 else ""
        if sub in QUICK_PCREG or (sub == "check-method" and len(argv) > 4 and argv[4] in QUICK_METHODS):
            return [sys.executable, *argv[1:]], "as written"
        return [sys.executable, "-m", "pcreg", sub, "--help"], "--help"
    if prog == "python" and len(argv) > 1 and argv[1].startswith(("scripts/", "examples/")):
        return [sys.executable, argv[1], "--help"], "--help"
    if prog == "python":
        return [sys.executable, *argv[1:]], "as written"
    return None, f"unknown program {prog!r}"


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository's sources (no results, no data)."""
    root = tmp_path_factory.mktemp("docs-commands")
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", ".snakemake"))
        elif src.is_file():
            shutil.copy2(src, root / name)
    # What `pip install -e examples/external-method` (the docs' first step) provides: the package on the path
    # and its entry point, as a dist-info folder that importlib.metadata finds on PYTHONPATH.
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "examples" / "external-method" / "pyproject.toml").read_text())["project"]
    info = root / "_entry_points" / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    eps = project["entry-points"]
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in items.items()) for group, items in eps.items()))
    return root


def _pythonpath(checkout: Path) -> str:
    return os.pathsep.join(str(p) for p in (checkout, checkout / "examples" / "external-method" / "src",
                                            checkout / "_entry_points"))


def test_commands_are_found() -> None:
    commands = documented_commands()
    texts = [c.text for c in commands]
    assert any(t.startswith("snakemake") for t in texts) and any("validate-config" in t for t in texts)
    assert any(c.source.startswith("config/") for c in commands)
    assert any("check-method" in t for t in texts), "docs/EXTERNAL.md leads with python -m pcreg check-method"


_RAN: dict[tuple, subprocess.CompletedProcess] = {}
#: (config files, targets) already dry-run: another command on the same DAG (other --cores, --resources,
#: --profile) is parsed only (--list-rules: its options, config files and the workflow), which keeps the test
#: under two minutes (a dry run of config/paper.yaml alone is ~18 s of CPU).
_DAGS: set[tuple] = set()


def _dag_key(argv: list[str]) -> tuple:
    """The config files and targets of a snakemake command line (what its DAG depends on)."""
    args = argv[3:]
    configs, targets, i = [], [], 0
    takes_value = {"--cores", "-c", "--jobs", "-j", "--resources", "--profile", "--directory", "-d", "--config",
                   "--set-resources", "--executor", "-e"}
    while i < len(args):
        a = args[i]
        if a == "--configfile":
            i += 1
            while i < len(args) and not args[i].startswith("-"):
                configs.append(args[i])
                i += 1
            continue
        if a in takes_value:
            i += 2
            continue
        if not a.startswith("-"):
            targets.append(a)
        i += 1
    return tuple(configs), tuple(sorted(targets or ["all"]))


@pytest.mark.parametrize("cmd", documented_commands(), ids=lambda c: f"{c.source}: {c.text[:70]}")
def test_documented_command_runs_as_written(cmd: Command, checkout: Path) -> None:
    argv, what = plan(cmd)
    if argv is None:
        pytest.skip(f"not run: {what}")
    env = {**os.environ, **dict(cmd.env), "PYTHONPATH": _pythonpath(checkout)}
    if what == "dry run":
        dag = _dag_key(argv)
        if dag in _DAGS:
            argv = [a for a in argv if a not in ("-n", "--quiet")] + ["--list-rules"]
            what = "parsed (its DAG was dry-run by another documented command)"
        _DAGS.add(dag)
    key = (tuple(argv), cmd.env)
    if key not in _RAN:  # the same command documented twice runs once
        _RAN[key] = subprocess.run(argv, cwd=checkout, env=env, capture_output=True, text=True, timeout=300)
    proc = _RAN[key]
    assert proc.returncode == 0, (f"{cmd.source}: `{cmd.text}` ({what}) failed:\n"
                                  f"{(proc.stdout + proc.stderr)[-2500:]}")
    if what == "dry run":
        out = proc.stdout + proc.stderr
        assert "Building DAG of jobs" in out and "Error" not in out, out[-1500:]  # --quiet: no job list

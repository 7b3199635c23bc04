"""Cluster path: the Slurm profile's USER handling, the local-Slurm script's idempotent stop/status, and the
pairs.csv comparison CI uses between the local and the Slurm run (the Slurm run itself: scripts/ci_slurm_smoke.sh)."""

import os
import pwd
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from compare_pairs import compare  # noqa: E402

RENDER_PROFILE = ("import os, yte; yte.process_yaml(open('profiles/slurm/config.yaml')); "
                  "print(os.environ.get('USER', '<unset>'))")


def _render_profile(env: dict) -> str:
    proc = subprocess.run([sys.executable, "-c", RENDER_PROFILE], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=True)
    return proc.stdout.strip()


def test_slurm_profile_sets_user_only_where_unset():
    env = {k: v for k, v in os.environ.items() if k not in ("USER", "LOGNAME", "LNAME", "USERNAME")}
    assert _render_profile(env) == pwd.getpwuid(os.getuid()).pw_name  # the plugin 1.4.0 reads os.environ["USER"]
    assert _render_profile({**env, "USER": "alice"}) == "alice"


def test_slurm_local_stop_and_status_without_a_cluster(tmp_path):
    script = str(ROOT / "scripts" / "slurm_local.sh")
    env = {**os.environ, "PCREG_SLURM_DIR": str(tmp_path / "slurm")}
    assert subprocess.run(["bash", "-n", script]).returncode == 0
    for _ in range(2):  # stopping a cluster that is not running is fine, twice
        stop = subprocess.run([script, "stop"], env=env, capture_output=True, text=True)
        assert stop.returncode == 0, stop.stderr
    status = subprocess.run([script, "status"], env=env, capture_output=True, text=True)
    assert status.returncode == 1 and "slurmctld: stopped" in status.stdout
    # A stale pid file naming some other live process is not "our daemon".
    (tmp_path / "slurm" / "run").mkdir(parents=True)
    (tmp_path / "slurm" / "run" / "slurmctld.pid").write_text(str(os.getpid()))
    status = subprocess.run([script, "status"], env=env, capture_output=True, text=True)
    assert "slurmctld: stopped" in status.stdout
    assert subprocess.run([script, "stop"], env=env, capture_output=True).returncode == 0
    os.kill(os.getpid(), 0)  # still alive: stop did not kill it
    usage = subprocess.run([script, "bogus"], env=env, capture_output=True, text=True)
    assert usage.returncode == 2 and "usage" in usage.stderr


def _write(root: Path, rel: str, df: pd.DataFrame) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(root / rel, index=False)


def test_compare_pairs_ignores_runtimes_only(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    df = pd.DataFrame({"pair": [0, 1], "epe_px": [1.25, 0.5], "runtime_s": [0.1, 0.2]})
    for root in (a, b):
        _write(root, "results/d/identity/pairs.csv", df)
    _write(b, "results/d/identity/pairs.csv", df.assign(runtime_s=[9.0, 8.0]))
    assert compare(a, b) == []
    _write(b, "results/d/identity/pairs.csv", df.assign(epe_px=[1.25, 0.5000001]))
    assert compare(a, b) == ["different: results/d/identity/pairs.csv"]
    _write(b, "results/d/identity/pairs.csv", df)
    _write(a, "results/d/sift/pairs.csv", df)
    assert compare(a, b) == [f"only in {a}: results/d/sift/pairs.csv"]
    assert compare(tmp_path / "x", tmp_path / "y")  # nothing to compare is not a pass
    assert compare(a, b, subset=True) == []  # b ran part of a's config: a's extra file is fine
    assert compare(b, a, subset=True) == [f"only in {a}: results/d/sift/pairs.csv"]  # not the other way round


def test_slurm_failure_lines_give_slurm_reason_and_log(tmp_path):
    from pcreg.slurm_failures import slurm_failure_lines

    logs = tmp_path / ".snakemake" / "slurm_logs" / "rule_register"
    (logs / "d_sift_0").mkdir(parents=True)
    (logs / "d_sift_0" / "70.log").write_text(
        "host: vm\nslurmstepd-vm: error: StepId=70.batch exceeded memory limit (181051392 > 104857600), being killed\n"
        "slurmstepd-vm: error: *** JOB 70 ON vm CANCELLED AT 2026-12-02T17:14:20 ***\n")
    (logs / "d_sift_1").mkdir()
    (logs / "d_sift_1" / "71.log").write_text(
        "slurmstepd-vm: error: *** JOB 71 ON vm CANCELLED AT 2026-12-02T17:20:00 DUE TO TIME LIMIT ***\n")
    # As the Slurm executor plugin 1.4.0 reports failed jobs in the Snakemake log.
    text = "".join(
        f"[Wed Dec  2 17:14:23 2026]\nError in rule register:\n    message: SLURM-job '{j}' failed, SLURM status is: "
        f"'{state}'. For further error details see the cluster/cloud log and the log files of the involved rule(s).\n"
        f"    jobid: 6\n    log: results/logs/register/d/sift/{s}.log, {logs}/d_sift_{s}/{j}.log (check log file(s) "
        f"for error details)\n    external_jobid: {j}\n"
        for j, state, s in ((70, "FAILED", 0), (71, "TIMEOUT", 1)))
    text += "Error in rule evaluate:\n    jobid: 3\n    (command exited with non-zero exit code)\n"  # not a Slurm one
    lines = slurm_failure_lines(text)
    assert len(lines) == 2
    assert lines[0].startswith("Slurm job 70 (rule register) ended FAILED: ") and "exceeded memory limit" in lines[0]
    assert lines[0].endswith(f"[Slurm log: {logs}/d_sift_0/70.log]")
    assert "ended TIMEOUT: " in lines[1] and "DUE TO TIME LIMIT" in lines[1]
    (logs / "d_sift_1" / "71.log").unlink()  # log gone: state and path still given
    expected = f"Slurm job 71 (rule register) ended TIMEOUT [Slurm log: {logs}/d_sift_1/71.log]"
    assert slurm_failure_lines(text)[1] == expected
    assert slurm_failure_lines("Error in rule x:\n    jobid: 1\n") == []

"""Why jobs failed on Slurm: one line per failed job with Slurm's own reason, read from the job's Slurm log.

The Slurm executor plugin reports a failed job with its state only (``SLURM status is: 'FAILED'``); the cause
(memory limit, time limit, node failure) is in the job's Slurm log, written by ``slurmstepd``. The workflow's
``onerror`` handler prints these lines at the end of a failed run so the user sees the reason next to the
Snakemake error without opening each log.
"""

from __future__ import annotations

import re
from pathlib import Path

_FAILED = re.compile(r"Error in rule (\S+?):.*?SLURM-job '(\d+)' failed, SLURM status is: '(\w+)'", re.S)
_SLURM_LOG = re.compile(r"(\S*slurm_logs/\S+?\.log)\b")
# Lines slurmstepd/slurmctld write into a job's output when Slurm ends it.
_REASON = re.compile(r"(exceeded (job )?memory limit|DUE TO TIME LIMIT|oom-kill|NODE FAIL|CANCELLED AT|"
                     r"PREEMPTION|slurmstepd.*error)", re.I)


def slurm_reason(slurm_log: Path) -> str:
    """The most telling line Slurm wrote into a job's log (memory, time limit, ...); '' when none or no log."""
    try:
        lines = slurm_log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    hits = [line.strip() for line in lines if _REASON.search(line)]
    # The memory/time message says more than the generic "CANCELLED AT" that follows it.
    for pattern in ("memory limit", "TIME LIMIT", "oom-kill"):
        for line in hits:
            if pattern.lower() in line.lower():
                return line
    return hits[0] if hits else ""


def slurm_failure_lines(snakemake_log: str) -> list[str]:
    """One line per job the Snakemake log reports as failed on Slurm: rule, Slurm job id and state, the reason
    from its Slurm log, and that log's path. Empty for runs without Slurm failures."""
    out = []
    for block in re.split(r"(?=Error in rule )", snakemake_log):
        m = _FAILED.match(block)
        if not m:
            continue
        rule, jobid, state = m.groups()
        logs = [Path(p) for p in _SLURM_LOG.findall(block) if f"/{jobid}.log" in p]
        log = logs[0] if logs else None
        reason = slurm_reason(log) if log else ""
        out.append(f"Slurm job {jobid} (rule {rule}) ended {state}"
                   + (f": {reason}" if reason else "")
                   + (f" [Slurm log: {log}]" if log else ""))
    return out

"""``python -m pcreg.rehearsal build|serve|sources|check``: the steps of scripts/rehearse_paper.sh."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Run one step; returns the exit status (1 when ``check`` finds problems)."""
    ap = argparse.ArgumentParser(prog="python -m pcreg.rehearsal", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write the stand-ins (FIRE.7z, OR-PAM repositories) and standins.json")
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("serve", help="serve the stand-ins on 127.0.0.1 until killed; write the URL to --ready")
    s.add_argument("--standins", type=Path, required=True)
    s.add_argument("--ready", type=Path, required=True)
    s.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    o = sub.add_parser("sources", help="wait for the server, then write the sources overlay config")
    o.add_argument("--standins", type=Path, required=True)
    o.add_argument("--ready", type=Path, required=True)
    o.add_argument("--out", type=Path, required=True)
    o.add_argument("--wait-s", type=float, default=60.0)
    c = sub.add_parser("check", help="check the run's tables, figures, geometry and memory")
    c.add_argument("--run-dir", type=Path, required=True)
    c.add_argument("--standins", type=Path, required=True)
    args = ap.parse_args(argv)

    if args.cmd == "build":
        from pcreg.rehearsal.standins import build

        info = build(args.out, args.seed)
        print(f"stand-ins in {args.out}: FIRE.7z sha256 {info['fire_sha256']}, repositories "
              f"{', '.join(info['repos'])}")
        return 0
    standins = json.loads(args.standins.read_text())
    if args.cmd == "serve":
        from pcreg.rehearsal.server import serve_forever

        serve_forever(standins, args.ready, args.port)
        return 0
    if args.cmd == "sources":
        from pcreg.rehearsal.overlay import sources_overlay, write_yaml

        deadline = time.monotonic() + args.wait_s
        while not args.ready.is_file():
            if time.monotonic() > deadline:
                print(f"the stand-in server did not start within {args.wait_s:.0f} s", file=sys.stderr)
                return 1
            time.sleep(0.2)
        url = json.loads(args.ready.read_text())["url"]
        write_yaml(args.out, sources_overlay(url, standins["fire_sha256"]))
        print(f"sources overlay {args.out}: stand-ins served at {url}")
        return 0
    from pcreg.rehearsal.checks import GEOMETRY_TOLERANCE_PX, check_run, job_times

    problems, rows = check_run(args.run_dir, standins)
    t = job_times(args.run_dir)
    print(f"workflow jobs: {t['jobs']}, their wall times add up to {t['wall_s']:.0f} s and their CPU times to "
          f"{t['cpu_s']:.0f} s")
    if not rows.empty:
        print("known geometry of the FIRE stand-in, mean landmark error in original px (whole FIRE, 768 px):")
        print(rows.pivot(index="pair_id", columns="run", values="mean_error_orig_px").round(2).to_string())
        print("tolerances: " + "; ".join(f"{r} <= {t:g} px on {'/'.join(c)}"
                                         for r, (c, t) in GEOMETRY_TOLERANCE_PX.items()))
    for p in problems:
        print(f"REHEARSAL PROBLEM: {p}", file=sys.stderr)
    print("rehearsal checks: " + ("passed" if not problems else f"{len(problems)} problem(s)"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""Speed of the default study: `kalcoint study DATA` run as a user runs it, timed end to end.

    .venv/bin/python benchmarks/bench_study.py [DATA] [--assets A,B,...] [--workers 2] [--out-dir DIR] [study flags]

DATA is a path, or the name of a packaged dataset (``etf_2008_2016``; see ``kalcoint datasets``).

Runs the command in a child process (imports, cluster start-up, screening, every weekly
retune, the bootstrap) and prints its own output, the wall time, the load average of the
machine before and after, and the CPU time of the command and its worker processes (on a
shared machine the wall time overstates the cost; CPU time / cores is what it would take
on idle cores, if the work divides evenly). The goal: the default study of
chan_etf_close.csv (pairs of all 67 ETFs, 10 periods, 5 models) in at most 10 minutes on
two cores. ``--assets`` times a subset first.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kalcoint import datasets

DEFAULT_DATA = datasets.path("chan_etf")
GOAL_S = 600.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--assets", default=None, help="a subset of tickers to time first")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--out-dir", type=Path, default=None, help="keep study.parquet, summary.json and figures here")
    args, extra = parser.parse_known_args()  # other flags go to `kalcoint study`
    if not args.data.exists() and str(args.data) in datasets.names():
        args.data = datasets.path(str(args.data))  # a bare name: a packaged dataset

    out_dir = args.out_dir or Path(tempfile.mkdtemp(prefix="bench_study_"))
    out_dir.mkdir(parents=True, exist_ok=True)
    kalcoint = Path(sys.executable).with_name("kalcoint")
    cmd = [
        str(kalcoint),
        "study",
        str(args.data),
        "--out",
        str(out_dir / "study.parquet"),
        "--overwrite",
        "--json",
        str(out_dir / "summary.json"),
        "--plot-dir",
        str(out_dir / "figures"),
    ]
    if args.assets:
        cmd += ["--assets", args.assets]
    if args.workers is not None:
        cmd += ["--workers", str(args.workers)]
    cmd += [a for a in extra if a != "--"]
    load_before = os.getloadavg()
    started = time.perf_counter()
    done = subprocess.run(cmd, check=False)
    elapsed = time.perf_counter() - started
    load_after = os.getloadavg()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the command and its worker processes
    cpu = usage.ru_utime + usage.ru_stime
    print(f"\n$ {' '.join(cmd)}")
    print(f"exit {done.returncode}; wall time {elapsed:.1f} s (goal for the full default study: <= {GOAL_S:.0f} s)")
    print(
        f"load average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
        f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f} (1, 5, 15 min); "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"CPU time of the command and its workers {cpu:.1f} s: on {os.cpu_count()} idle cores about "
        f"{cpu / (os.cpu_count() or 1):.0f} s of wall time"
    )
    print(f"outputs in {out_dir}")
    sys.exit(done.returncode)


if __name__ == "__main__":
    main()

"""Time of the commands the README quotes, each beside its baseline in the same run.

    .venv/bin/python benchmarks/bench_commands.py [DATA] [--assets EWA,EWC,IGE]

Each command runs as a user runs it (``kalcoint ...`` in a new process, the numba cache
warm); printed: wall seconds, CPU seconds of the process, and the ratio to its baseline:

- ``tune --method seed|em|als`` against ``tune --method mle`` (the fit, its Johansen, the
  diagnosis and the JSON, start-up included);
- ``compare`` with the test of ``a11 = 1`` (199 bootstrap samples, each two MLE fits, on
  the local cores) against ``compare --bootstrap 0``;
- ``compare --backtest --cost-bps 5 --bootstrap 0`` (every model in sample and walk-forward:
  259 weekly re-estimations each on EWA/EWC/IGE) against ``compare --bootstrap 0``.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import load_change, print_machine

from kalcoint import datasets

DEFAULT_DATA = datasets.path("chan_etf")
KALCOINT = Path(sys.executable).parent / "kalcoint"


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of ``kalcoint *args`` (its worker processes included)."""
    t, c = time.perf_counter(), children_cpu()
    subprocess.run([str(KALCOINT), *args], check=True, capture_output=True, text=True)
    return time.perf_counter() - t, children_cpu() - c


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--assets", default="EWA,EWC,IGE")
    args = parser.parse_args()
    load_before = os.getloadavg()
    print_machine()
    base = [str(args.data), "--assets", args.assets]
    # every kernel compiled (or loaded from the cache) before timing, as `make setup` leaves it
    subprocess.run([sys.executable, "-m", "kalcoint.warmup"], check=True, capture_output=True)
    print(f"\n{args.data.name}, {args.assets}; each command once, in a new process, numba cache warm\n")
    print("| command | wall | CPU | ratio (wall) to its baseline |")
    print("| --- | ---: | ---: | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        out = ["--json", str(Path(tmp) / "out.json")]
        mle = run(["tune", *base, "--method", "mle", *out])
        print(f"| baseline: `tune --method mle` | {mle[0]:.2f} s | {mle[1]:.2f} s | |")
        for method in ("seed", "em", "als"):
            wall, cpu = run(["tune", *base, "--method", method, *out])
            print(f"| `tune --method {method}` | {wall:.2f} s | {cpu:.2f} s | x{wall / mle[0]:.2f} mle |")
        plain = run(["compare", *base, "--bootstrap", "0", *out])
        print(f"| baseline: `compare --bootstrap 0` | {plain[0]:.1f} s | {plain[1]:.1f} s | |")
        test = run(["compare", *base, *out])
        print(
            f"| `compare` (the a11 test, 199 bootstrap samples) | {test[0]:.1f} s | {test[1]:.1f} s | "
            f"x{test[0] / plain[0]:.2f} |"
        )
        backtest = run(["compare", *base, "--backtest", "--cost-bps", "5", "--bootstrap", "0", *out])
        print(
            f"| `compare --backtest --cost-bps 5 --bootstrap 0` | {backtest[0]:.1f} s | {backtest[1]:.1f} s | "
            f"x{backtest[0] / plain[0]:.2f} |"
        )
    print(f"\n{load_change(load_before)}.")


if __name__ == "__main__":
    main()

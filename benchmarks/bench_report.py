"""Speed of ``kalcoint report`` on a basket, beside its baseline in the same run.

    .venv/bin/python benchmarks/bench_report.py [DATA] [--assets EWA,EWC,IGE]

Times, on the same prices and with the command's defaults (every model, bootstrap 199, 5 bps,
window 250, bands):

- the page as ``kalcoint report`` makes it: ``basket_report`` with its default workers (two
  processes on a 2-core machine) and ``write_basket_report``, wall and CPU (this process and
  its workers), and the file's size;
- the baseline: the same page with ``workers=1`` (everything in one process);
- the quick page the README gives (``--models static,chan,seed,mle --bootstrap 0``);
- the CPU seconds of the full page's parts (its ``timings``).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import load_change, print_machine

from kalcoint import datasets

from kalcoint.data import load_prices
from kalcoint.report import Settings, basket_report, write_basket_report

DEFAULT_DATA = datasets.path("chan_etf")
GOAL_S = 30.0


def cpu_seconds() -> float:
    """CPU seconds of this process and of its children that have ended."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


PARTS = {
    "comparison_cpu_s": "the comparison",
    "bootstrap_cpu_s": "the a11 test's bootstrap",
    "backtests_cpu_s": "the backtests",
}


def page(prices, settings: Settings, workers: int | None, out: Path) -> tuple[float, float, float, dict]:
    """Wall seconds, CPU seconds and MB of one page, and the CPU seconds of its parts."""
    t, c = time.perf_counter(), cpu_seconds()
    report = basket_report(prices, settings, workers=workers)
    write_basket_report(report, out)
    return time.perf_counter() - t, cpu_seconds() - c, out.stat().st_size / 1e6, dict(report.timings)


def part_name(key: str) -> str:
    if key.endswith("_walk_forward_fits_cpu_s"):
        return f"{key.removesuffix('_walk_forward_fits_cpu_s')} weekly re-estimations"
    return PARTS.get(key, key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--assets", default="EWA,EWC,IGE")
    args = parser.parse_args()

    load_before = os.getloadavg()
    print_machine()
    prices = load_prices(args.data, args.assets.split(","))
    print(f"\n{args.data.name}, {args.assets}: {len(prices)} rows; defaults of `kalcoint report`\n")
    print("| what | wall | CPU | size | ratio / goal |")
    print("| --- | ---: | ---: | ---: | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.html"
        wall, cpu, mb, parts = page(prices, Settings(), None, out)
        wall1, cpu1, _, _ = page(prices, Settings(), 1, out)
        quick = Settings(models=("static", "chan", "seed", "mle"), bootstrap=0)
        wall_q, cpu_q, mb_q, _ = page(prices, quick, None, out)
    print(
        f"| full page, default workers | {wall:.1f} s | {cpu:.1f} s | {mb:.2f} MB | "
        f"x{wall1 / wall:.2f} one process; goal <= {GOAL_S:.0f} s: {'yes' if wall <= GOAL_S else 'NO'} |"
    )
    print(f"| baseline: full page, one process (`workers=1`) | {wall1:.1f} s | {cpu1:.1f} s | | |")
    print(f"| quick page (static, chan, seed, mle; bootstrap 0) | {wall_q:.1f} s | {cpu_q:.1f} s | {mb_q:.2f} MB | |")
    print("\nThe full page's parts (CPU seconds, as the page lists them, whichever process ran them):\n")
    print("| part | CPU |\n| --- | ---: |")
    for key, seconds in sorted(parts.items(), key=lambda kv: -kv[1]):
        if key != "wall_s":
            print(f"| {part_name(key)} | {seconds:.1f} s |")
    print(f"\n{load_change(load_before)}.")


if __name__ == "__main__":
    main()

"""Speed of ``kalcoint report`` across baskets: the slowest page of a list of triplets.

    .venv/bin/python benchmarks/bench_report_baskets.py [DATA] [--baskets A,B,C;D,E,F;...]

The goal: the basket page of any triplet of Chan's file in under 30 s with the command's
defaults (every model, bootstrap 199, 5 bps, window 250, bands), on the 2-core machine with no
other job. The default list is the first 10 triplets of the screen's ranking of Chan's file,
as the README prints them (``kalcoint screen chan_etf_close.csv --size 3 --top 10``: the top 10
of 13,534 baskets by the static portfolio's ADF p-value), then EWG/EWQ/EWU (the slowest
triplet known before: 31-34 s) and EWA/EWC/IGE, the README's basket and this run's baseline.

Each page is made as ``kalcoint report`` makes it (``basket_report`` with its default two
worker processes, then ``write_basket_report``): wall and CPU seconds (this process and its
workers), the ratio of each to the baseline's in the same run, and the CPU seconds of the
page's three largest parts. On a loaded machine wall times grow with the load; CPU / 2 is
then the nearer estimate of the idle wall time (two cores, each page keeps both busy).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import load_change, print_machine
from bench_report import DEFAULT_DATA, GOAL_S, page, part_name

from kalcoint.data import load_prices
from kalcoint.report import Settings

SCREEN_TOP_10 = (
    "EDZ,FAS,VXX",
    "EDZ,KBE,VXX",
    "EDZ,VXX,XLF",
    "EDZ,UYG,VXX",
    "EDZ,VXX,XLP",
    "EDZ,VXX,XLI",
    "EDZ,IWM,VXX",
    "EDZ,MDY,VXX",
    "EDZ,MWN,VXX",
    "EDZ,SAA,VXX",
)
"""The first 10 triplets of the screen's ranking of Chan's file (README, "Screening a universe")."""
BASELINE = "EWA,EWC,IGE"
DEFAULT_BASKETS = (*SCREEN_TOP_10, "EWG,EWQ,EWU", BASELINE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--baskets", default=";".join(DEFAULT_BASKETS), help="';'-separated baskets (last: baseline)")
    args = parser.parse_args()
    baskets = args.baskets.split(";")

    load_before = os.getloadavg()
    print_machine()
    print(f"\n{args.data.name}: {len(baskets)} baskets, defaults of `kalcoint report`; baseline {baskets[-1]}\n")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for basket in baskets:
            prices = load_prices(args.data, basket.split(","))
            wall, cpu, _mb, parts = page(prices, Settings(), None, Path(tmp) / "report.html")
            rows.append((basket, len(prices), wall, cpu, parts))
            print(f"- {basket}: {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)  # progress of a long run
    base_wall, base_cpu = rows[-1][2], rows[-1][3]
    print("\n| basket | rows | wall | CPU | CPU / 2 | wall / baseline | CPU / baseline | largest parts (CPU) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for basket, n, wall, cpu, parts in rows:
        top = sorted(((v, k) for k, v in parts.items() if k != "wall_s"), reverse=True)[:3]
        largest = ", ".join(f"{part_name(k)} {v:.1f} s" for v, k in top)
        print(
            f"| {basket} | {n} | {wall:.1f} s | {cpu:.1f} s | {cpu / 2:.1f} s | x{wall / base_wall:.2f} "
            f"| x{cpu / base_cpu:.2f} | {largest} |"
        )
    slow_wall = max(rows, key=lambda r: r[2])
    slow_cpu = max(rows, key=lambda r: r[3])
    print(
        f"\nSlowest page: {slow_wall[0]}, {slow_wall[2]:.1f} s wall (goal <= {GOAL_S:.0f} s: "
        f"{'yes' if slow_wall[2] <= GOAL_S else 'NO'}); most CPU: {slow_cpu[0]}, {slow_cpu[3]:.1f} s "
        f"(CPU / 2 = {slow_cpu[3] / 2:.1f} s: {'yes' if slow_cpu[3] / 2 <= GOAL_S else 'NO'})."
    )
    print(f"\n{load_change(load_before)}.")


if __name__ == "__main__":
    main()

"""Screening speed: N baskets serially, on 1 and on 2 local Dask workers.

    .venv/bin/python benchmarks/bench_screen.py [DATA] [--size 3] [--baskets 2000] [--workers 1,2]

The baskets are a fixed random sample (seed 0) of all baskets of the universe, so late
starters (short histories) and failures appear in their real proportions. For each
cluster size the startup (cluster + worker imports, timed once) is reported apart from
the steady-state rate, and the full screen is estimated as startup + all baskets / rate.
Issue 7's goal: all 47,905 triplets of chan_etf_close.csv in at most 10 minutes on two
cores (>= 80 baskets/s), two workers >= 1.5 times as fast as one.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from kalcoint.screen import ScreenOptions, basket_list, load_universe, screen

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "chan_etf_close.csv"


def _rate(run, n: int) -> tuple[float, float]:
    started = time.perf_counter()
    table = run()
    elapsed = time.perf_counter() - started
    assert len(table) == n
    return elapsed, n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--size", type=int, default=3)
    parser.add_argument("--baskets", type=int, default=2000, help="baskets timed per configuration")
    parser.add_argument("--workers", default="1,2", help="local cluster sizes to time")
    parser.add_argument("--iterations", type=int, default=None)
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    universe = load_universe(args.data)
    options = ScreenOptions(size=args.size, **({"iterations": args.iterations} if args.iterations else {}))
    everything = basket_list(list(universe.columns), args.size)
    pick = np.random.default_rng(0).choice(len(everything), size=min(args.baskets, len(everything)), replace=False)
    sample = [everything[i] for i in sorted(pick)]
    n = len(sample)
    print(f"{args.data.name}: {universe.shape[1]} assets, {len(everything):,} baskets of {args.size}; "
          f"timing {n} of them, {options.method} x {options.iterations} passes")

    screen(universe, options, baskets=sample[:5], workers=0)  # numba cache warm
    cpu = time.process_time()
    serial_s, serial_rate = _rate(lambda: screen(universe, options, baskets=sample, workers=0), n)
    serial_cpu = time.process_time() - cpu
    statuses = screen(universe, options, baskets=sample[:200], workers=0)["status"].value_counts().to_dict()
    print(f"statuses in the first 200 of the sample: {statuses}")
    print(f"serial        {serial_s:7.2f} s  {serial_rate:7.1f} baskets/s  "
          f"(CPU {1e3 * serial_cpu / n:.2f} ms a basket: {n / serial_cpu:.1f} baskets per CPU-second)")

    rates = {}
    for w in [int(x) for x in args.workers.split(",")]:
        started = time.perf_counter()
        with LocalCluster(n_workers=w, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=logging.ERROR) as cluster:
            address = cluster.scheduler_address
            screen(universe, options, baskets=sample[:2 * w], scheduler=address, batch_size=1)  # worker imports
            startup = time.perf_counter() - started
            with Client(address) as client:
                before = client.run(time.process_time)
                elapsed, rate = _rate(lambda: screen(universe, options, baskets=sample, scheduler=address), n)
                after = client.run(time.process_time)
            worker_cpu = sum(after[k] - before[k] for k in after)
        rates[w] = rate
        full = startup + len(everything) / rate
        print(f"{w} worker{'s' if w > 1 else ' '}     {elapsed:7.2f} s  {rate:7.1f} baskets/s  "
              f"(x{rate / serial_rate:.2f} serial; startup {startup:.1f} s; "
              f"all {len(everything):,} baskets ~{full:.0f} s = {full / 60:.1f} min; "
              f"workers' CPU {1e3 * worker_cpu / n:.2f} ms a basket, {100 * worker_cpu / (w * elapsed):.0f}% busy)")
    if 1 in rates and 2 in rates:
        print(f"2 workers / 1 worker = {rates[2] / rates[1]:.2f}")


if __name__ == "__main__":
    main()

"""Screening speed (issue 13): each figure beside its baseline, measured in the same run.

    .venv/bin/python benchmarks/bench_screen.py [DATA] [--baskets 1000] [--mle-baskets 60]
        [--workers 1,2] [--repeat 3] [--full seed|mle]

The baskets are a fixed random sample (seed 0) of all triplets of the universe, so late
starters and failures appear in their real proportions. Printed:

- serial seed screen, current code vs the previous algorithm (statsmodels' ``coint_johansen``
  and ``mackinnonp`` patched back in, in this process), best of ``--repeat``: baskets per second
  and per CPU-second, and the ratio;
- 1 and 2 local Dask workers (startup timed apart), the ratio 2 workers / 1 worker, and the
  full screen estimated as startup + all baskets / rate;
- the MLE screen on ``--mle-baskets`` baskets with BLAS threads limited (as kalcoint runs) and
  without the limit (as before issue 13 when numpy was imported first);
- ``--full seed`` or ``--full mle``: the whole universe through ``kalcoint.screen.screen`` on
  2 workers (long: run it once).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import print_machine

from kalcoint.screen import ScreenOptions, basket_list, load_universe, screen

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "chan_etf_close.csv"


@contextlib.contextmanager
def previous_algorithm():
    """The screen as it was before issue 13: statsmodels' Johansen and MacKinnon p-values."""
    from statsmodels.tsa.adfvalues import mackinnonp
    from statsmodels.tsa.vector_ar.vecm import coint_johansen

    import kalcoint.cointegration as coint

    def johansen_kernel(x, det_order, k_ar_diff, tol):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = coint_johansen(x, det_order, k_ar_diff)
        return res.eig, res.evec, res.lr1, res.lr2, coint.OK

    saved = coint.johansen_kernel, coint.mackinnonp
    coint.johansen_kernel = johansen_kernel
    coint.mackinnonp = lambda stat, regression="c", N=1: float(mackinnonp(stat, regression=regression, N=N))
    try:
        yield
    finally:
        coint.johansen_kernel, coint.mackinnonp = saved


def timed(run, repeat: int) -> tuple[float, float, object]:
    """Best wall and best CPU seconds of ``repeat`` runs, and the last result."""
    wall = cpu = float("inf")
    out = None
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        out = run()
        wall, cpu = min(wall, time.perf_counter() - t), min(cpu, time.process_time() - c)
    return wall, cpu, out


def serial(universe, options, sample, repeat):
    n = len(sample)
    screen(universe, options, baskets=sample[:5], workers=0)  # numba cache loaded
    wall, cpu, new = timed(lambda: screen(universe, options, baskets=sample, workers=0), repeat)
    with previous_algorithm():
        wall0, cpu0, old = timed(lambda: screen(universe, options, baskets=sample, workers=0), repeat)
    print(
        f"| serial seed screen, {n} baskets | {n / wall:.0f}/s ({n / cpu:.0f} per CPU-s) | "
        f"{n / wall0:.0f}/s ({n / cpu0:.0f} per CPU-s) | x{wall0 / wall:.2f} (CPU x{cpu0 / cpu:.2f}) |"
    )
    same = (new["status"].to_numpy() == old["status"].to_numpy()).mean()
    return n / wall, same


def workers(universe, options, sample, sizes, total):
    from distributed import Client, LocalCluster

    rates = {}
    for w in sizes:
        started = time.perf_counter()
        with LocalCluster(
            n_workers=w, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
        ) as cluster:
            address = cluster.scheduler_address
            screen(universe, options, baskets=sample[: 2 * w], scheduler=address, batch_size=1)  # worker imports
            startup = time.perf_counter() - started
            with Client(address):
                t = time.perf_counter()
                screen(universe, options, baskets=sample, scheduler=address)
                elapsed = time.perf_counter() - t
        rates[w] = len(sample) / elapsed
        full = startup + total / rates[w]
        print(
            f"| {w} Dask worker{'s' if w > 1 else ''}, {len(sample)} baskets | {rates[w]:.0f}/s | | "
            f"startup {startup:.1f} s; all {total:,} ~{full:.0f} s |"
        )
    if 1 in rates and 2 in rates:
        print(f"| 2 workers / 1 worker | x{rates[2] / rates[1]:.2f} | | goal >= 1.7 |")
    return rates


def mle(universe, sample):
    """The serial MLE screen (L-BFGS-B, three starts) with BLAS threads limited, as kalcoint runs it,
    and without the limit (as before issue 13 when numpy was imported before kalcoint)."""
    import importlib

    import kalcoint._threads as threads

    sc = importlib.import_module("kalcoint.screen")  # the module (kalcoint.screen is also the function)

    options = ScreenOptions(size=3, method="mle", iterations=200)
    screen(universe, options, baskets=sample[:3], workers=0)
    wall, cpu, _ = timed(lambda: screen(universe, options, baskets=sample, workers=0), 1)
    saved = sc.single_threaded
    sc.single_threaded = threads.contextlib.nullcontext
    try:
        import kalcoint.tuning as tuning

        tune_limited = tuning.tune
        tuning_tune = getattr(tuning.tune, "__wrapped__", tuning.tune)
        sc.tune = tuning_tune
        wall0, cpu0, _ = timed(lambda: screen(universe, options, baskets=sample, workers=0), 1)
    finally:
        sc.single_threaded = saved
        sc.tune = tune_limited
    n = len(sample)
    print(
        f"| serial MLE screen, {n} baskets | {1e3 * wall / n:.1f} ms a basket (CPU {1e3 * cpu / n:.1f}) | "
        f"BLAS threads not limited: {1e3 * wall0 / n:.1f} ms (CPU {1e3 * cpu0 / n:.1f}) | "
        f"x{wall0 / wall:.2f} (CPU x{cpu0 / cpu:.2f}) |"
    )
    return wall0 / wall


def full_run(universe, method: str) -> None:
    options = ScreenOptions(size=3, method=method, iterations=30 if method == "seed" else 200)
    t = time.perf_counter()
    table = screen(universe, options, workers=2)
    elapsed = time.perf_counter() - t
    counts = table["status"].value_counts().to_dict()
    print(f"| full {method} screen, {len(table):,} baskets, 2 workers | {elapsed:.1f} s | | {counts} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--baskets", type=int, default=1000, help="baskets timed serially and on workers")
    parser.add_argument("--mle-baskets", type=int, default=60)
    parser.add_argument("--workers", default="1,2", help="local cluster sizes to time ('' for none)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--full", choices=["seed", "mle"], default=None)
    args = parser.parse_args()

    load_before = os.getloadavg()
    print_machine()
    universe = load_universe(args.data)
    everything = basket_list(list(universe.columns), 3)
    pick = np.random.default_rng(0).choice(len(everything), size=min(args.baskets, len(everything)), replace=False)
    sample = [everything[i] for i in sorted(pick)]
    print(
        f"\n{args.data.name}: {universe.shape[1]} assets, {len(everything):,} triplets; sample of {len(sample)} "
        f"(seed 0), seed method x {ScreenOptions().iterations} passes\n"
    )
    print("| what | now | baseline (previous algorithm, same run) | ratio |")
    print("| --- | ---: | ---: | --- |")
    options = ScreenOptions(size=3)
    _, same = serial(universe, options, sample, args.repeat)
    if args.workers:
        workers(universe, options, sample, [int(x) for x in args.workers.split(",")], len(everything))
    if args.mle_baskets:
        mle(universe, sample[: args.mle_baskets])
    if args.full:
        full_run(universe, args.full)
    print(
        f"\nSame statuses as the previous algorithm on {same:.1%} of the sample. Load average (1, 5, 15 min) "
        f"before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, after "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}."
    )


if __name__ == "__main__":
    main()

"""Screening speed: each figure beside its baseline, measured in the same run.

    .venv/bin/python benchmarks/bench_screen.py [DATA] [--baskets 1000] [--mle-baskets 200] [--mle-blas]
        [--workers 1,2] [--repeat 3] [--full seed,mle]

The baskets are a fixed random sample (seed 0) of all triplets of the universe, so late
starters and failures appear in their real proportions. Printed:

- serial seed screen, current code vs the previous algorithm (statsmodels' ``coint_johansen``
  and ``mackinnonp`` patched back in, in this process), best of ``--repeat``: baskets per second
  and per CPU-second, and the ratio;
- 1 and 2 local Dask workers (startup timed apart), the ratio 2 workers / 1 worker, and the
  full screen estimated as startup + all baskets / rate;
- the serial MLE screen on ``--mle-baskets`` baskets against the previous MLE fit (the previous
  compiled likelihood pass, scipy's ``minimize``, every start run to its optimum: patched back in
  by ``previous_mle()``), the share of fits whose log-likelihood is within 1e-6 of (or above) the
  previous three-start optimum, and the same baskets on 2 Dask workers with the all-triplets
  estimate; ``--mle-blas`` adds the MLE screen with and without the BLAS thread limit;
- ``--full seed``, ``--full mle`` or ``--full seed,mle``: the whole universe through ``kalcoint.screen.screen`` on
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

from _machine import load_change, print_machine

from kalcoint import datasets

from kalcoint.screen import ScreenOptions, basket_list, load_universe, screen

DEFAULT_DATA = datasets.path("chan_etf")


@contextlib.contextmanager
def previous_algorithm():
    """The screen as it was before the compiled kernels: statsmodels' Johansen and MacKinnon p-values."""
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


def _previous_loglik_grad():
    """The compiled likelihood-and-gradient pass as it was before the compiled optimiser: it keeps the
    filter's (n, k, k) covariances of every day and reads back what its backward pass needs."""
    import math

    from numba import njit

    try:
        from kalcoint._kernels.filtering import filter_loop
    except ImportError:
        from kalcoint.filtering import _filter_loop as filter_loop

    @njit(nogil=True)
    def loglik_grad(y, X, a, vw, ve, b_start, P_start, grad):  # pragma: no cover - compiled
        n, k = X.shape
        aa = np.empty((k, k))
        for i in range(k):
            for j in range(k):
                aa[i, j] = a[i] * a[j]
        b_pred = np.empty((n, k))
        P_pred = np.empty((n, k, k))
        b_filt = np.empty((n, k))
        P_filt = np.empty((n, k, k))
        es = np.empty(n)
        qs = np.empty(n)
        loglik = filter_loop(y, X, a, vw, ve, b_start, P_start, False, True, b_pred, P_pred, b_filt, P_filt, es, qs)
        if not math.isfinite(loglik):
            return np.nan
        rs = np.empty(n)
        Pxs = np.empty((n, k))
        bf0 = np.empty(n)
        Pf0 = np.empty((n, k))
        for t in range(n):
            rs[t] = 1.0 / qs[t]
            bf0[t] = b_filt[t, 0]
            for i in range(k):
                Pf0[t, i] = P_filt[t, 0, i]
                s = 0.0
                for j in range(k):
                    s += P_pred[t, i, j] * X[t, j]
                Pxs[t, i] = s
        B = np.zeros(k)
        C = np.zeros((k, k))
        AB = np.empty(k)
        Pfbar = np.empty((k, k))
        Pxbar = np.empty(k)
        d_alpha = 0.0
        d_ve = 0.0
        for i in range(k):
            grad[2 + i] = 0.0
        for t in range(n - 1, -1, -1):
            e = es[t]
            r = rs[t]
            g = e * r
            d_alpha += B[0] * bf0[t] + 2.0 * a[0] * Pf0[t, 0] * C[0, 0]
            for j in range(1, k):
                d_alpha += a[j] * Pf0[t, j] * (C[0, j] + C[j, 0])
            for i in range(k):
                grad[2 + i] += C[i, i]
                AB[i] = a[i] * B[i]
                for j in range(k):
                    Pfbar[i, j] = aa[i, j] * C[i, j]
            gbar = 0.0
            quad_f = 0.0
            for i in range(k):
                gbar += AB[i] * Pxs[t, i]
                s = 0.0
                for j in range(k):
                    s += (Pfbar[i, j] + Pfbar[j, i]) * Pxs[t, j]
                Pxbar[i] = g * AB[i] - r * s
                quad_f += Pxs[t, i] * s
            ebar = -g + gbar * r
            rbar = -0.5 * quad_f + gbar * e
            qbar = -0.5 * r * (1.0 - e * g) - rbar * r * r
            d_ve += qbar
            for i in range(k):
                pxb = Pxbar[i] + qbar * X[t, i]
                B[i] = AB[i] - ebar * X[t, i]
                for j in range(k):
                    C[i, j] = Pfbar[i, j] + pxb * X[t, j]
        grad[0] = d_alpha
        grad[1] = d_ve
        return loglik

    return loglik_grad


@contextlib.contextmanager
def previous_mle():
    """The MLE fit as it was before the compiled optimiser: the previous compiled pass (above), the
    gradient's chain rule in NumPy, scipy's ``minimize`` around L-BFGS-B, and every start run to its
    optimum in the screen (scipy's L-BFGS-B)."""
    import importlib
    import math

    mle = importlib.import_module("kalcoint.tuning.mle")
    sc = importlib.import_module("kalcoint.screen")
    kernel = _previous_loglik_grad()

    def objective_and_gradient(self, theta):
        natural = mle._natural(theta)
        if self.fixed_alpha11 is not None:
            natural[0] = self.fixed_alpha11
        self.a[0] = natural[0]
        grad = np.empty(theta.size)
        ll = float(kernel(self.y, self.X, self.a, natural[2:], natural[1], self.initial_state, self.initial_cov, grad))
        if not math.isfinite(ll):
            return math.inf, np.full(theta.size, np.nan)
        jac = np.concatenate([[1.0 - natural[0] ** 2 if self.fixed_alpha11 is None else 0.0], natural[1:]])
        value = -ll / self.n
        self._last = (theta.tobytes(), value)
        return value, -grad * jac / self.n

    saved = mle._Likelihood.objective_and_gradient, mle._setulb, sc.MLE_OPTIONS
    mle._Likelihood.objective_and_gradient = objective_and_gradient
    mle._setulb = lambda: None  # scipy's minimize
    sc.MLE_OPTIONS = {"optimizer": "scipy"}
    try:
        yield
    finally:
        mle._Likelihood.objective_and_gradient, mle._setulb, sc.MLE_OPTIONS = saved


@contextlib.contextmanager
def fit_logliks():
    """Record the log-likelihood of every MLE fit of a serial screen: {basket: {panel hash: loglik}}."""
    import functools
    import hashlib
    import importlib

    mle = importlib.import_module("kalcoint.tuning.mle")
    sc = importlib.import_module("kalcoint.screen")
    fit, evaluate = mle.fit, sc.evaluate_basket
    found: dict[tuple, dict[str, float]] = {}
    current: list[tuple] = [()]

    @functools.wraps(fit)
    def recording(values, *args, **kwargs):
        out = fit(values, *args, **kwargs)
        key = hashlib.sha1(np.ascontiguousarray(values, dtype=np.float64).tobytes()).hexdigest()
        found.setdefault(current[0], {})[key] = max(out.options["start_logliks"].values())
        return out

    def evaluating(universe, basket, options):
        current[0] = tuple(basket)
        return evaluate(universe, basket, options)

    mle.fit, sc.evaluate_basket = recording, evaluating
    try:
        yield found
    finally:
        mle.fit, sc.evaluate_basket = fit, evaluate


def mle_screen(universe, sample, total):
    """The serial MLE screen against the previous MLE fit (same run), how often it ends at the optimum
    of the previous three-start fit, and 2 Dask workers for the all-triplets estimate."""
    from distributed import LocalCluster

    options = ScreenOptions(size=3, method="mle", iterations=200)
    n = len(sample)
    screen(universe, options, baskets=sample[:3], workers=0)
    with fit_logliks() as new:
        wall, cpu, _ = timed(lambda: screen(universe, options, baskets=sample, workers=0), 1)
    with previous_mle():
        screen(universe, options, baskets=sample[:3], workers=0)  # compiled
        with fit_logliks() as old:
            wall0, cpu0, _ = timed(lambda: screen(universe, options, baskets=sample, workers=0), 1)
    print(
        f"| serial MLE screen, {n} baskets | {1e3 * wall / n:.1f} ms a basket (CPU {1e3 * cpu / n:.1f}) | "
        f"previous MLE fit: {1e3 * wall0 / n:.1f} ms (CPU {1e3 * cpu0 / n:.1f}) | "
        f"x{wall0 / wall:.2f} (CPU x{cpu0 / cpu:.2f}) |"
    )
    fits = [(b, k) for b in old for k in old[b]]
    ok = {(b, k): k in new.get(b, {}) and new[b][k] >= old[b][k] - 1e-6 for b, k in fits}
    baskets = sum(all(ok[b, k] for k in old[b]) for b in old)
    print(
        f"| MLE at the previous three-start optimum (log-likelihood within 1e-6 or above) | "
        f"{baskets} of {len(old)} baskets ({baskets / max(len(old), 1):.1%}); {sum(ok.values())} of {len(ok)} fits "
        f"({sum(ok.values()) / max(len(ok), 1):.1%}) | | goal >= 99% of baskets |"
    )
    started = time.perf_counter()
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
    ) as cluster:
        address = cluster.scheduler_address
        screen(universe, options, baskets=sample[:4], scheduler=address, batch_size=1)  # worker imports
        startup = time.perf_counter() - started
        t = time.perf_counter()
        screen(universe, options, baskets=sample, scheduler=address, batch_size=max(1, n // 16))
        rate = n / (time.perf_counter() - t)
    print(
        f"| 2 Dask workers, MLE, {n} baskets | {rate:.0f}/s (x{rate * wall / n:.2f} serial) | | "
        f"startup {startup:.1f} s; all {total:,} ~{startup + total / rate:.0f} s (goal <= 300 s) |"
    )


def mle_blas(universe, sample):
    """The serial MLE screen with BLAS threads limited, as kalcoint runs it,
    and without the limit (as it was when numpy was imported before kalcoint)."""
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
    parser.add_argument("--mle-baskets", type=int, default=200)
    parser.add_argument("--mle-blas", action="store_true", help="also time the MLE screen without the BLAS limit")
    parser.add_argument("--workers", default="1,2", help="local cluster sizes to time ('' for none)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--full", type=lambda s: s.split(","), default=[], help="seed, mle or seed,mle: the whole universe, 2 workers"
    )
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
    if sample:
        _, same = serial(universe, options, sample, args.repeat)
        print(f"\nSame statuses as the previous algorithm on {same:.1%} of the sample.\n")
    if sample and args.workers:
        workers(universe, options, sample, [int(x) for x in args.workers.split(",")], len(everything))
    if args.mle_baskets:
        # a sample of its own (seed 1): the first baskets of the sorted seed sample share their first asset
        pick = np.random.default_rng(1).choice(
            len(everything), size=min(args.mle_baskets, len(everything)), replace=False
        )
        mle_sample = [everything[i] for i in sorted(set(pick.tolist()))]
        mle_screen(universe, mle_sample, len(everything))
        if args.mle_blas:
            mle_blas(universe, mle_sample)
    for method in args.full:
        full_run(universe, method)
    print(f"\n{load_change(load_before)}.")


if __name__ == "__main__":
    main()

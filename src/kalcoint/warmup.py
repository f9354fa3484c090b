"""Compile and cache every numba kernel once: ``python -m kalcoint.warmup``.

``make demo`` / ``make test`` run it at set-up, so the first real command does not pay
the compilation (about 20-30 s in all; afterwards a new process loads the kernels from
the on-disk cache in well under a second).
"""

from __future__ import annotations

import time


def warm_up() -> float:
    """Run each compiled path once on generated data; returns the seconds it took."""
    from .cointegration import adf
    from .screen import ScreenOptions, Universe, batch_table
    from .synthetic import simulate
    from .tuning import tune

    started = time.perf_counter()
    prices, _ = simulate(n=300)
    for method, iterations in (("seed", 3), ("mle", 5), ("em", 5), ("als", 1)):
        fit = tune(prices, method=method, iterations=iterations)  # with the diagnosis, as `tune` runs
        fit.cov_params()  # the standard errors (MLE, EM): their gradient pass
    adf(fit.result.spread)
    adf(fit.result.spread, autolag=None, maxlag=2)
    adf(fit.result.spread, autolag="BIC")
    batch_table(Universe.from_frame(prices.iloc[:, :2]), [(0, 1)], ScreenOptions(size=2))  # a screen of pairs
    return time.perf_counter() - started


def cache_is_cold() -> bool:
    """True when no compiled kernel is cached yet for this version of the kernels (in
    :func:`kalcoint._numba_cache.cache_dir`; imports neither numba nor numpy)."""
    from ._numba_cache import cache_dir

    directory = cache_dir()
    return not directory.is_dir() or not any(directory.rglob("*.nbi"))


def main() -> None:
    print(f"kalcoint: compiled kernels ready ({warm_up():.1f} s)")


if __name__ == "__main__":
    main()

"""The data of a basket's report: the comparison, every model's backtests, their trades, monthly
returns and rolling Sharpe ratios, and the provenance of the data. No rendering here.

Trades (:func:`trade_list`)
---------------------------
A trade is a holding period of :func:`kalcoint.backtest.holding_periods`: the closes ``first ..
last`` at which the units held have one non-zero sign. Its

- ``entry_date``: the close of day ``first`` (the position is opened at that close);
- ``exit_date``: the close of day ``last + 1``, where the position is closed or reversed (None
  while it is still open on the last day);
- ``side``: ``long`` or ``short`` (one unit long holds one share of asset 1);
- ``days_held``: ``last - first + 1`` closes held (the lengths :func:`compute_metrics` averages);
- ``return``: the compounded net daily returns the position earns, days ``first + 1 ..
  last + 1`` (the exit day carries the exit's costs), times ``1 + r_first`` when the trade
  opens from flat (that day's return is the entry's costs). Every day's return then belongs to
  one trade or to a flat day (whose return is 0), so the trades' ``1 + return`` multiply to the
  run's final equity.

Rolling Sharpe (:func:`rolling_sharpe`): ``sqrt(252) mean / std(ddof=1)`` of the net daily
returns over the last :data:`ROLLING_DAYS` (126, six months) days, from the 126th day on;
undefined (left out) where the returns do not vary.
"""

from __future__ import annotations

import hashlib
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._threads import single_threaded
from ..alpha_test import BOOTSTRAP, Alpha11Test, bootstrap_sample, check_options, with_bootstrap
from ..backtest import (
    DAYS_PER_YEAR,
    MODELS,
    TUNED,
    BacktestResult,
    backtest,
    holding_periods,
    week_starts,
)
from ..comparison import Comparison, compare
from ..errors import ComputationError, KalcointError
from ..oos import split_rows
from ..schedule import Estimated, estimate_from_tuned, estimate_windows, tuning_fit, window_key

MODES = ("in-sample", "walk-forward")
ROLLING_DAYS = 126
"""Six months of trading days: the window of the rolling Sharpe ratio."""
Progress = Callable[[int, int], None]


# ---------------------------------------------------------------- per-run tables


def trades(dates: pd.DatetimeIndex, units: np.ndarray, returns: np.ndarray) -> pd.DataFrame:
    """One row per trade of a run (see the module docstring).

    Parameters
    ----------
    dates : DatetimeIndex, shape (n,)
        The run's days.
    units : ndarray, shape (n,)
        Units held at each close.
    returns : ndarray, shape (n,)
        Net daily returns (fractions).

    Returns
    -------
    DataFrame
        ``entry_date, exit_date, side, days_held, return``; dates as Timestamps (``exit_date``
        NaT while open), ``return`` a fraction.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> t = trades(pd.bdate_range("2024-01-01", periods=5), np.array([0, 1, 1, 0, 0]),
    ...            np.array([0.0, 0.0, 0.01, 0.02, 0.0]))
    >>> t.loc[0, "side"], int(t.loc[0, "days_held"]), round(float(t.loc[0, "return"]), 4)
    ('long', 2, 0.0302)
    """
    u = np.asarray(units, dtype=np.float64)
    r = np.asarray(returns, dtype=np.float64)
    n = u.size
    rows = []
    for first, last, sign in holding_periods(u):
        closed = last + 1 < n
        stop = last + 1 if closed else last
        growth = float(np.prod(1.0 + r[first + 1 : stop + 1]))
        if first == 0 or u[first - 1] == 0:
            growth *= 1.0 + r[first]  # the entry's costs, charged on the day it opens from flat
        rows.append(
            {
                "entry_date": dates[first],
                "exit_date": dates[last + 1] if closed else pd.NaT,
                "side": "long" if sign > 0 else "short",
                "days_held": last - first + 1,
                "return": growth - 1.0,
            }
        )
    return pd.DataFrame(rows, columns=["entry_date", "exit_date", "side", "days_held", "return"])


def trade_list(result: BacktestResult) -> pd.DataFrame:
    """:func:`trades` of a backtest.

    Parameters
    ----------
    result : BacktestResult

    Returns
    -------
    DataFrame

    Examples
    --------
    >>> import kalcoint as kc
    >>> bt = kc.backtest(kc.demo_prices(), "chan")
    >>> len(trade_list(bt)), trade_list(bt).loc[0, "side"]
    (301, 'short')
    """
    return trades(pd.DatetimeIndex(result.frame["date"]), result.units, result.returns)


def monthly_returns(result: BacktestResult) -> pd.DataFrame:
    """Compounded net returns by calendar month.

    Parameters
    ----------
    result : BacktestResult

    Returns
    -------
    DataFrame
        Index years, columns 1..12 and ``year`` (fractions; NaN where the run has no day in that
        month).

    Examples
    --------
    >>> import kalcoint as kc
    >>> bt = kc.backtest(kc.demo_prices(), "chan")
    >>> table = monthly_returns(bt)
    >>> table.shape, round(float(table.loc[2016, "year"]), 4)
    ((6, 13), 0.1366)
    """
    frame = result.frame
    index = pd.DatetimeIndex(frame["date"])
    r = pd.Series(frame["return"].to_numpy(), index=index)
    monthly = (1.0 + r).groupby([index.year, index.month]).prod() - 1.0
    table = monthly.unstack(level=1).reindex(columns=range(1, 13))
    table.index.name, table.columns.name = "year", "month"
    yearly = (1.0 + r).groupby(index.year).prod() - 1.0
    table["year"] = yearly
    return table


def rolling_sharpe(result: BacktestResult, days: int = ROLLING_DAYS) -> pd.Series:
    """Annualised Sharpe ratio of the net daily returns over the last ``days`` days.

    Parameters
    ----------
    result : BacktestResult
    days : int
        Window (trading days).

    Returns
    -------
    Series
        Indexed by date, from day ``days`` on; days whose window does not vary are left out.

    Examples
    --------
    >>> import kalcoint as kc
    >>> bt = kc.backtest(kc.demo_prices(), "chan")
    >>> s = rolling_sharpe(bt)
    >>> len(s), round(float(s.iloc[-1]), 4)
    (1375, 2.8424)
    """
    r = pd.Series(result.returns, index=pd.DatetimeIndex(result.frame["date"]))
    roll = r.rolling(days)
    mean, std = roll.mean(), roll.std(ddof=1)
    sharpe = math.sqrt(DAYS_PER_YEAR) * mean / std.where(std > 1e-14)
    return sharpe.dropna()


# ---------------------------------------------------------------- the report's data


@dataclass(frozen=True)
class Settings:
    """What the report ran with (all shown on the page).

    Attributes
    ----------
    cost_bps : float
        Costs in basis points of traded value.
    window : int
        Walk-forward estimation rows.
    strategy, entry, exit :
        The backtests' trading rule.
    iterations : int
        Tuning iterations.
    train_fraction : float
        The comparison's out-of-sample split.
    models : tuple of str
        Backtest models.
    bootstrap : int, optional
        Bootstrap samples of the comparison's test of alpha11 = 1.

    Examples
    --------
    >>> Settings(models=("static", "chan")).to_dict()["models"]
    ['static', 'chan']
    """

    cost_bps: float = 5.0
    window: int = 250
    strategy: str = "bands"
    entry: float = 1.0
    exit: float = 1.0
    iterations: int = 2000
    train_fraction: float = 0.7
    models: tuple[str, ...] = MODELS
    bootstrap: int | None = None
    """Bootstrap samples of the comparison's test of alpha11 = 1, where the comparison has one
    (None: the comparison's default)."""

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "models": list(self.models)}


@dataclass
class Provenance:
    """Where the data came from and what made the report.

    Attributes
    ----------
    source : str or None
        The price file (with ``sha256`` and ``size_bytes``).
    assets : list of str
    first_date, last_date : Timestamp
    rows, dropped_leading_rows : int
    kalcoint_version, python, numpy, pandas : str
    created_at : str
    elapsed_s : float

    Examples
    --------
    >>> import kalcoint as kc
    >>> provenance(kc.demo_prices(), None).rows
    1500
    """

    source: str | None
    sha256: str | None
    size_bytes: int | None
    assets: list[str]
    first_date: pd.Timestamp
    last_date: pd.Timestamp
    rows: int
    dropped_leading_rows: int
    kalcoint_version: str
    python: str
    numpy: str
    pandas: str
    created_at: str
    elapsed_s: float = 0.0


@dataclass
class Run:
    """One backtest of the report: the result, or the one-line reason it could not run.

    Attributes
    ----------
    model, mode : str
    result : BacktestResult or None
    error : str

    Examples
    --------
    >>> import kalcoint as kc
    >>> Run("chan", "in-sample", kc.backtest(kc.demo_prices(), "chan")).ok
    True
    """

    model: str
    mode: str
    result: BacktestResult | None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.result is not None


@dataclass
class BasketReport:
    """Everything the basket page shows: ``comparison``, ``runs[(model, mode)]``, settings,
    provenance, and ``timings``: ``wall_s`` and the CPU seconds of the parts
    (``comparison_cpu_s``, ``<model>_walk_forward_fits_cpu_s``, ``bootstrap_cpu_s``,
    ``backtests_cpu_s``), whichever process they ran in.

    Examples
    --------
    >>> import kalcoint as kc
    >>> rep = basket_report(kc.demo_prices(), Settings(models=("static", "chan"), bootstrap=0, iterations=20),
    ...                     workers=1)
    >>> sorted(rep.runs)
    [('chan', 'in-sample'), ('chan', 'walk-forward'), ('static', 'in-sample'), ('static', 'walk-forward')]
    """

    prices: pd.DataFrame
    comparison: Comparison
    runs: dict[tuple[str, str], Run]
    settings: Settings
    provenance: Provenance
    timings: dict[str, float] = field(default_factory=dict)

    def run(self, model: str, mode: str) -> Run:
        return self.runs[(model, mode)]

    def metrics_frame(self) -> pd.DataFrame:
        """Index ``(model, mode)``; the metrics of :data:`kalcoint.backtest.METRIC_KEYS` and ``error``."""
        from ..backtest import METRIC_KEYS

        records = []
        for (model, mode), run in self.runs.items():
            m = run.result.metrics if run.result is not None else {}
            records.append({"model": model, "mode": mode, **{k: m.get(k) for k in METRIC_KEYS}, "error": run.error})
        return pd.DataFrame(records).set_index(["model", "mode"])


def check_settings(settings: Settings) -> Settings:
    """Refuse bad settings before any work (messages name the quantity, not a CLI flag).

    Parameters
    ----------
    settings : Settings

    Returns
    -------
    Settings
        The same settings.

    Examples
    --------
    >>> check_settings(Settings(window=10))
    Traceback (most recent call last):
    ...
    kalcoint.errors.KalcointError: window 10 must be an integer >= 20 (trading days)
    """
    from ..strategy import STRATEGIES, check_bands

    if settings.strategy not in STRATEGIES:
        raise KalcointError(f"strategy {settings.strategy!r} is not one of {', '.join(STRATEGIES)}", params="strategy")
    if not (math.isfinite(settings.cost_bps) and settings.cost_bps >= 0):
        raise KalcointError(
            f"cost_bps {settings.cost_bps} must be a finite number >= 0 (basis points)", params="cost_bps"
        )
    if int(settings.window) != settings.window or settings.window < 20:
        raise KalcointError(f"window {settings.window} must be an integer >= 20 (trading days)", params="window")
    if settings.iterations < 1:
        raise KalcointError(f"iterations {settings.iterations} must be >= 1", params="iterations")
    unknown = [m for m in settings.models if m not in MODELS]
    if unknown or not settings.models:
        raise KalcointError(f"models {unknown or '(none)'}: choose from {', '.join(MODELS)}", params="models")
    if not 0.2 <= settings.train_fraction <= 0.95:
        raise KalcointError(
            f"train_fraction {settings.train_fraction} must be between 0.2 and 0.95", params="train_fraction"
        )
    if settings.strategy == "bands":
        check_bands(settings.entry, settings.exit)
    check_options(bootstrap_samples(settings))
    return settings


def check_data(prices: pd.DataFrame, settings: Settings) -> None:
    """Refuse a panel the report cannot cover (before any work): no dates, no week to trade after
    the walk-forward window, too few out-of-sample rows for the comparison (the rows after
    :func:`kalcoint.oos.split_rows`).

    Parameters
    ----------
    prices : DataFrame, shape (n, k)
        Indexed by dates.
    settings : Settings

    Examples
    --------
    >>> import kalcoint as kc
    >>> check_data(kc.demo_prices(), Settings())
    >>> check_data(kc.demo_prices().iloc[:240], Settings())
    Traceback (most recent call last):
    ...
    kalcoint.errors.KalcointError: window 250 leaves no week to trade in 240 rows; use a shorter window
    """
    if not isinstance(prices, pd.DataFrame) or not isinstance(prices.index, pd.DatetimeIndex):
        raise KalcointError("the report needs prices as a DataFrame indexed by dates")
    n = len(prices)
    starts = week_starts(prices.index, int(settings.window))
    if starts.size == 0 or starts[0] >= n - 1:
        raise KalcointError(
            f"window {settings.window} leaves no week to trade in {n} rows; use a shorter window", params="window"
        )
    oos = n - split_rows(n, settings.train_fraction)
    if oos < 30:
        raise KalcointError(
            f"the comparison's out-of-sample part has {oos} rows; needs at least 30 "
            "(lower train_fraction or give more rows)",
            params="train_fraction",
        )


def _file_facts(source: str | os.PathLike[str] | None) -> tuple[str | None, str | None, int | None]:
    if source is None:
        return None, None, None
    path = Path(source)
    if not path.is_file():
        return str(source), None, None
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return str(source), digest, path.stat().st_size


def provenance(prices: pd.DataFrame, source: str | os.PathLike[str] | None) -> Provenance:
    """The provenance block of a price panel read from ``source`` (a file, or None).

    Parameters
    ----------
    prices : DataFrame, shape (n, k)
        Indexed by dates.
    source : path-like or None
        The file (hashed with SHA-256 when it exists).

    Returns
    -------
    Provenance

    Examples
    --------
    >>> import kalcoint as kc
    >>> prov = provenance(kc.demo_prices(), None)
    >>> prov.assets, prov.rows, str(prov.last_date.date())
    (['ETFA', 'ETFB', 'ETFC'], 1500, '2020-10-01')
    """
    from .. import __version__

    name, digest, size = _file_facts(source)
    index = pd.DatetimeIndex(prices.index)
    return Provenance(
        source=name,
        sha256=digest,
        size_bytes=size,
        assets=[str(c) for c in prices.columns],
        first_date=index[0],
        last_date=index[-1],
        rows=len(prices),
        dropped_leading_rows=int(prices.attrs.get("dropped_leading_rows", 0)),
        kalcoint_version=__version__,
        python=platform.python_version(),
        numpy=np.__version__,
        pandas=pd.__version__,
        created_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def _one_backtest(
    prices: pd.DataFrame, model: str, mode: str, settings: Settings, estimates: Estimated | None = None
) -> Run:
    walk = mode == "walk-forward"
    try:
        result = backtest(
            prices,
            model,
            settings.strategy,
            entry=settings.entry,
            exit=settings.exit,
            iterations=settings.iterations,
            cost_bps=settings.cost_bps,
            retune="weekly" if walk else None,
            window=int(settings.window) if walk else None,
            estimates=estimates if model in TUNED else None,
        )
    except KalcointError as exc:
        return Run(model, mode, None, " ".join(str(exc).split()))
    return Run(model, mode, result)


# ---------------------------------------------------------------- the work, spread over processes
#
# Nearly all the time goes into the weekly re-estimations of the walk-forward backtests of the
# tuned models (259 windows each on EWA/EWC/IGE) and the bootstrap of the test of alpha11 = 1.
# Every one of them depends on its own window (or sample) only, so they are made in chunks by
# the worker processes (slowest method first, so that the short chunks fill in at the end),
# while this process runs the comparison; then each backtest runs here with its estimates made
# beforehand (kalcoint.schedule.with_estimates: the same result as tuning in turn), and the
# in-sample backtests of the tuned models reuse the comparison's fits on the whole sample.

_COST_ORDER = {"als": 0, "em": 1, "mle": 2, "seed": 3, "static": 4, "chan": 5}
"""Slowest re-estimations first."""
_CHUNK = {"als": 4, "em": 12}
"""Windows per task (others: :data:`_CHUNK_OTHER`); ALS fits take ~0.1 s each, EM ~0.04 s."""
_CHUNK_OTHER = 40
_BOOTSTRAP_CHUNK = 16
_COMPARISON_ROW = {"seed": "adaptive", "mle": "mle", "em": "em", "als": "als"}
"""The comparison row tuned exactly as each method's in-sample backtest (whole sample, same iterations)."""


def _fit_windows(
    prices: pd.DataFrame, method: str, iterations: int, rows: list[int], window: int
) -> tuple[Estimated, float]:
    """A task: the walk-forward estimations of ``method`` before ``rows`` (as the backtest makes
    them), and the CPU seconds they took."""
    started = time.process_time()
    with single_threaded():
        made = estimate_windows(prices, tuning_fit(method, iterations), rows, window)
    return made, time.process_time() - started


def _bootstrap_chunk(values: np.ndarray, test: Alpha11Test, samples: list[int]) -> tuple[list[float], float]:
    """A task: bootstrap samples ``samples`` of the test of alpha11 = 1, and the CPU seconds they took."""
    started = time.process_time()
    with single_threaded():
        stats = [bootstrap_sample(values, test, b) for b in samples]
    return stats, time.process_time() - started


class _InlineExecutor:
    """Runs each task when it is submitted (one process)."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # handed to whoever reads the result, like a pool does
            future.set_exception(exc)
        return future

    def __enter__(self) -> _InlineExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _executor(workers: int) -> Any:
    if workers > 1 and "fork" in get_all_start_methods():
        return ProcessPoolExecutor(max_workers=workers, mp_context=get_context("fork"))
    return _InlineExecutor()


def _chunks(items: Sequence[int], size: int) -> list[list[int]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def _jobs(models: Sequence[str]) -> list[str]:
    """The models, slowest re-estimations first."""
    return sorted(models, key=lambda m: _COST_ORDER.get(m, 9))


def _in_sample_estimate(prices: pd.DataFrame, comparison: Comparison, model: str) -> Estimated:
    """The comparison's fit on the whole sample, as the in-sample backtest of ``model`` would make it."""
    tuned = comparison.tuned.get(_COMPARISON_ROW.get(model, ""))
    if tuned is None or tuned.iterations is None:
        return {}
    return {window_key(prices): estimate_from_tuned(tuned)}


def bootstrap_samples(settings: Settings) -> int:
    """Bootstrap samples of the test of alpha11 = 1 the report draws (``settings.bootstrap``, or
    the comparison's default :data:`kalcoint.alpha_test.BOOTSTRAP` when None).

    Examples
    --------
    >>> bootstrap_samples(Settings()), bootstrap_samples(Settings(bootstrap=0))
    (199, 0)
    """
    return BOOTSTRAP if settings.bootstrap is None else int(settings.bootstrap)


def basket_report(
    prices: pd.DataFrame,
    settings: Settings | None = None,
    *,
    source: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
    on_comparison: Callable[[Comparison], object] | None = None,
) -> BasketReport:
    """Compute everything the basket page shows.

    Parameters
    ----------
    prices : DataFrame, shape (n, k)
        Positive prices indexed by date, dependent asset first.
    settings : Settings, optional
        Costs, walk-forward window, strategy, iterations, models, bootstrap samples (defaults of
        :class:`Settings`).
    source : path-like, optional
        The file the prices were read from (named on the page with its SHA-256).
    workers : int, optional
        Processes for the re-estimations and the bootstrap (default: 2 when the machine has 2
        cores or more; 1 runs everything in this process). Workers are forked, so the caller's
        script needs no ``if __name__ == "__main__"`` guard; where processes cannot be forked,
        everything runs here.
    progress : callable, optional
        ``progress(done, total)`` after each task (a chunk of re-estimations or bootstrap
        samples) and each backtest.
    on_comparison : callable, optional
        Called with the comparison as soon as it is ready, while the workers still run (e.g. to
        draw its charts meanwhile).

    Returns
    -------
    BasketReport

    Examples
    --------
    >>> import kalcoint as kc
    >>> rep = basket_report(kc.demo_prices(), Settings(models=("static", "chan"), bootstrap=0, iterations=20),
    ...                     workers=1)
    >>> rep.run("chan", "walk-forward").ok
    True
    """
    settings = check_settings(settings or Settings())
    check_data(prices, settings)
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    started = time.perf_counter()
    prov = provenance(prices, source)
    timings: dict[str, float] = {}
    models = _jobs(settings.models)
    window = int(settings.window)
    rows = [int(t) for t in week_starts(pd.DatetimeIndex(prices.index), window)]
    n_boot = bootstrap_samples(settings)
    runs: dict[tuple[str, str], Run] = {}
    with _executor(workers) as pool, single_threaded():
        fits: dict[Future[Any], str] = {
            pool.submit(_fit_windows, prices, m, settings.iterations, chunk, window): m
            for m in models
            if m in TUNED
            for chunk in _chunks(rows, _CHUNK.get(m, _CHUNK_OTHER))
        }
        t = time.process_time()
        comp = compare(prices, iterations=settings.iterations, train_fraction=settings.train_fraction, bootstrap=0)
        timings["comparison_cpu_s"] = time.process_time() - t
        samples: list[Future[tuple[list[float], float]]] = []
        if comp.alpha11_test is not None and n_boot:
            values = prices.to_numpy(dtype=np.float64)
            samples = [
                pool.submit(_bootstrap_chunk, values, comp.alpha11_test, chunk)
                for chunk in _chunks(range(n_boot), _BOOTSTRAP_CHUNK)
            ]
        if on_comparison is not None:
            on_comparison(comp)
        total = len(fits) + len(samples) + 2 * len(models)
        done = 0
        tick = progress or (lambda _d, _t: None)
        waiting = {m: sum(1 for fm in fits.values() if fm == m) for m in models}
        estimates: dict[str, Estimated] = {m: {} for m in models}

        def backtests(model: str) -> None:
            nonlocal done
            t = time.process_time()
            for mode in MODES:
                est = _in_sample_estimate(prices, comp, model) if mode == "in-sample" else estimates[model]
                runs[(model, mode)] = _one_backtest(prices, model, mode, settings, est)
                done += 1
                tick(done, total)
            timings["backtests_cpu_s"] = timings.get("backtests_cpu_s", 0.0) + time.process_time() - t

        for m in models:
            if waiting[m] == 0:
                backtests(m)
        for future in as_completed(fits):
            model = fits[future]
            made, cpu = future.result()
            estimates[model].update(made)
            timings[f"{model}_walk_forward_fits_cpu_s"] = timings.get(f"{model}_walk_forward_fits_cpu_s", 0.0) + cpu
            waiting[model] -= 1
            done += 1
            tick(done, total)
            if waiting[model] == 0:
                backtests(model)
        if samples:
            stats: list[float] = []
            timings["bootstrap_cpu_s"] = 0.0
            for future in samples:
                drawn, cpu = future.result()
                stats.extend(drawn)
                timings["bootstrap_cpu_s"] += cpu
                done += 1
                tick(done, total)
            assert comp.alpha11_test is not None  # samples are drawn only when the test ran
            try:
                comp = replace(comp, alpha11_test=with_bootstrap(comp.alpha11_test, stats))
            except ComputationError:
                comp = replace(comp, alpha11_test=None)
    prov.elapsed_s = timings["wall_s"] = time.perf_counter() - started
    runs = {(m, mode): runs[(m, mode)] for m in settings.models for mode in MODES}
    return BasketReport(prices, comp, runs, settings, prov, timings)

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
import inspect
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..backtest import (
    DAYS_PER_YEAR,
    MODELS,
    BacktestResult,
    backtest,
    holding_periods,
    week_starts,
)
from ..comparison import Comparison, compare
from ..errors import KalcointError
from ..oos import split_rows

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
    provenance.

    Examples
    --------
    >>> import kalcoint as kc
    >>> rep = basket_report(kc.demo_prices(), Settings(models=("static", "chan"), bootstrap=0),
    ...                     workers=1)  # doctest: +SKIP
    >>> sorted(rep.runs)  # doctest: +SKIP
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
        raise KalcointError(f"strategy {settings.strategy!r} is not one of {', '.join(STRATEGIES)}")
    if not (math.isfinite(settings.cost_bps) and settings.cost_bps >= 0):
        raise KalcointError(f"cost_bps {settings.cost_bps} must be a finite number >= 0 (basis points)")
    if int(settings.window) != settings.window or settings.window < 20:
        raise KalcointError(f"window {settings.window} must be an integer >= 20 (trading days)")
    if settings.iterations < 1:
        raise KalcointError(f"iterations {settings.iterations} must be >= 1")
    unknown = [m for m in settings.models if m not in MODELS]
    if unknown or not settings.models:
        raise KalcointError(f"models {unknown or '(none)'}: choose from {', '.join(MODELS)}")
    if not 0.2 <= settings.train_fraction <= 0.95:
        raise KalcointError(f"train_fraction {settings.train_fraction} must be between 0.2 and 0.95")
    if settings.strategy == "bands":
        check_bands(settings.entry, settings.exit)
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
        raise KalcointError(f"window {settings.window} leaves no week to trade in {n} rows; use a shorter window")
    oos = n - split_rows(n, settings.train_fraction)
    if oos < 30:
        raise KalcointError(
            f"the comparison's out-of-sample part has {oos} rows; needs at least 30 "
            "(lower train_fraction or give more rows)"
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


def _one_backtest(prices: pd.DataFrame, model: str, mode: str, settings: Settings) -> Run:
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
            walk_forward="weekly" if walk else None,
            window=int(settings.window) if walk else None,
        )
    except KalcointError as exc:
        return Run(model, mode, None, " ".join(str(exc).split()))
    return Run(model, mode, result)


# Walk-forward runs of tuned models retune every week: they take most of the time, so they go
# first (longest first) and the rest fills in behind them.
_COST_ORDER = {"em": 0, "mle": 1, "seed": 2, "static": 3, "chan": 4}


def _jobs(models: Sequence[str]) -> list[tuple[str, str]]:
    jobs = [(m, mode) for m in models for mode in MODES]
    return sorted(jobs, key=lambda j: (j[1] != "walk-forward", _COST_ORDER.get(j[0], 9)))


def run_backtests(
    prices: pd.DataFrame,
    settings: Settings,
    workers: int = 1,
    progress: Progress | None = None,
    before_wait: Callable[[], None] | None = None,
) -> dict[tuple[str, str], Run]:
    """Every model of ``settings`` backtested in-sample and walk-forward.

    Parameters
    ----------
    prices : DataFrame, shape (n, k)
    settings : Settings
    workers : int
        Processes to run them in (1: in this process). With more than one (where processes can be
        forked: a forked worker needs no ``if __name__ == "__main__"`` guard in the caller's
        script), the backtests run in worker processes while ``before_wait`` (if given) runs here.
    progress : callable, optional
        ``progress(done, total)`` after each backtest.
    before_wait : callable, optional

    Returns
    -------
    dict
        :class:`Run` by ``(model, mode)``, mode "in-sample" or "walk-forward".

    Examples
    --------
    >>> import kalcoint as kc
    >>> runs = run_backtests(kc.demo_prices(), Settings(models=("static", "chan")), 1)
    >>> round(runs[("chan", "walk-forward")].result.metrics["sharpe"], 4)
    1.4427
    """
    jobs = _jobs(settings.models)
    total, done = len(jobs), 0
    tick = progress or (lambda _d, _t: None)
    runs: dict[tuple[str, str], Run] = {}
    if workers > 1 and "fork" not in get_all_start_methods():
        workers = 1
    if workers <= 1:
        if before_wait is not None:
            before_wait()
        for model, mode in jobs:
            runs[(model, mode)] = _one_backtest(prices, model, mode, settings)
            done += 1
            tick(done, total)
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("fork")) as pool:
            futures: dict[Future[Run], tuple[str, str]] = {
                pool.submit(_one_backtest, prices, model, mode, settings): (model, mode) for model, mode in jobs
            }
            if before_wait is not None:
                before_wait()
            for future in as_completed(futures):
                runs[futures[future]] = future.result()
                done += 1
                tick(done, total)
    return {(m, mode): runs[(m, mode)] for m in settings.models for mode in MODES}


def _test_options(settings: Settings) -> dict[str, Any]:
    """Options of the comparison's alpha11 test, for a ``compare`` that has them: run in this
    process (the backtests already use the worker processes)."""
    accepted = inspect.signature(compare).parameters
    options: dict[str, Any] = {}
    if "workers" in accepted:
        options["workers"] = 1
    if "bootstrap" in accepted and settings.bootstrap is not None:
        options["bootstrap"] = int(settings.bootstrap)
    return options


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
        Costs, walk-forward window, strategy, iterations, models (defaults of :class:`Settings`).
    source : path-like, optional
        The file the prices were read from (named on the page with its SHA-256).
    workers : int, optional
        Processes for the backtests (default: 2 when the machine has 2 cores or more).
    progress : callable, optional
        ``progress(done, total)`` after each backtest.
    on_comparison : callable, optional
        Called with the comparison as soon as it is ready, while the backtests still run in the
        workers (e.g. to draw its charts meanwhile).

    Returns
    -------
    BasketReport

    Examples
    --------
    >>> import kalcoint as kc
    >>> rep = basket_report(kc.demo_prices(), Settings(models=("static", "chan"), bootstrap=0),
    ...                     workers=1)  # doctest: +SKIP
    >>> rep.run("chan", "walk-forward").ok  # doctest: +SKIP
    True
    """
    settings = check_settings(settings or Settings())
    check_data(prices, settings)
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    started = time.perf_counter()
    prov = provenance(prices, source)
    holder: dict[str, Any] = {}
    timings: dict[str, float] = {}

    def comparison() -> None:
        t = time.perf_counter()
        holder["comparison"] = compare(
            prices, iterations=settings.iterations, train_fraction=settings.train_fraction, **_test_options(settings)
        )
        timings["comparison_s"] = time.perf_counter() - t
        if on_comparison is not None:
            on_comparison(holder["comparison"])

    t0 = time.perf_counter()
    runs = run_backtests(prices, settings, workers, progress, before_wait=comparison)
    timings["backtests_s"] = time.perf_counter() - t0
    prov.elapsed_s = time.perf_counter() - started
    return BasketReport(prices, holder["comparison"], runs, settings, prov, timings)

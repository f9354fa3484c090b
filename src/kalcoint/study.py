"""An out-of-sample study of every model over a whole universe (formation / trading periods).

The protocol of the pairs-trading literature (Gatev, Goetzmann & Rouwenhorst 2006; Rad, Low &
Faff 2016), with kalcoint's own screen and walk-forward backtest:

Periods
-------
The universe's rows are cut into periods that roll every ``trading`` rows. Period j trades
the rows ``[t_j, t_j + trading)`` (the last one may be shorter; it needs 2 rows), with
``t_0 = max(formation, window)`` and ``t_j = t_0 + j * trading``; its formation window is
the ``formation`` rows before ``t_j``.

Selection (formation rows only)
-------------------------------
An asset is *eligible* in a period when it has a finite, positive price on every row the
period's selection and first fit look at: from ``min(t_j - formation, fit start)`` to
``t_j - 1`` (``fit start`` below). Every basket of ``size`` eligible assets (first = dependent,
in the universe's column order) is screened on the formation rows with
:func:`kalcoint.screen.evaluate_basket` (for ``static`` and ``half-life`` only its Johansen
test and static portfolio: the filter is tuned only for ``mle-oos``), and the top ``top``
baskets are kept by ``select``:

- ``static``: smallest static ADF p-value among baskets whose Johansen trace test rejects
  r = 0 at 5% (``rank_95 >= 1``);
- ``mle-oos``: highest out-of-sample log-likelihood per day of the MLE filter tuned on the
  first 70% of the formation window (the screen's ``oos_loglik / oos_nobs``, ``method="mle"``);
- ``half-life``: shortest static half-life between 2 and 60 days.

Ties keep the basket order.

Trading
-------
Each selected basket is traded with each model by :func:`kalcoint.backtest.backtest` (weekly
walk-forward, ``window`` rows of estimation, the strategy and costs given) on the rows
``[f_j, t_j + trading)``, where ``f_j = w_j - window`` and ``w_j`` is the first row of the
calendar week that holds ``t_j``: the backtest's first traded week is the one containing
``t_j``, whose estimation window (``window`` rows before ``w_j``) and filter warm-up lie
wholly before ``t_j``. Only the trading window's days are kept, and they are accounted
afresh (:func:`kalcoint.backtest.account`, :func:`kalcoint.backtest.compute_metrics`): the
capital starts flat at the close of ``t_j`` (day 1 earns 0; the position the rule holds at
that close is bought then, and charged costs), so nothing held during the formation window
earns or costs anything in the trading window. When ``f_j`` would fall before the file's first
row (the first period, when its week started before ``t_0``), the backtest starts at row 0
and its first traded week is the next one: the days of the trading window before it hold
no position (``untraded_days``). A position open at the window's last close is not closed
(as in ``backtest``).

A model that cannot be backtested on a basket (its first estimation fails, a price in the
trading window is missing or not positive) gives a row with ``status="failed"`` and the
reason; in the portfolios that basket's capital stays in cash (return 0) for that model.

Portfolios and statistics
-------------------------
A model's portfolio holds equal capital in every basket selected in a period (its daily
return is the mean of the baskets' daily returns, failed ones counting 0; a period with no
selected basket is in cash). Its APR, Sharpe, max drawdown and Calmar come from
:func:`kalcoint.backtest.compute_metrics`. The Sharpe's 95% interval is the percentile
interval of a stationary block bootstrap (Politis & Romano 1994, mean block ``block`` days);
the paired difference against ``chan`` resamples both series with the same indices.
``win_share`` is the share of selected basket-periods whose total return over the trading
window is strictly above ``chan``'s (failed = 0). The deflated Sharpe ratio (Bailey & Lopez de
Prado 2014) of the model with the highest Sharpe takes as trials the models times the
selection rules (``trials``), with the variance of the trials' Sharpe ratios estimated from
the models' portfolios.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ._checks import check_choice, check_resume, renamed
from ._cluster import check_scheduler, probe, timeouts
from ._io import read_table as read_raw_table
from ._io import check_table_suffix, write_table, write_with
from .backtest import MIN_WINDOW, MODELS, account, backtest, compute_metrics
from .errors import KalcointError
from .screen import ScreenOptions, Universe, _basket_indices, screen_batch
from .strategy import STRATEGIES, check_bands
from .tuning.diagnosis import HALF_LIFE_MIN, OBS_VAR_TINY, level_half_life

__all__ = [
    "COLUMNS",
    "SELECTIONS",
    "Period",
    "StudyOptions",
    "bootstrap_indices",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "periods_of",
    "portfolio_returns",
    "read_study",
    "select_baskets",
    "study",
    "study_figures",
    "summarize",
    "trade_basket",
]

SELECTIONS = ("static", "mle-oos", "half-life")
DEFAULT_MODELS = ("static", "chan", "seed", "mle", "em")
HALF_LIFE_RANGE = (2.0, 60.0)
"""Half-life selection: static half-lives (days) in this closed range."""
SCREEN_ITERATIONS = {"seed": 30, "mle": 200}
"""Tuning iterations of the formation screen (the screen's defaults)."""
EULER_GAMMA = 0.5772156649015329
DAYS_PER_YEAR = 252

COLUMNS = [
    "period",
    "formation_start",
    "formation_end",
    "trading_start",
    "trading_end",
    "assets",
    "model",
    "select",
    "selection_rank",
    "n_selected",
    "trace_r0",
    "rank_95",
    "static_adf_pvalue",
    "static_half_life",
    "oos_loglik_per_day",
    "status",
    "reason",
    "n_days",
    "untraded_days",
    "apr",
    "sharpe",
    "max_drawdown",
    "calmar",
    "total_return",
    "round_trips",
    "turnover",
    "time_in_market",
    "retunes",
    "retune_failures",
    "degenerate_retunes",
    "daily_returns",
    "settings",
]
"""Columns of the study table: one row per (period, basket, model)."""

_INTS = (
    "period",
    "selection_rank",
    "n_selected",
    "rank_95",
    "n_days",
    "untraded_days",
    "round_trips",
    "retunes",
    "retune_failures",
    "degenerate_retunes",
)
_STRINGS = (
    "formation_start",
    "formation_end",
    "trading_start",
    "trading_end",
    "model",
    "select",
    "status",
    "reason",
    "settings",
)
_METRICS = ("apr", "sharpe", "max_drawdown", "calmar", "total_return", "round_trips", "turnover", "time_in_market")


# ------------------------------------------------------------------ options and periods


@dataclass(frozen=True)
class StudyOptions:
    """The study's settings.

    Parameters
    ----------
    size : int
        Assets per basket (2 or 3).
    formation, trading : int
        Rows of the formation and trading windows (trading days).
    top : int
        Baskets traded per period.
    select : str
        A rule of :data:`SELECTIONS`.
    dependent : str
        Which asset of a basket is the dependent one: ``"first"`` (first in the universe's
        column order), ``"all"`` (each in turn) or a ticker (only baskets holding it), as
        :func:`kalcoint.screen.basket_list`.
    models : tuple of str
        Backtest models (must include ``chan``, the reference).
    cost_bps : float
        Costs in basis points of traded value.
    window : int
        Walk-forward estimation rows.
    strategy, entry, exit :
        The backtest's trading rule.
    iterations : int, optional
        Tuning iterations of the weekly fits (None: tune()'s defaults).
    block : float
        Mean block length (days) of the bootstrap.
    n_boot, seed : int
        Bootstrap resamples and their random seed.
    trials : int, optional
        Trials of the deflated Sharpe ratio (None: number of models x number of selection rules).

    Examples
    --------
    >>> o = StudyOptions(size=3, top=1, models=("static", "chan"))
    >>> o.formation, o.trading, o.select
    (250, 125, 'static')
    """

    size: int = 2
    formation: int = 250
    trading: int = 125
    top: int = 20
    select: str = "static"
    dependent: str = "first"
    models: tuple[str, ...] = DEFAULT_MODELS
    cost_bps: float = 5.0
    window: int = 250
    strategy: str = "bands"
    entry: float = 1.0
    exit: float = 1.0
    iterations: int | None = None
    block: float = 10.0
    n_boot: int = 2000
    seed: int = 0
    trials: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(self.models))
        if self.size not in (2, 3):
            raise KalcointError(f"size {self.size} must be 2 or 3 (assets per basket)", params="size")
        if self.formation < 100:
            raise KalcointError(
                f"formation {self.formation} must be at least 100 rows (the screen tunes on 70% "
                "of it and tests on the rest, 30 rows each at least)",
                params="formation",
            )
        if self.trading < 5:
            raise KalcointError(f"trading {self.trading} must be at least 5 rows (one week)", params="trading")
        if self.top < 1:
            raise KalcointError(f"top {self.top} must be at least 1 (baskets traded per period)", params="top")
        check_choice(self.select, SELECTIONS, "select")
        if not (isinstance(self.dependent, str) and self.dependent.strip()):
            raise KalcointError(f"dependent {self.dependent!r} must be 'first', 'all' or a ticker", params="dependent")
        self._check_models()
        if not (math.isfinite(self.cost_bps) and self.cost_bps >= 0):
            raise KalcointError(f"cost_bps {self.cost_bps} must be a finite number >= 0", params="cost_bps")
        if int(self.window) != self.window or self.window < MIN_WINDOW:
            raise KalcointError(
                f"window {self.window} must be an integer >= {MIN_WINDOW} (trading days)", params="window"
            )
        check_choice(self.strategy, STRATEGIES, "strategy")
        if self.strategy == "bands":
            check_bands(self.entry, self.exit)
        if self.iterations is not None and self.iterations < 1:
            raise KalcointError(f"iterations {self.iterations} must be >= 1", params="iterations")
        if not self.block >= 1:
            raise KalcointError(f"block {self.block} must be >= 1 day", params="block")
        if self.n_boot < 100:
            raise KalcointError(f"n_boot {self.n_boot} must be >= 100 resamples", params="n_boot")
        if self.trials is not None and self.trials < 2:
            raise KalcointError(f"trials {self.trials} must be >= 2", params="trials")

    def _check_models(self) -> None:
        unknown = [m for m in self.models if m not in MODELS]
        if unknown:
            raise KalcointError(f"models {unknown[0]!r} is not one of {', '.join(MODELS)}", params="models")
        if len(set(self.models)) != len(self.models):
            raise KalcointError(f"models {','.join(self.models)} names a model twice", params="models")
        if "chan" not in self.models:
            raise KalcointError("models must include chan: every model is compared with Chan's filter", params="models")
        if len(self.models) < 2:
            raise KalcointError("models must name chan and at least one other model", params="models")

    @property
    def n_trials(self) -> int:
        return self.trials if self.trials is not None else len(self.models) * len(SELECTIONS)

    def screen_options(self) -> ScreenOptions:
        method = "mle" if self.select == "mle-oos" else "seed"
        return ScreenOptions(
            size=self.size, method=method, iterations=SCREEN_ITERATIONS[method], min_rows=self.formation
        )

    def settings(self) -> str:
        """One string of every setting that shapes the rows (stored in each row; ``resume`` checks it)."""
        keep = (
            "size",
            "formation",
            "trading",
            "top",
            "select",
            "cost_bps",
            "window",
            "strategy",
            "entry",
            "exit",
            "iterations",
        )
        d = asdict(self)
        return ";".join([f"{k}={d[k]}" for k in keep] + [f"models={','.join(self.models)}"])


@dataclass(frozen=True)
class Period:
    """Period ``number``: formation rows ``[formation_start, trading_start)``, trading rows
    ``[trading_start, trading_end)``; the backtest runs on ``[fit_start, trading_end)``.

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> o = StudyOptions(size=3, top=1, models=("static", "chan"), n_boot=200)
    >>> periods = periods_of(p.index, o)
    >>> periods[-1]
    Period(number=9, formation_start=1125, trading_start=1375, trading_end=1500, fit_start=1121)
    """

    number: int
    formation_start: int
    trading_start: int
    trading_end: int
    fit_start: int

    @property
    def first_row(self) -> int:
        """First row the period's selection or first fit looks at."""
        return min(self.formation_start, self.fit_start)


def periods_of(dates: pd.DatetimeIndex, options: StudyOptions) -> list[Period]:
    """The periods of a universe with these dates (module docstring).

    Parameters
    ----------
    dates : DatetimeIndex
        The universe's trading days.
    options : StudyOptions
        Formation, trading and walk-forward window lengths.

    Returns
    -------
    list of Period

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> o = StudyOptions(size=3, top=1, models=("static", "chan"), n_boot=200)
    >>> periods = periods_of(p.index, o)
    >>> len(periods), periods[0].trading_start, periods[0].trading_end
    (10, 250, 375)
    """
    n = len(dates)
    first = max(options.formation, options.window)
    if first + 2 > n:
        raise KalcointError(
            f"formation {options.formation} and window {options.window} leave no trading period in {n} rows: "
            f"the file needs at least {first + 2} rows; shorten them",
            params=("formation", "window"),
        )
    weeks = pd.DatetimeIndex(dates).to_period("W-SUN").asi8
    out = []
    for j, start in enumerate(range(first, n - 1, options.trading)):
        end = min(start + options.trading, n)
        week_first = int(np.flatnonzero(weeks == weeks[start])[0])
        out.append(Period(j, start - options.formation, start, end, max(0, week_first - options.window)))
    return out


def _iso(day: Any) -> str:
    return pd.Timestamp(day).strftime("%Y-%m-%d")


# ------------------------------------------------------------------ selection


def eligible_assets(values: np.ndarray, period: Period) -> list[int]:
    """Columns with a finite, positive price on every row from ``period.first_row`` to
    ``trading_start - 1``.

    Parameters
    ----------
    values : ndarray, shape (n, N)
        The universe's prices.
    period : Period

    Returns
    -------
    list of int

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> o = StudyOptions(size=3, top=1, models=("static", "chan"), n_boot=200)
    >>> periods = periods_of(p.index, o)
    >>> eligible_assets(p.to_numpy(), periods[0])
    [0, 1, 2]
    """
    block = values[period.first_row : period.trading_start]
    ok = np.isfinite(block).all(axis=0) & (np.nan_to_num(block, nan=-1.0) > 0).all(axis=0)
    return [int(j) for j in np.flatnonzero(ok)]


def formation_universe(universe: Universe, period: Period) -> Universe:
    """The formation rows of the period's eligible assets.

    Parameters
    ----------
    universe : kalcoint.screen.Universe
    period : Period

    Returns
    -------
    kalcoint.screen.Universe

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> o = StudyOptions(size=3, top=1, models=("static", "chan"), n_boot=200)
    >>> periods = periods_of(p.index, o)
    >>> from kalcoint.screen import Universe
    >>> formation_universe(Universe.from_frame(p), periods[0]).values.shape
    (250, 3)
    """
    cols = eligible_assets(universe.values, period)
    rows = slice(period.formation_start, period.trading_start)
    sub = Universe(
        np.ascontiguousarray(universe.values[rows][:, cols]),
        universe.dates[rows],
        tuple(universe.assets[j] for j in cols),
    )
    return sub


def select_baskets(rows: Sequence[dict[str, Any]], select: str, top: int) -> list[dict[str, Any]]:
    """The ``top`` best screen rows by the rule ``select`` (module docstring).

    Parameters
    ----------
    rows : sequence of dict
        Screen rows (:func:`kalcoint.screen.evaluate_basket`) of one formation window.
    select : str
        A rule of :data:`SELECTIONS`.
    top : int
        Rows kept.

    Returns
    -------
    list of dict
        The chosen rows, best first.

    Examples
    --------
    >>> rows = [{"assets": ["A", "B"], "status": "ok", "rank_95": 1, "static_adf_pvalue": 0.03},
    ...         {"assets": ["A", "C"], "status": "ok", "rank_95": 1, "static_adf_pvalue": 0.01}]
    >>> [r["assets"] for r in select_baskets(rows, "static", 1)]
    [['A', 'C']]
    """

    def finite(x: Any) -> bool:
        return x is not None and isinstance(x, (int, float)) and math.isfinite(x)

    # sorted is stable: ties keep the basket order
    if select == "static":
        cand = [r for r in rows if finite(r["static_adf_pvalue"]) and (r["rank_95"] or 0) >= 1]
        return sorted(cand, key=lambda r: r["static_adf_pvalue"])[:top]
    if select == "mle-oos":
        cand = [r for r in rows if finite(r["oos_loglik"]) and r["oos_nobs"]]
        return sorted(cand, key=lambda r: -r["oos_loglik"] / r["oos_nobs"])[:top]
    if select == "half-life":
        lo, hi = HALF_LIFE_RANGE
        cand = [r for r in rows if finite(r["static_half_life"]) and lo <= r["static_half_life"] <= hi]
        return sorted(cand, key=lambda r: r["static_half_life"])[:top]
    raise KalcointError(f"select {select!r} is not one of {', '.join(SELECTIONS)}", params="select")


def _candidates(rows: list[dict[str, Any]], options: StudyOptions) -> list[dict[str, Any]]:
    """The rows of one screening batch that may be selected, in basket order: the batch's own
    top ``top`` (a basket in the period's top is in its batch's top, and keeping the basket
    order keeps the ties' order). A period's 124,750 rows would otherwise all wait in memory."""
    keep = {id(r) for r in select_baskets(rows, options.select, options.top)}
    return [r for r in rows if id(r) in keep]


def _selection_figures(row: dict[str, Any], select: str) -> dict[str, Any]:
    """The screen's figures a row keeps; ``oos_loglik_per_day`` (the MLE filter's) only for ``mle-oos``."""
    per_day = None
    if select == "mle-oos" and row.get("oos_loglik") is not None and row.get("oos_nobs"):
        per_day = float(row["oos_loglik"]) / int(row["oos_nobs"])
    return {
        "trace_r0": row.get("trace_r0"),
        "rank_95": row.get("rank_95"),
        "static_adf_pvalue": row.get("static_adf_pvalue"),
        "static_half_life": row.get("static_half_life"),
        "oos_loglik_per_day": per_day,
    }


# ------------------------------------------------------------------ trading


def _degenerate_retunes(retunes: pd.DataFrame, p: np.ndarray, window: int) -> int:
    """Weekly fits the diagnosis flags degenerate (the backtest's ``retunes["degenerate"]``, the
    reasons or empty). Without that column: the fits whose ``obs_var`` is tiny against the fit
    window's daily price-change variance of asset 1, or whose ``alpha11`` collapsed (level
    half-life < 1 day), the two checks of :mod:`kalcoint.tuning.diagnosis` that need only
    ``alpha11`` and ``obs_var``."""
    if "degenerate" in retunes:
        return int(sum(1 for d in retunes["degenerate"] if d is True or (isinstance(d, str) and d != "")))
    if "alpha11" not in retunes or "obs_var" not in retunes:
        return 0
    count = 0
    for row, a11, ve in zip(retunes["row"], retunes["alpha11"], retunes["obs_var"]):
        scale = float(np.var(np.diff(p[int(row) - window : int(row), 0])))
        if (scale > 0 and ve / scale < OBS_VAR_TINY) or level_half_life(a11) < HALF_LIFE_MIN:
            count += 1
    return count


def trade_basket(
    prices: pd.DataFrame, trading_offset: int, models: Sequence[str], options: StudyOptions
) -> list[dict[str, Any]]:
    """Trade one basket with each model over the trading window; one row of figures per model.

    Parameters
    ----------
    prices : DataFrame, shape (m, k)
        Rows ``[fit_start, trading_end)`` of the period, the basket's columns.
    trading_offset : int
        Row of ``prices`` where the trading window starts.
    models : sequence of str
        Backtest models.
    options : StudyOptions

    Returns
    -------
    list of dict
        ``model``, ``status``, ``reason``, the metrics of :data:`COLUMNS` and ``daily_returns``
        ((n_days,) list of net daily returns, fractions).

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> o = StudyOptions(size=3, top=1, models=("static", "chan"), n_boot=200)
    >>> periods = periods_of(p.index, o)
    >>> first = periods[0]
    >>> rows = trade_basket(p.iloc[first.fit_start:first.trading_end], first.trading_start - first.fit_start,
    ...                     ("static", "chan"), o)
    >>> [(r["model"], round(r["sharpe"], 4), len(r["daily_returns"])) for r in rows]
    [('static', -0.9203, 125), ('chan', 0.047, 125)]
    """
    tdates = pd.DatetimeIndex(prices.index[trading_offset:])
    n_days = len(tdates)
    p_trade = prices.to_numpy(dtype=np.float64)[trading_offset:]
    out = []
    for model in models:
        row: dict[str, Any] = {"model": model, "status": "ok", "reason": "", "n_days": n_days}
        try:
            row.update(_trade_one(prices, tdates, p_trade, model, options))
        except KalcointError as exc:
            row.update(status="failed", reason=str(exc).splitlines()[0], daily_returns=[0.0] * n_days)
        out.append(row)
    return out


def _trade_one(
    prices: pd.DataFrame, tdates: pd.DatetimeIndex, p_trade: np.ndarray, model: str, options: StudyOptions
) -> dict[str, Any]:
    if not (np.isfinite(p_trade).all() and (p_trade > 0).all()):
        raise KalcointError("a price in the trading window is missing or not positive")
    res = backtest(
        prices,
        model,
        options.strategy,
        entry=options.entry,
        exit=options.exit,
        retune="weekly",
        window=options.window,
        cost_bps=options.cost_bps,
        iterations=options.iterations,
    )
    traded = pd.DatetimeIndex(res.frame["date"])
    keep = traded >= tdates[0]
    untraded = len(tdates) - int(keep.sum())
    units = np.zeros(len(tdates))
    shares = np.zeros(p_trade.shape)
    units[untraded:] = res.units[keep]
    shares[untraded:] = res.shares[keep]
    acc = account(p_trade, units, shares, options.cost_bps)
    metrics = compute_metrics(acc.returns, units, acc)
    figures = {k: metrics[k] for k in _METRICS if k in metrics}
    figures["total_return"] = float(np.prod(1.0 + acc.returns) - 1.0)
    return {
        **figures,
        "untraded_days": untraded,
        "retunes": len(res.retunes),
        "retune_failures": len(res.retune_failures),
        "degenerate_retunes": _degenerate_retunes(res.retunes, prices.to_numpy(dtype=np.float64), options.window),
        "daily_returns": acc.returns.tolist(),
    }


# ------------------------------------------------------------------ tables


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.reindex(columns=COLUMNS)
    out: dict[str, Any] = {}
    for c in COLUMNS:
        col = frame[c]
        if c == "assets":
            out[c] = pd.Series([list(_names(v)) for v in col], index=frame.index, dtype=object)
        elif c == "daily_returns":
            out[c] = pd.Series([_floats(v) for v in col], index=frame.index, dtype=object)
        elif c in _STRINGS:
            out[c] = col.astype(object).where(col.notna(), "").astype(str)
        elif c in _INTS:
            out[c] = pd.to_numeric(col).astype("Int64")
        else:
            out[c] = pd.to_numeric(col).astype(np.float64)
    return pd.DataFrame(out, index=frame.index).reset_index(drop=True)


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(a.strip() for a in value.split(","))
    return tuple(str(a) for a in value)


def _floats(value: Any) -> list[float]:
    if isinstance(value, str):
        return [float(x) for x in value.split()] if value.strip() else []
    return [float(x) for x in value]


def write_study(path: str | os.PathLike[str], table: pd.DataFrame) -> None:
    """Write the study table atomically (CSV: ``assets`` as ``"A,B"``, ``daily_returns``
    space-separated).

    Parameters
    ----------
    path : path-like
        A ``.parquet`` or ``.csv`` file.
    table : DataFrame
        The table of :func:`study`.

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> o = StudyOptions(size=3, top=1, models=("static", "chan"), n_boot=200)
    >>> periods = periods_of(p.index, o)
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "study.csv")
    >>> write_study(path, study(p, o, workers=0)[0])
    >>> read_study(path)["model"].tolist()
    ['static', 'chan', 'static', 'chan']
    """
    target = Path(path)
    check_table_suffix(target, "study")
    if target.suffix.lower() == ".csv":
        table = table.assign(
            assets=[",".join(a) for a in table["assets"]],
            daily_returns=[" ".join(repr(float(x)) for x in r) for r in table["daily_returns"]],
        )
    write_table(target, table)


def read_study(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a study table written by :func:`study` (Parquet or CSV) with its dtypes.

    Parameters
    ----------
    path : path-like
        A ``.parquet`` or ``.csv`` file.

    Returns
    -------
    DataFrame

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> o = StudyOptions(size=3, top=1, models=("static", "chan"), n_boot=200)
    >>> periods = periods_of(p.index, o)
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "study.parquet")
    >>> write_study(path, study(p, o, workers=0)[0])
    >>> read_study(path)["period"].tolist()
    [1, 1, 7, 7]
    """
    source = Path(path)
    check_table_suffix(source, "study")
    frame = read_raw_table(source, "study", "choose another file")
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise KalcointError(f"{source}: not a study table (no {missing[0]!r} column); choose another file")
    return _typed(frame)


def _sorted(table: pd.DataFrame, models: Sequence[str]) -> pd.DataFrame:
    order = {m: i for i, m in enumerate(models)}
    keys = pd.DataFrame(
        {
            "p": table["period"].astype(int),
            "r": table["selection_rank"].astype(int),
            "m": [order.get(m, len(order)) for m in table["model"]],
        }
    )
    idx = np.lexsort((keys["m"].to_numpy(), keys["r"].to_numpy(), keys["p"].to_numpy()))
    return table.iloc[idx].reset_index(drop=True)


# ------------------------------------------------------------------ statistics


def bootstrap_indices(n: int, n_boot: int, block: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of the stationary bootstrap (Politis & Romano 1994): blocks start at uniform
    positions, have geometric lengths of mean ``block``, and wrap around the series.

    Parameters
    ----------
    n : int
        Length of the series.
    n_boot : int
        Resamples.
    block : float
        Mean block length (rows).
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of int, shape (n_boot, n)

    Examples
    --------
    >>> import numpy as np
    >>> bootstrap_indices(5, 2, 2.0, np.random.default_rng(0)).tolist()
    [[1, 4, 3, 0, 1], [4, 0, 1, 2, 3]]
    """
    new = rng.random((n_boot, n)) < 1.0 / block
    new[:, 0] = True
    starts = rng.integers(0, n, size=(n_boot, n))
    pos = np.arange(n)
    block_first = np.maximum.accumulate(np.where(new, pos, 0), axis=1)  # position where each block began
    start_of_block = np.take_along_axis(starts, block_first, axis=1)
    return (start_of_block + (pos - block_first)) % n


def _sharpe_rows(r: np.ndarray) -> np.ndarray:
    """Annualised Sharpe ratio ``sqrt(252) mean / std(ddof=1)`` of each row of (B, n) returns (NaN if flat)."""
    sd = r.std(axis=1, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sd > 0, math.sqrt(DAYS_PER_YEAR) * r.mean(axis=1) / np.where(sd > 0, sd, 1.0), np.nan)


def _interval(draws: np.ndarray) -> list[float] | None:
    ok = draws[np.isfinite(draws)]
    if ok.size < 0.9 * draws.size:
        return None
    return [float(np.quantile(ok, 0.025)), float(np.quantile(ok, 0.975))]


def expected_max_sharpe(sr_var: float, n_trials: int) -> float:
    """Expected maximum Sharpe ratio of ``n_trials`` independent trials with zero true Sharpe.

    Bailey & Lopez de Prado (2014), SR_0:
    ``sqrt(V) ((1 - g) Phi^-1(1 - 1/N) + g Phi^-1(1 - 1/(N e)))``, g the Euler-Mascheroni
    constant.

    Parameters
    ----------
    sr_var : float
        Variance V of the trials' Sharpe estimates.
    n_trials : int
        N.

    Returns
    -------
    float
        Same units as the Sharpe ratios whose variance ``sr_var`` is (per observation in the paper).

    Examples
    --------
    >>> round(expected_max_sharpe(0.01, 10), 4)
    0.1575
    """
    if n_trials < 2:
        raise KalcointError(f"the deflated Sharpe ratio needs at least 2 trials, got {n_trials}")
    z1 = stats.norm.ppf(1.0 - 1.0 / n_trials)
    z2 = stats.norm.ppf(1.0 - 1.0 / (n_trials * math.e))
    return float(math.sqrt(sr_var) * ((1.0 - EULER_GAMMA) * z1 + EULER_GAMMA * z2))


def deflated_sharpe_ratio(
    sharpe: float, sr_var: float, n_trials: int, nobs: int, skew: float, kurtosis: float
) -> float:
    """Deflated Sharpe ratio (Bailey & Lopez de Prado 2014): the probability that the true Sharpe
    ratio exceeds the expected maximum of ``n_trials`` unskilled trials,

    ``Phi( (SR - SR_0) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2) )``.

    Parameters
    ----------
    sharpe : float
        The selected strategy's Sharpe ratio per observation (not annualised).
    sr_var : float
        The variance of the trials' Sharpe ratios, same units.
    n_trials : int
        Trials N.
    nobs : int
        T, returns in the sample.
    skew : float
        g3.
    kurtosis : float
        g4 (Pearson's, 3 for a normal).

    Returns
    -------
    float
        A probability in [0, 1].

    Examples
    --------
    >>> round(deflated_sharpe_ratio(0.1, 0.001, 10, 1000, 0.0, 3.0), 4)
    0.9433
    """
    sr0 = expected_max_sharpe(sr_var, n_trials)
    den = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if not den > 0 or nobs < 2:
        raise KalcointError("the deflated Sharpe ratio is undefined for these moments")
    return float(stats.norm.cdf((sharpe - sr0) * math.sqrt(nobs - 1) / math.sqrt(den)))


def portfolio_returns(
    table: pd.DataFrame, models: Sequence[str], dates: pd.DatetimeIndex, periods: Sequence[Period]
) -> pd.DataFrame:
    """Daily returns of each model's portfolio (module docstring).

    Parameters
    ----------
    table : DataFrame
        The table of :func:`study`.
    models : sequence of str
    dates : DatetimeIndex
        The universe's trading days.
    periods : sequence of Period

    Returns
    -------
    DataFrame, shape (n_days, n_models)
        Indexed by the trading days of ``periods``.

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> o = StudyOptions(size=3, top=1, models=("static", "chan"), n_boot=200)
    >>> periods = periods_of(p.index, o)
    >>> portfolio_returns(study(p, o, workers=0)[0], o.models, p.index, periods).shape
    (1250, 2)
    """
    parts = []
    for per in periods:
        days = dates[per.trading_start : per.trading_end]
        block = pd.DataFrame(0.0, index=days, columns=list(models))
        rows = table[table["period"] == per.number]
        for model in models:
            r = rows[rows["model"] == model]["daily_returns"]
            if len(r):
                block[model] = np.mean(np.vstack([np.asarray(x, dtype=np.float64) for x in r]), axis=0)
        parts.append(block)
    return pd.concat(parts)


def summarize(
    table: pd.DataFrame, options: StudyOptions, dates: pd.DatetimeIndex, periods: Sequence[Period]
) -> dict[str, Any]:
    """The JSON summary of a study table.

    Parameters
    ----------
    table : DataFrame
        The table of :func:`study`.
    options : StudyOptions
    dates : DatetimeIndex
    periods : sequence of Period

    Returns
    -------
    dict
        ``models.<name>.{apr, sharpe, sharpe_ci, max_drawdown, calmar, vs_chan.{sharpe_diff,
        sharpe_diff_ci, win_share}}``, ``deflated_sharpe.{model, value}``, ``periods``, ``baskets``.

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> o = StudyOptions(size=3, top=1, models=("static", "chan"), n_boot=200)
    >>> periods = periods_of(p.index, o)
    >>> summary = summarize(study(p, o, workers=0)[0], o, p.index, periods)
    >>> round(summary["models"]["chan"]["sharpe"], 4), summary["deflated_sharpe"]["model"]
    (1.0503, 'static')
    """
    models = list(options.models)
    port = portfolio_returns(table, models, dates, periods)
    n = len(port)
    if n < 2:
        raise KalcointError("the study traded fewer than 2 days; lengthen the file or shorten the periods")
    idx = bootstrap_indices(n, options.n_boot, options.block, np.random.default_rng(options.seed))
    chan = port["chan"].to_numpy()
    chan_boot = _sharpe_rows(chan[idx])
    chan_sharpe = compute_metrics(chan, np.ones(n))["sharpe"]
    totals = (
        table.pivot_table(index=["period", "selection_rank"], columns="model", values="total_return", aggfunc="first")
        .reindex(columns=models)
        .fillna(0.0)
    )  # failed = cash
    out: dict[str, Any] = {}
    for model in models:
        r = port[model].to_numpy()
        m = compute_metrics(r, np.ones(n))
        boot = _sharpe_rows(r[idx])
        entry = {k: m[k] for k in ("apr", "sharpe", "max_drawdown", "calmar")}
        entry["sharpe_ci"] = _interval(boot)
        entry["total_return"] = float(np.prod(1.0 + r) - 1.0)
        if model == "chan":
            entry["vs_chan"] = None
        else:
            diff = None if m["sharpe"] is None or chan_sharpe is None else m["sharpe"] - chan_sharpe
            win = float(np.mean(totals[model] > totals["chan"])) if len(totals) else None
            entry["vs_chan"] = {"sharpe_diff": diff, "sharpe_diff_ci": _interval(boot - chan_boot), "win_share": win}
        out[model] = entry
    return {
        "models": out,
        "deflated_sharpe": _deflated(port, options),
        "periods": _period_records(table, periods, dates),
        "baskets": int(table.drop_duplicates(["period", "selection_rank"]).shape[0]),
        "days": n,
        "settings": options.settings(),
    }


def _deflated(port: pd.DataFrame, options: StudyOptions) -> dict[str, Any]:
    per_obs = {m: (float(r.mean() / r.std(ddof=1)) if r.std(ddof=1) > 0 else None) for m, r in port.items()}
    valid = {m: s for m, s in per_obs.items() if s is not None}
    if len(valid) < 2:
        return {"model": None, "value": None, "trials": options.n_trials}
    best = max(valid, key=lambda m: valid[m])
    r = port[best].to_numpy()
    sr_var = float(np.var(list(valid.values()), ddof=1))
    value = deflated_sharpe_ratio(
        valid[best], sr_var, options.n_trials, r.size, float(stats.skew(r)), float(stats.kurtosis(r, fisher=False))
    )
    return {
        "model": best,
        "value": value,
        "trials": options.n_trials,
        "sharpe_variance": sr_var,
        "expected_max_sharpe": expected_max_sharpe(sr_var, options.n_trials) * math.sqrt(DAYS_PER_YEAR),
    }


def _period_records(table: pd.DataFrame, periods: Sequence[Period], dates: pd.DatetimeIndex) -> list[dict[str, Any]]:
    out = []
    for per in periods:
        rows = table[table["period"] == per.number]
        out.append(
            {
                "period": per.number,
                "formation_start": _iso(dates[per.formation_start]),
                "trading_start": _iso(dates[per.trading_start]),
                "trading_end": _iso(dates[per.trading_end - 1]),
                "baskets": int(rows["selection_rank"].nunique()),
            }
        )
    return out


# ------------------------------------------------------------------ running


@dataclass
class _Job:
    """A basket of a period to trade with the models still missing."""

    period: Period
    selected: dict[str, Any]
    rank: int
    n_selected: int
    models: list[str]


class _Store:
    """Rows done so far, written atomically to ``out`` at most every ``every_s`` seconds and by flush()."""

    def __init__(self, out: Path | None, previous: pd.DataFrame | None, models: Sequence[str], every_s: float):
        self.out, self.models, self.every_s = out, list(models), every_s
        self.frames = [previous] if previous is not None and len(previous) else []
        self.rows: list[dict] = []
        self.last = time.monotonic()
        self.dirty = False

    def add(self, rows: list[dict]) -> None:
        self.rows.extend(rows)
        self.dirty = True
        if self.out is not None and time.monotonic() - self.last >= self.every_s:
            self.flush()

    def table(self) -> pd.DataFrame:
        parts = self.frames + ([_typed(pd.DataFrame(self.rows))] if self.rows else [])
        frame = pd.concat(parts, ignore_index=True) if parts else _typed(pd.DataFrame(columns=COLUMNS))
        return _sorted(frame, self.models)

    def flush(self, force: bool = False) -> None:
        if self.out is not None and (self.dirty or force):
            write_study(self.out, self.table())
        self.last = time.monotonic()
        self.dirty = False


def _previous(out: Path | None, resume: bool, overwrite: bool, options: StudyOptions) -> pd.DataFrame | None:
    if out is None:
        if resume:
            raise KalcointError("resume needs out: the table to continue", params=("resume", "out"))
        return None
    check_table_suffix(out, "study")
    if not out.exists():
        return None
    if not resume:
        if overwrite:
            return None
        raise KalcointError(f"{out} exists: resume it, or overwrite it to start again", params=("resume", "overwrite"))
    table = read_study(out)
    found = set(table["settings"])
    if found - {options.settings()}:
        raise KalcointError(
            f"{out} was written with other settings ({min(found - {options.settings()})}); use the same settings "
            "or a new output file"
        )
    return table


def _row(job: _Job, result: dict[str, Any], dates: np.ndarray, options: StudyOptions) -> dict[str, Any]:
    per = job.period
    return {
        "period": per.number,
        "formation_start": _iso(dates[per.formation_start]),
        "formation_end": _iso(dates[per.trading_start - 1]),
        "trading_start": _iso(dates[per.trading_start]),
        "trading_end": _iso(dates[per.trading_end - 1]),
        "assets": list(job.selected["assets"]),
        "select": options.select,
        "selection_rank": job.rank,
        "n_selected": job.n_selected,
        **_selection_figures(job.selected, options.select),
        **result,
        "settings": options.settings(),
    }


def _jobs_for(
    per: Period, screen_rows: list[dict], done: pd.DataFrame | None, options: StudyOptions
) -> tuple[list[_Job], int]:
    """The baskets of a period still to trade, and how many baskets the period selects."""
    chosen = select_baskets(screen_rows, options.select, options.top)
    jobs = []
    for rank, row in enumerate(chosen, start=1):
        have: set[str] = set()
        if done is not None and len(done):
            hit = done[(done["period"] == per.number) & (done["selection_rank"] == rank)]
            have = set(hit["model"])
        missing = [m for m in options.models if m not in have]
        if missing:
            jobs.append(_Job(per, row, rank, len(chosen), missing))
    return jobs, len(chosen)


def _complete_periods(previous: pd.DataFrame | None, options: StudyOptions) -> set[int]:
    if previous is None or not len(previous):
        return set()
    done = set()
    for _, rows in previous.groupby("period"):
        if len(rows) == int(rows["n_selected"].to_numpy()[0]) * len(options.models):
            done.add(int(rows["period"].to_numpy()[0]))
    return done


def _basket_frame(universe: Universe, job: _Job) -> tuple[pd.DataFrame, int]:
    per = job.period
    cols = [universe.assets.index(a) for a in job.selected["assets"]]
    rows = slice(per.fit_start, per.trading_end)
    frame = pd.DataFrame(
        universe.values[rows][:, cols],
        index=pd.DatetimeIndex(universe.dates[rows]),
        columns=list(job.selected["assets"]),
    )
    return frame, per.trading_start - per.fit_start


def formation_baskets(assets: Sequence[str], size: int, dependent: str = "first") -> list[tuple[int, ...]]:
    """The baskets screened on a formation window, as column indices of ``assets`` (first =
    dependent): :func:`kalcoint.screen.basket_list`'s rule, except that a ticker given as
    ``dependent`` that is not among a period's eligible ``assets`` gives no basket that period.

    Examples
    --------
    >>> formation_baskets(["A", "B", "C"], 2)
    [(0, 1), (0, 2), (1, 2)]
    >>> formation_baskets(["A", "B", "C"], 2, "C")
    [(2, 0), (2, 1)]
    >>> formation_baskets(["A", "B"], 2, "Z")
    []
    """
    names = [str(a) for a in assets]
    if dependent not in ("first", "all") and dependent not in names:
        return []
    return _basket_indices(names, size, dependent)


def _screen_tasks(
    universe: Universe, periods: Sequence[Period], options: StudyOptions, batch_size: int
) -> tuple[dict[int, Universe], list[tuple[int, list[tuple[int, ...]]]]]:
    subs: dict[int, Universe] = {}
    tasks = []
    for per in periods:
        sub = formation_universe(universe, per)
        subs[per.number] = sub
        if len(sub.assets) < options.size:
            continue
        baskets = formation_baskets(sub.assets, options.size, options.dependent)
        tasks += [(per.number, baskets[i : i + batch_size]) for i in range(0, len(baskets), batch_size)]
    return subs, tasks


class _Serial:
    """Runs submitted calls in this process, in order (the workers=0 path)."""

    def __init__(self) -> None:
        self.queue: list[tuple[Any, Callable, tuple]] = []

    def share(self, data: Any) -> Any:
        return data

    def submit(self, key: Any, fn: Callable, *args: Any) -> None:
        self.queue.append((key, fn, args))

    def results(self) -> Iterator[tuple[Any, Any]]:
        while self.queue:
            key, fn, args = self.queue.pop(0)
            yield key, fn(*args)


@contextlib.contextmanager
def _runner(
    workers: int,
    scheduler: str | None,
    security: Any,
    connect_timeout: float,
    worker_timeout: float,
    out: Path | None,
) -> Iterator[Any]:
    if scheduler is None and workers == 0:
        yield _Serial()
        return
    from ._cluster import Pool, client

    with client(workers, scheduler, security, connect_timeout=connect_timeout, worker_timeout=worker_timeout) as dask:
        yield Pool(dask, scheduler, worker_timeout, out)


def study(
    prices: pd.DataFrame,
    options: StudyOptions | None = None,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    security: Any = None,
    batch_size: int | None = None,
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    checkpoint: float = 30.0,
    progress: Callable[[int, int], None] | None = None,
    checkpoint_s: float | None = None,
    connect_timeout: float | None = None,
    worker_timeout: float | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Run the study on a universe frame (:func:`kalcoint.screen.load_universe`).

    Parameters
    ----------
    prices : DataFrame, shape (n, N)
        A universe frame.
    options : StudyOptions, optional
        The settings (default ``StudyOptions()``).
    workers : int, optional
        0 = in this process; N = a local Dask cluster of N worker processes (default: every
        core); ignored when ``scheduler`` (``tcp://`` or ``tls://host:port``) is given.
    scheduler : str, optional
        Address of a running Dask scheduler.
    security : distributed.security.Security, optional
        For a ``tls://`` scheduler (:func:`kalcoint.screen.tls_security`).
    batch_size : int, optional
        Formation baskets per screening task (default ~16 tasks per worker and period, <= 500).
    out : path-like, optional
        Parquet or CSV table, rewritten atomically at least every ``checkpoint`` seconds, at the
        end and when the run stops.
    resume : bool
        Keep the rows of ``out`` and do only what is missing.
    overwrite : bool
        Replace an existing ``out``.
    checkpoint : float
        Seconds between rewrites of ``out``.
    progress : callable, optional
        ``progress(done, total)`` in tasks (screening batches and baskets traded); ``total`` is
        revised when a period selects fewer than ``top`` baskets.
    checkpoint_s : float, optional
        Deprecated name of ``checkpoint``.
    connect_timeout : float, optional
        Seconds for a ``scheduler`` to connect (default 10; its answer must follow within 1 s
        more): a server that does not answer, or not as a Dask scheduler, is refused.
    worker_timeout : float, optional
        Seconds to wait for a worker of ``scheduler``, at the start and whenever none is left
        (default 60); lost tasks are sent again to a worker that joins. Past that wait the run
        stops, keeping the rows done in ``out``.

    Returns
    -------
    table : DataFrame
        :data:`COLUMNS`, one row per period, selected basket and model, in that order.
    summary : dict
        :func:`summarize`.

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> o = StudyOptions(size=3, top=1, models=("static", "chan"), n_boot=200)
    >>> periods = periods_of(p.index, o)
    >>> table, summary = study(p, o, workers=0)
    >>> summary["baskets"], {m: round(v["sharpe"], 4) for m, v in summary["models"].items()}
    (2, {'static': 1.1132, 'chan': 1.0503})
    """
    from .screen import _auto_batch, _worker_count

    options = options or StudyOptions()
    check_scheduler(scheduler, security)
    connect_timeout, worker_timeout = timeouts(connect_timeout, worker_timeout)
    check_resume(resume, overwrite)
    universe = Universe.from_frame(prices)
    dates = pd.DatetimeIndex(prices.index)
    periods = periods_of(dates, options)
    n_workers = _worker_count(workers, batch_size)
    out_path = Path(out) if out is not None else None
    previous = _previous(out_path, resume, overwrite, options)
    complete = _complete_periods(previous, options)
    pending = [p for p in periods if p.number not in complete]
    remote = scheduler is not None or n_workers > 0
    n_pairs = max(1, sum(math.comb(len(eligible_assets(universe.values, p)), options.size) for p in pending))
    size = batch_size or _auto_batch(math.ceil(n_pairs / max(1, len(pending))), n_workers if remote else 1)
    subs, tasks = _screen_tasks(universe, pending, options, size)
    checkpoint = renamed(checkpoint_s, checkpoint, "checkpoint_s", "checkpoint", "study")
    store = _Store(out_path, previous, options.models, checkpoint)
    screen_opts = options.screen_options()
    left = {p.number: sum(1 for t in tasks if t[0] == p.number) for p in pending}
    screened: dict[int, list[tuple[int, list[dict]]]] = {p.number: [] for p in pending}
    by_number = {p.number: p for p in pending}
    total = len(tasks) + sum(options.top for p in pending if left[p.number])
    done = 0
    static_only = options.select != "mle-oos"  # the selection reads only the static figures
    if tasks and scheduler is not None:
        probe(scheduler, security, connect_timeout)  # a scheduler that does not answer is refused before any work
    if remote and tasks:  # compile the kernels before workers start
        screen_batch(subs[tasks[0][0]], tasks[0][1][:1], screen_opts, static_only)
    try:
        with _runner(n_workers, scheduler, security, connect_timeout, worker_timeout, out_path) as run:
            panels = {number: run.share(sub) for number, sub in subs.items() if left.get(number)}
            for i, (number, batch) in enumerate(tasks):
                run.submit(("screen", number, i), screen_batch, panels[number], batch, screen_opts, static_only)
            for key, result in run.results():
                done += 1
                if key[0] == "screen":
                    number = key[1]
                    screened[number].append((key[2], _candidates(result, options)))
                    left[number] -= 1
                    if left[number] == 0:  # the period's rows in basket order, whatever order the tasks ended in
                        rows = [r for _, part in sorted(screened.pop(number), key=lambda x: x[0]) for r in part]
                        jobs, n_sel = _jobs_for(by_number[number], rows, previous, options)
                        total -= options.top - n_sel
                        for job in jobs:  # each task gets only its basket's rows
                            frame, offset = _basket_frame(universe, job)
                            run.submit(("trade", job), trade_basket, frame, offset, job.models, options)
                        done += n_sel - len(jobs)  # baskets already traded (resume)
                else:
                    store.add([_row(key[1], r, universe.dates, options) for r in result])
                if progress is not None:
                    progress(done, total)
    except BaseException:
        store.flush()
        raise
    store.flush(force=True)
    table = store.table()
    return table, summarize(table, options, dates, periods)


# ------------------------------------------------------------------ figures


def study_figures(
    table: pd.DataFrame,
    summary: dict[str, Any],
    options: StudyOptions,
    dates: pd.DatetimeIndex,
    periods: Sequence[Period],
) -> dict[str, bytes]:
    """PNG bytes of ``equity.png`` (the model portfolios' equity curves on one chart) and
    ``sharpe_distribution.png`` (per-basket-period Sharpe ratios per model, box plots).

    Parameters
    ----------
    table, summary :
        What :func:`study` returns.
    options : StudyOptions
    dates : DatetimeIndex
    periods : sequence of Period

    Returns
    -------
    dict of str to bytes

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> o = StudyOptions(size=3, top=1, models=("static", "chan"), n_boot=200)
    >>> periods = periods_of(p.index, o)
    >>> table, summary = study(p, o, workers=0)
    >>> sorted(study_figures(table, summary, o, p.index, periods))
    ['equity.png', 'sharpe_distribution.png']
    """
    import io

    from matplotlib.figure import Figure

    port = portfolio_returns(table, options.models, dates, periods)
    fig = Figure(figsize=(11, 5.5))
    ax = fig.add_subplot()
    for model in options.models:
        s = summary["models"][model]["sharpe"]
        label = f"{model} (Sharpe {s:.2f})" if s is not None else model
        ax.plot(port.index, np.cumprod(1.0 + port[model].to_numpy()), lw=1.1, label=label)
    ax.axhline(1.0, color="grey", lw=0.6, ls="--")
    ax.set_ylabel("equity (start = 1)")
    ax.set_title(
        f"Out-of-sample portfolios: top {options.top} baskets by {options.select} per period, "
        f"costs {options.cost_bps:g} bps"
    )
    ax.legend(loc="upper left")
    figures = {"equity.png": fig}
    fig2 = Figure(figsize=(11, 5.5))
    ax2 = fig2.add_subplot()
    data, labels = [], []
    for model in options.models:
        s = table.loc[(table["model"] == model) & (table["status"] == "ok"), "sharpe"].dropna().to_numpy()
        data.append(s if s.size else np.array([np.nan]))
        labels.append(f"{model}\n(n={s.size})")
    ax2.boxplot(data, showmeans=True)
    ax2.set_xticks(range(1, len(labels) + 1), labels)
    ax2.axhline(0.0, color="grey", lw=0.6, ls="--")
    ax2.set_ylabel("Sharpe ratio over the trading window (annualised)")
    ax2.set_title("Per basket-period Sharpe ratios (failed runs and runs that never traded left out)")
    figures["sharpe_distribution.png"] = fig2
    rendered = {}
    for name, f in figures.items():
        buf = io.BytesIO()
        f.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        rendered[name] = buf.getvalue()
    return rendered


def write_figures(rendered: dict[str, bytes], plot_dir: str | os.PathLike[str]) -> list[Path]:
    """Write rendered PNGs into ``plot_dir`` (created), each atomically.

    Parameters
    ----------
    rendered : dict of str to bytes
        File names and contents (:func:`study_figures`).
    plot_dir : path-like

    Returns
    -------
    list of Path

    Examples
    --------
    >>> import tempfile
    >>> [p.name for p in write_figures({"a.png": b"\\x89PNG"}, tempfile.mkdtemp())]
    ['a.png']
    """
    paths = []
    for name, data in rendered.items():
        path = Path(plot_dir) / name
        write_with(path, _bytes_writer(data))
        paths.append(path)
    return paths


def _bytes_writer(data: bytes) -> Callable[[Path], None]:
    def write(tmp: Path) -> None:
        tmp.write_bytes(data)

    return write

"""Backtests: accounting, metrics, in-sample and weekly walk-forward runs, side-by-side comparison.

Accounting (docs/method.md §8, the convention that reproduces Chan's Examples 2.8 and 3.3)
-------------------------------------------------------------------------------------------
``units_t`` is the position held at the close of day t (the strategy's output), ``shares_t``
(n, k) the shares of one unit on that day, ``p_t`` the prices. Dollar positions are
``D_t = units_t * shares_t * p_t``. The return of day t is

    r_t = sum_j D_{t-1,j} (p_{t,j} / p_{t-1,j} - 1) / G_{t-1}  -  c * T_t / max(G_{t-1}, G_t)

with ``G_t = sum_j |D_{t,j}|`` the gross dollar position at the close of day t (the first term
is 0 when ``G_{t-1} = 0``: flat days earn 0), ``T_t = sum_j |units_t shares_{t,j} -
units_{t-1} shares_{t-1,j}| p_{t,j}`` the dollar value traded at the close of day t and
``c = cost_bps / 10000``. The costs are charged on the day of the trade, against the larger of
the gross positions before and after it (so an entry from flat is charged against the position
opened, an exit against the position closed, and the charge never exceeds about ``2 c``).
With costs every day's return is lower by exactly ``c * T_t / max(G_{t-1}, G_t)``. Day 1 has
return 0 and counts in the number of days (Chan's code does the same: his ``ret(1)`` is NaN,
set to 0).

Metrics (:func:`compute_metrics`), over the n days of the run:

- ``apr``: ``prod(1 + r)^(252 / n) - 1``;  ``sharpe``: ``sqrt(252) mean(r) / std(r, ddof=1)``.
- ``max_drawdown``: the most negative ``E_t / max_{s<=t} E_s - 1`` of the compounded equity
  ``E_t = prod_{s<=t} (1 + r_s)`` (starting capital 1 counts as a peak): a NEGATIVE fraction,
  e.g. -0.12 for a 12% drawdown (0 if the equity never falls).
- ``calmar``: ``apr / |max_drawdown|`` (the method's return / drawdown ratio).
- ``round_trips``: holding periods (maximal runs of days whose closing units have one non-zero
  sign) closed before the last day; a switch from long to short closes one and opens another.
- ``avg_holding_days``: mean length in days of all holding periods (including one still open).
- ``time_in_market``: share of days with non-zero closing units.
- ``turnover``: ``252 * mean_t(T_t / max(G_{t-1}, G_t))`` (0 on flat days) -- capital traded
  per year, so the yearly cost drag is about ``turnover * cost_bps / 10000``.
- ``half_life``: half-life in days of the traded spread (in-sample: over the whole sample;
  walk-forward: the median over the weekly estimation windows); ``None`` if it does not revert.

Undefined values (Sharpe of a run that never trades, Calmar without drawdown) are ``None``.

Walk-forward (``retune="weekly"`` or ``"monthly"``)
---------------------------------------------------------
The schedule is :mod:`kalcoint.schedule`, the one implementation shared with the live model
file (``update``, ``retune``) and the replay of a saved model. Weeks are calendar weeks (Monday
to Sunday), months calendar months. Before the first trading day ``d`` of each period that has
at least ``window`` rows before it, the model is re-estimated on the ``window`` rows strictly
before ``d``: Johansen weights for ``static``; :func:`kalcoint.tuning.tune` (diagnosis on) for
the tuning methods; nothing for ``chan`` or a fixed model. The filter then runs through the
period with those quantities. Carrying the filter state: the first period starts from the
posterior ``(b, P)`` of the first model run over its own estimation window (from its own
prior); every later period continues from the posterior ``(b, P)`` of the previous trading day,
computed with the previous model, and predicts with the new model's ``A``, ``Vw``, ``Ve`` (the
new model's ``b0``, ``P0`` are not used). The band state (long or short) of a filter starts from
the band rule run over the first estimation window (what a trader who saved that model holds)
and carries over period boundaries; the static model's bands start flat. Moving windows
(z-scores) use the traded spread of earlier days (for the first period: the estimation window's
spread); for ``static`` the spread of every day of a period is recomputed with that period's
weights. The run (and its metrics) covers the traded periods only. A re-estimation that fails
keeps the previous model and is recorded in ``BacktestResult.retune_failures``; a failure in
the first period is an error. A degenerate fit is traded (``on_degenerate="use"``, the method as
written) or the previous model kept (``"keep"``). Nothing on or after a day influences that
day's position (tested by truncating the file).

Replay of a saved model
-----------------------
``backtest(prices, model=saved)`` with a model opened by :func:`kalcoint.live.load_model` continues
the saved filter over the rows of ``prices`` after the model's last date, from its posterior
and band state, re-estimating by the model's own retune policy: the days a live model fed
these rows by ``update`` would trade. The file is not changed.
"""

from __future__ import annotations

import math
import sys
import time
import types
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from . import engine, schedule
from ._checks import renamed
from ._summary import Summary, Table
from .cointegration import half_life
from .errors import ComputationError, KalcointError
from .filtering import StateSpaceModel, kalman_filter
from .strategy import (
    STRATEGIES,
    band_legs,
    check_bands,
    filter_shares,
    lookback_from_half_life,
    static_shares,
)
from .tuning import METHODS as _TUNING_METHODS

DAYS_PER_YEAR = 252
TUNED = tuple(_TUNING_METHODS)
"""Model names tuned by :func:`kalcoint.tuning.tune` (the tuning registry's methods)."""
MODELS = ("static", "chan", *TUNED)
METRIC_KEYS = (
    "apr",
    "sharpe",
    "max_drawdown",
    "calmar",
    "round_trips",
    "avg_holding_days",
    "time_in_market",
    "turnover",
    "half_life",
)
WALK_FORWARD = schedule.PERIODS
MIN_WINDOW = schedule.MIN_WINDOW
Progress = Callable[[int, int], None]


# ---------------------------------------------------------------- accounting and metrics


@dataclass(frozen=True)
class Accounts:
    """Daily accounting arrays of a run over n days (see the module docstring).

    Attributes
    ----------
    positions : ndarray, shape (n, k)
        Dollar positions ``D_t`` at each close.
    gross : ndarray, shape (n,)
        Gross exposure ``G_t`` (dollars).
    traded : ndarray, shape (n,)
        Dollars ``T_t`` traded at each close.
    pnl : ndarray, shape (n,)
        Dollars of price moves.
    cost : ndarray, shape (n,)
        Dollars of costs.
    cost_capital : ndarray, shape (n,)
        ``max(G_{t-1}, G_t)`` (dollars).
    gross_returns, returns : ndarray, shape (n,)
        Daily returns before and after costs (fractions).

    Examples
    --------
    >>> import numpy as np
    >>> acc = account(np.array([[10.0, 20.0], [11.0, 20.0], [12.0, 21.0]]),
    ...               np.array([0.0, 1.0, 1.0]), np.array([[1.0, -0.5]] * 3))
    >>> acc.gross.tolist()
    [0.0, 21.0, 22.5]
    """

    positions: np.ndarray
    gross: np.ndarray
    traded: np.ndarray
    pnl: np.ndarray
    cost: np.ndarray
    cost_capital: np.ndarray
    gross_returns: np.ndarray
    returns: np.ndarray


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` where ``den > 0``, else 0."""
    return np.where(den > 0.0, num / np.where(den > 0.0, den, 1.0), 0.0)


def account(prices: np.ndarray, units: np.ndarray, shares: np.ndarray, cost_bps: float = 0.0) -> Accounts:
    """Daily returns of holding ``units_t`` x ``shares_t`` (n, k) at the close of each day.

    Parameters
    ----------
    prices : ndarray, shape (n, k)
        Positive prices.
    units : ndarray, shape (n,)
        Finite units of the spread held at each close.
    shares : ndarray, shape (n, k)
        Shares per unit.
    cost_bps : float
        Costs in basis points of the dollar value traded.

    Returns
    -------
    Accounts

    Examples
    --------
    >>> import numpy as np
    >>> acc = account(np.array([[10.0, 20.0], [11.0, 20.0], [12.0, 21.0]]),
    ...               np.array([0.0, 1.0, 1.0]), np.array([[1.0, -0.5]] * 3))
    >>> round(float(acc.returns[2]), 6)  # (1 - 0.5) dollars on a gross of 21
    0.02381
    """
    p = np.asarray(prices, dtype=np.float64)
    u = np.asarray(units, dtype=np.float64)
    h = np.asarray(shares, dtype=np.float64)
    if not (np.all(np.isfinite(u)) and np.all(np.isfinite(h)) and np.all(np.isfinite(p))):
        raise ComputationError("backtest positions or prices are not finite")
    if not (math.isfinite(cost_bps) and cost_bps >= 0):
        raise KalcointError(f"cost_bps={cost_bps} must be a finite number >= 0 (basis points of traded value)")
    held = u[:, None] * h  # shares held at each close
    positions = held * p
    gross = np.abs(positions).sum(axis=1)
    previous_held = np.vstack([np.zeros((1, p.shape[1])), held[:-1]])
    traded = (np.abs(held - previous_held) * p).sum(axis=1)
    pnl = np.zeros(p.shape[0])
    pnl[1:] = (positions[:-1] * (p[1:] / p[:-1] - 1.0)).sum(axis=1)
    previous_gross = np.concatenate([[0.0], gross[:-1]])
    cost_capital = np.maximum(previous_gross, gross)
    cost = traded * (cost_bps / 1e4)
    gross_returns = _safe_ratio(pnl, previous_gross)
    returns = gross_returns - _safe_ratio(cost, cost_capital)
    return Accounts(positions, gross, traded, pnl, cost, cost_capital, gross_returns, returns)


def audit_columns(
    assets: Sequence[str], positions: np.ndarray, units: np.ndarray, shares: np.ndarray, traded: np.ndarray
) -> pd.DataFrame:
    """Per day: ``shares_<asset>`` held (units x shares of one unit), ``position_<asset>`` (dollars
    ``D_t``), ``hedge_<asset>`` of the hedge assets (``-shares_j / shares_1`` of one unit: a filter's
    ``b_j``, the static model's ``-w_j / w_1``) and ``traded`` (dollars ``T_t``).

    Examples
    --------
    >>> import numpy as np
    >>> acc = account(np.array([[10.0, 20.0], [11.0, 20.0]]), np.array([0.0, 2.0]), np.array([[1.0, -0.5]] * 2))
    >>> audit_columns(["A", "B"], acc.positions, np.array([0.0, 2.0]), np.array([[1.0, -0.5]] * 2), acc.traded
    ...               ).iloc[1].tolist()
    [2.0, -1.0, 22.0, -20.0, 0.5, 42.0]
    """
    held = np.asarray(units, dtype=np.float64)[:, None] * np.asarray(shares, dtype=np.float64)
    data: dict[str, np.ndarray] = {f"shares_{a}": held[:, j] + 0.0 for j, a in enumerate(assets)}
    data.update({f"position_{a}": positions[:, j] + 0.0 for j, a in enumerate(assets)})
    with np.errstate(invalid="ignore", divide="ignore"):
        data.update({f"hedge_{a}": -shares[:, j] / shares[:, 0] for j, a in enumerate(assets) if j > 0})
    data["traded"] = np.asarray(traded, dtype=np.float64)
    return pd.DataFrame(data)


def holding_periods(units: np.ndarray) -> list[tuple[int, int, int]]:
    """Maximal runs of days with closing units of one non-zero sign.

    Parameters
    ----------
    units : ndarray, shape (n,)
        Closing units.

    Returns
    -------
    list of tuple of int
        ``(first, last, sign)`` per run (row numbers, inclusive).

    Examples
    --------
    >>> import numpy as np
    >>> holding_periods(np.array([0, 1, 1, 0, -1, -1]))
    [(1, 2, 1), (4, 5, -1)]
    """
    sign = np.sign(np.asarray(units, dtype=np.float64))
    runs: list[tuple[int, int, int]] = []
    start = None
    for t, s in enumerate(sign):
        if start is not None and s != sign[start]:
            runs.append((start, t - 1, int(sign[start])))
            start = None
        if start is None and s != 0:
            start = t
    if start is not None:
        runs.append((start, sign.size - 1, int(sign[start])))
    return runs


def compute_metrics(
    returns: np.ndarray, units: np.ndarray, accounts: Accounts | None = None, half_life_days: float | None = None
) -> dict[str, Any]:
    """The metrics of the module docstring from daily returns and closing units.

    Parameters
    ----------
    returns : ndarray, shape (n,)
        Net daily returns (fractions), n >= 2.
    units : ndarray, shape (n,)
        Closing units.
    accounts : Accounts, optional
        For the turnover (None without it).
    half_life_days : float, optional
        Reported as ``half_life`` (days).

    Returns
    -------
    dict
        The keys of :data:`METRIC_KEYS`; ``None`` where undefined.

    Examples
    --------
    >>> import numpy as np
    >>> m = compute_metrics(np.array([0.01, -0.005, 0.002, 0.0]), np.array([1, 1, 0, 0]))
    >>> round(m["max_drawdown"], 4), m["round_trips"], m["time_in_market"]
    (-0.005, 1, 0.5)
    """
    r = np.asarray(returns, dtype=np.float64)
    n = r.size
    if n < 2:
        raise KalcointError(f"a backtest needs at least 2 days, got {n}")
    equity = np.cumprod(1.0 + r)
    if equity[-1] <= 0.0:
        raise ComputationError("the equity curve fell to zero or below; the positions or the costs are not tradable")
    apr = float(equity[-1] ** (DAYS_PER_YEAR / n) - 1.0)
    sd = float(r.std(ddof=1))
    sharpe = float(math.sqrt(DAYS_PER_YEAR) * r.mean() / sd) if sd > 0 else None
    peak = np.maximum.accumulate(np.concatenate([[1.0], equity]))[1:]
    mdd = float(np.min(equity / peak - 1.0))
    runs = holding_periods(units)
    closed = [run for run in runs if run[1] < n - 1]
    turnover = None
    if accounts is not None:
        turnover = float(DAYS_PER_YEAR * _safe_ratio(accounts.traded, accounts.cost_capital).mean())
    hl = None if half_life_days is None or not math.isfinite(half_life_days) else float(half_life_days)
    return {
        "apr": apr,
        "sharpe": sharpe,
        "max_drawdown": mdd,
        "calmar": apr / abs(mdd) if mdd < 0 else None,
        "round_trips": len(closed),
        "avg_holding_days": float(np.mean([b - a + 1 for a, b, _ in runs])) if runs else None,
        "time_in_market": float(np.mean(np.asarray(units) != 0)),
        "turnover": turnover,
        "half_life": hl,
    }


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class BacktestResult:
    """One backtest run over n days of k assets.

    Attributes
    ----------
    metrics : dict
        The keys of :data:`METRIC_KEYS` (floats/ints, ``None`` where undefined).
    frame : DataFrame
        ``date, units, return, equity`` (units held at each close, net daily return, compounded
        equity starting from 1).
    spread : ndarray, shape (n,)
        Traded spread ``p_t . shares_t`` (price units).
    deviation, scale : ndarray, shape (n,)
        The band rule's inputs (innovation and sqrt(Q) for a filter; spread minus moving mean and
        moving std for static and for ``linear``).
    shares : ndarray, shape (n, k)
        Shares per unit.
    accounts : Accounts
        The daily accounting arrays.
    retunes : DataFrame
        One row per estimation (walk-forward: per period; in-sample: one) with its date, lookback,
        half-life and, for filters, alpha11, obs_var and the version in use.
    state : ndarray, shape (n, k) or None
        Posterior states ``b_{t|t}`` of a filter (None for static).
    version : ndarray, shape (n,) or None
        Id of the filter version each day traded with (walk-forward and replay).
    versions : list of dict
        One per estimation (:meth:`kalcoint.schedule.Version.to_dict`).

    Examples
    --------
    >>> import kalcoint as kc
    >>> bt = kc.backtest(kc.demo_prices(), "chan")
    >>> round(bt.metrics["sharpe"], 4), bt.metrics["round_trips"]
    (2.5697, 301)
    >>> list(bt.frame.columns)
    ['date', 'units', 'return', 'equity']
    """

    metrics: dict[str, Any]
    frame: pd.DataFrame
    mode: str
    assets: list[str]
    model: str
    strategy: str
    cost_bps: float
    entry: float
    exit: float
    spread: np.ndarray = field(repr=False)
    deviation: np.ndarray = field(repr=False)
    scale: np.ndarray = field(repr=False)
    shares: np.ndarray = field(repr=False)
    accounts: Accounts = field(repr=False)
    retunes: pd.DataFrame = field(repr=False)
    window: int | None = None
    lookback: int | None = None
    retune_failures: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    period: str | None = None
    state: np.ndarray | None = field(default=None, repr=False)
    version: np.ndarray | None = field(default=None, repr=False)
    versions: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def returns(self) -> np.ndarray:
        return self.frame["return"].to_numpy()

    @property
    def units(self) -> np.ndarray:
        return self.frame["units"].to_numpy()

    @property
    def equity(self) -> np.ndarray:
        return self.frame["equity"].to_numpy()

    @property
    def drawdown(self) -> np.ndarray:
        """(n,) ``E_t / running peak - 1`` (<= 0)."""
        eq = self.equity
        return eq / np.maximum.accumulate(np.concatenate([[1.0], eq]))[1:] - 1.0

    def to_dict(self) -> dict[str, Any]:
        """The JSON record of ``kalcoint backtest``: the metrics, mode, assets, model, strategy, cost_bps."""
        return {
            **{k: self.metrics[k] for k in METRIC_KEYS},
            "mode": self.mode,
            "assets": list(self.assets),
            "model": self.model,
            "strategy": self.strategy,
            "cost_bps": float(self.cost_bps),
        }

    def out_frame(self) -> pd.DataFrame:
        """The ``--out`` table: ``date`` (YYYY-MM-DD), ``units``, ``return``, ``equity``, then the
        audit columns of :func:`audit_columns` (shares held, dollar positions and hedge ratios per
        asset; traded value and cost per day), from which the returns can be recomputed with the
        prices alone (module docstring)."""
        out = self.frame.copy()
        out["date"] = pd.DatetimeIndex(out["date"]).strftime("%Y-%m-%d")
        audit = audit_columns(self.assets, self.accounts.positions, self.units, self.shares, self.accounts.traded)
        audit["cost"] = self.accounts.cost
        return pd.concat([out, audit], axis=1)

    def to_frame(self) -> pd.DataFrame:
        """Columns ``units``, ``return``, ``equity``, ``spread``, indexed by the traded dates
        (a ``DatetimeIndex`` named ``date``).

        Examples
        --------
        >>> import kalcoint as kc
        >>> res = kc.backtest(kc.demo_prices(), "chan")
        >>> list(res.to_frame().columns)
        ['units', 'return', 'equity', 'spread']
        """
        out = self.frame.set_index(pd.DatetimeIndex(self.frame["date"], name="date")).drop(columns="date")
        out["spread"] = self.spread
        return out

    def summary(self) -> Summary:
        """The metrics, saying ``in-sample``, ``walk-forward`` or ``replay``; ``print`` it (the compact
        text of ``kalcoint backtest``), or show it in a notebook (an HTML table)."""
        m = self.metrics
        dates = self.frame["date"]
        head = (
            f"Backtest ({self.mode.upper()}): {', '.join(self.assets)}, model {self.model}, "
            f"strategy {self.strategy}"
            + (f" (entry {self.entry:g}, exit {self.exit:g})" if self.strategy == "bands" else "")
            + f", costs {self.cost_bps:g} bps"
        )
        span = f"{dates.iloc[0]:%Y-%m-%d} to {dates.iloc[-1]:%Y-%m-%d}, {len(dates)} days"
        unit = {"weekly": "week", "monthly": "month"}.get(self.period or "", "period")
        if self.mode == "walk-forward":
            span += f"; re-estimated {self.period} on the previous {self.window} days ({len(self.retunes)} {unit}s)"
        elif self.mode == "replay":
            policy = (
                f"re-estimated {self.period} on the previous {self.window} days"
                if self.period
                else "never re-estimated"
            )
            span += f"; saved model continued from its last date, {policy}"
        else:
            span += "; every quantity fitted on the whole sample (in-sample: look-ahead included)"
        rows = (
            ("APR", _pct(m["apr"])),
            ("Sharpe", _num(m["sharpe"], ".2f")),
            ("max drawdown", _pct(m["max_drawdown"])),
            ("Calmar", _num(m["calmar"], ".2f")),
            ("round trips", str(m["round_trips"])),
            ("avg holding (days)", _num(m["avg_holding_days"], ".1f")),
            ("time in market", _pct(m["time_in_market"])),
            ("turnover (/yr)", _num(m["turnover"], ".1f")),
            ("half-life (days)", _num(m["half_life"], ".2f")),
        )
        notes = [span]
        if (
            self.mode == "in-sample"
            and "degenerate" in self.retunes
            and isinstance(self.retunes["degenerate"].iloc[0], str)
        ):
            notes.append(f"WARNING: the tuned model looks degenerate: {self.retunes['degenerate'].iloc[0]}")
        if self.retune_failures:
            notes.append(f"{len(self.retune_failures)} re-estimations failed and kept the previous model")
        text = [
            head,
            "  " + span,
            f"  APR {_pct(m['apr'])}   Sharpe {_num(m['sharpe'], '.2f')}   max drawdown "
            f"{_pct(m['max_drawdown'])}   Calmar {_num(m['calmar'], '.2f')}",
            f"  round trips {m['round_trips']}   avg holding {_num(m['avg_holding_days'], '.1f')} days   "
            f"time in market {_pct(m['time_in_market'])}   turnover {_num(m['turnover'], '.1f')}/yr   "
            f"half-life {_num(m['half_life'], '.2f')} days",
            *("  " + n for n in notes[1:]),
        ]
        return Summary(head, (Table(("metric", "value"), rows),), tuple(notes), text="\n".join(text))


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _num(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


# ---------------------------------------------------------------- model resolution


@dataclass(frozen=True)
class _ModelSpec:
    kind: str  # "static", "chan", "tuned", "fixed" or "replay"
    name: str
    method: str | None = None
    fixed: StateSpaceModel | None = None
    assets: tuple[str, ...] = ()
    saved: Any = None  # a saved model (an object with ``resume()``) for "replay"
    estimates: Any = None  # tuning estimates made beforehand (kalcoint.schedule.estimate_windows)


def resolve_model(
    model: str | StateSpaceModel | Any,
    k: int,
    *,
    delta: float | None = None,
    state_var: float | None = None,
    obs_var: float | None = None,
    assets: Sequence[str] | None = None,
) -> _ModelSpec:
    """Turn ``model`` into what the backtest runs.

    Parameters
    ----------
    model : str, StateSpaceModel or object
        A name of :data:`MODELS`, a :class:`~kalcoint.filtering.StateSpaceModel`, an object with a
        ``.model`` StateSpaceModel such as a TunedModel, or a saved model opened by
        :func:`kalcoint.live.load_model`. Files are not opened here.
    k : int
        Number of assets.
    delta, state_var, obs_var : float, optional
        Chan's filter (``chan`` only).
    assets : sequence of str, optional
        The basket's tickers (checked against a saved model's).

    Returns
    -------
    _ModelSpec
        Its ``kind`` is ``"static"``, ``"chan"``, ``"tuned"``, ``"fixed"`` or ``"replay"``.

    Examples
    --------
    >>> resolve_model("chan", 3).kind, resolve_model("mle", 3).kind
    ('chan', 'tuned')
    """
    chan_opts = delta is not None or state_var is not None or obs_var is not None
    if isinstance(model, str) and model in MODELS:
        if chan_opts and model != "chan":
            raise KalcointError("delta, state_var and obs_var apply to method='chan' only")
        if model != "chan":
            return _ModelSpec(model if model == "static" else "tuned", model, None if model == "static" else model)
        if delta is not None and state_var is not None:
            raise KalcointError("give either delta or state_var, not both")
        fixed = StateSpaceModel.chan(
            k, delta=1e-4 if delta is None else delta, state_var=state_var, obs_var=1e-3 if obs_var is None else obs_var
        )
        return _ModelSpec("chan", "chan", fixed=fixed)
    if chan_opts:
        raise KalcointError("delta, state_var and obs_var apply to method='chan' only")
    if isinstance(model, str) or hasattr(model, "__fspath__"):
        raise KalcointError(
            f"method={str(model)!r} is not one of {', '.join(MODELS)}; a saved model file is "
            "opened with kalcoint.load_model(path) and passed as model="
        )
    if hasattr(model, "resume"):
        n_assets = len(getattr(model, "assets", ()))
        if n_assets != k:
            raise KalcointError(f"the saved model trades {n_assets} assets but the prices have {k} columns")
        return _ModelSpec("replay", str(getattr(model, "path", "saved model")), saved=model)
    ssm = model if isinstance(model, StateSpaceModel) else getattr(model, "model", None)
    if not isinstance(ssm, StateSpaceModel):
        raise KalcointError(f"model {type(model).__name__} holds no filter quantities (StateSpaceModel)")
    if ssm.k != k:
        raise KalcointError(f"model has k={ssm.k} assets but the prices have {k} columns")
    return _ModelSpec("fixed", getattr(model, "method", "model"), fixed=ssm)


# ---------------------------------------------------------------- signals


@dataclass
class _Signals:
    """Per-day inputs of the strategy for the days traded."""

    spread: np.ndarray
    deviation: np.ndarray
    scale: np.ndarray
    shares: np.ndarray
    lookback: np.ndarray  # (n,) moving window used each day (0 = none)
    half_lives: list[float]
    retunes: list[dict[str, Any]]
    failures: list[str] = field(default_factory=list)
    legs: tuple[int, int] = (0, 0)  # band legs held before the first day
    state: np.ndarray | None = None
    version: np.ndarray | None = None
    versions: list[schedule.Version] = field(default_factory=list)
    units: np.ndarray | None = None  # (n,) units of a driven run (None: from the rule below)


def _choose_lookback(lookback: int | None, spread: np.ndarray, what: str) -> tuple[int, float]:
    hl = half_life(spread)
    if lookback is not None:
        return int(lookback), hl
    return lookback_from_half_life(spread, what)


def _static_weights(prices: np.ndarray, det_order: int, k_ar_diff: int) -> np.ndarray:
    """Johansen weights with the sign chosen so that one unit is long asset 1 (``w_1 > 0``)."""
    return engine.static_weights(prices, det_order, k_ar_diff)


def _fit_for(spec: _ModelSpec, iterations: int | None, tune_options: dict[str, Any]) -> schedule.Fit:
    """The estimation of a model: the Johansen weights, the tuning method's fit, or the fixed model."""
    if spec.kind == "static":
        return engine.static_fit(tune_options.get("det_order", 0), tune_options.get("k_ar_diff", 1))
    if spec.kind == "tuned":
        fit = schedule.tuning_fit(spec.method or "seed", iterations, None, tune_options)
        return schedule.with_estimates(fit, spec.estimates)
    assert spec.fixed is not None
    return schedule.fixed_fit(spec.fixed)


def _in_sample_signals(
    prices: pd.DataFrame,
    p: np.ndarray,
    spec: _ModelSpec,
    rule: engine.Rule,
    iterations: int | None,
    tune_options: dict[str, Any],
) -> _Signals:
    """The in-sample run: every quantity fitted on the whole sample, the rule run from flat."""
    n = p.shape[0]
    info: dict[str, Any] = {"row": 0}
    strategy, lookback = rule.strategy, rule.lookback
    if spec.kind == "static":
        w = _static_weights(p, tune_options.get("det_order", 0), tune_options.get("k_ar_diff", 1))
        spread = p @ w
        lb, hl = _choose_lookback(lookback, spread, "the static Johansen portfolio")
        out = engine.over_sample(spread, static_shares(w, n), rule, lb)
        info["weights"] = w.tolist()
    else:
        est = _fit_for(spec, iterations, tune_options)(prices)
        assert est.model is not None
        info.update(alpha11=est.model.alpha11, obs_var=est.model.obs_var, iterations=est.iterations)
        if est.degenerate:
            info["degenerate"] = "; ".join(est.reasons)
        res = est.window_result if est.window_result is not None else kalman_filter(p, est.model)
        spread = res.spread
        hl = half_life(spread)
        lb = 0
        if strategy == "linear":
            lb, hl = _choose_lookback(lookback, spread, f"the {spec.name} spread")
        out = engine.over_sample(
            spread,
            filter_shares(res.filtered_state),
            rule,
            lb or None,
            state=res.filtered_state,
            innovation=res.innovation,
            innovation_var=res.innovation_var,
        )
    info.update(lookback=lb, half_life=hl)
    return _Signals(
        out.spread,
        out.deviation,
        out.scale,
        out.shares,
        np.full(n, lb),
        [hl],
        [info],
        state=out.state,
        units=out.units,
    )


def week_starts(index: pd.DatetimeIndex, window: int) -> np.ndarray:
    """Row numbers of the first trading day of each calendar week (Monday-Sunday) with at least
    ``window`` rows before it (:func:`kalcoint.schedule.period_starts` with ``"weekly"``).

    Parameters
    ----------
    index : DatetimeIndex
        The trading days.
    window : int
        Rows of estimation needed before a start.

    Returns
    -------
    ndarray of int

    Examples
    --------
    >>> import pandas as pd
    >>> week_starts(pd.bdate_range("2024-01-01", periods=15), 3).tolist()
    [5, 10]
    """
    return schedule.period_starts(index, "weekly", window)


def _signals(run: engine.Drive, failures: list[str] | None = None) -> _Signals:
    """The strategy's inputs and units of a driven run."""
    out = run.steps
    return _Signals(
        out.spread,
        out.deviation,
        out.scale,
        out.shares,
        out.lookback,
        run.half_lives,
        run.periods,
        run.failures if failures is None else failures,
        state=out.state,
        version=run.version,
        versions=list(run.versions),
        units=out.units,
    )


def _walk_forward(
    prices: pd.DataFrame,
    p: np.ndarray,
    spec: _ModelSpec,
    rule: engine.Rule,
    period: str,
    window: int,
    iterations: int | None,
    opts: dict[str, Any],
    on_degenerate: str,
    progress: Progress | None,
) -> tuple[_Signals, int]:
    starts = schedule.period_starts(prices.index, period, window)
    if starts.size == 0 or starts[0] >= p.shape[0] - 1:
        raise KalcointError(
            f"window={window} leaves no {period} period to trade in {p.shape[0]} rows; use a shorter window"
        )
    first = int(starts[0])
    fit = _fit_for(spec, iterations, opts)
    run = engine.drive(
        prices,
        first,
        None,
        rule,
        retune=period,
        window=window,
        fit=fit,
        method=spec.name,
        on_degenerate=on_degenerate,
        progress=progress,
        estimated=spec.kind in ("tuned", "static"),
    )
    return _signals(run), first


def _replay(
    prices: pd.DataFrame, spec: _ModelSpec, progress: Progress | None
) -> tuple[_Signals, pd.DataFrame, str | None, int | None, engine.Rule]:
    """Continue a saved model over the rows of ``prices`` after its last date (see the module doc)."""
    resume = spec.saved.resume()
    rows = prices[prices.index > resume.history.index[-1]]
    if len(rows) < 2:
        raise KalcointError(
            f"the prices hold {len(rows)} row(s) after the saved model's last date "
            f"{schedule.day(resume.history.index[-1])}; a replay needs at least 2"
        )
    frame = pd.concat([resume.history, rows[list(resume.history.columns)]])
    run = engine.drive(
        frame,
        len(resume.history),
        resume.state,
        resume.rule,
        retune=resume.period,
        window=resume.window,
        fit=resume.fit,
        method=resume.method,
        on_degenerate=resume.on_degenerate,
        spread_before=resume.spread,
        progress=progress,
        estimated=resume.estimated,
    )
    return _signals(run), rows, resume.period, resume.window, resume.rule


# ---------------------------------------------------------------- the backtest


def _check_options(
    prices: Any, strategy: str, entry: float, exit: float, lookback: int | None, iterations: int | None, cost_bps: float
) -> None:
    if not isinstance(prices, pd.DataFrame):
        raise KalcointError("backtest needs prices as a DataFrame indexed by date")
    if strategy not in STRATEGIES:
        raise KalcointError(f"strategy={strategy!r} is not one of {', '.join(STRATEGIES)}")
    if strategy == "bands":
        check_bands(entry, exit)
    if lookback is not None and (int(lookback) != lookback or lookback < 2):
        raise KalcointError(f"lookback={lookback} must be an integer >= 2 (days)")
    if iterations is not None and iterations < 1:
        raise KalcointError(f"iterations={iterations} must be >= 1")
    if not (math.isfinite(cost_bps) and cost_bps >= 0):
        raise KalcointError(f"cost_bps={cost_bps} must be a finite number >= 0 (basis points of traded value)")


def _check_saved_rule(given: tuple[str | None, float | None, float | None], rule: engine.Rule) -> None:
    """A rule given with a saved model must be the one it trades."""
    strategy, entry, exit = given
    if (
        (strategy is not None and strategy != rule.strategy)
        or (entry is not None and entry != rule.entry)
        or (exit is not None and exit != rule.exit)
    ):
        raise KalcointError(
            f"the saved model trades its own rule (strategy={rule.strategy!r}, entry={rule.entry:g}, "
            f"exit={rule.exit:g}); leave strategy, entry and exit out, or give those"
        )


def backtest(
    prices: pd.DataFrame,
    method: str | StateSpaceModel | Any = None,
    strategy: str | None = None,
    *,
    entry: float | None = None,
    exit: float | None = None,
    lookback: int | None = None,
    delta: float | None = None,
    state_var: float | None = None,
    obs_var: float | None = None,
    iterations: int | None = None,
    retune: str | None = None,
    window: int | None = None,
    cost_bps: float = 0.0,
    progress: Progress | None = None,
    tune_options: dict[str, Any] | None = None,
    on_degenerate: str = "use",
    estimates: schedule.Estimated | None = None,
    walk_forward: str | None = None,
    model: StateSpaceModel | Any = None,
) -> BacktestResult:
    """Backtest one basket (see the module docstring for the conventions).

    Parameters
    ----------
    prices : (n, k) DataFrame of positive prices indexed by date, first column = asset 1.
    method : "static", "chan" (the default), or a tuning method of :data:`TUNED`; given by
        position, a model object as for ``model`` is also taken. delta/state_var/obs_var: Chan's
        filter (defaults 1e-4, -, 1e-3).
    model : a saved model opened by :func:`kalcoint.live.load_model` (replayed over the rows after
        its last date by its own retune policy), a StateSpaceModel, or an object with ``.model``;
        instead of ``method``. A method name given as ``model=`` is the deprecated form of
        ``method=`` (a DeprecationWarning).
    strategy : "bands" (default; entry/exit in units of sqrt(Q_t), or of the moving std for
        static; default 1 and 1) or "linear" (units = -z-score); lookback : moving window in days
        (default round(half-life)). A saved model trades its own rule (given ones must match it).
    iterations : tuning iterations for the tuning methods (default: tune()'s).
    retune : None or "never" (in-sample), "weekly" or "monthly" (walk-forward), with ``window``
        rows of estimation: the re-estimation period, the name a saved model's policy uses.
    walk_forward : deprecated name of ``retune`` (a DeprecationWarning; removed in a later release).
    cost_bps : costs in basis points of traded dollar value.
    progress : called as ``progress(done, total)`` after each walk-forward estimation (or None).
    on_degenerate : "use" (trade a degenerate re-estimation, the method as written) or "keep"
        (keep the previous model); walk-forward only.
    estimates : tuning estimates of a tuning method made beforehand by the same method and
        ``iterations`` on these prices, by window (:func:`kalcoint.schedule.estimate_windows`, e.g.
        in parallel; the in-sample window is the whole sample); the result is the same as without.

    Returns
    -------
    BacktestResult

    Examples
    --------
    >>> import kalcoint as kc
    >>> bt = kc.backtest(kc.demo_prices(), "chan", entry=1.0, exit=1.0)
    >>> round(bt.metrics["apr"], 4), round(bt.metrics["max_drawdown"], 4)
    (0.1083, -0.0209)
    >>> wf = kc.backtest(kc.demo_prices(), "static", retune="weekly", window=250)
    >>> wf.mode, round(wf.metrics["sharpe"], 4)
    ('walk-forward', 1.6838)
    """
    started = time.perf_counter()
    if model is not None and method is not None:
        raise KalcointError("give method (a name) or model (a saved or fitted model), not both")
    if isinstance(model, str):  # a method name under the old keyword
        method, model = renamed(model, method, "model", "method", "backtest"), None
    method = model if model is not None else "chan" if method is None else method
    if walk_forward is not None:
        warnings.warn("walk_forward= is deprecated: use retune= (the same values)", DeprecationWarning, stacklevel=2)
        if retune is not None:
            raise KalcointError("give retune (walk_forward is its deprecated name), not both")
        retune = walk_forward
    period = None if retune == "never" else retune
    given = (strategy, entry, exit)
    strategy = "bands" if strategy is None else strategy
    entry = 1.0 if entry is None else entry
    exit = 1.0 if exit is None else exit
    _check_options(prices, strategy, entry, exit, lookback, iterations, cost_bps)
    schedule.check_on_degenerate(on_degenerate)
    assets = [str(c) for c in prices.columns]
    p = prices.to_numpy(dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise KalcointError(f"backtest needs at least 2 assets, got {p.shape[1] if p.ndim == 2 else 0}")
    if not np.all(np.isfinite(p)) or np.any(p <= 0):
        raise KalcointError("prices must be finite and positive for a backtest (returns are price ratios)")
    spec = replace(
        resolve_model(method, p.shape[1], delta=delta, state_var=state_var, obs_var=obs_var, assets=assets),
        assets=tuple(assets),
        estimates=estimates,
    )
    if lookback is not None and strategy == "bands" and spec.kind != "static":
        raise KalcointError("lookback applies to strategy='linear' and to the static model's bands only")
    opts = dict(tune_options or {})
    rule = engine.Rule(strategy, entry, exit, lookback)
    if spec.kind == "replay":
        if period is not None or window is not None or iterations is not None or lookback is not None:
            raise KalcointError(
                "retune, window, iterations and lookback do not apply to a saved model: "
                "it is replayed by its own retune policy"
            )
        sig, rows, period, window, rule = _replay(prices, spec, progress)
        _check_saved_rule(given, rule)
        strategy, entry, exit = rule.strategy, rule.entry, rule.exit
        dates, traded_prices, mode = rows.index, rows.to_numpy(dtype=np.float64), "replay"
    elif period is None:
        if window is not None:
            raise KalcointError("window applies to retune='weekly' or 'monthly' only")
        sig = _in_sample_signals(prices, p, spec, rule, iterations, opts)
        dates, traded_prices, mode = prices.index, p, "in-sample"
    else:
        schedule.check_period(period)
        if window is None:
            raise KalcointError(f"retune={period!r} needs window=N (trading days of estimation), e.g. window=250")
        window = schedule.check_window(window)
        sig, first = _walk_forward(prices, p, spec, rule, period, window, iterations, opts, on_degenerate, progress)
        dates, traded_prices, mode = prices.index[first:], p[first:], "walk-forward"
    if sig.units is not None:
        units = sig.units
    elif strategy == "bands":
        units = band_legs(sig.deviation, sig.scale, entry, exit, *sig.legs)[0]
    else:  # strategy.linear on the moving statistics already computed
        with np.errstate(invalid="ignore", divide="ignore"):
            z = sig.deviation / sig.scale
        units = np.where(np.isfinite(z), -z, 0.0)
    acc = account(traded_prices, units, sig.shares, cost_bps)
    finite_hl = [h for h in sig.half_lives if math.isfinite(h) and h > 0]
    hl = float(np.median(finite_hl)) if finite_hl else None
    metrics = compute_metrics(acc.returns, units, acc, hl)
    frame = pd.DataFrame(
        {
            "date": pd.DatetimeIndex(dates),
            "units": units,
            "return": acc.returns,
            "equity": np.cumprod(1.0 + acc.returns),
        }
    )
    lbs = np.unique(sig.lookback[sig.lookback > 0])
    versions = pd.DataFrame([v.to_dict() for v in sig.versions]) if sig.versions else None
    return BacktestResult(
        metrics=metrics,
        frame=frame,
        mode=mode,
        assets=assets,
        model=spec.name,
        strategy=strategy,
        cost_bps=float(cost_bps),
        entry=float(entry),
        exit=float(exit),
        spread=sig.spread,
        deviation=sig.deviation,
        scale=sig.scale,
        shares=sig.shares,
        accounts=acc,
        retunes=pd.DataFrame(sig.retunes),
        window=window,
        lookback=int(lbs[0]) if lbs.size == 1 else None,
        retune_failures=sig.failures,
        elapsed_s=time.perf_counter() - started,
        period=period,
        state=sig.state,
        version=sig.version,
        versions=versions,
    )


# ---------------------------------------------------------------- comparison


def compare_backtests(
    prices: pd.DataFrame,
    models: Sequence[str] = MODELS,
    strategy: str = "bands",
    *,
    window: int = 250,
    cost_bps: float = 0.0,
    iterations: int | None = None,
    entry: float = 1.0,
    exit: float = 1.0,
    lookback: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    layout: str = "wide",
) -> pd.DataFrame:
    """In-sample and weekly walk-forward metrics of several models on one basket.

    Parameters
    ----------
    prices : DataFrame, shape (n, k)
        Positive prices indexed by date, first column = asset 1.
    models : sequence of str
        Names of :data:`MODELS`.
    strategy, entry, exit, lookback, iterations, cost_bps :
        As :func:`backtest`; costs apply to both modes.
    window : int
        Rows of estimation of the walk-forward runs; they cover the weeks after the first
        ``window`` rows. The in-sample runs cover every row.
    progress : callable, optional
        ``progress(done, total)`` after each weekly estimation of each walk-forward run.
    layout : {"wide", "long"}
        "wide": one row per model (index ``model``), columns ``<metric>_is`` and ``<metric>_wf``
        for every metric of :data:`METRIC_KEYS`, then ``elapsed_s_is``, ``elapsed_s_wf`` and
        ``error`` (the one-line reason a model could not be backtested, else empty). "long": index
        ``(model, mode)`` with mode "in-sample" / "walk-forward", columns the metrics,
        ``elapsed_s`` and ``error``.

    Returns
    -------
    DataFrame

    Examples
    --------
    >>> import kalcoint as kc
    >>> t = kc.compare_backtests(kc.demo_prices(), models=("static", "chan"), layout="long")
    >>> t["sharpe"].round(4).tolist()
    [2.5682, 1.6838, 2.5697, 2.5549]
    """
    if layout not in ("wide", "long"):
        raise KalcointError(f"layout={layout!r} is not one of 'wide', 'long'")
    modes = {"is": "in-sample", "wf": "walk-forward"}
    records = []
    for name in models:
        runs: dict[str, BacktestResult] = {}
        error = ""
        try:
            for key in modes:
                wf: dict[str, Any] = {"retune": "weekly", "window": window, "progress": progress} if key == "wf" else {}
                runs[key] = backtest(
                    prices,
                    name,
                    strategy,
                    entry=entry,
                    exit=exit,
                    lookback=lookback,
                    iterations=iterations,
                    cost_bps=cost_bps,
                    **wf,
                )
        except KalcointError as exc:
            error, runs = str(exc), {}
        for key, mode in modes.items():
            run = runs.get(key)
            records.append(
                {
                    "model": name,
                    "mode": mode,
                    **{m: run.metrics[m] if run else None for m in METRIC_KEYS},
                    "elapsed_s": run.elapsed_s if run else None,
                    "error": error,
                }
            )
    long = pd.DataFrame(records).set_index(["model", "mode"])
    if layout == "long":
        return long
    wide = pd.DataFrame(index=pd.Index(list(dict.fromkeys(models)), name="model"))
    for column in (*METRIC_KEYS, "elapsed_s"):
        for key, mode in modes.items():
            wide[f"{column}_{key}"] = long.xs(mode, level="mode")[column]
    wide["error"] = long.xs("in-sample", level="mode")["error"]
    return wide


__all__ = [
    "METRIC_KEYS",
    "MODELS",
    "TUNED",
    "Accounts",
    "BacktestResult",
    "account",
    "audit_columns",
    "backtest",
    "compare_backtests",
    "compute_metrics",
    "holding_periods",
    "resolve_model",
    "week_starts",
]


class _CallableModule(types.ModuleType):
    """``import kalcoint.backtest`` gives this module; calling it runs :func:`backtest`, so that
    ``kc.backtest(prices, ...)`` stays the function call it always was."""

    def __call__(self, *args: Any, **kwargs: Any) -> BacktestResult:
        return backtest(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

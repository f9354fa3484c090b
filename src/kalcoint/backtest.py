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

Walk-forward (``walk_forward="weekly"``)
----------------------------------------
Weeks are calendar weeks (Monday to Sunday). Before the first trading day ``d`` of each week
that has at least ``window`` rows before it, the model is re-estimated on the ``window`` rows
strictly before ``d``: Johansen weights for ``static``; :func:`kalcoint.tuning.tune` for
``seed``/``mle``/``em``; nothing for ``chan`` or a fixed (saved) model. The filter then runs
through the week with those quantities. Carrying the filter state: the first week starts from
the posterior ``(b, P)`` of the first model run over its own estimation window (from its own
prior); every later week continues from the posterior ``(b, P)`` of the previous trading day,
computed with last week's model, and predicts with the new model's ``A``, ``Vw``, ``Ve``
(the new model's ``b0``, ``P0`` are not used). Moving windows (z-scores) use the traded spread
of earlier days (for the first week: the estimation window's spread); for ``static`` the
spread of every day of a week is recomputed with that week's weights. The band state (long
or short) carries over week boundaries. The run (and its metrics) covers the traded weeks
only. If a weekly re-estimation fails, the previous week's model is kept and the failure is
recorded in ``BacktestResult.retune_failures``; a failure in the first week is an error.
Nothing on or after a day influences that day's position (tested by truncating the file).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .cointegration import half_life, johansen
from .errors import ComputationError, KalcointError
from .filtering import StateSpaceModel, kalman_filter
from .strategy import (
    STRATEGIES, bands, check_bands, filter_shares, lookback_from_half_life, moving_mean_std,
    static_shares,
)

DAYS_PER_YEAR = 252
TUNED = ("seed", "mle", "em", "als")
MODELS = ("static", "chan", *TUNED)
METRIC_KEYS = ("apr", "sharpe", "max_drawdown", "calmar", "round_trips", "avg_holding_days",
               "time_in_market", "turnover", "half_life")
WALK_FORWARD = ("weekly",)
MIN_WINDOW = 20


# ---------------------------------------------------------------- accounting and metrics


@dataclass(frozen=True)
class Accounts:
    """Daily accounting arrays of a run over n days (see the module docstring).

    positions : (n, k) dollar positions ``D_t`` at each close; gross : (n,) ``G_t``;
    traded : (n,) dollars ``T_t`` traded at each close; pnl : (n,) dollars of price moves;
    cost : (n,) dollars of costs; cost_capital : (n,) ``max(G_{t-1}, G_t)``;
    gross_returns : (n,) returns before costs; returns : (n,) net daily returns (fractions).
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

    prices : (n, k) positive prices; units : (n,) finite; shares : (n, k) shares per unit;
    cost_bps : costs in basis points of the dollar value traded.
    """
    p = np.asarray(prices, dtype=np.float64)
    u = np.asarray(units, dtype=np.float64)
    h = np.asarray(shares, dtype=np.float64)
    if not (np.all(np.isfinite(u)) and np.all(np.isfinite(h)) and np.all(np.isfinite(p))):
        raise ComputationError("backtest positions or prices are not finite")
    if not (math.isfinite(cost_bps) and cost_bps >= 0):
        raise KalcointError(f"--cost-bps {cost_bps} must be a finite number >= 0 (basis points of traded value)")
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


def holding_periods(units: np.ndarray) -> list[tuple[int, int, int]]:
    """Maximal runs of days with closing units of one non-zero sign: ``(first, last, sign)``."""
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


def compute_metrics(returns: np.ndarray, units: np.ndarray, accounts: Accounts | None = None,
                    half_life_days: float | None = None) -> dict[str, Any]:
    """The metrics of the module docstring from (n,) daily returns and closing units."""
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


@dataclass
class BacktestResult:
    """One backtest run over n days of k assets.

    metrics : dict with the keys of :data:`METRIC_KEYS` (floats/ints, ``None`` where undefined).
    frame : DataFrame ``date, units, return, equity`` (units held at each close, net daily return,
        compounded equity starting from 1).
    spread : (n,) traded spread ``p_t . shares_t`` (price units); deviation, scale : (n,) the band
        rule's inputs (innovation and sqrt(Q) for a filter, spread minus moving mean and moving std
        for static; for ``linear`` the spread minus moving mean and moving std).
    shares : (n, k) shares per unit; accounts : the daily accounting arrays.
    retunes : one row per estimation (walk-forward: per week; in-sample: one) with its date,
        lookback, half-life and, for filters, alpha11 and obs_var.
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
        return {**{k: self.metrics[k] for k in METRIC_KEYS}, "mode": self.mode, "assets": list(self.assets),
                "model": self.model, "strategy": self.strategy, "cost_bps": float(self.cost_bps)}

    def out_frame(self) -> pd.DataFrame:
        """The ``--out`` table: ``date`` (YYYY-MM-DD), ``units``, ``return``, ``equity``."""
        out = self.frame.copy()
        out["date"] = pd.DatetimeIndex(out["date"]).strftime("%Y-%m-%d")
        return out

    def summary(self) -> str:
        """A few readable lines, saying ``in-sample`` or ``walk-forward``."""
        m = self.metrics
        dates = self.frame["date"]
        head = (f"Backtest ({self.mode.upper()}): {', '.join(self.assets)}, model {self.model}, "
                f"strategy {self.strategy}" + (f" (entry {self.entry:g}, exit {self.exit:g})"
                                                if self.strategy == "bands" else "")
                + f", costs {self.cost_bps:g} bps")
        span = f"  {dates.iloc[0]:%Y-%m-%d} to {dates.iloc[-1]:%Y-%m-%d}, {len(dates)} days"
        if self.mode == "walk-forward":
            span += f"; re-estimated weekly on the previous {self.window} days ({len(self.retunes)} weeks)"
        else:
            span += "; every quantity fitted on the whole sample (in-sample: look-ahead included)"
        lines = [head, span]
        lines.append(f"  APR {_pct(m['apr'])}   Sharpe {_num(m['sharpe'], '.2f')}   max drawdown "
                     f"{_pct(m['max_drawdown'])}   Calmar {_num(m['calmar'], '.2f')}")
        lines.append(f"  round trips {m['round_trips']}   avg holding {_num(m['avg_holding_days'], '.1f')} days   "
                     f"time in market {_pct(m['time_in_market'])}   turnover {_num(m['turnover'], '.1f')}/yr   "
                     f"half-life {_num(m['half_life'], '.2f')} days")
        if self.mode == "in-sample" and "degenerate" in self.retunes and isinstance(self.retunes["degenerate"].iloc[0], str):
            lines.append(f"  WARNING: the tuned model looks degenerate: {self.retunes['degenerate'].iloc[0]}")
        if self.retune_failures:
            lines.append(f"  {len(self.retune_failures)} weekly re-estimations failed and kept the previous model")
        return "\n".join(lines)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _num(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


# ---------------------------------------------------------------- model resolution


@dataclass(frozen=True)
class _ModelSpec:
    kind: str  # "static", "chan", "tuned" or "fixed"
    name: str
    method: str | None = None
    fixed: StateSpaceModel | None = None
    assets: tuple[str, ...] = ()


def resolve_model(model: str | StateSpaceModel | Any, k: int, *, delta: float | None = None,
                  state_var: float | None = None, obs_var: float | None = None,
                  assets: Sequence[str] | None = None) -> _ModelSpec:
    """Turn ``model`` (a name of :data:`MODELS`, a :class:`StateSpaceModel`, an object with a
    ``.model`` StateSpaceModel such as a TunedModel or a saved model, or a saved model file path)
    into what the backtest runs. ``delta``/``state_var``/``obs_var`` apply to ``chan`` only."""
    chan_opts = delta is not None or state_var is not None or obs_var is not None
    if isinstance(model, str) and model in MODELS:
        if chan_opts and model != "chan":
            raise KalcointError("--delta, --state-var and --obs-var apply to --model chan only")
        if model != "chan":
            return _ModelSpec(model if model == "static" else "tuned", model, None if model == "static" else model)
        if delta is not None and state_var is not None:
            raise KalcointError("give either --delta or --state-var, not both")
        fixed = StateSpaceModel.chan(k, delta=1e-4 if delta is None else delta, state_var=state_var,
                                     obs_var=1e-3 if obs_var is None else obs_var)
        return _ModelSpec("chan", "chan", fixed=fixed)
    if chan_opts:
        raise KalcointError("--delta, --state-var and --obs-var apply to --model chan only")
    name = "model"
    if isinstance(model, (str, Path)):
        from .live import open_saved_model

        saved = open_saved_model(model, assets, MODELS)
        path = Path(model)
        model, name = saved, str(path)
    ssm = model if isinstance(model, StateSpaceModel) else getattr(model, "model", None)
    if not isinstance(ssm, StateSpaceModel):
        raise KalcointError(f"model {name!r} holds no filter quantities (StateSpaceModel)")
    if ssm.k != k:
        raise KalcointError(f"model {name!r} has k={ssm.k} assets but the prices have {k} columns")
    return _ModelSpec("fixed", name if name != "model" else getattr(model, "method", "model"), fixed=ssm)


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


def _window_stats(history: np.ndarray, lookback: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Moving mean/std of the last ``m`` values of ``history`` (which holds earlier days before them)."""
    mean, std = moving_mean_std(history, lookback)
    return mean[-m:], std[-m:]


def _choose_lookback(lookback: int | None, spread: np.ndarray, what: str) -> tuple[int, float]:
    hl = half_life(spread)
    if lookback is not None:
        return int(lookback), hl
    return lookback_from_half_life(spread, what)


def _static_weights(prices: np.ndarray, det_order: int, k_ar_diff: int) -> np.ndarray:
    """Johansen weights with the sign chosen so that one unit is long asset 1 (``w_1 > 0``)."""
    w = johansen(prices, det_order=det_order, k_ar_diff=k_ar_diff).weights
    return w if w[0] > 0 else -w


def _in_sample_signals(p: np.ndarray, spec: _ModelSpec, strategy: str, lookback: int | None,
                       iterations: int | None, tune_options: dict[str, Any]) -> _Signals:
    n = p.shape[0]
    info: dict[str, Any] = {"row": 0}
    if spec.kind == "static":
        w = _static_weights(p, tune_options.get("det_order", 0), tune_options.get("k_ar_diff", 1))
        spread = p @ w
        lb, hl = _choose_lookback(lookback, spread, "the static Johansen portfolio")
        mean, std = moving_mean_std(spread, lb)
        dev, scale, shares = spread - mean, std, static_shares(w, n)
        info["weights"] = w.tolist()
    else:
        model = _fit_filter(p, spec, iterations, tune_options, info, diagnose=True)
        res = kalman_filter(p, model)
        spread, shares = res.spread, filter_shares(res.filtered_state)
        hl = half_life(spread)
        if strategy == "linear":
            lb, hl = _choose_lookback(lookback, spread, f"the {spec.name} spread")
            mean, std = moving_mean_std(spread, lb)
            dev, scale = spread - mean, std
        else:
            lb, dev, scale = 0, res.innovation, np.sqrt(res.innovation_var)
    info.update(lookback=lb, half_life=hl)
    return _Signals(spread, dev, scale, shares, np.full(n, lb), [hl], [info])


def _fit_filter(p: np.ndarray, spec: _ModelSpec, iterations: int | None, tune_options: dict[str, Any],
                info: dict[str, Any], diagnose: bool = False) -> StateSpaceModel:
    """The filter quantities for a fitting sample ``p`` (tuned, or the fixed model); ``diagnose``
    records the tuning diagnosis (degenerate fit) in ``info``."""
    if spec.kind != "tuned":
        assert spec.fixed is not None
        return spec.fixed
    from .tuning import tune

    kwargs = dict(tune_options)
    if spec.method == "mle":
        kwargs.setdefault("std_errors", False)  # not used by a backtest, and the Hessian is costly
    if iterations is not None:
        kwargs["iterations"] = iterations
    try:
        sample = pd.DataFrame(p, columns=list(spec.assets)) if len(spec.assets) == p.shape[1] else p
        tuned = tune(sample, method=spec.method or "seed", diagnose=diagnose, **kwargs)
    except ModuleNotFoundError as exc:
        raise KalcointError(f"--model {spec.method}: this tuning method is not available ({exc})") from exc
    info.update(alpha11=tuned.model.alpha11, obs_var=tuned.model.obs_var, iterations=tuned.iterations)
    if diagnose and tuned.degenerate:
        info["degenerate"] = "; ".join(tuned.degenerate_reasons)
    return tuned.model


def week_starts(index: pd.DatetimeIndex, window: int) -> np.ndarray:
    """Row numbers of the first trading day of each calendar week (Monday-Sunday) with at least
    ``window`` rows before it."""
    if not isinstance(index, pd.DatetimeIndex):
        raise KalcointError("walk-forward needs prices indexed by dates (a DatetimeIndex)")
    weeks = index.to_period("W-SUN").asi8
    starts = np.flatnonzero(np.concatenate([[True], weeks[1:] != weeks[:-1]]))
    return starts[starts >= window]


def _walk_forward_signals(p: np.ndarray, starts: np.ndarray, spec: _ModelSpec, strategy: str, window: int,
                          lookback: int | None, iterations: int | None, tune_options: dict[str, Any],
                          dates: pd.DatetimeIndex, tick: Callable[[], None]) -> _Signals:
    n = p.shape[0]
    ends = np.append(starts[1:], n)
    first = starts[0]
    m_total = n - first
    spread = np.empty(m_total)
    dev = np.empty(m_total)
    scale = np.empty(m_total)
    shares = np.empty((m_total, p.shape[1]))
    lbs = np.zeros(m_total, dtype=np.int64)
    half_lives: list[float] = []
    retunes: list[dict[str, Any]] = []
    failures: list[str] = []
    history = np.empty(0)  # traded spread of earlier days (filters), for moving windows
    state: tuple[np.ndarray, np.ndarray] | None = None
    model: StateSpaceModel | None = None
    weights: np.ndarray | None = None
    lb_prev: int | None = None
    for s, e in zip(starts, ends):
        info: dict[str, Any] = {"date": dates[s], "row": int(s)}
        fit = p[s - window:s]
        sl = slice(s - first, e - first)
        try:
            if spec.kind == "static":
                weights = _static_weights(fit, tune_options.get("det_order", 0), tune_options.get("k_ar_diff", 1))
                info["weights"] = weights.tolist()
            else:
                model = _fit_filter(fit, spec, iterations, tune_options, info)
        except KalcointError as exc:
            if weights is None and model is None:
                raise KalcointError(f"walk-forward: the first estimation (window before {dates[s]:%Y-%m-%d}) "
                                    f"failed: {exc}") from exc
            failures.append(f"{dates[s]:%Y-%m-%d}: {exc}")
            info["failed"] = str(exc)
        if model is not None:  # the quantities in use this week (last week's after a failure)
            info.update(alpha11=model.alpha11, obs_var=model.obs_var)
        if weights is not None:
            info["weights"] = weights.tolist()
        if spec.kind == "static":
            assert weights is not None
            week_spread = p[s:e] @ weights
            fit_spread = fit @ weights
        else:
            assert model is not None
            if state is None:  # first week: warm the filter up on its estimation window
                warm = kalman_filter(fit, model)
                history = warm.spread
                state = warm.last_posterior
            res = kalman_filter(p[s:e], model, start=state)
            state = res.last_posterior
            week_spread = res.spread
            fit_spread = history[-window:]
            shares[sl] = filter_shares(res.filtered_state)
            if strategy == "bands":
                dev[sl], scale[sl] = res.innovation, np.sqrt(res.innovation_var)
        hl = half_life(fit_spread)
        half_lives.append(hl)
        lb = lookback
        if strategy == "linear" or spec.kind == "static":
            if lb is None:
                try:
                    lb = lookback_from_half_life(fit_spread, f"the spread before {dates[s]:%Y-%m-%d}")[0]
                except KalcointError as exc:
                    if lb_prev is None:
                        raise
                    failures.append(f"{dates[s]:%Y-%m-%d}: {exc}; kept lookback {lb_prev}")
                    lb = lb_prev
            lb_prev = lb
            if spec.kind == "static":
                hist = p[max(0, s - lb + 1):e] @ weights  # this week's weights on earlier days too
            else:
                hist = np.concatenate([history[-(lb - 1):] if lb > 1 else history[:0], week_spread])
            mean, std = _window_stats(hist, lb, e - s)
            dev[sl], scale[sl] = week_spread - mean, std
            lbs[sl] = lb
        if spec.kind == "static":
            shares[sl] = weights
        else:
            history = np.concatenate([history, week_spread])
        spread[sl] = week_spread
        info.update(lookback=lb, half_life=hl)
        retunes.append(info)
        tick()
    return _Signals(spread, dev, scale, shares, lbs, half_lives, retunes, failures)


# ---------------------------------------------------------------- the backtest


def backtest(
    prices: pd.DataFrame,
    model: str | StateSpaceModel | Any = "chan",
    strategy: str = "bands",
    *,
    entry: float = 1.0,
    exit: float = 1.0,
    lookback: int | None = None,
    delta: float | None = None,
    state_var: float | None = None,
    obs_var: float | None = None,
    iterations: int | None = None,
    walk_forward: str | None = None,
    window: int | None = None,
    cost_bps: float = 0.0,
    progress: bool = False,
    tune_options: dict[str, Any] | None = None,
) -> BacktestResult:
    """Backtest one basket (see the module docstring for the conventions).

    prices : (n, k) DataFrame of positive prices indexed by date, first column = asset 1.
    model : "static", "chan", "seed", "mle", "em", a StateSpaceModel (or an object with ``.model``)
        or the path of a saved model file. delta/state_var/obs_var: Chan's filter (defaults 1e-4, -, 1e-3).
    strategy : "bands" (entry/exit in units of sqrt(Q_t), or of the moving std for static) or
        "linear" (units = -z-score); lookback : moving window in days (default round(half-life)).
    iterations : tuning iterations for seed/mle/em (default: tune()'s).
    walk_forward : None (in-sample) or "weekly" with ``window`` rows of estimation.
    cost_bps : costs in basis points of traded dollar value. progress : show a rich progress bar
        on stderr for walk-forward runs.
    """
    started = time.perf_counter()
    if not isinstance(prices, pd.DataFrame):
        raise KalcointError("backtest needs prices as a DataFrame indexed by date")
    if strategy not in STRATEGIES:
        raise KalcointError(f"--strategy {strategy!r} is not one of {', '.join(STRATEGIES)}")
    if strategy == "bands":
        check_bands(entry, exit)
    if lookback is not None and (int(lookback) != lookback or lookback < 2):
        raise KalcointError(f"--lookback {lookback} must be an integer >= 2 (days)")
    if iterations is not None and iterations < 1:
        raise KalcointError(f"--iterations {iterations} must be >= 1")
    if not (math.isfinite(cost_bps) and cost_bps >= 0):
        raise KalcointError(f"--cost-bps {cost_bps} must be a finite number >= 0 (basis points of traded value)")
    assets = [str(c) for c in prices.columns]
    p = prices.to_numpy(dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise KalcointError(f"backtest needs at least 2 assets, got {p.shape[1] if p.ndim == 2 else 0}")
    if not np.all(np.isfinite(p)) or np.any(p <= 0):
        raise KalcointError("prices must be finite and positive for a backtest (returns are price ratios)")
    spec = replace(resolve_model(model, p.shape[1], delta=delta, state_var=state_var, obs_var=obs_var,
                                 assets=assets), assets=tuple(assets))
    if lookback is not None and strategy == "bands" and spec.kind != "static":
        raise KalcointError("--lookback applies to --strategy linear and to the static model's bands only")
    opts = dict(tune_options or {})
    if walk_forward is None:
        if window is not None:
            raise KalcointError("--window applies to --walk-forward weekly only")
        sig = _in_sample_signals(p, spec, strategy, lookback, iterations, opts)
        dates, traded_prices, mode = prices.index, p, "in-sample"
    else:
        sig, first = _run_walk_forward(prices, p, spec, strategy, walk_forward, window, lookback, iterations,
                                       opts, progress)
        dates, traded_prices, mode = prices.index[first:], p[first:], "walk-forward"
    if strategy == "bands":
        units = bands(sig.deviation, sig.scale, entry, exit)
    else:  # strategy.linear on the moving statistics already computed (per-week lookbacks)
        with np.errstate(invalid="ignore", divide="ignore"):
            z = sig.deviation / sig.scale
        units = np.where(np.isfinite(z), -z, 0.0)
    acc = account(traded_prices, units, sig.shares, cost_bps)
    finite_hl = [h for h in sig.half_lives if math.isfinite(h) and h > 0]
    hl = float(np.median(finite_hl)) if finite_hl else None
    metrics = compute_metrics(acc.returns, units, acc, hl)
    frame = pd.DataFrame({"date": pd.DatetimeIndex(dates), "units": units, "return": acc.returns,
                          "equity": np.cumprod(1.0 + acc.returns)})
    name = spec.name
    lbs = np.unique(sig.lookback[sig.lookback > 0])
    return BacktestResult(
        metrics=metrics, frame=frame, mode=mode, assets=assets, model=name, strategy=strategy,
        cost_bps=float(cost_bps), entry=float(entry), exit=float(exit), spread=sig.spread,
        deviation=sig.deviation, scale=sig.scale, shares=sig.shares, accounts=acc,
        retunes=pd.DataFrame(sig.retunes), window=window,
        lookback=int(lbs[0]) if lbs.size == 1 else None, retune_failures=sig.failures,
        elapsed_s=time.perf_counter() - started,
    )


def _run_walk_forward(prices: pd.DataFrame, p: np.ndarray, spec: _ModelSpec, strategy: str, walk_forward: str,
                      window: int | None, lookback: int | None, iterations: int | None, opts: dict[str, Any],
                      progress: bool) -> tuple[_Signals, int]:
    if walk_forward not in WALK_FORWARD:
        raise KalcointError(f"--walk-forward {walk_forward!r} is not one of {', '.join(WALK_FORWARD)}")
    if window is None:
        raise KalcointError("--walk-forward weekly needs --window N (trading days of estimation), e.g. --window 250")
    if int(window) != window or window < MIN_WINDOW:
        raise KalcointError(f"--window {window} must be an integer >= {MIN_WINDOW} (trading days)")
    starts = week_starts(prices.index, int(window))
    if starts.size == 0 or starts[0] >= p.shape[0] - 1:
        raise KalcointError(f"--window {window} leaves no week to trade in {p.shape[0]} rows; use a shorter window")
    if not progress:
        return _walk_forward_signals(p, starts, spec, strategy, int(window), lookback, iterations, opts,
                                     prices.index, lambda: None), int(starts[0])
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("walk-forward {task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(spec.name, total=int(starts.size))
        sig = _walk_forward_signals(p, starts, spec, strategy, int(window), lookback, iterations, opts,
                                    prices.index, lambda: bar.advance(task))
    return sig, int(starts[0])


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
    progress: bool = False,
    layout: str = "wide",
) -> pd.DataFrame:
    """In-sample and weekly walk-forward metrics of several models on one basket.

    layout "wide" (default): one row per model (index ``model``), columns ``<metric>_is`` and
    ``<metric>_wf`` for every metric of :data:`METRIC_KEYS`, the two modes side by side, then
    ``elapsed_s_is``, ``elapsed_s_wf`` and ``error`` (the one-line reason a model could not be
    backtested, else empty). layout "long": index ``(model, mode)`` with mode "in-sample" /
    "walk-forward" on consecutive rows, columns the metrics, ``elapsed_s`` and ``error`` (narrower
    to print). Costs ``cost_bps`` apply to both modes. The in-sample run covers every row; the
    walk-forward run covers the weeks after the first ``window`` rows.
    """
    if layout not in ("wide", "long"):
        raise KalcointError(f"layout {layout!r} is not one of 'wide', 'long'")
    modes = {"is": "in-sample", "wf": "walk-forward"}
    records = []
    for name in models:
        runs: dict[str, BacktestResult] = {}
        error = ""
        try:
            for key in modes:
                wf = {"walk_forward": "weekly", "window": window, "progress": progress} if key == "wf" else {}
                runs[key] = backtest(prices, name, strategy, entry=entry, exit=exit, lookback=lookback,
                                     iterations=iterations, cost_bps=cost_bps, **wf)
        except KalcointError as exc:
            error, runs = str(exc), {}
        for key, mode in modes.items():
            run = runs.get(key)
            records.append({"model": name, "mode": mode,
                            **{m: run.metrics[m] if run else None for m in METRIC_KEYS},
                            "elapsed_s": run.elapsed_s if run else None, "error": error})
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
    "Accounts", "BacktestResult", "METRIC_KEYS", "MODELS", "account", "backtest", "compare_backtests",
    "compute_metrics", "holding_periods", "resolve_model", "week_starts",
]

"""The stepping engine: one state, one step, one driver that owns time.

Every way of trading a model through time runs through this module: the walk-forward backtest
(weekly, monthly) and with it the study's trading, the replay of a saved model, the saving
(cold start) and the live ``update`` / ``retune`` of a model file, and ``schedule.run``. The
in-sample backtest keeps its whole-sample fit (look-ahead by design; its numbers unchanged).
A new rule or model is a change here only.

The state (:class:`EngineState`, an immutable record)
-----------------------------------------------------
* **The version in force**: its id, the last date of its estimation window and its estimate,
  either a filter's quantities (a :class:`~kalcoint.filtering.StateSpaceModel`: ``chan``, or a
  tuning method's ``seed``, ``mle``, ``em``, ``als``) or the static Johansen weights ``w``
  (``static``: the same kind of estimate, made on the same schedule); and the id the next
  estimation will get.
* **The filter posterior** ``(b, P)`` after the last row (None for ``static``).
* **The rule's state**: the band legs held (``long`` in {0, 1}, ``short`` in {-1, 0}); the moving
  window in force (``lookback``, days) and the last ``lookback - 1`` traded spreads (``recent``)
  of a rule on moving statistics (``linear``, and the static model's bands).

The step (:func:`step`, batch form :func:`advance`)
---------------------------------------------------
One row ``p_t`` (k prices) gives:

1. the traded spread and the shares of one unit: for a filter, the filter continued from
   ``(b, P)`` (the compiled :func:`~kalcoint.filtering.kalman_filter` with ``start=``), spread
   ``p_1 - sum_j b_{j,t|t} p_j`` and shares ``(1, -b_{2,t|t}, ..)``; for static, ``p_t . w`` and ``w``;
2. the rule's inputs: the innovation ``e_t`` and ``sqrt(Q_t)`` (a filter's bands), or the
   spread minus the mean and the sample standard deviation of the last ``lookback`` spreads
   (``recent`` and this one; linear, static bands);
3. the units held at the close: Chan's bands continued from the legs, or ``-z_t`` (0 while the
   window is not full or is constant).

``advance`` on m rows is ``step`` applied m times (the same numbers: the filter is one compiled
loop either way and the moving statistics are computed on the same values).

The driver (:func:`drive`): re-estimation on the schedule, one place
--------------------------------------------------------------------
The calendar and the re-estimation are :mod:`kalcoint.schedule`'s: before the first row ``t``
of each calendar week (month) with at least ``window`` rows before it, the estimate is re-made on
rows ``t - window .. t - 1`` (not when the version in force was made on exactly that window);
a failure keeps the version in force; ``on_degenerate`` uses or keeps a degenerate fit. ``chan``
(and a fixed model) is never re-estimated. At the same rows the rule's moving window is chosen
again, as ``round(half-life)`` (at least 2) of the spread of the ``window`` rows before (for
static: those rows' prices with the weights in force; for a filter: the spreads traded), unless
the lookback was given; a spread that does not revert keeps the previous lookback.

A cold start (no state) estimates version 1 on the ``window`` rows before the first traded row;
a filter then runs over that window from its prior: its last posterior is carried, its
innovations give the band legs held (what a trader who saved that model holds), its spreads the
moving window; the static model starts flat. Saving a model is exactly this cold start.
Nothing on or after a row influences that row's position.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from . import schedule
from .cointegration import half_life, johansen
from .errors import KalcointError
from .filtering import FilterResult, StateSpaceModel, kalman_filter
from .strategy import STRATEGIES, band_legs, check_bands, lookback_from_half_life, moving_mean_std

Progress = Callable[[int, int], None]


# ---------------------------------------------------------------- the rule and the state


@dataclass(frozen=True)
class Rule:
    """A trading rule: ``bands`` (entry/exit in units of the scale) or ``linear`` (units = -z).

    Attributes
    ----------
    strategy : {"bands", "linear"}
    entry, exit : float
        Band thresholds (bands only).
    lookback : int or None
        The moving window in days; None: ``round(half-life)`` chosen on the schedule.

    Examples
    --------
    >>> Rule("linear").moving(static=False), Rule("bands").moving(static=True)
    (True, True)
    """

    strategy: str = "bands"
    entry: float = 1.0
    exit: float = 1.0
    lookback: int | None = None

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise KalcointError(f"strategy={self.strategy!r} is not one of {', '.join(STRATEGIES)}")
        if self.strategy == "bands":
            check_bands(self.entry, self.exit)
        if self.lookback is not None and (int(self.lookback) != self.lookback or self.lookback < 2):
            raise KalcointError(f"lookback={self.lookback} must be an integer >= 2 (days)")

    def moving(self, static: bool) -> bool:
        """Whether the rule trades moving statistics of the spread (linear; static bands)."""
        return self.strategy == "linear" or static

    def to_dict(self) -> dict[str, Any]:
        """JSON record (``strategy``, ``entry``, ``exit``, ``lookback``)."""
        return {
            "strategy": self.strategy,
            "entry": float(self.entry),
            "exit": float(self.exit),
            "lookback": self.lookback,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Rule:
        lookback = d.get("lookback")
        return cls(
            str(d.get("strategy", "bands")),
            float(d.get("entry", 1.0)),
            float(d.get("exit", 1.0)),
            None if lookback is None else int(lookback),
        )


@dataclass(frozen=True)
class EngineState:
    """Everything a trading day needs (see the module docstring).

    Attributes
    ----------
    version : int
        Id of the version in force.
    window_last : str or None
        Last date of its estimation window.
    next_id : int
        Id of the next estimation.
    model : StateSpaceModel or None
        Filter quantities in force (None for static).
    weights : ndarray, shape (k,), or None
        Static Johansen weights in force (None for a filter).
    b, P : ndarray, shapes (k,) and (k, k), or None
        Filter posterior after the last row.
    legs : tuple of int
        Band legs (long, short) held.
    lookback : int or None
        Moving window in force (rules on moving statistics).
    recent : ndarray
        The last ``lookback - 1`` traded spreads (fewer at the start of the data).

    Examples
    --------
    >>> import numpy as np
    >>> s = EngineState.static_state(np.array([1.0, -0.5]), version=1, window_last="2024-01-05")
    >>> EngineState.from_dict(s.to_dict()) == s
    True
    """

    version: int
    window_last: str | None
    next_id: int
    model: StateSpaceModel | None = None
    weights: np.ndarray | None = None
    b: np.ndarray | None = None
    P: np.ndarray | None = None
    legs: tuple[int, int] = (0, 0)
    lookback: int | None = None
    recent: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def static(self) -> bool:
        return self.weights is not None

    @classmethod
    def static_state(cls, weights: np.ndarray, *, version: int, window_last: str | None) -> EngineState:
        return cls(version, window_last, version + 1, weights=np.asarray(weights, dtype=np.float64))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EngineState):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def shares(self) -> np.ndarray:
        """(k,) shares of one unit now: ``w`` (static) or ``(1, -b_2, .., -b_k)`` (filter)."""
        if self.weights is not None:
            return self.weights.copy()
        assert self.b is not None
        out = -np.asarray(self.b, dtype=np.float64).copy()
        out[0] = 1.0
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON record of the state: the one serialisation (exact float64 through ``repr``)."""
        return {
            "version": self.version,
            "window_last": self.window_last,
            "next_id": self.next_id,
            "model": None if self.model is None else self.model.to_dict(),
            "weights": None if self.weights is None else [float(x) for x in self.weights],
            "b": None if self.b is None else [float(x) for x in self.b],
            "P": None if self.P is None else np.asarray(self.P, dtype=np.float64).tolist(),
            "legs": [int(self.legs[0]), int(self.legs[1])],
            "lookback": self.lookback,
            "recent": [float(x) for x in self.recent],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EngineState:
        def arr(x: Any) -> np.ndarray | None:
            return None if x is None else np.array(x, dtype=np.float64)

        return cls(
            int(d["version"]),
            d.get("window_last"),
            int(d["next_id"]),
            None if d.get("model") is None else StateSpaceModel.from_dict(d["model"]),
            arr(d.get("weights")),
            arr(d.get("b")),
            arr(d.get("P")),
            (int(d["legs"][0]), int(d["legs"][1])),
            None if d.get("lookback") is None else int(d["lookback"]),
            np.array(d.get("recent", []), dtype=np.float64),
        )


@dataclass(frozen=True)
class Steps:
    """What m steps gave, row by row.

    Attributes
    ----------
    spread, deviation, scale, units : ndarray, shape (m,)
        Traded spread, the rule's deviation and scale, units held at each close.
    shares : ndarray, shape (m, k)
        Shares of one unit.
    state : ndarray, shape (m, k) or None
        Filter posteriors (None for static).
    innovation, innovation_var : ndarray, shape (m,)
        The filter's ``e_t`` and ``Q_t`` (static: the deviation and the squared scale).
    lookback : ndarray of int, shape (m,)
        Moving window used each row (0: none).
    """

    spread: np.ndarray
    deviation: np.ndarray
    scale: np.ndarray
    units: np.ndarray
    shares: np.ndarray
    state: np.ndarray | None
    innovation: np.ndarray
    innovation_var: np.ndarray
    lookback: np.ndarray

    @property
    def m(self) -> int:
        return int(self.spread.size)

    @staticmethod
    def concat(parts: list[Steps], k: int, static: bool) -> Steps:
        if not parts:
            e = np.empty(0)
            return Steps(
                e, e, e, e, np.empty((0, k)), None if static else np.empty((0, k)), e, e, np.empty(0, np.int64)
            )
        states = [p.state for p in parts if p.state is not None]
        spread, deviation, scale, units = (
            np.concatenate([getattr(p, f) for p in parts]) for f in ("spread", "deviation", "scale", "units")
        )
        return Steps(
            spread,
            deviation,
            scale,
            units,
            np.vstack([p.shares for p in parts]),
            np.vstack(states) if len(states) == len(parts) else None,
            np.concatenate([p.innovation for p in parts]),
            np.concatenate([p.innovation_var for p in parts]),
            np.concatenate([p.lookback for p in parts]),
        )


def portfolio(p: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(n,) ``p_t . w`` row by row (a day's value does not depend on how many days follow it).

    Examples
    --------
    >>> import numpy as np
    >>> portfolio(np.array([[10.0, 4.0]]), np.array([1.0, -2.0])).tolist()
    [2.0]
    """
    return (np.asarray(p, dtype=np.float64) * np.asarray(weights)[None, :]).sum(axis=1)


def advance(state: EngineState, rows: np.ndarray, rule: Rule) -> tuple[EngineState, Steps]:
    """m steps at once (the batch form of :func:`step`; the same numbers).

    Parameters
    ----------
    state : EngineState
    rows : ndarray, shape (m, k)
        Prices, oldest first.
    rule : Rule

    Returns
    -------
    state : EngineState
        After the last row.
    steps : Steps

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices().to_numpy()
    >>> s0 = cold_state(kalman_filter(p[:250], kc.StateSpaceModel.chan(3)), Rule(), version=1, window_last=None)
    >>> s1, out = advance(s0, p[250:260], Rule())
    >>> s2, one = advance(s0, p[250:251], Rule())
    >>> bool((one.units == out.units[:1]).all()), out.units.tolist()[:3]
    (True, [0.0, -1.0, 0.0])
    """
    p = np.asarray(rows, dtype=np.float64)
    m = p.shape[0]
    if state.weights is not None:
        spread = portfolio(p, state.weights)
        shares = np.tile(state.weights, (m, 1))
        filt = None
    else:
        assert state.model is not None and state.b is not None and state.P is not None
        filt = kalman_filter(p, state.model, start=(state.b, state.P))
        spread = filt.spread
        shares = -filt.filtered_state.copy()
        shares[:, 0] = 1.0
        state = replace(state, b=filt.filtered_state[-1], P=filt.filtered_cov[-1])
    lbs = np.zeros(m, dtype=np.int64)
    if rule.moving(state.static):
        lb = state.lookback
        if lb is None:
            raise KalcointError("the rule's moving window is not set (no lookback)")
        hist = np.concatenate([state.recent, spread])
        mean, std = moving_mean_std(hist, lb)
        deviation, scale = spread - mean[-m:], std[-m:]
        lbs[:] = lb
        state = replace(state, recent=hist[max(0, hist.size - (lb - 1)) :].copy())
    else:
        assert filt is not None
        deviation, scale = filt.innovation, np.sqrt(filt.innovation_var)
    if rule.strategy == "bands":
        units, long_leg, short_leg = band_legs(deviation, scale, rule.entry, rule.exit, *state.legs)
        state = replace(state, legs=(long_leg, short_leg))
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            z = deviation / scale
        units = np.where(np.isfinite(z), -z, 0.0)
    innovation = deviation if filt is None else filt.innovation
    innovation_var = scale**2 if filt is None else filt.innovation_var
    return state, Steps(
        spread,
        deviation,
        scale,
        units,
        shares,
        None if filt is None else filt.filtered_state,
        innovation,
        innovation_var,
        lbs,
    )


def step(state: EngineState, row: np.ndarray, rule: Rule) -> tuple[EngineState, float]:
    """One trading day: the state after row ``row`` (k prices) and the units held at its close.

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices().to_numpy()
    >>> s = cold_state(kalman_filter(p[:250], kc.StateSpaceModel.chan(3)), Rule(), version=1, window_last=None)
    >>> s, units = step(s, p[250], Rule())
    >>> s, units = step(s, p[251], Rule())
    >>> units, s.legs
    (-1.0, (0, -1))
    """
    state, out = advance(state, np.asarray(row, dtype=np.float64)[None, :], rule)
    return state, float(out.units[0])


def cold_state(warm: FilterResult, rule: Rule, *, version: int, window_last: str | None) -> EngineState:
    """A filter's state after its own estimation window (run from its prior): the last posterior,
    the band legs of the rule run over the window from flat (no moving window yet)."""
    b, P = warm.last_posterior
    legs = (0, 0)
    if rule.strategy == "bands":
        _, long_leg, short_leg = band_legs(warm.innovation, np.sqrt(warm.innovation_var), rule.entry, rule.exit)
        legs = (long_leg, short_leg)
    return EngineState(version, window_last, version + 1, model=warm.model, b=b, P=P, legs=legs)


# ---------------------------------------------------------------- estimates


def static_weights(prices: np.ndarray, det_order: int = 0, k_ar_diff: int = 1) -> np.ndarray:
    """Johansen weights with the sign chosen so that one unit is long asset 1 (``w_1 > 0``).

    Examples
    --------
    >>> import kalcoint as kc
    >>> bool(static_weights(kc.demo_prices().to_numpy()[:250])[0] > 0)
    True
    """
    w = johansen(prices, det_order=det_order, k_ar_diff=k_ar_diff).weights
    return w if w[0] > 0 else -w


def static_fit(det_order: int = 0, k_ar_diff: int = 1) -> schedule.Fit:
    """The ``fit`` of the static model: the Johansen weights of the window (loglik None).

    Examples
    --------
    >>> import kalcoint as kc
    >>> est = static_fit()(kc.demo_prices().iloc[:250])
    >>> est.model is None, est.weights.shape
    (True, (3,))
    """

    def fit(window: pd.DataFrame) -> schedule.Estimate:
        return schedule.Estimate(
            None, None, weights=static_weights(window.to_numpy(dtype=np.float64), det_order, k_ar_diff)
        )

    return fit


# ---------------------------------------------------------------- the driver


@dataclass(frozen=True)
class Drive:
    """A driven run over rows ``start .. n-1`` (m rows).

    Attributes
    ----------
    steps : Steps
    version : ndarray of int, shape (m,)
        Version each row traded with.
    versions : list of kalcoint.schedule.Version
        Estimations made, in order.
    estimated_at : list of int
        Row each was made before.
    periods : list of dict
        One record per period started (the first row included): date, row, version, the
        estimate's quantities, lookback, half-life, failure or degeneracy.
    half_lives : list of float
    failures : list of str
        Estimations and lookbacks that failed (``date: reason``).
    state : EngineState
        After the last row.
    warmup : FilterResult or None
        The first version's filter over its window (filter cold start).
    models : dict
        Quantities of every version that traded a row.
    """

    steps: Steps
    version: np.ndarray
    versions: list[schedule.Version]
    estimated_at: list[int]
    periods: list[dict[str, Any]]
    half_lives: list[float]
    failures: list[str]
    state: EngineState
    warmup: FilterResult | None
    models: dict[int, Any]

    @property
    def m(self) -> int:
        return self.steps.m


def _period_lookback(
    before: np.ndarray, lookback: int | None, lb_prev: int | None, when: str, failures: list[str]
) -> int:
    if lookback is not None:
        return int(lookback)
    try:
        return lookback_from_half_life(before, f"the spread before {when}")[0]
    except KalcointError as exc:
        if lb_prev is None:
            raise
        failures.append(f"{when}: {exc}; kept lookback {lb_prev}")
        return lb_prev


class _Spreads:
    """The traded spreads of the rows before and during a run (a filter's moving windows and half-lives)."""

    def __init__(self, before: np.ndarray, start: int, n: int) -> None:
        self.values = np.empty(before.size + n - start)
        self.values[: before.size] = before
        self.base = before.size - start  # values[row + base] is the spread of frame row ``row``

    def put(self, a: int, spread: np.ndarray) -> None:
        self.values[a + self.base : a + self.base + spread.size] = spread

    def before(self, row: int, count: int) -> np.ndarray:
        return self.values[max(0, row + self.base - count) : row + self.base]


def _at_period(
    state: EngineState,
    row: int,
    p: np.ndarray,
    spreads: _Spreads | None,
    dates: pd.Index,
    rule: Rule,
    hl_window: int,
    choose: bool,
    failures: list[str],
) -> tuple[EngineState, dict[str, Any], float]:
    """Half-life of the spread before ``row`` and, if ``choose``, the moving window chosen there."""
    when = f"{dates[row]:%Y-%m-%d}"
    if state.weights is not None:
        before = portfolio(p[max(0, row - hl_window) : row], state.weights)
    else:
        assert spreads is not None
        before = spreads.before(row, hl_window)
    hl = half_life(before) if before.size > 2 else math.nan
    if choose and rule.moving(state.static):
        lb = _period_lookback(before, rule.lookback, state.lookback, when, failures)
        if state.weights is not None:
            recent = portfolio(p[max(0, row - lb + 1) : row], state.weights)
        else:
            assert spreads is not None
            recent = spreads.before(row, lb - 1)
        state = replace(state, lookback=lb, recent=recent.copy())
    return state, {"lookback": state.lookback if rule.moving(state.static) else None, "half_life": hl}, hl


def _apply(state: EngineState, version: schedule.Version, est: schedule.Estimate | None) -> EngineState:
    state = replace(state, next_id=state.next_id + 1)
    if not version.applied:
        return state
    assert est is not None
    if est.weights is not None:
        return replace(state, weights=est.weights, version=version.id, window_last=version.window_last)
    return replace(state, model=est.model, version=version.id, window_last=version.window_last)


def _cold(
    prices: pd.DataFrame, start: int, window: int, fit: schedule.Fit, rule: Rule, method: str, on_degenerate: str
) -> tuple[schedule.Version, EngineState, FilterResult | None]:
    dates = prices.index
    version, est = schedule.estimate_version(
        fit,
        prices.iloc[start - window : start],
        version_id=1,
        effective_date=schedule.day(dates[start]) if start < len(prices) else None,
        method=method,
        on_degenerate=on_degenerate,
        first=True,
    )
    assert est is not None
    if est.weights is not None:
        return version, EngineState.static_state(est.weights, version=1, window_last=version.window_last), None
    assert est.model is not None
    warm = (
        est.window_result
        if est.window_result is not None
        else kalman_filter(prices.iloc[start - window : start], est.model)
    )
    return version, cold_state(warm, rule, version=1, window_last=version.window_last), warm


def start_state(
    prices: pd.DataFrame, fit: schedule.Fit, rule: Rule, *, method: str, on_degenerate: str = "use"
) -> tuple[schedule.Version, EngineState, FilterResult | None, float]:
    """The cold start on all of ``prices`` (a model being saved): version 1, the state after the
    last row (its moving window chosen), the filter over the rows (None for static), the half-life.

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices().iloc[:250]
    >>> v, s, warm, hl = start_state(p, static_fit(), Rule("linear"), method="static")
    >>> v.id, s.static, s.lookback, s.recent.size
    (1, True, 4, 3)
    """
    n = len(prices)
    version, state, warm = _cold(prices, n, n, fit, rule, method, on_degenerate)
    ext = pd.concat([prices, prices.iloc[-1:]])  # a row after the last only to name a date
    p = ext.to_numpy(dtype=np.float64)
    spreads = None if warm is None else _Spreads(warm.spread, n, n)
    state, _, hl = _at_period(state, n, p, spreads, ext.index, rule, n, True, [])
    return version, state, warm, hl


def drive(
    prices: pd.DataFrame,
    start: int,
    state: EngineState | None,
    rule: Rule,
    *,
    retune: str | None,
    window: int | None,
    fit: schedule.Fit | None,
    method: str,
    on_degenerate: str = "use",
    spread_before: np.ndarray | None = None,
    progress: Progress | None = None,
    estimated: bool = True,
) -> Drive:
    """Trade rows ``start ..`` of ``prices``, re-estimating on the schedule (module docstring).

    Parameters
    ----------
    prices : DataFrame, shape (n, k)
        Indexed by dates; the rows before ``start`` are history (estimation windows, the period
        of row ``start - 1``, a static model's moving windows).
    start : int
        First row traded, 0 < start < n.
    state : EngineState or None
        The state after row ``start - 1``; None: a cold start on the ``window`` rows before.
    rule : Rule
    retune : {"weekly", "monthly"} or None
        The re-estimation period; None: never (keep the version and the moving window).
    window : int or None
        Estimation rows.
    fit : callable or None
        ``fit(window) -> Estimate``; None: never re-estimated (Chan's filter, a fixed model).
        A cold start of a model never re-estimated needs a fit giving its quantities.
    method : str
    on_degenerate : {"use", "keep"}
    spread_before : ndarray, optional
        A filter's traded spreads of the rows just before ``start`` (continuing a state).
    progress : callable, optional
        ``progress(done, total)`` after each estimation.
    estimated : bool
        Re-estimate at the period starts (False: Chan's filter or a fixed model, whose ``fit``
        only makes the cold start; the moving window is still chosen there).

    Returns
    -------
    Drive

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> d = drive(p, 250, None, Rule("linear"), retune="weekly", window=250, fit=static_fit(), method="static")
    >>> d.m, len(d.versions), d.steps.state is None
    (1250, 251, True)
    """
    n = len(prices)
    if not 0 < start < n:
        raise KalcointError(f"the schedule has no row to run (start {start} of {n} rows)")
    schedule.check_on_degenerate(on_degenerate)
    dates = prices.index
    p = prices.to_numpy(dtype=np.float64)
    if state is None and (window is None or fit is None):
        raise KalcointError("a cold start needs window and fit")
    if retune is not None and window is None:
        raise KalcointError("a re-estimation schedule needs window")
    candidates: list[int] = []
    if retune is not None:
        assert window is not None
        keys = schedule.period_keys(dates, retune)
        candidates = [t for t in range(start + (state is None), n) if keys[t] != keys[t - 1] and t >= window]
    estimable = estimated and fit is not None and retune is not None
    total = (len(candidates) if estimable else 0) + (state is None)
    done = 0
    versions: list[schedule.Version] = []
    estimated_at: list[int] = []
    periods: list[dict[str, Any]] = []
    half_lives: list[float] = []
    failures: list[str] = []
    warm = None
    cold = state is None
    if state is None:
        assert window is not None and fit is not None
        if start < window:
            raise KalcointError(f"window={window} needs {window} rows before the first traded row; got {start}")
        version, state, warm = _cold(prices, start, window, fit, rule, method, on_degenerate)
        versions.append(version)
        estimated_at.append(start)
        done += 1
        if progress is not None:
            progress(done, total)
        spread_before = None if warm is None else warm.spread
    spreads = None if state.static else _Spreads(np.asarray(spread_before, dtype=np.float64), start, n)
    hl_window = window if window else (0 if spread_before is None else len(spread_before))
    models: dict[int, Any] = {state.version: state.weights if state.static else state.model}
    if not candidates or candidates[0] != start:
        state, info, hl = _at_period(state, start, p, spreads, dates, rule, hl_window, cold, failures)
        periods.append(_period_record(state, start, dates, versions[-1] if versions else None, info))
        half_lives.append(hl)
    parts: list[Steps] = []
    version_of_row = np.empty(n - start, dtype=np.int64)
    a = start
    for cut in [*candidates, n]:
        if cut > a:
            version_of_row[a - start : cut - start] = state.version
            state, out = advance(state, p[a:cut], rule)
            parts.append(out)
            if spreads is not None:
                spreads.put(a, out.spread)
            a = cut
        if cut == n:
            break
        made = None
        if estimable and state.window_last != schedule.day(dates[cut - 1]):
            assert window is not None and fit is not None
            made, est = schedule.estimate_version(
                fit,
                prices.iloc[cut - window : cut],
                version_id=state.next_id,
                effective_date=schedule.day(dates[cut]),
                method=method,
                on_degenerate=on_degenerate,
                first=False,
            )
            versions.append(made)
            estimated_at.append(cut)
            state = _apply(state, made, est)
            models[state.version] = state.weights if state.static else state.model
        if estimable:
            done += 1
            if progress is not None:
                progress(done, total)
        state, info, hl = _at_period(state, cut, p, spreads, dates, rule, hl_window, True, failures)
        periods.append(_period_record(state, cut, dates, made, info))
        half_lives.append(hl)
    failed = [f"{v.effective_date}: {v.outcome[len('failed: ') :]}" for v in versions if v.outcome.startswith("failed")]
    return Drive(
        Steps.concat(parts, p.shape[1], state.static),
        version_of_row,
        versions,
        estimated_at,
        periods,
        half_lives,
        failed + failures,
        state,
        warm,
        models,
    )


def _period_record(
    state: EngineState, row: int, dates: pd.Index, made: schedule.Version | None, info: dict[str, Any]
) -> dict[str, Any]:
    record: dict[str, Any] = {"date": dates[row], "row": int(row), "version": state.version}
    if state.weights is not None:
        record["weights"] = state.weights.tolist()
    elif state.model is not None:
        record.update(alpha11=state.model.alpha11, obs_var=state.model.obs_var)
    if made is not None and made.outcome.startswith("failed"):
        record["failed"] = made.outcome[len("failed: ") :]
    if made is not None and made.degenerate:
        record["degenerate"] = "; ".join(made.reasons)
    record.update(info)
    return record


__all__ = [
    "Drive",
    "EngineState",
    "Rule",
    "Steps",
    "advance",
    "cold_state",
    "drive",
    "portfolio",
    "start_state",
    "static_fit",
    "static_weights",
    "step",
]

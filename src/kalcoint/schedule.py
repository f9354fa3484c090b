"""The walk-forward schedule: the one implementation of "retune every week (or month), trade
every day", used by ``backtest(..., retune=...)``, the replay of a saved model and the
live ``update`` / ``retune`` of a model file.

The schedule
------------
Rows are trading days (one per calendar day), oldest first. A row ``t`` *starts a period* when
its calendar week (Monday to Sunday, ``period="weekly"``) or calendar month
(``period="monthly"``) differs from that of row ``t - 1``. Before such a row, if at least
``window`` rows precede it, the filter's quantities are re-estimated on the ``window`` rows
strictly before it (rows ``t - window .. t - 1``) by a caller-supplied ``fit``. Then:

* **State carrying.** The filter continues from the posterior ``(b, P)`` of row ``t - 1``
  (computed with the previous version's quantities) and predicts row ``t`` with the new
  version's ``A``, ``Vw``, ``Ve``; the new version's prior ``(b0, P0)`` is not used.
* **Cold start.** With no carried state, the first estimation's filter is run over its own
  window from its own prior, and its last posterior is the state carried into the first
  traded row (a model saved with a retune policy is exactly this).
* **Failures.** A re-estimation that fails (a :class:`~kalcoint.errors.KalcointError` or a
  singular matrix) keeps the previous version; the attempt is recorded with the outcome
  ``"failed: <reason>"``. A failure of the first estimation is an error.
* **Degenerate fits.** ``on_degenerate="use"`` (the method as written) trades what the fit
  gives and records it as ``"applied"`` with ``degenerate=True``; ``"keep"`` keeps the previous
  version (outcome ``"degenerate: kept previous"``); a degenerate first estimation with
  ``"keep"`` is an error.
* **No double estimation.** A row that starts a period is not re-estimated when the version in
  use was estimated on a window ending on the row before it (e.g. the first traded row after a
  cold start, or the row after a manual ``retune``).

Every estimation is a :class:`Version`. Nothing on or after a row influences that row's state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .errors import KalcointError
from .filtering import FilterResult, StateSpaceModel, kalman_filter

PERIODS = ("weekly", "monthly")
"""Re-estimation periods: calendar weeks (Monday-Sunday) or calendar months."""
POLICIES = ("never", *PERIODS)
"""Retune policies of a saved model (``never``: keep the first version for ever)."""
ON_DEGENERATE = ("use", "keep")
MIN_WINDOW = 20
"""Smallest estimation window, in rows (trading days)."""
OUTCOME_APPLIED = "applied"
OUTCOME_KEPT = "degenerate: kept previous"

_FREQ = {"weekly": "W-SUN", "monthly": "M"}


# ---------------------------------------------------------------- checks and calendar


def check_window(window: Any) -> int:
    """``window`` as an int, refused unless an integer >= :data:`MIN_WINDOW` (trading days).

    Parameters
    ----------
    window : int
        Estimation rows.

    Returns
    -------
    int

    Examples
    --------
    >>> check_window(250)
    250
    >>> check_window(5)
    Traceback (most recent call last):
    ...
    kalcoint.errors.KalcointError: window=5 must be an integer >= 20 (trading days)
    """
    if (
        isinstance(window, bool)
        or not isinstance(window, (int, np.integer, float))
        or int(window) != window
        or window < MIN_WINDOW
    ):
        raise KalcointError(f"window={window} must be an integer >= {MIN_WINDOW} (trading days)")
    return int(window)


def check_on_degenerate(on_degenerate: str) -> str:
    """``on_degenerate`` if it is one of :data:`ON_DEGENERATE`, else a KalcointError.

    Parameters
    ----------
    on_degenerate : {"use", "keep"}

    Returns
    -------
    str

    Examples
    --------
    >>> check_on_degenerate("keep")
    'keep'
    """
    if on_degenerate not in ON_DEGENERATE:
        raise KalcointError(f"on_degenerate={on_degenerate!r} is not one of {', '.join(ON_DEGENERATE)}")
    return on_degenerate


def check_policy(retune: str, window: Any, on_degenerate: str = "use") -> int | None:
    """Refuse a bad retune policy.

    Parameters
    ----------
    retune : {"never", "weekly", "monthly"}
    window : int or None
        Estimation rows (required unless ``never``).
    on_degenerate : {"use", "keep"}

    Returns
    -------
    int or None
        The window (None for ``never``).

    Examples
    --------
    >>> check_policy("weekly", 250), check_policy("never", None)
    (250, None)
    """
    if retune not in POLICIES:
        raise KalcointError(f"retune={retune!r} is not one of {', '.join(POLICIES)}")
    check_on_degenerate(on_degenerate)
    if retune == "never":
        if window is not None:
            raise KalcointError("window=N applies with retune='weekly' or retune='monthly' only")
        return None
    if window is None:
        raise KalcointError(f"retune={retune!r} needs window=N (trading days of estimation), e.g. window=250")
    return check_window(window)


def check_period(period: str) -> str:
    """``period`` if it is one of :data:`PERIODS`, else a KalcointError.

    Parameters
    ----------
    period : {"weekly", "monthly"}

    Returns
    -------
    str

    Examples
    --------
    >>> check_period("monthly")
    'monthly'
    """
    if period not in PERIODS:
        raise KalcointError(f"retune={period!r} is not one of {', '.join(PERIODS)}")
    return period


def period_keys(index: pd.Index, period: str) -> np.ndarray:
    """Integer id of each row's calendar week or month.

    Parameters
    ----------
    index : Index of dates, shape (n,)
    period : {"weekly", "monthly"}

    Returns
    -------
    ndarray of int, shape (n,)

    Examples
    --------
    >>> import pandas as pd
    >>> keys = period_keys(pd.bdate_range("2024-01-01", periods=7), "weekly")
    >>> bool((keys[:5] == keys[0]).all()), bool(keys[5] == keys[0] + 1)
    (True, True)
    """
    if not isinstance(index, pd.DatetimeIndex):
        raise KalcointError("a retune schedule needs prices indexed by dates (a DatetimeIndex)")
    return np.asarray(index.to_period(_FREQ[check_period(period)]).asi8)


def period_starts(index: pd.Index, period: str, window: int) -> np.ndarray:
    """Row numbers of the first trading day of each calendar week/month with at least ``window``
    rows before it.

    Parameters
    ----------
    index : Index of dates, shape (n,)
    period : {"weekly", "monthly"}
    window : int
        Rows needed before a start.

    Returns
    -------
    ndarray of int

    Examples
    --------
    >>> import pandas as pd
    >>> period_starts(pd.bdate_range("2024-01-01", periods=15), "weekly", 3).tolist()
    [5, 10]
    """
    keys = period_keys(index, period)
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    return starts[starts >= window]


def next_period(last_date: pd.Timestamp | str, period: str) -> str:
    """The period after ``last_date``'s, whose first row triggers the next re-estimation.

    Parameters
    ----------
    last_date : Timestamp or str
    period : {"weekly", "monthly"}

    Returns
    -------
    str
        ``"week of YYYY-MM-DD"`` (its Monday) or ``"month YYYY-MM"``.

    Examples
    --------
    >>> next_period("2024-01-03", "weekly"), next_period("2024-01-31", "monthly")
    ('week of 2024-01-08', 'month 2024-02')
    """
    p = pd.Timestamp(last_date).to_period(_FREQ[check_period(period)]) + 1
    if period == "weekly":
        return f"week of {p.start_time:%Y-%m-%d}"
    return f"month {p.start_time:%Y-%m}"


def day(stamp: pd.Timestamp) -> str:
    """ISO date of a row (with the time when it is not midnight).

    Parameters
    ----------
    stamp : Timestamp

    Returns
    -------
    str

    Examples
    --------
    >>> import pandas as pd
    >>> day(pd.Timestamp("2024-01-02")), day(pd.Timestamp("2024-01-02 15:30"))
    ('2024-01-02', '2024-01-02T15:30:00')
    """
    stamp = pd.Timestamp(stamp)
    return stamp.strftime("%Y-%m-%d") if stamp == stamp.normalize() else stamp.isoformat()


# ---------------------------------------------------------------- estimates and versions


@dataclass(frozen=True)
class Estimate:
    """What a ``fit`` returns for one estimation window of m rows.

    Attributes
    ----------
    model : StateSpaceModel or None
        The filter's quantities (None for the static model).
    loglik : float or None
        Log-likelihood of the innovations over the window (model run from its prior; None for
        the static model).
    degenerate, reasons : bool, tuple of str
        The tuning diagnosis.
    iterations : int, optional
        Passes or iterations run.
    window_result : FilterResult, optional
        The model's filter over the window from its prior (computed when missing).
    weights : ndarray, shape (k,), optional
        The static model's Johansen weights (its estimate).

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> chan = fixed_fit(kc.StateSpaceModel.chan(3))
    >>> est = chan(p.iloc[:250])
    >>> est.degenerate, est.window_result.nobs
    (False, 250)
    """

    model: StateSpaceModel | None
    loglik: float | None
    degenerate: bool = False
    reasons: tuple[str, ...] = ()
    iterations: int | None = None
    window_result: FilterResult | None = field(default=None, repr=False)
    weights: np.ndarray | None = field(default=None, repr=False)


Fit = Callable[[pd.DataFrame], Estimate]
"""``fit(window)``: estimate on an (m, k) DataFrame of the rows before a period start."""


def estimate_from_tuned(tuned: Any) -> Estimate:
    """An :class:`Estimate` from a :class:`kalcoint.tuning.TunedModel`.

    Parameters
    ----------
    tuned : TunedModel

    Returns
    -------
    Estimate

    Examples
    --------
    >>> import kalcoint as kc
    >>> est = estimate_from_tuned(kc.tune(kc.demo_prices().iloc[:250], method="mle"))
    >>> round(est.loglik, 2), round(est.model.alpha11, 4)
    (-43.21, 0.9143)
    """
    return Estimate(
        tuned.model,
        float(tuned.loglik),
        bool(tuned.degenerate),
        tuple(tuned.degenerate_reasons),
        int(tuned.iterations),
        tuned.result,
    )


def tuning_fit(
    method: str, iterations: int | None = None, tol: float | None = None, options: Mapping[str, Any] | None = None
) -> Fit:
    """The ``fit`` of a tuning method (:func:`kalcoint.tuning.tune` with the diagnosis on).

    Parameters
    ----------
    method : str
        A tuning method (``seed``, ``mle``, ``em``, ``als``).
    iterations, tol, options :
        What each fit passes to :func:`kalcoint.tuning.tune`.

    Returns
    -------
    callable
        ``fit(window) -> Estimate``.

    Examples
    --------
    >>> import kalcoint as kc
    >>> round(tuning_fit("mle")(kc.demo_prices().iloc[:250]).loglik, 2)
    -43.21
    """
    kwargs = dict(options or {})
    if method == "mle":
        kwargs.setdefault("std_errors", False)  # the estimate does not depend on them; the Hessian is costly
    if iterations is not None:
        kwargs["iterations"] = int(iterations)
    if tol is not None:
        kwargs["tol"] = tol

    def fit(window: pd.DataFrame) -> Estimate:
        from .tuning import tune

        try:
            tuned = tune(window, method=method, diagnose=True, **kwargs)
        except ModuleNotFoundError as exc:
            raise KalcointError(f"method={method!r}: this tuning method is not available ({exc})") from exc
        return estimate_from_tuned(tuned)

    return fit


def fixed_fit(model: StateSpaceModel) -> Fit:
    """A ``fit`` that always gives ``model`` (Chan's filter, a saved model's quantities).

    Parameters
    ----------
    model : StateSpaceModel

    Returns
    -------
    callable
        ``fit(window) -> Estimate``.

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> chan = fixed_fit(kc.StateSpaceModel.chan(3))
    >>> chan(p.iloc[:250]).model.obs_var
    0.001
    """

    def fit(window: pd.DataFrame) -> Estimate:
        res = kalman_filter(window, model)
        return Estimate(model, res.loglik, window_result=res)

    return fit


def window_key(window: pd.DataFrame) -> tuple[str, str, int]:
    """The key of an estimation window: its first and last dates and its number of rows.

    Parameters
    ----------
    window : DataFrame, shape (m, k)

    Returns
    -------
    tuple of (str, str, int)

    Examples
    --------
    >>> import kalcoint as kc
    >>> window_key(kc.demo_prices().iloc[:250])
    ('2015-01-02', '2015-12-17', 250)
    """
    return day(window.index[0]), day(window.index[-1]), len(window)


Estimated = dict[tuple[str, str, int], Estimate | Exception]
"""Estimates made beforehand, by :func:`window_key`: an :class:`Estimate`, or the error the fit
raised (a :class:`~kalcoint.errors.KalcointError` or a singular matrix)."""


def estimate_windows(prices: pd.DataFrame, fit: Fit, rows: Any, window: int) -> Estimated:
    """``fit`` on the ``window`` rows before each row of ``rows``, each independently of the others
    (so that they can be made in parallel, e.g. by a pool of processes, before :func:`run`).

    Parameters
    ----------
    prices : DataFrame, shape (n, k)
        Indexed by dates.
    fit : callable
        ``fit(window) -> Estimate``; it must depend on the window only.
    rows : sequence of int
        Rows ``t`` (``window <= t <= n``); the estimation window is ``t - window .. t - 1``.
    window : int
        Estimation rows.

    Returns
    -------
    dict
        By :func:`window_key`: the estimate, or the error (KalcointError or LinAlgError) it raised.

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> got = estimate_windows(p, fixed_fit(kc.StateSpaceModel.chan(3)), [250, 255], 250)
    >>> sorted(got)[0], got[('2015-01-02', '2015-12-17', 250)].model.obs_var
    (('2015-01-02', '2015-12-17', 250), 0.001)
    """
    out: Estimated = {}
    for t in rows:
        piece = prices.iloc[int(t) - window : int(t)]
        try:
            out[window_key(piece)] = fit(piece)
        except (KalcointError, np.linalg.LinAlgError) as exc:
            out[window_key(piece)] = exc
    return out


def with_estimates(fit: Fit, estimates: Estimated | None) -> Fit:
    """``fit``, except that a window found in ``estimates`` (by :func:`window_key`) gives the
    estimate made beforehand, or raises the error it raised.

    The estimates must have been made by the same ``fit`` on the same prices
    (:func:`estimate_windows`): the schedule then runs exactly as if it had made them itself.

    Parameters
    ----------
    fit : callable
    estimates : dict or None
        As :func:`estimate_windows` returns (None: ``fit`` itself).

    Returns
    -------
    callable

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> chan = fixed_fit(kc.StateSpaceModel.chan(3))
    >>> made = estimate_windows(p, chan, [250], 250)
    >>> with_estimates(chan, made)(p.iloc[:250]) is made[window_key(p.iloc[:250])]
    True
    """
    if not estimates:
        return fit

    def lookup(window: pd.DataFrame) -> Estimate:
        got = estimates.get(window_key(window))
        if got is None:
            return fit(window)
        if isinstance(got, Exception):
            raise got
        return got

    return lookup


@dataclass(frozen=True)
class Version:
    """One estimation of the schedule.

    Attributes
    ----------
    id : int
        1, 2, ... in order.
    effective_date : str or None
        First row it trades (None until known, e.g. after a manual retune).
    window_first, window_last : str
        Dates of its estimation window.
    method : str
    model : StateSpaceModel or None
        The tuned quantities (None when the estimation failed).
    loglik : float or None
        Over the window.
    degenerate, reasons : bool, tuple of str
    outcome : str
        ``"applied"``, ``"failed: <reason>"`` or ``"degenerate: kept previous"``.
    weights : tuple of float or None
        The static model's Johansen weights (None for a filter).

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> chan = fixed_fit(kc.StateSpaceModel.chan(3))
    >>> v, _ = estimate_version(chan, p.iloc[:250], version_id=1, effective_date=None, method="chan",
    ...                         on_degenerate="use", first=True)
    >>> v.id, v.window_first, v.window_last, v.outcome
    (1, '2015-01-02', '2015-12-17', 'applied')
    """

    id: int
    effective_date: str | None
    window_first: str
    window_last: str
    method: str
    model: StateSpaceModel | None
    loglik: float | None
    degenerate: bool
    reasons: tuple[str, ...]
    outcome: str
    weights: tuple[float, ...] | None = None

    @property
    def applied(self) -> bool:
        return self.outcome == OUTCOME_APPLIED

    def to_dict(self) -> dict[str, Any]:
        """JSON record: the fields above, the tuned quantities flattened (``alpha11``, ``obs_var``,
        ``state_var``, ``initial_state``, ``initial_cov``; null when failed or static), and for the
        static model its ``weights``."""
        quantities = (
            self.model.to_dict()
            if self.model is not None
            else dict.fromkeys(("alpha11", "obs_var", "state_var", "initial_state", "initial_cov"))
        )
        return {
            "id": self.id,
            "effective_date": self.effective_date,
            "window_first": self.window_first,
            "window_last": self.window_last,
            "method": self.method,
            **quantities,
            "loglik": self.loglik,
            "degenerate": self.degenerate,
            "reasons": list(self.reasons),
            "outcome": self.outcome,
            **({} if self.weights is None else {"weights": list(self.weights)}),
        }


def estimate_version(
    fit: Fit,
    window: pd.DataFrame,
    *,
    version_id: int,
    effective_date: str | None,
    method: str,
    on_degenerate: str,
    first: bool,
) -> tuple[Version, Estimate | None]:
    """Run ``fit`` on ``window`` and record the outcome as a :class:`Version` (see the module doc).

    Parameters
    ----------
    fit : callable
        ``fit(window) -> Estimate``.
    window : DataFrame, shape (m, k)
        The estimation rows.
    version_id : int
    effective_date : str or None
    method : str
    on_degenerate : {"use", "keep"}
    first : bool
        There is no previous version to keep, so a failure (or a degenerate fit with ``keep``)
        raises instead.

    Returns
    -------
    version : Version
    estimate : Estimate or None
        None when it failed.

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> chan = fixed_fit(kc.StateSpaceModel.chan(3))
    >>> v, est = estimate_version(chan, p.iloc[:250], version_id=1, effective_date=None, method="chan",
    ...                           on_degenerate="use", first=True)
    >>> v.outcome, est.window_result.nobs
    ('applied', 250)
    """
    span = f"window {day(window.index[0])} to {day(window.index[-1])}"
    base: dict[str, Any] = {
        "id": version_id,
        "effective_date": effective_date,
        "window_first": day(window.index[0]),
        "window_last": day(window.index[-1]),
        "method": method,
    }
    try:
        est = fit(window)
    except (KalcointError, np.linalg.LinAlgError) as exc:
        if first:
            raise KalcointError(f"the first estimation ({span}) failed: {exc}") from exc
        return Version(
            **base,
            model=None,
            loglik=None,
            degenerate=False,
            reasons=(),
            outcome=f"failed: {' '.join(str(exc).split())}",
        ), None
    kept = est.degenerate and on_degenerate == "keep"
    if kept and first:
        raise KalcointError(
            f"the first estimation ({span}) is degenerate ({'; '.join(est.reasons)}) and "
            "on_degenerate='keep' has no previous version to keep; use on_degenerate='use' "
            "or another window"
        )
    version = Version(
        **base,
        model=est.model,
        loglik=None if est.loglik is None else float(est.loglik),
        degenerate=bool(est.degenerate),
        reasons=tuple(est.reasons),
        outcome=OUTCOME_KEPT if kept else OUTCOME_APPLIED,
        weights=None if est.weights is None else tuple(float(x) for x in est.weights),
    )
    return version, est


# ---------------------------------------------------------------- running the schedule


@dataclass(frozen=True)
class Carry:
    """The filter between two rows.

    Attributes
    ----------
    model : StateSpaceModel
        The quantities in use.
    version : int
        Its version id.
    window_last : str or None
        Last date of its estimation window (None if it was never estimated on a window).
    b : ndarray, shape (k,)
        Posterior state of the last row.
    P : ndarray, shape (k, k)
        Its covariance.
    next_id : int
        The id the next version will get.

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> chan = fixed_fit(kc.StateSpaceModel.chan(3))
    >>> _, carry, _ = cold_start(chan, p.iloc[:250], effective_date=None, method="chan", on_degenerate="use")
    >>> carry.version, carry.next_id, carry.b.round(4).tolist()
    (1, 2, [0.0249, 0.7092, 0.5586])
    """

    model: StateSpaceModel
    version: int
    window_last: str | None
    b: np.ndarray
    P: np.ndarray
    next_id: int


@dataclass(frozen=True)
class Run:
    """The schedule over rows ``start .. n-1`` of a frame (m = n - start rows).

    Attributes
    ----------
    filtered_state : ndarray, shape (m, k)
    innovation, innovation_var, spread : ndarray, shape (m,)
    version : ndarray, shape (m,)
        Id of the version each row traded with.
    versions : list of Version
        The estimations made, in order.
    estimated_at : list of int
        Row (of the frame) each was made before.
    carry : Carry
        The filter after the last row.
    warmup : FilterResult or None
        The first version's filter over its own window (cold start only).
    models : dict of int to StateSpaceModel
        The quantities of every version that traded a row, by id.

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> chan = fixed_fit(kc.StateSpaceModel.chan(3))
    >>> r = run(p, 250, None, period="weekly", window=250, fit=chan, method="chan")
    >>> r.filtered_state.shape, r.estimated_at[:3]
    ((1250, 3), [250, 251, 256])
    """

    filtered_state: np.ndarray
    innovation: np.ndarray
    innovation_var: np.ndarray
    spread: np.ndarray
    version: np.ndarray
    versions: list[Version]
    estimated_at: list[int]
    carry: Carry
    warmup: FilterResult | None
    models: dict[int, StateSpaceModel] = field(default_factory=dict)

    @property
    def m(self) -> int:
        return int(self.innovation.size)


def cold_start(
    fit: Fit, window: pd.DataFrame, *, effective_date: str | None, method: str, on_degenerate: str
) -> tuple[Version, Carry, FilterResult]:
    """Version 1 on ``window``, its filter over the window from its prior, and the carried state.

    Parameters
    ----------
    fit : callable
        ``fit(window) -> Estimate``.
    window : DataFrame, shape (m, k)
    effective_date : str or None
    method : str
    on_degenerate : {"use", "keep"}

    Returns
    -------
    version : Version
    carry : Carry
    warmup : FilterResult

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> chan = fixed_fit(kc.StateSpaceModel.chan(3))
    >>> version, carry, warm = cold_start(chan, p.iloc[:250], effective_date=None, method="chan",
    ...                                   on_degenerate="use")
    >>> version.id, warm.nobs
    (1, 250)
    """
    version, est = estimate_version(
        fit, window, version_id=1, effective_date=effective_date, method=method, on_degenerate=on_degenerate, first=True
    )
    assert est is not None and est.model is not None
    warm = est.window_result if est.window_result is not None else kalman_filter(window, est.model)
    b, P = warm.last_posterior
    return version, Carry(est.model, 1, version.window_last, b, P, 2), warm


def run(
    prices: pd.DataFrame,
    start: int,
    carry: Carry | None,
    *,
    period: str | None,
    window: int | None,
    fit: Fit | None,
    method: str,
    on_degenerate: str = "use",
    progress: Callable[[int, int], None] | None = None,
) -> Run:
    """Run the schedule over rows ``start ..`` of ``prices`` (a filter's states only: the engine's
    driver, :func:`kalcoint.engine.drive`, with the rule left out).

        Parameters
        ----------
        prices : DataFrame, shape (n, k)
            Indexed by dates; the rows before ``start`` are history, used for estimation windows and
            the period of row ``start - 1``.
        start : int
            First row run, 0 < start < n.
        carry : Carry or None
            The filter after row ``start - 1``; None for a cold start (version 1 estimated on the
            ``window`` rows before ``start``).
        period : {"weekly", "monthly"} or None
            None: never re-estimate.
        window : int or None
            Estimation rows.
        fit : callable or None
            ``fit(window) -> Estimate``.
        method : str
        on_degenerate : {"use", "keep"}
        progress : callable, optional
            ``progress(done, total)`` after each estimation.

        Returns
        -------
        Run

        Examples
        --------
        >>> import kalcoint as kc
        >>> p = kc.demo_prices()
        >>> chan = fixed_fit(kc.StateSpaceModel.chan(3))
        >>> r = run(p, 250, None, period="weekly", window=250, fit=chan, method="chan")
        >>> len(r.versions), r.version[:3].tolist()
        (251, [1, 2, 2])
    """
    from .engine import EngineState, Rule, drive

    if (period is not None or carry is None) and (window is None or fit is None):
        raise KalcointError("a re-estimation schedule needs window and fit")
    state = (
        None
        if carry is None
        else EngineState(carry.version, carry.window_last, carry.next_id, model=carry.model, b=carry.b, P=carry.P)
    )
    d = drive(
        prices,
        start,
        state,
        Rule("bands"),
        retune=period,
        window=window,
        fit=fit,
        method=method,
        on_degenerate=on_degenerate,
        spread_before=None if carry is None else np.empty(0),
        progress=progress,
    )
    out, after = d.steps, d.state
    assert out.state is not None and after.model is not None and after.b is not None and after.P is not None
    return Run(
        filtered_state=out.state,
        innovation=out.innovation,
        innovation_var=out.innovation_var,
        spread=out.spread,
        version=d.version,
        versions=d.versions,
        estimated_at=d.estimated_at,
        carry=Carry(after.model, after.version, after.window_last, after.b, after.P, after.next_id),
        warmup=d.warmup,
        models=dict(d.models),
    )


__all__ = [
    "MIN_WINDOW",
    "ON_DEGENERATE",
    "PERIODS",
    "POLICIES",
    "Carry",
    "Estimate",
    "Fit",
    "Run",
    "Version",
    "check_on_degenerate",
    "check_period",
    "check_policy",
    "check_window",
    "cold_start",
    "estimate_from_tuned",
    "estimate_version",
    "estimate_windows",
    "fixed_fit",
    "next_period",
    "period_keys",
    "period_starts",
    "run",
    "tuning_fit",
    "window_key",
    "with_estimates",
]

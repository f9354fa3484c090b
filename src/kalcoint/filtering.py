"""The Kalman filter of the method (docs/method.md §3) and its fixed-interval (RTS) smoother.

Model (docs/method.md §1), for k assets with prices ``p`` of shape (n, k):

    y_t = p_{1,t}                      observation (price units of asset 1)
    x_t = (1, p_{2,t}, ..., p_{k,t})   observation row
    y_t = x_t . b_t + eps_t,           eps_t ~ N(0, obs_var)
    b_t = A b_{t-1} + w_{t-1},         w ~ N(0, diag(state_var)),  A = diag(alpha11, 1, ..., 1)

``(initial_state, diag(initial_cov))`` is the prior of the state at the first
observation: there is no prediction step before t = 1.

One compiled recursion (:func:`filter_loop`, numba, float64) serves every
caller: the public :func:`kalman_filter`, the tuning passes, the backtests and
the live updates. Setting ``NUMBA_DISABLE_JIT=1`` runs the same code as plain
Python.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._checks import CHAN_DELTA, CHAN_OBS_VAR, check_magnitude, check_positive
from .errors import ComputationError, KalcointError
from ._kernels import filter_loop, smoother_loop


@dataclass(frozen=True)
class StateSpaceModel:
    """The quantities of one filter pass (docs/method.md §1), all float64.

    Attributes
    ----------
    alpha11 : first diagonal entry of the transition ``A = diag(alpha11, 1, ..., 1)``.
    obs_var : measurement noise variance ``Ve`` (price units of asset 1, squared).
    state_var : (k,) diagonal of the state noise covariance ``Vw``.
    initial_state : (k,) prior mean ``b0`` of the state at the first observation.
    initial_cov : (k,) diagonal of the prior covariance ``P0``.

    Examples
    --------
    >>> m = StateSpaceModel(0.95, 0.02, [0.05, 1e-6], [0.0, 0.8], [1.0, 0.1])
    >>> m.k, m.transition.tolist()
    (2, [0.95, 1.0])
    """

    alpha11: float
    obs_var: float
    state_var: np.ndarray
    initial_state: np.ndarray
    initial_cov: np.ndarray

    def __post_init__(self) -> None:
        for name in ("state_var", "initial_state", "initial_cov"):
            value = np.array(getattr(self, name), dtype=np.float64).reshape(-1)
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "alpha11", float(self.alpha11))
        object.__setattr__(self, "obs_var", float(self.obs_var))
        k = self.state_var.size
        if k < 2 or self.initial_state.size != k or self.initial_cov.size != k:
            raise KalcointError(
                f"state-space model needs k >= 2 and state_var, initial_state, initial_cov of equal length; "
                f"got {self.state_var.size}, {self.initial_state.size}, {self.initial_cov.size}"
            )
        values = np.concatenate([[self.alpha11, self.obs_var], self.state_var, self.initial_state, self.initial_cov])
        if not np.all(np.isfinite(values)):
            raise ComputationError("state-space model has non-finite quantities")
        if self.obs_var < 0 or np.any(self.state_var < 0) or np.any(self.initial_cov < 0):
            raise KalcointError("obs_var, state_var and initial_cov must be >= 0 (they are variances)")

    @property
    def k(self) -> int:
        return int(self.state_var.size)

    @property
    def transition(self) -> np.ndarray:
        """(k,) diagonal of ``A``."""
        a = np.ones(self.k)
        a[0] = self.alpha11
        return a

    @classmethod
    def chan(
        cls, k: int, delta: float = CHAN_DELTA, state_var: float | None = None, obs_var: float = CHAN_OBS_VAR
    ) -> StateSpaceModel:
        """Chan's filter (docs/method.md §8): ``A = I``, ``Vw = delta/(1-delta) I`` (or ``state_var * I``),
        ``Ve = obs_var``, ``b0 = 0``, ``P0 = 0``.

        Examples
        --------
        >>> m = StateSpaceModel.chan(2)
        >>> m.alpha11, m.obs_var, round(float(m.state_var[0]), 8)
        (1.0, 0.001, 0.00010001)
        """
        if state_var is None:
            if not (isinstance(delta, (int, float)) and 0.0 < delta < 1.0):
                raise KalcointError(f"delta {delta} must be in (0, 1); Chan uses {CHAN_DELTA:g}", params="delta")
            state_var = delta / (1.0 - delta)
        state_var = check_positive(state_var, "state_var", allow_zero=True)
        obs_var = check_positive(obs_var, "obs_var", hint=f"Chan uses {CHAN_OBS_VAR:g}")
        return cls(1.0, obs_var, np.full(k, state_var), np.zeros(k), np.zeros(k))

    def to_dict(self) -> dict:
        return {
            "alpha11": self.alpha11,
            "obs_var": self.obs_var,
            "state_var": self.state_var.tolist(),
            "initial_state": self.initial_state.tolist(),
            "initial_cov": self.initial_cov.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> StateSpaceModel:
        return cls(d["alpha11"], d["obs_var"], d["state_var"], d["initial_state"], d["initial_cov"])


def observation_arrays(prices: pd.DataFrame | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split an (n, k) price panel into ``y`` (n,) and the observation rows ``X`` (n, k) = (1, p_2..p_k).

    Examples
    --------
    >>> import numpy as np
    >>> y, X = observation_arrays(np.array([[10.0, 5.0], [11.0, 5.5]]))
    >>> y.tolist(), X.tolist()
    ([10.0, 11.0], [[1.0, 5.0], [1.0, 5.5]])
    """
    p = np.ascontiguousarray(np.asarray(prices, dtype=np.float64))
    if p.ndim != 2 or p.shape[1] < 2:
        raise KalcointError(f"prices must be an (n, k) panel with k >= 2, got shape {p.shape}")
    X = p.copy()
    X[:, 0] = 1.0
    return np.ascontiguousarray(p[:, 0]), X


@dataclass(frozen=True)
class FilterResult:
    """Output of one filter pass over n observations of k assets.

    predicted_state, filtered_state : (n, k) prior ``b_{t|t-1}`` and posterior ``b_{t|t}``.
    predicted_cov, filtered_cov : (n, k, k).
    innovation : (n,) ``e_t`` (price units of asset 1); innovation_var : (n,) ``Q_t``.
    loglik : Gaussian log-likelihood of the innovations.
    y, X : the observations used; index : dates (or None).

    Examples
    --------
    >>> import kalcoint as kc
    >>> res = kc.kalman_filter(kc.demo_prices(), kc.StateSpaceModel.chan(3))
    >>> res.nobs, list(res.hedge_ratios.columns)
    (1500, ['ETFB', 'ETFC'])
    >>> res.to_frame().index[0]
    Timestamp('2015-01-02 00:00:00')
    """

    model: StateSpaceModel
    predicted_state: np.ndarray
    predicted_cov: np.ndarray
    filtered_state: np.ndarray
    filtered_cov: np.ndarray
    innovation: np.ndarray
    innovation_var: np.ndarray
    loglik: float
    y: np.ndarray = field(repr=False)
    X: np.ndarray = field(repr=False)
    index: pd.Index | None = field(default=None, repr=False)
    assets: list[str] | None = None

    @property
    def nobs(self) -> int:
        """Number of observations n."""
        return int(self.y.size)

    @property
    def n(self) -> int:
        """Deprecated alias of :attr:`nobs`."""
        return self.nobs

    def _asset_names(self) -> list[str]:
        return list(self.assets) if self.assets else [f"x{i + 1}" for i in range(self.filtered_state.shape[1])]

    def _frame_index(self) -> pd.Index:
        if self.index is not None:
            return (
                pd.DatetimeIndex(self.index, name="date")
                if isinstance(self.index, pd.DatetimeIndex)
                else pd.Index(self.index, name="date")
            )
        return pd.RangeIndex(1, self.nobs + 1, name="t")

    @property
    def hedge_ratios(self) -> pd.DataFrame:
        """(n, k-1) posterior hedge ratios ``b_{2..k,t|t}``: columns the hedge tickers, index the dates."""
        return pd.DataFrame(self.filtered_state[:, 1:], index=self._frame_index(), columns=self._asset_names()[1:])

    @property
    def residual(self) -> np.ndarray:
        """(n,) posterior residual ``eps_t = y_t - x_t . b_{t|t}``."""
        return self.y - np.einsum("ij,ij->i", self.X, self.filtered_state)

    @property
    def spread(self) -> np.ndarray:
        """(n,) dynamic portfolio ``s_t = p_1 - sum_{j>=2} b_{j,t|t} p_j`` (= b_{1,t|t} + eps_t)."""
        return self.y - np.einsum("ij,ij->i", self.X[:, 1:], self.filtered_state[:, 1:])

    @property
    def last_posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """``(b_{n|n} (k,), P_{n|n} (k, k))``: pass it as ``kalman_filter(..., start=...)`` to
        continue the filter over the rows that follow."""
        return self.filtered_state[-1], self.filtered_cov[-1]

    @property
    def standardized_innovation(self) -> np.ndarray:
        return self.innovation / np.sqrt(self.innovation_var)

    def extend(self, new_prices: pd.DataFrame | np.ndarray, model: StateSpaceModel | None = None) -> FilterResult:
        """The filter continued over the rows that follow, from this result's last posterior
        ``(b, P)`` (statsmodels' ``MLEResults.extend``): a result for the new rows only.

        Parameters
        ----------
        new_prices : DataFrame or ndarray, shape (m, k)
            The rows after the last one filtered.
        model : StateSpaceModel, optional
            The quantities to continue with (default: this result's).

        Returns
        -------
        FilterResult

        Examples
        --------
        >>> import kalcoint as kc
        >>> p = kc.demo_prices()
        >>> whole = kalman_filter(p, StateSpaceModel.chan(3))
        >>> more = kalman_filter(p.iloc[:1000], StateSpaceModel.chan(3)).extend(p.iloc[1000:])
        >>> more.nobs, bool(abs(more.filtered_state - whole.filtered_state[1000:]).max() < 1e-12)
        (500, True)
        """
        return kalman_filter(new_prices, self.model if model is None else model, start=self.last_posterior)

    def append(self, new_prices: pd.DataFrame | np.ndarray) -> FilterResult:
        """This result and its continuation over ``new_prices`` as one result over all the rows
        (statsmodels' ``MLEResults.append``; the log-likelihood is the sum of both).

        Examples
        --------
        >>> import kalcoint as kc
        >>> p = kc.demo_prices()
        >>> kalman_filter(p.iloc[:1000], StateSpaceModel.chan(3)).append(p.iloc[1000:]).nobs
        1500
        """
        more = self.extend(new_prices)
        index = None
        if self.index is not None and more.index is not None:
            index = self.index.append(more.index)

        def both(name: str) -> np.ndarray:
            return np.concatenate([getattr(self, name), getattr(more, name)])

        return FilterResult(
            self.model,
            both("predicted_state"),
            both("predicted_cov"),
            both("filtered_state"),
            both("filtered_cov"),
            both("innovation"),
            both("innovation_var"),
            self.loglik + more.loglik,
            np.concatenate([self.y, more.y]),
            np.concatenate([self.X, more.X]),
            index,
            self.assets,
        )

    def to_frame(self) -> pd.DataFrame:
        """Columns ``beta_const, beta_<TICKER>..., innovation, innovation_var, spread``, indexed by
        the dates (a ``DatetimeIndex`` named ``date``; ``t`` = 1..n without dates). The CSV
        writer of ``kalcoint filter`` turns the index into a ``date`` column of YYYY-MM-DD text."""
        assets = self._asset_names()
        data: dict[str, object] = {}
        data["beta_const"] = self.filtered_state[:, 0]
        for j, name in enumerate(assets[1:], start=1):
            data[f"beta_{name}"] = self.filtered_state[:, j]
        data["innovation"] = self.innovation
        data["innovation_var"] = self.innovation_var
        data["spread"] = self.spread
        return pd.DataFrame(data, index=self._frame_index())


def _as_model_arrays(model: StateSpaceModel) -> tuple[np.ndarray, np.ndarray]:
    return np.ascontiguousarray(model.transition), np.ascontiguousarray(model.state_var)


def kalman_filter(
    prices: pd.DataFrame | np.ndarray,
    model: StateSpaceModel,
    *,
    start: tuple[np.ndarray, np.ndarray] | None = None,
) -> FilterResult:
    """Run the filter of docs/method.md §3 over an (n, k) price panel (first column = dependent asset).

    ``start=(b, P)``: continue from a posterior state ``b`` (k,) and covariance ``P`` (k, k)
    of the day before the first row (a prediction step is taken first), instead of the
    model's prior ``(initial_state, diag(initial_cov))``.

    Examples
    --------
    >>> import kalcoint as kc
    >>> res = kalman_filter(kc.demo_prices(), StateSpaceModel.chan(3))
    >>> res.nobs, res.filtered_state.shape
    (1500, (1500, 3))
    """
    y, X = observation_arrays(prices)
    n, k = X.shape
    if k != model.k:
        raise KalcointError(f"model has k={model.k} assets but the prices have {k} columns")
    if n == 0:
        raise KalcointError("no observations to filter")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(X))):
        raise KalcointError("prices contain non-finite values; clean or forward-fill them first")
    if isinstance(prices, pd.DataFrame):
        check_magnitude(prices.to_numpy(dtype=np.float64), list(prices.columns), prices.index)
    a, vw = _as_model_arrays(model)
    if start is None:
        b0, P0, predict_first = model.initial_state.copy(), np.diag(model.initial_cov), False
    else:
        b0 = np.array(start[0], dtype=np.float64).reshape(k)
        P0, predict_first = np.array(start[1], dtype=np.float64).reshape(k, k), True
    b_pred = np.empty((n, k))
    b_filt = np.empty((n, k))
    P_pred = np.empty((n, k, k))
    P_filt = np.empty((n, k, k))
    innov = np.empty(n)
    innov_var = np.full(n, np.nan)  # days after a breakdown stay NaN
    loglik = filter_loop(
        y,
        X,
        a,
        vw,
        model.obs_var,
        b0,
        np.ascontiguousarray(P0),
        predict_first,
        True,
        b_pred,
        P_pred,
        b_filt,
        P_filt,
        innov,
        innov_var,
    )
    if not (math.isfinite(loglik) and np.isfinite(b_filt).all() and np.isfinite(P_filt).all()):
        raise _breakdown(model, loglik, P_pred, P_filt, innov_var)
    index = prices.index if isinstance(prices, pd.DataFrame) else None
    assets = [str(c) for c in prices.columns] if isinstance(prices, pd.DataFrame) else None
    return FilterResult(model, b_pred, P_pred, b_filt, P_filt, innov, innov_var, float(loglik), y, X, index, assets)


def _breakdown(
    model: StateSpaceModel, loglik: float, P_pred: np.ndarray, P_filt: np.ndarray, innov_var: np.ndarray
) -> ComputationError:
    """Why the filter stopped or gave non-finite figures (``innov_var`` is NaN from the day it stopped):
    a float64 overflow, an innovation variance Q_t <= 0 by rounding (the covariance lost its positive
    definiteness), or Q_t = 0 because obs_var and the state covariance are both zero."""
    stopped = int(np.argmax(np.isnan(innov_var))) if np.isnan(innov_var).any() else innov_var.size - 1
    covariances = np.concatenate([P_pred[: stopped + 1], P_filt[:stopped]])
    largest = max(model.obs_var, float(np.max(model.state_var)), float(np.max(model.initial_cov)))
    # an infinite log-likelihood, or a finite one with non-finite states (the last day's posterior)
    if not math.isnan(loglik) or not np.isfinite(covariances).all():
        return ComputationError(
            f"Kalman filter broke down: the state covariance, the innovation variances or the log-likelihood "
            f"overflowed float64 (the model's largest variance is {largest:g}); use variances in the scale "
            "of the prices"
        )
    if model.obs_var > 0:
        return ComputationError(
            "Kalman filter broke down: an innovation variance Q_t came out zero or negative by rounding "
            f"(the state covariance lost its positive definiteness; the model's largest variance is {largest:g}); "
            "use variances in the scale of the prices"
        )
    return ComputationError(
        "Kalman filter broke down: an innovation variance Q_t is zero or negative "
        "(obs_var and the state covariance are both zero); use a positive obs_var"
    )


@dataclass(frozen=True)
class SmootherResult:
    """Rauch-Tung-Striebel smoothed states ``b_{t|n}`` (n, k), covariances (n, k, k) and the
    lag-one covariances ``Cov(b_t, b_{t-1} | all)`` (n, k, k; entry 0 is zero).

    Examples
    --------
    >>> import kalcoint as kc
    >>> sm = rts_smoother(kalman_filter(kc.demo_prices(), StateSpaceModel.chan(3)))
    >>> sm.smoothed_state.shape
    (1500, 3)
    """

    smoothed_state: np.ndarray
    smoothed_cov: np.ndarray
    lag_one_cov: np.ndarray


def rts_smoother(result: FilterResult) -> SmootherResult:
    """Fixed-interval smoother over a :class:`FilterResult`.

    de Jong's backward recursion (Durbin and Koopman, 2012, sections 4.4 and 4.7), which
    equals the Rauch-Tung-Striebel smoother (Shumway and Stoffer, 2017, ch. 6) but divides
    only by the scalar innovation variances: no inverse of a predicted covariance, so it
    stays exact when a state variance is zero.

    Examples
    --------
    >>> import kalcoint as kc
    >>> res = kalman_filter(kc.demo_prices(), StateSpaceModel.chan(3))
    >>> rts_smoother(res).lag_one_cov.shape
    (1500, 3, 3)
    """
    n, k = result.filtered_state.shape
    smoothed_state = np.empty((n, k))
    smoothed_cov = np.empty((n, k, k))
    lag_one_cov = np.empty((n, k, k))
    smoother_loop(
        result.y,
        result.X,
        np.ascontiguousarray(result.model.transition),
        result.predicted_state,
        result.predicted_cov,
        result.innovation,
        result.innovation_var,
        smoothed_state,
        smoothed_cov,
        lag_one_cov,
    )
    return SmootherResult(smoothed_state, smoothed_cov, lag_one_cov)

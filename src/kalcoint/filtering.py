"""The Kalman filter of the method (docs/method.md §3) and its fixed-interval (RTS) smoother.

Model (docs/method.md §1), for k assets with prices ``p`` of shape (n, k):

    y_t = p_{1,t}                      observation (price units of asset 1)
    x_t = (1, p_{2,t}, ..., p_{k,t})   observation row
    y_t = x_t . b_t + eps_t,           eps_t ~ N(0, obs_var)
    b_t = A b_{t-1} + w_{t-1},         w ~ N(0, diag(state_var)),  A = diag(alpha11, 1, ..., 1)

``(initial_state, diag(initial_cov))`` is the prior of the state at the first
observation: there is no prediction step before t = 1.

One compiled recursion (:func:`_filter_loop`, numba, float64) serves every
caller: the public :func:`kalman_filter`, the tuning passes, the backtests and
the live updates. Setting ``NUMBA_DISABLE_JIT=1`` runs the same code as plain
Python.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from ._numba_cache import njit

from ._checks import CHAN_DELTA, CHAN_OBS_VAR, check_positive
from .errors import ComputationError, KalcointError

LOG_2PI = math.log(2.0 * math.pi)


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


@njit(cache=True, nogil=True)
def _filter_loop(
    y, X, a, vw, ve, b_start, P_start, predict_first, store_cov, b_pred, P_pred, b_filt, P_filt, innov, innov_var
):  # pragma: no cover - compiled
    """docs/method.md §3 for t = 0..n-1; returns the log-likelihood (NaN if some Q_t <= 0).

    ``(b_start, P_start)`` is the prior at t = 0 when ``predict_first`` is False,
    else the posterior of the step before t = 0 (used to continue a filter).
    ``b_pred``, ``P_pred`` and ``P_filt`` are written only when ``store_cov``;
    ``b_filt``, ``innov`` and ``innov_var`` always.

    ``A = diag(a)`` and ``Vw = diag(vw)``. The covariance is kept symmetric and only its
    upper triangle is updated; the update of day t is written straight into the prediction
    for day t + 1 (``P_filt`` itself is not kept unless stored).
    """
    n, k = X.shape
    bp = b_start.copy()  # prior mean b_{t|t-1}
    Pp = np.empty((k, k))  # prior covariance P_{t|t-1}
    aa = np.empty((k, k))  # a_i a_j: A P A' = aa * P (entrywise) for diagonal A
    for i in range(k):
        for j in range(k):
            Pp[i, j] = 0.5 * (P_start[i, j] + P_start[j, i])
            aa[i, j] = a[i] * a[j]
    if predict_first:
        for i in range(k):
            bp[i] = a[i] * bp[i]
            for j in range(k):
                Pp[i, j] = aa[i, j] * Pp[i, j]
            Pp[i, i] += vw[i]
    Px = np.empty(k)
    quad = 0.0  # sum e_t^2 / Q_t
    logdet = 0.0  # sum log Q_t, taken over products of up to 8 Q_t (one log call per 8 days)
    prod = 1.0
    for t in range(n):
        if store_cov:
            for i in range(k):
                b_pred[t, i] = bp[i]
                for j in range(k):
                    P_pred[t, i, j] = Pp[i, j]
        fit = 0.0
        for i in range(k):
            fit += X[t, i] * bp[i]
        e = y[t] - fit
        q = ve
        for i in range(k):
            s = 0.0
            for j in range(k):
                s += Pp[i, j] * X[t, j]
            Px[i] = s  # P_pred x_t'
            q += X[t, i] * s
        if not q > 0.0:
            return np.nan
        r = 1.0 / q
        g = e * r
        # K = P_pred x' / Q;  b_{t|t} = b_pred + K e;  P_{t|t} = P_pred - K x P_pred = P_pred - Px Px' / Q
        # then predict day t + 1: b = A b_{t|t},  P = A P_{t|t} A' + Vw  (A, Vw diagonal).
        # (Px_i Px_j) is formed before 1/Q is known: the day-to-day dependency chain is shorter.
        # P_{t|t} is stored in a loop of its own: a branch in the update loop costs 10%.
        if store_cov:
            for i in range(k):
                for j in range(i, k):
                    pf = Pp[i, j] - (Px[i] * Px[j]) * r
                    P_filt[t, i, j] = pf
                    P_filt[t, j, i] = pf
        for i in range(k):
            bi = bp[i] + Px[i] * g
            b_filt[t, i] = bi
            bp[i] = a[i] * bi
            for j in range(i, k):
                v = aa[i, j] * (Pp[i, j] - (Px[i] * Px[j]) * r)
                Pp[i, j] = v
                Pp[j, i] = v
            Pp[i, i] += vw[i]
        innov[t] = e
        innov_var[t] = q
        quad += e * g
        if 1e-100 < q < 1e100:
            prod *= q
        else:
            logdet += math.log(q)
        if (t & 7) == 7 or not 1e-150 < prod < 1e150:
            logdet += math.log(prod)
            prod = 1.0
    logdet += math.log(prod)
    return -0.5 * (logdet + n * LOG_2PI + quad)


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
    innov_var = np.empty(n)
    loglik = _filter_loop(
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
    if not math.isfinite(loglik):
        raise ComputationError(
            "Kalman filter broke down: an innovation variance Q_t is zero or negative "
            "(obs_var and the state covariance are both zero); use a positive obs_var"
        )
    index = prices.index if isinstance(prices, pd.DataFrame) else None
    assets = [str(c) for c in prices.columns] if isinstance(prices, pd.DataFrame) else None
    return FilterResult(model, b_pred, P_pred, b_filt, P_filt, innov, innov_var, float(loglik), y, X, index, assets)


@njit(cache=True, nogil=True)
def _smoother_loop(y, X, a, b_pred, P_pred, innov, innov_var, b_smooth, P_smooth, lag_one):  # pragma: no cover
    """de Jong's fixed-interval smoother over the filter's predicted states/covariances.

    Fills ``b_smooth`` (n, k), ``P_smooth`` (n, k, k) and ``lag_one`` (n, k, k) with
    ``lag_one[t] = Cov(b_t, b_{t-1} | all)`` for t >= 1 (``lag_one[0] = 0``).
    """
    n, k = X.shape
    r = np.zeros(k)
    N = np.zeros((k, k))
    r_prev = np.empty(k)
    N_prev = np.empty((k, k))
    L = np.empty((k, k))
    PL = np.empty((k, k))  # P_t L_t'
    M = np.empty((k, k))  # I - N_t P_{t+1}
    NL = np.empty((k, k))
    Px = np.empty(k)
    for i in range(k):
        for j in range(k):
            lag_one[0, i, j] = 0.0
    for t in range(n - 1, -1, -1):
        q = innov_var[t]
        for i in range(k):
            s = 0.0
            for j in range(k):
                s += P_pred[t, i, j] * X[t, j]
            Px[i] = s
        # L_t = A - K_t x_t with K_t = A P_t x_t' / Q_t
        for i in range(k):
            for j in range(k):
                L[i, j] = -a[i] * Px[i] * X[t, j] / q
            L[i, i] += a[i]
        if t < n - 1:
            # Cov(b_t, b_{t+1} | all) = P_t L_t' (I - N_t P_{t+1}),  N_t before this step's update
            for i in range(k):
                for j in range(k):
                    s = 0.0
                    for m in range(k):
                        s += P_pred[t, i, m] * L[j, m]
                    PL[i, j] = s
            for i in range(k):
                for j in range(k):
                    s = 0.0
                    for m in range(k):
                        s += N[i, m] * P_pred[t + 1, m, j]
                    M[i, j] = -s
                M[i, i] += 1.0
            for i in range(k):
                for j in range(k):
                    s = 0.0
                    for m in range(k):
                        s += PL[i, m] * M[m, j]
                    lag_one[t + 1, j, i] = s  # transpose: Cov(b_{t+1}, b_t)
        # r_{t-1} = x' e / Q + L' r_t ;  N_{t-1} = x' x / Q + L' N_t L
        for i in range(k):
            s = X[t, i] * innov[t] / q
            for m in range(k):
                s += L[m, i] * r[m]
            r_prev[i] = s
        for i in range(k):
            for j in range(k):
                s = 0.0
                for m in range(k):
                    s += N[i, m] * L[m, j]
                NL[i, j] = s
        for i in range(k):
            for j in range(k):
                s = X[t, i] * X[t, j] / q
                for m in range(k):
                    s += L[m, i] * NL[m, j]
                N_prev[i, j] = s
        for i in range(k):
            r[i] = r_prev[i]
            for j in range(k):
                N[i, j] = N_prev[i, j]
        # b_{t|n} = b_pred + P_t r_{t-1};  P_{t|n} = P_t - P_t N_{t-1} P_t
        for i in range(k):
            s = b_pred[t, i]
            for m in range(k):
                s += P_pred[t, i, m] * r[m]
            b_smooth[t, i] = s
        for i in range(k):
            for j in range(k):
                s = 0.0
                for m in range(k):
                    s += N[i, m] * P_pred[t, m, j]
                NL[i, j] = s  # N_{t-1} P_t
        for i in range(k):
            for j in range(k):
                s = P_pred[t, i, j]
                for m in range(k):
                    s -= P_pred[t, i, m] * NL[m, j]
                P_smooth[t, i, j] = s


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
    _smoother_loop(
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

"""Autocovariance least squares (ALS) for the time-varying model of docs/method.md §1.

ALS (Odelson, Rajamani and Rawlings, Automatica 2006; Rajamani and Rawlings,
Automatica 2009) estimates the noise variances from the autocovariances of the
innovations of a *first* filter, which need not be optimal. The time-invariant
form (one steady-state gain, one autocovariance per lag) does not apply here:
the observation row ``x_t = (1, p_2,t, ..., p_k,t)`` changes every day. What
still holds, for a first filter with transition ``A`` and its own gains
``K_t = P^_t x_t' / Q^_t`` (its predicted covariance ``P^_t``):

* its prediction error ``eps_t = b_t - b_t|t-1`` follows
  ``eps_t+1 = F_t eps_t + w_t - A K_t v_t`` with ``F_t = A (I - K_t x_t)``, so
  the true error covariance obeys
  ``P_t+1 = F_t P_t F_t' + Vw + A K_t Ve K_t' A'``, ``P_1 = P0``
  (the prior's true error covariance), linear in ``theta = (Ve, Vw, P0)``;
* its innovation ``e_t = x_t eps_t + v_t`` has
  ``E[e_t^2] = x_t P_t x_t' + Ve`` and, for lags ``j >= 1``,
  ``E[e_t+j e_t] = x_t+j F_t+j-1 ... F_t+1 (F_t P_t x_t' - A K_t Ve)``,
  again linear in ``theta``.

The least-squares problem
-------------------------
Every pair ``(t, j)``, ``j = 0..lags``, gives one equation: the **sample
product** ``e_t e_t+j`` against its expectation above (no averaging: with a
moving ``x_t`` each day has its own expectation; a windowed average would mix
days whose coefficients differ). The products are heteroscedastic (their
spread is about ``sqrt(Q_t Q_t+j)``), so each equation is weighted by
``1 / sqrt(Q^_t Q^_t+j)``, the first filter's innovation variances. The
unknowns are ``Ve``, the diagonal ``Vw`` (k) and the diagonal ``P0`` (k), all
``>= 0``: the weighted normal equations are built by one compiled pass forwards
(the covariances, lag 0) and one backwards (the lags, whose coefficient rows
``x_t+j F_t+j-1 ... F_t+1`` extend one step each), the weighted coefficient rows
(n (lags + 1) x (2k + 1)) multiplied by BLAS, and solved with non-negativity by
``scipy.optimize.nnls`` on a square root of the (column-scaled) normal matrix,
which minimises the same weighted sum of squares. For k = 3 the first filter and the forward
pass are one compiled pass (:func:`kalcoint._kernels.als_first_filter_k3`, on scalars, the same
numbers to the last bit), its work arrays allocated once per sample. A round's whole profile over
``alpha11`` (below) is one compiled call (:func:`kalcoint._kernels.als_profile`): every
candidate's first filter, solve and log-likelihood, the non-negative least squares by
:func:`kalcoint._kernels.nnls` (``scipy.optimize.nnls``'s steps with SciPy's own BLAS and LAPACK:
its numbers to the last bit) and scipy's bounded Brent search step for step, so that it picks
what the plain Python profile (:func:`_profile`, the reference the tests hold it to) picks.

``P0`` is a nuisance: it absorbs the first filter's start-up transient. The
tuned model keeps the fixed prior of :mod:`kalcoint.tuning.mle` (the Johansen
state at its mean level, the first pass's ``P0``), so its log-likelihood
compares with MLE's and EM's; the ALS estimate of ``P0`` is reported in
``options["als_initial_cov"]``.

alpha11 and the rounds
----------------------
``A`` must be the true transition for the relation to hold (a wrong ``alpha11``
leaves a term ``(A - A^) b_t`` in the error). ``alpha11="profile"`` (default):
for a candidate ``alpha11`` the first filter runs with it, ALS gives the noises,
and the candidate whose ALS model has the highest innovation log-likelihood
wins (the grid ``ALPHA11_GRID`` from 0 to ``1 - 1e-5``, then a bounded Brent
search in ``atanh(alpha11)`` between the best point's neighbours, every round);
``alpha11="first_pass"`` keeps the first pass's value (docs/method.md §4, step 1,
clipped to +-0.999), a number holds it fixed. The noises of the first filter
start at the first pass's (:func:`kalcoint.tuning.mle.start_models`); each
further round runs the first filter with noises moved half-way (``DAMPING``)
from its last ones towards the last ALS estimate (a noise ALS puts at 0 goes to
0): iterated ALS, until ALS gives back the first filter's own noises and
``alpha11`` to ``tol`` (relative) or ``iterations`` rounds have run. Undamped,
the rounds overshoot the fixed point (by about 0.7 of the last step on
EWA/EWC/IGE, by almost 1 on EWG/EWQ/EWU, where 100 rounds did not settle);
damped, both settle (30 and 42 rounds). The tuned model is the last round's ALS
estimate when the rounds converge; when they do not, the round whose model has
the highest log-likelihood (``options["round"]``), with ``converged = False``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar, nnls

from .._checks import check_iterations, check_tol
from ..cointegration import JohansenResult
from ..errors import ComputationError, KalcointError
from ..filtering import StateSpaceModel, observation_arrays
from .mle import ALPHA11_MAX, _prior, first_pass, start_models
from .registry import FitResult
from .._kernels import (
    NNLS_MAXITER,
    NNLS_OK,
    als_equations,
    als_filter_equations,
    als_first_filter_k3,
    als_normal_equations,
    als_profile,
    als_square_root,
    filter_loop,
)

LAGS = 10
"""Default number of lags ``j = 1..LAGS`` of the innovation autocovariances (lag 0 is always used)."""
ALS_TOL = 1e-6
"""Default stop of the rounds: relative change of every quantity below it."""
MAX_ROUNDS = 50
"""Most rounds whatever ``iterations`` says (up to 44 on our synthetic and real baskets)."""
ALPHA11_GRID = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9999, 1 - 1e-5)
"""Candidates of the profile search over alpha11 before the Brent refinement."""
DAMPING = 0.5
"""Share of the last ALS noises in the next round's first filter (the rest: the filter before)."""
EIGEN_FLOOR = 1e-12
"""Directions of the scaled normal matrix with eigenvalue below this (relative) are not identified."""
BRENT_XATOL = 1e-6
"""Absolute tolerance in ``atanh(alpha11)`` of the profile's bounded Brent search."""
BRENT_MAXFUN = 500
"""Most evaluations of the Brent search (scipy's default ``maxiter`` of the bounded method)."""


def _solve_nonnegative(ntn: np.ndarray, ntb: np.ndarray) -> np.ndarray:
    """argmin over theta >= 0 of theta' N theta - 2 theta' r (the weighted least squares).

    Columns are scaled to a unit diagonal; ``N = V L V'`` gives the square root
    ``R = L^(1/2) V'`` and ``c = L^(-1/2) V' r`` (directions with eigenvalue below
    ``EIGEN_FLOOR`` are dropped), and ``nnls(R, c)`` minimises ``|R theta - c|^2``, the same
    objective up to a constant (the square root is compiled: :func:`kalcoint._kernels.als_square_root`)."""
    ntn = np.ascontiguousarray(ntn, dtype=np.float64)
    R, c, scale = als_square_root(ntn, np.ascontiguousarray(ntb, dtype=np.float64), EIGEN_FLOOR)
    phi, _ = nnls(R, c, maxiter=50 * R.shape[1])
    theta = phi / scale
    theta[np.diag(ntn) <= 0] = 0.0
    return theta


def lagged_products(e: np.ndarray, lags: int) -> np.ndarray:
    """Sample products ``e_t e_{t+j}``, j = 0..lags (0 where t + j >= n).

    Parameters
    ----------
    e : ndarray, shape (n,)
        Innovations.
    lags : int

    Returns
    -------
    ndarray, shape (n, lags + 1)

    Examples
    --------
    >>> import numpy as np
    >>> lagged_products(np.array([1.0, 2.0, 3.0]), 1).tolist()
    [[1.0, 2.0], [4.0, 6.0], [9.0, 0.0]]
    >>> lagged_products(np.array([1.0, 2.0]), 3).tolist()
    [[1.0, 2.0, 0.0, 0.0], [4.0, 0.0, 0.0, 0.0]]
    """
    n = e.size
    out = np.zeros((n, lags + 1))
    for j in range(min(lags, n - 1) + 1):  # a lag of n or more has no pair: its column stays 0
        out[: n - j, j] = e[: n - j] * e[j:]
    return out


def normal_equations(
    X: np.ndarray, a: np.ndarray, predicted_cov: np.ndarray, innovation: Any, innovation_var: np.ndarray, lags: int
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted normal equations of ALS for a first filter.

    Parameters
    ----------
    X : ndarray, shape (n, k)
        Observation rows.
    a : ndarray, shape (k,)
        Diagonal of the first filter's transition.
    predicted_cov : ndarray, shape (n, k, k)
        Its predicted state covariances.
    innovation : ndarray, shape (n,) or (n, lags + 1)
        Innovations (the targets are their products ``e_t e_{t+j}``), or the targets themselves
        (e.g. exact covariances, to check the relation).
    innovation_var : ndarray, shape (n,)
        Its innovation variances.
    lags : int
        Autocovariance lags (1..lags, with lag 0).

    Returns
    -------
    N : ndarray, shape (p, p)
    r : ndarray, shape (p,)
        p = 2k + 1.

    Examples
    --------
    >>> import numpy as np
    >>> n = 6
    >>> N, r = normal_equations(np.ones((n, 1)), np.array([0.9]), np.ones((n, 1, 1)),
    ...                         np.linspace(-1.0, 1.0, n), np.full(n, 2.0), 1)
    >>> N.shape, r.shape
    ((3, 3), (3,))
    """
    innovation = np.asarray(innovation, dtype=np.float64)
    targets = lagged_products(innovation, lags) if innovation.ndim == 1 else innovation
    gains = np.einsum("tij,tj->ti", predicted_cov, X) / innovation_var[:, None]
    p = 2 * X.shape[1] + 1
    ntn, ntb = np.zeros((p, p)), np.zeros(p)
    als_normal_equations(
        np.ascontiguousarray(X),
        np.ascontiguousarray(a, dtype=np.float64),
        np.ascontiguousarray(gains),
        np.ascontiguousarray(targets),
        innovation_var,
        int(lags),
        ntn,
        ntb,
    )
    return ntn, ntb


class _ALS:
    """One sample: the first filter, the ALS solve and the log-likelihood of the result."""

    def __init__(self, values: np.ndarray, b0: np.ndarray, p0: np.ndarray, lags: int) -> None:
        self.y, X = observation_arrays(values)
        self.X = np.ascontiguousarray(X)
        n, k = self.X.shape
        self.b0, self.P0 = np.ascontiguousarray(b0), np.diag(p0)
        self.lags = int(lags)
        self._b_pred, self._P_pred = np.empty((n, k)), np.empty((n, k, k))
        self._b_filt, self._P_filt = np.empty((n, k)), np.empty((n, k, k))
        self._e, self._q = np.empty(n), np.empty(n)
        self.evaluations = 0
        p = 2 * k + 1
        # k = 3: the first filter and its equations in one compiled pass (work arrays reused)
        rows, m = (n, als_equations(n, self.lags)) if k == 3 else (0, 0)
        self._fused = (np.empty((rows, k)), np.empty((rows, k, p)), np.empty((p, m)), np.empty(m))
        # the arrays of the compiled profile (kalcoint._kernels.als_profile)
        self.data = (self.y, self.X, self.b0, self.P0)
        self.work = (
            self._b_pred, self._P_pred, self._b_filt, self._P_filt, self._e, self._q,
            np.empty(k), np.empty(k), np.zeros((p, p)), np.zeros(p),
        )  # fmt: skip

    def _run(self, a: np.ndarray, obs_var: float, state_var: np.ndarray, store: bool) -> float:
        return float(
            filter_loop(
                self.y,
                self.X,
                a,
                np.ascontiguousarray(state_var),
                float(obs_var),
                self.b0,
                self.P0,
                False,
                store,
                self._b_pred,
                self._P_pred,
                self._b_filt,
                self._P_filt,
                self._e,
                self._q,
            )
        )

    def solve(self, alpha11: float, obs_var: float, state_var: np.ndarray) -> np.ndarray | None:
        """ALS from a first filter ``(alpha11, obs_var, state_var)``: theta = (Ve, Vw (k), P0 (k)),
        or None when the first filter breaks down."""
        k = self.X.shape[1]
        a = np.ones(k)
        a[0] = alpha11
        p = 2 * k + 1
        ntn, ntb = np.zeros((p, p)), np.zeros(p)
        if k == 3:
            ll = als_first_filter_k3(
                self.y, self.X, a, np.ascontiguousarray(state_var), float(obs_var), self.b0, self.P0,
                self.lags, *self._fused, self._e, self._q, ntn, ntb,
            )  # fmt: skip
            if not math.isfinite(ll):
                return None
        else:
            if not math.isfinite(self._run(a, obs_var, state_var, True)):
                return None
            als_filter_equations(self.X, a, self._P_pred, self._e, self._q, self.lags, ntn, ntb)
        self.evaluations += 1
        return _solve_nonnegative(ntn, ntb)

    def loglik(self, alpha11: float, theta: np.ndarray) -> float:
        """Log-likelihood of the model ``(alpha11, Ve, Vw)`` with the fixed prior (-inf on breakdown)."""
        k = self.X.shape[1]
        a = np.ones(k)
        a[0] = alpha11
        ll = self._run(a, theta[0], theta[1 : 1 + k], False)
        return ll if math.isfinite(ll) else -math.inf


def _profile(als: _ALS, first: tuple[float, np.ndarray], candidates: list[float]) -> tuple[float, np.ndarray, float]:
    """Best alpha11 by the log-likelihood of its ALS model: a grid, then Brent in atanh(alpha11).

    The plain reference of :func:`_profile_compiled` (``_ALS.solve`` and ``_ALS.loglik`` per
    candidate, a dict as cache, ``scipy.optimize.minimize_scalar``). Returns ``(alpha11, theta
    (2k + 1,), loglik)``: the first candidate evaluated with the highest log-likelihood."""
    cache: dict[float, tuple[np.ndarray | None, float]] = {}

    def at(alpha11: float) -> float:
        if alpha11 not in cache:
            theta = als.solve(alpha11, first[0], first[1])
            cache[alpha11] = (theta, -math.inf if theta is None else als.loglik(alpha11, theta))
        return cache[alpha11][1]

    grid = sorted(set(candidates))
    lls = [at(g) for g in grid]
    best = int(np.argmax(lls))
    if math.isfinite(lls[best]):
        lo = math.atanh(grid[max(best - 1, 0)])
        hi = math.atanh(grid[min(best + 1, len(grid) - 1)])
        if hi > lo:
            minimize_scalar(
                lambda u: -at(math.tanh(u)),
                bounds=(lo, hi),
                method="bounded",
                options={"xatol": BRENT_XATOL, "maxiter": BRENT_MAXFUN},
            )
    alpha11 = max(cache, key=lambda a11: cache[a11][1])
    theta, ll = cache[alpha11]
    if theta is None or not math.isfinite(ll):
        raise ComputationError("ALS failed: the filter broke down for every alpha11 tried")
    return alpha11, theta, ll


def _profile_compiled(
    als: _ALS, first: tuple[float, np.ndarray], candidates: list[float]
) -> tuple[float, np.ndarray, float]:
    """:func:`_profile` in one compiled call (:func:`kalcoint._kernels.als_profile`): the same
    candidates in the same order, the same Brent steps, the same result and count of solves."""
    grid = np.array(sorted(set(candidates)), dtype=np.float64)
    p = 2 * als.X.shape[1] + 1
    size = grid.size + BRENT_MAXFUN + 1
    cache = (np.empty(size), np.zeros((size, p)), np.empty(size), np.zeros(size, dtype=np.bool_))
    status, count, best, solves = als_profile(
        als.data, als.lags, float(first[0]), np.ascontiguousarray(first[1], dtype=np.float64), grid,
        BRENT_XATOL, BRENT_MAXFUN, als._fused, als.work, EIGEN_FLOOR, 50 * p, cache,
    )  # fmt: skip
    als.evaluations += solves
    if status == NNLS_MAXITER:  # as scipy.optimize.nnls raises
        raise RuntimeError("Maximum number of iterations reached.")
    if status != NNLS_OK:
        raise ValueError("array must not contain infs or NaNs")
    if not (cache[3][best] and math.isfinite(cache[2][best])):
        raise ComputationError("ALS failed: the filter broke down for every alpha11 tried")
    return float(cache[0][best]), cache[1][best].copy(), float(cache[2][best])


def _candidates(alpha11: float) -> list[float]:
    """The profile's grid: ``ALPHA11_GRID`` and ``alpha11`` (clipped to [0, ALPHA11_MAX])."""
    return sorted(set(ALPHA11_GRID) | {float(np.clip(alpha11, 0.0, ALPHA11_MAX))})


def _alpha11_option(alpha11: Any, values: np.ndarray, johansen_result: JohansenResult) -> float | None:
    """None for "profile", else the fixed value."""
    if alpha11 == "profile":
        return None
    if alpha11 == "first_pass":
        return first_pass(values, johansen_result).alpha11
    try:
        value = float(alpha11)
    except (TypeError, ValueError):
        raise KalcointError(
            f"ALS alpha11={alpha11!r} must be 'profile', 'first_pass' or a number", params="alpha11"
        ) from None
    if not -1.0 <= value <= 1.0:
        raise KalcointError(f"ALS alpha11={value} must be within [-1, 1]", params="alpha11")
    return value


def fit(
    values: np.ndarray,
    johansen_result: JohansenResult,
    iterations: int = MAX_ROUNDS,
    tol: float | None = None,
    *,
    lags: int = LAGS,
    alpha11: Any = "profile",
    initial_state: Any = None,
    initial_cov: Any = None,
) -> FitResult:
    """ALS fit on an (n, k) price panel (first column = dependent asset); see the module doc.

    Parameters
    ----------
    values : ndarray, shape (n, k)
        Prices, first column dependent.
    johansen_result : JohansenResult
        Johansen's test on ``values`` (the prior's weights).
    iterations : int
        Most ALS rounds (capped at ``MAX_ROUNDS``).
    tol : float, optional
        Stop when every quantity's relative change from one round to the next is below it
        (``ALS_TOL`` when None).
    lags : int
        Autocovariance lags used (1..lags, with lag 0).
    alpha11 : "profile", "first_pass" or float
        How alpha11 is chosen ("profile" default), or a number held fixed.
    initial_state, initial_cov : array_like, optional
        The prior (default: the method's).

    Returns
    -------
    FitResult
        ``model``, ``iterations`` (rounds), ``converged``, ``history`` (``alpha11``,
        ``obs_var``, ``loglik`` per round) and ``options`` (the round chosen, the lags, the
        weights, the prior).

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> out = fit(p.to_numpy(), kc.johansen(p))
    >>> round(out.model.alpha11, 4), out.iterations, out.converged
    (0.9581, 32, True)
    """
    return _fit(values, johansen_result, iterations, tol, lags, alpha11, initial_state, initial_cov, _profile_compiled)


Profile = Callable[[_ALS, tuple[float, np.ndarray], list[float]], tuple[float, np.ndarray, float]]


def _fit(
    values: np.ndarray,
    johansen_result: JohansenResult,
    iterations: int,
    tol: float | None,
    lags: int,
    alpha11: Any,
    initial_state: Any,
    initial_cov: Any,
    profile: Profile,
) -> FitResult:
    """:func:`fit` with the profile over alpha11 given: :func:`_profile_compiled` (``fit``'s) or the
    plain reference :func:`_profile` (tests hold the two equal)."""
    iterations = check_iterations(iterations)
    tol = check_tol(tol)
    if isinstance(lags, bool) or int(lags) != lags or lags < 1:
        raise KalcointError(f"ALS lags={lags} must be a whole number >= 1", params="lags")
    values = np.ascontiguousarray(values, dtype=np.float64)
    k = values.shape[1]
    if values.shape[0] < 2 * k + 1 + lags:
        raise KalcointError(f"ALS needs at least {2 * k + 1 + lags} rows, got {values.shape[0]}", params="prices")
    tol = ALS_TOL if tol is None else float(tol)
    fixed = _alpha11_option(alpha11, values, johansen_result)
    b0, p0 = _prior(values, johansen_result, initial_state, initial_cov)
    als = _ALS(values, b0, p0, lags)
    start = start_models(values, johansen_result, b0, p0)["first_pass"]
    filt = np.concatenate([[start.obs_var], start.state_var])  # the first filter's (Ve, Vw)
    prev_alpha11 = start.alpha11
    rows: list[tuple[float, float, float]] = []
    estimates: list[tuple[float, np.ndarray]] = []  # each round's (alpha11, theta)
    converged = False
    rounds = 0
    for rounds in range(1, min(int(iterations), MAX_ROUNDS) + 1):
        if fixed is None:
            a11, theta, ll = profile(als, (filt[0], filt[1:]), _candidates(prev_alpha11))
        else:
            solved = als.solve(fixed, filt[0], filt[1:])
            if solved is None:
                raise ComputationError("ALS failed: the first filter broke down")
            a11, theta, ll = fixed, solved, als.loglik(fixed, solved)
        noises = theta[: 1 + k]
        rows.append((a11, float(noises[0]), ll))
        estimates.append((a11, theta))
        out, into = np.concatenate([[a11], noises]), np.concatenate([[prev_alpha11], filt])
        change = np.abs(out - into) / np.maximum(np.maximum(np.abs(out), np.abs(into)), 1e-300)
        if rounds > 1 and np.all(change < tol):
            converged = True
            break
        filt = np.where(noises > 0.0, DAMPING * noises + (1.0 - DAMPING) * filt, 0.0)
        prev_alpha11 = a11
    hist = np.array(rows)
    # converged: the last round; else the round whose model has the highest log-likelihood (the
    # rounds can settle into a cycle, e.g. of two models on EWG/EWQ/EWU)
    if not np.any(np.isfinite(hist[:, 2])):
        raise ComputationError("ALS failed: the filter of every round's estimate broke down")
    chosen = len(rows) - 1 if converged else int(np.argmax(np.where(np.isfinite(hist[:, 2]), hist[:, 2], -np.inf)))
    a11, theta = estimates[chosen]
    if not theta[0] > 0.0 and not np.any(theta[1 : 1 + k] > 0.0):
        raise ComputationError("ALS failed: every noise variance came out zero")
    model = StateSpaceModel(a11, theta[0], theta[1 : 1 + k], b0, p0)
    return FitResult(
        model=model,
        iterations=rounds,
        converged=converged,
        history={"alpha11": hist[:, 0], "obs_var": hist[:, 1], "loglik": hist[:, 2]},
        options={
            "round": chosen + 1,
            "lags": int(lags),
            "alpha11": alpha11 if isinstance(alpha11, str) else float(alpha11),
            "tol": tol,
            "weights": "1/sqrt(Q_t Q_t+j) per sample product",
            "als_initial_cov": theta[1 + k :].tolist(),
            "solves": als.evaluations,
            "initial_state": "custom" if initial_state is not None else "johansen_mean",
            "initial_cov": "custom" if initial_cov is not None else "first_pass",
        },
    )

"""Maximum likelihood on the innovations (docs/method.md §3's log-likelihood).

Free quantities, with the diagonal structure of the method (docs/method.md §1):

* ``alpha11`` in (-1, 1), optimised as ``atanh(alpha11)`` (bounded at
  ``+-ALPHA11_MAX`` so the optimiser never reaches the unit root);
* ``obs_var`` > 0 and the diagonal ``state_var`` >= 0, optimised as logs,
  bounded to ``LOG_VAR_SPAN`` around the variance of the daily changes of
  asset 1's price, so a variance can fall to ~1e-30 of that scale (a frozen
  state) but never reach a non-finite value.

The prior of the state at the first observation is held fixed (it is not a
free parameter; estimating it jointly makes ``initial_cov`` collapse):

* ``initial_state`` = the Johansen state at its mean level,
  ``(mean_t(y_port,t) / w_1, -w_2/w_1, ..., -w_k/w_1)`` (the seed method's ``bm``);
* ``initial_cov`` = the first pass's ``P0`` (docs/method.md §4, step 5; its
  ``alpha11`` clipped to +-0.999), which is wide: the first observations pin
  the level and the hedge ratios down.

Both can be overridden (``initial_state=``, ``initial_cov=``). The optimiser is
scipy's L-BFGS-B, fed the log-likelihood and its analytic gradient from one
compiled pass (:func:`loglik_grad`: the filter forward, its adjoint backward),
run from several starts (:func:`start_models`); the best optimum
wins. Standard errors come from :mod:`kalcoint.tuning.inference` (the observed
information at the optimum, shared with EM), on demand through
:meth:`kalcoint.tuning.TunedModel.cov_params`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..cointegration import JohansenResult
from .._checks import ALPHA11_MAX, CHAN_DELTA, CHAN_OBS_VAR, check_iterations, check_tol
from ..errors import ComputationError, KalcointError
from ..filtering import StateSpaceModel, observation_arrays
from .registry import FitResult
from .seed import first_pass_model, johansen_path
from .._kernels import filter_loop, loglik_grad

LOG_VAR_SPAN = (-70.0, 25.0)
"""Bounds of log(variance / var(daily change of asset 1)) in the optimiser."""
FTOL = 1e-12
"""Default L-BFGS-B ``ftol`` (relative reduction of the objective that stops it); ``tol`` overrides."""
GTOL = 1e-9
"""L-BFGS-B ``gtol`` on the projected gradient of the mean negative log-likelihood per observation."""
RESTARTS = 3
"""Most restarts of L-BFGS-B from a point where its line search stalled (see :func:`_optimise`)."""


@dataclass
class _Likelihood:
    """Negative mean log-likelihood of the innovations as a function of the optimiser's vector
    ``theta = (atanh(alpha11), log obs_var, log state_var_1..k)``; buffers are allocated once."""

    y: np.ndarray
    X: np.ndarray
    initial_state: np.ndarray
    initial_cov: np.ndarray  # (k, k) diagonal matrix
    fixed_alpha11: float | None = None  # held at this value (theta_0 then has no effect)
    a: np.ndarray = field(init=False)
    _states: np.ndarray = field(init=False, repr=False)
    _innov: np.ndarray = field(init=False, repr=False)
    _innov_var: np.ndarray = field(init=False, repr=False)
    _dummy_b: np.ndarray = field(init=False, repr=False)
    _dummy_p: np.ndarray = field(init=False, repr=False)
    _grad: np.ndarray = field(init=False, repr=False)
    _last: tuple[bytes, float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n, k = self.X.shape
        self._grad = np.empty(k + 2)
        self._last = (b"", math.nan)
        self.a = np.ones(k)
        self._states = np.empty((n, k))
        self._innov = np.empty(n)
        self._innov_var = np.empty(n)
        self._dummy_b = np.empty((1, k))
        self._dummy_p = np.empty((1, k, k))

    @property
    def n(self) -> int:
        return int(self.y.size)

    def loglik(self, alpha11: float, obs_var: float, state_var: np.ndarray) -> float:
        """Log-likelihood (NaN when the filter breaks down)."""
        self.a[0] = alpha11
        return float(
            filter_loop(
                self.y,
                self.X,
                self.a,
                np.ascontiguousarray(state_var, dtype=np.float64),
                float(obs_var),
                self.initial_state,
                self.initial_cov,
                False,
                False,
                self._dummy_b,
                self._dummy_p,
                self._states,
                self._dummy_p,
                self._innov,
                self._innov_var,
            )
        )

    def objective(self, theta: np.ndarray) -> float:
        alpha11 = math.tanh(theta[0]) if self.fixed_alpha11 is None else self.fixed_alpha11
        ll = self.loglik(alpha11, math.exp(theta[1]), np.exp(theta[2:]))
        return -ll / self.n if math.isfinite(ll) else math.inf

    def objective_and_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """:meth:`objective` and its analytic gradient with respect to ``theta`` (one compiled pass)."""
        natural = _natural(theta)
        if self.fixed_alpha11 is not None:
            natural[0] = self.fixed_alpha11
        self.a[0] = natural[0]
        ll = float(
            loglik_grad(
                self.y, self.X, self.a, natural[2:], natural[1], self.initial_state, self.initial_cov, self._grad
            )
        )
        if not math.isfinite(ll):
            return math.inf, np.full(theta.size, np.nan)
        # chain rule: d alpha11 / d theta_0 = 1 - alpha11^2, d v / d log v = v
        jac = np.concatenate([[1.0 - natural[0] ** 2 if self.fixed_alpha11 is None else 0.0], natural[1:]])
        value = -ll / self.n
        self._last = (theta.tobytes(), value)
        return value, -self._grad * jac / self.n

    def objective_at(self, theta: np.ndarray) -> float:
        """:meth:`objective`, reusing the last evaluation of :meth:`objective_and_gradient` at ``theta``."""
        key, value = self._last
        return value if key == theta.tobytes() else self.objective(theta)

    def natural_nll(self, params: np.ndarray) -> float:
        """Negative log-likelihood at ``params = (alpha11, obs_var, state_var_1..k)``."""
        ll = self.loglik(params[0], params[1], params[2:])
        return -ll if math.isfinite(ll) else math.inf


def first_pass(values: np.ndarray, johansen_result: JohansenResult) -> StateSpaceModel:
    """The first pass of docs/method.md §4, with its ``alpha11`` clipped to [-0.999, 0.999] so that its
    variances stay >= 0 even when the Johansen level is not mean-reverting on the sample.

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices().to_numpy()
    >>> round(first_pass(p, kc.johansen(p)).alpha11, 4)
    0.9961
    """
    weights = johansen_result.weights
    level = johansen_path(values, weights)[:, 0]
    denom = float(level[:-1] @ level[:-1])
    alpha11 = float(level[1:] @ level[:-1]) / denom if denom > 0.0 else 0.0
    return first_pass_model(values, weights, fix_alpha11=float(np.clip(alpha11, -0.999, 0.999)))


def default_prior(values: np.ndarray, johansen_result: JohansenResult) -> tuple[np.ndarray, np.ndarray]:
    """The fixed prior ``(initial_state (k,), initial_cov (k,))`` of the estimators (see module doc).

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices().to_numpy()
    >>> [a.shape for a in default_prior(p, kc.johansen(p))]
    [(3,), (3,)]
    """
    initial_state = johansen_path(values, johansen_result.weights).mean(axis=0)
    return initial_state, first_pass(values, johansen_result).initial_cov.copy()


def _prior(
    values: np.ndarray, johansen_result: JohansenResult, initial_state: Any, initial_cov: Any
) -> tuple[np.ndarray, np.ndarray]:
    k = values.shape[1]
    b0, p0 = default_prior(values, johansen_result)
    if initial_state is not None:
        b0 = np.asarray(initial_state, dtype=np.float64).reshape(-1)
    if initial_cov is not None:
        p0 = np.asarray(initial_cov, dtype=np.float64).reshape(-1)
    if b0.size != k or p0.size != k or not (np.all(np.isfinite(b0)) and np.all(np.isfinite(p0))):
        raise KalcointError(
            f"initial_state and initial_cov must be {k} finite numbers (one per state)",
            params=("initial_state", "initial_cov"),
        )
    if np.any(p0 < 0):
        raise KalcointError("initial_cov must be >= 0 (it is a variance)", params="initial_cov")
    return b0, p0


def change_scale(values: np.ndarray) -> float:
    """Variance of the daily changes of asset 1's price (price units squared): the variance
    scale of the estimators' bounds and of the diagnosis.

    Examples
    --------
    >>> import numpy as np
    >>> change_scale(np.array([[1.0, 5.0], [2.0, 5.0], [4.0, 6.0]]))
    0.25
    """
    scale = float(np.var(np.diff(values[:, 0])))
    if not scale > 0.0 or not math.isfinite(scale):
        raise KalcointError("the dependent asset's price never changes; there is nothing to estimate")
    return scale


def start_models(
    values: np.ndarray, johansen_result: JohansenResult, initial_state: np.ndarray, initial_cov: np.ndarray
) -> dict[str, StateSpaceModel]:
    """Starting points of the optimiser (all with the fixed prior).

    first_pass : the quantities of docs/method.md §4, the frozen hedge ratios given the state
        variance ``initial_cov_j / n`` (they must be free to move).
    chan : Chan's quantities (``Vw = 1e-4/(1 - 1e-4)``, ``Ve = 1e-3``) with the first pass's alpha11.
    balanced : half the daily price-change variance to ``Ve``, half to the level, 1% to the
        hedge ratios (spread over their price scale), with the first pass's alpha11.

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices().to_numpy()
    >>> b0, p0 = default_prior(p, kc.johansen(p))
    >>> sorted(start_models(p, kc.johansen(p), b0, p0))
    ['balanced', 'chan', 'first_pass']
    """
    n, k = values.shape
    first = first_pass(values, johansen_result)
    alpha11 = first.alpha11
    scale = change_scale(values)
    vw_first = first.state_var.copy()
    vw_first[1:] = np.maximum(vw_first[1:], initial_cov[1:] / n)
    vw_first = np.where(vw_first > 0, vw_first, scale * 1e-6)
    mean_sq = np.mean(values[:, 1:] ** 2, axis=0)
    vw_bal = np.concatenate([[0.5 * scale], 0.01 * scale / ((k - 1) * mean_sq)])
    chan_vw = CHAN_DELTA / (1.0 - CHAN_DELTA)
    return {
        "first_pass": StateSpaceModel(alpha11, first.obs_var, vw_first, initial_state, initial_cov),
        "chan": StateSpaceModel(alpha11, CHAN_OBS_VAR, np.full(k, chan_vw), initial_state, initial_cov),
        "balanced": StateSpaceModel(alpha11, 0.5 * scale, vw_bal, initial_state, initial_cov),
    }


def _theta(model: StateSpaceModel, bounds: list[tuple[float, float]]) -> np.ndarray:
    raw = np.concatenate(
        [
            [math.atanh(float(np.clip(model.alpha11, -ALPHA11_MAX, ALPHA11_MAX)))],
            np.log(np.maximum([model.obs_var, *model.state_var], 1e-300)),
        ]
    )
    lo, hi = np.array(bounds).T
    return np.clip(raw, lo, hi)


def _natural(theta: np.ndarray) -> np.ndarray:
    return np.concatenate([[math.tanh(theta[0])], np.exp(theta[1:])])


@dataclass(frozen=True)
class _Optimum:
    start: str
    theta: np.ndarray
    loglik: float
    iterations: int
    converged: bool
    message: str
    trace: np.ndarray  # (iterations + 1, 3): alpha11, obs_var, loglik along the path


def _projected_gradient(x: np.ndarray, grad: np.ndarray, bounds: list[tuple[float, float]]) -> float:
    """Infinity norm of L-BFGS-B's projected gradient (the quantity its ``gtol`` tests)."""
    lo, hi = np.array(bounds).T
    return float(np.max(np.abs(np.clip(x - grad, lo, hi) - x)))


def _optimise(
    lik: _Likelihood, name: str, start: np.ndarray, bounds: list[tuple[float, float]], maxiter: int, tol: float | None
) -> _Optimum:
    """L-BFGS-B from ``start``; restarted from its end point (fresh curvature memory, up to
    ``RESTARTS`` times, within the same iteration budget) while it stops on a stalled line search
    with the projected gradient above ``GTOL`` and the restart still gains."""
    from scipy.optimize import minimize

    path = [(start.copy(), lik.objective(start))]
    ftol = FTOL if tol is None else float(tol)
    iterations = 0
    res: Any = None  # scipy OptimizeResult of the last run that gained
    for _ in range(1 + RESTARTS):
        options = {"maxiter": int(maxiter) - iterations, "maxfun": 50 * int(maxiter) + 1000, "gtol": GTOL, "ftol": ftol}
        # a breakdown (Q_t <= 0) gives an infinite objective and a NaN gradient: L-BFGS-B backtracks
        with np.errstate(invalid="ignore", over="ignore"):
            again = minimize(
                lik.objective_and_gradient,
                start if res is None else res.x,
                method="L-BFGS-B",
                jac=True,
                bounds=bounds,
                options=options,
                callback=lambda xk: path.append((np.array(xk, copy=True), lik.objective_at(xk))),
            )
        iterations += int(again.nit)
        # a restart (fresh projected steepest-descent step) that cannot lower the objective confirms
        # the point: it is a minimum to rounding (where the line search's "ABNORMAL" stop comes from)
        if res is not None and not again.fun < res.fun - ftol * max(abs(res.fun), 1.0):
            if not res.success:
                converged, message = True, "CONVERGENCE: A RESTART CANNOT REDUCE F (LINE SEARCH STALLED AT A MINIMUM)"
            break
        res = again
        converged, message = bool(res.success), str(res.message)
        if iterations >= maxiter or not math.isfinite(res.fun) or _projected_gradient(res.x, res.jac, bounds) <= GTOL:
            break
    trace = np.array([[math.tanh(th[0]), math.exp(th[1]), -f * lik.n] for th, f in path])
    return _Optimum(name, np.asarray(res.x), -float(res.fun) * lik.n, iterations, converged, message, trace)


def fit(
    values: np.ndarray,
    johansen_result: JohansenResult,
    iterations: int = 2000,
    tol: float | None = None,
    *,
    initial_state: Any = None,
    initial_cov: Any = None,
    std_errors: bool = True,
    fixed_alpha11: float | None = None,
) -> FitResult:
    """Maximum-likelihood fit on an (n, k) price panel (first column = dependent asset).

    iterations : cap on L-BFGS-B iterations per start; tol : L-BFGS-B ``ftol`` (relative
    reduction of the objective; ``FTOL`` when None).
    std_errors : ignored (kept for old callers): standard errors are computed on demand by
    :meth:`kalcoint.tuning.TunedModel.cov_params`.

    Returns a :class:`~kalcoint.tuning.registry.FitResult`: ``model``, ``iterations`` (of the
    winning start), ``converged``, ``history`` (``alpha11``, ``obs_var``, ``loglik`` along the
    winning start's path), ``options`` (the starts' log-likelihoods, the winning start).
    fixed_alpha11 : hold alpha11 at this value in [-1, 1] (1: the unit-root level of Chan's
    filter) and maximise over the variances only.

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices().to_numpy()
    >>> round(fit(p, kc.johansen(p)).model.alpha11, 2)
    0.96
    """
    iterations = check_iterations(iterations)
    tol = check_tol(tol)
    if fixed_alpha11 is not None and not -1.0 <= fixed_alpha11 <= 1.0:
        raise KalcointError(f"fixed alpha11 {fixed_alpha11} must be within [-1, 1]")
    values = np.ascontiguousarray(values, dtype=np.float64)
    y, X = observation_arrays(values)
    k = X.shape[1]
    b0, p0 = _prior(values, johansen_result, initial_state, initial_cov)
    lik = _Likelihood(y, X, np.ascontiguousarray(b0), np.diag(p0), fixed_alpha11)
    log_scale = math.log(change_scale(values))
    var_bounds = (log_scale + LOG_VAR_SPAN[0], log_scale + LOG_VAR_SPAN[1])
    alpha_bound = math.atanh(ALPHA11_MAX) if fixed_alpha11 is None else 0.0
    bounds = [(-alpha_bound, alpha_bound)] + [var_bounds] * (k + 1)
    optima = [
        _optimise(lik, name, _theta(m, bounds), bounds, iterations, tol)
        for name, m in start_models(values, johansen_result, b0, p0).items()
    ]
    optima = [o for o in optima if math.isfinite(o.loglik)]
    if not optima:
        raise ComputationError("maximum likelihood failed: the filter broke down from every start")
    best = max(optima, key=lambda o: o.loglik)
    params = _natural(best.theta)
    if fixed_alpha11 is not None:
        params[0] = best.trace[:, 0] = fixed_alpha11
    model = StateSpaceModel(params[0], params[1], params[2:], b0, p0)
    return FitResult(
        model=model,
        iterations=best.iterations,
        converged=best.converged,
        history={"alpha11": best.trace[:, 0], "obs_var": best.trace[:, 1], "loglik": best.trace[:, 2]},
        options={
            "start": best.start,
            "start_logliks": {o.start: o.loglik for o in optima},
            "optimizer": "L-BFGS-B",
            "message": best.message,
            "tol": tol,
            "initial_state": "custom" if initial_state is not None else "johansen_mean",
            "initial_cov": "custom" if initial_cov is not None else "first_pass",
            "fixed_alpha11": fixed_alpha11,
        },
    )

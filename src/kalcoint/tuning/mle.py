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
compiled pass (:func:`_loglik_grad`: the filter forward, its adjoint backward),
run from several starts (:func:`start_models`); the best optimum
wins. Standard errors come from a numerical Hessian of the negative
log-likelihood in the natural quantities (statsmodels' ``approx_hess3``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._numba_cache import njit
from ..cointegration import JohansenResult
from ..errors import ComputationError, KalcointError
from ..filtering import StateSpaceModel, _filter_loop, observation_arrays
from .seed import first_pass_model, johansen_path

ALPHA11_MAX = 1.0 - 1e-6
"""|alpha11| bound of the estimators (MLE and EM): the level stays stationary."""
LOG_VAR_SPAN = (-70.0, 25.0)
"""Bounds of log(variance / var(daily change of asset 1)) in the optimiser."""
CHAN_DELTA = 1e-4
"""The Chan-like start uses Chan's quantities: Vw = delta/(1-delta) I, Ve = 1e-3."""
FTOL = 1e-12
"""Default L-BFGS-B ``ftol`` (relative reduction of the objective that stops it); ``tol`` overrides."""
GTOL = 1e-9
"""L-BFGS-B ``gtol`` on the projected gradient of the mean negative log-likelihood per observation."""
BOUNDARY_RATIO = 1e-6
"""A variance this small against the daily price-change variance (for a state: its drift over the
sample) is on its bound for the standard errors; the diagnosis uses the same ratio."""
HESSIAN_STEP = 1e-4
"""Relative finite-difference step of the standard-error Hessian."""
RESTARTS = 3
OPTIMIZERS = ("L-BFGS-B", "compiled")
"""Most restarts of L-BFGS-B from a point where its line search stalled (see :func:`_optimise`)."""


@njit(cache=True, nogil=True)
def _loglik_grad(y, X, a, vw, ve, b_start, P_start, grad):  # pragma: no cover - compiled
    """Log-likelihood of the filter of docs/method.md §3 (prior ``(b_start, P_start)`` at t = 0, fixed;
    ``A = diag(a)``, ``Vw = diag(vw)``) and, written to ``grad`` (k + 2,), its derivatives with
    respect to ``(alpha11 = a[0], obs_var = ve, state_var_1..k = vw)``. Returns NaN if some Q_t <= 0.

    Reverse mode: the forward pass is the filter of ``filtering._filter_loop`` and keeps
    ``e_t, 1/Q_t, P_{t|t-1} x_t'`` and the first row of ``(b_{t|t}, P_{t|t})``; the backward pass
    carries ``B = dL/d b_{t+1|t}`` and ``C = dL/d P_{t+1|t}`` (all k^2 entries, taken as
    independent) through the step in reverse, with ``l_t = -(log Q_t + e_t^2 / Q_t) / 2``:

        alpha11 += B_1 b_{1,t|t} + sum_ij d(a_i a_j)/d alpha11 P_{ij,t|t} C_ij;  state_var_i += C_ii
        Pfbar = (a a') o C;   Pxbar = g A B - (Pfbar + Pfbar') Px / Q + Qbar x'
        Qbar = -(1 - e g) / (2 Q) + (Px' Pfbar Px - e (A B) . Px) / Q^2;   obs_var += Qbar
        B <- A B - (-g + (A B) . Px / Q) x';   C <- Pfbar + Pxbar x
    with ``Px = P_{t|t-1} x_t'`` and ``g = e_t / Q_t``.
    """
    n, k = X.shape
    aa = np.empty((k, k))
    for i in range(k):
        for j in range(k):
            aa[i, j] = a[i] * a[j]
    b_pred = np.empty((n, k))
    P_pred = np.empty((n, k, k))
    b_filt = np.empty((n, k))
    P_filt = np.empty((n, k, k))
    es = np.empty(n)
    qs = np.empty(n)
    loglik = _filter_loop(y, X, a, vw, ve, b_start, P_start, False, True,
                          b_pred, P_pred, b_filt, P_filt, es, qs)
    if not math.isfinite(loglik):
        return np.nan
    rs = np.empty(n)
    Pxs = np.empty((n, k))
    bf0 = np.empty(n)  # b_{1,t|t}
    Pf0 = np.empty((n, k))  # first row of P_{t|t}
    for t in range(n):
        rs[t] = 1.0 / qs[t]
        bf0[t] = b_filt[t, 0]
        for i in range(k):
            Pf0[t, i] = P_filt[t, 0, i]
            s = 0.0
            for j in range(k):
                s += P_pred[t, i, j] * X[t, j]
            Pxs[t, i] = s

    B = np.zeros(k)  # dL / d b_{t+1|t}
    C = np.zeros((k, k))  # dL / d P_{t+1|t}
    AB = np.empty(k)
    Pfbar = np.empty((k, k))
    Pxbar = np.empty(k)
    d_alpha = 0.0
    d_ve = 0.0
    for i in range(k):
        grad[2 + i] = 0.0
    for t in range(n - 1, -1, -1):
        e = es[t]
        r = rs[t]
        g = e * r
        # through b_{t+1|t} = A b_{t|t} and P_{t+1|t} = (a a') o P_{t|t} + Vw
        d_alpha += B[0] * bf0[t] + 2.0 * a[0] * Pf0[t, 0] * C[0, 0]
        for j in range(1, k):
            d_alpha += a[j] * Pf0[t, j] * (C[0, j] + C[j, 0])
        for i in range(k):
            grad[2 + i] += C[i, i]
            AB[i] = a[i] * B[i]
            for j in range(k):
                Pfbar[i, j] = aa[i, j] * C[i, j]
        # through b_{t|t} = b + Px g, P_{t|t} = P - Px Px' / Q, g = e / Q and l_t
        gbar = 0.0
        quad_f = 0.0
        for i in range(k):
            gbar += AB[i] * Pxs[t, i]
            s = 0.0
            for j in range(k):
                s += (Pfbar[i, j] + Pfbar[j, i]) * Pxs[t, j]
            Pxbar[i] = g * AB[i] - r * s
            quad_f += Pxs[t, i] * s
        ebar = -g + gbar * r
        rbar = -0.5 * quad_f + gbar * e
        qbar = -0.5 * r * (1.0 - e * g) - rbar * r * r
        d_ve += qbar
        for i in range(k):
            pxb = Pxbar[i] + qbar * X[t, i]
            B[i] = AB[i] - ebar * X[t, i]
            for j in range(k):
                C[i, j] = Pfbar[i, j] + pxb * X[t, j]
    grad[0] = d_alpha
    grad[1] = d_ve
    return loglik


@njit(cache=True, nogil=True)
def _objective_grad(theta, y, X, a, b_start, P_start, grad_nat, grad):  # pragma: no cover - compiled
    """Negative mean log-likelihood at ``theta = (atanh alpha11, log obs_var, log state_var)`` and,
    written to ``grad``, its gradient in theta; ``inf`` when the filter breaks down."""
    n = y.size
    d = theta.size
    alpha11 = math.tanh(theta[0])
    a[0] = alpha11
    vw = np.exp(theta[2:])
    ve = math.exp(theta[1])
    ll = _loglik_grad(y, X, a, vw, ve, b_start, P_start, grad_nat)
    if not math.isfinite(ll):
        return np.inf
    grad[0] = -grad_nat[0] * (1.0 - alpha11 * alpha11) / n
    grad[1] = -grad_nat[1] * ve / n
    for i in range(2, d):
        grad[i] = -grad_nat[i] * vw[i - 2] / n
    return -ll / n


@njit(cache=True, nogil=True)
def _projected_gradient_norm(x, g, lo, hi):  # pragma: no cover - compiled
    worst = 0.0
    for i in range(x.size):
        step = min(max(x[i] - g[i], lo[i]), hi[i]) - x[i]
        worst = max(worst, abs(step))
    return worst


@njit(cache=True, nogil=True)
def _bfgs_box(y, X, b_start, P_start, x0, lo, hi, maxiter, ftol, gtol, path):  # pragma: no cover - compiled
    """Minimise :func:`_objective_grad` over the box ``[lo, hi]`` from ``x0`` by projected BFGS.

    Each iteration: the quasi-Newton step on the free variables (those not held at a bound by
    their gradient), a projected backtracking line search (Armijo), then the BFGS update of the
    inverse Hessian (skipped without positive curvature; reset to a scaled identity when the
    active set changes or the step is not a descent direction). Stops, as L-BFGS-B does, when the
    projected gradient is at most ``gtol`` or the objective falls by at most ``ftol`` relative.

    path : (maxiter + 1, d + 1) rows (theta, objective) of the accepted points.
    Returns (x (d,), objective, iterations, status, evaluations): status 0 converged on the
    objective, 1 on the projected gradient, 2 iteration cap, 3 line search failed (at a
    minimum to rounding when the last step gained nothing), 4 breakdown at the start.
    """
    d = x0.size
    k = X.shape[1]
    a = np.ones(k)
    grad_nat = np.empty(k + 2)
    x = np.minimum(np.maximum(x0, lo), hi)
    g = np.empty(d)
    f = _objective_grad(x, y, X, a, b_start, P_start, grad_nat, g)
    evals = 1
    if not math.isfinite(f):
        return x, f, 0, 4, evals
    for i in range(d):
        path[0, i] = x[i]
    path[0, d] = f
    H = np.eye(d)
    fresh = True  # H is a (scaled) identity
    free = np.ones(d, dtype=np.bool_)
    xn = np.empty(d)
    gn = np.empty(d)
    step = np.empty(d)
    status = 2
    it = 0
    while it < maxiter:
        if _projected_gradient_norm(x, g, lo, hi) <= gtol:
            status = 1
            break
        changed = False
        for i in range(d):
            held = (x[i] <= lo[i] and g[i] > 0.0) or (x[i] >= hi[i] and g[i] < 0.0)
            if held == free[i]:
                changed = True
            free[i] = not held
        if changed and not fresh:
            H = np.eye(d)
            fresh = True
        slope = 0.0
        for i in range(d):
            s = 0.0
            if free[i]:
                for j in range(d):
                    if free[j]:
                        s -= H[i, j] * g[j]
            step[i] = s
            slope += s * g[i]
        if not slope < 0.0:
            for i in range(d):
                step[i] = -g[i] if free[i] else 0.0
            H = np.eye(d)
            fresh = True
        if fresh:  # first step of a fresh identity: at most a unit move of the largest component
            big = 0.0
            for i in range(d):
                big = max(big, abs(step[i]))
            if big > 1.0:
                for i in range(d):
                    step[i] /= big
        fn, accepted = _wolfe_search(x, f, g, step, lo, hi, y, X, a, b_start, P_start, grad_nat, xn, gn)
        evals += accepted if accepted > 0 else -accepted
        if accepted <= 0:
            if fresh:
                status = 3
                break
            H = np.eye(d)
            fresh = True
            continue
        it += 1
        sy = 0.0
        yy = 0.0
        for i in range(d):
            step[i] = xn[i] - x[i]
            gn_i = gn[i] - g[i]
            sy += step[i] * gn_i
            yy += gn_i * gn_i
        if sy > 1e-12 * yy and yy > 0.0:
            if fresh:  # scale the identity as L-BFGS-B does: s'y / y'y
                H = np.eye(d) * (sy / yy)
            Hy = np.zeros(d)
            yHy = 0.0
            for i in range(d):
                for j in range(d):
                    Hy[i] += H[i, j] * (gn[j] - g[j])
            for i in range(d):
                yHy += (gn[i] - g[i]) * Hy[i]
            rho = 1.0 / sy
            for i in range(d):
                for j in range(d):
                    H[i, j] += (rho * rho * yHy + rho) * step[i] * step[j] - rho * (Hy[i] * step[j] + step[i] * Hy[j])
            fresh = False
        gained = f - fn
        scale = max(abs(f), abs(fn), 1.0)
        for i in range(d):
            x[i] = xn[i]
            g[i] = gn[i]
            path[it, i] = x[i]
        f = fn
        path[it, d] = f
        if gained <= ftol * scale:
            if fresh:
                status = 0
                break
            H = np.eye(d)  # confirm with a fresh curvature memory, as _optimise's restarts do
            fresh = True
    return x, f, it, status, evals


@njit(cache=True, nogil=True)
def _wolfe_search(x, f, g, step, lo, hi, y, X, a, b_start, P_start, grad_nat, xn, gn):  # pragma: no cover
    """Projected line search along ``step`` for the weak Wolfe conditions (sufficient decrease 1e-4,
    curvature 0.9) by doubling and bisection; writes the accepted point to ``xn``, its gradient to
    ``gn``. Returns (objective, evaluations), evaluations negated when no point decreased f."""
    d = x.size
    gtmp = np.empty(d)
    xt = np.empty(d)
    low, high = 0.0, np.inf
    alpha = 1.0
    best_f = np.inf
    evals = 0
    for _ in range(40):
        decrease = 0.0
        for i in range(d):
            xt[i] = min(max(x[i] + alpha * step[i], lo[i]), hi[i])
            decrease += g[i] * (xt[i] - x[i])
        ft = _objective_grad(xt, y, X, a, b_start, P_start, grad_nat, gtmp)
        evals += 1
        if not (math.isfinite(ft) and ft <= f + 1e-4 * decrease and decrease < 0.0):
            high = alpha
        else:
            if ft < best_f:
                best_f = ft
                for i in range(d):
                    xn[i] = xt[i]
                    gn[i] = gtmp[i]
            slope = 0.0
            for i in range(d):
                slope += gtmp[i] * (xt[i] - x[i])
            moved = False
            for i in range(d):
                if (step[i] > 0.0 and xt[i] < hi[i]) or (step[i] < 0.0 and xt[i] > lo[i]):
                    moved = True
            if slope >= 0.9 * decrease or not moved:
                break
            low = alpha
        alpha = 0.5 * (low + high) if math.isfinite(high) else 2.0 * alpha
        if high - low < 1e-12 * max(1.0, low):
            break
    if not math.isfinite(best_f):
        return np.inf, -evals
    return best_f, evals


@dataclass
class _Likelihood:
    """Negative mean log-likelihood of the innovations as a function of the optimiser's vector
    ``theta = (atanh(alpha11), log obs_var, log state_var_1..k)``; buffers are allocated once."""

    y: np.ndarray
    X: np.ndarray
    initial_state: np.ndarray
    initial_cov: np.ndarray  # (k, k) diagonal matrix
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
        return float(_filter_loop(
            self.y, self.X, self.a, np.ascontiguousarray(state_var, dtype=np.float64), float(obs_var),
            self.initial_state, self.initial_cov, False, False,
            self._dummy_b, self._dummy_p, self._states, self._dummy_p, self._innov, self._innov_var,
        ))

    def objective(self, theta: np.ndarray) -> float:
        ll = self.loglik(math.tanh(theta[0]), math.exp(theta[1]), np.exp(theta[2:]))
        return -ll / self.n if math.isfinite(ll) else math.inf

    def objective_and_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """:meth:`objective` and its analytic gradient with respect to ``theta`` (one compiled pass)."""
        natural = _natural(theta)
        self.a[0] = natural[0]
        ll = float(_loglik_grad(self.y, self.X, self.a, natural[2:], natural[1],
                                self.initial_state, self.initial_cov, self._grad))
        if not math.isfinite(ll):
            return math.inf, np.full(theta.size, np.nan)
        # chain rule: d alpha11 / d theta_0 = 1 - alpha11^2, d v / d log v = v
        jac = np.concatenate([[1.0 - natural[0] ** 2], natural[1:]])
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
    variances stay >= 0 even when the Johansen level is not mean-reverting on the sample."""
    weights = johansen_result.weights
    level = johansen_path(values, weights)[:, 0]
    denom = float(level[:-1] @ level[:-1])
    alpha11 = float(level[1:] @ level[:-1]) / denom if denom > 0.0 else 0.0
    return first_pass_model(values, weights, fixed_alpha11=float(np.clip(alpha11, -0.999, 0.999)))


def default_prior(values: np.ndarray, johansen_result: JohansenResult) -> tuple[np.ndarray, np.ndarray]:
    """The fixed prior ``(initial_state (k,), initial_cov (k,))`` of the estimators (see module doc)."""
    initial_state = johansen_path(values, johansen_result.weights).mean(axis=0)
    return initial_state, first_pass(values, johansen_result).initial_cov.copy()


def _prior(values: np.ndarray, johansen_result: JohansenResult,
           initial_state: Any, initial_cov: Any) -> tuple[np.ndarray, np.ndarray]:
    k = values.shape[1]
    b0, p0 = default_prior(values, johansen_result)
    if initial_state is not None:
        b0 = np.asarray(initial_state, dtype=np.float64).reshape(-1)
    if initial_cov is not None:
        p0 = np.asarray(initial_cov, dtype=np.float64).reshape(-1)
    if b0.size != k or p0.size != k or not (np.all(np.isfinite(b0)) and np.all(np.isfinite(p0))):
        raise KalcointError(f"initial_state and initial_cov must be {k} finite numbers (one per state)")
    if np.any(p0 < 0):
        raise KalcointError("initial_cov must be >= 0 (it is a variance)")
    return b0, p0


def change_scale(values: np.ndarray) -> float:
    """Variance of the daily changes of asset 1's price (price units squared): the variance
    scale of the estimators' bounds and of the diagnosis."""
    scale = float(np.var(np.diff(values[:, 0])))
    if not scale > 0.0 or not math.isfinite(scale):
        raise KalcointError("the dependent asset's price never changes; there is nothing to estimate")
    return scale


def start_models(values: np.ndarray, johansen_result: JohansenResult,
                 initial_state: np.ndarray, initial_cov: np.ndarray) -> dict[str, StateSpaceModel]:
    """Starting points of the optimiser (all with the fixed prior).

    first_pass : the quantities of docs/method.md §4, the frozen hedge ratios given the state
        variance ``initial_cov_j / n`` (they must be free to move).
    chan : Chan's quantities (``Vw = 1e-4/(1 - 1e-4)``, ``Ve = 1e-3``) with the first pass's alpha11.
    balanced : half the daily price-change variance to ``Ve``, half to the level, 1% to the
        hedge ratios (spread over their price scale), with the first pass's alpha11.
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
        "chan": StateSpaceModel(alpha11, 1e-3, np.full(k, chan_vw), initial_state, initial_cov),
        "balanced": StateSpaceModel(alpha11, 0.5 * scale, vw_bal, initial_state, initial_cov),
    }


def _theta(model: StateSpaceModel, bounds: list[tuple[float, float]]) -> np.ndarray:
    raw = np.concatenate([[math.atanh(float(np.clip(model.alpha11, -ALPHA11_MAX, ALPHA11_MAX)))],
                          np.log(np.maximum([model.obs_var, *model.state_var], 1e-300))])
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


def _optimise(lik: _Likelihood, name: str, start: np.ndarray, bounds: list[tuple[float, float]],
              maxiter: int, tol: float | None) -> _Optimum:
    """L-BFGS-B from ``start``; restarted from its end point (fresh curvature memory, up to
    ``RESTARTS`` times, within the same iteration budget) while it stops on a stalled line search
    with the projected gradient above ``GTOL`` and the restart still gains."""
    from scipy.optimize import minimize

    path = [(start.copy(), lik.objective(start))]
    ftol = FTOL if tol is None else float(tol)
    iterations = 0
    res: Any = None  # scipy OptimizeResult of the last run that gained
    for _ in range(1 + RESTARTS):
        options = {"maxiter": int(maxiter) - iterations, "maxfun": 50 * int(maxiter) + 1000, "gtol": GTOL,
                   "ftol": ftol}
        # a breakdown (Q_t <= 0) gives an infinite objective and a NaN gradient: L-BFGS-B backtracks
        with np.errstate(invalid="ignore", over="ignore"):
            again = minimize(lik.objective_and_gradient, start if res is None else res.x, method="L-BFGS-B",
                             jac=True, bounds=bounds, options=options,
                             callback=lambda xk: path.append((np.array(xk, copy=True), lik.objective_at(xk))))
        iterations += int(again.nit)
        # a restart (fresh projected steepest-descent step) that cannot lower the objective confirms
        # the point: it is a minimum to rounding (where the line search's "ABNORMAL" stop comes from)
        if res is not None and not again.fun < res.fun - ftol * max(abs(res.fun), 1.0):
            if not res.success:
                converged, message = True, "CONVERGENCE: A RESTART CANNOT REDUCE F (LINE SEARCH STALLED AT A MINIMUM)"
            break
        res = again
        converged, message = bool(res.success), str(res.message)
        if (iterations >= maxiter or not math.isfinite(res.fun)
                or _projected_gradient(res.x, res.jac, bounds) <= GTOL):
            break
    trace = np.array([[math.tanh(th[0]), math.exp(th[1]), -f * lik.n] for th, f in path])
    return _Optimum(name, np.asarray(res.x), -float(res.fun) * lik.n, iterations, converged, message, trace)


_BFGS_STATUS = {
    0: "CONVERGENCE: REL_REDUCTION_OF_F_<=_FTOL",
    1: "CONVERGENCE: NORM_OF_PROJECTED_GRADIENT_<=_PGTOL",
    2: "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT",
    3: "CONVERGENCE: LINE SEARCH CANNOT REDUCE F (AT A MINIMUM TO ROUNDING)",
    4: "ABNORMAL: THE FILTER BREAKS DOWN AT THE START",
}


def _optimise_compiled(lik: _Likelihood, name: str, start: np.ndarray, bounds: list[tuple[float, float]],
                       maxiter: int, tol: float | None) -> _Optimum:
    """Projected BFGS in one compiled call (:func:`_bfgs_box`): the same objective, bounds and
    stopping rules (``ftol``, ``GTOL``) as :func:`_optimise`, without a Python round trip per step."""
    lo, hi = (np.ascontiguousarray(v, dtype=np.float64) for v in np.array(bounds).T)
    d = start.size
    path = np.full((int(maxiter) + 1, d + 1), np.nan)
    x, f, iterations, status, _ = _bfgs_box(lik.y, lik.X, lik.initial_state, lik.initial_cov,
                                            np.ascontiguousarray(start, dtype=np.float64), lo, hi, int(maxiter),
                                            FTOL if tol is None else float(tol), GTOL, path)
    rows = path[:iterations + 1]
    trace = np.column_stack([np.tanh(rows[:, 0]), np.exp(rows[:, 1]), -rows[:, d] * lik.n])
    return _Optimum(name, np.asarray(x), -float(f) * lik.n, int(iterations), status in (0, 1, 3),
                    _BFGS_STATUS[int(status)], trace)


def negligible_variances(values: np.ndarray) -> np.ndarray:
    """(k + 1,) variances below which ``(obs_var, state_var_1..k)`` count as zero (on their bound):
    ``BOUNDARY_RATIO`` times ``var(dy)`` for ``obs_var``, and for state j the variance whose drift
    over the sample, ``n * state_var_j * mean(x_j^2)``, is that fraction of ``var(dy)``."""
    n = values.shape[0]
    mean_sq = np.concatenate([[1.0], np.mean(values[:, 1:] ** 2, axis=0)])
    scale = change_scale(values)
    return BOUNDARY_RATIO * np.concatenate([[scale], scale / (n * mean_sq)])


def standard_errors(lik: _Likelihood, params: np.ndarray, negligible: np.ndarray) -> dict[str, Any]:
    """Standard errors of ``params = (alpha11, obs_var, state_var_1..k)`` from the inverse of a
    central-difference Hessian of the negative log-likelihood (relative steps ``HESSIAN_STEP``).

    A quantity on its bound (|alpha11| within ``10 * HESSIAN_STEP`` of 1, a variance below
    ``negligible``, see :func:`negligible_variances`) is held fixed and gets ``None``; when the
    Hessian of the others is not positive definite every entry is ``None``.
    """
    k = params.size - 2
    step = HESSIAN_STEP * np.maximum(np.abs(params), 1e-300)
    step[0] = min(HESSIAN_STEP, 0.5 * (1.0 - abs(params[0])))
    free = np.ones(params.size, dtype=bool)
    free[0] = 1.0 - abs(params[0]) > 10 * HESSIAN_STEP
    free[1:] = params[1:] >= negligible
    se: list[float | None] = [None] * params.size
    if np.any(free):
        def sub(p: np.ndarray) -> float:
            full = params.copy()
            full[free] = p
            return lik.natural_nll(full)

        from statsmodels.tools.numdiff import approx_hess3

        hess = approx_hess3(params[free], sub, epsilon=step[free])
        try:
            np.linalg.cholesky(hess)
        except np.linalg.LinAlgError:
            hess = None
        if hess is not None:
            cov = np.linalg.inv(hess)
            for idx, value in zip(np.flatnonzero(free), np.sqrt(np.diag(cov))):
                se[idx] = float(value) if math.isfinite(value) else None
    return {"alpha11": se[0], "obs_var": se[1], "state_var": se[2:2 + k]}


def fit(
    values: np.ndarray,
    johansen_result: JohansenResult,
    iterations: int = 2000,
    tol: float | None = None,
    *,
    initial_state: Any = None,
    initial_cov: Any = None,
    std_errors: bool = True,
    optimizer: str = "L-BFGS-B",
) -> dict[str, Any]:
    """Maximum-likelihood fit on an (n, k) price panel (first column = dependent asset).

    iterations : cap on L-BFGS-B iterations per start; tol : L-BFGS-B ``ftol`` (relative
    reduction of the objective; ``FTOL`` when None).
    optimizer : "L-BFGS-B" (scipy's, default) or "compiled" (experimental: projected BFGS in one
        compiled call per start, :func:`_bfgs_box`). The compiled one is not faster once BLAS
        threads are limited (as ``tune`` does): its line search spends about 2.5x L-BFGS-B's
        evaluations. The likelihood is multimodal on many baskets, and from the same starts the
        two end in different optima on ~5% of random triplets (higher and lower equally often).
    Returns the dict :func:`kalcoint.tuning.tune` expects: ``model``, ``iterations`` (of the
    winning start), ``converged``, ``history`` (``alpha11``, ``obs_var``, ``loglik`` along the
    winning start's path), ``options`` (the starts' log-likelihoods, the winning start) and
    ``std_errors`` (or None when ``std_errors=False``).
    """
    if iterations < 1:
        raise KalcointError(f"--iterations {iterations} must be at least 1")
    if tol is not None and not tol > 0:
        raise KalcointError(f"--tol {tol} must be > 0")
    if optimizer not in OPTIMIZERS:
        raise KalcointError(f"optimizer={optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
    values = np.ascontiguousarray(values, dtype=np.float64)
    y, X = observation_arrays(values)
    k = X.shape[1]
    b0, p0 = _prior(values, johansen_result, initial_state, initial_cov)
    lik = _Likelihood(y, X, np.ascontiguousarray(b0), np.diag(p0))
    log_scale = math.log(change_scale(values))
    var_bounds = (log_scale + LOG_VAR_SPAN[0], log_scale + LOG_VAR_SPAN[1])
    bounds = [(-math.atanh(ALPHA11_MAX), math.atanh(ALPHA11_MAX))] + [var_bounds] * (k + 1)
    run = _optimise if optimizer == "L-BFGS-B" else _optimise_compiled
    optima = [run(lik, name, _theta(m, bounds), bounds, iterations, tol)
              for name, m in start_models(values, johansen_result, b0, p0).items()]
    optima = [o for o in optima if math.isfinite(o.loglik)]
    if not optima:
        raise ComputationError("maximum likelihood failed: the filter broke down from every start")
    best = max(optima, key=lambda o: o.loglik)
    params = _natural(best.theta)
    model = StateSpaceModel(params[0], params[1], params[2:], b0, p0)
    return {
        "model": model,
        "iterations": best.iterations,
        "converged": best.converged,
        "history": {"alpha11": best.trace[:, 0], "obs_var": best.trace[:, 1], "loglik": best.trace[:, 2]},
        "options": {
            "start": best.start,
            "start_logliks": {o.start: o.loglik for o in optima},
            "optimizer": optimizer,
            "message": best.message,
            "tol": tol,
            "initial_state": "custom" if initial_state is not None else "johansen_mean",
            "initial_cov": "custom" if initial_cov is not None else "first_pass",
        },
        "std_errors": standard_errors(lik, params, negligible_variances(values)) if std_errors else None,
    }

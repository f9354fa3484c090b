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
L-BFGS-B, fed the log-likelihood and its analytic gradient from one
compiled pass (:func:`kalcoint._kernels.loglik_grad_into`: the filter forward, its adjoint backward),
run from several starts (:func:`start_models`); the best optimum
wins. Two implementations (``optimizer=``): kalcoint's compiled one (the default;
:mod:`kalcoint._kernels.lbfgsb`), which runs the starts in lockstep inside one compiled call,
and scipy's, the reference it is tested against (the same optimum to about 1e-10).

Standard errors come from :mod:`kalcoint.tuning.inference` (the observed information at the
optimum, shared with EM), on demand through :meth:`kalcoint.tuning.TunedModel.cov_params`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..cointegration import JohansenResult
from .._checks import ALPHA11_MAX, CHAN_DELTA, CHAN_OBS_VAR, check_choice, check_iterations, check_tol
from ..errors import ComputationError, KalcointError
from ..filtering import StateSpaceModel, observation_arrays
from .registry import FitResult
from .seed import first_pass_model, johansen_path
from .._kernels import filter_loop, minimise_mle, objective_grad, work_columns
from .._kernels import mle as _compiled

LOG_VAR_SPAN = (-70.0, 25.0)
"""Bounds of log(variance / var(daily change of asset 1)) in the optimiser."""
FTOL = 1e-12
"""Default L-BFGS-B ``ftol`` (relative reduction of the objective that stops it); ``tol`` overrides."""
GTOL = 1e-9
"""L-BFGS-B ``gtol`` on the projected gradient of the mean negative log-likelihood per observation."""
RESTARTS = 3
"""Most restarts of L-BFGS-B from a point where its line search stalled (see :func:`_optimise`)."""
OPTIMIZERS = ("compiled", "scipy")
"""L-BFGS-B's implementations: kalcoint's, compiled with the objective (:func:`kalcoint._kernels.minimise_mle`:
the same algorithm and constants as scipy's, the starts in lockstep), or scipy's (its compiled step
driven from Python), the reference."""
_MESSAGES = {
    _compiled.CONVERGED_F: "CONVERGENCE: RELATIVE REDUCTION OF F <= FACTR*EPSMCH",
    _compiled.CONVERGED_PG: "CONVERGENCE: NORM OF PROJECTED GRADIENT <= PGTOL",
    _compiled.ABNORMAL: "ABNORMAL: THE LINE SEARCH FAILED WITH FRESH MEMORY",
    _compiled.MAX_ITERATIONS: "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT",
    _compiled.MAX_EVALUATIONS: "STOP: TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT",
    _compiled.BROKEN_START: "ABNORMAL: THE FILTER BREAKS DOWN AT THE START",
    _compiled.RESTART_STALLED: "CONVERGENCE: A RESTART CANNOT REDUCE F (LINE SEARCH STALLED AT A MINIMUM)",
}
"""scipy's wording of how the compiled L-BFGS-B ended."""


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
    _work: np.ndarray = field(init=False, repr=False)  # the gradient pass's per-day figures
    _last: tuple[bytes, float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n, k = self.X.shape
        self._grad = np.empty(k + 2)
        self._work = np.empty((n, work_columns(k)))
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
        # math.exp, as the compiled objective_grad: the same variances to the last bit
        ll = self.loglik(alpha11, math.exp(theta[1]), np.array([math.exp(v) for v in theta[2:]]))
        return -ll / self.n if math.isfinite(ll) else math.inf

    def objective_and_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """:meth:`objective` and its analytic gradient with respect to ``theta`` (one compiled pass)."""
        theta = np.ascontiguousarray(theta, dtype=np.float64)
        grad = np.empty(theta.size)
        free = self.fixed_alpha11 is None
        value = objective_grad(
            theta,
            free,
            0.0 if free else self.fixed_alpha11,
            self.y,
            self.X,
            self.a,
            self.initial_state,
            self.initial_cov,
            self._work,
            self._grad,
            grad,
        )
        self._last = (theta.tobytes(), value)
        return value, grad

    def minimise(
        self, names: list[str], starts: list[np.ndarray], bounds: list[tuple[float, float]], maxiter: int, ftol: float
    ) -> list[_Optimum]:
        """The compiled L-BFGS-B with :func:`_optimise`'s restarts from each of ``starts`` (1 to 3, in
        lockstep; see :data:`OPTIMIZERS`), one optimum per start."""
        lo, hi = (np.array(b, dtype=np.float64) for b in zip(*bounds))
        runs, size = len(starts), starts[0].size
        paths = np.empty((runs, maxiter + 1, size + 1))
        xs, gs, fs = np.empty((runs, size)), np.empty((runs, size)), np.empty(runs)
        counts = np.empty((runs, 2), dtype=np.int64)
        free = self.fixed_alpha11 is None
        minimise_mle(
            np.array(starts, dtype=np.float64),
            lo,
            hi,
            ftol,
            GTOL,
            maxiter,
            RESTARTS,
            free,
            0.0 if free else self.fixed_alpha11,
            self.y,
            self.X,
            self.a,
            self.initial_state,
            self.initial_cov,
            np.empty((3, *self._work.shape)),  # the work of up to 3 interleaved passes
            paths,
            xs,
            fs,
            gs,
            counts,
        )
        optima = []
        for j, name in enumerate(names):
            iterations, status = (int(c) for c in counts[j])
            path = paths[j, : iterations + 1]
            trace = np.column_stack([np.tanh(path[:, 0]), np.exp(path[:, 1]), -path[:, -1] * self.n])
            converged = status in (_compiled.CONVERGED_F, _compiled.CONVERGED_PG, _compiled.RESTART_STALLED)
            loglik = -float(fs[j]) * self.n
            optima.append(_Optimum(name, xs[j], loglik, iterations, converged, _MESSAGES[status], trace))
        return optima

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


def default_prior(
    values: np.ndarray, johansen_result: JohansenResult, *, first: StateSpaceModel | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The fixed prior ``(initial_state (k,), initial_cov (k,))`` of the estimators (see module doc);
    ``first``: :func:`first_pass`'s model when already computed.

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices().to_numpy()
    >>> [a.shape for a in default_prior(p, kc.johansen(p))]
    [(3,), (3,)]
    """
    initial_state = johansen_path(values, johansen_result.weights).mean(axis=0)
    first = first_pass(values, johansen_result) if first is None else first
    return initial_state, first.initial_cov.copy()


def _prior(
    values: np.ndarray,
    johansen_result: JohansenResult,
    initial_state: Any,
    initial_cov: Any,
    first: StateSpaceModel | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    k = values.shape[1]
    b0, p0 = default_prior(values, johansen_result, first=first)
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
    values: np.ndarray,
    johansen_result: JohansenResult,
    initial_state: np.ndarray,
    initial_cov: np.ndarray,
    *,
    first: StateSpaceModel | None = None,
) -> dict[str, StateSpaceModel]:
    """Starting points of the optimiser (all with the fixed prior; ``first``: :func:`first_pass`'s
    model when already computed).

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
    first = first_pass(values, johansen_result) if first is None else first
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


@dataclass(frozen=True)
class _LbfgsbResult:
    """What :func:`_lbfgsb` returns (the fields of scipy's ``OptimizeResult`` that are used)."""

    x: np.ndarray
    fun: float
    jac: np.ndarray
    nit: int
    nfev: int
    success: bool
    message: str


def _setulb() -> Any:
    """scipy's compiled L-BFGS-B step ``setulb`` when it has the interface of scipy >= 1.15 (the C
    translation, which :func:`_lbfgsb` drives), else None."""
    try:
        from scipy.optimize import _lbfgsb, _lbfgsb_py
    except ImportError:  # pragma: no cover - a scipy without the private module
        return None
    doc = getattr(_lbfgsb.setulb, "__doc__", "") or ""
    ok = "ln_task" in doc and hasattr(_lbfgsb_py, "status_messages")
    return _lbfgsb.setulb if ok else None


def _lbfgsb(
    fun_grad: Any,
    x0: np.ndarray,
    bounds: list[tuple[float, float]],
    ftol: float,
    gtol: float,
    maxiter: int,
    maxfun: int,
    callback: Any,
) -> _LbfgsbResult:
    """L-BFGS-B from ``x0`` within finite ``bounds``: the loop of scipy's
    ``minimize(method="L-BFGS-B", jac=True)`` (same compiled steps, same calls of ``fun_grad``, same
    result) without its per-evaluation wrappers; scipy's ``minimize`` where the compiled step has
    another interface. ``callback(x)`` is called at each new iterate."""
    setulb = _setulb()
    if setulb is None:  # pragma: no cover - scipy < 1.15
        from scipy.optimize import minimize

        options = {"maxiter": maxiter, "maxfun": maxfun, "gtol": gtol, "ftol": ftol}
        r = minimize(fun_grad, x0, method="L-BFGS-B", jac=True, bounds=bounds, options=options, callback=callback)
        return _LbfgsbResult(r.x, float(r.fun), r.jac, int(r.nit), int(r.nfev), bool(r.success), str(r.message))
    from scipy.optimize._lbfgsb_py import status_messages, task_messages

    m, maxls = 10, 20  # scipy's defaults maxcor, maxls
    lo, hi = (np.array(b, dtype=np.float64) for b in zip(*bounds))
    n = lo.size
    x = np.clip(np.array(x0, dtype=np.float64), lo, hi)
    nbd = np.full(n, 2, dtype=np.int32)  # both bounds finite
    f, g = 0.0, np.zeros(n)
    nfev, nit = 0, 0
    wa = np.zeros(2 * m * n + 5 * n + 11 * m * m + 8 * m)
    iwa = np.zeros(3 * n, dtype=np.int32)
    task = np.zeros(2, dtype=np.int32)
    ln_task = np.zeros(2, dtype=np.int32)
    lsave = np.zeros(4, dtype=np.int32)
    isave = np.zeros(44, dtype=np.int32)
    dsave = np.zeros(29)
    factr = ftol / np.finfo(float).eps
    x_key = b""  # the bytes of the x where fun_grad was last called
    while True:
        setulb(m, x, lo, hi, nbd, f, g, factr, gtol, wa, iwa, task, lsave, isave, dsave, maxls, ln_task)
        if task[0] == 3:
            key = x.tobytes()
            if key != x_key:
                x_key = key
                f, g = fun_grad(x.copy())
                g = np.array(g, dtype=np.float64)  # setulb's own copy (scipy copies g before each call)
                nfev += 1
        elif task[0] == 1:
            nit += 1
            callback(x)
            if nit >= maxiter:
                task[0], task[1] = 5, 504
            elif nfev > maxfun:
                task[0], task[1] = 5, 502
        else:
            break
    success = task[0] == 4
    message = status_messages[int(task[0])] + ": " + task_messages[int(task[1])]
    return _LbfgsbResult(x, float(f), g, nit, nfev, bool(success), message)


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
    path = [(start.copy(), lik.objective(start))]
    ftol = FTOL if tol is None else float(tol)
    iterations = 0
    res: Any = None  # scipy OptimizeResult of the last run that gained
    for _ in range(1 + RESTARTS):
        # a breakdown (Q_t <= 0) gives an infinite objective and a NaN gradient: L-BFGS-B backtracks
        with np.errstate(invalid="ignore", over="ignore"):
            again = _lbfgsb(
                lik.objective_and_gradient,
                start if res is None else res.x,
                bounds,
                ftol,
                GTOL,
                int(maxiter) - iterations,
                50 * int(maxiter) + 1000,
                lambda xk: path.append((np.array(xk, copy=True), lik.objective_at(xk))),
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


def _run_starts(
    lik: _Likelihood,
    models: dict[str, StateSpaceModel],
    bounds: list[tuple[float, float]],
    iterations: int,
    tol: float | None,
    optimizer: str,
) -> list[_Optimum]:
    """The optima of L-BFGS-B from every starting model (see :func:`fit`'s ``optimizer``)."""
    names = list(models)
    thetas = [_theta(models[name], bounds) for name in names]
    if optimizer == "scipy":
        return [_optimise(lik, name, theta, bounds, iterations, tol) for name, theta in zip(names, thetas)]
    ftol = FTOL if tol is None else float(tol)
    return [  # in lockstep, three at a time
        optimum
        for i in range(0, len(names), 3)
        for optimum in lik.minimise(names[i : i + 3], thetas[i : i + 3], bounds, iterations, ftol)
    ]


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
    optimizer: str = "compiled",
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
    optimizer : "compiled" (default) runs kalcoint's compiled L-BFGS-B from every start of
        :func:`start_models` (the same algorithm and constants as scipy's, the starts in lockstep,
        the whole optimisation in one compiled call: about 2x less time); "scipy" runs scipy's
        L-BFGS-B, the reference. On real triplets both end at the same optimum (log-likelihoods
        within 1e-6) on over 99% of fits, mostly to about 1e-10.

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
    check_choice(optimizer, OPTIMIZERS, "optimizer")
    values = np.ascontiguousarray(values, dtype=np.float64)
    y, X = observation_arrays(values)
    k = X.shape[1]
    first = first_pass(values, johansen_result)
    b0, p0 = _prior(values, johansen_result, initial_state, initial_cov, first)
    lik = _Likelihood(y, X, np.ascontiguousarray(b0), np.diag(p0), fixed_alpha11)
    log_scale = math.log(change_scale(values))
    var_bounds = (log_scale + LOG_VAR_SPAN[0], log_scale + LOG_VAR_SPAN[1])
    alpha_bound = math.atanh(ALPHA11_MAX) if fixed_alpha11 is None else 0.0
    bounds = [(-alpha_bound, alpha_bound)] + [var_bounds] * (k + 1)
    models = start_models(values, johansen_result, b0, p0, first=first)
    optima = [o for o in _run_starts(lik, models, bounds, iterations, tol, optimizer) if math.isfinite(o.loglik)]
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
            "optimizer": "L-BFGS-B" if optimizer == "scipy" else "L-BFGS-B (compiled)",
            "message": best.message,
            "tol": tol,
            "initial_state": "custom" if initial_state is not None else "johansen_mean",
            "initial_cov": "custom" if initial_cov is not None else "first_pass",
            "fixed_alpha11": fixed_alpha11,
        },
    )

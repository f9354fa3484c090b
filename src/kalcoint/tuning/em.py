"""Expectation-maximisation (Shumway and Stoffer) under the method's constraints, then a check
that it ended at a maximum (docs/method.md §11).

E-step: the filter of docs/method.md §3 and a fixed-interval smoother give the
smoothed states ``b_{t|n}``, covariances ``P_{t|n}`` and lag-one covariances
``Cov(b_t, b_{t-1} | all)``, from the compiled smoother of
:func:`kalcoint.filtering.rts_smoother`. For k = 2 and k = 3 the whole EM step (filter, smoother
and the M-step's sums) is one compiled pass on scalars (``em_map_k2`` and ``em_map_k3`` in
``kalcoint._kernels.em``: the same numbers to the last bit as the passes on arrays).

M-step, with ``A = diag(alpha11, 1, ..., 1)`` and a diagonal ``Vw`` the expected
complete-data log-likelihood splits into one term per state, so the
constrained maximum is exact (this is EM, not an approximation of it), with
``S11_i = sum_{t>=2} E[b_{i,t}^2]``, ``S00_i = sum_{t>=2} E[b_{i,t-1}^2]``,
``S10_i = sum_{t>=2} E[b_{i,t} b_{i,t-1}]``:

* ``alpha11 = S10_1 / S00_1``, clipped to ``[-ALPHA11_MAX, ALPHA11_MAX]``; the
  expected log-likelihood is a concave quadratic in ``alpha11`` after
  profiling ``Vw_11``, so the clipped value is the constrained maximum;
* ``Vw_i = (S11_i - 2 a_i S10_i + a_i^2 S00_i) / (n - 1)``;
* ``Ve = sum_t [(y_t - x_t b_{t|n})^2 + x_t P_{t|n} x_t'] / n``.

The prior ``(initial_state, initial_cov)`` is held fixed, the same as for
:mod:`kalcoint.tuning.mle` (estimating it by EM makes ``initial_cov`` collapse
to zero). Each EM step therefore cannot lower the log-likelihood of the
innovations; the history is kept and checked (``options["monotone"]``).

Plain EM is slow here (a hedge-ratio variance creeping towards zero, alpha11
near 1): on EWA/EWC/IGE 2000 plain steps end 0.36 below the maximum
log-likelihood. The default therefore accelerates it with SQUAREM (Varadhan and
Roland, 2008) under a monotone safeguard, which ends 0.023 below it in the same
2000 steps; ``accelerate="none"`` gives plain EM. Starts: ``BURN_IN`` plain
steps from each of :func:`kalcoint.tuning.mle.start_models`, then the best one
is continued. Both loops are one compiled call each (``em_loop``, ``em_squarem``); the SQUAREM
loop's plain Python form, ``_EM.squarem_reference``, is what the tests hold it equal to. SQUAREM
turns a difference in the last bit of a step length into another path to the same plateau (the
extrapolation amplifies it), so its coordinates and norm are computed with the scalar functions of
``math`` in both forms, the same numbers to the last bit.

The EM steps stop when the log-likelihood stops rising (relative rise below
``tol``) or the budget ends. Neither is convergence: a slow EM creeps along a
plateau (a synthetic k = 5 basket stopped "converged" 0.020 below the maximum).
So the end point is tested: the projected gradient of the mean negative
log-likelihood per observation, in (atanh alpha11, log variances), must be at
most the MLE's ``GTOL``. If it is not, the default ``polish="lbfgs"`` continues
from the EM point with L-BFGS-B, the maximum-likelihood optimiser (same
likelihood, same prior, same bounds), and ``converged`` is that optimiser's
verdict; ``options`` records where the EM steps ended (``em_loglik``,
``em_gradient``) and what the polish added (``polish_iterations``,
``polish_gain``). ``polish="none"`` is pure EM: it reports ``converged =
False`` with a ``reason`` unless the EM steps stopped at a point whose
projected gradient is at most ``EM_GTOL``.

A stationary point is not always the maximum: the likelihood can have several. On the
first 70% of EWG/EWQ/EWN (country ETFs, 2016-2021) the EM steps and their polish end at a
local maximum (log-likelihood 784.37, alpha11 0.942) while L-BFGS-B from the MLE's starts
reaches 790.90 (alpha11 on its bound). So, by default (``mle_starts=True``, with the
polish), L-BFGS-B also runs from every start of :func:`kalcoint.tuning.mle.start_models`
exactly as the MLE runs it, and the highest log-likelihood wins (the EM point on a tie
within ``START_MARGIN``): the result is never more than ``START_MARGIN`` below the MLE's
log-likelihood.
``options["winner"]`` says which (``"em"`` or the start's name), ``em_point_loglik``
where the EM steps and polish ended, ``start_gain`` what the start added.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..cointegration import JohansenResult
from .._checks import check_iterations, check_tol
from ..errors import ComputationError, KalcointError
from ..filtering import StateSpaceModel, observation_arrays
from .mle import (
    ALPHA11_MAX,
    GTOL,
    LOG_VAR_SPAN,
    _Likelihood,
    _optimise,
    _natural,
    _prior,
    _projected_gradient,
    _run_starts,
    _theta,
    change_scale,
    start_models,
)
from .registry import FitResult
from .._kernels import em_loop, em_map, em_squarem

EM_TOL = 1e-9
"""Default stop: relative rise of the log-likelihood, ``(ll_m - ll_{m-1}) / |ll_{m-1}|``, below it."""
MONOTONE_SLACK = 1e-8
"""A fall of the log-likelihood larger than this (relative) is reported as ``monotone = False``."""


class _EM:
    """EM runs on one sample: the compiled EM map plus its work arrays (allocated once)."""

    def __init__(self, y: np.ndarray, X: np.ndarray, initial_state: np.ndarray, initial_cov: np.ndarray) -> None:
        n, k = X.shape
        self.y, self.X = y, X
        self.b0, self.P0 = np.ascontiguousarray(initial_state), np.diag(initial_cov)
        self.ws_b, self.ws_P = np.empty((3, n, k)), np.empty((4, n, k, k))
        self.maps = 0  # EM steps computed so far

    def step(self, params: np.ndarray) -> tuple[np.ndarray, float]:
        """One EM step: (the M-step's quantities, log-likelihood at ``params``); on breakdown (NaN
        quantities, -inf)."""
        new = np.empty_like(params)
        ll = em_map(self.y, self.X, self.b0, self.P0, params, ALPHA11_MAX, self.ws_b, self.ws_P, new)
        self.maps += 1
        if math.isfinite(ll):
            return new, float(ll)
        new.fill(np.nan)  # breakdown: em_map wrote nothing
        return new, -math.inf

    def plain(self, params: np.ndarray, iterations: int, tol: float) -> tuple[np.ndarray, np.ndarray, bool]:
        """Plain EM: (last quantities, (steps + 1, 3) history, converged)."""
        params = params.copy()
        hist = np.full((iterations + 1, 3), np.nan)
        steps, status = em_loop(
            self.y, self.X, self.b0, self.P0, params, int(iterations), tol, ALPHA11_MAX, self.ws_b, self.ws_P, hist
        )
        self.maps += steps + 1
        if status < 0:
            raise ComputationError(f"EM broke down at step {steps}: an innovation variance reached zero")
        return params, hist[: steps + 1], status == 1

    def squarem(self, params: np.ndarray, iterations: int, tol: float) -> tuple[np.ndarray, np.ndarray, bool]:
        """SQUAREM-accelerated EM (Varadhan and Roland, 2008, scheme S3) with the monotone safeguard:
        an extrapolated point is kept only if its log-likelihood is at least that after two plain
        steps (the fallback, step length -1, is exactly two plain steps), and every cycle ends with a
        plain step, so the log-likelihood of the cycles' starting points never falls.
        At most ``iterations`` EM steps plus one final evaluation; one history row per cycle:
        (last cycle's starting point (k + 2,), (cycles, 3) history, converged).

        One compiled call (:func:`kalcoint._kernels.em_squarem`), the arithmetic of
        :meth:`squarem_reference` (the same numbers to the last bit)."""
        out = np.empty_like(params)
        hist = np.empty((max(int(iterations), 0) + 1, 3))
        p = np.ascontiguousarray(params, dtype=np.float64)
        rows, maps, status = em_squarem(
            self.y, self.X, self.b0, self.P0, p, int(iterations), tol, ALPHA11_MAX, self.ws_b, self.ws_P, hist, out
        )
        self.maps += maps
        if status < 0:
            raise ComputationError("EM broke down: an innovation variance reached zero")
        return out, hist[:rows], status == 1

    def squarem_reference(self, params: np.ndarray, iterations: int, tol: float) -> tuple[np.ndarray, np.ndarray, bool]:
        """:meth:`squarem` as a plain Python loop over :meth:`step` (the reference the kernel is
        tested against)."""
        rows = []
        p0 = params.copy()
        budget = self.maps + iterations + 1
        ll_prev = -math.inf
        while True:
            p1, ll0 = self.step(p0)
            rows.append((p0[0], p0[1], ll0))
            if not math.isfinite(ll0):
                raise ComputationError("EM broke down: an innovation variance reached zero")
            if len(rows) > 1 and ll0 - ll_prev <= tol * abs(ll_prev):
                return p0, np.array(rows), True
            if self.maps >= budget:
                return p0, np.array(rows), False
            ll_prev = ll0
            if budget - self.maps < 3:  # no room for a cycle: a plain step
                p0 = p1
                continue
            p2, ll1 = self.step(p1)
            u0, u1, u2 = _unconstrained(p0), _unconstrained(p1), _unconstrained(p2)
            r, v = u1 - u0, u2 - 2.0 * u1 + u0
            norm_v = _norm(v)
            alpha = min(-_norm(r) / norm_v, -1.0) if norm_v > 0.0 else -1.0
            while True:
                if budget - self.maps < 3:  # keep one step for the fallback and one for the final evaluation
                    alpha = -1.0
                trial = p2 if alpha == -1.0 else _constrained(u0 - 2.0 * alpha * r + alpha * alpha * v)
                p_next, ll_trial = self.step(trial)
                if alpha == -1.0 or ll_trial >= ll1:
                    break
                alpha = (alpha - 1.0) / 2.0 if alpha < -2.0 else -1.0
            p0 = p_next


# SQUAREM's coordinates and norm, element by element with the scalar functions of ``math`` (the
# compiled loop calls the same ones; numpy's vector log and exp can differ from them in the last bit)


def _unconstrained(params: np.ndarray) -> np.ndarray:
    """(atanh alpha11, log variances) of ``params`` (alpha11 clipped, variances floored at 1e-300)."""
    u = np.empty_like(params)
    u[0] = math.atanh(min(max(params[0], -ALPHA11_MAX), ALPHA11_MAX))
    for i in range(1, params.size):
        u[i] = math.log(float(np.maximum(params[i], 1e-300)))
    return u


def _constrained(u: np.ndarray) -> np.ndarray:
    """The inverse of :func:`_unconstrained` (log variances capped at 700)."""
    p = np.empty_like(u)
    p[0] = min(max(math.tanh(u[0]), -ALPHA11_MAX), ALPHA11_MAX)
    for i in range(1, u.size):
        p[i] = math.exp(float(np.minimum(u[i], 700.0)))
    return p


def _norm(x: np.ndarray) -> float:
    """Euclidean norm, the squares summed in index order."""
    s = 0.0
    for xi in x.tolist():
        s += xi * xi
    return math.sqrt(s)


ACCELERATIONS = ("squarem", "none")
POLISHES = ("lbfgs", "none")
EM_GTOL = 1e-6
"""Stationarity test of the EM point without polish: the projected gradient of the mean negative
log-likelihood per observation, in (atanh alpha11, log variances), at most this."""
POLISH_ITERATIONS = 2000
"""Cap on the L-BFGS-B iterations of the polish."""
BURN_IN = 20
"""EM steps run from every start before the best one is continued."""
START_MARGIN = 1e-3
"""An L-BFGS-B run from one of the maximum-likelihood starts replaces the EM point only when its
log-likelihood is higher by more than this: at the same maximum the two runs stop a few 1e-6 apart
along its flat directions (EWA/EWC/IGE: 2.9e-6), and such a tie keeps the EM point."""


def _bounds(values: np.ndarray, k: int) -> list[tuple[float, float]]:
    """The maximum-likelihood optimiser's bounds (see :mod:`kalcoint.tuning.mle`)."""
    log_scale = math.log(change_scale(values))
    var_bounds = (log_scale + LOG_VAR_SPAN[0], log_scale + LOG_VAR_SPAN[1])
    return [(-math.atanh(ALPHA11_MAX), math.atanh(ALPHA11_MAX))] + [var_bounds] * (k + 1)


def _stationarity(lik: _Likelihood, params: np.ndarray, bounds: list[tuple[float, float]]) -> tuple[float, float]:
    """(log-likelihood, projected gradient of the mean negative log-likelihood per observation in
    (atanh alpha11, log variances)) at ``params = (alpha11, obs_var, state_var_1..k)``."""
    model = StateSpaceModel(params[0], params[1], params[2:], lik.initial_state, np.diag(lik.initial_cov))
    theta = _theta(model, bounds)
    value, grad = lik.objective_and_gradient(theta)
    if not math.isfinite(value):
        return -math.inf, math.inf
    return -value * lik.n, _projected_gradient(theta, grad, bounds)


def _polish(
    lik: _Likelihood, params: np.ndarray, bounds: list[tuple[float, float]], iterations: int
) -> tuple[np.ndarray, Any]:
    """L-BFGS-B (the maximum-likelihood optimiser) from the EM point: (its end point, the optimum record)."""
    model = StateSpaceModel(params[0], params[1], params[2:], lik.initial_state, np.diag(lik.initial_cov))
    opt = _optimise(lik, "em", _theta(model, bounds), bounds, iterations, None)
    return np.concatenate([[math.tanh(opt.theta[0])], np.exp(opt.theta[1:])]), opt


def _best_start(
    lik: _Likelihood, starts: dict[str, StateSpaceModel], bounds: list[tuple[float, float]], iterations: int
) -> tuple[Any, dict[str, float]]:
    """L-BFGS-B from every maximum-likelihood start, as :func:`kalcoint.tuning.mle.fit` runs them by
    default with the same ``iterations``: (the optimum with the highest log-likelihood or None, each
    start's log-likelihood)."""
    optima = [o for o in _run_starts(lik, starts, bounds, iterations, None, "compiled") if math.isfinite(o.loglik)]
    best = max(optima, key=lambda o: o.loglik) if optima else None
    return best, {o.start: o.loglik for o in optima}


def fit(
    values: np.ndarray,
    johansen_result: JohansenResult,
    iterations: int = 2000,
    tol: float | None = None,
    *,
    initial_state: Any = None,
    initial_cov: Any = None,
    start: str | None = None,
    accelerate: str = "squarem",
    polish: str = "lbfgs",
    mle_starts: bool = True,
) -> FitResult:
    """EM fit on an (n, k) price panel (first column = dependent asset).

    iterations : maximum number of EM steps (smoother passes but the final evaluation), burn-in
        included; ``iterations`` in the result counts the EM steps run;
    tol : the EM steps stop when the relative rise of the log-likelihood from one history row to the
        next falls below it (``EM_TOL`` when None). That is a plateau, not yet convergence.
    start : one of :func:`kalcoint.tuning.mle.start_models`; default: ``BURN_IN`` plain steps from
        each, then the one with the highest log-likelihood is continued.
    accelerate : "squarem" (default; one history row per SQUAREM cycle of three or more EM steps)
        or "none" (plain EM; one row per step).
    polish : "lbfgs" (default): where the EM steps end, test stationarity (projected gradient of the
        mean negative log-likelihood <= the MLE's ``GTOL``); if the point is not stationary, continue
        with L-BFGS-B, the maximum-likelihood optimiser, from the EM point. "none": pure EM.
    mle_starts : with ``polish="lbfgs"``, also run L-BFGS-B from each start of
        :func:`kalcoint.tuning.mle.start_models` (``iterations`` per start, as the MLE) and keep
        the highest log-likelihood (default True); ignored with ``polish="none"``.
    Returns the dict :func:`kalcoint.tuning.tune` expects. ``converged`` says that the result is a
    stationary point: with the polish, the verdict of the L-BFGS-B run that ended there (projected
    gradient <= ``GTOL``, or no relative reduction of the objective above its ``ftol``); without,
    that the EM steps stopped on ``tol`` at a point whose projected gradient is <= ``EM_GTOL``. It
    does not say that no higher maximum exists: without ``mle_starts`` a stationary point can lie
    below the MLE's (see the module doc; :func:`kalcoint.compare` flags such an ``em`` row).
    ``history["loglik"]`` is the log-likelihood along the path that ended at the result,
    non-decreasing: the EM rows from the chosen start, then the polish's iterations, or, when
    a start of ``mle_starts`` won, that L-BFGS-B run's iterations. ``options`` records
    ``em_loglik``, ``em_converged`` (the plateau), ``em_gradient`` (projected gradient at the EM
    point), the polish's iterations and gain, ``em_point_loglik`` (after the polish),
    ``start_logliks``, ``winner``, ``start_gain``, and ``reason`` when ``converged`` is false.

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices().to_numpy()
    >>> round(fit(p, kc.johansen(p), iterations=200).model.alpha11, 2)
    0.96
    """
    iterations = check_iterations(iterations)
    tol = check_tol(tol)
    if accelerate not in ACCELERATIONS:
        raise KalcointError(
            f"EM accelerate {accelerate!r} is not one of {', '.join(ACCELERATIONS)}", params="accelerate"
        )
    if polish not in POLISHES:
        raise KalcointError(f"EM polish {polish!r} is not one of {', '.join(POLISHES)}", params="polish")
    tol = EM_TOL if tol is None else float(tol)
    values = np.ascontiguousarray(values, dtype=np.float64)
    y, X = observation_arrays(values)
    b0, p0 = _prior(values, johansen_result, initial_state, initial_cov)
    starts = start_models(values, johansen_result, b0, p0)
    if start is not None and start not in starts:
        raise KalcointError(f"EM start {start!r} is not one of {', '.join(starts)}", params="start")
    em = _EM(y, X, b0, p0)
    vectors = {name: np.concatenate([[m.alpha11, m.obs_var], m.state_var]) for name, m in starts.items()}
    burn: dict[str, float] = {}
    head = np.empty((0, 3))
    if start is None and iterations > 2 * len(starts) * BURN_IN:
        burned = {name: em.plain(vec, BURN_IN, 0.0) for name, vec in vectors.items()}
        burn = {name: float(run[1][-1, 2]) for name, run in burned.items()}
        start = max(burn, key=burn.__getitem__)  # a few plain steps from each start; the best goes on
        vectors[start], head = burned[start][0], burned[start][1][:-1]
    chosen = start or "first_pass"
    run = em.squarem if accelerate == "squarem" else em.plain
    params, hist, em_converged = run(vectors[chosen], iterations - em.maps, tol)
    hist = np.concatenate([head, hist])
    rises = np.diff(hist[:, 2])
    monotone = bool(np.all(rises >= -MONOTONE_SLACK * np.abs(hist[:-1, 2])))
    em_steps = int(em.maps - 1)
    lik = _Likelihood(y, X, np.ascontiguousarray(b0), np.diag(p0))
    bounds = _bounds(values, X.shape[1])
    em_loglik, em_gradient = _stationarity(lik, params, bounds)
    info: dict[str, Any] = {
        "em_steps": em_steps,
        "em_loglik": float(hist[-1, 2]),
        "em_converged": em_converged,
        "em_gradient": em_gradient,
        "polish": polish,
        "polish_iterations": 0,
        "polish_gain": 0.0,
    }
    point_loglik = em_loglik
    if polish == "none" or em_gradient <= GTOL:
        converged = em_converged and em_gradient <= (EM_GTOL if polish == "none" else GTOL)
        if not converged:
            info["reason"] = (
                f"{'the EM steps stopped on a plateau (relative rise < tol)' if em_converged else f'all {em_steps} EM steps ran'}"
                f" at a point whose projected gradient is {em_gradient:.3g} > {EM_GTOL:g}: not a maximum yet"
            )
    else:
        polished, opt = _polish(lik, params, bounds, POLISH_ITERATIONS)
        if opt.loglik >= em_loglik:
            params, point_loglik = polished, opt.loglik
            info["polish_gain"] = float(opt.loglik - em_loglik)
            hist = np.concatenate([hist, opt.trace[1:]])
        info["polish_iterations"] = int(opt.iterations)
        info["polish_message"] = opt.message
        converged = bool(opt.converged)
        if not converged:
            info["reason"] = f"the L-BFGS-B polish from the EM point did not converge: {opt.message}"
    info.update(em_point_loglik=point_loglik, winner="em", start_logliks={}, start_gain=0.0)
    if polish == "lbfgs" and mle_starts:
        best, info["start_logliks"] = _best_start(lik, starts, bounds, iterations)
        if best is not None and best.loglik > point_loglik + START_MARGIN:
            params, hist, converged = _natural(best.theta), best.trace, bool(best.converged)
            info.update(winner=best.start, start_gain=float(best.loglik - point_loglik))
            info.pop("reason", None)
            if not converged:
                info["reason"] = f"L-BFGS-B from the {best.start} start did not converge: {best.message}"
    model = StateSpaceModel(params[0], params[1], params[2:], b0, p0)
    return FitResult(
        model=model,
        iterations=em_steps,
        converged=bool(converged),
        history={"alpha11": hist[:, 0], "obs_var": hist[:, 1], "loglik": hist[:, 2]},
        options={
            "start": chosen,
            "burn_in_logliks": burn,
            "accelerate": accelerate,
            "tol": tol,
            "monotone": monotone,
            **info,
            "initial_state": "custom" if initial_state is not None else "johansen_mean",
            "initial_cov": "custom" if initial_cov is not None else "first_pass",
        },
    )

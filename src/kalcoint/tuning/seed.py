"""The seed method's adaptive tuning (spec sections 4 and 5).

The first pass is built from the Johansen state path ``bJ`` (section 4); every
later pass re-estimates ``alpha11``, ``obs_var``, ``state_var`` and
``initial_cov`` from the previous pass's posterior states (section 5). All
passes run in one compiled loop (:func:`_seed_passes`) around the shared filter
recursion :func:`kalcoint.filtering._filter_loop`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from .._numba_cache import njit

from ..cointegration import JohansenResult
from ..errors import ComputationError, KalcointError
from ..filtering import StateSpaceModel, _filter_loop

RESIDUALS = ("posterior", "prior")
BM_OPTIONS = ("johansen", "sample")


@dataclass(frozen=True)
class SeedOptions:
    """Options of section 5.

    residual : "posterior" (spec default, ``y - x.b_{t|t}``) or "prior" (the innovation).
    bm : "johansen" (default, mean of the Johansen path) or "sample" (mean of the posterior states),
        the centre used for ``initial_cov`` in later passes.
    fixed_alpha11 : hold ``alpha11`` at this value in every pass (1.0 gives the identity comparison).
    """

    residual: str = "posterior"
    bm: str = "johansen"
    fixed_alpha11: float | None = None

    def __post_init__(self) -> None:
        if self.residual not in RESIDUALS:
            raise KalcointError(f"residual={self.residual!r} is not one of {', '.join(RESIDUALS)}")
        if self.bm not in BM_OPTIONS:
            raise KalcointError(f"bm={self.bm!r} is not one of {', '.join(BM_OPTIONS)}")


def johansen_path(prices: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(n, k) Johansen state path ``bJ_t = (y_port,t / w_1, -w_2/w_1, ..., -w_k/w_1)`` (section 2)."""
    w = np.asarray(weights, dtype=np.float64)
    n = prices.shape[0]
    path = np.empty((n, w.size))
    path[:, 0] = (prices @ w) / w[0]
    path[:, 1:] = -w[1:] / w[0]
    return path


def first_pass_model(
    prices: np.ndarray, weights: np.ndarray, fixed_alpha11: float | None = None
) -> StateSpaceModel:
    """The quantities of the first pass (section 4), from an (n, k) price panel and Johansen weights.

    One compiled sweep (:func:`_first_pass_kernel`): the Johansen level ``bJ_1``, its lag-1
    regression ``alpha11``, ``obs_var = var(bJ_1)``, ``state_var = diag(Gamma - A Gamma A')`` (only
    the level's entry is non-zero) and ``initial_cov = obs_var diag((sum_t (x_t A)'(x_t A) / n)^-1)``."""
    w = np.ascontiguousarray(weights, dtype=np.float64)
    k = w.size
    out = np.empty(2 + 2 * k)
    status = _first_pass_kernel(np.ascontiguousarray(prices, dtype=np.float64), w, fixed_alpha11 is not None,
                                float(fixed_alpha11 or 0.0), out)
    if status == 1:
        raise ComputationError("the Johansen level path is identically zero; alpha11 is undefined")
    alpha11, obs_var = out[0], out[1]
    if status == 2:
        raise ComputationError("first pass: sum (x_t A)'(x_t A) is singular; are two price series collinear?")
    state_var, initial_cov = out[2:2 + k].copy(), out[2 + k:].copy()
    if np.any(state_var < 0) or np.any(initial_cov < 0) or obs_var <= 0:
        raise ComputationError(
            f"first pass gives a negative variance (alpha11={alpha11:.4g}, |alpha11| > 1?); "
            "the Johansen level is not mean-reverting on this sample"
        )
    initial_state = np.concatenate([[0.0], -w[1:] / w[0]])
    return StateSpaceModel(float(alpha11), float(obs_var), state_var, initial_state, initial_cov)


@njit(cache=True, nogil=True)
def _first_pass_kernel(prices, w, fixed, fixed_alpha11, out):  # pragma: no cover - compiled
    """Write (alpha11, obs_var, state_var (k), initial_cov (k)) of the first pass to ``out``.
    Returns 0, 1 (the Johansen level is identically zero) or 2 (singular moment matrix)."""
    n, k = prices.shape
    level = np.empty(n)
    for t in range(n):
        s = 0.0
        for j in range(k):
            s += prices[t, j] * w[j]
        level[t] = s / w[0]
    num = 0.0
    den = 0.0
    for t in range(1, n):
        num += level[t] * level[t - 1]
        den += level[t - 1] * level[t - 1]
    if fixed:
        alpha11 = fixed_alpha11
    elif den > 0.0:
        alpha11 = num / den
    else:
        return 1
    mean = level.sum() / n
    obs_var = 0.0
    gamma11 = 0.0
    for t in range(n):
        obs_var += (level[t] - mean) ** 2
        gamma11 += level[t] * level[t]
    obs_var /= n
    gamma11 /= n
    out[0] = alpha11
    out[1] = obs_var
    for i in range(k):
        out[2 + i] = 0.0
    out[2] = (1.0 - alpha11 * alpha11) * gamma11
    # moment of the rows x_t A = (alpha11, p_2, ..., p_k); diag of its inverse by Cholesky
    moment = np.zeros((k, k))
    row = np.empty(k)
    for t in range(n):
        row[0] = alpha11
        for j in range(1, k):
            row[j] = prices[t, j]
        for i in range(k):
            for j in range(i + 1):
                moment[i, j] += row[i] * row[j]
    low = np.zeros((k, k))
    for i in range(k):
        for j in range(i + 1):
            s = moment[i, j] / n
            for h in range(j):
                s -= low[i, h] * low[j, h]
            if i > j:
                low[i, j] = s / low[j, j]
            elif s > 0.0:
                low[i, i] = math.sqrt(s)
            else:
                return 2
    inv_low = np.zeros((k, k))  # L^-1, lower triangular; diag(M^-1)_i = sum_j (L^-1)_{ji}^2
    for c in range(k):
        inv_low[c, c] = 1.0 / low[c, c]
        for i in range(c + 1, k):
            s = 0.0
            for h in range(c, i):
                s -= low[i, h] * inv_low[h, c]
            inv_low[i, c] = s / low[i, i]
    for i in range(k):
        d = 0.0
        for j in range(i, k):
            d += inv_low[j, i] * inv_low[j, i]
        out[2 + k + i] = obs_var * d
    return 0


@njit(cache=True, nogil=True)
def _rel_change(new, old):  # pragma: no cover - compiled
    if new == old:
        return 0.0
    if old == 0.0:
        return np.inf
    return abs(new - old) / abs(old)


@njit(cache=True, nogil=True)
def _seed_passes(y, X, alpha11, obs_var, state_var, initial_state, initial_cov, bm, bm_sample,
                 fix_alpha11, prior_residual, iterations, tol,
                 hist, b_filt, innov, innov_var, out_model):  # pragma: no cover - compiled
    """Run up to ``iterations`` passes. Returns (passes run, status): status 1 converged
    (``tol``), 0 ran all passes, -1 filter breakdown at the last pass run.

    As the spec writes it, a pass whose ``|alpha11| > 1`` runs with a negative
    ``state_var[0] = (1 - alpha11^2) Gamma_11``; the caller reports it if the run ends there.

    hist : (iterations, 3) rows (alpha11, obs_var, loglik) of each pass.
    out_model : (2 + 2k,) the quantities the last pass ran with: alpha11, obs_var, state_var, initial_cov.
    b_filt, innov, innov_var : states and innovations of the last pass.
    """
    n, k = X.shape
    a = np.ones(k)
    vw = state_var.copy()
    p0 = np.zeros((k, k))
    p0d = initial_cov.copy()
    a11 = alpha11
    ve = obs_var
    vw_new = np.empty(k)
    p0_new = np.empty(k)
    centre = np.empty(k)
    dummy_b = np.empty((1, k))
    dummy_P = np.empty((1, k, k))
    for m in range(iterations):
        a[0] = a11
        for i in range(k):
            p0[i, i] = p0d[i]
        ll = _filter_loop(y, X, a, vw, ve, initial_state, p0, False, False,
                          dummy_b, dummy_P, b_filt, dummy_P, innov, innov_var)
        hist[m, 0] = a11
        hist[m, 1] = ve
        hist[m, 2] = ll
        out_model[0] = a11
        out_model[1] = ve
        for i in range(k):
            out_model[2 + i] = vw[i]
            out_model[2 + k + i] = p0d[i]
        if not math.isfinite(ll):
            return m + 1, -1
        if m == iterations - 1:
            return m + 1, 0
        # section 5, from this pass's posterior states, in one sweep over t
        if bm_sample:
            for i in range(k):
                c = 0.0
                for t in range(n):
                    c += b_filt[t, i]
                centre[i] = c / n
        else:
            for i in range(k):
                centre[i] = bm[i]
        num = 0.0  # sum b_{1,t} b_{1,t-1}
        den = 0.0  # sum b_{1,t-1}^2
        ve_new = 0.0
        gamma11 = 0.0
        for i in range(k):
            vw_new[i] = 0.0
            p0_new[i] = 0.0
        for t in range(n):
            if prior_residual:
                r = innov[t]
            else:
                r = y[t]
                for i in range(k):
                    r -= X[t, i] * b_filt[t, i]
            ve_new += r * r
            gamma11 += b_filt[t, 0] * b_filt[t, 0]
            if t > 0:
                num += b_filt[t, 0] * b_filt[t - 1, 0]
                den += b_filt[t - 1, 0] * b_filt[t - 1, 0]
                # (b_{t+1} - A b_t)_i for i >= 2 (A_ii = 1); the first entry is replaced below
                for i in range(1, k):
                    d = b_filt[t, i] - b_filt[t - 1, i]
                    vw_new[i] += d * d
            for i in range(k):
                d = b_filt[t, i] - centre[i]
                p0_new[i] += d * d
        a11_new = a11 if fix_alpha11 else num / den
        ve_new /= n
        gamma11 /= n
        for i in range(1, k):
            vw_new[i] /= n - 1
        vw_new[0] = (1.0 - a11_new * a11_new) * gamma11
        for i in range(k):
            p0_new[i] /= n - 1
        if tol > 0.0:
            worst = max(_rel_change(a11_new, a11), _rel_change(ve_new, ve))
            for i in range(k):
                worst = max(worst, _rel_change(vw_new[i], vw[i]))
                worst = max(worst, _rel_change(p0_new[i], p0d[i]))
            if worst < tol:
                return m + 1, 1
        a11 = a11_new
        ve = ve_new
        for i in range(k):
            vw[i] = vw_new[i]
            p0d[i] = p0_new[i]
    return iterations, 0


@dataclass(frozen=True)
class SeedRun:
    """What the seed passes produced: the last pass's model and states, and the per-pass history."""

    model: StateSpaceModel
    iterations: int
    converged: bool
    history: np.ndarray  # (iterations, 3): alpha11, obs_var, loglik per pass
    filtered_state: np.ndarray


def run_seed_passes(
    prices: np.ndarray,
    johansen_result: JohansenResult,
    iterations: int = 2000,
    tol: float | None = None,
    options: SeedOptions | None = None,
) -> SeedRun:
    """Run the seed method's passes over an (n, k) price panel.

    With ``iterations = 1`` the result is the first-pass model of section 4.
    """
    options = options or SeedOptions()
    if iterations < 1:
        raise KalcointError(f"--iterations {iterations} must be at least 1")
    if tol is not None and not tol > 0:
        raise KalcointError(f"--tol {tol} must be > 0")
    prices = np.ascontiguousarray(prices, dtype=np.float64)
    weights = johansen_result.weights
    first = first_pass_model(prices, weights, options.fixed_alpha11)
    y = np.ascontiguousarray(prices[:, 0])
    X = prices.copy()
    X[:, 0] = 1.0
    n, k = X.shape
    bm = np.concatenate([[np.mean(prices @ weights) / weights[0]], -weights[1:] / weights[0]])
    hist = np.full((iterations, 3), np.nan)
    b_filt = np.empty((n, k))
    innov = np.empty(n)
    innov_var = np.empty(n)
    out = np.empty(2 + 2 * k)
    passes, status = _seed_passes(
        y, X, first.alpha11, first.obs_var, first.state_var.copy(), first.initial_state.copy(),
        first.initial_cov.copy(), bm, options.bm == "sample", options.fixed_alpha11 is not None,
        options.residual == "prior", iterations, float(tol or 0.0), hist, b_filt, innov, innov_var, out,
    )
    if out[2] < 0:  # |alpha11| > 1 at the last pass run
        raise ComputationError(
            f"seed tuning {'broke down' if status < 0 else 'ended'} at pass {passes} with alpha11 = "
            f"{out[0]:.8g} outside [-1, 1], so state_var[0] = (1 - alpha11^2) Gamma_11 = {out[2]:.3g} is "
            "not a variance (the filtered level is not mean-reverting); use fewer --iterations, "
            "a --tol stop, or --method mle"
        )
    if status < 0 or not np.all(np.isfinite(out)):
        raise ComputationError(
            f"seed tuning broke down at pass {passes}: obs_var collapsed to {out[1]:.3g} and an "
            "innovation variance reached zero (the collapse of spec section 9); use fewer "
            "--iterations, a --tol stop, or --method mle"
        )
    model = StateSpaceModel(out[0], out[1], out[2:2 + k], first.initial_state, out[2 + k:])
    return SeedRun(model, int(passes), status == 1, hist[:passes].copy(), b_filt)

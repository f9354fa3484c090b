"""The EM map: filter, smoother and M-step in one compiled call.

Compiled with numba (see :mod:`kalcoint._numba_cache`); imported by the modules of the
pipeline through :mod:`kalcoint._kernels`."""

from __future__ import annotations

import math

import numpy as np

from .._numba_cache import njit
from .filtering import filter_loop, smoother_loop


@njit(cache=True, nogil=True)
def m_step(y, X, b_s, P_s, lag_one, alpha_max, out):  # pragma: no cover - compiled
    """Constrained M-step; writes (alpha11, obs_var, state_var_1..k) into ``out``."""
    n, k = X.shape
    for i in range(k):
        s11 = 0.0
        s00 = 0.0
        s10 = 0.0
        for t in range(1, n):
            s11 += P_s[t, i, i] + b_s[t, i] * b_s[t, i]
            s00 += P_s[t - 1, i, i] + b_s[t - 1, i] * b_s[t - 1, i]
            s10 += lag_one[t, i, i] + b_s[t, i] * b_s[t - 1, i]
        ai = 1.0
        if i == 0:
            ai = s10 / s00 if s00 > 0.0 else 0.0
            ai = min(max(ai, -alpha_max), alpha_max)
            out[0] = ai
        vw = (s11 - 2.0 * ai * s10 + ai * ai * s00) / (n - 1)
        out[2 + i] = max(vw, 0.0)  # rounding only: the sum is an expected square
    ve = 0.0
    for t in range(n):
        e = y[t]
        xpx = 0.0
        for i in range(k):
            e -= X[t, i] * b_s[t, i]
            for j in range(k):
                xpx += X[t, i] * P_s[t, i, j] * X[t, j]
        ve += e * e + xpx
    out[1] = ve / n


@njit(cache=True, nogil=True)
def em_map(y, X, b0, P0, params, alpha_max, ws_b, ws_P, out):  # pragma: no cover - compiled
    """One EM step from ``params = (alpha11, obs_var, state_var_1..k)``: writes the M-step's
    quantities into ``out`` and returns the log-likelihood at ``params`` (NaN on breakdown).

    ws_b : (3, n, k) and ws_P : (4, n, k, k) work arrays.
    """
    k = X.shape[1]
    a = np.ones(k)
    a[0] = params[0]
    innov = np.empty(y.size)
    innov_var = np.empty(y.size)
    ll = filter_loop(
        y, X, a, params[2:], params[1], b0, P0, False, True, ws_b[0], ws_P[0], ws_b[1], ws_P[1], innov, innov_var
    )
    if not math.isfinite(ll):
        return ll
    smoother_loop(y, X, a, ws_b[0], ws_P[0], innov, innov_var, ws_b[2], ws_P[2], ws_P[3])
    m_step(y, X, ws_b[2], ws_P[2], ws_P[3], alpha_max, out)
    return ll


@njit(cache=True, nogil=True)
def em_loop(y, X, b0, P0, params, iterations, tol, alpha_max, ws_b, ws_P, hist):  # pragma: no cover
    """Run up to ``iterations`` plain EM steps from ``params`` (updated in place to the last model
    whose log-likelihood was computed).

    hist : (iterations + 1, 3) rows (alpha11, obs_var, loglik) of the start and of every step.
    Returns (steps run, status): 1 converged (relative rise < tol), 0 all steps run,
    -1 filter breakdown.
    """
    new = np.empty(params.size)
    ll_old = 0.0
    for m in range(iterations + 1):
        ll = em_map(y, X, b0, P0, params, alpha_max, ws_b, ws_P, new)
        hist[m, 0] = params[0]
        hist[m, 1] = params[1]
        hist[m, 2] = ll
        if not math.isfinite(ll):
            return m, -1
        if m > 0 and ll - ll_old <= tol * abs(ll_old):
            return m, 1
        if m == iterations:
            return m, 0
        ll_old = ll
        for i in range(params.size):
            params[i] = new[i]
    return iterations, 0

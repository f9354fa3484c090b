"""Johansen's reduced-rank regression from moment matrices (docs/method.md §2).

Compiled with numba (see :mod:`kalcoint._numba_cache`); imported by the modules of the
pipeline through :mod:`kalcoint._kernels`."""

from __future__ import annotations

import math

import numpy as np

from .._numba_cache import njit
from .linalg import DEGENERATE, OK, cholesky_lower, cholesky_upper, dot, jacobi_eigh, lower_solve, outer_gram


@njit(cache=True)
def johansen_design(x, det_order, k_ar_diff):
    """(q, m) transposed regressors of coint_johansen, m = n - 1 - k_ar_diff rows, q = k (p + 2):
    the lagged differences dx_{t-1..t-p} (k p rows), the level (k), then dx_t (k); centred unless
    det_order = -1 (the constant of its residual regressions). For det_order = 1 the series
    are first detrended on statsmodels' time index linspace(-1, 1, n). The level is statsmodels'
    x_{t-p} (x_t when p = 0): for p >= 1 its residual on the lagged differences is that of x_{t-1}."""
    n, k = x.shape
    p = k_ar_diff
    m = n - 1 - p
    q = k * (p + 2)
    # plain loops rather than array expressions: the same sums (numba's are sequential too),
    # and each array expression would cost its own compilation on a cold cache
    level = np.empty((k, n))  # one contiguous row per series
    for j in range(k):
        for t in range(n):
            level[j, t] = x[t, j]
    if det_order == 1:
        tt = np.empty(n)  # numpy's linspace(-1, 1, n)
        step = 2.0 / (n - 1)
        for t in range(n):
            tt[t] = t * step - 1.0
        tt[n - 1] = 1.0
        _centre(tt)
        ss = dot(tt, tt)
        for j in range(k):
            col = level[j]
            _centre(col)
            slope = dot(tt, col) / ss
            for t in range(n):
                col[t] -= slope * tt[t]
    design = np.empty((q, m))
    for j in range(k):
        series = level[j]
        for t in range(m):
            row = t + p + 1  # dx_t = x[row] - x[row - 1]; the level is x[t + 1] = x[row - p]
            design[(p + 1) * k + j, t] = series[row] - series[row - 1]
            design[p * k + j, t] = series[t + 1]
            for lag in range(1, p + 1):
                design[(lag - 1) * k + j, t] = series[row - lag] - series[row - lag - 1]
    if det_order >= 0:
        _centre_rows(design)
    return design


@njit(cache=True)
def _centre_rows(design):
    """:func:`_centre` of every row of ``design`` (q, m): the q sums run side by side over t (each
    still from 0.0 in t's order, so the same means), instead of one row's sum after another."""
    q, m = design.shape
    sums = np.zeros(q)
    for t in range(m):
        for c in range(q):
            sums[c] += design[c, t]
    for c in range(q):
        mean = sums[c] / m
        row = design[c]
        for t in range(m):
            row[t] -= mean


@njit(cache=True)
def _centre(v):
    """Subtract from the 1-d array ``v`` its mean (the sum taken in order, as numba's ``sum``)."""
    total = 0.0
    for i in range(v.size):
        total += v[i]
    mean = total / v.size
    for i in range(v.size):
        v[i] -= mean


@njit(cache=True)
def johansen_kernel(x, det_order, k_ar_diff, tol):
    """(eigenvalues (k,), weights (k, k) columns, trace (k,), max-eig (k,), status) of the
    Johansen test, as statsmodels' coint_johansen computes them.

    With R the Cholesky factor of the regressors' moment matrix (order: lagged differences,
    level, dx_t), the residual moments are S_kk = R_ll'R_ll / m, S_k0 = R_ll'R_l0 / m and
    S_00 = (R_l0'R_l0 + R_00'R_00) / m. With S_kk = L L' and S_00 = U U', the eigenvalues are
    those of W W', W = L^-1 S_k0 U^-T, and the weights v = L^-T u satisfy v' S_kk v = 1 (the
    normalisation of statsmodels). Each weight vector has a positive first entry (statsmodels
    fixes the first one's sign that way; the others' signs are LAPACK's choice there)."""
    m = x.shape[0] - 1 - k_ar_diff
    k = x.shape[1]
    design = johansen_design(x, det_order, k_ar_diff)
    gram = design @ design.T  # BLAS (single-threaded at this size): a loop is latency-bound, ~10x slower
    r, status = cholesky_upper(gram)
    if status != OK:
        return np.zeros(k), np.zeros((k, k)), np.zeros(k), np.zeros(k), status
    lag = k * k_ar_diff
    lev = lag
    d0 = lag + k
    rt = r[lev : lev + k, lev : lev + k].T.copy() / math.sqrt(m)  # L: S_kk = L L'
    s_k0 = np.empty((k, k))
    s_00 = np.empty((k, k))
    for i in range(k):
        for j in range(k):
            a = 0.0
            for h in range(lev, lev + k):
                a += r[h, lev + i] * r[h, d0 + j]
            s_k0[i, j] = a / m
            b = 0.0
            for h in range(lev, d0 + k):
                b += r[h, d0 + i] * r[h, d0 + j]
            s_00[i, j] = b / m
    u_low, status = cholesky_lower(s_00)
    if status != OK:
        return np.zeros(k), np.zeros((k, k)), np.zeros(k), np.zeros(k), status
    # W = L^-1 S_k0 U^-T: left solve, then right solve through the transpose
    left = lower_solve(rt, s_k0)
    w = lower_solve(u_low, left.T.copy()).T.copy()
    eig, u = jacobi_eigh(outer_gram(w), tol)
    # v = L^-T u: back substitution with L'
    v = np.empty((k, k))
    for c in range(k):
        for i in range(k - 1, -1, -1):
            s = u[i, c]
            for j in range(i + 1, k):
                s -= rt[j, i] * v[j, c]
            v[i, c] = s / rt[i, i]
        if v[0, c] < 0.0:
            for i in range(k):
                v[i, c] = -v[i, c]
    trace = np.empty(k)
    max_eig = np.empty(k)
    for i in range(k):
        if not eig[i] < 1.0:
            return eig, v, trace, max_eig, DEGENERATE
        max_eig[i] = -m * math.log(1.0 - eig[i])
    for i in range(k):
        total = 0.0
        for j in range(i, k):
            total += math.log(1.0 - eig[j])
        trace[i] = -m * total
    return eig, v, trace, max_eig, OK

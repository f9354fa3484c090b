"""The augmented Dickey-Fuller regression and its lag choice by information criterion.

Compiled with numba (see :mod:`kalcoint._numba_cache`); imported by the modules of the
pipeline through :mod:`kalcoint._kernels`."""

from __future__ import annotations


import numpy as np

from .._numba_cache import njit
from .linalg import DEGENERATE, NEAR_TIE, OK, cholesky_upper, householder_r

FIXED_LAG = -1
"""Lag-choice code: the lag is given, not chosen."""


@njit(cache=True)
def adf_design(x, nlags, level_last):
    """Transposed, centred ADF design for ``nlags`` lagged differences on rows
    t = nlags..n-2 of the differences: shape (nlags + 2, n - 1 - nlags), row j =
    regressor j (level x_t first, or last when ``level_last``), last row = dx_t.
    Centring every column replaces the constant regressor (Frisch-Waugh); an
    error e in a column mean moves the fit by O(e^2 / var), so one pass is enough."""
    n = x.size
    m = n - 1 - nlags
    q = nlags + 2
    diff = x[1:] - x[:-1]
    zt = np.empty((q, m))
    level = x[nlags : n - 1]
    zt[nlags if level_last else 0] = level - level.sum() / m
    zt[q - 1] = diff[nlags:] - diff[nlags:].sum() / m
    first_lag = 0 if level_last else 1
    window_sum = 0.0
    for j in range(1, nlags + 1):
        start = nlags - j  # lag j of dx_t, t = nlags + r, is diff[start + r]
        if j == 1:
            window_sum = diff[start : start + m].sum()
        else:  # slide the window one step back
            window_sum += diff[start] - diff[start + m]
        zt[first_lag + j - 1] = diff[start : start + m] - window_sum / m
    return zt


@njit(cache=True)
def adf_gram(x, nlags, level_last):
    """Gram matrix (nlags + 2, nlags + 2) of the centred design of :func:`adf_design`,
    without BLAS (threaded BLAS on tiny products stalls busy worker processes).

    The lagged differences and dx_t are windows of one series, so a window pair's
    cross-product follows from the pair one step later by adding the entering and
    removing the leaving product: O(n * nlags) work instead of O(n * nlags^2)."""
    n = x.size
    m = n - 1 - nlags
    q = nlags + 2
    # Every sum runs from 0.0 over increasing index, as numba's array.sum() does; sums that do
    # not depend on each other share a loop (their additions overlap instead of waiting in turn).
    diff = np.empty(n - 1)
    total = 0.0
    for i in range(n - 1):
        d = x[i + 1] - x[i]
        diff[i] = d
        total += d
    shift = total / (n - 1)  # any shift; it keeps the raw products free of cancellation
    for i in range(n - 1):
        diff[i] -= shift
    start = np.arange(nlags, -1, -1)  # window w (w = 0: dx_t, w = j: lag j) is diff[start[w] + r]
    dx_sum = 0.0  # sum of dx_t (window 0)
    lag_sum = 0.0  # sum of the first lag (window 1)
    x_sum = 0.0  # sum of the level x_t
    for r in range(m):
        dx_sum += diff[nlags + r]
        if nlags > 0:
            lag_sum += diff[nlags - 1 + r]
        x_sum += x[nlags + r]
    mean = np.empty(nlags + 1)
    mean[0] = dx_sum / m
    window_sum = lag_sum
    for w in range(1, nlags + 1):
        if w > 1:
            window_sum += diff[start[w]] - diff[start[w] + m]
        mean[w] = window_sum / m
    level = np.empty(m)
    x_mean = x_sum / m
    level_sum = 0.0
    level_sq = 0.0
    for r in range(m):
        v = x[nlags + r] - x_mean
        level[r] = v
        level_sum += v
        level_sq += v * v
    raw = np.zeros((nlags + 1, nlags + 1))  # raw[a, b] = sum_r W_a[r] W_b[r]
    cross = np.zeros(nlags + 1)  # cross[w] = sum_r level[r] W_w[r]
    window_products(diff, level, nlags, m, raw, cross)
    for a in range(1, nlags + 1):
        for b in range(a, nlags + 1):
            enter, leave = start[a], start[a] + m
            shift = start[b] - start[a]
            raw[a, b] = raw[a - 1, b - 1] + diff[enter] * diff[enter + shift] - diff[leave] * diff[leave + shift]
    index = np.empty(nlags + 1, dtype=np.int64)  # design column of window w
    index[0] = q - 1
    for w in range(1, nlags + 1):
        index[w] = w - 1 if level_last else w
    lev = nlags if level_last else 0
    gram = np.empty((q, q))
    gram[lev, lev] = level_sq
    for a in range(nlags + 1):
        gram[lev, index[a]] = gram[index[a], lev] = cross[a] - mean[a] * level_sum
        for b in range(a, nlags + 1):
            gram[index[a], index[b]] = gram[index[b], index[a]] = raw[a, b] - m * mean[a] * mean[b]
    return gram


@njit(cache=True)
def window_products(diff, level, nlags, m, raw, cross):
    """``raw[0, w] = sum_r diff[nlags + r] diff[nlags - w + r]`` and ``cross[w] = sum_r level[r]
    diff[nlags - w + r]`` for w = 0..nlags, each sum taken over r = 0..m-1 in order from 0.0:
    whatever the loops' arrangement, the same sums to the last bit.

    Few windows: four at a time in scalar accumulators (eight independent sums in registers).
    Many: the loop over w innermost on a reversed copy of ``diff`` (the windows' values at step r
    are consecutive in w's order), which vectorises across windows."""
    count = nlags + 1
    if count < 8:
        _windows_by_four(diff, level, nlags, m, raw, cross)
        return
    size = diff.size
    reverse = diff[::-1].copy()  # reverse[i] = diff[size - 1 - i]
    a = np.zeros(count)
    c = np.zeros(count)
    for r in range(m):
        y_r = diff[nlags + r]
        l_r = level[r]
        first = size - 1 - nlags - r
        values = reverse[first : first + count]  # values[w] = diff[nlags + r - w]
        for w in range(count):
            v = values[w]
            a[w] += y_r * v
            c[w] += l_r * v
    for w in range(count):
        raw[0, w] = a[w]
        cross[w] = c[w]


@njit(cache=True)
def _windows_by_four(diff, level, nlags, m, raw, cross):
    """:func:`window_products` four windows at a time in scalar accumulators."""
    w0 = 0
    while w0 + 4 <= nlags + 1:
        a0 = a1 = a2 = a3 = 0.0
        c0 = c1 = c2 = c3 = 0.0
        base = nlags - w0
        for r in range(m):
            y_r = diff[nlags + r]
            l_r = level[r]
            v0 = diff[base + r]
            v1 = diff[base - 1 + r]
            v2 = diff[base - 2 + r]
            v3 = diff[base - 3 + r]
            a0 += y_r * v0
            a1 += y_r * v1
            a2 += y_r * v2
            a3 += y_r * v3
            c0 += l_r * v0
            c1 += l_r * v1
            c2 += l_r * v2
            c3 += l_r * v3
        raw[0, w0] = a0
        raw[0, w0 + 1] = a1
        raw[0, w0 + 2] = a2
        raw[0, w0 + 3] = a3
        cross[w0] = c0
        cross[w0 + 1] = c1
        cross[w0 + 2] = c2
        cross[w0 + 3] = c3
        w0 += 4
    for w in range(w0, nlags + 1):
        a = 0.0
        c = 0.0
        for r in range(m):
            value = diff[nlags - w + r]
            a += diff[nlags + r] * value
            c += level[r] * value
        raw[0, w] = a
        cross[w] = c


@njit(cache=True)
def r_factor(x, nlags, level_last, chol_tol, rank_tol):
    """R factor (q, q) of the column-normalised ADF design, or status DEGENERATE.

    Normal equations (Cholesky of the Gram matrix) when every column keeps at least
    ``chol_tol`` of its variance after the previous ones; Householder QR otherwise."""
    gram = adf_gram(x, nlags, level_last)
    q = gram.shape[0]
    norms = np.sqrt(np.diag(gram))
    if not np.min(norms) > 0.0:
        return np.zeros((q, q)), DEGENERATE
    r, status = cholesky_upper(gram / np.outer(norms, norms))
    if status != OK or np.min(np.abs(np.diag(r))) ** 2 < chol_tol:
        r = householder_r(adf_design(x, nlags, level_last) / norms.reshape((q, 1)))
    if np.min(np.abs(np.diag(r))) < rank_tol:
        return r, DEGENERATE
    return r, OK


@njit(cache=True)
def choose_lag(x, maxlag, method, chol_tol, rank_tol, tie_tol):
    """Lag in 0..maxlag minimising AIC (method 0) or BIC (1) on the common sample,
    as statsmodels' _autolag: ties go to the smaller lag. Returns (lag, status)."""
    r, status = r_factor(x, maxlag, False, chol_tol, rank_tol)
    if status != OK:
        return -1, status
    m = x.size - 1 - maxlag
    y = maxlag + 1
    penalty = 2.0 if method == 0 else np.log(m)
    crit = np.empty(maxlag + 1)
    ssr = r[y, y] ** 2  # the residual of lag i leaves out R[j, y] for the i + 1 regressors j <= i
    for lag in range(maxlag, -1, -1):
        # -2 llf + penalty * k, without the terms equal for every lag
        crit[lag] = m * np.log(ssr) + penalty * (lag + 2)
        ssr += r[lag, y] ** 2
    return lowest_criterion(crit, tie_tol)


@njit(cache=True)
def lowest_criterion(crit, tie_tol):
    """(index of the smallest criterion, status): exact ties go to the smaller index,
    as statsmodels' ``min((ic, lag))``; any other lag within ``tie_tol`` of the best
    is a near-tie (status NEAR_TIE) that rounding could decide either way."""
    best = np.argmin(crit)
    for lag in range(crit.size):
        if lag != best and crit[lag] - crit[best] < tie_tol:
            return best, NEAR_TIE
    return best, OK


@njit(cache=True)
def adf_kernel(x, maxlag, method, chol_tol, rank_tol, tie_tol):
    """(t-statistic of the level, lags used, status) of the ADF regression with a constant."""
    lag = maxlag
    if method != FIXED_LAG:
        lag, status = choose_lag(x, maxlag, method, chol_tol, rank_tol, tie_tol)
        if status != OK:
            return np.nan, lag, status
    r, status = r_factor(x, lag, True, chol_tol, rank_tol)
    dof = x.size - 1 - lag - (lag + 2)
    if status != OK or dof <= 0:
        return np.nan, lag, DEGENERATE
    # level is the last regressor, so its t = (Q'y)_level / s in the normalised design
    s = np.abs(r[lag + 1, lag + 1]) / np.sqrt(dof)
    return np.sign(r[lag, lag]) * r[lag, lag + 1] / s, lag, OK

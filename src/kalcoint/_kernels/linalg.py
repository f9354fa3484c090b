"""Small dense linear algebra shared by the Johansen and ADF kernels, and their status codes.

Compiled with numba (see :mod:`kalcoint._numba_cache`); imported by the modules of the
pipeline through :mod:`kalcoint._kernels`."""

from __future__ import annotations

import math

import numpy as np

from .._numba_cache import njit

OK, DEGENERATE, NEAR_TIE = 0, 1, 2
"""Status codes the kernels return: done, a degenerate (singular) problem, a near tie of two lags."""


@njit(cache=True)
def jacobi_eigh(a, tol):
    """Eigenvalues (descending) and eigenvectors (columns) of the symmetric matrix ``a``."""
    k = a.shape[0]
    a = a.copy()
    v = np.eye(k)
    for _ in range(100):
        off = 0.0
        scale = 0.0
        for i in range(k):
            scale = max(scale, abs(a[i, i]))
            for j in range(i + 1, k):
                off = max(off, abs(a[i, j]))
        if off <= tol * scale or off == 0.0:
            break
        for i in range(k - 1):
            for j in range(i + 1, k):
                if a[i, j] == 0.0:
                    continue
                theta = (a[j, j] - a[i, i]) / (2.0 * a[i, j])
                t = (1.0 if theta >= 0.0 else -1.0) / (abs(theta) + math.sqrt(theta * theta + 1.0))
                c = 1.0 / math.sqrt(t * t + 1.0)
                s = t * c
                for r in range(k):  # columns i, j
                    ari, arj = a[r, i], a[r, j]
                    a[r, i] = c * ari - s * arj
                    a[r, j] = s * ari + c * arj
                for r in range(k):  # rows i, j
                    air, ajr = a[i, r], a[j, r]
                    a[i, r] = c * air - s * ajr
                    a[j, r] = s * air + c * ajr
                for r in range(k):
                    vri, vrj = v[r, i], v[r, j]
                    v[r, i] = c * vri - s * vrj
                    v[r, j] = s * vri + c * vrj
    # descending order by insertion (k is small; numba's sort would cost seconds of compilation)
    order = np.empty(k, dtype=np.int64)
    for i in range(k):
        order[i] = i
        j = i
        while j > 0 and a[order[j - 1], order[j - 1]] < a[order[j], order[j]]:
            order[j - 1], order[j] = order[j], order[j - 1]
            j -= 1
    eig = np.empty(k)
    vecs = np.empty((k, k))
    for c in range(k):
        eig[c] = a[order[c], order[c]]
        for r in range(k):
            vecs[r, c] = v[r, order[c]]
    return eig, vecs


@njit(cache=True)
def lower_solve(low, b):
    """Solve ``low @ x = b`` (lower triangular (k, k); b is (k, c)). Element by element: row
    expressions would cost numba's broadcasting machinery seconds of compilation on a cold cache."""
    x = b.copy()
    k = low.shape[0]
    c = x.shape[1]
    for i in range(k):
        for j in range(i):
            f = low[i, j]
            for col in range(c):
                x[i, col] -= f * x[j, col]
        d = low[i, i]
        for col in range(c):
            x[i, col] /= d
    return x


@njit(cache=True)
def outer_gram(w):
    """``w @ w.T`` for a small square matrix."""
    k = w.shape[0]
    out = np.empty((k, k))
    for i in range(k):
        for j in range(k):
            s = 0.0
            for h in range(w.shape[1]):
                s += w[i, h] * w[j, h]
            out[i, j] = s
    return out


@njit(cache=True)
def cholesky_lower(a):
    """(L, status): lower L with L L' = a; status DEGENERATE on a non-positive pivot."""
    q = a.shape[0]
    low = np.zeros((q, q))
    for i in range(q):
        for j in range(i + 1):
            s = a[i, j]
            for h in range(j):
                s -= low[i, h] * low[j, h]
            if i > j:
                low[i, j] = s / low[j, j]
            elif s > 0.0:
                low[i, i] = math.sqrt(s)
            else:
                return low, DEGENERATE
    return low, OK


@njit(cache=True)
def cholesky_upper(a):
    """(R, status): upper R with R'R = a."""
    low, status = cholesky_lower(a)
    return low.T.copy(), status


@njit(cache=True)
def householder_r(zt):
    """R factor of ``zt.T`` by Householder reflections (rows of ``zt`` = columns)."""
    a = zt.copy()
    q, m = a.shape
    for k in range(q):
        col = a[k, k:]
        norm = np.sqrt(dot(col, col))
        alpha = -norm if col[0] >= 0.0 else norm
        v = col.copy()
        v[0] -= alpha
        vv = dot(v, v)
        col[0] = alpha
        if vv == 0.0:
            continue
        for j in range(k + 1, q):
            other = a[j, k:]
            f = 2.0 * dot(v, other) / vv
            for i in range(v.size):
                other[i] -= f * v[i]
    r = np.zeros((q, q))
    for j in range(q):
        for i in range(j + 1):
            r[i, j] = a[j, i]
    return r


@njit(cache=True)
def dot(u, v):
    total = 0.0
    for i in range(u.size):
        total += u[i] * v[i]
    return total

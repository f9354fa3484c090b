"""The autocovariance least-squares normal equations.

Compiled with numba (see :mod:`kalcoint._numba_cache`); imported by the modules of the
pipeline through :mod:`kalcoint._kernels`."""

from __future__ import annotations


import numpy as np

from .._numba_cache import njit


@njit(cache=True, nogil=True)
def als_normal_equations(X, a, K, targets, q, lags, ntn, ntb):  # pragma: no cover - compiled
    """Accumulate the weighted normal equations of ALS (see the module doc).

    X (n, k) observation rows; a (k,) diagonal of A; K (n, k) first-filter gains
    ``P^_t x_t' / Q^_t``; targets (n, lags + 1) the products ``e_t e_{t+j}`` (entries with
    t + j >= n unused); q (n,) the first filter's innovation variances; ``lags`` >= 0.
    Unknowns theta = (Ve, Vw_1..k, P0_1..k), p = 2k + 1. Adds to ntn (p, p) and ntb (p,)
    the sums of w c c' and w c b over the equations (t, j) with coefficient row c (the
    expectation of the product is c . theta), target b and weight w = 1 / (q_t q_{t+j}).
    Returns the number of equations.
    """
    n, k = X.shape
    p = 2 * k + 1
    D = np.zeros((p, k, k))  # P_t = sum_i theta_i D[i]
    for m in range(k):
        D[1 + k + m, m, m] = 1.0
    F = np.empty((k, k))
    DF = np.empty((k, k))
    AK = np.empty(k)
    G = np.empty((k, p))
    Z = np.empty((k, p))
    Z2 = np.empty((k, p))
    c = np.empty(p)
    Dx = np.empty(k)
    rows = 0
    for t in range(n):
        for i in range(k):
            AK[i] = a[i] * K[t, i]
            for j in range(k):
                F[i, j] = -a[i] * K[t, i] * X[t, j]
            F[i, i] += a[i]
        # lag 0 and the lag-one vector G = F_t P_t x_t' - A K_t Ve (columns per unknown)
        for u in range(p):
            xdx = 0.0
            for i in range(k):
                s = 0.0
                for j in range(k):
                    s += D[u, i, j] * X[t, j]
                Dx[i] = s
                xdx += X[t, i] * s
            c[u] = xdx
            for i in range(k):
                s = 0.0
                for j in range(k):
                    s += F[i, j] * Dx[j]
                G[i, u] = s
        c[0] += 1.0
        for i in range(k):
            G[i, 0] -= AK[i]
        rows += accumulate(c, targets[t, 0], 1.0 / (q[t] * q[t]), ntn, ntb)
        # lags 1..J: x_{t+j} F_{t+j-1} ... F_{t+1} G
        for i in range(k):
            for u in range(p):
                Z[i, u] = G[i, u]
        for lag in range(1, lags + 1):
            s_t = t + lag
            if s_t >= n:
                break
            for u in range(p):
                s = 0.0
                for i in range(k):
                    s += X[s_t, i] * Z[i, u]
                c[u] = s
            rows += accumulate(c, targets[t, lag], 1.0 / (q[t] * q[s_t]), ntn, ntb)
            if lag < lags and s_t + 1 < n:  # Z <- F_{s_t} Z
                for i in range(k):
                    for u in range(p):
                        Z2[i, u] = a[i] * Z[i, u]
                    ki = a[i] * K[s_t, i]
                    for u in range(p):
                        s = 0.0
                        for j in range(k):
                            s += X[s_t, j] * Z[j, u]
                        Z2[i, u] -= ki * s
                for i in range(k):
                    for u in range(p):
                        Z[i, u] = Z2[i, u]
        # P_{t+1} = F_t P_t F_t' + Vw + A K_t Ve K_t' A'
        for u in range(p):
            for i in range(k):
                for j in range(k):
                    s = 0.0
                    for m in range(k):
                        s += D[u, i, m] * F[j, m]
                    DF[i, j] = s
            for i in range(k):
                for j in range(k):
                    s = 0.0
                    for m in range(k):
                        s += F[i, m] * DF[m, j]
                    D[u, i, j] = s
        for i in range(k):
            for j in range(k):
                D[0, i, j] += AK[i] * AK[j]
            D[1 + i, i, i] += 1.0
    return rows


@njit(cache=True, nogil=True)
def accumulate(c, b, w, ntn, ntb):  # pragma: no cover - compiled
    p = c.size
    for u in range(p):
        wc = w * c[u]
        ntb[u] += wc * b
        for v in range(p):
            ntn[u, v] += wc * c[v]
    return 1

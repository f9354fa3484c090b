"""The autocovariance least-squares normal equations.

Compiled with numba (see :mod:`kalcoint._numba_cache`); imported by the modules of the
pipeline through :mod:`kalcoint._kernels`."""

from __future__ import annotations

import math

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

    With ``F_t = A (I - K_t x_t)``, ``P_t = sum_u theta_u D_u(t)`` and ``G_t = F_t P_t x_t' -
    A K_t Ve`` (columns per unknown): lag 0 has ``c_u = x_t D_u x_t'`` (+1 for Ve), lag j
    ``c = R_j(t) G_t`` with the row ``R_j(t) = x_{t+j} F_{t+j-1} ... F_{t+1}``, built backwards
    (``R_1(t) = x_{t+1}``, ``R_j(t) = R_{j-1}(t+1) F_{t+1}``), and
    ``D_u(t+1) = F_t D_u F_t' (+ A K_t K_t' A for Ve, + e_i e_i' for Vw_i)``; ``F`` is never
    formed (``v F = v A - (v A K) x``). The rows ``sqrt(w) c`` are gathered and multiplied by
    BLAS (single-threaded at this size) into ``ntn``.
    """
    n, k = X.shape
    p = 2 * k + 1
    D = np.zeros((p, k, k))  # P_t = sum_u theta_u D[u]
    for m in range(k):
        D[1 + k + m, m, m] = 1.0
    G = np.empty((n, k, p))
    AK = np.empty(k)
    Dx = np.empty(k)
    g = np.empty(k)
    c = np.empty(p)
    isq = 1.0 / np.sqrt(q)
    total = n
    for j in range(1, lags + 1):
        if n - j > 0:
            total += n - j
    CT = np.empty((p, total))  # the weighted coefficient rows, one column per equation
    B = np.empty(total)
    rows = 0
    for t in range(n):
        for i in range(k):
            AK[i] = a[i] * K[t, i]
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
                g[i] = a[i] * Dx[i]
                G[t, i, u] = g[i] - AK[i] * xdx
            # F D F' = A D A - g AK' - AK g' + (x D x') AK AK', with g = A D x'
            for i in range(k):
                for j in range(i, k):
                    v = a[i] * a[j] * D[u, i, j] - g[i] * AK[j] - AK[i] * g[j] + xdx * AK[i] * AK[j]
                    D[u, i, j] = v
                    D[u, j, i] = v
        c[0] += 1.0
        for i in range(k):
            G[t, i, 0] -= AK[i]
            for j in range(k):
                D[0, i, j] += AK[i] * AK[j]
            D[1 + i, i, i] += 1.0
        sw = isq[t] * isq[t]
        for u in range(p):
            CT[u, rows] = sw * c[u]
        B[rows] = sw * targets[t, 0]
        rows += 1
    R = np.zeros((lags + 1, k))  # R_j(t + 1)
    Rn = np.zeros((lags + 1, k))  # R_j(t)
    for t in range(n - 2, -1, -1):
        s1 = t + 1
        for i in range(k):
            Rn[1, i] = X[s1, i]
        top = min(lags, n - 1 - t)
        for j in range(2, top + 1):
            s = 0.0
            for i in range(k):
                s += R[j - 1, i] * a[i] * K[s1, i]
            for m in range(k):
                Rn[j, m] = R[j - 1, m] * a[m] - s * X[s1, m]
        for j in range(1, top + 1):
            sw = isq[t] * isq[t + j]
            for u in range(p):
                s = 0.0
                for i in range(k):
                    s += Rn[j, i] * G[t, i, u]
                CT[u, rows] = sw * s
            B[rows] = sw * targets[t, j]
            rows += 1
        for j in range(1, top + 1):
            for i in range(k):
                R[j, i] = Rn[j, i]
    ntn += CT @ CT.T
    ntb += CT @ B
    return rows


@njit(cache=True, nogil=True)
def als_filter_equations(X, a, P_pred, e, q, lags, ntn, ntb):  # pragma: no cover - compiled
    """:func:`als_normal_equations` of a first filter's output: its gains ``K_t = P^_t x_t' / Q^_t``
    from the predicted covariances P_pred (n, k, k) and the targets ``e_t e_{t+j}`` from its
    innovations e (n,), formed here. Returns the number of equations."""
    n, k = X.shape
    K = np.empty((n, k))
    for t in range(n):
        for i in range(k):
            s = 0.0
            for j in range(k):
                s += P_pred[t, i, j] * X[t, j]
            K[t, i] = s / q[t]
    targets = np.zeros((n, lags + 1))
    for t in range(n):
        for j in range(min(lags + 1, n - t)):
            targets[t, j] = e[t] * e[t + j]
    return als_normal_equations(X, a, K, targets, q, lags, ntn, ntb)


@njit(cache=True, nogil=True)
def als_square_root(ntn, ntb, floor):  # pragma: no cover - compiled
    """The least-squares form of the normal equations ``N theta = r`` (p unknowns): columns scaled
    to a unit diagonal (``scale_u = sqrt(N_uu)``, 1 where ``N_uu <= 0``), ``N = V L V'``, and for
    the eigenvalues above ``floor`` times the largest, ``R = L^(1/2) V'`` (m, p) and
    ``c = L^(-1/2) V' r`` (m,), so that ``|R phi - c|^2`` is the weighted sum of squares up to a
    constant (``theta = phi / scale``). Returns (R, c, scale)."""
    p = ntb.size
    scale = np.empty(p)
    for u in range(p):
        d = ntn[u, u]
        scale[u] = math.sqrt(d) if d > 0.0 else 1.0
    N = np.empty((p, p))
    r = np.empty(p)
    for u in range(p):
        r[u] = ntb[u] / scale[u]
        for v in range(p):
            N[u, v] = ntn[u, v] / (scale[u] * scale[v])
    vals, vecs = np.linalg.eigh(N)
    cut = floor * vals.max()
    m = 0
    for i in range(p):
        if vals[i] > cut:
            m += 1
    R = np.empty((m, p))
    c = np.empty(m)
    row = 0
    for i in range(p):
        if vals[i] > cut:
            sq = math.sqrt(vals[i])
            s = 0.0
            for u in range(p):
                R[row, u] = sq * vecs[u, i]
                s += vecs[u, i] * r[u]
            c[row] = s / sq
            row += 1
    return R, c, scale

"""The autocovariance least-squares normal equations, and one round of ALS's profile over alpha11
(every candidate's first filter, ALS solve and log-likelihood, the grid and the bounded Brent search).

Compiled with numba (see :mod:`kalcoint._numba_cache`); imported by the modules of the
pipeline through :mod:`kalcoint._kernels`."""

from __future__ import annotations

import math

import numpy as np

from .._numba_cache import njit
from .filtering import accumulate_loglik, filter_loop, k3_constants, loglik_from_sums, k3_prior, k3_step
from .nonnegative import NNLS_OK, nnls


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


@njit(cache=True, nogil=True)
def als_first_filter_k3(y, X, a, vw, ve, b_start, P_start, lags, K, G, CT, B, e, q, ntn, ntb):  # pragma: no cover
    """For k = 3, the first filter and its ALS normal equations in one pass: the filter of
    :func:`kalcoint._kernels.filtering.filter_loop` (prior at t = 0) and, day by day as it runs,
    the forward half of :func:`als_normal_equations` (its gains ``K_t = P^_t x_t' / Q^_t`` are the
    filter's own ``P^_t x_t'`` over ``Q^_t``), then the lags backwards. The arithmetic of both is
    theirs, in the same order, on scalars (the covariance's six entries, the unknowns' ``D_u`` in
    one flat array): the same numbers to the last bit as :func:`filter_loop` with stored
    covariances followed by :func:`als_filter_equations`.

    Work arrays (written): K (n, 3), G (n, 3, 7), CT (7, equations), B (equations,), e (n,),
    q (n,), with exactly ``equations = n + sum_j max(n - j, 0)`` columns (j = 1..lags, see
    :func:`als_equations`). Adds the normal equations to
    ntn (7, 7) and ntb (7,). Returns the filter's log-likelihood (NaN if some Q_t <= 0; then
    ntn and ntb are untouched).
    """
    n = X.shape[0]
    p = 7
    a0, a1, a2 = a[0], a[1], a[2]
    c = k3_constants(a0, a1, a2, vw[0], vw[1], vw[2], ve)
    aa00, aa01, aa02, aa11, aa12, aa22 = c[4], c[5], c[6], c[7], c[8], c[9]
    prior = k3_prior(b_start, P_start)
    # one flat work array, lanes u = 0..6 at constant offsets: D_u (symmetric 3 x 3, P_t =
    # sum_u theta_u D_u) entries 00, 01, 02, 11, 12, 22 at W[8 r + u], r = 0..5; then x_t D_u x_t'
    # at W[48 + u] and G_t[i, u] at W[56 + 8 i + u] (faster than rows of 2-d arrays)
    W = np.zeros(80)
    W[4] = 1.0
    W[24 + 5] = 1.0
    W[40 + 6] = 1.0
    acc = (0.0, 0.0, 1.0)
    for t in range(n):
        prior, et, qt, r, g, px0, px1, px2, f0, f1, f2, f00, f01, f02 = k3_step(t, y, X, c, prior)
        if not qt > 0.0:
            return np.nan
        x0, x1, x2 = X[t, 0], X[t, 1], X[t, 2]
        e[t] = et
        q[t] = qt
        acc = accumulate_loglik(t, qt, et * g, acc)
        # the forward half of the normal equations (als_normal_equations' first loop)
        k0, k1, k2 = px0 / qt, px1 / qt, px2 / qt
        K[t, 0] = k0
        K[t, 1] = k1
        K[t, 2] = k2
        ak0, ak1, ak2 = a0 * k0, a1 * k1, a2 * k2
        for u in range(p):
            d00, d01, d02, d11, d12, d22 = W[u], W[8 + u], W[16 + u], W[24 + u], W[32 + u], W[40 + u]
            dx0 = ((0.0 + d00 * x0) + d01 * x1) + d02 * x2
            dx1 = ((0.0 + d01 * x0) + d11 * x1) + d12 * x2
            dx2 = ((0.0 + d02 * x0) + d12 * x1) + d22 * x2
            xdx = ((0.0 + x0 * dx0) + x1 * dx1) + x2 * dx2
            W[48 + u] = xdx
            g0, g1, g2 = a0 * dx0, a1 * dx1, a2 * dx2
            W[56 + u] = g0 - ak0 * xdx
            W[64 + u] = g1 - ak1 * xdx
            W[72 + u] = g2 - ak2 * xdx
            W[u] = aa00 * d00 - g0 * ak0 - ak0 * g0 + xdx * ak0 * ak0
            W[8 + u] = aa01 * d01 - g0 * ak1 - ak0 * g1 + xdx * ak0 * ak1
            W[16 + u] = aa02 * d02 - g0 * ak2 - ak0 * g2 + xdx * ak0 * ak2
            W[24 + u] = aa11 * d11 - g1 * ak1 - ak1 * g1 + xdx * ak1 * ak1
            W[32 + u] = aa12 * d12 - g1 * ak2 - ak1 * g2 + xdx * ak1 * ak2
            W[40 + u] = aa22 * d22 - g2 * ak2 - ak2 * g2 + xdx * ak2 * ak2
        W[48] += 1.0
        W[56] -= ak0
        W[64] -= ak1
        W[72] -= ak2
        W[0] += ak0 * ak0
        W[8] += ak0 * ak1
        W[16] += ak0 * ak2
        W[24] += ak1 * ak1
        W[32] += ak1 * ak2
        W[40] += ak2 * ak2
        W[1] += 1.0
        W[24 + 2] += 1.0
        W[40 + 3] += 1.0
        isq = 1.0 / math.sqrt(qt)
        sw = isq * isq
        for u in range(p):
            CT[u, t] = sw * W[48 + u]
            G[t, 0, u] = W[56 + u]
            G[t, 1, u] = W[64 + u]
            G[t, 2, u] = W[72 + u]
        B[t] = sw * (et * et)
    _als_lags_k3(X, a, K, G, e, q, lags, CT, B, n)
    ntn += CT @ CT.T
    ntb += CT @ B
    return loglik_from_sums(acc, n)


@njit(cache=True, nogil=True)
def _als_lags_k3(X, a, K, G, e, q, lags, CT, B, rows):  # pragma: no cover - compiled
    """The backward half of :func:`als_normal_equations` for k = 3 (its second loop, the same
    arithmetic): the equations of the lags 1..lags, written into CT and B from column ``rows`` on.
    Returns the number of columns written in all."""
    n = X.shape[0]
    p = 7
    a0, a1, a2 = a[0], a[1], a[2]
    isq = np.empty(n)
    for t in range(n):
        isq[t] = 1.0 / math.sqrt(q[t])
    L = lags + 1
    R0, R1, R2 = np.zeros(L), np.zeros(L), np.zeros(L)  # R_j(t + 1), by component
    N0, N1, N2 = np.zeros(L), np.zeros(L), np.zeros(L)  # R_j(t)
    SW = np.empty(L)  # the weights sqrt(w) of day t's lags
    # each day's equations are written lag by lag (contiguous columns: the loops over the lags
    # vectorise); the buffers of R_j(t) and R_j(t + 1) swap instead of being copied
    for t in range(n - 2, -1, -1):
        s1 = t + 1
        xs0, xs1, xs2 = X[s1, 0], X[s1, 1], X[s1, 2]
        N0[1] = xs0
        N1[1] = xs1
        N2[1] = xs2
        top = min(lags, n - 1 - t)
        for j in range(2, top + 1):
            r0, r1, r2 = R0[j - 1], R1[j - 1], R2[j - 1]
            s = ((0.0 + r0 * a0 * K[s1, 0]) + r1 * a1 * K[s1, 1]) + r2 * a2 * K[s1, 2]
            N0[j] = r0 * a0 - s * xs0
            N1[j] = r1 * a1 - s * xs1
            N2[j] = r2 * a2 - s * xs2
        isq_t = isq[t]
        et = e[t]
        sw = SW[:top]
        n0, n1, n2 = N0[1 : top + 1], N1[1 : top + 1], N2[1 : top + 1]
        ev = e[t + 1 : t + 1 + top]
        for jj in range(top):
            sw[jj] = isq_t * isq[t + 1 + jj]
        for u in range(p):
            g0, g1, g2 = G[t, 0, u], G[t, 1, u], G[t, 2, u]
            col = CT[u, rows : rows + top]
            for jj in range(top):
                col[jj] = sw[jj] * (((0.0 + n0[jj] * g0) + n1[jj] * g1) + n2[jj] * g2)
        bcol = B[rows : rows + top]
        for jj in range(top):
            bcol[jj] = sw[jj] * (et * ev[jj])
        rows += top
        R0, N0 = N0, R0
        R1, N1 = N1, R1
        R2, N2 = N2, R2
    return rows


def als_equations(n, lags):
    """The number of equations ``(t, j)`` of ALS on n rows with lags 0..lags (plain Python)."""
    return n + sum(max(n - j, 0) for j in range(1, lags + 1))


PROFILE_BROKE = -1
"""Status of :func:`_als_evaluate`: the first filter broke down (some Q_t <= 0), no ALS solve."""
GOLDEN_MEAN = 0.5 * (3.0 - math.sqrt(5.0))
SQRT_EPS = math.sqrt(2.2e-16)
"""The constants of ``scipy.optimize``'s bounded Brent search (``_minimize_scalar_bounded``)."""
# the state of the bounded Brent search (:func:`brent_start`, :func:`brent_tell`), by index
_A, _B, _FULC, _NFC, _XF, _RAT, _E, _X, _FX, _FFULC, _FNFC, _XM, _TOL1, _TOL2, _NUM, _XATOL = range(16)
BRENT_STATE = 16
"""Length of the state array of the bounded Brent search."""
_NO_YES = np.array([False, True])
"""filter_loop's flags read from an array: typed bool, not as literals, so that its calls here use
the specialisation Python's calls compile (one compilation less per literal pair)."""


@njit(cache=True, nogil=True, inline="always")
def brent_start(lo, hi, xatol, state):  # pragma: no cover - compiled
    """Start scipy's bounded Brent search (``minimize_scalar(method="bounded")``) on ``[lo, hi]``
    with tolerance ``xatol``, as reverse communication: returns the first point at which the
    caller evaluates the function, to pass its value to :func:`brent_tell`. ``state`` (BRENT_STATE,)
    is written."""
    state[_A], state[_B] = lo, hi
    fulc = lo + GOLDEN_MEAN * (hi - lo)
    state[_FULC] = state[_NFC] = state[_XF] = state[_X] = fulc
    state[_RAT] = state[_E] = 0.0
    state[_NUM] = 0.0
    state[_XATOL] = xatol
    return fulc


@njit(cache=True, nogil=True, inline="always")
def brent_tell(fx, maxfun, state):  # pragma: no cover - compiled
    """Give the bounded Brent search the function's value ``fx`` at the point it asked for last;
    returns ``(done, x)``: stop (the best point is ``state[_XF]``), or the next point to evaluate.
    The arithmetic and the order of ``scipy.optimize._optimize._minimize_scalar_bounded``: the
    same points, to the last bit, for the same values; ``maxfun`` its ``maxiter``."""
    xatol = state[_XATOL]
    if state[_NUM] == 0.0:  # the value at the first point
        state[_FX] = state[_FFULC] = state[_FNFC] = fx
    else:
        _brent_update(fx, state)
    state[_NUM] += 1.0
    xf, a, b = state[_XF], state[_A], state[_B]
    state[_XM] = xm = 0.5 * (a + b)
    state[_TOL1] = tol1 = SQRT_EPS * abs(xf) + xatol / 3.0
    state[_TOL2] = tol2 = 2.0 * tol1
    if state[_NUM] > 1.0 and state[_NUM] >= maxfun:
        return True, xf
    if not abs(xf - xm) > (tol2 - 0.5 * (b - a)):
        return True, xf
    return False, _brent_propose(state)


@njit(cache=True, nogil=True, inline="always")
def _brent_propose(state):  # pragma: no cover - compiled
    """The next point of the bounded Brent search: a parabolic step when acceptable, else golden."""
    a, b, xf, fx = state[_A], state[_B], state[_XF], state[_FX]
    nfc, fnfc, fulc, ffulc = state[_NFC], state[_FNFC], state[_FULC], state[_FFULC]
    xm, tol1, tol2, rat, e = state[_XM], state[_TOL1], state[_TOL2], state[_RAT], state[_E]
    golden = True
    if abs(e) > tol1:  # check for a parabolic fit
        golden = False
        r = (xf - nfc) * (fx - ffulc)
        q = (xf - fulc) * (fx - fnfc)
        p = (xf - fulc) * q - (xf - nfc) * r
        q = 2.0 * (q - r)
        if q > 0.0:
            p = -p
        q = abs(q)
        r = e
        e = rat
        if (abs(p) < abs(0.5 * q * r)) and (p > q * (a - xf)) and (p < q * (b - xf)):
            rat = (p + 0.0) / q
            x = xf + rat
            if ((x - a) < tol2) or ((b - x) < tol2):
                rat = tol1 * (_sign(xm - xf) + (1.0 if xm - xf == 0.0 else 0.0))
        else:
            golden = True
    if golden:
        e = (a - xf) if xf >= xm else (b - xf)
        rat = GOLDEN_MEAN * e
    x = xf + (_sign(rat) + (1.0 if rat == 0.0 else 0.0)) * max(abs(rat), tol1)
    state[_RAT], state[_E], state[_X] = rat, e, x
    return x


@njit(cache=True, nogil=True, inline="always")
def _brent_update(fu, state):  # pragma: no cover - compiled
    """The bracket and the three best points of the bounded Brent search after the value ``fu`` at
    its last point ``state[_X]``."""
    x, xf, fx = state[_X], state[_XF], state[_FX]
    if fu <= fx:
        if x >= xf:
            state[_A] = xf
        else:
            state[_B] = xf
        state[_FULC], state[_FFULC] = state[_NFC], state[_FNFC]
        state[_NFC], state[_FNFC] = xf, fx
        state[_XF], state[_FX] = x, fu
    else:
        if x < xf:
            state[_A] = x
        else:
            state[_B] = x
        nfc, fulc = state[_NFC], state[_FULC]
        if (fu <= state[_FNFC]) or (nfc == xf):
            state[_FULC], state[_FFULC] = nfc, state[_FNFC]
            state[_NFC], state[_FNFC] = x, fu
        elif (fu <= state[_FFULC]) or (fulc == xf) or (fulc == nfc):
            state[_FULC], state[_FFULC] = x, fu


@njit(cache=True, nogil=True, inline="always")
def _sign(v):  # pragma: no cover - compiled
    """``np.sign`` of a float (NaN stays NaN)."""
    if v > 0.0:
        return 1.0
    if v < 0.0:
        return -1.0
    return v


@njit(cache=True, nogil=True, inline="always")
def _als_evaluate(data, lags, ve, vw, alpha11, fused, work, floor, nnls_maxiter, theta):  # pragma: no cover
    """One candidate of the profile: the first filter ``(alpha11, ve, vw)``, its ALS solve into theta
    (p,) and the log-likelihood of the ALS model, as ``_ALS.solve`` and ``_ALS.loglik`` do.

    ``data = (y, X, b0, P0)``; ``fused = (K, G, CT, B)`` the work arrays of
    :func:`als_first_filter_k3` (used when k = 3); ``work = (b_pred, P_pred, b_filt, P_filt, e, q,
    a, vw_model, ntn, ntb)`` the filter's and the solve's. Returns ``(status, loglik)``: status 0
    (solved; loglik -inf when the ALS model's filter breaks down), ``PROFILE_BROKE`` (the first
    filter broke down, theta untouched) or the status of :func:`kalcoint._kernels.nonnegative.nnls`."""
    y, X, b0, P0 = data
    K, G, CT, B = fused
    b_pred, P_pred, b_filt, P_filt, e, q, a, vw_model, ntn, ntb = work
    k = X.shape[1]
    for i in range(k):
        a[i] = 1.0
    a[0] = alpha11
    ntn[:, :] = 0.0
    ntb[:] = 0.0
    no, yes = _NO_YES[0], _NO_YES[1]
    if k == 3:
        ll = als_first_filter_k3(y, X, a, vw, ve, b0, P0, lags, K, G, CT, B, e, q, ntn, ntb)
    else:
        ll = filter_loop(y, X, a, vw, ve, b0, P0, no, yes, b_pred, P_pred, b_filt, P_filt, e, q)
        if math.isfinite(ll):
            als_filter_equations(X, a, P_pred, e, q, lags, ntn, ntb)
    if not math.isfinite(ll):
        return PROFILE_BROKE, -math.inf
    R, c, scale = als_square_root(ntn, ntb, floor)
    phi, _, status = nnls(R, c, nnls_maxiter)
    if status != NNLS_OK:
        return status, math.nan
    for u in range(theta.size):
        theta[u] = phi[u] / scale[u]
        if ntn[u, u] <= 0.0:
            theta[u] = 0.0
    for i in range(k):
        vw_model[i] = theta[1 + i]
    ll = filter_loop(y, X, a, vw_model, theta[0], b0, P0, no, no, b_pred, P_pred, b_filt, P_filt, e, q)
    return NNLS_OK, (ll if math.isfinite(ll) else -math.inf)


@njit(cache=True, nogil=True, inline="always")
def _profile_at(alpha11, count, data, lags, ve, vw, fused, work, floor, nnls_maxiter, cache):  # pragma: no cover
    """The profile's log-likelihood at ``alpha11``, from ``cache`` when that value was evaluated
    (the first ``count`` entries), else evaluated and appended. Returns ``(status, loglik, count,
    solves)`` with ``solves`` 1 when an ALS solve ran (counted as ``_ALS.evaluations`` counts)."""
    alphas, thetas, lls, solved = cache
    for i in range(count):
        if alphas[i] == alpha11:
            return NNLS_OK, lls[i], count, 0
    status, ll = _als_evaluate(data, lags, ve, vw, alpha11, fused, work, floor, nnls_maxiter, thetas[count])
    if status > 0:
        return status, ll, count, 1
    alphas[count] = alpha11
    lls[count] = ll
    solved[count] = status == NNLS_OK
    return NNLS_OK, ll, count + 1, (1 if status == NNLS_OK else 0)


@njit(cache=True, nogil=True)
def als_profile(data, lags, ve, vw, grid, xatol, maxfun, fused, work, floor, nnls_maxiter, cache):  # pragma: no cover
    """One round of ALS's profile over alpha11 (``_profile`` of :mod:`kalcoint.tuning.als`).

    The first filter ``(ve, vw)`` runs with each alpha11 of ``grid`` (sorted, distinct), then with
    the points of scipy's bounded Brent search (``minimize_scalar(method="bounded",
    options={"xatol": xatol, "maxiter": maxfun})``, :func:`brent_tell`) minimising
    ``-loglik(tanh(u))`` over ``u = atanh(alpha11)`` between the best grid point's neighbours.
    Each distinct alpha11 is evaluated once (:func:`_profile_at`, the only call site: the compiled
    size stays small).

    Parameters
    ----------
    data, fused, work : tuples of arrays
        See :func:`_als_evaluate`.
    lags : int
    ve : float
        The first filter's observation noise variance.
    vw : ndarray, shape (k,)
        Its state noise variances.
    grid : ndarray, shape (g,)
    xatol : float
    maxfun : int
    floor : float
        :func:`als_square_root`'s eigenvalue floor.
    nnls_maxiter : int
    cache : tuple
        ``(alphas (c,), thetas (c, 2k + 1), lls (c,), solved (c,) bool)`` with ``c >= g + maxfun``:
        written, in the order the values were first evaluated.

    Returns
    -------
    status : int
        0, or the status of :func:`kalcoint._kernels.nonnegative.nnls` that stopped the search.
    count : int
        Entries of ``cache`` written.
    best : int
        The first entry with the highest log-likelihood.
    solves : int
        ALS solves run.
    """
    count = solves = 0
    best_grid, best_ll = 0, -math.inf
    state = np.empty(BRENT_STATE)
    searching = False
    g = 0
    alpha11 = grid[0]
    while True:
        status, ll, count, s = _profile_at(alpha11, count, data, lags, ve, vw, fused, work, floor, nnls_maxiter, cache)
        solves += s
        if status != NNLS_OK:
            return status, count, 0, solves
        if searching:
            done, u = brent_tell(-ll, maxfun, state)
            if done:
                break
        else:
            if ll > best_ll:
                best_grid, best_ll = g, ll
            g += 1
            if g < grid.size:
                alpha11 = grid[g]
                continue
            if not math.isfinite(best_ll):
                break
            lo = math.atanh(grid[max(best_grid - 1, 0)])
            hi = math.atanh(grid[min(best_grid + 1, grid.size - 1)])
            if not hi > lo:
                break
            searching = True
            u = brent_start(lo, hi, xatol, state)
        alpha11 = math.tanh(u)
    lls = cache[2]
    best = 0
    for i in range(1, count):
        if lls[i] > lls[best]:
            best = i
    return NNLS_OK, count, best, solves

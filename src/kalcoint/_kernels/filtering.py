"""The filter recursion and the fixed-interval smoother (docs/method.md §3).

Compiled with numba (see :mod:`kalcoint._numba_cache`); imported by the modules of the
pipeline through :mod:`kalcoint._kernels`."""

from __future__ import annotations

import math

import numpy as np

from .._numba_cache import njit

LOG_2PI = math.log(2.0 * math.pi)


@njit(cache=True, nogil=True, inline="always")
def accumulate_loglik(t, q, eg, acc):  # pragma: no cover - compiled
    """The log-likelihood's sums after day ``t`` (``eg = e_t^2 / Q_t``): ``acc = (sum e^2/Q, log det so
    far, product of the Q_t not yet logged)``: one log call per 8 days, while the product stays in range."""
    quad, logdet, prod = acc
    quad += eg
    if 1e-100 < q < 1e100:
        prod *= q
    else:
        logdet += math.log(q)
    if (t & 7) == 7 or not 1e-150 < prod < 1e150:
        logdet += math.log(prod)
        prod = 1.0
    return quad, logdet, prod


@njit(cache=True, nogil=True, inline="always")
def loglik_from_sums(acc, n):  # pragma: no cover - compiled
    """The log-likelihood from :func:`accumulate_loglik`'s sums over ``n`` days."""
    quad, logdet, prod = acc
    return -0.5 * ((logdet + math.log(prod)) + n * LOG_2PI + quad)


@njit(cache=True, nogil=True)
def filter_loop(
    y, X, a, vw, ve, b_start, P_start, predict_first, store_cov, b_pred, P_pred, b_filt, P_filt, innov, innov_var
):  # pragma: no cover - compiled
    """docs/method.md §3 for t = 0..n-1; returns the log-likelihood (NaN if some Q_t <= 0).

    ``(b_start, P_start)`` is the prior at t = 0 when ``predict_first`` is False,
    else the posterior of the step before t = 0 (used to continue a filter).
    ``b_pred``, ``P_pred`` and ``P_filt`` are written only when ``store_cov``;
    ``b_filt``, ``innov`` and ``innov_var`` always.

    ``A = diag(a)`` and ``Vw = diag(vw)``. The covariance is kept symmetric and only its
    upper triangle is updated; the update of day t is written straight into the prediction
    for day t + 1 (``P_filt`` itself is not kept unless stored). For k = 2 or 3 without ``store_cov``
    or ``predict_first``, :func:`_filter_k2` or :func:`_filter_k3` (the same arithmetic on scalars).
    """
    n, k = X.shape
    if k == 3 and not store_cov and not predict_first:
        return _filter_k3(y, X, a, vw, ve, b_start, P_start, b_filt, innov, innov_var)
    if k == 2 and not store_cov and not predict_first:
        return _filter_k2(y, X, a, vw, ve, b_start, P_start, b_filt, innov, innov_var)
    bp = b_start.copy()  # prior mean b_{t|t-1}
    Pp = np.empty((k, k))  # prior covariance P_{t|t-1}
    aa = np.empty((k, k))  # a_i a_j: A P A' = aa * P (entrywise) for diagonal A
    for i in range(k):
        for j in range(k):
            Pp[i, j] = 0.5 * (P_start[i, j] + P_start[j, i])
            aa[i, j] = a[i] * a[j]
    if predict_first:
        for i in range(k):
            bp[i] = a[i] * bp[i]
            for j in range(k):
                Pp[i, j] = aa[i, j] * Pp[i, j]
            Pp[i, i] += vw[i]
    Px = np.empty(k)
    acc = (0.0, 0.0, 1.0)  # sum e_t^2 / Q_t, sum log Q_t (see accumulate_loglik)
    for t in range(n):
        if store_cov:
            for i in range(k):
                b_pred[t, i] = bp[i]
                for j in range(k):
                    P_pred[t, i, j] = Pp[i, j]
        fit = 0.0
        for i in range(k):
            fit += X[t, i] * bp[i]
        e = y[t] - fit
        q = ve
        for i in range(k):
            s = 0.0
            for j in range(k):
                s += Pp[i, j] * X[t, j]
            Px[i] = s  # P_pred x_t'
            q += X[t, i] * s
        if not q > 0.0:
            return np.nan
        r = 1.0 / q
        g = e * r
        # K = P_pred x' / Q;  b_{t|t} = b_pred + K e;  P_{t|t} = P_pred - K x P_pred = P_pred - Px Px' / Q
        # then predict day t + 1: b = A b_{t|t},  P = A P_{t|t} A' + Vw  (A, Vw diagonal).
        # (Px_i Px_j) is formed before 1/Q is known: the day-to-day dependency chain is shorter.
        # P_{t|t} is stored in a loop of its own: a branch in the update loop costs 10%.
        if store_cov:
            for i in range(k):
                for j in range(i, k):
                    pf = Pp[i, j] - (Px[i] * Px[j]) * r
                    P_filt[t, i, j] = pf
                    P_filt[t, j, i] = pf
        for i in range(k):
            bi = bp[i] + Px[i] * g
            b_filt[t, i] = bi
            bp[i] = a[i] * bi
            for j in range(i, k):
                v = aa[i, j] * (Pp[i, j] - (Px[i] * Px[j]) * r)
                Pp[i, j] = v
                Pp[j, i] = v
            Pp[i, i] += vw[i]
        innov[t] = e
        innov_var[t] = q
        acc = accumulate_loglik(t, q, e * g, acc)
    return loglik_from_sums(acc, n)


@njit(cache=True, nogil=True)
def smoother_loop(y, X, a, b_pred, P_pred, innov, innov_var, b_smooth, P_smooth, lag_one):  # pragma: no cover
    """de Jong's fixed-interval smoother over the filter's predicted states/covariances.

    Fills ``b_smooth`` (n, k), ``P_smooth`` (n, k, k) and ``lag_one`` (n, k, k) with
    ``lag_one[t] = Cov(b_t, b_{t-1} | all)`` for t >= 1 (``lag_one[0] = 0``).
    """
    n, k = X.shape
    r = np.zeros(k)
    N = np.zeros((k, k))
    r_prev = np.empty(k)
    N_prev = np.empty((k, k))
    L = np.empty((k, k))
    PL = np.empty((k, k))  # P_t L_t'
    M = np.empty((k, k))  # I - N_t P_{t+1}
    NL = np.empty((k, k))
    Px = np.empty(k)
    for i in range(k):
        for j in range(k):
            lag_one[0, i, j] = 0.0
    for t in range(n - 1, -1, -1):
        q = innov_var[t]
        for i in range(k):
            s = 0.0
            for j in range(k):
                s += P_pred[t, i, j] * X[t, j]
            Px[i] = s
        # L_t = A - K_t x_t with K_t = A P_t x_t' / Q_t
        for i in range(k):
            for j in range(k):
                L[i, j] = -a[i] * Px[i] * X[t, j] / q
            L[i, i] += a[i]
        if t < n - 1:
            # Cov(b_t, b_{t+1} | all) = P_t L_t' (I - N_t P_{t+1}),  N_t before this step's update
            for i in range(k):
                for j in range(k):
                    s = 0.0
                    for m in range(k):
                        s += P_pred[t, i, m] * L[j, m]
                    PL[i, j] = s
            for i in range(k):
                for j in range(k):
                    s = 0.0
                    for m in range(k):
                        s += N[i, m] * P_pred[t + 1, m, j]
                    M[i, j] = -s
                M[i, i] += 1.0
            for i in range(k):
                for j in range(k):
                    s = 0.0
                    for m in range(k):
                        s += PL[i, m] * M[m, j]
                    lag_one[t + 1, j, i] = s  # transpose: Cov(b_{t+1}, b_t)
        # r_{t-1} = x' e / Q + L' r_t ;  N_{t-1} = x' x / Q + L' N_t L
        for i in range(k):
            s = X[t, i] * innov[t] / q
            for m in range(k):
                s += L[m, i] * r[m]
            r_prev[i] = s
        for i in range(k):
            for j in range(k):
                s = 0.0
                for m in range(k):
                    s += N[i, m] * L[m, j]
                NL[i, j] = s
        for i in range(k):
            for j in range(k):
                s = X[t, i] * X[t, j] / q
                for m in range(k):
                    s += L[m, i] * NL[m, j]
                N_prev[i, j] = s
        for i in range(k):
            r[i] = r_prev[i]
            for j in range(k):
                N[i, j] = N_prev[i, j]
        # b_{t|n} = b_pred + P_t r_{t-1};  P_{t|n} = P_t - P_t N_{t-1} P_t
        for i in range(k):
            s = b_pred[t, i]
            for m in range(k):
                s += P_pred[t, i, m] * r[m]
            b_smooth[t, i] = s
        for i in range(k):
            for j in range(k):
                s = 0.0
                for m in range(k):
                    s += N[i, m] * P_pred[t, m, j]
                NL[i, j] = s  # N_{t-1} P_t
        for i in range(k):
            for j in range(k):
                s = P_pred[t, i, j]
                for m in range(k):
                    s -= P_pred[t, i, m] * NL[m, j]
                P_smooth[t, i, j] = s


@njit(cache=True, nogil=True, inline="always")
def k3_constants(a0, a1, a2, v0, v1, v2, ve):  # pragma: no cover - compiled
    """The day-invariant figures of a k = 3 pass on scalars (:func:`k3_step`):
    ``(ve, a_0..2, (a a')_00,01,02,11,12,22, vw_0..2)``."""
    return (ve, a0, a1, a2, a0 * a0, a0 * a1, a0 * a2, a1 * a1, a1 * a2, a2 * a2, v0, v1, v2)


@njit(cache=True, nogil=True, inline="always")
def k3_prior(b_start, P_start):  # pragma: no cover - compiled
    """The prior at t = 0 of a k = 3 pass: ``(b_0..2, P_00,01,02,11,12,22)`` (P symmetrised)."""
    return (
        b_start[0],
        b_start[1],
        b_start[2],
        0.5 * (P_start[0, 0] + P_start[0, 0]),
        0.5 * (P_start[0, 1] + P_start[1, 0]),
        0.5 * (P_start[0, 2] + P_start[2, 0]),
        0.5 * (P_start[1, 1] + P_start[1, 1]),
        0.5 * (P_start[1, 2] + P_start[2, 1]),
        0.5 * (P_start[2, 2] + P_start[2, 2]),
    )


@njit(cache=True, nogil=True, inline="always")
def k3_step(t, y, X, c, s):  # pragma: no cover - compiled
    """Day ``t`` of the filter for k = 3 on scalars, :func:`filter_loop`'s arithmetic in its order:
    from the prior ``s`` (:func:`k3_prior`) and the constants ``c`` (:func:`k3_constants`), returns
    ``(next prior, e_t, Q_t, 1/Q_t, e_t/Q_t, P x_t' (3), b_{t|t} (3), first row of P_{t|t} (3))``.
    Where ``Q_t <= 0`` the prior comes back unchanged with ``Q_t`` (the caller stops)."""
    ve, a0, a1, a2, aa00, aa01, aa02, aa11, aa12, aa22, v0, v1, v2 = c
    b0, b1, b2, p00, p01, p02, p11, p12, p22 = s
    x0, x1, x2 = X[t, 0], X[t, 1], X[t, 2]
    e = y[t] - (((0.0 + x0 * b0) + x1 * b1) + x2 * b2)
    px0 = ((0.0 + p00 * x0) + p01 * x1) + p02 * x2
    px1 = ((0.0 + p01 * x0) + p11 * x1) + p12 * x2
    px2 = ((0.0 + p02 * x0) + p12 * x1) + p22 * x2
    q = ((ve + x0 * px0) + x1 * px1) + x2 * px2
    if not q > 0.0:
        return s, e, q, 0.0, 0.0, px0, px1, px2, b0, b1, b2, p00, p01, p02
    r = 1.0 / q
    g = e * r
    f0 = b0 + px0 * g
    f1 = b1 + px1 * g
    f2 = b2 + px2 * g
    f00 = p00 - (px0 * px0) * r
    f01 = p01 - (px0 * px1) * r
    f02 = p02 - (px0 * px2) * r
    prior = (
        a0 * f0,
        a1 * f1,
        a2 * f2,
        aa00 * f00 + v0,
        aa01 * f01,
        aa02 * f02,
        aa11 * (p11 - (px1 * px1) * r) + v1,
        aa12 * (p12 - (px1 * px2) * r),
        aa22 * (p22 - (px2 * px2) * r) + v2,
    )
    return prior, e, q, r, g, px0, px1, px2, f0, f1, f2, f00, f01, f02


@njit(cache=True, nogil=True, inline="always")
def k2_constants(a0, v0, v1, ve):  # pragma: no cover - compiled
    """The day-invariant figures of a k = 2 pass on scalars with the transition ``diag(a0, 1)``
    (:func:`k2_step`): ``(ve, a_0, a_0^2, vw_0..1)``."""
    return (ve, a0, a0 * a0, v0, v1)


@njit(cache=True, nogil=True, inline="always")
def k2_prior(b_start, P_start):  # pragma: no cover - compiled
    """The prior at t = 0 of a k = 2 pass: ``(b_0..1, P_00,01,11)`` (P symmetrised)."""
    return (
        b_start[0],
        b_start[1],
        0.5 * (P_start[0, 0] + P_start[0, 0]),
        0.5 * (P_start[0, 1] + P_start[1, 0]),
        0.5 * (P_start[1, 1] + P_start[1, 1]),
    )


@njit(cache=True, nogil=True, inline="always")
def k2_step(t, y, X, c, s):  # pragma: no cover - compiled
    """Day ``t`` of the filter for k = 2 on scalars with the transition ``diag(a_0, 1)`` (the method's
    pairs): :func:`filter_loop`'s arithmetic in its order, less its products by ``a_1 = 1`` and the 0.0
    its sums start from (neither changes a number, but for the sign of a zero: the same figures to the
    last bit). From the prior ``s`` (:func:`k2_prior`) and the constants ``c`` (:func:`k2_constants`),
    returns ``(next prior, e_t, Q_t, 1/Q_t, e_t/Q_t, P x_t' (2), b_{t|t} (2), first row of P_{t|t} (2))``.
    Where ``Q_t <= 0`` the prior comes back unchanged with ``Q_t`` (the caller stops)."""
    ve, a0, aa00, v0, v1 = c
    b0, b1, p00, p01, p11 = s
    x0, x1 = X[t, 0], X[t, 1]
    e = y[t] - (x0 * b0 + x1 * b1)
    px0 = p00 * x0 + p01 * x1
    px1 = p01 * x0 + p11 * x1
    q = (ve + x0 * px0) + x1 * px1
    if not q > 0.0:
        return s, e, q, 0.0, 0.0, px0, px1, b0, b1, p00, p01
    r = 1.0 / q
    g = e * r
    f0 = b0 + px0 * g
    f1 = b1 + px1 * g
    f00 = p00 - (px0 * px0) * r
    f01 = p01 - (px0 * px1) * r
    prior = (a0 * f0, f1, aa00 * f00 + v0, a0 * f01, (p11 - (px1 * px1) * r) + v1)
    return prior, e, q, r, g, px0, px1, f0, f1, f00, f01


@njit(cache=True, nogil=True)
def _filter_k3(y, X, a, vw, ve, b_start, P_start, b_filt, innov, innov_var):  # pragma: no cover - compiled
    """:func:`filter_loop` for k = 3 (no stored covariances, prior at t = 0): the state and the six
    entries of its covariance stay in registers (:func:`k3_step`: the same numbers to the last bit)."""
    n = X.shape[0]
    c = k3_constants(a[0], a[1], a[2], vw[0], vw[1], vw[2], ve)
    s = k3_prior(b_start, P_start)
    acc = (0.0, 0.0, 1.0)
    for t in range(n):
        s, e, q, r, g, px0, px1, px2, f0, f1, f2, f00, f01, f02 = k3_step(t, y, X, c, s)
        if not q > 0.0:
            return np.nan
        b_filt[t, 0] = f0
        b_filt[t, 1] = f1
        b_filt[t, 2] = f2
        innov[t] = e
        innov_var[t] = q
        acc = accumulate_loglik(t, q, e * g, acc)
    return loglik_from_sums(acc, n)


@njit(cache=True, nogil=True, inline="always")
def k2_day_constants(a0, a1, v0, v1, ve):  # pragma: no cover - compiled
    """The day-invariant figures of a k = 2 pass on scalars (:func:`k2_filter_step`):
    ``(ve, a_0..1, (a a')_00,01,11, vw_0..1)``."""
    return (ve, a0, a1, a0 * a0, a0 * a1, a1 * a1, v0, v1)


@njit(cache=True, nogil=True, inline="always")
def k2_day(yt, x0, x1, c, s):  # pragma: no cover - compiled
    """One day of the filter for k = 2 on scalars, :func:`filter_loop`'s arithmetic in its order,
    with no test of ``Q_t``: from the observation ``yt``, the row ``(x0, x1)``, the prior ``s``
    (:func:`k2_prior`) and the constants ``c`` (:func:`k2_day_constants`), returns ``(next prior, e_t,
    Q_t, 1/Q_t, e_t/Q_t, b_{t|t} (2), P_{t|t} (00, 01, 11))``; meaningless where ``Q_t <= 0``."""
    ve, a0, a1, aa00, aa01, aa11, v0, v1 = c
    b0, b1, p00, p01, p11 = s
    e = yt - ((0.0 + x0 * b0) + x1 * b1)
    px0 = (0.0 + p00 * x0) + p01 * x1
    px1 = (0.0 + p01 * x0) + p11 * x1
    q = (ve + x0 * px0) + x1 * px1
    r = 1.0 / q
    g = e * r
    f0 = b0 + px0 * g
    f1 = b1 + px1 * g
    f00 = p00 - (px0 * px0) * r
    f01 = p01 - (px0 * px1) * r
    f11 = p11 - (px1 * px1) * r
    prior = (a0 * f0, a1 * f1, aa00 * f00 + v0, aa01 * f01, aa11 * f11 + v1)
    return prior, e, q, r, g, f0, f1, f00, f01, f11


@njit(cache=True, nogil=True, inline="always")
def k2_filter_step(t, y, X, c, s):  # pragma: no cover - compiled
    """Day ``t`` of the filter for k = 2 on scalars (:func:`k2_day`): returns ``(next prior, e_t,
    Q_t, 1/Q_t, e_t/Q_t, b_{t|t} (2), P_{t|t} (00, 01, 11))``. Where ``Q_t <= 0`` the prior comes
    back unchanged with ``Q_t`` (the caller stops)."""
    b0, b1, p00, p01, p11 = s
    x0, x1 = X[t, 0], X[t, 1]
    yt = y[t]
    e = yt - ((0.0 + x0 * b0) + x1 * b1)
    q = (c[0] + x0 * ((0.0 + p00 * x0) + p01 * x1)) + x1 * ((0.0 + p01 * x0) + p11 * x1)
    if not q > 0.0:
        return s, e, q, 0.0, 0.0, b0, b1, p00, p01, p11
    return k2_day(yt, x0, x1, c, s)


@njit(cache=True, nogil=True)
def _filter_k2(y, X, a, vw, ve, b_start, P_start, b_filt, innov, innov_var):  # pragma: no cover - compiled
    """:func:`filter_loop` for k = 2 (no stored covariances, prior at t = 0): the state and the three
    entries of its covariance stay in registers (:func:`k2_filter_step`: the same numbers to the last bit)."""
    n = X.shape[0]
    c = k2_day_constants(a[0], a[1], vw[0], vw[1], ve)
    s = k2_prior(b_start, P_start)
    acc = (0.0, 0.0, 1.0)
    for t in range(n):
        s, e, q, r, g, f0, f1, _, _, _ = k2_filter_step(t, y, X, c, s)
        if not q > 0.0:
            return np.nan
        b_filt[t, 0] = f0
        b_filt[t, 1] = f1
        innov[t] = e
        innov_var[t] = q
        acc = accumulate_loglik(t, q, e * g, acc)
    return loglik_from_sums(acc, n)

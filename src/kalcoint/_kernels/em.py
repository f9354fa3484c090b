"""The EM map: filter, smoother and M-step in one compiled call.

Compiled with numba (see :mod:`kalcoint._numba_cache`); imported by the modules of the
pipeline through :mod:`kalcoint._kernels`."""

from __future__ import annotations

import math

import numpy as np

from .._numba_cache import njit
from .filtering import (
    accumulate_loglik,
    filter_loop,
    k2_constants,
    k2_prior,
    k2_step,
    k3_constants,
    k3_prior,
    k3_step,
    loglik_from_sums,
    smoother_loop,
)


@njit(cache=True, nogil=True, inline="always")
def _state_m_step(i, s11, s00, s10, n, alpha_max, out):  # pragma: no cover - compiled
    """The constrained maximum for state ``i`` from its sums ``S11, S00, S10``: ``alpha11 = S10/S00``
    (clipped to +-``alpha_max``) for the level, 1 for the hedge ratios, into ``out[0]``; then
    ``Vw_i = (S11 - 2 a S10 + a^2 S00) / (n - 1)`` into ``out[2 + i]``."""
    ai = 1.0
    if i == 0:
        ai = s10 / s00 if s00 > 0.0 else 0.0
        ai = min(max(ai, -alpha_max), alpha_max)
        out[0] = ai
    vw = (s11 - 2.0 * ai * s10 + ai * ai * s00) / (n - 1)
    out[2 + i] = max(vw, 0.0)  # rounding only: the sum is an expected square


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
        _state_m_step(i, s11, s00, s10, n, alpha_max, out)
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

    ws_b : (3, n, k) and ws_P : (4, n, k, k) work arrays (``ws_P`` C-contiguous). For k = 2 and
    k = 3, :func:`em_map_k2` and :func:`em_map_k3` (the same arithmetic on scalars, in one forward
    and one backward pass); else :func:`em_map_arrays`.
    """
    n, k = X.shape
    if k == 2:
        work = ws_P.reshape((2, n, 8))
        return em_map_k2(y, X, b0, P0, params, alpha_max, work[0], work[1], out)
    if k == 3:
        return em_map_k3(y, X, b0, P0, params, alpha_max, ws_P[0].reshape((n, 9)), ws_P[1].reshape((n, 9)), out)
    return em_map_arrays(y, X, b0, P0, params, alpha_max, ws_b, ws_P, out)


@njit(cache=True, nogil=True)
def em_map_arrays(y, X, b0, P0, params, alpha_max, ws_b, ws_P, out):  # pragma: no cover - compiled
    """:func:`em_map` for any k: :func:`filter_loop` with stored covariances, :func:`smoother_loop`
    and :func:`m_step` on their arrays."""
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


@njit(cache=True, nogil=True)
def em_map_k3(y, X, b_start, P_start, params, alpha_max, fw, bw, out):  # pragma: no cover - compiled
    """:func:`em_map_arrays` for k = 3 on scalars: the filter (its stored quantities in ``fw``), the
    smoother backwards keeping only what the M-step sums (in ``bw``), then the M-step's sums
    forwards. Every quantity is computed by the arithmetic of :func:`filter_loop`,
    :func:`smoother_loop` and :func:`m_step`, in the same order (the smoother's ``N_t`` and
    ``P_{t|n}`` as nine entries, not assumed symmetric): the same numbers to the last bit.

    fw : (n, 9) work: ``b_{t|t-1}`` (3), ``P_{t|t-1}`` (00, 01, 02, 11, 12, 22).
    bw : (n, 9) work: ``P_x = P_{t|t-1} x_t'`` (3), ``e_t``, ``Q_t``, then per day the smoother's
        ``P_{t|n,ii} + b_{t|n,i}^2`` (3) and ``(y_t - x_t b_{t|n})^2 + x_t P_{t|n} x_t'``; the lag-one
        diagonal and ``b_{t|n}`` go to ``fw`` once its day is passed (columns 0-2 and 3-5).
    """
    n = X.shape[0]
    a0, a1, a2 = params[0], 1.0, 1.0
    c = k3_constants(a0, a1, a2, params[2], params[3], params[4], params[1])
    prior = k3_prior(b_start, P_start)
    acc = (0.0, 0.0, 1.0)
    for t in range(n):
        b0, b1, b2, p00, p01, p02, p11, p12, p22 = prior
        fw[t, 0], fw[t, 1], fw[t, 2] = b0, b1, b2
        fw[t, 3], fw[t, 4], fw[t, 5], fw[t, 6], fw[t, 7], fw[t, 8] = p00, p01, p02, p11, p12, p22
        prior, e, q, r, g, px0, px1, px2, f0, f1, f2, f00, f01, f02 = k3_step(t, y, X, c, prior)
        if not q > 0.0:
            return np.nan
        bw[t, 0], bw[t, 1], bw[t, 2], bw[t, 3], bw[t, 4] = px0, px1, px2, e, q
        acc = accumulate_loglik(t, q, e * g, acc)
    ll = loglik_from_sums(acc, n)
    if not math.isfinite(ll):
        return ll
    _smooth_k3(y, X, a0, a1, a2, fw, bw)
    _m_step_k3(n, alpha_max, fw, bw, out)
    return ll


@njit(cache=True, nogil=True, inline="always")
def _smooth_k3(y, X, a0, a1, a2, fw, bw):  # pragma: no cover - compiled
    """The backward pass of :func:`em_map_k3`: :func:`smoother_loop`'s arithmetic for k = 3 and the
    per-day terms of :func:`m_step` (see :func:`em_map_k3` for where they go). Inlined: with the
    caller's constants ``a1 = a2 = 1`` the compiler drops the products by 1.0; the sums start from
    their first term, not 0.0 (neither changes a number, but for the sign of a zero)."""
    n = X.shape[0]
    r0, r1, r2 = 0.0, 0.0, 0.0
    n00, n01, n02, n10, n11, n12, n20, n21, n22 = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    # P_{t+1|t} of the day after (read before that day's row of fw is overwritten)
    q00, q01, q02, q11, q12, q22 = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    for t in range(n - 1, -1, -1):
        c00, c01, c02, c11, c12, c22 = fw[t, 3], fw[t, 4], fw[t, 5], fw[t, 6], fw[t, 7], fw[t, 8]
        px0, px1, px2, e, q = bw[t, 0], bw[t, 1], bw[t, 2], bw[t, 3], bw[t, 4]
        x0, x1, x2 = X[t, 0], X[t, 1], X[t, 2]
        # L_t = A - A P_t x' x / Q
        l00 = -a0 * px0 * x0 / q + a0
        l01 = -a0 * px0 * x1 / q
        l02 = -a0 * px0 * x2 / q
        l10 = -a1 * px1 * x0 / q
        l11 = -a1 * px1 * x1 / q + a1
        l12 = -a1 * px1 * x2 / q
        l20 = -a2 * px2 * x0 / q
        l21 = -a2 * px2 * x1 / q
        l22 = -a2 * px2 * x2 / q + a2
        if t < n - 1:
            # PL = P_t L_t'
            pl00 = (c00 * l00 + c01 * l01) + c02 * l02
            pl01 = (c00 * l10 + c01 * l11) + c02 * l12
            pl02 = (c00 * l20 + c01 * l21) + c02 * l22
            pl10 = (c01 * l00 + c11 * l01) + c12 * l02
            pl11 = (c01 * l10 + c11 * l11) + c12 * l12
            pl12 = (c01 * l20 + c11 * l21) + c12 * l22
            pl20 = (c02 * l00 + c12 * l01) + c22 * l02
            pl21 = (c02 * l10 + c12 * l11) + c22 * l12
            pl22 = (c02 * l20 + c12 * l21) + c22 * l22
            # M = I - N_t P_{t+1}
            m00 = -((n00 * q00 + n01 * q01) + n02 * q02) + 1.0
            m01 = -((n00 * q01 + n01 * q11) + n02 * q12)
            m02 = -((n00 * q02 + n01 * q12) + n02 * q22)
            m10 = -((n10 * q00 + n11 * q01) + n12 * q02)
            m11 = -((n10 * q01 + n11 * q11) + n12 * q12) + 1.0
            m12 = -((n10 * q02 + n11 * q12) + n12 * q22)
            m20 = -((n20 * q00 + n21 * q01) + n22 * q02)
            m21 = -((n20 * q01 + n21 * q11) + n22 * q12)
            m22 = -((n20 * q02 + n21 * q12) + n22 * q22) + 1.0
            # diagonal of Cov(b_{t+1}, b_t | all) = (P_t L_t' M)'
            fw[t + 1, 0] = (pl00 * m00 + pl01 * m10) + pl02 * m20
            fw[t + 1, 1] = (pl10 * m01 + pl11 * m11) + pl12 * m21
            fw[t + 1, 2] = (pl20 * m02 + pl21 * m12) + pl22 * m22
        # r_{t-1} = x' e / Q + L' r_t
        s0 = ((x0 * e / q + l00 * r0) + l10 * r1) + l20 * r2
        s1 = ((x1 * e / q + l01 * r0) + l11 * r1) + l21 * r2
        s2 = ((x2 * e / q + l02 * r0) + l12 * r1) + l22 * r2
        r0, r1, r2 = s0, s1, s2
        # N_{t-1} = x' x / Q + L' (N_t L)
        k00 = (n00 * l00 + n01 * l10) + n02 * l20
        k01 = (n00 * l01 + n01 * l11) + n02 * l21
        k02 = (n00 * l02 + n01 * l12) + n02 * l22
        k10 = (n10 * l00 + n11 * l10) + n12 * l20
        k11 = (n10 * l01 + n11 * l11) + n12 * l21
        k12 = (n10 * l02 + n11 * l12) + n12 * l22
        k20 = (n20 * l00 + n21 * l10) + n22 * l20
        k21 = (n20 * l01 + n21 * l11) + n22 * l21
        k22 = (n20 * l02 + n21 * l12) + n22 * l22
        n00 = ((x0 * x0 / q + l00 * k00) + l10 * k10) + l20 * k20
        n01 = ((x0 * x1 / q + l00 * k01) + l10 * k11) + l20 * k21
        n02 = ((x0 * x2 / q + l00 * k02) + l10 * k12) + l20 * k22
        n10 = ((x1 * x0 / q + l01 * k00) + l11 * k10) + l21 * k20
        n11 = ((x1 * x1 / q + l01 * k01) + l11 * k11) + l21 * k21
        n12 = ((x1 * x2 / q + l01 * k02) + l11 * k12) + l21 * k22
        n20 = ((x2 * x0 / q + l02 * k00) + l12 * k10) + l22 * k20
        n21 = ((x2 * x1 / q + l02 * k01) + l12 * k11) + l22 * k21
        n22 = ((x2 * x2 / q + l02 * k02) + l12 * k12) + l22 * k22
        # b_{t|n} = b_{t|t-1} + P_t r_{t-1}
        bs0 = ((fw[t, 0] + c00 * r0) + c01 * r1) + c02 * r2
        bs1 = ((fw[t, 1] + c01 * r0) + c11 * r1) + c12 * r2
        bs2 = ((fw[t, 2] + c02 * r0) + c12 * r1) + c22 * r2
        # P_{t|n} = P_t - P_t (N_{t-1} P_t)
        h00 = (n00 * c00 + n01 * c01) + n02 * c02
        h01 = (n00 * c01 + n01 * c11) + n02 * c12
        h02 = (n00 * c02 + n01 * c12) + n02 * c22
        h10 = (n10 * c00 + n11 * c01) + n12 * c02
        h11 = (n10 * c01 + n11 * c11) + n12 * c12
        h12 = (n10 * c02 + n11 * c12) + n12 * c22
        h20 = (n20 * c00 + n21 * c01) + n22 * c02
        h21 = (n20 * c01 + n21 * c11) + n22 * c12
        h22 = (n20 * c02 + n21 * c12) + n22 * c22
        s00 = ((c00 - c00 * h00) - c01 * h10) - c02 * h20
        s01 = ((c01 - c00 * h01) - c01 * h11) - c02 * h21
        s02 = ((c02 - c00 * h02) - c01 * h12) - c02 * h22
        s10 = ((c01 - c01 * h00) - c11 * h10) - c12 * h20
        s11 = ((c11 - c01 * h01) - c11 * h11) - c12 * h21
        s12 = ((c12 - c01 * h02) - c11 * h12) - c12 * h22
        s20 = ((c02 - c02 * h00) - c12 * h10) - c22 * h20
        s21 = ((c12 - c02 * h01) - c12 * h11) - c22 * h21
        s22 = ((c22 - c02 * h02) - c12 * h12) - c22 * h22
        # the M-step's terms of the day (m_step's arithmetic)
        bw[t, 5] = s00 + bs0 * bs0
        bw[t, 6] = s11 + bs1 * bs1
        bw[t, 7] = s22 + bs2 * bs2
        res = ((y[t] - x0 * bs0) - x1 * bs1) - x2 * bs2
        xpx = x0 * s00 * x0
        xpx += x0 * s01 * x1
        xpx += x0 * s02 * x2
        xpx += x1 * s10 * x0
        xpx += x1 * s11 * x1
        xpx += x1 * s12 * x2
        xpx += x2 * s20 * x0
        xpx += x2 * s21 * x1
        xpx += x2 * s22 * x2
        bw[t, 8] = res * res + xpx
        q00, q01, q02, q11, q12, q22 = c00, c01, c02, c11, c12, c22
        fw[t, 3], fw[t, 4], fw[t, 5] = bs0, bs1, bs2


@njit(cache=True, nogil=True)
def _m_step_k3(n, alpha_max, fw, bw, out):  # pragma: no cover - compiled
    """:func:`m_step`'s sums over the per-day terms of :func:`_smooth_k3`, in its order."""
    for i in range(3):
        s11 = 0.0
        s00 = 0.0
        s10 = 0.0
        for t in range(1, n):
            s11 += bw[t, 5 + i]
            s00 += bw[t - 1, 5 + i]
            s10 += fw[t, i] + fw[t, 3 + i] * fw[t - 1, 3 + i]
        _state_m_step(i, s11, s00, s10, n, alpha_max, out)
    ve = 0.0
    for t in range(n):
        ve += bw[t, 8]
    out[1] = ve / n


@njit(cache=True, nogil=True)
def em_map_k2(y, X, b_start, P_start, params, alpha_max, fw, bw, out):  # pragma: no cover - compiled
    """:func:`em_map_arrays` for k = 2 (the pairs) on scalars, as :func:`em_map_k3` for k = 3: the
    filter (:func:`kalcoint._kernels.filtering.k2_step`, its stored quantities in ``fw`` and ``bw``),
    the smoother backwards keeping only what the M-step sums, then the M-step's sums forwards.
    Every quantity is computed by the arithmetic of :func:`filter_loop`, :func:`smoother_loop` and
    :func:`m_step`, in the same order (``N_t`` and ``P_{t|n}`` as four entries, not assumed
    symmetric), less their products by ``a_1 = 1`` and the 0.0 their sums start from: neither
    changes a number but for the sign of a zero, so the same numbers to the last bit (a zero may
    come out as -0.0 where the array passes give 0.0, which compares equal).

    fw : (n, 8) work: ``b_{t|t-1}`` (2), ``P_{t|t-1}`` (00, 01, 11); the smoother puts the lag-one
        diagonal in columns 0-1 and ``b_{t|n}`` in columns 2-3 once their day is passed.
    bw : (n, 8) work: ``P_x = P_{t|t-1} x_t'`` (2), ``e_t``, ``Q_t``, then per day the smoother's
        ``P_{t|n,ii} + b_{t|n,i}^2`` (2) and ``(y_t - x_t b_{t|n})^2 + x_t P_{t|n} x_t'``.
    """
    n = X.shape[0]
    a0 = params[0]
    c = k2_constants(a0, params[2], params[3], params[1])
    prior = k2_prior(b_start, P_start)
    acc = (0.0, 0.0, 1.0)
    for t in range(n):
        b0, b1, p00, p01, p11 = prior
        fw[t, 0], fw[t, 1], fw[t, 2], fw[t, 3], fw[t, 4] = b0, b1, p00, p01, p11
        prior, e, q, r, g, px0, px1, f0, f1, f00, f01 = k2_step(t, y, X, c, prior)
        if not q > 0.0:
            return np.nan
        bw[t, 0], bw[t, 1], bw[t, 2], bw[t, 3] = px0, px1, e, q
        acc = accumulate_loglik(t, q, e * g, acc)
    ll = loglik_from_sums(acc, n)
    if not math.isfinite(ll):
        return ll
    _smooth_k2(y, X, a0, fw, bw)
    _m_step_k2(n, alpha_max, fw, bw, out)
    return ll


@njit(cache=True, nogil=True)
def _smooth_k2(y, X, a0, fw, bw):  # pragma: no cover - compiled
    """The backward pass of :func:`em_map_k2`: :func:`smoother_loop`'s arithmetic for k = 2 with
    ``A = diag(a0, 1)`` and the per-day terms of :func:`m_step` (see :func:`em_map_k2` for where
    they go)."""
    n = X.shape[0]
    r0, r1 = 0.0, 0.0
    n00, n01, n10, n11 = 0.0, 0.0, 0.0, 0.0
    q00, q01, q11 = 0.0, 0.0, 0.0  # P_{t+1|t} of the day after
    for t in range(n - 1, -1, -1):
        c00, c01, c11 = fw[t, 2], fw[t, 3], fw[t, 4]
        px0, px1, e, q = bw[t, 0], bw[t, 1], bw[t, 2], bw[t, 3]
        x0, x1 = X[t, 0], X[t, 1]
        # L_t = A - A P_t x' x / Q
        l00 = -a0 * px0 * x0 / q + a0
        l01 = -a0 * px0 * x1 / q
        l10 = -px1 * x0 / q
        l11 = -px1 * x1 / q + 1.0
        if t < n - 1:
            # PL = P_t L_t';  M = I - N_t P_{t+1}
            pl00 = c00 * l00 + c01 * l01
            pl01 = c00 * l10 + c01 * l11
            pl10 = c01 * l00 + c11 * l01
            pl11 = c01 * l10 + c11 * l11
            m00 = -(n00 * q00 + n01 * q01) + 1.0
            m01 = -(n00 * q01 + n01 * q11)
            m10 = -(n10 * q00 + n11 * q01)
            m11 = -(n10 * q01 + n11 * q11) + 1.0
            # diagonal of Cov(b_{t+1}, b_t | all) = (P_t L_t' M)'
            fw[t + 1, 0] = pl00 * m00 + pl01 * m10
            fw[t + 1, 1] = pl10 * m01 + pl11 * m11
        # r_{t-1} = x' e / Q + L' r_t
        s0 = (x0 * e / q + l00 * r0) + l10 * r1
        s1 = (x1 * e / q + l01 * r0) + l11 * r1
        r0, r1 = s0, s1
        # N_{t-1} = x' x / Q + L' (N_t L)
        k00 = n00 * l00 + n01 * l10
        k01 = n00 * l01 + n01 * l11
        k10 = n10 * l00 + n11 * l10
        k11 = n10 * l01 + n11 * l11
        n00 = (x0 * x0 / q + l00 * k00) + l10 * k10
        n01 = (x0 * x1 / q + l00 * k01) + l10 * k11
        n10 = (x1 * x0 / q + l01 * k00) + l11 * k10
        n11 = (x1 * x1 / q + l01 * k01) + l11 * k11
        # b_{t|n} = b_{t|t-1} + P_t r_{t-1};  P_{t|n} = P_t - P_t (N_{t-1} P_t)
        bs0 = (fw[t, 0] + c00 * r0) + c01 * r1
        bs1 = (fw[t, 1] + c01 * r0) + c11 * r1
        h00 = n00 * c00 + n01 * c01
        h01 = n00 * c01 + n01 * c11
        h10 = n10 * c00 + n11 * c01
        h11 = n10 * c01 + n11 * c11
        s00 = (c00 - c00 * h00) - c01 * h10
        s01 = (c01 - c00 * h01) - c01 * h11
        s10 = (c01 - c01 * h00) - c11 * h10
        s11 = (c11 - c01 * h01) - c11 * h11
        # the M-step's terms of the day (m_step's arithmetic)
        bw[t, 4] = s00 + bs0 * bs0
        bw[t, 5] = s11 + bs1 * bs1
        res = (y[t] - x0 * bs0) - x1 * bs1
        xpx = x0 * s00 * x0
        xpx += x0 * s01 * x1
        xpx += x1 * s10 * x0
        xpx += x1 * s11 * x1
        bw[t, 6] = res * res + xpx
        q00, q01, q11 = c00, c01, c11
        fw[t, 2], fw[t, 3] = bs0, bs1


@njit(cache=True, nogil=True)
def _m_step_k2(n, alpha_max, fw, bw, out):  # pragma: no cover - compiled
    """:func:`m_step`'s sums over the per-day terms of :func:`_smooth_k2`, in its order."""
    for i in range(2):
        s11 = 0.0
        s00 = 0.0
        s10 = 0.0
        for t in range(1, n):
            s11 += bw[t, 4 + i]
            s00 += bw[t - 1, 4 + i]
            s10 += fw[t, i] + fw[t, 2 + i] * fw[t - 1, 2 + i]
        _state_m_step(i, s11, s00, s10, n, alpha_max, out)
    ve = 0.0
    for t in range(n):
        ve += bw[t, 6]
    out[1] = ve / n


@njit(cache=True, nogil=True)
def _em_step(y, X, b0, P0, params, alpha_max, ws_b, ws_P, new):  # pragma: no cover - compiled
    """:func:`em_map` from ``params`` into ``new``; returns the log-likelihood at ``params``, -inf on
    breakdown (``new`` then all NaN)."""
    ll = em_map(y, X, b0, P0, params, alpha_max, ws_b, ws_P, new)
    if math.isfinite(ll):
        return ll
    new[:] = np.nan
    return -math.inf


@njit(cache=True, nogil=True, inline="always")
def _clip(x, bound):  # pragma: no cover - compiled
    """``min(max(x, -bound), bound)`` as Python evaluates it (NaN stays NaN)."""
    if -bound > x:
        x = -bound
    if bound < x:
        x = bound
    return x


@njit(cache=True, nogil=True)
def squarem_unconstrained(params, alpha_max, u):  # pragma: no cover - compiled
    """``u = (atanh alpha11, log variances)`` of ``params`` (alpha11 clipped to +-``alpha_max``,
    variances floored at 1e-300; NaN stays NaN)."""
    u[0] = math.atanh(_clip(params[0], alpha_max))
    for i in range(1, params.size):
        x = params[i]
        u[i] = math.log(x if not x < 1e-300 else 1e-300)


@njit(cache=True, nogil=True)
def squarem_constrained(u, alpha_max, params):  # pragma: no cover - compiled
    """The inverse of :func:`squarem_unconstrained`: ``params = (tanh u_0 clipped to +-alpha_max,
    exp u_i with u_i capped at 700)``."""
    params[0] = _clip(math.tanh(u[0]), alpha_max)
    for i in range(1, u.size):
        x = u[i]
        params[i] = math.exp(x if not x > 700.0 else 700.0)


@njit(cache=True, nogil=True)
def squarem_norm(x):  # pragma: no cover - compiled
    """Euclidean norm, the squares summed in index order."""
    s = 0.0
    for i in range(x.size):
        s += x[i] * x[i]
    return math.sqrt(s)


@njit(cache=True, nogil=True)
def squarem_step_length(u0, u1, u2, r, v):  # pragma: no cover - compiled
    """SQUAREM's scheme S3 from three points in the unconstrained coordinates: writes ``r = u1 - u0``
    and ``v = u2 - 2 u1 + u0`` and returns ``alpha = min(-|r| / |v|, -1)`` (-1 when ``v = 0``)."""
    for i in range(u0.size):
        r[i] = u1[i] - u0[i]
        v[i] = u2[i] - 2.0 * u1[i] + u0[i]
    norm_v = squarem_norm(v)
    if not norm_v > 0.0:
        return -1.0
    alpha = -squarem_norm(r) / norm_v
    return -1.0 if -1.0 < alpha else alpha  # Python's min(alpha, -1.0), NaN included


@njit(cache=True, nogil=True)
def em_squarem(y, X, b0, P0, params, iterations, tol, alpha_max, ws_b, ws_P, hist, out):  # pragma: no cover
    """SQUAREM-accelerated EM with the monotone safeguard (``kalcoint.tuning.em._EM.squarem``'s loop,
    the same arithmetic): at most ``iterations`` EM steps plus one final evaluation.

    params : (k + 2,) start (alpha11, obs_var, state_var_1..k), not modified.
    hist : (iterations + 1, 3) rows (alpha11, obs_var, loglik), one per cycle.
    out : (k + 2,) the last cycle's starting point (the result).
    Returns (rows written, EM maps run, status): 1 converged (relative rise <= tol), 0 budget spent,
    -1 breakdown (a non-finite log-likelihood at a cycle's start).
    """
    d = params.size
    p0, p1, p2 = params.copy(), np.empty(d), np.empty(d)
    trial, p_next = np.empty(d), np.empty(d)
    u0, u1, u2, r, v, w = np.empty(d), np.empty(d), np.empty(d), np.empty(d), np.empty(d), np.empty(d)
    budget = iterations + 1
    maps, rows = 0, 0
    ll_prev = -math.inf
    while True:
        ll0 = _em_step(y, X, b0, P0, p0, alpha_max, ws_b, ws_P, p1)
        maps += 1
        hist[rows, 0], hist[rows, 1], hist[rows, 2] = p0[0], p0[1], ll0
        rows += 1
        status = 2
        if not math.isfinite(ll0):
            status = -1
        elif rows > 1 and ll0 - ll_prev <= tol * abs(ll_prev):
            status = 1
        elif maps >= budget:
            status = 0
        if status != 2:
            out[:] = p0
            return rows, maps, status
        ll_prev = ll0
        if budget - maps < 3:  # no room for a cycle: a plain step
            p0[:] = p1
            continue
        ll1 = _em_step(y, X, b0, P0, p1, alpha_max, ws_b, ws_P, p2)
        maps += 1
        squarem_unconstrained(p0, alpha_max, u0)
        squarem_unconstrained(p1, alpha_max, u1)
        squarem_unconstrained(p2, alpha_max, u2)
        alpha = squarem_step_length(u0, u1, u2, r, v)
        while True:
            if budget - maps < 3:  # keep one step for the fallback and one for the final evaluation
                alpha = -1.0
            if alpha == -1.0:
                trial[:] = p2
            else:
                for i in range(d):
                    w[i] = u0[i] - 2.0 * alpha * r[i] + alpha * alpha * v[i]
                squarem_constrained(w, alpha_max, trial)
            ll_trial = _em_step(y, X, b0, P0, trial, alpha_max, ws_b, ws_P, p_next)
            maps += 1
            if alpha == -1.0 or ll_trial >= ll1:
                break
            alpha = (alpha - 1.0) / 2.0 if alpha < -2.0 else -1.0
        p0[:] = p_next

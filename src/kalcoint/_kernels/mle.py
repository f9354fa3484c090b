"""The log-likelihood and its analytic gradient (reverse mode) for maximum likelihood.

Compiled with numba (see :mod:`kalcoint._numba_cache`); imported by the modules of the
pipeline through :mod:`kalcoint._kernels`.

One pass (:func:`loglik_grad_into`) runs the filter forward, keeping per day only what the
backward pass reads (``work``, see :func:`work_columns`), then the adjoint backward. With
``l_t = -(log Q_t + e_t^2 / Q_t) / 2``, ``Px = P_{t|t-1} x_t'``, ``g = e_t / Q_t``, it carries
``B = dL/d b_{t+1|t}`` and ``S = C + C'``, where ``C = dL/d P_{t+1|t}`` (all k^2 entries taken
as independent; only ``C + C'`` is ever used, and it is symmetric), through each step in
reverse:

    alpha11 += B_1 b_{1,t|t} + a_1 P_{11,t|t} S_11 + sum_{j>1} a_j P_{1j,t|t} S_1j
    state_var_i += S_ii / 2;   T = (a a') o S
    Pxbar = g A B - T Px / Q + Qbar x'
    Qbar = -(1 - e g) / (2 Q) + (Px' T Px / 2 - e (A B) . Px) / Q^2;   obs_var += Qbar
    B <- A B - (-g + (A B) . Px / Q) x';   S <- T + Pxbar x + x' Pxbar'

The forward pass is :func:`kalcoint._kernels.filtering.filter_loop`'s arithmetic, in the same
order: the log-likelihood is the filter's to the last bit. For k = 3 (the screen's triplets)
the pass runs on scalars (:func:`_loglik_grad_k3`), the same arithmetic, about twice as fast,
written as inline day steps so that 2-3 parameter sets can run interleaved
(:func:`objective_grad_many`: three passes cost about 2.3 single ones, each to the last bit
the single pass's). For k = 2 (pairs, with the method's ``A = diag(alpha11, 1)``) it runs on
scalars too (:func:`_loglik_grad_k2`, interleaved in :func:`_loglik_grad_k2_many`): forward and
backward are :func:`_loglik_grad_any`'s arithmetic in its order, so the log-likelihood and the
gradient are the array pass's to the last bit (one pass about 1.3x, three interleaved about 2.7x
faster than the array pass).

:func:`minimise_mle` is the MLE's optimiser: L-BFGS-B (:mod:`kalcoint._kernels.lbfgsb`) on the
objective, with kalcoint's restarts, from up to three starts in lockstep, in one compiled call.
"""

from __future__ import annotations

import math

import numpy as np

from .._numba_cache import njit
from .filtering import (
    accumulate_loglik,
    k2_constants,
    k2_prior,
    k2_step,
    k3_constants,
    k3_prior,
    k3_step,
    loglik_from_sums,
)
from .lbfgsb import (
    LS_EVALUATE,
    LS_START,
    bfgs_matrix,
    cauchy_point,
    line_search,
    max_step,
    projected_gradient_norm,
    subspace_step,
)

MEMORY, MAX_LINE_SEARCH = 10, 20
"""L-BFGS-B's stored pairs and most evaluations of one line search (scipy's ``maxcor``, ``maxls``)."""
CONVERGED_F, CONVERGED_PG, ABNORMAL, MAX_ITERATIONS = 1, 2, 3, 4
MAX_EVALUATIONS, BROKEN_START, RESTART_STALLED = 5, 6, 7
"""How a run of :func:`minimise_mle` ended: relative reduction of f below ``ftol``, projected gradient
below ``gtol``, a line search that failed with fresh memory, ``maxiter``, ``maxfun`` (of one run), no
finite value at the start, a restart that cannot lower f after a run that ended without converging
(a minimum to rounding: converged)."""


def work_columns(k: int) -> int:
    """Columns of the ``work`` array of :func:`loglik_grad_into` for k states: per day
    ``e_t, 1/Q_t, b_{1,t|t}``, ``P_{t|t-1} x_t'`` (k) and the first row of ``P_{t|t}`` (k).

    Examples
    --------
    >>> work_columns(3)
    9
    """
    return 2 * k + 3


@njit(cache=True, nogil=True)
def loglik_grad(y, X, a, vw, ve, b_start, P_start, grad):  # pragma: no cover - compiled
    """Log-likelihood of the filter of docs/method.md §3 (prior ``(b_start, P_start)`` at t = 0, fixed;
    ``A = diag(a)``, ``Vw = diag(vw)``) and, written to ``grad`` (k + 2,), its derivatives with
    respect to ``(alpha11 = a[0], obs_var = ve, state_var_1..k = vw)``. Returns NaN if some Q_t <= 0.

    :func:`loglik_grad_into` with a ``work`` array of its own (see the module doc)."""
    n, k = X.shape
    work = np.empty((n, 2 * k + 3))
    return loglik_grad_into(y, X, a, vw, ve, b_start, P_start, work, grad)


@njit(cache=True, nogil=True)
def objective_grad(theta, alpha11_free, fixed_alpha11, y, X, a, b_start, P_start, work, grad, out):  # pragma: no cover
    """The MLE objective ``-loglik / n`` at ``theta = (atanh alpha11, log obs_var, log state_var_1..k)``
    and, into ``out`` (k + 2,), its gradient in ``theta`` (chain rule on :func:`loglik_grad_into`'s
    ``grad``: ``d alpha11 / d theta_0 = 1 - alpha11^2``, ``d v / d log v = v``); ``alpha11`` is
    ``fixed_alpha11`` (and its derivative 0) unless ``alpha11_free``. Returns inf where the filter
    breaks down (``out`` then NaN). ``a[0]`` is set to alpha11."""
    n, k = X.shape
    vw = np.empty(k)
    alpha11, ve = _natural_into(theta, alpha11_free, fixed_alpha11, a, vw)
    ll = loglik_grad_into(y, X, a, vw, ve, b_start, P_start, work, grad)
    return _chain_rule(ll, n, alpha11, alpha11_free, ve, vw, grad, out)


@njit(cache=True, nogil=True)
def loglik_grad_into(y, X, a, vw, ve, b_start, P_start, work, grad):  # pragma: no cover - compiled
    """:func:`loglik_grad` writing its per-day figures into ``work`` (n, 2k + 3), allocated once by
    the caller (:func:`work_columns`)."""
    k = X.shape[1]
    if k == 3:
        return _loglik_grad_k3(y, X, a, vw, ve, b_start, P_start, work, grad)
    if k == 2 and a[1] == 1.0:
        return _loglik_grad_k2(y, X, a, vw, ve, b_start, P_start, work, grad)
    return _loglik_grad_any(y, X, a, vw, ve, b_start, P_start, work, grad)


@njit(cache=True, nogil=True)
def _forward(y, X, a, vw, ve, b_start, P_start, work):  # pragma: no cover - compiled
    """The filter forward (``filter_loop``'s arithmetic) keeping ``work``; the log-likelihood or NaN."""
    n, k = X.shape
    bp = b_start.copy()
    Pp = np.empty((k, k))
    aa = np.empty((k, k))
    for i in range(k):
        for j in range(k):
            Pp[i, j] = 0.5 * (P_start[i, j] + P_start[j, i])
            aa[i, j] = a[i] * a[j]
    Px = np.empty(k)
    acc = (0.0, 0.0, 1.0)
    for t in range(n):
        fit = 0.0
        for i in range(k):
            fit += X[t, i] * bp[i]
        e = y[t] - fit
        q = ve
        for i in range(k):
            s = 0.0
            for j in range(k):
                s += Pp[i, j] * X[t, j]
            Px[i] = s
            work[t, 3 + i] = s
            q += X[t, i] * s
        if not q > 0.0:
            return np.nan
        r = 1.0 / q
        g = e * r
        work[t, 0] = e
        work[t, 1] = r
        work[t, 2] = bp[0] + Px[0] * g
        for j in range(k):
            work[t, 3 + k + j] = Pp[0, j] - (Px[0] * Px[j]) * r
        for i in range(k):
            bp[i] = a[i] * (bp[i] + Px[i] * g)
            for j in range(i, k):
                v = aa[i, j] * (Pp[i, j] - (Px[i] * Px[j]) * r)
                Pp[i, j] = v
                Pp[j, i] = v
            Pp[i, i] += vw[i]
        acc = accumulate_loglik(t, q, e * g, acc)
    return loglik_from_sums(acc, n)


@njit(cache=True, nogil=True)
def _loglik_grad_any(y, X, a, vw, ve, b_start, P_start, work, grad):  # pragma: no cover - compiled
    """:func:`loglik_grad_into` for any k (arrays of k entries; see the module doc)."""
    loglik = _forward(y, X, a, vw, ve, b_start, P_start, work)
    if not math.isfinite(loglik):
        return np.nan
    n, k = X.shape
    aa = np.empty((k, k))
    for i in range(k):
        for j in range(k):
            aa[i, j] = a[i] * a[j]
    B = np.zeros(k)
    S = np.zeros((k, k))
    T = np.empty((k, k))
    AB = np.empty(k)
    pxb = np.empty(k)
    d_vw = np.zeros(k)
    d_alpha = 0.0
    d_ve = 0.0
    for t in range(n - 1, -1, -1):
        e = work[t, 0]
        r = work[t, 1]
        g = e * r
        d_alpha += B[0] * work[t, 2] + a[0] * work[t, 3 + k] * S[0, 0]
        for j in range(1, k):
            d_alpha += a[j] * work[t, 3 + k + j] * S[0, j]
        gbar = 0.0
        for i in range(k):
            d_vw[i] += S[i, i]
            AB[i] = a[i] * B[i]
            gbar += AB[i] * work[t, 3 + i]
            for j in range(k):
                T[i, j] = aa[i, j] * S[i, j]
        quad_f = 0.0
        for i in range(k):
            s = 0.0
            for j in range(k):
                s += T[i, j] * work[t, 3 + j]
            pxb[i] = s
            quad_f += work[t, 3 + i] * s
        ebar = -g + gbar * r
        qbar = -0.5 * r * (1.0 - e * g) - (-0.5 * quad_f + gbar * e) * r * r
        d_ve += qbar
        for i in range(k):
            pxb[i] = g * AB[i] - r * pxb[i] + qbar * X[t, i]
            B[i] = AB[i] - ebar * X[t, i]
        for i in range(k):
            for j in range(i, k):
                v = T[i, j] + pxb[i] * X[t, j] + pxb[j] * X[t, i]
                S[i, j] = v
                S[j, i] = v
    grad[0] = d_alpha
    grad[1] = d_ve
    for i in range(k):
        grad[2 + i] = 0.5 * d_vw[i]
    return loglik


@njit(cache=True, nogil=True, inline="always")
def _k3_constants(a, vw, ve):  # pragma: no cover - compiled
    """:func:`kalcoint._kernels.filtering.k3_constants` of the arrays ``a`` and ``vw``."""
    return k3_constants(a[0], a[1], a[2], vw[0], vw[1], vw[2], ve)


@njit(cache=True, nogil=True, inline="always")
def _k3_start(b_start, P_start):  # pragma: no cover - compiled
    """The forward state of the k = 3 pass at t = 0: ``(prior, log-likelihood sums, ok)``
    (:func:`kalcoint._kernels.filtering.k3_prior`, :func:`kalcoint._kernels.filtering.accumulate_loglik`)."""
    return k3_prior(b_start, P_start), (0.0, 0.0, 1.0), True


@njit(cache=True, nogil=True, inline="always")
def _k3_forward_step(t, y, X, c, state, work):  # pragma: no cover - compiled
    """Day ``t`` of the k = 3 forward pass (:func:`kalcoint._kernels.filtering.k3_step`): ``state``
    (:func:`_k3_start`) to the next one, what the backward pass reads into ``work[t]``; ``ok`` turns
    False (and the state stays) where ``Q_t <= 0``."""
    prior, acc, ok = state
    nxt, e, q, r, g, px0, px1, px2, f0, f1, f2, f00, f01, f02 = k3_step(t, y, X, c, prior)
    if not q > 0.0:
        return prior, acc, False
    work[t, 0] = e
    work[t, 1] = r
    work[t, 2] = f0
    work[t, 3] = px0
    work[t, 4] = px1
    work[t, 5] = px2
    work[t, 6] = f00
    work[t, 7] = f01
    work[t, 8] = f02
    return nxt, accumulate_loglik(t, q, e * g, acc), ok


@njit(cache=True, nogil=True, inline="always")
def _forward_loglik(state, n):  # pragma: no cover - compiled
    """The log-likelihood at the end of a k = 2 or 3 forward pass (NaN if it broke down)."""
    if not state[2]:
        return np.nan
    return loglik_from_sums(state[1], n)


@njit(cache=True, nogil=True, inline="always")
def _k3_backward_step(t, X, c, s, work):  # pragma: no cover - compiled
    """Day ``t`` of the k = 3 adjoint pass: ``s = (B_0..2, S_00,01,02,11,12,22, d_alpha, d_ve, d_vw_0..2)``.

    The products that do not depend on (B, S) come first: the loop-carried chain
    S -> Qbar -> Pxbar -> S is then a few multiply-adds (:func:`_loglik_grad_any`'s arithmetic,
    regrouped)."""
    ve, a0, a1, a2, aa00, aa01, aa02, aa11, aa12, aa22, v0, v1, v2 = c
    B0, B1, B2, s00, s01, s02, s11, s12, s22, d_alpha, d_ve, d0, d1, d2 = s
    e, r = work[t, 0], work[t, 1]
    px0, px1, px2 = work[t, 3], work[t, 4], work[t, 5]
    x0, x1, x2 = X[t, 0], X[t, 1], X[t, 2]
    g = e * r
    c00, c01, c02 = aa00 * px0, aa01 * px1, aa02 * px2  # row i: aa_ij px_j
    c10, c11, c12 = aa01 * px0, aa11 * px1, aa12 * px2
    c20, c21, c22 = aa02 * px0, aa12 * px1, aa22 * px2
    q00, q11, q22 = c00 * px0, c11 * px1, c22 * px2  # aa_ij px_i px_j (twice off the diagonal)
    q01, q02, q12 = 2.0 * c01 * px0, 2.0 * c02 * px0, 2.0 * c12 * px1
    r2 = r * r
    q_const = -0.5 * r * (1.0 - e * g)
    d_alpha += B0 * work[t, 2] + a0 * work[t, 6] * s00 + a1 * work[t, 7] * s01 + a2 * work[t, 8] * s02
    d0 += s00
    d1 += s11
    d2 += s22
    ab0, ab1, ab2 = a0 * B0, a1 * B1, a2 * B2
    gbar = ab0 * px0 + ab1 * px1 + ab2 * px2
    sv0 = s00 * c00 + (s01 * c01 + s02 * c02)
    sv1 = s01 * c10 + (s11 * c11 + s12 * c12)
    sv2 = s02 * c20 + (s12 * c21 + s22 * c22)
    quad_f = (s00 * q00 + s11 * q11) + (s22 * q22 + (s01 * q01 + (s02 * q02 + s12 * q12)))
    ebar = -g + gbar * r
    qbar = (q_const - gbar * e * r2) + 0.5 * r2 * quad_f
    d_ve += qbar
    pb0 = (g * ab0 + qbar * x0) - r * sv0
    pb1 = (g * ab1 + qbar * x1) - r * sv1
    pb2 = (g * ab2 + qbar * x2) - r * sv2
    B0 = ab0 - ebar * x0
    B1 = ab1 - ebar * x1
    B2 = ab2 - ebar * x2
    s00 = aa00 * s00 + 2.0 * (pb0 * x0)
    s01 = aa01 * s01 + (pb0 * x1 + pb1 * x0)
    s02 = aa02 * s02 + (pb0 * x2 + pb2 * x0)
    s11 = aa11 * s11 + 2.0 * (pb1 * x1)
    s12 = aa12 * s12 + (pb1 * x2 + pb2 * x1)
    s22 = aa22 * s22 + 2.0 * (pb2 * x2)
    return (B0, B1, B2, s00, s01, s02, s11, s12, s22, d_alpha, d_ve, d0, d1, d2)


@njit(cache=True, nogil=True, inline="always")
def _k3_store_grad(s, grad):  # pragma: no cover - compiled
    grad[0] = s[9]
    grad[1] = s[10]
    grad[2] = 0.5 * s[11]
    grad[3] = 0.5 * s[12]
    grad[4] = 0.5 * s[13]


_ADJOINT_ZERO = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


@njit(cache=True, nogil=True)
def _loglik_grad_k3(y, X, a, vw, ve, b_start, P_start, work, grad):  # pragma: no cover - compiled
    """:func:`loglik_grad_into` for k = 3 on scalars: the state and its covariance's six entries
    stay in registers (the forward arithmetic of :func:`_loglik_grad_any` in the same order; the
    backward regrouped for a shorter day-to-day chain)."""
    n = X.shape[0]
    c = _k3_constants(a, vw, ve)
    s = _k3_start(b_start, P_start)
    for t in range(n):
        s = _k3_forward_step(t, y, X, c, s, work)
        if not s[2]:
            return np.nan
    loglik = _forward_loglik(s, n)
    u = _ADJOINT_ZERO
    for t in range(n - 1, -1, -1):
        u = _k3_backward_step(t, X, c, u, work)
    _k3_store_grad(u, grad)
    return loglik


@njit(cache=True, nogil=True)
def _loglik_grad_k3_many(y, X, c0, c1, c2, m, b_start, P_start, works, lls, grads):  # pragma: no cover
    """:func:`_loglik_grad_k3` for ``m`` (2 or 3) parameter sets ``c0..c2`` (:func:`_k3_constants`) at
    once, interleaved day by day: each pass is a chain of dependent operations, and the processor
    overlaps the chains of independent passes. Every pass's arithmetic is :func:`_loglik_grad_k3`'s, so
    each result is the single pass's to the last bit. Log-likelihoods into ``lls`` (NaN: broke down),
    gradients into ``grads``."""
    n = X.shape[0]
    s0 = _k3_start(b_start, P_start)
    s1 = _k3_start(b_start, P_start)
    s2 = _k3_start(b_start, P_start)
    w0, w1, w2 = works[0], works[1], works[2]
    if m == 3:
        for t in range(n):
            if s0[2]:
                s0 = _k3_forward_step(t, y, X, c0, s0, w0)
            if s1[2]:
                s1 = _k3_forward_step(t, y, X, c1, s1, w1)
            if s2[2]:
                s2 = _k3_forward_step(t, y, X, c2, s2, w2)
    else:
        for t in range(n):
            if s0[2]:
                s0 = _k3_forward_step(t, y, X, c0, s0, w0)
            if s1[2]:
                s1 = _k3_forward_step(t, y, X, c1, s1, w1)
    lls[0] = _forward_loglik(s0, n)
    lls[1] = _forward_loglik(s1, n)
    lls[2] = _forward_loglik(s2, n) if m == 3 else np.nan
    # a pass that broke down runs backward over unwritten days (finite or not): its result is dropped
    u0 = u1 = u2 = _ADJOINT_ZERO
    if m == 3:
        for t in range(n - 1, -1, -1):
            u0 = _k3_backward_step(t, X, c0, u0, w0)
            u1 = _k3_backward_step(t, X, c1, u1, w1)
            u2 = _k3_backward_step(t, X, c2, u2, w2)
    else:
        for t in range(n - 1, -1, -1):
            u0 = _k3_backward_step(t, X, c0, u0, w0)
            u1 = _k3_backward_step(t, X, c1, u1, w1)
    _k3_store_grad(u0, grads[0])
    _k3_store_grad(u1, grads[1])
    _k3_store_grad(u2, grads[2])


@njit(cache=True, nogil=True, inline="always")
def _k2_constants(a, vw, ve):  # pragma: no cover - compiled
    """:func:`kalcoint._kernels.filtering.k2_constants` of the arrays ``a`` (``a[1] = 1``) and ``vw``."""
    return k2_constants(a[0], vw[0], vw[1], ve)


@njit(cache=True, nogil=True, inline="always")
def _k2_start(b_start, P_start):  # pragma: no cover - compiled
    """The forward state of the k = 2 pass at t = 0: ``(prior, log-likelihood sums, ok)``
    (:func:`kalcoint._kernels.filtering.k2_prior`, :func:`kalcoint._kernels.filtering.accumulate_loglik`)."""
    return k2_prior(b_start, P_start), (0.0, 0.0, 1.0), True


@njit(cache=True, nogil=True, inline="always")
def _k2_forward_step(t, y, X, c, state, work):  # pragma: no cover - compiled
    """Day ``t`` of the k = 2 forward pass (:func:`kalcoint._kernels.filtering.k2_step`): ``state``
    (:func:`_k2_start`) to the next one, what the backward pass reads into ``work[t]``; ``ok`` turns
    False (and the state stays) where ``Q_t <= 0``."""
    prior, acc, ok = state
    nxt, e, q, r, g, px0, px1, f0, f1, f00, f01 = k2_step(t, y, X, c, prior)
    if not q > 0.0:
        return prior, acc, False
    work[t, 0] = e
    work[t, 1] = r
    work[t, 2] = f0
    work[t, 3] = px0
    work[t, 4] = px1
    work[t, 5] = f00
    work[t, 6] = f01
    return nxt, accumulate_loglik(t, q, e * g, acc), ok


@njit(cache=True, nogil=True, inline="always")
def _k2_backward_step(t, X, c, s, work):  # pragma: no cover - compiled
    """Day ``t`` of the k = 2 adjoint pass: ``s = (B_0..1, S_00,01,11, d_alpha, d_ve, d_vw_0..1)``.

    :func:`_loglik_grad_any`'s arithmetic for k = 2 in its order (``T = (a a') o S``; ``Pxbar`` as
    ``pb``), less the products by ``a_1 = 1`` and the 0.0 its sums start from: the same numbers to the
    last bit (as :func:`kalcoint._kernels.filtering.k2_step`)."""
    ve, a0, aa00, v0, v1 = c
    B0, B1, s00, s01, s11, d_alpha, d_ve, d0, d1 = s
    e, r = work[t, 0], work[t, 1]
    px0, px1 = work[t, 3], work[t, 4]
    x0, x1 = X[t, 0], X[t, 1]
    g = e * r
    d_alpha += B0 * work[t, 2] + a0 * work[t, 5] * s00
    d_alpha += work[t, 6] * s01
    d0 += s00
    d1 += s11
    ab0 = a0 * B0
    gbar = ab0 * px0 + B1 * px1
    t00, t01 = aa00 * s00, a0 * s01
    tp0 = t00 * px0 + t01 * px1
    tp1 = t01 * px0 + s11 * px1
    quad_f = px0 * tp0 + px1 * tp1
    ebar = -g + gbar * r
    qbar = -0.5 * r * (1.0 - e * g) - (-0.5 * quad_f + gbar * e) * r * r
    d_ve += qbar
    pb0 = g * ab0 - r * tp0 + qbar * x0
    pb1 = g * B1 - r * tp1 + qbar * x1
    B0 = ab0 - ebar * x0
    B1 = B1 - ebar * x1
    s00 = t00 + pb0 * x0 + pb0 * x0
    s01 = t01 + pb0 * x1 + pb1 * x0
    s11 = s11 + pb1 * x1 + pb1 * x1
    return (B0, B1, s00, s01, s11, d_alpha, d_ve, d0, d1)


@njit(cache=True, nogil=True, inline="always")
def _k2_store_grad(s, grad):  # pragma: no cover - compiled
    grad[0] = s[5]
    grad[1] = s[6]
    grad[2] = 0.5 * s[7]
    grad[3] = 0.5 * s[8]


_ADJOINT_ZERO_K2 = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


@njit(cache=True, nogil=True)
def _loglik_grad_k2(y, X, a, vw, ve, b_start, P_start, work, grad):  # pragma: no cover - compiled
    """:func:`loglik_grad_into` for k = 2 (pairs) with ``a[1] = 1`` on scalars: the state and its
    covariance's three entries stay in registers; forward and backward are :func:`_loglik_grad_any`'s
    arithmetic in its order (the log-likelihood and the gradient to the last bit)."""
    n = X.shape[0]
    c = _k2_constants(a, vw, ve)
    s = _k2_start(b_start, P_start)
    for t in range(n):
        s = _k2_forward_step(t, y, X, c, s, work)
        if not s[2]:
            return np.nan
    loglik = _forward_loglik(s, n)
    u = _ADJOINT_ZERO_K2
    for t in range(n - 1, -1, -1):
        u = _k2_backward_step(t, X, c, u, work)
    _k2_store_grad(u, grad)
    return loglik


@njit(cache=True, nogil=True)
def _loglik_grad_k2_many(y, X, c0, c1, c2, m, b_start, P_start, works, lls, grads):  # pragma: no cover
    """:func:`_loglik_grad_k2` for ``m`` (2 or 3) parameter sets ``c0..c2`` (:func:`_k2_constants`) at
    once, interleaved day by day (as :func:`_loglik_grad_k3_many`): each result is the single pass's to
    the last bit. Log-likelihoods into ``lls`` (NaN: broke down), gradients into ``grads``."""
    n = X.shape[0]
    s0 = _k2_start(b_start, P_start)
    s1 = _k2_start(b_start, P_start)
    s2 = _k2_start(b_start, P_start)
    w0, w1, w2 = works[0], works[1], works[2]
    if m == 3:
        for t in range(n):
            if s0[2]:
                s0 = _k2_forward_step(t, y, X, c0, s0, w0)
            if s1[2]:
                s1 = _k2_forward_step(t, y, X, c1, s1, w1)
            if s2[2]:
                s2 = _k2_forward_step(t, y, X, c2, s2, w2)
    else:
        for t in range(n):
            if s0[2]:
                s0 = _k2_forward_step(t, y, X, c0, s0, w0)
            if s1[2]:
                s1 = _k2_forward_step(t, y, X, c1, s1, w1)
    lls[0] = _forward_loglik(s0, n)
    lls[1] = _forward_loglik(s1, n)
    lls[2] = _forward_loglik(s2, n) if m == 3 else np.nan
    # a pass that broke down runs backward over unwritten days (finite or not): its result is dropped
    u0 = u1 = u2 = _ADJOINT_ZERO_K2
    if m == 3:
        for t in range(n - 1, -1, -1):
            u0 = _k2_backward_step(t, X, c0, u0, w0)
            u1 = _k2_backward_step(t, X, c1, u1, w1)
            u2 = _k2_backward_step(t, X, c2, u2, w2)
    else:
        for t in range(n - 1, -1, -1):
            u0 = _k2_backward_step(t, X, c0, u0, w0)
            u1 = _k2_backward_step(t, X, c1, u1, w1)
    _k2_store_grad(u0, grads[0])
    _k2_store_grad(u1, grads[1])
    _k2_store_grad(u2, grads[2])


@njit(cache=True, nogil=True, inline="always")
def _natural_into(theta, alpha11_free, fixed_alpha11, a, vw):  # pragma: no cover - compiled
    """``a[0] = alpha11``, ``vw = exp(theta[2:])``; returns ``(alpha11, ve)`` (the optimiser's vector
    ``theta = (atanh alpha11, log obs_var, log state_var_1..k)`` in natural units)."""
    alpha11 = math.tanh(theta[0]) if alpha11_free else fixed_alpha11
    a[0] = alpha11
    for i in range(vw.size):
        vw[i] = math.exp(theta[2 + i])
    return alpha11, math.exp(theta[1])


@njit(cache=True, nogil=True, inline="always")
def _chain_rule(ll, n, alpha11, alpha11_free, ve, vw, grad, out):  # pragma: no cover - compiled
    """The objective ``-ll / n`` and, into ``out``, its gradient in ``theta`` from ``grad`` (natural units)."""
    k = vw.size
    if not math.isfinite(ll):
        for i in range(k + 2):
            out[i] = np.nan
        return np.inf
    out[0] = -grad[0] * (1.0 - alpha11 * alpha11 if alpha11_free else 0.0) / n
    out[1] = -grad[1] * ve / n
    for i in range(k):
        out[2 + i] = -grad[2 + i] * vw[i] / n
    return -ll / n


@njit(cache=True, nogil=True)
def objective_grad_many(
    thetas, m, alpha11_free, fixed_alpha11, y, X, a, b_start, P_start, works, values, out
):  # pragma: no cover
    """:func:`objective_grad` at the first ``m`` (1 to 3) rows of ``thetas`` (3, k + 2): objectives into
    ``values`` (3,), gradients into the rows of ``out`` (3, k + 2); ``works`` (3, n, 2k + 3). For
    k = 2 or 3 and m >= 2 the passes run interleaved (:func:`_loglik_grad_k2_many`,
    :func:`_loglik_grad_k3_many`); every result equals :func:`objective_grad`'s at that row to the last
    bit. ``a[1:]`` is the rest of the transition."""
    n, k = X.shape
    if not (k == 3 or (k == 2 and a[1] == 1.0)) or m == 1:
        grad = np.empty(k + 2)
        for j in range(m):
            values[j] = objective_grad(
                thetas[j], alpha11_free, fixed_alpha11, y, X, a, b_start, P_start, works[j], grad, out[j]
            )
        return
    alphas = np.empty(3)
    ves = np.empty(3)
    vws = np.empty((3, k))
    for j in range(m):
        alphas[j], ves[j] = _natural_into(thetas[j], alpha11_free, fixed_alpha11, a, vws[j])
    if m == 2:  # the third set is not run
        alphas[2], ves[2], vws[2] = alphas[1], ves[1], vws[1]
    lls = np.empty(3)
    grads = np.empty((3, k + 2))
    if k == 3:
        _many_k3(y, X, a, alphas, ves, vws, m, b_start, P_start, works, lls, grads)
    else:
        _many_k2(y, X, a, alphas, ves, vws, m, b_start, P_start, works, lls, grads)
    for j in range(m):
        values[j] = _chain_rule(lls[j], n, alphas[j], alpha11_free, ves[j], vws[j], grads[j], out[j])


@njit(cache=True, nogil=True)
def _many_k3(y, X, a, alphas, ves, vws, m, b_start, P_start, works, lls, grads):  # pragma: no cover
    """:func:`_loglik_grad_k3_many` at the natural parameters ``alphas``, ``ves``, ``vws`` (3 sets)."""
    a[0] = alphas[0]
    c0 = _k3_constants(a, vws[0], ves[0])
    a[0] = alphas[1]
    c1 = _k3_constants(a, vws[1], ves[1])
    a[0] = alphas[2]
    c2 = _k3_constants(a, vws[2], ves[2])
    _loglik_grad_k3_many(y, X, c0, c1, c2, m, b_start, P_start, works, lls, grads)


@njit(cache=True, nogil=True)
def _many_k2(y, X, a, alphas, ves, vws, m, b_start, P_start, works, lls, grads):  # pragma: no cover
    """:func:`_loglik_grad_k2_many` at the natural parameters ``alphas``, ``ves``, ``vws`` (3 sets)."""
    a[0] = alphas[0]
    c0 = _k2_constants(a, vws[0], ves[0])
    a[0] = alphas[1]
    c1 = _k2_constants(a, vws[1], ves[1])
    a[0] = alphas[2]
    c2 = _k2_constants(a, vws[2], ves[2])
    _loglik_grad_k2_many(y, X, c0, c1, c2, m, b_start, P_start, works, lls, grads)


# the phases of one L-BFGS-B run in minimise_mle: waiting for the value at the start, at a trial step; ended
_AT_START, _IN_LINE_SEARCH, _ENDED = 0, 1, 2
# columns of a run's scalars: floats (f, theta, stp, stpmx) and integers
_F, _THETA, _STP, _STPMX = 0, 1, 2, 3
_PHASE, _COL, _HEAD, _NIT, _NFEV, _TRIES, _TASK, _STATUS, _OFFSET, _RUN = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9


@njit(cache=True, nogil=True)
def _next_iteration(x, g, lo, hi, S, Yp, fl, it, xbar, d, xt, st):  # pragma: no cover - compiled
    """Start an L-BFGS-B iteration from ``x``: the Cauchy point, the subspace step ``xbar``, the
    direction ``d = xbar - x`` and the line search's first trial ``xt``; a singular reduced matrix or
    a direction that does not descend refreshes the memory (with fresh memory: the run ends)."""
    n = x.size
    B = np.empty((n, n))
    xc = np.empty(n)
    free = np.empty(n, dtype=np.bool_)
    while True:
        bfgs_matrix(S, Yp, it[_COL], it[_HEAD], fl[_THETA], B)
        cauchy_point(x, g, lo, hi, B, xc, free)
        ok = True
        if it[_COL] > 0:
            ok = subspace_step(x, g, lo, hi, B, xc, free, xbar)
        else:
            for i in range(n):
                xbar[i] = xc[i]
        gd = 0.0
        for i in range(n):
            d[i] = xbar[i] - x[i]
            gd += g[i] * d[i]
        if ok and gd < 0.0:
            break
        if it[_COL] == 0:
            it[_STATUS] = ABNORMAL
            it[_PHASE] = _ENDED
            return
        it[_COL], it[_HEAD], fl[_THETA] = 0, 0, 1.0
    fl[_STPMX] = max_step(x, d, lo, hi, it[_NIT] == 0)
    task, stp = line_search(fl[_F], gd, 1.0, LS_START, fl[_STPMX], st)
    it[_TASK], fl[_STP], it[_TRIES] = task, stp, 0
    for i in range(n):
        xt[i] = xbar[i] if stp == 1.0 else x[i] + stp * d[i]
    it[_PHASE] = _IN_LINE_SEARCH


@njit(cache=True, nogil=True)
def _advance(
    f_new, g_new, lo, hi, ftol, gtol, maxiter, maxfun, x, g, S, Yp, fl, it, xbar, d, xt, st, path
):  # pragma: no cover
    """Give one L-BFGS-B run the value ``f_new`` and gradient ``g_new`` at its requested point ``xt``;
    the run moves on to its next request (a new ``xt``) or ends (``it[_STATUS]``)."""
    n = x.size
    it[_NFEV] += 1
    if it[_PHASE] == _AT_START:
        fl[_F] = f_new
        row = it[_OFFSET]
        for i in range(n):
            x[i] = xt[i]
            g[i] = g_new[i]
            path[row, i] = x[i]
        path[row, n] = f_new
        if not math.isfinite(f_new):
            it[_STATUS], it[_PHASE] = BROKEN_START, _ENDED
        elif projected_gradient_norm(x, g, lo, hi) <= gtol:
            it[_STATUS], it[_PHASE] = CONVERGED_PG, _ENDED
        else:
            _next_iteration(x, g, lo, hi, S, Yp, fl, it, xbar, d, xt, st)
        return
    it[_TRIES] += 1
    gdt = 0.0
    for i in range(n):
        gdt += g_new[i] * d[i]
    task, stp = line_search(f_new, gdt, fl[_STP], it[_TASK], fl[_STPMX], st)
    it[_TASK], fl[_STP] = task, stp
    if task == LS_EVALUATE and it[_TRIES] < MAX_LINE_SEARCH:
        for i in range(n):
            xt[i] = xbar[i] if stp == 1.0 else x[i] + stp * d[i]
        return
    if task == LS_EVALUATE or not math.isfinite(f_new):  # the line search failed: x stays
        if it[_COL] == 0:
            it[_STATUS], it[_PHASE] = ABNORMAL, _ENDED
            return
        it[_COL], it[_HEAD], fl[_THETA] = 0, 0, 1.0  # refresh the memory and try again from x
        _next_iteration(x, g, lo, hi, S, Yp, fl, it, xbar, d, xt, st)
        return
    # the new iterate; s and y go into d and xbar (both are rebuilt by the next iteration)
    sy = 0.0
    yy = 0.0
    g_old_s = 0.0
    for i in range(n):
        s_i = xt[i] - x[i]
        y_i = g_new[i] - g[i]
        sy += s_i * y_i
        yy += y_i * y_i
        g_old_s += g[i] * s_i
        d[i] = s_i
        xbar[i] = y_i
        x[i] = xt[i]
        g[i] = g_new[i]
    f_old = fl[_F]
    fl[_F] = f_new
    it[_NIT] += 1
    row = it[_OFFSET] + it[_NIT]
    for i in range(n):
        path[row, i] = x[i]
    path[row, n] = f_new
    if row >= maxiter:
        it[_STATUS], it[_PHASE] = MAX_ITERATIONS, _ENDED
    elif it[_NFEV] > maxfun:
        it[_STATUS], it[_PHASE] = MAX_EVALUATIONS, _ENDED
    elif projected_gradient_norm(x, g, lo, hi) <= gtol:
        it[_STATUS], it[_PHASE] = CONVERGED_PG, _ENDED
    elif f_old - f_new <= ftol * max(abs(f_old), abs(f_new), 1.0):
        it[_STATUS], it[_PHASE] = CONVERGED_F, _ENDED
    if it[_PHASE] == _ENDED:
        return
    if sy > 2.220446049250313e-16 * (-g_old_s):  # else the curvature is too small: no update
        m = S.shape[0]
        r = (it[_HEAD] + it[_COL]) % m
        if it[_COL] < m:
            it[_COL] += 1
        else:
            it[_HEAD] = (it[_HEAD] + 1) % m
        for i in range(n):
            S[r, i] = d[i]
            Yp[r, i] = xbar[i]
        fl[_THETA] = yy / sy
    _next_iteration(x, g, lo, hi, S, Yp, fl, it, xbar, d, xt, st)


@njit(cache=True, nogil=True)
def _run_ended(lo, hi, ftol, gtol, maxiter, restarts, x, g, fl, it, best_x, best_g, best):  # pragma: no cover
    """After a run ends: keep it if it is the first or lowered f, then restart from its end point (fresh
    memory, within the iterations left) while it stopped short of the gradient test, at most ``restarts``
    times. Returns True when the start is done; its result is then ``best_x``, ``best_g``, ``best``
    (``(f, status)``); ``it[_OFFSET]`` counts every iteration, the discarded restarts' too."""
    n = x.size
    f = fl[_F]
    it[_OFFSET] += it[_NIT]
    if it[_RUN] > 0 and not f < best[0] - ftol * max(abs(best[0]), 1.0):
        if best[1] != CONVERGED_F and best[1] != CONVERGED_PG:
            best[1] = RESTART_STALLED
        return True
    for i in range(n):
        best_x[i] = x[i]
        best_g[i] = g[i]
    best[0], best[1] = f, it[_STATUS]
    if it[_OFFSET] >= maxiter or not math.isfinite(f) or it[_RUN] >= restarts:
        return True
    return projected_gradient_norm(x, g, lo, hi) <= gtol


@njit(cache=True, nogil=True)
def _restart(x, S, Yp, fl, it, xt):  # pragma: no cover - compiled
    """A new run from ``x`` with fresh memory (it re-evaluates ``x``)."""
    S[:, :] = 0.0
    Yp[:, :] = 0.0
    fl[_THETA] = 1.0
    it[_COL] = it[_HEAD] = it[_NIT] = it[_NFEV] = 0
    it[_RUN] += 1
    it[_PHASE] = _AT_START
    for i in range(x.size):
        xt[i] = x[i]


@njit(cache=True, nogil=True)
def minimise_mle(
    thetas0,
    lo,
    hi,
    ftol,
    gtol,
    maxiter,
    restarts,
    alpha11_free,
    fixed_alpha11,
    y,
    X,
    a,
    b_start,
    P_start,
    works,
    paths,
    xs,
    fs,
    gs,
    counts,
):  # pragma: no cover - compiled
    """L-BFGS-B (:mod:`kalcoint._kernels.lbfgsb`) on :func:`objective_grad` from each of the ``R`` (1 to 3)
    rows of ``thetas0`` (R, k + 2), within the box ``[lo, hi]``, with scipy's stopping rules: relative
    reduction of the objective at most ``ftol``, projected gradient at most ``gtol``, ``maxiter``
    iterations, ``50 maxiter + 1000`` evaluations. A run that stops short of the gradient test restarts
    from its end point with fresh memory (at most ``restarts`` times, within ``maxiter`` iterations in
    all) and is kept while that lowers f (:func:`_run_ended`).

    The starts advance in lockstep: each round evaluates every start still going in one call of
    :func:`objective_grad_many` (interleaved passes); each start takes the steps it takes alone.

    ``works`` (3, n, 2k + 3): the passes' buffers. Out, per start: ``paths`` (R, maxiter + 1, k + 3)
    ``theta`` and the objective at the start and after each iteration, ``xs`` (R, k + 2) the optimum,
    ``fs`` (R,) its objective, ``gs`` (R, k + 2) its gradient, ``counts`` (R, 2) iterations (rows of the
    path after the first) and status (``CONVERGED_F``, ``CONVERGED_PG``, ``RESTART_STALLED``,
    ``ABNORMAL``, ``MAX_ITERATIONS``, ``MAX_EVALUATIONS``, ``BROKEN_START``)."""
    R, n = thetas0.shape
    maxfun = 50 * maxiter + 1000
    S = np.zeros((R, MEMORY, n))
    Yp = np.zeros((R, MEMORY, n))
    fl = np.zeros((R, 4))
    it = np.zeros((R, 10), dtype=np.int64)
    x = np.empty((R, n))
    g = np.empty((R, n))
    best = np.empty((R, 2))
    xbar = np.empty((R, n))
    d = np.empty((R, n))
    xt = np.empty((R, n))
    st = np.empty((R, 16))
    done = np.zeros(R, dtype=np.bool_)
    batch = np.empty((3, n))
    values = np.empty(3)
    grads = np.empty((3, n))
    order = np.empty(3, dtype=np.int64)
    for j in range(R):
        fl[j, _THETA] = 1.0
        for i in range(n):
            xt[j, i] = min(max(thetas0[j, i], lo[i]), hi[i])
    while True:
        m = 0
        for j in range(R):
            if not done[j]:
                order[m] = j
                for i in range(n):
                    batch[m, i] = xt[j, i]
                m += 1
        if m == 0:
            break
        objective_grad_many(batch, m, alpha11_free, fixed_alpha11, y, X, a, b_start, P_start, works, values, grads)
        for c in range(m):
            j = order[c]
            _advance(
                values[c],
                grads[c],
                lo,
                hi,
                ftol,
                gtol,
                maxiter,
                maxfun,
                x[j],
                g[j],
                S[j],
                Yp[j],
                fl[j],
                it[j],
                xbar[j],
                d[j],
                xt[j],
                st[j],
                paths[j],
            )
            if it[j, _PHASE] != _ENDED:
                continue
            if _run_ended(lo, hi, ftol, gtol, maxiter, restarts, x[j], g[j], fl[j], it[j], xs[j], gs[j], best[j]):
                done[j] = True
            else:
                _restart(x[j], S[j], Yp[j], fl[j], it[j], xt[j])
    for j in range(R):
        fs[j] = best[j, 0]
        counts[j, 0] = it[j, _OFFSET]
        counts[j, 1] = int(best[j, 1])

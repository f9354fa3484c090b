"""The log-likelihood and its analytic gradient (reverse mode) for maximum likelihood.

Compiled with numba (see :mod:`kalcoint._numba_cache`); imported by the modules of the
pipeline through :mod:`kalcoint._kernels`."""

from __future__ import annotations

import math

import numpy as np

from .._numba_cache import njit
from .filtering import filter_loop


@njit(cache=True, nogil=True)
def loglik_grad(y, X, a, vw, ve, b_start, P_start, grad):  # pragma: no cover - compiled
    """Log-likelihood of the filter of docs/method.md §3 (prior ``(b_start, P_start)`` at t = 0, fixed;
    ``A = diag(a)``, ``Vw = diag(vw)``) and, written to ``grad`` (k + 2,), its derivatives with
    respect to ``(alpha11 = a[0], obs_var = ve, state_var_1..k = vw)``. Returns NaN if some Q_t <= 0.

    Reverse mode: the forward pass is the filter of ``filter_loop`` and keeps
    ``e_t, 1/Q_t, P_{t|t-1} x_t'`` and the first row of ``(b_{t|t}, P_{t|t})``; the backward pass
    carries ``B = dL/d b_{t+1|t}`` and ``C = dL/d P_{t+1|t}`` (all k^2 entries, taken as
    independent) through the step in reverse, with ``l_t = -(log Q_t + e_t^2 / Q_t) / 2``:

        alpha11 += B_1 b_{1,t|t} + sum_ij d(a_i a_j)/d alpha11 P_{ij,t|t} C_ij;  state_var_i += C_ii
        Pfbar = (a a') o C;   Pxbar = g A B - (Pfbar + Pfbar') Px / Q + Qbar x'
        Qbar = -(1 - e g) / (2 Q) + (Px' Pfbar Px - e (A B) . Px) / Q^2;   obs_var += Qbar
        B <- A B - (-g + (A B) . Px / Q) x';   C <- Pfbar + Pxbar x
    with ``Px = P_{t|t-1} x_t'`` and ``g = e_t / Q_t``.
    """
    n, k = X.shape
    aa = np.empty((k, k))
    for i in range(k):
        for j in range(k):
            aa[i, j] = a[i] * a[j]
    b_pred = np.empty((n, k))
    P_pred = np.empty((n, k, k))
    b_filt = np.empty((n, k))
    P_filt = np.empty((n, k, k))
    es = np.empty(n)
    qs = np.empty(n)
    loglik = filter_loop(y, X, a, vw, ve, b_start, P_start, False, True, b_pred, P_pred, b_filt, P_filt, es, qs)
    if not math.isfinite(loglik):
        return np.nan
    rs = np.empty(n)
    Pxs = np.empty((n, k))
    bf0 = np.empty(n)  # b_{1,t|t}
    Pf0 = np.empty((n, k))  # first row of P_{t|t}
    for t in range(n):
        rs[t] = 1.0 / qs[t]
        bf0[t] = b_filt[t, 0]
        for i in range(k):
            Pf0[t, i] = P_filt[t, 0, i]
            s = 0.0
            for j in range(k):
                s += P_pred[t, i, j] * X[t, j]
            Pxs[t, i] = s

    B = np.zeros(k)  # dL / d b_{t+1|t}
    C = np.zeros((k, k))  # dL / d P_{t+1|t}
    AB = np.empty(k)
    Pfbar = np.empty((k, k))
    Pxbar = np.empty(k)
    d_alpha = 0.0
    d_ve = 0.0
    for i in range(k):
        grad[2 + i] = 0.0
    for t in range(n - 1, -1, -1):
        e = es[t]
        r = rs[t]
        g = e * r
        # through b_{t+1|t} = A b_{t|t} and P_{t+1|t} = (a a') o P_{t|t} + Vw
        d_alpha += B[0] * bf0[t] + 2.0 * a[0] * Pf0[t, 0] * C[0, 0]
        for j in range(1, k):
            d_alpha += a[j] * Pf0[t, j] * (C[0, j] + C[j, 0])
        for i in range(k):
            grad[2 + i] += C[i, i]
            AB[i] = a[i] * B[i]
            for j in range(k):
                Pfbar[i, j] = aa[i, j] * C[i, j]
        # through b_{t|t} = b + Px g, P_{t|t} = P - Px Px' / Q, g = e / Q and l_t
        gbar = 0.0
        quad_f = 0.0
        for i in range(k):
            gbar += AB[i] * Pxs[t, i]
            s = 0.0
            for j in range(k):
                s += (Pfbar[i, j] + Pfbar[j, i]) * Pxs[t, j]
            Pxbar[i] = g * AB[i] - r * s
            quad_f += Pxs[t, i] * s
        ebar = -g + gbar * r
        rbar = -0.5 * quad_f + gbar * e
        qbar = -0.5 * r * (1.0 - e * g) - rbar * r * r
        d_ve += qbar
        for i in range(k):
            pxb = Pxbar[i] + qbar * X[t, i]
            B[i] = AB[i] - ebar * X[t, i]
            for j in range(k):
                C[i, j] = Pfbar[i, j] + pxb * X[t, j]
    grad[0] = d_alpha
    grad[1] = d_ve
    return loglik

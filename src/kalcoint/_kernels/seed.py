"""The method's re-estimation passes (docs/method.md §4-§5), all in one compiled loop.

Compiled with numba (see :mod:`kalcoint._numba_cache`); imported by the modules of the
pipeline through :mod:`kalcoint._kernels`."""

from __future__ import annotations

import math

import numpy as np

from .._numba_cache import njit
from .filtering import (
    accumulate_loglik,
    filter_loop,
    k2_day_constants,
    k2_prior,
    k2_filter_step,
    loglik_from_sums,
    smoother_loop,
)


@njit(cache=True, nogil=True)
def rel_change(new, old):  # pragma: no cover - compiled
    if new == old:
        return 0.0
    if old == 0.0:
        return np.inf
    return abs(new - old) / abs(old)


@njit(cache=True, nogil=True)
def mean_e2_over_q2(innov, innov_var):  # pragma: no cover - compiled
    """``mean_t e_t^2 / Q_t^2``: the factor of the collapse law ``Ve' = Ve^2 mean(e_t^2/Q_t^2)``."""
    s = 0.0
    for t in range(innov.size):
        g = innov[t] / innov_var[t]
        s += g * g
    return s / innov.size


@njit(cache=True, nogil=True)
def filtered_lag_one(a, P_filt, lag):  # pragma: no cover - compiled
    """Diagonal of ``Cov(b_t, b_{t-1}) = A P_{t-1|t-1}`` (the covariance of the pair given
    ``y_1..y_{t-1}``) into ``lag[t, i]`` (t >= 1; ``lag[0] = 0``). With it the covariance term of
    step 5.4 is ``P_{t|t} - A P_{t-1|t-1} A' = Vw - K_t Q_t K_t'`` (docs/method.md §10)."""
    n, k = lag.shape
    for i in range(k):
        lag[0, i] = 0.0
    for t in range(1, n):
        for i in range(k):
            lag[t, i] = a[i] * P_filt[t - 1, i, i]


@njit(cache=True, nogil=True)
def reestimate(
    y, X, b, P, lag, innov, a11_old, centre, fix_alpha11, prior_residual, cov_terms, out
):  # pragma: no cover - compiled
    """docs/method.md §5 (and §10 with ``cov_terms``) from states ``b`` (n, k), in one sweep over t.

    P : (n, k, k) covariances of ``b`` and lag : (n, k) diagonal of ``Cov(b_t, b_{t-1})``, read only
    when ``cov_terms``. Writes (alpha11, obs_var, state_var_1..k, initial_cov_1..k) into ``out``.
    """
    n, k = X.shape
    num = 0.0  # sum E[b_{1,t} b_{1,t-1}]
    den = 0.0  # sum E[b_{1,t-1}^2]
    ve = 0.0
    gamma11 = 0.0
    for i in range(2, 2 + 2 * k):
        out[i] = 0.0
    for t in range(n):
        if prior_residual:
            r = innov[t]
        else:
            r = y[t]
            for i in range(k):
                r -= X[t, i] * b[t, i]
        ve += r * r
        gamma11 += b[t, 0] * b[t, 0]
        if cov_terms:
            gamma11 += P[t, 0, 0]
            if not prior_residual:
                for i in range(k):
                    for j in range(k):
                        ve += X[t, i] * P[t, i, j] * X[t, j]
        if t > 0:
            num += b[t, 0] * b[t - 1, 0]
            den += b[t - 1, 0] * b[t - 1, 0]
            if cov_terms:
                num += lag[t, 0]
                den += P[t - 1, 0, 0]
            # (b_{t+1} - A b_t)_i for i >= 2 (A_ii = 1); the first entry is replaced below
            for i in range(1, k):
                d = b[t, i] - b[t - 1, i]
                out[2 + i] += d * d
                if cov_terms:
                    out[2 + i] += P[t, i, i] - 2.0 * lag[t, i] + P[t - 1, i, i]
        for i in range(k):
            d = b[t, i] - centre[i]
            out[2 + k + i] += d * d
            if cov_terms:
                out[2 + k + i] += P[t, i, i]
    a11 = a11_old if fix_alpha11 else num / den
    out[0] = a11
    out[1] = ve / n
    for i in range(1, k):
        out[2 + i] /= n - 1
        if cov_terms:  # an expected square with the smoothed moments (rounding only); see §10 for filtered
            out[2 + i] = max(out[2 + i], 0.0)
    out[2] = (1.0 - a11 * a11) * (gamma11 / n)
    for i in range(k):
        out[2 + k + i] /= n - 1


@njit(cache=True, nogil=True)
def seed_passes(
    y,
    X,
    alpha11,
    obs_var,
    state_var,
    initial_state,
    initial_cov,
    bm,
    bm_sample,
    fix_alpha11,
    prior_residual,
    smoothed,
    cov_terms,
    iterations,
    tol,
    hist,
    b_filt,
    innov,
    innov_var,
    out_model,
):  # pragma: no cover - compiled
    """Run up to ``iterations`` passes. Returns (passes run, status): status 1 converged
    (``tol``), 0 ran all passes, -1 filter breakdown at the last pass run.

    As docs/method.md §5 writes it, a pass whose ``|alpha11| > 1`` runs with a negative
    ``state_var[0] = (1 - alpha11^2) Gamma_11``; the caller reports it if the run ends there.

    smoothed : re-estimate from the smoothed moments ``b_{t|n}`` instead of ``b_{t|t}`` (§10).
    cov_terms : add the posterior covariance terms to every re-estimate (§10).
    hist : (iterations, 4) rows (alpha11, obs_var, loglik, mean e_t^2/Q_t^2) of each pass.
    out_model : (2 + 2k,) the quantities the last pass ran with: alpha11, obs_var, state_var, initial_cov.
    b_filt, innov, innov_var : states and innovations of the last pass.

    For k = 2 with the method's own options (filtered moments, posterior residual, ``bm``
    from Johansen, ``alpha11`` free, no covariance terms), :func:`seed_passes_k2`: the same
    numbers to the last bit; otherwise :func:`seed_passes_arrays`.
    """
    k = X.shape[1]
    if k == 2 and not (bm_sample or fix_alpha11 or prior_residual or smoothed or cov_terms):
        return seed_passes_k2(
            y,
            X,
            alpha11,
            obs_var,
            state_var,
            initial_state,
            initial_cov,
            bm,
            iterations,
            tol,
            True,
            hist,
            b_filt,
            innov,
            innov_var,
            out_model,
            np.empty(5),
        )
    return seed_passes_arrays(
        y,
        X,
        alpha11,
        obs_var,
        state_var,
        initial_state,
        initial_cov,
        bm,
        bm_sample,
        fix_alpha11,
        prior_residual,
        smoothed,
        cov_terms,
        iterations,
        tol,
        hist,
        b_filt,
        innov,
        innov_var,
        out_model,
    )


@njit(cache=True, nogil=True)
def seed_passes_arrays(
    y,
    X,
    alpha11,
    obs_var,
    state_var,
    initial_state,
    initial_cov,
    bm,
    bm_sample,
    fix_alpha11,
    prior_residual,
    smoothed,
    cov_terms,
    iterations,
    tol,
    hist,
    b_filt,
    innov,
    innov_var,
    out_model,
):  # pragma: no cover - compiled
    """:func:`seed_passes` for any k and options: the filter (:func:`filter_loop`), then the
    re-estimate (:func:`reestimate`) in a sweep of its own."""
    n, k = X.shape
    a = np.ones(k)
    params = np.empty(2 + 2 * k)  # the quantities of the current pass, laid out as out_model
    params[0] = alpha11
    params[1] = obs_var
    for i in range(k):
        params[2 + i] = state_var[i]
        params[2 + k + i] = initial_cov[i]
    new = np.empty(2 + 2 * k)
    p0 = np.zeros((k, k))
    centre = np.empty(k)
    need_cov = smoothed or cov_terms
    m_n = n if need_cov else 1
    b_pred = np.empty((m_n, k))
    P_pred = np.empty((m_n, k, k))
    P_filt = np.empty((m_n, k, k))
    b_s = np.empty((n if smoothed else 1, k))
    P_s = np.empty((n if smoothed else 1, k, k))
    lag_full = np.empty((n if smoothed else 1, k, k))
    lag = np.zeros((n, k))
    for m in range(iterations):
        a[0] = params[0]
        for i in range(k):
            p0[i, i] = params[2 + k + i]
        ll = filter_loop(
            y,
            X,
            a,
            params[2 : 2 + k],
            params[1],
            initial_state,
            p0,
            False,
            need_cov,
            b_pred,
            P_pred,
            b_filt,
            P_filt,
            innov,
            innov_var,
        )
        for i in range(2 + 2 * k):
            out_model[i] = params[i]
        hist[m, 0] = params[0]
        hist[m, 1] = params[1]
        hist[m, 2] = ll
        if not math.isfinite(ll):
            return m + 1, -1
        hist[m, 3] = mean_e2_over_q2(innov, innov_var)
        if m == iterations - 1:
            return m + 1, 0
        b, P = b_filt, P_filt
        if smoothed:
            smoother_loop(y, X, a, b_pred, P_pred, innov, innov_var, b_s, P_s, lag_full)
            b, P = b_s, P_s
            if cov_terms:
                for t in range(n):
                    for i in range(k):
                        lag[t, i] = lag_full[t, i, i]
        elif cov_terms:
            filtered_lag_one(a, P_filt, lag)
        for i in range(k):
            if bm_sample:
                c = 0.0
                for t in range(n):
                    c += b[t, i]
                centre[i] = c / n
            else:
                centre[i] = bm[i]
        reestimate(y, X, b, P, lag, innov, params[0], centre, fix_alpha11, prior_residual, cov_terms, new)
        if tol > 0.0:
            worst = 0.0
            for i in range(2 + 2 * k):
                worst = max(worst, rel_change(new[i], params[i]))
            if worst < tol:
                return m + 1, 1
        for i in range(2 + 2 * k):
            params[i] = new[i]
    return iterations, 0


@njit(cache=True, nogil=True)
def seed_passes_k2(
    y,
    X,
    alpha11,
    obs_var,
    state_var,
    initial_state,
    initial_cov,
    bm,
    iterations,
    tol,
    history,
    hist,
    b_filt,
    innov,
    innov_var,
    out_model,
    last_posterior,
):  # pragma: no cover - compiled
    """:func:`seed_passes` for k = 2 and the method's own options, each pass one sweep over t:
    the filter day (:func:`kalcoint._kernels.filtering.k2_filter_step`) and the sums of the re-estimate
    (:func:`reestimate`) and of ``mean e_t^2 / Q_t^2`` (:func:`mean_e2_over_q2`), each sum taken
    in the order of t as there, so the same numbers to the last bit as :func:`seed_passes_arrays`.

    history : fill ``hist[:, 3]`` (``mean e_t^2 / Q_t^2``, one division a day); when False it is
        left as it was.
    last_posterior : (5,) ``b_{n|n}`` (2) and ``P_{n|n}`` (00, 01, 11) of the last pass run, when
        its filter reached the last day (as :func:`filter_loop` stores them).
    """
    n = X.shape[0]
    params = np.empty(6)  # alpha11, obs_var, state_var (2), initial_cov (2), as out_model
    params[0] = alpha11
    params[1] = obs_var
    params[2] = state_var[0]
    params[3] = state_var[1]
    params[4] = initial_cov[0]
    params[5] = initial_cov[1]
    new = np.empty(6)
    p0 = np.zeros((2, 2))
    centre0, centre1 = bm[0], bm[1]
    for m in range(iterations):
        p0[0, 0] = params[4]
        p0[1, 1] = params[5]
        c = k2_day_constants(params[0], 1.0, params[2], params[3], params[1])
        s = k2_prior(initial_state, p0)
        acc = (0.0, 0.0, 1.0)
        e2q2 = 0.0
        ve = 0.0  # the sums of reestimate, named as there
        gamma11 = 0.0
        num = 0.0
        den = 0.0
        sv1 = 0.0
        ic0 = 0.0
        ic1 = 0.0
        prev0 = 0.0
        prev1 = 0.0
        ll = np.nan
        for t in range(n):
            s, e, q, r, g, f0, f1, f00, f01, f11 = k2_filter_step(t, y, X, c, s)
            if not q > 0.0:
                break
            b_filt[t, 0] = f0
            b_filt[t, 1] = f1
            innov[t] = e
            innov_var[t] = q
            acc = accumulate_loglik(t, q, e * g, acc)
            if history:
                h = e / q
                e2q2 += h * h
            res = (y[t] - X[t, 0] * f0) - X[t, 1] * f1
            ve += res * res
            gamma11 += f0 * f0
            if t > 0:
                num += f0 * prev0
                den += prev0 * prev0
                d = f1 - prev1
                sv1 += d * d
            d0 = f0 - centre0
            ic0 += d0 * d0
            d1 = f1 - centre1
            ic1 += d1 * d1
            prev0 = f0
            prev1 = f1
            if t == n - 1:
                ll = loglik_from_sums(acc, n)
                last_posterior[0] = f0
                last_posterior[1] = f1
                last_posterior[2] = f00
                last_posterior[3] = f01
                last_posterior[4] = f11
        for i in range(6):
            out_model[i] = params[i]
        hist[m, 0] = params[0]
        hist[m, 1] = params[1]
        hist[m, 2] = ll
        if not math.isfinite(ll):
            return m + 1, -1
        if history:
            hist[m, 3] = e2q2 / n
        if m == iterations - 1:
            return m + 1, 0
        a11 = num / den
        new[0] = a11
        new[1] = ve / n
        new[2] = (1.0 - a11 * a11) * (gamma11 / n)
        new[3] = sv1 / (n - 1)
        new[4] = ic0 / (n - 1)
        new[5] = ic1 / (n - 1)
        if tol > 0.0:
            worst = 0.0
            for i in range(6):
                worst = max(worst, rel_change(new[i], params[i]))
            if worst < tol:
                return m + 1, 1
        for i in range(6):
            params[i] = new[i]
    return iterations, 0

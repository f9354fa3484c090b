"""The screen's compiled stages for a batch of pairs (k = 2, the seed method).

Each stage loops over the pairs of a batch and calls the kernels a single basket's figures use
(:func:`johansen_kernel`, :func:`adf_kernel`, :func:`seed_passes_k2`, the filter day
:func:`k2_filter_step`), so every figure is the same number to the last bit as the plain path's
(:func:`kalcoint.screen.evaluate_basket`). The pairs of a stage share one history length ``n``:
``P`` is a (B, n, 2) stack of their common-history prices, ``Y`` (B, n) the dependent asset's
prices and ``X`` (B, n, 2) the observation rows ``(1, p_2)``. What the plain path computes with
NumPy's BLAS (the static portfolio, the first pass's moments) comes in as arrays; a status code
says where a pair left the common path (the caller then runs the plain path for it).

Compiled with numba (see :mod:`kalcoint._numba_cache`); imported by the modules of the pipeline
through :mod:`kalcoint._kernels`."""

from __future__ import annotations

import math

import numpy as np

from .._numba_cache import njit
from .adf import adf_kernel
from .filtering import accumulate_loglik, k2_day_constants, k2_day, k2_prior, loglik_from_sums
from .johansen import johansen_kernel
from .linalg import OK
from .seed import rel_change

FLAT = 3
"""Stage status: a column of the pair is constant over the rows (Johansen refuses it)."""
BAD_INPUT = 4
"""Stage status: the ADF series is constant or not finite (``adf`` refuses it)."""
BREAKDOWN = 5
"""Stage status: a filter gave a non-finite figure (``kalman_filter`` refuses it)."""
NOT_RUN = -9
"""Stage status: the stage did not run for this pair."""


@njit(cache=True, nogil=True)
def _constant_column(x, rows):  # pragma: no cover - compiled
    """Whether a column of ``x[:rows]`` is constant (its largest value equals its smallest)."""
    for j in range(x.shape[1]):
        lo = x[0, j]
        hi = x[0, j]
        for t in range(1, rows):
            v = x[t, j]
            lo = min(lo, v)
            hi = max(hi, v)
        if hi == lo:
            return True
    return False


@njit(cache=True, nogil=True)
def johansen_pairs(P, rows, select, det_order, k_ar_diff, tol, weights, trace, max_eig, status):  # pragma: no cover
    """The Johansen test of each selected pair on its first ``rows`` rows.

    Writes ``weights`` (B, 2) (the eigenvector of the largest eigenvalue), ``trace`` and
    ``max_eig`` (B, 2), and ``status`` (B,): OK, :data:`FLAT`, the kernel's DEGENERATE, or
    :data:`NOT_RUN` where ``select`` is False."""
    for b in range(P.shape[0]):
        if not select[b]:
            status[b] = NOT_RUN
            continue
        x = P[b, :rows]
        if _constant_column(x, rows):
            status[b] = FLAT
            continue
        eig, evec, tr, me, st = johansen_kernel(x, det_order, k_ar_diff, tol)
        status[b] = st
        for i in range(2):
            weights[b, i] = evec[i, 0]
            trace[b, i] = tr[i]
            max_eig[b, i] = me[i]


@njit(cache=True, nogil=True)
def adf_series(x, maxlag, chol_tol, rank_tol, tie_tol):  # pragma: no cover - compiled
    """``(stat, lags, status)`` of :func:`kalcoint.cointegration.adf` (constant, AIC lags, fast
    engine) on the 1-D series ``x``: its input checks, its exact power-of-two scaling, the kernel.
    status: OK, :data:`BAD_INPUT`, or the kernel's NEAR_TIE / DEGENERATE; a non-finite
    statistic comes back as it is (the caller refuses it)."""
    n = x.size
    big = 0.0
    lo = x[0]
    hi = x[0]
    for t in range(n):
        v = x[t]
        if not math.isfinite(v):
            return np.nan, -1, BAD_INPUT
        big = max(big, abs(v))
        lo = min(lo, v)
        hi = max(hi, v)
    if hi == lo:
        return np.nan, -1, BAD_INPUT
    exponent = math.frexp(big)[1]
    scaled = np.empty(n)
    for t in range(n):
        scaled[t] = math.ldexp(x[t], -exponent)
    return adf_kernel(scaled, maxlag, 0, chol_tol, rank_tol, tie_tol)


@njit(cache=True, nogil=True)
def tuning_ok(passes_status, out):  # pragma: no cover - compiled
    """Whether seed passes that ended with ``passes_status`` and quantities ``out`` (6,) give a
    model (:func:`kalcoint.tuning.seed.run_seed_passes` raises otherwise)."""
    if out[2] < 0.0 or passes_status < 0:
        return False
    for i in range(6):
        if not math.isfinite(out[i]):
            return False
    return True


LANES = 4
"""Pairs whose seed passes run side by side in :func:`tune_pairs`: a day's update waits on a
division, so one pair alone leaves most of the core idle; four interleaved days keep it busy."""

PLAIN = 9
"""Pass status: a division by zero the plain path raises on (the pair goes to the plain path)."""


@njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _lane_day(t, first, p, c, s, sums, prev, centre0, centre1, b_filt, innov_var, quad):  # pragma: no cover
    """Day ``t`` of a seed pass of one lane (:func:`seed_passes_k2`'s day, without its test of
    ``Q_t``): the filter day on the prices ``p`` (n, 2) (``y_t = p[t, 0]``, ``x_t = (1, p[t, 1])``)
    and the re-estimate's sums (``first``: day 0, whose lag terms are not summed). Stores
    ``b_{t|t}``, ``Q_t`` and ``e_t^2 / Q_t`` (the log-likelihood is summed from them after the
    pass, :func:`_pass_loglik`). Returns the prior of day t + 1, the sums, ``b_{t|t}`` and
    ``P_{t|t}`` (00, 01, 11)."""
    yt = p[t, 0]
    x1 = p[t, 1]
    s, e, q, r, g, f0, f1, f00, f01, f11 = k2_day(yt, 1.0, x1, c, s)
    b_filt[t, 0] = f0
    b_filt[t, 1] = f1
    innov_var[t] = q
    quad[t] = e * g
    ve, gamma11, num, den, sv1, ic0, ic1 = sums
    res = (yt - 1.0 * f0) - x1 * f1
    ve += res * res
    gamma11 += f0 * f0
    if not first:
        num += f0 * prev[0]
        den += prev[0] * prev[0]
        d = f1 - prev[1]
        sv1 += d * d
    d0 = f0 - centre0
    ic0 += d0 * d0
    d1 = f1 - centre1
    ic1 += d1 * d1
    return s, (ve, gamma11, num, den, sv1, ic0, ic1), (f0, f1), (f0, f1, f00, f01, f11)


@njit(cache=True, nogil=True)
def _pass_loglik(n, q0, e0, q1, e1, q2, e2, q3, e3, loglik):  # pragma: no cover - compiled
    """The log-likelihood of each lane's pass from its stored ``Q_t`` and ``e_t^2 / Q_t``, summed
    as :func:`filter_loop` sums it (NaN where some ``Q_t <= 0``: the filter stops there)."""
    a0 = a1 = a2 = a3 = (0.0, 0.0, 1.0)
    ok0 = ok1 = ok2 = ok3 = True
    for t in range(n):
        if ok0:
            if q0[t] > 0.0:
                a0 = accumulate_loglik(t, q0[t], e0[t], a0)
            else:
                ok0 = False
        if ok1:
            if q1[t] > 0.0:
                a1 = accumulate_loglik(t, q1[t], e1[t], a1)
            else:
                ok1 = False
        if ok2:
            if q2[t] > 0.0:
                a2 = accumulate_loglik(t, q2[t], e2[t], a2)
            else:
                ok2 = False
        if ok3:
            if q3[t] > 0.0:
                a3 = accumulate_loglik(t, q3[t], e3[t], a3)
            else:
                ok3 = False
    loglik[0] = loglik_from_sums(a0, n) if ok0 else np.nan
    loglik[1] = loglik_from_sums(a1, n) if ok1 else np.nan
    loglik[2] = loglik_from_sums(a2, n) if ok2 else np.nan
    loglik[3] = loglik_from_sums(a3, n) if ok3 else np.nan


@njit(cache=True, nogil=True, inline="always")
def _pass_start(params, hedge0, p0, b0):  # pragma: no cover - compiled
    """A lane's constants and prior at the start of a pass with the quantities ``params`` (6,)."""
    p0[0, 0] = params[4]
    p0[1, 1] = params[5]
    b0[1] = hedge0
    return k2_day_constants(params[0], 1.0, params[2], params[3], params[1]), k2_prior(b0, p0)


@njit(cache=True, nogil=True)
def _lane_job(lane, b, job, step, params, alpha11, obs_var, level_var, initial_cov):  # pragma: no cover
    """Give ``lane`` the pair ``b`` from its first pass."""
    job[lane] = b
    step[lane] = 0
    params[lane, 0] = alpha11[b]
    params[lane, 1] = obs_var[b]
    params[lane, 2] = level_var[b]
    params[lane, 3] = 0.0
    params[lane, 4] = initial_cov[b, 0]
    params[lane, 5] = initial_cov[b, 1]


@njit(cache=True, nogil=True, error_model="numpy")
def _pass_end(lane, ll, sums, n, iterations, tol, step, params, new):  # pragma: no cover - compiled
    """:func:`seed_passes_k2`'s end of a pass for ``lane``: the status (-1 broke down, 0 ran every
    pass, 1 converged, :data:`PLAIN`) when the pair's passes end here, else 2 and ``params``
    re-estimated."""
    m = step[lane]
    if not math.isfinite(ll):
        return -1
    if m == iterations - 1:
        return 0
    ve, gamma11, num, den, sv1, ic0, ic1 = sums
    if den == 0.0:
        return PLAIN  # seed_passes_k2 raises ZeroDivisionError
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
            worst = max(worst, rel_change(new[i], params[lane, i]))
        if worst < tol:
            return 1
    for i in range(6):
        params[lane, i] = new[i]
    step[lane] = m + 1
    return 2


@njit(cache=True, nogil=True)
def _finish(
    lane,
    code,
    post,
    job,
    step,
    params,
    p,
    n,
    b_filt,
    innov_var_lane,
    passes,
    status,
    out,
    last_posterior,
    innov_var,
    spread,
    finite,
):  # pragma: no cover - compiled
    """Write the outputs of ``lane``'s pair (prices ``p``), whose passes ended with status ``code``."""
    b = job[lane]
    passes[b] = step[lane] + 1
    status[b] = code
    for i in range(6):
        out[b, i] = params[lane, i]
    if code == PLAIN or not tuning_ok(code, out[b]):
        return
    ok = True
    for i in range(5):
        last_posterior[b, i] = post[i]
        if not math.isfinite(post[i]):
            ok = False
    for t in range(n):
        f0 = b_filt[t, 0]
        f1 = b_filt[t, 1]
        if not (math.isfinite(f0) and math.isfinite(f1)):
            ok = False
        spread[b, t] = p[t, 0] - (0.0 + p[t, 1] * f1)
        innov_var[b, t] = innov_var_lane[t]
    finite[b] = ok


@njit(cache=True, nogil=True, inline="always")
def _data(b, dummy):  # pragma: no cover - compiled
    """The pair whose prices a lane runs on: its own, or ``dummy`` when it has none."""
    return b if b >= 0 else dummy


@njit(cache=True, nogil=True, error_model="numpy")
def tune_pairs(
    P,
    rows,
    select,
    alpha11,
    obs_var,
    level_var,
    hedge0,
    initial_cov,
    bm,
    iterations,
    tol,
    passes,
    status,
    out,
    last_posterior,
    innov_var,
    spread,
    finite,
):  # pragma: no cover - compiled
    """The seed passes of each selected pair on its first ``rows`` rows, from its first pass:
    :func:`seed_passes_k2` on :data:`LANES` pairs side by side (a lane whose pair is done takes
    the next one at the next pass), the same numbers to the last bit.

    P : (B, >= rows, 2) prices, dependent asset first.
    alpha11, obs_var, level_var (= state_var[0]; state_var[1] is 0) : (B,) the first pass.
    hedge0 : (B,) ``initial_state[1] = -w_2 / w_1`` (``initial_state[0]`` is 0).
    initial_cov, bm : (B, 2) the first pass's prior covariance and the centre of the re-estimates.

    Writes ``passes``, ``status`` (:func:`seed_passes_k2`'s, or :data:`PLAIN`), ``out`` (B, 6), and,
    where the passes give a model (:func:`tuning_ok`), ``last_posterior`` (B, 5), the last pass's
    ``innov_var`` (B, >= rows), the dynamic portfolio ``spread`` (B, >= rows) ``y_t - x_{2,t}
    b_{2,t|t}`` (as ``FilterResult.spread`` computes it), and ``finite`` (B,): its states and last
    posterior covariance are finite (what ``kalman_filter`` checks when the model is run again)."""
    n = rows
    order = np.flatnonzero(select)
    for b in range(P.shape[0]):
        if not select[b]:
            status[b] = NOT_RUN
    if order.size == 0:
        return
    job = np.full(LANES, -1)
    step = np.zeros(LANES, dtype=np.int64)
    params = np.empty((LANES, 6))
    new = np.empty(6)
    p0 = np.zeros((2, 2))
    b0 = np.zeros(2)
    ll = np.empty(LANES)
    scratch_b = np.empty((LANES, n, 2))
    scratch_q = np.empty((LANES, n))
    scratch_e = np.empty((LANES, n))
    bf0, bf1, bf2, bf3 = scratch_b[0], scratch_b[1], scratch_b[2], scratch_b[3]
    q0, q1, q2, q3 = scratch_q[0], scratch_q[1], scratch_q[2], scratch_q[3]
    e0, e1, e2, e3 = scratch_e[0], scratch_e[1], scratch_e[2], scratch_e[3]
    # a lane with no pair runs the first pair's first pass, its outputs unused
    dummy = order[0]
    for lane in range(LANES):
        _lane_job(lane, dummy, job, step, params, alpha11, obs_var, level_var, initial_cov)
        job[lane] = -1
    queue = 0
    busy = 0
    for lane in range(LANES):
        if queue < order.size:
            _lane_job(lane, order[queue], job, step, params, alpha11, obs_var, level_var, initial_cov)
            queue += 1
            busy += 1
    zero = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    while busy > 0:
        i0, i1, i2, i3 = _data(job[0], dummy), _data(job[1], dummy), _data(job[2], dummy), _data(job[3], dummy)
        c0, s0 = _pass_start(params[0], hedge0[i0], p0, b0)
        c1, s1 = _pass_start(params[1], hedge0[i1], p0, b0)
        c2, s2 = _pass_start(params[2], hedge0[i2], p0, b0)
        c3, s3 = _pass_start(params[3], hedge0[i3], p0, b0)
        pp0, pp1, pp2, pp3 = P[i0, :n], P[i1, :n], P[i2, :n], P[i3, :n]
        m00, m01, m10, m11 = bm[i0, 0], bm[i0, 1], bm[i1, 0], bm[i1, 1]
        m20, m21, m30, m31 = bm[i2, 0], bm[i2, 1], bm[i3, 0], bm[i3, 1]
        s0, u0, v0, w0 = _lane_day(0, True, pp0, c0, s0, zero, (0.0, 0.0), m00, m01, bf0, q0, e0)
        s1, u1, v1, w1 = _lane_day(0, True, pp1, c1, s1, zero, (0.0, 0.0), m10, m11, bf1, q1, e1)
        s2, u2, v2, w2 = _lane_day(0, True, pp2, c2, s2, zero, (0.0, 0.0), m20, m21, bf2, q2, e2)
        s3, u3, v3, w3 = _lane_day(0, True, pp3, c3, s3, zero, (0.0, 0.0), m30, m31, bf3, q3, e3)
        for t in range(1, n - 1):  # the last day apart: only its posterior is kept
            s0, u0, v0, _ = _lane_day(t, False, pp0, c0, s0, u0, v0, m00, m01, bf0, q0, e0)
            s1, u1, v1, _ = _lane_day(t, False, pp1, c1, s1, u1, v1, m10, m11, bf1, q1, e1)
            s2, u2, v2, _ = _lane_day(t, False, pp2, c2, s2, u2, v2, m20, m21, bf2, q2, e2)
            s3, u3, v3, _ = _lane_day(t, False, pp3, c3, s3, u3, v3, m30, m31, bf3, q3, e3)
        t = n - 1
        s0, u0, v0, w0 = _lane_day(t, False, pp0, c0, s0, u0, v0, m00, m01, bf0, q0, e0)
        s1, u1, v1, w1 = _lane_day(t, False, pp1, c1, s1, u1, v1, m10, m11, bf1, q1, e1)
        s2, u2, v2, w2 = _lane_day(t, False, pp2, c2, s2, u2, v2, m20, m21, bf2, q2, e2)
        s3, u3, v3, w3 = _lane_day(t, False, pp3, c3, s3, u3, v3, m30, m31, bf3, q3, e3)
        _pass_loglik(n, q0, e0, q1, e1, q2, e2, q3, e3, ll)
        for lane in range(LANES):
            if job[lane] < 0:
                continue
            if lane == 0:
                sums, post, bf, qq, pp = u0, w0, bf0, q0, pp0
            elif lane == 1:
                sums, post, bf, qq, pp = u1, w1, bf1, q1, pp1
            elif lane == 2:
                sums, post, bf, qq, pp = u2, w2, bf2, q2, pp2
            else:
                sums, post, bf, qq, pp = u3, w3, bf3, q3, pp3
            code = _pass_end(lane, ll[lane], sums, n, iterations, tol, step, params, new)
            if code == 2:
                continue
            _finish(lane, code, post, job, step, params, pp, n, bf, qq, passes, status, out,
                    last_posterior, innov_var, spread, finite)  # fmt: skip
            if queue < order.size:
                _lane_job(lane, order[queue], job, step, params, alpha11, obs_var, level_var, initial_cov)
                queue += 1
            else:
                _lane_job(lane, dummy, job, step, params, alpha11, obs_var, level_var, initial_cov)
                job[lane] = -1
                busy -= 1


@njit(cache=True, nogil=True)
def adf_pairs(S, rows, select, maxlag, chol_tol, rank_tol, tie_tol, stat, lags, status):  # pragma: no cover
    """:func:`adf_series` of each selected row ``S[b, :rows]`` into ``stat``, ``lags``, ``status``."""
    for b in range(S.shape[0]):
        if not select[b]:
            status[b] = NOT_RUN
            continue
        stat[b], lags[b], status[b] = adf_series(S[b, :rows], maxlag, chol_tol, rank_tol, tie_tol)


@njit(cache=True, nogil=True, error_model="numpy")
def oos_filter_pairs(
    P, start, select, from_posterior, out, last_posterior, hedge0, loglik, spread, status
):  # pragma: no cover
    """The tuned filter of each selected pair over its test rows ``start..n-1`` of ``P`` (B, n, 2).

    from_posterior : continue from the last posterior of the tuning rows (``last_posterior``
        (B, 5), a prediction step first, as ``kalman_filter(..., start=...)``); else start from
        the model's prior ``(0, hedge0)``, ``diag(out[4:6])``.
    out : (B, 6) the tuned quantities (alpha11, obs_var, state_var (2), initial_cov (2)).

    Writes ``loglik`` (B,), ``spread`` (B, >= n - start) ``y_t - x_{2,t} b_{2,t|t}`` and ``status``
    (B,): OK, or :data:`BREAKDOWN` where ``Q_t <= 0`` or a figure is not finite."""
    n = P.shape[1]
    m = n - start
    p0 = np.zeros((2, 2))
    b_start = np.zeros(2)
    for b in range(P.shape[0]):
        if not select[b]:
            status[b] = NOT_RUN
            continue
        o = out[b]
        c = k2_day_constants(o[0], 1.0, o[2], o[3], o[1])
        if from_posterior:
            post = last_posterior[b]
            b_start[0] = post[0]
            b_start[1] = post[1]
            p0[0, 0] = post[2]
            p0[0, 1] = post[3]
            p0[1, 0] = post[3]
            p0[1, 1] = post[4]
            s0 = k2_prior(b_start, p0)
            # filter_loop's prediction step before the first day: A b, A P A' + Vw
            s = (c[1] * s0[0], c[2] * s0[1], c[3] * s0[2] + c[6], c[4] * s0[3], c[5] * s0[4] + c[7])
        else:
            b_start[0] = 0.0
            b_start[1] = hedge0[b]
            p0[0, 0] = o[4]
            p0[0, 1] = 0.0
            p0[1, 0] = 0.0
            p0[1, 1] = o[5]
            s = k2_prior(b_start, p0)
        p = P[b, start:]
        acc = (0.0, 0.0, 1.0)
        ok = True
        for t in range(m):
            s, e, q, r, g, f0, f1, f00, f01, f11 = k2_day(p[t, 0], 1.0, p[t, 1], c, s)
            if not q > 0.0:
                ok = False
                break
            if not (
                math.isfinite(f0)
                and math.isfinite(f1)
                and math.isfinite(f00)
                and math.isfinite(f01)
                and math.isfinite(f11)
            ):
                ok = False
            acc = accumulate_loglik(t, q, e * g, acc)
            spread[b, t] = p[t, 0] - (0.0 + p[t, 1] * f1)
        ll = loglik_from_sums(acc, m) if ok else np.nan
        loglik[b] = ll
        status[b] = OK if ok and math.isfinite(ll) else BREAKDOWN

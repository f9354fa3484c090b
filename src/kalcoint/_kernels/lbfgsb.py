"""A compiled L-BFGS-B for small box-constrained problems (the MLE's 4 to ~10 variables).

Compiled with numba (see :mod:`kalcoint._numba_cache`); the MLE's driver
(:func:`kalcoint._kernels.mle.minimise_mle`) calls these pieces around its objective, so a
whole optimisation runs without returning to Python.

The algorithm is L-BFGS-B (Byrd, Lu, Nocedal and Zhu, SIAM J. Sci. Comput. 16, 1995, with
the subspace step of Morales and Nocedal, ACM TOMS 38, 2011), with the constants scipy's
``minimize(method="L-BFGS-B")`` uses:

1. the limited-memory BFGS matrix ``B`` of the last ``m`` pairs ``(s, y)`` from ``theta I``,
   ``theta = y'y / s'y`` of the newest pair (:func:`bfgs_matrix`). For a handful of variables
   it is formed as a dense matrix: the same matrix as the compact form of the paper;
2. the generalized Cauchy point: the first local minimiser of the quadratic model along the
   projected steepest-descent path ``P(x - t g)`` (:func:`cauchy_point`);
3. the subspace step: the model's Newton step in the variables that are free at the Cauchy
   point, projected onto the box if that still descends, else cut back to the box
   (:func:`subspace_step`);
4. a line search along ``d = xbar - x`` for the strong Wolfe conditions (``ftol = 1e-3``,
   ``gtol = 0.9``, ``xtol = 0.1``), the More-Thuente search (ACM TOMS 20, 1994;
   :func:`line_search`), whose longest step keeps ``x + stp d`` in the box.

An objective that is not finite (the filter broke down) shortens the step by bisection
towards the best step so far.
"""

from __future__ import annotations

import math

import numpy as np

from .._numba_cache import njit

LS_FTOL, LS_GTOL, LS_XTOL = 1e-3, 0.9, 0.1
"""The line search's sufficient decrease, curvature and interval-width constants."""
XTRAP_LOWER, XTRAP_UPPER = 1.1, 4.0
"""Bounds of the extrapolated step before a minimum is bracketed (multiples of the last step)."""

# line search tasks
LS_START, LS_EVALUATE, LS_CONVERGED, LS_WARNING = 0, 1, 2, 3


@njit(cache=True, nogil=True)
def projected_gradient_norm(x, g, lo, hi):  # pragma: no cover - compiled
    """Infinity norm of ``P(x - g) - x`` (the projected gradient L-BFGS-B's ``gtol`` tests)."""
    out = 0.0
    for i in range(x.size):
        v = min(max(x[i] - g[i], lo[i]), hi[i]) - x[i]
        out = max(out, abs(v))
    return out


@njit(cache=True, nogil=True)
def bfgs_matrix(S, Y, count, head, theta, B):  # pragma: no cover - compiled
    """``B`` (n, n) = the BFGS updates of ``theta I`` by the ``count`` stored pairs, oldest first
    (rows ``head, head + 1, ...`` of ``S`` and ``Y`` (m, n), cyclically)."""
    n = B.shape[0]
    m = S.shape[0]
    for i in range(n):
        for j in range(n):
            B[i, j] = 0.0
        B[i, i] = theta
    Bs = np.empty(n)
    for c in range(count):
        r = (head + c) % m
        sBs = 0.0
        sy = 0.0
        for i in range(n):
            v = 0.0
            for j in range(n):
                v += B[i, j] * S[r, j]
            Bs[i] = v
            sBs += S[r, i] * v
            sy += S[r, i] * Y[r, i]
        for i in range(n):
            for j in range(n):
                B[i, j] += Y[r, i] * Y[r, j] / sy - Bs[i] * Bs[j] / sBs


@njit(cache=True, nogil=True)
def _model_slopes(g, B, z, d):  # pragma: no cover - compiled
    """``(g + B z) . d`` and ``d' B d``: the slope and curvature of the quadratic model along ``d`` at
    the displacement ``z``."""
    n = g.size
    fp = 0.0
    fpp = 0.0
    for i in range(n):
        if d[i] == 0.0:
            continue
        bz = 0.0
        bd = 0.0
        for j in range(n):
            bz += B[i, j] * z[j]
            bd += B[i, j] * d[j]
        fp += (g[i] + bz) * d[i]
        fpp += bd * d[i]
    return fp, fpp


@njit(cache=True, nogil=True)
def cauchy_point(x, g, lo, hi, B, xc, free):  # pragma: no cover - compiled
    """The generalized Cauchy point ``xc`` of the model ``g'z + z'Bz/2`` along ``P(x - t g)``; ``free[i]``:
    variable i is not at a bound at ``xc`` (it moves in the subspace step)."""
    n = x.size
    brk = np.empty(n)
    d = np.empty(n)
    z = np.zeros(n)
    for i in range(n):
        d[i] = -g[i]
        free[i] = True
        if g[i] < 0.0:
            brk[i] = (x[i] - hi[i]) / g[i]
        elif g[i] > 0.0:
            brk[i] = (x[i] - lo[i]) / g[i]
        else:
            brk[i] = np.inf
        if brk[i] <= 0.0:  # at a bound, the gradient pointing out: fixed
            d[i] = 0.0
            free[i] = False
        xc[i] = x[i]
    fp, fpp = _model_slopes(g, B, z, d)
    fpp0 = fpp
    t_old = 0.0
    while fp < 0.0:
        # the next breakpoint
        t_next = np.inf
        b = -1
        for i in range(n):
            if d[i] != 0.0 and brk[i] < t_next:
                t_next = brk[i]
                b = i
        dt_min = -fp / max(fpp, 2.2e-16 * fpp0)
        if b < 0 or dt_min < t_next - t_old:
            for i in range(n):
                z[i] += dt_min * d[i]
            break
        dt = t_next - t_old
        for i in range(n):
            z[i] += dt * d[i]
        # the variable that reached its bound stops there
        z[b] = (hi[b] if d[b] > 0.0 else lo[b]) - x[b]
        d[b] = 0.0
        free[b] = False
        t_old = t_next
        fp, fpp = _model_slopes(g, B, z, d)
    for i in range(n):
        if free[i]:
            xc[i] = min(max(x[i] + z[i], lo[i]), hi[i])
        else:
            xc[i] = x[i] + z[i]


@njit(cache=True, nogil=True)
def subspace_step(x, g, lo, hi, B, xc, free, xbar):  # pragma: no cover - compiled
    """``xbar``: the model's Newton step from ``xc`` in the free variables, projected onto the box when
    that still descends from ``x``, else cut back at the first bound it crosses. Returns False when
    the reduced matrix is not positive definite (``xbar = xc``)."""
    n = x.size
    idx = np.empty(n, dtype=np.int64)
    nf = 0
    for i in range(n):
        xbar[i] = xc[i]
        if free[i]:
            idx[nf] = i
            nf += 1
    if nf == 0:
        return True
    # r = g + B (xc - x) on the free variables; solve B_FF dF = -r by Cholesky
    L = np.zeros((nf, nf))
    r = np.empty(nf)
    for a in range(nf):
        i = idx[a]
        v = g[i]
        for j in range(n):
            v += B[i, j] * (xc[j] - x[j])
        r[a] = -v
        for c in range(nf):
            L[a, c] = B[i, idx[c]]
    for a in range(nf):
        s = L[a, a]
        for c in range(a):
            s -= L[a, c] * L[a, c]
        if not s > 0.0:
            return False
        L[a, a] = math.sqrt(s)
        for b in range(a + 1, nf):
            s = L[b, a]
            for c in range(a):
                s -= L[b, c] * L[a, c]
            L[b, a] = s / L[a, a]
    dF = np.empty(nf)
    for a in range(nf):  # L u = r
        s = r[a]
        for c in range(a):
            s -= L[a, c] * dF[c]
        dF[a] = s / L[a, a]
    for a in range(nf - 1, -1, -1):  # L' d = u
        s = dF[a]
        for c in range(a + 1, nf):
            s -= L[c, a] * dF[c]
        dF[a] = s / L[a, a]
    # the projection, kept if no bound is hit or if it still descends from x
    hit = False
    for a in range(nf):
        i = idx[a]
        v = min(max(xc[i] + dF[a], lo[i]), hi[i])
        hit = hit or v == lo[i] or v == hi[i]
        xbar[i] = v
    if not hit:
        return True
    slope = 0.0
    for i in range(n):
        slope += (xbar[i] - x[i]) * g[i]
    if slope <= 0.0:
        return True
    # else the step from xc cut at the first bound it crosses
    d = np.zeros(n)
    for a in range(nf):
        d[idx[a]] = dF[a]
    alpha, first = _step_to_box(xc, d, lo, hi, 1.0)
    for a in range(nf):
        i = idx[a]
        xbar[i] = xc[i] + alpha * dF[a]
    if first >= 0 and alpha < 1.0:
        xbar[first] = hi[first] if d[first] > 0.0 else lo[first]
    return True


@njit(cache=True, nogil=True)
def _step_to_box(x, d, lo, hi, longest):  # pragma: no cover - compiled
    """The longest step ``s <= longest`` with ``x + s d`` in the box, and the variable whose bound
    stops it (-1: none does)."""
    step = longest
    first = -1
    for i in range(x.size):
        cap = step
        if d[i] < 0.0:
            room = lo[i] - x[i]
            if room >= 0.0:
                cap = 0.0
            elif d[i] * step < room:
                cap = room / d[i]
        elif d[i] > 0.0:
            room = hi[i] - x[i]
            if room <= 0.0:
                cap = 0.0
            elif d[i] * step > room:
                cap = room / d[i]
        if cap < step:
            step = cap
            first = i
    return step, first


@njit(cache=True, nogil=True)
def max_step(x, d, lo, hi, first_iteration):  # pragma: no cover - compiled
    """The longest step ``stp`` with ``x + stp d`` in the box (1 on the first iteration)."""
    if first_iteration:
        return 1.0
    return _step_to_box(x, d, lo, hi, 1e10)[0]


@njit(cache=True, nogil=True)
def _interval_step(stx, fx, dx, sty, fy, dy, stp, fp, dp, brackt, stpmin, stpmax):  # pragma: no cover
    """One safeguarded step of the More-Thuente search: the new trial step from the best step
    ``(stx, fx, dx)``, the other end ``(sty, fy, dy)`` and the trial ``(stp, fp, dp)`` (cubic and
    quadratic interpolation, four cases); returns the updated interval, the new step and whether a
    minimum is bracketed."""
    sgnd = dp * (dx / abs(dx))
    if fp > fx:  # a higher value: the minimum is bracketed
        theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp
        s = max(abs(theta), abs(dx), abs(dp))
        gamma = s * math.sqrt((theta / s) ** 2 - (dx / s) * (dp / s))
        if stp < stx:
            gamma = -gamma
        p = (gamma - dx) + theta
        q = ((gamma - dx) + gamma) + dp
        stpc = stx + (p / q) * (stp - stx)
        stpq = stx + ((dx / ((fx - fp) / (stp - stx) + dx)) / 2.0) * (stp - stx)
        stpf = stpc if abs(stpc - stx) < abs(stpq - stx) else stpc + (stpq - stpc) / 2.0
        brackt = True
    elif sgnd < 0.0:  # slopes of opposite signs: bracketed
        theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp
        s = max(abs(theta), abs(dx), abs(dp))
        gamma = s * math.sqrt((theta / s) ** 2 - (dx / s) * (dp / s))
        if stp > stx:
            gamma = -gamma
        p = (gamma - dp) + theta
        q = ((gamma - dp) + gamma) + dx
        stpc = stp + (p / q) * (stx - stp)
        stpq = stp + (dp / (dp - dx)) * (stx - stp)
        stpf = stpc if abs(stpc - stp) > abs(stpq - stp) else stpq
        brackt = True
    elif abs(dp) < abs(dx):  # the slope shrinks in magnitude
        theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp
        s = max(abs(theta), abs(dx), abs(dp))
        gamma = s * math.sqrt(max(0.0, (theta / s) ** 2 - (dx / s) * (dp / s)))
        if stp > stx:
            gamma = -gamma
        p = (gamma - dp) + theta
        q = (gamma + (dx - dp)) + gamma
        r = p / q
        if r < 0.0 and gamma != 0.0:
            stpc = stp + r * (stx - stp)
        elif stp > stx:
            stpc = stpmax
        else:
            stpc = stpmin
        stpq = stp + (dp / (dp - dx)) * (stx - stp)
        if brackt:
            stpf = stpc if abs(stpc - stp) < abs(stpq - stp) else stpq
            if stp > stx:
                stpf = min(stp + 0.66 * (sty - stp), stpf)
            else:
                stpf = max(stp + 0.66 * (sty - stp), stpf)
        else:
            stpf = stpc if abs(stpc - stp) > abs(stpq - stp) else stpq
            stpf = max(stpmin, min(stpmax, stpf))
    else:  # the slope does not shrink
        if brackt:
            theta = 3.0 * (fp - fy) / (sty - stp) + dy + dp
            s = max(abs(theta), abs(dy), abs(dp))
            gamma = s * math.sqrt((theta / s) ** 2 - (dy / s) * (dp / s))
            if stp > sty:
                gamma = -gamma
            p = (gamma - dp) + theta
            q = ((gamma - dp) + gamma) + dy
            stpf = stp + (p / q) * (sty - stp)
        elif stp > stx:
            stpf = stpmax
        else:
            stpf = stpmin
    if fp > fx:
        sty, fy, dy = stp, fp, dp
    else:
        if sgnd < 0.0:
            sty, fy, dy = stx, fx, dx
        stx, fx, dx = stp, fp, dp
    return stx, fx, dx, sty, fy, dy, stpf, brackt


@njit(cache=True, nogil=True)
def line_search(f, g, stp, task, stpmax, st):  # pragma: no cover - compiled
    """The More-Thuente line search by reverse communication: called with ``task = LS_START`` and the
    value ``f`` and slope ``g`` at step 0, then with ``(f, g)`` at each step it asks for. Returns
    ``(task, stp)``: ``LS_EVALUATE`` (evaluate at ``stp``), ``LS_CONVERGED`` (strong Wolfe conditions
    hold at ``stp``) or ``LS_WARNING`` (no progress possible; ``stp`` is the last step tried).
    ``st`` (16,) keeps the search's state between calls."""
    if task == LS_START:
        st[0] = 0.0  # brackt
        st[1] = 1.0  # stage
        st[2] = f  # finit
        st[3] = g  # ginit
        st[4] = LS_FTOL * g  # gtest
        st[5] = stpmax  # width
        st[6] = 2.0 * stpmax  # width1
        st[7], st[8], st[9] = 0.0, f, g  # stx, fx, gx
        st[10], st[11], st[12] = 0.0, f, g  # sty, fy, gy
        st[13] = 0.0  # stmin
        st[14] = stp + XTRAP_UPPER * stp  # stmax
        return LS_EVALUATE, stp
    brackt = st[0] != 0.0
    finit, ginit, gtest = st[2], st[3], st[4]
    stx, fx, gx, sty, fy, gy = st[7], st[8], st[9], st[10], st[11], st[12]
    stmin, stmax = st[13], st[14]
    if not math.isfinite(f):  # the objective broke down: half-way back towards the best step
        st[0] = 1.0
        st[10], st[11], st[12] = stp, np.inf, 0.0
        new = stx + 0.5 * (stp - stx)
        if new == stx or new == stp:
            return LS_WARNING, stx
        st[13], st[14] = min(stx, stp), max(stx, stp)
        return LS_EVALUATE, new
    ftest = finit + stp * gtest
    if st[1] == 1.0 and f <= ftest and g >= 0.0:
        st[1] = 2.0
    if brackt and (stp <= stmin or stp >= stmax):
        return LS_WARNING, stp  # rounding errors prevent progress
    if brackt and stmax - stmin <= LS_XTOL * stmax:
        return LS_WARNING, stp  # the interval is small enough
    if stp == stpmax and f <= ftest and g <= gtest:
        return LS_WARNING, stp  # the step is at its largest
    if stp == 0.0 and (f > ftest or g >= gtest):
        return LS_WARNING, stp  # the step is at its smallest
    if f <= ftest and abs(g) <= LS_GTOL * (-ginit):
        return LS_CONVERGED, stp
    if st[1] == 1.0 and f <= fx and f > ftest:
        # stage 1: the search works on the modified function f(stp) - stp gtest
        stx, fxm, gxm, sty, fym, gym, new, brackt = _interval_step(
            stx,
            fx - stx * gtest,
            gx - gtest,
            sty,
            fy - sty * gtest,
            gy - gtest,
            stp,
            f - stp * gtest,
            g - gtest,
            brackt,
            stmin,
            stmax,
        )
        fx, gx = fxm + stx * gtest, gxm + gtest
        fy, gy = fym + sty * gtest, gym + gtest
    else:
        stx, fx, gx, sty, fy, gy, new, brackt = _interval_step(
            stx, fx, gx, sty, fy, gy, stp, f, g, brackt, stmin, stmax
        )
    if not math.isfinite(new):  # an interpolation through a broken-down end: bisect
        new = stx + 0.5 * (sty - stx)
    width, width1 = st[5], st[6]
    if brackt:
        if abs(sty - stx) >= 0.66 * width1:
            new = stx + 0.5 * (sty - stx)
        width1 = width
        width = abs(sty - stx)
        stmin, stmax = min(stx, sty), max(stx, sty)
    else:
        stmin = new + XTRAP_LOWER * (new - stx)
        stmax = new + XTRAP_UPPER * (new - stx)
    new = min(max(new, 0.0), stpmax)
    if brackt and (new <= stmin or new >= stmax or stmax - stmin <= LS_XTOL * stmax):
        new = stx
    st[0] = 1.0 if brackt else 0.0
    st[5], st[6] = width, width1
    st[7], st[8], st[9], st[10], st[11], st[12] = stx, fx, gx, sty, fy, gy
    st[13], st[14] = stmin, stmax
    return LS_EVALUATE, new

"""Non-negative least squares (Lawson and Hanson's active-set algorithm) for small problems.

The algorithm of Lawson and Hanson, *Solving Least Squares Problems* (SIAM 1995), ch. 23,
step for step as ``scipy.optimize.nnls`` of SciPy 1.16 and 1.17 runs it (their C version): the
column entering the passive set is the one of the largest dual coefficient whose Householder
pivot (LAPACK's ``dlarfgp``, non-negative) is not negligible and whose new coefficient comes out
positive, the other columns and the right-hand side are reflected by ``dlarf``, a column leaving
the set is taken out by Givens rotations (``dlartgp``), and ``maxiter`` counts the inner
iterations. A column tried and rejected keeps its reflected tail, as there (a later SciPy
restores it: its results differ then, on degenerate problems). It calls the BLAS and LAPACK
routines SciPy's version calls, from SciPy's own library (``scipy.linalg.cython_blas``,
``scipy.linalg.cython_lapack``: their addresses are given to the JIT linker by name when this
module is imported, so the compiled kernels stay cacheable), and so gives SciPy's numbers to the
last bit: ALS's profile search, which compares log-likelihoods differing in their last digits,
then takes the same steps with either.

Compiled with numba (see :mod:`kalcoint._numba_cache`); imported by the modules of the
pipeline through :mod:`kalcoint._kernels`."""

from __future__ import annotations

import math

import numpy as np
from llvmlite import binding as _llvm
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import get_cython_function_address, intrinsic

from .._numba_cache import njit

NNLS_OK, NNLS_MAXITER, NNLS_NONFINITE = 0, 1, 2
"""Status codes of :func:`nnls`: solved, ``maxiter`` inner iterations reached, non-finite input."""
_ROUTINES = {
    "scipy.linalg.cython_blas": ("ddot", "dnrm2"),
    "scipy.linalg.cython_lapack": ("dlarfgp", "dlarf", "dlartgp"),
}
"""The BLAS and LAPACK routines the kernel calls, linked as ``kalcoint_<name>``."""


def _link_routines() -> None:
    """Give the JIT linker the addresses of SciPy's routines under the names the kernels call."""
    for module, names in _ROUTINES.items():
        for name in names:
            _llvm.add_symbol(f"kalcoint_{name}", get_cython_function_address(module, name))


_link_routines()

_I8P = ir.IntType(8).as_pointer()
_I32P = ir.IntType(32).as_pointer()
_F64 = ir.DoubleType()
_F64P = _F64.as_pointer()


def _routine(builder, name, ret, args):  # type: ignore[no-untyped-def]
    """The declaration of the linked routine ``kalcoint_<name>`` (all arguments by pointer)."""
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(ret, args), f"kalcoint_{name}")


def _at(context, builder, aryty, ary, offset):  # type: ignore[no-untyped-def]
    """Pointer to element ``offset`` of the flat data of an array."""
    return builder.gep(context.make_array(aryty)(context, builder, ary).data, [offset])


def _int(builder, value):  # type: ignore[no-untyped-def]
    """A Fortran integer argument: a 32-bit slot holding ``value``."""
    return cgutils.alloca_once_value(builder, builder.trunc(value, ir.IntType(32)))


def _double(builder, value):  # type: ignore[no-untyped-def]
    """A Fortran double argument: a slot holding ``value``."""
    return cgutils.alloca_once_value(builder, value)


@intrinsic
def _ddot(typingctx, n, x, xo, y, yo):  # type: ignore[no-untyped-def]
    """BLAS ``ddot`` of ``n`` entries of flat ``x`` from ``xo`` and ``y`` from ``yo`` (unit strides)."""

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        n, x, xo, y, yo = args
        one = _int(builder, ir.Constant(ir.IntType(64), 1))
        fn = _routine(builder, "ddot", _F64, [_I32P, _F64P, _I32P, _F64P, _I32P])
        px, py = _at(context, builder, sig.args[1], x, xo), _at(context, builder, sig.args[3], y, yo)
        return builder.call(fn, [_int(builder, n), px, one, py, one])

    return types.float64(types.intp, x, types.intp, y, types.intp), codegen


@intrinsic
def _dnrm2(typingctx, n, x, xo):  # type: ignore[no-untyped-def]
    """BLAS ``dnrm2`` of ``n`` entries of flat ``x`` from ``xo``."""

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        n, x, xo = args
        one = _int(builder, ir.Constant(ir.IntType(64), 1))
        fn = _routine(builder, "dnrm2", _F64, [_I32P, _F64P, _I32P])
        return builder.call(fn, [_int(builder, n), _at(context, builder, sig.args[1], x, xo), one])

    return types.float64(types.intp, x, types.intp), codegen


@intrinsic
def _dlarfgp(typingctx, n, alpha, x, xo):  # type: ignore[no-untyped-def]
    """LAPACK ``dlarfgp`` of the vector ``(alpha, x[xo:xo + n - 1])``: x overwritten with the
    reflector's tail; returns ``(tau, beta)``."""

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        n, alpha, x, xo = args
        one = _int(builder, ir.Constant(ir.IntType(64), 1))
        tau = cgutils.alloca_once_value(builder, ir.Constant(_F64, 0.0))
        pa = _double(builder, alpha)
        fn = _routine(builder, "dlarfgp", ir.VoidType(), [_I32P, _F64P, _F64P, _I32P, _F64P])
        builder.call(fn, [_int(builder, n), pa, _at(context, builder, sig.args[2], x, xo), one, tau])
        return context.make_tuple(builder, sig.return_type, [builder.load(tau), builder.load(pa)])

    return types.UniTuple(types.float64, 2)(types.intp, types.float64, x, types.intp), codegen


@intrinsic
def _dlarf_left(typingctx, m, v, vo, tau, c, co):  # type: ignore[no-untyped-def]
    """LAPACK ``dlarf("L")`` on one column: ``c[co:co + m] -= tau u (u' c)`` with ``u = v[vo:vo + m]``."""

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        m, v, vo, tau, c, co = args
        one = _int(builder, ir.Constant(ir.IntType(64), 1))
        side = cgutils.alloca_once_value(builder, ir.Constant(ir.IntType(8), ord("L")))
        work = cgutils.alloca_once_value(builder, ir.Constant(_F64, 0.0))
        fn = _routine(builder, "dlarf", ir.VoidType(), [_I8P, _I32P, _I32P, _F64P, _I32P, _F64P, _F64P, _I32P, _F64P])
        pv, pc = _at(context, builder, sig.args[1], v, vo), _at(context, builder, sig.args[4], c, co)
        rows = _int(builder, m)
        builder.call(fn, [side, rows, one, pv, one, _double(builder, tau), pc, rows, work])
        return context.get_dummy_value()

    return types.none(types.intp, v, types.intp, types.float64, c, types.intp), codegen


@intrinsic
def _dlartgp(typingctx, f, g):  # type: ignore[no-untyped-def]
    """LAPACK ``dlartgp``: the rotation ``(cs, sn, r)`` with ``cs f + sn g = r >= 0``."""

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        f, g = args
        out = [cgutils.alloca_once_value(builder, ir.Constant(_F64, 0.0)) for _ in range(3)]
        fn = _routine(builder, "dlartgp", ir.VoidType(), [_F64P] * 5)
        builder.call(fn, [_double(builder, f), _double(builder, g), *out])
        return context.make_tuple(builder, sig.return_type, [builder.load(p) for p in out])

    return types.UniTuple(types.float64, 3)(types.float64, types.float64), codegen


@njit(cache=True, nogil=True, inline="always")
def _back_substitute(a, b, idx, nz, m, z):  # pragma: no cover - compiled
    """Solve the triangle of the passive set: ``z[:nz]`` from ``b[:nz]`` and the columns ``idx[:nz]``
    of ``a`` (column j at ``a[j m:(j + 1) m]``)."""
    for i in range(nz):
        z[i] = b[i]
    col = 0
    for step in range(nz):
        ip = nz - 1 - step
        if step != 0:
            for i in range(ip + 1):
                z[i] = z[i] - a[i + col * m] * z[ip + 1]
        col = idx[ip]
        z[ip] = z[ip] / a[ip + col * m]


@njit(cache=True, nogil=True, inline="always")
def _drop(a, b, x, idx, nz, m, out):  # pragma: no cover - compiled
    """Move the passive coefficient at position ``out`` (then every other one not positive) to the
    zero set, restoring the triangle by Givens rotations. Returns the new size of the passive set."""
    n = idx.size
    jj = out
    i = idx[jj]
    while True:
        x[i] = 0.0
        if jj != nz - 1:
            for j in range(jj + 1, nz):
                ii = idx[j]
                idx[j - 1] = ii
                cc, ss, r = _dlartgp(a[j - 1 + ii * m], a[j + ii * m])
                a[j - 1 + ii * m] = r
                a[j + ii * m] = 0.0
                for col in range(n):
                    if col != ii:
                        tmp = a[j - 1 + col * m]
                        a[j - 1 + col * m] = cc * tmp + ss * a[j + col * m]
                        a[j + col * m] = -ss * tmp + cc * a[j + col * m]
                tmp = b[j - 1]
                b[j - 1] = cc * tmp + ss * b[j]
                b[j] = -ss * tmp + cc * b[j]
        nz -= 1
        idx[nz] = i
        jj = -1
        for t in range(nz):
            if x[idx[t]] <= 0.0:
                jj = t
                break
        if jj < 0:  # all positive (or none left)
            return nz
        i = idx[jj]


@njit(cache=True, nogil=True)
def nnls(A, b, maxiter):  # pragma: no cover - compiled
    """``argmin |A x - b|`` over ``x >= 0`` (see the module doc).

    Parameters
    ----------
    A : ndarray, shape (m, n)
    b : ndarray, shape (m,)
    maxiter : int
        Most inner iterations (``scipy.optimize.nnls``'s ``maxiter``).

    Returns
    -------
    x : ndarray, shape (n,)
    rnorm : float
        ``|A x - b|``.
    status : int
        ``NNLS_OK``, ``NNLS_MAXITER`` (x as it stood; SciPy raises) or ``NNLS_NONFINITE`` (x zero;
        SciPy raises).
    """
    m, n = A.shape
    x = np.zeros(n)
    a = np.empty(m * n)  # column-major, as the routines take it
    rhs = np.empty(max(m, 1))
    for i in range(m):
        rhs[i] = b[i]
        if not math.isfinite(b[i]):
            return x, math.nan, NNLS_NONFINITE
        for j in range(n):
            a[i + j * m] = A[i, j]
            if not math.isfinite(A[i, j]):
                return x, math.nan, NNLS_NONFINITE
    if m == 0 or n == 0:
        return x, 0.0, NNLS_OK
    w = np.zeros(n)  # the dual vector
    z = np.zeros(m)
    idx = np.arange(n)  # idx[:nz] the passive set (in the order of the triangle), idx[nz:] the zero set
    nz = 0
    iteration = 0
    status = NNLS_OK
    while nz < min(m, n):
        for t in range(nz, n):
            j = idx[t]
            w[j] = _ddot(m - nz, a, nz + j * m, rhs, nz)
        # the column of the largest dual coefficient that is independent of the passive set and
        # whose new coefficient comes out positive; none left: the KKT conditions hold
        chosen = -1
        tau = pivot = 0.0
        while True:
            wmax = 0.0
            tmax = -1
            for t in range(nz, n):
                if w[idx[t]] > wmax:
                    wmax = w[idx[t]]
                    tmax = t
            if tmax < 0:
                break
            j = idx[tmax]
            tau, pivot = _dlarfgp(m - nz, a[nz + j * m], a, nz + 1 + j * m)  # the column's tail changes
            unorm = _dnrm2(nz, a, j * m) if nz > 0 else 0.0
            spacing = np.nextafter(unorm, 2.0 * unorm) - unorm if unorm > 0.0 else 0.0
            if abs(pivot) > 100.0 * spacing:
                for i in range(m):
                    z[i] = rhs[i]
                pivot2 = a[nz + j * m]
                a[nz + j * m] = 1.0
                _dlarf_left(m - nz, a, nz + j * m, tau, z, nz)
                if z[nz] / pivot > 0.0:
                    chosen = tmax
                    break
                a[nz + j * m] = pivot2
            w[j] = 0.0
        if chosen < 0:
            break
        j = idx[chosen]
        for i in range(m):
            rhs[i] = z[i]
        idx[chosen] = idx[nz]
        idx[nz] = j
        nz += 1
        for t in range(nz, n):  # the reflection of the columns of the zero set
            _dlarf_left(m - nz + 1, a, nz - 1 + j * m, tau, a, nz - 1 + idx[t] * m)
        a[nz - 1 + j * m] = pivot
        for i in range(nz, m):
            a[i + j * m] = 0.0
        w[j] = 0.0
        _back_substitute(a, rhs, idx, nz, m, z)
        # inner loop: step towards z until every passive coefficient is positive
        while True:
            iteration += 1
            if iteration >= maxiter:
                status = NNLS_MAXITER
                break
            alpha = 2.0
            out = -1
            for ip in range(nz):
                if z[ip] <= 0.0:
                    k = idx[ip]
                    T = -x[k] / (z[ip] - x[k])
                    if alpha > T:
                        alpha = T
                        out = ip
            if alpha == 2.0:
                break
            for ip in range(nz):
                k = idx[ip]
                x[k] = x[k] + alpha * (z[ip] - x[k])
            nz = _drop(a, rhs, x, idx, nz, m, out)
            for i in range(m):
                z[i] = rhs[i]
            _back_substitute(a, rhs, idx, nz, m, z)
        if status != NNLS_OK:
            break
        for t in range(nz):
            x[idx[t]] = z[t]
    rnorm = _dnrm2(m - nz, rhs, nz) if nz < m else 0.0
    return x, rnorm, status

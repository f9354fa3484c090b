"""Plain NumPy reference of docs/method.md §3-5 and §10: the oracle for the compiled kernels.

Written literally from docs/method.md (in this repository), in matrix form, one
observation at a time, with no attempt at speed:

* §3: ``P_{t|t} = P_pred - K x_t P_pred`` with ``K = P_pred x_t' / Q_t``;
* §4 and §5: every k x k matrix (``A``, ``Gamma``, ``Vw``, ``P0``) is first
  computed in full, then diagonalised by setting its off-diagonal entries to zero;
* §10: the textbook Rauch-Tung-Striebel smoother (with the inverse of ``P_{t+1|t}``)
  and the re-estimates with the posterior covariance terms, as expectations of the
  full matrices of §5.

Also used by ``benchmarks/bench_tune.py`` as "the plain NumPy per-step loop".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd


def offdiag_zero(M: np.ndarray) -> np.ndarray:
    """docs/method.md §1: compute the full matrix, then set every off-diagonal entry to zero."""
    return np.diag(np.diag(M))


def observations(prices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """y_t = p_{1,t};  x_t = (1, p_{2,t}, ..., p_{k,t})  (docs/method.md §1)."""
    prices = np.asarray(prices, dtype=np.float64)
    y = prices[:, 0].copy()
    X = prices.copy()
    X[:, 0] = 1.0
    return y, X


@dataclass
class RefFilter:
    b_pred: np.ndarray  # (n, k)
    P_pred: np.ndarray  # (n, k, k)
    b_filt: np.ndarray
    P_filt: np.ndarray
    e: np.ndarray  # (n,)
    Q: np.ndarray  # (n,)
    loglik: float


def ref_filter(y, X, A, Vw, Ve, b0, P0, *, predict_first: bool = False) -> RefFilter:
    """docs/method.md §3, literally. ``A, Vw, P0`` are (k, k) matrices.

    ``predict_first``: ``(b0, P0)`` is the posterior of the day before t = 1, so a
    prediction step is also taken at t = 1 (continuing a filter).
    """
    n, k = X.shape
    out = RefFilter(
        np.empty((n, k)), np.empty((n, k, k)), np.empty((n, k)), np.empty((n, k, k)), np.empty(n), np.empty(n), 0.0
    )
    b_post, P_post = np.asarray(b0, float), np.asarray(P0, float)
    for t in range(n):
        if t > 0 or predict_first:
            b_pred = A @ b_post
            P_pred = A @ P_post @ A.T + Vw
        else:
            b_pred = b_post
            P_pred = P_post
        x = X[t].reshape(1, k)  # row vector
        e = y[t] - (x @ b_pred).item()
        Q = (x @ P_pred @ x.T).item() + Ve
        K = P_pred @ x.T / Q  # (k, 1)
        b_post = b_pred + K[:, 0] * e
        P_post = P_pred - K @ x @ P_pred
        out.b_pred[t], out.P_pred[t], out.b_filt[t], out.P_filt[t] = b_pred, P_pred, b_post, P_post
        out.e[t], out.Q[t] = e, Q
    out.loglik = float(-0.5 * np.sum(np.log(2 * math.pi * out.Q) + out.e**2 / out.Q))
    return out


@dataclass
class RefModel:
    """The quantities one pass runs with, as full (diagonal) matrices."""

    a11: float
    Ve: float
    Vw: np.ndarray  # (k, k)
    b0: np.ndarray  # (k,)
    P0: np.ndarray  # (k, k)

    @property
    def A(self) -> np.ndarray:
        return transition(self.a11, self.b0.size)


def transition(a11: float, k: int) -> np.ndarray:
    A = np.eye(k)
    A[0, 0] = a11
    return A


def ref_johansen_path(prices: np.ndarray, w: np.ndarray) -> np.ndarray:
    """bJ_t = (y_port,t / w_1, -w_2/w_1, ..., -w_k/w_1)  (docs/method.md §2)."""
    n, k = prices.shape
    y_port = prices @ w
    bJ = np.empty((n, k))
    bJ[:, 0] = y_port / w[0]
    for j in range(1, k):
        bJ[:, j] = -w[j] / w[0]
    return bJ


def ref_first_pass(prices: np.ndarray, w: np.ndarray, fixed_alpha11: float | None = None) -> RefModel:
    """docs/method.md §4, steps 1-5."""
    n, k = prices.shape
    bJ = ref_johansen_path(prices, w)
    b1 = bJ[:, 0]
    a11 = float(np.sum(b1[1:] * b1[:-1]) / np.sum(b1[:-1] ** 2)) if fixed_alpha11 is None else fixed_alpha11
    Ve = float(np.mean((b1 - b1.mean()) ** 2))  # population variance
    A = transition(a11, k)
    Gamma = offdiag_zero(sum(np.outer(bJ[t], bJ[t]) for t in range(n)) / n)
    Vw = offdiag_zero(Gamma - A @ Gamma @ A.T)
    b0 = np.concatenate([[0.0], -w[1:] / w[0]])
    _, X = observations(prices)
    M = sum(np.outer(X[t] @ A, X[t] @ A) for t in range(n)) / n
    P0 = offdiag_zero(Ve * np.linalg.inv(M))
    return RefModel(a11, Ve, Vw, b0, P0)


@dataclass
class RefMoments:
    """The states a later pass is re-estimated from: means ``b`` (n, k), covariances ``P`` (n, k, k)
    and the cross-covariances ``C[t] = Cov(b_t, b_{t-1})`` (n, k, k; ``C[0]`` unused)."""

    b: np.ndarray
    P: np.ndarray
    C: np.ndarray


def ref_rts(f: RefFilter, A: np.ndarray) -> RefMoments:
    """Rauch-Tung-Striebel, textbook form: ``J_t = P_{t|t} A' P_{t+1|t}^-1``,
    ``b_{t|n} = b_{t|t} + J_t (b_{t+1|n} - b_{t+1|t})``, ``P_{t|n} = P_{t|t} + J_t (P_{t+1|n} - P_{t+1|t}) J_t'``,
    ``Cov(b_{t+1}, b_t | all) = P_{t+1|n} J_t'``."""
    n, k = f.b_filt.shape
    b, P, C = f.b_filt.copy(), f.P_filt.copy(), np.zeros((n, k, k))
    for t in range(n - 2, -1, -1):
        J = f.P_filt[t] @ A.T @ np.linalg.inv(f.P_pred[t + 1])
        b[t] = f.b_filt[t] + J @ (b[t + 1] - f.b_pred[t + 1])
        P[t] = f.P_filt[t] + J @ (P[t + 1] - f.P_pred[t + 1]) @ J.T
        C[t + 1] = P[t + 1] @ J.T
    return RefMoments(b, P, C)


def ref_moments(f: RefFilter, A: np.ndarray, moments: str = "filtered") -> RefMoments:
    """docs/method.md §10: filtered moments ``(b_{t|t}, P_{t|t}, Cov(b_t, b_{t-1}) = A P_{t-1|t-1})``
    or the smoothed ones."""
    if moments == "smoothed":
        return ref_rts(f, A)
    C = np.zeros_like(f.P_filt)
    C[1:] = np.einsum("ij,tjk->tik", A, f.P_filt[:-1])
    return RefMoments(f.b_filt, f.P_filt, C)


def ref_next_pass(
    prices,
    w,
    b,
    innovations,
    *,
    residual="posterior",
    bm="johansen",
    fixed_alpha11: float | None = None,
    P=None,
    C=None,
) -> RefModel:
    """docs/method.md §5, steps 1-6, from the previous pass's states ``b`` (n, k); with ``P`` and ``C``
    (the covariances of :class:`RefMoments`) every product of states is replaced by its expectation
    (§10), ``E[b_t b_s'] = b_t b_s' + Cov(b_t, b_s)``."""
    n, k = prices.shape
    y, X = observations(prices)
    terms = P is not None
    zero = np.zeros((n, k, k))
    P = P if terms else zero
    C = C if terms else zero
    b1 = b[:, 0]
    if fixed_alpha11 is None:
        a11 = float(np.sum(b1[1:] * b1[:-1] + C[1:, 0, 0]) / np.sum(b1[:-1] ** 2 + P[:-1, 0, 0]))
    else:
        a11 = fixed_alpha11
    if residual == "posterior":
        eps = y - np.array([X[t] @ b[t] for t in range(n)])
        Ve = float(np.sum(eps**2 + np.array([X[t] @ P[t] @ X[t] for t in range(n)])) / n)
    else:
        Ve = float(np.sum(innovations**2) / n)
    Gamma = offdiag_zero(sum(np.outer(b[t], b[t]) + P[t] for t in range(n)) / n)
    A = transition(a11, k)
    # E[(b_{t+1} - A b_t)(b_{t+1} - A b_t)'] = d d' + P_{t+1} - A C_{t+1}' - C_{t+1} A' + A P_t A'
    Vw = offdiag_zero(
        sum(
            np.outer(b[t + 1] - A @ b[t], b[t + 1] - A @ b[t])
            + P[t + 1]
            - A @ C[t + 1].T
            - C[t + 1] @ A.T
            + A @ P[t] @ A.T
            for t in range(n - 1)
        )
        / (n - 1)
    )
    if terms:
        Vw = np.maximum(Vw, 0.0)  # rounding: an expected square (docs/method.md §10)
    Vw[0, 0] = (1 - a11**2) * Gamma[0, 0]
    b0 = np.concatenate([[0.0], -w[1:] / w[0]])
    if bm == "johansen":
        centre = np.concatenate([[np.mean(prices @ w / w[0])], -w[1:] / w[0]])
    else:
        centre = b.mean(axis=0)
    P0 = offdiag_zero(sum(np.outer(b[t] - centre, b[t] - centre) + P[t] for t in range(n)) / (n - 1))
    return RefModel(a11, Ve, Vw, b0, P0)


def _rel_change(new: float, old: float) -> float:
    if new == old:
        return 0.0
    return abs(new - old) / abs(old) if old != 0 else math.inf


@dataclass
class RefRun:
    models: list[RefModel]  # models[m] = quantities pass m+1 ran with
    filters: list[RefFilter]  # filters[m] = that pass's filter output
    passes: int
    converged: bool


def ref_seed(
    prices,
    w,
    iterations: int,
    tol: float | None = None,
    *,
    residual="posterior",
    bm="johansen",
    fixed_alpha11: float | None = None,
    moments: str = "filtered",
    covariance_terms: bool = False,
) -> RefRun:
    """Up to ``iterations`` passes; with ``tol``, stop after the pass whose re-estimated
    quantities (a11, Ve, diag Vw, diag P0) all changed by a relative amount below ``tol``.
    ``moments`` and ``covariance_terms``: the corrected re-estimation of docs/method.md §10."""
    prices = np.asarray(prices, dtype=np.float64)
    y, X = observations(prices)
    model = ref_first_pass(prices, w, fixed_alpha11)
    models, filters = [], []
    for m in range(iterations):
        f = ref_filter(y, X, model.A, model.Vw, model.Ve, model.b0, model.P0)
        models.append(model)
        filters.append(f)
        if m == iterations - 1:
            break
        mom = ref_moments(f, model.A, moments)
        cov = {"P": mom.P, "C": mom.C} if covariance_terms else {}
        new = ref_next_pass(prices, w, mom.b, f.e, residual=residual, bm=bm, fixed_alpha11=fixed_alpha11, **cov)
        if tol is not None:
            old_q = np.concatenate([[model.a11, model.Ve], np.diag(model.Vw), np.diag(model.P0)])
            new_q = np.concatenate([[new.a11, new.Ve], np.diag(new.Vw), np.diag(new.P0)])
            if max(_rel_change(a, b) for a, b in zip(new_q, old_q)) < tol:
                return RefRun(models, filters, m + 1, True)
        model = new
    return RefRun(models, filters, len(models), False)


def chan_matlab_units(e: np.ndarray, sq: np.ndarray) -> np.ndarray:
    """Chan's Example 3.3 code, literally: NaN arrays, entries then exits, forward fill, long + short."""
    n = e.size
    long_ = np.full(n, np.nan)
    short = np.full(n, np.nan)
    long_[0] = 0.0
    long_[e < -sq] = 1.0
    long_[e > -sq] = 0.0
    short[0] = 0.0
    short[e > sq] = -1.0
    short[e < sq] = 0.0
    return pd.Series(long_).ffill().to_numpy() + pd.Series(short).ffill().to_numpy()

"""Johansen test, augmented Dickey-Fuller test and half-life of mean reversion.

Both tests run in compiled code (numba) and reproduce statsmodels (the tests keep it as the
reference): Johansen equals ``statsmodels.tsa.vector_ar.vecm.coint_johansen`` and the ADF
regression equals ``statsmodels.tsa.stattools.adfuller``. Critical values and MacKinnon's
p-values come from tables in the package (:mod:`kalcoint._tables`), so computing them
imports neither statsmodels nor ``scipy.stats``; statsmodels is imported only for what it
alone does (``adf(autolag="t-stat")``, ``engine="statsmodels"`` and near-ties of the lag
criterion).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import _tables
from ._numba_cache import njit
from ._summary import Summary, Table
from .errors import ComputationError, KalcointError

CRIT_LEVELS = (0.90, 0.95, 0.99)


@dataclass(frozen=True)
class JohansenResult:
    """Johansen trace and maximum-eigenvalue tests on k price series.

    Attributes
    ----------
    assets : tickers, first = dependent asset.
    weights : (k,) eigenvector of the largest eigenvalue; the static portfolio is
        ``prices @ weights`` (in price units of the assets).
    eigenvalues : (k,) in decreasing order.
    trace_stat, max_eig_stat : (k,) statistics for H0: rank <= r, r = 0..k-1.
    trace_crit, max_eig_crit : (k, 3) critical values at 90/95/99%.
    rank_95 : the rank chosen by the trace test at 95%.

    Examples
    --------
    >>> import kalcoint as kc
    >>> jo = kc.johansen(kc.demo_prices())
    >>> jo.nobs, list(jo.hedge_ratios.index)
    (1500, ['ETFB', 'ETFC'])
    >>> print(jo.summary())  # doctest: +SKIP
    """

    assets: list[str]
    weights: np.ndarray
    eigenvalues: np.ndarray
    trace_stat: np.ndarray
    max_eig_stat: np.ndarray
    trace_crit: np.ndarray
    max_eig_crit: np.ndarray
    rank_95: int
    det_order: int = 0
    k_ar_diff: int = 1
    nobs: int = 0
    eigenvectors: np.ndarray | None = field(default=None, repr=False)

    @property
    def hedge_ratios(self) -> pd.Series:
        """(k-1,) static hedge ratios ``-w_j / w_1``, j = 2..k, indexed by the hedge tickers."""
        return pd.Series(
            -self.weights[1:] / self.weights[0], index=[str(a) for a in self.assets[1:]], name="hedge_ratios"
        )

    def portfolio(self, prices: pd.DataFrame | np.ndarray) -> np.ndarray:
        """(n,) static portfolio ``y_port = prices @ weights``."""
        return np.asarray(prices, dtype=np.float64) @ self.weights

    def to_dict(self) -> dict:
        return {
            "assets": list(self.assets),
            "weights": self.weights.tolist(),
            "trace_stat": self.trace_stat.tolist(),
            "max_eig_stat": self.max_eig_stat.tolist(),
            "trace_crit": self.trace_crit.tolist(),
            "max_eig_crit": self.max_eig_crit.tolist(),
            "rank_95": int(self.rank_95),
        }

    def summary(self) -> Summary:
        """The trace and maximum-eigenvalue tests with their 90/95/99% critical values, the rank
        at 95% and the weights; ``print`` it, or show it in a notebook."""
        rows = []
        for r in range(len(self.assets)):
            tc, mc = self.trace_crit[r], self.max_eig_crit[r]
            rows.append(
                (
                    f"r <= {r}",
                    f"{self.trace_stat[r]:.4f}",
                    *(f"{c:.4f}" for c in tc),
                    f"{self.max_eig_stat[r]:.4f}",
                    *(f"{c:.4f}" for c in mc),
                )
            )
        header = ("H0", "trace", "90%", "95%", "99%", "max-eig", "90%", "95%", "99%")
        weights = tuple(
            (str(a), f"{w:.6g}", "-" if j == 0 else f"{self.hedge_ratios.iloc[j - 1]:.6g}")
            for j, (a, w) in enumerate(zip(self.assets, self.weights))
        )
        return Summary(
            f"Johansen test: {', '.join(map(str, self.assets))} (det_order={self.det_order}, "
            f"k_ar_diff={self.k_ar_diff}, nobs={self.nobs})",
            (Table(header, tuple(rows)), Table(("asset", "weight", "hedge ratio"), weights)),
            (f"rank at 95% (trace): {self.rank_95}",),
        )


def johansen(
    prices: pd.DataFrame | np.ndarray,
    det_order: int = 0,
    k_ar_diff: int = 1,
    assets: list[str] | None = None,
) -> JohansenResult:
    """Johansen test on an (n, k) price panel (columns = assets, first = dependent).

    ``det_order``: -1 none, 0 constant (default), 1 linear trend; ``k_ar_diff``:
    number of lagged differences (default 1), as in statsmodels.

    Examples
    --------
    >>> import kalcoint as kc
    >>> jo = johansen(kc.demo_prices())
    >>> jo.rank_95, len(jo.weights)
    (1, 3)
    """
    if isinstance(prices, pd.DataFrame):
        assets = list(prices.columns) if assets is None else assets
    values = np.asarray(prices, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] < 2:
        raise KalcointError("Johansen needs at least 2 price series (an n x k panel with k >= 2)")
    k = values.shape[1]
    assets = list(assets) if assets is not None else [f"x{i + 1}" for i in range(k)]
    if det_order not in (-1, 0, 1):
        raise KalcointError(f"det_order={det_order} is not one of -1, 0, 1")
    if k_ar_diff < 0:
        raise KalcointError(f"k_ar_diff={k_ar_diff} must be >= 0")
    if k > 12:
        raise KalcointError(f"Johansen critical values exist for at most 12 series, got {k}")
    _check_panel(values, assets, k_ar_diff)
    eig, evec, trace_stat, max_eig_stat, status = _johansen_kernel(
        np.ascontiguousarray(values), det_order, k_ar_diff, _EIG_TOL
    )
    if status != _OK:
        raise ComputationError("Johansen test failed: singular moment matrix; are two series collinear?")
    weights = evec[:, 0].copy()
    if not np.all(np.isfinite(weights)) or weights[0] == 0.0:
        raise ComputationError("Johansen weights are not usable (non-finite, or zero weight on the dependent asset)")
    trace_crit = johansen_critical_values(k, det_order, "trace")
    rank = 0
    for r in range(k):
        if trace_stat[r] > trace_crit[r, 1]:
            rank = r + 1
        else:
            break
    return JohansenResult(
        assets=assets,
        weights=weights,
        eigenvalues=eig,
        trace_stat=trace_stat,
        max_eig_stat=max_eig_stat,
        trace_crit=trace_crit,
        max_eig_crit=johansen_critical_values(k, det_order, "max_eig"),
        rank_95=rank,
        det_order=det_order,
        k_ar_diff=k_ar_diff,
        nobs=values.shape[0],
        eigenvectors=evec,
    )


def johansen_critical_values(k: int, det_order: int, test: str = "trace") -> np.ndarray:
    """(k, 3) critical values at 90/95/99% of the ``test`` ("trace" or "max_eig") statistic for
    H0: rank <= r, r = 0..k-1, of k series (MacKinnon, Haug and Michelis 1996; statsmodels'
    ``c_sjt``/``c_sja`` for k - r series)."""
    return _critical_table(k, det_order, test == "trace").copy()


@functools.lru_cache(maxsize=None)
def _critical_table(k: int, det_order: int, trace: bool) -> np.ndarray:
    table = (_tables.JOHANSEN_TRACE if trace else _tables.JOHANSEN_MAX_EIG)[det_order]
    return np.array([table[k - r - 1] for r in range(k)], dtype=np.float64)


# Compiled Johansen: the moment matrices of the centred VECM regressors, one Cholesky factor
# for the regressions on the lagged differences, and the symmetric eigenproblem of the
# canonical correlations (cyclic Jacobi), in one call.
_EIG_TOL = 1e-15  # Jacobi stops when every off-diagonal entry is below this times the largest diagonal


@njit(cache=True)
def _johansen_design(x, det_order, k_ar_diff):
    """(q, m) transposed regressors of coint_johansen, m = n - 1 - k_ar_diff rows, q = k (p + 2):
    the lagged differences dx_{t-1..t-p} (k p rows), the level (k), then dx_t (k); centred unless
    det_order = -1 (the constant of its residual regressions). For det_order = 1 the series
    are first detrended on statsmodels' time index linspace(-1, 1, n). The level is statsmodels'
    x_{t-p} (x_t when p = 0): for p >= 1 its residual on the lagged differences is that of x_{t-1}."""
    n, k = x.shape
    p = k_ar_diff
    m = n - 1 - p
    q = k * (p + 2)
    level = np.ascontiguousarray(x.T)  # (k, n): one contiguous row per series
    if det_order == 1:
        tt = np.linspace(-1.0, 1.0, n)
        tt -= tt.sum() / n
        ss = (tt * tt).sum()
        for j in range(k):
            col = level[j]
            col -= col.sum() / n
            col -= ((tt * col).sum() / ss) * tt
    design = np.empty((q, m))
    for j in range(k):
        series = level[j]
        for t in range(m):
            row = t + p + 1  # dx_t = x[row] - x[row - 1]; the level is x[t + 1] = x[row - p]
            design[(p + 1) * k + j, t] = series[row] - series[row - 1]
            design[p * k + j, t] = series[t + 1]
            for lag in range(1, p + 1):
                design[(lag - 1) * k + j, t] = series[row - lag] - series[row - lag - 1]
    if det_order >= 0:
        for c in range(q):
            design[c] -= design[c].sum() / m
    return design


@njit(cache=True)
def _jacobi_eigh(a, tol):
    """Eigenvalues (descending) and eigenvectors (columns) of the symmetric matrix ``a``."""
    k = a.shape[0]
    a = a.copy()
    v = np.eye(k)
    for _ in range(100):
        off = 0.0
        scale = 0.0
        for i in range(k):
            scale = max(scale, abs(a[i, i]))
            for j in range(i + 1, k):
                off = max(off, abs(a[i, j]))
        if off <= tol * scale or off == 0.0:
            break
        for i in range(k - 1):
            for j in range(i + 1, k):
                if a[i, j] == 0.0:
                    continue
                theta = (a[j, j] - a[i, i]) / (2.0 * a[i, j])
                t = (1.0 if theta >= 0.0 else -1.0) / (abs(theta) + math.sqrt(theta * theta + 1.0))
                c = 1.0 / math.sqrt(t * t + 1.0)
                s = t * c
                for r in range(k):  # columns i, j
                    ari, arj = a[r, i], a[r, j]
                    a[r, i] = c * ari - s * arj
                    a[r, j] = s * ari + c * arj
                for r in range(k):  # rows i, j
                    air, ajr = a[i, r], a[j, r]
                    a[i, r] = c * air - s * ajr
                    a[j, r] = s * air + c * ajr
                for r in range(k):
                    vri, vrj = v[r, i], v[r, j]
                    v[r, i] = c * vri - s * vrj
                    v[r, j] = s * vri + c * vrj
    eig = np.diag(a).copy()
    order = np.argsort(-eig)
    return eig[order], v[:, order].copy()


@njit(cache=True)
def _lower_solve(low, b):
    """Solve ``low @ x = b`` (lower triangular; b is (k,) or (k, c))."""
    x = b.copy()
    k = low.shape[0]
    for i in range(k):
        for j in range(i):
            x[i] -= low[i, j] * x[j]
        x[i] /= low[i, i]
    return x


@njit(cache=True)
def _johansen_kernel(x, det_order, k_ar_diff, tol):
    """(eigenvalues (k,), weights (k, k) columns, trace (k,), max-eig (k,), status) of the
    Johansen test, as statsmodels' coint_johansen computes them.

    With R the Cholesky factor of the regressors' moment matrix (order: lagged differences,
    level, dx_t), the residual moments are S_kk = R_ll'R_ll / m, S_k0 = R_ll'R_l0 / m and
    S_00 = (R_l0'R_l0 + R_00'R_00) / m. With S_kk = L L' and S_00 = U U', the eigenvalues are
    those of W W', W = L^-1 S_k0 U^-T, and the weights v = L^-T u satisfy v' S_kk v = 1 (the
    normalisation of statsmodels). Each weight vector has a positive first entry (statsmodels
    fixes the first one's sign that way; the others' signs are LAPACK's choice there)."""
    m = x.shape[0] - 1 - k_ar_diff
    k = x.shape[1]
    design = _johansen_design(x, det_order, k_ar_diff)
    gram = design @ design.T  # BLAS (single-threaded at this size): a loop is latency-bound, ~10x slower
    r, status = _cholesky_upper(gram)
    if status != _OK:
        return np.zeros(k), np.zeros((k, k)), np.zeros(k), np.zeros(k), status
    lag = k * k_ar_diff
    lev = lag
    d0 = lag + k
    rt = r[lev : lev + k, lev : lev + k].T.copy() / math.sqrt(m)  # L: S_kk = L L'
    s_k0 = np.empty((k, k))
    s_00 = np.empty((k, k))
    for i in range(k):
        for j in range(k):
            a = 0.0
            for h in range(lev, lev + k):
                a += r[h, lev + i] * r[h, d0 + j]
            s_k0[i, j] = a / m
            b = 0.0
            for h in range(lev, d0 + k):
                b += r[h, d0 + i] * r[h, d0 + j]
            s_00[i, j] = b / m
    u_low, status = _cholesky_lower(s_00)
    if status != _OK:
        return np.zeros(k), np.zeros((k, k)), np.zeros(k), np.zeros(k), status
    # W = L^-1 S_k0 U^-T: left solve, then right solve through the transpose
    left = _lower_solve(rt, s_k0)
    w = _lower_solve(u_low, left.T.copy()).T.copy()
    eig, u = _jacobi_eigh(_outer_gram(w), tol)
    # v = L^-T u: back substitution with L'
    v = np.empty((k, k))
    for c in range(k):
        for i in range(k - 1, -1, -1):
            s = u[i, c]
            for j in range(i + 1, k):
                s -= rt[j, i] * v[j, c]
            v[i, c] = s / rt[i, i]
        if v[0, c] < 0.0:
            for i in range(k):
                v[i, c] = -v[i, c]
    trace = np.empty(k)
    max_eig = np.empty(k)
    for i in range(k):
        if not eig[i] < 1.0:
            return eig, v, trace, max_eig, _DEGENERATE
        max_eig[i] = -m * math.log(1.0 - eig[i])
    for i in range(k):
        total = 0.0
        for j in range(i, k):
            total += math.log(1.0 - eig[j])
        trace[i] = -m * total
    return eig, v, trace, max_eig, _OK


@njit(cache=True)
def _outer_gram(w):
    """``w @ w.T`` for a small square matrix."""
    k = w.shape[0]
    out = np.empty((k, k))
    for i in range(k):
        for j in range(k):
            s = 0.0
            for h in range(w.shape[1]):
                s += w[i, h] * w[j, h]
            out[i, j] = s
    return out


@njit(cache=True)
def _cholesky_lower(a):
    """(L, status): lower L with L L' = a; status _DEGENERATE on a non-positive pivot."""
    q = a.shape[0]
    low = np.zeros((q, q))
    for i in range(q):
        for j in range(i + 1):
            s = a[i, j]
            for h in range(j):
                s -= low[i, h] * low[j, h]
            if i > j:
                low[i, j] = s / low[j, j]
            elif s > 0.0:
                low[i, i] = math.sqrt(s)
            else:
                return low, _DEGENERATE
    return low, _OK


@njit(cache=True)
def _cholesky_upper(a):
    """(R, status): upper R with R'R = a."""
    low, status = _cholesky_lower(a)
    return low.T.copy(), status


def _check_panel(values: np.ndarray, assets: list[str], k_ar_diff: int) -> None:
    """Refuse panels Johansen cannot use: missing values, a constant series, too few rows."""
    n, k = values.shape
    if not np.all(np.isfinite(values)):
        raise KalcointError("Johansen input has missing or non-finite prices; keep the common history (dropna)")
    spreads = np.ptp(np.ascontiguousarray(values.T), axis=1)  # numpy's axis-0 reductions are slow on (n, k)
    flat = [a for a, spread in zip(assets, spreads) if spread == 0.0]
    if flat:
        raise KalcointError(f"Johansen input series {', '.join(map(str, flat))} is constant; drop it from the basket")
    min_rows = 2 * (k * (k_ar_diff + 1) + 2)
    if n < min_rows:
        raise KalcointError(
            f"Johansen needs at least {min_rows} rows for {k} series and k_ar_diff={k_ar_diff}, got {n}; use a longer history"
        )


@dataclass(frozen=True)
class AdfResult:
    """Augmented Dickey-Fuller test with a constant: statistic, MacKinnon p-value, lags used.

    Examples
    --------
    >>> AdfResult(-3.34, 0.0132, 12, 1487).pvalue
    0.0132
    """

    stat: float
    pvalue: float
    lags: int
    nobs: int

    def to_dict(self) -> dict:
        return {"adf_stat": self.stat, "adf_lags": self.lags, "adf_pvalue": self.pvalue}


def adf(
    series: np.ndarray | pd.Series,
    autolag: str | None = "AIC",
    maxlag: int | None = None,
    engine: str = "fast",
) -> AdfResult:
    """ADF test with a constant on a 1-D series of n values (any units).

    Exactly ``statsmodels.tsa.stattools.adfuller(series, maxlag, regression="c",
    autolag)``: ``autolag`` "AIC" (default) or "BIC" picks the number of lagged
    differences in 0..maxlag on the common sample of ``n - 1 - maxlag`` rows, then
    refits that lag on all ``n - 1 - lag`` rows; ``None`` uses ``maxlag`` lags.
    ``maxlag`` defaults to ``ceil(12 (n/100)^(1/4))``, at most ``n // 2 - 2``.
    The p-value is MacKinnon's (:func:`mackinnonp`, equal to statsmodels').

    ``engine="fast"`` (default) runs the regressions in compiled code (one triangular
    factor serves every lag of the AIC search); ``engine="statsmodels"`` calls adfuller.
    The fast engine hands near-ties of the information criterion (closer than
    ``_TIE_TOL``) to statsmodels, so both engines choose the same lag. It raises
    :class:`ComputationError` on degenerate designs (a constant or collinear
    column, a perfect fit), where adfuller's figures are rounding noise. It centres
    the design, so it stays exact on badly scaled series (a level of 5 with noise
    of 1e-10) where adfuller's uncentred design loses digits.

    Returns ``AdfResult(stat, pvalue, lags, nobs)``; ``nobs = n - 1 - lags``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=500)
    >>> adf(x).pvalue < 0.01
    True
    """
    if engine not in ("fast", "statsmodels"):
        raise KalcointError(f"ADF engine {engine!r} is not one of 'fast', 'statsmodels'")
    x = _adf_input(series)
    method = _adf_method(autolag)
    maxlag = _adf_maxlag(x.size, maxlag)
    if engine == "statsmodels" or method is None:
        return _adf_statsmodels(x, autolag, maxlag)
    _, exponent = np.frexp(np.max(np.abs(x)))
    scaled = np.ldexp(x, -int(exponent))  # power-of-two scaling is exact; the t-stat is scale free
    stat, lags, status = _adf_kernel(scaled, maxlag, method, _CHOL_TOL, _RANK_TOL, _TIE_TOL)
    if status == _NEAR_TIE:
        return _adf_statsmodels(x, autolag, maxlag)
    if status == _DEGENERATE:
        raise ComputationError(
            "ADF regression is degenerate (a constant or collinear lag column, or a perfect fit): "
            "the series has no noise to test; check the portfolio weights"
        )
    return _adf_result(stat, lags, x.size - 1 - lags)


def _adf_input(series: np.ndarray | pd.Series) -> np.ndarray:
    x = np.asarray(series, dtype=np.float64)
    if x.ndim != 1 or x.size < 10:
        raise KalcointError(f"ADF needs a 1-D series of at least 10 values, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ComputationError("ADF input contains non-finite values")
    if np.ptp(x) == 0.0:
        raise ComputationError("ADF input is constant: the portfolio has no variation to test")
    return np.ascontiguousarray(x)


def _adf_method(autolag: str | None) -> int | None:
    """Kernel code of the lag choice: -1 fixed lag, 0 AIC, 1 BIC; None = statsmodels only."""
    if autolag is None:
        return _FIXED
    name = str(autolag).lower()
    if name in _IC_CODES:
        return _IC_CODES[name]
    if name == "t-stat":
        return None
    raise KalcointError(f"ADF autolag={autolag!r} is not one of 'AIC', 'BIC', 't-stat', None")


def _adf_maxlag(n: int, maxlag: int | None) -> int:
    """statsmodels' maximum lag for regression="c": the Schwert rule, clipped to n//2 - 2."""
    limit = n // 2 - 2
    if maxlag is None:
        return min(limit, int(np.ceil(12.0 * np.power(n / 100.0, 1 / 4.0))))
    if int(maxlag) != maxlag or not 0 <= maxlag <= limit:
        raise KalcointError(f"ADF maxlag={maxlag} must be an integer in 0..{limit} for a series of {n} values")
    return int(maxlag)


def _adf_statsmodels(x: np.ndarray, autolag: str | None, maxlag: int) -> AdfResult:
    import inspect

    from statsmodels.tsa.stattools import adfuller

    extra = {"result_object": False} if "result_object" in inspect.signature(adfuller).parameters else {}
    try:
        stat, _, lags, nobs, *_ = adfuller(x, maxlag=maxlag, regression="c", autolag=autolag, **extra)
    except (ValueError, np.linalg.LinAlgError) as exc:
        raise ComputationError(f"ADF regression failed: {exc}") from exc
    return _adf_result(stat, lags, nobs)


def _adf_result(stat: float, lags: int, nobs: int) -> AdfResult:
    if not np.isfinite(stat):
        raise ComputationError("ADF statistic is not finite: the series is degenerate (perfect fit or collinear lags)")
    return AdfResult(float(stat), mackinnonp(stat, regression="c", N=1), int(lags), int(nobs))


def _check_regression(regression: str, N: int, table: dict) -> None:
    if regression not in table:
        raise KalcointError(f"regression={regression!r} is not one of 'c', 'n', 'ct', 'ctt'")
    most = len(table[regression])
    if not 1 <= N <= most:
        raise KalcointError(f"N={N} must be between 1 and {most}")


def _normal_cdf(x: float) -> float:
    """Standard normal distribution function, as cephes' ``ndtr`` (scipy.stats.norm.cdf) computes it."""
    z = x * math.sqrt(0.5)
    if abs(z) < math.sqrt(0.5):
        return 0.5 + 0.5 * math.erf(z)
    y = 0.5 * math.erfc(abs(z))
    return 1.0 - y if z > 0 else y


def _horner(coefs: tuple[float, ...] | list[float], x: float) -> float:
    """sum_i coefs[i] x^i, evaluated as numpy's ``polyval(coefs[::-1], x)``."""
    y = 0.0
    for c in reversed(coefs):
        y = y * x + c
    return y


def mackinnonp(teststat: float, regression: str = "c", N: int = 1) -> float:
    """MacKinnon's (1994) approximate p-value of a (augmented) Dickey-Fuller or Engle-Granger
    t-statistic; ``regression`` "c" (constant), "n", "ct", "ctt"; ``N`` series (1 to 6).
    Equals ``statsmodels.tsa.adfvalues.mackinnonp`` (same tables, :mod:`kalcoint._tables`)."""
    _check_regression(regression, N, _tables.TAU_MAX)
    stat = float(teststat)
    if stat > _tables.TAU_MAX[regression][N - 1]:
        return 1.0
    if stat < _tables.TAU_MIN[regression][N - 1]:
        return 0.0
    small = stat <= _tables.TAU_STAR[regression][N - 1]
    coefs = (_tables.TAU_SMALLP if small else _tables.TAU_LARGEP)[regression][N - 1]
    return _normal_cdf(_horner(coefs, stat))


def mackinnoncrit(N: int = 1, regression: str = "c", nobs: float = math.inf) -> np.ndarray:
    """(3,) MacKinnon's (2010) critical values at 1/5/10% for ``N`` series (1 to 12) and a sample
    of ``nobs`` (``inf``: asymptotic); regression "n" has N = 1 only. Equals ``statsmodels.tsa.adfvalues.mackinnoncrit``."""
    _check_regression(regression, N, _tables.TAU_2010)
    rows = _tables.TAU_2010[regression][N - 1]
    if nobs == math.inf:
        return np.array([row[0] for row in rows], dtype=np.float64)
    return np.array([_horner(row, 1.0 / nobs) for row in rows], dtype=np.float64)


# Fast ADF: compiled least squares. Lazy compilation on first call, cached on disk
# (cache=True) so worker processes load machine code instead of recompiling.
_OK, _DEGENERATE, _NEAR_TIE = 0, 1, 2
_FIXED = -1
_IC_CODES = {"aic": 0, "bic": 1}
_CHOL_TOL = 1e-6  # smallest 1 - R^2 of a column on the previous ones for normal equations, else QR
_RANK_TOL = 1e-10  # a column (or dx) keeping less than this of its norm after the others: degenerate
_TIE_TOL = 1e-6  # information criteria closer than this are settled by statsmodels


@njit(cache=True)
def _adf_design(x, nlags, level_last):
    """Transposed, centred ADF design for ``nlags`` lagged differences on rows
    t = nlags..n-2 of the differences: shape (nlags + 2, n - 1 - nlags), row j =
    regressor j (level x_t first, or last when ``level_last``), last row = dx_t.
    Centring every column replaces the constant regressor (Frisch-Waugh); an
    error e in a column mean moves the fit by O(e^2 / var), so one pass is enough."""
    n = x.size
    m = n - 1 - nlags
    q = nlags + 2
    diff = x[1:] - x[:-1]
    zt = np.empty((q, m))
    level = x[nlags : n - 1]
    zt[nlags if level_last else 0] = level - level.sum() / m
    zt[q - 1] = diff[nlags:] - diff[nlags:].sum() / m
    first_lag = 0 if level_last else 1
    window_sum = 0.0
    for j in range(1, nlags + 1):
        start = nlags - j  # lag j of dx_t, t = nlags + r, is diff[start + r]
        if j == 1:
            window_sum = diff[start : start + m].sum()
        else:  # slide the window one step back
            window_sum += diff[start] - diff[start + m]
        zt[first_lag + j - 1] = diff[start : start + m] - window_sum / m
    return zt


@njit(cache=True)
def _adf_gram(x, nlags, level_last):
    """Gram matrix (nlags + 2, nlags + 2) of the centred design of :func:`_adf_design`,
    without BLAS (threaded BLAS on tiny products stalls busy worker processes).

    The lagged differences and dx_t are windows of one series, so a window pair's
    cross-product follows from the pair one step later by adding the entering and
    removing the leaving product: O(n * nlags) work instead of O(n * nlags^2)."""
    n = x.size
    m = n - 1 - nlags
    q = nlags + 2
    diff = x[1:] - x[:-1]
    diff -= diff.sum() / diff.size  # any shift; it keeps the raw products free of cancellation
    start = np.arange(nlags, -1, -1)  # window w (w = 0: dx_t, w = j: lag j) is diff[start[w] + r]
    mean = np.empty(nlags + 1)
    mean[0] = diff[nlags:].sum() / m
    window_sum = diff[nlags - 1 : nlags - 1 + m].sum() if nlags > 0 else 0.0
    for w in range(1, nlags + 1):
        if w > 1:
            window_sum += diff[start[w]] - diff[start[w] + m]
        mean[w] = window_sum / m
    level = x[nlags : n - 1] - x[nlags : n - 1].sum() / m
    level_sum = level.sum()
    raw = np.zeros((nlags + 1, nlags + 1))  # raw[a, b] = sum_r W_a[r] W_b[r]
    cross = np.zeros(nlags + 1)  # cross[w] = sum_r level[r] W_w[r]
    level_sq = 0.0
    for r in range(m):
        y_r = diff[nlags + r]
        level_sq += level[r] * level[r]
        for w in range(nlags + 1):
            value = diff[nlags - w + r]
            raw[0, w] += y_r * value
            cross[w] += level[r] * value
    for a in range(1, nlags + 1):
        for b in range(a, nlags + 1):
            enter, leave = start[a], start[a] + m
            shift = start[b] - start[a]
            raw[a, b] = raw[a - 1, b - 1] + diff[enter] * diff[enter + shift] - diff[leave] * diff[leave + shift]
    index = np.empty(nlags + 1, dtype=np.int64)  # design column of window w
    index[0] = q - 1
    for w in range(1, nlags + 1):
        index[w] = w - 1 if level_last else w
    lev = nlags if level_last else 0
    gram = np.empty((q, q))
    gram[lev, lev] = level_sq
    for a in range(nlags + 1):
        gram[lev, index[a]] = gram[index[a], lev] = cross[a] - mean[a] * level_sum
        for b in range(a, nlags + 1):
            gram[index[a], index[b]] = gram[index[b], index[a]] = raw[a, b] - m * mean[a] * mean[b]
    return gram


@njit(cache=True)
def _r_factor(x, nlags, level_last, chol_tol, rank_tol):
    """R factor (q, q) of the column-normalised ADF design, or status _DEGENERATE.

    Normal equations (Cholesky of the Gram matrix) when every column keeps at least
    ``chol_tol`` of its variance after the previous ones; Householder QR otherwise."""
    gram = _adf_gram(x, nlags, level_last)
    q = gram.shape[0]
    norms = np.sqrt(np.diag(gram))
    if not np.min(norms) > 0.0:
        return np.zeros((q, q)), _DEGENERATE
    r = _cholesky_r(gram / np.outer(norms, norms))
    if r[0, 0] < 0.0 or np.min(np.abs(np.diag(r))) ** 2 < chol_tol:
        r = _householder_r(_adf_design(x, nlags, level_last) / norms.reshape((q, 1)))
    if np.min(np.abs(np.diag(r))) < rank_tol:
        return r, _DEGENERATE
    return r, _OK


@njit(cache=True)
def _cholesky_r(gram):
    """Upper R with R'R = gram; R[0, 0] = -1 flags a non-positive pivot."""
    q = gram.shape[0]
    low = np.zeros((q, q))
    for i in range(q):
        for j in range(i + 1):
            s = gram[i, j]
            for k in range(j):
                s -= low[i, k] * low[j, k]
            if i > j:
                low[i, j] = s / low[j, j]
            elif s > 0.0:
                low[i, i] = np.sqrt(s)
            else:
                low[0, 0] = -1.0
                return low
    return low.T.copy()


@njit(cache=True)
def _householder_r(zt):
    """R factor of ``zt.T`` by Householder reflections (rows of ``zt`` = columns)."""
    a = zt.copy()
    q, m = a.shape
    for k in range(q):
        col = a[k, k:]
        norm = np.sqrt(_dot(col, col))
        alpha = -norm if col[0] >= 0.0 else norm
        v = col.copy()
        v[0] -= alpha
        vv = _dot(v, v)
        col[0] = alpha
        if vv == 0.0:
            continue
        for j in range(k + 1, q):
            other = a[j, k:]
            f = 2.0 * _dot(v, other) / vv
            for i in range(v.size):
                other[i] -= f * v[i]
    r = np.zeros((q, q))
    for j in range(q):
        for i in range(j + 1):
            r[i, j] = a[j, i]
    return r


@njit(cache=True)
def _dot(u, v):
    total = 0.0
    for i in range(u.size):
        total += u[i] * v[i]
    return total


@njit(cache=True)
def _choose_lag(x, maxlag, method, chol_tol, rank_tol, tie_tol):
    """Lag in 0..maxlag minimising AIC (method 0) or BIC (1) on the common sample,
    as statsmodels' _autolag: ties go to the smaller lag. Returns (lag, status)."""
    r, status = _r_factor(x, maxlag, False, chol_tol, rank_tol)
    if status != _OK:
        return -1, status
    m = x.size - 1 - maxlag
    y = maxlag + 1
    penalty = 2.0 if method == 0 else np.log(m)
    crit = np.empty(maxlag + 1)
    ssr = r[y, y] ** 2  # the residual of lag i leaves out R[j, y] for the i + 1 regressors j <= i
    for lag in range(maxlag, -1, -1):
        # -2 llf + penalty * k, without the terms equal for every lag
        crit[lag] = m * np.log(ssr) + penalty * (lag + 2)
        ssr += r[lag, y] ** 2
    return _lowest_criterion(crit, tie_tol)


@njit(cache=True)
def _lowest_criterion(crit, tie_tol):
    """(index of the smallest criterion, status): exact ties go to the smaller index,
    as statsmodels' ``min((ic, lag))``; any other lag within ``tie_tol`` of the best
    is a near-tie (status _NEAR_TIE) that rounding could decide either way."""
    best = np.argmin(crit)
    for lag in range(crit.size):
        if lag != best and crit[lag] - crit[best] < tie_tol:
            return best, _NEAR_TIE
    return best, _OK


@njit(cache=True)
def _adf_kernel(x, maxlag, method, chol_tol, rank_tol, tie_tol):
    """(t-statistic of the level, lags used, status) of the ADF regression with a constant."""
    lag = maxlag
    if method != _FIXED:
        lag, status = _choose_lag(x, maxlag, method, chol_tol, rank_tol, tie_tol)
        if status != _OK:
            return np.nan, lag, status
    r, status = _r_factor(x, lag, True, chol_tol, rank_tol)
    dof = x.size - 1 - lag - (lag + 2)
    if status != _OK or dof <= 0:
        return np.nan, lag, _DEGENERATE
    # level is the last regressor, so its t = (Q'y)_level / s in the normalised design
    s = np.abs(r[lag + 1, lag + 1]) / np.sqrt(dof)
    return np.sign(r[lag, lag]) * r[lag, lag + 1] / s, lag, _OK


def half_life(series: np.ndarray | pd.Series) -> float:
    """Half-life of mean reversion in periods: ``-log(2) / lambda`` from the OLS
    regression ``dx_t = c + lambda x_{t-1}``; ``inf`` when ``lambda >= 0``.

    The slope of a regression with a constant is the ratio of the centred cross product
    to the centred sum of squares (no least-squares solver needed).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.empty(2000); x[0] = 1.0
    >>> e = np.random.default_rng(1).normal(size=2000)
    >>> for t in range(1, 2000): x[t] = 0.9 * x[t - 1] + e[t]
    >>> round(half_life(x))
    7
    """
    x = np.asarray(series, dtype=np.float64)
    lag = x[:-1] - x[:-1].mean()
    dx = np.diff(x)
    lam = float(lag @ (dx - dx.mean())) / float(lag @ lag)
    return float(-np.log(2.0) / lam) if lam < 0 else float("inf")

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
from ._checks import MAX_PRICE, check_magnitude
from ._summary import Summary, Table
from .errors import ComputationError, KalcointError
from ._kernels import DEGENERATE, FIXED_LAG, NEAR_TIE, OK, adf_kernel, johansen_kernel

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
    >>> print(jo.summary())
    Johansen test: ETFA, ETFB, ETFC (det_order=0, k_ar_diff=1, nobs=1500)
    H0        trace      90%      95%      99%  max-eig      90%      95%      99%
    ------  -------  -------  -------  -------  -------  -------  -------  -------
    r <= 0  43.9410  27.0669  29.7961  35.4628  29.1889  18.8928  21.1314  25.8650
    r <= 1  14.7520  13.4294  15.4943  19.9349  11.1229  12.2971  14.2639  18.5200
    r <= 2   3.6291   2.7055   3.8415   6.6349   3.6291   2.7055   3.8415   6.6349
    asset     weight  hedge ratio
    -----  ---------  -----------
    ETFA     1.14396            -
    ETFB    -1.02741     0.898116
    ETFC   -0.589012     0.514887
    rank at 95% (trace): 1
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
    _check_panel(values, assets, k_ar_diff, prices.index if isinstance(prices, pd.DataFrame) else None)
    eig, evec, trace_stat, max_eig_stat, status = johansen_kernel(
        np.ascontiguousarray(values), det_order, k_ar_diff, _EIG_TOL
    )
    if status != OK:
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


def _check_panel(values: np.ndarray, assets: list[str], k_ar_diff: int, dates: pd.Index | None = None) -> None:
    """Refuse panels Johansen cannot use: missing values, a price whose squares overflow,
    a constant series, too few rows."""
    n, k = values.shape
    if not np.all(np.isfinite(values)):
        raise KalcointError("Johansen input has missing or non-finite prices; keep the common history (dropna)")
    columns = np.ascontiguousarray(values.T)  # numpy's axis-0 reductions are slow on (n, k)
    highs, lows = columns.max(axis=1), columns.min(axis=1)
    if highs.max() > MAX_PRICE or lows.min() < -MAX_PRICE:
        check_magnitude(values, assets, dates)
    flat = [a for a, high, low in zip(assets, highs, lows) if high == low]
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
    stat, lags, status = adf_kernel(scaled, maxlag, method, _CHOL_TOL, _RANK_TOL, _TIE_TOL)
    if status == NEAR_TIE:
        return _adf_statsmodels(x, autolag, maxlag)
    if status == DEGENERATE:
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
        return FIXED_LAG
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
_IC_CODES = {"aic": 0, "bic": 1}
_CHOL_TOL = 1e-6  # smallest 1 - R^2 of a column on the previous ones for normal equations, else QR
_RANK_TOL = 1e-10  # a column (or dx) keeping less than this of its norm after the others: degenerate
_TIE_TOL = 1e-6  # information criteria closer than this are settled by statsmodels


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

"""Johansen test, augmented Dickey-Fuller test and half-life of mean reversion.

Johansen uses :func:`statsmodels.tsa.vector_ar.vecm.coint_johansen`; the ADF
p-values are MacKinnon's, from statsmodels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from statsmodels.tsa.stattools import adfuller
from statsmodels.tsa.vector_ar.vecm import coint_johansen

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
    eigenvectors: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]

    @property
    def hedge_ratios(self) -> np.ndarray:
        """(k-1,) static hedge ratios ``-w_j / w_1``, j = 2..k."""
        return -self.weights[1:] / self.weights[0]

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

    def summary(self) -> str:
        lines = [
            f"Johansen test: {', '.join(self.assets)} (det_order={self.det_order}, "
            f"k_ar_diff={self.k_ar_diff}, n={self.nobs})",
            f"{'H0':>8} {'trace':>9} {'90%':>8} {'95%':>8} {'99%':>8}   {'max-eig':>9} {'90%':>8} {'95%':>8} {'99%':>8}",
        ]
        for r in range(len(self.assets)):
            tc, mc = self.trace_crit[r], self.max_eig_crit[r]
            lines.append(
                f"{'r <= ' + str(r):>8} {self.trace_stat[r]:9.4f} {tc[0]:8.4f} {tc[1]:8.4f} {tc[2]:8.4f}"
                f"   {self.max_eig_stat[r]:9.4f} {mc[0]:8.4f} {mc[1]:8.4f} {mc[2]:8.4f}"
            )
        lines.append(f"rank at 95% (trace): {self.rank_95}")
        lines.append("weights: " + ", ".join(f"{a}={w:.6g}" for a, w in zip(self.assets, self.weights)))
        return "\n".join(lines)


def johansen(
    prices: pd.DataFrame | np.ndarray,
    det_order: int = 0,
    k_ar_diff: int = 1,
    assets: list[str] | None = None,
) -> JohansenResult:
    """Johansen test on an (n, k) price panel (columns = assets, first = dependent).

    ``det_order``: -1 none, 0 constant (default), 1 linear trend; ``k_ar_diff``:
    number of lagged differences (default 1), as in statsmodels.
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
    try:
        res = coint_johansen(values, det_order, k_ar_diff)
    except np.linalg.LinAlgError as exc:
        raise ComputationError(f"Johansen test failed: singular matrix ({exc}); are two series collinear?") from exc
    weights = np.asarray(res.evec[:, 0], dtype=np.float64)
    if not np.all(np.isfinite(weights)) or weights[0] == 0.0:
        raise ComputationError("Johansen weights are not usable (non-finite, or zero weight on the dependent asset)")
    trace_stat = np.asarray(res.lr1, dtype=np.float64)
    trace_crit = np.asarray(res.cvt, dtype=np.float64)
    rank = 0
    for r in range(k):
        if trace_stat[r] > trace_crit[r, 1]:
            rank = r + 1
        else:
            break
    return JohansenResult(
        assets=assets,
        weights=weights,
        eigenvalues=np.asarray(res.eig, dtype=np.float64),
        trace_stat=trace_stat,
        max_eig_stat=np.asarray(res.lr2, dtype=np.float64),
        trace_crit=trace_crit,
        max_eig_crit=np.asarray(res.cvm, dtype=np.float64),
        rank_95=rank,
        det_order=det_order,
        k_ar_diff=k_ar_diff,
        nobs=values.shape[0],
        eigenvectors=np.asarray(res.evec, dtype=np.float64),
    )


@dataclass(frozen=True)
class AdfResult:
    """Augmented Dickey-Fuller test with a constant: statistic, MacKinnon p-value, lags used."""

    stat: float
    pvalue: float
    lags: int
    nobs: int

    def to_dict(self) -> dict:
        return {"adf_stat": self.stat, "adf_lags": self.lags, "adf_pvalue": self.pvalue}


def adf(series: np.ndarray | pd.Series, autolag: str | None = "AIC", maxlag: int | None = None) -> AdfResult:
    """ADF test with a constant on a 1-D series; lag order chosen by ``autolag`` (AIC default)."""
    x = np.asarray(series, dtype=np.float64)
    if x.ndim != 1 or x.size < 10:
        raise KalcointError(f"ADF needs a 1-D series of at least 10 values, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ComputationError("ADF input contains non-finite values")
    if np.ptp(x) == 0.0:
        raise ComputationError("ADF input is constant: the portfolio has no variation to test")
    stat, pvalue, lags, nobs, *_ = adfuller(x, maxlag=maxlag, regression="c", autolag=autolag)
    return AdfResult(float(stat), float(pvalue), int(lags), int(nobs))


def half_life(series: np.ndarray | pd.Series) -> float:
    """Half-life of mean reversion in periods: ``-log(2) / lambda`` from the OLS
    regression ``dx_t = c + lambda x_{t-1}``; ``inf`` when ``lambda >= 0``."""
    x = np.asarray(series, dtype=np.float64)
    lag = x[:-1]
    dx = np.diff(x)
    design = np.column_stack([lag, np.ones_like(lag)])
    coef, *_ = np.linalg.lstsq(design, dx, rcond=None)
    lam = float(coef[0])
    return float(-np.log(2.0) / lam) if lam < 0 else float("inf")

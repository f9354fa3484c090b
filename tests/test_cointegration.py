"""Johansen, ADF, MacKinnon tables and half-life.

Oracles: Chan's published Johansen figures (Algorithmic Trading, ex. 2.7/2.8),
statsmodels' ``coint_johansen`` for the compiled Johansen test on random baskets of
every data file, statsmodels' ``adfuller`` for the fast ADF engine, statsmodels'
``mackinnonp``/``mackinnoncrit``/``c_sja``/``c_sjt`` for the tables in the package, and
a plain least-squares ADF written below for series on which adfuller's uncentred
design loses digits.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.adfvalues import mackinnoncrit as sm_mackinnoncrit
from statsmodels.tsa.adfvalues import mackinnonp as sm_mackinnonp
from statsmodels.tsa.adfvalues import tau_2010s
from statsmodels.tsa.coint_tables import c_sja, c_sjt
from statsmodels.tsa.stattools import adfuller
from statsmodels.tsa.vector_ar.vecm import coint_johansen

import kalcoint._kernels as kernels
from kalcoint import datasets
from kalcoint._kernels import linalg
import kalcoint.cointegration as coint
from kalcoint.cointegration import AdfResult, JohansenResult, adf, half_life, johansen
from kalcoint.errors import ComputationError, KalcointError

TOL = 1e-8


@pytest.fixture(scope="module")
def etfs() -> pd.DataFrame:
    return pd.read_csv(datasets.path("chan_etf"), index_col=0, parse_dates=True)


@pytest.fixture(scope="module")
def chan_prices(etfs: pd.DataFrame) -> pd.DataFrame:
    return etfs[["EWA", "EWC", "IGE"]].dropna()


@pytest.fixture(scope="module")
def chan_johansen(chan_prices: pd.DataFrame) -> JohansenResult:
    return johansen(chan_prices)


def random_walk(n: int, seed: int) -> np.ndarray:
    return 50.0 + np.cumsum(np.random.default_rng(seed).standard_normal(n))


def ar1(n: int, phi: float, seed: int) -> np.ndarray:
    shocks = np.random.default_rng(seed).standard_normal(n)
    x = np.zeros(n)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + shocks[t]
    return x


def statsmodels_adf(x: np.ndarray, **kw) -> tuple[float, float, int, int]:
    """The oracle: adfuller's (stat, pvalue, usedlag, nobs) with a constant."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stat, pvalue, lags, nobs, *_ = adfuller(x, regression="c", **kw)
    return stat, pvalue, lags, nobs


def assert_matches_statsmodels(x: np.ndarray, autolag: str | None = "AIC", maxlag: int | None = None) -> AdfResult:
    fast = adf(x, autolag=autolag, maxlag=maxlag)
    stat, pvalue, lags, nobs = statsmodels_adf(x, autolag=autolag, maxlag=maxlag)
    assert fast.lags == lags
    assert fast.nobs == nobs
    assert abs(fast.stat - stat) < TOL
    assert abs(fast.pvalue - pvalue) < TOL
    return fast


def reference_adf(x: np.ndarray, autolag: str | None = "AIC") -> tuple[float, int]:
    """Plain ADF with a constant by numpy least squares on a standardised copy of x
    (the test is invariant to x -> a + b x): AIC over lags 0..maxlag on the common
    sample, then the refit of the chosen lag. Returns (t-statistic, lag)."""
    x = (x - x.mean()) / np.diff(x).std()
    n = x.size
    maxlag = min(n // 2 - 2, int(np.ceil(12.0 * (n / 100.0) ** 0.25)))

    def fit(lag: int, first: int) -> tuple[np.ndarray, float, int]:
        dx = np.diff(x)
        rows = range(first, n - 1)
        design = np.array([[1.0, x[t]] + [dx[t - j] for j in range(1, lag + 1)] for t in rows])
        y = dx[first:]
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        resid = y - design @ coef
        ssr = float(resid @ resid)
        dof = len(y) - design.shape[1]
        cov = ssr / dof * np.linalg.inv(design.T @ design)
        return coef / np.sqrt(np.diag(cov)), ssr, len(y)

    lag = maxlag
    if autolag == "AIC":
        aic = []
        for k in range(maxlag + 1):
            _, ssr, m = fit(k, maxlag)
            aic.append(m * np.log(ssr / m) + 2 * (k + 2))
        lag = int(np.argmin(aic))
    tvalues, _, _ = fit(lag, lag)
    return float(tvalues[1]), lag


# ---------------------------------------------------------------- Johansen


def test_johansen_reproduces_chan_example_2_7(chan_johansen: JohansenResult) -> None:
    np.testing.assert_allclose(chan_johansen.trace_stat, [34.4286, 17.5317, 4.4710], atol=1e-4)
    np.testing.assert_allclose(chan_johansen.max_eig_stat, [16.8969, 13.0607, 4.4710], atol=1e-4)
    np.testing.assert_allclose(chan_johansen.trace_crit[:, 1], [29.7961, 15.4943, 3.8415], atol=1e-4)
    # every trace statistic exceeds its 95% critical value
    assert chan_johansen.rank_95 == 3
    assert chan_johansen.nobs == 1500
    assert chan_johansen.assets == ["EWA", "EWC", "IGE"]
    assert np.all(np.diff(chan_johansen.eigenvalues) < 0)


def test_johansen_weights_hedge_ratios_and_portfolio(chan_johansen: JohansenResult, chan_prices: pd.DataFrame) -> None:
    w = chan_johansen.weights
    np.testing.assert_allclose(w, [0.759964, -1.046027, 0.223306], atol=1e-6)
    np.testing.assert_allclose(chan_johansen.hedge_ratios, -w[1:] / w[0], rtol=1e-15)
    np.testing.assert_allclose(chan_johansen.hedge_ratios, [1.376418, -0.293838], atol=1e-6)
    y_port = chan_johansen.portfolio(chan_prices)
    assert y_port.shape == (1500,)
    np.testing.assert_allclose(y_port, chan_prices.to_numpy() @ w, rtol=1e-15)
    assert y_port[0] == pytest.approx(-4.678722, abs=1e-6)
    d = chan_johansen.to_dict()
    assert d["rank_95"] == 3 and d["assets"] == ["EWA", "EWC", "IGE"]
    assert d["trace_stat"][0] == pytest.approx(34.4286, abs=1e-4)


def test_johansen_rank_zero_for_independent_random_walks() -> None:
    prices = np.column_stack([random_walk(1000, seed) for seed in (4, 5)])
    res = johansen(prices)
    assert res.rank_95 == 0
    np.testing.assert_allclose(res.trace_stat, [8.36084655, 1.31364753], atol=1e-6)
    assert res.trace_stat[0] < res.trace_crit[0, 1]
    assert res.assets == ["x1", "x2"]


def test_half_life_of_chan_portfolio(chan_johansen: JohansenResult, chan_prices: pd.DataFrame) -> None:
    y_port = chan_johansen.portfolio(chan_prices)
    hl = half_life(y_port)
    assert hl == pytest.approx(22.66, abs=0.005)  # Chan: 23 days
    slope = np.polyfit(y_port[:-1], np.diff(y_port), 1)[0]
    assert hl == pytest.approx(-np.log(2) / slope, rel=1e-10)


def test_half_life_is_infinite_without_mean_reversion() -> None:
    assert half_life(1.01 ** np.arange(200.0)) == float("inf")


@pytest.mark.parametrize(
    ("prices", "error", "words"),
    [
        (np.arange(100.0).reshape(-1, 1), KalcointError, "at least 2 price series"),
        (np.column_stack([np.full(100, 3.0), random_walk(100, 1)]), KalcointError, "x1 is constant"),
        (np.column_stack([random_walk(6, 1), random_walk(6, 2)]), KalcointError, "at least 12 rows"),
        (np.column_stack([random_walk(100, 1), np.r_[np.nan, random_walk(99, 2)]]), KalcointError, "dropna"),
        (np.column_stack([random_walk(100, 1)] * 2), ComputationError, "collinear"),
    ],
)
def test_johansen_refuses_bad_panels(prices: np.ndarray, error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        johansen(prices)


def _random_baskets(path: Path, count: int, seed: int) -> list[tuple[np.ndarray, int, int]]:
    """(prices, det_order, k_ar_diff) for ``count`` random baskets of 2-4 columns of a data file."""
    frame = pd.read_csv(path, index_col=0, parse_dates=True).select_dtypes("number")
    rng = np.random.default_rng(seed)
    baskets = []
    while len(baskets) < count:
        cols = list(rng.choice(frame.columns, size=int(rng.integers(2, 5)), replace=False))
        prices = frame[cols].dropna().to_numpy()
        if prices.shape[0] >= 100 and np.all(np.ptp(prices, axis=0) > 0):
            baskets.append((prices, int(rng.integers(-1, 2)), int(rng.integers(0, 3))))
    return baskets


@pytest.mark.parametrize("name", datasets.names())
def test_johansen_equals_statsmodels_on_random_baskets(name: str) -> None:
    for prices, det_order, k_ar_diff in _random_baskets(datasets.path(name), 25, seed=13):
        ours = johansen(prices, det_order=det_order, k_ar_diff=k_ar_diff)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = coint_johansen(prices, det_order, k_ar_diff)
        np.testing.assert_allclose(ours.eigenvalues, ref.eig, rtol=0, atol=1e-10)
        np.testing.assert_allclose(ours.trace_stat, ref.lr1, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(ours.max_eig_stat, ref.lr2, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(ours.weights, ref.evec[:, 0], rtol=0, atol=1e-10 * np.max(np.abs(ref.evec)))
        # the other eigenvectors' signs are LAPACK's choice in statsmodels: equal up to sign
        np.testing.assert_allclose(
            ours.eigenvectors * np.sign(ours.eigenvectors[0] * ref.evec[0]),
            ref.evec,
            rtol=0,
            atol=1e-8 * np.max(np.abs(ref.evec)),
        )
        np.testing.assert_array_equal(ours.trace_crit, ref.cvt)
        np.testing.assert_array_equal(ours.max_eig_crit, ref.cvm)


@pytest.mark.parametrize("det_order", [-1, 0, 1])
def test_johansen_critical_value_tables_equal_statsmodels(det_order: int) -> None:
    for k in range(1, 13):
        trace = coint.johansen_critical_values(k, det_order, "trace")
        max_eig = coint.johansen_critical_values(k, det_order, "max_eig")
        np.testing.assert_array_equal(trace, [c_sjt(k - r, det_order) for r in range(k)])
        np.testing.assert_array_equal(max_eig, [c_sja(k - r, det_order) for r in range(k)])


@pytest.mark.parametrize("regression", ["c", "n", "ct", "ctt"])
def test_mackinnon_tables_equal_statsmodels(regression: str) -> None:
    for n_series in range(1, 7):
        for stat in np.linspace(-30.0, 6.0, 1441):
            ref = sm_mackinnonp(stat, regression=regression, N=n_series)
            ours = coint.mackinnonp(stat, regression=regression, N=n_series)
            assert abs(ours - ref) <= 1e-12 and abs(ours - ref) <= 1e-12 * ref + 1e-300
    for n_series in range(1, len(tau_2010s[regression]) + 1):
        for nobs in (np.inf, 25, 100, 1500):
            np.testing.assert_allclose(
                coint.mackinnoncrit(n_series, regression, nobs),
                sm_mackinnoncrit(n_series, regression, nobs),
                rtol=0,
                atol=1e-12,
            )
    with pytest.raises(KalcointError, match="N=7"):
        coint.mackinnonp(-3.0, regression=regression, N=7)


def test_johansen_refuses_bad_options(chan_prices: pd.DataFrame) -> None:
    with pytest.raises(KalcointError, match="det_order"):
        johansen(chan_prices, det_order=2)
    with pytest.raises(KalcointError, match="k_ar_diff"):
        johansen(chan_prices, k_ar_diff=-1)


# ---------------------------------------------------------------- ADF: fast engine = statsmodels


@pytest.mark.slow
@pytest.mark.parametrize(
    "triplet",
    [("EWA", "EWC", "IGE"), ("EWC", "EWA", "IGE"), ("SPY", "IWM", "MDY"), ("GLD", "GDX", "USO"), ("XLE", "XLB", "XME")],
)
@pytest.mark.parametrize("autolag", ["AIC", None])
def test_adf_matches_statsmodels_on_johansen_portfolios(
    etfs: pd.DataFrame, triplet: tuple, autolag: str | None
) -> None:
    prices = etfs[list(triplet)].dropna()
    y_port = johansen(prices).portfolio(prices)
    assert_matches_statsmodels(y_port, autolag=autolag)


def test_adf_chan_portfolio_figures(chan_johansen: JohansenResult, chan_prices: pd.DataFrame) -> None:
    res = assert_matches_statsmodels(chan_johansen.portfolio(chan_prices))
    assert (res.lags, res.nobs) == (12, 1487)
    assert res.stat == pytest.approx(-3.338706, abs=1e-6)
    assert res.pvalue == pytest.approx(0.013235, abs=1e-6)
    assert res.to_dict() == {"adf_stat": res.stat, "adf_lags": 12, "adf_pvalue": res.pvalue}


SERIES = {
    "random_walk": random_walk(1500, 1),
    "ar1_0.5": ar1(1500, 0.5, 2),
    "ar1_0.95": ar1(1500, 0.95, 3),
    "short_n50": random_walk(50, 4),
    "short_ar1_n50": ar1(50, 0.3, 5),
    "scaled_1e-8": random_walk(1500, 6) * 1e-8,
    "scaled_1e6": random_walk(1500, 7) * 1e6,
    "trend": 0.05 * np.arange(1500.0) + ar1(1500, 0.9, 8),
    "min_length_n10": ar1(10, 0.2, 9),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SERIES))
@pytest.mark.parametrize(
    ("autolag", "maxlag"), [("AIC", None), ("BIC", None), (None, None), (None, 0), (None, 2), ("AIC", 3)]
)
def test_adf_matches_statsmodels_on_synthetic_series(name: str, autolag: str | None, maxlag: int | None) -> None:
    assert_matches_statsmodels(SERIES[name], autolag=autolag, maxlag=maxlag)


@pytest.mark.slow
def test_adf_lag_choice_matches_statsmodels_on_50_random_triplets(etfs: pd.DataFrame) -> None:
    rng = np.random.default_rng(20240507)
    lags, checked = set(), 0
    while checked < 50:
        prices = etfs[list(rng.choice(etfs.columns, 3, replace=False))].dropna()
        if len(prices) < 250:
            continue
        try:
            y_port = johansen(prices).portfolio(prices)
        except ComputationError:
            continue
        lags.add(assert_matches_statsmodels(y_port).lags)
        checked += 1
    assert len(lags) >= 3  # the AIC search really chose among several lags


def test_adf_is_scale_and_shift_free() -> None:
    x = random_walk(800, 21)
    base = adf(x)
    for y in (x * 1e-8, x * 1e6, 1e3 + 0.5 * x, x - 1e4):
        res = adf(y)
        assert res.lags == base.lags
        assert abs(res.stat - base.stat) < TOL


def test_adf_exact_on_noise_far_below_the_level() -> None:
    """A level of 5 with noise of 1e-10 (a degenerate filter's spread): the centred
    fast design keeps every digit; it agrees with the plain standardised reference."""
    x = 5.0 + 1e-10 * ar1(600, 0.8, 31)
    stat, lag = reference_adf(x)
    res = adf(x)
    assert res.lags == lag
    assert abs(res.stat - stat) < TOL
    fixed_stat, fixed_lag = reference_adf(x, autolag=None)
    res = adf(x, autolag=None)
    assert res.lags == fixed_lag
    assert abs(res.stat - fixed_stat) < TOL


def test_plain_reference_agrees_with_statsmodels() -> None:
    """The plain reference used above is itself right where adfuller is well conditioned."""
    x = ar1(300, 0.7, 41)
    stat, lag = reference_adf(x)
    sm_stat, _, sm_lag, _ = statsmodels_adf(x, autolag="AIC")
    assert lag == sm_lag
    assert abs(stat - sm_stat) < 1e-10


@pytest.mark.slow
def test_adf_householder_path_matches_statsmodels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(coint, "_CHOL_TOL", 2.0)  # every factor by Householder QR
    for name in ("random_walk", "ar1_0.95", "short_n50", "trend", "scaled_1e-8"):
        assert_matches_statsmodels(SERIES[name])
        assert_matches_statsmodels(SERIES[name], autolag=None)


@pytest.mark.slow
def test_cholesky_and_householder_give_the_same_factor() -> None:
    zt = kernels.adf_design(np.ldexp(SERIES["ar1_0.95"], -4), 20, False)
    zs = zt / np.sqrt((zt * zt).sum(axis=1, keepdims=True))
    chol, status = linalg.cholesky_upper(zs @ zs.T)
    assert status == linalg.OK
    house = kernels.householder_r(zs)
    np.testing.assert_allclose(np.abs(chol), np.abs(house), atol=1e-12)
    np.testing.assert_allclose(chol.T @ chol, zs @ zs.T, atol=1e-12)


@pytest.mark.slow
def test_adf_design_is_the_centred_adfuller_regression() -> None:
    x = ar1(40, 0.5, 51)
    zt = kernels.adf_design(x, 3, True)  # lags 1..3, level, dx
    dx = np.diff(x)
    t = np.arange(3, 39)
    expected = np.array([dx[t - 1], dx[t - 2], dx[t - 3], x[t], dx[t]])
    np.testing.assert_allclose(zt, expected - expected.mean(axis=1, keepdims=True), atol=1e-12)


@pytest.mark.parametrize("nlags", [0, 1, 7, 24])
@pytest.mark.parametrize("level_last", [False, True])
def test_structured_gram_equals_the_explicit_product(nlags: int, level_last: bool) -> None:
    x = SERIES["trend"]
    zt = kernels.adf_design(x, nlags, level_last)
    gram = kernels.adf_gram(x, nlags, level_last)
    np.testing.assert_allclose(gram, zt @ zt.T, rtol=0, atol=1e-11 * np.abs(gram).max())


@pytest.mark.slow
def test_near_ties_of_the_criterion_are_settled_by_statsmodels(monkeypatch: pytest.MonkeyPatch) -> None:
    x = SERIES["ar1_0.5"]
    scaled = np.ldexp(x, -int(np.frexp(np.max(np.abs(x)))[1]))
    _, _, status = kernels.adf_kernel(scaled, 24, 0, coint._CHOL_TOL, coint._RANK_TOL, 1e9)
    assert status == kernels.NEAR_TIE
    monkeypatch.setattr(coint, "_TIE_TOL", 1e9)  # every AIC search is a "near-tie"
    res = adf(x)
    stat, pvalue, lags, nobs = statsmodels_adf(x, autolag="AIC")
    assert (res.stat, res.pvalue, res.lags, res.nobs) == (stat, pvalue, lags, nobs)


def test_lowest_criterion_breaks_ties_like_statsmodels() -> None:
    crit = np.array([3.0, 1.0, 1.0, 2.0])
    assert kernels.lowest_criterion(crit, 0.0) == (1, kernels.OK)  # equal: the smaller lag
    assert kernels.lowest_criterion(crit, 1e-6) == (1, kernels.NEAR_TIE)
    assert kernels.lowest_criterion(np.array([3.0, 1.0, 1.0 + 1e-7]), 1e-6) == (1, kernels.NEAR_TIE)
    assert kernels.lowest_criterion(np.array([3.0, 1.0, 1.0 + 1e-5]), 1e-6) == (1, kernels.OK)


@pytest.mark.slow
def test_adf_t_stat_autolag_and_statsmodels_engine() -> None:
    x = SERIES["ar1_0.95"]
    stat, pvalue, lags, nobs = statsmodels_adf(x, autolag="t-stat")
    res = adf(x, autolag="t-stat")
    assert (res.stat, res.lags, res.nobs) == (stat, lags, nobs)
    assert res.pvalue == pytest.approx(pvalue, rel=1e-12, abs=1e-15)  # kalcoint's MacKinnon tables
    res = adf(x, engine="statsmodels")
    stat, pvalue, lags, nobs = statsmodels_adf(x, autolag="AIC")
    assert (res.stat, res.lags, res.nobs) == (stat, lags, nobs)
    assert res.pvalue == pytest.approx(pvalue, rel=1e-12, abs=1e-15)


# ---------------------------------------------------------------- ADF: refusals


@pytest.mark.parametrize(
    ("series", "kwargs", "error", "words"),
    [
        (np.ones((20, 2)), {}, KalcointError, "1-D series"),
        (np.arange(9.0), {}, KalcointError, "at least 10"),
        (np.r_[np.nan, random_walk(50, 1)], {}, ComputationError, "non-finite"),
        (np.full(50, 2.0), {}, ComputationError, "constant"),
        (random_walk(50, 1), {"maxlag": 24}, KalcointError, r"0\.\.23"),
        (random_walk(50, 1), {"maxlag": -1}, KalcointError, "maxlag"),
        (random_walk(50, 1), {"autolag": "HQIC"}, KalcointError, "autolag"),
        (random_walk(50, 1), {"engine": "gpu"}, KalcointError, "engine"),
        (np.arange(100.0), {}, ComputationError, "degenerate"),  # constant lagged differences
        (np.tile([0.0, 1.0, 3.0], 40), {}, ComputationError, "degenerate"),  # a perfect fit
    ],
)
def test_adf_refuses_bad_input(series: np.ndarray, kwargs: dict, error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        adf(series, **kwargs)


# ---------------------------------------------------------------- compiled code: lazy and cached


@pytest.mark.slow
def test_compiled_adf_is_lazy_at_import_and_cached_across_processes() -> None:
    probe = (
        "import numpy as np, kalcoint.cointegration as c, kalcoint._kernels as k\n"
        "kernels = [k.adf_kernel, k.choose_lag, k.adf_design, k.r_factor, k.linalg.cholesky_upper, k.householder_r]\n"
        "print(sum(len(k.signatures) for k in kernels))\n"
        "c.adf(50 + np.cumsum(np.random.default_rng(0).standard_normal(300)))\n"
        "s = k.adf_kernel.stats\n"
        "print(sum(s.cache_hits.values()), sum(s.cache_misses.values()))\n"
    )
    runs = [subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True) for _ in range(2)]
    compiled_at_import, _ = runs[0].stdout.split("\n", 1)
    assert compiled_at_import == "0"
    lines = runs[1].stdout.split()
    assert lines[0] == "0"
    hits, misses = int(lines[1]), int(lines[2])
    assert (hits, misses) == (1, 0)  # the second process loads machine code, compiles nothing

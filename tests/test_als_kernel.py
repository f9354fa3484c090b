"""The compiled ALS profile against its plain reference, and the compiled pieces it is made of.

Oracles: ``scipy.optimize.nnls`` for the non-negative least squares, ``scipy.optimize.minimize_scalar
(method="bounded")`` for the Brent search, and :func:`kalcoint.tuning.als._profile` (the Python
profile: ``_ALS.solve`` / ``_ALS.loglik`` per candidate, a dict as cache, scipy's search and
solver) for the compiled profile :func:`kalcoint.tuning.als._profile_compiled`. The profile
compares log-likelihoods that differ in their last digits near its maximum, so the two agree only
if every candidate's numbers agree to the last bit: they do (the NNLS kernel calls the BLAS and
LAPACK routines of SciPy's own, in the same order), and the tests hold them to 1e-10.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.optimize import minimize_scalar
from scipy.optimize import nnls as scipy_nnls

from kalcoint import datasets
from kalcoint._kernels import NNLS_MAXITER, NNLS_NONFINITE, NNLS_OK, nnls
from kalcoint._kernels.als import BRENT_STATE, brent_start, brent_tell
from kalcoint.cointegration import johansen
from kalcoint.errors import ComputationError
from kalcoint.synthetic import simulate
from kalcoint.tuning import als
from kalcoint.tuning.mle import _prior, start_models

REL = 1e-10


def _problem(rng: np.random.Generator, kind: int) -> tuple[np.ndarray, np.ndarray]:
    """A random (m, n) NNLS problem; kinds 1-3 degenerate (a repeated, a zero, a dependent column)."""
    m, n = int(rng.integers(1, 10)), int(rng.integers(1, 9))
    A = rng.standard_normal((m, n)) * 10.0 ** rng.uniform(-3, 3)
    if kind == 1 and n > 1:
        A[:, 1] = A[:, 0]
    elif kind == 2:
        A[:, rng.integers(n)] = 0.0
    elif kind == 3 and n > 2:
        A[:, 2] = A[:, 0] - 0.5 * A[:, 1]
    return A, rng.standard_normal(m) * 10.0 ** rng.uniform(-3, 3)


def _assert_nnls_equal(A: np.ndarray, b: np.ndarray, maxiter: int) -> None:
    """The kernel's x and residual norm are scipy's (to the last bit), or both stop at maxiter."""
    x, rnorm, status = nnls(A, b, maxiter)
    try:
        ref, ref_rnorm = scipy_nnls(A, b, maxiter=maxiter)
    except RuntimeError:
        assert status == NNLS_MAXITER
        return
    assert status == NNLS_OK
    np.testing.assert_array_equal(x, ref)
    assert rnorm == ref_rnorm


@pytest.mark.parametrize("kind", [0, 1, 2, 3])
def test_nnls_equals_scipy_on_random_and_degenerate_problems(kind):
    rng = np.random.default_rng(kind)
    for _ in range(500):
        A, b = _problem(rng, kind)
        _assert_nnls_equal(A, b, 3 * A.shape[1])


@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 8), st.integers(1, 7)),
        elements=st.floats(-100.0, 100.0, allow_subnormal=False),
    ),
    st.integers(0, 2**32 - 1),
)
def test_nnls_equals_scipy_property(A, seed):
    """Hypothesis' matrices repeat values and zeros: rank-deficient and tied problems."""
    b = np.random.default_rng(seed).standard_normal(A.shape[0]) * 10.0
    _assert_nnls_equal(A, b, 50 * A.shape[1])


def test_nnls_statuses():
    A, b = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([1.0, 2.0])
    # one inner iteration allowed: scipy raises, the kernel says so
    with pytest.raises(RuntimeError, match="Maximum number of iterations"):
        scipy_nnls(A, b, maxiter=1)
    assert nnls(A, b, 1)[2] == NNLS_MAXITER
    x, rnorm, status = nnls(A, np.array([1.0, np.nan]), 10)
    assert status == NNLS_NONFINITE and not np.any(x)
    # a right-hand side in the negative cone: x = 0 and the residual is |b|
    x, rnorm, status = nnls(A, np.array([-1.0, -2.0]), 10)
    assert status == NNLS_OK and not np.any(x) and rnorm == pytest.approx(math.sqrt(5.0), rel=1e-15)


def _brent_points(f, lo: float, hi: float, xatol: float, maxfun: int) -> tuple[list[float], float]:
    """The points the compiled bounded Brent search asks for (driven from Python) and its result."""
    state = np.empty(BRENT_STATE)
    x = brent_start(lo, hi, xatol, state)
    points = []
    while True:
        points.append(x)
        done, x = brent_tell(f(x), maxfun, state)
        if done:
            return points, x


FUNCTIONS = {
    "quadratic": lambda u: (u - 0.3) ** 2,
    "flat_then_steep": lambda u: max(u, 0.0) ** 4 - 1e-3 * u,
    "infinite_right": lambda u: math.inf if u > 0.2 else (u + 0.5) ** 2,
    "boundary_minimum": lambda u: -u,
    "cusp": lambda u: abs(u - 1.0 / 3.0) ** 0.5,
}


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # scipy's inf - inf
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@pytest.mark.parametrize("xatol, maxfun", [(1e-6, 500), (1e-3, 500), (1e-6, 4)])
def test_brent_takes_scipy_steps(name, xatol, maxfun):
    f = FUNCTIONS[name]
    asked: list[float] = []
    res = minimize_scalar(
        lambda u: asked.append(float(u)) or f(u),
        bounds=(-1.0, 2.0),
        method="bounded",
        options={"xatol": xatol, "maxiter": maxfun},
    )
    points, x = _brent_points(f, -1.0, 2.0, xatol, maxfun)
    assert points == asked
    assert x == res.x


def _sample(name: str, columns: list[str], rows: slice) -> np.ndarray:
    frame = datasets.load(name)[columns].dropna()
    return np.ascontiguousarray(frame.to_numpy()[rows], dtype=np.float64)


def _synthetic(k: int, n: int, seed: int) -> np.ndarray:
    assets = tuple(f"S{i}" for i in range(k))
    prices, _ = simulate(
        n=n,
        state_var=(0.05,) + (1e-6,) * (k - 1),
        hedge_ratios=(0.8, 0.5, 0.3)[: k - 1],
        start_prices=(25.0, 30.0, 40.0)[: k - 1],
        seed=seed,
        assets=assets,
    )
    return prices.to_numpy()


COUNTRY = ("EWA US Equity", "EWC US Equity", "EWG US Equity", "EWU US Equity")
SAMPLES = {
    "chan_k3_first": lambda: _sample("chan_etf", ["EWA", "EWC", "IGE"], slice(0, 250)),
    "chan_k3_late": lambda: _sample("chan_etf", ["EWA", "EWC", "IGE"], slice(1200, 1450)),
    "chan_k2": lambda: _sample("chan_etf", ["EWG", "EWQ"], slice(500, 750)),
    "chan_k4": lambda: _sample("chan_etf", ["EWG", "EWQ", "EWU", "EFA"], slice(300, 550)),
    "country_k2": lambda: _sample("country_etf", list(COUNTRY[:2]), slice(100, 350)),
    "country_k3": lambda: _sample("country_etf", list(COUNTRY[:3]), slice(700, 950)),
    "country_k4": lambda: _sample("country_etf", list(COUNTRY), slice(1000, 1250)),
    "synthetic_k2": lambda: _synthetic(2, 250, 3),
    "synthetic_k3": lambda: _synthetic(3, 300, 4),
    "synthetic_k4": lambda: _synthetic(4, 250, 5),
}


def _round_setup(values: np.ndarray) -> tuple[als._ALS, tuple[float, np.ndarray], list[float]]:
    """The first round's inputs of the profile: the sample, the first pass's noises and grid."""
    jr = johansen(values)
    b0, p0 = _prior(values, jr, None, None)
    start = start_models(values, jr, b0, p0)["first_pass"]
    first = (float(start.obs_var), np.asarray(start.state_var, dtype=np.float64))
    return als._ALS(values, b0, p0, als.LAGS), first, als._candidates(start.alpha11)


def _assert_close(a: np.ndarray | float, b: np.ndarray | float) -> None:
    np.testing.assert_allclose(a, b, rtol=REL, atol=0.0)


@pytest.mark.parametrize("name", sorted(SAMPLES))
@pytest.mark.parametrize("scale", [1.0, 0.2])
def test_compiled_profile_equals_reference_round(name, scale):
    """One round from the first pass's noises (and from noises scaled down, another first filter):
    the same alpha11, theta, log-likelihood and count of solves."""
    sample, first, grid = _round_setup(SAMPLES[name]())
    first = (first[0] * scale, first[1] * scale)
    ref = als._profile(sample, first, grid)
    solves = sample.evaluations
    sample.evaluations = 0
    out = als._profile_compiled(sample, first, grid)
    assert sample.evaluations == solves > len(grid)
    _assert_close(out[0], ref[0])
    _assert_close(out[1], ref[1])
    _assert_close(out[2], ref[2])


def test_compiled_profile_fails_as_the_reference_when_every_filter_breaks_down():
    sample, first, grid = _round_setup(SAMPLES["chan_k3_first"]())
    broken = (-1e6, first[1])  # Q_t < 0 on the first day whatever alpha11
    for profile in (als._profile, als._profile_compiled):
        with pytest.raises(ComputationError, match="every alpha11"):
            profile(sample, broken, grid)
    assert sample.evaluations == 0


def _fits(values: np.ndarray) -> tuple[als.FitResult, als.FitResult]:
    jr = johansen(values)
    args = (values, jr, als.MAX_ROUNDS, None, als.LAGS, "profile", None, None)
    return als._fit(*args, als._profile_compiled), als._fit(*args, als._profile)


def _assert_fits_equal(out: als.FitResult, ref: als.FitResult) -> None:
    assert (out.iterations, out.converged) == (ref.iterations, ref.converged)
    assert out.options == ref.options  # incl. the round chosen and the count of solves
    for key in ("alpha11", "obs_var", "loglik"):
        _assert_close(out.history[key], ref.history[key])
    _assert_close(out.model.alpha11, ref.model.alpha11)
    _assert_close(out.model.obs_var, ref.model.obs_var)
    _assert_close(out.model.state_var, ref.model.state_var)


@pytest.mark.parametrize("name", ["chan_k3_first", "country_k2", pytest.param("synthetic_k4", marks=pytest.mark.slow)])
def test_compiled_fit_equals_reference_fit(name):
    """Every round of a whole fit (k = 2, 3, 4): the histories, the model and ``options`` alike."""
    _assert_fits_equal(*_fits(SAMPLES[name]()))


def test_fit_uses_the_compiled_profile(monkeypatch):
    values = SAMPLES["chan_k3_first"]()
    ref = als._fit(values, johansen(values), 3, None, als.LAGS, "profile", None, None, als._profile_compiled)
    monkeypatch.setattr(als, "_profile", None)  # the reference is not called by fit
    out = als.fit(values, johansen(values), iterations=3)
    _assert_fits_equal(out, ref)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, columns",
    [
        ("chan_etf", ["EWA", "EWC", "IGE"]),
        ("chan_etf", ["EWG", "EWQ", "EWU"]),
        ("chan_etf", ["EWJ", "EWZ"]),
        ("country_etf", list(COUNTRY[1:4])),
        ("country_etf", list(COUNTRY)),
    ],
)
def test_compiled_fit_equals_reference_fit_on_weekly_windows_deep(name, columns):
    """250-row windows as ``kalcoint report`` re-estimates them, several weeks apart."""
    frame = datasets.load(name)[columns].dropna().to_numpy()
    for start in range(0, frame.shape[0] - 250, 230):
        _assert_fits_equal(*_fits(np.ascontiguousarray(frame[start : start + 250])))

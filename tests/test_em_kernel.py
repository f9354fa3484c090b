"""The compiled SQUAREM loop of EM (``em_squarem``) equals its plain Python reference.

Oracle: ``_EM.squarem_reference``, the SQUAREM cycle written as a Python loop over single EM
steps (:func:`kalcoint._kernels.em_map`), SQUAREM's coordinates and norm element by element with
``math``. The kernel must give the same end point, history rows, ``converged`` and number of EM
steps, on 250-row windows of the packaged ETF files (k = 2, 3, 4, the windows of ``kalcoint
report``), on generated baskets, on runs that stop on the budget and runs that converge. SQUAREM
amplifies a difference in the last bit of a step length into a different path, so equality to
1e-12 here means the same arithmetic, step by step.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from kalcoint import datasets
from kalcoint.cointegration import johansen
from kalcoint.errors import ComputationError
from kalcoint.filtering import observation_arrays
from kalcoint.synthetic import simulate
from kalcoint.tuning import em, mle

CHAN_BASKETS = {2: ["EWA", "EWC"], 3: ["EWA", "EWC", "IGE"], 4: ["EWA", "EWC", "IGE", "EWU"]}
COUNTRY_BASKETS = {
    2: ["EWA US Equity", "EWC US Equity"],
    3: ["EWG US Equity", "EWQ US Equity", "EWN US Equity"],
    4: ["EWG US Equity", "EWQ US Equity", "EWN US Equity", "EWU US Equity"],
}
WINDOW = 250
"""Rows of a window, as ``kalcoint report``'s walk-forward re-estimates."""


def _window(name: str, k: int, first: int) -> np.ndarray:
    cols = (CHAN_BASKETS if name == "chan_etf" else COUNTRY_BASKETS)[k]
    return datasets.load(name)[cols].dropna().to_numpy()[first : first + WINDOW]


def _generated(k: int, seed: int) -> np.ndarray:
    prices, _ = simulate(
        n=300,
        state_var=(0.05,) + (1e-6,) * (k - 1),
        hedge_ratios=(0.8, 0.5, 0.3)[: k - 1],
        start_prices=(25.0, 30.0, 35.0)[: k - 1],
        seed=seed,
        assets=tuple(f"S{i}" for i in range(k)),
    )
    return prices.to_numpy()


def _setup(values: np.ndarray) -> tuple[em._EM, dict[str, np.ndarray]]:
    """A fresh ``_EM`` on ``values`` and the start vectors of :func:`kalcoint.tuning.em.fit`."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    jo = johansen(values)
    b0, p0 = mle._prior(values, jo, None, None)
    starts = mle.start_models(values, jo, b0, p0)
    vectors = {name: np.concatenate([[m.alpha11, m.obs_var], m.state_var]) for name, m in starts.items()}
    y, X = observation_arrays(values)
    return em._EM(y, X, b0, p0), vectors


def _run(values: np.ndarray, start: np.ndarray, iterations: int, tol: float, reference: bool):
    """(end point, history, converged, EM steps counted) of one SQUAREM run on a fresh ``_EM``."""
    runner, _ = _setup(values)
    method = runner.squarem_reference if reference else runner.squarem
    params, hist, converged = method(start.copy(), iterations, tol)
    return params, hist, converged, runner.maps


def _assert_same(kernel, reference) -> None:
    params, hist, converged, maps = kernel
    assert converged == reference[2] and maps == reference[3]
    assert hist.shape == reference[1].shape
    np.testing.assert_allclose(params, reference[0], rtol=1e-12, atol=0.0)
    np.testing.assert_allclose(hist, reference[1], rtol=1e-12, atol=0.0)


def _burned_start(values: np.ndarray) -> np.ndarray:
    """The start ``fit`` continues: ``BURN_IN`` plain steps from each start, the best one."""
    runner, vectors = _setup(values)
    burned = {name: runner.plain(vec, em.BURN_IN, 0.0) for name, vec in vectors.items()}
    return max(burned.values(), key=lambda run: run[1][-1, 2])[0]


@pytest.mark.parametrize("name", ["chan_etf", "country_etf"])
@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("first", [0, 600])
def test_kernel_equals_reference_on_etf_windows(name, k, first):
    values = _window(name, k, first)
    start = _burned_start(values)
    # a long run (converges or not), and one that stops on its budget (tol 0: only a fall stops it)
    for iterations, tol in ((500, em.EM_TOL), (9, 0.0)):
        kernel = _run(values, start, iterations, tol, reference=False)
        _assert_same(kernel, _run(values, start, iterations, tol, reference=True))
    # 9 steps and the final evaluation, unless the log-likelihood fell (EWA/EWC/IGE/EWU from row 0)
    assert kernel[3] == 10 or kernel[2]


@pytest.mark.parametrize("k, seed", [(2, 1), (3, 7), (4, 3)])
def test_kernel_equals_reference_on_generated_data_from_every_start(k, seed):
    values = _generated(k, seed)
    _, vectors = _setup(values)
    for vector in vectors.values():
        kernel = _run(values, vector, 300, em.EM_TOL, reference=False)
        _assert_same(kernel, _run(values, vector, 300, em.EM_TOL, reference=True))


def test_kernel_converges_as_the_reference():
    """EWA/EWC from row 120: both stop on the relative rise, at the same cycle, before the budget."""
    values = _window("chan_etf", 2, 120)
    start = _burned_start(values)
    kernel = _run(values, start, 2000, em.EM_TOL, reference=False)
    _assert_same(kernel, _run(values, start, 2000, em.EM_TOL, reference=True))
    params, hist, converged, maps = kernel
    assert converged and maps < 2001
    rises = np.diff(hist[:, 2])
    assert rises[-1] <= em.EM_TOL * abs(hist[-2, 2])
    assert np.all(rises[:-1] > em.EM_TOL * np.abs(hist[:-2, 2]))  # no earlier stop
    assert params[0] == hist[-1, 0] and params[1] == hist[-1, 1]


@pytest.mark.parametrize("iterations", [0, 1, 2, 3, 4, 5])
def test_kernel_spends_small_budgets_as_the_reference(iterations):
    """Budgets too small for a full cycle: plain steps, then the fallback; ``iterations + 1`` steps."""
    values = _window("country_etf", 3, 0)
    start = _burned_start(values)
    kernel = _run(values, start, iterations, 0.0, reference=False)
    _assert_same(kernel, _run(values, start, iterations, 0.0, reference=True))
    assert kernel[3] == iterations + 1 and not kernel[2]


def test_breakdown_raises_as_the_reference():
    values = _window("chan_etf", 3, 0)
    start = _burned_start(values)
    start[1] = math.nan  # obs_var: the first innovation variance is NaN
    for reference in (False, True):
        with pytest.raises(ComputationError, match="EM broke down"):
            _run(values, start, 100, em.EM_TOL, reference)


@pytest.mark.slow
def test_fit_with_the_kernel_equals_fit_with_the_reference(monkeypatch):
    """The whole EM fit (burn-in, SQUAREM, polish, MLE starts) on the first 250 rows of
    EWA/EWC/IGE: the same model, history and options with either loop."""
    values = _window("chan_etf", 3, 0)
    jo = johansen(values)
    fast = em.fit(values, jo)
    monkeypatch.setattr(em._EM, "squarem", em._EM.squarem_reference)
    plain = em.fit(values, jo)
    assert fast.iterations == plain.iterations == 2000 and fast.converged == plain.converged
    np.testing.assert_allclose(fast.model.state_var, plain.model.state_var, rtol=1e-12, atol=0.0)
    assert fast.model.alpha11 == pytest.approx(plain.model.alpha11, rel=1e-12)
    assert fast.model.obs_var == pytest.approx(plain.model.obs_var, rel=1e-12)
    for key, column in plain.history.items():
        np.testing.assert_allclose(fast.history[key], column, rtol=1e-12, atol=0.0)
    for key in ("em_steps", "em_loglik", "em_converged", "em_gradient", "polish_iterations", "winner"):
        assert fast.options[key] == (
            pytest.approx(plain.options[key], rel=1e-12) if key != "winner" else plain.options[key]
        )

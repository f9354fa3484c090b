"""Autocovariance least squares.

Oracle: on a short sample the innovations of any fixed-gain first filter are an
affine map ``e = T y + d`` of the observations (T found by running the filter on
unit vectors), and ``Cov(y)`` under the true model is dense linear algebra on
``(b_1, w_1, ..., w_n-1)``. With the exact covariances ``Cov(e_t, e_t+j)`` as
targets, ALS's linear relation must give back the true ``(Ve, Vw, P0)``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from kalcoint.errors import KalcointError
from kalcoint.filtering import StateSpaceModel, kalman_filter, observation_arrays
from kalcoint.synthetic import simulate
from kalcoint.tuning import als, tune

LAGS = 6
TRUE = StateSpaceModel(0.95, 0.02, [0.03, 1e-4, 2e-5], [-5.0, 1.4, -0.3], [4.0, 0.05, 0.02])
FIRST_FILTER = StateSpaceModel(0.95, 0.1, [0.2, 1e-3, 1e-6], [-5.0, 1.4, -0.3], [50.0, 1.0, 0.5])


def innovation_map(values: np.ndarray, model: StateSpaceModel) -> np.ndarray:
    """(n, n) T with e = T y + d for the filter ``model`` on the observation rows of ``values``."""
    n = values.shape[0]
    base = values.copy()
    base[:, 0] = 0.0
    e0 = kalman_filter(base, model).innovation
    T = np.empty((n, n))
    for s in range(n):
        unit = base.copy()
        unit[s, 0] = 1.0
        T[:, s] = kalman_filter(unit, model).innovation - e0
    return T


def observation_cov(values: np.ndarray, model: StateSpaceModel) -> np.ndarray:
    """(n, n) Cov(y) under ``model`` (prior covariance diag(initial_cov) at t = 1), dense."""
    _, X = observation_arrays(values)
    n, k = X.shape
    A = np.diag(model.transition)
    M = np.zeros((n * k, n * k))  # b = M xi, xi = (b_1, w_1, ..., w_{n-1})
    for t in range(n):
        for j in range(t + 1):
            M[t * k : (t + 1) * k, j * k : (j + 1) * k] = np.linalg.matrix_power(A, t - j)
    cov_xi = np.kron(np.eye(n), np.diag(model.state_var))
    cov_xi[:k, :k] = np.diag(model.initial_cov)
    H = np.zeros((n, n * k))
    for t in range(n):
        H[t, t * k : (t + 1) * k] = X[t]
    return H @ M @ cov_xi @ M.T @ H.T + model.obs_var * np.eye(n)


def test_linear_relation_gives_back_the_truth_from_exact_covariances(ewa_ewc_ige):
    values = ewa_ewc_ige.to_numpy()[:40]
    T = innovation_map(values, FIRST_FILTER)
    cov_e = T @ observation_cov(values, TRUE) @ T.T
    n = values.shape[0]
    targets = np.zeros((n, LAGS + 1))
    for j in range(LAGS + 1):
        targets[: n - j, j] = np.diagonal(cov_e, offset=j)
    first = kalman_filter(values, FIRST_FILTER)
    _, X = observation_arrays(values)
    ntn, ntb = als.normal_equations(
        X, FIRST_FILTER.transition, first.predicted_cov, targets, first.innovation_var, LAGS
    )
    theta = als._solve_nonnegative(ntn, ntb)
    truth = np.concatenate([[TRUE.obs_var], TRUE.state_var, TRUE.initial_cov])
    np.testing.assert_allclose(theta, truth, rtol=1e-6)
    # the first filter's own covariances are not the truth: the relation is what recovers it
    assert abs(first.innovation_var[5] - cov_e[5, 5]) > 0.1 * cov_e[5, 5]


def test_nonnegative_solution_clips_a_negative_unconstrained_estimate():
    # N theta = r has the unconstrained solution (2, -1); with theta >= 0 the optimum of
    # theta' N theta - 2 theta' r is (r_1 / N_11, 0) = (1.5, 0)
    N = np.array([[2.0, 1.0], [1.0, 2.0]])
    r = N @ np.array([2.0, -1.0])
    np.testing.assert_allclose(als._solve_nonnegative(N, r), [1.5, 0.0], atol=1e-12)


@pytest.mark.parametrize("rows, lags", [(slice(600, 850), als.LAGS), (slice(0, 1500), 3), (slice(0, 12), als.LAGS)])
def test_fused_k3_pass_equals_filter_then_normal_equations(ewa_ewc_ige, rows, lags):
    """The k = 3 first filter with its normal equations in one pass against the two passes it fuses
    (the filter with stored covariances, then ``normal_equations`` on its output): the
    log-likelihood, innovations and equations to 1e-12 (in fact to the last bit)."""
    from kalcoint import _kernels as kernels

    values = ewa_ewc_ige.to_numpy()[rows]
    y, X = observation_arrays(values)
    X = np.ascontiguousarray(X)
    n = len(y)
    model = FIRST_FILTER
    a, vw, P0 = model.transition, np.asarray(model.state_var), np.diag(model.initial_cov)
    b0 = np.asarray(model.initial_state)
    first = kalman_filter(values, model)
    ref_ntn, ref_ntb = als.normal_equations(X, a, first.predicted_cov, first.innovation, first.innovation_var, lags)
    m = kernels.als_equations(n, lags)
    assert m == n + sum(max(n - j, 0) for j in range(1, lags + 1))
    work = (np.empty((n, 3)), np.empty((n, 3, 7)), np.empty((7, m)), np.empty(m))
    e, q, ntn, ntb = np.empty(n), np.empty(n), np.zeros((7, 7)), np.zeros(7)
    ll = kernels.als_first_filter_k3(y, X, a, vw, model.obs_var, b0, P0, lags, *work, e, q, ntn, ntb)
    assert ll == pytest.approx(first.loglik, rel=1e-12)
    np.testing.assert_allclose(e, first.innovation, rtol=1e-12, atol=1e-12 * np.abs(y).max())
    np.testing.assert_allclose(q, first.innovation_var, rtol=1e-12)
    np.testing.assert_allclose(ntn, ref_ntn, rtol=1e-12, atol=1e-12 * np.abs(ref_ntn).max())
    np.testing.assert_allclose(ntb, ref_ntb, rtol=1e-12, atol=1e-12 * np.abs(ref_ntb).max())


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_recovers_simulated_noises_at_n_20000(seed):
    """Truth alpha11 = 0.95, Ve = 0.02, Vw = (0.05, 1e-6, 1e-6) (synthetic.simulate). Our runs:
    seed 1: alpha11 0.9507, Ve 0.01986, Vw11 0.05025; seed 2: 0.9462, 0.02044, 0.04905."""
    prices, truth = simulate(n=20000, seed=seed)
    fit = tune(prices, method="als")
    assert fit.converged
    assert fit.obs_var == pytest.approx(truth.obs_var, rel=0.2)
    assert fit.state_var[0] == pytest.approx(truth.state_var[0], rel=0.2)
    assert fit.alpha11 == pytest.approx(truth.alpha11, abs=0.01)
    assert fit.obs_var == pytest.approx(truth.obs_var, rel=0.05)  # in fact within 5%
    assert fit.state_var[0] == pytest.approx(truth.state_var[0], rel=0.05)
    assert not fit.degenerate


# Figures of our runs on EWA, EWC, IGE (1500 days): MLE's maximum is -223.85833 (test_mle_em).
MLE_LOGLIK = -223.85833


@pytest.fixture(scope="module")
def als_fit(ewa_ewc_ige):
    return tune(ewa_ewc_ige, method="als")


def test_als_on_ewa_ewc_ige(als_fit):
    assert als_fit.converged and als_fit.iterations == 30
    assert als_fit.alpha11 == pytest.approx(0.999473, abs=1e-5)
    assert als_fit.obs_var == pytest.approx(0.016272, rel=1e-3)
    assert als_fit.state_var[0] == pytest.approx(0.029288, rel=1e-3)
    assert als_fit.state_var[1] == 0.0  # the EWC hedge ratio does not move (MLE: < 1e-9 too)
    assert als_fit.state_var[2] == pytest.approx(1.5366e-5, rel=1e-3)
    # below the maximum likelihood, by 2.2
    assert als_fit.loglik == pytest.approx(-226.0792, abs=1e-3)
    assert als_fit.loglik < MLE_LOGLIK
    assert not als_fit.degenerate


def test_tune_als_cli_json_and_save(run_cli, chan_file, tmp_path, als_fit):
    out, model = tmp_path / "t.json", tmp_path / "m.db"
    res = run_cli("tune", chan_file, "--assets", "EWA,EWC,IGE", "--method", "als", "--json", out, "--save", model)
    assert res.exit_code == 0, res.stderr
    d = json.loads(out.read_text())
    assert d["method"] == "als" and d["iterations"] == 30
    assert d["alpha11"] == pytest.approx(als_fit.alpha11, rel=1e-12)
    assert d["loglik"] == pytest.approx(-226.0792, abs=1e-3)
    from kalcoint.live import load_model

    saved = load_model(model)
    assert saved.method == "als"
    assert saved.model.obs_var == pytest.approx(0.016272, rel=1e-3)
    assert saved.model.state_var.tolist() == d["state_var"]


def test_bad_options_are_refused(ewa_ewc_ige):
    with pytest.raises(KalcointError, match="lags"):
        tune(ewa_ewc_ige, method="als", lags=0)
    with pytest.raises(KalcointError, match="profile"):
        tune(ewa_ewc_ige, method="als", alpha11="best")
    with pytest.raises(KalcointError, match="within"):
        tune(ewa_ewc_ige, method="als", alpha11=1.5)
    with pytest.raises(KalcointError, match="iterations 0"):
        tune(ewa_ewc_ige, method="als", iterations=0)


def test_backtest_model_als_runs_the_als_filter(ewa_ewc_ige, als_fit):
    from kalcoint.backtest import MODELS, backtest

    assert "als" in MODELS
    bt = backtest(ewa_ewc_ige, "als")
    assert bt.retunes["alpha11"].iloc[0] == pytest.approx(als_fit.alpha11, rel=1e-12)
    assert bt.retunes["obs_var"].iloc[0] == pytest.approx(als_fit.obs_var, rel=1e-12)
    # the traded spread is the ALS filter's
    np.testing.assert_allclose(bt.spread, als_fit.result.spread, rtol=0, atol=1e-12)

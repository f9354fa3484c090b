"""The compiled filter (docs/method.md §3) against a hand computation and the plain NumPy reference."""

from __future__ import annotations

import math
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kc_reference import observations, ref_filter, ref_first_pass  # noqa: E402

from kalcoint import datasets
from kalcoint import ComputationError, KalcointError, StateSpaceModel, johansen, kalman_filter  # noqa: E402
from kalcoint.tuning.seed import first_pass_model  # noqa: E402

RTOL = 1e-10


def load(assets: list[str]) -> pd.DataFrame:
    prices = pd.read_csv(datasets.path("chan_etf"), index_col=0, parse_dates=True)
    return prices[assets].dropna()


def assert_cols_close(actual: np.ndarray, expected: np.ndarray, rtol: float = RTOL) -> None:
    """Equal to ``rtol`` relative to each column's (or matrix entry's) largest magnitude over t."""
    scale = np.max(np.abs(expected), axis=0, keepdims=True)
    excess = np.abs(actual - expected) / np.maximum(rtol * scale, 1e-300)
    assert actual.shape == expected.shape and np.max(excess) <= 1.0, f"off by {np.max(excess) * rtol:.3g} (relative)"


def assert_matches_reference(res, ref) -> None:
    assert_cols_close(res.predicted_state, ref.b_pred)
    assert_cols_close(res.filtered_state, ref.b_filt)
    assert_cols_close(res.predicted_cov, ref.P_pred)
    assert_cols_close(res.filtered_cov, ref.P_filt)
    np.testing.assert_allclose(res.innovation, ref.e, rtol=0, atol=RTOL * np.max(np.abs(res.y)))
    np.testing.assert_allclose(res.innovation_var, ref.Q, rtol=RTOL)
    assert res.loglik == pytest.approx(ref.loglik, rel=RTOL)


def test_one_step_by_hand():
    # b0 = (0, 0), P0 = I, x = (1, 2), y = 3, Ve = 1:
    # e = 3, Q = x P0 x' + Ve = 1 + 4 + 1 = 6, K = (1, 2)/6, b = K e = (0.5, 1),
    # P = I - K x = [[1 - 1/6, -2/6], [-2/6, 1 - 4/6]],
    # loglik = -0.5 (log(2 pi 6) + 9/6)
    model = StateSpaceModel(0.7, 1.0, [5.0, 5.0], [0.0, 0.0], [1.0, 1.0])
    res = kalman_filter(np.array([[3.0, 2.0]]), model)
    assert res.innovation[0] == 3.0
    assert res.innovation_var[0] == 6.0
    np.testing.assert_allclose(res.filtered_state[0], [0.5, 1.0], rtol=1e-15)
    np.testing.assert_allclose(res.filtered_cov[0], [[5 / 6, -1 / 3], [-1 / 3, 1 / 3]], rtol=1e-15)
    np.testing.assert_array_equal(res.predicted_state[0], [0.0, 0.0])  # no prediction step at t = 1
    np.testing.assert_array_equal(res.predicted_cov[0], np.eye(2))
    assert res.loglik == pytest.approx(-0.5 * (math.log(2 * math.pi * 6) + 1.5), rel=1e-15)


def test_two_steps_by_hand_exact():
    # Second step: A = diag(1/2, 1), Vw = diag(1/4, 1/8); x_2 = (1, 1), y_2 = 2.
    half, q = Fraction(1, 2), Fraction(1, 8)
    b = [Fraction(1, 2), Fraction(1)]
    P = [[Fraction(5, 6), Fraction(-1, 3)], [Fraction(-1, 3), Fraction(1, 3)]]
    bp = [half * b[0], b[1]]
    Pp = [[half * half * P[0][0] + Fraction(1, 4), half * P[0][1]], [half * P[1][0], P[1][1] + q]]
    x = [1, 1]
    e = 2 - (bp[0] + bp[1])
    Px = [Pp[0][0] + Pp[0][1], Pp[1][0] + Pp[1][1]]
    Q = Px[0] + Px[1] + 1
    b_post = [bp[i] + Px[i] / Q * e for i in range(2)]
    P_post = [[Pp[i][j] - Px[i] * Px[j] / Q for j in range(2)] for i in range(2)]
    model = StateSpaceModel(0.5, 1.0, [0.25, 0.125], [0.0, 0.0], [1.0, 1.0])
    res = kalman_filter(np.array([[3.0, 2.0], [2.0, float(x[1])]]), model)
    assert res.innovation[1] == pytest.approx(float(e), rel=1e-15)
    assert res.innovation_var[1] == pytest.approx(float(Q), rel=1e-15)
    np.testing.assert_allclose(res.predicted_cov[1], np.array(Pp, dtype=float), rtol=1e-15)
    np.testing.assert_allclose(res.filtered_state[1], np.array(b_post, dtype=float), rtol=1e-15)
    np.testing.assert_allclose(res.filtered_cov[1], np.array(P_post, dtype=float), rtol=1e-14)


SMALL = np.array(
    [
        [10.0, 4.0, 7.5],
        [10.6, 4.2, 7.4],
        [10.2, 4.1, 7.9],
        [11.1, 4.4, 8.1],
        [11.0, 4.6, 7.7],
        [11.8, 4.5, 8.3],
        [12.3, 4.9, 8.0],
        [11.9, 4.8, 8.6],
    ]
)


@pytest.mark.parametrize("k", [2, 3])
def test_small_series_matches_reference(k):
    prices = SMALL[:, :k]
    model = StateSpaceModel(0.8, 0.5, [0.3, 0.01, 0.02][:k], [0.5, 1.5, -0.2][:k], [2.0, 0.4, 0.3][:k])
    res = kalman_filter(prices, model)
    y, X = observations(prices)
    ref = ref_filter(
        y,
        X,
        np.diag(model.transition),
        np.diag(model.state_var),
        model.obs_var,
        model.initial_state,
        np.diag(model.initial_cov),
    )
    assert_matches_reference(res, ref)
    assert res.filtered_state[-1, 0] == pytest.approx(ref.b_filt[-1, 0], rel=RTOL)


@pytest.mark.parametrize("assets", [["EWA", "EWC"], ["EWA", "EWC", "IGE"], ["EWA", "EWC", "IGE", "EEM"]])
def test_first_pass_model_on_real_data_matches_reference(assets):
    prices = load(assets).to_numpy()
    w = johansen(prices).weights
    model = first_pass_model(prices, w)
    ref_model = ref_first_pass(prices, w)
    res = kalman_filter(prices, model)
    y, X = observations(prices)
    ref = ref_filter(y, X, ref_model.A, ref_model.Vw, ref_model.Ve, ref_model.b0, ref_model.P0)
    assert_matches_reference(res, ref)


def test_ewa_ewc_ige_first_pass_figures():
    # Figures of the first pass on Chan's triplet (pinned so that a change anywhere upstream shows).
    prices = load(["EWA", "EWC", "IGE"])
    res = kalman_filter(prices, first_pass_model(prices.to_numpy(), johansen(prices).weights))
    assert res.loglik == pytest.approx(-2051.316833145555, rel=1e-9)
    assert res.n == 1500


@pytest.mark.parametrize("state_var", [None, 2.5e-4])
def test_chan_filter_matches_reference(state_var):
    prices = load(["EWC", "EWA"])  # Chan's example 3.3: y = EWC, x = (1, EWA)
    model = StateSpaceModel.chan(2, delta=1e-4, state_var=state_var)
    vw = 1e-4 / (1 - 1e-4) if state_var is None else state_var
    assert model.alpha11 == 1.0 and model.obs_var == 0.001
    np.testing.assert_array_equal(model.state_var, [vw, vw])
    np.testing.assert_array_equal(model.initial_state, [0.0, 0.0])
    np.testing.assert_array_equal(model.initial_cov, [0.0, 0.0])
    res = kalman_filter(prices, model)
    y, X = observations(prices.to_numpy())
    ref = ref_filter(y, X, np.eye(2), vw * np.eye(2), 0.001, np.zeros(2), np.zeros((2, 2)))
    assert_matches_reference(res, ref)
    np.testing.assert_array_equal(res.filtered_state[0], [0.0, 0.0])  # P0 = 0: first update leaves b at 0
    assert res.innovation_var[0] == 0.001


def test_continuing_from_start_equals_one_long_run():
    prices = load(["EWA", "EWC", "IGE"])
    model = first_pass_model(prices.to_numpy(), johansen(prices).weights)
    whole = kalman_filter(prices, model)
    cut = 700
    head = kalman_filter(prices.iloc[:cut], model)
    tail = kalman_filter(prices.iloc[cut:], model, start=(head.filtered_state[-1], head.filtered_cov[-1]))
    np.testing.assert_allclose(tail.filtered_state, whole.filtered_state[cut:], rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(tail.predicted_cov, whole.predicted_cov[cut:], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(tail.innovation, whole.innovation[cut:], rtol=0, atol=1e-12)
    assert head.loglik + tail.loglik == pytest.approx(whole.loglik, rel=1e-13)
    # the reference, continued the same way
    y, X = observations(prices.to_numpy()[cut:])
    ref = ref_filter(
        y,
        X,
        np.diag(model.transition),
        np.diag(model.state_var),
        model.obs_var,
        head.filtered_state[-1],
        head.filtered_cov[-1],
        predict_first=True,
    )
    assert_matches_reference(tail, ref)


def test_loglik_formula():
    prices = load(["EWA", "EWC", "IGE"])
    res = kalman_filter(prices, first_pass_model(prices.to_numpy(), johansen(prices).weights))
    e, q = res.innovation, res.innovation_var
    expected = -0.5 * np.sum(np.log(2 * np.pi * q) + e**2 / q)
    assert res.loglik == pytest.approx(expected, rel=1e-13)


def test_spread_is_level_plus_residual():
    # docs/method.md §6: s_t = p_1 - sum_{j>=2} b_j p_j = b_1 + eps_t
    prices = load(["EWA", "EWC", "IGE"])
    res = kalman_filter(prices, first_pass_model(prices.to_numpy(), johansen(prices).weights))
    np.testing.assert_allclose(res.spread, res.filtered_state[:, 0] + res.residual, rtol=0, atol=1e-12)
    frame = res.to_frame()
    assert list(frame.columns) == ["beta_const", "beta_EWC", "beta_IGE", "innovation", "innovation_var", "spread"]
    assert isinstance(frame.index, pd.DatetimeIndex) and frame.index.name == "date"
    assert frame.index[0] == pd.Timestamp("2006-04-26") and len(frame) == res.nobs == 1500
    hedge = res.hedge_ratios
    assert list(hedge.columns) == ["EWC", "IGE"] and hedge.index.equals(frame.index)
    np.testing.assert_array_equal(hedge["IGE"], frame["beta_IGE"])


def test_zero_variances_are_refused():
    model = StateSpaceModel(1.0, 0.0, [0.0, 0.0], [0.0, 1.0], [0.0, 0.0])
    with pytest.raises(ComputationError, match="innovation variance"):
        kalman_filter(SMALL[:, :2], model)


def test_bad_inputs_are_refused():
    model = StateSpaceModel(1.0, 1.0, [0.1, 0.1, 0.1], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    with pytest.raises(KalcointError, match="k=3"):
        kalman_filter(SMALL[:, :2], model)
    bad = SMALL.copy()
    bad[3, 1] = np.nan
    with pytest.raises(KalcointError, match="non-finite"):
        kalman_filter(bad, model)
    with pytest.raises(KalcointError, match=">= 0"):
        StateSpaceModel(1.0, -1.0, [0.1, 0.1], [0.0, 0.0], [1.0, 1.0])


def test_filter_loop_without_covariances_k3_equals_reference():
    """The k = 3 pass on scalars (no stored covariances: the seed passes' and the likelihood's)
    against the plain reference filter on EWA/EWC/IGE, and bitwise equal to the array pass."""
    import kalcoint._kernels as kernels

    values = load(["EWA", "EWC", "IGE"]).to_numpy()
    y, X = observations(values)
    n = len(y)
    a, vw, ve = np.array([0.99, 1.0, 1.0]), np.array([0.02, 1e-6, 2e-5]), 0.02
    b0, P0 = np.array([-5.0, 1.4, -0.3]), np.diag([50.0, 1.0, 0.5])
    ref = ref_filter(y, X, np.diag(a), np.diag(vw), ve, b0, P0)
    none, none_cov = np.empty((1, 3)), np.empty((1, 3, 3))
    fast = [np.empty((n, 3)), np.empty(n), np.empty(n)]
    ll = kernels.filter_loop(y, X, a, vw, ve, b0, P0, False, False, none, none_cov, fast[0], none_cov, fast[1], fast[2])
    assert_cols_close(fast[0], ref.b_filt)
    np.testing.assert_allclose(fast[1], ref.e, rtol=0, atol=RTOL * np.max(np.abs(y)))
    np.testing.assert_allclose(fast[2], ref.Q, rtol=RTOL)
    assert ll == pytest.approx(ref.loglik, rel=RTOL)
    stored = [np.empty((n, 3)), np.empty(n), np.empty(n)]
    cov = [np.empty((n, 3)), np.empty((n, 3, 3)), np.empty((n, 3, 3))]
    ll_arrays = kernels.filter_loop(
        y, X, a, vw, ve, b0, P0, False, True, cov[0], cov[1], stored[0], cov[2], *stored[1:]
    )
    assert ll == ll_arrays and all(np.array_equal(u, v) for u, v in zip(fast, stored))


def test_filter_loop_without_covariances_k2_equals_reference():
    """The k = 2 pass on scalars (the seed passes' filter for pairs) against the plain reference
    filter on EWA/EWC, and bitwise equal to the array pass."""
    import kalcoint._kernels as kernels

    values = load(["EWA", "EWC"]).to_numpy()
    y, X = observations(values)
    n = len(y)
    a, vw, ve = np.array([0.99, 1.0]), np.array([0.02, 1e-6]), 0.02
    b0, P0 = np.array([-5.0, 1.4]), np.array([[50.0, 0.3], [0.3, 1.0]])
    ref = ref_filter(y, X, np.diag(a), np.diag(vw), ve, b0, P0)
    none, none_cov = np.empty((1, 2)), np.empty((1, 2, 2))
    fast = [np.empty((n, 2)), np.empty(n), np.empty(n)]
    ll = kernels.filter_loop(y, X, a, vw, ve, b0, P0, False, False, none, none_cov, fast[0], none_cov, fast[1], fast[2])
    assert_cols_close(fast[0], ref.b_filt)
    np.testing.assert_allclose(fast[1], ref.e, rtol=0, atol=RTOL * np.max(np.abs(y)))
    np.testing.assert_allclose(fast[2], ref.Q, rtol=RTOL)
    assert ll == pytest.approx(ref.loglik, rel=RTOL)
    stored = [np.empty((n, 2)), np.empty(n), np.empty(n)]
    cov = [np.empty((n, 2)), np.empty((n, 2, 2)), np.empty((n, 2, 2))]
    ll_arrays = kernels.filter_loop(
        y, X, a, vw, ve, b0, P0, False, True, cov[0], cov[1], stored[0], cov[2], *stored[1:]
    )
    assert ll == ll_arrays and all(np.array_equal(u, v) for u, v in zip(fast, stored))


def test_extend_append_and_apply_continue_as_statsmodels_results_do(ewa_ewc_ige):
    """``FilterResult.extend`` continues the posterior over new rows (= one filter over all rows),
    ``append`` gives all rows at once, ``TunedModel.apply`` runs the tuned quantities from the prior."""
    from kalcoint.tuning import tune

    p = ewa_ewc_ige
    model = StateSpaceModel.chan(3)
    whole = kalman_filter(p, model)
    head = kalman_filter(p.iloc[:900], model)
    more = head.extend(p.iloc[900:])
    assert more.nobs == 600 and more.index[0] == p.index[900]
    np.testing.assert_allclose(more.filtered_state, whole.filtered_state[900:], rtol=0, atol=1e-12)
    both = head.append(p.iloc[900:])
    assert both.nobs == 1500 and (both.index == p.index).all()
    np.testing.assert_allclose(both.filtered_cov, whole.filtered_cov, rtol=0, atol=1e-12)
    assert both.loglik == pytest.approx(whole.loglik, rel=1e-12)
    other = StateSpaceModel.chan(3, delta=1e-3)
    np.testing.assert_array_equal(
        head.extend(p.iloc[900:], other).filtered_state,
        kalman_filter(p.iloc[900:], other, start=head.last_posterior).filtered_state,
    )
    tuned = tune(p.iloc[:500], method="mle")
    np.testing.assert_array_equal(
        tuned.apply(p.iloc[500:]).filtered_state, kalman_filter(p.iloc[500:], tuned.model).filtered_state
    )

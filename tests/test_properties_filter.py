"""Properties of the Kalman filter (docs/method.md §3) on generated models and prices.

Held, for any model of k = 2 to 5 assets (any alpha11 in (-1, 1], positive noises, any prior):

* the compiled recursion equals the plain NumPy reference of tests/kc_reference.py, written
  literally from docs/method.md: predicted and filtered states and covariances, innovations,
  their variances and the log-likelihood, to 1e-10 of each quantity's scale; the scalar k = 3
  path the tuning passes take gives the same states and innovations;
* the filter fed the rows in any pieces (each piece continuing from the posterior of the one
  before, ``start=last_posterior``) gives the states of one batch run over all rows, to 1e-9;
* a saved live model fed the rows after its sample in any pieces (``LiveModel.update``) holds
  the states, innovations and bands units of one batch filter over the sample and the rows.

The tests without ``_deep`` run a few fixed examples (the ``kalcoint`` hypothesis profile of
tests/conftest.py); their ``_deep`` twins (marked slow) run many more, on longer series.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from kc_reference import observations, ref_filter
from kc_strategies import cuts, dated, log_uniform, make_panel, models, panels

from kalcoint import live
from kalcoint._kernels import filter_loop
from kalcoint.errors import ComputationError
from kalcoint.filtering import StateSpaceModel, kalman_filter
from kalcoint.strategy import bands

RTOL = 1e-10
DEEP = 300


def close(actual: np.ndarray, expected: np.ndarray, scale: np.ndarray, rtol: float = RTOL) -> None:
    """``|actual - expected| <= rtol * scale`` entrywise (``scale`` broadcast over t)."""
    excess = np.abs(actual - expected) - rtol * scale
    assert actual.shape == expected.shape and np.all(excess <= 0), f"off by {np.max(excess):.3g} beyond the tolerance"


def reference_of(prices: np.ndarray, model: StateSpaceModel):
    y, X = observations(prices)
    return ref_filter(
        y,
        X,
        np.diag(model.transition),
        np.diag(model.state_var),
        model.obs_var,
        model.initial_state,
        np.diag(model.initial_cov),
    )


def check_against_reference(prices: np.ndarray, model: StateSpaceModel) -> None:
    res = kalman_filter(prices, model)
    ref = reference_of(prices, model)
    # rounding scales with the largest magnitude a quantity takes over the run (prior included)
    b_scale = np.max(np.abs(np.concatenate([ref.b_pred, ref.b_filt])), axis=0)
    var = np.max(np.diagonal(np.concatenate([ref.P_pred, ref.P_filt]), axis1=1, axis2=2), axis=0)
    P_scale = np.sqrt(np.outer(var, var))  # |P_ij| <= sqrt(P_ii P_jj)
    close(res.predicted_state, ref.b_pred, b_scale)
    close(res.filtered_state, ref.b_filt, b_scale)
    close(res.predicted_cov, ref.P_pred, P_scale)
    close(res.filtered_cov, ref.P_filt, P_scale)
    fit_scale = np.abs(res.y) + np.abs(res.X) @ b_scale
    close(res.innovation, ref.e, fit_scale)
    close(res.innovation_var, ref.Q, ref.Q)
    terms = np.abs(np.log(2 * np.pi * ref.Q)) + ref.e**2 / ref.Q
    assert abs(res.loglik - ref.loglik) <= RTOL * np.sum(terms)
    if prices.shape[1] == 3:  # the tuning passes' scalar path (no covariances kept)
        n = prices.shape[0]
        b_filt, innov, innov_var = np.empty((n, 3)), np.empty(n), np.empty(n)
        unused = np.empty((0, 3, 3))
        loglik = filter_loop(
            res.y,
            res.X,
            model.transition,
            model.state_var,
            model.obs_var,
            model.initial_state.copy(),
            np.diag(model.initial_cov),
            False,
            False,
            np.empty((0, 3)),
            unused,
            b_filt,
            unused,
            innov,
            innov_var,
        )
        close(b_filt, ref.b_filt, b_scale)
        close(innov, ref.e, fit_scale)
        close(innov_var, ref.Q, ref.Q)
        assert abs(loglik - ref.loglik) <= RTOL * np.sum(terms)


@st.composite
def model_cases(draw, max_n: int) -> tuple[np.ndarray, StateSpaceModel]:
    k = draw(st.integers(2, 5))
    prices = draw(panels(1, max_n, k, k))
    return prices, draw(models(k))


@given(case=model_cases(max_n=25))
@example(
    case=(make_panel(7, 12, 3, 0.01), StateSpaceModel(-0.999, 1e-8, [1e2, 1e-8, 1e-8], [0.0, 1.0, -1.0], [0.0] * 3))
)
def test_compiled_filter_equals_reference(case):
    check_against_reference(*case)


@pytest.mark.slow
@settings(max_examples=DEEP)
@given(case=model_cases(max_n=120))
def test_compiled_filter_equals_reference_deep(case):
    check_against_reference(*case)


# ---------------------------------------------------------------- any scale: right or refused


@st.composite
def scale_cases(draw):
    k = draw(st.integers(2, 4))
    prices = draw(panels(1, 20, k, k))
    variance = log_uniform(1e-300, 1e300)
    alpha11 = draw(st.floats(-1.0, 1.0, exclude_min=True))
    model = StateSpaceModel(
        alpha11, draw(variance), [draw(variance) for _ in range(k)], np.zeros(k), [draw(variance) for _ in range(k)]
    )
    return prices, model


def check_right_or_refused(prices: np.ndarray, model: StateSpaceModel) -> None:
    try:
        res = kalman_filter(prices, model)
    except ComputationError as exc:
        message = str(exc)
        assert "\n" not in message  # and, every variance being positive, it does not blame a zero one:
        assert "overflowed float64" in message or "by rounding" in message
        return
    for values in (res.filtered_state, res.filtered_cov, res.innovation, res.innovation_var, [res.loglik]):
        assert np.all(np.isfinite(values))


# Found by this property: variances of 1e300 overflowed and the refusal blamed a zero obs_var; a prior
# variance of 1e153 gave a -inf covariance without a refusal; one of 1e19 made Q_t negative by rounding.
OVERFLOW = (make_panel(1, 20, 2, 0.01), StateSpaceModel(1.0, 1e300, [1e300, 1e300], [0.0, 0.0], [0.0, 0.0]))
LAST_DAY = (np.array([[7.40476431, 123.4901344]]), StateSpaceModel(0.0, 1.0, [1.0, 1.0], [0.0, 0.0], [1.0, 1e153]))
ROUNDING = (
    np.array(
        [
            [84.14764555079962, 140.89952150453138, 123.05149523141831],
            [84.19001703309173, 141.55225270013693, 123.61465548389084],
        ]
    ),
    StateSpaceModel(0.0, 1.0, [1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1e19]),
)


@given(case=scale_cases())
@example(case=OVERFLOW)
@example(case=LAST_DAY)
@example(case=ROUNDING)
def test_variances_of_any_scale_give_finite_figures_or_a_refusal(case):
    check_right_or_refused(*case)


@pytest.mark.slow
@settings(max_examples=DEEP)
@given(case=scale_cases())
def test_variances_of_any_scale_give_finite_figures_or_a_refusal_deep(case):
    check_right_or_refused(*case)


# ---------------------------------------------------------------- any split equals one batch


def check_pieces_equal_batch(prices: np.ndarray, model: StateSpaceModel, cut: list[int]) -> None:
    batch = kalman_filter(prices, model)
    states, covs, innov, start = [], [], [], None
    for lo, hi in zip([0, *cut], [*cut, prices.shape[0]]):
        part = kalman_filter(prices[lo:hi], model, start=start)
        states.append(part.filtered_state)
        covs.append(part.filtered_cov)
        innov.append(part.innovation)
        start = part.last_posterior
    scale = np.max(np.abs(batch.filtered_state), axis=0)
    np.testing.assert_allclose(np.concatenate(states), batch.filtered_state, rtol=0, atol=1e-9 * max(1.0, *scale))
    np.testing.assert_allclose(np.concatenate(innov), batch.innovation, rtol=0, atol=1e-9 * np.max(np.abs(prices)))
    P_scale = np.max(np.abs(batch.filtered_cov))
    np.testing.assert_allclose(np.concatenate(covs), batch.filtered_cov, rtol=0, atol=1e-9 * max(1.0, P_scale))


@st.composite
def split_cases(draw, max_n: int, max_pieces: int):
    k = draw(st.integers(2, 4))
    prices = draw(panels(2, max_n, k, k))
    return prices, draw(models(k)), draw(cuts(prices.shape[0], max_pieces))


@given(case=split_cases(max_n=40, max_pieces=5))
def test_filter_fed_in_pieces_equals_one_batch(case):
    check_pieces_equal_batch(*case)


@pytest.mark.slow
@settings(max_examples=DEEP)
@given(case=split_cases(max_n=300, max_pieces=12))
def test_filter_fed_in_pieces_equals_one_batch_deep(case):
    check_pieces_equal_batch(*case)


# ---------------------------------------------------------------- the live model


SAMPLE = 60  # rows a live model is saved with


def check_live_pieces(frame: pd.DataFrame, chan: dict, cut: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        check_live_file(Path(tmp) / "model.kcm", frame, chan, cut)


def check_live_file(path: Path, frame: pd.DataFrame, chan: dict, cut: list[int]) -> None:
    saved = live.save_chan_model(path, frame.iloc[:SAMPLE], **chan)
    new = frame.iloc[SAMPLE:]
    for lo, hi in zip([0, *cut], [*cut, len(new)]):
        res = saved.update(new.iloc[lo:hi])
        assert res.applied == hi - lo
    batch = kalman_filter(frame, saved.model)
    h = live.load_model(path).history()
    betas = [f"beta_{c}" for c in ["const", *frame.columns[1:]]]
    assert list(h["kind"]) == ["tune"] * SAMPLE + ["update"] * len(new)
    scale = max(1.0, float(np.max(np.abs(batch.filtered_state))))
    np.testing.assert_allclose(h[betas].to_numpy(), batch.filtered_state, rtol=0, atol=1e-9 * scale)
    np.testing.assert_allclose(h["innovation"], batch.innovation, rtol=0, atol=1e-9 * float(frame.to_numpy().max()))
    np.testing.assert_allclose(h["innovation_var"], batch.innovation_var, rtol=1e-9)
    np.testing.assert_array_equal(h["units"], bands(batch.innovation, np.sqrt(batch.innovation_var)))


@st.composite
def live_cases(draw, max_new: int, max_pieces: int):
    k = draw(st.integers(2, 3))
    prices = draw(panels(SAMPLE + 1, SAMPLE + max_new, k, k))
    chan = {"delta": draw(log_uniform_delta()), "obs_var": draw(st.sampled_from([1e-3, 1e-2, 1.0]))}
    return dated(prices), chan, draw(cuts(prices.shape[0] - SAMPLE, max_pieces))


def log_uniform_delta() -> st.SearchStrategy[float]:
    return st.floats(-7.0, -1.0).map(lambda e: float(10.0**e))


@settings(max_examples=4)
@given(case=live_cases(max_new=15, max_pieces=4))
def test_live_model_fed_in_pieces_equals_one_batch(case):
    check_live_pieces(*case)


@pytest.mark.slow
@settings(max_examples=60)
@given(case=live_cases(max_new=80, max_pieces=10))
def test_live_model_fed_in_pieces_equals_one_batch_deep(case):
    check_live_pieces(*case)

"""The k = 2 (pairs) gradient pass of maximum likelihood on scalars (``_loglik_grad_k2`` and its
interleaved twin ``_loglik_grad_k2_many``) against the array passes it replaces.

Oracles: :func:`kalcoint._kernels.filter_loop` (its array recursion for k = 2) for the
log-likelihood and ``_loglik_grad_any`` (the adjoint pass for any k) for the gradient. The scalar
pass is their arithmetic in their order, so both hold to the last bit; the array pass itself is
held to a plain NumPy tangent filter and to finite differences in tests/test_mle_em.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from kc_strategies import make_panel, models

import kalcoint._kernels as kernels
from kalcoint._kernels import mle as mle_kernels
from kalcoint.cointegration import johansen
from kalcoint.filtering import StateSpaceModel, observation_arrays
from kalcoint.tuning import mle


def filter_loglik(y: np.ndarray, X: np.ndarray, a: np.ndarray, model: StateSpaceModel) -> float:
    """filter_loop's log-likelihood (its array recursion: k = 2, no stored covariances)."""
    n, k = X.shape
    unused = np.empty((0, k, k))
    prior = (model.initial_state.copy(), np.diag(model.initial_cov))
    outputs = (np.empty((0, k)), unused, np.empty((n, k)), unused, np.empty(n), np.empty(n))
    return float(kernels.filter_loop(y, X, a, model.state_var, model.obs_var, *prior, False, False, *outputs))


def both_passes(y: np.ndarray, X: np.ndarray, a: np.ndarray, model: StateSpaceModel):
    """(loglik, gradient) of :func:`kalcoint._kernels.loglik_grad_into` and of the array pass."""
    n, k = X.shape
    args = (y, X, a, model.state_var, model.obs_var, model.initial_state.copy(), np.diag(model.initial_cov))
    grad, ref_grad = np.empty(k + 2), np.empty(k + 2)
    ll = kernels.loglik_grad_into(*args, np.empty((n, kernels.work_columns(k))), grad)
    ref_ll = mle_kernels._loglik_grad_any(*args, np.empty((n, kernels.work_columns(k))), ref_grad)
    return ll, grad, ref_ll, ref_grad


def check_pair_pass(prices: np.ndarray, model: StateSpaceModel) -> None:
    y, X = observation_arrays(prices)
    a = model.transition.copy()
    ll, grad, ref_ll, ref_grad = both_passes(y, X, a, model)
    expected = filter_loglik(y, X, a, model)
    assert ll == expected or (math.isnan(ll) and math.isnan(expected))
    if math.isfinite(ll):
        assert ref_ll == ll
        np.testing.assert_array_equal(grad, ref_grad)


@st.composite
def pair_cases(draw, max_n: int) -> tuple[np.ndarray, StateSpaceModel]:
    n = draw(st.integers(1, max_n))
    seed = draw(st.integers(0, 2**32 - 1))
    vol = draw(st.sampled_from([0.01, 0.002, 0.03]))
    return make_panel(seed, n, 2, vol), draw(models(2))


@given(case=pair_cases(max_n=300))
@example(case=(make_panel(7, 40, 2, 0.01), StateSpaceModel(-0.999, 1e-8, [1e2, 1e-8], [0.0, 1.0], [0.0, 0.0])))
@example(case=(make_panel(3, 200, 2, 0.03), StateSpaceModel(1.0, 1e2, [1e-8, 1e2], [50.0, -50.0], [1e3, 1e-6])))
def test_pair_pass_equals_filter_and_array_pass(case):
    """Any model (alpha11 in (-1, 1], noises 1e-8 to 1e2, any prior): the log-likelihood is
    filter_loop's and the gradient the array pass's, to the last bit."""
    check_pair_pass(*case)


def test_pair_transition_other_than_unit_takes_the_array_pass():
    """A second transition entry other than 1 (outside the method) runs the array pass: still the
    filter's log-likelihood to the last bit."""
    prices = make_panel(5, 120, 2, 0.01)
    y, X = observation_arrays(prices)
    model = StateSpaceModel(0.9, 0.01, [0.02, 1e-4], [1.0, 0.5], [10.0, 1.0])
    a = np.array([0.9, 0.97])
    ll, grad, ref_ll, ref_grad = both_passes(y, X, a, model)
    assert ll == filter_loglik(y, X, a, model) == ref_ll
    np.testing.assert_array_equal(grad, ref_grad)


@pytest.fixture(scope="module")
def ewa_ige(ewa_ewc_ige):
    values = ewa_ewc_ige.to_numpy()[:, [0, 2]]
    y, X = observation_arrays(values)
    b0, p0 = mle.default_prior(values, johansen(values))
    return y, X, b0, np.diag(p0)


# (alpha11, obs_var, state_var_1..2); the last one overflows the variances: the filter breaks down
MANY_POINTS = np.array(
    [[0.98, 0.02, 0.02, 1e-5], [0.5, 1e-3, 0.3, 1e-12], [-0.9, 0.1, 1e-6, 1e-3], [0.99, 1e300, 1e300, 1e300]]
)


@pytest.mark.parametrize("free", [True, False])
@pytest.mark.parametrize("rows", [[0, 1, 2], [1, 0], [0, 3, 1]])
def test_interleaved_pair_passes_equal_single_passes(ewa_ige, rows, free):
    """Two and three parameter sets at once (the lockstep of the starts), alpha11 free or held at 1:
    each objective and gradient is the single pass's to the last bit, a set whose filter breaks down
    included (objective inf, gradient NaN, the others unchanged)."""
    y, X, b0, P0 = ewa_ige
    n = y.size
    points = MANY_POINTS[rows]
    thetas = np.column_stack([np.arctanh(np.minimum(points[:, 0], 0.999)), np.log(points[:, 1:])])
    thetas = np.vstack([thetas, np.zeros((3 - len(rows), 4))])
    fixed = 0.0 if free else 1.0
    works = np.empty((3, n, kernels.work_columns(2)))
    values, grads = np.full(3, -1.0), np.full((3, 4), -1.0)
    kernels.objective_grad_many(thetas, len(rows), free, fixed, y, X, np.ones(2), b0, P0, works, values, grads)
    for j, row in enumerate(rows):
        single = np.empty(4)
        value = kernels.objective_grad(thetas[j], free, fixed, y, X, np.ones(2), b0, P0, works[0], np.empty(4), single)
        assert values[j] == value
        np.testing.assert_array_equal(grads[j], single)
        assert math.isfinite(value) == (row != 3)

"""Standard errors by the observed information: the Hessian of the log-likelihood at an optimum.

The log-likelihood is that of spec section 3 (the filter's innovations), as a function of
the free quantities ``(alpha11, obs_var, state_var_1..k)`` with the model's prior
``(initial_state, initial_cov)`` held fixed, exactly as maximum likelihood, EM (and any
method registered with ``inference=True``) treat it. Its Hessian is taken by central
differences of the analytic gradient (the compiled adjoint pass of
:func:`kalcoint._kernels.loglik_grad`), which keeps far more digits than second
differences of the log-likelihood itself; ``cov_params`` is the inverse of minus that
Hessian (the observed information).

A quantity on its bound has no standard error; it is held fixed and its row and column of
the covariance are NaN, with the reason:

* ``alpha11`` within ``2 (1 - ALPHA11_MAX)`` of +-1 (the estimators' bound);
* a variance the data do not tell from zero: setting it to zero lowers the log-likelihood
  by less than :data:`FLAT_LOGLIK` (or raises it: an estimator that stopped short of the
  bound, as EM's slow approach to a zero variance does). (A test against the daily price-change
  variance, as the diagnosis uses, would call an interior ``obs_var = 1`` "on its bound" on
  a long sample whose price scale grows: the daily price-change variance then says little.)

When the observed information of the free quantities is not positive definite every entry
is NaN, and the reason says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .._checks import ALPHA11_MAX
from ..filtering import StateSpaceModel, observation_arrays

HESSIAN_STEP = 1e-4
"""Relative central-difference step of the gradient (alpha11: at most a quarter of its distance to 1)."""
FLAT_LOGLIK = 1e-3
"""A variance whose removal (set to 0) lowers the log-likelihood by less than this is on its bound."""

__all__ = ["FLAT_LOGLIK", "HESSIAN_STEP", "Inference", "observed_information", "param_names"]


def param_names(assets: list[str]) -> list[str]:
    """``alpha11, obs_var, state_var.const, state_var.<TICKER>...`` for assets (dependent first).

    Examples
    --------
    >>> param_names(["EWA", "EWC"])
    ['alpha11', 'obs_var', 'state_var.const', 'state_var.EWC']
    """
    return ["alpha11", "obs_var", "state_var.const", *[f"state_var.{a}" for a in assets[1:]]]


@dataclass(frozen=True)
class Inference:
    """Covariance of the estimates and why some entries are missing.

    Attributes
    ----------
    cov : ndarray, shape (k + 2, k + 2)
        Inverse observed information of ``(alpha11, obs_var, state_var_1..k)``; NaN rows and
        columns for the quantities without a standard error.
    notes : dict of int to str
        Position -> why that quantity has no standard error.

    Examples
    --------
    >>> inf = Inference(np.full((3, 3), np.nan), {0: "on its bound"})
    >>> inf.notes[0]
    'on its bound'
    """

    cov: np.ndarray
    notes: dict[int, str] = field(default_factory=dict)


def _gradient(y: np.ndarray, X: np.ndarray, model: StateSpaceModel, params: np.ndarray) -> np.ndarray:
    from .._kernels import loglik_grad

    k = X.shape[1]
    a = np.ones(k)
    a[0] = params[0]
    grad = np.empty(k + 2)
    ll = loglik_grad(
        y,
        X,
        a,
        np.ascontiguousarray(params[2:]),
        float(params[1]),
        np.ascontiguousarray(model.initial_state),
        np.diag(model.initial_cov),
        grad,
    )
    if not math.isfinite(ll):
        return np.full(k + 2, np.nan)
    return grad


def _loglik(y: np.ndarray, X: np.ndarray, model: StateSpaceModel, params: np.ndarray) -> float:
    from .mle import _Likelihood

    lik = _Likelihood(y, X, np.ascontiguousarray(model.initial_state), np.diag(model.initial_cov))
    return lik.loglik(params[0], params[1], params[2:])


def _bounds(y: np.ndarray, X: np.ndarray, model: StateSpaceModel, params: np.ndarray) -> dict[int, str]:
    """Positions of the quantities on their bound, with the reason."""
    notes: dict[int, str] = {}
    if 1.0 - abs(params[0]) <= 2.0 * (1.0 - ALPHA11_MAX):
        notes[0] = f"on its bound: |alpha11| = {abs(params[0]):.8g} is at the estimators' limit {ALPHA11_MAX}"
    base = _loglik(y, X, model, params)
    for i in range(1, params.size):
        zero = params.copy()
        zero[i] = 0.0
        ll0 = _loglik(y, X, model, zero)
        if math.isfinite(ll0) and ll0 > base - FLAT_LOGLIK:
            effect = (
                f"raises the log-likelihood by {ll0 - base:.2g}"
                if ll0 > base
                else f"lowers the log-likelihood by only {base - ll0:.2g}"
            )
            notes[i] = f"on its bound: the data do not tell {params[i]:.3g} from 0 (setting it to 0 {effect})"
    return notes


def observed_information(values: np.ndarray, model: StateSpaceModel) -> Inference:
    """Inverse observed information of ``(alpha11, obs_var, state_var_1..k)`` at ``model``.

    Parameters
    ----------
    values : ndarray, shape (n, k)
        The prices the model was tuned on (first column = dependent asset).
    model : StateSpaceModel
        A maximum of the log-likelihood (its prior is held fixed).

    Returns
    -------
    Inference
        ``cov`` (k + 2, k + 2), NaN where a quantity has no standard error, and ``notes``.

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> m = kc.tune(p, method="mle")
    >>> inf = observed_information(p.to_numpy(), m.model)
    >>> inf.cov.shape
    (5, 5)
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    y, X = observation_arrays(values)
    params = np.concatenate([[model.alpha11, model.obs_var], model.state_var])
    size = params.size
    notes = _bounds(y, X, model, params)
    free = np.array([i not in notes for i in range(size)])
    cov = np.full((size, size), np.nan)
    if not free.any():
        return Inference(cov, notes)
    step = HESSIAN_STEP * np.abs(params)
    step[0] = min(HESSIAN_STEP, 0.25 * (1.0 - abs(params[0])))
    idx = np.flatnonzero(free)
    hess = np.empty((idx.size, idx.size))
    for col, i in enumerate(idx):
        up, down = params.copy(), params.copy()
        up[i] += step[i]
        down[i] -= step[i]
        hess[:, col] = (_gradient(y, X, model, up)[idx] - _gradient(y, X, model, down)[idx]) / (2.0 * step[i])
    info = -0.5 * (hess + hess.T)
    try:
        if not np.all(np.isfinite(info)):
            raise np.linalg.LinAlgError("non-finite")
        np.linalg.cholesky(info)
        sub = np.linalg.inv(info)
        sub = 0.5 * (sub + sub.T)  # inv rounds the two triangles apart; a covariance is symmetric
    except np.linalg.LinAlgError:
        why = "the observed information of the free quantities is not positive definite (not a maximum?)"
        return Inference(cov, {**notes, **{int(i): why for i in idx}})
    cov[np.ix_(idx, idx)] = sub
    return Inference(cov, notes)

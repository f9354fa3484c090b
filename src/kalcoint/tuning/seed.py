"""The seed method's adaptive tuning (docs/method.md §4 and §5).

The first pass is built from the Johansen state path ``bJ`` (§4); every later
pass re-estimates ``alpha11``, ``obs_var``, ``state_var`` and ``initial_cov``
from the previous pass's posterior states (§5). All passes run in one compiled
loop (:func:`seed_passes`) around the shared filter recursion
:func:`kalcoint._kernels.filter_loop`.

The method as written re-estimates from the filtered means ``b_{t|t}`` with no
covariance terms; that collapses (docs/findings.md, "The collapse law"). The
options ``moments="smoothed"`` and ``covariance_terms=True`` (§10) turn the
re-estimation, one change at a time, into EM's M-step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..cointegration import JohansenResult
from .._checks import check_choice, check_iterations, check_tol
from ..errors import ComputationError, KalcointError
from ..filtering import StateSpaceModel
from .registry import FitResult
from .._kernels import seed_passes

RESIDUALS = ("posterior", "prior")
BM_OPTIONS = ("johansen", "sample")
MOMENTS = ("filtered", "smoothed")
HISTORY_KEYS = ("alpha11", "obs_var", "loglik", "mean_e2_over_q2")
"""Columns of :attr:`SeedRun.history`, one row per pass."""


@dataclass(frozen=True)
class SeedOptions:
    """Options of the later passes (docs/method.md §5 and §10).

    residual : "posterior" (the method's default, ``y - x.b_t``) or "prior" (the innovation ``e_t``;
        ``obs_var`` is then ``mean(e_t^2)`` whatever ``moments`` and ``covariance_terms`` say).
    bm : "johansen" (default, mean of the Johansen path) or "sample" (mean of the states),
        the centre used for ``initial_cov`` in later passes.
    fix_alpha11 : hold ``alpha11`` at this value in every pass (1.0 gives the identity comparison).
    moments : "filtered" (default, as the method writes it: ``b_t = b_{t|t}``) or "smoothed"
        (``b_t = b_{t|n}`` from the fixed-interval smoother).
    covariance_terms : add the posterior covariance terms to every re-estimate (default False, as
        written): ``obs_var = mean((y_t - x_t b_t)^2 + x_t P_t x_t')`` and the like (§10).

    Examples
    --------
    >>> SeedOptions(residual="prior", fix_alpha11=1.0).fix_alpha11
    1.0
    """

    residual: str = "posterior"
    bm: str = "johansen"
    fix_alpha11: float | None = None
    moments: str = "filtered"
    covariance_terms: bool = False

    def __post_init__(self) -> None:
        check_choice(self.residual, RESIDUALS, "residual")
        check_choice(self.bm, BM_OPTIONS, "bm")
        check_choice(self.moments, MOMENTS, "moments")
        if self.fix_alpha11 is not None and not (
            isinstance(self.fix_alpha11, (int, float)) and math.isfinite(self.fix_alpha11)
        ):
            raise KalcointError(
                f"fix_alpha11 {self.fix_alpha11} must be a finite number, e.g. 1.0", params="fix_alpha11"
            )


def johansen_path(prices: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(n, k) Johansen state path ``bJ_t = (y_port,t / w_1, -w_2/w_1, ..., -w_k/w_1)`` (docs/method.md §2).

    Examples
    --------
    >>> import numpy as np
    >>> johansen_path(np.array([[10.0, 5.0]]), np.array([1.0, -2.0])).tolist()
    [[0.0, 2.0]]
    """
    w = np.asarray(weights, dtype=np.float64)
    n = prices.shape[0]
    path = np.empty((n, w.size))
    path[:, 0] = (prices @ w) / w[0]
    path[:, 1:] = -w[1:] / w[0]
    return path


def first_pass_model(prices: np.ndarray, weights: np.ndarray, fix_alpha11: float | None = None) -> StateSpaceModel:
    """The quantities of the first pass (docs/method.md §4), from an (n, k) price panel and Johansen weights.

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices().to_numpy()
    >>> round(first_pass_model(p, kc.johansen(p).weights).alpha11, 4)
    0.9961
    """
    bJ = johansen_path(prices, weights)
    b1 = bJ[:, 0]
    n, k = bJ.shape
    denom = float(b1[:-1] @ b1[:-1])
    if fix_alpha11 is not None:
        alpha11 = float(fix_alpha11)
    elif denom > 0.0:
        alpha11 = float(b1[1:] @ b1[:-1]) / denom
    else:
        raise ComputationError("the Johansen level path is identically zero; alpha11 is undefined")
    obs_var = float(np.var(b1))  # population variance (divide by n)
    a = np.ones(k)
    a[0] = alpha11
    gamma = np.diag(bJ.T @ bJ / n)
    state_var = gamma - a * gamma * a  # diag(Gamma - A Gamma A')
    state_var[1:] = 0.0
    state_var[0] = (1.0 - alpha11**2) * gamma[0]
    initial_state = np.concatenate([[0.0], -weights[1:] / weights[0]])
    xa = prices.astype(np.float64).copy()
    xa[:, 0] = alpha11  # rows x_t A = (a11, p_2, ..., p_k)
    moment = xa.T @ xa / n
    try:
        inv = np.linalg.inv(moment)
    except np.linalg.LinAlgError as exc:
        raise ComputationError(f"first pass: sum (x_t A)'(x_t A) is singular ({exc})") from exc
    initial_cov = obs_var * np.diag(inv).copy()
    if np.any(state_var < 0) or np.any(initial_cov < 0) or obs_var <= 0:
        raise negative_first_pass(alpha11)
    return StateSpaceModel(alpha11, obs_var, state_var, initial_state, initial_cov)


def negative_first_pass(alpha11: float) -> ComputationError:
    """The error of a first pass that gives a negative variance (:func:`first_pass_model`).

    Examples
    --------
    >>> str(negative_first_pass(1.0031))[:50]
    'first pass gives a negative variance (alpha11=1.00'
    """
    return ComputationError(
        f"first pass gives a negative variance (alpha11={alpha11:.4g}, |alpha11| > 1?); "
        "the Johansen level is not mean-reverting on this sample"
    )


def passes_error(passes: int, status: int, out: np.ndarray) -> ComputationError | None:
    """The error of seed passes that ended at pass ``passes`` with ``status`` and the quantities
    ``out`` (alpha11, obs_var, state_var, initial_cov) of :func:`kalcoint._kernels.seed_passes`,
    or None when they give a model.

    Examples
    --------
    >>> passes_error(30, 0, np.array([0.9, 0.1, 0.01, 0.0, 1.0, 1.0])) is None
    True
    >>> str(passes_error(2, 0, np.array([1.01, 0.1, -0.5, 0.0, 1.0, 1.0])))[:47]
    'seed tuning ended at pass 2 with alpha11 = 1.01'
    """
    if out[2] < 0:  # |alpha11| > 1 at the last pass run
        return ComputationError(
            f"seed tuning {'broke down' if status < 0 else 'ended'} at pass {passes} with alpha11 = "
            f"{out[0]:.8g} outside [-1, 1], so state_var[0] = (1 - alpha11^2) Gamma_11 = {out[2]:.3g} is "
            "not a variance (the filtered level is not mean-reverting); use fewer iterations, "
            "a tol stop, or method mle",
            params=("iterations", "tol", "method"),
        )
    if status < 0 or not np.all(np.isfinite(out)):
        return ComputationError(
            f"seed tuning broke down at pass {passes}: obs_var collapsed to {out[1]:.3g} and an "
            "innovation variance reached zero (the collapse of docs/method.md §9); use fewer "
            "iterations, a tol stop, or method mle",
            params=("iterations", "tol", "method"),
        )
    return None


@dataclass(frozen=True)
class SeedRun:
    """What the seed passes produced: the last pass's model and states, and the per-pass history.

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices().to_numpy()
    >>> run_seed_passes(p, kc.johansen(p), iterations=3).history.shape
    (3, 4)
    """

    model: StateSpaceModel
    iterations: int
    converged: bool
    history: np.ndarray  # (iterations, 4): alpha11, obs_var, loglik, mean e_t^2/Q_t^2 per pass (HISTORY_KEYS)
    filtered_state: np.ndarray


def run_seed_passes(
    prices: np.ndarray,
    johansen_result: JohansenResult,
    iterations: int = 2000,
    tol: float | None = None,
    options: SeedOptions | None = None,
) -> SeedRun:
    """Run the seed method's passes over an (n, k) price panel.

    With ``iterations = 1`` the result is the first-pass model of docs/method.md §4.

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices().to_numpy()
    >>> run = run_seed_passes(p, kc.johansen(p), iterations=5)
    >>> run.iterations, run.converged
    (5, False)
    """
    options = options or SeedOptions()
    iterations = check_iterations(iterations)
    tol = check_tol(tol)
    prices = np.ascontiguousarray(prices, dtype=np.float64)
    weights = johansen_result.weights
    first = first_pass_model(prices, weights, options.fix_alpha11)
    y = np.ascontiguousarray(prices[:, 0])
    X = prices.copy()
    X[:, 0] = 1.0
    n, k = X.shape
    bm = np.concatenate([[np.mean(prices @ weights) / weights[0]], -weights[1:] / weights[0]])
    hist = np.full((iterations, len(HISTORY_KEYS)), np.nan)
    b_filt = np.empty((n, k))
    innov = np.empty(n)
    innov_var = np.empty(n)
    out = np.empty(2 + 2 * k)
    passes, status = seed_passes(
        y,
        X,
        first.alpha11,
        first.obs_var,
        first.state_var.copy(),
        first.initial_state.copy(),
        first.initial_cov.copy(),
        bm,
        options.bm == "sample",
        options.fix_alpha11 is not None,
        options.residual == "prior",
        options.moments == "smoothed",
        bool(options.covariance_terms),
        iterations,
        float(tol or 0.0),
        hist,
        b_filt,
        innov,
        innov_var,
        out,
    )
    error = passes_error(passes, status, out)
    if error is not None:
        raise error
    model = StateSpaceModel(out[0], out[1], out[2 : 2 + k], first.initial_state, out[2 + k :])
    return SeedRun(model, int(passes), status == 1, hist[:passes].copy(), b_filt)


def fit(
    values: np.ndarray,
    johansen_result: JohansenResult,
    iterations: int = 2000,
    tol: float | None = None,
    *,
    residual: str = "posterior",
    bm: str = "johansen",
    fix_alpha11: float | None = None,
    moments: str = "filtered",
    covariance_terms: bool = False,
) -> FitResult:
    """The seed method's passes as a registered tuning method (see :mod:`kalcoint.tuning.registry`).

    Parameters
    ----------
    values : ndarray, shape (n, k)
        Prices, first column = dependent asset.
    johansen_result : JohansenResult
        Johansen test on ``values`` (its weights start the first pass).
    iterations : int
        Passes (1 = the first pass of docs/method.md §4).
    tol : float, optional
        Stop once every tuned quantity changes by less than this (relative).
    residual, bm, fix_alpha11, moments, covariance_terms
        The options of :class:`SeedOptions`.

    Returns
    -------
    FitResult
        ``history`` holds :data:`HISTORY_KEYS` per pass.

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices().to_numpy()
    >>> fit(p, kc.johansen(p), iterations=1).iterations
    1
    """
    options = SeedOptions(residual, bm, fix_alpha11, moments, bool(covariance_terms))
    run = run_seed_passes(values, johansen_result, iterations, tol, options)
    return FitResult(
        model=run.model,
        iterations=run.iterations,
        converged=run.converged,
        history={key: run.history[:, i] for i, key in enumerate(HISTORY_KEYS)},
        options={
            "residual": residual,
            "bm": bm,
            "fix_alpha11": fix_alpha11,
            "moments": moments,
            "covariance_terms": bool(covariance_terms),
            "tol": tol,
        },
    )

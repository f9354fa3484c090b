"""Is ``alpha11 < 1`` better than ``alpha11 = 1``? A likelihood-ratio test with a bootstrap p-value.

The method's central claim (docs/method.md §1) is that the level ``b_1`` of the
filter is stationary, ``|alpha11| < 1``; Chan's filter has ``alpha11 = 1``.
Both models are fitted by maximum likelihood (:mod:`kalcoint.tuning.mle`, same
fixed prior): the null with ``alpha11`` held at 1, the alternative with
``alpha11`` free (bounded at ``1 - 1e-6``). The statistic is
``LR = 2 (loglik_free - loglik_null)``, taken as 0 if it comes out negative
(rounding, or the free optimiser stopping short): the closure of the free space
contains the null, whose ``alpha11 = 1`` is then reported as ``alpha11_hat``.

Under the null the level is a random walk and ``alpha11 = 1`` sits on the
boundary of the stationary region: the chi-square table does not apply. The
p-value is a parametric bootstrap under the null: ``B`` price sets keep the
observed rows ``x_t`` (assets 2..k) and draw asset 1 from the fitted null model
(``b_1 ~ N(initial_state, diag(initial_cov))``, ``b_t = b_t-1 + w``,
``w ~ N(0, diag(state_var))``, ``y_t = x_t b_t + v``, ``v ~ N(0, obs_var)``);
each is refitted exactly as the data were (Johansen weights for the prior, then
both fits), and ``p = (1 + #{LR_b >= LR}) / (B + 1)``.

Sample ``b`` draws from its own child of ``numpy.random.SeedSequence(seed)``, so
the result depends on ``seed`` only, not on the number of worker processes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .cointegration import johansen
from .errors import ComputationError, KalcointError
from .filtering import StateSpaceModel, kalman_filter, observation_arrays
from .tuning import mle

BOOTSTRAP = 199
"""Default number of bootstrap samples."""


@dataclass(frozen=True)
class Alpha11Test:
    """Likelihood-ratio test of ``alpha11 = 1`` against ``alpha11`` free (see the module doc).

    Attributes
    ----------
    lr_stat : float
        ``2 (loglik_free - loglik_null)`` (>= 0).
    p_value : float or None
        Bootstrap p-value, None when ``bootstrap == 0``.
    bootstrap : int
        Samples drawn.
    alpha11_hat : float
        The free MLE of alpha11 (1 when the null fits at least as well).
    loglik_free, loglik_null : float
        The two maximised log-likelihoods.
    null_model, free_model : StateSpaceModel
        The fitted models.
    seed : int
        Seed of the bootstrap draws.
    bootstrap_stats : ndarray, shape (bootstrap,)
        The statistics of the samples (NaN for a sample whose refit failed).
    failed : int
        Samples whose refit failed (left out of the p-value).

    Examples
    --------
    >>> import kalcoint as kc
    >>> test = alpha11_test(kc.demo_prices(), bootstrap=0)
    >>> test.to_dict() == {"lr_stat": test.lr_stat, "p_value": None, "bootstrap": 0,
    ...                    "alpha11_hat": test.alpha11_hat}
    True
    """

    lr_stat: float
    p_value: float | None
    bootstrap: int
    alpha11_hat: float
    loglik_free: float
    loglik_null: float
    null_model: StateSpaceModel
    free_model: StateSpaceModel
    seed: int
    bootstrap_stats: np.ndarray = field(repr=False)
    failed: int = 0

    def rejects(self, level: float = 0.05) -> bool:
        """True when the bootstrap p-value is at or below ``level``."""
        if self.p_value is None:
            raise KalcointError("no bootstrap p-value: the test ran with bootstrap = 0")
        return self.p_value <= level

    def to_dict(self) -> dict[str, Any]:
        """The ``alpha11_test`` record of ``kalcoint compare --json``."""
        d: dict[str, Any] = {
            "lr_stat": self.lr_stat,
            "p_value": self.p_value,
            "bootstrap": self.bootstrap,
            "alpha11_hat": self.alpha11_hat,
        }
        if self.failed:
            d["bootstrap_failed"] = self.failed
        return d


def _fits(values: np.ndarray, det_order: int, k_ar_diff: int) -> tuple[StateSpaceModel, float, StateSpaceModel, float]:
    """(free model, its loglik, null model, its loglik) by MLE on an (n, k) panel."""
    jres = johansen(values, det_order=det_order, k_ar_diff=k_ar_diff)
    free = mle.fit(values, jres).model
    null = mle.fit(values, jres, fixed_alpha11=1.0).model
    return free, kalman_filter(values, free).loglik, null, kalman_filter(values, null).loglik


def lr_statistic(loglik_free: float, loglik_null: float) -> float:
    """``2 (loglik_free - loglik_null)``, floored at 0.

    Parameters
    ----------
    loglik_free, loglik_null : float
        Maximised log-likelihoods.

    Returns
    -------
    float

    Examples
    --------
    >>> lr_statistic(-10.0, -12.5), lr_statistic(-12.0, -11.0)
    (5.0, 0.0)
    """
    return max(0.0, 2.0 * (loglik_free - loglik_null))


def simulate_null(values: np.ndarray, model: StateSpaceModel, rng: np.random.Generator) -> np.ndarray:
    """A copy of the panel whose first column is drawn from ``model`` given the observed rows
    ``x_t`` (the other columns are kept).

    Parameters
    ----------
    values : ndarray, shape (n, k)
        The observed panel, first column dependent.
    model : StateSpaceModel
        The model the first column is drawn from.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray, shape (n, k)

    Examples
    --------
    >>> import numpy as np
    >>> import kalcoint as kc
    >>> values = kc.demo_prices().to_numpy()
    >>> sample = simulate_null(values, kc.StateSpaceModel.chan(3), np.random.default_rng(0))
    >>> sample.shape, bool((sample[:, 1:] == values[:, 1:]).all())
    ((1500, 3), True)
    """
    _, X = observation_arrays(values)
    n, k = X.shape
    a = model.transition
    states = np.empty((n, k))
    b = model.initial_state + rng.standard_normal(k) * np.sqrt(model.initial_cov)
    sd_w = np.sqrt(model.state_var)
    for t in range(n):
        if t > 0:
            b = a * b + rng.standard_normal(k) * sd_w
        states[t] = b
    out = np.array(values, dtype=np.float64, copy=True)
    out[:, 0] = np.einsum("ij,ij->i", X, states) + rng.standard_normal(n) * math.sqrt(model.obs_var)
    return out


def _bootstrap_one(
    values: np.ndarray, null_model: StateSpaceModel, seed_seq: np.random.SeedSequence, det_order: int, k_ar_diff: int
) -> float:
    """LR statistic of one sample drawn under the null (NaN when a refit fails)."""
    sample = simulate_null(values, null_model, np.random.default_rng(seed_seq))
    try:
        _, ll_free, _, ll_null = _fits(sample, det_order, k_ar_diff)
    except KalcointError:
        return math.nan
    return lr_statistic(ll_free, ll_null)


def bootstrap_sample(values: np.ndarray, test: Alpha11Test, b: int, *, det_order: int = 0, k_ar_diff: int = 1) -> float:
    """LR statistic of bootstrap sample ``b`` of ``test`` (NaN when a refit fails): the same draw
    and refit as :func:`alpha11_test` makes for its sample ``b`` with ``test.seed``, so that the
    samples can be spread over processes by the caller and gathered by :func:`with_bootstrap`.

    Parameters
    ----------
    values : ndarray, shape (n, k)
        The panel the test was run on.
    test : Alpha11Test
        The test (e.g. run with ``bootstrap=0``): its null model and seed.
    b : int
        Sample number, ``0 <= b``.
    det_order, k_ar_diff : int
        Johansen options of the fits (as in the test).

    Returns
    -------
    float

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices().iloc[:500]
    >>> t0 = alpha11_test(p, bootstrap=0, seed=1)
    >>> stats = [bootstrap_sample(p.to_numpy(), t0, b) for b in range(9)]
    >>> with_bootstrap(t0, stats).p_value
    0.2
    """
    child = np.random.SeedSequence(int(test.seed), spawn_key=(int(b),))
    return _bootstrap_one(
        np.ascontiguousarray(np.asarray(values, dtype=np.float64)), test.null_model, child, det_order, k_ar_diff
    )


def with_bootstrap(test: Alpha11Test, stats: Any) -> Alpha11Test:
    """``test`` with the p-value of its bootstrap statistics ``stats`` (sample ``b`` at ``stats[b]``,
    NaN for a failed refit): ``p = (1 + #{LR_b >= LR}) / (B + 1)`` over the samples that did not fail.

    Parameters
    ----------
    test : Alpha11Test
    stats : array_like, shape (B,)

    Returns
    -------
    Alpha11Test

    Examples
    --------
    >>> import kalcoint as kc
    >>> t0 = alpha11_test(kc.demo_prices(), bootstrap=0)
    >>> with_bootstrap(t0, [0.5, 30.0, float("nan")]).p_value, with_bootstrap(t0, []).p_value
    (0.6666666666666666, None)
    """
    from dataclasses import replace

    values = np.asarray(stats, dtype=np.float64).reshape(-1)
    valid = values[np.isfinite(values)]
    if values.size and valid.size == 0:
        raise ComputationError("alpha11 test: every bootstrap refit failed")
    p_value = float((1 + np.sum(valid >= test.lr_stat)) / (valid.size + 1)) if values.size else None
    return replace(
        test,
        p_value=p_value,
        bootstrap=int(values.size),
        bootstrap_stats=values,
        failed=int(values.size - valid.size),
    )


def check_options(bootstrap: int, workers: int | None = None) -> None:
    """Refuse a bootstrap count < 0 or a worker count < 1 (before any work).

    Parameters
    ----------
    bootstrap : int
    workers : int, optional

    Raises
    ------
    KalcointError

    Examples
    --------
    >>> check_options(199, 2)
    >>> check_options(-1)
    Traceback (most recent call last):
    ...
    kalcoint.errors.KalcointError: bootstrap -1 must be a whole number >= 0 (0 skips the p-value)
    """
    if int(bootstrap) != bootstrap or bootstrap < 0:
        raise KalcointError(
            f"bootstrap {bootstrap} must be a whole number >= 0 (0 skips the p-value)", params="bootstrap"
        )
    if workers is not None and (int(workers) != workers or workers < 1):
        raise KalcointError(f"workers {workers} must be a whole number >= 1", params="workers")


def alpha11_test(
    prices: pd.DataFrame | np.ndarray,
    bootstrap: int = BOOTSTRAP,
    seed: int = 0,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    *,
    det_order: int = 0,
    k_ar_diff: int = 1,
) -> Alpha11Test:
    """Likelihood-ratio test of ``alpha11 = 1`` (null) against ``alpha11`` free, by MLE, with a
    parametric-bootstrap p-value (see the module doc).

    Parameters
    ----------
    prices : DataFrame or ndarray, shape (n, k)
        The panel, first column dependent.
    bootstrap : int
        Samples B (0: no p-value).
    seed : int
        Seed of the bootstrap draws.
    workers : int, optional
        Processes (default: every local core; 1 runs in this process).
    progress : callable, optional
        ``progress(done, B)`` after each sample.
    det_order, k_ar_diff : int
        Johansen options of the fits.

    Returns
    -------
    Alpha11Test

    Examples
    --------
    >>> import kalcoint as kc
    >>> test = alpha11_test(kc.demo_prices(), bootstrap=0)
    >>> round(test.lr_stat, 4), round(test.alpha11_hat, 4), test.p_value
    (18.7709, 0.9633, None)
    >>> small = alpha11_test(kc.demo_prices().iloc[:500], bootstrap=9, seed=1, workers=1)
    >>> round(small.lr_stat, 4), small.p_value
    (7.9612, 0.2)
    """
    check_options(bootstrap, workers)
    values = np.ascontiguousarray(np.asarray(prices, dtype=np.float64))
    free, ll_free, null, ll_null = _fits(values, det_order, k_ar_diff)
    lr = lr_statistic(ll_free, ll_null)
    # the null is a limit point of the free space: if it fits at least as well, it is the maximum
    alpha11_hat = free.alpha11 if ll_free > ll_null else 1.0
    stats = np.full(int(bootstrap), np.nan)
    children = np.random.SeedSequence(int(seed)).spawn(int(bootstrap))
    workers = min(int(workers or os.cpu_count() or 1), max(int(bootstrap), 1))
    tick = progress or (lambda _done, _total: None)
    if bootstrap and workers == 1:
        for b, child in enumerate(children):
            stats[b] = _bootstrap_one(values, null, child, det_order, k_ar_diff)
            tick(b + 1, int(bootstrap))
    elif bootstrap:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_bootstrap_one, values, null, child, det_order, k_ar_diff) for child in children]
            for b, future in enumerate(futures):
                stats[b] = future.result()
                tick(b + 1, int(bootstrap))
    test = Alpha11Test(lr, None, 0, alpha11_hat, ll_free, ll_null, null, free, int(seed), stats[:0])
    return with_bootstrap(test, stats)

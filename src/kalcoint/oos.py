"""The one out-of-sample protocol: tune on the first part of the rows, continue the filter over the rest.

Used by :func:`kalcoint.compare`, :func:`kalcoint.screen` and everything after them:

* :func:`split_rows`: the first ``floor(train_fraction * n)`` rows are the training part
  (``floor`` with a guard of 1e-9 against rounding, so that ``0.7 * 1500`` gives 1050);
  the rest is the test part;
* :func:`continue_filter`: the filter runs over the test rows with the quantities tuned on
  the training rows, continuing from the posterior state and covariance ``(b_{m|m}, P_{m|m})``
  of the last training row (as a trader would run it), not restarting from its prior.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .errors import KalcointError
from .filtering import FilterResult, StateSpaceModel

__all__ = ["continue_filter", "split", "split_rows"]


def split_rows(nobs: int, train_fraction: float) -> int:
    """Rows of an ``nobs``-row sample in the training part: ``floor(train_fraction * nobs)``.

    Parameters
    ----------
    nobs : int
        Rows of the whole sample.
    train_fraction : float
        Share of the rows to tune on, in (0, 1).

    Returns
    -------
    int

    Examples
    --------
    >>> split_rows(1500, 0.7), split_rows(1001, 0.7)
    (1050, 700)
    """
    if not (isinstance(train_fraction, (int, float)) and 0.0 < train_fraction < 1.0):
        raise KalcointError(
            f"train_fraction {train_fraction} must be between 0 and 1, e.g. 0.7", params="train_fraction"
        )
    return int(math.floor(train_fraction * nobs + 1e-9))


def split(
    prices: pd.DataFrame | np.ndarray, train_fraction: float
) -> tuple[pd.DataFrame | np.ndarray, pd.DataFrame | np.ndarray]:
    """``(train, test)`` rows of an (n, k) panel by :func:`split_rows`.

    Parameters
    ----------
    prices : DataFrame or ndarray, shape (n, k)
    train_fraction : float
        In (0, 1).

    Returns
    -------
    train, test : DataFrame or ndarray
        The first ``floor(train_fraction * n)`` rows and the rest.

    Examples
    --------
    >>> import numpy as np
    >>> train, test = split(np.zeros((10, 2)), 0.7)
    >>> train.shape, test.shape
    ((7, 2), (3, 2))
    """
    m = split_rows(len(prices), train_fraction)
    if isinstance(prices, pd.DataFrame):
        return prices.iloc[:m], prices.iloc[m:]
    return prices[:m], prices[m:]


def continue_filter(
    train: FilterResult, test_prices: pd.DataFrame | np.ndarray, model: StateSpaceModel | None = None
) -> FilterResult:
    """Run ``model`` (default: the training result's) over the test rows, continuing from the
    last posterior ``(b, P)`` of the training rows.

    Parameters
    ----------
    train : FilterResult
        The filter over the training rows.
    test_prices : DataFrame or ndarray, shape (m, k)
        The rows that follow.
    model : StateSpaceModel, optional
        The quantities to continue with.

    Returns
    -------
    FilterResult

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> train, test = split(p, 0.7)
    >>> fit = kc.kalman_filter(train, kc.StateSpaceModel.chan(3))
    >>> continue_filter(fit, test).nobs
    450
    """
    return train.extend(test_prices, model)

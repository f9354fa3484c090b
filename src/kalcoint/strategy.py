"""Trading rules: from a spread (or the filter's innovations) to units of the portfolio, and
from units to share and dollar positions.

Two strategies:

- ``bands`` (:func:`bands`): Chan's rule (docs/method.md §8). With a deviation ``d_t`` and a
  scale ``s_t`` (the innovation ``e_t`` and ``sqrt(Q_t)`` for a filter; for the static
  portfolio the spread minus its moving mean and its moving standard deviation), go long
  one unit when ``d_t < -entry * s_t``, leave the long once ``d_t >= -exit * s_t``, go
  short one unit when ``d_t > entry * s_t``, leave the short once ``d_t <= exit * s_t``.
  The long and short legs are kept separately and added, as in Chan's code; a day without
  a signal (NaN, e.g. before a moving window fills) carries the previous units.
- ``linear`` (:func:`linear`): ``units_t = -z_t``, the minus z-score of the spread over a
  moving window (Chan's Example 2.8).

One unit of a filter's portfolio on day t holds one share of asset 1 and ``-b_{j,t|t}``
shares of asset j (:func:`filter_shares`); one unit of the static portfolio holds ``w_j``
shares of asset j (the Johansen weights). Dollar positions are units x shares x prices
(:func:`dollar_positions`).
"""

from __future__ import annotations

import numpy as np

from .cointegration import half_life
from .errors import KalcointError

STRATEGIES = ("bands", "linear")


def check_bands(entry: float, exit: float) -> None:
    """Refuse band thresholds that are not finite or with ``exit > entry`` (a position would be
    entered and left on the same day).

    Examples
    --------
    >>> check_bands(1.0, 0.5)  # passes
    >>> check_bands(1.0, 2.0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    kalcoint.errors.KalcointError: exit 2.0 is larger than entry 1.0: give an exit <= entry (Chan: 1 and 1)
    """
    if not (np.isfinite(entry) and np.isfinite(exit)):
        raise KalcointError(
            f"entry {entry} and exit {exit} must be finite numbers (units of sigma)", params=("entry", "exit")
        )
    if entry <= 0:
        raise KalcointError(f"entry {entry} must be > 0 (units of sigma); Chan uses 1", params="entry")
    if exit > entry:
        raise KalcointError(
            f"exit {exit} is larger than entry {entry}: give an exit <= entry (Chan: 1 and 1)", params=("exit", "entry")
        )


def bands(deviation: np.ndarray, scale: np.ndarray, entry: float = 1.0, exit: float = 1.0) -> np.ndarray:
    """Units (n,) in {-1, 0, 1} held at each close under Chan's band rule.

    deviation, scale : (n,) e.g. innovations ``e_t`` and ``sqrt(Q_t)`` (price units of asset 1),
        or the spread minus its moving mean and its moving standard deviation.
    entry, exit : thresholds in units of ``scale`` (``exit <= entry``).

    Examples
    --------
    >>> import numpy as np
    >>> bands(np.array([0.0, -2.0, -0.5, 0.0, 2.0]), np.ones(5), 1.0, 0.0).tolist()
    [0.0, 1.0, 1.0, 0.0, -1.0]
    """
    check_bands(entry, exit)
    d = np.asarray(deviation, dtype=np.float64)
    s = np.asarray(scale, dtype=np.float64)
    if d.shape != s.shape or d.ndim != 1:
        raise KalcointError(f"bands needs deviation and scale of equal 1-D shape, got {d.shape} and {s.shape}")
    return band_legs(d, s, entry, exit)[0]


def band_legs(
    deviation: np.ndarray, scale: np.ndarray, entry: float, exit: float, long_leg: int = 0, short_leg: int = 0
) -> tuple[np.ndarray, int, int]:
    """Chan's band rule continued from the legs held the day before (``long_leg`` in {0, 1},
    ``short_leg`` in {-1, 0}): the units (n,) held at each close, and the legs after the last day.
    A day with a non-finite deviation or scale keeps the legs.

    Examples
    --------
    >>> import numpy as np
    >>> units, long_leg, short_leg = band_legs(np.array([-2.0, -0.5]), np.ones(2), 1.0, 0.0)
    >>> units.tolist(), long_leg, short_leg
    ([1.0, 1.0], 1, 0)
    """
    units = np.zeros(deviation.size)
    for t in range(deviation.size):
        d, s = deviation[t], scale[t]
        if np.isfinite(d) and np.isfinite(s):
            # exits first, then entries: with exit <= entry they cannot both fire
            if d >= -exit * s:
                long_leg = 0
            elif d < -entry * s:
                long_leg = 1
            if d <= exit * s:
                short_leg = 0
            elif d > entry * s:
                short_leg = -1
        units[t] = long_leg + short_leg
    return units, long_leg, short_leg


def moving_mean_std(series: np.ndarray, lookback: int | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Moving mean and sample standard deviation (ddof=1) over the last ``lookback`` values
    including the current one; NaN while fewer than ``lookback`` values exist.

    ``lookback`` may be an int or an (n,) integer array (the window used on each day).

    Examples
    --------
    >>> import numpy as np
    >>> mean, std = moving_mean_std(np.array([1.0, 2.0, 3.0, 4.0]), 2)
    >>> mean.tolist()
    [nan, 1.5, 2.5, 3.5]
    """
    x = np.asarray(series, dtype=np.float64)
    n = x.size
    lb = np.broadcast_to(np.asarray(lookback), (n,)).astype(np.int64)
    if np.any(lb < 2):
        raise KalcointError(f"lookback must be at least 2 days, got {int(lb.min())}", params="lookback")
    mean = np.full(n, np.nan)
    std = np.full(n, np.nan)
    for t in range(n):
        w = lb[t]
        if t + 1 >= w:
            window = x[t + 1 - w : t + 1]
            mean[t] = window.mean()
            std[t] = window.std(ddof=1)
    return mean, std


def zscore(series: np.ndarray, lookback: int | np.ndarray) -> np.ndarray:
    """(n,) ``(x_t - moving mean) / moving std`` over ``lookback`` days (NaN during warm-up and
    where the window is constant).

    Examples
    --------
    >>> import numpy as np
    >>> zscore(np.array([1.0, 2.0, 3.0, 5.0]), 3).round(3).tolist()
    [nan, nan, 1.0, 1.091]
    """
    mean, std = moving_mean_std(series, lookback)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (np.asarray(series, dtype=np.float64) - mean) / std
    z[~np.isfinite(z)] = np.nan
    return z


def linear(spread: np.ndarray, lookback: int | np.ndarray) -> np.ndarray:
    """Units (n,) = ``-zscore(spread, lookback)``, 0 during the warm-up (Chan's Example 2.8).

    Examples
    --------
    >>> import numpy as np
    >>> linear(np.array([1.0, 2.0, 3.0, 5.0]), 3).round(3).tolist()
    [0.0, 0.0, -1.0, -1.091]
    """
    units = -zscore(spread, lookback)
    return np.nan_to_num(units, nan=0.0)


def lookback_from_half_life(spread: np.ndarray, what: str = "the spread") -> tuple[int, float]:
    """``(max(2, round(half-life)), half-life)`` of a spread, in days; the half-life from the OLS
    regression of its change on its lagged level (:func:`kalcoint.cointegration.half_life`).
    A moving standard deviation needs at least 2 days, hence the floor of 2.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.empty(2000); x[0] = 1.0
    >>> e = np.random.default_rng(1).normal(size=2000)
    >>> for t in range(1, 2000): x[t] = 0.9 * x[t - 1] + e[t]
    >>> lookback_from_half_life(x)[0]
    7
    """
    hl = half_life(spread)
    if not np.isfinite(hl):
        raise KalcointError(
            f"{what} does not revert to a mean (no finite half-life), so it gives no moving window; "
            "give lookback N (N >= 2) explicitly",
            params="lookback",
        )
    return max(2, int(round(hl))), float(hl)


def filter_shares(filtered_state: np.ndarray) -> np.ndarray:
    """(n, k) shares of one unit of a filter's portfolio: ``(1, -b_{2,t|t}, ..., -b_{k,t|t})``.

    Examples
    --------
    >>> import numpy as np
    >>> filter_shares(np.array([[0.5, 1.2, -0.3]])).tolist()
    [[1.0, -1.2, 0.3]]
    """
    b = np.asarray(filtered_state, dtype=np.float64)
    shares = -b.copy()
    shares[:, 0] = 1.0
    return shares


def static_shares(weights: np.ndarray, n: int) -> np.ndarray:
    """(n, k) shares of one unit of the static portfolio: the Johansen weights on every day.

    Examples
    --------
    >>> import numpy as np
    >>> static_shares(np.array([1.0, -1.4]), 2).tolist()
    [[1.0, -1.4], [1.0, -1.4]]
    """
    return np.tile(np.asarray(weights, dtype=np.float64), (n, 1))


def dollar_positions(units: np.ndarray, shares: np.ndarray, prices: np.ndarray) -> np.ndarray:
    """(n, k) dollar positions at each close: ``units_t * shares_{t,j} * p_{t,j}``.

    Examples
    --------
    >>> import numpy as np
    >>> dollar_positions(np.array([1.0]), np.array([[1.0, -2.0]]), np.array([[10.0, 5.0]])).tolist()
    [[10.0, -10.0]]
    """
    return np.asarray(units, dtype=np.float64)[:, None] * shares * np.asarray(prices, dtype=np.float64)


__all__ = [
    "STRATEGIES",
    "bands",
    "check_bands",
    "dollar_positions",
    "filter_shares",
    "linear",
    "lookback_from_half_life",
    "moving_mean_std",
    "static_shares",
    "zscore",
]

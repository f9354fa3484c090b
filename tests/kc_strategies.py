"""Hypothesis strategies shared by the property tests (tests/test_properties_*.py).

Price panels are drawn as a seed and a shape (rows, assets, volatility) and built with NumPy:
positive, cointegrated in logs (a common random walk, loadings and stationary noise), on
business days. Hypothesis shrinks the shape and the seed, so a failure is reported on a
small panel.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import strategies as st

from kalcoint.filtering import StateSpaceModel

TICKERS = ("AAA", "BBB", "CCC", "DDD", "EEE")


def make_panel(seed: int, n: int, k: int, vol: float) -> np.ndarray:
    """(n, k) positive prices: ``log p_j = log s_j + c_j f_t + u_{j,t}`` with ``f`` a random walk
    of daily volatility ``vol`` and ``u`` an AR(1) (coefficient 0.8) of volatility ``vol / 2``."""
    rng = np.random.default_rng(seed)
    f = np.cumsum(rng.normal(0.0, vol, n))
    u = np.empty((n, k))
    u[0] = rng.normal(0.0, vol / 2, k)
    for t in range(1, n):
        u[t] = 0.8 * u[t - 1] + rng.normal(0.0, vol / 2, k)
    scale = rng.uniform(5.0, 150.0, k)
    loading = rng.uniform(0.5, 1.5, k)
    return scale * np.exp(loading * f[:, None] + u)


def dated(values: np.ndarray, start: str = "2020-01-06", tickers: tuple[str, ...] = TICKERS) -> pd.DataFrame:
    """The panel on business days from ``start``, columns named by ``tickers``."""
    n, k = values.shape
    index = pd.bdate_range(start, periods=n, name="date")
    return pd.DataFrame(values, index=index, columns=list(tickers[:k]))


@st.composite
def panels(draw, min_n: int, max_n: int, min_k: int = 2, max_k: int = 3) -> np.ndarray:
    """A :func:`make_panel` of a drawn size, seed and volatility."""
    n = draw(st.integers(min_n, max_n))
    k = draw(st.integers(min_k, max_k))
    seed = draw(st.integers(0, 2**32 - 1))
    vol = draw(st.sampled_from([0.01, 0.002, 0.03]))
    return make_panel(seed, n, k, vol)


def log_uniform(low: float, high: float) -> st.SearchStrategy[float]:
    """Positive floats spread evenly in log10 between ``low`` and ``high``."""
    return st.floats(np.log10(low), np.log10(high)).map(lambda e: float(10.0**e))


@st.composite
def models(draw, k: int) -> StateSpaceModel:
    """A state-space model of k assets: any alpha11 in (-1, 1], positive noises from 1e-8 to 1e2,
    prior means within +-50 and prior variances 0 (Chan's) or from 1e-6 to 1e3."""
    alpha11 = draw(st.one_of(st.just(1.0), st.floats(-1.0, 1.0, exclude_min=True)))
    obs_var = draw(log_uniform(1e-8, 1e2))
    state_var = [draw(log_uniform(1e-8, 1e2)) for _ in range(k)]
    initial_state = [draw(st.floats(-50.0, 50.0)) for _ in range(k)]
    initial_cov = [draw(st.one_of(st.just(0.0), log_uniform(1e-6, 1e3))) for _ in range(k)]
    return StateSpaceModel(alpha11, obs_var, state_var, initial_state, initial_cov)


def cuts(n: int, max_pieces: int) -> st.SearchStrategy[list[int]]:
    """Sorted distinct interior cut points of ``range(n)``: the rows are fed in ``len + 1`` pieces."""
    return st.lists(st.integers(1, max(1, n - 1)), max_size=max_pieces - 1, unique=True).map(
        lambda c: sorted(x for x in c if 0 < x < n)
    )

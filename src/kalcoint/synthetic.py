"""Price sets generated from the model of docs/method.md §1, for the demo and for tests.

:func:`demo_prices` is the embedded default of ``kalcoint demo``: three ETF-like
prices whose hedge ratios drift, generated with a fixed seed so it needs no
files and no network. Its parameters are the defaults of :func:`simulate`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

DEMO_ASSETS = ("ETFA", "ETFB", "ETFC")
DEMO_SEED = 20130528


@dataclass(frozen=True)
class SimulationTruth:
    """The true quantities and state path behind a simulated price set.

    Examples
    --------
    >>> prices, truth = simulate(n=100)
    >>> truth.states.shape
    (100, 3)
    """

    alpha11: float
    obs_var: float
    state_var: np.ndarray  # (k,)
    states: np.ndarray  # (n, k) true b_t


def simulate(
    n: int = 1500,
    alpha11: float = 0.95,
    obs_var: float = 0.02,
    state_var: tuple[float, ...] = (0.05, 1e-6, 1e-6),
    hedge_ratios: tuple[float, ...] = (0.8, 0.5),
    start_prices: tuple[float, ...] = (25.0, 30.0),
    daily_vol: float = 0.012,
    seed: int = DEMO_SEED,
    assets: tuple[str, ...] = DEMO_ASSETS,
    start: str = "2015-01-02",
) -> tuple[pd.DataFrame, SimulationTruth]:
    """Simulate k = len(assets) prices from the model of docs/method.md §1.

    Assets 2..k follow geometric random walks (daily log-return sd ``daily_vol``);
    the state ``b_t = A b_{t-1} + w_t`` starts at ``(0, hedge_ratios)`` with
    ``A = diag(alpha11, 1, ..., 1)`` and ``w ~ N(0, diag(state_var))``; asset 1 is
    ``y_t = x_t . b_t + eps_t``, ``eps ~ N(0, obs_var)``. Business-day dates from ``start``.
    Returns the (n, k) price frame and the truth.

    Examples
    --------
    >>> prices, truth = simulate(n=250, seed=1)
    >>> prices.shape, truth.alpha11
    ((250, 3), 0.95)
    """
    k = len(assets)
    if len(state_var) != k or len(hedge_ratios) != k - 1 or len(start_prices) != k - 1:
        raise ValueError("state_var needs k entries; hedge_ratios and start_prices need k - 1")
    rng = np.random.default_rng(seed)
    log_ret = rng.normal(0.0, daily_vol, size=(n, k - 1))
    others = np.asarray(start_prices) * np.exp(np.cumsum(log_ret, axis=0))
    a = np.ones(k)
    a[0] = alpha11
    sd_w = np.sqrt(np.asarray(state_var, dtype=np.float64))
    states = np.empty((n, k))
    b = np.concatenate([[0.0], hedge_ratios])
    for t in range(n):
        if t > 0:
            b = a * b + rng.normal(0.0, 1.0, size=k) * sd_w
        states[t] = b
    y = states[:, 0] + np.einsum("ij,ij->i", others, states[:, 1:]) + rng.normal(0.0, np.sqrt(obs_var), n)
    index = pd.bdate_range(start, periods=n, name="date")
    frame = pd.DataFrame(np.column_stack([y, others]), index=index, columns=list(assets))
    return frame, SimulationTruth(alpha11, obs_var, np.asarray(state_var, dtype=np.float64), states)


def demo_prices() -> pd.DataFrame:
    """The demo price set: 1500 business days of ETFA (dependent), ETFB, ETFC (see :func:`simulate`).

    Examples
    --------
    >>> demo_prices().shape
    (1500, 3)
    """
    return simulate()[0]

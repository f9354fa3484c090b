"""Price sets generated from the model of docs/method.md §1, for the demo and for tests.

:func:`demo_prices` is the embedded default of ``kalcoint demo``: three ETF-like
prices whose hedge ratios drift, generated with a fixed seed so it needs no
files and no network. Its parameters are the defaults of :func:`simulate`.

:func:`universe` generates a whole universe (hundreds of assets driven by common factors)
with cointegrated baskets planted in it, and returns the truth beside the prices: the
scale benchmarks and the screen's recovery tests measure how well a screen finds them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import KalcointError

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


# ------------------------------------------------------------------ a universe with planted baskets

UNIVERSE_VOL_RANGE = (0.01, 0.025)
"""Range of the free assets' daily log-return standard deviations (common factors plus their own walk)."""

ALPHA11_RANGE = (0.9, 0.99)
"""Range the planted baskets' ``alpha11`` is drawn from (uniformly)."""

SPREAD_SD = 0.01
"""Stationary standard deviation of a planted basket's intercept ``b_0``, as a share of the
dependent asset's starting level (``alpha11`` sets how slowly it reverts)."""

OBS_SD = 0.01
"""Standard deviation of a planted basket's observation noise, as a share of that level."""

HEDGE_DRIFT_SD = 2e-4
"""Daily standard deviation of a planted hedge ratio's random walk, as a share of the ratio."""


@dataclass(frozen=True)
class PlantedBasket:
    """One planted basket and its true parameters (the model of docs/method.md §1).

    ``assets[0] = b_0,t + sum_j b_j,t assets[j] + eps_t``, with ``b_0`` an AR(1) of
    coefficient ``alpha11`` and the hedge ratios random walks starting at ``hedge_ratios``.
    ``state_var`` and ``obs_var`` are the variances of the state and observation noises.
    """

    assets: tuple[str, ...]
    alpha11: float
    obs_var: float
    state_var: tuple[float, ...]
    hedge_ratios: tuple[float, ...]


@dataclass(frozen=True)
class UniverseTruth:
    """A generated universe: its prices and the baskets planted in it.

    Attributes
    ----------
    prices : DataFrame, shape (n_days, n_assets)
        Positive float64 prices, business-day dates.
    planted : tuple of PlantedBasket
        The cointegrated baskets, dependent asset first.
    n_factors : int
        Common factors driving the free assets.
    seed : int
        The generator's seed.
    """

    prices: pd.DataFrame
    planted: tuple[PlantedBasket, ...]
    n_factors: int
    seed: int

    def planted_sets(self) -> set[frozenset[str]]:
        """The planted baskets as sets of tickers (for matching screen rows whatever their dependent)."""
        return {frozenset(b.assets) for b in self.planted}


def universe(
    n_assets: int = 500,
    n_days: int = 1500,
    planted: int | Sequence[int] = 25,
    seed: int = 0,
    n_factors: int = 3,
    start: str = "2015-01-02",
) -> UniverseTruth:
    """Generate a universe of ``n_assets`` prices with cointegrated baskets planted in it.

    Free assets are geometric random walks: daily log-returns ``beta_i . f_t + e_i,t`` with
    ``n_factors`` common factors ``f_t`` (the first a market factor) and an idiosyncratic
    ``e_i,t``; each asset's total daily volatility is drawn in :data:`UNIVERSE_VOL_RANGE` and a
    random share of it (20-60%) is common, so correlations run about 0.05-0.5. A planted basket
    replaces one asset by the model of docs/method.md §1 on 1 or 2 free assets:
    ``alpha11`` in :data:`ALPHA11_RANGE`, the intercept's stationary sd :data:`SPREAD_SD` and
    the observation noise's sd :data:`OBS_SD` of its starting level, hedge ratios in 0.5-2
    drifting by :data:`HEDGE_DRIFT_SD` a day. No asset is in two planted baskets. Tickers
    ``U0000``...; planted assets are spread at random over the columns.

    Parameters
    ----------
    n_assets : int
        Assets (columns), at least 2.
    n_days : int
        Business days (rows), at least 2.
    planted : int or sequence of int
        The number of planted pairs, or each planted basket's size (2 or 3).
    seed : int
        Seed of the generator: the same arguments give the same universe.
    n_factors : int
        Common factors (>= 1).
    start : str
        First date.

    Returns
    -------
    UniverseTruth

    Examples
    --------
    >>> truth = universe(20, 300, planted=[2, 3], seed=1)
    >>> truth.prices.shape, [len(b.assets) for b in truth.planted]
    ((300, 20), [2, 3])
    >>> bool((truth.prices > 0).all().all())
    True
    """
    sizes = [2] * planted if isinstance(planted, int) else [int(s) for s in planted]
    _check_universe_args(n_assets, n_days, sizes, n_factors)
    rng = np.random.default_rng(seed)
    log_prices = _factor_log_prices(rng, n_assets, n_days, n_factors)
    prices = np.exp(log_prices)
    order = rng.permutation(n_assets)
    names = [f"U{i:04d}" for i in range(n_assets)]
    baskets, used = [], 0
    for size in sizes:
        cols = [int(c) for c in order[used : used + size]]
        used += size
        prices[:, cols[0]], basket = _planted_dependent(rng, prices[:, cols[1:]])
        baskets.append(PlantedBasket(tuple(names[c] for c in cols), *basket))
    index = pd.bdate_range(start, periods=n_days, name="date")
    frame = pd.DataFrame(prices, index=index, columns=names)
    return UniverseTruth(frame, tuple(baskets), n_factors, seed)


def _check_universe_args(n_assets: int, n_days: int, sizes: list[int], n_factors: int) -> None:
    if n_assets < 2 or n_days < 2:
        raise KalcointError(f"a universe needs at least 2 assets and 2 days, got {n_assets} and {n_days}")
    if any(s not in (2, 3) for s in sizes):
        raise KalcointError(f"planted basket sizes must be 2 or 3, got {sizes}")
    if sum(sizes) > n_assets:
        raise KalcointError(f"the planted baskets need {sum(sizes)} assets; the universe has {n_assets}")
    if n_factors < 1:
        raise KalcointError(f"n_factors {n_factors} must be >= 1")


def _factor_log_prices(rng: np.random.Generator, n_assets: int, n_days: int, n_factors: int) -> np.ndarray:
    """Log prices, (n_days, n_assets): factor returns plus idiosyncratic ones, scaled to each asset's vol."""
    factors = rng.normal(0.0, 1.0, size=(n_days, n_factors))
    loadings = rng.normal(0.0, 1.0, size=(n_factors, n_assets))
    loadings[0] = np.abs(loadings[0]) + 1.0  # the market factor: every asset loads positively
    common = factors @ loadings
    common /= common.std(axis=0)
    own = rng.normal(0.0, 1.0, size=(n_days, n_assets))
    share = rng.uniform(0.2, 0.6, size=n_assets)  # share of the variance that is common
    vol = rng.uniform(*UNIVERSE_VOL_RANGE, size=n_assets)
    returns = vol * (np.sqrt(share) * common + np.sqrt(1.0 - share) * own)
    returns[0] = 0.0
    start = np.log(rng.uniform(10.0, 200.0, size=n_assets))
    return start + np.cumsum(returns, axis=0)


def _planted_dependent(
    rng: np.random.Generator, others: np.ndarray
) -> tuple[np.ndarray, tuple[float, float, tuple[float, ...], tuple[float, ...]]]:
    """A dependent price path on ``others`` (n, k-1) and its (alpha11, obs_var, state_var, hedge_ratios)."""
    n, m = others.shape
    alpha11 = float(rng.uniform(*ALPHA11_RANGE))
    hedge = np.asarray(rng.uniform(0.5, 2.0, size=m), dtype=np.float64)
    level = float(hedge @ others[0])
    obs_var = (OBS_SD * level) ** 2
    state_var: np.ndarray = np.concatenate(
        [[(SPREAD_SD * level) ** 2 * (1.0 - alpha11**2)], (HEDGE_DRIFT_SD * hedge) ** 2]
    )
    noise = rng.normal(0.0, 1.0, size=(n, m + 1)) * np.sqrt(state_var)
    b0 = np.empty(n)
    b0[0] = noise[0, 0] / np.sqrt(1.0 - alpha11**2)  # from the stationary distribution
    for t in range(1, n):
        b0[t] = alpha11 * b0[t - 1] + noise[t, 0]
    hedges = hedge + np.cumsum(np.vstack([np.zeros(m), noise[1:, 1:]]), axis=0)
    y = b0 + np.einsum("ij,ij->i", others, hedges) + rng.normal(0.0, np.sqrt(obs_var), n)
    truth = (alpha11, obs_var, tuple(map(float, state_var.tolist())), tuple(map(float, hedge.tolist())))
    return y, truth


# ------------------------------------------------------------------ how well a ranking finds them


@dataclass(frozen=True)
class Recovery:
    """How a screen's ranking places the planted baskets among all the screened ones.

    Attributes
    ----------
    planted : int
        Planted baskets among the screened rows.
    screened : int
        Screened rows.
    in_top : int
        Planted baskets among the first ``planted`` rows of the ranking.
    roc_auc : float
        Probability that a planted basket ranks above a random one (ties count one half);
        rows without the ranking figure rank last.
    positions : tuple of int
        Each planted basket's position in the ranking (1 = first), best first.
    """

    planted: int
    screened: int
    in_top: int
    roc_auc: float
    positions: tuple[int, ...]


def recovery(table: pd.DataFrame, truth: UniverseTruth, rank_by: str = "static") -> Recovery:
    """Where the ranking of a screen table (:func:`kalcoint.screen.rank_table`) puts the planted baskets.

    A screen row is planted when its set of tickers is a planted basket's (whatever its
    dependent asset).

    Parameters
    ----------
    table : DataFrame
        A table of :func:`kalcoint.screen.screen` on ``truth.prices``.
    truth : UniverseTruth
        The universe it screened.
    rank_by : str
        A ranking key of :data:`kalcoint.screen.RANK_BY`.

    Returns
    -------
    Recovery

    Examples
    --------
    >>> import kalcoint as kc
    >>> from kalcoint.screen import ScreenOptions
    >>> truth = universe(12, 1500, planted=2, seed=2)
    >>> rec = recovery(kc.screen(truth.prices, ScreenOptions(size=2), workers=0), truth)
    >>> rec.planted, rec.screened, rec.in_top, rec.roc_auc
    (2, 66, 2, 1.0)
    """
    from .screen import rank_table

    planted_sets = truth.planted_sets()
    is_planted = np.array([frozenset(a) in planted_sets for a in table["assets"]])
    ranked = rank_table(table, rank_by)
    position = np.full(len(table), float(len(ranked) + 1))
    position[table.index.get_indexer(ranked.index)] = np.arange(1, len(ranked) + 1)
    n_pos, n_neg = int(is_planted.sum()), int((~is_planted).sum())
    if n_pos == 0 or n_neg == 0:
        raise KalcointError("the table holds no planted basket or only planted ones: screen the whole universe")
    score = pd.Series(-position).rank(method="average").to_numpy()  # higher = ranked earlier
    auc = (score[is_planted].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    positions = np.sort(position[is_planted]).astype(int)
    return Recovery(n_pos, len(table), int((positions <= n_pos).sum()), float(auc), tuple(positions.tolist()))


def planted_share(study_table: pd.DataFrame, truth: UniverseTruth) -> tuple[float, list[int]]:
    """The share of a study's selected basket-periods that are planted baskets, and the count per period.

    Parameters
    ----------
    study_table : DataFrame
        A table of :func:`kalcoint.study.study` on ``truth.prices`` (one row per period, basket, model).
    truth : UniverseTruth
        The universe it ran on.

    Returns
    -------
    share : float
        Planted basket-periods / selected basket-periods.
    per_period : list of int
        Planted baskets selected in each period, in period order.
    """
    selected = study_table.drop_duplicates(["period", "selection_rank"])
    if not len(selected):
        raise KalcointError("the study selected no basket: nothing to measure")
    planted_sets = truth.planted_sets()
    hit = pd.Series([frozenset(a) in planted_sets for a in selected["assets"]], index=selected.index)
    per_period = hit.groupby(selected["period"]).sum().sort_index()
    return float(hit.mean()), [int(v) for v in per_period]

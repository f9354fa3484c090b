"""The generated universe (kalcoint.synthetic.universe): its truth holds, planted baskets are
cointegrated and random pairs mostly not, prices are positive with the stated volatilities, and
`kalcoint demo --universe` writes it."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from kalcoint.cointegration import adf, johansen
from kalcoint.errors import KalcointError
from kalcoint.synthetic import ALPHA11_RANGE, UNIVERSE_VOL_RANGE, universe


@pytest.fixture(scope="module")
def truth():
    return universe(60, 1500, planted=[2, 2, 2, 2, 2, 3], seed=3)


def _static_p(prices: np.ndarray) -> tuple[float, int]:
    jres = johansen(prices)
    return adf(jres.portfolio(prices)).pvalue, jres.rank_95


def test_shape_dates_and_truth(truth):
    p = truth.prices
    assert p.shape == (1500, 60)
    assert p.index[0] == pd.Timestamp("2015-01-02") and (p.index.day_of_week < 5).all()
    assert [len(b.assets) for b in truth.planted] == [2, 2, 2, 2, 2, 3]
    assets = [a for b in truth.planted for a in b.assets]
    assert len(set(assets)) == len(assets) and set(assets) <= set(p.columns)
    for b in truth.planted:
        assert ALPHA11_RANGE[0] <= b.alpha11 <= ALPHA11_RANGE[1]
        assert b.obs_var > 0 and len(b.state_var) == len(b.assets) and len(b.hedge_ratios) == len(b.assets) - 1


def test_same_seed_same_universe_other_seed_other(truth):
    again = universe(60, 1500, planted=[2, 2, 2, 2, 2, 3], seed=3)
    pd.testing.assert_frame_equal(again.prices, truth.prices)
    assert again.planted == truth.planted
    assert not universe(60, 1500, planted=[2, 2, 2, 2, 2, 3], seed=4).prices.equals(truth.prices)


def test_positive_prices_and_volatilities(truth):
    p = truth.prices
    assert (p.to_numpy() > 0).all()
    vol = np.log(p).diff().std()
    planted = {a for b in truth.planted for a in b.assets[:1]}
    free = vol.drop(sorted(planted))
    lo, hi = UNIVERSE_VOL_RANGE
    assert free.between(0.9 * lo, 1.1 * hi).all(), free.describe()
    assert vol[sorted(planted)].between(0.9 * lo, 0.06).all()  # the hedge portfolio's vol plus the spread's


def test_assets_are_correlated_through_the_factors(truth):
    planted = sorted({a for b in truth.planted for a in b.assets})
    corr = np.log(truth.prices.drop(columns=planted)).diff().corr().to_numpy()
    upper = corr[np.triu_indices_from(corr, 1)]
    assert 0.1 < np.median(upper) < 0.5
    assert upper.max() < 0.65  # at most 60% of a free asset's variance is common


def test_planted_baskets_are_cointegrated(truth):
    for b in truth.planted:
        pvalue, rank = _static_p(truth.prices[list(b.assets)].to_numpy())
        assert pvalue < 0.01 and rank >= 1, (b.assets, pvalue, rank)


def test_true_spread_is_stationary_with_the_true_hedges(truth):
    for b in truth.planted:
        x = truth.prices[list(b.assets)].to_numpy()
        spread = x[:, 0] - x[:, 1:] @ np.asarray(b.hedge_ratios)
        assert adf(spread).pvalue < 0.01


def test_random_pairs_mostly_not_cointegrated(truth):
    planted = truth.planted_sets()
    cols = list(truth.prices.columns)
    values = truth.prices.to_numpy()
    pairs = [(i, j) for i, j in itertools.combinations(range(60), 2) if frozenset((cols[i], cols[j])) not in planted]
    pairs = pairs[::7]  # 253 of the 1,765 random pairs
    pvalues, ranks = np.array([_static_p(values[:, list(pair)]) for pair in pairs]).T
    assert np.mean(ranks >= 1) < 0.25
    assert np.mean(pvalues < 0.01) < 0.25


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_assets": 1}, "at least 2 assets"),
        ({"planted": [4]}, "must be 2 or 3"),
        ({"n_assets": 5, "planted": 3}, "need 6 assets"),
        ({"n_factors": 0}, "n_factors 0"),
    ],
)
def test_bad_arguments_refused(kwargs, message):
    args = {"n_assets": 10, "n_days": 50, "planted": 1, "seed": 0} | kwargs
    with pytest.raises(KalcointError, match=message):
        universe(**args)


def test_cli_writes_universe_and_truth(run_cli, tmp_path):
    out = tmp_path / "u"
    res = run_cli(
        "demo",
        "--universe",
        "30",
        "--days",
        "400",
        "--planted",
        "2",
        "--planted-triplets",
        "1",
        "--seed",
        "5",
        "--out",
        out,
    )
    assert res.exit_code == 0, res.stderr
    prices = pd.read_csv(out / "universe.csv", index_col="date", parse_dates=True)
    truth = universe(30, 400, planted=[2, 2, 3], seed=5)
    np.testing.assert_allclose(prices.to_numpy(), truth.prices.to_numpy(), rtol=1e-9)
    planted = pd.read_csv(out / "universe_planted.csv")
    assert planted["assets"].tolist() == [",".join(b.assets) for b in truth.planted]
    np.testing.assert_allclose(planted["alpha11"], [b.alpha11 for b in truth.planted], rtol=1e-9)


def test_cli_refuses_universe_options_alone_and_writes_nothing(run_cli, tmp_path):
    out = tmp_path / "u"
    res = run_cli("demo", "--seed", "5", "--out", out)
    assert res.exit_code == 2 and "--seed" in res.stderr and "--universe" in res.stderr
    res = run_cli("demo", "--universe", "4", "--planted", "3", "--out", out)
    assert res.exit_code == 2 and "need 6 assets" in res.stderr
    assert not (out / "universe.csv").exists()

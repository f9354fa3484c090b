"""EM ends at the maximum the MLE finds, and an EM row short of it is flagged.

The likelihood can have several stationary points. Two held-out baskets where the EM steps and
their L-BFGS-B polish end at a local maximum below the MLE's, with ``converged = True``:

* the first 70% (926 rows, ``compare``'s training rows) of EWG/EWQ/EWN in the country ETF file;
* a simulated 5-asset common-trend basket (:func:`common_trend_basket`, seed 4): one random-walk
  trend drives all five prices, each with its own loading and an AR(1) deviation.

With the default ``mle_starts=True`` EM also runs L-BFGS-B from the MLE's starts and keeps the
highest log-likelihood, so it ends within 0.01 of the MLE (here: at it). Without it EM keeps the
stationary point it found, ``converged`` still true (it is one), and ``compare`` flags the ``em``
row ``BELOW MLE`` when it is more than 0.01 below the ``mle`` row, on the whole sample or on the
training rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kalcoint import datasets
import kalcoint.comparison as comparison
from kalcoint.comparison import BELOW_MLE_TOL, compare
from kalcoint.data import load_prices
from kalcoint.oos import split_rows
from kalcoint.tuning import tune

EWG_EWQ_EWN = ["EWG US Equity", "EWQ US Equity", "EWN US Equity"]


def common_trend_basket(seed: int, k: int = 5, n: int = 1500) -> pd.DataFrame:
    """k prices ``20 + l_i * trend_t + d_{i,t}``: ``trend`` a random walk from 30 (daily sd 0.3),
    loadings ``l_i`` uniform on [0.5, 1.5], deviations ``d_i`` AR(1) with coefficient 0.95 and
    innovation sd 0.3; business days from 2015-01-02."""
    rng = np.random.default_rng(seed)
    trend = 30.0 + np.cumsum(rng.normal(0.0, 0.3, size=(n, 1)), axis=0)
    loadings = rng.uniform(0.5, 1.5, size=(1, k))
    shocks = rng.normal(0.0, 0.3, size=(n, k))
    dev = np.zeros((n, k))
    for t in range(1, n):
        dev[t] = 0.95 * dev[t - 1] + shocks[t]
    index = pd.bdate_range("2015-01-02", periods=n, name="date")
    return pd.DataFrame(trend @ loadings + dev + 20.0, index=index, columns=[f"S{i}" for i in range(k)])


@pytest.fixture(scope="module")
def country() -> pd.DataFrame:
    """EWG/EWQ/EWN of the country ETF file (1324 rows, 2016-01-01 to 2021-01-27)."""
    return load_prices(datasets.path("country_etf"), EWG_EWQ_EWN)


@pytest.fixture(scope="module")
def country_train(country) -> pd.DataFrame:
    return country.iloc[: split_rows(len(country), 0.7)]


def test_country_training_rows_are_the_held_out_case(country, country_train):
    assert len(country) == 1324 and len(country_train) == 926
    assert country_train.index[-1] == pd.Timestamp("2019-07-19")


def test_em_reaches_the_mle_on_the_country_case(country_train):
    mle = tune(country_train, method="mle", diagnose=False)
    em = tune(country_train, method="em", diagnose=False)
    assert mle.loglik == pytest.approx(790.902, abs=1e-3)
    assert abs(em.loglik - mle.loglik) <= 0.01 and em.converged
    opts = em.options
    # the EM steps and their polish stop at a local maximum 6.53 below; the chan start wins
    assert opts["em_point_loglik"] == pytest.approx(784.368, abs=1e-3)
    assert opts["winner"] == "chan" and opts["start_gain"] == pytest.approx(6.534, abs=1e-3)
    assert opts["start_logliks"]["chan"] == pytest.approx(mle.loglik, abs=1e-9)
    assert em.alpha11 == pytest.approx(mle.alpha11, abs=1e-9)  # 0.999999, on the bound
    assert em.history["loglik"][-1] == pytest.approx(em.loglik, abs=1e-6)
    assert np.all(np.diff(em.history["loglik"]) >= -1e-8 * np.abs(em.history["loglik"][:-1]))


def test_em_without_the_mle_starts_is_a_stationary_point_below(country_train):
    em = tune(country_train, method="em", diagnose=False, mle_starts=False)
    assert em.loglik == pytest.approx(784.368, abs=1e-3)
    assert em.alpha11 == pytest.approx(0.9424, abs=1e-4)
    assert em.converged and em.options["winner"] == "em" and em.options["start_logliks"] == {}


@pytest.mark.slow
def test_em_reaches_the_mle_on_a_common_trend_basket():
    prices = common_trend_basket(4)
    mle = tune(prices, method="mle", diagnose=False)
    em = tune(prices, method="em", diagnose=False)
    alone = tune(prices, method="em", diagnose=False, mle_starts=False)
    assert mle.loglik == pytest.approx(-417.1311, abs=1e-3)
    assert abs(em.loglik - mle.loglik) <= 0.01 and em.converged and em.options["winner"] == "chan"
    # alone, EM and its polish end 0.10 below, at a stationary point
    assert alone.loglik == pytest.approx(-417.2325, abs=1e-3) and alone.converged
    assert em.options["em_point_loglik"] == pytest.approx(alone.loglik, abs=1e-9)


def test_compare_flags_an_em_row_below_the_mle(country, monkeypatch):
    def em_alone(prices, method="seed", **options):
        return tune(prices, method=method, **options, **({"mle_starts": False} if method == "em" else {}))

    flagged = compare_rows(country, monkeypatch, em_alone)
    em = flagged.row("em")
    assert em.below_mle == pytest.approx(6.534, abs=1e-3)  # on the training rows
    assert em.below_mle > BELOW_MLE_TOL and em.flag == "BELOW MLE" and flagged.row("mle").flag == ""
    table = flagged.summary().tables[0]
    assert [r[-1] for r in table.rows] == ["", "BELOW MLE"]
    assert "BELOW MLE: the em fit's log-likelihood is 6.53 below the mle fit's" in str(flagged.summary())
    assert flagged.to_dict()["rows"][1]["below_mle"] == pytest.approx(6.534, abs=1e-3)
    # by default EM reaches the MLE on the whole sample and on the training rows: no flag
    plain = compare_rows(country, monkeypatch, tune)
    assert plain.row("em").below_mle is None and plain.row("em").flag == ""


def compare_rows(prices, monkeypatch, tuner):
    monkeypatch.setattr(comparison, "tune", tuner)
    return compare(prices, rows=("mle", "em"), bootstrap=0)


@pytest.mark.slow
def test_cli_compare_flags_an_em_row_below_the_mle(run_cli, monkeypatch):
    def em_alone(prices, method="seed", **options):
        return tune(prices, method=method, **options, **({"mle_starts": False} if method == "em" else {}))

    monkeypatch.setattr(comparison, "tune", em_alone)
    res = run_cli("compare", datasets.path("country_etf"), "--assets", ",".join(EWG_EWQ_EWN), "--bootstrap", "0")
    assert res.exit_code == 0, res.stderr
    em_line = next(line for line in res.stdout.splitlines() if line.startswith("│ em "))
    assert "BELOW MLE" in em_line
    assert "warning: the em fit's log-likelihood is 6.53 below the mle fit's" in " ".join(res.stderr.split())

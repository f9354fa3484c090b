"""Properties of the backtests and the study on generated price panels: no look-ahead, and the
accounting identities.

Held:

* no look-ahead: the positions (units, shares, dollar positions, filter states) and returns of
  every day up to a date do not change when the rows after it are altered (any positive prices)
  or removed, for the weekly and monthly walk-forward backtest (static, Chan's filter, a fixed
  model; the seed method in the slow twin; bands and linear rules; with and without costs) and
  for the out-of-sample study (the baskets selected for each period that starts by then, and
  their daily returns up to the date). The saved-model book, once it exists, is held to the same
  property here;
* the accounting identities: the equity is the compounded product of (1 + daily return); the
  trades' (1 + return) multiply to the final equity, for any units, shares, prices and costs as
  well as for every backtest above; the APR and the maximum drawdown are those of that equity;
  a study row's total return is the product of its daily returns.

The tests without ``_deep`` run a few fixed examples (the ``kalcoint`` hypothesis profile of
tests/conftest.py); their ``_deep`` twins (marked slow) run more, on longer panels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kc_strategies import dated, make_panel, models

from kalcoint.backtest import DAYS_PER_YEAR, account, backtest, compute_metrics
from kalcoint.errors import KalcointError
from kalcoint.report.basket import trades
from kalcoint.study import StudyOptions, study

WINDOW = 20  # walk-forward estimation rows (the smallest allowed)


def altered(frame: pd.DataFrame, cut: int, how: str, seed: int) -> pd.DataFrame:
    """``frame`` with the rows after row ``cut`` removed, or each price multiplied by a random factor in
    [0.9, 1.1] (a day's move stays far below 100%: a long-short book can then lose at most its gross)."""
    if how == "removed":
        return frame.iloc[: cut + 1]
    out = frame.copy()
    rng = np.random.default_rng(seed)
    out.iloc[cut + 1 :] *= rng.uniform(0.9, 1.1, out.iloc[cut + 1 :].shape)
    return out


# ---------------------------------------------------------------- accounting identities


def check_identities(result) -> None:
    r, eq = result.returns, result.equity
    np.testing.assert_allclose(eq, np.cumprod(1.0 + r), rtol=1e-12)
    traded = trades(pd.DatetimeIndex(result.frame["date"]), result.units, r)
    assert np.prod(1.0 + traded["return"].to_numpy()) == pytest.approx(eq[-1], rel=1e-12)
    assert result.metrics["apr"] == pytest.approx(eq[-1] ** (DAYS_PER_YEAR / r.size) - 1.0, rel=1e-12, abs=1e-15)
    assert result.metrics["max_drawdown"] == pytest.approx(float(np.min(result.drawdown)), abs=1e-15)


UNITS = st.sampled_from([0.0, 0.0, 1.0, -1.0, 2.0, -0.5, 0.25])


@st.composite
def accounts_cases(draw, max_n: int):
    n = draw(st.integers(2, max_n))
    k = draw(st.integers(2, 4))
    prices = make_panel(draw(st.integers(0, 2**32 - 1)), n, k, draw(st.sampled_from([0.01, 0.03])))
    units = np.array(draw(st.lists(UNITS, min_size=n, max_size=n)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shares = rng.normal(0.0, 1.0, (n, k)) * draw(st.sampled_from([1.0, 0.0]))  # 0: nothing held
    shares[:, 0] = draw(st.sampled_from([1.0, 0.0]))
    cost_bps = draw(st.sampled_from([0.0, 5.0, 50.0]))
    return prices, units, shares, cost_bps


def check_account_identities(prices, units, shares, cost_bps) -> None:
    acc = account(prices, units, shares, cost_bps)
    equity = np.cumprod(1.0 + acc.returns)
    dates = pd.bdate_range("2021-01-04", periods=units.size)
    traded = trades(dates, units, acc.returns)
    assert np.prod(1.0 + traded["return"].to_numpy()) == pytest.approx(equity[-1], rel=1e-12)
    flat = (units == 0) & (np.concatenate([[0.0], units[:-1]]) == 0)
    assert np.all(acc.returns[flat] == 0.0)  # a day flat at both closes earns and costs nothing
    m = compute_metrics(acc.returns, units, acc)
    assert m["apr"] == pytest.approx(equity[-1] ** (DAYS_PER_YEAR / units.size) - 1.0, rel=1e-12, abs=1e-15)


@given(case=accounts_cases(max_n=30))
def test_trades_multiply_to_the_final_equity(case):
    check_account_identities(*case)


@pytest.mark.slow
@settings(max_examples=500)
@given(case=accounts_cases(max_n=200))
def test_trades_multiply_to_the_final_equity_deep(case):
    check_account_identities(*case)


# ---------------------------------------------------------------- walk-forward: no look-ahead


@st.composite
def walk_forward_cases(draw, max_n: int, model_names: list[str]):
    n = draw(st.integers(WINDOW + 25, max_n))
    k = draw(st.integers(2, 3))
    frame = dated(make_panel(draw(st.integers(0, 2**32 - 1)), n, k, draw(st.sampled_from([0.01, 0.002]))))
    name = draw(st.sampled_from(model_names))
    model = draw(models(k)) if name == "fixed" else name
    options = {
        "strategy": draw(st.sampled_from(["bands", "linear"])),
        "retune": draw(st.sampled_from(["weekly", "monthly"])),
        "window": WINDOW,
        "cost_bps": draw(st.sampled_from([0.0, 5.0])),
    }
    if name == "seed":
        options["iterations"] = 5
    return (
        frame,
        model,
        options,
        draw(st.floats(0.0, 1.0)),
        draw(st.sampled_from(["removed", "altered"])),
        draw(st.integers(0, 2**32 - 1)),
    )


def check_no_look_ahead(frame, model, options, where, how, seed) -> None:
    try:
        full = backtest(frame, model, **options)
    except KalcointError as exc:  # the first estimation failed: it fails whatever follows
        with pytest.raises(KalcointError) as again:
            backtest(altered(frame, 2 * WINDOW + 10, how, seed), model, **options)
        assert str(again.value) == str(exc)
        return
    check_identities(full)
    first = frame.index.get_loc(full.frame["date"].iloc[0])
    if first + 1 >= len(frame) - 1:
        return  # one traded week: no day to cut after
    cut = first + 1 + int(where * (len(frame) - 2 - first - 1))  # at least 2 traded days up to the cut
    day = frame.index[cut]
    other = altered(frame, cut, how, seed)
    short = backtest(other, model, **options)
    check_identities(short)
    head = full.frame["date"] <= day
    m = int(head.sum())
    pd.testing.assert_frame_equal(
        full.frame[head].reset_index(drop=True), short.frame[short.frame["date"] <= day].reset_index(drop=True)
    )
    np.testing.assert_array_equal(full.accounts.positions[:m], short.accounts.positions[:m])
    np.testing.assert_array_equal(full.shares[:m], short.shares[:m])
    if full.state is not None:
        np.testing.assert_array_equal(full.state[:m], short.state[:m])


@given(case=walk_forward_cases(max_n=110, model_names=["static", "chan", "fixed"]))
def test_walk_forward_positions_ignore_later_rows(case):
    check_no_look_ahead(*case)


@pytest.mark.slow
@settings(max_examples=150)
@given(case=walk_forward_cases(max_n=260, model_names=["static", "chan", "fixed", "seed"]))
def test_walk_forward_positions_ignore_later_rows_deep(case):
    check_no_look_ahead(*case)


# ---------------------------------------------------------------- the study: no look-ahead


@st.composite
def study_cases(draw, max_n: int, selections: list[str]):
    options = StudyOptions(
        size=2,
        formation=100,
        trading=draw(st.sampled_from([10, 15, 25])),
        top=draw(st.integers(1, 2)),
        select=draw(st.sampled_from(selections)),
        models=("static", "chan"),
        cost_bps=draw(st.sampled_from([0.0, 5.0])),
        window=WINDOW,
        strategy=draw(st.sampled_from(["bands", "linear"])),
        n_boot=100,
    )
    n = draw(st.integers(options.formation + 20, max_n))
    frame = dated(make_panel(draw(st.integers(0, 2**32 - 1)), n, 3, draw(st.sampled_from([0.01, 0.002]))))
    return (
        frame,
        options,
        draw(st.floats(0.0, 1.0)),
        draw(st.sampled_from(["removed", "altered"])),
        draw(st.integers(0, 2**32 - 1)),
    )


def check_study_no_look_ahead(frame, options, where, how, seed) -> None:
    full, _ = study(frame, options, workers=0)
    first = options.formation  # the first trading row (formation >= window)
    cut = first + 1 + int(where * (len(frame) - 3 - first))
    day = frame.index[cut]
    short, _ = study(altered(frame, cut, how, seed), options, workers=0)
    for table in (full, short):
        for _, row in table.iterrows():
            assert row["total_return"] == pytest.approx(np.prod(1.0 + np.asarray(row["daily_returns"])) - 1.0)
    key = ["period", "selection_rank", "model"]
    started = full[pd.to_datetime(full["trading_start"]) < day]  # periods with 2 rows or more up to the cut
    mine = short[pd.to_datetime(short["trading_start"]) < day]
    assert started[key].values.tolist() == mine[key].values.tolist()
    for (_, a), (_, b) in zip(started.iterrows(), mine.iterrows()):
        assert list(a["assets"]) == list(b["assets"]) and a["status"] == b["status"]
        days = int(np.sum(pd.bdate_range(a["trading_start"], day) <= day))  # business-day panel
        assert a["daily_returns"][:days] == b["daily_returns"][:days]


@settings(max_examples=3)
@given(case=study_cases(max_n=150, selections=["static", "half-life"]))
def test_study_positions_ignore_later_rows(case):
    check_study_no_look_ahead(*case)


@pytest.mark.slow
@settings(max_examples=12)
@given(case=study_cases(max_n=260, selections=["static", "half-life", "mle-oos"]))
def test_study_positions_ignore_later_rows_deep(case):
    check_study_no_look_ahead(*case)

"""Backtests: Chan's published figures, accounting and metrics against plain references, costs,
walk-forward without look-ahead, the comparison table, and the ``kalcoint backtest`` command."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from kc_reference import chan_matlab_units

from kalcoint.backtest import (
    METRIC_KEYS,
    account,
    backtest,
    compare_backtests,
    compute_metrics,
    holding_periods,
    week_starts,
)
from kalcoint.cointegration import johansen
from kalcoint.data import _EXACT_FLOATS
from kalcoint.errors import KalcointError
from kalcoint.filtering import StateSpaceModel, kalman_filter
from kalcoint.strategy import bands, filter_shares

# ---------------------------------------------------------------- plain references (Chan's MATLAB, literally)


def chan_33_reference(ewc: np.ndarray, ewa: np.ndarray) -> np.ndarray:
    """Chan, Algorithmic Trading, Example 3.3: x = [EWA ones], y = EWC, delta 1e-4, Ve 0.001."""
    n = ewc.size
    x = np.column_stack([ewa, np.ones(n)])
    y = ewc
    delta, Ve = 1e-4, 0.001
    Vw = delta / (1 - delta) * np.eye(2)
    P = np.zeros((2, 2))
    R = np.zeros((2, 2))
    beta = np.zeros((2, n))
    e = np.zeros(n)
    Q = np.zeros(n)
    for t in range(n):
        if t > 0:
            beta[:, t] = beta[:, t - 1]
            R = P + Vw
        yhat = x[t] @ beta[:, t]
        Q[t] = x[t] @ R @ x[t] + Ve
        e[t] = y[t] - yhat
        K = R @ x[t] / Q[t]
        beta[:, t] = beta[:, t] + K * e[t]
        P = R - np.outer(K, x[t]) @ R
    sq = np.sqrt(Q)
    units = chan_matlab_units(e, sq)
    prices = np.column_stack([ewa, ewc])
    positions = units[:, None] * np.column_stack([-beta[0], np.ones(n)]) * prices
    return _matlab_returns(positions, prices)


def _matlab_returns(positions: np.ndarray, prices: np.ndarray) -> np.ndarray:
    """pnl = sum(lag(positions) .* (y - lag(y)) ./ lag(y), 2); ret = pnl ./ sum(abs(lag(positions)), 2); NaN -> 0."""
    lagpos = np.vstack([np.full((1, prices.shape[1]), np.nan), positions[:-1]])
    lagp = np.vstack([np.full((1, prices.shape[1]), np.nan), prices[:-1]])
    with np.errstate(invalid="ignore", divide="ignore"):
        pnl = np.sum(lagpos * (prices - lagp) / lagp, axis=1)
        ret = pnl / np.sum(np.abs(lagpos), axis=1)
    return np.nan_to_num(ret, nan=0.0)


def apr_sharpe(ret: np.ndarray) -> tuple[float, float]:
    return float(np.prod(1 + ret) ** (252 / ret.size) - 1), float(np.sqrt(252) * ret.mean() / ret.std(ddof=1))


@pytest.fixture(scope="module")
def chan_file_df(chan_file):
    return pd.read_csv(chan_file, index_col=0, parse_dates=True)


@pytest.fixture(scope="module")
def ewc_ewa(chan_file_df):
    return chan_file_df[["EWC", "EWA"]].dropna()


@pytest.fixture(scope="module")
def triplet(chan_file_df):
    return chan_file_df[["EWA", "EWC", "IGE"]].dropna()


# ---------------------------------------------------------------- Chan's published figures


def test_chan_example_3_3_figures(ewc_ewa):
    res = backtest(ewc_ewa, "chan", "bands", delta=1e-4, obs_var=1e-3, entry=1.0, exit=1.0)
    assert res.mode == "in-sample"
    assert len(res.frame) == 1500
    assert round(100 * res.metrics["apr"], 2) == 26.23  # published 26.2%
    assert round(res.metrics["sharpe"], 2) == 2.36  # published 2.4
    ref = chan_33_reference(ewc_ewa["EWC"].to_numpy(), ewc_ewa["EWA"].to_numpy())
    np.testing.assert_allclose(res.returns, ref, atol=1e-12)
    apr, sharpe = apr_sharpe(ref)
    assert res.metrics["apr"] == pytest.approx(apr, rel=1e-12)
    assert res.metrics["sharpe"] == pytest.approx(sharpe, rel=1e-12)
    # day 1: b = 0, e = EWC price > sqrt(Ve): Chan's code goes short one share of EWC on the first day
    assert res.units[0] == -1.0 and res.returns[0] == 0.0


def test_chan_example_2_8_figures(triplet):
    res = backtest(triplet, "static", "linear")
    assert round(res.metrics["half_life"], 2) == 22.66  # published 23 days
    assert res.lookback == 23
    assert round(100 * res.metrics["apr"], 2) == 12.57  # published 12.6%
    assert round(res.metrics["sharpe"], 2) == 1.39  # published 1.4
    # Chan's code: yport = y2 * evec(:, 1); numUnits = -(yport - movingAvg) ./ movingStd; positions = units * evec * y2
    p = triplet.to_numpy()
    w = johansen(p).weights
    yport = pd.Series(p @ w)
    units = -((yport - yport.rolling(23).mean()) / yport.rolling(23).std()).to_numpy()
    ref = _matlab_returns(units[:, None] * w[None, :] * p, p)
    np.testing.assert_allclose(res.returns, ref, atol=1e-12)


# ---------------------------------------------------------------- accounting, costs, metrics by hand


PRICES = np.array([[10.0, 20.0], [11.0, 19.0], [12.0, 21.0], [11.0, 22.0], [10.0, 20.0]])
UNITS = np.array([0.0, 1.0, 1.0, -2.0, 0.0])
SHARES = np.array([[1.0, -0.5], [1.0, -0.5], [1.0, -0.6], [1.0, -0.6], [1.0, -0.6]])


def test_account_by_hand_without_costs():
    acc = account(PRICES, UNITS, SHARES)
    # dollar positions D_t = units * shares * prices
    np.testing.assert_allclose(acc.positions[1], [11.0, -9.5])
    np.testing.assert_allclose(acc.positions[2], [12.0, -12.6])
    np.testing.assert_allclose(acc.positions[3], [-22.0, 26.4])
    # day 3: yesterday's 11 x (12/11 - 1) - 9.5 x (21/19 - 1) = 1 - 1 = 0 over 20.5
    # day 4: 12 x (11/12 - 1) - 12.6 x (22/21 - 1) = -1 - 0.6 = -1.6 over 24.6
    # day 5: -22 x (10/11 - 1) + 26.4 x (20/22 - 1) = 2 - 2.4 = -0.4 over 48.4
    np.testing.assert_allclose(acc.returns, [0.0, 0.0, 0.0, -1.6 / 24.6, -0.4 / 48.4], atol=1e-15)
    # traded value: day 2 buys 1 x 11 and sells 0.5 x 19; day 3 rebalances 0.1 share of asset 2 at 21;
    # day 4 sells 3 x 11 and buys 1.8 x 22; day 5 buys 2 x 10 and sells 1.2 x 20
    np.testing.assert_allclose(acc.traded, [0.0, 20.5, 2.1, 72.6, 44.0], atol=1e-12)


def test_costs_reduce_each_return_by_traded_value_times_bps():
    bps = 25.0
    gross = account(PRICES, UNITS, SHARES, 0.0)
    net = account(PRICES, UNITS, SHARES, bps)
    # capital charged: the larger gross position around the trade
    capital = np.array([0.0, 20.5, 24.6, 48.4, 48.4])
    expected_cost = np.array([0.0, 20.5 / 20.5, 2.1 / 24.6, 72.6 / 48.4, 44.0 / 48.4]) * bps / 1e4
    np.testing.assert_allclose(net.cost_capital, capital, atol=1e-12)
    np.testing.assert_allclose(gross.returns - net.returns, expected_cost, atol=1e-15)
    np.testing.assert_allclose(net.cost, gross.traded * bps / 1e4, atol=1e-15)


def test_metrics_against_plain_reference():
    r = np.array([0.0, 0.01, -0.02, 0.03, -0.01, -0.04, 0.02, 0.0, 0.01, 0.005])
    units = np.array([0, 1, 1, 0, -1, -1, 1, 1, 0, 0.5])
    m = compute_metrics(r, units)
    eq = []
    value = 1.0
    for x in r:
        value *= 1 + x
        eq.append(value)
    apr = value ** (252 / 10) - 1
    mean = sum(r) / 10
    sd = math.sqrt(sum((x - mean) ** 2 for x in r) / 9)
    peak, mdd = 1.0, 0.0
    for v in eq:
        peak = max(peak, v)
        mdd = min(mdd, v / peak - 1)
    assert m["apr"] == pytest.approx(apr, rel=1e-12)
    assert m["sharpe"] == pytest.approx(math.sqrt(252) * mean / sd, rel=1e-12)
    assert m["max_drawdown"] == pytest.approx(mdd, rel=1e-12) and mdd < 0
    assert m["calmar"] == pytest.approx(apr / abs(mdd), rel=1e-12)
    # holding periods: long days 2-3, short 5-6, long 7-8, long 10 (still open) -> 3 round trips
    assert holding_periods(units) == [(1, 2, 1), (4, 5, -1), (6, 7, 1), (9, 9, 1)]
    assert m["round_trips"] == 3
    assert m["avg_holding_days"] == pytest.approx((2 + 2 + 2 + 1) / 4)
    assert m["time_in_market"] == pytest.approx(0.7)
    assert m["turnover"] is None and m["half_life"] is None


def test_turnover_and_undefined_metrics():
    acc = account(PRICES, UNITS, SHARES)
    m = compute_metrics(acc.returns, UNITS, acc)
    assert m["turnover"] == pytest.approx(252 * (1 + 2.1 / 24.6 + 72.6 / 48.4 + 44.0 / 48.4) / 5)
    flat = compute_metrics(np.zeros(5), np.zeros(5))
    assert flat["sharpe"] is None and flat["calmar"] is None and flat["max_drawdown"] == 0.0
    assert flat["apr"] == 0.0 and flat["round_trips"] == 0 and flat["avg_holding_days"] is None


def test_cost_bps_on_real_data_matches_turnover(ewc_ewa):
    free = backtest(ewc_ewa, "chan", "bands")
    costly = backtest(ewc_ewa, "chan", "bands", cost_bps=5.0)
    drag = free.returns - costly.returns
    np.testing.assert_allclose(
        drag,
        costly.accounts.cost / np.where(costly.accounts.cost_capital > 0, costly.accounts.cost_capital, 1.0),
        atol=1e-15,
    )
    assert 252 * drag.mean() == pytest.approx(free.metrics["turnover"] * 5e-4, rel=1e-12)
    assert costly.metrics["apr"] < free.metrics["apr"]


def test_fixed_model_object_equals_named_chan(ewc_ewa):
    named = backtest(ewc_ewa, "chan", "bands", delta=1e-4, obs_var=1e-3)
    fixed = backtest(ewc_ewa, StateSpaceModel.chan(2, 1e-4, obs_var=1e-3), "bands")
    np.testing.assert_array_equal(named.returns, fixed.returns)


def test_linear_filter_strategy_by_hand(ewc_ewa):
    res = backtest(ewc_ewa, "chan", "linear", lookback=10)
    r = kalman_filter(ewc_ewa, StateSpaceModel.chan(2))
    s = pd.Series(r.spread)
    units = np.nan_to_num(-((s - s.rolling(10).mean()) / s.rolling(10).std()).to_numpy())
    np.testing.assert_allclose(res.units, units, atol=1e-9)
    ref = _matlab_returns(units[:, None] * filter_shares(r.filtered_state) * ewc_ewa.to_numpy(), ewc_ewa.to_numpy())
    np.testing.assert_allclose(res.returns, ref, atol=1e-9)


# ---------------------------------------------------------------- walk-forward


WF = {"retune": "weekly", "window": 250, "iterations": 50}


@pytest.mark.parametrize(
    "model,strategy",
    [
        ("static", "bands"),
        pytest.param("static", "linear", marks=pytest.mark.slow),
        ("seed", "bands"),
        pytest.param("seed", "linear", marks=pytest.mark.slow),
        ("chan", "bands"),
    ],
)
def test_walk_forward_has_no_look_ahead(triplet, model, strategy):
    cut = pd.Timestamp("2009-06-17")  # a Wednesday: the truncated file ends inside a week
    full = backtest(triplet, model, strategy, **WF)
    short = backtest(triplet.loc[:cut], model, strategy, **WF)
    assert full.mode == short.mode == "walk-forward"
    head = full.frame[full.frame["date"] <= cut].reset_index(drop=True)
    assert len(head) == len(short.frame) > 500
    pd.testing.assert_frame_equal(head, short.frame, check_exact=True)
    np.testing.assert_array_equal(full.accounts.positions[: len(head)], short.accounts.positions)
    # a later price shock cannot move earlier positions either
    shocked = triplet.copy()
    shocked.loc[shocked.index > cut, "EWA"] *= 1.5
    again = backtest(shocked, model, strategy, **WF)
    pd.testing.assert_frame_equal(again.frame[again.frame["date"] <= cut].reset_index(drop=True), short.frame)


def test_walk_forward_weeks_and_static_weights(triplet):
    res = backtest(triplet, "static", "bands", **WF)
    starts = week_starts(triplet.index, 250)
    assert res.frame["date"].iloc[0] == triplet.index[starts[0]]
    assert len(res.retunes) == len(starts) == 259
    # every re-estimation day is the first trading day of its week and follows a day of an earlier week
    days = triplet.index[starts]
    prev = triplet.index[starts - 1]
    assert np.all(days.to_period("W") != prev.to_period("W"))
    assert res.frame["date"].iloc[0] == pd.Timestamp("2007-04-30")  # a Monday
    # week 100 trades the Johansen weights of the 250 rows strictly before it (sign: w_1 > 0)
    s = starts[100]
    w = johansen(triplet.to_numpy()[s - 250 : s]).weights
    w = w if w[0] > 0 else -w
    np.testing.assert_allclose(res.retunes.loc[100, "weights"], w, rtol=1e-12)
    np.testing.assert_allclose(res.shares[s - starts[0]], w, rtol=1e-12)


def test_walk_forward_chan_carries_the_filter_state(ewc_ewa):
    # Chan's model is never re-estimated: carrying the state week to week is one continuous filter,
    # and the band legs start from the rule run over the first window (what a saved model holds)
    res = backtest(ewc_ewa, "chan", "bands", entry=1.0, exit=0.0, **WF)
    first = week_starts(ewc_ewa.index, 250)[0]
    r = kalman_filter(ewc_ewa.iloc[first - 250 :], StateSpaceModel.chan(2))
    np.testing.assert_allclose(res.deviation, r.innovation[250:], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(res.scale, np.sqrt(r.innovation_var[250:]), rtol=1e-9)
    whole = bands(r.innovation, np.sqrt(r.innovation_var), entry=1.0, exit=0.0)
    assert whole[249] == whole[250] == -1  # the short open when the window ends is held into week 1
    np.testing.assert_array_equal(res.units, whole[250:])
    assert res.versions is not None and len(res.versions) == 1 and (res.version == 1).all()


def test_walk_forward_seed_uses_the_weekly_tuned_model(triplet):
    from kalcoint.tuning import tune

    res = backtest(triplet.iloc[:300], "seed", "bands", **WF)
    starts = week_starts(triplet.index[:300], 250)
    tuned = [tune(triplet.iloc[s - 250 : s], method="seed", iterations=50, diagnose=False) for s in starts[:2]]
    assert res.retunes.loc[0, "alpha11"] == tuned[0].alpha11
    # week 1: continue the first model's window filter; week 2: last week's posterior, new model
    w1 = kalman_filter(
        triplet.iloc[starts[0] : starts[1]],
        tuned[0].model,
        start=(tuned[0].result.filtered_state[-1], tuned[0].result.filtered_cov[-1]),
    )
    w2 = kalman_filter(
        triplet.iloc[starts[1] : starts[2]], tuned[1].model, start=(w1.filtered_state[-1], w1.filtered_cov[-1])
    )
    m1 = starts[1] - starts[0]
    np.testing.assert_allclose(res.deviation[:m1], w1.innovation, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(res.deviation[m1 : m1 + w2.n], w2.innovation, rtol=1e-9, atol=1e-12)


@pytest.mark.slow
def test_mle_and_em_lightly(triplet):
    from kalcoint.tuning import tune

    em = backtest(triplet, "em", "bands")
    tuned = tune(triplet, method="em", diagnose=False)
    r = kalman_filter(triplet, tuned.model)
    units = bands(r.innovation, np.sqrt(r.innovation_var))
    acc = account(triplet.to_numpy(), units, filter_shares(r.filtered_state))
    np.testing.assert_allclose(em.returns, acc.returns, atol=1e-12)
    assert 0.0 < em.metrics["apr"] < 1.0 and em.metrics["sharpe"] > 0
    mle = backtest(triplet.iloc[:275], "mle", "bands", retune="weekly", window=250, iterations=50)
    assert mle.mode == "walk-forward" and len(mle.retunes) == 5
    assert all(math.isfinite(a) for a in mle.retunes["alpha11"])
    # a week whose re-estimation fails (on this data: the seed first pass that mle starts from, when the
    # Johansen level does not mean-revert) keeps last week's model, and the failure is reported
    failed = mle.retunes["failed"].notna().to_numpy() if "failed" in mle.retunes else np.zeros(5, bool)
    assert len(mle.retune_failures) == failed.sum()
    for i in np.flatnonzero(failed):
        assert i > 0 and mle.retunes["alpha11"].iloc[i] == mle.retunes["alpha11"].iloc[i - 1]


# ---------------------------------------------------------------- errors and the comparison table


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"strategy": "momentum"}, "strategy"),
        ({"entry": 1.0, "exit": 2.0}, "exit"),
        ({"window": 250}, "window applies to retune="),
        ({"retune": "daily", "window": 250}, "retune='daily' is not one of weekly, monthly"),
        ({"retune": "weekly"}, "retune='weekly' needs window=N"),
        ({"retune": "weekly", "window": 10}, "window=10 must be an integer >= 20 \\(trading days\\)"),
        ({"retune": "weekly", "window": 1499}, "no weekly period"),
        ({"method": "static", "delta": 1e-3}, "method='chan' only"),
        ({"method": "chan", "delta": 1e-3, "state_var": 1e-4}, "either delta or state_var"),
        ({"method": "nonsense"}, "method='nonsense' is not one of static, chan, seed, mle, em"),
        ({"method": "saved.kcm"}, "opened with kalcoint.load_model"),
        ({"method": "chan", "model": "chan"}, "give method .* or model .*, not both"),
        ({"lookback": 1, "strategy": "linear"}, "lookback=1"),
        ({"lookback": 10}, "lookback applies to strategy='linear'"),
        ({"cost_bps": -1.0}, "cost_bps=-1.0"),
        ({"retune": "weekly", "window": 250, "on_degenerate": "drop"}, "on_degenerate='drop'"),
    ],
)
def test_bad_options_raise_one_line(ewc_ewa, kwargs, match):
    """Library errors name the parameters (the command line says them as flags)."""
    kwargs = {"method": "chan", **kwargs}
    with pytest.raises(KalcointError, match=match) as info:
        backtest(ewc_ewa, **kwargs)
    assert "\n" not in str(info.value)
    assert "--" not in str(info.value) or "exit" in kwargs  # check_bands (strategy.py) still names flags


def test_compare_backtests_table(triplet):
    short = triplet.iloc[:400]
    table = compare_backtests(short, models=("static", "chan", "seed"), window=250, iterations=20, cost_bps=2.0)
    assert list(table.index) == ["static", "chan", "seed"]
    assert list(table.columns[:4]) == ["apr_is", "apr_wf", "sharpe_is", "sharpe_wf"]
    assert {f"{k}_{m}" for k in METRIC_KEYS for m in ("is", "wf")} <= set(table.columns)
    single = backtest(short, "chan", "bands", cost_bps=2.0, retune="weekly", window=250)
    assert table.loc["chan", "apr_wf"] == single.metrics["apr"]
    assert (table["error"] == "").all()


# ---------------------------------------------------------------- the command line


def test_cli_chan_example_3_3(run_cli, tmp_path, chan_file):
    js, csv, plots = tmp_path / "m.json", tmp_path / "bt.csv", tmp_path / "plots"
    res = run_cli(
        "backtest",
        chan_file,
        "--assets",
        "EWC,EWA",
        "--method",
        "chan",
        "--delta",
        "1e-4",
        "--obs-var",
        "1e-3",
        "--strategy",
        "bands",
        "--entry",
        "1",
        "--exit",
        "1",
        "--json",
        js,
        "--out",
        csv,
        "--plot-dir",
        plots,
    )
    assert res.exit_code == 0, res.stderr
    assert "IN-SAMPLE" in res.stdout and "26.23%" in res.stdout and "Sharpe 2.36" in res.stdout
    d = json.loads(js.read_text())
    assert set(d) == {*METRIC_KEYS, "mode", "assets", "model", "strategy", "cost_bps"}
    assert d["mode"] == "in-sample" and d["assets"] == ["EWC", "EWA"] and d["model"] == "chan"
    assert round(100 * d["apr"], 2) == 26.23 and round(d["sharpe"], 2) == 2.36
    assert d["max_drawdown"] < 0 and d["calmar"] == pytest.approx(d["apr"] / -d["max_drawdown"])
    table = pd.read_csv(csv)
    audit = ["shares_EWC", "shares_EWA", "position_EWC", "position_EWA", "hedge_EWA", "traded", "cost"]
    assert list(table.columns) == ["date", "units", "return", "equity", *audit] and len(table) == 1500
    assert table["date"].iloc[0] == "2006-04-26"
    assert table["equity"].iloc[-1] == pytest.approx(np.prod(1 + table["return"]), rel=1e-8)
    assert sorted(p.name for p in plots.iterdir()) == ["equity.png", "spread_positions.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in plots.iterdir())


def test_cli_static_linear_walk_forward(run_cli, tmp_path, chan_file):
    js = tmp_path / "wf.json"
    res = run_cli(
        "backtest",
        chan_file,
        "--assets",
        "EWA,EWC,IGE",
        "--method",
        "static",
        "--strategy",
        "linear",
        "--retune",
        "weekly",
        "--window",
        "250",
        "--cost-bps",
        "1",
        "--json",
        js,
    )
    assert res.exit_code == 0, res.stderr
    d = json.loads(js.read_text())
    assert d["mode"] == "walk-forward" and "WALK-FORWARD" in res.stdout and d["cost_bps"] == 1.0
    assert d["half_life"] is not None and d["time_in_market"] > 0.9


@pytest.mark.parametrize(
    "extra",
    [
        ["--method", "chan", "--strategy", "momentum"],
        ["--method", "chan", "--entry", "1", "--exit", "2"],
        ["--method", "chan", "--window", "250"],
        ["--method", "chan", "--retune", "weekly", "--window", "250", "--on-degenerate", "drop"],
        ["--method", "static", "--delta", "1e-4"],
        ["--method", "chan", "--retune", "weekly"],
        ["--model", "no_such_model.db"],
        ["--method", "chan", "--assets", "EWC,NOPE"],
        ["--method", "chan", "--cost-bps", "-3"],
    ],
)
def test_cli_bad_options_exit_2_without_outputs(run_cli, tmp_path, extra, chan_file):
    js, csv = tmp_path / "m.json", tmp_path / "bt.csv"
    args = [
        "backtest",
        chan_file,
        *(["--assets", "EWC,EWA"] if "--assets" not in extra else []),
        *extra,
        "--json",
        js,
        "--out",
        csv,
        "--plot-dir",
        tmp_path / "plots",
    ]
    res = run_cli(*args)
    assert res.exit_code == 2, res.stdout + res.stderr
    assert res.stderr.strip().startswith("kalcoint: error:") or "Error" in res.stderr
    assert not js.exists() and not csv.exists() and not (tmp_path / "plots").exists()


def test_cli_saved_model_replays_after_its_last_date(run_cli, tmp_path, ewc_ewa, chan_file):
    """A Chan model saved on the first 100 rows, replayed over the file: the days after row 100 of
    Example 3.3's one continuous filter, with the band legs held at the save carried in."""
    from kalcoint.live import load_model, save_chan_model

    path = tmp_path / "chan.kcm"
    save_chan_model(path, ewc_ewa.iloc[:100])
    before = path.read_bytes()
    js, csv = tmp_path / "s.json", tmp_path / "s.csv"
    res = run_cli("backtest", chan_file, "--model", path, "--json", js, "--out", csv)
    assert res.exit_code == 0, res.stderr
    assert path.read_bytes() == before  # the replay does not change the file
    d = json.loads(js.read_text())
    assert d["assets"] == ["EWC", "EWA"] and d["mode"] == "replay"
    r = kalman_filter(ewc_ewa, StateSpaceModel.chan(2))
    units = bands(r.innovation, np.sqrt(r.innovation_var))
    table = pd.read_csv(csv)
    assert len(table) == 1400 and table["date"].iloc[0] == f"{ewc_ewa.index[100]:%Y-%m-%d}"
    np.testing.assert_array_equal(table["units"], units[100:])
    acc = account(ewc_ewa.to_numpy()[100:], units[100:], filter_shares(r.filtered_state[100:]))
    np.testing.assert_allclose(table["return"], acc.returns, rtol=1e-9, atol=1e-12)
    lib = backtest(ewc_ewa, load_model(path))
    np.testing.assert_allclose(lib.returns, acc.returns, rtol=0, atol=1e-12)
    assert d["apr"] == pytest.approx(lib.metrics["apr"], rel=1e-12)
    bad = run_cli("backtest", chan_file, "--model", path, "--assets", "EWA,EWC")
    assert bad.exit_code == 2 and "saved model" in bad.stderr
    bad = run_cli("backtest", chan_file, "--model", path, "--on-degenerate", "keep")
    assert bad.exit_code == 2 and "--on-degenerate does not apply to a saved model" in bad.stderr
    early = tmp_path / "early.csv"
    ewc_ewa.iloc[:101].to_csv(early)
    bad = run_cli("backtest", early, "--model", path)
    assert bad.exit_code == 2 and "1 row(s) after the saved model's last date" in bad.stderr


def test_progress_is_a_callback(triplet):
    calls = []
    res = backtest(
        triplet.iloc[:300],
        "seed",
        retune="weekly",
        window=250,
        iterations=20,
        progress=lambda done, total: calls.append((done, total)),
    )
    weeks = len(week_starts(triplet.index[:300], 250))
    assert calls == [(i, weeks) for i in range(1, weeks + 1)] and len(res.retunes) == weeks == 10
    calls.clear()
    compare_backtests(
        triplet.iloc[:300],
        models=("static", "chan"),
        window=250,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(i, weeks) for i in range(1, weeks + 1)] + [(1, 1)]  # static: weekly; chan: one window


def test_cli_errors_name_flags(run_cli, chan_file):
    res = run_cli(
        "backtest",
        chan_file,
        "--assets",
        "EWA,EWC,IGE",
        "--method",
        "chan",
        "--retune",
        "weekly",
        "--window",
        "10",
    )
    assert res.exit_code == 2
    assert res.stderr.strip() == "kalcoint: error: --window 10 must be an integer >= 20 (trading days)"
    res = run_cli("backtest", chan_file, "--assets", "EWA,EWC", "--method", "chan", "--cost-bps", "-3")
    assert "--cost-bps -3.0 must be a finite number >= 0" in res.stderr


def test_compare_backtests_long_layout(triplet):
    short = triplet.iloc[:320]
    wide = compare_backtests(short, models=("static", "chan"), window=250)
    long = compare_backtests(short, models=("static", "chan"), window=250, layout="long")
    assert list(long.index) == [
        ("static", "in-sample"),
        ("static", "walk-forward"),
        ("chan", "in-sample"),
        ("chan", "walk-forward"),
    ]
    for metric in METRIC_KEYS:
        assert long.loc[("chan", "walk-forward"), metric] == wide.loc["chan", f"{metric}_wf"]
        assert long.loc[("static", "in-sample"), metric] == wide.loc["static", f"{metric}_is"]


def test_cli_model_neither_name_nor_file_is_said_as_a_flag(run_cli, tmp_path, chan_file):
    missing = tmp_path / "missing.kcm"
    res = run_cli("backtest", chan_file, "--assets", "EWA,EWC", "--model", missing)
    assert res.exit_code == 2
    assert res.stderr == (
        f"kalcoint: error: --model {missing} is not a model file; a method (static, chan, seed, mle, em, als) "
        "is given as --method NAME\n"
    )


# ---------------------------------------------------------------- outputs anyone can audit


@pytest.mark.parametrize(
    "model,strategy,extra",
    [("static", "linear", ["--retune", "weekly", "--window", "250"]), ("chan", "bands", [])],
)
def test_cli_out_file_recomputes_the_returns_with_the_prices_alone(
    run_cli, tmp_path, chan_file, model, strategy, extra
):
    from audit_reference import recompute_returns

    from kalcoint.data import load_prices

    csv = tmp_path / "bt.csv"
    assets = ["EWA", "EWC", "IGE"]
    res = run_cli(
        "backtest",
        chan_file,
        "--assets",
        ",".join(assets),
        "--method",
        model,
        "--strategy",
        strategy,
        "--cost-bps",
        "5",
        *extra,
        "--out",
        csv,
    )
    assert res.exit_code == 0, res.stderr
    out = pd.read_csv(csv, **_EXACT_FLOATS)
    prices = load_prices(chan_file, assets)
    got = recompute_returns(out, prices, assets, 5.0)
    np.testing.assert_allclose(out["return"], got, rtol=0, atol=1e-12)
    p = prices.loc[pd.DatetimeIndex(out["date"]), assets].to_numpy()
    held = out[[f"shares_{a}" for a in assets]].to_numpy()
    np.testing.assert_allclose(out[[f"position_{a}" for a in assets]].to_numpy(), held * p, rtol=1e-15, atol=0)
    # the hedge ratios are those of one unit: shares_j = -hedge_j * shares_1
    trading = out["units"] != 0
    for a in assets[1:]:
        np.testing.assert_allclose(
            out.loc[trading, f"shares_{a}"],
            -out.loc[trading, f"hedge_{a}"] * out.loc[trading, "shares_EWA"],
            rtol=1e-12,
        )
    assert (out["cost"] > 0).sum() > 100 and out["traded"].iloc[0] >= 0


# ---------------------------------------------------------------- one name for the re-estimation period


@pytest.mark.slow
def test_walk_forward_is_the_deprecated_name_of_retune(ewc_ewa, run_cli, chan_file, tmp_path):
    """``retune=`` (``--retune``) names the re-estimation period, as a saved model's policy does; the
    old ``walk_forward=`` (``--walk-forward``) still works for one release, with a warning."""
    new = backtest(ewc_ewa, "static", retune="weekly", window=250)
    with pytest.warns(DeprecationWarning, match="walk_forward= is deprecated: use retune="):
        old = backtest(ewc_ewa, "static", walk_forward="weekly", window=250)
    np.testing.assert_array_equal(old.returns, new.returns)
    assert new.mode == "walk-forward" and backtest(ewc_ewa, "static", retune="never").mode == "in-sample"
    with pytest.warns(DeprecationWarning), pytest.raises(KalcointError, match="give retune"):
        backtest(ewc_ewa, "static", retune="weekly", walk_forward="weekly", window=250)
    js = tmp_path / "m.json"
    res = run_cli(
        "backtest",
        chan_file,
        "--assets",
        "EWC,EWA",
        "--method",
        "static",
        "--walk-forward",
        "weekly",
        "--window",
        "250",
        "--json",
        js,
    )
    assert res.exit_code == 0 and "--walk-forward is deprecated: use --retune" in res.stderr
    assert json.loads(js.read_text())["sharpe"] == new.metrics["sharpe"]


def test_a_saved_model_trades_its_own_rule(ewa_ewc_ige, tmp_path):
    from kalcoint import live

    saved = live.save_static_model(tmp_path / "s.kcm", ewa_ewc_ige.iloc[:600], {"strategy": "linear"})
    res = backtest(ewa_ewc_ige, live.load_model(tmp_path / "s.kcm"))
    assert (res.mode, res.strategy, len(res.frame)) == ("replay", "linear", 900)
    assert saved.rule.strategy == "linear"
    with pytest.raises(KalcointError, match="the saved model trades its own rule \\(strategy='linear'"):
        backtest(ewa_ewc_ige, live.load_model(tmp_path / "s.kcm"), "bands")

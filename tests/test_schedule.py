"""The walk-forward schedule: one implementation for the backtest, the replay of a saved model
and the live updates, and the promise it gives.

The promise, on Chan's EWA/EWC/IGE closes, for every model (static, chan, seed, mle, em, als) and
every rule (bands, linear): a model saved with ``retune="weekly", window=250`` from rows ending on
the last trading day of a week, then fed the rest by ``update`` in random batches of 1 to 30
rows, takes the same units on every day as the replay of that model and as
``backtest(retune="weekly", window=250)`` over the last 250 rows before the model's end
followed by the rest; states equal to 1e-9, daily returns to 1e-12, the same version each day.
The fast variants use 60 rows after the model's end (12-13 re-estimations); the slow ones the
whole rest of the file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kalcoint import live, schedule
from kalcoint.backtest import backtest
from kalcoint.errors import KalcointError
from kalcoint.filtering import StateSpaceModel, kalman_filter

W = 250
BETA = ["beta_const", "beta_EWC", "beta_IGE"]


@pytest.fixture(scope="module")
def prices(ewa_ewc_ige) -> pd.DataFrame:
    return ewa_ewc_ige


def week_end_after(prices: pd.DataFrame, row: int) -> int:
    """The first row at or after ``row`` that is the last trading day of its calendar week (plain loop)."""
    for t in range(row, len(prices) - 1):
        a, b = prices.index[t], prices.index[t + 1]
        if (a - pd.Timedelta(days=a.weekday())).date() != (b - pd.Timedelta(days=b.weekday())).date():
            return t
    raise AssertionError("no week end")


# ---------------------------------------------------------------- the calendar


@pytest.mark.parametrize("period", ["weekly", "monthly"])
def test_period_starts_against_a_plain_calendar(prices, period):
    def key(d: pd.Timestamp) -> tuple:
        if period == "weekly":
            iso = d.isocalendar()
            return iso[0], iso[1]
        return d.year, d.month

    expected = [t for t in range(1, len(prices)) if key(prices.index[t]) != key(prices.index[t - 1]) and t >= W]
    starts = schedule.period_starts(prices.index, period, W)
    assert starts.tolist() == expected
    assert len(starts) == {"weekly": 259, "monthly": 60}[period]
    assert schedule.next_period(pd.Timestamp("2012-04-04"), "weekly") == "week of 2012-04-09"
    assert schedule.next_period(pd.Timestamp("2012-04-30"), "monthly") == "month 2012-05"


@pytest.mark.parametrize(
    "args,match",
    [
        (("hourly", 250), "retune='hourly' is not one of never, weekly, monthly"),
        (("weekly", None), "needs window=N"),
        (("weekly", 10), "window=10 must be an integer >= 20"),
        (("never", 250), "window=N applies with retune="),
        (("weekly", 250, "drop"), "on_degenerate='drop' is not one of use, keep"),
    ],
)
def test_policy_checks_name_parameters(args, match):
    with pytest.raises(KalcointError, match=match) as err:
        schedule.check_policy(*args)
    assert "--" not in str(err.value)


# ---------------------------------------------------------------- the schedule on a scripted fit


def scripted_fit(script: dict[str, str]):
    """A fit giving Chan's filter with delta from the window's last date: 'fail' raises, 'degenerate'
    marks the estimate degenerate; every estimate is distinct (delta grows with the call count)."""
    calls = []

    def fit(window: pd.DataFrame) -> schedule.Estimate:
        last = f"{window.index[-1]:%Y-%m-%d}"
        calls.append(last)
        what = script.get(last, "")
        if what == "fail":
            raise KalcointError("scripted failure")
        model = StateSpaceModel.chan(3, delta=1e-4 * len(calls))
        return schedule.Estimate(
            model,
            kalman_filter(window, model).loglik,
            degenerate=what == "degenerate",
            reasons=("scripted",) if what == "degenerate" else (),
        )

    return fit, calls


@pytest.mark.parametrize("on_degenerate", ["use", "keep"])
def test_failures_and_degenerate_fits_keep_or_use_the_previous_version(prices, on_degenerate):
    frame = prices.iloc[: W + 30]
    starts = schedule.period_starts(frame.index, "weekly", W)  # 6 weeks

    def day(t: int) -> str:
        return f"{frame.index[t]:%Y-%m-%d}"

    script = {day(starts[1] - 1): "fail", day(starts[3] - 1): "degenerate"}
    fit, calls = scripted_fit(script)
    run = schedule.run(
        frame, int(starts[0]), None, period="weekly", window=W, fit=fit, method="scripted", on_degenerate=on_degenerate
    )
    outcomes = [v.outcome for v in run.versions]
    assert [v.id for v in run.versions] == list(range(1, len(starts) + 1))
    assert outcomes[1] == "failed: scripted failure"
    assert outcomes[3] == ("applied" if on_degenerate == "use" else "degenerate: kept previous")
    assert run.versions[3].degenerate and run.versions[3].reasons == ("scripted",)
    assert len(calls) == len(starts)  # one estimation per week, none twice on one window
    # the version each row trades with: week 2 keeps version 1; week 4 uses 4 or keeps 3
    week = np.searchsorted(starts, np.arange(starts[0], len(frame)), side="right") - 1
    in_use = np.array([1, 1, 3, 4 if on_degenerate == "use" else 3, 5, 6])[week]
    np.testing.assert_array_equal(run.version, in_use)
    # plain reference: the filter continued week by week with the model in use
    models = {v.id: v.model for v in run.versions}
    b, P = kalman_filter(frame.iloc[starts[0] - W : starts[0]], models[1]).last_posterior
    ends = [*starts[1:], len(frame)]
    states = []
    for s, e in zip(starts, ends):
        r = kalman_filter(frame.iloc[s:e], models[int(in_use[s - starts[0]])], start=(b, P))
        b, P = r.last_posterior
        states.append(r.filtered_state)
    np.testing.assert_array_equal(run.filtered_state, np.vstack(states))


def test_a_first_estimation_that_fails_or_is_kept_degenerate_is_an_error(prices):
    frame = prices.iloc[: W + 10]
    last = f"{frame.index[W - 1]:%Y-%m-%d}"
    fit, _ = scripted_fit({last: "fail"})
    with pytest.raises(KalcointError, match="the first estimation .* failed: scripted failure"):
        schedule.run(frame, W, None, period="weekly", window=W, fit=fit, method="x")
    fit, _ = scripted_fit({last: "degenerate"})
    with pytest.raises(KalcointError, match="on_degenerate='keep' has no previous version"):
        schedule.run(frame, W, None, period="weekly", window=W, fit=fit, method="x", on_degenerate="keep")


# ---------------------------------------------------------------- the promise


def feed_in_random_batches(model: live.LiveModel, rows: pd.DataFrame, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    sizes, i = [], 0
    while i < len(rows):
        size = int(rng.integers(1, 31))
        model.update(rows.iloc[i : i + size])
        sizes.append(min(size, len(rows) - i))
        i += size
    return sizes


def save_weekly(
    path: Path,
    train: pd.DataFrame,
    method: str,
    strategy: str,
    iterations: int | None,
    on_degenerate: str = "use",
) -> live.LiveModel:
    """A model of ``method`` trading ``strategy``, saved with retune weekly on the last W rows of ``train``."""
    rule = {"strategy": strategy}
    if method == "static":
        return live.save_static_model(path, train, rule, retune="weekly", window=W)
    if method == "chan":
        return live.save_chan_model(path, train, strategy=rule, retune="weekly", window=W)
    from kalcoint.tuning import tune

    tuned = tune(train.iloc[-W:], method=method, iterations=iterations)
    return live.save_model(
        path,
        tuned,
        train,
        strategy=rule,
        retune="weekly",
        window=W,
        iterations=iterations,
        on_degenerate=on_degenerate,
    )


def promise(
    prices: pd.DataFrame,
    tmp_path: Path,
    method: str,
    iterations: int | None,
    end_row: int,
    tail: int | None,
    on_degenerate: str = "use",
    strategy: str = "bands",
) -> dict:
    """Save at the week end at or after ``end_row``, feed the rest; return the three runs."""
    end = week_end_after(prices, end_row)
    train = prices.iloc[: end + 1]
    rest = prices.iloc[end + 1 :] if tail is None else prices.iloc[end + 1 : end + 1 + tail]
    path = tmp_path / f"{method}.kcm"
    model = save_weekly(path, train, method, strategy, iterations, on_degenerate)
    saved = tmp_path / f"{method}-saved.kcm"
    shutil.copyfile(path, saved)
    sizes = feed_in_random_batches(model, rest, seed=end)
    h = model.history()
    h = h[h["kind"] == "update"]
    replay = backtest(rest, live.load_model(saved))
    wf = backtest(
        pd.concat([train.iloc[-W:], rest]),
        method,
        strategy,
        retune="weekly",
        window=W,
        iterations=iterations,
        on_degenerate=on_degenerate,
    )
    return {"history": h, "replay": replay, "wf": wf, "model": model, "sizes": sizes, "rest": rest, "method": method}


def assert_promise(out: dict) -> None:
    h, replay, wf = out["history"], out["replay"], out["wf"]
    n = len(out["rest"])
    assert len(h) == len(replay.frame) == len(wf.frame) == n
    assert max(out["sizes"]) > 1 and sum(out["sizes"]) == n
    np.testing.assert_array_equal(h["units"].to_numpy(), replay.units)
    np.testing.assert_array_equal(replay.units, wf.units)
    if out["method"] == "static":  # no filter state: the shares of one unit are the weights in force
        assert wf.state is None and replay.state is None and h[BETA].isna().all().all()
        np.testing.assert_array_equal(replay.shares, wf.shares)
    else:
        np.testing.assert_allclose(h[BETA].to_numpy(), replay.state, rtol=0, atol=1e-9)
        np.testing.assert_allclose(h[BETA].to_numpy(), wf.state, rtol=0, atol=1e-9)
    np.testing.assert_allclose(h["spread"].to_numpy(), wf.spread, rtol=0, atol=1e-9)
    np.testing.assert_allclose(replay.returns, wf.returns, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(h["version"].to_numpy(), wf.version)
    np.testing.assert_array_equal(replay.version, wf.version)
    # the versions in the file are the walk-forward's estimations, week by week (chan: never re-estimated)
    versions = pd.DataFrame([v.to_dict() for v in out["model"].versions()])
    pd.testing.assert_frame_equal(versions, wf.versions, check_exact=True)
    weeks = schedule.period_starts(wf.frame["date"].pipe(pd.DatetimeIndex), "weekly", 0)
    if out["method"] == "chan":
        assert len(versions) == 1 and (wf.version == 1).all()
    else:
        assert len(versions) == len(weeks)  # one estimation per week traded
        assert versions["effective_date"].tolist() == [f"{wf.frame['date'].iloc[s]:%Y-%m-%d}" for s in weeks]
    if wf.strategy == "linear":  # the moving window chosen each week from the half-life, live as walk-forward
        assert len(wf.retunes) == len(weeks) and (wf.retunes["lookback"] >= 2).all()


ITERATIONS = {"static": None, "chan": None, "seed": 200, "mle": 2000, "em": 100, "als": 100}
MATRIX = [
    pytest.param(method, strategy, marks=pytest.mark.slow if method == "als" else ())
    for method in ITERATIONS
    for strategy in ("bands", "linear")
]


@pytest.mark.parametrize("method,strategy", MATRIX)
def test_live_equals_replay_equals_walk_forward(prices, tmp_path, method, strategy):
    out = promise(prices, tmp_path, method, ITERATIONS[method], 600, tail=60, strategy=strategy)
    assert_promise(out)
    assert np.any(out["wf"].units != 0)


@pytest.mark.parametrize("method,iterations", [("seed", 200), pytest.param("mle", 2000, marks=pytest.mark.slow)])
def test_live_equals_walk_forward_when_reestimations_fail(prices, tmp_path, method, iterations):
    out = promise(prices, tmp_path, method, iterations, 750, tail=60)
    assert_promise(out)
    outcomes = out["wf"].versions["outcome"]
    if method == "seed":  # weeks whose seed passes break down keep the previous version
        assert outcomes.str.startswith("failed").sum() >= 5
        assert (outcomes == "applied").sum() >= 3


@pytest.mark.slow
@pytest.mark.parametrize(
    "method,iterations,strategy",
    [("seed", 2000, "bands"), ("mle", 2000, "bands"), ("em", 2000, "bands"), ("static", None, "linear")],
)
def test_live_equals_replay_equals_walk_forward_full_length(prices, tmp_path, method, iterations, strategy):
    out = promise(prices, tmp_path, method, iterations, 600, tail=None, strategy=strategy)
    assert_promise(out)


def test_keep_degenerate_stays_equal(prices, tmp_path):
    """With on_degenerate="keep" (MLE weeks of Aug-Oct 2008 that fit the prices exactly), live, replay and
    walk-forward keep the same previous versions."""
    out = promise(prices, tmp_path, "mle", 2000, 573, tail=60, on_degenerate="keep")
    assert_promise(out)
    outcomes = out["wf"].versions["outcome"]
    assert (outcomes == "degenerate: kept previous").sum() >= 1 and (outcomes == "applied").sum() >= 2


def test_a_manual_retune_is_effective_from_the_next_row(prices, tmp_path):
    from kalcoint.tuning import tune

    end = week_end_after(prices, 600) - 2  # a Wednesday-ish: inside a week
    train = prices.iloc[: end + 1]
    m = live.save_model(
        tmp_path / "m.kcm", tune(train.iloc[-W:], iterations=200), train, retune="weekly", window=W, iterations=200
    )
    v = m.retune()
    assert (v.id, v.effective_date, v.window_first, v.window_last) == (
        2,
        None,
        f"{prices.index[end - W + 1]:%Y-%m-%d}",
        f"{prices.index[end]:%Y-%m-%d}",
    )
    expected = tune(train.iloc[-W:], iterations=200, diagnose=False).model
    if v.applied:
        assert m.version == 2 and m.model.to_dict() == expected.to_dict()
    res = m.update(prices.iloc[end + 1 : end + 2])
    assert res.versions == [] and m.versions()[1].effective_date == f"{prices.index[end + 1]:%Y-%m-%d}"
    # the new row was predicted with version 2 from the posterior of the day before
    b, P = kalman_filter(train.iloc[-W:], m.versions()[0].model).last_posterior
    ref = kalman_filter(prices.iloc[end + 1 : end + 2], expected, start=(b, P))
    np.testing.assert_allclose(m.state, ref.filtered_state[-1], rtol=0, atol=1e-12)


def test_a_monthly_model_equals_the_monthly_walk_forward(prices, tmp_path):
    from kalcoint.tuning import tune

    months = prices.index.to_period("M")
    end = next(t for t in range(600, len(prices) - 1) if months[t] != months[t + 1])
    train, rest = prices.iloc[: end + 1], prices.iloc[end + 1 : end + 71]
    model = live.save_model(tmp_path / "m.kcm", tune(train.iloc[-W:], method="mle"), train, retune="monthly", window=W)
    assert model.next_retune == f"month {prices.index[end + 1]:%Y-%m}"
    feed_in_random_batches(model, rest, seed=3)
    wf = backtest(pd.concat([train.iloc[-W:], rest]), "mle", retune="monthly", window=W)
    h = model.history()
    h = h[h["kind"] == "update"]
    np.testing.assert_array_equal(h["units"].to_numpy(), wf.units)
    np.testing.assert_allclose(h[BETA].to_numpy(), wf.state, rtol=0, atol=1e-9)
    effective = [v.effective_date for v in model.versions()]
    assert effective == wf.versions["effective_date"].tolist()
    assert len(effective) == len({d[:7] for d in h["date"]}) == 4  # one estimation per calendar month

"""Screening a universe (``kalcoint screen``).

Held: each asset keeps its own start; baskets and their dependent asset are chosen as documented;
the rows hold known figures on Chan's file and the out-of-sample figure of a plain filter; a short
history or a failing basket is a row that says why; a local Dask cluster, the CLI's workers and a
resumed or interrupted run give the same rows as one serial run; bad options and table names are
refused.
"""

from __future__ import annotations

import math
from math import comb

import numpy as np
import pandas as pd
import pytest
from kc_reference import ref_filter

from kalcoint import adf, half_life, johansen
from kalcoint.errors import KalcointError
from kalcoint.screen import (
    ScreenOptions,
    Universe,
    basket_list,
    columns_for,
    load_universe,
    rank_table,
    read_table,
    screen,
    write_screen,
)
from kalcoint.tuning import tune

# BNO starts trading on 2010-06-07: 465 common rows with any other column of the file.
TICKERS = ["EWA", "EWC", "IGE", "EEM", "SPY", "BNO"]
OPTIONS = ScreenOptions(size=3, min_rows=500)


@pytest.fixture(scope="module")
def universe(chan_file) -> pd.DataFrame:
    return load_universe(chan_file, TICKERS)


@pytest.fixture(scope="module")
def serial(universe) -> pd.DataFrame:
    return screen(universe, OPTIONS, workers=0)


def _row(table: pd.DataFrame, *assets: str) -> pd.Series:
    hits = table[[tuple(a) == assets for a in table["assets"]]]
    assert len(hits) == 1
    return hits.iloc[0]


def test_load_universe_keeps_each_assets_own_start(universe, chan_file):
    assert list(universe.columns) == TICKERS
    assert universe.shape == (1500, 6)
    assert int(universe["BNO"].isna().sum()) == 1035
    assert universe["BNO"].first_valid_index() == pd.Timestamp("2010-06-07")
    assert int(universe[["EWA", "EWC", "IGE", "EEM", "SPY"]].isna().sum().sum()) == 0
    full = load_universe(chan_file)
    assert full.shape == (1500, 67)
    assert full.attrs["non_positive"] == ["EDC", "MWJ", "SMN"]


def test_basket_list_and_dependent_choice(universe):
    assert len(basket_list(TICKERS, 3)) == comb(6, 3) == 20
    assert basket_list(TICKERS, 3)[:3] == [("EWA", "EWC", "IGE"), ("EWA", "EWC", "EEM"), ("EWA", "EWC", "SPY")]
    rotations = basket_list(TICKERS, 3, "all")
    assert len(rotations) == 60
    assert rotations[:3] == [("EWA", "EWC", "IGE"), ("EWC", "EWA", "IGE"), ("IGE", "EWA", "EWC")]
    ige = basket_list(TICKERS, 3, "IGE")
    assert len(ige) == comb(5, 2) == 10 and all(b[0] == "IGE" for b in ige)
    assert len(basket_list([f"T{i}" for i in range(67)], 3)) == 47_905
    with pytest.raises(KalcointError, match="^dependent 'XYZ' is not"):
        basket_list(TICKERS, 3, "XYZ")


def test_rows_and_known_basket_figures(serial, universe):
    assert len(serial) == 20
    assert list(serial.columns) == columns_for(3)
    assert serial["assets"].map(tuple).tolist() == basket_list(TICKERS, 3)
    row = _row(serial, "EWA", "EWC", "IGE")
    assert row["status"] == "ok" and row["reason"] == ""
    assert (row["nobs"], row["start"], row["end"]) == (1500, "2006-04-26", "2012-04-09")
    # Chan, Algorithmic Trading, example 2.7
    assert [round(row[f"trace_r{r}"], 4) for r in range(3)] == [34.4286, 17.5317, 4.4710]
    assert [round(row[f"max_eig_r{r}"], 4) for r in range(3)] == [16.8969, 13.0607, 4.4710]
    assert row["rank_95"] == 3
    prices = np.ascontiguousarray(universe[["EWA", "EWC", "IGE"]].to_numpy())  # the screen's row-major layout
    y_port = johansen(prices).portfolio(prices)
    static = adf(y_port)
    assert row["static_adf_pvalue"] == static.pvalue
    assert row["static_adf_lags"] == static.lags == 12
    assert row["static_adf_pvalue"] == pytest.approx(0.013235, abs=5e-7)
    assert row["static_half_life"] == half_life(y_port) == pytest.approx(22.66, abs=0.005)
    tuned = tune(prices, iterations=30)
    assert row["alpha11"] == tuned.alpha11
    assert row["passes"] == 30
    assert row["dynamic_adf_pvalue"] == tuned.adf().pvalue
    assert (row["method"], row["iterations"]) == ("seed", 30)


def test_out_of_sample_figure_matches_plain_filter(serial, universe):
    row = _row(serial, "EWA", "EEM", "SPY")
    assert row["status"] == "ok"
    prices = np.ascontiguousarray(universe[["EWA", "EEM", "SPY"]].to_numpy())
    n_train = math.floor(0.7 * 1500)
    assert (row["oos_nobs"], row["oos_start"]) == (1500 - n_train, str(universe.index[n_train].date()))
    tuned = tune(prices[:n_train], iterations=30)
    assert row["oos_alpha11"] == tuned.alpha11
    assert row["oos_static_adf_pvalue"] == adf(tuned.johansen.portfolio(prices[n_train:])).pvalue
    # plain reference filter over the test rows, continuing from the last tuned posterior
    test = prices[n_train:]
    y, X = test[:, 0], np.column_stack([np.ones(len(test)), test[:, 1:]])
    m = tuned.model
    ref = ref_filter(
        y,
        X,
        np.diag(m.transition),
        np.diag(m.state_var),
        m.obs_var,
        tuned.result.filtered_state[-1],
        tuned.result.filtered_cov[-1],
        predict_first=True,
    )
    assert row["oos_loglik"] == pytest.approx(ref.loglik, rel=1e-9)
    spread = y - np.einsum("ij,ij->i", X[:, 1:], ref.b_filt[:, 1:])
    assert row["oos_adf_pvalue"] == pytest.approx(adf(spread).pvalue, rel=1e-6, abs=1e-12)


def test_short_history_rows_say_why(serial):
    short = serial[serial["status"] == "short"]
    assert len(short) == comb(5, 2) == 10  # every basket with BNO
    assert all("BNO" in a for a in short["assets"])
    assert set(short["nobs"]) == {465} and set(short["start"]) == {"2010-06-07"}
    assert set(short["reason"]) == {"common history of 465 rows is shorter than min_rows 500"}
    assert short["trace_r0"].isna().all()
    ok_or_failed = serial[serial["status"] != "short"]
    assert set(ok_or_failed["nobs"]) == {1500}


def test_failing_basket_is_a_row_with_its_reason(universe):
    frame = universe[["EWA", "EWC", "IGE"]].assign(EWA2=universe["EWA"] * 2.0)  # collinear with EWA
    table = screen(frame, OPTIONS, workers=0)
    assert len(table) == 4
    bad = table[[("EWA" in a and "EWA2" in a) for a in table["assets"]]]
    assert len(bad) == 2 and set(bad["status"]) == {"failed"}
    assert all(r.startswith("johansen: ") for r in bad["reason"])
    good = _row(table, "EWA", "EWC", "IGE")
    assert good["status"] == "ok" and round(good["trace_r0"], 4) == 34.4286
    # a seed breakdown (docs/method.md §9) is a failed row, with the figures computed before it kept
    failed = table[table["status"] == "failed"]
    assert failed["nobs"].notna().all()


def test_rank_table_orders_every_row_with_its_figure(serial):
    ranked = rank_table(serial, "static")
    # a failed tuning keeps its static figures, and is ranked by them with its status beside them
    assert len(ranked) == serial["static_adf_pvalue"].notna().sum()
    assert "failed" in set(ranked["status"]) and "ok" in set(ranked["status"])
    assert ranked["static_adf_pvalue"].is_monotonic_increasing
    assert tuple(ranked.iloc[0]["assets"]) == ("EWC", "IGE", "EEM") and ranked.iloc[0]["status"] == "failed"
    assert tuple(ranked[ranked["status"] == "ok"].iloc[0]["assets"]) == ("EWA", "EEM", "SPY")
    assert len(rank_table(serial, "static", top=3)) == 3
    assert rank_table(serial, "trace")["trace_r0"].is_monotonic_decreasing
    dynamic = rank_table(serial, "dynamic")
    assert len(dynamic) == serial["dynamic_adf_pvalue"].notna().sum() and dynamic["dynamic_adf_pvalue"].notna().all()


def test_old_keyword_names_still_work_with_a_warning(serial, universe):
    with pytest.warns(DeprecationWarning, match=r"rank_table\(by=...\) is deprecated: use rank_by="):
        ranked = rank_table(serial, by="static", top=1)
    assert tuple(ranked.iloc[0]["assets"]) == ("EWC", "IGE", "EEM")
    with pytest.warns(DeprecationWarning, match=r"screen\(checkpoint_s=...\) is deprecated: use checkpoint="):
        table = screen(universe, OPTIONS, workers=0, limit=0, checkpoint_s=5.0)
    assert len(table) == 0


@pytest.mark.slow
def test_dask_cluster_gives_the_same_rows(serial, universe):
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        remote = screen(universe, OPTIONS, scheduler=cluster.scheduler_address, batch_size=3)
    pd.testing.assert_frame_equal(remote, serial)


@pytest.mark.slow
def test_cli_local_workers_same_rows(run_cli, chan_file, tmp_path, serial):
    out = tmp_path / "screen.parquet"
    res = run_cli(
        "screen",
        chan_file,
        "--assets",
        ",".join(TICKERS),
        "--size",
        "3",
        "--min-rows",
        "500",
        "--workers",
        "2",
        "--out",
        out,
        "--top",
        "3",
    )
    assert res.exit_code == 0, res.stderr
    assert "20 baskets" in res.stdout and "EWA,EEM,SPY" in res.stdout
    pd.testing.assert_frame_equal(read_table(out), serial)
    again = run_cli("screen", chan_file, "--assets", ",".join(TICKERS), "--size", "3", "--out", out)
    assert again.exit_code == 2 and "--resume" in again.stderr


def test_resume_after_partial_run_equals_full_run(universe, serial, tmp_path):
    out = tmp_path / "part.parquet"
    first = screen(universe, OPTIONS, workers=0, out=out, limit=7)
    assert len(first) == 7 and len(read_table(out)) == 7
    # a table from before the columns were named nobs / oos_nobs resumes the same
    write_screen(out, first.rename(columns={"nobs": "n_obs", "oos_nobs": "oos_n_obs"}))
    full = screen(universe, OPTIONS, workers=0, out=out, resume=True)
    pd.testing.assert_frame_equal(full, serial)
    pd.testing.assert_frame_equal(read_table(out), serial)
    with pytest.raises(KalcointError, match="method seed iterations 30"):
        screen(universe, ScreenOptions(size=3, min_rows=500, iterations=5), workers=0, out=out, resume=True)


def test_interrupt_keeps_done_rows_and_csv_resume(universe, serial, tmp_path):
    out = tmp_path / "part.csv"

    def stop_after_first_batch(done: int, total: int) -> None:
        if done:  # the first call, done = 0, says the work has started
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        screen(universe, OPTIONS, workers=0, out=out, batch_size=6, progress=stop_after_first_batch)
    kept = read_table(out)
    assert kept["assets"].map(tuple).tolist() == basket_list(TICKERS, 3)[:6]
    assert out.read_text().splitlines()[1].startswith('"EWA,EWC,IGE",ok,')
    full = screen(universe, OPTIONS, workers=0, out=out, resume=True)
    assert full["assets"].map(tuple).tolist() == basket_list(TICKERS, 3)
    numeric = [c for c in columns_for(3) if serial[c].dtype == np.float64]
    # CSV keeps 10 significant digits
    np.testing.assert_allclose(full[numeric].to_numpy(), serial[numeric].to_numpy(), rtol=1e-9, atol=1e-300)
    pd.testing.assert_frame_equal(full.drop(columns=numeric), serial.drop(columns=numeric))


def test_bad_options_are_refused(universe):
    with pytest.raises(KalcointError, match="^size 5 must be 2, 3 or 4"):
        ScreenOptions(size=5)
    with pytest.raises(KalcointError, match="^min_rows 60 with train_fraction 0.7 leaves 42 tuning and 18 test"):
        ScreenOptions(min_rows=60)
    with pytest.raises(KalcointError, match="^method 'magic' is not one of seed, mle, em"):
        ScreenOptions(method="magic")
    with pytest.raises(KalcointError, match=r"\.parquet"):
        screen(Universe.from_frame(universe), OPTIONS, workers=0, out="x.txt")


def test_screen_and_study_refuse_negative_workers_and_empty_batches(universe):
    from kalcoint.study import StudyOptions, study

    options = StudyOptions(top=1, models=("static", "chan"))
    for run in (lambda **kw: screen(universe, OPTIONS, **kw), lambda **kw: study(universe, options, **kw)):
        with pytest.raises(KalcointError) as err:
            run(workers=-1)
        assert str(err.value) == "workers -1 must be >= 0 (0 runs in this process)"
        assert err.value.params == ("workers",)
        with pytest.raises(KalcointError) as err:
            run(workers=0, batch_size=0)
        assert str(err.value) == "batch_size 0 must be >= 1"
        assert err.value.params == ("batch_size",)


# ------------------------------------------------------------------ MLE screen


def test_mle_screen_row_is_the_tuned_fit(universe):
    """The MLE screen's alpha11 is tune(method="mle")'s on the basket's common history."""
    options = ScreenOptions(size=3, min_rows=500, method="mle", iterations=200)
    table = screen(universe, options, baskets=[("EWA", "EWC", "IGE")], workers=0)
    row = _row(table, "EWA", "EWC", "IGE")
    ref = tune(universe[["EWA", "EWC", "IGE"]].dropna(), method="mle", iterations=200)
    assert row["status"] == "ok"
    assert row["alpha11"] == pytest.approx(ref.alpha11, rel=1e-4)


def test_table_names_other_than_parquet_or_csv_are_refused(universe, tmp_path):
    from kalcoint.study import write_study

    with pytest.raises(
        KalcointError, match=r"^out .*rows.txt: use a .parquet, .pq or .csv file name for the screen table"
    ):
        screen(universe, OPTIONS, workers=0, out=tmp_path / "rows.txt")
    with pytest.raises(
        KalcointError, match=r"^out .*rows.xlsx: use a .parquet, .pq or .csv file name for the study table"
    ):
        write_study(tmp_path / "rows.xlsx", pd.DataFrame())
    assert list(tmp_path.iterdir()) == []


def test_eta_from_the_mean_rate_since_the_first_report():
    from kalcoint.cli.screen import EtaClock

    times = iter([5.0, 15.0, 16.0, 35.0])
    eta = EtaClock(clock=lambda: next(times))
    assert eta.update(10, 100) is None  # the first batch: no rate yet
    assert eta.update(20, 100) == pytest.approx(80.0)  # 10 units in 10 s, 80 left
    assert eta.update(20, 100) == pytest.approx(11.0 * 80 / 10)
    # a burst after a slow stretch does not swing it: 40 units in 30 s since the first report
    assert eta.update(50, 100) == pytest.approx(30.0 * 50 / 40)


def test_eta_column_renders_the_clock():
    from rich.progress import Progress

    from kalcoint.cli.screen import _EtaColumn

    progress = Progress()
    task = progress.add_task("x", total=100, eta=80.4)
    column = _EtaColumn()
    assert column.render(progress.tasks[task]).plain == "0:01:20"
    progress.update(task, eta=None)
    assert column.render(progress.tasks[task]).plain == "-:--:--"

"""The out-of-sample study (``kalcoint study``): formation and trading periods, selection, trading
by the backtest's walk-forward, and the portfolio statistics.

Held: the deflated Sharpe ratio equals the paper's example by hand, the stationary bootstrap draws
blocks of the asked mean length, the portfolio summary equals a hand computation; periods,
eligibility, the three selection rules and the trading windows are those documented; nothing after
a date changes earlier periods (truncation); failures are rows with their reason; an interrupted
or resumed run, a Dask cluster and a TLS scheduler give the same rows; the CLI refuses bad settings
with one line and prints the summary.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kalcoint.backtest import backtest
from kalcoint.errors import KalcointError
from kalcoint.screen import (
    ScreenOptions,
    Universe,
    evaluate_basket,
    load_universe,
    screen,
    tls_security,
)
from kalcoint.study import (
    COLUMNS,
    StudyOptions,
    bootstrap_indices,
    deflated_sharpe_ratio,
    eligible_assets,
    expected_max_sharpe,
    periods_of,
    portfolio_returns,
    read_study,
    select_baskets,
    study,
    summarize,
    trade_basket,
)

TICKERS = ["EWA", "EWC", "IGE", "SPY", "EEM", "BNO"]  # BNO starts 2010-06-07
FAST = StudyOptions(top=2, models=("static", "chan", "mle"), n_boot=200)


@pytest.fixture(scope="module")
def universe(chan_file) -> pd.DataFrame:
    return load_universe(chan_file, TICKERS)


@pytest.fixture(scope="module")
def serial(universe):
    return study(universe, FAST, workers=0)


# ------------------------------------------------------------------ statistics


def test_deflated_sharpe_ratio_paper_example_by_hand():
    # Bailey & Lopez de Prado (2014), numerical example: N = 100 trials, V[SR] = 1/2 annualised,
    # T = 1250 daily returns, annualised SR 2.5, skewness -3, kurtosis 10 -> SR_0 = 0.1132, DSR = 0.9004.
    # By hand: Phi^-1(0.99) = 2.32635, Phi^-1(1 - 1/(100 e)) = 2.68021,
    # SR_0 = sqrt(0.5/250) (0.42278 * 2.32635 + 0.57722 * 2.68021) = 0.044721 * 2.53062 = 0.113173;
    # SR = 2.5/sqrt(250) = 0.158114; z = (0.158114 - 0.113173) sqrt(1249) / sqrt(1 + 3 SR + 9/4 SR^2) = 1.2826.
    sr, var = 2.5 / math.sqrt(250), 0.5 / 250
    assert expected_max_sharpe(var, 100) == pytest.approx(0.113173, abs=2e-6)
    assert deflated_sharpe_ratio(sr, var, 100, 1250, -3.0, 10.0) == pytest.approx(0.9004, abs=1e-4)
    # more trials raise the bar: the same strategy is less convincing
    assert deflated_sharpe_ratio(sr, var, 1000, 1250, -3.0, 10.0) < 0.9
    with pytest.raises(KalcointError, match="2 trials"):
        expected_max_sharpe(var, 1)


def test_stationary_bootstrap_blocks():
    rng = np.random.default_rng(1)
    idx = bootstrap_indices(50, 4000, 5.0, rng)
    assert idx.shape == (4000, 50) and idx.min() == 0 and idx.max() == 49
    # within a block the index advances by one (wrapping around); a new block starts with probability 1/5
    step = (idx[:, 1:] - idx[:, :-1]) % 50
    continued = step == 1
    assert 1.0 - continued.mean() == pytest.approx(0.2 * (1 - 1 / 50), abs=0.01)  # a new start may land on +1
    # every position is drawn uniformly
    assert np.bincount(idx.ravel(), minlength=50) / idx.size == pytest.approx(np.full(50, 0.02), abs=0.002)
    # block length 1: iid draws, no more continuation than chance (1 in 50)
    iid = bootstrap_indices(50, 4000, 1.0, np.random.default_rng(2))
    assert ((iid[:, 1:] - iid[:, :-1]) % 50 == 1).mean() == pytest.approx(1 / 50, abs=0.003)


def _table(rows):
    frame = pd.DataFrame(rows)
    for c in COLUMNS:
        if c not in frame:
            frame[c] = None
    return frame[COLUMNS]


def test_portfolio_summary_by_hand():
    dates = pd.bdate_range("2020-01-01", periods=12)
    opts = StudyOptions(formation=100, trading=5, window=20, top=2, models=("chan", "seed"), n_boot=500)
    from kalcoint.study import Period

    periods = [Period(0, 0, 4, 8, 0), Period(1, 4, 8, 12, 4)]
    r = {  # (period, rank, model) -> daily returns
        (0, 1, "chan"): [0.0, 0.01, -0.02, 0.03],
        (0, 2, "chan"): [0.0, 0.03, 0.00, -0.01],
        (0, 1, "seed"): [0.0, 0.02, 0.01, 0.00],
        (0, 2, "seed"): [0.0, 0.0, 0.0, 0.0],  # seed failed: cash
        (1, 1, "chan"): [0.0, -0.01, 0.02, 0.01],
        (1, 1, "seed"): [0.0, 0.01, 0.01, 0.01],
    }
    rows = [
        {
            "period": p,
            "selection_rank": k,
            "model": m,
            "daily_returns": v,
            "status": "ok",
            "total_return": float(np.prod(1 + np.array(v)) - 1),
        }
        for (p, k, m), v in r.items()
    ]
    rows[3]["status"], rows[3]["total_return"] = "failed", None
    table = _table(rows)
    port = portfolio_returns(table, ["chan", "seed"], dates, periods)
    np.testing.assert_allclose(port["chan"].to_numpy(), [0, 0.02, -0.01, 0.01, 0, -0.01, 0.02, 0.01])
    np.testing.assert_allclose(port["seed"].to_numpy(), [0, 0.01, 0.005, 0, 0, 0.01, 0.01, 0.01])
    summary = summarize(table, opts, dates, periods)
    chan = np.array([0, 0.02, -0.01, 0.01, 0, -0.01, 0.02, 0.01])
    sharpe = math.sqrt(252) * chan.mean() / chan.std(ddof=1)
    assert summary["models"]["chan"]["sharpe"] == pytest.approx(sharpe, rel=1e-12)
    assert summary["models"]["chan"]["apr"] == pytest.approx(np.prod(1 + chan) ** (252 / 8) - 1, rel=1e-12)
    lo, hi = summary["models"]["chan"]["sharpe_ci"]
    assert lo < sharpe < hi
    vs = summary["models"]["seed"]["vs_chan"]
    # basket-periods: (0,1) seed 3.03% vs chan 1.9%: win; (0,2) seed failed (0) vs chan +1.9%: loss; (1,1) win
    assert vs["win_share"] == pytest.approx(2 / 3)
    assert vs["sharpe_diff"] == pytest.approx(summary["models"]["seed"]["sharpe"] - sharpe)
    assert summary["models"]["chan"]["vs_chan"] is None
    assert summary["baskets"] == 3 and summary["deflated_sharpe"]["model"] == "seed"
    assert [p["baskets"] for p in summary["periods"]] == [2, 1]


# ------------------------------------------------------------------ periods and selection


def test_periods_of_chan_file(universe):
    periods = periods_of(universe.index, StudyOptions())
    assert len(periods) == 10  # (1500 - 250) / 125
    first, last = periods[0], periods[-1]
    assert (first.formation_start, first.trading_start, first.trading_end) == (0, 250, 375)
    assert universe.index[250] == pd.Timestamp("2007-04-25")  # a Wednesday: its week began 2007-04-23
    assert first.fit_start == 0  # the week's first row minus 250 would be < 0: the first traded week is the next
    assert (last.trading_start, last.trading_end) == (1375, 1500)
    second = periods[1]
    week_first = universe.index[second.fit_start + 250]
    assert (
        week_first <= universe.index[second.trading_start]
        and week_first.weekday() <= universe.index[second.trading_start].weekday()
    )
    with pytest.raises(KalcointError, match="no trading period"):
        periods_of(universe.index, StudyOptions(formation=1499))


def test_eligible_assets_need_the_whole_formation(universe):
    periods = periods_of(universe.index, StudyOptions())
    values = Universe.from_frame(universe).values
    assert [TICKERS[j] for j in eligible_assets(values, periods[0])] == TICKERS[:5]  # BNO not yet trading
    bno_row = int(np.flatnonzero(universe.index == "2010-06-07")[0])
    later = [p for p in periods if p.first_row >= bno_row]
    assert later and all(len(eligible_assets(values, p)) == 6 for p in later)


def test_select_rules():
    rows = [
        {
            "assets": ["A", "B"],
            "static_adf_pvalue": 0.01,
            "rank_95": 0,
            "static_half_life": 10.0,
            "oos_loglik": -50.0,
            "oos_nobs": 50,
        },
        {
            "assets": ["A", "C"],
            "static_adf_pvalue": 0.02,
            "rank_95": 1,
            "static_half_life": 1.5,
            "oos_loglik": -20.0,
            "oos_nobs": 40,
        },
        {
            "assets": ["B", "C"],
            "static_adf_pvalue": 0.005,
            "rank_95": 2,
            "static_half_life": 61.0,
            "oos_loglik": None,
            "oos_nobs": None,
        },
        {
            "assets": ["A", "D"],
            "static_adf_pvalue": 0.03,
            "rank_95": 1,
            "static_half_life": 30.0,
            "oos_loglik": -10.0,
            "oos_nobs": 50,
        },
    ]

    def names(chosen):
        return [tuple(r["assets"]) for r in chosen]

    assert names(select_baskets(rows, "static", 5)) == [("B", "C"), ("A", "C"), ("A", "D")]  # trace must reject
    assert names(select_baskets(rows, "static", 1)) == [("B", "C")]
    assert names(select_baskets(rows, "half-life", 5)) == [("A", "B"), ("A", "D")]  # 2 <= half-life <= 60
    # log-likelihood per day: -10/50 = -0.2 > -20/40 = -0.5 > -50/50 = -1
    assert names(select_baskets(rows, "mle-oos", 5)) == [("A", "D"), ("A", "C"), ("A", "B")]


@pytest.mark.slow
def test_selection_figures_are_the_screen_of_the_formation_rows(serial, universe):
    table, _ = serial
    row = table.iloc[0]
    per = periods_of(universe.index, FAST)[int(row["period"])]
    sub = universe.iloc[per.formation_start : per.trading_start]
    assert (row["formation_start"], row["formation_end"]) == (f"{sub.index[0]:%Y-%m-%d}", f"{sub.index[-1]:%Y-%m-%d}")
    uni = Universe.from_frame(sub[list(row["assets"])])
    ref = evaluate_basket(uni, (0, 1), ScreenOptions(size=2, min_rows=250))
    assert row["static_adf_pvalue"] == ref["static_adf_pvalue"] and row["trace_r0"] == ref["trace_r0"]
    # it is the best of that period's eligible pairs by the static rule
    ranked = screen(sub[[t for t in TICKERS if sub[t].notna().all()]], ScreenOptions(size=2, min_rows=250), workers=0)
    ok = ranked[(ranked["rank_95"] >= 1) & ranked["static_adf_pvalue"].notna()].sort_values(
        "static_adf_pvalue", kind="stable"
    )
    assert list(ok.iloc[0]["assets"]) == list(row["assets"])


# ------------------------------------------------------------------ trading


def test_trading_window_is_the_backtests_walk_forward(universe):
    opts = StudyOptions(models=("static", "chan"))
    per = periods_of(universe.index, opts)[3]
    frame = universe[["EWA", "EWC"]].iloc[per.fit_start : per.trading_end]
    offset = per.trading_start - per.fit_start
    rows = {r["model"]: r for r in trade_basket(frame, offset, ["static", "chan"], opts)}
    for model in ("static", "chan"):
        ref = backtest(frame, model, "bands", retune="weekly", window=250, cost_bps=5.0)
        days = universe.index[per.trading_start : per.trading_end]
        ref_r = ref.frame.set_index("date")["return"].reindex(days).to_numpy()
        got = np.asarray(rows[model]["daily_returns"])
        assert rows[model]["untraded_days"] == 0 and len(got) == 125
        # the capital starts flat at the first close of the window: day 1 earns nothing, and buying the
        # rule's position from flat costs exactly 5 bps of it (traded value = gross position)
        assert got[0] in (0.0, pytest.approx(-5e-4, abs=1e-15))
        np.testing.assert_allclose(got[1:], ref_r[1:], rtol=0, atol=1e-15)
        eq = np.cumprod(1 + got)
        assert rows[model]["total_return"] == pytest.approx(eq[-1] - 1, rel=1e-12)
        assert rows[model]["apr"] == pytest.approx(eq[-1] ** (252 / 125) - 1, rel=1e-12)


def test_first_period_trades_from_its_first_full_week(universe):
    opts = StudyOptions(models=("static", "chan"))
    per = periods_of(universe.index, opts)[0]
    frame = universe[["EWA", "EWC"]].iloc[per.fit_start : per.trading_end]
    rows = trade_basket(frame, per.trading_start - per.fit_start, ["static", "chan"], opts)
    # 2007-04-25 is a Wednesday, and the 250 rows before that week's Monday start before the file:
    # the window's Wednesday to Friday hold no position, and the first trade is on Monday's close
    for row in rows:
        assert row["status"] == "ok" and row["untraded_days"] == 3
        assert np.all(np.asarray(row["daily_returns"])[:3] == 0.0)


@pytest.mark.slow
def test_nothing_after_a_date_changes_earlier_periods(universe, serial):
    table, _ = serial
    cut = universe.index[1000]
    periods = periods_of(universe.index, FAST)
    before = [p.number for p in periods if p.trading_end <= 1000]
    assert len(before) >= 4
    altered = universe.copy()
    noise = np.exp(np.random.default_rng(0).normal(0, 0.05, size=altered.loc[altered.index > cut].shape))
    altered.loc[altered.index > cut] = altered.loc[altered.index > cut].to_numpy() * noise
    for variant in (universe.loc[:cut], altered):
        other, _ = study(variant, FAST, workers=0)
        a = table[table["period"].isin(before)].reset_index(drop=True)
        b = other[other["period"].isin(before)].reset_index(drop=True)
        pd.testing.assert_frame_equal(a.drop(columns="daily_returns"), b.drop(columns="daily_returns"))
        assert all(np.array_equal(x, y) for x, y in zip(a["daily_returns"], b["daily_returns"]))


# ------------------------------------------------------------------ running


def test_rows_columns_and_failures(serial):
    table, summary = serial
    assert list(table.columns) == COLUMNS
    assert set(summary) >= {"models", "deflated_sharpe", "periods", "baskets"}
    assert set(summary["models"]["mle"]) >= {"apr", "sharpe", "sharpe_ci", "max_drawdown", "calmar", "vs_chan"}
    assert set(summary["models"]["mle"]["vs_chan"]) == {"sharpe_diff", "sharpe_diff_ci", "win_share"}
    assert set(summary["deflated_sharpe"]) >= {"model", "value"}
    assert len(table) == summary["baskets"] * 3
    assert (table.groupby(["period"])["n_selected"].first() <= 2).all()
    ok = table[table["status"] == "ok"]
    assert ok[["apr", "max_drawdown", "total_return"]].notna().all().all()
    assert (ok["n_days"] == [len(r) for r in ok["daily_returns"]]).all()


@pytest.mark.slow
def test_resume_after_interruption_equals_full_run(universe, serial, tmp_path):
    table, summary = serial
    out = tmp_path / "study.parquet"
    # an interrupted run: periods 0-5 done, period 6 half done
    partial = table[(table["period"] < 6) | ((table["period"] == 6) & (table["selection_rank"] == 1))]
    from kalcoint.study import write_study

    write_study(out, partial)
    calls = []
    resumed, again = study(universe, FAST, workers=0, out=out, resume=True, progress=lambda d, t: calls.append((d, t)))
    pd.testing.assert_frame_equal(resumed.drop(columns="daily_returns"), table.drop(columns="daily_returns"))
    assert json.dumps(again, sort_keys=True) == json.dumps(summary, sort_keys=True)
    assert calls[-1][0] == calls[-1][1]
    pd.testing.assert_frame_equal(read_study(out).drop(columns="daily_returns"), table.drop(columns="daily_returns"))
    with pytest.raises(KalcointError, match="other settings"):
        study(universe, StudyOptions(top=3, models=("static", "chan", "mle")), workers=0, out=out, resume=True)
    with pytest.raises(KalcointError, match="exists"):
        study(universe, FAST, workers=0, out=out)


@pytest.mark.slow
def test_interrupt_keeps_done_rows_atomically_then_resume(universe, serial, tmp_path):
    table, _ = serial
    out = tmp_path / "study.csv"

    def stop(done: int, total: int) -> None:  # in this process the screens come first, then the baskets
        if done == total - 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        study(universe, FAST, workers=0, out=out, progress=stop)
    kept = read_study(out)
    assert 0 < len(kept) < len(table)
    assert not list(tmp_path.glob(".study.csv.*"))  # no temporary file left behind
    resumed, _ = study(universe, FAST, workers=0, out=out, resume=True)
    pd.testing.assert_frame_equal(resumed.drop(columns="daily_returns"), table.drop(columns="daily_returns"))
    assert all(np.allclose(a, b, rtol=0, atol=1e-15) for a, b in zip(resumed["daily_returns"], table["daily_returns"]))


@pytest.mark.slow
def test_dask_cluster_gives_the_same_rows(universe, serial):
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        remote, _ = study(universe, FAST, scheduler=cluster.scheduler_address)
    pd.testing.assert_frame_equal(remote.drop(columns="daily_returns"), serial[0].drop(columns="daily_returns"))


def _certificates(directory: Path, name: str) -> tuple[Path, Path, Path]:
    """A self-signed CA and a certificate + key it signs (openssl CLI)."""
    ca_key, ca, key, csr, cert = (directory / f"{name}{s}" for s in ("-ca.key", "-ca.pem", ".key", ".csr", ".pem"))

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
        "-days",
        "2",
        "-subj",
        f"/CN={name}-ca",
    )
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}")
    run(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-out",
        str(cert),
        "-days",
        "2",
    )
    return ca, cert, key


@pytest.mark.slow
def test_tls_scheduler_accepts_the_right_certificate_only(universe, tmp_path):
    from distributed import LocalCluster

    good = _certificates(tmp_path, "cluster")
    bad = _certificates(tmp_path, "stranger")
    from distributed.security import Security

    ca, cert, key = map(str, good)
    cluster_security = Security(
        tls_ca_file=ca,
        tls_scheduler_cert=cert,
        tls_scheduler_key=key,
        tls_worker_cert=cert,
        tls_worker_key=key,
        tls_client_cert=cert,
        tls_client_key=key,
        require_encryption=True,
    )
    security = tls_security(*good)
    options = ScreenOptions(size=2, min_rows=500)
    reference = screen(universe, options, workers=0)
    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        protocol="tls://",
        security=cluster_security,
        dashboard_address=None,
    ) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tls://")
        rows = screen(universe, options, scheduler=address, security=security)
        pd.testing.assert_frame_equal(rows, reference)
        with pytest.raises(KalcointError, match="cannot connect"):
            screen(universe, options, scheduler=address, security=tls_security(*bad))
        with pytest.raises(KalcointError, match="uses TLS"):
            screen(universe, options, scheduler=address)
        small = StudyOptions(top=1, models=("static", "chan"), n_boot=200)
        via_tls, _ = study(universe.iloc[:700], small, scheduler=address, security=security)
        local, _ = study(universe.iloc[:700], small, workers=0)
        pd.testing.assert_frame_equal(via_tls.drop(columns="daily_returns"), local.drop(columns="daily_returns"))


# ------------------------------------------------------------------ CLI


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--top", "0"], "--top 0 must be at least 1"),
        (["--models", "static,chan,xyz"], "--models 'xyz' is not one of"),
        (["--formation", "2000"], "no trading period"),
        (["--models", "static,seed"], "--models must include chan"),
        (["--select", "best"], "--select 'best'"),
        (["--scheduler", "tls://127.0.0.1:8786"], "uses TLS"),
        (["--tls-ca-file", "x.pem"], "go together"),
        (["--batch-size", "0"], "--batch-size 0 must be >= 1"),
    ],
)
def test_cli_bad_settings_exit_2_one_line(run_cli, chan_file, tmp_path, extra, match):
    out = tmp_path / "s.parquet"
    res = run_cli("study", chan_file, "--out", out, "--json", tmp_path / "s.json", "--workers", "0", *extra)
    assert res.exit_code == 2
    assert match in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not out.exists() and not (tmp_path / "s.json").exists()


@pytest.mark.slow
def test_cli_study_prints_the_summary(run_cli, chan_file, tmp_path):
    out, js, plots = tmp_path / "s.csv", tmp_path / "s.json", tmp_path / "plots"
    res = run_cli(
        "study",
        chan_file,
        "--assets",
        "EWA,EWC,IGE,SPY",
        "--top",
        "1",
        "--models",
        "static,chan",
        "--formation",
        "250",
        "--trading",
        "250",
        "--out",
        out,
        "--json",
        js,
        "--plot-dir",
        plots,
        "--workers",
        "0",
    )
    assert res.exit_code == 0, res.stderr
    summary = json.loads(js.read_text())
    table = read_study(out)
    assert len(table) == 2 * summary["baskets"]
    sharpe = summary["models"]["static"]["sharpe"]
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("│ static"))
    assert f"{sharpe:.2f}" in line
    assert (plots / "equity.png").read_bytes()[:4] == b"\x89PNG"
    assert (plots / "sharpe_distribution.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_screen_tls_needs_the_three_files(run_cli, chan_file, tmp_path):
    out = tmp_path / "s.parquet"
    res = run_cli("screen", chan_file, "--out", out, "--scheduler", "tls://127.0.0.1:8786")
    assert res.exit_code == 2 and "uses TLS: give the CA file, certificate and key" in res.stderr
    res = run_cli("screen", chan_file, "--out", out, "--tls-cert", tmp_path / "c.pem")
    assert res.exit_code == 2 and "go together" in res.stderr
    res = run_cli(
        "screen",
        chan_file,
        "--out",
        out,
        "--scheduler",
        "tls://127.0.0.1:8786",
        "--tls-ca-file",
        tmp_path / "ca.pem",
        "--tls-cert",
        tmp_path / "c.pem",
        "--tls-key",
        tmp_path / "c.key",
    )
    assert res.exit_code == 2 and "does not exist" in res.stderr
    assert not out.exists()

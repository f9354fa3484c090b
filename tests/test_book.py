"""A book of baskets is the study run live.

A universe cut at a date, a book created from the rows up to it and fed the rest in random
batches of 1 to 30 rows: with the bands rule its selections equal the study's period by
period, every basket's units equal the study's backtest of that basket-period every day, and
its daily return (study convention, and at zero cost also what its netted holdings make)
equals the study's portfolio daily return to 1e-12. With costs the book charges the netted
trades it makes, which a plain loop over its history's shares and the prices recomputes. A
SIGKILL inside an update that re-selects leaves the old or the new file, and feeding the rest
still ends equal. Bad input is refused with nothing changed.
"""

from __future__ import annotations

import os
import signal

import numpy as np
import pandas as pd
import pytest

from kalcoint import book
from kalcoint import study as st
from kalcoint.backtest import backtest
from kalcoint.errors import KalcointError
from kalcoint.screen import load_universe

TICKERS = ["EEM", "EFA", "EWA", "EWC", "EWG", "EWJ", "EWQ", "EWU"]
CUT = 150


@pytest.fixture(scope="module")
def universe(chan_file) -> pd.DataFrame:
    return load_universe(chan_file, TICKERS).iloc[:400]


def _options(model: str, cost_bps: float, strategy: str = "bands", **more: object) -> book.BookOptions:
    settings: dict[str, object] = dict(size=2, formation=100, trading=20, top=2, window=60)
    settings.update(more)
    return book.BookOptions(model=model, cost_bps=cost_bps, strategy=strategy, **settings)  # type: ignore[arg-type]


def _feed(b: book.Book, rows: pd.DataFrame, seed: int) -> None:
    rng = np.random.default_rng(seed)
    i = 0
    while i < len(rows):
        m = int(rng.integers(1, 31))
        b.update(rows.iloc[i : i + m])
        i += m


def _study(universe: pd.DataFrame, o: book.BookOptions) -> tuple[pd.DataFrame, pd.Series, st.StudyOptions]:
    rows = universe.iloc[CUT - o.history_rows :]
    so = o.study_options()
    so = st.StudyOptions(**{**so.__dict__, "n_boot": 100})
    table, _ = st.study(rows, so, workers=0)
    periods = st.periods_of(rows.index, so)
    returns = st.portfolio_returns(table, so.models, rows.index, periods)[o.model]
    return table[table["model"] == o.model].reset_index(drop=True), returns, so


def _study_units(universe: pd.DataFrame, o: book.BookOptions, so: st.StudyOptions, row: pd.Series) -> pd.Series:
    """The study's units of one basket-period (its backtest, kept from the trading start)."""
    rows = universe.iloc[CUT - o.history_rows :]
    per = st.periods_of(rows.index, so)[int(row["period"])]
    frame = rows.iloc[per.fit_start : per.trading_end][list(row["assets"])]
    res = backtest(frame, o.model, o.strategy, retune="weekly", window=o.window, cost_bps=o.cost_bps)
    units = pd.Series(res.units, index=pd.DatetimeIndex(res.frame["date"]))
    days = rows.index[per.trading_start : per.trading_end]
    return units.reindex(days).fillna(0.0)


@pytest.mark.parametrize(
    ("model", "strategy", "more"),
    [
        pytest.param("chan", "bands", {}, marks=pytest.mark.slow, id="chan-bands"),
        pytest.param("static", "bands", {}, marks=pytest.mark.slow, id="static-bands"),
        pytest.param("mle", "bands", {}, marks=pytest.mark.slow, id="mle-bands"),
        pytest.param("static", "linear", {}, marks=pytest.mark.slow, id="static-linear"),
        pytest.param("seed", "linear", {}, marks=pytest.mark.slow, id="seed-linear"),
        pytest.param("chan", "bands", {"select": "half-life", "top": 3}, marks=pytest.mark.slow, id="chan-half-life"),
        pytest.param("chan", "bands", {"select": "mle-oos"}, marks=pytest.mark.slow, id="chan-mle-oos"),
        pytest.param("em", "bands", {"size": 3, "top": 2}, marks=pytest.mark.slow, id="em-size-3"),
        pytest.param("chan", "bands", {"dependent": "EWA"}, marks=pytest.mark.slow, id="chan-dependent-EWA"),
        pytest.param("chan", "bands", {"dependent": "all"}, marks=pytest.mark.slow, id="chan-dependent-all"),
    ],
)
def test_book_equals_study_at_zero_cost(tmp_path, universe, model, strategy, more):
    o = _options(model, 0.0, strategy, **more)
    b = book.create(tmp_path / "b.kcb", universe.iloc[:CUT], o)
    _feed(b, universe.iloc[CUT:], seed=1)
    table, returns, so = _study(universe, o)
    baskets = b.baskets()
    # selections, period by period, in rank order
    assert [(int(p), int(r), a) for p, r, a in zip(baskets["period"], baskets["rank"], baskets["assets"])] == [
        (int(p), int(r), ",".join(a)) for p, r, a in zip(table["period"], table["selection_rank"], table["assets"])
    ]
    assert len(table) >= (5 if more.get("dependent") not in (None, "all") else 10)  # one ticker's baskets: fewer
    hist = b.history().set_index("date")
    # the study's days are the book's (the study drops a period of one row at the file's end)
    assert hist.index[: len(returns)].equals(returns.index)
    h = hist.loc[returns.index]
    np.testing.assert_allclose(h["study_return"], returns.to_numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(h["return"], returns.to_numpy(), rtol=0, atol=1e-12)
    assert np.abs(returns).max() > 1e-3  # the baskets traded
    # a basket the study could not trade (its first estimation failed) failed in the book too
    assert list(baskets["status"] == "failed") == list(table["status"] == "failed")
    for (_, row), bid in zip(table.iterrows(), baskets["id"]):
        if row["status"] == "failed":
            assert (hist[f"units_{bid}"].dropna() == 0).all()
            continue
        want = _study_units(universe, o, so, row)
        got = hist.loc[want.index, f"units_{bid}"]
        np.testing.assert_array_equal(got.to_numpy(), want.to_numpy())


def test_a_dependent_ticker_selects_only_its_baskets():
    """--dependent as in the screen: a ticker keeps only the baskets holding it, first; a period in
    which it is not eligible selects nothing."""
    assert st.formation_baskets(["EWA", "EWC", "IGE"], 2, "IGE") == [(2, 0), (2, 1)]
    assert st.formation_baskets(["EWA", "EWC", "IGE"], 2, "all") == [(0, 1), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1)]
    assert st.formation_baskets(["EWA", "EWC"], 2, "SPY") == []
    with pytest.raises(KalcointError, match="dependent"):
        st.StudyOptions(dependent=" ")


def test_a_book_with_a_dependent_ticker_holds_only_its_baskets(tmp_path, universe):
    o = _options("chan", 0.0, dependent="EWC")
    table, _, _ = _study(universe, o)
    assert len(table) > 0 and all(tuple(a)[0] == "EWC" for a in table["assets"])


def test_costs_are_the_netted_trades(tmp_path, universe):
    o = _options("chan", 10.0)
    b = book.create(tmp_path / "b.kcb", universe.iloc[:CUT], o)
    _feed(b, universe.iloc[CUT:], seed=2)
    _, returns, _ = _study(universe, o)
    hist = b.history().set_index("date")
    np.testing.assert_allclose(hist.loc[returns.index, "study_return"], returns.to_numpy(), rtol=0, atol=1e-12)
    # a plain loop over the shares held and the prices gives the book's own return
    prices = universe.loc[hist.index, TICKERS].to_numpy()
    before = universe.loc[: hist.index[0], TICKERS].to_numpy()[-2]
    shares = hist[[f"shares_{t}" for t in TICKERS]].to_numpy()
    capital, held, p_prev = o.capital, np.zeros(len(TICKERS)), before
    for t in range(len(hist)):
        p = prices[t]
        pnl = float(np.sum(held * (p - p_prev)))
        cost = float(np.sum(np.abs(shares[t] - held) * p)) * o.cost_bps / 1e4
        ret = (pnl - cost) / capital
        assert hist["return"].iloc[t] == pytest.approx(ret, abs=1e-12)
        capital, held, p_prev = capital + pnl - cost, shares[t], p
    assert hist["capital"].iloc[-1] == pytest.approx(capital, rel=1e-12)
    # netting: the baskets' own trades (at the book's sizes) cost more than the netted ones by the saving
    assert (hist["traded_unnetted"] >= hist["traded"] - 1e-6).all()
    assert (hist["netting_saving"] > 1.0).sum() >= 3  # days two baskets sharing a ticker traded it
    np.testing.assert_allclose(
        hist["netting_saving"], (hist["traded_unnetted"] - hist["traded"]) * o.cost_bps / 1e4, rtol=0, atol=1e-9
    )
    # costs are charged: the book's and the study's returns differ
    assert (hist["cost"] > 0).any()
    assert not np.allclose(hist["return"], hist["study_return"], atol=1e-9)


def test_refusals_change_nothing(tmp_path, universe):
    o = _options("chan", 0.0)
    path = tmp_path / "b.kcb"
    b = book.create(path, universe.iloc[:CUT], o)
    b.update(universe.iloc[CUT : CUT + 5])
    held = [a for x in b.status()["baskets"] for a in x["assets"]]
    data = path.read_bytes()
    nxt = universe.iloc[CUT + 5 : CUT + 8]
    with pytest.raises(KalcointError, match="not after the book's last date"):
        b.update(universe.iloc[CUT + 2 : CUT + 8])
    with pytest.raises(KalcointError, match=f"missing ticker\\(s\\) {held[0]}"):
        b.update(nxt.drop(columns=[held[0]]))
    bad = nxt.copy()
    bad.iloc[1, TICKERS.index(held[1])] = np.nan
    with pytest.raises(KalcointError, match=f"price of {held[1]} on .* is missing"):
        b.update(bad)
    with pytest.raises(KalcointError, match="already exists"):
        book.create(path, universe.iloc[:CUT], o)
    with pytest.raises(KalcointError) as err:
        b.update(nxt.set_axis(["first", "second", "third"]))
    assert str(err.value) == "rows: the rows' index must hold dates (e.g. 2024-01-31)"
    word = nxt.astype(object)
    word.iloc[0, TICKERS.index(held[0])] = "n/a"
    with pytest.raises(KalcointError) as err:
        b.update(word)
    assert str(err.value) == "rows: non-numeric price in the rows; prices must be plain numbers"
    assert path.read_bytes() == data
    # a ticker the book does not hold may be missing
    free = [t for t in TICKERS if t not in held]
    r = b.update(nxt.drop(columns=free[:1]))
    assert r.rows == 3 and b.status()["rows"] == o.history_rows + 8


def _killed_update(path, rows: pd.DataFrame) -> int:
    pid = os.fork()
    if pid == 0:  # the child dies inside the transaction

        def die(_path):
            os.kill(os.getpid(), signal.SIGKILL)

        book._write_hook = die
        try:
            book.load(path).update(rows)
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    return status


@pytest.mark.slow
def test_sigkill_during_a_reselection(tmp_path, universe):
    o = _options("chan", 0.0)
    path = tmp_path / "b.kcb"
    b = book.create(path, universe.iloc[:CUT], o)
    b.update(universe.iloc[CUT : CUT + 15])
    before = path.read_bytes()
    crossing = universe.iloc[CUT + 15 : CUT + 30]  # holds the second period's first row
    status = _killed_update(path, crossing)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert (tmp_path / "b.kcb-journal").exists()  # killed inside the transaction, rows written
    b = book.load(path)  # the old state, byte for byte (the journal held the only changes)
    assert path.read_bytes() == before
    assert b.status()["rows"] == o.history_rows + 15 and b.head.period == 0 and len(b.history()) == 15
    r = b.update(crossing)
    assert r.selected == [1] and not (tmp_path / "b.kcb-journal").exists()
    _feed(b, universe.iloc[CUT + 30 :], seed=3)
    _, returns, _ = _study(universe, o)
    hist = b.history().set_index("date")
    np.testing.assert_allclose(hist.loc[returns.index, "return"], returns.to_numpy(), rtol=0, atol=1e-12)


def test_cli_routine(tmp_path, universe, run_cli):
    """create once, update daily (JSON of the last row equals the library's history), refusals exit 2."""
    import json

    universe.iloc[:CUT].to_csv(tmp_path / "u.csv")
    universe.iloc[CUT : CUT + 25].to_csv(tmp_path / "r1.csv")
    universe.iloc[CUT + 25 : CUT + 26].drop(columns=["EEM"]).to_csv(tmp_path / "r2.csv")
    path = tmp_path / "b.kcb"
    settings = ["--formation", "100", "--trading", "20", "--top", "2", "--window", "60", "--size", "2"]
    res = run_cli("book", "create", path, "--prices", tmp_path / "u.csv", *settings, "--cost-bps", "5")
    assert res.exit_code == 0, res.stderr
    assert "100 rows kept" in res.stdout
    res = run_cli("book", "update", path, "--prices", tmp_path / "r1.csv", "--lot", "10", "--json", "-")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    hist = book.load(path).history()
    assert out["next_selection"]["rows_left"] == 16  # rows 126..140: the next period opens on the 16th
    assert out["selected"] == [0, 1] and out["date"] == f"{hist['date'].iloc[-1]:%Y-%m-%d}"
    assert out["capital"] == hist["capital"].iloc[-1] and out["book_return"] == hist["return"].iloc[-1]
    targets = {t: hist[f"shares_{t}"].iloc[-1] for t in TICKERS if hist[f"shares_{t}"].iloc[-1] != 0}
    assert out["targets"] == targets
    for o in out["orders"]:
        assert o["order"] % 10 == 0 and o["order"] + o["residual"] == pytest.approx(o["shares"], abs=1e-9)
        t = o["ticker"]
        assert o["shares"] == pytest.approx(hist[f"shares_{t}"].iloc[-1] - hist[f"shares_{t}"].iloc[-2], abs=1e-9)
    data = path.read_bytes()
    held = [a for x in out["baskets"] for a in x["assets"]]
    if "EEM" in held:
        res = run_cli("book", "update", path, "--prices", tmp_path / "r2.csv")
        assert res.exit_code == 2 and "missing ticker(s) EEM" in res.stderr
    res = run_cli("book", "update", path, "--prices", tmp_path / "r1.csv")
    assert res.exit_code == 2 and "not after the book's last date" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    res = run_cli("book", "create", path, "--prices", tmp_path / "u.csv", *settings)
    assert res.exit_code == 2 and "already exists" in res.stderr
    res = run_cli("book", "create", tmp_path / "c.kcb", "--prices", tmp_path / "u.csv", "--model", "kalman")
    assert res.exit_code == 2 and "'kalman'" in res.stderr and not (tmp_path / "c.kcb").exists()
    assert path.read_bytes() == data
    res = run_cli("book", "status", path, "--json", tmp_path / "s.json")
    assert res.exit_code == 0 and json.loads((tmp_path / "s.json").read_text())["capital"] == out["capital"]
    res = run_cli("book", "baskets", path, "--json", "-")
    assert [b["period"] for b in json.loads(res.stdout)["baskets"]] == list(book.load(path).baskets()["period"])
    assert run_cli("book", "history", path, "--out", tmp_path / "h.csv").exit_code == 0
    assert len(pd.read_csv(tmp_path / "h.csv")) == 25


def test_a_changed_row_is_found(tmp_path, universe):
    import json
    import sqlite3

    path = tmp_path / "b.kcb"
    b = book.create(path, universe.iloc[:CUT], _options("chan", 0.0))
    b.update(universe.iloc[CUT : CUT + 3])
    con = sqlite3.connect(path)
    (text,) = con.execute("SELECT prices FROM rows WHERE i = 5").fetchone()
    changed = json.dumps([x * 1.01 if x is not None else None for x in json.loads(text)])
    con.execute("UPDATE rows SET prices = ? WHERE i = 5", (changed,))
    con.commit()
    con.close()
    with pytest.raises(KalcointError, match="damaged .*checksum"):
        book.load(path)


@pytest.mark.parametrize("name", ["kalcoint.book", "kalcoint.report.book"])
def test_examples_in_docstrings_hold(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_cli_exit_3_when_the_json_is_not_written(tmp_path, universe, run_cli, monkeypatch):
    """The rows committed, --json failed: exit 3, one line saying not to re-run; status gives the state."""
    import kalcoint.cli.book as cli_book

    universe.iloc[:CUT].to_csv(tmp_path / "u.csv")
    universe.iloc[CUT : CUT + 3].to_csv(tmp_path / "r.csv")
    path = tmp_path / "b.kcb"
    settings = ["--formation", "100", "--trading", "20", "--top", "2", "--window", "60"]
    assert run_cli("book", "create", path, "--prices", tmp_path / "u.csv", *settings).exit_code == 0

    def fail(target, payload):
        raise OSError("No space left on device")

    monkeypatch.setattr(cli_book, "_emit_json", fail)
    res = run_cli("book", "update", path, "--prices", tmp_path / "r.csv", "--json", tmp_path / "out.json")
    assert res.exit_code == 3
    assert "the rows were applied" in res.stderr and "do not re-run the update" in res.stderr
    assert book.load(path).status()["rows"] == 103


@pytest.mark.slow
def test_two_updates_at_once(tmp_path, universe):
    """The second update waits lock_timeout, then is refused; once the first has committed the same
    rows are refused as already applied, not applied twice."""
    import time

    path = tmp_path / "b.kcb"
    book.create(path, universe.iloc[:CUT], _options("chan", 0.0))
    rows = universe.iloc[CUT : CUT + 5]
    marker = tmp_path / "in-transaction"
    pid = os.fork()
    if pid == 0:  # the first update holds the write lock for a while

        def hold(_path):
            marker.touch()
            time.sleep(1.5)

        book._write_hook = hold
        try:
            book.load(path).update(rows)
        finally:
            os._exit(0)
    while not marker.exists():
        time.sleep(0.01)
    with pytest.raises(KalcointError, match="being updated by another process"):
        book.load(path, lock_timeout=0.1).update(rows)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    b = book.load(path)
    assert b.status()["rows"] == 105
    with pytest.raises(KalcointError, match="not after the book's last date"):
        b.update(rows)

"""Saved models and daily updates: exactness, refusals, crash safety, concurrency, CLI.

The model under test is the seed method's first pass tuned on the first 500 rows of Chan's
EWA/EWC/IGE closes; the rows after them are fed as "new days". The oracle for the states is the
plain NumPy filter of tests/kc_reference.py run over all rows at once.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kc_reference import ref_filter

from kalcoint import datasets
from kalcoint import live
from kalcoint.data import _EXACT_FLOATS
from kalcoint.errors import KalcointError
from kalcoint.filtering import kalman_filter
from kalcoint.strategy import bands

N0 = 500  # rows of the tuning sample


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    from kalcoint.data import load_prices

    return load_prices(datasets.path("chan_etf"), ["EWA", "EWC", "IGE"])


@pytest.fixture(scope="module")
def tuned(prices):
    from kalcoint.tuning import tune

    return tune(prices.iloc[:N0], iterations=1)


@pytest.fixture(scope="module")
def base_file(tmp_path_factory, tuned, prices) -> Path:
    path = tmp_path_factory.mktemp("base") / "model.db"
    live.save_model(path, tuned, prices.iloc[:N0])
    return path


@pytest.fixture
def model_file(base_file, tmp_path) -> Path:
    """A fresh copy of the saved model for one test."""
    path = tmp_path / "model.db"
    shutil.copyfile(base_file, path)
    return path


def digest(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def reference(prices: pd.DataFrame, model, n: int):
    """Plain NumPy filter (docs/method.md §3) over the first n rows from the model's prior."""
    p = prices.to_numpy()[:n]
    X = p.copy()
    X[:, 0] = 1.0
    return ref_filter(
        p[:, 0],
        X,
        np.diag(model.transition),
        np.diag(model.state_var),
        model.obs_var,
        model.initial_state,
        np.diag(model.initial_cov),
    )


def integrity(path: Path) -> str:
    con = sqlite3.connect(path)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


# ---------------------------------------------------------------- exactness


def test_saved_file_holds_the_tuned_model_and_its_sample(base_file, tuned, prices):
    m = live.load_model(base_file)
    assert m.assets == ["EWA", "EWC", "IGE"] and m.method == "seed" and m.steps == N0
    assert m.last_date == prices.index[N0 - 1]
    assert m.model.to_dict() == tuned.model.to_dict()  # exact float equality
    np.testing.assert_array_equal(m.weights, tuned.johansen.weights)
    assert m.strategy == {"strategy": "bands", "entry": 1.0, "exit": 1.0}
    assert m.tuning["method"] == "seed" and m.tuning["nobs"] == N0
    # the stored posterior is exactly the tuned filter's last one (JSON repr floats round-trip)
    np.testing.assert_array_equal(m.state, tuned.result.filtered_state[-1])
    np.testing.assert_array_equal(m.cov, tuned.result.filtered_cov[-1])
    h = m.history()
    assert (h["kind"] == "tune").all() and len(h) == N0 and list(h["step"]) == list(range(1, N0 + 1))
    np.testing.assert_array_equal(h[["EWA", "EWC", "IGE"]].to_numpy(), prices.iloc[:N0].to_numpy())
    np.testing.assert_array_equal(h[["beta_const", "beta_EWC", "beta_IGE"]].to_numpy(), tuned.result.filtered_state)
    np.testing.assert_array_equal(h["innovation"], tuned.result.innovation)
    # units over the sample: Chan's bands rule from flat, as kalcoint.strategy.bands
    np.testing.assert_array_equal(h["units"], bands(tuned.result.innovation, np.sqrt(tuned.result.innovation_var)))
    assert integrity(base_file) == "ok"


@pytest.mark.slow
def test_rows_one_at_a_time_equal_one_batch_filter(model_file, prices):
    m = live.load_model(model_file)
    n1 = N0 + 60
    for t in range(N0, n1):
        res = m.update(prices.iloc[t : t + 1])
        assert res.applied == 1 and res.dates == [prices.index[t].strftime("%Y-%m-%d")]
    batch = kalman_filter(prices.iloc[:n1], m.model)
    ref = reference(prices, m.model, n1)
    h = live.load_model(model_file).history()
    states = h[["beta_const", "beta_EWC", "beta_IGE"]].to_numpy()
    assert len(h) == n1 and list(h["kind"]).count("update") == 60
    np.testing.assert_allclose(states, batch.filtered_state, rtol=0, atol=1e-9)
    np.testing.assert_allclose(h["innovation"], batch.innovation, rtol=0, atol=1e-9)
    np.testing.assert_allclose(h["innovation_var"], batch.innovation_var, rtol=1e-12)
    np.testing.assert_allclose(states, ref.b_filt, rtol=0, atol=1e-9)  # the plain oracle
    np.testing.assert_allclose(m.cov, batch.filtered_cov[-1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(h["zscore"], batch.innovation / np.sqrt(batch.innovation_var), atol=1e-12)
    np.testing.assert_allclose(h["spread"], batch.spread, atol=1e-9)
    # the strategy's units carried across updates equal the rule run over the whole series
    np.testing.assert_array_equal(h["units"], bands(batch.innovation, np.sqrt(batch.innovation_var)))
    # then a batch of 25 rows in one update: same as the filter over all rows
    res = m.update(prices.iloc[n1 : n1 + 25])
    assert res.applied == 25 and m.steps == n1 + 25
    full = kalman_filter(prices.iloc[: n1 + 25], m.model)
    np.testing.assert_allclose(m.state, full.filtered_state[-1], rtol=0, atol=1e-9)
    np.testing.assert_allclose(res.steps["innovation"], full.innovation[n1:], rtol=0, atol=1e-9)


def test_update_result_status_and_target_shares(model_file, prices):
    m = live.load_model(model_file)
    # a Series named by its date is one row
    row = prices.iloc[N0]
    res = m.update(row.rename(prices.index[N0]), capital=10_000.0)
    batch = kalman_filter(prices.iloc[: N0 + 1], m.model)
    b, e, q = batch.filtered_state[-1], batch.innovation[-1], batch.innovation_var[-1]
    assert res.last["hedge_ratios"] == pytest.approx({"EWC": b[1], "IGE": b[2]}, abs=1e-12)
    assert res.last["zscore"] == pytest.approx(e / math.sqrt(q), abs=1e-12)
    assert res.last["innovation_std"] == pytest.approx(math.sqrt(q), rel=1e-14)
    per_unit = np.array(list(res.shares_per_unit.values()))
    # one unit: 1 share of EWA, -b_j of the others, scaled to $10,000 gross
    assert float(np.sum(np.abs(per_unit) * row.to_numpy())) == pytest.approx(10_000.0, rel=1e-12)
    np.testing.assert_allclose(per_unit / per_unit[0], [1.0, -b[1], -b[2]], rtol=1e-12)
    np.testing.assert_allclose(list(res.target_shares.values()), res.last["units"] * per_unit, rtol=0, atol=0)
    status = json.loads(json.dumps(m.status()))
    assert {"last_date", "assets", "state", "spread", "innovation", "innovation_var", "units"} <= set(status)
    assert status["last_date"] == prices.index[N0].strftime("%Y-%m-%d")
    assert status["assets"] == ["EWA", "EWC", "IGE"]
    np.testing.assert_allclose(status["state"], b, rtol=0, atol=1e-12)
    assert status["innovation"] == pytest.approx(e, abs=1e-12)
    assert status["innovation_var"] == pytest.approx(q, rel=1e-14)
    assert status["spread"] == pytest.approx(batch.spread[-1], abs=1e-12)
    assert status["units"] == res.last["units"]


@pytest.mark.slow
def test_units_state_is_carried_between_updates(tmp_path, prices):
    """Chan's filter on EWC/EWA with bands entry 1, exit 0 (leave at the mean) over 400 rows then 100
    updates: units equal the rule over all 500 rows (positions opened before an update are held
    across it), and both sides are traded."""
    path = tmp_path / "chan.db"
    m = live.save_chan_model(path, prices[["EWC", "EWA"]].iloc[:400], strategy={"entry": 1.0, "exit": 0.0})
    assert m.strategy == {"strategy": "bands", "entry": 1.0, "exit": 0.0}
    for t in range(400, 500):
        m.update(prices[["EWC", "EWA"]].iloc[t : t + 1])
    batch = kalman_filter(prices[["EWC", "EWA"]].iloc[:500], m.model)
    units = m.history()["units"].to_numpy()
    expected = bands(batch.innovation, np.sqrt(batch.innovation_var), entry=1.0, exit=0.0)
    np.testing.assert_array_equal(units, expected)
    assert {-1, 0, 1} <= set(units[400:].tolist())
    # a position held over an update boundary where the day itself gives no entry signal
    z = batch.innovation / np.sqrt(batch.innovation_var)
    carried = [t for t in range(401, 500) if units[t] != 0 and abs(z[t]) <= 1.0]
    assert len(carried) >= 5, carried


# ---------------------------------------------------------------- refusals


def bad_batches(prices: pd.DataFrame) -> list[tuple[str, pd.DataFrame, str]]:
    good = prices.iloc[N0 : N0 + 3]
    cases = []
    cases.append(("same date", prices.iloc[N0 - 1 : N0 + 1], "is not after the model's last date"))
    cases.append(("older date", prices.iloc[N0 - 10 : N0 - 9], "is not after the model's last date"))
    cases.append(("missing asset", good.drop(columns="IGE"), "missing asset(s) IGE"))
    nan = good.copy()
    nan.iloc[2, 1] = np.nan
    cases.append(("NaN in the last row", nan, "price of EWC on"))
    neg = good.copy()
    neg.iloc[1, 2] = -1.0
    cases.append(("negative price", neg, "<= 0"))
    zero = good.copy()
    zero.iloc[0, 0] = 0.0
    cases.append(("zero price", zero, "<= 0"))
    jump = good.copy()
    jump.iloc[2, 0] *= 1.4  # log(1.4) = 0.336 > 0.25
    cases.append(("jump", jump, "max jump 0.25"))
    unsorted = good.iloc[[0, 2, 1]]
    cases.append(("unsorted", unsorted, "not in increasing order"))
    dup = good.iloc[[0, 1, 1]]
    cases.append(("duplicate", dup, "duplicate date"))
    return cases


def test_refused_batches_leave_the_file_byte_for_byte_unchanged(model_file, prices):
    m = live.load_model(model_file)
    before = digest(model_file)
    for name, rows, reason in bad_batches(prices):
        with pytest.raises(KalcointError) as err:
            m.update(rows)
        assert reason in str(err.value), name
        assert "\n" not in str(err.value)
        assert digest(model_file) == before, name  # bytes and mtime
    assert not Path(f"{model_file}-journal").exists()
    again = live.load_model(model_file)
    assert again.steps == N0 and again.last_date == prices.index[N0 - 1]
    # the good rows of the refused batches still apply afterwards
    assert m.update(prices.iloc[N0 : N0 + 3]).applied == 3


def test_max_jump_threshold_is_an_option(model_file, prices):
    m = live.load_model(model_file)
    rows = prices.iloc[N0 : N0 + 1].copy()
    prev = prices.iloc[N0 - 1]
    rows.iloc[0, 1] = prev.iloc[1] * math.exp(0.1)  # a 10% log move of EWC
    with pytest.raises(KalcointError, match=r"\|log return\| 0.1 > max jump 0.05"):
        m.update(rows, max_jump=0.05)
    assert m.update(rows, max_jump=0.11).applied == 1
    big = prices.iloc[N0 + 1 : N0 + 2] * 2.0
    assert m.update(big, max_jump=math.inf).applied == 1


def test_since_last_skips_applied_rows_and_checks_them(model_file, prices):
    m = live.load_model(model_file)
    m.update(prices.iloc[N0 : N0 + 2])
    res = m.update(prices.iloc[N0 - 5 : N0 + 4], since_last=True)
    assert (res.skipped, res.applied) == (7, 2) and m.steps == N0 + 4
    np.testing.assert_allclose(m.state, kalman_filter(prices.iloc[: N0 + 4], m.model).filtered_state[-1], atol=1e-9)
    assert m.update(prices.iloc[N0 : N0 + 4], since_last=True).applied == 0  # nothing new: a no-op
    changed = prices.iloc[N0 + 2 : N0 + 5].copy()
    changed.iloc[0, 0] += 0.01  # a revised price for a date already applied
    before = digest(model_file)
    with pytest.raises(KalcointError, match="differs from the prices applied"):
        m.update(changed, since_last=True)
    assert digest(model_file) == before


def test_a_batch_without_dates_or_with_a_word_for_a_price_is_refused(model_file, prices):
    m = live.load_model(model_file)
    before = digest(model_file)
    good = prices.iloc[N0 : N0 + 2]
    word = good.astype(object)
    word.iloc[1, 0] = "n/a"
    for rows, message in [
        (good.set_axis(["first", "second"]), "new rows: the rows' index must hold dates (e.g. 2024-01-31)"),
        (word, "new rows: non-numeric price in the rows; prices must be plain numbers"),
    ]:
        with pytest.raises(KalcointError) as err:
            m.update(rows)
        assert str(err.value) == message
    assert digest(model_file) == before


def test_load_model_refuses_other_files(tmp_path, model_file):
    missing = tmp_path / "nope.db"
    with pytest.raises(KalcointError, match="does not exist"):
        live.load_model(missing)
    assert not missing.exists()  # opening never creates a file
    text = tmp_path / "prices.csv"
    text.write_text("date,A,B\n2020-01-01,1,2\n" * 50)
    with pytest.raises(KalcointError, match="not a usable kalcoint model file"):
        live.load_model(text)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(KalcointError, match="no kalcoint application id"):
        live.load_model(other)
    con = sqlite3.connect(model_file)
    con.execute("PRAGMA user_version = 99")
    con.commit()
    con.close()
    with pytest.raises(KalcointError, match="schema version 99"):
        live.load_model(model_file)
    con = sqlite3.connect(model_file)
    con.execute("PRAGMA user_version = 1")
    con.execute("UPDATE head SET step = step - 1")  # head no longer the last step
    con.commit()
    con.close()
    with pytest.raises(KalcointError, match="corrupt: head"):
        live.load_model(model_file)


# ---------------------------------------------------------------- crash safety


class Fault(Exception):
    pass


@pytest.mark.parametrize("at", range(len(live.UPDATE_STATEMENTS)))
def test_a_fault_at_each_statement_leaves_old_or_new_state(model_file, prices, monkeypatch, at):
    m = live.load_model(model_file)
    old = m.state

    def hook(i, label):
        if i == at:
            raise Fault(label)

    monkeypatch.setattr(live, "_statement_hook", hook)
    with pytest.raises(Fault):
        m.update(prices.iloc[N0 : N0 + 3])
    monkeypatch.setattr(live, "_statement_hook", None)
    after = live.load_model(model_file)
    assert integrity(model_file) == "ok"
    new = kalman_filter(prices.iloc[: N0 + 3], m.model).filtered_state[-1]
    if live.UPDATE_STATEMENTS[at] == "committed":
        assert after.steps == N0 + 3
        np.testing.assert_allclose(after.state, new, atol=1e-9)
    else:
        assert after.steps == N0 and len(after.history()) == N0
        np.testing.assert_array_equal(after.state, old)
        # the file is usable: the same rows apply cleanly afterwards
        after.update(prices.iloc[N0 : N0 + 3])
        np.testing.assert_allclose(after.state, new, atol=1e-9)


DRIVER = r"""
import json, os, random, sys, time
import pandas as pd
from kalcoint import live
from kalcoint.data import _EXACT_FLOATS
from kalcoint.errors import KalcointError


def say(tag, msg):
    os.write(1, f"{tag} {msg}\n".encode())  # one write per line: lines of the workers do not mix


def work(job):
    tag, mode, arg = job["tag"], job["mode"], job["arg"]
    rows = pd.read_csv(job["rows"], index_col=0, parse_dates=True, **_EXACT_FLOATS)
    if mode == "stop_at":  # pause at statement i of the update; the test kills the process there
        def hook(i, label):
            if i == int(arg):
                say(tag, f"AT {label}")
                time.sleep(120)
        live._statement_hook = hook
        live.load_model(job["model"]).update(rows)
    elif mode == "loop":  # rows one at a time, short random pauses between the statements
        random.seed(int(arg))
        live._statement_hook = lambda i, label: time.sleep(random.uniform(0.0, 0.003))
        m = live.load_model(job["model"])
        for t in range(len(rows)):
            m.update(rows.iloc[t : t + 1])
            say(tag, f"COMMITTED {t + 1}")
    elif mode == "hold":  # hold the write lock (inside the transaction) until the flag file exists
        def hook(i, label):
            if i == 2:
                say(tag, "LOCKED")
                while not os.path.exists(arg):
                    time.sleep(0.01)
        live._statement_hook = hook
        live.load_model(job["model"]).update(rows)
    elif mode == "wait":  # once the go file exists, an update with a lock timeout
        while not os.path.exists(job["go"]):
            time.sleep(0.01)
        live._statement_hook = lambda i, label: say(tag, "BEGIN") if i == 0 else None
        try:
            live.load_model(job["model"]).update(rows, lock_timeout=float(arg))
        except KalcointError as exc:
            say(tag, f"REFUSED {exc}")
            return 2
    say(tag, "DONE")
    return 0


pids = {}
for job in json.loads(sys.argv[1]):  # imports done once; one forked worker process per job
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = work(job)
        finally:
            os._exit(code)
    pids[pid] = job["tag"]
    say(job["tag"], f"PID {pid}")
while pids:
    pid, status = os.wait()
    say(pids.pop(pid), f"EXIT {os.waitstatus_to_exitcode(status)}")
"""


class Workers:
    """Worker processes forked by one driver (so the imports are paid once); their output by tag."""

    def __init__(self, tmp_path: Path, jobs: list[dict]) -> None:
        for job in jobs:
            csv = tmp_path / f"rows_{job['tag']}.csv"
            job.pop("frame").to_csv(csv)
            job["rows"], job["model"] = str(csv), str(job["model"])
        driver = tmp_path / "driver.py"
        driver.write_text(DRIVER)
        self.proc = subprocess.Popen(
            [sys.executable, str(driver), json.dumps(jobs)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: dict[str, list[str]] = {job["tag"]: [] for job in jobs}
        self.pid = {tag: int(self.expect(tag, "PID").split()[1]) for tag in self.lines}

    def expect(self, tag: str, prefix: str, timeout: float = 120.0) -> str:
        """The first line of worker ``tag`` starting with ``prefix`` (waiting for it)."""
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            for line in self.lines[tag][seen:]:
                if line.startswith(prefix):
                    return line
            seen = len(self.lines[tag])
            line = self.proc.stdout.readline()
            if line == "":
                raise AssertionError(f"driver ended before {tag} {prefix!r}: {self.proc.stderr.read()}")
            name, _, rest = line.rstrip("\n").partition(" ")
            self.lines.setdefault(name, []).append(rest)
        raise AssertionError(f"no {prefix!r} from worker {tag} within {timeout} s")

    def kill(self, tag: str) -> None:
        os.kill(self.pid[tag], signal.SIGKILL)
        assert self.expect(tag, "EXIT") == "EXIT -9"

    def exit_code(self, tag: str) -> int:
        return int(self.expect(tag, "EXIT").split()[1])

    def close(self) -> None:
        for tag, pid in self.pid.items():
            if not any(line.startswith("EXIT") for line in self.lines[tag]):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.proc.wait(60)


@pytest.fixture
def workers(tmp_path):
    started: list[Workers] = []

    def start(jobs: list[dict]) -> Workers:
        started.append(Workers(tmp_path, jobs))
        return started[-1]

    yield start
    for w in started:
        w.close()


def paused_copies(base: Path, rows: pd.DataFrame, tmp_path: Path, start, suffix: str = ".kcm"):
    """A copy of ``base`` per statement of an update, and a worker (of ``start``, the ``workers``
    fixture) paused at that statement of an update of ``rows`` on it."""
    paths = {label: tmp_path / f"kill_{label}{suffix}" for label in live.UPDATE_STATEMENTS}
    for path in paths.values():
        shutil.copyfile(base, path)
    w = start(
        [
            {"tag": label, "mode": "stop_at", "model": paths[label], "frame": rows, "arg": str(i)}
            for i, label in enumerate(live.UPDATE_STATEMENTS)
        ]
    )
    return paths, w


def killed_copies(base: Path, rows: pd.DataFrame, tmp_path: Path, start) -> dict[str, Path]:
    """The copies of :func:`paused_copies`, each killed (SIGKILL) at the statement it paused at."""
    paths, w = paused_copies(base, rows, tmp_path, start)
    for label in paths:
        assert w.expect(label, "AT", timeout=300) == f"AT {label}"
        w.kill(label)
    return paths


@pytest.mark.slow
def test_sigkill_at_each_statement_leaves_old_or_new_state(base_file, tmp_path, prices, workers):
    """A real process killed (SIGKILL) while paused at each statement of an update of 3 rows."""
    rows = prices.iloc[N0 : N0 + 3]
    paths, w = paused_copies(base_file, rows, tmp_path, workers, ".db")
    journals = {}
    for label, path in paths.items():
        assert w.expect(label, "AT") == f"AT {label}"
        w.kill(label)
        journals[label] = Path(f"{path}-journal").exists()
    # killed after the rows were written but before COMMIT: SQLite had opened its rollback journal
    assert journals["update_head"] and journals["commit"] and not journals["begin"]
    old = live.load_model(base_file).state
    new = kalman_filter(prices.iloc[: N0 + 3], live.load_model(base_file).model).filtered_state[-1]
    for label, path in paths.items():
        m = live.load_model(path)
        assert integrity(path) == "ok", label
        if label == "committed":
            assert m.steps == N0 + 3 and len(m.history()) == N0 + 3
            np.testing.assert_allclose(m.state, new, atol=1e-9)
        else:
            assert m.steps == N0 and len(m.history()) == N0, label
            np.testing.assert_array_equal(m.state, old)
        m.update(prices.iloc[N0 + 3 : N0 + 4], since_last=True)  # usable afterwards
        assert m.steps == (N0 + 4 if label == "committed" else N0 + 1)


@pytest.mark.slow
def test_sigkill_at_random_moments_of_update_loops(base_file, tmp_path, prices, workers):
    """Kill processes that feed rows one at a time, at random moments; each file then holds exactly
    the first n rows (n = the steps recorded), with the batch filter's states over them."""
    rng = np.random.default_rng(7)
    paths = {f"loop{s}": tmp_path / f"loop{s}.db" for s in range(4)}
    for path in paths.values():
        shutil.copyfile(base_file, path)
    w = workers(
        [
            {"tag": tag, "mode": "loop", "model": path, "frame": prices.iloc[N0 : N0 + 300], "arg": str(s)}
            for s, (tag, path) in enumerate(paths.items())
        ]
    )
    for tag in paths:
        w.expect(tag, f"COMMITTED {int(rng.integers(3, 12))}")
        time.sleep(float(rng.uniform(0.0, 0.01)))
        w.kill(tag)
    for tag, path in paths.items():
        m = live.load_model(path)
        assert integrity(path) == "ok"
        h = m.history()
        n = m.steps
        assert N0 + 3 <= n < N0 + 300 and len(h) == n and list(h["step"]) == list(range(1, n + 1)), tag
        batch = kalman_filter(prices.iloc[:n], m.model)
        np.testing.assert_allclose(m.state, batch.filtered_state[-1], atol=1e-9)
        np.testing.assert_allclose(h["innovation"], batch.innovation, atol=1e-9)
        m.update(prices.iloc[n : n + 1])  # and the model continues from there
        np.testing.assert_allclose(m.state, kalman_filter(prices.iloc[: n + 1], m.model).filtered_state[-1], atol=1e-9)


@pytest.mark.slow
def test_two_updates_at_once_wait_or_fail_clearly(model_file, tmp_path, prices, workers):
    """A holds the write lock; B (timeout 0.3 s) fails clearly; C (A's row again) waits then is
    refused after re-validating under the lock; D (the next row) waits then applies."""
    flag, go = tmp_path / "release", tmp_path / "go"
    row_a, row_d = prices.iloc[N0 : N0 + 1], prices.iloc[N0 + 1 : N0 + 2]
    w = workers(
        [
            {"tag": "A", "mode": "hold", "model": model_file, "frame": row_a, "arg": str(flag)},
            {"tag": "B", "mode": "wait", "model": model_file, "frame": row_a, "arg": "0.3", "go": str(go)},
            {"tag": "C", "mode": "wait", "model": model_file, "frame": row_a, "arg": "60", "go": str(go)},
            {"tag": "D", "mode": "wait", "model": model_file, "frame": row_d, "arg": "60", "go": str(go)},
        ]
    )
    w.expect("A", "LOCKED")  # A is inside its write transaction
    go.touch()
    for tag in "BCD":
        w.expect(tag, "BEGIN")
    assert "is being updated by another process" in w.expect("B", "REFUSED")
    assert w.exit_code("B") == 2
    assert not any(line.startswith(("DONE", "REFUSED")) for tag in "CD" for line in w.lines[tag])  # waiting
    flag.touch()
    assert w.exit_code("A") == 0 and w.exit_code("D") == 0
    assert "is not after the model's last date" in w.expect("C", "REFUSED")  # not applied twice
    assert w.exit_code("C") == 2
    m = live.load_model(model_file)
    assert m.steps == N0 + 2 and integrity(model_file) == "ok"
    assert list(m.history()["date"].iloc[-2:]) == [d.strftime("%Y-%m-%d") for d in prices.index[N0 : N0 + 2]]
    np.testing.assert_allclose(m.state, kalman_filter(prices.iloc[: N0 + 2], m.model).filtered_state[-1], atol=1e-9)


# ---------------------------------------------------------------- command line


def test_cli_update_status_history(run_cli, model_file, tmp_path, prices):
    new = tmp_path / "new.csv"
    prices.iloc[N0 : N0 + 1].to_csv(new)  # a file with one row
    out = tmp_path / "u.json"
    res = run_cli("update", model_file, "--prices", new, "--capital", "25000", "--json", out)
    assert res.exit_code == 0, res.stderr
    assert "applied 1 row(s)" in res.stdout and "z-score" in res.stdout and "target position" in res.stdout
    d = json.loads(out.read_text())
    batch = kalman_filter(prices.iloc[: N0 + 1], live.load_model(model_file).model)
    np.testing.assert_allclose(d["state"], batch.filtered_state[-1], atol=1e-12)
    gross = sum(abs(d["shares_per_unit"][a]) * prices[a].iloc[N0] for a in prices.columns)
    assert gross == pytest.approx(25_000.0, rel=1e-12)

    more = tmp_path / "more.csv"
    prices.iloc[N0 + 1 : N0 + 4].to_csv(more)
    assert run_cli("update", model_file, "--prices", more).exit_code == 0

    st = tmp_path / "status.json"
    assert run_cli("status", model_file, "--json", st).exit_code == 0
    s = json.loads(st.read_text())
    batch = kalman_filter(prices.iloc[: N0 + 4], live.load_model(model_file).model)
    assert s["last_date"] == prices.index[N0 + 3].strftime("%Y-%m-%d") and s["assets"] == ["EWA", "EWC", "IGE"]
    np.testing.assert_allclose(s["state"], batch.filtered_state[-1], atol=1e-12)
    assert s["innovation"] == pytest.approx(batch.innovation[-1], abs=1e-12)
    assert s["innovation_var"] == pytest.approx(batch.innovation_var[-1], rel=1e-14)
    assert s["spread"] == pytest.approx(batch.spread[-1], abs=1e-12)
    assert s["units"] in (-1, 0, 1)

    hist = tmp_path / "history.csv"
    assert run_cli("history", model_file, "--out", hist).exit_code == 0
    h = pd.read_csv(hist, **_EXACT_FLOATS)
    assert len(h) == N0 + 4 and list(h["kind"].iloc[-4:]) == ["update"] * 4
    np.testing.assert_array_equal(h[["EWA", "EWC", "IGE"]].to_numpy(), prices.iloc[: N0 + 4].to_numpy())
    np.testing.assert_array_equal(h[["beta_const", "beta_EWC", "beta_IGE"]].to_numpy(), batch.filtered_state)


def test_cli_refusals_exit_2_with_one_line_and_leave_the_file(run_cli, model_file, tmp_path, prices):
    before = digest(model_file)
    for name, rows, reason in bad_batches(prices):
        # the price reader refuses these itself, naming the date or the ticker
        reason = {"unsorted": "date", "duplicate": "date", "missing asset": "unknown ticker 'IGE'"}.get(name, reason)
        path = tmp_path / f"{name.replace(' ', '_')}.csv"
        rows.to_csv(path)
        res = run_cli("update", model_file, "--prices", path)
        assert res.exit_code == 2, name
        assert res.stderr.startswith("kalcoint: error:") and res.stderr.strip().count("\n") == 0, res.stderr
        assert reason in res.stderr.replace("\n", " "), (name, res.stderr)
        assert digest(model_file) == before, name
    jump = tmp_path / "jump.csv"
    rows = prices.iloc[N0 : N0 + 1] * 1.3
    rows.to_csv(jump)
    assert run_cli("update", model_file, "--prices", jump).exit_code == 2
    assert run_cli("update", model_file, "--prices", jump, "--max-jump", "0.3").exit_code == 0
    assert live.load_model(model_file).steps == N0 + 1


def test_cli_tune_save_then_update_and_filter_model(run_cli, tmp_path, prices):
    """`tune --save` writes a model whose tune rows equal `filter --model` over the same file; the model
    then updates from that posterior."""
    train, model = tmp_path / "train.csv", tmp_path / "m.db"
    prices.iloc[:N0].to_csv(train)
    res = run_cli("tune", train, "--iterations", "1", "--save", model, "--entry", "1.5", "--exit", "0.5")
    assert res.exit_code == 0, res.stderr
    m = live.load_model(model)
    assert m.method == "seed" and m.steps == N0 and m.strategy == {"strategy": "bands", "entry": 1.5, "exit": 0.5}
    out = tmp_path / "f.csv"
    assert run_cli("filter", train, "--model", model, "--out", out).exit_code == 0
    f = pd.read_csv(out)
    h = m.history()
    np.testing.assert_allclose(
        f[["beta_const", "beta_EWC", "beta_IGE"]].to_numpy(),
        h[["beta_const", "beta_EWC", "beta_IGE"]].to_numpy(),
        rtol=1e-9,
        atol=1e-9,
    )
    np.testing.assert_array_equal(h["units"], bands(h["innovation"], np.sqrt(h["innovation_var"]), 1.5, 0.5))
    new = tmp_path / "new.csv"
    prices.iloc[N0 : N0 + 2].to_csv(new)
    assert run_cli("update", model, "--prices", new).exit_code == 0
    np.testing.assert_allclose(
        live.load_model(model).state, kalman_filter(prices.iloc[: N0 + 2], m.model).filtered_state[-1], atol=1e-9
    )


def test_a_failed_save_leaves_no_file(tmp_path, tuned, prices, monkeypatch, base_file):
    target = tmp_path / "m.db"
    shutil.copyfile(base_file, target)
    before = digest(target)

    def broken(*args, **kwargs):
        raise Fault("disk full")

    monkeypatch.setattr(live, "_initial_plan", broken)
    with pytest.raises(Fault):
        live.save_model(target, tuned, prices.iloc[: N0 + 50])
    assert digest(target) == before and sorted(p.name for p in tmp_path.iterdir()) == ["m.db"]
    with pytest.raises(KalcointError, match="exit 2.0 is larger than entry 1.0"):
        live.save_model(tmp_path / "x.db", tuned, prices.iloc[:N0], strategy={"exit": 2.0})
    assert not (tmp_path / "x.db").exists()


# ---------------------------------------------------------------- weekly retuning


W = 250
RETUNE_ITERATIONS = 200


def week_end_row(prices: pd.DataFrame, row: int) -> int:
    """The first row at or after ``row`` whose next row is in another calendar week."""
    weeks = prices.index.to_period("W-SUN")
    return next(t for t in range(row, len(prices) - 1) if weeks[t] != weeks[t + 1])


@pytest.fixture(scope="module")
def retune_file(tmp_path_factory, prices) -> tuple[Path, int]:
    """A seed model saved with retune weekly, window 250, from rows ending on the last day of a week."""
    from kalcoint.tuning import tune

    end = week_end_row(prices, 600)
    train = prices.iloc[: end + 1]
    path = tmp_path_factory.mktemp("retune") / "weekly.kcm"
    live.save_model(
        path,
        tune(train.iloc[-W:], iterations=RETUNE_ITERATIONS),
        train,
        retune="weekly",
        window=W,
        iterations=RETUNE_ITERATIONS,
    )
    return path, end


@pytest.fixture(scope="module")
def retune_reference(prices, retune_file):
    """The walk-forward backtest the weekly model must equal (last 250 rows before its end + 40 rows)."""
    from kalcoint.backtest import backtest

    _, end = retune_file
    return backtest(
        prices.iloc[end + 1 - W : end + 41], "seed", retune="weekly", window=W, iterations=RETUNE_ITERATIONS
    )


@pytest.mark.slow
def test_sigkill_during_an_update_that_retunes(retune_file, retune_reference, tmp_path, prices, workers):
    """A real process killed (SIGKILL) at each statement of an update whose first row starts a new
    week (the re-estimation is in the batch): the file holds the old state or the new one, never
    a half-retuned one; feeding the remaining rows then ends equal to the walk-forward backtest."""
    base, end = retune_file
    rows = prices.iloc[end + 1 : end + 9]  # Monday ...: re-estimation before the first row, 8 rows
    paths = killed_copies(base, rows, tmp_path, workers)
    old = live.load_model(base)
    ref = retune_reference
    made = int((ref.versions["effective_date"] <= f"{rows.index[-1]:%Y-%m-%d}").sum())
    assert made >= 2  # the saved version and at least one re-estimation inside the batch
    for label, path in paths.items():
        m = live.load_model(path)
        assert integrity(path) == "ok", label
        versions = m.versions()
        if label == "committed":
            assert m.steps == old.steps + 8 and len(versions) == made and m.version == versions[-1].id, label
        else:
            assert m.steps == old.steps and len(versions) == 1 and m.version == 1, label
            np.testing.assert_array_equal(m.state, old.state)
            assert m.model.to_dict() == old.model.to_dict()
        m.update(prices.iloc[end + 1 : end + 41], since_last=True)
        h = m.history()
        h = h[h["kind"] == "update"]
        np.testing.assert_array_equal(h["units"], ref.units, err_msg=label)
        np.testing.assert_allclose(
            h[["beta_const", "beta_EWC", "beta_IGE"]].to_numpy(), ref.state, rtol=0, atol=1e-9, err_msg=label
        )
        np.testing.assert_array_equal(h["version"], ref.version, err_msg=label)


@pytest.mark.slow
@pytest.mark.parametrize(
    "method,strategy", [("static", "linear"), ("static", "bands"), ("mle", "linear"), ("chan", "linear")]
)
def test_sigkill_during_an_update_that_retunes_every_model_and_rule(tmp_path, prices, workers, method, strategy):
    """The same for the other models and rules: killed at each statement of an update whose first row
    starts a week, the file holds the old or the new state, and feeding the rest ends equal to the
    walk-forward backtest of that model and rule."""
    from kalcoint.backtest import backtest

    end = week_end_row(prices, 600)
    train, rows = prices.iloc[: end + 1], prices.iloc[end + 1 : end + 9]
    base = tmp_path / "base.kcm"
    rule = {"strategy": strategy}
    if method == "static":
        live.save_static_model(base, train, rule, retune="weekly", window=W)
    elif method == "chan":
        live.save_chan_model(base, train, strategy=rule, retune="weekly", window=W)
    else:
        from kalcoint.tuning import tune

        live.save_model(base, tune(train.iloc[-W:], method=method), train, strategy=rule, retune="weekly", window=W)
    paths = killed_copies(base, rows, tmp_path, workers)
    ref = backtest(
        pd.concat([train.iloc[-W:], prices.iloc[end + 1 : end + 41]]), method, strategy, retune="weekly", window=W
    )
    old = live.load_model(base)
    for label, path in paths.items():
        m = live.load_model(path)
        assert integrity(path) == "ok", label
        assert m.steps == old.steps + (8 if label == "committed" else 0), label
        m.update(prices.iloc[end + 1 : end + 41], since_last=True)
        h = m.history()
        h = h[h["kind"] == "update"]
        np.testing.assert_array_equal(h["units"], ref.units, err_msg=label)
        np.testing.assert_array_equal(h["version"], ref.version, err_msg=label)
        np.testing.assert_allclose(h["spread"], ref.spread, rtol=0, atol=1e-9, err_msg=label)
        assert [v.to_dict() for v in m.versions()] == ref.versions.to_dict("records"), label
    assert method == "chan" or len(ref.versions) > 2


def test_cli_weekly_model_status_versions_retune_history(run_cli, tmp_path, prices, retune_reference):
    """`tune --save --retune weekly --window 250` then `update`: status, versions, history and retune;
    the CLI-saved model trades the walk-forward backtest's units."""
    end = week_end_row(prices, 600)
    train, model = tmp_path / "train.csv", tmp_path / "w.kcm"
    prices.iloc[: end + 1].to_csv(train)
    res = run_cli(
        "tune", train, "--iterations", str(RETUNE_ITERATIONS), "--save", model, "--retune", "weekly", "--window", str(W)
    )
    assert res.exit_code == 0, res.stderr
    new = tmp_path / "new.csv"
    prices.iloc[end + 1 : end + 41].to_csv(new)
    res = run_cli("update", model, "--prices", new)
    assert res.exit_code == 0, res.stderr
    assert "retune          version 2 (seed, window" in res.stdout
    h = live.load_model(model).history()
    h = h[h["kind"] == "update"]
    np.testing.assert_array_equal(h["units"], retune_reference.units)
    np.testing.assert_array_equal(h["version"], retune_reference.version)
    st = tmp_path / "status.json"
    assert run_cli("status", model, "--json", st).exit_code == 0
    s = json.loads(st.read_text())
    versions = retune_reference.versions
    last_day = prices.index[end + 40]
    assert s["version"] == int(retune_reference.version[-1]) == len(versions)
    options = s["retune"].pop("options")
    assert s["retune"] == {
        "retune": "weekly",
        "window": W,
        "method": "seed",
        "iterations": RETUNE_ITERATIONS,
        "tol": None,
        "on_degenerate": "use",
    }
    assert {"residual": "posterior", "bm": "johansen", "fix_alpha11": None}.items() <= options.items()
    assert s["last_retune"]["id"] == len(versions)
    assert s["last_retune"]["effective_date"] == versions["effective_date"].iloc[-1]
    monday = (last_day + pd.Timedelta(days=7 - last_day.weekday())).strftime("%Y-%m-%d")
    assert s["next_retune"] == f"week of {monday}"
    vj = tmp_path / "versions.json"
    assert run_cli("versions", model, "--json", vj).exit_code == 0
    v = json.loads(vj.read_text())
    assert [r["effective_date"] for r in v["versions"]] == versions["effective_date"].tolist()
    assert [r["outcome"] for r in v["versions"]] == versions["outcome"].tolist()
    assert [r["alpha11"] for r in v["versions"]] == versions["alpha11"].tolist()
    res = run_cli("retune", model)
    assert res.exit_code == 0, res.stderr
    assert f"version {len(versions) + 1} (seed, window" in res.stdout and "effective from the next row" in res.stdout
    after = live.load_model(model).versions()[-1]
    assert (after.window_first, after.window_last) == (f"{prices.index[end + 41 - W]:%Y-%m-%d}", f"{last_day:%Y-%m-%d}")


@pytest.mark.parametrize(
    "args,message",
    [
        (["--retune", "weekly"], "--retune weekly needs --window N"),
        (["--retune", "weekly", "--window", "5"], "--window 5 must be an integer >= 20"),
        (["--retune", "daily", "--window", "250"], "--retune daily is not one of never, weekly, monthly"),
        (["--window", "250"], "--window N applies with --retune weekly"),
        (["--retune", "weekly", "--window", "5000"], "--window 5000 is longer than the"),
    ],
)
def test_cli_tune_retune_options_refused_before_work(run_cli, tmp_path, args, message, chan_file):
    model = tmp_path / "m.kcm"
    res = run_cli("tune", chan_file, "--assets", "EWA,EWC,IGE", "--save", model, *args)
    assert res.exit_code == 2 and res.stdout == "", res.stdout
    assert res.stderr.startswith("kalcoint: error:") and res.stderr.strip().count("\n") == 0, res.stderr
    assert message in res.stderr
    assert not model.exists()


def test_keep_refuses_a_degenerate_first_tuning(tmp_path, prices):
    from kalcoint.tuning import tune

    import dataclasses

    tuned = dataclasses.replace(
        tune(prices.iloc[:W], iterations=RETUNE_ITERATIONS), degenerate=True, degenerate_reasons=["scripted reason"]
    )  # a TunedModel is immutable
    with pytest.raises(KalcointError, match="is degenerate \\(scripted reason\\) and on_degenerate='keep'"):
        live.save_model(
            tmp_path / "k.kcm",
            tuned,
            prices.iloc[:W],
            retune="weekly",
            window=W,
            on_degenerate="keep",
            iterations=RETUNE_ITERATIONS,
        )
    assert not (tmp_path / "k.kcm").exists()
    with pytest.raises(KalcointError, match="must be tuned on the last 250 rows"):
        live.save_model(tmp_path / "k.kcm", tuned, prices.iloc[: W + 5], retune="weekly", window=W)
    # Chan's filter keeps its quantities: a period only chooses the linear rule's window again
    chan = live.save_chan_model(tmp_path / "c.kcm", prices.iloc[: W + 5], retune="weekly", window=W)
    assert chan.steps == W and chan.policy["retune"] == "weekly"
    with pytest.raises(KalcointError, match="holds Chan's filter, which has nothing to re-estimate"):
        chan.retune()


def downgrade_to_schema_1(path: Path) -> None:
    """Make a file of the schema before retuning (no versions table, no version columns)."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("BEGIN")
    con.execute("DROP TABLE versions")
    con.execute("ALTER TABLE steps DROP COLUMN version")
    con.execute("ALTER TABLE head DROP COLUMN version")
    con.execute("ALTER TABLE head DROP COLUMN engine")
    con.execute("DELETE FROM meta WHERE key IN ('retune', 'steps_sha256')")
    con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    con.execute("PRAGMA user_version = 1")
    con.execute("COMMIT")
    con.execute("VACUUM")
    con.close()


def test_a_schema_1_file_loads_as_retune_never_and_upgrades_on_update(model_file, prices):
    downgrade_to_schema_1(model_file)
    m = live.load_model(model_file)
    assert m.policy["retune"] == "never" and m.version == 1 and m.next_retune is None
    assert [v.outcome for v in m.versions()] == ["applied"] and m.versions()[0].model == m.model
    s = m.status()
    assert (s["version"], s["retune"]["retune"], s["next_retune"]) == (1, "never", None)
    assert (m.history()["version"] == 1).all()
    m.update(prices.iloc[N0 : N0 + 5])
    con = sqlite3.connect(model_file)
    assert con.execute("PRAGMA user_version").fetchone()[0] == live.SCHEMA_VERSION == 3
    assert con.execute("SELECT COUNT(*) FROM versions").fetchone()[0] == 1
    con.close()
    h = live.load_model(model_file).history()
    assert len(h) == N0 + 5 and (h["version"] == 1).all()
    np.testing.assert_allclose(m.state, kalman_filter(prices.iloc[: N0 + 5], m.model).filtered_state[-1], atol=1e-9)


# ---------------------------------------------------------------- defects found as a new user


def test_cli_json_into_an_unwritable_place_is_refused_before_applying(run_cli, model_file, tmp_path, prices):
    new = tmp_path / "new.csv"
    prices.iloc[N0 : N0 + 1].to_csv(new)
    blocker = tmp_path / "D"
    blocker.write_text("a file where a directory should be")
    before = digest(model_file)
    for target in (blocker / "u.json", tmp_path / "missing" / "u.json"):
        res = run_cli("update", model_file, "--prices", new, "--json", target)
        assert res.exit_code == 2 and res.stderr.strip().count("\n") == 0, res.stderr
        assert f"--json {target}" in res.stderr
        assert digest(model_file) == before
    res = run_cli("update", model_file, "--prices", new)  # the retry a scheduled job makes is applied
    assert res.exit_code == 0 and live.load_model(model_file).steps == N0 + 1


def test_cli_output_failing_after_the_commit_has_its_own_exit_code(run_cli, model_file, tmp_path, prices, monkeypatch):
    import kalcoint._io
    from kalcoint.cli.live import EXIT_OUTPUT_FAILED

    def disk_full(path, payload):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(kalcoint._io, "write_json", disk_full)
    new = tmp_path / "new.csv"
    prices.iloc[N0 : N0 + 2].to_csv(new)
    res = run_cli("update", model_file, "--prices", new, "--json", tmp_path / "u.json")
    assert res.exit_code == EXIT_OUTPUT_FAILED == 3
    lines = [line for line in res.stderr.splitlines() if line.startswith("kalcoint: error:")]
    assert len(lines) == 1 and "the rows were applied" in lines[0] and "No space left on device" in lines[0]
    assert live.load_model(model_file).steps == N0 + 2


def damage(path: Path, how: str) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        if how == "pages":  # header intact, 8 KB overwritten in the middle
            fh.seek(size // 2 // 4096 * 4096)
            fh.write(bytes(range(256)) * 32)
        else:
            fh.truncate(size // 2)


@pytest.mark.parametrize("how", ["pages", "truncated"])
def test_cli_damaged_model_file_gives_one_line_and_is_untouched(run_cli, model_file, tmp_path, prices, how, chan_file):
    damage(model_file, how)
    before = digest(model_file)
    new = tmp_path / "new.csv"
    prices.iloc[N0 : N0 + 1].to_csv(new)
    commands = [
        ["status", model_file],
        ["update", model_file, "--prices", new],
        ["history", model_file, "--out", tmp_path / "h.csv"],
        ["versions", model_file],
        ["filter", chan_file, "--model", model_file, "--out", tmp_path / "f.csv"],
        ["backtest", chan_file, "--model", model_file],
    ]
    for args in commands:
        res = run_cli(*args)
        assert res.exit_code == 2, (args[0], res.stderr)
        assert res.stderr.startswith("kalcoint: error:") and res.stderr.strip().count("\n") == 0, res.stderr
        assert f"model file {model_file} is damaged" in res.stderr and "Traceback" not in res.stderr
        assert digest(model_file) == before, args[0]
    assert not (tmp_path / "h.csv").exists() and not (tmp_path / "f.csv").exists()


def test_cli_locked_and_damaged_files_say_what_they_are(run_cli, model_file, tmp_path, prices):
    new = tmp_path / "new.csv"
    prices.iloc[N0 : N0 + 1].to_csv(new)
    holder = sqlite3.connect(model_file, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another writer in the middle of its commit
    try:
        res = run_cli("update", model_file, "--prices", new, "--lock-timeout", "0.2")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert res.exit_code == 2
    assert res.stderr.strip() == (
        f"kalcoint: error: model file {model_file} is locked by another update (waited "
        "--lock-timeout 0.2 s); try again when it has finished"
    )
    truncated = tmp_path / "t.kcm"
    shutil.copyfile(model_file, truncated)
    damage(truncated, "truncated")
    res = run_cli("update", truncated, "--prices", new)
    assert res.exit_code == 2 and f"model file {truncated} is damaged" in res.stderr
    assert "permissions" not in res.stderr


def test_cli_json_dash_puts_only_json_on_stdout(run_cli, model_file, tmp_path, prices):
    new = tmp_path / "new.csv"
    prices.iloc[N0 : N0 + 1].to_csv(new)
    res = run_cli("update", model_file, "--prices", new, "--json", "-")
    assert res.exit_code == 0, res.stderr
    d = json.loads(res.stdout)
    assert d["applied"] == 1 and d["date"] == f"{prices.index[N0]:%Y-%m-%d}" and "applied 1 row(s)" in res.stderr
    res = run_cli("status", model_file, "--json", "-")
    s = json.loads(res.stdout)
    assert s["steps"] == N0 + 1 and {"version", "last_retune", "retune", "next_retune"} <= set(s)
    np.testing.assert_array_equal(s["state"], live.load_model(model_file).state)
    assert json.loads(run_cli("versions", model_file, "--json", "-").stdout)["versions"][0]["id"] == 1


def test_two_rows_on_one_calendar_day_are_refused(model_file, tmp_path, prices, run_cli):
    m = live.load_model(model_file)
    day = prices.index[N0]
    rows = prices.iloc[[N0, N0 + 1]].copy()
    rows.index = [day + pd.Timedelta(hours=10), day + pd.Timedelta(hours=16)]
    before = digest(model_file)
    with pytest.raises(KalcointError, match=f"two rows on one calendar day {day:%Y-%m-%d}"):
        m.update(rows)
    late = prices.iloc[[N0 - 1]].copy() * 1.001
    late.index = [prices.index[N0 - 1] + pd.Timedelta(hours=16)]  # the last day again, with a time
    with pytest.raises(KalcointError, match="is on the calendar day of the model's last row"):
        m.update(late)
    path = tmp_path / "intraday.csv"
    rows.to_csv(path)
    res = run_cli("update", model_file, "--prices", path)
    assert res.exit_code == 2 and f"{day:%Y-%m-%d}" in res.stderr and res.stderr.strip().count("\n") == 0
    assert digest(model_file) == before


def test_a_gap_of_more_than_a_week_is_applied_with_a_warning(model_file, tmp_path, prices, run_cli):
    rows = prices.iloc[[N0, N0 + 8, N0 + 9]]  # skips 7 trading days
    gap = int(np.busday_count(prices.index[N0].date() + pd.Timedelta(days=1), prices.index[N0 + 8].date()))
    res = live.load_model(model_file).update(rows.iloc[:1])
    assert res.warnings == []
    path = tmp_path / "gap.csv"
    rows.iloc[1:].to_csv(path)
    cli = run_cli("update", model_file, "--prices", path, "--max-jump", "inf")
    assert cli.exit_code == 0
    expected = (
        f"{gap} business days skipped between {prices.index[N0]:%Y-%m-%d} and "
        f"{prices.index[N0 + 8]:%Y-%m-%d} (more than a week)"
    )
    assert gap == 7 and expected in cli.stderr.replace("\n", " ")
    assert live.load_model(model_file).steps == N0 + 3


def test_cli_a_failed_retune_keeps_the_previous_version_and_says_so(run_cli, tmp_path, prices):
    """Seed passes break down on the window before 2009-05-11 (alpha11 > 1): the week keeps version 2,
    stderr says so, the rows are applied, exit 0."""
    end = week_end_row(prices, 750)
    train, model, new = tmp_path / "train.csv", tmp_path / "m.kcm", tmp_path / "new.csv"
    prices.iloc[: end + 1].to_csv(train)
    prices.iloc[end + 1 : end + 16].to_csv(new)
    assert (
        run_cli(
            "tune",
            train,
            "--iterations",
            str(RETUNE_ITERATIONS),
            "--save",
            model,
            "--retune",
            "weekly",
            "--window",
            str(W),
        ).exit_code
        == 0
    )
    res = run_cli("update", model, "--prices", new)
    assert res.exit_code == 0, res.stderr
    err = " ".join(res.stderr.split())
    assert (
        "warning: re-estimation 3 (window" in err
        and "failed and the previous version is kept (the rows were applied): seed tuning broke down" in err
    )
    m = live.load_model(model)
    outcomes = [v.outcome.split(":")[0] for v in m.versions()]
    assert outcomes == ["applied", "applied", "failed"] and m.steps == W + 15
    h = m.history()
    assert h["version"].iloc[-5:].tolist() == [2] * 5  # the third week trades version 2


def test_cli_versions_json_under_a_file_says_how_to_fix(run_cli, model_file, tmp_path):
    blocker = tmp_path / "D"
    blocker.write_text("a file where a directory should be")
    res = run_cli("versions", model_file, "--json", blocker / "v.json")
    assert res.exit_code == 2 and res.stderr.count("\n") == 1, res.stderr
    assert res.stderr.strip() == (
        f"kalcoint: error: --json {blocker / 'v.json'}: {blocker} is a file, not a directory; give another path"
    )
    assert not (tmp_path / "v.json").exists() and blocker.read_text().startswith("a file")


# ---------------------------------------------------------------- every model and rule from the CLI


def test_cli_static_linear_weekly_is_chans_example_2_8_run_live(run_cli, tmp_path, prices):
    """`tune --method static --save M --strategy linear --retune weekly --window 250` saves Chan's
    Example 2.8 (the Johansen portfolio, units = -z) as a live model; `update` then trades the days
    of the weekly walk-forward backtest of `static` with `linear`."""
    from kalcoint.backtest import backtest

    end = week_end_row(prices, 600)
    train, new, model = tmp_path / "train.csv", tmp_path / "new.csv", tmp_path / "m.kcm"
    prices.iloc[: end + 1].to_csv(train)
    prices.iloc[end + 1 : end + 41].to_csv(new)
    args = ("--method", "static", "--save", model, "--strategy", "linear", "--retune", "weekly", "--window", "250")
    res = run_cli("tune", train, "--assets", "EWA,EWC,IGE", *args)
    assert res.exit_code == 0, res.stderr
    assert "static Johansen portfolio (EWA, EWC, IGE): weights" in res.stdout and "rule linear" in res.stdout
    res = run_cli("update", model, "--prices", new)
    assert res.exit_code == 0, res.stderr
    assert "minus the z-score; linear rule" in res.stdout and "retune          version 2 (static" in res.stdout
    ref = backtest(prices.iloc[end + 1 - W : end + 41], "static", "linear", retune="weekly", window=W)
    h = live.load_model(model).history()
    h = h[h["kind"] == "update"]
    np.testing.assert_array_equal(h["units"], ref.units)
    np.testing.assert_array_equal(h["version"], ref.version)
    assert (h["units"] != np.round(h["units"])).any()  # units are -z, not whole units
    # history --out: the returns recomputed from the file and the prices alone are the backtest's
    from audit_reference import recompute_returns

    out = tmp_path / "h.csv"
    assert run_cli("history", model, "--out", out, "--cost-bps", "5").exit_code == 0
    table = pd.read_csv(out, **_EXACT_FLOATS)
    np.testing.assert_array_equal(
        table[["shares_EWA", "shares_EWC", "shares_IGE"]].iloc[W:].to_numpy(), ref.units[:, None] * ref.shares
    )
    got = recompute_returns(table, prices, ["EWA", "EWC", "IGE"], 5.0)[W:]
    costly = backtest(prices.iloc[end + 1 - W : end + 41], "static", "linear", retune="weekly", window=W, cost_bps=5.0)
    # day 1 of the backtest starts flat; the model holds the position of its last saved row
    np.testing.assert_allclose(got[1:], costly.returns[1:], rtol=0, atol=1e-12)
    st = tmp_path / "s.json"
    assert run_cli("status", model, "--json", st).exit_code == 0
    s = json.loads(st.read_text())
    assert s["method"] == "static" and s["strategy"] == {"strategy": "linear", "entry": 1.0, "exit": 1.0}
    assert s["weights"] == list(ref.shares[-1]) and s["units"] == ref.units[-1]
    # a manual retune re-estimates the weights on the last 250 rows, in force from the next row
    res = run_cli("retune", model)
    assert res.exit_code == 0 and "effective from the next row" in res.stdout, res.stderr
    m = live.load_model(model)
    expected = live.engine.static_weights(prices.iloc[end + 41 - W : end + 41].to_numpy())
    np.testing.assert_array_equal(m.weights, expected)
    assert m.engine_state.version == m.version == len(ref.versions) + 1


def test_cli_tuned_and_chan_models_trade_the_linear_rule(run_cli, tmp_path, prices):
    """`tune --method mle --save M --strategy linear` and `tune --method chan --delta .. --obs-var ..
    --save M --strategy linear`: the update trades the replay of the saved file; Chan's model keeps
    its delta and obs_var."""
    from kalcoint.backtest import backtest

    train, new = tmp_path / "train.csv", tmp_path / "new.csv"
    prices.iloc[:N0].to_csv(train)
    prices.iloc[N0 : N0 + 30].to_csv(new)
    for method, extra in (("mle", ()), ("chan", ("--delta", "0.0002", "--obs-var", "0.002"))):
        model, saved = tmp_path / f"{method}.kcm", tmp_path / f"{method}-saved.kcm"
        res = run_cli("tune", train, "--method", method, *extra, "--save", model, "--strategy", "linear")
        assert res.exit_code == 0, res.stderr
        shutil.copyfile(model, saved)
        assert run_cli("update", model, "--prices", new).exit_code == 0
        h = live.load_model(model).history()
        h = h[h["kind"] == "update"]
        ref = backtest(prices.iloc[: N0 + 30], live.load_model(saved))
        np.testing.assert_array_equal(h["units"], ref.units)
        assert ref.strategy == "linear" and np.any(ref.units != 0)
    chan = live.load_model(tmp_path / "chan.kcm")
    assert (chan.model.obs_var, chan.tuning["delta"]) == (0.002, 0.0002)
    assert chan.model.to_dict() == live.StateSpaceModel.chan(3, delta=0.0002, obs_var=0.002).to_dict()


@pytest.mark.parametrize(
    "args,message",
    [
        (["--method", "static"], "--method static has nothing to tune: give --save M"),
        (["--strategy", "linear"], "--strategy and --lookback apply with --save only"),
        (["--method", "static", "--delta", "0.001", "--save", "M"], "--delta, --state-var and --obs-var apply"),
        (["--method", "seed", "--obs-var", "0.001", "--save", "M"], "apply to --method chan only"),
        (
            ["--method", "chan", "--save", "M", "--strategy", "momentum"],
            "--strategy momentum is not one of bands, linear",
        ),
        (["--method", "mle", "--save", "M", "--lookback", "10"], "--lookback 10 applies to --strategy linear"),
    ],
)
def test_cli_tune_save_rule_options_refused_before_work(run_cli, tmp_path, chan_file, args, message):
    args = [str(tmp_path / "m.kcm") if a == "M" else a for a in args]
    res = run_cli("tune", chan_file, "--assets", "EWA,EWC,IGE", *args)
    assert res.exit_code == 2 and res.stdout == "", res.stdout
    assert res.stderr.startswith("kalcoint: error:") and res.stderr.strip().count("\n") == 0, res.stderr
    assert message in res.stderr
    assert not (tmp_path / "m.kcm").exists()


def test_tune_options_is_the_one_name_of_the_tuning_options():
    policy = live.retune_policy("weekly", W, method="seed", tune_options={"bm": "sample"})
    assert policy["options"] == {"bm": "sample"}
    with pytest.warns(DeprecationWarning, match="options= is deprecated: use tune_options="):
        assert live.retune_policy("weekly", W, method="seed", options={"bm": "sample"}) == policy


def downgrade_to_schema_2(path: Path) -> None:
    """Make a file of the schema before the engine's state (no head.engine column)."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("BEGIN")
    con.execute("ALTER TABLE head DROP COLUMN engine")
    con.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    con.execute("PRAGMA user_version = 2")
    con.execute("COMMIT")
    con.close()


def test_a_schema_2_file_continues_and_upgrades_in_its_first_update_or_retune(tmp_path, prices):
    """A weekly seed file of schema 2 loads, continues exactly as the same file of schema 3, and its
    first update (or manual retune) upgrades it to schema 3 in the same transaction."""
    from kalcoint.tuning import tune

    end = week_end_row(prices, 600)
    train = prices.iloc[: end + 1]
    new = tmp_path / "new.kcm"
    live.save_model(new, tune(train.iloc[-W:], iterations=200), train, retune="weekly", window=W, iterations=200)
    old, manual = tmp_path / "old.kcm", tmp_path / "manual.kcm"
    for path in (old, manual):
        shutil.copyfile(new, path)
        downgrade_to_schema_2(path)
    m_old, m_new = live.load_model(old), live.load_model(new)
    assert (m_old.version, m_old.state.tolist(), m_old.engine_state.lookback) == (1, m_new.state.tolist(), None)
    rows = prices.iloc[end + 1 : end + 21]
    m_old.update(rows.iloc[:7])
    m_old.update(rows.iloc[7:])
    m_new.update(rows)
    a, b = m_old.history(), m_new.history()
    pd.testing.assert_frame_equal(a.drop(columns="applied_at"), b.drop(columns="applied_at"), check_exact=True)
    assert m_old.engine_state == m_new.engine_state
    for path in (old, manual):
        if path == manual:
            v = live.load_model(path).retune()
            assert live.load_model(path).versions()[-1].to_dict() == v.to_dict()
        con = sqlite3.connect(path)
        assert con.execute("PRAGMA user_version").fetchone()[0] == 3
        assert con.execute("SELECT engine IS NOT NULL FROM head").fetchone()[0] == 1
        con.close()

"""Saved models and daily updates (issue 6): exactness, refusals, crash safety, concurrency, CLI.

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

from kalcoint import live
from kalcoint.errors import KalcointError
from kalcoint.filtering import kalman_filter
from kalcoint.strategy import bands
from kc_reference import ref_filter

N0 = 500  # rows of the tuning sample


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    from kalcoint.data import load_prices

    return load_prices(Path(__file__).resolve().parents[2] / "shared" / "data" / "chan_etf_close.csv",
                       ["EWA", "EWC", "IGE"])


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
    return ref_filter(p[:, 0], X, np.diag(model.transition), np.diag(model.state_var), model.obs_var,
                      model.initial_state, np.diag(model.initial_cov))


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
    np.testing.assert_array_equal(h[["beta_const", "beta_EWC", "beta_IGE"]].to_numpy(),
                                  tuned.result.filtered_state)
    np.testing.assert_array_equal(h["innovation"], tuned.result.innovation)
    # units over the sample: Chan's bands rule from flat, as kalcoint.strategy.bands
    np.testing.assert_array_equal(h["units"], bands(tuned.result.innovation, np.sqrt(tuned.result.innovation_var)))
    assert integrity(base_file) == "ok"


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
from kalcoint.errors import KalcointError


def say(tag, msg):
    os.write(1, f"{tag} {msg}\n".encode())  # one write per line: lines of the workers do not mix


def work(job):
    tag, mode, arg = job["tag"], job["mode"], job["arg"]
    rows = pd.read_csv(job["rows"], index_col=0, parse_dates=True, float_precision="round_trip")
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
        self.proc = subprocess.Popen([sys.executable, str(driver), json.dumps(jobs)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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


def test_sigkill_at_each_statement_leaves_old_or_new_state(base_file, tmp_path, prices, workers):
    """A real process killed (SIGKILL) while paused at each statement of an update of 3 rows."""
    rows = prices.iloc[N0 : N0 + 3]
    paths = {label: tmp_path / f"kill_{label}.db" for label in live.UPDATE_STATEMENTS}
    for path in paths.values():
        shutil.copyfile(base_file, path)
    w = workers([{"tag": label, "mode": "stop_at", "model": paths[label], "frame": rows, "arg": str(i)}
                 for i, label in enumerate(live.UPDATE_STATEMENTS)])
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


def test_sigkill_at_random_moments_of_update_loops(base_file, tmp_path, prices, workers):
    """Kill processes that feed rows one at a time, at random moments; each file then holds exactly
    the first n rows (n = the steps recorded), with the batch filter's states over them."""
    rng = np.random.default_rng(7)
    paths = {f"loop{s}": tmp_path / f"loop{s}.db" for s in range(4)}
    for path in paths.values():
        shutil.copyfile(base_file, path)
    w = workers([{"tag": tag, "mode": "loop", "model": path, "frame": prices.iloc[N0 : N0 + 300], "arg": str(s)}
                 for s, (tag, path) in enumerate(paths.items())])
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
        np.testing.assert_allclose(m.state, kalman_filter(prices.iloc[: n + 1], m.model).filtered_state[-1],
                                   atol=1e-9)


def test_two_updates_at_once_wait_or_fail_clearly(model_file, tmp_path, prices, workers):
    """A holds the write lock; B (timeout 0.3 s) fails clearly; C (A's row again) waits then is
    refused after re-validating under the lock; D (the next row) waits then applies."""
    flag, go = tmp_path / "release", tmp_path / "go"
    row_a, row_d = prices.iloc[N0 : N0 + 1], prices.iloc[N0 + 1 : N0 + 2]
    w = workers([
        {"tag": "A", "mode": "hold", "model": model_file, "frame": row_a, "arg": str(flag)},
        {"tag": "B", "mode": "wait", "model": model_file, "frame": row_a, "arg": "0.3", "go": str(go)},
        {"tag": "C", "mode": "wait", "model": model_file, "frame": row_a, "arg": "60", "go": str(go)},
        {"tag": "D", "mode": "wait", "model": model_file, "frame": row_d, "arg": "60", "go": str(go)},
    ])
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
    h = pd.read_csv(hist, float_precision="round_trip")
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
    np.testing.assert_allclose(f[["beta_const", "beta_EWC", "beta_IGE"]].to_numpy(),
                               h[["beta_const", "beta_EWC", "beta_IGE"]].to_numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(h["units"], bands(h["innovation"], np.sqrt(h["innovation_var"]), 1.5, 0.5))
    new = tmp_path / "new.csv"
    prices.iloc[N0 : N0 + 2].to_csv(new)
    assert run_cli("update", model, "--prices", new).exit_code == 0
    np.testing.assert_allclose(live.load_model(model).state,
                               kalman_filter(prices.iloc[: N0 + 2], m.model).filtered_state[-1], atol=1e-9)


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
    with pytest.raises(KalcointError, match="exit 2.0 is larger than --entry 1.0"):
        live.save_model(tmp_path / "x.db", tuned, prices.iloc[:N0], strategy={"exit": 2.0})
    assert not (tmp_path / "x.db").exists()

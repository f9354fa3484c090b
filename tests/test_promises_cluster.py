"""Clusters under faults: the screen and the study never hang on a scheduler address and never
end in a traceback because of one.

Held here: a ``--scheduler`` that is not ``tcp://HOST:PORT`` or ``tls://HOST:PORT`` is refused
before any work (one line, exit 2); a server that accepts and never speaks, an HTTP server and a
server sending junk bytes are refused within the connect timeout (one line, exit 2) as a
scheduler that is down is; ``resume`` with ``overwrite`` is refused; the hint names the
command `dask scheduler`. A real ``dask scheduler`` whose only worker is killed mid-run: a worker
that joins within the worker timeout takes over and the rows equal a serial run; none joining
stops the run with a line saying resume continues, the rows done kept in the output table.
Every server binds 127.0.0.1, every wait is bounded by a timeout, every process is ended.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import kalcoint._cluster as cluster
from kalcoint.cli._common import cli_message
from kalcoint.errors import KalcointError
from kalcoint.screen import ScreenOptions, load_universe, read_table, screen
from kalcoint.study import StudyOptions, study

SRC = Path(__file__).resolve().parents[1] / "src"
DASK = Path(sys.executable).with_name("dask")
TICKERS = ["EWA", "EWC", "IGE", "EEM", "SPY", "BNO"]
OPTIONS = ScreenOptions(size=3, min_rows=500)
BAD_ADDRESSES = ["127.0.0.1", "127.0.0.1:8786", "foo://x", "http://127.0.0.1:8786", "inproc://x", "tcp://127.0.0.1"]
BAD_ADDRESSES += ["tcp://127.0.0.1:0", "tcp://127.0.0.1:70000", "tcp://:8786", "tcp://127.0.0.1:8786/x"]


@pytest.fixture(scope="module")
def universe(chan_file) -> pd.DataFrame:
    return load_universe(chan_file, TICKERS)


@pytest.fixture(scope="module")
def serial(universe) -> pd.DataFrame:
    return screen(universe, OPTIONS, workers=0)


# ------------------------------------------------------------------ servers that are not schedulers


@pytest.fixture
def listener() -> Iterator[tuple[str, list[bytes], threading.Event]]:
    """A 127.0.0.1 socket that accepts connections and sends each the bytes the test appends to
    the greeting list (none: a silent listener); yields its tcp:// address, that list and a stop flag."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = threading.Event()
    greeting: list[bytes] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append(conn)
            for data in greeting:
                conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.getsockname()[1]}", greeting, stop
    finally:
        stop.set()
        thread.join(5)
        server.close()
        for conn in accepted:
            conn.close()


@pytest.fixture
def http_server() -> Iterator[str]:
    """``python -m http.server`` on a free 127.0.0.1 port."""
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]  # "Serving HTTP on 127.0.0.1 port N ..."
        assert "port" in line, line
        yield f"tcp://127.0.0.1:{int(line.split('port ')[1].split()[0])}"
    finally:
        proc.kill()
        proc.wait(10)


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


@pytest.mark.parametrize("address", BAD_ADDRESSES)
def test_bad_addresses_are_refused_before_any_work(address, universe, tmp_path):
    out = tmp_path / "s.parquet"
    with pytest.raises(KalcointError, match="tcp://HOST:PORT or tls://HOST:PORT") as err:
        screen(universe, OPTIONS, scheduler=address, out=out)
    assert f"scheduler {address!r} is not an address" in str(err.value)
    with pytest.raises(KalcointError, match="tcp://HOST:PORT or tls://HOST:PORT"):
        study(universe, StudyOptions(), scheduler=address, out=tmp_path / "st.parquet")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("command", ["screen", "study"])
@pytest.mark.parametrize("address", ["127.0.0.1", "http://127.0.0.1:8786", "inproc://x"])
def test_cli_bad_addresses_one_line_exit_2(run_cli, chan_file, tmp_path, command, address):
    out = tmp_path / "s.parquet"
    res = run_cli(command, chan_file, "--out", out, "--scheduler", address)
    assert res.exit_code == 2
    line = _one_line(res.stderr)
    assert f"--scheduler '{address}' is not an address of the form tcp://HOST:PORT or tls://HOST:PORT" in line
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_silent_listener_is_refused_within_the_timeout(listener, universe, tmp_path):
    address, _, _ = listener
    out = tmp_path / "s.parquet"
    with pytest.raises(KalcointError, match=r"no answer within 1\.5 s \(is it a `dask scheduler`\?\)") as err:
        screen(universe, OPTIONS, scheduler=address, out=out, connect_timeout=0.5)
    assert f"`dask worker {address}`" in str(err.value)
    assert not out.exists()


@pytest.mark.slow
def test_silent_listener_is_refused_by_the_study_too(listener, universe, tmp_path):
    address, _, _ = listener
    out = tmp_path / "st.parquet"
    options = StudyOptions(top=1, models=("static", "chan"))
    with pytest.raises(KalcointError, match=r"no answer within 1\.5 s \(is it a `dask scheduler`\?\)"):
        study(universe.iloc[:700], options, scheduler=address, out=out, connect_timeout=0.5)
    assert not out.exists()


@pytest.mark.parametrize(
    "junk",
    [
        b"\xff" * 64,  # a frame count of 2**64 - 1
        b"\x01\x00\x00\x00\x00\x00\x00\x00" + b"\x00\x00\x00\x00\x00\x00\x00\x31" * 2,  # one frame of 3.5 EiB
        b"SSH-2.0-OpenSSH_9.6\r\n",
    ],
)
def test_junk_bytes_server_is_one_error(listener, universe, junk):
    address, greeting, _ = listener
    greeting.append(junk)
    with pytest.raises(KalcointError, match=f"scheduler {address}: ") as err:
        screen(universe, OPTIONS, scheduler=address, connect_timeout=0.5)
    assert "`dask scheduler`" in str(err.value)


@pytest.mark.slow
def test_cli_http_server_and_down_scheduler_one_line_exit_2(run_cli, chan_file, tmp_path, http_server, monkeypatch):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 0.5)
    out = tmp_path / "s.parquet"
    args = ("--assets", "EWA,EWC,IGE", "--out", out, "--scheduler")
    res = run_cli("screen", chan_file, *args, http_server)
    assert res.exit_code == 2
    line = _one_line(res.stderr)
    assert f"--scheduler {http_server}: no answer within 1.5 s (is it a `dask scheduler`?)" in line
    # the command, not a flag: `dask scheduler`
    assert f"start one with `dask scheduler` and workers with `dask worker {http_server}`" in line
    down = f"tcp://127.0.0.1:{_closed_port()}"
    res = run_cli("study", chan_file, *args, down, "--top", "1", "--models", "static,chan")
    assert res.exit_code == 2
    assert f"--scheduler {down}: cannot connect (" in _one_line(res.stderr)
    assert not out.exists()


@pytest.mark.parametrize("command", ["screen", "study"])
def test_resume_with_overwrite_is_refused(run_cli, chan_file, tmp_path, universe, command):
    out = tmp_path / "s.parquet"
    res = run_cli(command, chan_file, "--out", out, "--resume", "--overwrite", "--workers", "0")
    assert res.exit_code == 2
    assert "--resume and --overwrite exclude each other" in _one_line(res.stderr)
    run = screen if command == "screen" else study
    with pytest.raises(KalcointError, match="resume and overwrite exclude each other"):
        run(universe, workers=0, out=out, resume=True, overwrite=True)
    assert not out.exists()


@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf"), True])
def test_timeouts_must_be_positive_seconds(universe, value):
    with pytest.raises(KalcointError, match="connect_timeout .* must be a number of seconds > 0"):
        screen(universe, OPTIONS, workers=0, connect_timeout=value)
    with pytest.raises(KalcointError, match="worker_timeout .* must be a number of seconds > 0"):
        study(universe, workers=0, worker_timeout=value)


# ------------------------------------------------------------------ a real scheduler losing its worker


class _Cluster:
    """``dask scheduler`` and ``dask worker --no-nanny`` processes on 127.0.0.1 (a killed
    worker stays dead: no nanny restarts it)."""

    def __init__(self) -> None:
        self.address = f"tcp://127.0.0.1:{_closed_port()}"
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
        self.procs: list[subprocess.Popen] = []
        port = self.address.rsplit(":", 1)[1]
        self._start(["scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"])
        deadline = time.monotonic() + 60
        while True:
            try:
                cluster.probe(self.address, timeout=1.0)
                break
            except KalcointError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _start(self, args: list[str]) -> subprocess.Popen:
        proc = subprocess.Popen([str(DASK), *args], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def worker(self) -> subprocess.Popen:
        return self._start(
            [
                "worker",
                self.address,
                "--no-nanny",
                "--nthreads",
                "1",
                "--host",
                "127.0.0.1",
                "--no-dashboard",
            ]
        )

    def ready_worker(self) -> subprocess.Popen:
        """A worker that has joined the scheduler (waits up to 60 s)."""
        proc = self.worker()
        deadline = time.monotonic() + 60
        while not cluster._ask_identity(self.address, None, 5.0)["workers"]:
            assert time.monotonic() < deadline and proc.poll() is None, "the worker did not join"
            time.sleep(0.2)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()
        for proc in self.procs:
            proc.wait(30)


@pytest.fixture
def dask_cluster() -> Iterator[_Cluster]:
    running = _Cluster()
    try:
        yield running
    finally:
        running.close()


def _killer(worker: subprocess.Popen, then=None):
    """A progress callback killing ``worker`` at the first finished task (then calling ``then``)."""
    seen: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        if done == 0:  # the report that the work has started, before any task finished
            return
        seen.append((done, total))
        if len(seen) == 1:
            worker.kill()
            worker.wait(30)
            if then is not None:
                then()

    return progress, seen


@pytest.mark.slow
def test_losing_the_only_worker_waits_for_a_new_one(dask_cluster, universe, serial, tmp_path):
    first = dask_cluster.worker()
    progress, seen = _killer(first, then=dask_cluster.worker)
    out = tmp_path / "s.parquet"
    table = screen(universe, OPTIONS, scheduler=dask_cluster.address, batch_size=1, out=out, progress=progress)
    assert first.returncode is not None and first.returncode < 0  # killed by a signal
    assert seen[0][0] < seen[0][1]  # tasks were left when it died
    pd.testing.assert_frame_equal(table, serial)
    pd.testing.assert_frame_equal(read_table(out), serial)


@pytest.mark.slow
def test_losing_the_only_worker_for_good_stops_and_resume_continues(dask_cluster, universe, serial, tmp_path):
    worker = dask_cluster.ready_worker()
    progress, seen = _killer(worker)
    out = tmp_path / "s.parquet"
    address = dask_cluster.address
    with pytest.raises(KalcointError) as err:
        screen(universe, OPTIONS, scheduler=address, batch_size=1, out=out, progress=progress, worker_timeout=1.0)
    message = cli_message(err.value)
    assert message == (
        f"--scheduler {address}: no worker left and none joined within 1 s; the rows done are in --out {out}: "
        f"start `dask worker {address}`, then run again with --resume to continue"
    )
    kept = read_table(out)
    assert seen[0][0] <= len(kept) < len(serial)
    pd.testing.assert_frame_equal(kept, serial.iloc[: len(kept)].reset_index(drop=True))
    dask_cluster.worker()
    resumed = screen(universe, OPTIONS, scheduler=address, out=out, resume=True)
    pd.testing.assert_frame_equal(resumed, serial)


@pytest.mark.slow
def test_study_losing_the_only_worker_stops_instead_of_hanging(dask_cluster, universe, tmp_path):
    worker = dask_cluster.ready_worker()
    progress, _ = _killer(worker)
    out = tmp_path / "st.parquet"
    options = StudyOptions(top=1, models=("static", "chan"), n_boot=200)
    with pytest.raises(KalcointError) as err:
        study(universe, options, scheduler=dask_cluster.address, out=out, progress=progress, worker_timeout=1.0)
    assert cli_message(err.value).endswith(
        f"no worker left and none joined within 1 s; the rows done are in --out {out}: "
        f"start `dask worker {dask_cluster.address}`, then run again with --resume to continue"
    )


@pytest.mark.slow
def test_losing_the_scheduler_stops_with_one_error_and_keeps_the_rows(dask_cluster, universe, serial, tmp_path):
    dask_cluster.ready_worker()
    progress, _ = _killer(dask_cluster.procs[0])  # the scheduler
    out = tmp_path / "s.parquet"
    address = dask_cluster.address
    with pytest.raises(KalcointError) as err:
        screen(universe, OPTIONS, scheduler=address, batch_size=1, out=out, progress=progress, connect_timeout=1.0)
    message = cli_message(err.value)
    assert message == (
        f"--scheduler {address}: the connection was lost; the rows done are in --out {out}: restart `dask scheduler` "
        "and its workers, then run again with --resume to continue"
    )
    kept = read_table(out)
    assert 1 <= len(kept) < len(serial)
    pd.testing.assert_frame_equal(kept, serial.iloc[: len(kept)].reset_index(drop=True))

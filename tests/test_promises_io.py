"""What kalcoint promises when a write fails or an input is not a plain file.

Writes: an output path that is a device, a FIFO, ``-`` or ``/dev/stdout`` is written into and
never replaced; a symlink is followed and its target replaced (the link stays); a write that
fails (a full disk, a device that refuses) is one line naming the path and the reason, exit 2
before anything changed and exit 3 after an update's commit, with no partial file and no
temporary file left; ``tune --save`` keeps no model whose ``--json`` failed.

Model files: reading one (status, versions, history, backtest --model, the library's reads)
needs read access only (an immutable file, a read-only mount); an update of such a file is
refused; a changed digit in a stored row is reported as damaged (the rows' checksum), and a
file without a checksum gets one in its first update; ``--lock-timeout`` must be a finite
number >= 0 and every command that waits for the lock has the flag its message names.

Price files: a FIFO, ``/dev/stdin`` and a pipe (a shell's ``<(...)``) are read to their end as
streams; a device is refused by name; a row with more or fewer fields than the header, or a
field longer than the CSV reader's limit, is one line naming the line.

Devices are nodes made with ``os.mknod`` in a temporary directory and a full disk is a 64 KiB
tmpfs: both need root (and a mount that works), and are skipped with the reason otherwise.
FIFOs are read and written by threads with deadlines, so no test can hang.
"""

from __future__ import annotations

import errno
import json
import os
import select
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import kalcoint as kc
from kalcoint import live
from kalcoint._io import write_json, write_table, write_with
from kalcoint.data import load_prices
from kalcoint.errors import KalcointError

ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="device nodes, tmpfs mounts and chattr need root")
N0 = 300  # rows of the saved model


# ---------------------------------------------------------------- helpers and fixtures


def one_line(res, code: int, *needles: str) -> None:
    """The command failed with ``code`` and one line on stderr holding every needle."""
    text = res.stderr.strip()
    assert res.exit_code == code, res.stderr
    assert text.count("\n") == 0 and "Traceback" not in text, text
    for needle in needles:
        assert needle in text, text


def char_device(directory: Path, name: str, minor: int) -> Path:
    """A node of the memory devices (major 1): minor 3 is /dev/null, 7 is /dev/full."""
    path = directory / name
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
    except OSError as exc:
        pytest.skip(f"cannot make a device node here: {exc}")
    return path


def is_char_device(path: Path) -> bool:
    return stat.S_ISCHR(os.lstat(path).st_mode)


@contextmanager
def tmpfs(mount: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at the new directory ``mount`` (skipped if it cannot be), unmounted after."""
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def full_dir(tmp_path) -> Iterator[Path]:
    """A directory on a 64 KiB tmpfs filled to the last byte."""
    if not ROOT:
        pytest.skip("mounting a small tmpfs needs root")
    with tmpfs(tmp_path / "full", "64k") as mount:
        with open(mount / "filler", "wb", buffering=0) as fh:
            try:
                while True:
                    fh.write(b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        yield mount


def only_filler(directory: Path) -> bool:
    """Nothing but the filler is left: no output, no temporary file."""
    return sorted(p.name for p in directory.iterdir()) == ["filler"]


@pytest.fixture(scope="module")
def demo() -> pd.DataFrame:
    return kc.demo_prices()


@pytest.fixture
def model_file(tmp_path, demo) -> Path:
    path = tmp_path / "m.kcm"
    live.save_chan_model(path, demo.iloc[:N0])
    return path


@pytest.fixture
def new_rows(tmp_path, demo) -> Path:
    path = tmp_path / "new.csv"
    demo.iloc[N0 : N0 + 2].to_csv(path)
    return path


@pytest.fixture
def price_csv(tmp_path, demo) -> Path:
    path = tmp_path / "prices.csv"
    demo.iloc[:N0].to_csv(path)
    return path


def read_fifo_while(fifo: Path, action: Callable[[], object], deadline: float = 60.0) -> tuple[bytes, object]:
    """Run ``action`` in a thread while this thread reads ``fifo`` (opened first, non-blocking)
    until the writer closes it or the deadline passes. Returns (bytes read, action's result)."""
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(_outcome(action)), daemon=True)
    worker.start()
    data, end = b"", time.monotonic() + deadline
    try:
        while time.monotonic() < end:
            select.select([fd], [], [], 0.05)
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                continue
            data += chunk
            if not chunk and not worker.is_alive():
                break
            if not chunk:
                time.sleep(0.01)
    finally:
        os.close(fd)
    worker.join(timeout=5)
    assert result, "the writer did not finish before the deadline"
    return data, result[0]


def _outcome(action: Callable[[], object]) -> object:
    try:
        return action()
    except Exception as exc:  # handed to the test thread
        return exc


def read_from_fifo(fifo: Path, payload: bytes, read: Callable[[], object], deadline: float = 60.0) -> object:
    """Run ``read`` (which reads ``fifo``) in a thread while another writes ``payload`` into it;
    give up at the deadline. Whatever is still blocked on the FIFO is released before returning
    (a reader waiting for a writer gets end of file, a writer waiting for a reader gets one)."""
    result: list[object] = []

    def write() -> None:
        with open(fifo, "wb") as fh:
            fh.write(payload)

    writer = threading.Thread(target=write, daemon=True)
    reader = threading.Thread(target=lambda: result.append(_outcome(read)), daemon=True)
    writer.start()
    reader.start()
    reader.join(timeout=deadline)
    for _ in range(50):
        if not (writer.is_alive() or reader.is_alive()):
            break
        for flags in (os.O_RDONLY | os.O_NONBLOCK, os.O_WRONLY | os.O_NONBLOCK):
            try:
                os.close(os.open(fifo, flags))
            except OSError:
                pass
        time.sleep(0.05)
    assert result, "reading the FIFO did not finish before the deadline"
    return result[0]


# ---------------------------------------------------------------- writes into what is not a file


@needs_root
def test_a_device_is_written_into_and_stays_a_device(tmp_path):
    null = char_device(tmp_path, "null", 3)
    frame = pd.DataFrame({"x": [1.5, 2.5]})
    write_json(null, {"a": 1})
    write_table(null, frame)
    write_table(tmp_path / "null", frame)
    write_with(null, lambda tmp: tmp.write_bytes(b"png"))
    assert is_char_device(null)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]  # no temporary file left


@needs_root
def test_a_full_device_is_one_line_and_stays_a_device(tmp_path):
    full = char_device(tmp_path, "full", 7)
    with pytest.raises(KalcointError) as info:
        write_json(full, {"a": 1})
    assert str(info.value).startswith(f"cannot write {full}: No space left on device")
    assert is_char_device(full)


@needs_root
def test_cli_json_into_a_full_device(run_cli, tmp_path, model_file, new_rows):
    full = char_device(tmp_path, "full", 7)
    one_line(run_cli("status", model_file, "--json", full), 2, f"cannot write {full}", "No space left on device")
    res = run_cli("update", model_file, "--prices", new_rows, "--json", full)
    one_line(res, 3, f"the rows were applied to {model_file}", "No space left on device", "do not re-run")
    assert live.load_model(model_file).steps == N0 + 2 and is_char_device(full)


def test_a_fifo_is_written_into_and_stays_a_fifo(tmp_path):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    data, outcome = read_fifo_while(fifo, lambda: write_json(fifo, {"sharpe": 1.25}))
    assert outcome is None and json.loads(data) == {"sharpe": 1.25}
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.fifo"]


def test_a_symlink_stays_and_its_target_is_replaced(tmp_path):
    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target.name)
    write_json(link, {"b": 2})
    assert link.is_symlink() and os.readlink(link) == "real.json"
    assert json.loads(target.read_text()) == {"b": 2}
    dangling = tmp_path / "dangling.csv"
    dangling.symlink_to("made.csv")
    write_table(dangling, pd.DataFrame({"x": [1]}))
    assert dangling.is_symlink() and (tmp_path / "made.csv").read_text().splitlines() == ["x", "1"]


def test_dash_and_a_link_to_stdout_go_to_standard_output(tmp_path, capfd, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_json("-", {"c": 3})
    assert json.loads(capfd.readouterr().out) == {"c": 3}
    stdout = tmp_path / "stdout"  # as /dev/stdout is, without risking the system's link
    stdout.symlink_to("/proc/self/fd/1")
    print("before", flush=True)
    write_json(stdout, {"d": 4})
    print("after", flush=True)
    out = capfd.readouterr().out
    assert out.startswith("before\n") and out.endswith("after\n")
    assert json.loads(out[len("before\n") : -len("after\n")]) == {"d": 4}
    assert [p.name for p in tmp_path.iterdir()] == ["stdout"] and stdout.is_symlink()  # no file named '-'


@needs_root
def test_a_model_is_not_saved_into_a_device(tmp_path, demo):
    null = char_device(tmp_path, "null", 3)
    with pytest.raises(KalcointError, match="not a regular file"):
        live.save_chan_model(null, demo.iloc[:N0])
    assert is_char_device(null)


# ---------------------------------------------------------------- a full disk


def test_library_writes_on_a_full_disk_leave_nothing(full_dir, demo):
    frame = pd.DataFrame({"x": np.arange(20000, dtype=np.float64)})
    for path, write in (
        (full_dir / "t.csv", lambda p: write_table(p, frame)),
        (full_dir / "t.parquet", lambda p: write_table(p, frame)),
        (full_dir / "f.png", lambda p: write_with(p, lambda tmp: tmp.write_bytes(b"\0" * 100_000))),
        (full_dir / "m.kcm", lambda p: live.save_chan_model(p, demo.iloc[:N0])),
    ):
        with pytest.raises(KalcointError) as info:
            write(path)
        assert str(info.value).count("\n") == 0 and str(path) in str(info.value)
        assert "full" in str(info.value) or "No space left" in str(info.value)
        assert only_filler(full_dir)


def test_cli_outputs_on_a_full_disk(run_cli, full_dir, model_file, new_rows):
    out = full_dir / "s.json"
    one_line(run_cli("status", model_file, "--json", out), 2, f"cannot write {out}", "No space left on device")
    out = full_dir / "h.csv"
    one_line(run_cli("history", model_file, "--out", out), 2, f"cannot write {out}", "No space left on device")
    out = full_dir / "v.json"
    one_line(run_cli("versions", model_file, "--json", out), 2, f"cannot write {out}", "No space left on device")
    out = full_dir / "u.json"
    one_line(run_cli("update", model_file, "--prices", new_rows, "--json", out), 3, "No space left on device")
    assert live.load_model(model_file).steps == N0 + 2
    assert only_filler(full_dir)


def test_cli_tune_save_on_a_full_disk_and_save_with_a_failing_json(run_cli, full_dir, tmp_path, price_csv):
    save = full_dir / "new.kcm"
    res = run_cli("tune", price_csv, "--iterations", "1", "--save", save)
    one_line(res, 2, f"model file {save}", "full")
    assert only_filler(full_dir)
    save, out = tmp_path / "new.kcm", full_dir / "t.json"
    res = run_cli("tune", price_csv, "--iterations", "1", "--save", save, "--json", out)
    one_line(res, 2, f"cannot write {out}", f"the model {save} was not kept")
    assert not save.exists() and only_filler(full_dir)


def test_cli_screen_output_on_a_full_disk(run_cli, full_dir, price_csv):
    out = full_dir / "screen.csv"
    res = run_cli("screen", price_csv, "--size", "2", "--iterations", "1", "--workers", "0", "--out", out)
    one_line(res, 2, f"cannot write {out}", "No space left on device")
    assert only_filler(full_dir)


# ---------------------------------------------------------------- model files that cannot be written


@pytest.fixture
def immutable(model_file) -> Iterator[Path]:
    if not ROOT or shutil.which("chattr") is None:
        pytest.skip("chattr +i needs root and chattr")
    done = subprocess.run(["chattr", "+i", str(model_file)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"chattr +i does not work here: {done.stderr.decode().strip()}")
    try:
        yield model_file
    finally:
        subprocess.run(["chattr", "-i", str(model_file)], check=False)


def test_an_immutable_model_is_read_by_every_reading_command(run_cli, immutable, tmp_path, demo):
    res = run_cli("status", immutable)
    assert res.exit_code == 0 and f"{N0} steps" in res.stdout, res.stderr
    res = run_cli("versions", immutable, "--json", "-")
    assert res.exit_code == 0 and json.loads(res.stdout)["version"] == 1, res.stderr
    out = tmp_path / "h.csv"
    res = run_cli("history", immutable, "--out", out)
    assert res.exit_code == 0 and len(pd.read_csv(out)) == N0, res.stderr
    later = tmp_path / "later.csv"
    demo.iloc[: N0 + 60].to_csv(later)
    res = run_cli("backtest", later, "--model", immutable)
    assert res.exit_code == 0 and "60 days; saved model continued from its last date" in res.stdout, res.stderr
    m = live.load_model(immutable)
    assert len(m.history()) == N0 and m.resume().history.shape == (1, 3) and len(m.versions()) == 1


@pytest.mark.slow
def test_the_report_of_an_immutable_model(run_cli, immutable, tmp_path):
    out = tmp_path / "live.html"
    res = run_cli("report", immutable, "--out", out)
    assert res.exit_code == 0 and "kalcoint live model" in out.read_text(encoding="utf-8"), res.stderr


def test_an_immutable_model_refuses_an_update(run_cli, immutable, new_rows):
    before = immutable.read_bytes()
    res = run_cli("update", immutable, "--prices", new_rows)
    one_line(res, 2, f"model file {immutable} cannot be read and written by this user")
    assert immutable.read_bytes() == before


def test_a_model_on_a_read_only_mount_is_read(run_cli, tmp_path, model_file):
    if not ROOT:
        pytest.skip("mounting needs root")
    with tmpfs(tmp_path / "ro", "4m") as mount:
        shutil.copyfile(model_file, mount / "m.kcm")
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        res = run_cli("status", mount / "m.kcm", "--json", "-")
        assert res.exit_code == 0 and json.loads(res.stdout)["steps"] == N0, res.stderr


def test_an_immutable_model_with_an_interrupted_update_says_so(tmp_path, model_file):
    if not ROOT or shutil.which("chattr") is None:
        pytest.skip("chattr +i needs root and chattr")
    code = (
        "import os, sqlite3, sys\n"
        "con = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "con.execute('PRAGMA cache_size = 1')\n"
        "con.execute('BEGIN IMMEDIATE')\n"
        "con.execute(\"UPDATE steps SET applied_at = applied_at || 'x'\")\n"
        "os.kill(os.getpid(), 9)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(model_file)], timeout=60)
    journal = Path(f"{model_file}-journal")
    assert journal.stat().st_size > 0
    subprocess.run(["chattr", "+i", str(model_file)], check=True)
    try:
        with pytest.raises(KalcointError, match=r"interrupted update \(its journal m.kcm-journal\)"):
            live.load_model(model_file)
    finally:
        subprocess.run(["chattr", "-i", str(model_file)], check=False)
    assert live.load_model(model_file).steps == N0 and not journal.exists()  # writable again: rolled back


# ---------------------------------------------------------------- the rows' checksum, the lock timeout


def change_a_digit(path: Path, step: int) -> None:
    con = sqlite3.connect(path, isolation_level=None)
    (prices,) = con.execute("SELECT prices FROM steps WHERE step = ?", (step,)).fetchone()
    digit = next(c for c in prices if c.isdigit() and c != "9")
    con.execute("UPDATE steps SET prices = ? WHERE step = ?", (prices.replace(digit, str(int(digit) + 1), 1), step))
    con.close()


def test_a_changed_digit_in_a_stored_row_is_damage(run_cli, model_file, new_rows):
    change_a_digit(model_file, 123)
    with pytest.raises(KalcointError, match=f"the stored rows 1 to {N0} do not match their checksum"):
        live.load_model(model_file)
    before = model_file.read_bytes()
    one_line(run_cli("status", model_file), 2, f"model file {model_file} is damaged")
    one_line(run_cli("update", model_file, "--prices", new_rows), 2, "is damaged", "checksum")
    assert model_file.read_bytes() == before


def test_a_file_without_a_checksum_gets_one_in_its_first_update(model_file, demo):
    con = sqlite3.connect(model_file, isolation_level=None)
    con.execute("DELETE FROM meta WHERE key = 'steps_sha256'")
    con.close()
    m = live.load_model(model_file)
    m.update(demo.iloc[N0 : N0 + 3])
    con = sqlite3.connect(model_file)
    stored = json.loads(con.execute("SELECT value FROM meta WHERE key = 'steps_sha256'").fetchone()[0])
    con.close()
    assert stored["steps"] == N0 + 3
    change_a_digit(model_file, 2)
    with pytest.raises(KalcointError, match="do not match their checksum"):
        live.load_model(model_file)


@pytest.mark.parametrize("value", ["-1", "nan", "inf"])
def test_lock_timeout_must_be_a_finite_number_of_seconds(run_cli, model_file, new_rows, value):
    before = model_file.read_bytes()
    one_line(
        run_cli("update", model_file, "--prices", new_rows, "--lock-timeout", value),
        2,
        f"--lock-timeout {value} must be a finite number of seconds >= 0",
    )
    one_line(run_cli("status", model_file, "--lock-timeout", value), 2, f"--lock-timeout {value} must be")
    assert model_file.read_bytes() == before
    with pytest.raises(KalcointError, match="lock_timeout=-1 must be"):
        live.load_model(model_file, lock_timeout=-1)


@pytest.mark.parametrize("command", ["status", "versions"])
def test_a_reading_command_names_its_own_lock_timeout(run_cli, model_file, command):
    holder = sqlite3.connect(model_file, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another writer in the middle of its commit
    try:
        res = run_cli(command, model_file, "--lock-timeout", "0.2")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    one_line(res, 2, f"model file {model_file} is locked by another update (waited --lock-timeout 0.2 s)")


# ---------------------------------------------------------------- price files that are not plain files


def test_a_fifo_of_prices_is_read_to_its_end(tmp_path, price_csv):
    fifo = tmp_path / "prices.fifo"
    os.mkfifo(fifo)
    got = read_from_fifo(fifo, price_csv.read_bytes(), lambda: load_prices(fifo, ["ETFA", "ETFB"]))
    assert isinstance(got, pd.DataFrame), got
    pd.testing.assert_frame_equal(got, load_prices(price_csv, ["ETFA", "ETFB"]))


def test_a_pipe_is_read_as_a_process_substitution_is(price_csv):
    read, write = os.pipe()
    payload = price_csv.read_bytes()

    def feed() -> None:
        with os.fdopen(write, "wb") as fh:
            fh.write(payload)

    worker = threading.Thread(target=feed, daemon=True)
    worker.start()
    try:
        got = load_prices(f"/dev/fd/{read}", ["ETFA", "ETFC"])
    finally:
        os.close(read)
        worker.join(timeout=5)
    assert got.shape == (N0, 2) and got.iloc[-1].tolist() == load_prices(price_csv, ["ETFA", "ETFC"]).iloc[-1].tolist()


def test_dev_stdin_fed_by_a_pipe_is_read_as_a_stream(price_csv):
    code = "import kalcoint.data as d; print(d.load_prices('/dev/stdin', ['ETFA', 'ETFB']).shape)"
    done = subprocess.run([sys.executable, "-c", code], input=price_csv.read_bytes(), capture_output=True, timeout=120)
    assert done.returncode == 0 and done.stdout.decode().strip() == f"({N0}, 2)", done.stderr.decode()


@needs_root
def test_a_device_is_refused_by_name(tmp_path):
    zero = char_device(tmp_path, "zero", 5)  # endless: reading it to its end would never end
    with pytest.raises(KalcointError, match=f"{zero}: a device .* not a price file"):
        load_prices(zero)


def test_a_huge_field_is_one_line_naming_the_line(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("Date," + "A" * 10_000_000 + ",B\n2020-01-01,1,2\n")
    with pytest.raises(KalcointError, match=r"big.csv: line 1 cannot be read as CSV \(field larger than"):
        load_prices(path)
    path.write_text("Date,A,B\n2020-01-01,1,2\n2020-01-02,1," + "2" * 200_000 + "\n")
    with pytest.raises(KalcointError, match=r"big.csv: line 3 cannot be read as CSV"):
        load_prices(path)


@pytest.mark.parametrize(("row", "fields"), [("2020-01-03,1,2,3", 4), ("2020-01-03,1", 2)])
def test_a_ragged_row_is_refused_naming_its_line(tmp_path, row, fields):
    lines = ["Date,A,B"] + [f"2020-01-{d:02d},{d},{d * 2 + 1}" for d in (1, 2)] + [row, "2020-01-04,4,9"]
    path = tmp_path / "ragged.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(KalcointError) as info:
        live.read_rows(path, ["A", "B"])
    assert str(info.value) == (
        f"{path}: line 4 has {fields} fields but the header has 3; make every row the same width as the header"
    )

"""The SQLite store of a model file: its schema, migrations, locking, transactions, damaged or
locked files and the checksum of its rows. It stores JSON text and rows; it knows nothing of
filters, rules or estimates (those are :mod:`kalcoint.live`'s and :mod:`kalcoint.engine`'s).

The file is an SQLite database in rollback-journal mode (``journal_mode=DELETE``,
``synchronous=FULL``) with ``PRAGMA application_id`` = 0x6B63_6C6D "kclm" and ``PRAGMA
user_version`` = :data:`SCHEMA_VERSION`; its tables are described in :mod:`kalcoint.live`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ._io import to_jsonable
from .errors import KalcointError

Hook = Callable[[int, str], None]
"""``hook(i, label)``: called before write statement i of an update (a test seam)."""

SCHEMA_VERSION = 3
READABLE_SCHEMAS = (1, 2, 3)
APPLICATION_ID = 0x6B636C6D  # "kclm"
FORMAT = "kalcoint-live-model"

_VERSIONS_TABLE = """
CREATE TABLE versions (
    id INTEGER PRIMARY KEY,
    effective_date TEXT,
    window_first TEXT NOT NULL,
    window_last TEXT NOT NULL,
    method TEXT NOT NULL,
    model TEXT,
    loglik REAL,
    degenerate INTEGER NOT NULL,
    reasons TEXT NOT NULL,
    outcome TEXT NOT NULL,
    created_at TEXT NOT NULL
)"""

_SCHEMA = (
    """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    step INTEGER NOT NULL,
    date TEXT NOT NULL,
    state TEXT NOT NULL,
    cov TEXT NOT NULL,
    long_leg INTEGER NOT NULL,
    short_leg INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    engine TEXT
);
CREATE TABLE steps (
    step INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('tune', 'update')),
    date TEXT NOT NULL UNIQUE,
    prices TEXT NOT NULL,
    state TEXT NOT NULL,
    innovation REAL,
    innovation_var REAL,
    zscore REAL,
    spread REAL NOT NULL,
    units REAL NOT NULL,
    applied_at TEXT NOT NULL,
    version INTEGER
);
"""
    + _VERSIONS_TABLE
    + ";"
)

_INSERT_STEP = (
    "INSERT INTO steps (step, kind, date, prices, state, innovation, innovation_var, zscore, spread, units, "
    "applied_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPDATE_HEAD = (
    "UPDATE head SET step = ?, date = ?, state = ?, cov = ?, long_leg = ?, short_leg = ?, updated_at = ?, "
    "version = ?, engine = ? WHERE id = 1"
)
_INSERT_VERSION = (
    "INSERT INTO versions (id, effective_date, window_first, window_last, method, model, loglik, degenerate, "
    "reasons, outcome, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

_INSERT_HEAD = (
    "INSERT INTO head (id, step, date, state, cov, long_leg, short_leg, updated_at, version, engine) "
    "VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

UPDATE_STATEMENTS = ("begin", "read_head", "insert_versions", "insert_steps", "update_head", "commit", "committed")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _dumps(values: Any) -> str:
    """JSON of floats written with ``repr`` (exact float64 round trip)."""
    return json.dumps(to_jsonable(values), allow_nan=False)


def _vector(text: str) -> np.ndarray:
    return np.array(json.loads(text), dtype=np.float64)


# ---------------------------------------------------------------- errors of the file itself


def _locked(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _damaged(path: Path, exc: BaseException | str) -> KalcointError:
    return KalcointError(
        f"model file {path} is damaged ({' '.join(str(exc).split())}); it was not changed: "
        "restore it from a backup, or re-create it with save_model()"
    )


def _busy(path: Path, lock_timeout: float, write: bool = True) -> KalcointError:
    # a read waits the default time (readers have no lock_timeout to name); an update names it
    waited = f"lock_timeout={lock_timeout:g} s" if write else f"{lock_timeout:g} s"
    return KalcointError(
        f"model file {path} is locked by another update (waited {waited}); try again when it has finished"
    )


def _check_lock_timeout(lock_timeout: Any) -> float:
    ok = isinstance(lock_timeout, (int, float)) and not isinstance(lock_timeout, bool)
    if not (ok and math.isfinite(lock_timeout) and lock_timeout >= 0):
        shown = f"{lock_timeout:g}" if ok else repr(lock_timeout)
        raise KalcointError(f"lock_timeout={shown} must be a finite number of seconds >= 0")
    return float(lock_timeout)


@contextmanager
def _sqlite_errors(path: Path, lock_timeout: float) -> Iterator[None]:
    """Turn SQLite's errors into one line: locked by another process, or a damaged file."""
    try:
        yield
    except sqlite3.Error as exc:
        if _locked(exc):
            raise _busy(path, lock_timeout) from None
        raise _damaged(path, exc) from None


def _connect(path: Path, timeout: float, *, write: bool = True) -> sqlite3.Connection:
    """Open an existing model file (never creates one); autocommit mode, explicit transactions.

    ``write=False`` needs read access only: a file that cannot be written (permissions, an
    immutable file, a read-only mount) is opened read-only; one that can is opened read-write,
    so that a leftover journal of an interrupted update is rolled back as it is opened."""
    if not path.exists():
        raise KalcointError(f"model file {path} does not exist; create one with save_model()")
    if path.is_dir():
        raise KalcointError(f"model file {path} is a directory; give the path of a model file")
    if write and not os.access(path, os.R_OK | os.W_OK):
        raise KalcointError(f"model file {path} cannot be read and written by this user; check its permissions")
    if not os.access(path, os.R_OK):
        raise KalcointError(f"model file {path} cannot be read by this user; check its permissions")
    writable = write or (os.access(path, os.W_OK) and os.access(path.resolve().parent, os.W_OK))
    try:
        con = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode={'rw' if writable else 'ro'}",
            uri=True,
            timeout=timeout,
            isolation_level=None,
        )
        con.execute("PRAGMA synchronous = FULL")
        if not writable:
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()  # a leftover journal shows here
    except sqlite3.Error as exc:
        if "not a database" in str(exc):
            raise _not_a_model(path, "not an SQLite database") from None
        if _locked(exc):
            raise _busy(path, timeout) from None
        if getattr(exc, "sqlite_errorname", "") == "SQLITE_READONLY_ROLLBACK":
            raise KalcointError(
                f"model file {path} holds an interrupted update (its journal {path.name}-journal) that "
                "must be rolled back before it can be read, which needs write access; open it once as a "
                "user who can write it and its directory"
            ) from None
        raise _damaged(path, exc) from None
    return con


def _not_a_model(path: Path, why: str) -> KalcointError:
    return KalcointError(f"{path} is not a usable kalcoint model file ({why}); create one with save_model()")


# ---------------------------------------------------------------- the rows' checksum

ROWS_CHECKSUM = "steps_sha256"
"""Meta key of the checksum of the stored rows: JSON ``{"steps": N, "sha256": hex}``, the SHA-256
of steps 1..N (every column, in step order). Files written before it have none; their first
update adds it in its transaction. Rows an older kalcoint appended are covered from the next
update on."""

_STEP_COLUMNS = (
    "step, kind, date, prices, state, innovation, innovation_var, zscore, spread, units, applied_at, version"
)


def _rows_sha256(con: sqlite3.Connection, upto: int | None = None) -> tuple[int, str]:
    """``(rows, hex digest)`` of the stored steps 1..``upto`` (all when None)."""
    digest = hashlib.sha256()
    rows = 0
    limit = "" if upto is None else f" WHERE step <= {int(upto)}"
    for row in con.execute(f"SELECT {_STEP_COLUMNS} FROM steps{limit} ORDER BY step"):
        digest.update(json.dumps(row).encode() + b"\n")  # repr floats: exact
        rows += 1
    return rows, digest.hexdigest()


def _check_rows(con: sqlite3.Connection, path: Path, meta: Mapping[str, str]) -> None:
    """Refuse a file whose stored rows no longer match their checksum (a changed digit in a
    price would feed the next re-estimation)."""
    if ROWS_CHECKSUM not in meta:
        return
    try:
        stored = json.loads(meta[ROWS_CHECKSUM])
        covered, expected = int(stored["steps"]), str(stored["sha256"])
    except (ValueError, TypeError, KeyError) as exc:
        raise _damaged(path, f"unreadable checksum of the stored rows: {exc}") from None
    rows, actual = _rows_sha256(con, covered)
    if (rows, actual) != (covered, expected):
        raise _damaged(path, f"the stored rows 1 to {covered} do not match their checksum")


def _store_checksum(con: sqlite3.Connection) -> None:
    """Record the checksum of every stored row (inside the open transaction)."""
    rows, digest = _rows_sha256(con)
    con.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
        (ROWS_CHECKSUM, _dumps({"steps": rows, "sha256": digest})),
    )


# ---------------------------------------------------------------- writing


def _run(
    con: sqlite3.Connection, i: int, sql: str, params: Any = None, many: bool = False, hook: Hook | None = None
) -> sqlite3.Cursor:
    """Statement ``i`` of an update (:data:`UPDATE_STATEMENTS`), ``hook(i, label)`` called first."""
    if hook is not None:
        hook(i, UPDATE_STATEMENTS[i])
    if many:
        return con.executemany(sql, params)
    return con.execute(sql, params or ())


def _begin(con: sqlite3.Connection, path: Path, lock_timeout: float, hook: Hook | None = None) -> None:
    """Open the write transaction (``BEGIN IMMEDIATE``: the write lock, waited for)."""
    try:
        _run(con, 0, "BEGIN IMMEDIATE", hook=hook)
    except sqlite3.OperationalError as exc:
        if _locked(exc):
            raise KalcointError(
                f"model file {path} is being updated by another process (waited "
                f"lock_timeout={lock_timeout:g} s); try again when it has finished"
            ) from None
        raise _damaged(path, exc) from None
    except sqlite3.DatabaseError as exc:
        raise _damaged(path, exc) from None


def _rollback_on_error(con: sqlite3.Connection, path: Path, exc: BaseException) -> None:
    if con.in_transaction:
        try:
            con.execute("ROLLBACK")
        except sqlite3.Error:
            pass
    if isinstance(exc, sqlite3.OperationalError) and _locked(exc):
        raise KalcointError(
            f"model file {path} is being read or updated by another process; nothing was applied, try again"
        ) from None
    if isinstance(exc, sqlite3.Error):
        raise KalcointError(f"cannot update model file {path}: {exc}; nothing was applied") from None


_MIGRATE_1_TO_3 = (
    "ALTER TABLE steps ADD COLUMN version INTEGER",
    "UPDATE steps SET version = 1",
    "ALTER TABLE head ADD COLUMN version INTEGER NOT NULL DEFAULT 1",
    "ALTER TABLE head ADD COLUMN engine TEXT",
    _VERSIONS_TABLE,
)


_MIGRATE_2_TO_3 = ("ALTER TABLE head ADD COLUMN engine TEXT",)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _begin_new_file(con: sqlite3.Connection, application_id: int, schema_version: int, schema: str) -> None:
    """Stamp a fresh SQLite file (application id, schema version, rollback journal), open its
    first transaction and create its tables (``schema``: statements separated by ``;``)."""
    con.execute(f"PRAGMA application_id = {application_id}")
    con.execute(f"PRAGMA user_version = {schema_version}")
    con.execute("PRAGMA journal_mode = DELETE")
    con.execute("BEGIN")
    for statement in schema.split(";"):
        if statement.strip():
            con.execute(statement)


def _create(
    path: Path, meta: Mapping[str, str], version_rows: list[tuple], step_rows: list[tuple], head_values: tuple
) -> None:
    """Build a new file at ``path`` (a fresh temporary file): the tables, the meta, the first
    versions, the rows and the head, and the rows' checksum, in one transaction."""
    con = sqlite3.connect(path, isolation_level=None)
    try:
        _begin_new_file(con, APPLICATION_ID, SCHEMA_VERSION, _SCHEMA)
        con.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", sorted(meta.items()))
        con.executemany(_INSERT_VERSION, version_rows)
        con.executemany(_INSERT_STEP, step_rows)
        con.execute(_INSERT_HEAD, head_values)
        _store_checksum(con)
        con.execute("COMMIT")
    finally:
        con.close()


def _migrate_tables(con: sqlite3.Connection, schema: int) -> None:
    """Upgrade the tables of a file of schema ``schema`` to :data:`SCHEMA_VERSION` inside the open
    transaction (the rows a migration adds are the caller's)."""
    for statement in _MIGRATE_2_TO_3 if schema >= 2 else _MIGRATE_1_TO_3:
        con.execute(statement)
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

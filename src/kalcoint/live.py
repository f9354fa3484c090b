"""Saved models for live use: save once, then feed the model one day (or a few) at a time.

A model file is an SQLite database (standard library ``sqlite3``) that holds the state of the
stepping engine (:mod:`kalcoint.engine`) after the last row fed: the version in force (a
filter's quantities, or the static Johansen weights), the filter's posterior state and
covariance, the rule's state (band legs; the linear rule's moving window and recent spreads),
the rule's settings, and a table of every step taken. Every model (``static``, ``chan``,
``seed``, ``mle``, ``em``, ``als``) trades every rule (``bands``, ``linear``).

The file's SQLite layer (schema, migrations, locking, transactions, damaged or locked files,
the rows' checksum) is :mod:`kalcoint._store`, which knows nothing of filters; this module is
the model: what the file's records mean and what a step does (through the engine).

Guarantees
----------
* Continuing is exact: the state is stored as JSON arrays of ``repr`` floats
  (exact float64 round trip), and an update runs the engine's driver over the rows
  (:func:`kalcoint.engine.drive`, the walk-forward backtest's), so rows fed in any batches
  give the same states and units as one batch over the same rows.
* A refused batch changes nothing: every row of a batch is validated and the
  filter is run in memory *before* a write transaction is opened. The file is
  left byte-for-byte unchanged (no page is written; not even its mtime moves).
* An update is one transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``) in SQLite's
  rollback-journal mode (``journal_mode=DELETE``, ``synchronous=FULL``): a crash
  or kill at any point leaves the old state or the new one; a leftover
  ``MODEL-journal`` file is rolled back by the next open. The rollback journal
  (not WAL) is used so the model file alone is always complete between updates
  (no ``-wal`` file holding committed data) and a read never writes to it. Reading
  needs read access only: a file that cannot be written (permissions, an immutable
  file, a read-only mount) is opened read-only.
* A changed row is found: the stored rows carry a checksum (meta ``steps_sha256``);
  a file whose rows no longer match it is reported as damaged, not fed onwards.
* Two updates at once: the second waits for the write lock up to
  ``lock_timeout`` seconds (then fails with a one-line error); once it holds the
  lock it re-reads the head and re-validates its rows against it, so it is
  refused (e.g. "date not after the last one") rather than applied twice.

Retuning (the method as its author runs it)
-------------------------------------------
A model saved with a retune policy (``retune="weekly"`` or ``"monthly"`` and ``window=N``)
is re-estimated by :func:`kalcoint.engine.drive`, the driver ``backtest(...,
retune=...)`` uses (the calendar of :mod:`kalcoint.schedule`): before the first row of a new calendar week (month), on the N rows
strictly before it, continuing the posterior ``(b, P)`` of the day before. The file keeps the
rows this needs (every row fed is a step). Every estimation is a *version* (``versions``
table); a step records the version it traded with. A failed re-estimation keeps the previous
version (outcome ``failed: <reason>``); a degenerate one is traded (``on_degenerate="use"``)
or skipped (``"keep"``, outcome ``degenerate: kept previous``). The re-estimation runs before
the write transaction and is written in the same transaction as the rows: a kill leaves the
old state or the new one, never a half-retuned file. The static model re-estimates its
Johansen weights on the schedule; Chan's filter keeps its quantities (a period only chooses the
linear rule's moving window again, as its walk-forward does).

Schema (``PRAGMA application_id`` = 0x6B63_6C6D "kclm", ``PRAGMA user_version``
= :data:`SCHEMA_VERSION`)::

    meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)
        format          'kalcoint-live-model'
        schema_version  '3'
        kalcoint_version, created_at (UTC ISO)
        method          'seed' | 'mle' | 'em' | ... | 'chan' | 'static'
        assets          JSON list of tickers, dependent asset first
        model           JSON StateSpaceModel.to_dict() of version 1 (alpha11, obs_var,
                        state_var, initial_state, initial_cov); null for static
        weights         JSON list (Johansen weights, k; static: version 1's) or null (chan)
        strategy        JSON {"strategy": "bands"|"linear", "entry": 1.0, "exit": 1.0
                        [, "lookback": N]}  (the rule, kalcoint.engine.Rule)
        tuning          JSON TunedModel.to_dict() (or Chan's settings)
        retune          JSON {"retune": "never"|"weekly"|"monthly", "window": N|null,
                        "method", "iterations", "tol", "options", "on_degenerate"}
        steps_sha256    JSON {"steps": N, "sha256": hex}: SHA-256 of steps 1..N (every
                        column, JSON per row, in step order), checked on load and before
                        a write; a file without it gets it in its first update
    head(id INTEGER PRIMARY KEY CHECK (id = 1),       -- one row: the current posterior
         step INTEGER, date TEXT, state TEXT (JSON k), cov TEXT (JSON k x k),
         long_leg INTEGER, short_leg INTEGER, updated_at TEXT,
         version INTEGER,                               -- the version the next row trades with
         engine TEXT)                                   -- JSON EngineState.to_dict(): the engine's state
    steps(step INTEGER PRIMARY KEY,                    -- 1, 2, ... every row ever fed
          kind TEXT ('tune' | 'update'), date TEXT UNIQUE, prices TEXT (JSON k),
          state TEXT (JSON k, posterior b_{t|t}; [] for static), innovation REAL,
          innovation_var REAL, zscore REAL, spread REAL, units REAL, applied_at TEXT,
          version INTEGER)                              -- the version the row traded with
    versions(id INTEGER PRIMARY KEY, effective_date TEXT (first row it trades; NULL until
          the next update after a manual retune), window_first TEXT, window_last TEXT,
          method TEXT, model TEXT (JSON quantities, or {"weights": [..]} for static; NULL
          when failed), loglik REAL, degenerate INTEGER, reasons TEXT (JSON list),
          outcome TEXT, created_at TEXT)

For the static model ``head.state`` and ``head.cov`` are ``[]`` (no filter) and the weights in
force are those of the head's version. ``innovation``/``innovation_var`` hold a filter's
``e_t``/``Q_t`` (static: the rule's deviation and squared scale) and ``zscore`` the rule's
signal (deviation / scale: ``e_t / sqrt(Q_t)`` for a filter's bands, the spread against its
moving mean and standard deviation otherwise; NULL while the window is not full). Units are
whole (-1, 0, 1) for bands and ``-zscore`` for linear.

Files of schema version 1 (before retuning) load as ``retune="never"`` with one version
(the saved quantities); files of schema 2 (before the head's ``rule``) load as they are. The
first update upgrades either to schema 3 inside its transaction.

Dates are ISO ``YYYY-MM-DD`` text (with a time if the data has one). The rows
of the sample the model was saved with are recorded as ``kind='tune'``: the engine's cold
start on them (:func:`kalcoint.engine.start_state`: the filter from its prior, the rule from
flat, so the units at save time are those a trader following the rule would hold; the static
model's bands stay flat, as its walk-forward starts); rows fed later are ``kind='update'``.
``head`` duplicates the last step's date and state; a load checks they agree.

Units: prices in the assets' currency; ``innovation`` ``e_t`` and ``spread``
in price units of asset 1, ``innovation_var`` ``Q_t`` its square; one unit of a filter's
portfolio holds one share of asset 1 and ``-b_j`` shares of asset j (posterior state of the
day), one unit of the static portfolio ``w_j`` shares of asset j.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import engine, schedule
from ._io import atomic_path, is_stream, to_jsonable
from .errors import ComputationError, KalcointError
from .filtering import FilterResult, StateSpaceModel, kalman_filter
from ._store import (
    _INSERT_STEP,
    _INSERT_VERSION,
    _UPDATE_HEAD,
    APPLICATION_ID,
    FORMAT,
    READABLE_SCHEMAS,
    SCHEMA_VERSION,
    UPDATE_STATEMENTS,
    _check_lock_timeout,
    _check_rows,
    _connect,
    _create,
    _damaged,
    _dumps,
    _fsync_dir,
    _locked,
    _migrate_tables,
    _not_a_model,
    _now,
    _rollback_on_error,
    _sqlite_errors,
    _store_checksum,
    _vector,
)
from ._store import ROWS_CHECKSUM as ROWS_CHECKSUM
from ._store import _begin as _store_begin
from ._store import _run as _store_run
from .schedule import Version

DEFAULT_STRATEGY: dict[str, Any] = {"strategy": "bands", "entry": 1.0, "exit": 1.0}
DEFAULT_MAX_JUMP = 0.25
"""Largest accepted absolute daily log return of any asset (0.25 is a 22% fall or a 28% rise)."""
DEFAULT_LOCK_TIMEOUT = 10.0
"""Seconds an update waits for another update of the same file to finish."""
PRICE_RTOL = 1e-9
"""Relative tolerance when ``since_last`` compares a re-fed row with the one recorded."""
GAP_BUSINESS_DAYS = 5
"""A batch whose rows skip more business days than this (a week) is applied with a warning."""
NEVER = {"retune": "never", "window": None, "on_degenerate": "use"}

_statement_hook: Callable[[int, str], None] | None = None
"""Test seam: called as ``hook(i, label)`` before write statement i of an update
(0 BEGIN, 1 read head, 2 insert versions, 3 insert steps, 4 update head, 5 COMMIT) and with
``(6, "committed")`` after the commit. ``None`` in normal use."""


def _run(con: sqlite3.Connection, i: int, sql: str, params: Any = None, many: bool = False) -> sqlite3.Cursor:
    return _store_run(con, i, sql, params, many, _statement_hook)


def _begin(con: sqlite3.Connection, path: Path, lock_timeout: float) -> None:
    _store_begin(con, path, lock_timeout, _statement_hook)


# ---------------------------------------------------------------- small helpers


_day = schedule.day


def _check_strategy(strategy: Mapping[str, Any] | None, method: str = "") -> dict[str, Any]:
    """The rule a model trades (:class:`kalcoint.engine.Rule`), as its JSON record."""
    merged = {**DEFAULT_STRATEGY, "lookback": None, **(dict(strategy) if strategy else {})}
    unknown = sorted(set(merged) - {*DEFAULT_STRATEGY, "lookback"})
    if unknown:
        raise KalcointError(
            f"strategy settings {', '.join(unknown)} are not known; give strategy, entry, exit, lookback"
        )
    rule = engine.Rule(
        str(merged["strategy"]),
        float(merged["entry"]),
        float(merged["exit"]),
        None if merged["lookback"] is None else merged["lookback"],
    )
    if rule.lookback is not None and not rule.moving(method == "static"):
        raise KalcointError(
            f"lookback={rule.lookback} applies to strategy='linear' and to the static model's bands only"
        )
    record = rule.to_dict()
    if record["lookback"] is None:
        del record["lookback"]  # the record of a file of schema 2 (no moving window given)
    return record


def unit_shares(state: np.ndarray) -> np.ndarray:
    """Shares of one unit of the portfolio for a posterior state.

    Parameters
    ----------
    state : ndarray, shape (k,)
        Posterior state ``(level, b_2, ..., b_k)``.

    Returns
    -------
    ndarray, shape (k,)
        ``(1, -b_2, ..., -b_k)``.

    Examples
    --------
    >>> import numpy as np
    >>> unit_shares(np.array([0.5, 0.8, -0.3])).tolist()
    [1.0, -0.8, 0.3]
    """
    shares = -np.asarray(state, dtype=np.float64).copy()
    shares[0] = 1.0
    return shares


def target_shares(state: np.ndarray, prices: np.ndarray, units: float, capital: float | None) -> np.ndarray:
    """Target position in shares: ``units`` units of the portfolio.

    Parameters
    ----------
    state : ndarray, shape (k,)
        Posterior state (see :func:`unit_shares`).
    prices : ndarray, shape (k,)
        Prices the unit is valued at.
    units : float
        Units of the portfolio held.
    capital : float or None
        Gross dollar value ``sum_j |shares_j| p_j`` of one unit (unscaled when None).

    Returns
    -------
    ndarray, shape (k,)

    Examples
    --------
    >>> import numpy as np
    >>> target_shares(np.array([0.5, 0.8, -0.3]), np.array([10.0, 20.0, 5.0]), 2.0, 1000.0).round(4).tolist()
    [72.7273, -58.1818, 21.8182]
    """
    return units * _sized(unit_shares(state), prices, capital)


def _sized(shares: np.ndarray, prices: np.ndarray, capital: float | None) -> np.ndarray:
    """``shares`` of one unit, scaled so that its gross dollar value is ``capital`` (when given)."""
    if capital is not None:
        gross = float(np.sum(np.abs(shares) * np.asarray(prices, dtype=np.float64)))
        if not gross > 0:
            raise ComputationError("the portfolio's gross dollar value per unit is zero; cannot size a position")
        shares = shares * (capital / gross)
    return shares


# ---------------------------------------------------------------- the snapshot of a file


@dataclass(frozen=True)
class _Snapshot:
    """Everything read from a model file (the head, the last step, the version in use)."""

    method: str
    assets: list[str]
    model: StateSpaceModel | None  # the quantities of the version in use (None: static)
    weights: np.ndarray | None
    strategy: dict[str, Any]
    tuning: dict[str, Any]
    meta: dict[str, str]
    step: int
    date: str
    state: np.ndarray
    cov: np.ndarray
    long_leg: int
    short_leg: int
    updated_at: str
    prices: np.ndarray
    innovation: float
    innovation_var: float
    zscore: float
    spread: float
    units: float
    schema: int = SCHEMA_VERSION
    version: int = 1
    window_last: str | None = None  # last date of the in-use version's estimation window
    next_id: int = 2
    policy: dict[str, Any] = field(default_factory=lambda: dict(NEVER))
    last_version: Version | None = None
    static_weights: np.ndarray | None = None  # the weights in force (static model)
    engine_record: dict[str, Any] = field(default_factory=dict)  # the head's EngineState.to_dict()

    @property
    def last_date(self) -> pd.Timestamp:
        return pd.Timestamp(self.date)

    @property
    def static(self) -> bool:
        return self.method == "static"

    @property
    def rule(self) -> engine.Rule:
        return engine.Rule.from_dict(self.strategy)

    def engine_state(self) -> engine.EngineState:
        """The engine's state after the last row: the head's record (schema 3), or for an older
        file its columns (a filter trading bands: no moving window)."""
        if self.engine_record:
            return engine.EngineState.from_dict(self.engine_record)
        return engine.EngineState(
            version=self.version,
            window_last=self.window_last,
            next_id=self.next_id,
            model=None if self.static else self.model,
            weights=self.static_weights if self.static else None,
            b=None if self.static else self.state,
            P=None if self.static else self.cov,
            legs=(self.long_leg, self.short_leg),
        )

    def shares(self) -> np.ndarray:
        """(k,) shares of one unit after the last row."""
        if self.static:
            assert self.static_weights is not None
            return self.static_weights.copy()
        return unit_shares(self.state)


def _read_snapshot(con: sqlite3.Connection, path: Path) -> _Snapshot:
    try:
        app_id = con.execute("PRAGMA application_id").fetchone()[0]
        version = con.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.OperationalError as exc:
        if _locked(exc):
            raise
        raise _not_a_model(path, f"not an SQLite database: {exc}") from None
    except sqlite3.DatabaseError as exc:
        raise _not_a_model(path, f"not an SQLite database: {exc}") from None
    if app_id != APPLICATION_ID:
        raise _not_a_model(path, "no kalcoint application id")
    if version not in READABLE_SCHEMAS:
        raise KalcointError(
            f"model file {path} has schema version {version}; this kalcoint reads versions "
            f"{', '.join(map(str, READABLE_SCHEMAS))}: re-create it with save_model()"
        )
    try:
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        cols = (
            "step, date, state, cov, long_leg, short_leg, updated_at"
            + (", version" if version >= 2 else "")
            + (", engine" if version >= 3 else "")
        )
        head = con.execute(f"SELECT {cols} FROM head").fetchall()
        last = con.execute(
            "SELECT step, date, prices, state, innovation, innovation_var, zscore, spread, units FROM steps "
            "ORDER BY step DESC LIMIT 1"
        ).fetchall()
        snap = _snapshot_from(meta, head, last, path, version)
        return _with_versions(con, snap, path) if version >= 2 else snap
    except sqlite3.OperationalError as exc:
        if _locked(exc):
            raise
        raise _damaged(path, exc) from None
    except sqlite3.DatabaseError as exc:
        raise _damaged(path, exc) from None
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        if isinstance(exc, KalcointError):
            raise
        raise _not_a_model(path, f"corrupt: {type(exc).__name__}: {exc}") from None


def _snapshot_from(meta: dict[str, str], head: list[tuple], last: list[tuple], path: Path, schema: int) -> _Snapshot:
    if meta.get("format") != FORMAT:
        raise _not_a_model(path, "meta table has no kalcoint format tag")
    if len(head) != 1 or len(last) != 1:
        raise _not_a_model(path, "corrupt: the head or the steps table is empty")
    step, date, state, cov, long_leg, short_leg, updated_at = head[0][:7]
    l_step, l_date, prices, l_state, innov, innov_var, z, spread, units = last[0]
    strategy = {**DEFAULT_STRATEGY, **json.loads(meta["strategy"])}
    legs_agree = strategy["strategy"] != "bands" or units == long_leg + short_leg
    if (l_step, l_date, l_state) != (step, date, state) or not legs_agree:
        raise _not_a_model(
            path, f"corrupt: head (step {step}, {date}) disagrees with the last step (step {l_step}, {l_date})"
        )
    assets = json.loads(meta["assets"])
    weights = json.loads(meta["weights"])
    k = len(assets)
    static = meta["method"] == "static"
    b, P = (np.empty(0), np.empty((0, 0))) if static else (_vector(state), _vector(cov).reshape(k, k))
    saved_model = json.loads(meta["model"])
    tuning = json.loads(meta["tuning"])
    policy = json.loads(meta["retune"]) if "retune" in meta else {**NEVER, "method": meta["method"]}
    return _Snapshot(
        method=meta["method"],
        assets=assets,
        model=None if static else StateSpaceModel.from_dict(saved_model),
        weights=None if weights is None else np.array(weights, dtype=np.float64),
        strategy=strategy,
        tuning=tuning,
        meta=meta,
        step=int(step),
        date=date,
        state=b,
        cov=P,
        long_leg=int(long_leg),
        short_leg=int(short_leg),
        updated_at=updated_at,
        prices=_vector(prices),
        innovation=_real(innov),
        innovation_var=_real(innov_var),
        zscore=_real(z),
        spread=float(spread),
        units=int(units) if strategy["strategy"] == "bands" else float(units),
        schema=schema,
        version=int(head[0][7]) if len(head[0]) > 7 else 1,
        window_last=tuning.get("end_date"),
        policy=policy,
        static_weights=None if weights is None or not static else np.array(weights, dtype=np.float64),
        engine_record=_engine_record(head[0][8] if len(head[0]) > 8 else None, int(step), b, long_leg, short_leg, path),
    )


def _engine_record(text: str | None, step: int, b: np.ndarray, long_leg: int, short_leg: int, path: Path) -> dict:
    """The head's engine state, checked against the head's columns (they are written together)."""
    if text is None:
        return {}
    record = json.loads(text)
    agree = record["legs"] == [long_leg, short_leg] and (
        record["b"] is None or np.array_equal(np.array(record["b"], dtype=np.float64), b)
    )
    if not agree:
        raise _not_a_model(path, f"corrupt: the head's engine state disagrees with its columns (step {step})")
    return dict(record)


def _real(value: Any) -> float:
    """A stored REAL (NULL, for a rule whose window is not yet full, reads as NaN)."""
    return math.nan if value is None else float(value)


_VERSION_COLUMNS = "id, effective_date, window_first, window_last, method, model, loglik, degenerate, reasons, outcome"


def _version_from_row(row: tuple) -> Version:
    vid, eff, first, last, method, model, loglik, degenerate, reasons, outcome = row
    estimate = None if model is None else json.loads(model)
    weights = None if estimate is None or "weights" not in estimate else tuple(float(w) for w in estimate["weights"])
    return Version(
        int(vid),
        eff,
        first,
        last,
        method,
        None if estimate is None or weights is not None else StateSpaceModel.from_dict(estimate),
        None if loglik is None else float(loglik),
        bool(degenerate),
        tuple(json.loads(reasons)),
        outcome,
        weights,
    )


def _with_versions(con: sqlite3.Connection, snap: _Snapshot, path: Path) -> _Snapshot:
    """Fill the in-use version's quantities and the version bookkeeping (schema 2)."""
    row = con.execute(f"SELECT {_VERSION_COLUMNS} FROM versions WHERE id = ?", (snap.version,)).fetchone()
    last = con.execute(f"SELECT {_VERSION_COLUMNS} FROM versions ORDER BY id DESC LIMIT 1").fetchone()
    if row is None or row[5] is None:
        raise _not_a_model(path, f"corrupt: the head's version {snap.version} has no quantities")
    in_use = _version_from_row(row)
    return _replace(
        snap,
        model=in_use.model,
        static_weights=None if in_use.weights is None else np.array(in_use.weights, dtype=np.float64),
        window_last=in_use.window_last,
        next_id=int(last[0]) + 1,
        last_version=_version_from_row(last),
    )


def _replace(snap: _Snapshot, **changes: Any) -> _Snapshot:
    from dataclasses import replace

    return replace(snap, **changes)


def _v1_version(snap: _Snapshot) -> Version:
    """The one version of a schema-1 file: the saved quantities."""
    t = snap.tuning
    return Version(
        1,
        None,
        str(t.get("start_date")),
        str(t.get("end_date")),
        snap.method,
        snap.model,
        t.get("loglik"),
        bool(t.get("degenerate", False)),
        tuple(t.get("degenerate_reasons", ())),
        schedule.OUTCOME_APPLIED,
    )


# ---------------------------------------------------------------- planning an update (no writes)


@dataclass(frozen=True)
class _Plan:
    """The rows of a batch, validated and run through the engine in memory, ready to be written."""

    dates: list[str]
    prices: np.ndarray  # (m, k)
    state: np.ndarray  # (m, k) posterior states ((m, 0) for static)
    innovation: np.ndarray
    innovation_var: np.ndarray
    spread: np.ndarray
    version: np.ndarray  # (m,) version each row traded with
    cov: np.ndarray | None  # (k, k) posterior covariance after the last row
    units: np.ndarray  # (m,)
    long_leg: int
    short_leg: int
    skipped: int
    versions: list[Version] = field(default_factory=list)  # made by this batch
    head_version: int = 1
    warnings: list[str] = field(default_factory=list)
    zscore: np.ndarray | None = None  # (m,) the rule's deviation / scale
    engine_state: dict[str, Any] = field(default_factory=dict)  # EngineState.to_dict() after the last row
    linear: bool = False

    @property
    def n(self) -> int:
        return len(self.dates)


def _empty_plan(snap: _Snapshot, skipped: int) -> _Plan:
    k = len(snap.assets)
    return _Plan(
        [],
        np.empty((0, k)),
        np.empty((0, k)),
        np.empty(0),
        np.empty(0),
        np.empty(0),
        np.empty(0, np.int64),
        None,
        np.empty(0, np.int64),
        snap.long_leg,
        snap.short_leg,
        skipped,
        head_version=snap.version,
    )


def _plan_from(
    dates: list[str],
    prices: np.ndarray,
    out: engine.Steps,
    version: np.ndarray,
    state: engine.EngineState,
    rule: engine.Rule,
    skipped: int,
    **extra: Any,
) -> _Plan:
    """A plan from the engine's steps and the state after them."""
    m = len(dates)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = out.deviation / out.scale
    return _Plan(
        dates,
        prices,
        np.empty((m, 0)) if out.state is None else out.state,
        out.innovation,
        out.innovation_var,
        out.spread,
        version,
        None if state.static else state.P,
        out.units if rule.strategy == "linear" else out.units.astype(np.int64),
        state.legs[0],
        state.legs[1],
        skipped,
        head_version=state.version,
        zscore=np.where(np.isfinite(z), z, np.nan),
        engine_state=state.to_dict(),
        linear=rule.strategy == "linear",
        **extra,
    )


def _as_rows(rows: pd.DataFrame | pd.Series, assets: list[str], source: str) -> pd.DataFrame:
    """The batch as a float64 (m, k) frame in the model's asset order, indexed by dates."""
    if isinstance(rows, pd.Series):
        if rows.name is None:
            raise KalcointError(f"{source}: a single row needs its date as the Series name")
        rows = rows.to_frame().T
    if not isinstance(rows, pd.DataFrame) or len(rows) == 0:
        raise KalcointError(f"{source}: no rows to apply; give one row of prices per new date")
    missing = [a for a in assets if a not in rows.columns]
    if missing:
        raise KalcointError(
            f"{source}: missing asset(s) {', '.join(missing)}; the model trades "
            f"{', '.join(assets)}: give a price for each of them on every date"
        )
    index = _row_dates(rows, source)  # a bad date is named before a bad price
    return pd.DataFrame(_row_values(rows, assets, source), index=index, columns=assets)


def _row_dates(rows: pd.DataFrame, source: str) -> pd.DatetimeIndex:
    """The batch's dates (time zone dropped); refused unless its index holds dates."""
    try:
        with warnings.catch_warnings():  # text that is not a date: refused below, not warned about
            warnings.filterwarnings("ignore", "Could not infer format", UserWarning)
            index = pd.DatetimeIndex(pd.to_datetime(rows.index))
    except (ValueError, TypeError):
        raise KalcointError(f"{source}: the rows' index must hold dates (e.g. 2024-01-31)") from None
    if index.tz is not None:
        index = index.tz_localize(None)
    return index


def _row_values(rows: pd.DataFrame, columns: list[str], source: str) -> np.ndarray:
    """The batch's ``columns`` as float64 (m, len(columns)); refused if a price is not a number."""
    try:
        return rows[columns].apply(pd.to_numeric, errors="raise").to_numpy(dtype=np.float64)
    except (ValueError, TypeError):
        raise KalcointError(f"{source}: non-numeric price in the rows; prices must be plain numbers") from None


def _check_order(frame: pd.DataFrame, source: str) -> None:
    index = pd.DatetimeIndex(frame.index)
    steps = np.diff(index.asi8)
    if np.any(steps <= 0):
        i = int(np.argmax(steps <= 0)) + 1
        what = "duplicate date" if steps[i - 1] == 0 else "dates not in increasing order at"
        raise KalcointError(f"{source}: {what} {_day(index[i])}; give the rows once each, oldest first")
    days = index.normalize()
    same = np.flatnonzero(days[1:] == days[:-1])
    if same.size:
        i = int(same[0])
        raise KalcointError(
            f"{source}: two rows on one calendar day {days[i]:%Y-%m-%d} ({_day(frame.index[i])} "
            f"and {_day(frame.index[i + 1])}); a model takes one row per day (daily closes): "
            "no row was applied"
        )


def _check_after_last_day(new: pd.DataFrame, snap: _Snapshot, source: str) -> None:
    """A new row on the calendar day of the model's last row (an intraday time) is refused."""
    if pd.Timestamp(new.index[0]).normalize() == snap.last_date.normalize():
        raise KalcointError(
            f"{source}: row {_day(new.index[0])} is on the calendar day of the model's last row "
            f"{snap.date}; a model takes one row per day (daily closes): no row was applied"
        )


def _gap_warnings(new: pd.DataFrame, last_date: pd.Timestamp) -> list[str]:
    """One line per gap of more than a week of business days between consecutive rows."""
    days = np.array([last_date.normalize(), *pd.DatetimeIndex(new.index).normalize()], dtype="datetime64[D]")
    skipped = np.busday_count(days[:-1] + 1, days[1:])
    return [
        f"{int(g)} business days skipped between {days[i]} and {days[i + 1]} (more than a week)"
        for i, g in enumerate(skipped)
        if g > GAP_BUSINESS_DAYS
    ]


def _check_values(frame: pd.DataFrame, prev: np.ndarray, prev_date: str, max_jump: float, source: str) -> None:
    """Refuse a NaN, a non-positive price or a log return beyond ``max_jump`` (first offending cell)."""
    values = frame.to_numpy()
    for r, stamp in enumerate(frame.index):
        for c, asset in enumerate(frame.columns):
            p = values[r, c]
            if not math.isfinite(p):
                raise KalcointError(
                    f"{source}: price of {asset} on {_day(stamp)} is missing ({p}); fill it in, no row was applied"
                )
            if p <= 0:
                raise KalcointError(
                    f"{source}: price of {asset} on {_day(stamp)} is {p:g} <= 0; "
                    "prices must be positive, no row was applied"
                )
    before = np.vstack([prev[None, :], values[:-1]])
    dates = [prev_date] + [_day(d) for d in frame.index[:-1]]
    with np.errstate(divide="ignore", invalid="ignore"):
        jumps = np.abs(np.log(values / before))
    bad = ~(jumps <= max_jump)
    if bad.any():
        r, c = divmod(int(np.argmax(bad.ravel())), bad.shape[1])
        raise KalcointError(
            f"{source}: {frame.columns[c]} moves from {before[r, c]:g} on {dates[r]} to {values[r, c]:g} on "
            f"{_day(frame.index[r])} (|log return| {jumps[r, c]:.4g} > max jump {max_jump:g}); check the price, "
            f"or confirm it with max_jump={math.ceil(jumps[r, c] * 100) / 100:g}; no row was applied"
        )


def _split_applied(
    frame: pd.DataFrame, snap: _Snapshot, con: sqlite3.Connection | None, source: str, since_last: bool
) -> tuple[pd.DataFrame, int]:
    """Drop the rows already applied (``since_last``) after checking they match the recorded ones."""
    old = frame.index <= snap.last_date
    if not old.any():
        return frame, 0
    if not since_last:
        first = frame.index[int(np.argmax(old))]
        raise KalcointError(
            f"{source}: row {_day(first)} is not after the model's last date {snap.date}; "
            "give only new rows, or since_last=True to skip rows already applied"
        )
    if con is not None:
        _check_recorded(frame[old], con, source)
    return frame[~old], int(old.sum())


def _check_recorded(old: pd.DataFrame, con: sqlite3.Connection, source: str) -> None:
    recorded = dict(con.execute("SELECT date, prices FROM steps").fetchall())
    first = con.execute("SELECT MIN(date) FROM steps").fetchone()[0]
    for stamp, row in old.iterrows():
        day = _day(pd.Timestamp(stamp))  # type: ignore[arg-type]
        if day in recorded:
            had = _vector(recorded[day])
            if not np.allclose(row.to_numpy(), had, rtol=PRICE_RTOL, atol=0.0):
                raise KalcointError(
                    f"{source}: row {day} differs from the prices applied on that date "
                    f"({_dumps(had)}); the filter cannot be rewound: re-tune, or fix the file"
                )
        elif day >= first:
            raise KalcointError(
                f"{source}: row {day} is older than the model's last date but was never applied; "
                "the filter cannot go back: remove the row"
            )


@dataclass(frozen=True)
class Resume:
    """A saved model ready to continue through :func:`kalcoint.engine.drive`.

    Attributes
    ----------
    history : DataFrame, shape (h, k)
        Its last rows (every row for a rule on moving statistics; else the estimation window,
        or the last row).
    spread : ndarray, shape (h,)
        Their traded spreads.
    state : kalcoint.engine.EngineState
        The engine's state after the last row.
    rule : kalcoint.engine.Rule
    period, window, fit, method, on_degenerate, estimated :
        The retune policy (``period`` None for ``never``; ``estimated`` False: never
        re-estimated, the period only chooses the moving window again).

    Examples
    --------
    >>> import os, tempfile
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> path = os.path.join(tempfile.mkdtemp(), "chan.kcm")
    >>> r = kc.live.save_chan_model(path, p.iloc[:1000]).resume()
    >>> r.period is None, r.history.shape
    (True, (1, 3))
    """

    history: pd.DataFrame
    spread: np.ndarray
    state: engine.EngineState
    rule: engine.Rule
    period: str | None
    window: int | None
    fit: schedule.Fit | None
    method: str
    on_degenerate: str
    estimated: bool = True

    @property
    def legs(self) -> tuple[int, int]:
        return self.state.legs


def _policy_fit(policy: Mapping[str, Any], snap: _Snapshot) -> schedule.Fit | None:
    """The re-estimation of a model: None when it is never re-estimated."""
    if policy.get("retune", "never") == "never" or snap.method == "chan":
        return None
    if snap.static:
        options = policy.get("options") or {}
        return engine.static_fit(int(options.get("det_order", 0)), int(options.get("k_ar_diff", 1)))
    return schedule.tuning_fit(
        policy["method"], policy.get("iterations"), policy.get("tol"), policy.get("options") or {}
    )


def _resume(snap: _Snapshot, con: sqlite3.Connection) -> Resume:
    policy = snap.policy
    period = None if policy.get("retune", "never") == "never" else str(policy["retune"])
    window = None if period is None else int(policy["window"])
    rule = snap.rule
    every = rule.moving(snap.static)
    limit = -1 if every else (window or 1)
    rows = con.execute("SELECT date, prices, spread FROM steps ORDER BY step DESC LIMIT ?", (limit,)).fetchall()[::-1]
    history = pd.DataFrame(
        np.array([json.loads(r[1]) for r in rows], dtype=np.float64),
        index=pd.DatetimeIndex([r[0] for r in rows]),
        columns=snap.assets,
    )
    fit = _policy_fit(policy, snap)
    return Resume(
        history,
        np.array([r[2] for r in rows], dtype=np.float64),
        snap.engine_state(),
        rule,
        period,
        window,
        fit,
        str(policy.get("method", snap.method)),
        str(policy.get("on_degenerate", "use")),
        fit is not None,
    )


def _plan(
    snap: _Snapshot,
    frame: pd.DataFrame,
    source: str,
    max_jump: float,
    since_last: bool,
    con: sqlite3.Connection,
) -> _Plan:
    """Validate every row and run the engine on the batch in memory; raise before anything is written."""
    _check_order(frame, source)
    new, skipped = _split_applied(frame, snap, con, source, since_last)
    if len(new) == 0:
        return _empty_plan(snap, skipped)
    _check_after_last_day(new, snap, source)
    _check_values(new, snap.prices, snap.date, max_jump, source)
    resume = _resume(snap, con)
    rows = pd.concat([resume.history, new])
    run = engine.drive(
        rows,
        len(resume.history),
        resume.state,
        resume.rule,
        retune=resume.period,
        window=resume.window,
        fit=resume.fit,
        method=resume.method,
        on_degenerate=resume.on_degenerate,
        spread_before=resume.spread,
        estimated=resume.estimated,
    )
    out = run.steps
    if out.state is not None and not (np.all(np.isfinite(out.state)) and np.all(np.isfinite(np.asarray(run.state.P)))):
        raise ComputationError(f"{source}: the filter gave non-finite states; no row was applied")
    return _plan_from(
        [_day(d) for d in new.index],
        new.to_numpy(),
        out,
        run.version,
        run.state,
        resume.rule,
        skipped,
        versions=list(run.versions),
        warnings=_gap_warnings(new, snap.last_date),
    )


def _step_rows(first_step: int, kind: str, plan: _Plan, when: str) -> list[tuple]:
    z = plan.innovation / np.sqrt(plan.innovation_var) if plan.zscore is None else plan.zscore
    return [
        (
            first_step + t,
            kind,
            plan.dates[t],
            _dumps(plan.prices[t]),
            _dumps(plan.state[t]),
            _stored(plan.innovation[t]),
            _stored(plan.innovation_var[t]),
            _stored(z[t]),
            float(plan.spread[t]),
            float(plan.units[t]) if plan.linear else int(plan.units[t]),
            when,
            int(plan.version[t]),
        )
        for t in range(plan.n)
    ]


def _stored(x: float) -> float | None:
    """A REAL to store: NULL for NaN (a rule's window not yet full)."""
    return float(x) if math.isfinite(x) else None


def _head_values(first_step: int, plan: _Plan, when: str) -> tuple:
    return (
        first_step + plan.n - 1,
        plan.dates[-1],
        _dumps(plan.state[-1]),
        _dumps(plan.cov),
        plan.long_leg,
        plan.short_leg,
        when,
        plan.head_version,
        _dumps(plan.engine_state),
    )


def _version_rows(versions: Sequence[Version], when: str) -> list[tuple]:
    return [
        (
            v.id,
            v.effective_date,
            v.window_first,
            v.window_last,
            v.method,
            _estimate_json(v),
            v.loglik,
            int(v.degenerate),
            _dumps(list(v.reasons)),
            v.outcome,
            when,
        )
        for v in versions
    ]


def _estimate_json(v: Version) -> str | None:
    """The estimate of a version as stored: the filter quantities, or the static weights."""
    if v.weights is not None:
        return _dumps({"weights": list(v.weights)})
    return None if v.model is None else _dumps(v.model.to_dict())


# ---------------------------------------------------------------- writing


def _migrate(con: sqlite3.Connection, snap: _Snapshot, when: str) -> _Snapshot:
    """Upgrade an older file to the current schema inside the open transaction (schema 1: retune
    never, version 1; schema 2: the head gains the rule's state)."""
    _migrate_tables(con, snap.schema)
    if snap.schema >= 2:
        return _replace(snap, schema=SCHEMA_VERSION)
    v1 = _v1_version(snap)
    con.executemany(_INSERT_VERSION, _version_rows([v1], when))
    con.execute("INSERT INTO meta (key, value) VALUES ('retune', ?)", (_dumps({**NEVER, "method": snap.method}),))
    return _replace(snap, schema=SCHEMA_VERSION, last_version=v1)


def _write_update(
    con: sqlite3.Connection,
    path: Path,
    snap: _Snapshot,
    plan: _Plan,
    frame: pd.DataFrame,
    source: str,
    max_jump: float,
    since_last: bool,
    lock_timeout: float,
) -> tuple[_Snapshot, _Plan]:
    """Apply ``plan`` in one transaction; if another update committed first, re-plan against it."""
    _begin(con, path, lock_timeout)
    try:
        step, date = _run(con, 1, "SELECT step, date FROM head").fetchone()
        fresh = _read_snapshot(con, path)
        _check_rows(con, path, fresh.meta)
        if (step, date, fresh.version, fresh.next_id) != (snap.step, snap.date, snap.version, snap.next_id):
            snap = fresh
            plan = _plan(snap, frame, source, max_jump, since_last, con)
        if plan.n == 0:
            con.execute("ROLLBACK")
            return snap, plan
        when = _now()
        if snap.schema < SCHEMA_VERSION:
            snap = _migrate(con, snap, when)
        _run(con, 2, _INSERT_VERSION, _version_rows(plan.versions, when), many=True)
        con.execute(
            "UPDATE versions SET effective_date = ? WHERE effective_date IS NULL AND id < ?",
            (plan.dates[0], snap.next_id),
        )
        _run(con, 3, _INSERT_STEP, _step_rows(snap.step + 1, "update", plan, when), many=True)
        _run(con, 4, _UPDATE_HEAD, _head_values(snap.step + 1, plan, when))
        _store_checksum(con)
        _run(con, 5, "COMMIT")
    except BaseException as exc:
        _rollback_on_error(con, path, exc)
        raise
    if _statement_hook is not None:
        _statement_hook(6, UPDATE_STATEMENTS[6])
    return _read_snapshot(con, path), plan


def _create_file(
    path: Path,
    *,
    method: str,
    assets: list[str],
    model: StateSpaceModel | None,
    weights: np.ndarray | None,
    plan: _Plan,
    strategy: dict[str, Any],
    tuning: dict[str, Any],
    policy: dict[str, Any],
    first: Version,
) -> None:
    """Build the file at ``path`` (a fresh temporary file) with the rows of ``plan`` as kind='tune'."""
    when = _now()
    from . import __version__

    meta = {
        "format": FORMAT,
        "schema_version": str(SCHEMA_VERSION),
        "kalcoint_version": __version__,
        "created_at": when,
        "method": method,
        "assets": _dumps(assets),
        "model": _dumps(None if model is None else model.to_dict()),
        "weights": _dumps(None if weights is None else np.asarray(weights, dtype=np.float64)),
        "strategy": _dumps(strategy),
        "tuning": _dumps(tuning),
        "retune": _dumps(policy),
    }
    _create(path, meta, _version_rows([first], when), _step_rows(1, "tune", plan, when), _head_values(1, plan, when))


def _initial_plan(
    frame: pd.DataFrame, fit: schedule.Fit, rule: engine.Rule, *, method: str, on_degenerate: str
) -> tuple[Version, _Plan]:
    """The engine's cold start on the saved rows, and those rows as steps: the filter run over them
    from its prior (static: the Johansen portfolio), the rule run from flat (the static model's
    bands stay flat, as its walk-forward starts)."""
    version, state, warm, _ = engine.start_state(frame, fit, rule, method=method, on_degenerate=on_degenerate)
    p = frame.to_numpy(dtype=np.float64)
    n = p.shape[0]
    if warm is None:
        assert state.weights is not None
        spread, shares, states = engine.portfolio(p, state.weights), np.tile(state.weights, (n, 1)), None
    else:
        if not (np.all(np.isfinite(warm.filtered_state)) and np.all(np.isfinite(warm.filtered_cov))):
            raise ComputationError("the filter gave non-finite states on the saved sample; cannot save the model")
        spread, states = warm.spread, warm.filtered_state
        shares = -states.copy()
        shares[:, 0] = 1.0
    steps = engine.over_sample(
        spread,
        shares,
        rule,
        state.lookback,
        state=states,
        innovation=None if warm is None else warm.innovation,
        innovation_var=None if warm is None else warm.innovation_var,
        trade=not state.static,
    )
    return version, _plan_from([_day(d) for d in frame.index], p, steps, np.ones(n, np.int64), state, rule, 0)


def _sample(prices: pd.DataFrame, assets: list[str]) -> pd.DataFrame:
    """The saved sample in the model's asset order, checked (dates ascending, finite, last row positive)."""
    if not isinstance(prices, pd.DataFrame) or not isinstance(prices.index, pd.DatetimeIndex):
        raise KalcointError("save_model needs the tuning prices as a DataFrame indexed by dates")
    missing = [a for a in assets if a not in prices.columns]
    if missing:
        raise KalcointError(f"the prices lack the model's asset(s) {', '.join(missing)}")
    frame = prices[assets].astype(np.float64)
    index = pd.DatetimeIndex(frame.index)
    if index.tz is not None:
        frame.index = index.tz_localize(None)
    _check_order(frame, "save_model prices")
    if not np.all(np.isfinite(frame.to_numpy())):
        raise KalcointError("the prices to save hold NaN or infinite values; clean them first")
    if not np.all(frame.to_numpy()[-1] > 0):
        raise KalcointError(
            f"the last row ({_day(frame.index[-1])}) has a non-positive price; a live model needs positive prices"
        )
    return frame


def _save(
    path: str | os.PathLike[str],
    frame: pd.DataFrame,
    fit: schedule.Fit,
    *,
    strategy: dict[str, Any],
    policy: dict[str, Any],
    **kwargs: Any,
) -> LiveModel:
    """Cold-start the engine on ``frame`` with ``fit`` and write the model file atomically."""
    first, plan = _initial_plan(
        frame,
        fit,
        engine.Rule.from_dict(strategy),
        method=str(policy["method"]),
        on_degenerate=str(policy.get("on_degenerate", "use")),
    )
    target = Path(path)
    if is_stream(target):
        raise KalcointError(f"model file {target} is not a regular file; give the path of a new file")
    with atomic_path(target) as tmp:
        try:
            _create_file(tmp, plan=plan, strategy=strategy, policy=policy, first=first, **kwargs)
        except sqlite3.Error as exc:
            raise KalcointError(f"cannot write model file {target}: {exc}; it was not created") from None
    _fsync_dir(target.parent)
    return load_model(target)


# ---------------------------------------------------------------- public API


def retune_policy(
    retune: str = "never",
    window: int | None = None,
    *,
    method: str,
    iterations: int | None = 2000,
    tol: float | None = None,
    tune_options: Mapping[str, Any] | None = None,
    on_degenerate: str = "use",
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The checked retune policy stored in a model file (see the module doc).

    Parameters
    ----------
    retune : {"never", "weekly", "monthly"}
        When to re-estimate.
    window : int, optional
        Rows of each re-estimation (required with a retune policy).
    method : str
        The model: a tuning method, ``"static"`` (Johansen weights re-estimated) or ``"chan"``
        (never re-estimated: a period only chooses the linear rule's moving window again).
    iterations, tol, tune_options :
        What each re-estimation passes to :func:`kalcoint.tuning.tune` (the name ``backtest``
        and ``save_model`` use; stored as the policy's ``options``).
    on_degenerate : {"use", "keep"}
        Trade a degenerate re-estimation, or keep the previous model.
    options :
        Deprecated name of ``tune_options`` (a DeprecationWarning).

    Returns
    -------
    dict

    Examples
    --------
    >>> retune_policy("weekly", 250, method="mle")["window"]
    250
    """
    if options is not None:
        warnings.warn("options= is deprecated: use tune_options=", DeprecationWarning, stacklevel=2)
        if tune_options is not None:
            raise KalcointError("give tune_options (options is its deprecated name), not both")
        tune_options = options
    checked_window = schedule.check_policy(retune, window, on_degenerate)
    if iterations is not None and (isinstance(iterations, bool) or int(iterations) != iterations or iterations < 1):
        raise KalcointError(f"iterations={iterations} must be an integer >= 1")
    return {
        "retune": retune,
        "window": checked_window,
        "method": method,
        "iterations": None if iterations is None else int(iterations),
        "tol": tol,
        "options": to_jsonable(dict(tune_options or {})),
        "on_degenerate": on_degenerate,
    }


def save_model(
    path: str | os.PathLike[str],
    tuned: Any,
    prices: pd.DataFrame,
    *,
    strategy: Mapping[str, Any] | None = None,
    retune: str = "never",
    window: int | None = None,
    on_degenerate: str = "use",
    iterations: int | None = 2000,
    tol: float | None = None,
    tune_options: Mapping[str, Any] | None = None,
) -> LiveModel:
    """Write a new model file from a :class:`~kalcoint.tuning.TunedModel` and its tuning prices.

    The file is built in a temporary file beside ``path`` and moved onto it atomically
    (an existing file at ``path`` is replaced).

    Parameters
    ----------
    path : path-like
        The model file.
    tuned : TunedModel
        The tuned model.
    prices : DataFrame, shape (n, k)
        Indexed by dates, holding the tuned assets (other columns ignored). With
        ``retune="never"`` every row is recorded (kind='tune') with the filter run over it from
        the model's prior. With a retune policy, ``tuned`` must have been tuned on the last
        ``window`` rows of ``prices`` (as a walk-forward period is) and those rows are recorded.
    strategy : mapping, optional
        Bands settings, default ``{"strategy": "bands", "entry": 1.0, "exit": 1.0}``.
    retune, window, on_degenerate :
        The retune policy ("never", "weekly" or "monthly"; window in rows; "use" or "keep" a
        degenerate re-estimation).
    iterations, tol, tune_options :
        What each re-estimation passes to :func:`kalcoint.tuning.tune` (the seed options, ...).

    Returns
    -------
    LiveModel

    Examples
    --------
    >>> import os, tempfile
    >>> import kalcoint as kc
    >>> p = kc.demo_prices().iloc[:1000]
    >>> live = kc.save_model(os.path.join(tempfile.mkdtemp(), "mle.kcm"), kc.tune(p, method="mle"), p)
    >>> live.method, live.steps, round(live.model.alpha11, 4)
    ('mle', 1000, 0.9366)
    """
    assets = [str(a) for a in tuned.assets]
    policy = retune_policy(
        retune,
        window,
        method=str(tuned.method),
        iterations=iterations,
        tol=tol,
        tune_options=tune_options,
        on_degenerate=on_degenerate,
    )
    frame = _sample(prices, assets)
    if policy["window"] is not None:
        frame = _window_sample(frame, tuned, int(policy["window"]))
    est = schedule.estimate_from_tuned(tuned)
    if est.window_result is not None and (
        est.window_result.nobs != len(frame) or not np.array_equal(est.window_result.y, frame.to_numpy()[:, 0])
    ):
        est = replace(est, window_result=None)  # tuned on other rows: the filter runs over the saved ones

    return _save(
        path,
        frame,
        lambda w: est,
        method=str(tuned.method),
        assets=assets,
        model=tuned.model,
        weights=np.asarray(tuned.johansen.weights, dtype=np.float64),
        strategy=_check_strategy(strategy, str(tuned.method)),
        tuning=to_jsonable(tuned.to_dict()),
        policy=policy,
    )


def _window_sample(frame: pd.DataFrame, tuned: Any, window: int) -> pd.DataFrame:
    sample = _last_rows(frame, window)
    if int(tuned.nobs) != window or (tuned.end_date is not None and pd.Timestamp(tuned.end_date) != sample.index[-1]):
        raise KalcointError(
            f"the tuned model was fitted on {tuned.nobs} rows; with window={window} it must be "
            f"tuned on the last {window} rows of the prices (as a walk-forward period is)"
        )
    return sample


def _last_rows(frame: pd.DataFrame, window: int | None) -> pd.DataFrame:
    if window is None:
        return frame
    if len(frame) < window:
        raise KalcointError(f"window={window} is longer than the {len(frame)} rows of prices to save")
    return frame.iloc[-window:]


def _span(frame: pd.DataFrame) -> dict[str, Any]:
    """The saved rows' count and first and last dates, as a file's tuning record holds them."""
    return {"nobs": len(frame), "start_date": _day(frame.index[0]), "end_date": _day(frame.index[-1])}


def save_chan_model(
    path: str | os.PathLike[str],
    prices: pd.DataFrame,
    delta: float = 1e-4,
    state_var: float | None = None,
    obs_var: float = 1e-3,
    strategy: Mapping[str, Any] | None = None,
    *,
    retune: str = "never",
    window: int | None = None,
) -> LiveModel:
    """Write a model file for Chan's filter (docs/method.md §8) run over ``prices``.

    No Johansen weights are stored (``weights`` is None); the filter's quantities (delta or
    state_var, obs_var) are kept for ever. A retune period (``retune="weekly"`` or ``"monthly"``
    with ``window=N``) re-chooses the linear rule's moving window on the schedule, as the
    walk-forward backtest of ``chan`` does; the file then records the last ``window`` rows.

    Parameters
    ----------
    path : path-like
        The model file (written atomically).
    prices : DataFrame, shape (n, k)
        Indexed by dates; all its columns, the first the dependent asset.
    delta, state_var, obs_var : float
        Chan's filter (defaults 1e-4, -, 1e-3).
    strategy : mapping, optional
        The rule (see :func:`save_model`).
    retune, window :
        The period and its window (rows).

    Returns
    -------
    LiveModel

    Examples
    --------
    >>> import os, tempfile
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> path = os.path.join(tempfile.mkdtemp(), "chan.kcm")
    >>> live = save_chan_model(path, p.iloc[:1000])
    >>> live.steps, str(live.last_date.date())
    (1000, '2018-11-01')
    >>> live.hedge_ratios.round(4).tolist()
    [0.9022, 0.4215]
    """
    assets = [str(c) for c in prices.columns]
    policy = retune_policy(retune, window, method="chan", iterations=None)
    frame = _last_rows(_sample(prices, assets), policy["window"])
    model = StateSpaceModel.chan(len(assets), delta=delta, state_var=state_var, obs_var=obs_var)
    tuning = {
        "method": "chan",
        "delta": delta,
        "state_var": state_var,
        "obs_var": obs_var,
        **_span(frame),
    }
    return _save(
        path,
        frame,
        schedule.fixed_fit(model),
        method="chan",
        assets=assets,
        model=model,
        weights=None,
        strategy=_check_strategy(strategy, "chan"),
        tuning=tuning,
        policy=policy,
    )


def save_static_model(
    path: str | os.PathLike[str],
    prices: pd.DataFrame,
    strategy: Mapping[str, Any] | None = None,
    *,
    retune: str = "never",
    window: int | None = None,
    det_order: int = 0,
    k_ar_diff: int = 1,
) -> LiveModel:
    """Write a model file for the static Johansen portfolio (Chan's Examples 2.7 and 2.8).

    The weights are estimated on the saved rows (all of them, or the last ``window`` with a retune
    period) and, with ``retune="weekly"`` or ``"monthly"``, re-estimated on the schedule exactly as
    ``backtest(prices, "static", retune=..., window=...)`` does; the moving window of the
    rule (``round(half-life)`` of the spread, or ``lookback`` given in ``strategy``) is chosen at
    the same moments. The static model starts flat, as its walk-forward backtest does.

    Parameters
    ----------
    path : path-like
        The model file (written atomically).
    prices : DataFrame, shape (n, k)
        Indexed by dates; all its columns, the first the asset held long by one unit.
    strategy : mapping, optional
        ``{"strategy": "linear"}`` (Chan's 2.8) or bands with ``entry``, ``exit``; ``lookback``.
    retune, window :
        The period and its window (rows).
    det_order, k_ar_diff : int
        The Johansen test's deterministic terms and lags.

    Returns
    -------
    LiveModel

    Examples
    --------
    >>> import os, tempfile
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> path = os.path.join(tempfile.mkdtemp(), "static.kcm")
    >>> live = save_static_model(path, p.iloc[:1000], {"strategy": "linear"}, retune="weekly", window=250)
    >>> live.method, live.steps, bool(live.weights[0] > 0)
    ('static', 250, True)
    """
    assets = [str(c) for c in prices.columns]
    options = {"det_order": int(det_order), "k_ar_diff": int(k_ar_diff)}
    policy = retune_policy(retune, window, method="static", iterations=None, tune_options=options)
    frame = _last_rows(_sample(prices, assets), policy["window"])
    fit = engine.static_fit(det_order, k_ar_diff)
    weights = fit(frame).weights
    tuning = {
        "method": "static",
        **options,
        **_span(frame),
    }
    return _save(
        path,
        frame,
        fit,
        method="static",
        assets=assets,
        model=None,
        weights=weights,
        strategy=_check_strategy(strategy, "static"),
        tuning=tuning,
        policy=policy,
    )


def load_model(path: str | os.PathLike[str], *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> LiveModel:
    """Open a model file (checked: kalcoint file, schema version, SQLite quick_check, head = last step).

    Parameters
    ----------
    path : path-like
        The model file.
    lock_timeout : float
        Seconds to wait while another process writes it.

    Returns
    -------
    LiveModel

    Examples
    --------
    >>> import os, tempfile
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> path = os.path.join(tempfile.mkdtemp(), "chan.kcm")
    >>> _ = save_chan_model(path, p.iloc[:1000])
    >>> kc.load_model(path).steps
    1000
    """
    target = Path(path)
    lock_timeout = _check_lock_timeout(lock_timeout)
    con = _connect(target, lock_timeout, write=False)
    try:
        with _sqlite_errors(target, lock_timeout):
            snap = _read_snapshot(con, target)
            check = con.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise _damaged(target, check)
            _check_rows(con, target, snap.meta)
    finally:
        con.close()
    return LiveModel(target, snap, lock_timeout)


def open_saved_model(
    model: str | os.PathLike[str], assets: Sequence[str] | None = None, names: Sequence[str] = ()
) -> LiveModel:
    """Load the model file named by a model option, checking ``assets`` against the model's.

    Parameters
    ----------
    model : path-like
        The model file.
    assets : sequence of str, optional
        The tickers the caller trades (refused unless they are the model's).
    names : sequence of str
        The methods a caller takes by name instead of a file (for the error message).

    Returns
    -------
    LiveModel

    Examples
    --------
    >>> import os, tempfile
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> path = os.path.join(tempfile.mkdtemp(), "chan.kcm")
    >>> _ = save_chan_model(path, p.iloc[:1000])
    >>> open_saved_model(path, ["ETFA", "ETFB", "ETFC"]).assets
    ['ETFA', 'ETFB', 'ETFC']
    """
    path = Path(model)
    if not path.is_file():
        methods = f"; a method ({', '.join(names)}) is given as method=NAME" if names else ""
        raise KalcointError(f"model={str(model)!r} is not a model file{methods}")
    saved = load_model(path)
    if assets is not None and list(assets) != list(saved.assets):
        raise KalcointError(
            f"assets={','.join(assets)} differ from the saved model's {','.join(saved.assets)}; "
            "leave assets out to use the model's"
        )
    return saved


@dataclass(frozen=True)
class UpdateResult:
    """What an update applied and the model's position after it.

    Attributes
    ----------
    applied : int
        Number of rows fed.
    skipped : int
        Rows already applied (``since_last``).
    dates : the dates fed; steps : their rows (as in :meth:`LiveModel.history`).
    last : dict
        The last step (date, prices, state, hedge_ratios, spread, innovation, innovation_var,
        innovation_std, zscore, units).
    shares_per_unit : ndarray, shape (k,)
        Shares of one unit (scaled to ``capital`` when given).
    target_shares : ndarray, shape (k,)
        units x shares_per_unit.
    versions : list of kalcoint.schedule.Version
        The re-estimations this update made.
    version : int
        The version in use after it.
    warnings : list of str
        One line per gap of more than a week.

    Examples
    --------
    >>> import os, tempfile
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> path = os.path.join(tempfile.mkdtemp(), "chan.kcm")
    >>> res = save_chan_model(path, p.iloc[:1000]).update(p.iloc[1000:1005])
    >>> res.applied, round(res.last["zscore"], 4), res.last["units"]
    (5, -2.0036, 1)
    """

    applied: int
    skipped: int
    dates: list[str]
    steps: pd.DataFrame
    last: dict[str, Any]
    assets: list[str]
    capital: float | None
    shares_per_unit: dict[str, float]
    target_shares: dict[str, float]
    versions: list[Version] = field(default_factory=list)
    version: int = 1
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(
            {
                "applied": self.applied,
                "skipped": self.skipped,
                "dates": self.dates,
                "assets": self.assets,
                **self.last,
                "capital": self.capital,
                "shares_per_unit": self.shares_per_unit,
                "target_shares": self.target_shares,
                "version": self.version,
                "retunes": [v.to_dict() for v in self.versions],
                "warnings": self.warnings,
            }
        )


class LiveModel:
    """A model file opened for live use. Read with the properties; feed rows with :meth:`update`.

    The object holds a snapshot of the file's head as of its last load or update; every update
    re-checks the head inside its write transaction, so a stale snapshot never corrupts the file.
    Open one with :func:`load_model`, :func:`save_model` or :func:`save_chan_model`.

    Examples
    --------
    >>> import os, tempfile
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> path = os.path.join(tempfile.mkdtemp(), "chan.kcm")
    >>> live = save_chan_model(path, p.iloc[:1000])
    >>> live.update(p.iloc[1000:1005]).applied
    5
    >>> kc.load_model(path).steps
    1005
    """

    def __init__(self, path: Path, snap: _Snapshot, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        self.path = path
        self._snap = snap
        self._lock_timeout = lock_timeout

    def __repr__(self) -> str:
        return (
            f"LiveModel({str(self.path)!r}, method={self.method!r}, assets={self.assets}, "
            f"last_date={self._snap.date!r}, steps={self.steps}, version={self.version})"
        )

    # -- what the file holds
    @property
    def assets(self) -> list[str]:
        return list(self._snap.assets)

    @property
    def method(self) -> str:
        return self._snap.method

    @property
    def model(self) -> StateSpaceModel | None:
        """The filter quantities of the version in use (the next row is predicted with them;
        None for the static model)."""
        return self._snap.model

    @property
    def weights(self) -> np.ndarray | None:
        """(k,) Johansen weights: of the saved tuning, or for the static model the weights in force
        (None for Chan's filter)."""
        w = self._snap.static_weights if self._snap.static else self._snap.weights
        return None if w is None else w.copy()

    @property
    def rule(self) -> engine.Rule:
        """The trading rule (strategy, entry, exit, lookback)."""
        return self._snap.rule

    @property
    def engine_state(self) -> engine.EngineState:
        """The engine's state after the last row (:class:`kalcoint.engine.EngineState`)."""
        return self._snap.engine_state()

    @property
    def state(self) -> np.ndarray:
        """(k,) posterior state ``b_{t|t}`` after the last row (level, then hedge ratios; empty for
        the static model)."""
        return self._snap.state.copy()

    @property
    def cov(self) -> np.ndarray:
        """(k, k) posterior covariance ``P_{t|t}`` after the last row (empty for the static model)."""
        return self._snap.cov.copy()

    @property
    def shares_per_unit(self) -> np.ndarray:
        """(k,) shares of one unit after the last row: ``(1, -b_2, ..)`` or the static weights."""
        return self._snap.shares()

    @property
    def hedge_ratios(self) -> pd.Series:
        """(k-1,) hedge ratios after the last step (``-shares_j / shares_1``: a filter's ``b_j``),
        indexed by the hedge tickers."""
        shares = self._snap.shares()
        return pd.Series(-shares[1:] / shares[0], index=list(self._snap.assets[1:]), name="hedge_ratios")

    @property
    def last_date(self) -> pd.Timestamp:
        return self._snap.last_date

    @property
    def steps(self) -> int:
        """Number of rows ever fed (tuning sample included)."""
        return self._snap.step

    @property
    def strategy(self) -> dict[str, Any]:
        return dict(self._snap.strategy)

    @property
    def tuning(self) -> dict[str, Any]:
        return dict(self._snap.tuning)

    @property
    def policy(self) -> dict[str, Any]:
        """The retune policy: ``retune`` ("never", "weekly", "monthly"), ``window``, ``method``,
        ``iterations``, ``tol``, ``options``, ``on_degenerate``."""
        return dict(self._snap.policy)

    @property
    def version(self) -> int:
        """Id of the version in use."""
        return self._snap.version

    @property
    def units(self) -> float:
        """Units held after the last row (an integer for the bands rule)."""
        return self._snap.units

    @property
    def last(self) -> dict[str, Any]:
        """The last step: date, prices, state, hedge_ratios, spread, innovation, innovation_var,
        innovation_std, zscore, units."""
        s = self._snap
        return {
            "date": s.date,
            "prices": dict(zip(s.assets, s.prices.tolist())),
            "state": s.state.tolist(),
            "hedge_ratios": self.hedge_ratios.to_dict(),
            "spread": s.spread,
            "innovation": s.innovation,
            "innovation_var": s.innovation_var,
            "innovation_std": math.sqrt(s.innovation_var),
            "zscore": s.zscore,
            "units": s.units,
            **({"lookback": s.engine_state().lookback} if s.rule.moving(s.static) else {}),
        }

    @property
    def next_retune(self) -> str | None:
        """The week or month whose first row triggers the next re-estimation (None: never)."""
        period = self._snap.policy.get("retune", "never")
        return None if period == "never" else schedule.next_period(self._snap.last_date, period)

    # -- reading tables
    def _read(self, sql: str, params: tuple = ()) -> list[tuple]:
        con = _connect(self.path, self._lock_timeout, write=False)
        try:
            with _sqlite_errors(self.path, self._lock_timeout):
                return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def versions(self) -> list[Version]:
        """Every estimation of the model, oldest first (schema-1 files: the saved quantities)."""
        if self._snap.schema < 2:
            return [_v1_version(self._snap)]
        return [_version_from_row(r) for r in self._read(f"SELECT {_VERSION_COLUMNS} FROM versions ORDER BY id")]

    def resume(self) -> Resume:
        """The saved model ready to continue through :func:`kalcoint.engine.drive` (for the replay)."""
        con = _connect(self.path, self._lock_timeout, write=False)
        try:
            with _sqlite_errors(self.path, self._lock_timeout):
                return _resume(_read_snapshot(con, self.path), con)
        finally:
            con.close()

    # -- actions
    def reload(self) -> LiveModel:
        """Re-read the file (e.g. after another process updated it)."""
        self._snap = load_model(self.path, lock_timeout=self._lock_timeout)._snap
        return self

    def update(
        self,
        rows: pd.DataFrame | pd.Series,
        capital: float | None = None,
        max_jump: float = DEFAULT_MAX_JUMP,
        *,
        since_last: bool = False,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        source: str = "new rows",
    ) -> UpdateResult:
        """Feed rows (a DataFrame indexed by dates with a column per asset, or one Series named by its
        date) through the filter, in date order, all or none, re-estimating by the retune policy.

        Refused (KalcointError, file untouched): a date not after the last one (``since_last``
        skips rows already applied when they match the recorded prices), two rows on one calendar
        day, a missing asset, a NaN, a non-positive price, an absolute daily log return above
        ``max_jump`` (``math.inf`` accepts any).
        capital : dollars; sizes ``target_shares`` so one unit's gross dollar value equals it.
        """
        if capital is not None and not (math.isfinite(capital) and capital > 0):
            raise KalcointError(f"capital={capital} must be a positive amount of money")
        if not max_jump > 0:
            raise KalcointError(f"max_jump={max_jump} must be > 0 (an absolute log return; inf accepts any)")
        lock_timeout = _check_lock_timeout(lock_timeout)
        frame = _as_rows(rows, self._snap.assets, source)
        con = _connect(self.path, lock_timeout)
        try:
            with _sqlite_errors(self.path, lock_timeout):
                snap = _read_snapshot(con, self.path)  # the file's head now, not as of our last load
                if snap.assets != self._snap.assets:
                    raise KalcointError(f"model file {self.path} was replaced by a model of other assets; reload it")
                plan = _plan(snap, frame, source, max_jump, since_last, con)
            if plan.n > 0:
                snap, plan = _write_update(
                    con, self.path, snap, plan, frame, source, max_jump, since_last, lock_timeout
                )
        finally:
            con.close()
        self._snap = snap
        return self._result(plan, capital)

    def retune(self, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> Version:
        """Re-estimate now on the last ``window`` rows, effective from the next row (its
        ``effective_date`` is filled by the next update). A failed or kept estimation is recorded
        and the version in use stays."""
        if self._snap.policy.get("retune", "never") == "never":
            raise KalcointError(
                f"model file {self.path} has no retune policy (retune='never'); save it with "
                "retune='weekly' or 'monthly' and a window"
            )
        if self._snap.method == "chan":
            raise KalcointError(f"model file {self.path} holds Chan's filter, which has nothing to re-estimate")
        lock_timeout = _check_lock_timeout(lock_timeout)
        con = _connect(self.path, lock_timeout)
        try:
            with _sqlite_errors(self.path, lock_timeout):
                snap = _read_snapshot(con, self.path)
                version = self._estimate_now(snap, con)
            _begin(con, self.path, lock_timeout)
            try:
                fresh = _read_snapshot(con, self.path)
                _check_rows(con, self.path, fresh.meta)
                if (fresh.step, fresh.next_id) != (snap.step, snap.next_id):
                    snap, version = fresh, self._estimate_now(fresh, con)
                when = _now()
                if fresh.schema < SCHEMA_VERSION:
                    fresh = _migrate(con, fresh, when)
                con.executemany(_INSERT_VERSION, _version_rows([version], when))
                state = _retuned(fresh.engine_state(), version)
                con.execute(
                    "UPDATE head SET version = ?, engine = ? WHERE id = 1", (state.version, _dumps(state.to_dict()))
                )
                con.execute("COMMIT")
            except BaseException as exc:
                _rollback_on_error(con, self.path, exc)
                raise
            with _sqlite_errors(self.path, lock_timeout):
                self._snap = _read_snapshot(con, self.path)
        finally:
            con.close()
        return version

    @staticmethod
    def _estimate_now(snap: _Snapshot, con: sqlite3.Connection) -> Version:
        resume = _resume(snap, con)
        assert resume.fit is not None and resume.window is not None
        if len(resume.history) < resume.window:
            raise KalcointError(f"the model holds {len(resume.history)} rows, fewer than window={resume.window}")
        version, _ = schedule.estimate_version(
            resume.fit,
            resume.history.iloc[-resume.window :],
            version_id=snap.next_id,
            effective_date=None,
            method=resume.method,
            on_degenerate=resume.on_degenerate,
            first=False,
        )
        return version

    def _result(self, plan: _Plan, capital: float | None) -> UpdateResult:
        s = self._snap
        per_unit = _sized(s.shares(), s.prices, capital)
        steps = (
            _history_frame(_step_rows(s.step - plan.n + 1, "update", plan, s.updated_at), s.assets, plan.linear)
            if plan.n
            else _history_frame([], s.assets)
        )
        return UpdateResult(
            applied=plan.n,
            skipped=plan.skipped,
            dates=plan.dates,
            steps=steps,
            last=self.last,
            assets=self.assets,
            capital=capital,
            shares_per_unit=dict(zip(s.assets, per_unit.tolist())),
            target_shares=dict(zip(s.assets, (s.units * per_unit + 0.0).tolist())),
            versions=plan.versions,
            version=s.version,
            warnings=plan.warnings,
        )

    def history(self, cost_bps: float = 0.0) -> pd.DataFrame:
        """Every step taken: ``step, kind, date, <asset prices>..., beta_const, beta_<asset>...,
        innovation, innovation_var, zscore, spread, units, version, applied_at`` (``version``: the
        version the step traded with; the betas are empty for the static model), then the audit
        columns: ``shares_<asset>`` held, ``position_<asset>`` (dollars), ``hedge_<asset>``,
        ``traded`` (dollars, from flat before the first step) and ``cost`` (``cost_bps`` of it)."""
        from .backtest import account, audit_columns

        if not (math.isfinite(cost_bps) and cost_bps >= 0):
            raise KalcointError(f"cost_bps={cost_bps} must be a finite number >= 0 (basis points of traded value)")
        version = "version" if self._snap.schema >= 2 else "1"
        rows = self._read(
            "SELECT step, kind, date, prices, state, innovation, innovation_var, zscore, spread, units, applied_at, "
            f"{version} FROM steps ORDER BY step"
        )
        frame = _history_frame(rows, self._snap.assets, self._snap.rule.strategy == "linear")
        if frame.empty:
            return frame
        assets = self._snap.assets
        prices = frame[assets].to_numpy(dtype=np.float64)
        if self._snap.static:
            weights = {v.id: np.array(v.weights) for v in self.versions() if v.weights is not None}
            shares = np.array([weights[int(v)] for v in frame["version"]])
        else:
            shares = -frame[["beta_const", *(f"beta_{a}" for a in assets[1:])]].to_numpy(dtype=np.float64)
            shares[:, 0] = 1.0
        units = frame["units"].to_numpy(dtype=np.float64)
        acc = account(prices, units, shares, cost_bps)
        audit = audit_columns(assets, acc.positions, units, shares, acc.traded)
        audit["cost"] = acc.cost
        return pd.concat([frame, audit], axis=1)

    def status(self) -> dict[str, Any]:
        """JSON-ready status: ``last_date, assets, state, spread, innovation, innovation_var, units`` plus
        ``zscore, innovation_std, hedge_ratios, prices, cov, steps, method, strategy, weights, path``
        and the schedule: ``version`` (in use), ``last_retune`` (the last estimation's record),
        ``retune`` (the policy), ``next_retune`` (the week or month whose first row triggers it)."""
        s = self._snap
        last_version = s.last_version or _v1_version(s)
        return to_jsonable(
            {
                "last_date": s.date,
                "assets": self.assets,
                "state": s.state.tolist(),
                "spread": s.spread,
                "innovation": s.innovation,
                "innovation_var": s.innovation_var,
                "units": s.units,
                "zscore": s.zscore,
                "innovation_std": math.sqrt(s.innovation_var),
                "hedge_ratios": self.hedge_ratios.to_dict(),
                "prices": dict(zip(s.assets, s.prices.tolist())),
                "cov": s.cov.tolist(),
                "steps": s.step,
                "method": s.method,
                "strategy": self.strategy,
                "legs": {"long": s.long_leg, "short": s.short_leg},
                "weights": None if self.weights is None else self.weights.tolist(),
                "updated_at": s.updated_at,
                "path": str(self.path),
                "version": s.version,
                "last_retune": {
                    k: last_version.to_dict()[k]
                    for k in ("id", "effective_date", "window_first", "window_last", "outcome", "degenerate")
                },
                "retune": self.policy,
                "next_retune": self.next_retune,
            }
        )

    def filter(self, prices: pd.DataFrame) -> FilterResult:
        """Run the version in use over ``prices`` from its own prior (filters only)."""
        if self.model is None:
            raise KalcointError(f"model file {self.path} holds the static Johansen portfolio, not a filter")
        missing = [a for a in self.assets if a not in prices.columns]
        if missing:
            raise KalcointError(f"the prices lack the model's asset(s) {', '.join(missing)}")
        return kalman_filter(prices[self.assets], self.model)


def _retuned(state: engine.EngineState, version: Version) -> engine.EngineState:
    """The engine's state after a manual re-estimation (in force from the next row if applied)."""
    state = replace(state, next_id=version.id + 1)
    if not version.applied:
        return state
    if version.weights is not None:
        return replace(state, version=version.id, window_last=version.window_last, weights=np.array(version.weights))
    return replace(state, version=version.id, window_last=version.window_last, model=version.model)


def _history_frame(rows: list[tuple], assets: list[str], linear: bool = False) -> pd.DataFrame:
    columns = [
        "step",
        "kind",
        "date",
        *assets,
        "beta_const",
        *(f"beta_{a}" for a in assets[1:]),
        "innovation",
        "innovation_var",
        "zscore",
        "spread",
        "units",
        "version",
        "applied_at",
    ]
    k = len(assets)
    if not rows:
        return pd.DataFrame({c: [] for c in columns})
    step, kind, date, prices, state, innov, q, z, spread, units, when, version = zip(*rows)
    P = np.array([json.loads(p) for p in prices], dtype=np.float64).reshape(-1, k)
    B = np.array([json.loads(b) or [math.nan] * k for b in state], dtype=np.float64).reshape(-1, k)
    data: dict[str, Any] = {"step": list(step), "kind": list(kind), "date": list(date)}
    data.update({a: P[:, j] for j, a in enumerate(assets)})
    data["beta_const"] = B[:, 0]
    data.update({f"beta_{a}": B[:, j] for j, a in enumerate(assets[1:], start=1)})
    data.update(
        {
            "innovation": np.array(innov, dtype=np.float64),
            "innovation_var": np.array(q, dtype=np.float64),
            "zscore": np.array(z, dtype=np.float64),
            "spread": np.array(spread, dtype=np.float64),
            "units": np.array(units, dtype=np.float64 if linear else np.int64),
            "version": np.array(version, dtype=np.int64),
            "applied_at": list(when),
        }
    )
    return pd.DataFrame(data, columns=columns)


def read_rows(path: str | os.PathLike[str], assets: list[str]) -> pd.DataFrame:
    """Read new rows for a model from a price file.

    Any layout :func:`kalcoint.data.load_prices` reads; every row is kept as it is (one row is
    fine; gaps stay NaN so :meth:`LiveModel.update` refuses them with the date and asset named).

    Parameters
    ----------
    path : path-like
        The price file.
    assets : list of str
        The model's tickers.

    Returns
    -------
    DataFrame, shape (m, k)

    Examples
    --------
    >>> import os, tempfile
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> path = os.path.join(tempfile.mkdtemp(), "chan.kcm")
    >>> csv = os.path.join(os.path.dirname(path), "new.csv")
    >>> p.iloc[1000:1002].to_csv(csv)
    >>> read_rows(csv, ["ETFA", "ETFB", "ETFC"]).shape
    (2, 3)
    """
    from .data import read_price_table

    return read_price_table(path, list(assets))


__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "DEFAULT_MAX_JUMP",
    "DEFAULT_STRATEGY",
    "SCHEMA_VERSION",
    "LiveModel",
    "Resume",
    "UpdateResult",
    "load_model",
    "read_rows",
    "retune_policy",
    "save_chan_model",
    "save_model",
    "save_static_model",
    "target_shares",
    "unit_shares",
]

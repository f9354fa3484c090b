"""A book of baskets: the study's routine run live, one file, one daily update.

A book trades a universe the way :func:`kalcoint.study.study` simulates it, for one model:
every ``trading`` rows it selects the top ``top`` baskets on the last ``formation`` rows
(:func:`kalcoint.study.select_baskets` over :func:`kalcoint.screen.screen_batch` rows, the
study's eligibility), gives each the same share of the capital, and trades each basket with
its own engine state (:mod:`kalcoint.engine`), re-estimated on the schedule (``retune``).

Rows and periods
----------------
A book keeps the last ``L = max(formation, window)`` rows of the file it was created from and
every row fed since: the study run over those rows (``study(rows, ...)``) has the book's
periods. Period j trades rows ``t_j = L + j * trading`` to ``t_j + trading - 1``. The
formation screen of period j runs as soon as its formation rows are in (at creation for
period 0, then in the update that brings row ``t_j - 1``); the selection, which needs the date
of row ``t_j`` (the eligibility window starts at the study's ``fit_start``), is made when row
``t_j`` arrives. Each selected basket is then warmed up exactly as the study's backtest of it
(a cold start on the ``window`` rows before the first week start at least ``window`` rows
after ``fit_start``) and continued day by day: its units equal the study's run of that
basket-period every day. A ticker a basket holds (or opens on) must have a positive price on
every row fed: the batch is refused, naming it (where the study would count that basket as
failed for its whole period).

Capital and returns
-------------------
* ``study_return`` (the study's convention): each basket's daily return is that of
  :func:`kalcoint.backtest.account` on its own trading window (day 1 earns 0, costs on the
  basket's own trades over the larger of its gross before and after), the book's is their mean
  over the baskets selected (a failed basket counts 0; no basket: cash).
* ``return`` (what the book really makes): at each close basket i is given ``C / N`` dollars
  of gross exposure (``C`` the capital after the day's P&L, before its costs; ``N`` the
  baskets selected), in the proportions of its position ``units x shares`` (the size of the
  units does not matter, only their sign and mix, as in the study's per-gross return; a
  basket with zero units holds nothing). Shares are netted per ticker over the baskets; the
  costs are ``cost_bps`` of the dollar value of the netted trades. On the last row of a period
  every position is closed (the study never counts a position held past its window), so at
  zero cost ``return`` equals ``study_return`` every day; with costs their difference is the
  netting saving (``netting_saving``: the costs of the baskets' own trades at the book's sizes,
  ``traded_unnetted``, less those of the netted ones) less the cost of the closing trades and of
  keeping each basket at its share of the capital.

Storage
-------
One SQLite file (``PRAGMA application_id`` 0x6B63_626B "kcbk"), written like a live model
(rollback journal, ``synchronous=FULL``): an update validates the batch and computes every
step in memory, then writes it in one transaction; a kill leaves the old state or the new
one. Tables: ``meta`` (settings, tickers, the head), ``rows`` (every universe row kept),
``screens`` (a formation screen waiting for its period), ``baskets`` (every basket ever
held: period, selection figures, engine state, outcome) and ``days`` (one row per traded day).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import engine, schedule
from ._checks import check_choice
from ._io import atomic_path, is_stream, to_jsonable
from .backtest import MODELS, _fit_for, _safe_ratio, resolve_model
from .errors import KalcointError
from ._store import _begin_new_file, _check_lock_timeout, _fsync_dir, _locked
from .live import DEFAULT_LOCK_TIMEOUT, DEFAULT_MAX_JUMP, _check_order, _check_values, _day, _row_dates, _row_values
from .screen import Universe, screen_batch
from .study import Period, StudyOptions, _selection_figures, eligible_assets, formation_baskets, select_baskets

__all__ = ["Book", "BookOptions", "BookUpdate", "create", "load"]

FORMAT = "kalcoint-book"
SCHEMA_VERSION = 1
APPLICATION_ID = 0x6B63626B
RETUNES = ("weekly", "monthly")
ALLOCATIONS = ("equal",)

_write_hook: Callable[[Path], None] | None = None
"""Called inside an update's transaction before its first write (tests kill the process there)."""

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE rows (i INTEGER PRIMARY KEY, date TEXT UNIQUE NOT NULL, prices TEXT NOT NULL);
CREATE TABLE screens (period INTEGER PRIMARY KEY, rows TEXT NOT NULL);
CREATE TABLE baskets (id INTEGER PRIMARY KEY, period INTEGER NOT NULL, rank INTEGER NOT NULL,
    assets TEXT NOT NULL, record TEXT NOT NULL);
CREATE TABLE days (i INTEGER PRIMARY KEY, date TEXT NOT NULL, record TEXT NOT NULL)
"""


# ---------------------------------------------------------------- options


@dataclass(frozen=True)
class BookOptions:
    """A book's settings: the study's (same names, same defaults) and the book's own.

    Parameters
    ----------
    size, formation, trading, top, select, dependent, window, strategy, entry, exit, cost_bps, iterations :
        As :class:`kalcoint.study.StudyOptions`.
    model : str
        The one model traded (one of :data:`kalcoint.backtest.MODELS`).
    retune : {"weekly", "monthly"}
        Re-estimation period of each basket (the study's is weekly).
    capital : float
        Dollars at the start.
    allocation : {"equal"}
        The study's rule: the same capital per basket selected.

    Examples
    --------
    >>> BookOptions(size=2, top=3, model="chan").formation
    250
    """

    size: int = 2
    formation: int = 250
    trading: int = 125
    top: int = 20
    select: str = "static"
    dependent: str = "first"
    window: int = 250
    strategy: str = "bands"
    entry: float = 1.0
    exit: float = 1.0
    cost_bps: float = 5.0
    iterations: int | None = None
    model: str = "chan"
    retune: str = "weekly"
    capital: float = 1_000_000.0
    allocation: str = "equal"

    def __post_init__(self) -> None:
        self.study_options()  # the study's checks
        check_choice(self.model, MODELS, "model")
        check_choice(self.retune, RETUNES, "retune")
        check_choice(self.allocation, ALLOCATIONS, "allocation")
        if not (math.isfinite(self.capital) and self.capital > 0):
            raise KalcointError(f"capital {self.capital:g} must be a finite number of dollars > 0")

    def study_options(self) -> StudyOptions:
        """The study's options (models: chan and this model) that the book runs."""
        other = "static" if self.model == "chan" else self.model
        return StudyOptions(
            size=self.size,
            formation=self.formation,
            trading=self.trading,
            top=self.top,
            select=self.select,
            dependent=self.dependent,
            models=("chan", other),
            cost_bps=self.cost_bps,
            window=self.window,
            strategy=self.strategy,
            entry=self.entry,
            exit=self.exit,
            iterations=self.iterations,
        )

    @property
    def rule(self) -> engine.Rule:
        return engine.Rule(self.strategy, self.entry, self.exit)

    @property
    def history_rows(self) -> int:
        """Rows kept before the first traded row."""
        return max(self.formation, self.window)


# ---------------------------------------------------------------- small helpers


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=False)


def _prices_json(row: np.ndarray) -> str:
    return _dumps([float(x) if math.isfinite(x) else None for x in row])


def _prices_from(text: str) -> list[float]:
    return [math.nan if x is None else float(x) for x in json.loads(text)]


def _week_first(dates: pd.DatetimeIndex, row: int, retune: str) -> int:
    keys = schedule.period_keys(dates[: row + 1], retune)
    return int(np.flatnonzero(keys == keys[row])[0])


# ---------------------------------------------------------------- baskets


@dataclass
class _Basket:
    """One basket of one period: its engine state and its own account (study convention)."""

    id: int
    period: int
    rank: int
    assets: list[str]
    columns: list[int]
    figures: dict[str, Any]
    fit_start: int
    status: str = "pending"  # pending (no week start yet), open, failed, closed
    reason: str = ""
    first_row: int | None = None  # first row its engine traded (warm-up included)
    state: dict[str, Any] | None = None
    spreads: list[float] = field(default_factory=list)
    held: list[float] | None = None  # shares at the last close (units x shares of one unit)
    prev_prices: list[float] | None = None
    units: float = 0.0
    versions: int = 0
    retune_failures: int = 0
    growth: float = 1.0
    n_days: int = 0
    book_shares: list[float] | None = None  # the shares the book holds for it (before netting)

    def record(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("id", "period", "rank", "assets"):
            d.pop(key)
        return d

    @classmethod
    def from_row(cls, row: tuple) -> _Basket:
        bid, period, rank, assets, record = row
        return cls(id=int(bid), period=int(period), rank=int(rank), assets=json.loads(assets), **json.loads(record))


def _account_step(held_prev: np.ndarray, p_prev: np.ndarray, held: np.ndarray, p: np.ndarray, cost_bps: float) -> float:
    """One day of :func:`kalcoint.backtest.account` (the same expressions, one row)."""
    positions_prev = held_prev * p_prev
    gross_prev = np.abs(positions_prev).sum()
    gross = np.abs(held * p).sum()
    pnl = (positions_prev * (p / p_prev - 1.0)).sum()
    traded = (np.abs(held - held_prev) * p).sum()
    cost = traded * (cost_bps / 1e4)
    gross_ret = _safe_ratio(np.array([pnl]), np.array([gross_prev]))[0]
    return float(gross_ret - _safe_ratio(np.array([cost]), np.array([max(gross_prev, gross)]))[0])


# ---------------------------------------------------------------- the book in memory


@dataclass
class _Head:
    """The book's running figures after its last row."""

    rows: int  # rows kept
    period: int  # current period (-1 before the first traded row)
    capital: float
    peak: float
    shares: list[float]  # netted shares held at the last close, one per ticker
    next_id: int = 1


@dataclass(frozen=True)
class BookUpdate:
    """What an update did, for its last row.

    Attributes
    ----------
    rows : int
        Rows applied.
    date : str
        The last row's date.
    targets : dict
        Ticker -> shares held at the close (netted over the baskets).
    orders : list of dict
        Per ticker traded: ``ticker``, ``shares`` (target minus held, exact), ``order`` (rounded
        to the lot), ``residual``.
    baskets : list of dict
        Each basket of the period: id, assets, status, units, return, contribution.
    capital, pnl, drawdown, study_return, book_return : float
    next_selection : dict
        Rows left before the next re-selection and the date expected (business days).
    selected : list of int
        Periods selected in this batch.
    """

    rows: int
    date: str
    targets: dict[str, float]
    orders: list[dict[str, Any]]
    baskets: list[dict[str, Any]]
    capital: float
    pnl: float
    drawdown: float
    study_return: float
    book_return: float
    next_selection: dict[str, Any]
    selected: list[int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Run:
    """The book applied to new rows in memory (nothing written until :meth:`Book.update` commits)."""

    def __init__(self, options: BookOptions, tickers: list[str], values: np.ndarray, dates: pd.DatetimeIndex):
        self.o = options
        self.tickers = tickers
        self.values = values
        self.dates = dates
        self.rule = options.rule
        self.screens: dict[int, list[dict]] = {}
        self.dropped_screens: list[int] = []
        self.baskets: dict[int, _Basket] = {}  # the current period's
        self.every: dict[int, _Basket] = {}  # every basket touched
        self.changed: set[int] = set()
        self.days: list[tuple[int, str, dict[str, Any]]] = []
        self.selected: list[int] = []

    # -- periods
    def trading_start(self, j: int) -> int:
        return self.o.history_rows + j * self.o.trading

    def period_of(self, row: int) -> int:
        return (row - self.o.history_rows) // self.o.trading

    # -- screen and selection
    def screen(self, j: int) -> list[dict]:
        """The formation screen of period j (assets with a positive price on every formation row)."""
        t = self.trading_start(j)
        block = self.values[t - self.o.formation : t]
        ok = np.isfinite(block).all(axis=0) & (np.nan_to_num(block, nan=-1.0) > 0).all(axis=0)
        cols = [int(c) for c in np.flatnonzero(ok)]
        if len(cols) < self.o.size:
            return []
        sub = Universe(
            np.ascontiguousarray(block[:, cols]),
            self.dates[t - self.o.formation : t].to_numpy(),
            tuple(self.tickers[c] for c in cols),
        )
        combos = formation_baskets(sub.assets, self.o.size, self.o.dependent)
        return screen_batch(sub, combos, self.o.study_options().screen_options())

    def select(self, j: int, head: _Head) -> list[_Basket]:
        """The study's selection of period j (row ``t_j`` is in)."""
        t = self.trading_start(j)
        fit_start = max(0, _week_first(self.dates, t, "weekly") - self.o.window)
        per = Period(j, t - self.o.formation, t, t + self.o.trading, fit_start)
        ok = {self.tickers[c] for c in eligible_assets(self.values, per)}
        screened = self.screens.pop(j) if j in self.screens else self.screen(j)
        rows = [r for r in screened if all(a in ok for a in r["assets"])]
        self.dropped_screens.append(j)
        chosen = select_baskets(rows, self.o.select, self.o.top)
        out = []
        for rank, row in enumerate(chosen, start=1):
            assets = list(row["assets"])
            b = _Basket(
                head.next_id,
                j,
                rank,
                assets,
                [self.tickers.index(a) for a in assets],
                _selection_figures(row, self.o.select),
                fit_start,
            )
            head.next_id += 1
            out.append(b)
        self.selected.append(j)
        return out

    # -- trading one basket over rows [a, b)
    def frame(self, basket: _Basket, end: int) -> pd.DataFrame:
        return pd.DataFrame(
            self.values[basket.fit_start : end][:, basket.columns],
            index=self.dates[basket.fit_start : end],
            columns=basket.assets,
        )

    def advance(self, basket: _Basket, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        """Units (m,) and shares of one unit (m, k) of the basket on rows ``[a, b)``."""
        m, k = b - a, len(basket.columns)
        units, shares = np.zeros(m), np.zeros((m, k))
        if basket.status in ("failed", "closed"):
            return units, shares
        spec = resolve_model(self.o.model, k)
        fit = _fit_for(spec, self.o.iterations, {})
        estimated = spec.kind in ("tuned", "static")
        frame = self.frame(basket, b)
        try:
            if basket.status == "pending":
                starts = schedule.period_starts(frame.index, self.o.retune, self.o.window)
                if starts.size == 0:
                    return units, shares
                first = int(starts[0])
                run = engine.drive(
                    frame, first, None, self.rule, retune=self.o.retune, window=self.o.window, fit=fit,
                    method=self.o.model, estimated=estimated,
                )  # fmt: skip
                basket.first_row = basket.fit_start + first
                spread_before = run.warmup.spread if run.warmup is not None else np.empty(0)
                basket.status = "open"
            else:
                assert basket.state is not None
                first = a - basket.fit_start
                run = engine.drive(
                    frame, first, engine.EngineState.from_dict(basket.state), self.rule, retune=self.o.retune,
                    window=self.o.window, fit=fit, method=self.o.model, estimated=estimated,
                    spread_before=np.array(basket.spreads, dtype=np.float64),
                )  # fmt: skip
                spread_before = np.array(basket.spreads, dtype=np.float64)
        except KalcointError as exc:
            basket.status, basket.reason = "failed", str(exc).splitlines()[0]
            basket.state, basket.held = None, None
            return np.zeros(m), np.zeros((m, k))
        out = run.steps
        if not (np.all(np.isfinite(out.units)) and np.all(np.isfinite(out.shares))):
            basket.status, basket.reason = "failed", "the engine gave non-finite positions"
            basket.state, basket.held = None, None
            return np.zeros(m), np.zeros((m, k))
        basket.state = run.state.to_dict()
        if not run.state.static:
            basket.spreads = [float(x) for x in np.concatenate([spread_before, out.spread])[-self.o.window :]]
        basket.versions += len(run.versions)
        basket.retune_failures += sum(1 for v in run.versions if v.outcome.startswith("failed"))
        lo = basket.fit_start + first  # first row this run traded (a cold start warms up before a)
        units[max(lo, a) - a :] = out.units[max(lo, a) - lo :]
        shares[max(lo, a) - a :] = out.shares[max(lo, a) - lo :]
        return units, shares


def _next_selection(o: BookOptions, rows: int, last: pd.Timestamp) -> dict[str, Any]:
    h = o.history_rows
    left = (h - rows) % o.trading + 1  # rows up to and including the next period's first
    expected = np.busday_offset(np.datetime64(last.normalize().date(), "D"), left, roll="forward")
    return {"rows_left": int(left), "expected_date": str(expected)}


# ---------------------------------------------------------------- the file


def _connect(path: Path, lock_timeout: float, *, write: bool) -> sqlite3.Connection:
    if not path.exists():
        raise KalcointError(f"book file {path} does not exist; create one with kalcoint.book.create()")
    if path.is_dir() or is_stream(path):
        raise KalcointError(f"book file {path} is not a regular file; give the path of a book file")
    mode = "rw" if write or os.access(path, os.W_OK) else "ro"
    if not os.access(path, os.R_OK | (os.W_OK if write else 0)):
        raise KalcointError(
            f"book file {path} cannot be {'written' if write else 'read'} by this user; check its permissions"
        )
    try:
        con = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode={mode}", uri=True, timeout=lock_timeout, isolation_level=None
        )
        con.execute("PRAGMA synchronous = FULL")
        app = con.execute("PRAGMA application_id").fetchone()[0]
    except sqlite3.Error as exc:
        if _locked(exc):
            raise KalcointError(
                f"book file {path} is locked by another update; try again when it has finished"
            ) from None
        raise KalcointError(
            f"{path} is not a usable kalcoint book file ({exc}); create one with kalcoint.book.create()"
        ) from None
    if app != APPLICATION_ID:
        con.close()
        raise KalcointError(
            f"{path} is not a kalcoint book file (a live model or another SQLite file?); give a book file"
        )
    return con


def _rows_digest(con: sqlite3.Connection) -> str:
    digest = hashlib.sha256()
    for row in con.execute("SELECT i, date, prices FROM rows ORDER BY i"):
        digest.update(json.dumps(row).encode() + b"\n")
    return digest.hexdigest()


class Book:
    """A book file (:func:`create`, :func:`load`)."""

    def __init__(self, path: Path, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        self.path = path
        self.lock_timeout = _check_lock_timeout(lock_timeout)
        con = _connect(path, self.lock_timeout, write=False)
        try:
            self._read(con)
        except (sqlite3.Error, KeyError, ValueError, TypeError) as exc:
            raise KalcointError(f"book file {path} is damaged ({exc}); restore it from a backup") from None
        finally:
            con.close()

    def __repr__(self) -> str:
        return f"Book({str(self.path)!r}, model={self.options.model!r}, rows={self.head.rows})"

    # -- reading
    def _read(self, con: sqlite3.Connection) -> None:
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("format") != FORMAT:
            raise KalcointError(f"{self.path} is not a kalcoint book file; give a book file")
        self.meta = meta
        self.options = BookOptions(**json.loads(meta["options"]))
        self.tickers: list[str] = json.loads(meta["tickers"])
        self.head = _Head(**json.loads(meta["head"]))
        if json.loads(meta["rows_sha256"]) != {"rows": self.head.rows, "sha256": _rows_digest(con)}:
            raise KalcointError(f"book file {self.path} is damaged (its rows do not match their checksum); restore it")

    def _rows(self, con: sqlite3.Connection) -> tuple[np.ndarray, pd.DatetimeIndex]:
        rows = con.execute("SELECT date, prices FROM rows ORDER BY i").fetchall()
        values = np.array([_prices_from(r[1]) for r in rows], dtype=np.float64).reshape(len(rows), len(self.tickers))
        return values, pd.DatetimeIndex([r[0] for r in rows])

    def _query(self, sql: str, params: tuple = ()) -> list[tuple]:
        con = _connect(self.path, self.lock_timeout, write=False)
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    @property
    def last_date(self) -> pd.Timestamp:
        return pd.Timestamp(self._query("SELECT date FROM rows ORDER BY i DESC LIMIT 1")[0][0])

    def baskets(self) -> pd.DataFrame:
        """Every basket ever held: period, rank, assets, selection figures, status, outcome."""
        out = []
        for row in self._query("SELECT id, period, rank, assets, record FROM baskets ORDER BY id"):
            b = _Basket.from_row(row)
            out.append(
                {
                    "id": b.id,
                    "period": b.period,
                    "rank": b.rank,
                    "assets": ",".join(b.assets),
                    "status": b.status,
                    "reason": b.reason,
                    **b.figures,
                    "first_row": b.first_row,
                    "versions": b.versions,
                    "retune_failures": b.retune_failures,
                    "units": b.units,
                    "n_days": b.n_days,
                    "total_return": b.growth - 1.0,
                }
            )
        return pd.DataFrame(out)

    def history(self) -> pd.DataFrame:
        """One row per traded day: returns, capital, gross, traded, costs, and per basket its units
        and return (columns ``units_<id>``, ``return_<id>``)."""
        rows = self._query("SELECT date, record FROM days ORDER BY i")
        records = []
        for date, text in rows:
            d = json.loads(text)
            flat = {k: v for k, v in d.items() if k not in ("baskets", "shares")}
            flat.update({f"shares_{t}": x for t, x in zip(self.tickers, d["shares"])})
            for bid, (units, ret) in d["baskets"].items():
                flat[f"units_{bid}"] = units
                flat[f"return_{bid}"] = ret
            records.append({"date": pd.Timestamp(date), **flat})
        return pd.DataFrame(records)

    def holdings(self) -> dict[str, float]:
        """Ticker -> shares held at the last close (netted)."""
        return {t: s for t, s in zip(self.tickers, self.head.shares) if s != 0.0}

    def status(self) -> dict[str, Any]:
        """The book in one record: settings, last date, capital, drawdown, baskets of the period."""
        last = self._query("SELECT date, record FROM days ORDER BY i DESC LIMIT 1")
        day = json.loads(last[0][1]) if last else None
        period = [
            _Basket.from_row(r)
            for r in self._query(
                "SELECT id, period, rank, assets, record FROM baskets WHERE period = ?", (self.head.period,)
            )
        ]
        return {
            "path": str(self.path),
            "options": asdict(self.options),
            "tickers": len(self.tickers),
            "rows": self.head.rows,
            "last_date": _day(self.last_date),
            "period": self.head.period,
            "capital": self.head.capital,
            "drawdown": self.head.capital / self.head.peak - 1.0,
            "last_day": None if day is None else {k: v for k, v in day.items() if k != "shares"},
            "holdings": self.holdings(),
            "baskets": [{"id": b.id, "assets": b.assets, "status": b.status, "units": b.units} for b in period],
            "next_selection": _next_selection(self.options, self.head.rows, self.last_date),
        }

    # -- updating
    def update(
        self,
        rows: pd.DataFrame,
        *,
        lot: float = 1.0,
        max_jump: float = DEFAULT_MAX_JUMP,
        source: str = "rows",
    ) -> BookUpdate:
        """Apply new rows of the universe (all or nothing): step every basket, re-select when a
        period ends, and give the targets and orders of the last row.

        Parameters
        ----------
        rows : DataFrame
            Universe rows indexed by dates, after the book's last date (extra columns ignored;
            a ticker the book holds or selects must be there with a positive price).
        lot : float
            Orders are rounded to multiples of ``lot`` shares (the residual is shown).
        max_jump : float
            Largest |log return| of a held ticker accepted.
        source : str
            Name of the rows in messages.

        Returns
        -------
        BookUpdate
        """
        if not (math.isfinite(lot) and lot > 0):
            raise KalcointError(f"lot {lot:g} must be a number of shares > 0")
        new = _as_universe_rows(rows, self.tickers, source)
        _check_order(new, source)
        con = _connect(self.path, self.lock_timeout, write=True)
        try:
            try:
                con.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if _locked(exc):
                    raise KalcointError(
                        f"book file {self.path} is being updated by another process (waited "
                        f"lock_timeout={self.lock_timeout:g} s); try again when it has finished"
                    ) from None
                raise
            try:
                self._read(con)
                result, writes = self._plan(con, new, lot, max_jump, source)
                self._write(con, writes)
                con.execute("COMMIT")
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise KalcointError(f"cannot update book file {self.path}: {exc}; nothing was applied") from None
        finally:
            con.close()
        self.head = writes["head"]
        return result

    def _plan(
        self, con: sqlite3.Connection, new: pd.DataFrame, lot: float, max_jump: float, source: str
    ) -> tuple[BookUpdate, dict[str, Any]]:
        values, dates = self._rows(con)
        last = dates[-1]
        if new.index[0] <= last or new.index[0].normalize() == last.normalize():
            raise KalcointError(
                f"{source}: row {_day(new.index[0])} is not after the book's last date {_day(last)}; give only new rows"
            )
        o = self.options
        head = replace(self.head, shares=list(self.head.shares))
        n0 = values.shape[0]
        all_values = np.vstack([values, new.to_numpy()])
        all_dates = pd.DatetimeIndex([*dates, *new.index])
        run = _Run(o, self.tickers, all_values, all_dates)
        run.screens = {int(j): json.loads(t) for j, t in con.execute("SELECT period, rows FROM screens")}
        for row in con.execute("SELECT id, period, rank, assets, record FROM baskets WHERE period = ?", (head.period,)):
            b = _Basket.from_row(row)
            b.columns = [self.tickers.index(a) for a in b.assets]
            run.baskets[b.id] = b
            run.every[b.id] = b
        n = all_values.shape[0]
        h, step = o.history_rows, o.trading
        cuts = sorted({n0, n, *[r for r in range(n0 + 1, n) if (r - h) % step == 0]})
        for a, b in zip(cuts[:-1], cuts[1:]):
            j = run.period_of(a)
            if a == run.trading_start(j):  # a period starts: close the old baskets, select
                for old in run.baskets.values():
                    if old.status in ("open", "pending"):
                        old.status = "closed"
                    old.state, old.spreads = None, []
                    run.changed.add(old.id)
                run.baskets = {x.id: x for x in run.select(j, head)}
                run.every.update(run.baskets)
                run.changed.update(run.baskets)
                head.period = j
            self._check_held(run, new, a, b, n0, max_jump, source)
            self._trade(run, head, a, b)
        head.rows = n
        screens = {}
        if (n - h) % step == 0:  # the next period's formation rows are complete
            j_next = run.period_of(n)
            screens[j_next] = run.screens.get(j_next) or run.screen(j_next)
        result = self._result(run, head, new, lot)
        writes = {
            "rows": [(n0 + i, _day(d), _prices_json(all_values[n0 + i])) for i, d in enumerate(new.index)],
            "screens": screens,
            "drop_screens": run.dropped_screens,
            "baskets": [run.every[i] for i in sorted(run.changed)],
            "days": run.days,
            "head": head,
        }
        return result, writes

    def _check_held(self, run: _Run, new: pd.DataFrame, a: int, b: int, n0: int, max_jump: float, source: str) -> None:
        """Refuse the batch if a ticker a basket holds or opens on rows ``[a, b)`` is absent or bad."""
        cols = sorted({c for x in run.baskets.values() if x.status in ("open", "pending") for c in x.columns})
        if not cols:
            return
        names = [self.tickers[c] for c in cols]
        absent = [t for t in names if t in new.attrs.get("absent", ())]
        if absent:
            raise KalcointError(
                f"{source}: missing ticker(s) {', '.join(absent)} that the book holds; give their prices "
                "on every row, no row was applied"
            )
        part = new.iloc[a - n0 : b - n0][names]
        _check_values(part, run.values[a - 1, cols], _day(run.dates[a - 1]), max_jump, source)

    def _trade(self, run: _Run, head: _Head, a: int, b: int) -> None:
        """Step every basket over rows ``[a, b)`` (one period) and account each day."""
        o = self.options
        j = run.period_of(a) if a >= o.history_rows else -1
        if j < 0:
            return
        t = run.trading_start(j)
        baskets = list(run.baskets.values())
        paths = {x.id: run.advance(x, a, b) for x in baskets}
        n_sel = len(baskets)
        shares = np.array(head.shares)
        for r in range(a, b):
            p = run.values[r]
            last_of_period = (r + 1 - o.history_rows) % o.trading == 0
            rets: dict[str, list[float]] = {}
            target = np.zeros(len(self.tickers))
            p_prev = run.values[r - 1]
            held_dollars = shares * np.where(np.isfinite(p_prev), p_prev, 0.0)
            with np.errstate(invalid="ignore"):
                pnl = float(np.nansum(held_dollars * (p / p_prev - 1.0)))
            invested = head.capital + pnl
            unnetted = 0.0
            for x in baskets:
                units, per_unit = paths[x.id]
                i = r - a
                held = units[i] * per_unit[i]
                pk = p[x.columns]
                ret = 0.0
                mine = np.zeros(len(x.columns))
                if r >= t and x.status == "open":
                    prev = np.zeros(len(x.columns)) if x.held is None or r == t else np.array(x.held)
                    pp = pk if x.prev_prices is None or r == t else np.array(x.prev_prices)
                    ret = _account_step(prev, pp, held, pk, o.cost_bps)
                    x.held, x.prev_prices = held.tolist(), pk.tolist()
                    x.growth *= 1.0 + ret
                    x.n_days += 1
                    gross = float(np.abs(held * pk).sum())
                    if gross > 0 and not last_of_period:
                        mine = (invested / n_sel) * held / gross
                        target[x.columns] += mine
                before = np.zeros(len(x.columns)) if x.book_shares is None else np.array(x.book_shares)
                if (mine != before).any():
                    unnetted += float((np.abs(mine - before) * pk).sum())
                x.book_shares = mine.tolist()
                x.units = float(units[i])
                rets[str(x.id)] = [float(units[i]), ret]
                run.changed.add(x.id)
            study_ret = float(np.mean([v[1] for v in rets.values()])) if n_sel else 0.0
            traded = float(np.abs(target - shares)[target != shares].dot(p[target != shares]))
            cost = traded * o.cost_bps / 1e4
            capital = invested - cost
            ret_book = (capital - head.capital) / head.capital
            head.peak = max(head.peak, capital)
            record = {
                "period": j,
                "return": ret_book,
                "study_return": study_ret,
                "capital": capital,
                "pnl": pnl,
                "gross": float(np.abs(target * p)[target != 0].sum()),
                "traded": traded,
                "cost": cost,
                "traded_unnetted": unnetted,
                "netting_saving": (unnetted - traded) * o.cost_bps / 1e4,
                "drawdown": capital / head.peak - 1.0,
                "baskets": rets,
                "shares": target.tolist(),
            }
            head.capital = capital
            shares = target
            run.days.append((r, _day(run.dates[r]), record))
        head.shares = shares.tolist()

    def _result(self, run: _Run, head: _Head, new: pd.DataFrame, lot: float) -> BookUpdate:
        day = run.days[-1][2] if run.days else None
        before = np.array(run.days[-2][2]["shares"]) if len(run.days) > 1 else np.array(self.head.shares)
        target = np.array(head.shares)
        orders = []
        for c in np.flatnonzero(target != before):
            want = float(target[c] - before[c])
            rounded = float(np.round(want / lot) * lot)
            orders.append({"ticker": self.tickers[c], "shares": want, "order": rounded, "residual": want - rounded})
        n_sel = max(1, len(run.baskets))
        baskets = [
            {
                "id": x.id,
                "assets": x.assets,
                "status": x.status,
                "units": x.units,
                "return": (day["baskets"].get(str(x.id), [0, 0.0])[1] if day else 0.0),
                "contribution": (day["baskets"].get(str(x.id), [0, 0.0])[1] / n_sel if day else 0.0),
            }
            for x in run.baskets.values()
        ]
        return BookUpdate(
            rows=len(new),
            date=_day(new.index[-1]),
            targets={self.tickers[c]: float(target[c]) for c in np.flatnonzero(target)},
            orders=orders,
            baskets=baskets,
            capital=head.capital,
            pnl=head.capital - self.options.capital,
            drawdown=head.capital / head.peak - 1.0,
            study_return=day["study_return"] if day else 0.0,
            book_return=day["return"] if day else 0.0,
            next_selection=_next_selection(self.options, head.rows, pd.Timestamp(new.index[-1])),
            selected=run.selected,
        )

    def _write(self, con: sqlite3.Connection, w: Mapping[str, Any]) -> None:
        con.executemany("INSERT INTO rows (i, date, prices) VALUES (?, ?, ?)", w["rows"])
        if _write_hook is not None:
            _write_hook(self.path)  # tests: a kill inside the transaction, rows written
        for j in w["drop_screens"]:
            con.execute("DELETE FROM screens WHERE period = ?", (j,))
        for j, s in w["screens"].items():
            con.execute("INSERT OR REPLACE INTO screens (period, rows) VALUES (?, ?)", (j, _dumps(to_jsonable(s))))
        con.executemany(
            "INSERT OR REPLACE INTO baskets (id, period, rank, assets, record) VALUES (?, ?, ?, ?, ?)",
            [(b.id, b.period, b.rank, _dumps(b.assets), _dumps(b.record())) for b in w["baskets"]],
        )
        con.executemany(
            "INSERT INTO days (i, date, record) VALUES (?, ?, ?)", [(i, d, _dumps(r)) for i, d, r in w["days"]]
        )
        head = w["head"]
        con.execute("UPDATE meta SET value = ? WHERE key = 'head'", (_dumps(asdict(head)),))
        con.execute(
            "UPDATE meta SET value = ? WHERE key = 'rows_sha256'",
            (_dumps({"rows": head.rows, "sha256": _rows_digest(con)}),),
        )


# ---------------------------------------------------------------- rows, create, load


def _as_universe_rows(rows: pd.DataFrame, tickers: list[str], source: str) -> pd.DataFrame:
    """The batch as a float64 (m, N) frame in the book's ticker order (absent tickers NaN, named
    in ``attrs["absent"]``), indexed by dates."""
    if not isinstance(rows, pd.DataFrame) or len(rows) == 0:
        raise KalcointError(f"{source}: no rows to apply; give one row of prices per new date")
    index = _row_dates(rows, source)
    absent = [t for t in tickers if t not in rows.columns]
    if len(absent) == len(tickers):
        raise KalcointError(f"{source}: none of the book's tickers is a column; give rows of the book's universe")
    present = [t for t in tickers if t in rows.columns]
    block = _row_values(rows, present, source)
    frame = pd.DataFrame(np.nan, index=index, columns=tickers)
    frame[present] = block
    frame.attrs["absent"] = absent
    return frame


def create(path: str | os.PathLike[str], prices: pd.DataFrame, options: BookOptions | None = None) -> Book:
    """Create a book file from a universe frame (:func:`kalcoint.screen.load_universe`).

    The book keeps the last ``max(formation, window)`` rows and screens the first period on
    the last ``formation`` of them; trading starts with the next row fed.

    Parameters
    ----------
    path : path-like
        A new file.
    prices : DataFrame, shape (n, N)
        Universe rows, oldest first (NaN where a ticker has no price).
    options : BookOptions, optional

    Returns
    -------
    Book
    """
    o = options or BookOptions()
    target = Path(path)
    if target.exists() or target.is_symlink():
        raise KalcointError(f"book file {target} already exists; give a new path (a book is created once)")
    if not isinstance(prices, pd.DataFrame) or prices.shape[1] < o.size:
        raise KalcointError(f"the universe needs at least {o.size} tickers (size {o.size})")
    frame = _as_universe_rows(prices, [str(c) for c in prices.columns], "prices")
    _check_order(frame, "prices")
    h = o.history_rows
    if len(frame) < h:
        raise KalcointError(
            f"prices: {len(frame)} rows, but formation {o.formation} and window {o.window} need {h}; "
            "give a longer file or shorten them"
        )
    frame = frame.iloc[-h:]
    tickers = list(frame.columns)
    values = frame.to_numpy(dtype=np.float64)
    if np.isinf(values).any():
        raise KalcointError("prices: an infinite price; prices must be plain positive numbers")
    run = _Run(o, tickers, values, pd.DatetimeIndex(frame.index))
    screen = run.screen(0)
    head = _Head(rows=h, period=-1, capital=float(o.capital), peak=float(o.capital), shares=[0.0] * len(tickers))
    from . import __version__

    with atomic_path(target) as tmp:
        con = sqlite3.connect(tmp, isolation_level=None)
        try:
            _begin_new_file(con, APPLICATION_ID, SCHEMA_VERSION, _SCHEMA)
            con.executemany(
                "INSERT INTO rows (i, date, prices) VALUES (?, ?, ?)",
                [(i, _day(d), _prices_json(values[i])) for i, d in enumerate(frame.index)],
            )
            meta = {
                "format": FORMAT,
                "schema_version": str(SCHEMA_VERSION),
                "kalcoint_version": __version__,
                "created_at": _now(),
                "options": _dumps(asdict(o)),
                "tickers": _dumps(tickers),
                "head": _dumps(asdict(head)),
                "rows_sha256": _dumps({"rows": h, "sha256": _rows_digest(con)}),
            }
            con.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", sorted(meta.items()))
            con.execute("INSERT INTO screens (period, rows) VALUES (0, ?)", (_dumps(to_jsonable(screen)),))
            con.execute("COMMIT")
        except sqlite3.Error as exc:
            raise KalcointError(f"cannot write book file {target}: {exc}; it was not created") from None
        finally:
            con.close()
    _fsync_dir(target.parent)
    return Book(target)


def load(path: str | os.PathLike[str], *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> Book:
    """Open a book file (read access is enough to inspect it).

    Parameters
    ----------
    path : path-like
    lock_timeout : float
        Seconds an update waits for another one.

    Returns
    -------
    Book
    """
    return Book(Path(path), lock_timeout)

"""Price panels: read a file of daily closes into a checked float64 DataFrame.

:func:`load_prices` reads one price file and returns the chosen assets as a
``pandas.DataFrame``: a sorted, unique ``DatetimeIndex`` named ``"date"`` and
one float64 column of prices (in the file's currency units) per asset, in the
order asked for, the first column being the dependent asset.
:func:`validate_prices` applies the same checks to a frame already in memory.

File formats (chosen by content: Parquet files start with ``PAR1``; gzip-compressed
files (``.csv.gz``) are read as the delimited text they hold; Excel workbooks and
UTF-16 text are refused with the way to fix them; anything else is read as
delimited text, comma, tab or semicolon, UTF-8 with or without a byte-order mark):

- **wide**: a date column, then one column per ticker. The date column is the
  first one named ``Date``, ``Dates``, ``Datetime``, ``Timestamp``, ``Time``
  or ``Day`` (any case), else the first column.
- **long**: columns for the date, the ticker (``ticker`` or ``symbol``) and the
  price (``close``, else ``adj close``, else ``price``), any case; rows may be
  grouped by ticker or by date, but each ticker's dates must be unique and
  ascending (the same guard against misread dates as for wide files).
- **yfinance multi-header CSV**: ``Price,Close,High,...`` /
  ``Ticker,AAPL,...`` / ``Date,,...``; the ``Close`` columns are used
  (``Adj Close`` only if there is no ``Close``; when the file has both, a note in
  ``df.attrs["notes"]`` says which is used). A Parquet file holding a frame
  with two-level columns (field, ticker) is read the same way.

Dates: ISO ``YYYY-MM-DD`` (optionally with a time; a UTC offset such as
``-05:00`` is dropped, keeping the local wall-clock time), ``YYYY/MM/DD``, or
US ``M/D/YYYY``. The format is chosen from the first date. One row per calendar
day: several rows on one day (intraday timestamps) are refused. Day-first files
(``D/M/YYYY``) are NOT supported: they fail to parse or fail the
ascending-dates check; convert them to ISO first.

Ticker matching, for each requested asset in turn: the exact column name;
else the column whose name matches ignoring case and surrounding spaces; else,
for Bloomberg-style names such as ``EWC US Equity``, the column whose first
word matches (``EWC``), provided exactly one does. A first-word match names
the output column by that word (``EWC``). ``df.attrs["source_columns"]`` maps
each output column to the file's column.

Leading rows in which some chosen asset has not started trading are dropped
(``df.attrs["dropped_leading_rows"]``). Everything else that is wrong raises
:class:`~kalcoint.errors.KalcointError` with one line naming the file, the
column and the first bad date and saying how to fix it: a missing or
unreadable file, an unknown or ambiguous ticker, fewer than 2 assets,
duplicate or unsorted dates, unparseable dates, non-numeric cells, a gap
(empty cell) after the first complete row unless ``fill="ffill"`` (then the
last price is carried forward and ``df.attrs["filled"]`` counts the cells),
non-finite or non-positive prices, a constant column, fewer than ``min_rows``
rows. Nothing is fixed silently.
"""

from __future__ import annotations

import csv
import difflib
import gzip
import io
import os
import re
import stat
import zlib
from collections.abc import Callable, Sequence
from typing import Any
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ._checks import check_magnitude
from .errors import KalcointError

__all__ = ["MIN_ROWS", "FILL_METHODS", "load_prices", "validate_prices"]

MIN_ROWS = 30
"""Default minimum number of rows (dates) a price panel must have."""

FILL_METHODS = ("ffill",)
"""Accepted values of ``fill`` besides ``None``."""

_DATE_NAMES = ("date", "dates", "datetime", "timestamp", "time", "day")
_TICKER_NAMES = ("ticker", "symbol")
_PRICE_NAMES = ("close", "adj close", "adj_close", "adjclose", "price")
_FIELD_NAMES = ("close", "adj close")
_PARQUET_EXT = (".parquet", ".pq")
_ISO = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}")
_ISO_SLASH = re.compile(r"^\d{4}/\d{1,2}/\d{1,2}$")
_US = re.compile(r"^\d{1,2}/\d{1,2}/\d{4}$")
_TZ_SUFFIX = r"(?<=\d)(?:Z|[+-]\d\d:?\d\d)$"
_DATE_HELP = "use ISO YYYY-MM-DD or US M/D/YYYY dates (day-first D/M/YYYY is not supported)"


@dataclass(frozen=True)
class _Layout:
    """Where things are in a table: date column, and either tickers or long-format columns."""

    kind: str  # "wide" or "long"
    header_rows: int
    date_pos: int
    date_name: str
    names: list[str]  # wide: ticker of each price column; long: [ticker column, price column]
    positions: list[int]  # column positions matching `names`
    note: str = ""  # a remark for the user (which of Close / Adj Close is used)


def load_prices(
    path: str | os.PathLike[str],
    assets: Sequence[str] | None = None,
    fill: str | None = None,
    min_rows: int = MIN_ROWS,
) -> pd.DataFrame:
    """Read a price file into a checked ``(n_dates, k)`` float64 DataFrame.

    Args:
        path: CSV (or other delimited text) or Parquet file; see the module docstring.
        assets: tickers to keep, dependent asset first (a comma-separated
            string is accepted too); ``None`` keeps every price column in file order.
        fill: ``None`` (gaps are errors) or ``"ffill"`` (carry the last price forward).
        min_rows: the fewest rows accepted after leading rows are dropped.

    Returns:
        Prices indexed by a unique ascending ``DatetimeIndex`` named ``"date"``,
        columns in the order of ``assets``. ``attrs``: ``source`` (the path),
        ``source_columns`` (output column -> file column), ``dropped_leading_rows``,
        ``filled``.

    Raises:
        KalcointError: one line naming the file, column and first bad date.

    Examples
    --------
    >>> import kalcoint as kc
    >>> prices = kc.load_prices(kc.datasets.path("chan_etf"), ["EWA", "EWC", "IGE"])
    >>> prices.shape, prices.index[0].date(), prices.attrs["dropped_leading_rows"]
    ((1500, 3), datetime.date(2006, 4, 26), 0)
    """
    source = os.fspath(path)
    _check_options(source, fill, min_rows)
    prices = read_price_table(path, assets)
    return _finish(prices, source, fill, min_rows, prices.attrs["source_columns"], prices.attrs["notes"])


def read_price_table(path: str | os.PathLike[str], assets: Sequence[str] | str | None = None) -> pd.DataFrame:
    """Read a price file as it is: the layouts, dates and ticker matching of :func:`load_prices`,
    dates unique and ascending, cells numeric, but no row dropped and every gap left as NaN.

    For callers with their own rules on rows: a universe whose assets start on different dates
    (:mod:`kalcoint.screen`), or a batch of new rows for a saved model (:mod:`kalcoint.live`).
    ``attrs``: ``source``, ``source_columns`` (output column -> file column) and ``notes``
    (remarks for the user, e.g. which of Close and Adj Close is used).

    Examples
    --------
    >>> import kalcoint as kc
    >>> table = read_price_table(kc.datasets.path("chan_etf"), ["EWA", "EDC"])
    >>> table.shape, int(table["EDC"].isna().sum())  # EDC starts later: its first rows stay empty
    ((1500, 2), 675)
    """
    source = os.fspath(path)
    wanted = _asset_list(assets, source)
    raw = _read_bytes(Path(source), source)
    kind = _sniff(raw, Path(source), source)
    reader = _read_parquet if kind == "parquet" else _read_text
    prices, columns = reader(raw, source, wanted)
    notes = list(prices.attrs.get("notes", []))
    prices = prices.astype(np.float64)
    prices.index.name = "date"
    prices.attrs = {"source": source, "source_columns": dict(columns), "notes": notes}
    return prices


def validate_prices(
    df: pd.DataFrame,
    source: str = "<frame>",
    min_rows: int = MIN_ROWS,
    fill: str | None = None,
) -> pd.DataFrame:
    """Apply :func:`load_prices`' checks to an in-memory ``(n_dates, k)`` frame.

    The index must hold dates (a ``DatetimeIndex``, or strings in a supported
    format); every column is a price series. ``df`` is not modified: a new
    float64 frame is returned, with leading rows dropped and ``attrs`` set as
    by :func:`load_prices`. ``source`` names the data in error messages.

    Examples
    --------
    >>> import pandas as pd, numpy as np
    >>> idx = pd.bdate_range("2020-01-01", periods=40)
    >>> df = pd.DataFrame({"A": np.linspace(10, 12, 40), "B": np.linspace(5, 7, 40) ** 1.1}, index=idx)
    >>> validate_prices(df).shape
    (40, 2)
    """
    _check_options(source, fill, min_rows)
    names = [str(c) for c in df.columns]
    _check_selection(names, source)
    raw_dates = pd.Series(df.index, index=pd.RangeIndex(len(df)))
    dates = _parse_dates(raw_dates, source, str(df.index.name or "index"))
    _check_order(dates, source, str(df.index.name or "index"))
    values = {n: _to_float(df.iloc[:, j], source, f"column {n!r}", dates) for j, n in enumerate(names)}
    prices = pd.DataFrame(values, index=dates)
    return _finish(prices, source, fill, min_rows, {n: n for n in names})


# ---------------------------------------------------------------- options, assets


def _check_options(source: str, fill: str | None, min_rows: int) -> None:
    if fill is not None and fill not in FILL_METHODS:
        raise KalcointError(
            f"{source}: unknown fill method {fill!r}; use fill=None (gaps are errors) or 'ffill'", params="fill"
        )
    if isinstance(min_rows, bool) or not isinstance(min_rows, (int, np.integer)) or min_rows < 2:
        raise KalcointError(f"{source}: min_rows must be an integer >= 2, got {min_rows!r}", params="min_rows")


def _asset_list(assets: Sequence[str] | str | None, source: str) -> list[str] | None:
    if assets is None:
        return None
    items = assets.split(",") if isinstance(assets, str) else list(assets)
    wanted = [str(a).strip() for a in items]
    if any(not a for a in wanted):
        raise KalcointError(f"{source}: an empty ticker in assets {list(items)!r}; list tickers like EWC,EWA,IGE")
    _check_selection(wanted, source)
    return wanted


def _check_selection(names: list[str], source: str) -> None:
    if len(names) < 2:
        raise KalcointError(
            f"{source}: needs at least 2 assets (the dependent one first), got {len(names)}: "
            f"{', '.join(names) or 'none'}; add a hedge asset after it, like EWC,EWA"
        )
    seen: set[str] = set()
    for i, n in enumerate(names):
        if not n.strip():
            raise KalcointError(f"{source}: price column {i + 1} has no name; give every column a ticker header")
        if n.casefold() in seen:
            raise KalcointError(f"{source}: asset {n!r} appears twice; list each asset once")
        seen.add(n.casefold())


def _resolve(wanted: list[str] | None, names: list[str], source: str) -> list[tuple[int, str]]:
    """Map requested tickers to (index into names, output column name)."""
    if wanted is None:
        _check_selection(names, source)
        return list(enumerate(names))
    chosen = [_match(w, names, source) for w in wanted]
    for j, (i, _) in enumerate(chosen):
        if i in [c[0] for c in chosen[:j]]:
            raise KalcointError(f"{source}: assets {wanted!r} select column {names[i]!r} twice; list each asset once")
    return chosen


def _match(want: str, names: list[str], source: str) -> tuple[int, str]:
    exact = [i for i, n in enumerate(names) if n == want]
    folded = [i for i, n in enumerate(names) if n.strip().casefold() == want.casefold()]
    first = [i for i, n in enumerate(names) if len(n.split()) > 1 and n.split()[0].casefold() == want.casefold()]
    for hits, word in ((exact, False), (folded, False), (first, True)):
        if len(hits) == 1:
            name = names[hits[0]]
            return hits[0], name.split()[0] if word else name
        if len(hits) > 1:
            listed = ", ".join(repr(names[i]) for i in hits[:5])
            raise KalcointError(
                f"{source}: ticker {want!r} matches several columns ({listed}); use the full column name"
            )
    raise KalcointError(f"{source}: unknown ticker {want!r}; {_suggest(want, names)}")


def _suggest(want: str, names: list[str]) -> str:
    by_key = {n.casefold(): n for n in names}
    by_key.update({n.split()[0].casefold(): n.split()[0] for n in names if n.split()})
    close = difflib.get_close_matches(want.casefold(), list(by_key), n=4, cutoff=0.6)
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    if close:
        return f"close matches: {', '.join(by_key[c] for c in close)} (the file has {len(names)} price columns)"
    return f"the file has {len(names)} price columns: {shown}"


# ---------------------------------------------------------------- file reading


_GZIP = b"\x1f\x8b"

# Correctly rounded floats (the value Python's float() gives): before pandas 3.1 only
# float_precision="round_trip" parses them; from 3.1 every mode uses that converter and the
# option is deprecated (Pandas4Warning).
_NA_WORDS = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A"]
_NA_WORDS += ["NA", "NULL", "NaN", "None", "n/a", "nan", "null"]
"""pandas' default missing-value words (``pandas._libs.parsers.STR_NA_VALUES``), kept for price cells."""

_EXACT_FLOATS: dict[str, Any] = (
    {"float_precision": "round_trip"} if tuple(int(v) for v in pd.__version__.split(".")[:2]) < (3, 1) else {}
)
_ZIP = b"PK\x03\x04"
_OLE = b"\xd0\xcf\x11\xe0"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _read_bytes(path: Path, source: str) -> bytes:
    """The file's bytes, read once: a regular file, or a stream (a FIFO, ``/dev/stdin``, a
    shell's ``<(...)``) read to its end; a device (a terminal, ``/dev/zero``) is refused."""
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            raise KalcointError(
                f"{source}: a device (such as a terminal), not a price file; give a CSV or Parquet file, "
                "or pipe one in (a pipe is read to its end)"
            )
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise KalcointError(f"{source}: file not found; check the path (working directory: {os.getcwd()})") from None
    except IsADirectoryError:
        raise KalcointError(f"{source}: is a directory; give the path of a CSV or Parquet price file") from None
    except OSError as exc:
        raise KalcointError(f"{source}: cannot read the file ({exc.strerror}); check its permissions") from None


def _sniff(raw: bytes, path: Path, source: str) -> str:
    """The file's kind by content: ``"parquet"``, ``"gzip"`` (compressed text) or ``"text"``;
    Excel workbooks and UTF-16 text are refused naming the format."""
    magic = raw[:8]
    if magic[:4] == b"PAR1":
        return "parquet"
    if path.suffix.lower() in _PARQUET_EXT:
        raise KalcointError(f"{source}: not a Parquet file (no PAR1 header); re-export it as Parquet or CSV")
    if magic[:2] == _GZIP:
        return "gzip"
    if magic[:4] == _ZIP:
        raise KalcointError(
            f"{source}: an Excel workbook (.xlsx, a zip archive), not a text table; "
            "in Excel use File > Save As > CSV UTF-8, or export Parquet"
        )
    if magic[:4] == _OLE:
        raise KalcointError(
            f"{source}: an Excel 97-2003 workbook (.xls), not a text table; "
            "in Excel use File > Save As > CSV UTF-8, or export Parquet"
        )
    if magic[:2] in _UTF16_BOMS or (len(magic) >= 4 and (magic[1:2] == b"\x00" or magic[0:1] == b"\x00")):
        raise KalcointError(
            f"{source}: UTF-16 text (as Excel's 'Unicode Text' writes it); "
            "save it as CSV UTF-8, e.g. iconv -f UTF-16 -t UTF-8"
        )
    return "text"


def _decode(raw: bytes, source: str) -> str:
    """The file as text (UTF-8, BOM dropped), uncompressing gzip."""
    if raw[:2] == _GZIP:
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:
            raise KalcointError(f"{source}: a damaged gzip file ({exc}); compress the CSV again") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise KalcointError(
            f"{source}: not UTF-8 text (line {line}: another encoding, or a binary format); "
            "save it as CSV UTF-8 or Parquet"
        ) from None


def _read_text(raw: bytes, source: str, wanted: list[str] | None) -> tuple[pd.DataFrame, dict[str, str]]:
    text = _decode(raw, source)
    rows, sep = _header_rows(text, source)
    layout = _text_layout(rows, source)
    if layout.header_rows == 1 and len(rows) > 1 and len(rows[1]) != len(rows[0]):
        raise KalcointError(
            f"{source}: the header has {len(rows[0])} fields but the first data row has {len(rows[1])}; "
            "make every row the same width as the header"
        )
    _check_widths(text, sep, len(rows[0]), source)

    def load(cols: list[int], str_cols: list[int]) -> pd.DataFrame:
        try:
            frame = pd.read_csv(
                io.StringIO(text),
                sep=sep,
                header=None,
                skiprows=layout.header_rows,
                usecols=cols,
                dtype={c: str for c in str_cols},
                # text cells as written (a ticker NA or NULL is not missing); prices keep pandas' NA words
                keep_default_na=False,
                na_values={c: [""] if c in str_cols else _NA_WORDS for c in cols},
                skip_blank_lines=True,
                **_EXACT_FLOATS,
            )
        except pd.errors.EmptyDataError:
            raise KalcointError(f"{source}: no data rows after the header; add one row of prices per date") from None
        except (ValueError, OSError, EOFError, pd.errors.ParserError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise KalcointError(
                f"{source}: cannot read as CSV ({reason}); check the file is a well-formed table"
            ) from None
        frame = frame[cols]
        for c in str_cols:
            frame[c] = frame[c].mask(frame[c].eq(""))  # only an empty cell is missing
        frame.columns = pd.RangeIndex(len(cols))
        return frame

    return _read_layout(load, layout, source, wanted)


def _csv_error(source: str, line: int, exc: csv.Error) -> KalcointError:
    return KalcointError(
        f"{source}: line {line} cannot be read as CSV ({exc}); a price file holds short cells: "
        "check the file is a table of dates and prices"
    )


def _check_widths(text: str, sep: str, width: int, source: str) -> None:
    """Refuse a row whose number of fields is not the header's (blank lines are skipped)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    try:
        for row in reader:
            if row and len(row) != width:
                raise KalcointError(
                    f"{source}: line {reader.line_num} has {len(row)} fields but the header has {width}; "
                    "make every row the same width as the header"
                )
    except csv.Error as exc:
        raise _csv_error(source, reader.line_num, exc) from None


def _read_parquet(raw: bytes, source: str, wanted: list[str] | None) -> tuple[pd.DataFrame, dict[str, str]]:
    import pyarrow  # imported here: only Parquet users pay for it

    try:
        frame = pd.read_parquet(io.BytesIO(raw))
    except (OSError, ValueError, pyarrow.ArrowException) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise KalcointError(f"{source}: cannot read Parquet ({reason}); re-export the file") from None
    frame, layout = _frame_layout(frame, source)

    def load(cols: list[int], str_cols: list[int]) -> pd.DataFrame:
        part = frame.iloc[:, cols]
        part.columns = pd.RangeIndex(len(cols))
        return part.reset_index(drop=True)

    return _read_layout(load, layout, source, wanted)


def _header_rows(text: str, source: str) -> tuple[list[list[str]], str]:
    stream = io.StringIO(text, newline="")
    lines = [line for line in (stream.readline() for _ in range(3)) if line]
    if not lines or not lines[0].strip():
        raise KalcointError(
            f"{source}: the file is empty or starts with a blank line; the first line must be the header"
        )
    first = lines[0]
    sep = max((",", "\t", ";"), key=first.count) if first.count(",") == 0 else ","
    reader = csv.reader(lines, delimiter=sep)
    try:
        return [[cell.strip() for cell in row] for row in reader], sep
    except csv.Error as exc:
        raise _csv_error(source, reader.line_num, exc) from None


def _text_layout(rows: list[list[str]], source: str) -> _Layout:
    if len(rows) >= 3 and rows[2] and rows[2][0].casefold() in _DATE_NAMES and not any(rows[2][1:]):
        if {rows[0][0].casefold(), rows[1][0].casefold()} <= {"price", "ticker", ""}:
            return _multi_layout(rows[0], rows[1], 0, rows[2][0], source)
    return _single_layout(rows[0], source)


def _frame_layout(frame: pd.DataFrame, source: str) -> tuple[pd.DataFrame, _Layout]:
    index = frame.index
    if index.name is not None or isinstance(index, pd.DatetimeIndex):  # dates kept as the index
        frame = frame.rename_axis(index.name or "date").reset_index()  # type: ignore[call-overload]
    if not isinstance(frame.columns, pd.MultiIndex):
        return frame, _single_layout([str(c).strip() for c in frame.columns], source)
    if frame.columns.nlevels != 2:
        raise KalcointError(
            f"{source}: columns have {frame.columns.nlevels} header levels; expected 1, or 2 (field, ticker)"
        )
    top = [str(c[0]).strip() for c in frame.columns]
    low = [str(c[1]).strip() for c in frame.columns]
    dates = [i for i in range(len(top)) if top[i].casefold() in _DATE_NAMES or low[i].casefold() in _DATE_NAMES]
    if not dates:
        raise KalcointError(f"{source}: two-level columns without a Date column; store the dates as the index")
    i = dates[0]
    return frame, _multi_layout(top, low, i, top[i] or low[i], source)


def _single_layout(header: list[str], source: str) -> _Layout:
    folded = [h.casefold() for h in header]
    date_pos = next((i for i, h in enumerate(folded) if h in _DATE_NAMES), 0)
    ticker_pos = next((i for i, h in enumerate(folded) if h in _TICKER_NAMES), None)
    price_pos = next((folded.index(p) for p in _PRICE_NAMES if p in folded), None)
    if ticker_pos is not None and price_pos is not None and date_pos not in (ticker_pos, price_pos):
        names = [header[ticker_pos], header[price_pos]]
        return _Layout("long", 1, date_pos, header[date_pos], names, [ticker_pos, price_pos])
    positions = [i for i in range(len(header)) if i != date_pos]
    if not positions:
        raise KalcointError(f"{source}: only one column ({header[0]!r}); expected a date column and price columns")
    return _Layout("wide", 1, date_pos, header[date_pos], [header[i] for i in positions], positions)


def _multi_layout(top: list[str], low: list[str], date_pos: int, date_name: str, source: str) -> _Layout:
    """yfinance layout: one header row holds fields (Close, High, ...), the other tickers."""
    for field in _FIELD_NAMES:
        for fields, tickers in ((top, low), (low, top)):
            positions = [i for i, f in enumerate(fields) if f.casefold() == field and i != date_pos]
            if positions:
                folded = {f.casefold() for f in fields}
                note = ""
                if {"close", "adj close"} <= folded:
                    note = (
                        f"{source}: the file has both Close and Adj Close columns; using Close (Adj Close is ignored)"
                    )
                return _Layout("wide", 3, date_pos, date_name, [tickers[i] for i in positions], positions, note)
    raise KalcointError(f"{source}: a yfinance-style two-row header without Close columns; download with Close prices")


def _read_layout(
    load: Callable[[list[int], list[int]], pd.DataFrame],
    layout: _Layout,
    source: str,
    wanted: list[str] | None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    if layout.kind == "long":
        return _read_long(load, layout, source, wanted)
    chosen = _resolve(wanted, layout.names, source)
    cols = [layout.date_pos] + [layout.positions[i] for i, _ in chosen]
    raw = load(cols, [layout.date_pos])
    dates = _parse_dates(raw[0], source, layout.date_name)
    _check_order(dates, source, layout.date_name)
    values = {
        out: _to_float(raw[j + 1], source, f"column {layout.names[i]!r}", dates) for j, (i, out) in enumerate(chosen)
    }
    frame = pd.DataFrame(values, index=dates)
    frame.attrs["notes"] = [layout.note] if layout.note else []
    return frame, {out: layout.names[i] for i, out in chosen}


def _read_long(
    load: Callable[[list[int], list[int]], pd.DataFrame],
    layout: _Layout,
    source: str,
    wanted: list[str] | None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    ticker_name, price_name = layout.names
    raw = load([layout.date_pos, *layout.positions], [layout.date_pos, layout.positions[0]])
    tickers = raw[1]
    if tickers.isna().any():
        row = int(np.argmax(tickers.isna().to_numpy())) + 1
        raise KalcointError(f"{source}: column {ticker_name!r}: empty ticker in data row {row}; fill in every ticker")
    tickers = tickers.astype(str).str.strip()
    names = [str(t) for t in pd.unique(tickers)]
    chosen = _resolve(wanted, names, source)
    columns: dict[str, pd.Series] = {}
    for i, out in chosen:
        rows = raw[(tickers == names[i]).to_numpy()]
        dates = _parse_dates(rows[0], source, layout.date_name)
        _check_order(dates, source, layout.date_name, f" for ticker {names[i]!r}")
        label = f"column {price_name!r} of ticker {names[i]!r}"
        columns[out] = pd.Series(_to_float(rows[2], source, label, dates), index=dates)
    prices = pd.concat(columns, axis=1, join="outer").sort_index()
    prices.index.name = "date"
    return prices, {out: names[i] for i, out in chosen}


# ---------------------------------------------------------------- cell parsing


def _parse_dates(raw: pd.Series, source: str, column: str) -> pd.DatetimeIndex:
    """Parse a column of dates; `raw`'s integer index gives 0-based data-row numbers for messages."""
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        raw = raw.dt.tz_localize(None)
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        parsed = raw
    else:
        parsed = _parse_date_values(raw, source, column)
    missing = parsed.isna().to_numpy()
    if missing.any():
        i = int(np.argmax(missing))
        raise KalcointError(
            f"{source}: column {column!r}: {_cell(raw.iloc[i])} date in data row {_row(raw, i)}; {_DATE_HELP}"
        )
    # one resolution whatever the source (pandas 3 parses text to us, Parquet dates come as s or ms)
    return pd.DatetimeIndex(parsed.to_numpy(), name="date").as_unit("ns")


def _parse_date_values(raw: pd.Series, source: str, column: str) -> pd.Series:
    present = raw.dropna()
    if len(present) == 0:
        return pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
    if pd.api.types.is_numeric_dtype(raw.dtype) or pd.api.types.is_bool_dtype(raw.dtype):
        raise KalcointError(f"{source}: column {column!r}: holds numbers, not dates; {_DATE_HELP}")
    if present.map(type).eq(str).all():  # type: ignore[arg-type]
        text = raw.str.strip()
        first = text.loc[present.index[0]]
        if _ISO.match(first):
            text = text.str.replace(_TZ_SUFFIX, "", regex=True)
            return pd.to_datetime(text, format="ISO8601", errors="coerce")
        for pattern, fmt in ((_US, "%m/%d/%Y"), (_ISO_SLASH, "%Y/%m/%d")):
            if pattern.match(first):
                return pd.to_datetime(text, format=fmt, errors="coerce")
        raise KalcointError(f"{source}: column {column!r}: cannot read the first date {first!r}; {_DATE_HELP}")
    try:  # date/datetime objects, e.g. from Parquet
        parsed = pd.to_datetime(raw, errors="coerce")
    except (TypeError, ValueError):
        raise KalcointError(f"{source}: column {column!r}: values are not dates; {_DATE_HELP}") from None
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_localize(None)
    return parsed


def _to_float(raw: pd.Series, source: str, label: str, dates: pd.DatetimeIndex) -> np.ndarray:
    """Prices as float64; a non-numeric cell is an error naming its date. `label` is e.g. "column 'EWA'"."""
    if raw.dtype.kind in "fiu":
        return raw.to_numpy(dtype=np.float64)
    if raw.dtype.kind == "b":
        raise KalcointError(f"{source}: {label}: holds true/false values, not prices; choose a price column")
    numbers = pd.to_numeric(raw, errors="coerce")
    bad = numbers.isna().to_numpy() & raw.notna().to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise KalcointError(
            f"{source}: {label}: non-numeric price {raw.iloc[i]!r} on {_day(dates[i])}; "
            "prices must be plain numbers like 123.45 (no thousands separators or currency signs)"
        )
    return numbers.to_numpy(dtype=np.float64)


def _cell(value: object) -> str:
    return "empty" if value is None or (isinstance(value, float) and np.isnan(value)) else f"unparseable {value!r}"


def _row(raw: pd.Series, i: int) -> str:
    label = raw.index[i]
    return str(int(label) + 1) if isinstance(label, (int, np.integer)) else str(i + 1)


def _day(stamp: pd.Timestamp) -> str:
    return stamp.strftime("%Y-%m-%d") if stamp == stamp.normalize() else str(stamp)


# ---------------------------------------------------------------- checks


def _check_order(dates: pd.DatetimeIndex, source: str, column: str, where: str = "") -> None:
    stamps = dates.asi8
    steps = np.diff(stamps)
    if (steps == 0).any():
        i = int(np.argmax(steps == 0)) + 1
        raise KalcointError(
            f"{source}: column {column!r}: duplicate date {_day(dates[i])}{where}; keep one row per date"
        )
    if (steps < 0).any():
        i = int(np.argmax(steps < 0)) + 1
        raise KalcointError(
            f"{source}: column {column!r}: dates not ascending{where}: {_day(dates[i])} comes after "
            f"{_day(dates[i - 1])}; sort the file by date, oldest first (day-first D/M/YYYY dates are not supported)"
        )
    days = dates.normalize().asi8
    same = np.diff(days) == 0
    if same.any():
        i = int(np.argmax(same)) + 1
        count = int(np.sum(days == days[i]))
        raise KalcointError(
            f"{source}: column {column!r}: {count} rows on {dates[i]:%Y-%m-%d}{where} (intraday timestamps "
            f"{dates[i - 1]:%H:%M} and {dates[i]:%H:%M}); kalcoint works on daily closes: keep one row per day, "
            "the day's last price"
        )


def _finish(
    prices: pd.DataFrame,
    source: str,
    fill: str | None,
    min_rows: int,
    columns: dict[str, str],
    notes: list[str] | None = None,
) -> pd.DataFrame:
    prices = prices.astype(np.float64)
    prices.index.name = "date"
    start = _first_full_row(prices, source)
    prices = prices.iloc[start:].copy()
    _check_finite(prices, source)
    prices, filled = _fill_gaps(prices, source, fill)
    _check_positive(prices, source)
    check_magnitude(prices.to_numpy(), list(prices.columns), prices.index, source)
    _check_length(prices, source, min_rows, start)
    _check_not_constant(prices, source)
    prices.attrs = {
        "source": source,
        "source_columns": dict(columns),
        "dropped_leading_rows": start,
        "filled": filled,
        "notes": list(notes or []),
    }
    return prices


def _first_full_row(prices: pd.DataFrame, source: str) -> int:
    present = prices.notna().to_numpy()
    full = present.all(axis=1)
    if full.any():
        return int(np.argmax(full))
    if len(prices) == 0:
        raise KalcointError(f"{source}: no data rows after the header; the file needs one row of prices per date")
    counts = present.sum(axis=0)
    if (counts == 0).any():
        name = prices.columns[int(np.argmin(counts))]
        raise KalcointError(f"{source}: column {name!r} has no prices; choose another asset or fill in the column")
    starts = [prices.index[np.argmax(present[:, j])] for j in range(present.shape[1])]  # type: ignore[call-overload]
    late = int(np.argmax(starts))
    raise KalcointError(
        f"{source}: column {prices.columns[late]!r}: starts on {_day(starts[late])} but no date has prices "
        "for all chosen assets; choose assets that trade over a common period"
    )


def _check_finite(prices: pd.DataFrame, source: str) -> None:
    values = prices.to_numpy()
    bad = np.isinf(values)
    if bad.any():
        r, c = _first(bad)
        raise KalcointError(
            f"{source}: column {prices.columns[c]!r}: non-finite price {values[r, c]} on {_day(prices.index[r])}; "
            "correct the file"
        )


def _fill_gaps(prices: pd.DataFrame, source: str, fill: str | None) -> tuple[pd.DataFrame, int]:
    gaps = prices.isna().to_numpy()
    count = int(gaps.sum())
    if count == 0:
        return prices, 0
    if fill == "ffill":
        return prices.ffill(), count
    r, c = _first(gaps)
    more = f" ({count - 1} more gaps in the chosen columns)" if count > 1 else ""
    raise KalcointError(
        f"{source}: column {prices.columns[c]!r}: missing price on {_day(prices.index[r])} after the first "
        f"complete row {_day(prices.index[0])}{more}; fix the file or pass fill='ffill' "
        "to carry the last price forward",
        params="fill",
    )


def _check_positive(prices: pd.DataFrame, source: str) -> None:
    values = prices.to_numpy()
    bad = ~(values > 0)
    if bad.any():
        r, c = _first(bad)
        raise KalcointError(
            f"{source}: column {prices.columns[c]!r}: non-positive price {values[r, c]:g} on "
            f"{_day(prices.index[r])}; prices must be > 0, choose another asset or correct the file"
        )


def _check_not_constant(prices: pd.DataFrame, source: str) -> None:
    values = prices.to_numpy()
    flat = np.ptp(values, axis=0) == 0
    if flat.any():
        c = int(np.argmax(flat))
        raise KalcointError(
            f"{source}: column {prices.columns[c]!r}: constant price {values[0, c]:g} from "
            f"{_day(prices.index[0])} to {_day(prices.index[-1])}; a constant series cannot hedge, choose another asset"
        )


def _check_length(prices: pd.DataFrame, source: str, min_rows: int, dropped: int) -> None:
    if len(prices) >= min_rows:
        return
    note = f", after dropping {dropped} leading rows where not every asset traded" if dropped else ""
    raise KalcointError(
        f"{source}: needs at least {min_rows} rows, got {len(prices)} (from {_day(prices.index[0])} to "
        f"{_day(prices.index[-1])}{note}); use a longer price history or assets that started earlier"
    )


def _first(mask: np.ndarray) -> tuple[int, int]:
    """(row, column) of the first True in row-major order: the earliest date, then the leftmost column."""
    flat = int(np.argmax(mask.ravel()))
    return divmod(flat, mask.shape[1])

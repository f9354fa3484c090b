"""Properties of the price loader (``kalcoint.data.load_prices``) and of the commands that read a file.

Held:

* one panel (any tickers, any dates on distinct days in ISO, US or YYYY/MM/DD form, any positive
  prices, an asset that may start later than the others) written as a wide CSV (comma, semicolon
  or tab), a long CSV (rows grouped by ticker or by date), yfinance's three-row header, a gzip
  CSV and a Parquet file loads as the same frame, equal to the panel written;
* any generated file (headers and cells of text, numbers, dates, empty cells; UTF-8 with or
  without a byte-order mark, Latin-1, UTF-16, random bytes; gzip or not; zero to a few dozen
  rows) given to ``kalcoint johansen`` or ``kalcoint filter --model chan`` either loads (exit 0,
  the test's table printed or the states written) or is refused with exactly one line on stderr
  and exit code 2, nothing on stdout and no output file: never a traceback.

The tests without ``_deep`` run a few fixed examples (the ``kalcoint`` hypothesis profile of
tests/conftest.py); their ``_deep`` twins (marked slow) run many more.
"""

from __future__ import annotations

import gzip
import string
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

from kalcoint.data import load_prices

DEEP = 400
RESERVED = {"date", "dates", "datetime", "timestamp", "time", "day", "ticker", "symbol", "price", "close"}
RESERVED |= {"adj close", "adj_close", "adjclose"}
DATE_FORMATS = {"iso": "%Y-%m-%d", "us": "%m/%d/%Y", "slash": "%Y/%m/%d"}


# ---------------------------------------------------------------- one panel, five layouts


tickers = st.text(string.ascii_uppercase + string.digits + "._-", min_size=1, max_size=6).filter(
    lambda t: t.casefold() not in RESERVED
)


@st.composite
def panels(draw) -> pd.DataFrame:
    names = draw(st.lists(tickers, min_size=2, max_size=4, unique_by=str.casefold))
    n = draw(st.integers(2, 30))
    start = draw(st.dates(pd.Timestamp("1990-01-01").date(), pd.Timestamp("2030-01-01").date()))
    steps = draw(st.lists(st.integers(1, 5), min_size=n - 1, max_size=n - 1))
    dates = pd.DatetimeIndex(pd.Timestamp(start) + pd.to_timedelta(np.cumsum([0, *steps]), unit="D"), name="date")
    price = st.floats(1e-4, 1e6, allow_nan=False, allow_infinity=False)
    values = np.array([[draw(price) for _ in names] for _ in range(n)])
    frame = pd.DataFrame(values, index=dates, columns=names)
    late = draw(st.integers(0, n - 2))  # the last asset starts on row `late`
    frame.iloc[:late, -1] = np.nan
    assume(np.all(np.ptp(expected_of(frame).to_numpy(), axis=0) > 0))  # a constant column is refused
    return frame


def expected_of(frame: pd.DataFrame) -> pd.DataFrame:
    first = int(np.argmax(frame.notna().all(axis=1).to_numpy()))
    expected = frame.iloc[first:].astype(np.float64)
    expected.index = expected.index.as_unit("ns")  # the loader's dates are nanoseconds in pandas 2 and 3
    return expected


def text_date(dates: pd.DatetimeIndex, form: str) -> list[str]:
    return [d.strftime(DATE_FORMATS[form]) for d in dates]


def cell(x: float) -> str:
    return "" if np.isnan(x) else repr(float(x))


def write_wide(frame: pd.DataFrame, form: str, sep: str) -> str:
    lines = [sep.join(["Date", *frame.columns])]
    for day, row in zip(text_date(frame.index, form), frame.to_numpy()):
        lines.append(sep.join([day, *map(cell, row)]))
    return "\n".join(lines) + "\n"


def write_long(frame: pd.DataFrame, form: str, by_date: bool) -> str:
    days = text_date(frame.index, form)
    cells = [
        (i, j, days[i], str(name), frame.iloc[i, j])
        for j, name in enumerate(frame.columns)
        for i in range(len(frame))
        if not np.isnan(frame.iloc[i, j])
    ]
    if by_date:
        cells.sort(key=lambda c: (c[0], c[1]))
    return "date,symbol,close\n" + "".join(f"{d},{t},{repr(float(v))}\n" for _, _, d, t, v in cells)


def write_yfinance(frame: pd.DataFrame, form: str) -> str:
    k = frame.shape[1]
    head = ["Price," + ",".join(["Close"] * k), "Ticker," + ",".join(frame.columns), "Date" + "," * k]
    rows = [",".join([d, *map(cell, r)]) for d, r in zip(text_date(frame.index, form), frame.to_numpy())]
    return "\n".join(head + rows) + "\n"


def check_layouts_load_equal(frame: pd.DataFrame, form: str, sep: str, by_date: bool) -> None:
    expected = expected_of(frame)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        files = {
            "wide.csv": write_wide(frame, form, sep).encode(),
            "bom.csv": b"\xef\xbb\xbf" + write_wide(frame, form, ",").encode(),
            "long.csv": write_long(frame, form, by_date).encode(),
            "yfinance.csv": write_yfinance(frame, form).encode(),
            "wide.csv.gz": gzip.compress(write_wide(frame, form, sep).encode()),
        }
        for name, data in files.items():
            (d / name).write_bytes(data)
        frame.to_parquet(d / "panel.parquet")
        for name in [*files, "panel.parquet"]:
            got = load_prices(d / name, min_rows=2)
            assert got.attrs["dropped_leading_rows"] == len(frame) - len(expected), name
            pd.testing.assert_frame_equal(got, expected, check_exact=True, check_freq=False, obj=name)


# Found by this property: pandas read the ticker cells NA and NULL of a long file as missing.
NA_TICKERS = pd.DataFrame(
    {"NA": [1.5, 1.25, 1.75], "NULL": [np.nan, 2.75, 3.0]},
    index=pd.DatetimeIndex(["2020-01-02", "2020-01-03", "2020-01-06"], name="date"),
)


@given(
    frame=panels(),
    form=st.sampled_from(sorted(DATE_FORMATS)),
    sep=st.sampled_from([",", ";", "\t"]),
    by_date=st.booleans(),
)
@example(frame=NA_TICKERS, form="iso", sep=",", by_date=False)
def test_one_panel_loads_the_same_from_every_layout(frame, form, sep, by_date):
    check_layouts_load_equal(frame, form, sep, by_date)


@pytest.mark.slow
@settings(max_examples=DEEP // 2)  # six files per example
@given(
    frame=panels(),
    form=st.sampled_from(sorted(DATE_FORMATS)),
    sep=st.sampled_from([",", ";", "\t"]),
    by_date=st.booleans(),
)
def test_one_panel_loads_the_same_from_every_layout_deep(frame, form, sep, by_date):
    check_layouts_load_equal(frame, form, sep, by_date)


# ---------------------------------------------------------------- any file: loads or one line


HEADERS = ["Date", "date", "Ticker", "symbol", "Close", "Adj Close", "Price", "EWA", "EWC", "IGE", "EWC US Equity", ""]
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**20), 10**20).map(str),
    st.sampled_from(["0", "-1", "1,234.5", "$12", "1e308", "1e-320", "nan", "inf", "-inf", "NaN", "true", "12.5%"]),
)
date_cells = st.one_of(
    st.datetimes(pd.Timestamp("1677-09-22").to_pydatetime(), pd.Timestamp("2262-04-10").to_pydatetime()).map(
        lambda d, form=st_format: d.strftime(form)
    )
    for st_format in ("%Y-%m-%d", "%m/%d/%Y", "%d/%m/%Y", "%Y/%m/%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S+05:00")
)
cells = st.one_of(numbers, date_cells, st.text(max_size=8), st.just(""), st.sampled_from(HEADERS))


@st.composite
def tables(draw) -> list[list[str]]:
    """A well-formed wide table (Date, 2 to 4 tickers, 30 to 45 rows of positive prices), then
    zero to three cells, rows or header names replaced by anything."""
    width = draw(st.integers(3, 5))
    header = ["Date", *draw(st.lists(tickers, min_size=width - 1, max_size=width - 1, unique_by=str.casefold))]
    start = pd.Timestamp(draw(st.dates(pd.Timestamp("1990-01-01").date(), pd.Timestamp("2030-01-01").date())))
    form = DATE_FORMATS[draw(st.sampled_from(sorted(DATE_FORMATS)))]
    rows = [header]
    for i in range(draw(st.integers(30, 45))):
        day = (start + pd.Timedelta(days=i)).strftime(form)
        rows.append([day, *[repr(draw(st.floats(0.5, 2.0)) * (j + 1)) for j in range(width - 1)]])
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2, 3]))):
        i = draw(st.integers(0, len(rows) - 1))
        what = draw(st.sampled_from(["cell", "cell", "row", "drop"]))
        if what == "cell" and rows[i]:
            rows[i][draw(st.integers(0, len(rows[i]) - 1))] = draw(cells)
        elif what == "row":
            rows[i] = draw(st.lists(cells, min_size=0, max_size=width + 1))
        else:
            del rows[i]
    return rows


@st.composite
def any_files(draw) -> tuple[bytes, str]:
    """(the file's bytes, its name): random bytes, a table of random cells, or a near-valid table,
    in any encoding, gzip or not, possibly with yfinance's header."""
    suffix = draw(st.sampled_from([".csv", ".csv.gz", ".txt", ".parquet", ".tsv"]))
    kind = draw(st.sampled_from(["table", "table", "table", "cells", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200)), suffix
    if kind == "table":
        rows = draw(tables())
    else:
        width = draw(st.integers(1, 5))
        header = draw(
            st.lists(st.one_of(st.sampled_from(HEADERS), st.text(max_size=6)), min_size=width, max_size=width)
        )
        rows = [header, *draw(st.lists(st.lists(cells, min_size=1, max_size=width + 1), max_size=40))]
    if rows and draw(st.integers(0, 3)) == 0:  # yfinance's header
        width = len(rows[0])
        rows = [["Price", *["Close"] * (width - 1)], ["Ticker", *rows[0][1:]], ["Date", *[""] * (width - 1)], *rows[1:]]
    sep = draw(st.sampled_from([",", ",", ";", "\t"]))
    text = "\n".join(sep.join(r) for r in rows) + draw(st.sampled_from(["\n", "", "\r\n"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "latin-1", "utf-16", "cp1252"]))
    data = text.encode(encoding, errors="replace")
    if suffix == ".csv.gz" or draw(st.integers(0, 9)) == 0:
        data = gzip.compress(data)
    if suffix == ".parquet" and draw(st.booleans()):
        data = b"PAR1" + data
    return data, suffix


def check_loads_or_one_line(run_cli, data: bytes, suffix: str, command: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"prices{suffix}"
        path.write_bytes(data)
        out = Path(tmp) / "states.csv"
        args = ["johansen", path] if command == "johansen" else ["filter", path, "--method", "chan", "--out", out]
        res = run_cli(*args)
        written = out.exists()
    assert "Traceback" not in res.stdout + res.stderr
    event(f"exit {res.exit_code}")
    if res.exit_code == 0:
        assert "rank at 95%" in res.stdout if command == "johansen" else written
    else:
        lines = res.stderr.strip().splitlines()
        assert res.exit_code == 2 and len(lines) == 1 and lines[0].startswith("kalcoint: error: "), res.stderr
        assert res.stdout == "" and not written  # no partial output


# run_cli is function-scoped: it runs the CLI in-process and reads (thereby clears) the captured
# output on each call, so one instance serves every example.
ONE_FIXTURE = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@ONE_FIXTURE
@given(case=any_files(), command=st.sampled_from(["johansen", "filter"]))
def test_any_file_loads_or_gives_one_line(run_cli, case, command):
    check_loads_or_one_line(run_cli, *case, command)


@pytest.mark.slow
@settings(ONE_FIXTURE, max_examples=DEEP)
@given(case=any_files(), command=st.sampled_from(["johansen", "filter"]))
def test_any_file_loads_or_gives_one_line_deep(run_cli, case, command):
    check_loads_or_one_line(run_cli, *case, command)

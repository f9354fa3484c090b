"""kalcoint.data: reading price files, checked against the csv module as oracle."""

from __future__ import annotations

import csv
import gzip
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kalcoint import datasets
from kalcoint.data import MIN_ROWS, load_prices, validate_prices
from kalcoint.errors import KalcointError

CHAN = datasets.path("chan_etf")
EU = datasets.path("eu_indices")
COUNTRY = datasets.path("country_etf")
ETF = datasets.path("etf_2008_2016")


# ---------------------------------------------------------------- oracle helpers


def read_rows(path: Path) -> list[list[str]]:
    """The file as text cells, via the csv module (header first); the packaged files are gzip."""
    with gzip.open(path, "rt", encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh))


def oracle(path: Path, columns: list[str]) -> tuple[list[str], np.ndarray]:
    """(date strings, float matrix with NaN for empty cells) for the named columns."""
    rows = read_rows(path)
    idx = [rows[0].index(c) for c in columns]
    values = np.array([[float(r[i]) if r[i] else np.nan for i in idx] for r in rows[1:]])
    return [r[0] for r in rows[1:]], values


def first_valid(path: Path, column: str) -> int:
    """Data-row number of the first non-empty cell of a column."""
    rows = read_rows(path)
    i = rows[0].index(column)
    return next(n for n, r in enumerate(rows[1:]) if r[i])


def write_csv(path: Path, rows: list[list[object]], bom: bool = False, delimiter: str = ",") -> Path:
    with open(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as fh:
        csv.writer(fh, delimiter=delimiter).writerows(rows)
    return path


def chan_slice(columns: list[str], n: int = 120) -> list[list[str]]:
    """Header and the first n data rows of the chan file for Date + columns, as text."""
    rows = read_rows(CHAN)
    idx = [0] + [rows[0].index(c) for c in columns]
    return [[r[i] for i in idx] for r in rows[: n + 1]]


def one_line_error(match: list[str], call) -> str:
    with pytest.raises(KalcointError) as info:
        call()
    msg = str(info.value)
    assert "\n" not in msg
    for part in match:
        assert part in msg, f"{part!r} not in {msg!r}"
    return msg


# ---------------------------------------------------------------- real files


def test_chan_ewa_ewc_ige_figures() -> None:
    df = load_prices(CHAN, ["EWA", "EWC", "IGE"])
    dates, values = oracle(CHAN, ["EWA", "EWC", "IGE"])
    assert df.shape == (1500, 3)
    assert list(df.columns) == ["EWA", "EWC", "IGE"]
    assert df.index.name == "date" and isinstance(df.index, pd.DatetimeIndex)
    assert df.index.is_monotonic_increasing and df.index.is_unique
    assert df.index[0] == pd.Timestamp("2006-04-26") and df.index[-1] == pd.Timestamp("2012-04-09")
    assert all(t == np.float64 for t in df.dtypes)
    assert [d.strftime("%Y-%m-%d") for d in df.index] == dates
    assert np.array_equal(df.to_numpy(), values)  # bit-exact parse
    assert df.iloc[0].tolist() == [16.1, 22.95, 31.76]
    assert df.attrs["dropped_leading_rows"] == 0 and df.attrs["filled"] == 0
    assert df.attrs["source_columns"] == {"EWA": "EWA", "EWC": "EWC", "IGE": "IGE"}


def test_order_follows_assets_and_string_assets() -> None:
    df = load_prices(CHAN, "IGE, EWA,EWC")
    ref = load_prices(CHAN, ["EWA", "EWC", "IGE"])
    assert list(df.columns) == ["IGE", "EWA", "EWC"]
    pd.testing.assert_frame_equal(df, ref[["IGE", "EWA", "EWC"]], check_freq=False)


def test_case_insensitive_ticker() -> None:
    df = load_prices(str(CHAN), ["ewa", "Ewc"])
    assert list(df.columns) == ["EWA", "EWC"]
    assert df.shape == (1500, 2)


def test_all_columns_in_file_order() -> None:
    df = load_prices(ETF)
    rows = read_rows(ETF)
    assert list(df.columns) == rows[0][1:]
    assert df.shape == (2141, 23)
    _, values = oracle(ETF, rows[0][1:])
    assert np.array_equal(df.to_numpy(), values)


@pytest.mark.parametrize("late", ["GDX", "HYG", "XME", "SDS"])
def test_leading_rows_dropped(late: str) -> None:
    start = first_valid(CHAN, late)
    dates, values = oracle(CHAN, ["EWA", late])
    df = load_prices(CHAN, ["EWA", late])
    assert start > 0
    assert df.attrs["dropped_leading_rows"] == start
    assert len(df) == 1500 - start
    assert df.index[0] == pd.Timestamp(dates[start])
    assert np.array_equal(df.to_numpy(), values[start:])


def test_leading_rows_dropped_figures_gdx() -> None:
    df = load_prices(CHAN, ["EWA", "GDX"])
    assert df.attrs["dropped_leading_rows"] == 19
    assert df.index[0] == pd.Timestamp("2006-05-23") and len(df) == 1481


def test_eu_bom_us_dates_with_ffill() -> None:
    rows = read_rows(EU)
    assert rows[0][0] == "Date"  # the oracle strips the BOM as utf-8-sig
    df = load_prices(EU, ["FTSE", "DAX", "AEX", "CAC"], fill="ffill")
    assert df.shape == (2836, 4)
    assert df.index[0] == pd.Timestamp("1996-01-02") and df.index[-1] == pd.Timestamp("2006-12-29")
    _, values = oracle(EU, ["FTSE", "DAX", "AEX", "CAC"])
    assert df.attrs["filled"] == int(np.isnan(values).sum()) == 170
    expected = pd.DataFrame(values).ffill().to_numpy()
    assert np.array_equal(df.to_numpy(), expected)
    assert df.loc["1996-04-30", "AEX"] == df.loc["1996-04-29", "AEX"]


def test_eu_gap_without_fill_names_first_gap() -> None:
    one_line_error(
        ["eu_indices_close.csv", "'AEX'", "1996-04-30", "fill"],
        lambda: load_prices(EU, ["AEX", "DAX"]),
    )


def test_country_bloomberg_names() -> None:
    df = load_prices(COUNTRY, ["EWC", "ewa"])
    assert list(df.columns) == ["EWC", "EWA"]
    assert df.attrs["source_columns"] == {"EWC": "EWC US Equity", "EWA": "EWA US Equity"}
    assert df.shape == (1324, 2)
    assert df.index[0] == pd.Timestamp("2016-01-01") and df.index[-1] == pd.Timestamp("2021-01-27")
    _, values = oracle(COUNTRY, ["EWC US Equity", "EWA US Equity"])
    assert np.array_equal(df.to_numpy(), values)
    full = load_prices(COUNTRY, ["ewc us equity", "EWA US Equity"])
    assert list(full.columns) == ["EWC US Equity", "EWA US Equity"]
    assert np.array_equal(full.to_numpy(), values)


# ---------------------------------------------------------------- shapes round-trip

ASSETS = ["EWA", "EWC", "GDX"]  # GDX starts on data row 19: leading rows are dropped in every shape


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    path = write_csv(tmp_path_factory.mktemp("ref") / "wide.csv", chan_slice(ASSETS))
    df = load_prices(path, ASSETS)
    full = load_prices(CHAN, ASSETS)
    assert df.attrs["dropped_leading_rows"] == 19 and len(df) == 101
    pd.testing.assert_frame_equal(df, full.iloc[:101], check_freq=False)
    return df


def long_rows(header: list[str], by_ticker: bool) -> list[list[str]]:
    """Long rows from the slice (no rows before GDX starts); grouped GDX, EWA, EWC or interleaved by date."""
    rows = chan_slice(ASSETS)
    out = [r for r in ([d, t, v] for d, *vals in rows[1:] for t, v in zip(ASSETS, vals)) if r[2]]
    if by_ticker:
        out.sort(key=lambda r: ["GDX", "EWA", "EWC"].index(r[1]))  # stable: dates stay ascending
    return [header, *out]


def yfinance_rows(fields_first: bool = True) -> list[list[str]]:
    rows = chan_slice(ASSETS)
    k = len(ASSETS)
    fields = ["Close"] * k + ["High"] * k + ["Volume"] * k
    tickers = ASSETS * 3
    head = [["Price", *fields], ["Ticker", *tickers]] if fields_first else [["Ticker", *tickers], ["Price", *fields]]
    body = [[r[0], *r[1:], *(f"{float(v) + 1:.2f}" if v else "" for v in r[1:]), *["1000"] * k] for r in rows[1:]]
    return [*head, ["Date", *[""] * (3 * k)], *body]


def test_roundtrip_wide_csv_with_named_date_column_not_first(tmp_path: Path, reference: pd.DataFrame) -> None:
    rows = chan_slice(ASSETS)
    moved = [[r[1], r[0], *r[2:]] for r in rows]  # EWA, Date, EWC, GDX
    df = load_prices(write_csv(tmp_path / "p.txt", moved), ASSETS)
    pd.testing.assert_frame_equal(df, reference, check_freq=False)


def test_roundtrip_us_dates_bom_tabs(tmp_path: Path, reference: pd.DataFrame) -> None:
    rows = chan_slice(ASSETS)
    us = [rows[0]] + [[f"{int(d[5:7])}/{int(d[8:])}/{d[:4]}", *v] for d, *v in rows[1:]]
    df = load_prices(write_csv(tmp_path / "p.tsv", us, bom=True, delimiter="\t"), ASSETS)
    pd.testing.assert_frame_equal(df, reference, check_freq=False)


def test_roundtrip_iso_with_utc_offsets(tmp_path: Path, reference: pd.DataFrame) -> None:
    rows = chan_slice(ASSETS)
    offs = [rows[0]] + [[f"{d} 00:00:00{'-05:00' if i % 2 else '-04:00'}", *v] for i, (d, *v) in enumerate(rows[1:])]
    df = load_prices(write_csv(tmp_path / "p.csv", offs), ASSETS)
    pd.testing.assert_frame_equal(df, reference, check_freq=False)


@pytest.mark.parametrize("by_ticker", [True, False])
@pytest.mark.parametrize(
    "header, order",  # order: where each output column comes from in (date, ticker, close)
    [
        (["date", "ticker", "close"], [0, 1, 2]),
        (["Symbol", "Date", "Adj Close"], [1, 0, 2]),
        (["Date", "TICKER", "Price"], [0, 1, 2]),
    ],
)
def test_roundtrip_long_csv(
    tmp_path: Path, reference: pd.DataFrame, header: list[str], order: list[int], by_ticker: bool
) -> None:
    rows = long_rows(["date", "ticker", "close"], by_ticker)
    shaped = [header] + [[r[i] for i in order] for r in rows[1:]]
    df = load_prices(write_csv(tmp_path / "long.csv", shaped), ASSETS)
    pd.testing.assert_frame_equal(df, reference, check_freq=False)


@pytest.mark.parametrize("fields_first", [True, False])
def test_roundtrip_yfinance_csv(tmp_path: Path, reference: pd.DataFrame, fields_first: bool) -> None:
    df = load_prices(write_csv(tmp_path / "yf.csv", yfinance_rows(fields_first)), ASSETS)
    pd.testing.assert_frame_equal(df, reference, check_freq=False)


def test_yfinance_all_assets_takes_close_only(tmp_path: Path, reference: pd.DataFrame) -> None:
    df = load_prices(write_csv(tmp_path / "yf.csv", yfinance_rows()))
    assert list(df.columns) == ASSETS
    pd.testing.assert_frame_equal(df, reference, check_freq=False)


def test_roundtrip_parquet_variants(tmp_path: Path, reference: pd.DataFrame) -> None:
    rows = chan_slice(ASSETS)
    wide = pd.DataFrame(
        {
            "Date": [r[0] for r in rows[1:]],
            **{a: [float(r[j + 1]) if r[j + 1] else np.nan for r in rows[1:]] for j, a in enumerate(ASSETS)},
        }
    )
    frames = {
        "wide_str_dates.parquet": wide,
        "wide_datetime_index.pq": wide.assign(Date=pd.to_datetime(wide["Date"])).set_index("Date"),
        "wide_date_objects.parquet": wide.assign(Date=[date.fromisoformat(d) for d in wide["Date"]]),
        "wide_unnamed_index.data": wide.set_index(pd.DatetimeIndex(wide["Date"]))
        .drop(columns="Date")
        .rename_axis(None),
        "long.parquet": wide.melt(id_vars="Date", var_name="Ticker", value_name="Close").dropna(),
        "yfinance.parquet": pd.concat(
            {
                "Close": wide.set_index(pd.DatetimeIndex(wide["Date"], name="Date")).drop(columns="Date"),
                "High": wide.set_index(pd.DatetimeIndex(wide["Date"], name="Date")).drop(columns="Date") + 1,
            },
            axis=1,
        ),
    }
    for name, frame in frames.items():
        frame.to_parquet(tmp_path / name)
        df = load_prices(tmp_path / name, ASSETS)
        pd.testing.assert_frame_equal(df, reference, check_freq=False, obj=name)


def test_validate_prices_frame(reference: pd.DataFrame) -> None:
    frame = reference.copy()
    frame.index = frame.index.strftime("%Y-%m-%d")
    frame.iloc[0, 0] = np.nan  # leading row dropped again
    before = frame.copy()
    out = validate_prices(frame, min_rows=50)
    pd.testing.assert_frame_equal(frame, before)  # input untouched
    assert out.attrs["dropped_leading_rows"] == 1 and out.attrs["source"] == "<frame>"
    pd.testing.assert_frame_equal(out, reference.iloc[1:], check_freq=False, check_names=False, check_flags=False)
    assert out.index.name == "date"


def test_validate_prices_errors(reference: pd.DataFrame) -> None:
    gap = reference.copy()
    gap.iloc[40, 1] = np.nan
    day = reference.index[40].strftime("%Y-%m-%d")
    one_line_error(["model input", "'EWC'", day, "ffill"], lambda: validate_prices(gap, "model input"))
    filled = validate_prices(gap, fill="ffill")
    assert filled.attrs["filled"] == 1 and filled.iloc[40, 1] == reference.iloc[39, 1]
    one_line_error(["<frame>", "numbers, not dates"], lambda: validate_prices(reference.reset_index(drop=True)))
    one_line_error(["<frame>", "at least 2 assets"], lambda: validate_prices(reference[["EWA"]]))
    one_line_error(["needs at least 200 rows, got 101"], lambda: validate_prices(reference, min_rows=200))
    assert MIN_ROWS == 30


# ---------------------------------------------------------------- error paths


def test_error_file_not_found(tmp_path: Path) -> None:
    one_line_error(["nope.csv", "not found"], lambda: load_prices(tmp_path / "nope.csv", ["A", "B"]))


def test_error_directory(tmp_path: Path) -> None:
    one_line_error([str(tmp_path), "directory"], lambda: load_prices(tmp_path, ["A", "B"]))


def test_error_empty_and_header_only(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    one_line_error(["empty.csv", "empty"], lambda: load_prices(tmp_path / "empty.csv", ["A", "B"]))
    (tmp_path / "head.csv").write_text("Date,A,B\n")
    one_line_error(["head.csv", "no data rows"], lambda: load_prices(tmp_path / "head.csv", ["A", "B"]))


def test_error_binary_and_fake_parquet(tmp_path: Path) -> None:
    (tmp_path / "x.xlsx").write_bytes(b"PK\x03\x04\xff\xfe\x00\x81garbage")
    one_line_error(["x.xlsx", "an Excel workbook", "CSV UTF-8"], lambda: load_prices(tmp_path / "x.xlsx", ["A", "B"]))
    (tmp_path / "x.bin").write_bytes(b"Date,A\n\xff\x81garbage")
    one_line_error(["x.bin", "not UTF-8", "CSV"], lambda: load_prices(tmp_path / "x.bin", ["A", "B"]))
    (tmp_path / "x.parquet").write_text("Date,A,B\n2020-01-01,1,2\n")
    one_line_error(["x.parquet", "not a Parquet file"], lambda: load_prices(tmp_path / "x.parquet", ["A", "B"]))
    (tmp_path / "bad.parquet").write_bytes(b"PAR1" + b"\x00" * 40)
    one_line_error(["bad.parquet", "cannot read Parquet"], lambda: load_prices(tmp_path / "bad.parquet", ["A", "B"]))


def test_error_unknown_ticker_lists_close_matches() -> None:
    msg = one_line_error(
        ["chan_etf_close.csv", "unknown ticker 'EWQQ'", "EWQ"], lambda: load_prices(CHAN, ["EWA", "EWQQ"])
    )
    assert "67 price columns" in msg
    one_line_error(["unknown ticker 'ZZZZZZ'", "BGU, BGZ"], lambda: load_prices(CHAN, ["EWA", "ZZZZZZ"]))


def test_error_ambiguous_first_word(tmp_path: Path) -> None:
    rows = [["Dates", "EWC US Equity", "EWC CN Equity"], ["1/4/2016", "1", "2"]]
    path = write_csv(tmp_path / "bbg.csv", rows)
    one_line_error(["bbg.csv", "'EWC'", "EWC US Equity", "EWC CN Equity"], lambda: load_prices(path, ["EWC", "EWA"]))


@pytest.mark.parametrize(
    "assets, expect",
    [
        (["EWC"], "needs at least 2 assets (the dependent one first), got 1: EWC"),
        ("EWC", "got 1: EWC"),
        (["EWC", "ewc"], "asset 'ewc' appears twice"),
        (["EWC", ""], "empty ticker"),
        (["EWC", "EWC US Equity"], "unknown ticker 'EWC US Equity'"),
    ],
)
def test_error_fewer_than_two_or_repeated_assets(assets: object, expect: str) -> None:
    one_line_error(["chan_etf_close.csv", expect], lambda: load_prices(CHAN, assets))


def test_error_same_column_twice() -> None:
    one_line_error(
        ["country_etf_2016_2021_close.csv", "'EWC US Equity' twice"],
        lambda: load_prices(COUNTRY, ["EWC", "EWC US Equity"]),
    )


def test_error_single_price_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "one.csv", [row[:2] for row in chan_slice(["EWA"])])
    one_line_error(["one.csv", "at least 2 assets", "got 1: EWA"], lambda: load_prices(path))


def test_error_duplicate_date(tmp_path: Path) -> None:
    rows = chan_slice(["EWA", "EWC"], 60)
    rows.insert(40, rows[39])
    path = write_csv(tmp_path / "dup.csv", rows)
    one_line_error(["dup.csv", "'Date'", "duplicate date", rows[39][0]], lambda: load_prices(path, ["EWA", "EWC"]))


def test_error_unsorted_dates(tmp_path: Path) -> None:
    rows = chan_slice(["EWA", "EWC"], 60)
    rows[40], rows[41] = rows[41], rows[40]
    path = write_csv(tmp_path / "unsorted.csv", rows)
    one_line_error(
        ["unsorted.csv", "'Date'", "not ascending", rows[41][0], rows[40][0]], lambda: load_prices(path, ["EWA", "EWC"])
    )


def test_error_long_duplicate_and_unsorted(tmp_path: Path) -> None:
    rows = [["date", "ticker", "close"], ["2020-01-02", "A", "1"], ["2020-01-02", "B", "2"], ["2020-01-02", "A", "1.5"]]
    one_line_error(
        ["l.csv", "duplicate date 2020-01-02", "'A'"],
        lambda: load_prices(write_csv(tmp_path / "l.csv", rows), ["A", "B"]),
    )
    rows = [["date", "ticker", "close"], ["2020-01-03", "A", "1"], ["2020-01-02", "A", "2"], ["2020-01-02", "B", "2"]]
    one_line_error(
        ["m.csv", "not ascending", "2020-01-02", "'A'"],
        lambda: load_prices(write_csv(tmp_path / "m.csv", rows), ["A", "B"]),
    )
    rows = [["date", "ticker", "close"], ["2020-01-03", "", "1"], ["2020-01-02", "B", "2"]]
    one_line_error(
        ["n.csv", "'ticker'", "empty ticker", "row 1"],
        lambda: load_prices(write_csv(tmp_path / "n.csv", rows), ["A", "B"]),
    )


def test_error_gap_and_ffill(tmp_path: Path) -> None:
    rows = chan_slice(["EWA", "EWC", "IGE"], 60)
    rows[30][2] = ""
    rows[45][3] = ""
    rows[45][2] = ""
    path = write_csv(tmp_path / "gap.csv", rows)
    msg = one_line_error(
        ["gap.csv", "'EWC'", rows[30][0], "2 more gaps", "fill='ffill'"],
        lambda: load_prices(path, ["EWA", "EWC", "IGE"]),
    )
    assert "missing price" in msg
    df = load_prices(path, ["EWA", "EWC", "IGE"], fill="ffill")
    assert df.attrs["filled"] == 3
    assert df.loc[rows[30][0], "EWC"] == float(rows[29][2])
    assert df.loc[rows[45][0], "IGE"] == float(rows[44][3])
    one_line_error(["gap.csv", "unknown fill method 'bfill'"], lambda: load_prices(path, ["EWA", "EWC"], fill="bfill"))


def test_error_trailing_gap(tmp_path: Path) -> None:
    rows = chan_slice(["EWA", "EWC"], 60)
    rows[-1][2] = ""
    path = write_csv(tmp_path / "tail.csv", rows)
    one_line_error(["tail.csv", "'EWC'", rows[-1][0]], lambda: load_prices(path, ["EWA", "EWC"]))


@pytest.mark.parametrize("ticker", ["EDC", "MWJ", "SMN"])
def test_error_negative_prices_in_chan(ticker: str) -> None:
    dates, values = oracle(CHAN, [ticker])
    first_bad = dates[int(np.argmax(values[:, 0] <= 0))]
    msg = one_line_error(
        ["chan_etf_close.csv", f"'{ticker}'", first_bad, "non-positive"], lambda: load_prices(CHAN, ["EWA", ticker])
    )
    assert {"EDC": "2009-03-02", "MWJ": "2009-03-02", "SMN": "2008-06-17"}[ticker] in msg


def test_error_zero_and_infinite_price(tmp_path: Path) -> None:
    rows = chan_slice(["EWA", "EWC"], 60)
    rows[33][2] = "0"
    one_line_error(
        ["z.csv", "'EWC'", rows[33][0], "non-positive price 0"],
        lambda: load_prices(write_csv(tmp_path / "z.csv", rows), ["EWA", "EWC"]),
    )
    rows[33][2] = "inf"
    one_line_error(
        ["i.csv", "'EWC'", rows[33][0], "non-finite"],
        lambda: load_prices(write_csv(tmp_path / "i.csv", rows), ["EWA", "EWC"]),
    )


def test_error_constant_column(tmp_path: Path) -> None:
    rows = chan_slice(["EWA", "EWC"], 60)
    for r in rows[1:]:
        r[2] = "12.5"
    path = write_csv(tmp_path / "flat.csv", rows)
    one_line_error(["flat.csv", "'EWC'", "constant price 12.5", rows[1][0]], lambda: load_prices(path, ["EWA", "EWC"]))


def test_error_too_few_rows(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "short.csv", chan_slice(["EWA", "EWC"], 20))
    one_line_error(["short.csv", "needs at least 30 rows, got 20"], lambda: load_prices(path, ["EWA", "EWC"]))
    assert len(load_prices(path, ["EWA", "EWC"], min_rows=20)) == 20
    path = write_csv(tmp_path / "late.csv", chan_slice(["EWA", "GDX"], 40))
    one_line_error(["late.csv", "got 21", "dropping 19 leading rows"], lambda: load_prices(path, ["EWA", "GDX"]))
    one_line_error(["min_rows", "got 1"], lambda: load_prices(path, ["EWA", "GDX"], min_rows=1))


@pytest.mark.parametrize(
    "bad, expect",
    [("2006-13-45", "unparseable '2006-13-45'"), ("", "empty date"), ("soon", "unparseable 'soon'")],
)
def test_error_unparseable_date(tmp_path: Path, bad: str, expect: str) -> None:
    rows = chan_slice(["EWA", "EWC"], 60)
    rows[25][0] = bad
    path = write_csv(tmp_path / "dates.csv", rows)
    one_line_error(["dates.csv", "'Date'", expect, "data row 25", "ISO"], lambda: load_prices(path, ["EWA", "EWC"]))


def test_error_first_date_and_day_first(tmp_path: Path) -> None:
    rows = [["Date", "A", "B"], ["26.04.2006", "1", "2"]]
    one_line_error(
        ["a.csv", "'Date'", "'26.04.2006'", "day-first"],
        lambda: load_prices(write_csv(tmp_path / "a.csv", rows), ["A", "B"]),
    )
    rows = [["Date", "A", "B"], ["12/1/2006", "1", "2"], ["13/1/2006", "1.1", "2.2"]]
    one_line_error(
        ["b.csv", "unparseable '13/1/2006'", "data row 2"],
        lambda: load_prices(write_csv(tmp_path / "b.csv", rows), ["A", "B"]),
    )
    rows = [["Date", "A", "B"], ["11/1/2006", "1", "2"], ["12/1/2006", "1.1", "2.2"], ["1/2/2006", "1.2", "2.3"]]
    one_line_error(
        ["c.csv", "not ascending", "2006-01-02", "2006-12-01"],
        lambda: load_prices(write_csv(tmp_path / "c.csv", rows), ["A", "B"]),
    )


@pytest.mark.parametrize("bad", ["12,5", "abc", "$30.10"])
def test_error_non_numeric_cell(tmp_path: Path, bad: str) -> None:
    rows = chan_slice(["EWA", "EWC"], 60)
    rows[44][2] = bad
    path = write_csv(tmp_path / "num.csv", rows)
    one_line_error(
        ["num.csv", "'EWC'", rows[44][0], repr(bad), "non-numeric"], lambda: load_prices(path, ["EWA", "EWC"])
    )


def test_error_no_common_period_and_empty_column(tmp_path: Path) -> None:
    rows = [["Date", "A", "B"]] + [
        [f"2020-01-{d:02d}", "1" if d < 10 else "", "" if d < 10 else "2"] for d in range(1, 20)
    ]
    one_line_error(
        ["p.csv", "'B'", "2020-01-10", "common period"],
        lambda: load_prices(write_csv(tmp_path / "p.csv", rows), ["A", "B"]),
    )
    rows = [["Date", "A", "B"]] + [[f"2020-01-{d:02d}", "1", ""] for d in range(1, 20)]
    one_line_error(["q.csv", "'B'", "no prices"], lambda: load_prices(write_csv(tmp_path / "q.csv", rows), ["A", "B"]))


def test_error_ragged_first_row(tmp_path: Path) -> None:
    rows = [["Date", "A", "B"], ["2020-01-01", "1", "2", "3"], ["2020-01-02", "1", "2"]]
    one_line_error(
        ["r.csv", "header has 3 fields", "first data row has 4"],
        lambda: load_prices(write_csv(tmp_path / "r.csv", rows), ["A", "B"]),
    )


def test_error_yfinance_without_close(tmp_path: Path) -> None:
    rows = [["Price", "High", "High"], ["Ticker", "A", "B"], ["Date", "", ""], ["2020-01-02", "1", "2"]]
    one_line_error(["yf.csv", "without Close"], lambda: load_prices(write_csv(tmp_path / "yf.csv", rows), ["A", "B"]))


def test_cli_one_asset_is_told_in_the_command_line_s_words(run_cli) -> None:
    """A CLI user who gives one ticker is not told Python syntax (``assets=[...]``)."""
    res = run_cli("johansen", CHAN, "--assets", "EWA")
    assert res.exit_code == 2
    assert res.stderr == (
        f"kalcoint: error: {CHAN}: needs at least 2 assets (the dependent one first), got 1: EWA; "
        "add a hedge asset after it, like EWC,EWA\n"
    )

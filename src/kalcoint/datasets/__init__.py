"""Real daily closes shipped with kalcoint, as statsmodels and arch ship theirs.

Four panels, each a gzip-compressed copy of the original CSV, byte for byte: the loader reads
them as they are (a byte-order mark, US dates and Bloomberg-style names included), so the
same files serve the examples, the tests of the loader and the benchmarks.

=================  ======================================================  ===========
name               what                                                    rows x cols
=================  ======================================================  ===========
``chan_etf``       67 US ETFs, 2006-04-26 to 2012-04-09 (Chan's book)      1500 x 67
``etf_2008_2016``  23 ETFs, 2008-01-02 to 2016-07-01                       2141 x 23
``eu_indices``     AEX, DAX, FTSE 100, CAC 40, 1996-01-02 to 2006-12-29    2836 x 4
``country_etf``    45 country ETFs, 2016-01-01 to 2021-01-27               1324 x 45
=================  ======================================================  ===========

:func:`load` returns a panel, :func:`path` the packaged file (for :func:`kalcoint.load_prices`
or the command line, where ``dataset:NAME`` stands for it), :func:`names` the names and
:func:`describe` one dataset's provenance and quirks.

Examples
--------
>>> import kalcoint as kc
>>> kc.datasets.names()
('chan_etf', 'etf_2008_2016', 'eu_indices', 'country_etf')
>>> kc.datasets.load("chan_etf").shape
(1500, 67)
>>> prices = kc.datasets.load("chan_etf", ["EWA", "EWC", "IGE"])
>>> jo = kc.johansen(prices)
>>> [round(float(s), 2) for s in jo.trace_stat]   # Chan's Example 2.7: 34.4, 17.5, 4.5
[34.43, 17.53, 4.47]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from kalcoint.errors import KalcointError

__all__ = ["Dataset", "describe", "load", "names", "path"]


@dataclass(frozen=True)
class Dataset:
    """One packaged panel: its file, shape, provenance and quirks.

    Attributes
    ----------
    name : str
        The name :func:`load` and :func:`path` take.
    file : str
        The packaged file (gzip-compressed CSV) beside this module.
    shape : tuple of int
        Rows (trading days) and price columns of the file.
    title : str
        One line: what the prices are.
    notes : str
        Provenance, layout quirks and the published figures the file reproduces.
    """

    name: str
    file: str
    shape: tuple[int, int]
    title: str
    notes: str


_DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            "chan_etf",
            "chan_etf_close.csv.gz",
            (1500, 67),
            "Daily closes of 67 US ETFs, 2006-04-26 to 2012-04-09",
            "From the data file of E. P. Chan, *Algorithmic Trading* (Wiley, 2013). ISO dates; an "
            "empty cell means the fund was not yet trading; dividends were adjusted by "
            "subtraction, so three leveraged funds (EDC, MWJ, SMN) go below zero. Reproduces "
            "Chan's Example 2.7 (Johansen on EWA, EWC, IGE: trace 34.4, 17.5, 4.5; maximum "
            "eigenvalue 16.9, 13.1, 4.5), 2.8 (that portfolio traded linearly: half-life 23 "
            "days, APR 12.6%, Sharpe 1.4; kalcoint: 22.66 days, 12.57%, 1.39) and 3.3 (Kalman "
            "filter of EWC on EWA, delta 1e-4, Ve 0.001, entry = exit = 1: APR 26.2%, Sharpe "
            "2.4; kalcoint: 26.23%, 2.36).",
        ),
        Dataset(
            "etf_2008_2016",
            "etf_2008_2016_close.csv.gz",
            (2141, 23),
            "Daily closes of 23 ETFs, 2008-01-02 to 2016-07-01",
            "Dividend-adjusted closes of equity, sector and bond ETFs (EEM, EWG, TIP, ... DIA). "
            "ISO dates; prices written with full float precision; no gaps. The second universe of "
            "the out-of-sample study.",
        ),
        Dataset(
            "eu_indices",
            "eu_indices_close.csv.gz",
            (2836, 4),
            "Daily closes of AEX, DAX, FTSE 100 and CAC 40, 1996-01-02 to 2006-12-29",
            "The file starts with a UTF-8 byte-order mark and writes US dates (M/D/YYYY); a few "
            "cells are empty on one market's holidays (170 in all), so a basket of them needs "
            "fill='ffill' or a refusal names the gap.",
        ),
        Dataset(
            "country_etf",
            "country_etf_2016_2021_close.csv.gz",
            (1324, 45),
            "Daily closes of 45 country ETFs, 2016-01-01 to 2021-01-27",
            "Bloomberg-style column names (``EWC US Equity``), matched by their first word "
            "(``EWC``); US dates (M/D/YYYY); the first column is named ``Dates``.",
        ),
    )
}


def names() -> tuple[str, ...]:
    """The names of the packaged datasets, in the order of the table above."""
    return tuple(_DATASETS)


def describe(name: str) -> Dataset:
    """The record of dataset ``name``: file, shape, title and notes.

    Raises
    ------
    KalcointError
        ``name`` is not a packaged dataset (the message lists the names).
    """
    try:
        return _DATASETS[name]
    except KeyError:
        raise KalcointError(f"no dataset named {name!r}; the datasets are {', '.join(_DATASETS)}") from None


def path(name: str) -> Path:
    """The packaged file of dataset ``name``: a gzip-compressed CSV that the loader reads as it is.

    Examples
    --------
    >>> import kalcoint as kc
    >>> kc.datasets.path("eu_indices").name
    'eu_indices_close.csv.gz'
    >>> kc.load_prices(kc.datasets.path("eu_indices"), ["DAX", "CAC"], fill="ffill").shape
    (2836, 2)
    """
    entry = describe(name)
    return Path(str(resources.files(__name__).joinpath(entry.file)))


def load(name: str, assets: Sequence[str] | str | None = None, fill: str | None = None) -> pd.DataFrame:
    """Dataset ``name`` as a price panel.

    Parameters
    ----------
    name : str
        One of :func:`names`.
    assets : sequence of str or str, optional
        Tickers to keep, dependent asset first. ``None`` returns the whole file as it is:
        every column, every row, a gap as NaN (:func:`kalcoint.data.read_price_table`).
        Given, the panel is checked as :func:`kalcoint.load_prices` checks a file (leading
        rows before every asset trades are dropped; a gap is an error unless ``fill``).
    fill : {None, "ffill"}
        With ``assets``: carry the last price over a gap.

    Returns
    -------
    pandas.DataFrame
        ``(n_dates, k)`` float64 prices indexed by a ``DatetimeIndex`` named ``"date"``.

    Examples
    --------
    >>> import kalcoint as kc
    >>> kc.datasets.load("country_etf", ["EWG", "EWQ"]).columns.tolist()
    ['EWG', 'EWQ']
    """
    from kalcoint.data import load_prices, read_price_table

    file = path(name)
    if assets is None:
        if fill is not None:
            raise KalcointError("fill applies to a chosen set of assets; give assets too")
        return read_price_table(file)
    return load_prices(file, assets, fill=fill)

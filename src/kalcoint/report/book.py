"""The data and page of a book (:mod:`kalcoint.book`): equity and drawdown, returns by month,
each basket's contribution, today's holdings and orders, the selections period by period.

A basket's contribution over its period is the sum over its days of its daily return divided
by the number of baskets selected in the period (the study's equal capital): the book's
study-convention return of a day is the sum of the day's contributions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..book import Book, load
from . import charts


@dataclass
class BookReport:
    """Everything the book page shows.

    Attributes
    ----------
    path : Path
    status : dict
        :meth:`kalcoint.book.Book.status`.
    history : DataFrame
        :meth:`kalcoint.book.Book.history` with ``equity`` (capital over the start).
    monthly : DataFrame
        Returns by month (rows years, columns 1..12), compounded from the book's daily returns.
    baskets : DataFrame
        :meth:`kalcoint.book.Book.baskets` with ``contribution`` (module docstring).
    orders : list of dict
        The last day's trades per ticker (target minus the previous close's shares).
    kalcoint_version, created_at : str
    """

    path: Path
    status: dict[str, Any]
    history: pd.DataFrame
    monthly: pd.DataFrame
    baskets: pd.DataFrame
    orders: list[dict[str, Any]]
    kalcoint_version: str
    created_at: str


def monthly_returns(dates: pd.Series, returns: pd.Series) -> pd.DataFrame:
    """Compounded returns by calendar month (rows: years; columns: months 1..12; NaN: no day).

    Examples
    --------
    >>> d = pd.Series(pd.to_datetime(["2024-01-02", "2024-01-03", "2024-02-01"]))
    >>> monthly_returns(d, pd.Series([0.1, 0.1, -0.5])).loc[2024, [1, 2]].round(4).tolist()
    [0.21, -0.5]
    """
    frame = pd.DataFrame({"r": np.asarray(returns, dtype=np.float64)}, index=pd.DatetimeIndex(dates))
    grown = (1.0 + frame["r"]).groupby([frame.index.year, frame.index.month]).prod() - 1.0
    table = grown.unstack()
    return table.reindex(columns=range(1, 13))


def book_report(book: str | os.PathLike[str] | Book) -> BookReport:
    """Read a book file (or an open :class:`~kalcoint.book.Book`) and compute its page's data."""
    from .. import __version__

    b = load(book) if isinstance(book, (str, os.PathLike)) else book
    history = b.history()
    baskets = b.baskets()
    if len(history):
        history["equity"] = history["capital"] / b.options.capital
        n_sel = baskets.groupby("period")["id"].count() if len(baskets) else pd.Series(dtype=float)
        contrib = []
        for _, x in baskets.iterrows():
            col = f"return_{x['id']}"
            total = float(history[col].fillna(0.0).sum()) if col in history else 0.0
            contrib.append(total / int(n_sel[x["period"]]))
        baskets["contribution"] = contrib
    orders = []
    if len(history) >= 1:
        now = history.iloc[-1]
        before = history.iloc[-2] if len(history) > 1 else None
        for t in b.tickers:
            want = float(now[f"shares_{t}"]) - (0.0 if before is None else float(before[f"shares_{t}"]))
            if want != 0.0:
                orders.append({"ticker": t, "shares": want, "target": float(now[f"shares_{t}"])})
    monthly = monthly_returns(history["date"], history["return"]) if len(history) else pd.DataFrame()
    return BookReport(
        path=Path(b.path),
        status=b.status(),
        history=history,
        monthly=monthly,
        baskets=baskets,
        orders=orders,
        kalcoint_version=__version__,
        created_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


@charts.styled
def equity_drawdown(history: pd.DataFrame) -> Any:
    """The book's equity (capital over the start) and its drawdown."""
    x = pd.DatetimeIndex(history["date"]).to_numpy()
    fig, axes = charts.new_figure(4.2, 2, 1, sharex=True, height_ratios=[2.2, 1])
    eq = history["equity"].to_numpy()
    axes[0, 0].plot(x, eq, color=charts.INK, lw=1.1, label="book (netted, its costs)")
    study = np.cumprod(1.0 + history["study_return"].to_numpy())
    axes[0, 0].plot(x, study, color=charts.MUTED, lw=0.9, ls="--", label="study convention")
    axes[0, 0].set_title("equity (capital over the start)", fontsize=9)
    axes[0, 0].legend(loc="upper left")
    dd = eq / np.maximum.accumulate(eq) - 1.0
    axes[1, 0].fill_between(x, dd, 0.0, color="#d62728", alpha=0.35, lw=0)
    axes[1, 0].set_title("drawdown", fontsize=9)
    charts._date_axis(axes)
    return fig


@charts.styled
def contributions(baskets: pd.DataFrame) -> Any:
    """Each basket's contribution to the book's return, period by period."""
    fig, axes = charts.new_figure(3.0)
    ax = axes[0, 0]
    labels = [f"{p}:{a}" for p, a in zip(baskets["period"], baskets["assets"])]
    values = baskets["contribution"].to_numpy()
    ax.bar(np.arange(len(values)), values, color=np.where(values >= 0, "#2ca02c", "#d62728"))
    ax.axhline(0.0, color=charts.MUTED, lw=0.6)
    ax.set_xticks(np.arange(len(values)), labels, rotation=90, fontsize=6)
    ax.set_title("contribution of each basket (period:assets) to the book's return", fontsize=9)
    return fig


def render_book(report: BookReport) -> str:
    """The book's page as HTML text."""
    from .render import _page, _svg

    svgs = {}
    if len(report.history):
        svgs["equity"] = _svg(equity_drawdown(report.history), "equity")
    if len(report.baskets) and "contribution" in report.baskets:
        svgs["contrib"] = _svg(contributions(report.baskets), "contrib")
    return _page(
        "book.html.j2", title=f"{report.path.name} · kalcoint book", r=report, s=report.status, svgs=svgs,
        o=report.status["options"],
    )  # fmt: skip


def write_book_report(report: BookReport, path: str | os.PathLike[str]) -> Path:
    """Write the book's page atomically."""
    from .render import write_html

    return write_html(render_book(report), path)

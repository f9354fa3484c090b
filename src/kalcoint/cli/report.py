"""``kalcoint report``: one self-contained HTML page for a basket (a price file) or a live model
file."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import KalcointError
from ._common import app, err_console, is_terminal, parse_assets, require_parent, dataset_path

SQLITE_MAGIC = b"SQLite format 3\x00"


def _is_sqlite(path: Path) -> bool:
    """A model file is SQLite: tell it from a price file by its first 16 bytes."""
    try:
        with open(path, "rb") as fh:
            return fh.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


@app.command()
def report(
    source: Annotated[
        Path,
        typer.Argument(
            help="A price file (CSV or Parquet) for a basket's report, or a model file (kalcoint tune --save) "
            "for a live model's page; dataset:NAME reads a packaged dataset (kalcoint datasets).",
            show_default=False,
            callback=dataset_path,
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write (one self-contained page).")],
    assets: Annotated[
        str | None,
        typer.Option("--assets", help="Comma-separated tickers, dependent asset first (default: every column)."),
    ] = None,
    cost_bps: Annotated[
        float | None, typer.Option("--cost-bps", help="Backtest costs, bps of traded value (default 5).")
    ] = None,
    window: Annotated[
        int | None, typer.Option("--window", help="Walk-forward estimation window, trading days (default 250).")
    ] = None,
    strategy: Annotated[
        str | None, typer.Option("--strategy", help="Backtest strategy: bands or linear (default bands).")
    ] = None,
    iterations: Annotated[
        int | None, typer.Option("--iterations", min=1, help="Seed passes, iteration cap for mle/em (default 2000).")
    ] = None,
    train_fraction: Annotated[
        float | None,
        typer.Option(
            "--train-fraction", help="Share of rows tuned on for the comparison's out-of-sample columns (default 0.7)."
        ),
    ] = None,
    fill: Annotated[
        str | None, typer.Option("--fill", help="Fill gaps inside the chosen columns: 'ffill' (default: refuse).")
    ] = None,
    models: Annotated[
        str | None,
        typer.Option(
            "--models",
            help="Comma-separated methods to backtest, in and out of sample (default: all of static, chan, "
            "seed, mle, em, als; the page lists the ones run).",
        ),
    ] = None,
    bootstrap: Annotated[
        int | None,
        typer.Option(
            "--bootstrap",
            min=0,
            help="Bootstrap samples of the test of alpha11 = 1 (default 199, as compare; 0: the statistic "
            "without a p-value, and the page says so).",
        ),
    ] = None,
) -> None:
    """Write a tearsheet: the comparison, portfolios, hedge ratios, tuning passes, backtests and
    trades of a basket; or a live model's spread, position, versions and P&L."""
    require_parent(out, "--out")
    if not source.is_file():
        raise KalcointError(f"{source} does not exist or is not a file: give a price file or a model file")
    given = {
        "--cost-bps": cost_bps,
        "--window": window,
        "--strategy": strategy,
        "--iterations": iterations,
        "--train-fraction": train_fraction,
        "--assets": assets,
        "--fill": fill,
        "--bootstrap": bootstrap,
        "--models": models,
    }
    if _is_sqlite(source):
        extra = [flag for flag, value in given.items() if value is not None]
        if extra:
            raise KalcointError(
                f"{', '.join(extra)} apply to a price file; {source} is a {'book' if _is_book(source) else 'model'} "
                "file, whose page needs only --out"
            )
        if _is_book(source):
            _book_page(source, out)
        else:
            _live_page(source, out)
    else:
        from ..report import Settings

        defaults = Settings()
        settings = Settings(
            cost_bps=defaults.cost_bps if cost_bps is None else cost_bps,
            window=defaults.window if window is None else window,
            strategy=defaults.strategy if strategy is None else strategy,
            iterations=defaults.iterations if iterations is None else iterations,
            train_fraction=defaults.train_fraction if train_fraction is None else train_fraction,
            bootstrap=bootstrap,
            models=defaults.models if models is None else tuple(m.strip() for m in models.split(",") if m.strip()),
        )
        _basket_page(source, out, assets, settings, fill)


def _is_book(path: Path) -> bool:
    """A book file: SQLite with the book's application id (header bytes 68-71)."""
    from ..book import APPLICATION_ID

    try:
        with open(path, "rb") as fh:
            return int.from_bytes(fh.read(72)[68:72], "big") == APPLICATION_ID
    except OSError:
        return False


def _book_page(source: Path, out: Path) -> None:
    from ..report.book import book_report, write_book_report

    report = book_report(source)
    write_book_report(report, out)
    err_console.print(
        f"wrote {out} (book {source.name}: {len(report.baskets)} baskets, last date {report.status['last_date']})",
        style="dim",
        highlight=False,
    )


def _live_page(source: Path, out: Path) -> None:
    from ..live import load_model
    from ..report import live_report, write_live_report

    report = live_report(load_model(source))
    write_live_report(report, out)
    err_console.print(
        f"wrote {out} (live model {source.name}: {', '.join(report.assets)}, last date {report.status['last_date']})",
        style="dim",
        highlight=False,
    )


def _basket_page(source: Path, out: Path, assets: str | None, settings: Any, fill: str | None) -> None:
    from ..report import basket_report, write_basket_report
    from ..report.basket import check_data, check_settings
    from .core import load

    settings = check_settings(settings)
    from ..report.render import comparison_charts

    frame = load(source, parse_assets(assets), fill)
    check_data(frame, settings)
    drawn: dict = {}  # the comparison's charts, drawn here while the workers run the backtests
    # a spinner on a terminal; elsewhere (logs, pipes) the work runs silently
    status = err_console.status("report: comparison, re-estimations and bootstrap...", spinner="dots")
    with status if is_terminal() else contextlib.nullcontext():

        def tick(done: int, total: int) -> None:
            status.update(f"report: re-estimations, bootstrap and backtests {done}/{total}...")

        result = basket_report(
            frame,
            settings,
            source=source,
            progress=tick,
            on_comparison=lambda comp: drawn.update(comparison_charts(comp)),
        )
        status.update("report: drawing...")
        write_basket_report(result, out, drawn)
    size = f"{out.stat().st_size / 1e6:.2f} MB; " if out.is_file() else ""  # not for '-' or a device
    err_console.print(
        f"wrote {out} ({size}computed in {result.provenance.elapsed_s:.1f} s)", style="dim", highlight=False
    )


__all__ = ["report"]

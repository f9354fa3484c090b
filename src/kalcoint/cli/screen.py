"""`kalcoint screen`: evaluate every basket of a universe, locally or on a Dask cluster."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import ProgressColumn
from rich.table import Table
from rich.text import Text

from .._checks import check_resume
from ..errors import KalcointError
from ._common import (
    app,
    console,
    dataset_path,
    err_console,
    fmt,
    is_terminal,
    literal,
    parse_assets,
    require_parent,
    warn,
)


def _cell(value: object, spec: str = ".3g") -> str:
    return fmt(value, spec, inf="inf")  # an infinite half-life reads "inf", not "-"


def _top_table(ranked, by: str, total: int) -> Table:
    table = Table(title=f"Top {len(ranked)} of {total} baskets with a {by} figure, whatever their tuning status")
    for name in (
        "#",
        "assets",
        "status",
        "nobs",
        "trace r<=0",
        "rank",
        "static p",
        "half-life",
        "alpha11",
        "degen.",
        "dynamic p",
        "oos p",
        "oos static p",
    ):
        table.add_column(name, justify="left" if name == "assets" else "right")
    for i, row in enumerate(ranked.itertuples(index=False), start=1):
        table.add_row(
            str(i),
            ",".join(row.assets),
            _status(row.status, row.reason),
            _cell(row.nobs),
            _cell(row.trace_r0, ".4g"),
            _cell(row.rank_95),
            _cell(row.static_adf_pvalue),
            _cell(row.static_half_life),
            _cell(row.alpha11),
            _cell(row.degenerate),
            _cell(row.dynamic_adf_pvalue),
            _cell(row.oos_adf_pvalue),
            _cell(row.oos_static_adf_pvalue),
        )
    return table


def _status(status: str, reason: str) -> str:
    """``ok``, or the failed stage (``failed: tuning``): the whole reason is in the table."""
    if status != "ok" and reason:
        return f"{status}: {reason.split(':', 1)[0]}"
    return status


@app.command()
def screen(
    prices: Annotated[
        Path,
        typer.Argument(
            help="Price file (CSV or Parquet, wide/long/yfinance layout), or dataset:NAME (kalcoint datasets); "
            "each column may start on its own date.",
            show_default=False,
            callback=dataset_path,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Result table: .parquet/.pq (assets as a list column) or "
            '.csv (assets as one "A,B,C" string), one row per basket.',
            show_default=False,
        ),
    ],
    size: Annotated[int, typer.Option("--size", help="Assets per basket: 2, 3 or 4.")] = 3,
    assets: Annotated[
        Optional[str],
        typer.Option(
            "--assets", help="Comma-separated tickers of the universe (default: every column, in file order)."
        ),
    ] = None,
    method: Annotated[str, typer.Option("--method", help="Tuning method: seed (the method's passes) or mle.")] = "seed",
    iterations: Annotated[
        Optional[int],
        typer.Option(
            "--iterations",
            min=1,
            help="Seed passes per basket (default 30: the passes collapse within ~10-25 passes, see docs/method.md §9, "
            "and 30 keep a basket near 5 ms); iteration cap for mle (default 200).",
        ),
    ] = None,
    tol: Annotated[Optional[float], typer.Option("--tol", help="Early stop of the passes (relative change).")] = None,
    dependent: Annotated[
        str,
        typer.Option(
            "--dependent",
            help="Which asset of a basket is the dependent one: 'first' (the one first in the universe's "
            "column order; default), 'all' (each in turn, k baskets per combination), or a ticker "
            "(only baskets containing it, as the dependent).",
        ),
    ] = "first",
    workers: Annotated[
        Optional[int],
        typer.Option(
            "--workers", min=0, help="Local Dask worker processes (default: all cores; 0 = run in this process)."
        ),
    ] = None,
    scheduler: Annotated[
        Optional[str],
        typer.Option(
            "--scheduler",
            help="Run on an existing Dask cluster (tcp://host:port, started with `dask scheduler` and "
            "`dask worker`); workers must import kalcoint.",
        ),
    ] = None,
    batch_size: Annotated[
        Optional[int],
        typer.Option("--batch-size", min=1, help="Baskets per task (default: ~16 tasks per worker, at most 500)."),
    ] = None,
    tls_ca_file: Annotated[
        Optional[Path],
        typer.Option("--tls-ca-file", help="TLS scheduler (tls://host:port): the cluster's CA certificate (PEM)."),
    ] = None,
    tls_cert: Annotated[
        Optional[Path], typer.Option("--tls-cert", help="TLS: this client's certificate (PEM).")
    ] = None,
    tls_key: Annotated[Optional[Path], typer.Option("--tls-key", help="TLS: this client's private key (PEM).")] = None,
    top: Annotated[int, typer.Option("--top", min=0, help="Print the best N baskets.")] = 20,
    rank_by: Annotated[
        str,
        typer.Option(
            "--rank-by",
            help="Ranking of the printed table: static (static-portfolio ADF p-value; default: it does not "
            "depend on the tuning, whose dynamic p-value is near zero once the passes collapse), "
            "dynamic, oos (out-of-sample dynamic ADF p-value) or trace (r<=0 statistic).",
        ),
    ] = "static",
    min_rows: Annotated[int, typer.Option("--min-rows", help="Fewest common dates a basket needs.")] = 252,
    train_fraction: Annotated[
        float,
        typer.Option(
            "--train-fraction", help="Out-of-sample: tune on this first share of the common history, test on the rest."
        ),
    ] = 0.7,
    oos_start: Annotated[
        str,
        typer.Option(
            "--oos-start",
            help="Out-of-sample filter start: continue (from the last tuned state; default) or prior "
            "(the model's own prior).",
        ),
    ] = "continue",
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the table in --out: skip baskets already there.")
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --out.")] = False,
    limit: Annotated[Optional[int], typer.Option("--limit", min=0, help="Evaluate at most N pending baskets.")] = None,
    checkpoint: Annotated[
        float,
        typer.Option(
            "--checkpoint", min=1.0, help="Rewrite --out with the rows done at least every this many seconds."
        ),
    ] = 30.0,
    fill: Annotated[
        Optional[str],
        typer.Option("--fill", help="'ffill' fills gaps between an asset's first and last price (default: refuse)."),
    ] = None,
) -> None:
    """Screen every basket of --size assets: Johansen, static and dynamic ADF, tuned alpha11, out-of-sample figure."""
    from importlib import import_module

    sc = import_module("kalcoint.screen")  # the module: kalcoint.screen is the function

    require_parent(out, "--out")
    if iterations is None:
        iterations = sc.DEFAULT_ITERATIONS if method == "seed" else 200
    if rank_by not in sc.RANK_BY:
        raise KalcointError(f"--rank-by {rank_by!r} is not one of {', '.join(sc.RANK_BY)}")
    options = sc.ScreenOptions(
        size=size,
        method=method,
        iterations=iterations,
        tol=tol,
        min_rows=min_rows,
        train_fraction=train_fraction,
        oos_start=oos_start,
    )
    security = tls_settings(tls_ca_file, tls_cert, tls_key)
    sc.check_scheduler(scheduler, security)
    check_resume(resume, overwrite)
    universe = sc.load_universe(prices, parse_assets(assets), fill=fill)
    if universe.attrs.get("non_positive"):
        warn(f"non-positive prices kept in {', '.join(universe.attrs['non_positive'])} (a screen uses price levels)")
    n_workers = sc.default_workers() if workers is None else workers
    started = time.perf_counter()
    with progress_bar("screening", scheduler, n_workers) as advance:
        try:
            table = sc.screen(
                universe,
                options,
                dependent=dependent,
                workers=n_workers,
                scheduler=scheduler,
                security=security,
                batch_size=batch_size,
                out=out,
                resume=resume,
                overwrite=overwrite,
                limit=limit,
                checkpoint=checkpoint,
                progress=advance,
            )
        except KeyboardInterrupt:
            err_console.print(
                f"interrupted: the baskets done are in {out}; run again with --resume to continue", style="yellow"
            )
            raise typer.Exit(130) from None
    elapsed = time.perf_counter() - started
    counts = table["status"].value_counts()
    degenerate = int(table.loc[table["status"] == "ok", "degenerate"].fillna(False).sum())
    console.print(
        f"{len(table)} baskets in {out} ({counts.get('ok', 0)} ok, of which {degenerate} degenerate; "
        f"{counts.get('short', 0)} short, {counts.get('failed', 0)} failed); {elapsed:.1f} s"
    )
    if top:
        ranked = sc.rank_table(table, rank_by)
        console.print(_top_table(ranked.head(top), rank_by, len(ranked)))


def tls_settings(ca_file: Path | None, cert: Path | None, key: Path | None):
    """``--tls-ca-file``, ``--tls-cert``, ``--tls-key``: all three or none."""
    from ..screen import tls_security

    if ca_file is None and cert is None and key is None:
        return None
    if ca_file is None or cert is None or key is None:
        raise KalcointError("--tls-ca-file, --tls-cert and --tls-key go together: give all three")
    return tls_security(ca_file, cert, key)


class EtaClock:
    """Time left from the mean rate since the first progress report.

    A screen's first report (0 done) comes when its tasks are submitted: the cluster's start
    is not in the rate, and every worker's first batch is. A mean over the whole run, unlike
    rich's rate over the last 30 s, does not jump when batches end in bursts.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.first: tuple[float, int] | None = None

    def update(self, done: int, total: int) -> float | None:
        """Seconds left after ``done`` of ``total`` units, or None before the rate is known."""
        now = self.clock()
        if self.first is None:
            self.first = (now, done)
            return None
        t0, done0 = self.first
        if done <= done0 or now <= t0:
            return None
        return (now - t0) * (total - done) / (done - done0)


@contextlib.contextmanager
def progress_bar(label: str, scheduler: str | None, workers: int) -> Iterator[Callable[[int, int], None]]:
    """A ``progress(done, total)`` callback drawing a bar on a terminal (a no-op elsewhere),
    labelled with ``label`` and where the work runs, with the :class:`EtaClock` estimate."""
    where = f"scheduler {scheduler}" if scheduler else (f"{workers} local workers" if workers else "this process")
    with _progress() as bar:
        task = None
        eta = EtaClock()

        def advance(done: int, total: int) -> None:
            nonlocal task
            if bar is None:
                return
            left = eta.update(done, total)
            if task is None:
                task = bar.add_task(literal(f"{label} ({where})"), total=total, eta=left)
            bar.update(task, completed=done, total=total, eta=left)

        yield advance


def _progress():
    import contextlib

    if not is_terminal():
        return contextlib.nullcontext(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        _EtaColumn(),
        console=err_console,
        transient=False,
    )


class _EtaColumn(ProgressColumn):
    """The task's ``eta`` field (:class:`EtaClock`), as H:MM:SS."""

    def render(self, task) -> Text:
        left = task.fields.get("eta")
        if task.finished:
            left = 0.0
        if left is None:
            return Text("-:--:--", style="progress.remaining")
        minutes, seconds = divmod(int(round(left)), 60)
        hours, minutes = divmod(minutes, 60)
        return Text(f"{hours}:{minutes:02d}:{seconds:02d}", style="progress.remaining")

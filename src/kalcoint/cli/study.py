"""`kalcoint study`: out-of-sample study of every model over a universe (formation / trading periods)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.table import Table

from .._checks import check_resume
from ..errors import KalcointError
from ._common import (
    DependentOpt,
    BasketAssetsOpt,
    BasketSizeOpt,
    CostBpsOpt,
    EntryOpt,
    ExitOpt,
    StrategyOpt,
    dataset_path,
    app,
    console,
    err_console,
    fmt,
    parse_assets,
    require_dir_writable,
    require_parent,
)
from .screen import progress_bar, tls_settings


def _ci(ci: list[float] | None) -> str:
    return "-" if ci is None else f"[{ci[0]:.2f}, {ci[1]:.2f}]"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def summary_table(summary: dict[str, Any], title: str) -> Table:
    """The terminal table: one row per model, the keys of the JSON summary."""
    table = Table(title=title)
    for name in (
        "model",
        "APR",
        "Sharpe",
        "Sharpe 95% CI",
        "max DD",
        "Calmar",
        "Sharpe - chan",
        "diff 95% CI",
        "beats chan",
    ):
        table.add_column(name, justify="left" if name == "model" else "right")
    for model, m in summary["models"].items():
        vs = m["vs_chan"] or {}
        table.add_row(
            model,
            _pct(m["apr"]),
            fmt(m["sharpe"], ".2f"),
            _ci(m["sharpe_ci"]),
            _pct(m["max_drawdown"]),
            fmt(m["calmar"], ".2f"),
            fmt(vs.get("sharpe_diff"), "+.2f"),
            _ci(vs.get("sharpe_diff_ci")),
            _pct(vs.get("win_share")) if vs else "-",
        )
    return table


@app.command()
def study(
    prices: Annotated[
        Path,
        typer.Argument(
            help="Price file (CSV or Parquet), or dataset:NAME (kalcoint datasets); each column may start on "
            "its own date.",
            show_default=False,
            callback=dataset_path,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Table, one row per (period, basket, model): .parquet/.pq or .csv.", show_default=False
        ),
    ],
    assets: BasketAssetsOpt = None,
    size: BasketSizeOpt = 2,
    formation: Annotated[
        int, typer.Option("--formation", help="Formation window (rows) the baskets are selected on.")
    ] = 250,
    trading: Annotated[
        int, typer.Option("--trading", help="Trading window (rows); periods roll by this many rows.")
    ] = 125,
    top: Annotated[int, typer.Option("--top", help="Baskets traded per period.")] = 20,
    select: Annotated[
        str,
        typer.Option(
            "--select",
            help="static (smallest static ADF p-value, Johansen trace rejects at 5%), mle-oos (highest "
            "out-of-sample log-likelihood per day of the MLE filter tuned on the first 70%) or "
            "half-life (shortest static half-life in 2-60 days).",
        ),
    ] = "static",
    dependent: DependentOpt = "first",
    models: Annotated[
        str,
        typer.Option(
            "--models",
            help="Comma-separated methods to backtest (static, chan, seed, mle, em, als); must include chan.",
        ),
    ] = "static,chan,seed,mle,em",
    strategy: StrategyOpt = "bands",
    entry: EntryOpt = 1.0,
    exit_: ExitOpt = 1.0,
    cost_bps: CostBpsOpt = 5.0,
    window: Annotated[int, typer.Option("--window", help="Walk-forward estimation window (rows).")] = 250,
    iterations: Annotated[
        int | None, typer.Option("--iterations", help="Weekly tuning iterations (default: tune()'s, 2000 seed passes).")
    ] = None,
    block: Annotated[
        float, typer.Option("--block", help="Mean block length (days) of the stationary bootstrap.")
    ] = 10.0,
    trials: Annotated[
        int | None,
        typer.Option("--trials", help="Trials of the deflated Sharpe ratio (default: models x 3 selection rules)."),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Summary JSON file ('-' prints it).")] = None,
    plot_dir: Annotated[
        Path | None, typer.Option("--plot-dir", help="Write equity.png and sharpe_distribution.png here.")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", help="Local Dask worker processes (default: all cores; 0 = run in this process)."),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler", help="Existing Dask cluster: tcp://host:port, or tls://host:port with the --tls-* files."
        ),
    ] = None,
    tls_ca_file: Annotated[Path | None, typer.Option("--tls-ca-file", help="TLS: CA certificate (PEM).")] = None,
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="TLS: this client's certificate (PEM).")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="TLS: this client's private key (PEM).")] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Formation baskets per screening task.")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue --out: do only the rows missing.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --out.")] = False,
    checkpoint: Annotated[float, typer.Option("--checkpoint", help="Rewrite --out at least every N seconds.")] = 30.0,
    fill: Annotated[str | None, typer.Option("--fill", help="'ffill' fills gaps inside a column.")] = None,
) -> None:
    """Out-of-sample study: select baskets on each formation window, trade them with every model on the
    next trading window (weekly walk-forward), compare the portfolios with Chan's filter."""
    _run(**locals())


def _run(
    prices: Path,
    out: Path,
    assets: str | None,
    size: int,
    formation: int,
    trading: int,
    top: int,
    select: str,
    dependent: str,
    models: str,
    strategy: str,
    entry: float,
    exit_: float,
    cost_bps: float,
    window: int,
    iterations: int | None,
    block: float,
    trials: int | None,
    json_out: Path | None,
    plot_dir: Path | None,
    workers: int | None,
    scheduler: str | None,
    tls_ca_file: Path | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    batch_size: int | None,
    resume: bool,
    overwrite: bool,
    checkpoint: float,
    fill: str | None,
) -> None:
    import importlib

    # the modules, not the package's functions of the same names
    sc = importlib.import_module("kalcoint.screen")
    st = importlib.import_module("kalcoint.study")

    require_parent(out, "--out")
    if json_out is not None and str(json_out) != "-":
        require_parent(json_out, "--json")
    require_dir_writable(plot_dir, "--plot-dir")
    if checkpoint < 1:
        raise KalcointError(f"--checkpoint {checkpoint} must be >= 1 second")
    options = st.StudyOptions(
        size=size,
        formation=formation,
        trading=trading,
        top=top,
        select=select,
        dependent=dependent,
        models=tuple(parse_assets(models, option="--models") or ()),
        cost_bps=cost_bps,
        window=window,
        strategy=strategy,
        entry=entry,
        exit=exit_,
        iterations=iterations,
        block=block,
        trials=trials,
    )
    security = tls_settings(tls_ca_file, tls_cert, tls_key)
    sc.check_scheduler(scheduler, security)
    check_resume(resume, overwrite)
    universe = sc.load_universe(prices, parse_assets(assets), fill=fill)
    dates = pd.DatetimeIndex(universe.index)
    st.periods_of(dates, options)  # refuses a formation/window longer than the file, before any work
    if Path(out).exists() and not (resume or overwrite):
        raise KalcointError(f"--out {out} exists: pass --resume to continue it, or --overwrite to start again")
    n_workers = sc.default_workers() if workers is None else workers
    if n_workers < 0:
        raise KalcointError(f"--workers {workers} must be >= 0")
    started = time.perf_counter()
    with progress_bar("study", scheduler, n_workers) as advance:
        try:
            table, summary = st.study(
                universe,
                options,
                workers=n_workers,
                scheduler=scheduler,
                security=security,
                batch_size=batch_size,
                out=out,
                resume=resume,
                overwrite=overwrite,
                checkpoint=checkpoint,
                progress=advance,
            )
        except KeyboardInterrupt:
            err_console.print(
                f"interrupted: the rows done are in {out}; run again with --resume to continue", style="yellow"
            )
            raise typer.Exit(130) from None
    elapsed = time.perf_counter() - started
    rendered = st.study_figures(table, summary, options, dates, st.periods_of(dates, options)) if plot_dir else {}
    _print(table, summary, options, universe, elapsed, out)
    if json_out is not None:
        from ._common import write_json

        write_json(json_out, summary)
    if plot_dir is not None:
        for path in st.write_figures(rendered, plot_dir):
            err_console.print(f"wrote {path}", style="dim")


def _print(table, summary: dict[str, Any], options, universe, elapsed: float, out: Path) -> None:
    failed = table[table["status"] == "failed"]
    n_periods = len(summary["periods"])
    console.print(
        f"{len(table)} rows in {out}: {n_periods} periods, {summary['baskets']} basket-periods "
        f"({universe.shape[1]} assets, baskets of {options.size}, top {options.top} by {options.select}), "
        f"{len(options.models)} models, {summary['days']} trading days; {len(failed)} runs failed; "
        f"{elapsed:.1f} s",
        highlight=False,
    )
    if len(failed):
        counts = failed["model"].value_counts()
        console.print(
            "  failed runs (capital kept in cash): " + ", ".join(f"{m} {counts[m]}" for m in counts.index),
            highlight=False,
        )
    title = (
        f"Out-of-sample portfolios (equal capital per selected basket; bands {options.entry:g}/{options.exit:g}; "
        f"costs {options.cost_bps:g} bps; weekly retuning on {options.window} days)"
        if options.strategy == "bands"
        else f"Out-of-sample portfolios ({options.strategy}; costs {options.cost_bps:g} bps)"
    )
    console.print(summary_table(summary, title))
    ds = summary["deflated_sharpe"]
    if ds["model"] is not None:
        console.print(
            f"deflated Sharpe ratio of the best model ({ds['model']}, {ds['trials']} trials, expected "
            f"maximum Sharpe of unskilled trials {ds['expected_max_sharpe']:.2f}): {ds['value']:.3f}",
            highlight=False,
        )

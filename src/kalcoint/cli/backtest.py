"""``kalcoint backtest``: backtest one basket in-sample or walk-forward."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import KalcointError
from ._common import (
    dataset_path,
    app,
    console,
    err_console,
    is_terminal,
    method_or_model,
    parse_assets,
    require_dir_writable,
    warn,
)
from ._flags import flags, progress_bar, require_writable
from .core import load

METHOD_HELP = "static, chan, or a tuning method (seed, mle, em, als, ...)."
MODEL_HELP = (
    "A saved model file (kalcoint tune --save): replayed over the rows after its last date, "
    "retuned by its own policy. (A method name here is the deprecated form of --method.)"
)
FLAGS = (
    "strategy",
    "entry",
    "exit",
    "lookback",
    "delta",
    "state_var",
    "obs_var",
    "iterations",
    "retune",
    "window",
    "cost_bps",
    "on_degenerate",
    "method",
    "model",
)


def _saved_model(model: str | None, assets: list[str] | None) -> Any:
    """The saved model file of ``--model`` opened through kalcoint.live (None without one)."""
    if model is None:
        return None
    from ..backtest import MODELS
    from ..live import open_saved_model

    return open_saved_model(model, assets, MODELS)


@app.command()
def backtest(
    prices: Annotated[
        Path,
        typer.Argument(
            help="Price file: CSV or Parquet (wide, long or yfinance layout), or dataset:NAME (kalcoint datasets).",
            show_default=False,
            callback=dataset_path,
        ),
    ],
    method: Annotated[str | None, typer.Option("--method", help=METHOD_HELP)] = None,
    model: Annotated[str | None, typer.Option("--model", help=MODEL_HELP)] = None,
    assets: Annotated[
        str | None,
        typer.Option("--assets", help="Comma-separated tickers, dependent asset first (a saved model's by default)."),
    ] = None,
    strategy: Annotated[
        str | None,
        typer.Option(
            "--strategy",
            help="bands (Chan's rule on the innovations / the static z-score) or linear "
            "(units = -z-score). Default: bands.",
        ),
    ] = None,
    entry: Annotated[
        float | None, typer.Option("--entry", help="Bands: entry threshold in sigmas (default 1).")
    ] = None,
    exit_: Annotated[float | None, typer.Option("--exit", help="Bands: exit threshold in sigmas (default 1).")] = None,
    lookback: Annotated[
        int | None, typer.Option("--lookback", help="Moving window (days) of the z-score; default round(half-life).")
    ] = None,
    delta: Annotated[float | None, typer.Option("--delta", help="Chan: Vw = delta/(1-delta) I (default 1e-4).")] = None,
    state_var: Annotated[float | None, typer.Option("--state-var", help="Chan: explicit state variance.")] = None,
    obs_var: Annotated[
        float | None, typer.Option("--obs-var", help="Chan: measurement variance (default 1e-3).")
    ] = None,
    iterations: Annotated[
        int | None, typer.Option("--iterations", help="Tuning passes (seed) or iteration cap (mle, em); default 2000.")
    ] = None,
    retune: Annotated[
        str | None,
        typer.Option(
            "--retune",
            help="'weekly' or 'monthly': walk-forward, re-estimated before each period on the previous "
            "--window days ('never' or left out: in-sample).",
        ),
    ] = None,
    walk_forward: Annotated[
        str | None, typer.Option("--walk-forward", help="Deprecated name of --retune.", hidden=True)
    ] = None,
    window: Annotated[
        int | None, typer.Option("--window", help="Walk-forward estimation window (trading days).")
    ] = None,
    on_degenerate: Annotated[
        str | None,
        typer.Option(
            "--on-degenerate",
            help="Walk-forward: 'use' a degenerate re-estimation (default, the method as "
            "written) or 'keep' the previous model.",
        ),
    ] = None,
    cost_bps: Annotated[float, typer.Option("--cost-bps", help="Costs in bps of traded dollar value.")] = 0.0,
    fill: Annotated[
        str | None, typer.Option("--fill", help="Fill gaps inside the chosen columns: 'ffill' (default: refuse).")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the metrics as JSON to this file.")] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="CSV, one row per date: date, units, return, equity, then shares_*, position_*, hedge_*, "
            "traded, cost (the P&L can be recomputed from it and the prices).",
        ),
    ] = None,
    plot_dir: Annotated[
        Path | None, typer.Option("--plot-dir", help="Write equity.png and spread_positions.png here.")
    ] = None,
) -> None:
    """Backtest a basket: static Johansen portfolio, Chan's filter, or a tuned filter; in-sample
    (everything fitted on the whole file), walk-forward (re-estimated every week or month), or the
    replay of a saved model over the rows after its last date."""
    from .._io import write_json, write_table, write_with
    from ..backtest import MODELS
    from ..backtest import backtest as _backtest

    method, model = method_or_model(method, model, MODELS)
    if walk_forward is not None:
        if retune is not None:
            raise KalcointError("give --retune (--walk-forward is its deprecated name), not both")
        warn("--walk-forward is deprecated: use --retune (the same values)")
        retune = walk_forward
    require_writable(json_out, "--json")
    require_writable(out, "--out")
    require_dir_writable(plot_dir, "--plot-dir")
    with flags(*FLAGS, "assets"):
        saved = _saved_model(model, parse_assets(assets))
    if saved is not None and on_degenerate is not None:
        raise KalcointError(
            "--on-degenerate does not apply to a saved model: its own policy decides "
            f"({saved.policy.get('on_degenerate', 'use')})"
        )
    chosen = list(saved.assets) if saved is not None else parse_assets(assets)
    if chosen is None:
        raise KalcointError("--assets is required (e.g. --assets EWC,EWA), unless --model FILE gives a saved model")
    if len(chosen) < 2:
        raise KalcointError(f"--assets {','.join(chosen)} names one ticker: a portfolio needs at least 2")
    settings = dict(saved.strategy) if saved is not None else {}
    strategy = strategy or str(settings.get("strategy", "bands"))
    entry = float(settings.get("entry", 1.0)) if entry is None else entry
    exit_ = float(settings.get("exit", 1.0)) if exit_ is None else exit_
    frame = load(prices, chosen, fill)
    label = "replay" if saved is not None else f"walk-forward {method}"
    with flags(*FLAGS), progress_bar(label, (retune is not None or saved is not None) and is_terminal()) as tick:
        result = _backtest(
            frame,
            method,
            strategy,
            model=saved,
            entry=entry,
            exit=exit_,
            lookback=lookback,
            delta=delta,
            state_var=state_var,
            obs_var=obs_var,
            iterations=iterations,
            retune=retune,
            window=window,
            cost_bps=cost_bps,
            progress=tick,
            on_degenerate=on_degenerate or "use",
        )
    rendered: dict[str, bytes] = {}
    if plot_dir is not None:
        from ..plots import render_backtest

        rendered = render_backtest(result)
    table = result.out_frame() if out is not None else None
    console.print(result.summary().as_text(), highlight=False, markup=False)
    if result.retune_failures:
        warn(
            f"{len(result.retune_failures)} re-estimations failed and kept the previous model; "
            f"first: {result.retune_failures[0]}"
        )
    if result.versions is not None:
        degenerate = result.versions[result.versions["degenerate"]]
        if len(degenerate):
            first = degenerate.iloc[0]
            warn(
                f"{len(degenerate)} re-estimation(s) were degenerate ({first['outcome']}); first, effective "
                f"{first['effective_date']}: {'; '.join(first['reasons'])}"
            )
    # everything is computed: write the files (each one atomically)
    written: list[Path] = []
    if json_out is not None:
        write_json(json_out, result.to_dict())
        written.append(json_out)
    if table is not None and out is not None:
        if out.suffix.lower() in (".parquet", ".pq"):
            write_table(out, table)
        else:  # repr floats: the P&L can be recomputed from the file exactly
            write_with(out, lambda tmp: table.to_csv(tmp, index=False))
        written.append(out)
    if plot_dir is not None:
        from ..plots import write_png

        written += [write_png(data, plot_dir / name) for name, data in rendered.items()]
    for path in written:
        err_console.print(f"wrote {path}", style="dim")

"""``kalcoint backtest``: backtest one basket in-sample or walk-forward (issue 5)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..errors import KalcointError
from .core import load
from ._common import app, console, err_console, is_terminal, parse_assets, require_dir_writable, require_parent, warn

MODEL_HELP = "static, chan, seed, mle, em, als, or the path of a saved model file (kalcoint tune --save)."


def _saved_settings(model: str, assets: list[str] | None) -> tuple[list[str] | None, dict[str, Any]]:
    """For a saved model file: its assets (checked against --assets) and its strategy settings."""
    from ..backtest import MODELS

    if model in MODELS:
        return assets, {}
    from ..live import open_saved_model

    saved = open_saved_model(model, assets, MODELS)
    return list(saved.assets), dict(getattr(saved, "strategy", {}) or {})


@app.command()
def backtest(
    prices: Annotated[Path, typer.Argument(help="Price file: CSV or Parquet (wide, long or yfinance layout).",
                                           show_default=False)],
    model: Annotated[str, typer.Option("--model", help=MODEL_HELP)],
    assets: Annotated[Optional[str], typer.Option(
        "--assets", help="Comma-separated tickers, dependent asset first (a saved model's by default).")] = None,
    strategy: Annotated[Optional[str], typer.Option(
        "--strategy", help="bands (Chan's rule on the innovations / the static z-score) or linear "
                           "(units = -z-score). Default: bands.")] = None,
    entry: Annotated[Optional[float], typer.Option("--entry", help="Bands: entry threshold in sigmas (default 1).")] = None,
    exit_: Annotated[Optional[float], typer.Option("--exit", help="Bands: exit threshold in sigmas (default 1).")] = None,
    lookback: Annotated[Optional[int], typer.Option(
        "--lookback", help="Moving window (days) of the z-score; default round(half-life).")] = None,
    delta: Annotated[Optional[float], typer.Option("--delta", help="Chan: Vw = delta/(1-delta) I (default 1e-4).")] = None,
    state_var: Annotated[Optional[float], typer.Option("--state-var", help="Chan: explicit state variance.")] = None,
    obs_var: Annotated[Optional[float], typer.Option("--obs-var", help="Chan: measurement variance (default 1e-3).")] = None,
    iterations: Annotated[Optional[int], typer.Option(
        "--iterations", help="Tuning passes (seed) or iteration cap (mle, em); default 2000.")] = None,
    walk_forward: Annotated[Optional[str], typer.Option(
        "--walk-forward", help="'weekly': re-estimate before each week on the previous --window days.")] = None,
    window: Annotated[Optional[int], typer.Option(
        "--window", help="Walk-forward estimation window (trading days).")] = None,
    cost_bps: Annotated[float, typer.Option("--cost-bps", help="Costs in bps of traded dollar value.")] = 0.0,
    fill: Annotated[Optional[str], typer.Option(
        "--fill", help="Fill gaps inside the chosen columns: 'ffill' (default: refuse).")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the metrics as JSON to this file.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="CSV, one row per date: date, units, return, equity.")] = None,
    plot_dir: Annotated[Optional[Path], typer.Option(
        "--plot-dir", help="Write equity.png and spread_positions.png here.")] = None,
) -> None:
    """Backtest a basket: static Johansen portfolio, Chan's filter, or a tuned filter; in-sample
    (everything fitted on the whole file) or walk-forward (re-estimated every week)."""
    from .._io import write_json, write_table
    from ..backtest import backtest as _backtest

    require_parent(json_out, "--json")
    require_parent(out, "--out")
    require_dir_writable(plot_dir, "--plot-dir")
    chosen, saved_strategy = _saved_settings(model, parse_assets(assets))
    if chosen is None:
        raise KalcointError("--assets is required (e.g. --assets EWC,EWA), unless --model is a saved model file")
    if len(chosen) < 2:
        raise KalcointError(f"--assets {','.join(chosen)} names one ticker: a portfolio needs at least 2")
    strategy = strategy or str(saved_strategy.get("strategy", "bands"))
    entry = float(saved_strategy.get("entry", 1.0)) if entry is None else entry
    exit_ = float(saved_strategy.get("exit", 1.0)) if exit_ is None else exit_
    frame = load(prices, chosen, fill)
    result = _backtest(frame, model, strategy, entry=entry, exit=exit_, lookback=lookback, delta=delta,
                       state_var=state_var, obs_var=obs_var, iterations=iterations, walk_forward=walk_forward,
                       window=window, cost_bps=cost_bps, progress=walk_forward is not None and is_terminal())
    rendered: dict[str, bytes] = {}
    if plot_dir is not None:
        from ..plots import render_backtest

        rendered = render_backtest(result)
    table = result.out_frame() if out is not None else None
    console.print(result.summary(), highlight=False)
    if result.retune_failures:
        warn(f"{len(result.retune_failures)} weekly re-estimations failed and kept the previous week's model; "
             f"first: {result.retune_failures[0]}")
    # everything is computed: write the files (each one atomically)
    written: list[Path] = []
    if json_out is not None:
        write_json(json_out, result.to_dict())
        written.append(json_out)
    if table is not None and out is not None:
        write_table(out, table)
        written.append(out)
    if plot_dir is not None:
        from ..plots import write_png

        written += [write_png(data, plot_dir / name) for name, data in rendered.items()]
    for path in written:
        err_console.print(f"wrote {path}", style="dim")

"""Live commands: update, status, history (model files written by ``kalcoint tune --save``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import numpy as np
import typer

from ._common import app, console, fmt, require_parent, write_json

ModelArg = Annotated[Path, typer.Argument(help="Model file written by `kalcoint tune ... --save MODEL`.",
                                          show_default=False)]


def _say(text: str) -> None:
    """One plain line on stdout (no markup, no wrapping: easy to grep)."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _print_position(last: dict[str, Any], assets: list[str], strategy: dict[str, Any],
                    capital: float | None, per_unit: dict[str, float], target: dict[str, float]) -> None:
    _say(f"date            {last['date']}")
    _say("prices          " + "  ".join(f"{a} {last['prices'][a]:.6g}" for a in assets))
    _say("hedge ratios    " + "  ".join(f"{a} {b:.6g}" for a, b in last["hedge_ratios"].items()))
    _say(f"spread          {fmt(last['spread'], '.6g')}")
    _say(f"innovation      {fmt(last['innovation'], '.6g')}   std {fmt(last['innovation_std'], '.6g')}   "
                  f"z-score {fmt(last['zscore'], '.4f')}")
    word = {1: "long 1 unit", -1: "short 1 unit", 0: "flat"}.get(last["units"], f"{last['units']} units")
    _say(f"units           {last['units']} ({word}; {strategy['strategy']} rule, entry "
                  f"{strategy['entry']:g}, exit {strategy['exit']:g})")
    scale = f"1 unit = ${capital:,.2f} gross" if capital is not None else "1 unit = 1 share of " + assets[0]
    _say(f"shares per unit ({scale}): " + "  ".join(f"{a} {per_unit[a]:+.4f}" for a in assets))
    _say("target position (shares): " + "  ".join(f"{a} {target[a]:+.4f}" for a in assets))


@app.command()
def update(
    model: ModelArg,
    prices: Annotated[Path, typer.Option("--prices", help="New rows: a price file (CSV or Parquet) holding the "
                                                          "model's assets, one row per new date, oldest first.")],
    capital: Annotated[Optional[float], typer.Option(
        "--capital", help="Dollars: size one unit so its gross dollar value is this, for the target shares.")] = None,
    max_jump: Annotated[float, typer.Option(
        "--max-jump", help="Refuse a row where an asset's |daily log return| exceeds this (inf: accept any).")] = 0.25,
    since_last: Annotated[bool, typer.Option(
        "--since-last", help="Skip rows dated on or before the model's last date (they must match the "
                             "prices applied then); default: refuse them.")] = False,
    lock_timeout: Annotated[float, typer.Option(
        "--lock-timeout", help="Seconds to wait while another update of MODEL runs.")] = 10.0,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the result as JSON ('-': stdout).")]
    = None,
) -> None:
    """Feed new rows through the saved filter (all or none) and print the position for the last date."""
    from ..live import load_model, read_rows

    if json_out is not None and str(json_out) != "-":
        require_parent(json_out, "--json")
    live = load_model(model, lock_timeout=lock_timeout)
    rows = read_rows(prices, live.assets)
    result = live.update(rows, capital=capital, max_jump=max_jump, since_last=since_last,
                         lock_timeout=lock_timeout, source=str(prices))
    if result.applied == 0:
        _say(f"no rows after the last date {live.last['date']} in {prices} "
                      f"({result.skipped} already applied); {model} unchanged")
    else:
        span = result.dates[0] if result.applied == 1 else f"{result.dates[0]} to {result.dates[-1]}"
        skipped = f", skipped {result.skipped} already applied" if result.skipped else ""
        _say(f"applied {result.applied} row(s) ({span}){skipped}; {model} is at step {live.steps}")
    _print_position(result.last, result.assets, live.strategy, capital, result.shares_per_unit, result.target_shares)
    write_json(json_out, result.to_dict())


@app.command()
def status(
    model: ModelArg,
    json_out: Annotated[Optional[Path], typer.Option(
        "--json", help="Write the status as JSON (keys last_date, assets, state, spread, innovation, "
                       "innovation_var, units, ...); '-' prints it.")] = None,
) -> None:
    """Show the model's state after its last row: date, state, spread, innovation, units."""
    from ..live import load_model, target_shares

    if json_out is not None and str(json_out) != "-":
        require_parent(json_out, "--json")
    live = load_model(model)
    info = live.status()
    tuning = live.tuning
    _say(f"model           {model}: {live.method} on {', '.join(live.assets)}, {live.steps} steps "
                  f"(tuned {tuning.get('start_date')} to {tuning.get('end_date')}; updated {info['updated_at']})")
    _say("state           " + "  ".join(fmt(b, '.6g') for b in live.state))
    per_unit = target_shares(live.state, np.array(list(info["prices"].values())), 1.0, None)
    _print_position(live.last, live.assets, live.strategy, None, dict(zip(live.assets, per_unit.tolist())),
                    dict(zip(live.assets, (live.units * per_unit + 0.0).tolist())))
    write_json(json_out, info)


@app.command()
def history(
    model: ModelArg,
    out: Annotated[Path, typer.Option("--out", help="CSV (or .parquet) of every step: step, kind, date, the "
                                                   "prices fed, beta_*, innovation, innovation_var, zscore, "
                                                   "spread, units, applied_at.")],
    updates_only: Annotated[bool, typer.Option("--updates-only", help="Leave out the tuning sample's rows.")]
    = False,
) -> None:
    """Write every step the model has taken, with its input prices, as a table."""
    from .._io import write_table, write_with
    from ..live import load_model

    require_parent(out, "--out")
    live = load_model(model)
    frame = live.history()
    if updates_only:
        frame = frame[frame["kind"] == "update"]
    if out.suffix.lower() in (".parquet", ".pq"):
        write_table(out, frame)
    else:  # repr floats: the file holds the exact values fed and computed
        write_with(out, lambda tmp: frame.to_csv(tmp, index=False))
    n_upd = int((frame["kind"] == "update").sum())
    _say(f"wrote {out}: {len(frame)} steps ({n_upd} updates) of {', '.join(live.assets)}")


__all__ = ["history", "status", "update"]

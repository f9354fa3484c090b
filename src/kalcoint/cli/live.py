"""Live commands: update, status, history, versions, retune (model files written by
``kalcoint tune --save``).

Exit codes: 0 done; 2 refused (bad input, a locked or damaged model file: nothing changed);
3 the rows were applied to the model file but an output (``--json``) could not be written
(:data:`EXIT_OUTPUT_FAILED`; do not re-run the update, re-run ``status --json`` instead).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ._common import app, console, err_console, fmt, warn, dataset_path
from ._flags import flags, require_writable

EXIT_OUTPUT_FAILED = 3
"""Exit code of ``update`` when the rows were committed but an output file could not be written."""
LIVE_FLAGS = (
    "capital",
    "max_jump",
    "since_last",
    "lock_timeout",
    "window",
    "retune",
    "on_degenerate",
    "assets",
    "cost_bps",
    "model",
)

ModelArg = Annotated[
    Path, typer.Argument(help="Model file written by `kalcoint tune ... --save MODEL`.", show_default=False)
]
LockOpt = Annotated[
    float, typer.Option("--lock-timeout", help="Seconds to wait while another update of MODEL writes it.")
]


def _sayer(json_out: Path | None) -> Callable[[str], None]:
    """One plain line (no markup, no wrapping: easy to grep) on stdout, or on stderr when stdout
    carries the JSON (``--json -``)."""
    target = err_console if json_out is not None and str(json_out) == "-" else console

    def say(text: str) -> None:
        target.print(text, markup=False, highlight=False, soft_wrap=True)

    return say


def _emit_json(path: Path | None, payload: dict[str, Any]) -> None:
    """``--json -``: the JSON alone on stdout; ``--json FILE``: written atomically."""
    if path is None:
        return
    if str(path) == "-":
        sys.stdout.write(json.dumps(payload, indent=2, allow_nan=False) + "\n")
        sys.stdout.flush()
        return
    from .._io import write_json as _write

    _write(path, payload)
    err_console.print(f"wrote {path}", style="dim")


def _print_position(
    say: Callable[[str], None],
    last: dict[str, Any],
    assets: list[str],
    strategy: dict[str, Any],
    capital: float | None,
    per_unit: dict[str, float],
    target: dict[str, float],
) -> None:
    say(f"date            {last['date']}")
    say("prices          " + "  ".join(f"{a} {last['prices'][a]:.6g}" for a in assets))
    say("hedge ratios    " + "  ".join(f"{a} {b:.6g}" for a, b in last["hedge_ratios"].items()))
    say(f"spread          {fmt(last['spread'], '.6g')}")
    if "lookback" not in last:  # the filter's bands: the z-score is the standardised innovation
        say(
            f"innovation      {fmt(last['innovation'], '.6g')}   std {fmt(last['innovation_std'], '.6g')}   "
            f"z-score {fmt(last['zscore'], '.4f')}"
        )
    else:  # a rule on moving statistics of the spread
        if per_unit[assets[0]] == 1.0:
            say(f"innovation      {fmt(last['innovation'], '.6g')}   std {fmt(last['innovation_std'], '.6g')}")
        say(
            f"z-score         {fmt(last['zscore'], '.4f')} (the spread against its mean and std over "
            f"{last['lookback']} days)"
        )
    if strategy["strategy"] == "bands":
        word = {1: "long 1 unit", -1: "short 1 unit", 0: "flat"}.get(last["units"], f"{last['units']} units")
        say(
            f"units           {last['units']} ({word}; {strategy['strategy']} rule, entry "
            f"{strategy['entry']:g}, exit {strategy['exit']:g})"
        )
    else:
        lookback = last.get("lookback")
        say(
            f"units           {last['units']:.6g} (minus the z-score; linear rule, moving window "
            f"{'-' if lookback is None else lookback} days)"
        )
    scale = (
        f"1 unit = ${capital:,.2f} gross"
        if capital is not None
        else "1 unit = 1 share of " + assets[0]
        if per_unit[assets[0]] == 1.0
        else "1 unit = the Johansen weights in shares"
    )
    say(f"shares per unit ({scale}): " + "  ".join(f"{a} {per_unit[a]:+.4f}" for a in assets))
    say("target position (shares): " + "  ".join(f"{a} {target[a]:+.4f}" for a in assets))


def _report_versions(say: Callable[[str], None], versions: list[Any], applied_rows: bool) -> None:
    """One line per re-estimation; failures and degenerate fits also warned on stderr."""
    for v in versions:
        span = f"window {v.window_first} to {v.window_last}"
        when = f"effective {v.effective_date}" if v.effective_date else "effective from the next row"
        say(f"retune          version {v.id} ({v.method}, {span}, {when}): {v.outcome}")
        kept = " (the rows were applied)" if applied_rows else ""
        if v.outcome.startswith("failed"):
            warn(
                f"re-estimation {v.id} ({span}) failed and the previous version is kept{kept}: "
                f"{v.outcome[len('failed: ') :]}"
            )
        elif v.degenerate:
            action = "traded anyway (on-degenerate use)" if v.applied else "not used (on-degenerate keep)"
            warn(f"re-estimation {v.id} ({span}) looks degenerate, {action}: {'; '.join(v.reasons)}")


def check_retune_options(
    save: Path | None, retune: str, window: int | None, on_degenerate: str, method: str, iterations: int | None
) -> None:
    """``tune --save M --retune ... --window N --on-degenerate ...``: refused before any work."""
    from ..errors import KalcointError
    from ..live import retune_policy

    if save is None and (retune != "never" or window is not None or on_degenerate != "use"):
        raise KalcointError("--retune, --window and --on-degenerate apply with --save only")
    with flags("retune", "window", "on_degenerate", "iterations"):
        retune_policy(retune, window, method=method, iterations=iterations, on_degenerate=on_degenerate)


def window_rows(frame: Any, retune: str, window: int | None) -> Any:
    """The rows a model saved with a retune policy is tuned on: the last ``window`` (as a period of
    the walk-forward backtest)."""
    from ..errors import KalcointError

    if retune == "never" or window is None:
        return frame
    if len(frame) < window:
        raise KalcointError(f"--window {window} is longer than the {len(frame)} rows of the price file")
    return frame.iloc[-window:]


@app.command()
def update(
    model: ModelArg,
    prices: Annotated[
        Path,
        typer.Option(
            "--prices",
            help="New rows: a price file (CSV or Parquet) holding the "
            "model's assets, one row per new date, oldest first.",
            callback=dataset_path,
        ),
    ],
    capital: Annotated[
        float | None,
        typer.Option(
            "--capital", help="Dollars: size one unit so its gross dollar value is this, for the target shares."
        ),
    ] = None,
    max_jump: Annotated[
        float,
        typer.Option(
            "--max-jump", help="Refuse a row where an asset's |daily log return| exceeds this (inf: accept any)."
        ),
    ] = 0.25,
    since_last: Annotated[
        bool,
        typer.Option(
            "--since-last",
            help="Skip rows dated on or before the model's last date (they must match the "
            "prices applied then); default: refuse them.",
        ),
    ] = False,
    lock_timeout: LockOpt = 10.0,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the result as JSON ('-': stdout carries only the JSON).")
    ] = None,
) -> None:
    """Feed new rows through the saved filter (all or none), re-estimating on the model's
    schedule, and print the position for the last date. Exit 3: rows applied, --json not written."""
    from ..errors import KalcointError
    from ..live import load_model, read_rows

    say = _sayer(json_out)
    require_writable(json_out, "--json")
    with flags(*LIVE_FLAGS):
        live = load_model(model, lock_timeout=lock_timeout)
        rows = read_rows(prices, live.assets)
        result = live.update(
            rows,
            capital=capital,
            max_jump=max_jump,
            since_last=since_last,
            lock_timeout=lock_timeout,
            source=str(prices),
        )
    for line in result.warnings:
        warn(f"{prices}: {line}; check for missing days")
    if result.applied == 0:
        say(
            f"no rows after the last date {live.last['date']} in {prices} "
            f"({result.skipped} already applied); {model} unchanged"
        )
    else:
        span = result.dates[0] if result.applied == 1 else f"{result.dates[0]} to {result.dates[-1]}"
        skipped = f", skipped {result.skipped} already applied" if result.skipped else ""
        say(
            f"applied {result.applied} row(s) ({span}){skipped}; {model} is at step {live.steps}, "
            f"version {result.version}"
        )
    _report_versions(say, result.versions, True)
    _print_position(
        say, result.last, result.assets, live.strategy, capital, result.shares_per_unit, result.target_shares
    )
    try:
        _emit_json(json_out, result.to_dict())
    except (OSError, KalcointError) as exc:
        err_console.print(
            f"kalcoint: error: the rows were applied to {model} (now at {live.last['date']}) but "
            f"--json {json_out} was not written ({exc}); do not re-run the update: "
            f"`kalcoint status {model} --json FILE` gives the result",
            style="red",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_OUTPUT_FAILED) from None


@app.command()
def status(
    model: ModelArg,
    json_out: Annotated[
        Path | None,
        typer.Option(
            "--json",
            help="Write the status as JSON (keys last_date, assets, state, spread, innovation, "
            "innovation_var, units, version, last_retune, retune, next_retune, ...); '-': stdout "
            "carries only the JSON.",
        ),
    ] = None,
    lock_timeout: LockOpt = 10.0,
) -> None:
    """Show the model's state after its last row: date, state, spread, innovation, units, and
    its retune schedule."""
    from ..live import load_model

    say = _sayer(json_out)
    require_writable(json_out, "--json")
    with flags(*LIVE_FLAGS):
        live = load_model(model, lock_timeout=lock_timeout)
    info = live.status()
    tuning = live.tuning
    say(
        f"model           {model}: {live.method} on {', '.join(live.assets)}, {live.steps} steps "
        f"(tuned {tuning.get('start_date')} to {tuning.get('end_date')}; updated {info['updated_at']})"
    )
    policy = info["retune"]
    if policy["retune"] == "never":
        say(f"version         {info['version']} (retune never)")
    else:
        last = info["last_retune"]
        say(
            f"version         {info['version']} (retune {policy['retune']} on the last {policy['window']} rows, "
            f"on-degenerate {policy['on_degenerate']}); last re-estimation: version {last['id']} "
            f"(window to {last['window_last']}): {last['outcome']}; next: {info['next_retune']}"
        )
    if live.model is None:
        say("weights         " + "  ".join(f"{a} {w:+.6g}" for a, w in zip(live.assets, live.shares_per_unit)))
    else:
        say("state           " + "  ".join(fmt(b, ".6g") for b in live.state))
    per_unit = live.shares_per_unit
    _print_position(
        say,
        live.last,
        live.assets,
        live.strategy,
        None,
        dict(zip(live.assets, per_unit.tolist())),
        dict(zip(live.assets, (live.units * per_unit + 0.0).tolist())),
    )
    _emit_json(json_out, info)


@app.command()
def history(
    model: ModelArg,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="CSV (or .parquet) of every step: step, kind, date, the "
            "prices fed, beta_*, innovation, innovation_var, zscore, "
            "spread, units, version, applied_at, then shares_*, position_*, hedge_*, traded, cost.",
        ),
    ],
    updates_only: Annotated[bool, typer.Option("--updates-only", help="Leave out the tuning sample's rows.")] = False,
    cost_bps: Annotated[
        float, typer.Option("--cost-bps", help="Costs in basis points of the traded value, for the cost column.")
    ] = 0.0,
    lock_timeout: LockOpt = 10.0,
) -> None:
    """Write every step the model has taken, with its input prices and the version it traded with."""
    from .._io import write_table, write_with
    from ..live import load_model

    require_writable(out, "--out")
    with flags(*LIVE_FLAGS):
        live = load_model(model, lock_timeout=lock_timeout)
        frame = live.history(cost_bps)
    if updates_only:
        frame = frame[frame["kind"] == "update"]
    if out.suffix.lower() in (".parquet", ".pq"):
        write_table(out, frame)
    else:  # repr floats: the file holds the exact values fed and computed
        write_with(out, lambda tmp: frame.to_csv(tmp, index=False))
    n_upd = int((frame["kind"] == "update").sum())
    console.print(
        f"wrote {out}: {len(frame)} steps ({n_upd} updates) of {', '.join(live.assets)}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def versions(
    model: ModelArg,
    json_out: Annotated[
        Path | None,
        typer.Option(
            "--json",
            help="Write the versions as JSON ({'versions': [...]}, each with id, effective_date, "
            "window_first, window_last, method, the tuned quantities, loglik, degenerate, "
            "reasons, outcome); '-': stdout carries only the JSON.",
        ),
    ] = None,
    lock_timeout: LockOpt = 10.0,
) -> None:
    """List every estimation of the model: when it trades, its window, quantities and outcome."""
    from ..live import load_model

    require_writable(json_out, "--json")
    with flags(*LIVE_FLAGS):
        live = load_model(model, lock_timeout=lock_timeout)
        records = [v.to_dict() for v in live.versions()]
    if json_out is None or str(json_out) != "-":
        table = Table(
            title=f"Versions of {model} ({live.method}, retune {live.policy.get('retune')}; in use: {live.version})"
        )
        for col in ("id", "effective", "window", "alpha11", "obs_var", "loglik", "degenerate", "outcome"):
            table.add_column(col, justify="left" if col in ("window", "outcome", "effective") else "right")
        for r in records:
            table.add_row(
                str(r["id"]),
                r["effective_date"] or "next row",
                f"{r['window_first']} to {r['window_last']}",
                fmt(r["alpha11"], ".6g"),
                fmt(r["obs_var"], ".4g"),
                fmt(r["loglik"], ".2f"),
                fmt(r["degenerate"]),
                r["outcome"],
            )
        console.print(table)
    _emit_json(json_out, {"path": str(model), "version": live.version, "versions": records})


@app.command()
def retune(
    model: ModelArg,
    lock_timeout: LockOpt = 10.0,
) -> None:
    """Re-estimate now on the model's last --window rows (its retune policy), effective from the next row."""
    from ..live import load_model

    with flags(*LIVE_FLAGS):
        live = load_model(model, lock_timeout=lock_timeout)
        version = live.retune(lock_timeout=lock_timeout)
    say = _sayer(None)
    _report_versions(say, [version], False)
    say(f"{model}: version {live.version} in use from the next row")


__all__ = ["EXIT_OUTPUT_FAILED", "history", "retune", "status", "update", "versions"]

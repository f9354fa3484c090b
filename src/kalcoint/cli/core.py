"""Core commands: johansen, tune, filter, compare, demo."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from ..errors import KalcointError
from ._common import (
    dataset_path,
    app,
    console,
    err_console,
    fmt,
    is_terminal,
    method_or_model,
    parse_assets,
    require_dir_writable,
    require_parent,
    styled,
    warn,
    write_json,
)

PricesArg = Annotated[
    Path,
    typer.Argument(
        help="Price file: CSV or Parquet (wide, long or yfinance layout), or dataset:NAME (kalcoint datasets).",
        show_default=False,
        callback=dataset_path,
    ),
]
AssetsOpt = Annotated[
    Optional[str],
    typer.Option(
        "--assets", help="Comma-separated tickers, dependent asset first (default: every column of the file)."
    ),
]
FillOpt = Annotated[
    Optional[str],
    typer.Option(
        "--fill", help="Fill gaps inside the chosen columns: 'ffill' carries the last price forward (default: refuse)."
    ),
]
JsonOpt = Annotated[Optional[Path], typer.Option("--json", help="Also write the result as JSON to this file.")]
IterOpt = Annotated[int, typer.Option("--iterations", min=1, help="Seed tuning passes (iteration cap for mle/em).")]


def load(prices: Path, assets: str | list[str] | None, fill: str | None = None):  # -> pd.DataFrame
    """Load the chosen assets (``--assets`` text, or a list already parsed) and note dropped leading rows."""
    from ..data import load_prices

    frame = load_prices(prices, parse_assets(assets) if isinstance(assets, str) else assets, fill=fill)
    for note in frame.attrs.get("notes", []):
        err_console.print(f"note: {note}", style="dim", highlight=False, soft_wrap=True)
    dropped = frame.attrs.get("dropped_leading_rows", 0)
    if dropped:
        err_console.print(
            f"note: dropped {dropped} leading rows before every chosen asset traded "
            f"(first common date {frame.index[0]:%Y-%m-%d})",
            style="dim",
        )
    return frame


def warn_degenerate(name: str, degenerate: bool, reasons: list[str]) -> None:
    if degenerate:
        warn(f"the {name} model looks degenerate (an exact fit rather than a tradable spread):")
        for reason in reasons:
            err_console.print(f"  - {reason}", style="yellow", highlight=False)


@app.command()
def johansen(
    prices: PricesArg,
    assets: AssetsOpt = None,
    det_order: Annotated[int, typer.Option("--det-order", help="-1 none, 0 constant, 1 trend.")] = 0,
    k_ar_diff: Annotated[int, typer.Option("--k-ar-diff", min=0, help="Lagged differences.")] = 1,
    fill: FillOpt = None,
    json_out: JsonOpt = None,
) -> None:
    """Johansen test: weights, trace and max-eigenvalue statistics with 90/95/99% critical values."""
    from ..cointegration import johansen as _johansen

    require_parent(json_out, "--json")
    frame = load(prices, assets, fill)
    res = _johansen(frame, det_order=det_order, k_ar_diff=k_ar_diff)
    table = Table(
        title=f"Johansen test: {', '.join(res.assets)}  (n={res.nobs}, det_order={det_order}, k_ar_diff={k_ar_diff})"
    )
    for col in ("H0", "trace", "90%", "95%", "99%", "max-eig", "90%", "95%", "99%"):
        table.add_column(col, justify="right")
    for r in range(len(res.assets)):
        table.add_row(
            f"r <= {r}",
            f"{res.trace_stat[r]:.4f}",
            *(f"{c:.4f}" for c in res.trace_crit[r]),
            f"{res.max_eig_stat[r]:.4f}",
            *(f"{c:.4f}" for c in res.max_eig_crit[r]),
        )
    console.print(table)
    console.print("rank at 95% (trace test): ", styled(res.rank_95, "bold"), sep="")
    console.print(
        "weights (largest eigenvalue): " + "  ".join(f"{a} {w:+.6g}" for a, w in zip(res.assets, res.weights))
    )
    console.print(
        "hedge ratios -w_j/w_1: " + "  ".join(f"{a} {h:.6g}" for a, h in zip(res.assets[1:], res.hedge_ratios))
    )
    write_json(json_out, res.to_dict())


def _tuned_table(tuned) -> Table:
    table = Table(
        title=f"Tuned model ({tuned.method}): {', '.join(tuned.assets)}",
        caption=f"nobs={tuned.nobs}, {tuned.start_date:%Y-%m-%d} to {tuned.end_date:%Y-%m-%d}",
    )
    table.add_column("state")
    for col in ("state_var", "initial_state", "initial_cov"):
        table.add_column(col, justify="right")
    for name, vw, b0, p0 in zip(["const"] + tuned.assets[1:], tuned.state_var, tuned.initial_state, tuned.initial_cov):
        table.add_row(name, f"{vw:.6g}", f"{b0:.6g}", f"{p0:.6g}")
    return table


@app.command()
def tune(
    prices: PricesArg,
    assets: AssetsOpt = None,
    method: Annotated[
        str,
        typer.Option(
            "--method",
            help="seed (the method's passes), mle, em or als; with --save also static (Johansen weights) or chan.",
        ),
    ] = "seed",
    iterations: IterOpt = 2000,
    tol: Annotated[
        Optional[float],
        typer.Option(
            "--tol", help="Stop the seed passes once every tuned quantity changes by less than this (relative)."
        ),
    ] = None,
    residual: Annotated[
        str, typer.Option("--residual", help="Seed step 5.2 residual: posterior or prior.")
    ] = "posterior",
    bm: Annotated[str, typer.Option("--bm", help="Seed step 5.6 centre: johansen or sample.")] = "johansen",
    fix_alpha11: Annotated[Optional[float], typer.Option("--fix-alpha11", help="Hold alpha11 at this value.")] = None,
    moments: Annotated[
        str,
        typer.Option(
            "--moments",
            help="Seed re-estimation from the filtered (as written) or smoothed states: filtered or smoothed.",
        ),
    ] = "filtered",
    covariance_terms: Annotated[
        bool,
        typer.Option(
            "--covariance-terms", help="Seed re-estimation with the posterior covariance terms (EM's M-step)."
        ),
    ] = False,
    fill: FillOpt = None,
    json_out: JsonOpt = None,
    save: Annotated[Optional[Path], typer.Option("--save", help="Write a model file for `kalcoint update`.")] = None,
    strategy: Annotated[
        str, typer.Option("--strategy", help="Saved model's rule, as the backtest's: bands or linear.")
    ] = "bands",
    entry: Annotated[float, typer.Option("--entry", help="Saved strategy: entry band (sqrt(Q) units).")] = 1.0,
    exit_: Annotated[float, typer.Option("--exit", help="Saved strategy: exit band (sqrt(Q) units).")] = 1.0,
    lookback: Annotated[
        Optional[int],
        typer.Option(
            "--lookback", help="Saved linear rule (or static bands): moving window in days (default: half-life)."
        ),
    ] = None,
    delta: Annotated[
        Optional[float], typer.Option("--delta", help="--method chan: Vw = delta/(1-delta) I (default 1e-4).")
    ] = None,
    state_var: Annotated[
        Optional[float], typer.Option("--state-var", help="--method chan: Vw = state_var I (instead of --delta).")
    ] = None,
    obs_var: Annotated[
        Optional[float], typer.Option("--obs-var", help="--method chan: measurement variance (default 1e-3).")
    ] = None,
    plot_dir: Annotated[
        Optional[Path], typer.Option("--plot-dir", help="Write a figure of the tuning passes here.")
    ] = None,
    retune: Annotated[
        str,
        typer.Option(
            "--retune", help="Saved model: re-estimate weekly, monthly or never (tuned on the last --window rows)."
        ),
    ] = "never",
    window: Annotated[Optional[int], typer.Option("--window", help="Saved model: estimation window (rows).")] = None,
    on_degenerate: Annotated[
        str,
        typer.Option(
            "--on-degenerate", help="Saved model: use or keep (the previous version) on a degenerate re-estimation."
        ),
    ] = "use",
) -> None:
    """Tune the filter (seed passes, maximum likelihood or EM) and report the quantities."""
    from .._checks import check_tol
    from ..tuning import registry
    from ..tuning import tune as _tune

    # every option and output path is checked before any work
    require_parent(json_out, "--json")
    require_parent(save, "--save")
    require_dir_writable(plot_dir, "--plot-dir")
    if save is not None and save.exists():
        raise KalcointError(f"--save {save} already exists: choose a new file (models are never overwritten)")
    if save is None and (strategy != "bands" or lookback is not None):
        raise KalcointError("--strategy and --lookback apply with --save only (the saved model's rule)")
    if method in ("static", "chan"):
        _save_untuned(
            prices,
            assets,
            fill,
            json_out,
            save,
            method,
            iterations,
            tol,
            (residual, bm, fix_alpha11, moments, covariance_terms),
            strategy,
            entry,
            exit_,
            lookback,
            (delta, state_var, obs_var),
            retune,
            window,
            on_degenerate,
        )
        return
    if delta is not None or state_var is not None or obs_var is not None:
        raise KalcointError("--delta, --state-var and --obs-var apply to --method chan only")
    registry.get(method)
    check_tol(tol)
    from .live import check_retune_options, window_rows

    check_retune_options(save, retune, window, on_degenerate, method, iterations)
    opts: dict[str, Any] = {}
    if method == "seed":
        from ..tuning import SeedOptions

        SeedOptions(residual, bm, fix_alpha11, moments, covariance_terms)  # checks them before any work
        opts = {
            "residual": residual,
            "bm": bm,
            "fix_alpha11": fix_alpha11,
            "moments": moments,
            "covariance_terms": covariance_terms,
        }
    elif (
        fix_alpha11 is not None
        or residual != "posterior"
        or bm != "johansen"
        or moments != "filtered"
        or covariance_terms
    ):
        raise KalcointError(
            "--fix-alpha11, --residual, --bm, --moments and --covariance-terms apply to --method seed only"
        )
    rule = _saved_rule(save, method, strategy, entry, exit_, lookback)
    frame = window_rows(load(prices, assets, fill), retune, window)
    with err_console.status(f"tuning ({method})...", spinner="dots") if is_terminal() else _null():
        tuned = _tune(frame, method=method, iterations=iterations, tol=tol, **opts)
    console.print(_tuned_table(tuned))
    test = tuned.adf()
    console.print(
        f"alpha11 {tuned.alpha11:.6g}   obs_var {tuned.obs_var:.6g}   "
        f"iterations {tuned.iterations}{' (converged)' if tuned.converged else ''}   "
        f"loglik {tuned.loglik:.4f}   elapsed {tuned.elapsed_s:.3f} s"
    )
    console.print(f"dynamic portfolio ADF: stat {test.stat:.4f}, lags {test.lags}, p-value {test.pvalue:.4g}")
    if tuned.std_errors is not None:
        console.print(
            "standard errors: " + ", ".join(f"{name} {fmt(v)}" for name, v in tuned.bse.items()), highlight=False
        )
        for name, why in tuned.bse_notes.items():
            console.print(f"  {name}: {why}", style="dim", highlight=False)
    warn_degenerate(method, tuned.degenerate, tuned.degenerate_reasons)
    payload = tuned.to_dict()
    payload["history"] = {key: [float(v) for v in values] for key, values in tuned.history.items()}
    if plot_dir is not None and method == "seed":
        from ..plots import plot_tuning_passes

        path = plot_tuning_passes(
            tuned.history, plot_dir / "tuning_passes.png", title=f"Seed passes on {', '.join(tuned.assets)}"
        )
        err_console.print(f"wrote {path}", style="dim")
    if save is not None:
        from ..live import save_model

        save_model(
            save,
            tuned,
            frame,
            strategy=rule,
            retune=retune,
            window=window,
            on_degenerate=on_degenerate,
            iterations=iterations,
            tol=tol,
            tune_options=opts,
        )
    try:
        write_json(json_out, payload)
    except KalcointError as exc:
        if save is not None:  # a new file (an existing one is refused): no model without its --json
            Path(os.path.realpath(save)).unlink(missing_ok=True)
            raise KalcointError(f"{exc}; the model {save} was not kept") from None
        raise
    if save is not None:
        err_console.print(f"saved model to {save} (last date {frame.index[-1]:%Y-%m-%d})", style="dim")


def _saved_rule(
    save: Path | None, method: str, strategy: str, entry: float, exit_: float, lookback: int | None
) -> dict[str, Any]:
    """The rule of ``tune --save``, checked before any work (the backtest's options and checks)."""
    from ..live import _check_strategy
    from ..strategy import check_bands
    from ._flags import flags

    if save is None:
        return {}
    if strategy == "bands":
        check_bands(entry, exit_)  # its errors name their parameters (said as flags by the CLI)
    with flags("strategy", "entry", "exit", "lookback"):
        return _check_strategy({"strategy": strategy, "entry": entry, "exit": exit_, "lookback": lookback}, method)


def _save_untuned(
    prices: Path,
    assets: str | None,
    fill: Any,
    json_out: Path | None,
    save: Path | None,
    method: str,
    iterations: int,
    tol: float | None,
    seed_options: tuple,
    strategy: str,
    entry: float,
    exit_: float,
    lookback: int | None,
    chan_options: tuple[float | None, float | None, float | None],
    retune: str,
    window: int | None,
    on_degenerate: str,
) -> None:
    """``tune --method static|chan --save M``: nothing to tune; the model is saved for live use."""
    from .._checks import CHAN_DELTA, CHAN_OBS_VAR
    from ..live import save_chan_model, save_static_model
    from .live import check_retune_options, window_rows

    if save is None:
        raise KalcointError(f"--method {method} has nothing to tune: give --save M to save it as a live model")
    residual, bm, fix_alpha11, moments, covariance_terms = seed_options
    if (
        tol is not None
        or fix_alpha11 is not None
        or residual != "posterior"
        or bm != "johansen"
        or moments != "filtered"
        or covariance_terms
    ):
        raise KalcointError(
            "--tol, --fix-alpha11, --residual, --bm, --moments and --covariance-terms apply to the tuning methods only"
        )
    delta, state_var, obs_var = chan_options
    if method == "static" and (delta is not None or state_var is not None or obs_var is not None):
        raise KalcointError("--delta, --state-var and --obs-var apply to --method chan only")
    if delta is not None and state_var is not None:
        raise KalcointError("give either --delta or --state-var, not both")
    chan: dict[str, Any] = {
        "delta": CHAN_DELTA if delta is None else delta,
        "state_var": state_var,
        "obs_var": CHAN_OBS_VAR if obs_var is None else obs_var,
    }
    if method == "chan":
        from ..filtering import StateSpaceModel
        from ._flags import flags

        with flags("delta", "state_var", "obs_var"):
            StateSpaceModel.chan(2, **chan)
    check_retune_options(save, retune, window, on_degenerate, method, None)
    rule = _saved_rule(save, method, strategy, entry, exit_, lookback)
    frame = window_rows(load(prices, assets, fill), retune, window)
    if method == "static":
        saved = save_static_model(save, frame, rule, retune=retune, window=window)
        assert saved.weights is not None
        console.print(
            f"static Johansen portfolio ({', '.join(saved.assets)}): weights "
            + "  ".join(f"{a} {w:+.6g}" for a, w in zip(saved.assets, saved.weights)),
            highlight=False,
        )
    else:
        saved = save_chan_model(save, frame, **chan, strategy=rule, retune=retune, window=window)
        console.print(
            f"Chan's filter ({', '.join(saved.assets)}): "
            + (f"delta {chan['delta']:g}" if state_var is None else f"state_var {state_var:g}")
            + f"   obs_var {chan['obs_var']:g}",
            highlight=False,
        )
    lookback_now = saved.last.get("lookback")
    console.print(
        f"rule {rule['strategy']}"
        + (f" (entry {rule['entry']:g}, exit {rule['exit']:g})" if rule["strategy"] == "bands" else "")
        + ("" if lookback_now is None else f", moving window {lookback_now} days"),
        highlight=False,
    )
    err_console.print(f"saved model to {save} (last date {frame.index[-1]:%Y-%m-%d})", style="dim")
    write_json(json_out, saved.status())


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


MODEL_NAMES = ("seed", "chan", "mle", "em", "als")


@app.command("filter")
def filter_(
    prices: PricesArg,
    out: Annotated[
        Path, typer.Option("--out", help="CSV: date, beta_const, beta_<TICKER>..., innovation, innovation_var, spread.")
    ],
    method: Annotated[Optional[str], typer.Option("--method", help="seed, chan, mle, em or als.")] = None,
    model: Annotated[
        Optional[str],
        typer.Option(
            "--model",
            help="A saved model file (kalcoint tune --save). (A method name here is the deprecated form of --method.)",
        ),
    ] = None,
    assets: AssetsOpt = None,
    iterations: IterOpt = 2000,
    delta: Annotated[
        Optional[float], typer.Option("--delta", help="Chan: Vw = delta/(1-delta) I (default 1e-4).")
    ] = None,
    state_var: Annotated[Optional[float], typer.Option("--state-var", help="Chan: explicit state variance.")] = None,
    obs_var: Annotated[
        Optional[float], typer.Option("--obs-var", help="Chan: measurement variance (default 1e-3).")
    ] = None,
    fill: FillOpt = None,
) -> None:
    """Run a filter over a price file and write its states, innovations and spread as CSV."""
    import pandas as pd

    from .._checks import CHAN_DELTA, CHAN_OBS_VAR
    from .._io import write_table
    from ..filtering import StateSpaceModel, kalman_filter

    method, model = method_or_model(method, model, MODEL_NAMES)
    require_parent(out, "--out")
    if delta is not None and state_var is not None:
        raise KalcointError("give either --delta or --state-var, not both")
    if method != "chan" and (delta is not None or state_var is not None or obs_var is not None):
        raise KalcointError("--delta, --state-var and --obs-var apply to --method chan only")
    chan_options: dict[str, Any] = {
        "delta": CHAN_DELTA if delta is None else delta,
        "state_var": state_var,
        "obs_var": CHAN_OBS_VAR if obs_var is None else obs_var,
    }
    if method == "chan":  # check the values before any work
        StateSpaceModel.chan(2, **chan_options)
    if method is not None:
        frame = load(prices, assets, fill)
        if method == "chan":
            ssm = StateSpaceModel.chan(frame.shape[1], **chan_options)
        else:
            from ..tuning import tune as _tune

            tuned = _tune(frame, method=method, iterations=iterations)
            warn_degenerate(method, tuned.degenerate, tuned.degenerate_reasons)
            ssm = tuned.model
    else:
        from ..live import open_saved_model
        from ._flags import flags

        with flags("model", "method", "assets"):
            saved = open_saved_model(str(model), parse_assets(assets), MODEL_NAMES)
        frame = load(prices, list(saved.assets), fill)
        if saved.model is None:
            raise KalcointError(f"--model {model} holds the static Johansen portfolio, which has no filter to run")
        ssm = saved.model
    result = kalman_filter(frame, ssm)
    table = result.to_frame().reset_index()
    table["date"] = pd.DatetimeIndex(table["date"]).strftime("%Y-%m-%d")  # text dates belong to the CSV
    write_table(out, table)
    console.print(
        f"filtered {result.nobs} rows of {', '.join(frame.columns)} ({method or model}); loglik {result.loglik:.4f}; "
        f"last hedge ratios "
        + ", ".join(f"{a} {b:.6g}" for a, b in zip(frame.columns[1:], result.filtered_state[-1, 1:]))
    )
    console.print(f"wrote {out}")


def _comparison_table(comp) -> Table:
    table = Table(
        title=f"Comparison: {', '.join(comp.assets)}  (n={comp.nobs}, "
        f"{comp.prices.index[0]:%Y-%m-%d} to {comp.prices.index[-1]:%Y-%m-%d}; "
        f"out of sample = last {100 * (1 - comp.train_fraction):.0f}%)"
    )
    cols = [
        ("row", "left"),
        ("alpha11", "right"),
        ("obs_var", "right"),
        ("ADF stat", "right"),
        ("lags", "right"),
        ("ADF p", "right"),
        ("loglik", "right"),
        ("LB p", "right"),
        ("OOS ADF p", "right"),
        ("OOS loglik", "right"),
        ("flag", "left"),
    ]
    for name, justify in cols:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in comp.rows:
        if r.error:
            table.add_row(r.name, *["-"] * 9, styled(f"failed: {r.error}", "red"))
            continue
        table.add_row(
            r.name,
            fmt(r.alpha11),
            fmt(r.obs_var, ".3g"),
            fmt(r.adf_stat, ".3f"),
            fmt(r.adf_lags),
            fmt(r.adf_pvalue, ".3g"),
            fmt(r.loglik, ".1f"),
            fmt(r.ljung_box_pvalue, ".3g"),
            fmt(r.oos_adf_pvalue, ".3g"),
            fmt(r.oos_loglik, ".1f"),
            styled(r.flag, "yellow") if r.flag else "",
        )
    return table


def _backtest_table(bt, strategy: str, cost_bps: float, window: int) -> Table:
    table = Table(
        title=f"Backtests ({strategy}; costs {cost_bps:g} bps of traded value; walk-forward: weekly "
        f"retuning on the {window} trading days before each week)"
    )
    table.add_column("model")
    table.add_column("mode")
    metrics = [
        ("apr", "APR", ".2%"),
        ("sharpe", "Sharpe", ".2f"),
        ("max_drawdown", "max DD", ".2%"),
        ("calmar", "Calmar", ".2f"),
        ("round_trips", "trips", "d"),
        ("avg_holding_days", "hold d", ".1f"),
        ("time_in_market", "in mkt", ".0%"),
        ("turnover", "turnover", ".1f"),
    ]
    for _, label, _ in metrics:
        table.add_column(label, justify="right")
    for (model, mode), row in bt.iterrows():
        cells = []
        for key, _, spec in metrics:
            value = row.get(key)
            if value is None or (isinstance(value, float) and not math.isfinite(value)):
                cells.append("-")
            else:
                cells.append(format(int(value) if spec == "d" else float(value), spec))
        table.add_row(str(model), str(mode), *cells)
    return table


def _print_alpha11_test(test) -> None:
    if test is None:
        warn("the test of alpha11 = 1 failed: its maximum-likelihood fits broke down")
        return
    p = (
        f"bootstrap p-value {test.p_value:.4g} (B = {test.bootstrap})"
        if test.p_value is not None
        else "no p-value (--bootstrap 0)"
    )
    console.print(
        f"alpha11 = 1 against alpha11 free (MLE): alpha11_hat {test.alpha11_hat:.6g}, LR {test.lr_stat:.4f}, {p}"
    )


def _compare_step(done: int, total: int) -> str:
    """The spinner's text after ``done`` of ``total`` steps of :func:`kalcoint.compare` (its
    rows first, then the bootstrap samples of the alpha11 test)."""
    from ..comparison import ROW_NAMES

    rows = len(ROW_NAMES)
    if done < rows:
        return f"comparing: {done}/{rows} variants done..."
    return f"comparing: alpha11 test, {done - rows}/{total - rows} bootstrap samples..."


def run_compare(
    frame,
    iterations: int,
    train_fraction: float,
    plot_dir: Path | None,
    json_out: Path | None,
    backtest: bool = False,
    cost_bps: float = 0.0,
    window: int = 250,
    strategy: str = "bands",
    bootstrap: int = 199,
) -> Any:
    """Shared by ``compare`` and ``demo``: compute, print, then write plots and JSON."""
    from ..comparison import compare as _compare

    if is_terminal():
        with err_console.status("comparing...", spinner="dots") as status:
            comp = _compare(
                frame,
                iterations=iterations,
                train_fraction=train_fraction,
                bootstrap=bootstrap,
                progress=lambda done, total: status.update(_compare_step(done, total)),
            )
    else:
        comp = _compare(frame, iterations=iterations, train_fraction=train_fraction, bootstrap=bootstrap)
    console.print(_comparison_table(comp))
    console.print(
        "ADF: constant, lags by AIC. LB p: Ljung-Box (10 lags) of the standardised innovations. "
        "OOS: tuned on the first part, filter continued over the rest.",
        style="dim",
    )
    _print_alpha11_test(comp.alpha11_test)
    for r in comp.rows:
        warn_degenerate(r.name, r.degenerate, r.degenerate_reasons)
        if r.below_mle:
            warn(
                f"the {r.name} fit's log-likelihood is {r.below_mle:.3g} below the mle fit's (whole sample or "
                "training rows): a stationary point short of the maximum (flag BELOW MLE)"
            )
    payload = comp.to_dict()
    if backtest:
        from ..backtest import compare_backtests

        from ._flags import progress_bar

        with progress_bar("walk-forward", is_terminal()) as tick:
            bt = compare_backtests(
                frame,
                strategy=strategy,
                cost_bps=cost_bps,
                window=window,
                iterations=iterations,
                progress=tick,
                layout="long",
            )
        console.print(_backtest_table(bt, strategy, cost_bps, window))
        payload["backtest"] = {
            "strategy": strategy,
            "cost_bps": cost_bps,
            "window": window,
            "rows": bt.reset_index().to_dict(orient="records"),
        }
    if plot_dir is not None:
        from ..plots import plot_hedge_ratios, plot_portfolios, plot_tuning_passes

        dyn: dict[str, Any] = {k: comp.results[k] for k in ("adaptive", "mle", "chan") if k in comp.results}
        written = [
            plot_portfolios(
                frame, comp.johansen, {k: v for k, v in dyn.items() if k != "chan"}, plot_dir / "portfolios.png"
            ),
            plot_hedge_ratios(frame, comp.johansen, dyn, plot_dir / "hedge_ratios.png"),
        ]
        if "adaptive" in comp.tuned:
            written.append(
                plot_tuning_passes(
                    comp.tuned["adaptive"].history,
                    plot_dir / "tuning_passes.png",
                    title=f"Seed passes on {', '.join(comp.assets)}",
                )
            )
        for path in written:
            console.print(f"wrote {path}")
    write_json(json_out, payload)
    return comp


@app.command()
def compare(
    prices: PricesArg,
    assets: AssetsOpt = None,
    iterations: IterOpt = 2000,
    train_fraction: Annotated[
        float, typer.Option("--train-fraction", help="Share of rows to tune on for the out-of-sample columns.")
    ] = 0.7,
    fill: FillOpt = None,
    json_out: JsonOpt = None,
    plot_dir: Annotated[Optional[Path], typer.Option("--plot-dir", help="Write the figures (PNG) here.")] = None,
    backtest: Annotated[
        bool, typer.Option("--backtest", help="Also backtest every model, in-sample and walk-forward.")
    ] = False,
    cost_bps: Annotated[float, typer.Option("--cost-bps", help="Backtest costs, bps of traded value.")] = 0.0,
    window: Annotated[int, typer.Option("--window", help="Walk-forward window (trading days).")] = 250,
    strategy: Annotated[str, typer.Option("--strategy", help="Backtest strategy: bands or linear.")] = "bands",
    bootstrap: Annotated[
        int,
        typer.Option(
            "--bootstrap",
            min=0,
            help="Bootstrap samples of the test of alpha11 = 1 (0: the statistic without a p-value).",
        ),
    ] = 199,
) -> None:
    """The method's comparison table: static, alpha=1, alpha estimated, adaptive, Chan, MLE, EM, ALS."""
    require_parent(json_out, "--json")
    require_dir_writable(plot_dir, "--plot-dir")
    if strategy not in ("bands", "linear"):
        raise KalcointError(f"--strategy {strategy!r} is not one of bands, linear")
    if not 0.2 <= train_fraction <= 0.95:
        raise KalcointError(f"--train-fraction {train_fraction} must be between 0.2 and 0.95")
    frame = load(prices, assets, fill)
    run_compare(frame, iterations, train_fraction, plot_dir, json_out, backtest, cost_bps, window, strategy, bootstrap)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Directory for the demo prices and figures.")] = Path(
        "kalcoint-demo"
    ),
    iterations: IterOpt = 2000,
    universe: Annotated[
        Optional[int],
        typer.Option(
            "--universe",
            min=2,
            help="Instead of the comparison, write a generated universe of N assets to OUT/universe.csv "
            "(common factors, daily vols 1-2.5%) with cointegrated baskets planted in it, and their true "
            "parameters to OUT/universe_planted.csv (kalcoint.synthetic.universe).",
        ),
    ] = None,
    days: Annotated[
        Optional[int], typer.Option("--days", min=2, help="--universe: business days (default 1500).")
    ] = None,
    planted: Annotated[
        Optional[int], typer.Option("--planted", min=0, help="--universe: planted pairs (default 25).")
    ] = None,
    planted_triplets: Annotated[
        Optional[int], typer.Option("--planted-triplets", min=0, help="--universe: planted triplets (default 0).")
    ] = None,
    seed: Annotated[
        Optional[int], typer.Option("--seed", min=0, help="--universe: seed of the generator (default 0).")
    ] = None,
) -> None:
    """Run the comparison on a price set generated inside the package (no files, no network),
    or with --universe write a generated universe with planted cointegrated baskets."""
    from .._io import write_table
    from ..synthetic import demo_prices

    require_dir_writable(out, "--out")
    given = [
        f
        for f, v in (
            ("--days", days),
            ("--planted", planted),
            ("--planted-triplets", planted_triplets),
            ("--seed", seed),
        )
        if v is not None
    ]
    if universe is None and given:
        raise KalcointError(f"{', '.join(given)} only go with --universe: add --universe N or leave them out")
    if universe is not None:
        sizes = [2] * (25 if planted is None else planted) + [3] * (planted_triplets or 0)
        _write_universe(out, universe, days or 1500, sizes, seed or 0)
        return
    frame = demo_prices()
    console.print(
        styled("kalcoint demo", "bold"),
        f": {len(frame)} business days of ETFA (dependent), ETFB, ETFC "
        "simulated from the model of docs/method.md §1 with a fixed seed: alpha11 = 0.95, obs_var = 0.02, "
        "state_var = (0.05, 1e-6, 1e-6), hedge ratios starting at 0.8 and 0.5 and drifting.",
        sep="",
    )
    comp = run_compare(frame, iterations, 0.7, out, out / "comparison.json")
    mle = comp.row("mle")
    if mle.error is None:
        console.print(
            f"Truth vs estimates: MLE finds alpha11 = {mle.alpha11:.3f} (true 0.95) and obs_var = "
            f"{mle.obs_var:.4f} (true 0.02); the seed passes end at obs_var = "
            f"{comp.row('adaptive').obs_var:.2g}, an exact fit."
        )
    csv_path = out / "demo_prices.csv"
    write_table(csv_path, frame.reset_index())
    console.print(f"wrote {csv_path}  (try: kalcoint tune {csv_path} --assets ETFA,ETFB,ETFC)")


def _write_universe(out: Path, n_assets: int, n_days: int, sizes: list[int], seed: int) -> None:
    """``demo --universe``: the prices and the planted baskets' truth, each written atomically."""
    import pandas as pd

    from .._io import write_table
    from ..synthetic import universe

    truth = universe(n_assets, n_days, planted=sizes, seed=seed)  # checks its arguments before any write
    out.mkdir(parents=True, exist_ok=True)
    prices_path, planted_path = out / "universe.csv", out / "universe_planted.csv"
    planted = pd.DataFrame(
        {
            "assets": [",".join(b.assets) for b in truth.planted],
            "alpha11": [b.alpha11 for b in truth.planted],
            "obs_var": [b.obs_var for b in truth.planted],
            "state_var": [",".join(f"{v:.10g}" for v in b.state_var) for b in truth.planted],
            "hedge_ratios": [",".join(f"{v:.10g}" for v in b.hedge_ratios) for b in truth.planted],
        }
    )
    write_table(prices_path, truth.prices.reset_index())
    write_table(planted_path, planted)
    console.print(
        f"wrote {prices_path} ({n_assets} assets x {n_days} days, seed {seed}) and {planted_path} "
        f"({len(truth.planted)} planted baskets, dependent asset first)  (try: kalcoint screen {prices_path} "
        f"--size 2 --out screen.parquet)"
    )

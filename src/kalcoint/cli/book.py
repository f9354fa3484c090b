"""``kalcoint book``: a book of baskets run live as the study simulates it (create, update,
status, history, baskets).

Exit codes as ``update``: 0 done; 2 refused (bad input, a locked or damaged book: nothing
changed); 3 the rows were applied but ``--json`` could not be written (do not re-run the
update; ``book status BOOK --json FILE`` gives the state).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import (
    DependentOpt,
    BasketAssetsOpt,
    BasketSizeOpt,
    CostBpsOpt,
    EntryOpt,
    ExitOpt,
    StrategyOpt,
    app,
    console,
    dataset_path,
    err_console,
    parse_assets,
)
from ._flags import flags, require_writable
from .live import EXIT_OUTPUT_FAILED, _emit_json, _sayer

book_app = typer.Typer(
    help="A book of baskets: the study's routine run live (create once, update daily, status, history, baskets).",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(
    book_app,
    name="book",
    help="A book of baskets: the study's routine run live (create once, update daily, status, history, baskets).",
)

BOOK_FLAGS = ("capital", "lot", "lock_timeout", "max_jump", "model", "retune", "allocation", "cost_bps")

BookArg = Annotated[Path, typer.Argument(help="The book file.", show_default=False)]
LockOpt = Annotated[float, typer.Option("--lock-timeout", help="Seconds to wait while another update writes BOOK.")]
JsonOpt = Annotated[Path | None, typer.Option("--json", help="Also write JSON ('-': stdout carries only the JSON).")]


@book_app.command()
def create(
    book: BookArg,
    prices: Annotated[
        Path,
        typer.Option(
            "--prices", help="The universe (CSV or Parquet); the book starts after its last row.", callback=dataset_path
        ),
    ],
    assets: BasketAssetsOpt = None,
    size: BasketSizeOpt = 2,
    select: Annotated[str, typer.Option("--select", help="Selection rule: static, mle-oos or half-life.")] = "static",
    dependent: DependentOpt = "first",
    top: Annotated[int, typer.Option("--top", help="Baskets held per period.")] = 20,
    formation: Annotated[
        int, typer.Option("--formation", help="Formation window (rows) baskets are selected on.")
    ] = 250,
    trading: Annotated[
        int, typer.Option("--trading", help="Trading window (rows); re-selection every this many rows.")
    ] = 125,
    window: Annotated[int, typer.Option("--window", help="Estimation window (rows) of each basket's model.")] = 250,
    strategy: StrategyOpt = "bands",
    entry: EntryOpt = 1.0,
    exit_: ExitOpt = 1.0,
    cost_bps: CostBpsOpt = 5.0,
    model: Annotated[str, typer.Option("--model", help="static, chan, seed, mle, em or als.")] = "chan",
    retune: Annotated[
        str, typer.Option("--retune", help="Re-estimation of each basket: weekly or monthly.")
    ] = "weekly",
    capital: Annotated[float, typer.Option("--capital", help="Dollars at the start.")] = 1_000_000.0,
    allocation: Annotated[
        str, typer.Option("--allocation", help="equal: the same capital per basket (the study's).")
    ] = "equal",
    iterations: Annotated[
        int | None, typer.Option("--iterations", help="Tuning iterations of the re-estimations.")
    ] = None,
) -> None:
    """Create a book from a universe file: screen its last --formation rows; trading starts with the next row."""
    from .. import book as bk
    from ..errors import KalcointError
    from ..screen import load_universe

    with flags(*BOOK_FLAGS, "size", "formation", "trading", "top", "select", "dependent", "window", "strategy",
               "entry", "exit", "iterations"):  # fmt: skip
        options = bk.BookOptions(
            size=size, formation=formation, trading=trading, top=top, select=select, dependent=dependent, window=window,
            strategy=strategy, entry=entry, exit=exit_, cost_bps=cost_bps, iterations=iterations, model=model,
            retune=retune, capital=capital, allocation=allocation,
        )  # fmt: skip
    if book.exists() or book.is_symlink():
        raise KalcointError(f"book file {book} already exists; give a new path (a book is created once)")
    require_writable(book, "BOOK")
    universe = load_universe(prices, parse_assets(assets))
    b = bk.create(book, universe, options)
    screen = len(b._query("SELECT rows FROM screens"))
    console.print(
        f"created {book}: {len(b.tickers)} tickers, {b.head.rows} rows kept (to {b.last_date:%Y-%m-%d}), "
        f"model {model}, top {top} baskets of {size} by {select}; {screen} formation screen done; "
        "trading starts with the next row fed (book update)",
        markup=False, highlight=False, soft_wrap=True,
    )  # fmt: skip


def _read_rows(path: Path) -> Any:
    from ..data import read_price_table

    return read_price_table(path)


@book_app.command()
def update(
    book: BookArg,
    prices: Annotated[
        Path,
        typer.Option(
            "--prices",
            help="New rows of the universe (every ticker the book may hold), oldest first.",
            callback=dataset_path,
        ),
    ],
    lot: Annotated[float, typer.Option("--lot", help="Round orders to multiples of this many shares.")] = 1.0,
    max_jump: Annotated[
        float, typer.Option("--max-jump", help="Refuse a held ticker's |daily log return| above this.")
    ] = 0.25,
    lock_timeout: LockOpt = 10.0,
    json_out: JsonOpt = None,
) -> None:
    """Feed new rows to a book (all or none): step every basket, re-select when a period ends,
    print the netted targets and orders for the last row. Exit 3: rows applied, --json not written."""
    from .. import book as bk
    from ..errors import KalcointError

    say = _sayer(json_out)
    require_writable(json_out, "--json")
    with flags(*BOOK_FLAGS):
        b = bk.load(book, lock_timeout=lock_timeout)
        rows = _read_rows(prices)
        r = b.update(rows, lot=lot, max_jump=max_jump, source=str(prices))
    say(f"applied {r.rows} row(s) to {book}; last {r.date}, period {b.head.period}")
    for j in r.selected:
        say(f"re-selected period {j}")
    say(f"capital {r.capital:,.2f}  P&L {r.pnl:+,.2f}  drawdown {r.drawdown:.2%}  day return {r.book_return:+.4%} "
        f"(study convention {r.study_return:+.4%})")  # fmt: skip
    for x in r.baskets:
        say(f"basket {x['id']:>4} {','.join(x['assets']):<24} {x['status']:<8} units {x['units']:+.4g}  "
            f"return {x['return']:+.4%}  contribution {x['contribution']:+.4%}")  # fmt: skip
    say("targets (shares): " + ("  ".join(f"{t} {s:+.4f}" for t, s in r.targets.items()) or "flat"))
    for o in r.orders:
        say(
            f"order {o['ticker']:<8} {o['order']:+,.0f} shares (exact {o['shares']:+.4f}, residual {o['residual']:+.4f})"
        )
    ns = r.next_selection
    say(f"next re-selection in {ns['rows_left']} row(s), about {ns['expected_date']}")
    try:
        _emit_json(json_out, r.to_dict())
    except (OSError, KalcointError) as exc:
        err_console.print(
            f"kalcoint: error: the rows were applied to {book} (now at {r.date}) but --json {json_out} was not "
            f"written ({exc}); do not re-run the update: `kalcoint book status {book} --json FILE` gives the state",
            style="red", highlight=False, soft_wrap=True,
        )  # fmt: skip
        raise typer.Exit(EXIT_OUTPUT_FAILED) from None


@book_app.command()
def status(book: BookArg, json_out: JsonOpt = None, lock_timeout: LockOpt = 10.0) -> None:
    """Print a book's state: last date, capital, drawdown, holdings, the period's baskets."""
    from .. import book as bk

    say = _sayer(json_out)
    require_writable(json_out, "--json")
    with flags(*BOOK_FLAGS):
        s = bk.load(book, lock_timeout=lock_timeout).status()
    o = s["options"]
    say(f"book {book}: model {o['model']}, top {o['top']} of {o['size']} by {o['select']}, {s['tickers']} tickers")
    say(f"last date {s['last_date']}, period {s['period']}, capital {s['capital']:,.2f}, drawdown {s['drawdown']:.2%}")
    for x in s["baskets"]:
        say(f"basket {x['id']:>4} {','.join(x['assets']):<24} {x['status']:<8} units {x['units']:+.4g}")
    say("holdings (shares): " + ("  ".join(f"{t} {v:+.4f}" for t, v in s["holdings"].items()) or "flat"))
    ns = s["next_selection"]
    say(f"next re-selection in {ns['rows_left']} row(s), about {ns['expected_date']}")
    _emit_json(json_out, s)


@book_app.command()
def history(
    book: BookArg,
    out: Annotated[Path, typer.Option("--out", help="CSV or Parquet: one row per traded day.")],
    lock_timeout: LockOpt = 10.0,
) -> None:
    """Write one row per day: book return, study-convention return, capital, gross, traded, costs, netting saving,
    shares per ticker, and per basket its units and return."""
    from .. import book as bk
    from .._io import write_table, write_with

    require_writable(out, "--out")
    with flags(*BOOK_FLAGS):
        frame = bk.load(book, lock_timeout=lock_timeout).history()
    if out.suffix.lower() in (".parquet", ".pq"):
        write_table(out, frame)
    else:
        write_with(out, lambda tmp: frame.to_csv(tmp, index=False))
    console.print(f"wrote {out}: {len(frame)} days", markup=False, highlight=False, soft_wrap=True)


@book_app.command()
def baskets(book: BookArg, json_out: JsonOpt = None, lock_timeout: LockOpt = 10.0) -> None:
    """List every basket a book ever held: period, rank, selection figures, versions, outcome."""
    from .. import book as bk
    from .._io import to_jsonable

    say = _sayer(json_out)
    require_writable(json_out, "--json")
    with flags(*BOOK_FLAGS):
        frame = bk.load(book, lock_timeout=lock_timeout).baskets()
    for _, x in frame.iterrows():
        say(f"period {x['period']:>3} rank {x['rank']:>3} {x['assets']:<24} {x['status']:<8} "
            f"versions {x['versions']:>4} days {x['n_days']:>4} total return {x['total_return']:+.2%}"
            + (f"  ({x['reason']})" if x["reason"] else ""))  # fmt: skip
    if not len(frame):
        say("no basket yet (the first selection is made when the first row after creation arrives)")
    _emit_json(json_out, {"baskets": to_jsonable(frame.to_dict(orient="records"))})

"""``kalcoint datasets``: the price panels shipped with kalcoint.

Every command that reads a price file also takes ``dataset:NAME`` for a packaged dataset,
e.g. ``kalcoint johansen dataset:chan_etf --assets EWA,EWC,IGE``.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ._common import app, console

datasets_app = typer.Typer(
    help="The packaged price panels (list, path, describe); any price argument takes dataset:NAME.",
    no_args_is_help=False,
    invoke_without_command=True,
    rich_markup_mode="rich",
)
app.add_typer(
    datasets_app,
    name="datasets",
    help="The packaged price panels (list, path, describe); any price argument takes dataset:NAME.",
)

NameArg = Annotated[str, typer.Argument(help="A dataset name (kalcoint datasets lists them).", show_default=False)]


@datasets_app.callback()
def _list(ctx: typer.Context) -> None:
    """List the packaged datasets: name, rows x columns, what they are."""
    if ctx.invoked_subcommand is not None:
        return
    from ..datasets import describe, names

    table = Table(title="Packaged datasets (read one as dataset:NAME)", title_justify="left")
    for column in ("name", "rows x cols", "what"):
        table.add_column(column)
    for name in names():
        entry = describe(name)
        table.add_row(name, f"{entry.shape[0]} x {entry.shape[1]}", entry.title)
    console.print(table, markup=False)


@datasets_app.command("path")
def path_(name: NameArg) -> None:
    """Print the packaged file of a dataset (a gzip-compressed CSV that every command reads)."""
    from ..datasets import path

    print(path(name))


@datasets_app.command()
def describe(name: NameArg) -> None:
    """Print a dataset's provenance, layout quirks and the published figures it reproduces."""
    from ..datasets import describe as record

    entry = record(name)
    print(f"{entry.name}: {entry.title} ({entry.shape[0]} rows x {entry.shape[1]} columns)")
    print(entry.notes)

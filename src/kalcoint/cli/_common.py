"""Shared pieces of the command line: the app, option parsing, output helpers."""

from __future__ import annotations

import json
import math
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from ..errors import KalcointError

app = typer.Typer(
    name="kalcoint",
    help="Trade cointegrated portfolios with a Kalman filter (Johansen, the seed method's "
    "adaptive tuning, MLE/EM, backtests, live models, screening).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


# Tables keep their full width when piped to a file (rich would wrap them at 80 columns).
def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"kalcoint {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Trade cointegrated portfolios with a Kalman filter."""


console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)


def parse_assets(text: str | None, *, option: str = "--assets") -> list[str] | None:
    """Split ``"A,B,C"`` into tickers; ``None`` passes through."""
    if text is None:
        return None
    assets = [a.strip() for a in text.split(",") if a.strip()]
    if not assets:
        raise KalcointError(f"{option} is empty: give tickers separated by commas, e.g. {option} EWA,EWC,IGE")
    if len(set(assets)) != len(assets):
        raise KalcointError(f"{option} {text!r} names a ticker twice: give each ticker once")
    return assets


FLAGS: dict[str, str] = {
    "prices": "PRICES",
    "chan_obs_var": "--obs-var",
    "walk_forward": "--walk-forward",
}
"""Library parameter names whose command-line flag is not ``--`` + the name with ``-`` for ``_``."""


def flag(param: str) -> str:
    """The command-line flag of a library parameter: ``train_fraction`` -> ``--train-fraction``."""
    return FLAGS.get(param, "--" + param.replace("_", "-"))


def cli_message(exc: KalcointError) -> str:
    """A library error's message with the parameters it names shown as this command line's flags;
    text between backticks (a command to run, e.g. `dask scheduler`) is kept as it is."""
    parts = str(exc).split("`")
    for i in range(0, len(parts), 2):  # the even parts are outside backticks
        for param in sorted(getattr(exc, "params", ()), key=len, reverse=True):
            parts[i] = re.sub(rf"(?<![\w./-]){re.escape(param)}(?![\w.]|-\w)", flag(param), parts[i])
    return "`".join(parts)


def _probe(directory: Path, option: str, path: Path) -> None:
    """Refuse unless a file can be created in ``directory`` (the nearest existing ancestor):
    a temporary file is created and removed at once."""
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise KalcointError(f"{option} {path}: {existing} is a file, not a directory; give another path")
    try:
        fd, probe = tempfile.mkstemp(prefix=".kalcoint-probe-", dir=existing)
    except OSError as exc:
        raise KalcointError(
            f"{option} {path}: cannot write in {existing} ({exc.strerror or exc}); choose a writable directory"
        ) from None
    os.close(fd)
    os.unlink(probe)


def require_dir_writable(path: Path | None, option: str) -> None:
    """Fail early (before long work) when an output directory cannot be created or written."""
    if path is None:
        return
    if path.exists() and not path.is_dir():
        raise KalcointError(f"{option} {path} is a file, not a directory: give a directory path")
    _probe(path, option, path)


def require_parent(path: Path | None, option: str) -> None:
    """Fail early when an output file cannot be written: its directory is missing or not writable,
    or the path is a directory. ``-`` (stdout) passes."""
    from .._io import is_stream

    if path is None or is_stream(path):  # '-', a device, a FIFO: written into, nothing created beside
        return
    path = Path(os.path.realpath(path)) if path.is_symlink() else path  # the target is replaced
    if not path.parent.exists():
        raise KalcointError(f"{option} {path}: directory {path.parent} does not exist; create it first")
    if path.is_dir():
        raise KalcointError(f"{option} {path} is a directory: give a file path")
    if not path.parent.is_dir():
        raise KalcointError(f"{option} {path}: {path.parent} is a file, not a directory; give another path")
    _probe(path.parent, option, path)


DATASET_PREFIX = "dataset:"
"""A price argument ``dataset:NAME`` reads the packaged dataset NAME (``kalcoint datasets``)."""


def dataset_path(value: Path | None) -> Path | None:
    """Typer callback of every price-file argument: ``dataset:NAME`` becomes the packaged file."""
    if value is None or not str(value).startswith(DATASET_PREFIX):
        return value
    from ..datasets import path

    return path(str(value)[len(DATASET_PREFIX) :])


def fail(message: str) -> None:
    """Print a one-line error and exit with code 2."""
    err_console.print(f"kalcoint: error: {message}", style="red", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def warn(message: str) -> None:
    err_console.print(f"warning: {message}", style="yellow", highlight=False, soft_wrap=True)


def is_terminal() -> bool:
    return sys.stderr.isatty()


def fmt(value: Any, spec: str = ".4g", inf: str = "-") -> str:
    """A table cell: ``-`` for missing or NaN, ``inf`` text for +inf, yes/no for booleans,
    integers as they are, other numbers with ``spec``."""
    import numpy as np

    if value is None or value is _pd_na():
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(value)
    v = float(value)
    if v == math.inf:
        return inf
    return format(v, spec) if math.isfinite(v) else "-"


def _pd_na() -> Any:
    import pandas as pd

    return pd.NA


def write_json(path: Path | None, payload: dict) -> None:
    """``--json FILE``: write atomically and say so; ``--json -``: print to stdout; ``None``: nothing."""
    if path is None:
        return
    if str(path) == "-":
        console.print_json(json.dumps(payload))
        return
    from .._io import write_json as _write

    _write(path, payload)
    err_console.print(f"wrote {path}", style="dim")

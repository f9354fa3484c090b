"""Shared pieces of the command line: the app, option parsing, output helpers."""

from __future__ import annotations

import functools
import json
import math
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

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


# C0 and C1 control characters but the newline (which lays out multi-line output; a name holding
# one still breaks its line) and the bidirectional overrides, which would reorder what is shown.
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def literal(text: object) -> str:
    """``text`` as the terminal must show it: control characters (an ANSI escape, NUL) as
    ``\\x1b`` / ``\\x00`` escapes, so that a name a file holds cannot drive the terminal.

    Examples
    --------
    >>> literal("\\x1b[31mEWA\\x00")
    '\\\\x1b[31mEWA\\\\x00'
    """
    return _CONTROL.sub(_escape, str(text))


def styled(text: object, style: str) -> Text:
    """A literal piece of text in ``style`` (instead of markup such as ``[red]...[/red]``)."""
    return Text(literal(text), style=style)


class LiteralConsole(Console):
    """A console on which every string prints literally: markup (``[/]``, ``[red]``) and emoji
    codes (``:smile:``) are text, control characters are escaped (:func:`literal`). Tables,
    their titles and captions, messages and spinners all render strings through here;
    styles are given with ``style=`` or :func:`styled`."""

    def render_str(self, text: str, **options: Any) -> Text:
        options.update(markup=False, emoji=False)
        return super().render_str(literal(text), **options)

    def status(self, status: Any, **options: Any) -> Any:
        return super().status(Text(literal(status)) if isinstance(status, str) else status, **options)


def _console(stream: Any, **options: Any) -> LiteralConsole:
    """Piped to a file or another program, tables keep 200 columns and lines stay whole
    (rich would wrap both at 80 columns)."""
    tty = stream.isatty()
    return LiteralConsole(width=None if tty else 200, soft_wrap=not tty, **options)


console = _console(sys.stdout)
err_console = _console(sys.stderr, stderr=True)


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
    "save_model": "`kalcoint tune PRICES --save MODEL`",
    "security": "--tls-ca-file/--tls-cert/--tls-key",
}
"""Library names whose command-line form is not ``--`` + the name with ``-`` for ``_``."""


# The options `study` and `book create` share (a book runs the study's routine live).
BasketAssetsOpt = Annotated[
    str | None, typer.Option("--assets", help="Comma-separated tickers (default: every column).")
]
BasketSizeOpt = Annotated[int, typer.Option("--size", help="Assets per basket: 2 or 3.")]
StrategyOpt = Annotated[str, typer.Option("--strategy", help="bands (Chan's rule) or linear.")]
EntryOpt = Annotated[float, typer.Option("--entry", help="Bands: entry threshold in sigmas.")]
ExitOpt = Annotated[float, typer.Option("--exit", help="Bands: exit threshold in sigmas.")]
CostBpsOpt = Annotated[float, typer.Option("--cost-bps", help="Costs in bps of traded dollar value.")]
DependentOpt = Annotated[
    str,
    typer.Option(
        "--dependent",
        help="Which asset of a basket is the dependent one: 'first' (the one first in the file's column "
        "order), 'all' (each in turn) or a ticker (only baskets containing it, as the dependent).",
    ),
]


def flag(param: str) -> str:
    """The command-line flag of a library parameter: ``train_fraction`` -> ``--train-fraction``."""
    return FLAGS.get(param, "--" + param.replace("_", "-"))


def cli_message(exc: KalcointError) -> str:
    """A library error's message with the parameters it names (``exc.params``) said as this
    command line's flags: ``train_fraction 0.99`` -> ``--train-fraction 0.99``; in a message that
    writes ``capital=5``, that form only -> ``--capital 5`` (``resume=True`` -> ``--resume``);
    ``save_model()`` -> the command that saves a model. The one place where library names
    become flags. Text between backticks (a command to run, e.g. `dask scheduler`) is kept as it is.

    Examples
    --------
    >>> cli_message(KalcointError("capital=-5 must be > 0 (the capital); or resume=True", params=("capital", "resume")))
    '--capital -5 must be > 0 (the capital); or --resume'
    >>> cli_message(KalcointError("out x.csv exists: pass resume", params=("out", "resume")))
    '--out x.csv exists: pass --resume'
    """
    parts = str(exc).split("`")
    parts[::2] = [_as_flags(part, getattr(exc, "params", ())) for part in parts[::2]]  # outside backticks
    return "`".join(parts)


def _as_flags(text: str, params: Any) -> str:
    """:func:`cli_message` on text outside backticks."""
    for param in sorted({*params, "save_model"}, key=len, reverse=True):
        name = rf"(?<![\w./-]){re.escape(param)}"
        if re.search(name + "=", text):
            text = re.sub(
                name + r"=(True\b)?('[^']*'|\S+?)??(?=[\s,;:)]|$)", functools.partial(_with_value, param), text
            )
        else:
            text = re.sub(name + r"(\(\))?(?![\w.(]|-\w)", functools.partial(_bare, param), text)
    return text


def _bare(param: str, match: re.Match[str]) -> str:
    return flag(param)


def _with_value(param: str, match: re.Match[str]) -> str:
    """``name=True`` as the bare flag, ``name=value`` as the flag and the (unquoted) value."""
    if match.group(1):
        return flag(param)
    return f"{flag(param)} {(match.group(2) or '').strip(chr(39))}"


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


def method_or_model(method: str | None, model: str | None, methods: tuple[str, ...]) -> tuple[str | None, str | None]:
    """The method name and the model file of a command that takes ``--method NAME`` or
    ``--model FILE``, one of the two; ``--model NAME``, the deprecated form, warns once and gives
    the method."""
    if method is not None and model is not None:
        raise KalcointError("give --method NAME or --model FILE (a saved model), not both")
    if model is not None and model in methods:
        warn(f"--model {model} is deprecated: use --method {model}")
        return model, None
    if method is None and model is None:
        raise KalcointError(f"give --method NAME ({', '.join(methods)}) or --model FILE (a saved model)")
    if method is not None and method not in methods:
        raise KalcointError(
            f"--method {method} is not one of {', '.join(methods)}; a saved model file goes under --model FILE"
        )
    return method, model


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

"""The ``kalcoint`` command line: a thin shell over the library.

Each command module registers its commands on the shared Typer app.
"""

from __future__ import annotations

import sys
from typing import Any

from ..errors import KalcointError
from ._common import app, cli_message, err_console

# Command modules register themselves on ``app`` when imported.
from . import core as _core  # noqa: F401,E402

for _optional in ("backtest", "live", "screen", "report", "study"):
    try:
        __import__(f"{__name__}.{_optional}")
    except ModuleNotFoundError as exc:  # a command module not written yet
        if exc.name != f"{__name__}.{_optional}":
            raise


_Classes = tuple[type[BaseException], ...]


def _click_classes() -> tuple[_Classes, _Classes, _Classes]:
    """(usage errors, no-args-is-help errors, aborts) of click and of the click that typer vendors."""
    usage: list[type[BaseException]] = []
    no_args: list[type[BaseException]] = []
    aborts: list[type[BaseException]] = [KeyboardInterrupt]
    for module in ("click.exceptions", "typer._click.exceptions", "typer.exceptions"):
        try:
            mod = __import__(module, fromlist=["_"])
        except ImportError:
            continue
        for name, bucket in (("ClickException", usage), ("NoArgsIsHelpError", no_args), ("Abort", aborts)):
            cls = getattr(mod, name, None)
            if isinstance(cls, type) and issubclass(cls, BaseException) and cls not in bucket:
                bucket.append(cls)
    return tuple(usage), tuple(no_args), tuple(aborts)


def _usage_line(exc: Any) -> str:
    """A click usage error as one line: the problem and where to read more."""
    message = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "kalcoint"
    return f"{message} (see: {command} --help)"


def main() -> None:
    """Entry point: run the app. A :class:`KalcointError` or a usage error (bad option value,
    unknown option) becomes one line on stderr and exit 2."""
    if len(sys.argv) > 1 and sys.argv[1] in ("tune", "filter", "compare", "demo", "backtest", "screen", "update", "report",
                                             "study"):
        from ..warmup import cache_is_cold

        if cache_is_cold():
            err_console.print("first run: compiling kalcoint's kernels (20-30 s, once; cached afterwards)",
                              style="dim")
    usage, no_args, aborts = _click_classes()
    try:
        code = app(standalone_mode=False)
    except KalcointError as exc:
        err_console.print(f"kalcoint: error: {cli_message(exc)}", style="red", highlight=False, soft_wrap=True)
        sys.exit(2)
    except no_args as exc:
        ctx = getattr(exc, "ctx", None)
        print(ctx.get_help() if ctx is not None else str(exc))
        sys.exit(0)
    except usage as exc:
        err_console.print(f"kalcoint: error: {_usage_line(exc)}", style="red", highlight=False, soft_wrap=True)
        sys.exit(getattr(exc, "exit_code", 2) or 2)
    except aborts:
        err_console.print("kalcoint: interrupted", style="red")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)

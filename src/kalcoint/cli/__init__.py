"""The ``kalcoint`` command line: a thin shell over the library.

Each command module registers its commands on the shared Typer app.
"""

from __future__ import annotations

import sys

from ..errors import KalcointError
from ._common import app, err_console

# Command modules register themselves on ``app`` when imported.
from . import core as _core  # noqa: F401,E402

for _optional in ("backtest", "live", "screen", "report"):
    try:
        __import__(f"{__name__}.{_optional}")
    except ModuleNotFoundError as exc:  # a command module not written yet
        if exc.name != f"{__name__}.{_optional}":
            raise


def main() -> None:
    """Entry point: run the app; a :class:`KalcointError` becomes one line on stderr and exit 2."""
    if len(sys.argv) > 1 and sys.argv[1] in ("tune", "filter", "compare", "demo", "backtest", "screen", "update", "report"):
        from ..warmup import cache_is_cold

        if cache_is_cold():
            err_console.print("first run: compiling kalcoint's kernels (20-30 s, once; cached afterwards)",
                              style="dim")
    try:
        app()
    except KalcointError as exc:
        err_console.print(f"kalcoint: error: {exc}", style="red", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("kalcoint: interrupted", style="red")
        sys.exit(130)

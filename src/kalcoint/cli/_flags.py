"""Command-line helpers of the backtest and live commands: the parameters their library errors
name, output paths checked before any work, a progress bar fed by callbacks."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import KalcointError
from ._common import err_console, literal


@contextmanager
def flags(*names: str) -> Iterator[None]:
    """Declare the library parameters ``names`` that the errors raised inside may name as
    ``name=value`` (``capital=5``): :func:`~kalcoint.cli._common.cli_message` shows them as flags."""
    try:
        yield
    except KalcointError as exc:
        named = [n for n in names if re.search(rf"(?<![\w./-]){re.escape(n)}=", str(exc))]
        exc.params = tuple(dict.fromkeys((*exc.params, *named)))
        raise


def require_writable(path: Path | None, option: str) -> None:
    """Refuse, before any work, an output file whose directory is missing or cannot be written
    (a temporary file is created there and removed: what the atomic write will do)."""
    from .._io import is_stream

    if path is None or is_stream(path):  # '-', a device, a FIFO: written into, nothing created beside
        return
    path = Path(os.path.realpath(path)) if path.is_symlink() else path  # the target is replaced
    parent = path.parent
    if path.is_dir():
        raise KalcointError(f"{option} {path} is a directory: give a file path")
    if not parent.exists():
        raise KalcointError(f"{option} {path}: directory {parent} does not exist; create it first")
    if not parent.is_dir():
        raise KalcointError(f"{option} {path}: {parent} is a file, not a directory; give another path")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".check", dir=parent)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise KalcointError(
            f"{option} {path}: cannot write in {parent} ({exc.strerror}); choose a writable directory"
        ) from None


@contextmanager
def progress_bar(label: str, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar on stderr fed by ``progress(done, total)`` (None when not ``enabled``)."""
    if not enabled:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(literal(label), total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield tick

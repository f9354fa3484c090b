"""Command-line helpers of the backtest and live commands: library errors said with the
command's flags, output paths checked before any work, a progress bar fed by callbacks."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import KalcointError

_NAME_VALUE = re.compile(r"\b([a-z][a-z0-9_]*)=('[^']*'|\S+?)(?=[\s,;:)]|$)")


def as_flags(message: str, names: Iterable[str]) -> str:
    """Rewrite ``name=value`` of the library's parameters ``names`` as ``--name value``
    (``name=True`` as ``--name``; ``name=N`` stays a placeholder: ``--name N``)."""
    known = set(names)

    def sub(match: re.Match[str]) -> str:
        name, value = match.group(1), match.group(2)
        if name not in known:
            return match.group(0)
        flag = "--" + name.replace("_", "-")
        if value == "True":
            return flag
        return f"{flag} {value.strip(chr(39))}"

    text = _NAME_VALUE.sub(sub, message)
    return text.replace("save_model()", "`kalcoint tune PRICES --save MODEL`")


@contextmanager
def flags(*names: str) -> Iterator[None]:
    """Re-raise a :class:`KalcointError` with the parameters ``names`` said as flags."""
    try:
        yield
    except KalcointError as exc:
        raise KalcointError(as_flags(str(exc), names)) from None


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
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield tick

"""Atomic writes: a file is either its old self or complete, never partial."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def _through_proc(path: str) -> str | None:
    """The ``/proc/...`` path that ``path`` reaches through its symlinks (``/dev/stdout`` ->
    ``/proc/self/fd/1``), else None: such a path is a shell's redirection or a pipe, not a file
    to replace."""
    current = os.path.abspath(path)
    for _ in range(40):
        current = os.path.join(os.path.realpath(os.path.dirname(current)), os.path.basename(current))
        if current.startswith("/proc/"):
            return current
        if not os.path.islink(current):
            return None
        current = os.path.join(os.path.dirname(current), os.readlink(current))
    return None


def _own_descriptor(path: str) -> int | None:
    """The descriptor of this process that ``path`` names (``/dev/stdout``: 1), else None."""
    reached = _through_proc(path)
    match = re.fullmatch(rf"/proc/(?:self|{os.getpid()})/fd/(\d+)", reached or "")
    return None if match is None else int(match.group(1))


def is_stream(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is written into rather than replaced: ``-`` (standard output), a
    device, a FIFO or a socket (after following symlinks), or a descriptor such as ``/dev/stdout``.

    Examples
    --------
    >>> is_stream("-"), is_stream("/dev/null"), is_stream("new-file.json")
    (True, True, False)
    """
    text = os.fspath(path)
    if text == "-":
        return True
    try:
        mode = os.stat(text).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)) or _through_proc(text) is not None


def _write_error(path: str | os.PathLike[str], exc: BaseException, changed: bool) -> Exception:
    from .errors import KalcointError

    reason = getattr(exc, "strerror", None) or " ".join(str(exc).split()) or type(exc).__name__
    if changed:
        tail = "part of the output may have reached it"
    else:
        tail = "it was left as it was" if os.path.lexists(path) else "nothing was written"
    return KalcointError(f"cannot write {os.fspath(path)}: {reason}; {tail}")


@contextmanager
def _streamed(path: str, suffix: str) -> Iterator[Path]:
    """Yield a temporary file (in the system's temporary directory); on success copy it into
    ``path``: ``-`` and a descriptor of this process (``/dev/stdout``) through that descriptor,
    a device or FIFO opened for appending. Nothing is replaced."""
    fd, tmp = tempfile.mkstemp(prefix="kalcoint-", suffix=suffix)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as source:
            sys.stdout.flush()
            sys.stderr.flush()
            if path == "-":
                shutil.copyfileobj(source, sys.stdout.buffer)
                sys.stdout.buffer.flush()
                return
            descriptor = _own_descriptor(path)
            # our own descriptor is written through (sharing its offset), anything else appended to
            sink = open(os.dup(descriptor), "wb") if descriptor is not None else open(path, "ab")
            with sink:
                shutil.copyfileobj(source, sink)
    except OSError as exc:
        raise _write_error(path, exc, changed=True) from None
    finally:
        tmp_path.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in the target's directory; rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched. Only a regular
    file is replaced: a symlink is followed and its target replaced (the link stays); ``-``
    (standard output), a device, a FIFO or a descriptor such as ``/dev/stdout`` is written
    into once the whole output is ready. A failed write (disk full, directory not writable)
    raises :class:`~kalcoint.errors.KalcointError` naming the path and the reason.

    Parameters
    ----------
    path : path-like
        The target file (its directory is created).

    Yields
    ------
    Path
        The temporary file to write.

    Examples
    --------
    >>> import os, tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "out.txt")
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> open(target).read()
    'done'
    """
    if is_stream(path):
        with _streamed(os.fspath(path), Path(path).suffix) as streamed:
            yield streamed
        return
    target = Path(os.path.realpath(path))  # a symlink: its target is replaced, the link stays
    tmp_path: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        tmp_path = Path(name)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(name, 0o666 & ~umask)  # mkstemp makes 0600; give the file the permissions open() would
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    except OSError as exc:
        raise _write_error(path, exc, changed=False) from None
    finally:
        if tmp_path is not None:
            tmp_path.unlink(missing_ok=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, (pd.Timestamp,)):
        return value.strftime("%Y-%m-%d")
    return value


def to_jsonable(value: Any) -> Any:
    """Convert numpy/pandas values to plain JSON types (non-finite floats become ``null``).

    Parameters
    ----------
    value : object

    Returns
    -------
    object

    Examples
    --------
    >>> import numpy as np
    >>> to_jsonable({"a": np.array([1.5, np.nan]), "n": np.int64(3)})
    {'a': [1.5, None], 'n': 3}
    """
    return _jsonable(value)


def write_json(path: str | os.PathLike[str], payload: Any) -> None:
    """Write ``payload`` as indented JSON, atomically.

    Parameters
    ----------
    path : path-like
    payload : object
        Converted by :func:`to_jsonable`.

    Examples
    --------
    >>> import json, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "x.json")
    >>> write_json(path, {"sharpe": float("nan")})
    >>> json.load(open(path))
    {'sharpe': None}
    """
    text = json.dumps(_jsonable(payload), indent=2, allow_nan=False)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")


def write_table(path: str | os.PathLike[str], frame: pd.DataFrame) -> None:
    """Write a table atomically: Parquet for ``.parquet``/``.pq``, CSV otherwise (no index).

    Parameters
    ----------
    path : path-like
    frame : DataFrame

    Examples
    --------
    >>> import os, tempfile
    >>> import pandas as pd
    >>> path = os.path.join(tempfile.mkdtemp(), "t.csv")
    >>> write_table(path, pd.DataFrame({"x": [1 / 3]}))
    >>> open(path).read().splitlines()
    ['x', '0.3333333333']
    """
    suffix = Path(path).suffix.lower()
    with atomic_path(path) as tmp:
        if suffix in (".parquet", ".pq"):
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False, float_format="%.10g")


TABLE_SUFFIXES = (".parquet", ".pq", ".csv")
"""The file names :func:`write_table` and :func:`read_table` take (the format follows the suffix)."""


def check_table_suffix(path: Path, what: str) -> None:
    """Refuse an output table whose name is not ``.parquet``, ``.pq`` or ``.csv`` (parameter ``out``).

    Examples
    --------
    >>> check_table_suffix(Path("rows.csv"), "screen")
    """
    if path.suffix.lower() not in TABLE_SUFFIXES:
        from .errors import KalcointError

        raise KalcointError(
            f"out {path}: use a .parquet, .pq or .csv file name for the {what} table (the format follows the extension)",
            params="out",
        )


def read_table(path: Path, what: str, fix: str, params: str | tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a table that :func:`write_table` wrote: Parquet, or CSV as text (empty cell = None).

    Parameters
    ----------
    path : Path
        A ``.parquet``/``.pq`` or ``.csv`` file.
    what : str
        The table's name for the error message ("screen", "study").
    fix : str
        What the user can do instead, ending the error message.
    params : str or tuple of str
        The parameters the error names (see :class:`kalcoint.errors.KalcointError`).

    Returns
    -------
    DataFrame
        The columns as stored (CSV: strings; the caller types them).

    Examples
    --------
    >>> import os, tempfile
    >>> path = Path(tempfile.mkdtemp()) / "t.csv"
    >>> write_table(path, pd.DataFrame({"x": ["a", None]}))
    >>> read_table(path, "test", "choose another file")["x"].tolist()
    ['a', None]
    """
    from .errors import KalcointError

    try:
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False).replace({"": None})
        return pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise KalcointError(
            f"{path}: cannot read the {what} table ({exc}); remove it or {fix}", params=params
        ) from None


def write_with(path: str | os.PathLike[str], writer: Callable[[Path], None]) -> None:
    """Call ``writer(tmp_path)`` and move the result onto ``path`` atomically.

    Parameters
    ----------
    path : path-like
    writer : callable
        ``writer(tmp_path)`` writes the whole file.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "b.bin")
    >>> write_with(path, lambda tmp: tmp.write_bytes(b"ok"))
    >>> open(path, "rb").read()
    b'ok'
    """
    with atomic_path(path) as tmp:
        writer(tmp)

"""One BLAS/OpenMP thread around kalcoint's compiled hot paths, set at run time.

kalcoint's matrices are k x k with k ~ 2-5: a threaded BLAS only oversubscribes the cores
(scipy's L-BFGS-B and the Dask screen workers slowed ~10x under load). Environment
variables such as ``OPENBLAS_NUM_THREADS`` act only if set before numpy is imported, so
kalcoint sets none; instead :func:`single_threaded` limits every loaded thread pool
(OpenBLAS, MKL, OpenMP) to one thread with threadpoolctl for the duration of a call, and
restores the previous limits afterwards, whatever was imported first. Nested uses cost
nothing: only the outermost one (per thread) talks to the libraries. The scan of the loaded
libraries (a read of the process's memory map, ~1 ms) is redone only when modules were
imported since the last one; setting and restoring the limits costs a few microseconds.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_local = threading.local()
_scan: dict[str, Any] = {"modules": -1, "controller": None}


def _controller() -> Any:
    """threadpoolctl's view of the loaded thread pools, rescanned when new modules were imported."""
    if _scan["modules"] != len(sys.modules):
        from threadpoolctl import ThreadpoolController

        if "numba" in sys.modules:
            # numba links scipy's BLAS (a second OpenBLAS) when it first compiles or loads a kernel,
            # inside the block: load it before the scan so that its pool is limited too
            with contextlib.suppress(ImportError):
                import scipy.linalg.cython_blas  # noqa: F401

        _scan["controller"] = ThreadpoolController()
        _scan["modules"] = len(sys.modules)
    return _scan["controller"]


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Context in which BLAS and OpenMP pools use one thread (previous limits restored on exit)."""
    depth = getattr(_local, "depth", 0)
    _local.depth = depth + 1
    try:
        if depth:
            yield
        else:
            with _controller().limit(limits=1):
                yield
    finally:
        _local.depth = depth


def single_threaded_call(func: F) -> F:
    """Decorator: run ``func`` inside :func:`single_threaded`."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with single_threaded():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]

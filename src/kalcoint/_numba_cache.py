"""Where numba keeps kalcoint's compiled kernels, without touching numba's global settings.

numba's on-disk cache notices changes only in the file that defines a kernel, but
kalcoint's kernels call each other across files (the seed, MLE and EM loops call the
filter recursion of ``_kernels/filtering.py``). A cache keyed by the hash of the sources
of :mod:`kalcoint._kernels` (where every kernel lives) makes an edit or an upgrade of any
of them recompile all of them, never run stale code.

How: every module of :mod:`kalcoint._kernels` imports :func:`njit` from here instead of numba. With
``cache=True`` it gives the kernel its own cache object whose *locator* (numba's class
that picks the cache directory) points at ``<base>/kalcoint/numba-<hash>``, where
``<base>`` is ``$NUMBA_CACHE_DIR``, else ``$XDG_CACHE_HOME``, else ``~/.cache``. Only
kalcoint's kernels use that locator: importing kalcoint does not set
``numba.config.CACHE_DIR`` or any environment variable, so a program that also uses numba
keeps numba's own cache settings for its functions. When the directory cannot be
created or written, the kernel falls back to numba's default locators (``__pycache__``
beside the sources, or numba's user-wide cache). The CLI, ``python -m kalcoint.warmup``
and Dask workers need no set-up: the locator is part of the kernels' definition.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

KERNEL_PACKAGE = "_kernels"
"""The package (beside this module) that holds every compiled kernel of kalcoint."""


@functools.lru_cache(maxsize=1)
def kernel_hash() -> str:
    """Short SHA-256 over the sources of every module that defines a compiled kernel."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for path in sorted((root / KERNEL_PACKAGE).glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cache_dir() -> Path:
    """``<base>/kalcoint/numba-<hash>``: the directory of kalcoint's compiled kernels (see module doc)."""
    base = os.environ.get("NUMBA_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kalcoint" / f"numba-{kernel_hash()}"


@functools.lru_cache(maxsize=1)
def _cache_classes() -> type:
    """numba's function cache with the hash-keyed locator first (built on first use: imports numba)."""
    from numba.core.caching import (
        CompileResultCacheImpl,
        FunctionCache,
        UserProvidedCacheLocator,
    )

    class HashKeyedLocator(UserProvidedCacheLocator):
        """numba's user-provided-directory locator, with :func:`cache_dir` as the directory."""

        def __init__(self, py_func: Callable[..., Any], py_file: str) -> None:
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            self._cache_path = os.path.join(str(cache_dir()), self.get_suitable_cache_subpath(py_file))

        @classmethod
        def from_function(cls, py_func: Callable[..., Any], py_file: str) -> Any:
            # skip UserProvidedCacheLocator's test of numba.config.CACHE_DIR; returns None
            # (next locator) when the source file is missing or the directory is not writable
            return super(UserProvidedCacheLocator, cls).from_function(py_func, py_file)

    class KernelCacheImpl(CompileResultCacheImpl):
        _locator_classes = [HashKeyedLocator, *CompileResultCacheImpl._locator_classes]  # noqa: RUF012

    class KernelCache(FunctionCache):
        _impl_class = KernelCacheImpl

    return KernelCache


def njit(*args: Any, cache: bool = False, **options: Any) -> Any:
    """``numba.njit``; with ``cache=True`` the kernel is cached in :func:`cache_dir`."""
    import numba

    def decorate(func: Callable[..., Any]) -> Any:
        dispatcher = numba.njit(**options)(func)
        if cache:
            dispatcher._cache = _cache_classes()(func)  # what Dispatcher.enable_caching does, our locator
        return dispatcher

    if args and callable(args[0]):
        return decorate(args[0])
    return decorate

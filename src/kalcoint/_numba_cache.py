"""Where numba keeps kalcoint's compiled kernels.

numba's on-disk cache notices changes only in the file that defines a kernel, but
kalcoint's kernels call each other across files (the seed, MLE and EM loops call the
filter recursion of ``filtering.py``). A cache keyed by the kernel sources' hash makes
an edit or an upgrade of any of them recompile all of them, never run stale code.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

KERNEL_FILES = ("filtering.py", "cointegration.py", "tuning/seed.py", "tuning/mle.py", "tuning/em.py")


def kernel_hash() -> str:
    """Short SHA-256 over the sources of every module that defines a compiled kernel."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for name in KERNEL_FILES:
        path = root / name
        digest.update(name.encode())
        digest.update(path.read_bytes() if path.exists() else b"")
    return digest.hexdigest()[:16]


def configure() -> None:
    """Point numba's cache at ``$NUMBA_CACHE_DIR`` (or ``~/.cache``) ``/kalcoint/numba-<hash>``.

    Leaves numba's default (``__pycache__`` beside the sources) when no directory is writable.
    """
    import numba

    base = os.environ.get("NUMBA_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    target = Path(base) / "kalcoint" / f"numba-{kernel_hash()}"
    try:
        target.mkdir(parents=True, exist_ok=True)
        probe = target / ".writable"
        probe.touch()
    except OSError:
        return
    numba.config.CACHE_DIR = str(target)  # type: ignore[attr-defined]

"""The machine a benchmark ran on: printed at the top of every benchmark's output."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numba
    import numpy as np

    import kalcoint

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu,
        "cores": f"{os.cpu_count()} ({usable} usable)",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numba": numba.__version__,
        "numpy": np.__version__,
        "kalcoint": kalcoint.__version__,
    }


def print_machine() -> None:
    print("## Machine")
    for key, value in machine().items():
        print(f"- {key}: {value}")
    load = os.getloadavg()
    print(f"- load average at start (1, 5, 15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def load_change(before: tuple[float, float, float]) -> str:
    """``Load average (1, 5, 15 min) before a b c, after d e f``: the load at a benchmark's start
    (``os.getloadavg()`` then) and now."""

    def fmt(load: tuple[float, float, float]) -> str:
        return " ".join(f"{v:.2f}" for v in load)

    return f"Load average (1, 5, 15 min) before {fmt(before)}, after {fmt(os.getloadavg())}"

"""The pieces of the screen's speed work, each beside its baseline measured in the same run (best of --repeat).

    .venv/bin/python benchmarks/bench_parts.py [--data PRICES]
        [--assets EWA,EWC,IGE] [--repeat 7]

- Johansen: kalcoint (compiled, from moment matrices) vs statsmodels' ``coint_johansen``;
- ADF: kalcoint's compiled ADF vs statsmodels' ``adfuller`` (AIC lags);
- MacKinnon p-value: kalcoint's tables vs statsmodels' ``mackinnonp`` (which needs scipy.stats);
- start-up, each in a new process: ``import kalcoint``, ``kalcoint --help``, ``kalcoint status
  MODEL`` (a model saved by ``kalcoint tune --save``), against ``import numpy``, the floor of any
  command, and against the same with statsmodels imported (what ``import kalcoint`` cost before).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import timeit
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import load_change, print_machine

from kalcoint import datasets

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = datasets.path("chan_etf")


def best(fn, repeat: int, number: int = 1) -> float:
    fn()
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def row(what: str, ours: float, base: float, base_name: str, unit: str = "us") -> None:
    scale = {"us": 1e6, "ms": 1e3, "s": 1.0}[unit]
    print(f"| {what} | {ours * scale:.1f} {unit} | {base_name}: {base * scale:.1f} {unit} | x{base / ours:.1f} |")


def compiled_parts(prices: np.ndarray, repeat: int) -> None:
    from statsmodels.tsa.adfvalues import mackinnonp as sm_mackinnonp
    from statsmodels.tsa.stattools import adfuller
    from statsmodels.tsa.vector_ar.vecm import coint_johansen

    from kalcoint.cointegration import adf, johansen, mackinnonp

    def sm_johansen():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            coint_johansen(prices, 0, 1)

    row(
        f"Johansen, n = {prices.shape[0]}, k = {prices.shape[1]}",
        best(lambda: johansen(prices), repeat, 20),
        best(sm_johansen, repeat, 5),
        "statsmodels `coint_johansen`",
    )
    y_port = johansen(prices).portfolio(prices)

    def sm_adf():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            adfuller(y_port, regression="c", autolag="AIC")

    row(
        "ADF (constant, AIC lags) of the static portfolio",
        best(lambda: adf(y_port), repeat, 20),
        best(sm_adf, repeat, 3),
        "statsmodels `adfuller`",
    )
    row(
        "MacKinnon p-value",
        best(lambda: mackinnonp(-3.1), repeat, 2000),
        best(lambda: sm_mackinnonp(-3.1, regression="c", N=1), repeat, 200),
        "statsmodels `mackinnonp`",
    )


def startup(data: Path, assets: str, repeat: int) -> None:
    exe = Path(sys.executable).parent / "kalcoint"
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model.kcm"
        subprocess.run(
            [str(exe), "tune", str(data), "--assets", assets, "--iterations", "50", "--save", str(model)],
            capture_output=True,
            check=True,
        )
        cases = [
            ("`import kalcoint`", [sys.executable, "-c", "import kalcoint"]),
            ("`kalcoint --help`", [str(exe), "--help"]),
            ("`kalcoint status MODEL`", [str(exe), "status", str(model)]),
            ("floor: `python -c 'import numpy'`", [sys.executable, "-c", "import numpy"]),
            (
                "before: `import statsmodels.tsa.stattools` (what `import kalcoint` loaded)",
                [sys.executable, "-c", "import statsmodels.tsa.stattools, numba, pandas"],
            ),
        ]
        goals = {"`import kalcoint`": 0.5, "`kalcoint --help`": 0.3, "`kalcoint status MODEL`": 0.8}
        for name, cmd in cases:
            wall = float("inf")
            for _ in range(repeat):
                t = time.perf_counter()
                subprocess.run(cmd, capture_output=True, check=True)
                wall = min(wall, time.perf_counter() - t)
            goal = f"goal <= {goals[name]} s" if name in goals else ""
            print(f"| {name} | {wall:.2f} s | | {goal} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--assets", default="EWA,EWC,IGE")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    load_before = os.getloadavg()
    print_machine()
    from kalcoint.data import load_prices

    prices = np.ascontiguousarray(load_prices(args.data, args.assets.split(",")).to_numpy())
    print(f"\nData: {args.data.name}, {args.assets}; best of {args.repeat}\n")
    print("| what | kalcoint | baseline (same run) | ratio |")
    print("| --- | ---: | ---: | --- |")
    import scipy.optimize  # noqa: F401 - its BLAS loaded before the limit, so the limit covers it
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # the baselines too: a threaded BLAS only slows these small problems
        compiled_parts(prices, args.repeat)
    print("\n| start-up, best of N new processes | wall | | goal |")
    print("| --- | ---: | --- | --- |")
    startup(args.data, args.assets, args.repeat)
    print(f"\n{load_change(load_before)}.")


if __name__ == "__main__":
    main()

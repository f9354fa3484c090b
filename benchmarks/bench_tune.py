"""Benchmark of the seed method's tuning passes.

Times, in one run and on the same prices:

  (a) ``kalcoint.tune(prices, method="seed", iterations=PASSES)``, compiled, best of --repeat;
  (b) the plain NumPy per-step loop of the same math (``tests/kc_reference.py``, the oracle of the
      tests), timed over --numpy-passes passes and scaled linearly to PASSES;
  (c) one pass of pykalman's ``KalmanFilter.filter`` (optional: ``pip install -e '.[bench]'``);
  (d) the first call in a fresh process: with an empty numba cache (compilation) and a warm one;
  (e) the whole command ``kalcoint tune DATA --assets ... --iterations PASSES --json FILE``.

and prints a Markdown table with the ratios and the speed goals, and the machine.

    .venv/bin/python benchmarks/bench_tune.py [--passes 2000] [--data PRICES]
        [--assets EWA,EWC,IGE] [--repeat 5] [--numpy-passes 20]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))

import kalcoint  # noqa: E402
from kalcoint.tuning import tune  # noqa: E402
from kc_reference import ref_seed  # noqa: E402

from _machine import load_change, print_machine  # noqa: E402

from kalcoint import datasets  # noqa: E402

GOALS = {"tune_s": 0.25, "speedup": 800.0, "cold_s": 10.0, "cli_s": 3.0}
LATENCY_BOUND_NS = 20.0
"""The filter's latency bound per day and pass for k = 3: the dependent chain P x -> Q -> 1/Q -> P update."""

COLD_SCRIPT = """
import json, sys, time
t0 = time.perf_counter()
import kalcoint
from kalcoint.tuning import tune
t1 = time.perf_counter()
import pandas as pd
prices = pd.read_csv(sys.argv[1], index_col=0, parse_dates=True)[sys.argv[2].split(",")].dropna()
t2 = time.perf_counter()
tuned = tune(prices, method="seed", iterations=int(sys.argv[3]))
t3 = time.perf_counter()
tune(prices, method="seed", iterations=int(sys.argv[3]))
t4 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "first_call_s": t3 - t2, "second_call_s": t4 - t3,
                  "alpha11": tuned.alpha11}))
"""


def load(path: Path, assets: list[str]) -> pd.DataFrame:
    if hasattr(kalcoint, "load_prices"):
        return kalcoint.load_prices(path, assets)
    return pd.read_csv(path, index_col=0, parse_dates=True)[assets].dropna()


def best_of(fn, repeat: int) -> tuple[float, float]:
    """Best wall and best CPU time (s) of ``repeat`` calls."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = min(wall, time.perf_counter() - t), min(cpu, time.process_time() - c)
    return wall, cpu


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_pykalman(prices: pd.DataFrame, repeat: int) -> tuple[tuple[float, float] | None, str]:
    """One filter pass of pykalman with the first-pass model of the seed method."""
    try:
        from pykalman import KalmanFilter
    except ImportError:
        return None, "pykalman not installed (pip install -e '.[bench]')"
    from kalcoint.tuning.seed import first_pass_model

    values = prices.to_numpy()
    model = first_pass_model(values, kalcoint.johansen(values).weights)
    X = values.copy()
    X[:, 0] = 1.0
    kf = KalmanFilter(
        transition_matrices=np.diag(model.transition),
        observation_matrices=X[:, None, :],  # time-varying (n, 1, k)
        transition_covariance=np.diag(model.state_var),
        observation_covariance=np.array([[model.obs_var]]),
        initial_state_mean=model.initial_state,
        initial_state_covariance=np.diag(model.initial_cov),
    )
    means, _ = kf.filter(values[:, :1])
    ours = kalcoint.kalman_filter(values, model).filtered_state
    diff = float(np.max(np.abs(means - ours) / np.max(np.abs(ours), axis=0)))
    return best_of(lambda: kf.filter(values[:, :1]), repeat), f"same states as kalcoint to {diff:.1e} (relative)"


def run_fresh(args, cache_dir: str) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    cpu = children_cpu()
    out = subprocess.run(
        [sys.executable, "-c", COLD_SCRIPT, str(args.data), args.assets, str(args.passes)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    record = json.loads(out.stdout.strip().splitlines()[-1])
    record["process_cpu_s"] = children_cpu() - cpu
    return record


def time_cli(args) -> tuple[tuple[float, float] | None, str]:
    exe = Path(sys.executable).parent / "kalcoint"
    if not exe.exists():
        return None, f"{exe} not found (pip install -e .)"
    probe = subprocess.run([str(exe), "tune", "--help"], capture_output=True, text=True)
    if probe.returncode != 0:
        return None, "the CLI has no `tune` command yet"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "tune.json"
        cmd = [
            str(exe),
            "tune",
            str(args.data),
            "--assets",
            args.assets,
            "--iterations",
            str(args.passes),
            "--json",
            str(out),
        ]
        best = best_cpu = float("inf")
        for _ in range(max(args.repeat, 2) + 1):  # the first run fills the cache if it is cold
            t, c = time.perf_counter(), children_cpu()
            done = subprocess.run(cmd, capture_output=True, text=True)
            wall, cpu = time.perf_counter() - t, children_cpu() - c
            if done.returncode != 0:
                return None, f"`kalcoint tune` failed: {done.stderr.strip()[:200]}"
            best, best_cpu = min(best, wall), min(best_cpu, cpu)
        record = json.loads(out.read_text())
    return (best, best_cpu), f"iterations={record.get('iterations')}, alpha11={record.get('alpha11'):.6g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passes", type=int, default=2000, help="tuning passes (default 2000)")
    parser.add_argument("--data", type=Path, default=datasets.path("chan_etf"))
    parser.add_argument("--assets", default="EWA,EWC,IGE")
    parser.add_argument("--repeat", type=int, default=5, help="best of this many timings")
    parser.add_argument("--numpy-passes", type=int, default=20, help="passes of the NumPy loop actually timed")
    parser.add_argument("--skip-subprocess", action="store_true", help="skip (d) and (e)")
    args = parser.parse_args()
    assets = args.assets.split(",")
    prices = load(args.data, assets)
    n, k = prices.shape

    load_before = os.getloadavg()
    print_machine()
    print(f"\nData: {args.data.name}, {', '.join(assets)}: n = {n} days, k = {k}; {args.passes} passes\n")

    # (a) kalcoint, compiled (the first call compiles or loads the cache)
    tuned = tune(prices, method="seed", iterations=args.passes)
    t_tune, c_tune = best_of(lambda: tune(prices, method="seed", iterations=args.passes), args.repeat)
    from kalcoint.tuning.seed import run_seed_passes

    values = np.ascontiguousarray(prices.to_numpy())
    jres = kalcoint.johansen(values)
    t_passes, c_passes = best_of(lambda: run_seed_passes(values, jres, args.passes), args.repeat)

    # (b) the plain NumPy loop, same math; checked against kalcoint on the passes it ran
    m = min(args.numpy_passes, args.passes)
    t0, c0 = time.perf_counter(), time.process_time()
    ref = ref_seed(values, jres.weights, m)
    t_np_m, c_np_m = time.perf_counter() - t0, time.process_time() - c0
    check = tune(prices, method="seed", iterations=m)
    agree = abs(check.alpha11 - ref.models[-1].a11) / max(abs(ref.models[-1].a11), 1e-300)
    np_pass, np_pass_cpu = t_np_m / m, c_np_m / m

    # (c) pykalman
    pyk, pyk_note = time_pykalman(prices, args.repeat)

    # (d), (e)
    cold = warm = None
    cli, cli_note = None, "skipped"
    if not args.skip_subprocess:
        cache = tempfile.mkdtemp(prefix="kalcoint-numba-cache-")
        try:
            cold = run_fresh(args, cache)
            warm = run_fresh(args, cache)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        cli, cli_note = time_cli(args)

    per_pass, per_pass_cpu = t_tune / args.passes, c_tune / args.passes
    speedup, speedup_cpu = np_pass / per_pass, np_pass_cpu / per_pass_cpu

    def ok(flag: bool) -> str:
        return "yes" if flag else "NO"

    rows = [
        (
            "kalcoint `tune()` (seed, compiled, whole call)",
            f"{t_tune:.3f} s",
            f"{c_tune:.3f} s",
            f"{per_pass * 1e6:.1f} us",
            f"<= {GOALS['tune_s']} s: {ok(t_tune <= GOALS['tune_s'])}",
        ),
        (
            "  of which the passes (`run_seed_passes`)",
            f"{t_passes:.3f} s",
            f"{c_passes:.3f} s",
            f"{t_passes / args.passes * 1e6:.1f} us",
            "",
        ),
        (
            "  per day and pass",
            f"{t_passes / (args.passes * n) * 1e9:.1f} ns",
            f"{c_passes / (args.passes * n) * 1e9:.1f} ns",
            "",
            f"x{t_passes / (args.passes * n) * 1e9 / LATENCY_BOUND_NS:.2f} the latency bound "
            f"(~{LATENCY_BOUND_NS:.0f} ns, k = 3); goal <= x2: "
            f"{ok(min(t_passes, c_passes) / (args.passes * n) * 1e9 <= 2 * LATENCY_BOUND_NS)}",
        ),
        (
            f"plain NumPy loop ({m} passes timed, x{args.passes / m:g})",
            f"{np_pass * args.passes:.1f} s",
            f"{np_pass_cpu * args.passes:.1f} s",
            f"{np_pass * 1e3:.1f} ms",
            f"kalcoint {speedup:,.0f}x faster (CPU {speedup_cpu:,.0f}x); goal >= {GOALS['speedup']:.0f}x: "
            f"{ok(min(speedup, speedup_cpu) >= GOALS['speedup'])}",
        ),
    ]
    if pyk is not None:
        rows.append(
            (
                "pykalman `KalmanFilter.filter`, one pass",
                f"{pyk[0]:.3f} s",
                f"{pyk[1]:.3f} s",
                f"{pyk[0] * 1e3:.1f} ms",
                f"kalcoint {pyk[0] / per_pass:,.0f}x faster per pass",
            )
        )
    else:
        rows.append(("pykalman", "-", "-", "-", pyk_note))
    if cold is not None:
        rows.append(
            (
                "first call in a new process, empty numba cache",
                f"{cold['first_call_s']:.2f} s",
                "",
                "",
                f"< {GOALS['cold_s']:.0f} s: {ok(cold['first_call_s'] < GOALS['cold_s'])}",
            )
        )
        rows.append(
            (
                "first call in a new process, warm numba cache",
                f"{warm['first_call_s']:.3f} s",
                "",
                "",
                f"(import kalcoint {warm['import_s']:.2f} s)",
            )
        )
    if cli is not None:
        rows.append(
            (
                f"`kalcoint tune ... --iterations {args.passes}`, whole process",
                f"{cli[0]:.2f} s",
                f"{cli[1]:.2f} s",
                "",
                f"< {GOALS['cli_s']:.0f} s: {ok(cli[0] < GOALS['cli_s'])}",
            )
        )
    else:
        rows.append(("`kalcoint tune` process", "-", "-", "-", cli_note))

    print("| what | wall | CPU | per pass | goal / ratio |")
    print("| --- | ---: | ---: | ---: | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(
        f"\nBest of {args.repeat}. {load_change(load_before)} "
        "(timings on a busy machine are inflated; the CPU column less so)."
    )
    print(f"Tuned alpha11 = {tuned.alpha11:.6g}, obs_var = {tuned.obs_var:.3g} after {tuned.iterations} passes.")
    print(f"NumPy loop and kalcoint agree on alpha11 after {m} passes to {agree:.1e} (relative).")
    if pyk is not None:
        print(f"pykalman: {pyk_note}.")
    if cli is not None:
        print(f"CLI: {cli_note}.")
    if cold is not None:
        print(
            f"New process, empty cache: import {cold['import_s']:.2f} s, first call {cold['first_call_s']:.2f} s "
            f"(compilation), second call {cold['second_call_s']:.3f} s; whole process CPU "
            f"{cold['process_cpu_s']:.2f} s. Warm cache: whole process CPU {warm['process_cpu_s']:.2f} s."
        )


if __name__ == "__main__":
    main()

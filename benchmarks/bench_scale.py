"""Scale: a generated 500-asset universe with planted pairs, each figure beside a baseline of the same run.

    .venv/bin/python benchmarks/bench_scale.py [--assets 100,250,500] [--days 1500] [--planted 25]
        [--sample 300] [--tasks 2000] [--skip-costs] [--no-screens] [--no-study]

Printed (CPU times are user + system, the workers' included; wall times depend on the load
average printed with them):

- cost per basket, serial in this process (one thread), by method (seed, mle), size (2, 3)
  and history (250, 1500 rows), on ``--sample`` random baskets (MLE on a fifth of them):
  CPU ms per basket, and its ratio to the static figures alone (Johansen and static ADF, the
  baseline: what a static or half-life selection needs);
- the Dask scheduler's per-task overhead: ``--tasks`` no-op tasks on a local cluster of 2
  workers, against the same calls in this process; the panel's scatter to both workers;
- the speed-up from 1 to 2 workers on a local ``tcp://`` cluster (``screen(scheduler=...)``),
  the same 2,000 pairs (baseline: 1 worker);
- for each of ``--assets``: the whole pair screen of a ``--days`` universe with ``--planted``
  planted pairs, as ``kalcoint screen`` runs it (CSV read, 2 local workers, table written), in a
  new process: wall and CPU time, the peak resident size of the process and of its largest
  worker against the panel's size (baseline: the smallest universe), the progress ETA at 10%
  of the baskets against the real time left, and the recovery of the planted pairs (how many
  in the top 25 of the static ranking, its ROC area);
- the study with its defaults (pairs, 10 periods, top 20, models static, chan, seed, mle, em)
  on the largest universe, 2 workers: wall and CPU time, the share of selected basket-periods
  that are planted (baseline: that share by chance, top / pairs).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import load_change, print_machine

from kalcoint.screen import ScreenOptions, Universe, screen_batch
from kalcoint.synthetic import planted_share, recovery, universe


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# ------------------------------------------------------------------ cost per basket


def basket_costs(sample: int) -> None:
    truth = universe(200, 1500, planted=0, seed=11)
    full = Universe.from_frame(truth.prices)
    rng = np.random.default_rng(0)
    print("\n## Cost per basket (serial, one thread, CPU ms per basket)\n")
    print("| size | rows | method | baskets | CPU ms / basket | static figures only (baseline) | ratio | ok share |")
    print("| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for size, rows in itertools.product((2, 3), (250, 1500)):
        u = Universe(np.ascontiguousarray(full.values[-rows:]), full.dates[-rows:], full.assets)
        baskets = [tuple(sorted(rng.choice(200, size, replace=False))) for _ in range(sample)]
        opts = {
            m: ScreenOptions(size=size, method=m, iterations=30 if m == "seed" else 200, min_rows=min(rows, 252))
            for m in ("seed", "mle")
        }
        screen_batch(u, baskets[:2], opts["mle"])  # compiled kernels loaded
        c = cpu_self()
        screen_batch(u, baskets, opts["seed"], static_only=True)
        base = (cpu_self() - c) / sample
        for method in ("seed", "mle"):
            n = sample if method == "seed" else max(10, sample // 5)
            c = cpu_self()
            out = screen_batch(u, baskets[:n], opts[method])
            cost = (cpu_self() - c) / n
            ok = np.mean([r["status"] == "ok" for r in out])
            print(
                f"| {size} | {rows} | {method} | {n} | {1e3 * cost:.2f} | {1e3 * base:.3f} | x{cost / base:.1f} | {ok:.2f} |"
            )


# ------------------------------------------------------------------ Dask: per-task overhead, speed-up


def _noop(i: int) -> int:
    return i


def dask_overhead(n_tasks: int, panel: Universe) -> None:
    from distributed import Client, LocalCluster, wait

    print("\n## Dask scheduler overhead (local cluster, 2 single-threaded workers)\n")
    c = time.perf_counter()
    for i in range(n_tasks):
        _noop(i)
    local = (time.perf_counter() - c) / n_tasks
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            client.submit(_noop, -1, pure=False).result()
            best = float("inf")
            for _ in range(3):
                c = time.perf_counter()
                futures = [client.submit(_noop, i, pure=False) for i in range(n_tasks)]
                wait(futures)
                best = min(best, (time.perf_counter() - c) / n_tasks)
                del futures
            c = time.perf_counter()
            data = client.scatter(panel, broadcast=True)
            scatter = time.perf_counter() - c
            del data
    print("| what | now | baseline | ratio |")
    print("| --- | ---: | ---: | --- |")
    print(
        f"| wall per no-op task, {n_tasks} tasks submitted at once (best of 3) | {1e3 * best:.2f} ms | "
        f"same call in this process: {1e6 * local:.2f} us | x{best / local:.0f} |"
    )
    mb = panel.values.nbytes / 1e6
    print(f"| scatter of the panel ({mb:.1f} MB) to both workers | {scatter:.2f} s | | |")


def speedup(panel: Universe, n_pairs: int) -> None:
    from distributed import LocalCluster

    from kalcoint.screen import screen

    rng = np.random.default_rng(1)
    pairs = list(itertools.combinations(panel.assets, 2))
    n_pairs = min(n_pairs, len(pairs))
    baskets = [pairs[i] for i in sorted(rng.choice(len(pairs), n_pairs, replace=False))]
    opts = ScreenOptions(size=2)
    walls = {}
    for n in (1, 2):
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            screen(panel, opts, baskets=baskets[:20], scheduler=cluster.scheduler_address)  # warm workers
            c = time.perf_counter()
            screen(panel, opts, baskets=baskets, scheduler=cluster.scheduler_address)
            walls[n] = time.perf_counter() - c
    print(f"\n## Speed-up on a local tcp:// cluster ({n_pairs} pairs of the {len(panel.assets)}-asset universe)\n")
    print("| workers | wall s | baskets / s | ratio to 1 worker |")
    print("| ---: | ---: | ---: | --- |")
    for n, w in walls.items():
        print(f"| {n} | {w:.1f} | {n_pairs / w:.0f} | x{walls[1] / w:.2f} |")


# ------------------------------------------------------------------ whole screens, in a new process


def _one_screen(csv: str, out: str, workers: int) -> None:
    """The child process: what `kalcoint screen CSV --size 2 --out OUT` does, plus the progress log."""
    from kalcoint.screen import ScreenOptions, load_universe, screen

    log: list[tuple[float, int, int]] = []
    t0 = time.perf_counter()
    prices = load_universe(csv)
    table = screen(
        prices,
        ScreenOptions(size=2),
        workers=workers,
        out=out,
        overwrite=True,
        progress=lambda d, t: log.append((time.perf_counter() - t0, d, t)),
    )
    print(json.dumps({"wall": time.perf_counter() - t0, "log": log, "rows": len(table)}))


def _eta_at_tenth(log: list) -> tuple[float, float] | None:
    from kalcoint.cli.screen import EtaClock

    times = iter([t for t, _, _ in log])
    clock = EtaClock(clock=lambda: next(times))
    end = log[-1][0]
    for t, done, total in log:
        left = clock.update(done, total)
        if left is not None and done >= 0.1 * total:
            return left, end - t
    return None


def _sample_tree(pid: int, peaks: dict, stop: threading.Event) -> None:
    import psutil

    root = psutil.Process(pid)
    while not stop.is_set():
        try:
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for p in procs:
            try:
                rss = p.memory_info().rss
                name = "command" if p.pid == pid else ("worker" if "nanny" not in " ".join(p.cmdline()) else "nanny")
            except psutil.Error:
                continue
            peaks[p.pid] = (name, max(rss, peaks.get(p.pid, ("", 0))[1]))
        stop.wait(0.2)


def whole_screen(n_assets: int, days: int, planted: int, tmp: Path) -> dict:
    truth = universe(n_assets, days, planted=planted, seed=n_assets)
    csv = tmp / f"universe_{n_assets}.csv"
    truth.prices.to_csv(csv)
    out = tmp / f"screen_{n_assets}.parquet"
    before, c0 = os.getloadavg(), cpu_children()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--one-screen", str(csv), str(out)], stdout=subprocess.PIPE, text=True
    )
    peaks: dict = {}
    stop = threading.Event()
    sampler = threading.Thread(target=_sample_tree, args=(proc.pid, peaks, stop), daemon=True)
    sampler.start()
    stdout, _ = proc.communicate()
    stop.set()
    sampler.join()
    result = json.loads(stdout.strip().splitlines()[-1])
    from kalcoint.screen import rank_table, read_table

    table = read_table(out)
    rec = recovery(table, truth)
    planted_sets = truth.planted_sets()
    planted_rows = table[[frozenset(a) in planted_sets for a in table["assets"]]]
    ok_only = rank_table(table[table["status"] == "ok"], "static").head(len(planted_sets))
    workers = [rss for name, rss in peaks.values() if name == "worker"]
    return {
        "assets": n_assets,
        "pairs": result["rows"],
        "wall": result["wall"],
        "cpu": cpu_children() - c0,
        "panel_mb": truth.prices.to_numpy().nbytes / 1e6,
        "command_mb": peaks[proc.pid][1] / 1e6,
        "worker_mb": max(workers) / 1e6 if workers else float("nan"),
        "eta": _eta_at_tenth(result["log"]),
        "recovery": rec,
        "planted_failed": int((planted_rows["status"] != "ok").sum()),
        "ok_only_in_top": sum(frozenset(a) in planted_sets for a in ok_only["assets"]),
        "load": load_change(before),
    }


def print_screens(results: list[dict], planted: int) -> None:
    print(f"\n## Whole pair screens, 2 local workers, as `kalcoint screen` runs them ({planted} planted pairs)\n")
    base = results[0]
    print(
        "| assets | pairs | wall s | CPU s | CPU ms / pair | panel MB | command peak MB | worker peak MB | "
        "growth vs panel growth (baseline: first row) | ETA at 10% / real time left | planted in top "
        f"{planted} | ROC area |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: |")
    for r in results:
        panel_growth = r["panel_mb"] / base["panel_mb"]
        growth = (
            f"command x{r['command_mb'] / base['command_mb']:.2f}, worker x{r['worker_mb'] / base['worker_mb']:.2f}"
            f", panel x{panel_growth:.2f}"
        )
        eta = (
            "n/a"
            if r["eta"] is None
            else f"{r['eta'][0]:.0f} s / {r['eta'][1]:.0f} s (x{r['eta'][0] / r['eta'][1]:.2f})"
        )
        rec = r["recovery"]
        print(
            f"| {r['assets']} | {r['pairs']} | {r['wall']:.1f} | {r['cpu']:.1f} | {1e3 * r['cpu'] / r['pairs']:.2f} | "
            f"{r['panel_mb']:.1f} | {r['command_mb']:.0f} | {r['worker_mb']:.0f} | {growth} | {eta} | "
            f"{rec.in_top} | {rec.roc_auc:.4f} |"
        )
    for r in results:
        print(
            f"- {r['assets']} assets: {r['load']}; planted positions {r['recovery'].positions}; "
            f"{r['planted_failed']} of the planted pairs failed their tuning; a ranking of the ok rows only "
            f"(the previous top N, baseline) has {r['ok_only_in_top']} planted pairs in its top {planted}"
        )


def whole_study(n_assets: int, days: int, planted: int) -> None:
    from kalcoint.study import StudyOptions, study

    truth = universe(n_assets, days, planted=planted, seed=n_assets)
    options = StudyOptions()
    before, c0, w0 = os.getloadavg(), cpu_self() + cpu_children(), time.perf_counter()
    table, _ = study(truth.prices, options, workers=2)
    wall, cpu = time.perf_counter() - w0, cpu_self() + cpu_children() - c0
    share, per_period = planted_share(table, truth)
    pairs = n_assets * (n_assets - 1) // 2
    chance = planted / pairs
    print(f"\n## Study with its defaults, {n_assets} assets x {days} days, 2 local workers\n")
    print("| what | now | baseline | ratio |")
    print("| --- | ---: | ---: | --- |")
    print(f"| wall | {wall:.1f} s | goal 600 s | x{wall / 600:.2f} |")
    print(f"| CPU (this process and its workers) | {cpu:.1f} s | | |")
    print(
        f"| planted share of the selected basket-periods | {share:.3f} | chance {chance:.5f} | x{share / chance:.0f} |"
    )
    print(f"- planted baskets selected per period: {per_period}; {load_change(before)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", default="100,250,500")
    parser.add_argument("--days", type=int, default=1500)
    parser.add_argument("--planted", type=int, default=25)
    parser.add_argument("--sample", type=int, default=300)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--no-study", action="store_true")
    parser.add_argument("--skip-costs", action="store_true")
    parser.add_argument("--no-screens", action="store_true")
    parser.add_argument("--one-screen", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_screen:
        _one_screen(*args.one_screen, workers=2)
        return
    print_machine()
    start_load = os.getloadavg()
    sizes = [int(a) for a in args.assets.split(",")]
    c = time.perf_counter()
    big = universe(max(sizes), args.days, planted=args.planted, seed=max(sizes))
    print(
        f"\nGenerated {max(sizes)} assets x {args.days} days with {args.planted} planted pairs in "
        f"{time.perf_counter() - c:.2f} s"
    )
    panel = Universe.from_frame(big.prices)
    if not args.skip_costs:
        basket_costs(args.sample)
        dask_overhead(args.tasks, panel)
        speedup(panel, 2000)
    if not args.no_screens:
        with tempfile.TemporaryDirectory() as tmp:
            results = [whole_screen(n, args.days, args.planted, Path(tmp)) for n in sizes]
        print_screens(results, args.planted)
    if not args.no_study:
        whole_study(max(sizes), args.days, args.planted)
    print(f"\n{load_change(start_load)}")


if __name__ == "__main__":
    main()

"""Size (and power) of the test of alpha11 = 1.

For each of --seeds price sets simulated from the model of docs/method.md §1 (kalcoint.synthetic.simulate:
k = 3, Ve = 0.02, Vw = (0.05, 1e-6, 1e-6), the demo's noises) with the true alpha11 given by --alpha11
(default 1: the null is true), runs ``kalcoint.alpha_test.alpha11_test`` with a small bootstrap
(--bootstrap, default 99, to keep the run short; the library's default is 199) and counts the
rejections at 5%. Under the null about 5% of the seeds should reject (with 40 seeds: 2 expected,
0 to 5 within the binomial 95% range).

    .venv/bin/python benchmarks/bench_alpha11_size.py [--seeds 40] [--bootstrap 99] [--n 500]
        [--alpha11 1.0] [--workers N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.stats import binom

from kalcoint.alpha_test import alpha11_test
from kalcoint.synthetic import simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=40)
    parser.add_argument("--bootstrap", type=int, default=99)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--alpha11", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--level", type=float, default=0.05)
    args = parser.parse_args()
    started = time.perf_counter()
    rows = []
    for seed in range(args.seeds):
        prices, _ = simulate(n=args.n, alpha11=args.alpha11, seed=1000 + seed)
        t = alpha11_test(prices, bootstrap=args.bootstrap, seed=seed, workers=args.workers)
        rows.append((seed, t.alpha11_hat, t.lr_stat, t.p_value, t.failed))
        print(
            f"seed {seed:3d}  alpha11_hat {t.alpha11_hat:.5f}  LR {t.lr_stat:8.4f}  p {t.p_value:.3f}"
            f"{'  REJECT' if t.p_value <= args.level else ''}",
            flush=True,
        )
    p = np.array([r[3] for r in rows])
    rejections = int(np.sum(p <= args.level))
    lo, hi = binom.ppf(0.025, args.seeds, args.level), binom.ppf(0.975, args.seeds, args.level)
    print()
    print(
        "| true alpha11 | n | seeds | B | rejections at 5% | rate | binomial 95% range under the null | "
        "mean p | failed refits | wall s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print(
        f"| {args.alpha11:g} | {args.n} | {args.seeds} | {args.bootstrap} | {rejections} | "
        f"{rejections / args.seeds:.1%} | {lo:.0f} to {hi:.0f} | {p.mean():.3f} | {sum(r[4] for r in rows)} | "
        f"{time.perf_counter() - started:.0f} |"
    )


if __name__ == "__main__":
    main()

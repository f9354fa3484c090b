"""Speed and size of a book of Chan's universe run daily (``kalcoint.book``), in CPU time.

    .venv/bin/python benchmarks/bench_book.py [--mle] [--days N]

A 20-basket book (the study's defaults: pairs, top 20 by the static rule, formation 250,
trading 125, window 250, weekly retuning) of every ETF of chan_etf_close.csv, created on the
file's first 1,285 rows (all 67 ETFs priced on the formation rows), then fed the rest. Times, in CPU seconds of this process
(``resource.getrusage``: load-insensitive on a shared machine):

* a re-selection: the formation screen of all pairs (2,211 when all 67 ETFs have prices), made
  when the formation rows are complete, and the first row of the period (the study's
  eligibility, the selection, the cold start of every basket);
* an ordinary day (one row), against a baseline measured in the same run: one row fed to
  one live model (``LiveModel.update``) of a pair;
* with ``--mle``: a retuning day of an ``mle`` book (the first row of a week: every basket
  re-estimated by maximum likelihood);
* the file size after the rest of the file fed day by day (a sample of days one row per
  update, the rest in batches of 25: the file holds the same rows either way), extrapolated
  to five years (1,260 rows).
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import tempfile
import time
from pathlib import Path

import pandas as pd
from _machine import load_change, print_machine

from kalcoint import book, datasets, live
from kalcoint.screen import load_universe

CREATE_ROWS = 1285  # all 67 ETFs have prices from row 1035: the screen holds 2,211 pairs


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    c0 = cpu()
    out = fn(*args, **kwargs)
    return out, cpu() - c0


def used_and_free(path: Path) -> tuple[int, int]:
    """Bytes of the file's pages in use and on its free list (pages a deleted screen left, reused)."""
    import sqlite3

    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        pages, free, size = (
            con.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_count", "freelist_count", "page_size")
        )
    finally:
        con.close()
    return (pages - free) * size, free * size


def first_row_of_week(index: pd.DatetimeIndex, start: int) -> int:
    weeks = index.to_period("W-SUN")
    return next(i for i in range(start + 1, len(index)) if weeks[i] != weeks[i - 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mle", action="store_true", help="also time a retuning day of an mle book")
    parser.add_argument("--days", type=int, default=20, help="ordinary days timed one row per update")
    args = parser.parse_args()
    print_machine()
    load0 = os.getloadavg()
    u = load_universe(datasets.path("chan_etf"))
    tmp = Path(tempfile.mkdtemp(prefix="bench_book_"))
    options = book.BookOptions(model="chan")
    b, create_s = timed(book.create, tmp / "chan.kcb", u.iloc[:CREATE_ROWS], options)
    pairs = len(b._query("SELECT rows FROM screens")[0][0].split('"assets"')) - 1
    _, open_s = timed(b.update, u.iloc[CREATE_ROWS : CREATE_ROWS + 1], max_jump=math.inf)
    used0, _ = used_and_free(tmp / "chan.kcb")  # the first screen deleted, its pages free
    print("\n## A 20-basket book of Chan's universe (chan model, study defaults)")
    print(f"- create (keeps {options.history_rows} rows, screens {pairs} pairs): {create_s:.2f} s CPU")
    print(f"- first row of the period (selection of {len(b.status()['baskets'])} baskets, their cold starts): "
          f"{open_s:.2f} s CPU")  # fmt: skip
    # the baseline: one row fed to one live model of a pair
    pair = u[["EWA", "EWC"]].iloc[:CREATE_ROWS].dropna()
    m = live.save_chan_model(tmp / "pair.kcm", pair)
    nxt = u[["EWA", "EWC"]].iloc[CREATE_ROWS : CREATE_ROWS + args.days + 1]
    base = [timed(m.update, nxt.iloc[i : i + 1])[1] for i in range(1, args.days + 1)]
    day = [
        timed(b.update, u.iloc[i : i + 1], max_jump=math.inf)[1]
        for i in range(CREATE_ROWS + 1, CREATE_ROWS + 1 + args.days)
    ]
    day_s, base_s = sorted(day)[len(day) // 2], sorted(base)[len(base) // 2]
    print(f"- ordinary day (median of {args.days} one-row updates): {day_s:.3f} s CPU; max {max(day):.3f} s")
    print(f"- baseline, one row to one live model of EWA/EWC: {base_s:.3f} s CPU; ratio {day_s / base_s:.1f}")
    # the rest of the file, a re-selection on the way
    i = CREATE_ROWS + 1 + args.days
    reselect: list[tuple[int, float]] = []
    while i < len(u):
        rows_before = b.head.rows
        step = 1 if (rows_before - options.history_rows) % options.trading in (options.trading - 1, 0) else 25
        left = options.trading - (rows_before - options.history_rows) % options.trading
        step = min(step, left - 1) if left > 1 else step
        step = max(1, step)
        _, s = timed(b.update, u.iloc[i : i + step], max_jump=math.inf)
        if (
            b.head.rows - options.history_rows > 0
            and step == 1
            and ((b.head.rows - options.history_rows) % options.trading in (0, 1))
        ):
            reselect.append((b.head.rows, s))
        i += step
    for rows, s in reselect[:4]:
        kind = "screen (formation rows complete)" if (rows - options.history_rows) % options.trading == 0 else (
            "selection and cold starts (first row of the period)")  # fmt: skip
        print(f"- re-selection day, {kind}: {s:.2f} s CPU")
    fed = b.head.rows - options.history_rows
    size = (tmp / "chan.kcb").stat().st_size
    used, free = used_and_free(tmp / "chan.kcb")
    per_row = (used - used0) / (fed - 1)
    five = used0 + per_row * 1260 + free
    print(f"- file after {fed} rows fed: {size / 1e6:.2f} MB ({used / 1e6:.2f} MB in use, {free / 1e6:.2f} MB free "
          f"pages a deleted screen left, reused); {per_row / 1e3:.1f} kB more per row: five years (1,260 rows) "
          f"{five / 1e6:.1f} MB")  # fmt: skip
    if args.mle:
        mo = book.BookOptions(model="mle")
        c0 = time.time()
        bm = book.create(tmp / "mle.kcb", u.iloc[:CREATE_ROWS], mo)
        _, open_mle = timed(bm.update, u.iloc[CREATE_ROWS : CREATE_ROWS + 1], max_jump=math.inf)
        monday = first_row_of_week(u.index, CREATE_ROWS)  # the baskets' cold starts (study's first week)
        if monday > CREATE_ROWS + 1:
            bm.update(u.iloc[CREATE_ROWS + 1 : monday], max_jump=math.inf)
        _, cold_s = timed(bm.update, u.iloc[monday : monday + 1], max_jump=math.inf)
        nxt_monday = first_row_of_week(u.index, monday)
        bm.update(u.iloc[monday + 1 : nxt_monday], max_jump=math.inf)
        _, retune_s = timed(bm.update, u.iloc[nxt_monday : nxt_monday + 1], max_jump=math.inf)
        versions = bm.baskets()["versions"]
        print(
            f"- mle book: first row of the period (selection; the baskets start at the next week): {open_mle:.2f} s CPU"
        )
        print(f"- mle book: the first week's first row (20 cold starts by MLE): {cold_s:.2f} s CPU")
        print(f"- mle book: a retuning day ({int((versions == 2).sum())} of {len(versions)} baskets re-estimated by "
              f"MLE): {retune_s:.2f} s CPU (wall {time.time() - c0:.0f} s for the mle part)")  # fmt: skip
    print(f"\n{load_change(load0)}")


if __name__ == "__main__":
    main()

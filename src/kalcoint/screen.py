"""Screening a universe: evaluate every basket of k assets, serially or on Dask workers.

A *universe* is a wide price panel whose columns may start (and end) on their own
dates. A *basket* is a tuple of k tickers, the first being the dependent asset. For
each basket :func:`evaluate_basket` computes, on the basket's common history (the
dates on which every asset of the basket has a price):

- Johansen trace and maximum-eigenvalue statistics and the rank at 95% (docs/method.md §2);
- the ADF test (constant, AIC lags) and half-life of the static Johansen portfolio;
- the tuned filter (``method``, ``iterations`` passes): ``alpha11``, ``obs_var``, the
  degeneracy flag of the diagnosis and the ADF test of the dynamic portfolio (docs/method.md §6);
- an out-of-sample figure: the filter is tuned (with its own Johansen test) on the first
  ``train_fraction`` of the common history and run over the rest with those quantities,
  by default continuing from the last posterior state and covariance of the tuning
  sample (``oos_start="continue"``; ``"prior"`` restarts from the model's own prior).
  Reported: the ADF test of that out-of-sample dynamic portfolio, its log-likelihood
  (sum over the test rows), and the ADF p-value of the static portfolio with the
  tuning sample's Johansen weights over the test rows.

One row per basket (:data:`COLUMNS`). A basket whose common history is shorter than
``min_rows`` gets ``status="short"``; a basket whose computation fails (singular
matrix, filter breakdown, non-finite figure) gets ``status="failed"``; ``reason``
says why, and the figures computed before the failure are kept.

:func:`screen` runs the baskets in batches (``batch_size`` baskets per task), in this
process (``workers=0``), on a local Dask cluster of worker processes (``workers=N``)
or on an existing Dask distributed cluster (``scheduler="tcp://host:port"``); all
three run the same function on the same data and give identical rows. It writes the
table to ``out`` atomically every ``checkpoint`` seconds and when stopped
(Ctrl-C), and ``resume=True`` skips the baskets already in ``out``.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._io import read_table as read_raw_table
from ._io import check_table_suffix, write_table
from ._threads import single_threaded
from .cointegration import JohansenResult, adf, half_life, johansen
from .errors import KalcointError
from ._checks import check_choice, check_iterations, check_resume, check_tol, renamed
from ._cluster import Pool, check_scheduler, probe, timeouts
from ._cluster import client as _client
from .filtering import kalman_filter
from .oos import continue_filter, split_rows
from .tuning import TunedModel, registry, tune

__all__ = [
    "COLUMNS",
    "DEFAULT_ITERATIONS",
    "DEFAULT_MIN_ROWS",
    "RANK_BY",
    "ScreenOptions",
    "Universe",
    "basket_list",
    "batch_table",
    "evaluate_basket",
    "load_universe",
    "rank_table",
    "read_table",
    "screen",
    "screen_batch",
    "tls_security",
]

DEFAULT_ITERATIONS = 30
"""Seed passes per basket in a screen: the posterior-residual passes collapse
(docs/method.md §9) within about 10-25 passes, and 30 passes cost ~1.5 ms for a triplet of
1,500 days, against ~50 ms for the method's 2000."""

MLE_OPTIONS = {"optimizer": "compiled"}
"""A screen's MLE fit (:func:`kalcoint.tuning.mle.fit`): every start to its optimum by the compiled
L-BFGS-B (the starts in lockstep); benchmarks/bench_screen.py measures how often that ends at the
optimum of scipy's L-BFGS-B from the same starts (the baseline patches in ``{"optimizer": "scipy"}``)."""

DEFAULT_MIN_ROWS = 252
"""Fewest common dates (one trading year) a basket needs to be evaluated."""

DEPENDENT_HELP = (
    "'first': one basket per combination, the dependent asset being the one that comes first in "
    "the universe's column order; 'all': every asset of a combination in turn as the dependent "
    "(k baskets per combination); a ticker: only combinations containing it, with it as the dependent"
)

RANK_BY = {
    "static": "static_adf_pvalue",
    "dynamic": "dynamic_adf_pvalue",
    "oos": "oos_adf_pvalue",
    "trace": "trace_r0",
}
"""Ranking keys: ADF p-values ascending, or the trace statistic for r <= 0 descending."""

STATUSES = ("ok", "short", "failed")
OOS_STARTS = ("continue", "prior")


# ------------------------------------------------------------------ options and data


@dataclass(frozen=True)
class ScreenOptions:
    """How each basket is evaluated.

    Parameters
    ----------
    size : int
        Assets per basket (2, 3 or 4).
    method : str
        Tuning method ("seed" default, "mle", "em").
    iterations : int
        Passes (seed) or optimiser iterations.
    tol : float, optional
        Early stop.
    min_rows : int
        Fewest common dates (rows).
    train_fraction : float
        Share of the common history the out-of-sample model is tuned on.
    oos_start : {"continue", "prior"}
        Start of the out-of-sample filter (module docstring).
    det_order, k_ar_diff : int
        Johansen options (docs/method.md §2).

    Examples
    --------
    >>> opts = ScreenOptions(size=2, method="mle", iterations=200)
    >>> opts.size, opts.min_rows, opts.train_fraction
    (2, 252, 0.7)
    """

    size: int = 3
    method: str = "seed"
    iterations: int = DEFAULT_ITERATIONS
    tol: float | None = None
    min_rows: int = DEFAULT_MIN_ROWS
    train_fraction: float = 0.7
    oos_start: str = "continue"
    det_order: int = 0
    k_ar_diff: int = 1

    def __post_init__(self) -> None:
        if self.size not in (2, 3, 4):
            raise KalcointError(f"size {self.size} must be 2, 3 or 4", params="size")
        registry.get(self.method)
        check_iterations(self.iterations)
        check_tol(self.tol)
        check_choice(self.oos_start, OOS_STARTS, "oos_start")
        n_train = self.train_rows(self.min_rows)
        if n_train < 30 or self.min_rows - n_train < 30:
            raise KalcointError(
                f"min_rows {self.min_rows} with train_fraction {self.train_fraction} leaves "
                f"{n_train} tuning and {self.min_rows - n_train} test rows; both need at least 30: "
                "raise min_rows",
                params=("min_rows", "train_fraction"),
            )

    def train_rows(self, n: int) -> int:
        """Rows of an n-row common history the out-of-sample model is tuned on
        (:func:`kalcoint.oos.split_rows`)."""
        return split_rows(n, self.train_fraction)


@dataclass(frozen=True)
class Universe:
    """A price panel for screening.

    Attributes
    ----------
    values : ndarray, shape (n, N)
        float64 prices, NaN where an asset has no price.
    dates : ndarray, shape (n,)
        datetime64[D], ascending.
    assets : tuple of str
        The N tickers.

    Examples
    --------
    >>> import kalcoint as kc
    >>> u = Universe.from_frame(kc.demo_prices())
    >>> u.values.shape, u.assets
    ((1500, 3), ('ETFA', 'ETFB', 'ETFC'))
    """

    values: np.ndarray
    dates: np.ndarray
    assets: tuple[str, ...]

    @classmethod
    def from_frame(cls, prices: pd.DataFrame) -> Universe:
        if prices.shape[1] < 2:
            raise KalcointError(f"a universe needs at least 2 assets, got {prices.shape[1]}")
        values = np.ascontiguousarray(prices.to_numpy(dtype=np.float64))
        if np.isinf(values).any():
            raise KalcointError("the universe holds infinite prices; correct the file")
        dates = pd.DatetimeIndex(prices.index).to_numpy().astype("datetime64[D]")
        return cls(values, dates, tuple(str(c) for c in prices.columns))


def load_universe(
    path: str | os.PathLike[str], assets: Sequence[str] | str | None = None, fill: str | None = None
) -> pd.DataFrame:
    """Read a price file as a universe frame.

    File formats, date parsing and ticker matching are those of
    :func:`kalcoint.data.load_prices`. Each asset starts (and ends) on its own date (NaN before
    its first and after its last price). Non-positive prices are kept (they are listed in
    ``attrs["non_positive"]``): a screen only needs price levels.

    Parameters
    ----------
    path : path-like
        The price file.
    assets : str or sequence of str, optional
        Keep these tickers (default: all).
    fill : {"ffill"}, optional
        Fill a gap between an asset's first and last price (default: refuse it).

    Returns
    -------
    DataFrame, shape (n_dates, N)
        float64, one column per asset.

    Examples
    --------
    >>> import os, tempfile
    >>> import kalcoint as kc
    >>> path = os.path.join(tempfile.mkdtemp(), "prices.csv")
    >>> kc.demo_prices().to_csv(path)
    >>> load_universe(path).shape
    (1500, 3)
    """
    from .data import read_price_table

    source = os.fspath(path)
    prices = read_price_table(path, assets)
    columns = prices.attrs["source_columns"]
    values = prices.to_numpy()
    present = ~np.isnan(values)
    filled = 0
    for j, name in enumerate(prices.columns):
        if not present[:, j].any():
            raise KalcointError(f"{source}: column {name!r} has no prices; leave it out of assets", params="assets")
        first, last = np.flatnonzero(present[:, j])[[0, -1]]
        gaps = np.flatnonzero(~present[first : last + 1, j])
        if gaps.size and fill != "ffill":
            day = prices.index[first + gaps[0]].strftime("%Y-%m-%d")
            raise KalcointError(
                f"{source}: column {name!r}: missing price on {day} between its first and last price "
                f"({gaps.size} gaps); fix the file or pass fill='ffill' to carry the last price forward",
                params="fill",
            )
        if gaps.size:
            prices.iloc[first : last + 1, j] = prices.iloc[first : last + 1, j].ffill()
            filled += int(gaps.size)
    if np.isinf(values).any():
        j = int(np.argmax(np.isinf(values).any(axis=0)))
        raise KalcointError(f"{source}: column {prices.columns[j]!r} holds an infinite price; correct the file")
    non_positive = [str(c) for c in prices.columns if (prices[c].dropna() <= 0).any()]
    prices.attrs = {"source": source, "source_columns": dict(columns), "filled": filled, "non_positive": non_positive}
    return prices


def basket_list(assets: Sequence[str], size: int, dependent: str = "first") -> list[tuple[str, ...]]:
    """Every basket of ``size`` tickers, first = dependent asset, in a fixed order.

    Combinations in the universe's column order (``itertools.combinations``), and for
    ``dependent="all"`` each combination's rotations one after another.

    Parameters
    ----------
    assets : sequence of str
        The universe's tickers.
    size : int
        Assets per basket.
    dependent : str
        See :data:`DEPENDENT_HELP`.

    Returns
    -------
    list of tuple of str

    Examples
    --------
    >>> basket_list(["A", "B", "C"], 2)
    [('A', 'B'), ('A', 'C'), ('B', 'C')]
    >>> basket_list(["A", "B", "C"], 2, "all")[:2]
    [('A', 'B'), ('B', 'A')]
    """
    names = [str(a) for a in assets]
    return [tuple(names[i] for i in idx) for idx in _basket_indices(names, size, dependent)]


def _basket_indices(names: list[str], size: int, dependent: str) -> list[tuple[int, ...]]:
    n = len(names)
    if size > n:
        raise KalcointError(f"size {size} is larger than the universe ({n} assets)", params="size")
    if dependent == "first":
        return list(itertools.combinations(range(n), size))
    if dependent == "all":
        return [
            (combo[d],) + combo[:d] + combo[d + 1 :]
            for combo in itertools.combinations(range(n), size)
            for d in range(size)
        ]
    if dependent not in names:
        raise KalcointError(
            f"dependent {dependent!r} is not 'first', 'all' or a ticker of the universe", params="dependent"
        )
    dep = names.index(dependent)
    others = [i for i in range(n) if i != dep]
    return [(dep,) + combo for combo in itertools.combinations(others, size - 1)]


def _given_indices(names: list[str], baskets: Sequence[Sequence[str]], size: int) -> list[tuple[int, ...]]:
    position = {name: i for i, name in enumerate(names)}
    indices = []
    for basket in baskets:
        if len(basket) != size or len(set(basket)) != size:
            raise KalcointError(f"basket {','.join(basket)} must hold {size} different tickers")
        missing = [a for a in basket if a not in position]
        if missing:
            raise KalcointError(f"basket {','.join(basket)}: {', '.join(missing)} not in the universe")
        indices.append(tuple(position[a] for a in basket))
    if len(set(indices)) != len(indices):
        raise KalcointError("a basket is listed twice; list each basket once")
    return indices


# ------------------------------------------------------------------ one basket


def columns_for(size: int) -> list[str]:
    """The table's columns for baskets of ``size`` assets (see :data:`COLUMNS`).

    Parameters
    ----------
    size : int
        Assets per basket.

    Returns
    -------
    list of str

    Examples
    --------
    >>> columns_for(2)[:4], len(columns_for(2))
    (['assets', 'status', 'reason', 'nobs'], 32)
    """
    r = range(size)
    return [
        "assets",
        "status",
        "reason",
        "nobs",
        "start",
        "end",
        *[f"trace_r{i}" for i in r],
        *[f"max_eig_r{i}" for i in r],
        "rank_95",
        "static_adf_stat",
        "static_adf_lags",
        "static_adf_pvalue",
        "static_half_life",
        "alpha11",
        "obs_var",
        "passes",
        "degenerate",
        "degenerate_reasons",
        "dynamic_adf_stat",
        "dynamic_adf_lags",
        "dynamic_adf_pvalue",
        "oos_start",
        "oos_nobs",
        "oos_alpha11",
        "oos_adf_pvalue",
        "oos_adf_lags",
        "oos_loglik",
        "oos_static_adf_pvalue",
        "method",
        "iterations",
    ]


COLUMNS = columns_for(3)
"""Columns for triplets (``trace_r*``/``max_eig_r*`` run over r = 0..k-1 for k assets)."""

_STRINGS = ("status", "reason", "start", "end", "degenerate_reasons", "oos_start", "method")
_INTS = ("nobs", "rank_95", "static_adf_lags", "passes", "dynamic_adf_lags", "oos_nobs", "oos_adf_lags", "iterations")
_BOOLS = ("degenerate",)
_MAY_BE_INF = ("static_half_life",)


def _iso(day: np.datetime64) -> str:
    return str(np.datetime_as_string(day, unit="D"))


def evaluate_basket(
    universe: Universe, basket: Sequence[int], options: ScreenOptions, static_only: bool = False
) -> dict[str, Any]:
    """One row of the screen for one basket.

    Parameters
    ----------
    universe : Universe
        The price panel.
    basket : sequence of int
        Column positions of the basket (first = dependent).
    options : ScreenOptions
        How it is evaluated.
    static_only : bool
        Stop after the Johansen test and the static portfolio's figures (the tuned and
        out-of-sample figures stay None): all a selection by static p-value or half-life needs.

    Returns
    -------
    dict
        The keys of :func:`columns_for`; ``status`` "ok", "short" or "failed" with its ``reason``.

    Examples
    --------
    >>> import kalcoint as kc
    >>> row = evaluate_basket(Universe.from_frame(kc.demo_prices()), [0, 1, 2], ScreenOptions())
    >>> row["status"], row["nobs"], row["rank_95"]
    ('ok', 1500, 1)
    """
    idx = list(basket)
    row: dict[str, Any] = {c: None for c in columns_for(len(idx))}
    row.update(
        assets=[universe.assets[i] for i in idx],
        status="ok",
        reason="",
        method=options.method,
        iterations=options.iterations,
    )
    panel = universe.values[:, idx]
    common = ~np.isnan(panel).any(axis=1)
    prices = panel[common]
    n = prices.shape[0]
    row["nobs"] = n
    if n:
        dates = universe.dates[common]
        row["start"], row["end"] = _iso(dates[0]), _iso(dates[-1])
    if n < options.min_rows:
        row["status"] = "short"
        row["reason"] = f"common history of {n} rows is shorter than min_rows {options.min_rows}"
        return row
    stage = "johansen"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            jres = _static_figures(row, prices, options)
            if static_only:
                _check_finite(row)
                return row
            stage = "tuning"
            _tuned_figures(row, prices, jres, options)
            stage = "out-of-sample"
            _oos_figures(row, prices, universe.dates[common], options)
            _check_finite(row)
    except Exception as exc:  # noqa: BLE001 - any failure of one basket is recorded, never fatal
        row["status"] = "failed"
        kind = "" if isinstance(exc, KalcointError) else f"{type(exc).__name__}: "
        row["reason"] = f"{stage}: {kind}{exc}".splitlines()[0]
    return row


def _static_figures(row: dict[str, Any], prices: np.ndarray, options: ScreenOptions) -> JohansenResult:
    jres = johansen(prices, det_order=options.det_order, k_ar_diff=options.k_ar_diff, assets=row["assets"])
    for r in range(prices.shape[1]):
        row[f"trace_r{r}"] = float(jres.trace_stat[r])
        row[f"max_eig_r{r}"] = float(jres.max_eig_stat[r])
    row["rank_95"] = int(jres.rank_95)
    y_port = jres.portfolio(prices)
    static = adf(y_port)
    row.update(
        static_adf_stat=static.stat,
        static_adf_lags=static.lags,
        static_adf_pvalue=static.pvalue,
        static_half_life=half_life(y_port),
    )
    return jres


def _tune(prices: np.ndarray, options: ScreenOptions, jres: JohansenResult | None, diagnose: bool) -> TunedModel:
    return tune(
        prices,
        method=options.method,
        iterations=options.iterations,
        tol=options.tol,
        det_order=options.det_order,
        k_ar_diff=options.k_ar_diff,
        johansen_result=jres,
        diagnose=diagnose,
        **(MLE_OPTIONS if options.method == "mle" else {}),
    )


def _tuned_figures(row: dict[str, Any], prices: np.ndarray, jres: JohansenResult, options: ScreenOptions) -> None:
    tuned = _tune(prices, options, jres, diagnose=True)
    dyn = tuned.adf()
    row.update(
        alpha11=tuned.alpha11,
        obs_var=tuned.obs_var,
        passes=int(tuned.iterations),
        degenerate=bool(tuned.degenerate),
        degenerate_reasons="; ".join(tuned.degenerate_reasons),
        dynamic_adf_stat=dyn.stat,
        dynamic_adf_lags=dyn.lags,
        dynamic_adf_pvalue=dyn.pvalue,
    )


def _oos_figures(row: dict[str, Any], prices: np.ndarray, dates: np.ndarray, options: ScreenOptions) -> None:
    n_train = options.train_rows(prices.shape[0])
    train, test = prices[:n_train], prices[n_train:]
    row["oos_start"], row["oos_nobs"] = _iso(dates[n_train]), int(test.shape[0])
    tuned = _tune(train, options, None, diagnose=False)
    row["oos_static_adf_pvalue"] = adf(tuned.johansen.portfolio(test)).pvalue
    if options.oos_start == "continue":
        result = continue_filter(tuned.result, test)
    else:
        result = kalman_filter(test, tuned.model)
    oos = adf(result.spread)
    row.update(
        oos_alpha11=tuned.alpha11, oos_adf_pvalue=oos.pvalue, oos_adf_lags=oos.lags, oos_loglik=float(result.loglik)
    )


def _check_finite(row: dict[str, Any]) -> None:
    for key, value in row.items():
        if isinstance(value, float) and not math.isfinite(value) and not (key in _MAY_BE_INF and value > 0):
            raise KalcointError(f"{key} is not finite ({value})")


def screen_batch(
    universe: Universe, baskets: Sequence[Sequence[int]], options: ScreenOptions, static_only: bool = False
) -> list[dict]:
    """Rows of :func:`evaluate_basket` for a batch of baskets: the task one Dask worker runs
    (BLAS and OpenMP pools limited to one thread while it runs).

    Parameters
    ----------
    universe : Universe
        The price panel.
    baskets : sequence of sequence of int
        Column positions of each basket.
    options : ScreenOptions
        How they are evaluated.
    static_only : bool
        See :func:`evaluate_basket`.

    Returns
    -------
    list of dict

    Examples
    --------
    >>> import kalcoint as kc
    >>> rows = screen_batch(Universe.from_frame(kc.demo_prices()), [[0, 1], [0, 2]], ScreenOptions(size=2))
    >>> [r["assets"] for r in rows]
    [['ETFA', 'ETFB'], ['ETFA', 'ETFC']]
    """
    with single_threaded():
        return [evaluate_basket(universe, b, options, static_only) for b in baskets]


def batch_table(universe: Universe, baskets: Sequence[Sequence[int]], options: ScreenOptions) -> pd.DataFrame:
    """The rows of :func:`screen_batch` as a typed table (:func:`columns_for`): the task one Dask
    worker runs for :func:`screen`. Pairs of the seed method go through the batch stages of
    :mod:`kalcoint._screen_pairs` (the same figures, to the last bit, at a fraction of the cost);
    other baskets through :func:`evaluate_basket`.

    Parameters
    ----------
    universe : Universe
        The price panel.
    baskets : sequence of sequence of int
        Column positions of each basket.
    options : ScreenOptions
        How they are evaluated.

    Returns
    -------
    DataFrame
        One row per basket, in the order given.

    Examples
    --------
    >>> import kalcoint as kc
    >>> table = batch_table(Universe.from_frame(kc.demo_prices()), [[0, 1], [0, 2]], ScreenOptions(size=2))
    >>> table["assets"].tolist(), table["status"].tolist()
    ([['ETFA', 'ETFB'], ['ETFA', 'ETFC']], ['failed', 'ok'])
    """
    from . import _screen_pairs

    with single_threaded():
        if _screen_pairs.applies(options):
            return _screen_pairs.pair_table(universe, baskets, options)
        return _typed(pd.DataFrame([evaluate_basket(universe, b, options) for b in baskets]), options.size)


# ------------------------------------------------------------------ tables


def _typed(frame: pd.DataFrame, size: int) -> pd.DataFrame:
    """Give a screen table its fixed columns and dtypes (the same from rows, Parquet or CSV)."""
    columns = columns_for(size)
    frame = frame.reindex(columns=columns)
    out: dict[str, Any] = {}
    for c in columns:
        col = frame[c]
        if c == "assets":
            out[c] = pd.Series([list(_asset_tuple(v)) for v in col], index=frame.index, dtype=object)
        elif c in _STRINGS:
            out[c] = col.astype(object).where(col.notna(), "").astype(str)
        elif c in _INTS:
            out[c] = pd.to_numeric(col).astype("Int64")
        elif c in _BOOLS:
            out[c] = col.map(_as_bool).astype("boolean")
        else:
            out[c] = pd.to_numeric(col).astype(np.float64)
    return pd.DataFrame(out, index=frame.index).reset_index(drop=True)


def _as_bool(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return pd.NA
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def _asset_tuple(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(a.strip() for a in value.split(","))
    return tuple(str(a) for a in value)


def write_screen(path: str | os.PathLike[str], table: pd.DataFrame) -> None:
    """Write a screen table atomically: Parquet keeps ``assets`` as a list column; CSV writes it as
    one ``"A,B,C"`` string.

    Parameters
    ----------
    path : path-like
        A ``.parquet`` or ``.csv`` file.
    table : DataFrame
        A table of :func:`screen`.

    Examples
    --------
    >>> import os, tempfile
    >>> import kalcoint as kc
    >>> path = os.path.join(tempfile.mkdtemp(), "screen.csv")
    >>> write_screen(path, kc.screen(kc.demo_prices(), workers=0))
    >>> read_table(path)["assets"].tolist()
    [['ETFA', 'ETFB', 'ETFC']]
    """
    target = Path(path)
    check_table_suffix(target, "screen")
    if target.suffix.lower() == ".csv":
        table = table.assign(assets=[",".join(a) for a in table["assets"]])
    write_table(target, table)


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a screen table written by :func:`screen` (Parquet or CSV) with its dtypes.

    Parameters
    ----------
    path : path-like
        A ``.parquet`` or ``.csv`` file.

    Returns
    -------
    DataFrame

    Examples
    --------
    >>> import os, tempfile
    >>> import kalcoint as kc
    >>> path = os.path.join(tempfile.mkdtemp(), "screen.parquet")
    >>> write_screen(path, kc.screen(kc.demo_prices(), workers=0))
    >>> read_table(path).loc[0, "status"]
    'ok'
    """
    source = Path(path)
    check_table_suffix(source, "screen")
    frame = read_raw_table(source, "screen", "choose another out", params="out")
    trace = [c for c in frame.columns if str(c).startswith("trace_r")]
    if "assets" not in frame.columns or not trace:
        raise KalcointError(
            f"{source}: not a screen table (no 'assets' or 'trace_r0' column); choose another out", params="out"
        )
    # tables written before the columns were named nobs and oos_nobs read (and resume) the same
    frame = frame.rename(columns={"n_obs": "nobs", "oos_n_obs": "oos_nobs"})
    return _typed(frame, len(trace))


def rank_table(
    table: pd.DataFrame, rank_by: str = "static", top: int | None = None, *, by: str | None = None
) -> pd.DataFrame:
    """Every row whose ``rank_by`` figure (a key of :data:`RANK_BY`) is finite, ranked: ADF
    p-values ascending (most stationary first), or ``trace`` descending; first ``top`` rows.

    A row whose tuning failed keeps the figures computed before it (the Johansen test and the
    static portfolio's ADF test), so it is ranked by them; its ``status`` and ``reason`` say
    what failed. Rows without the figure (a short history, a failed Johansen test; for
    ``dynamic`` and ``oos`` a failed tuning) are left out.

    Parameters
    ----------
    table : DataFrame
        A table of :func:`screen` (columns :func:`columns_for`).
    rank_by : str
        A key of :data:`RANK_BY` (``static``, ``dynamic``, ``oos``, ``trace``).
    top : int, optional
        Keep the first ``top`` rows (default: all).
    by : str, optional
        Deprecated name of ``rank_by``.

    Returns
    -------
    DataFrame
        The ranked rows, with their ``status``.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"status": ["ok", "short", "failed", "ok"], "trace_r0": [20.0, None, 41.0, 35.0]})
    >>> ranked = rank_table(table, "trace")
    >>> ranked["trace_r0"].tolist(), ranked["status"].tolist()
    ([41.0, 35.0, 20.0], ['failed', 'ok', 'ok'])
    """
    rank_by = renamed(by, rank_by, "by", "rank_by", "rank_table")
    check_choice(rank_by, RANK_BY, "rank_by")
    column = RANK_BY[rank_by]
    figure = pd.to_numeric(table[column], errors="coerce").astype(np.float64)
    ranked = table[np.isfinite(figure.to_numpy())]
    ranked = ranked.sort_values(column, ascending=(rank_by != "trace"), kind="stable")
    return ranked.head(top) if top is not None else ranked


# ------------------------------------------------------------------ running


def _worker_count(workers: int | None, batch_size: int | None) -> int:
    """The local worker processes a run starts (``workers``, default :func:`default_workers`;
    0: in this process), with ``batch_size`` checked."""
    n_workers = default_workers() if workers is None else int(workers)
    if n_workers < 0:
        raise KalcointError(f"workers {workers} must be >= 0 (0 runs in this process)", params="workers")
    if batch_size is not None and batch_size < 1:
        raise KalcointError(f"batch_size {batch_size} must be >= 1", params="batch_size")
    return n_workers


def default_workers() -> int:
    """The number of CPU cores this process may use.

    Returns
    -------
    int

    Examples
    --------
    >>> default_workers() >= 1
    True
    """
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _auto_batch(pending: int, workers: int) -> int:
    """About sixteen tasks per worker, 1 to 500 baskets each: enough for the progress ETA to
    rest on a dozen finished tasks after 10% of the work, few enough that Dask's per-task
    overhead (a few ms, benchmarks/bench_scale.py) stays near 1% of a task."""
    return max(1, min(500, math.ceil(pending / (16 * max(workers, 1)))))


def tls_security(ca_file: str | os.PathLike[str], cert: str | os.PathLike[str], key: str | os.PathLike[str]) -> Any:
    """Dask's TLS settings for a client of a ``tls://`` scheduler. Encryption is required.

    Parameters
    ----------
    ca_file : path-like
        The certificate authority that signed the cluster's certificates (PEM).
    cert, key : path-like
        This client's certificate and private key (PEM).

    Returns
    -------
    distributed.security.Security

    Examples
    --------
    >>> tls_security("ca.pem", "client.pem", "client.key")
    Traceback (most recent call last):
    ...
    kalcoint.errors.KalcointError: TLS CA file ca.pem does not exist; give the PEM file

    With the cluster's files (these two lines need a TLS-secured Dask cluster, so they are not run):

    >>> sec = tls_security("ca.pem", "client.pem", "client.key")  # needs the PEM files  # doctest: +SKIP
    >>> screen(prices, scheduler="tls://10.0.0.5:8786", security=sec)  # needs the cluster  # doctest: +SKIP
    """
    from distributed.security import Security

    for what, path in (("CA file", ca_file), ("certificate", cert), ("key", key)):
        if not Path(path).is_file():
            raise KalcointError(f"TLS {what} {path} does not exist; give the PEM file")
    return Security(
        tls_ca_file=os.fspath(ca_file),
        tls_client_cert=os.fspath(cert),
        tls_client_key=os.fspath(key),
        require_encryption=True,
    )


def _run_batches(
    universe: Universe,
    batches: list[list[tuple[int, ...]]],
    options: ScreenOptions,
    workers: int,
    scheduler: str | None,
    security: Any = None,
    *,
    connect_timeout: float | None = None,
    worker_timeout: float | None = None,
    out: Path | None = None,
) -> Iterator[tuple[int, pd.DataFrame | None]]:
    """Yield ``(-1, None)`` once the work starts (the cluster up, the workers warm, every task
    submitted), then ``(batch number, typed rows)`` (:func:`batch_table`) as batches finish (the
    timeouts: :func:`kalcoint._cluster.client`; ``out`` is named when the cluster is lost)."""
    if (scheduler is None and workers == 0) or not batches:
        yield -1, None
        for i, batch in enumerate(batches):
            yield i, batch_table(universe, batch, options)
        return
    with _client(
        workers, scheduler, security, connect_timeout=connect_timeout, worker_timeout=worker_timeout
    ) as client:
        pool = Pool(client, scheduler, worker_timeout, out)
        data = pool.share(universe)
        pool.warm(batch_table, data, batches[0][:1], options)
        for i, batch in enumerate(batches):
            pool.submit(i, batch_table, data, batch, options)
        yield -1, None
        yield from pool.results()


class _Store:
    """The rows done so far (resumed and new), written atomically to ``out`` at most every
    ``every_s`` seconds, and always by :meth:`flush`. Each batch's rows arrive typed
    (:func:`batch_table`: a few hundred bytes a row instead of a dict's couple of kilobytes), so a
    checkpoint only concatenates them."""

    def __init__(
        self,
        out: Path | None,
        order: dict[tuple[str, ...], int],
        size: int,
        previous: pd.DataFrame | None,
        every_s: float,
    ) -> None:
        self.out, self.order, self.size, self.every_s = out, order, size, every_s
        self.parts: list[pd.DataFrame] = [previous] if previous is not None else []
        self.last = time.monotonic()
        self.dirty = False

    def add(self, rows: pd.DataFrame) -> None:
        if len(rows):
            self.parts.append(rows)
        self.dirty = True
        if self.out is not None and time.monotonic() - self.last >= self.every_s:
            self.flush()

    def table(self) -> pd.DataFrame:
        if len(self.parts) > 1:
            self.parts = [pd.concat(self.parts, ignore_index=True)]
        frame = self.parts[0] if self.parts else _typed(pd.DataFrame(), self.size)
        keys = [self.order[_asset_tuple(a)] for a in frame["assets"]]
        return frame.iloc[np.argsort(keys, kind="stable")].reset_index(drop=True)

    def flush(self, force: bool = False) -> None:
        if self.out is not None and (self.dirty or force):
            write_screen(self.out, self.table())
        self.last = time.monotonic()
        self.dirty = False


def _previous(
    out: Path | None, resume: bool, overwrite: bool, order: dict, options: ScreenOptions
) -> pd.DataFrame | None:
    if out is None:
        if resume:
            raise KalcointError("resume needs out: the table to continue", params=("resume", "out"))
        return None
    check_table_suffix(out, "screen")
    if not out.exists():
        return None
    if not resume:
        if overwrite:
            return None
        raise KalcointError(
            f"out {out} exists: pass resume to continue it, or overwrite to start again",
            params=("out", "resume", "overwrite"),
        )
    table = read_table(out)
    if len(table.columns) != len(columns_for(options.size)):
        raise KalcointError(
            f"out {out} holds baskets of another size; use the same size or a new out", params=("out", "size")
        )
    keys = [_asset_tuple(a) for a in table["assets"]]
    stray = [k for k in keys if k not in order]
    if stray:
        raise KalcointError(
            f"out {out} holds {len(stray)} baskets this screen does not enumerate (e.g. {','.join(stray[0])}); "
            "resume with the same prices, assets, size and dependent",
            params=("out", "assets", "size", "dependent"),
        )
    settings = set(zip(table["method"], table["iterations"].astype(int)))
    if settings - {(options.method, options.iterations)}:
        m, it = sorted(settings)[0]
        raise KalcointError(
            f"out {out} was screened with method {m} iterations {it}; resume with the same options or a new out",
            params=("out", "method", "iterations"),
        )
    if len(set(keys)) != len(keys):
        raise KalcointError(f"out {out} lists a basket twice; it was not written by kalcoint screen", params="out")
    return table


def screen(
    prices: pd.DataFrame | Universe,
    options: ScreenOptions | None = None,
    *,
    dependent: str = "first",
    baskets: Sequence[Sequence[str]] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    security: Any = None,
    batch_size: int | None = None,
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    limit: int | None = None,
    checkpoint: float = 30.0,
    progress: Callable[[int, int], None] | None = None,
    checkpoint_s: float | None = None,
    connect_timeout: float | None = None,
    worker_timeout: float | None = None,
) -> pd.DataFrame:
    """Screen every basket of ``options.size`` assets of a universe.

    Parameters
    ----------
    prices : DataFrame or Universe
        A universe frame (:func:`load_universe`) or :class:`Universe`.
    options : ScreenOptions, optional
        How each basket is evaluated (default ``ScreenOptions()``).
    dependent : str
        See :data:`DEPENDENT_HELP`.
    baskets : sequence of sequence of str, optional
        Screen these baskets (tickers, first = dependent, each of ``options.size`` assets)
        instead of every basket.
    workers : int, optional
        0 = in this process; N = a local Dask cluster of N single-threaded worker processes
        (default: every core); ignored when ``scheduler`` is given.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:port``, or ``tls://host:port`` with
        ``security`` from :func:`tls_security`); its workers must be able to import kalcoint.
    security : distributed.security.Security, optional
        TLS settings of a ``tls://`` scheduler.
    batch_size : int, optional
        Baskets per task (default: about sixteen tasks per worker, at most 500).
    out : path-like, optional
        Parquet or CSV table, rewritten atomically at least every ``checkpoint`` seconds, at the
        end, and when the run stops (Ctrl-C or an error): what is done is kept.
    resume : bool
        Skip the baskets already in ``out`` (same options required).
    overwrite : bool
        Replace an existing ``out``.
    limit : int, optional
        Evaluate at most this many of the pending baskets (a partial run).
    checkpoint : float
        Seconds between rewrites of ``out``.
    progress : callable, optional
        ``progress(done, total)`` when the work starts (``done = 0``, once the cluster is up and
        the tasks submitted: a rate measured from then leaves the start-up out and counts every
        worker's first batch) and after each batch (counts in baskets).
    checkpoint_s : float, optional
        Deprecated name of ``checkpoint``.
    connect_timeout : float, optional
        Seconds for a ``scheduler`` to connect (default 10; its answer must follow within 1 s
        more): a server that does not answer, or not as a Dask scheduler, is refused.
    worker_timeout : float, optional
        Seconds to wait for a worker of ``scheduler``, at the start and whenever none is left
        (default 60); lost tasks are sent again to a worker that joins. Past that wait the run
        stops, keeping the rows done in ``out``.

    Returns
    -------
    DataFrame
        One row per basket, in :func:`basket_list` order, columns :func:`columns_for`.

    Examples
    --------
    >>> import kalcoint as kc
    >>> table = kc.screen(kc.demo_prices(), ScreenOptions(size=2), workers=0)
    >>> table["status"].tolist()
    ['failed', 'ok', 'ok']
    >>> ranked = rank_table(table, "static")
    >>> ranked["assets"].tolist(), ranked["status"].tolist()
    ([['ETFA', 'ETFB'], ['ETFA', 'ETFC'], ['ETFB', 'ETFC']], ['failed', 'ok', 'ok'])
    """
    options = options or ScreenOptions()
    check_scheduler(scheduler, security)
    connect_timeout, worker_timeout = timeouts(connect_timeout, worker_timeout)
    check_resume(resume, overwrite)
    universe = prices if isinstance(prices, Universe) else Universe.from_frame(prices)
    if baskets is None:
        indices = _basket_indices(list(universe.assets), options.size, dependent)
    else:
        indices = _given_indices(list(universe.assets), baskets, options.size)
    names = [tuple(universe.assets[i] for i in idx) for idx in indices]
    order = {key: i for i, key in enumerate(names)}
    out_path = Path(out) if out is not None else None
    previous = _previous(out_path, resume, overwrite, order, options)
    done = {_asset_tuple(a) for a in previous["assets"]} if previous is not None else set()
    pending = [idx for idx, key in zip(indices, names) if key not in done]
    if limit is not None:
        if limit < 0:
            raise KalcointError(f"limit {limit} must be >= 0", params="limit")
        pending = pending[:limit]
    n_workers = _worker_count(workers, batch_size)
    size = batch_size or _auto_batch(len(pending), 1 if scheduler is None and n_workers == 0 else n_workers)
    batches = [pending[i : i + size] for i in range(0, len(pending), size)]
    checkpoint = renamed(checkpoint_s, checkpoint, "checkpoint_s", "checkpoint", "screen")
    store = _Store(out_path, order, options.size, previous, checkpoint)
    if pending and scheduler is not None:
        probe(scheduler, security, connect_timeout)  # a scheduler that does not answer is refused before any work
    if pending and (n_workers > 0 or scheduler is not None):
        batch_table(universe, pending[:1], options)  # compile and cache the kernels before workers start
    total, finished = len(pending), 0
    runner = _run_batches(
        universe,
        batches,
        options,
        n_workers,
        scheduler,
        security,
        connect_timeout=connect_timeout,
        worker_timeout=worker_timeout,
        out=out_path,
    )
    try:
        with contextlib.closing(runner):  # type: ignore[arg-type,type-var]
            for i, rows in runner:
                if rows is not None:
                    store.add(rows)
                    finished += len(batches[i])
                if progress is not None:
                    progress(finished, total)
    except BaseException:
        store.flush()  # keep what was done (Ctrl-C, a lost cluster)
        raise
    store.flush(force=True)
    return store.table()

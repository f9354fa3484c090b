"""The screen's rows for a batch of pairs (size 2, the seed method), stage by stage over the batch.

:func:`pair_table` gives the rows :func:`kalcoint.screen.evaluate_basket` gives, typed as
:func:`kalcoint.screen._typed` types them, every figure the same number to the last bit. Instead
of one basket at a time through ``johansen``, ``tune`` and ``adf`` (some forty NumPy calls and
a dozen objects a basket), the pairs sharing a history length go through each stage together:

1. the Johansen test of every pair (one compiled loop, :func:`kalcoint._kernels.johansen_pairs`);
2. what the plain path computes with NumPy, on the stack of pairs: the static portfolio, its
   half-life and the first pass of the seed method (``matmul``, ``var``, ``inv`` over a stack run
   the BLAS and LAPACK call of one pair on each pair, and the same pairwise sums);
3. the ADF tests, the seed passes and the dynamic portfolio (compiled loops);
4. the same again on the first ``train_fraction`` of the rows, and the filter over the rest.

The seed passes amplify a change in the last bit of their start to whole percents after 30
passes (they collapse, docs/method.md §9), so "the same number" is the requirement. A pair that
leaves the common path anywhere the plain path would raise an error this module does not write
itself (a collinear pair, a near-tie of ADF lags that statsmodels settles, a filter breakdown out
of sample, ...) is evaluated by :func:`kalcoint.screen.evaluate_basket` itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ._checks import MAX_PRICE
from ._kernels import OK, adf_pairs, johansen_pairs, oos_filter_pairs, tune_pairs
from .cointegration import _CHOL_TOL, _EIG_TOL, _RANK_TOL, _TIE_TOL, _adf_maxlag, johansen_critical_values, mackinnonp
from .screen import _BOOLS, _INTS, _STRINGS, ScreenOptions, Universe, _typed, columns_for, evaluate_basket
from .tuning.diagnosis import degenerate_reasons
from .tuning.seed import negative_first_pass, passes_error

__all__ = ["applies", "pair_table"]

_HALF_LIFE_LOG = -np.log(2.0)  # half_life's numerator, as it computes it


def applies(options: ScreenOptions, static_only: bool = False) -> bool:
    """Whether :func:`pair_table` evaluates baskets of these options (else the plain path does)."""
    return options.size == 2 and options.method == "seed" and not static_only


class _Rows:
    """The columns of a batch's rows as arrays: floats NaN, integers and booleans with a mask of
    missing entries, strings "" (what :func:`kalcoint.screen._typed` makes of None)."""

    def __init__(self, size: int, n_rows: int) -> None:
        self.columns = columns_for(size)
        self.n = n_rows
        self.data: dict[str, Any] = {}
        self.missing: dict[str, np.ndarray] = {}
        for c in self.columns:
            if c == "assets":
                continue
            if c in _STRINGS:
                self.data[c] = np.full(n_rows, "", dtype=object)
            elif c in _INTS or c in _BOOLS:
                self.data[c] = np.zeros(n_rows, dtype=bool if c in _BOOLS else np.int64)
                self.missing[c] = np.ones(n_rows, dtype=bool)
            else:
                self.data[c] = np.full(n_rows, np.nan)

    def put(self, column: str, where: np.ndarray | slice, values: Any) -> None:
        """Set ``column`` at the positions ``where`` (indices or a mask) to ``values``."""
        self.data[column][where] = values
        if column in self.missing:
            self.missing[column][where] = False

    def frame(self, assets: list[list[str]], keep: np.ndarray) -> pd.DataFrame:
        """The rows ``keep`` (a mask) as :func:`kalcoint.screen._typed` types them."""
        out: dict[str, Any] = {"assets": pd.Series([assets[i] for i in np.flatnonzero(keep)], dtype=object)}
        for c in self.columns[1:]:
            values = self.data[c][keep]
            if c in _STRINGS:
                out[c] = pd.Series(values, dtype=object).astype(str)
            elif c in _INTS:
                out[c] = pd.Series(pd.arrays.IntegerArray(values, self.missing[c][keep].copy()))
            elif c in _BOOLS:
                out[c] = pd.Series(pd.arrays.BooleanArray(values, self.missing[c][keep].copy()))
            else:
                out[c] = pd.Series(values, dtype=np.float64)
        return pd.DataFrame(out)


@dataclass
class _FirstPass:
    """The first pass (:func:`kalcoint.tuning.seed.first_pass_model`) and the centre ``bm`` of
    :func:`kalcoint.tuning.seed.run_seed_passes`, for a stack of pairs; ``ok`` where it gives a
    model, ``negative`` where it raises its negative-variance error (others: the plain path)."""

    alpha11: np.ndarray
    obs_var: np.ndarray
    level_var: np.ndarray
    hedge0: np.ndarray
    initial_cov: np.ndarray
    bm: np.ndarray
    ok: np.ndarray
    negative: np.ndarray


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a[i] @ b[i]`` for each row of two (B, m) stacks: NumPy's dot (BLAS ddot) of one pair each."""
    return np.matmul(a[:, None, :], b[:, :, None])[:, 0, 0]


CHUNK = 32
"""Pairs a NumPy step of the batch takes at a time, in work arrays reused from chunk to chunk:
they stay in the core's cache, and a Dask worker (which hands freed memory back to the system
at once) does not fault fresh pages in for every temporary."""


def _first_pass(prices: np.ndarray, weights: np.ndarray, portfolio: np.ndarray) -> _FirstPass:
    """``first_pass_model(prices[i], weights[i])`` for a (B, n, 2) stack, :data:`CHUNK` pairs at a time.

    portfolio : (B, n) ``prices[i] @ weights[i]`` (the Johansen path's level, times ``w_1``).
    """
    size = max(min(CHUNK, len(prices)), 1)
    path, xa = np.empty((size, *prices.shape[1:])), np.empty((size, *prices.shape[1:]))
    parts = [
        _first_pass_chunk(prices[i : i + CHUNK], weights[i : i + CHUNK], portfolio[i : i + CHUNK], path, xa)
        for i in range(0, max(len(prices), 1), CHUNK)
    ]
    if len(parts) == 1:
        return parts[0]
    return _FirstPass(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FirstPass.__dataclass_fields__))


def _first_pass_chunk(
    prices: np.ndarray, weights: np.ndarray, portfolio: np.ndarray, path_work: np.ndarray, xa_work: np.ndarray
) -> _FirstPass:
    """:func:`_first_pass` of a few pairs, by the operations of ``first_pass_model`` (its
    Johansen path and ``x_t A`` rows written into the work arrays)."""
    count, n = prices.shape[:2]
    w0, w1 = weights[:, 0], weights[:, 1]
    hedge0 = -weights[:, 1:] / weights[:, :1]  # -w[1:] / w[0]
    path = path_work[:count]  # johansen_path
    np.divide(portfolio, w0[:, None], out=path[:, :, 0])
    path[:, :, 1] = hedge0
    b1 = path[:, :, 0]
    denom = _dot(b1[:, :-1], b1[:, :-1])
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha11 = _dot(b1[:, 1:], b1[:, :-1]) / denom
    obs_var = np.var(b1, axis=1)
    gamma0 = (np.matmul(path.transpose(0, 2, 1), path) / n)[:, 0, 0]
    # (1 - alpha11**2) gamma[0] with Python's float power, as first_pass_model computes it
    level_var = np.array([(1.0 - a**2) * g for a, g in zip(alpha11.tolist(), gamma0.tolist())])
    xa = xa_work[:count]
    np.copyto(xa, prices)
    xa[:, :, 0] = alpha11[:, None]
    moment = np.matmul(xa.transpose(0, 2, 1), xa) / n
    inv, inverted = _inverses(moment)
    initial_cov = obs_var[:, None] * np.diagonal(inv, axis1=1, axis2=2)
    with np.errstate(invalid="ignore"):
        negative = (denom > 0.0) & inverted & ((level_var < 0) | (initial_cov < 0).any(axis=1) | (obs_var <= 0))
        bm = np.column_stack([np.mean(portfolio, axis=1) / w0, hedge0[:, 0]])
    quantities = np.column_stack([alpha11, obs_var, level_var, initial_cov, hedge0, bm])
    ok = (denom > 0.0) & inverted & ~negative & np.isfinite(quantities).all(axis=1) & np.isfinite(w1)
    return _FirstPass(alpha11, obs_var, level_var, hedge0[:, 0].copy(), initial_cov, bm, ok, negative)


def _inverses(moment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.linalg.inv`` of each (2, 2) matrix, and where it succeeded (a singular one is NaN)."""
    try:
        return np.linalg.inv(moment), np.ones(len(moment), dtype=bool)
    except np.linalg.LinAlgError:
        inv = np.full(moment.shape, np.nan)
        inverted = np.zeros(len(moment), dtype=bool)
        for i, m in enumerate(moment):
            try:
                inv[i] = np.linalg.inv(m)
                inverted[i] = True
            except np.linalg.LinAlgError:
                pass
        return inv, inverted


def _half_lives(portfolio: np.ndarray) -> np.ndarray:
    """:func:`kalcoint.cointegration.half_life` of each row of a (B, n) stack, by its operations
    (:data:`CHUNK` rows at a time, in reused work arrays)."""
    count, n = portfolio.shape
    size = max(min(CHUNK, count), 1)
    lag_work, dx_work = np.empty((size, n - 1)), np.empty((size, n - 1))
    out = np.empty(count)
    for i in range(0, count, CHUNK):
        x = portfolio[i : i + CHUNK]
        lag, dx = lag_work[: len(x)], dx_work[: len(x)]
        np.subtract(x[:, :-1], x[:, :-1].mean(axis=1, keepdims=True), out=lag)
        np.subtract(x[:, 1:], x[:, :-1], out=dx)  # np.diff
        np.subtract(dx, dx.mean(axis=1, keepdims=True), out=dx)
        with np.errstate(divide="ignore", invalid="ignore"):
            lam = _dot(lag, dx) / _dot(lag, lag)
            out[i : i + CHUNK] = np.where(lam < 0, _HALF_LIFE_LOG / lam, np.inf)
    return out


def _adf(series: np.ndarray, rows: int, select: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``adf(series[i, :rows])`` (stat, lags, ok) for the selected rows of a stack; ``ok`` False
    where the plain path raises or hands the lag choice to statsmodels."""
    count = len(series)
    stat, lags, status = np.full(count, np.nan), np.full(count, -1, dtype=np.int64), np.full(count, -9)
    maxlag = _adf_maxlag(rows, None)
    adf_pairs(series, rows, select, maxlag, _CHOL_TOL, _RANK_TOL, _TIE_TOL, stat, lags, status)
    return stat, lags, (status == OK) & np.isfinite(stat)


def _pvalues(stat: np.ndarray) -> np.ndarray:
    return np.array([mackinnonp(s, regression="c", N=1) for s in stat.tolist()])


def _johansen(prices: np.ndarray, rows: int, select: np.ndarray, options: ScreenOptions) -> tuple[np.ndarray, ...]:
    """Weights, trace and max-eig statistics (B, 2) of the selected pairs, and where the test gives
    usable weights (``johansen`` raises otherwise)."""
    count = len(prices)
    weights, trace, max_eig = np.full((count, 2), np.nan), np.full((count, 2), np.nan), np.full((count, 2), np.nan)
    status = np.full(count, -9)
    johansen_pairs(
        prices, rows, select, options.det_order, options.k_ar_diff, _EIG_TOL, weights, trace, max_eig, status
    )
    ok = (status == OK) & np.isfinite(weights).all(axis=1) & (weights[:, 0] != 0.0)
    return weights, trace, max_eig, ok


def _tune(prices: np.ndarray, rows: int, first: _FirstPass, options: ScreenOptions) -> dict[str, np.ndarray]:
    """The seed passes of the pairs whose first pass gives a model, on their first ``rows`` rows."""
    count = len(prices)
    out = {
        "passes": np.zeros(count, dtype=np.int64),
        "status": np.full(count, -9, dtype=np.int64),
        "out": np.full((count, 6), np.nan),
        "posterior": np.full((count, 5), np.nan),
        "innov_var": np.empty((count, rows)),  # rows written for the pairs given a model
        "spread": np.empty((count, rows)),
        "finite": np.zeros(count, dtype=bool),
    }
    tune_pairs(
        prices,
        rows,
        first.ok,
        first.alpha11,
        first.obs_var,
        first.level_var,
        first.hedge0,
        np.ascontiguousarray(first.initial_cov),
        np.ascontiguousarray(first.bm),
        options.iterations,
        float(options.tol or 0.0),
        out["passes"],
        out["status"],
        out["out"],
        out["posterior"],
        out["innov_var"],
        out["spread"],
        out["finite"],
    )
    return out


def _tuning_errors(first: _FirstPass, run: dict[str, np.ndarray]) -> dict[int, str]:
    """Position -> message of the pairs whose tuning raises an error written here."""
    errors = {int(i): str(negative_first_pass(float(first.alpha11[i]))) for i in np.flatnonzero(first.negative)}
    for i in np.flatnonzero(first.ok):
        error = passes_error(int(run["passes"][i]), int(run["status"][i]), run["out"][i])
        if error is not None:
            errors[int(i)] = str(error)
    return errors


def _group_prices(values: np.ndarray, idx: np.ndarray, common: np.ndarray, members: np.ndarray, n: int) -> np.ndarray:
    """(len(members), n, 2) common-history prices of the member pairs (written in place: no
    temporary of the batch's size, which a Dask worker would hand back to the system and fault
    in again for the next batch)."""
    prices = np.empty((len(members), n, 2))
    full = bool(common[:, members].all())
    for j, m in enumerate(members.tolist()):
        rows = slice(None) if full else common[:, m]
        prices[j, :, 0] = values[rows, idx[m, 0]]
        prices[j, :, 1] = values[rows, idx[m, 1]]
    return prices


def pair_table(universe: Universe, baskets: Sequence[Sequence[int]], options: ScreenOptions) -> pd.DataFrame:
    """The typed rows of :func:`kalcoint.screen.evaluate_basket` for a batch of pairs.

    Parameters
    ----------
    universe : Universe
        The price panel.
    baskets : sequence of (int, int)
        Column positions of each pair (first = dependent).
    options : ScreenOptions
        Size 2, method "seed" (:func:`applies`).

    Returns
    -------
    DataFrame
        One row per pair, in the order given, as ``_typed(pd.DataFrame(rows), 2)``.
    """
    idx = np.asarray(baskets, dtype=np.int64).reshape(-1, 2)
    count = len(idx)
    rows = _Rows(2, count)
    names = list(universe.assets)
    assets = [[names[i], names[j]] for i, j in idx.tolist()]
    rows.put("method", slice(None), options.method)
    rows.put("iterations", slice(None), options.iterations)
    plain = np.zeros(count, dtype=bool)  # pairs left to evaluate_basket
    if count:
        with np.errstate(all="ignore"):  # pairs that leave the common path compute NaN on the way
            _fill(rows, plain, universe, idx, options)
    fast = rows.frame(assets, ~plain)
    if not plain.any():
        return fast
    slow = _typed(pd.DataFrame([evaluate_basket(universe, idx[i].tolist(), options) for i in np.flatnonzero(plain)]), 2)
    order = np.argsort(np.concatenate([np.flatnonzero(~plain), np.flatnonzero(plain)]), kind="stable")
    return pd.concat([fast, slow], ignore_index=True).iloc[order].reset_index(drop=True)


def _fill(rows: _Rows, plain: np.ndarray, universe: Universe, idx: np.ndarray, options: ScreenOptions) -> None:
    """Write every row of the batch, or mark it in ``plain``."""
    values = universe.values
    present = ~np.isnan(values)
    common = present[:, idx[:, 0]] & present[:, idx[:, 1]]  # (dates, pairs)
    nobs = common.sum(axis=0)
    rows.put("nobs", slice(None), nobs)
    dated = np.flatnonzero(nobs > 0)
    first_row = np.argmax(common[:, dated], axis=0)
    last_row = common.shape[0] - 1 - np.argmax(common[::-1, dated], axis=0)
    rows.put("start", dated, np.datetime_as_string(universe.dates[first_row], unit="D").astype(object))
    rows.put("end", dated, np.datetime_as_string(universe.dates[last_row], unit="D").astype(object))
    short = np.flatnonzero(nobs < options.min_rows)
    rows.put("status", slice(None), "ok")
    rows.put("status", short, "short")
    rows.put(
        "reason",
        short,
        np.array(
            [f"common history of {n} rows is shorter than min_rows {options.min_rows}" for n in nobs[short].tolist()],
            dtype=object,
        ),
    )
    huge = (np.abs(values) > MAX_PRICE).any(axis=0)  # NaN compares False
    plain |= huge[idx[:, 0]] | huge[idx[:, 1]]
    plain[short] = False
    for n in np.unique(nobs[nobs >= options.min_rows]).tolist():
        members = np.flatnonzero((nobs == n) & ~plain)
        if members.size:
            _fill_group(rows, plain, universe, idx, common, members, n, options)


def _fill_group(
    rows: _Rows,
    plain: np.ndarray,
    universe: Universe,
    idx: np.ndarray,
    common: np.ndarray,
    members: np.ndarray,
    n: int,
    options: ScreenOptions,
) -> None:
    """The rows of the pairs ``members``, whose common histories have ``n`` rows."""
    k_min = 2 * (2 * (options.k_ar_diff + 1) + 2)  # Johansen's fewest rows (_check_panel)
    n_train = options.train_rows(n)
    if n_train < k_min or n - n_train < 10:
        plain[members] = True
        return
    prices = _group_prices(universe.values, idx, common, members, n)
    count = len(members)
    leave = np.zeros(count, dtype=bool)  # to the plain path

    # stage "johansen": the test, the static portfolio's ADF test and half-life
    everyone = np.ones(count, dtype=bool)
    weights, trace, max_eig, j_ok = _johansen(prices, n, everyone, options)
    leave |= ~j_ok
    portfolio = np.matmul(prices, weights[:, :, None])[:, :, 0]
    s_stat, s_lags, s_ok = _adf(portfolio, n, j_ok)
    leave |= ~s_ok
    half_lives = _half_lives(portfolio)
    crit = johansen_critical_values(2, options.det_order, "trace")[:, 1]
    rank = np.where(trace[:, 0] > crit[0], np.where(trace[:, 1] > crit[1], 2, 1), 0)
    done = ~leave
    pos = members[done]
    for r in range(2):
        rows.put(f"trace_r{r}", pos, trace[done, r])
        rows.put(f"max_eig_r{r}", pos, max_eig[done, r])
    rows.put("rank_95", pos, rank[done])
    rows.put("static_adf_stat", pos, s_stat[done])
    rows.put("static_adf_lags", pos, s_lags[done])
    rows.put("static_adf_pvalue", pos, _pvalues(s_stat[done]))
    rows.put("static_half_life", pos, half_lives[done])

    # stage "tuning": first pass, seed passes, diagnosis, the dynamic portfolio's ADF test
    first = _first_pass(prices, weights, portfolio)
    first.ok &= done
    first.negative &= done
    leave |= done & ~first.ok & ~first.negative
    run = _tune(prices, n, first, options)
    errors = _tuning_errors(first, run)
    failed = np.zeros(count, dtype=bool)
    failed[list(errors)] = True
    leave |= first.ok & ~failed & ~run["finite"]
    tuned = first.ok & ~failed & ~leave
    d_stat, d_lags, d_ok = _adf(run["spread"], n, tuned)
    leave |= tuned & ~d_ok
    tuned &= d_ok
    _fail(rows, members, failed & ~leave, "tuning", errors)
    _tuned_figures(rows, members, tuned, prices, run, d_stat, d_lags)

    # stage "out-of-sample": Johansen, first pass and passes on the first n_train rows, then the test rows
    oos_dates = _oos_dates(universe, common, members[tuned], n, n_train)
    rows.put("oos_start", members[tuned], oos_dates)
    rows.put("oos_nobs", members[tuned], n - n_train)
    _out_of_sample(rows, leave, members, tuned, prices, n_train, options)
    plain[members[leave]] = True


def _fail(rows: _Rows, members: np.ndarray, where: np.ndarray, stage: str, errors: dict[int, str]) -> None:
    positions = np.flatnonzero(where)
    rows.put("status", members[positions], "failed")
    rows.put("reason", members[positions], np.array([f"{stage}: {errors[int(i)]}" for i in positions], dtype=object))


def _tuned_figures(
    rows: _Rows,
    members: np.ndarray,
    tuned: np.ndarray,
    prices: np.ndarray,
    run: dict[str, np.ndarray],
    d_stat: np.ndarray,
    d_lags: np.ndarray,
) -> None:
    """alpha11 .. dynamic_adf_pvalue of the tuned pairs, with the diagnosis of
    :func:`kalcoint.tuning.diagnosis.diagnose_model` by its operations."""
    pos = members[tuned]
    out = run["out"][tuned]
    n = prices.shape[1]
    values = prices[tuned]
    scale = np.var(np.diff(values[:, :, 0], axis=1), axis=1)
    q = run["innov_var"][tuned]
    obs_var = out[:, 1]
    share = np.mean((q - obs_var[:, None]) / q, axis=1)
    level_drift = n * out[:, 2] * 1.0 / scale  # n * state_var * mean_sq / scale, mean_sq[0] = 1
    # tune() is handed a bare array, so the diagnosis names the dependent asset "x1"
    reasons = [
        "; ".join(degenerate_reasons(a, v, s0, sc, sh, dr, "x1"))
        for a, v, s0, sc, sh, dr in zip(
            out[:, 0].tolist(),
            obs_var.tolist(),
            out[:, 2].tolist(),
            scale.tolist(),
            share.tolist(),
            level_drift.tolist(),
        )
    ]
    rows.put("alpha11", pos, out[:, 0])
    rows.put("obs_var", pos, obs_var)
    rows.put("passes", pos, run["passes"][tuned])
    rows.put("degenerate", pos, np.array([bool(r) for r in reasons]))
    rows.put("degenerate_reasons", pos, np.array(reasons, dtype=object))
    rows.put("dynamic_adf_stat", pos, d_stat[tuned])
    rows.put("dynamic_adf_lags", pos, d_lags[tuned])
    rows.put("dynamic_adf_pvalue", pos, _pvalues(d_stat[tuned]))


def _oos_dates(universe: Universe, common: np.ndarray, pairs: np.ndarray, n: int, n_train: int) -> np.ndarray:
    """The date of row ``n_train`` of each pair's common history (``oos_start``)."""
    mask = common[:, pairs]
    if mask.all():
        where = np.full(len(pairs), n_train)
    else:
        where = np.array([np.flatnonzero(mask[:, j])[n_train] for j in range(len(pairs))], dtype=np.int64)
    return np.datetime_as_string(universe.dates[where], unit="D").astype(object)


def _out_of_sample(
    rows: _Rows,
    leave: np.ndarray,
    members: np.ndarray,
    tuned: np.ndarray,
    prices: np.ndarray,
    n_train: int,
    options: ScreenOptions,
) -> None:
    """The out-of-sample figures of the tuned pairs (:func:`kalcoint.screen._oos_figures`)."""
    count, n = len(prices), prices.shape[1]
    weights, _, _, j_ok = _johansen(prices, n_train, tuned, options)
    leave |= tuned & ~j_ok
    train = prices[:, :n_train]
    first = _first_pass(train, weights, np.matmul(train, weights[:, :, None])[:, :, 0])
    first.ok &= tuned & j_ok
    first.negative &= tuned & j_ok
    leave |= tuned & j_ok & ~first.ok & ~first.negative
    run = _tune(prices, n_train, first, options)
    errors = _tuning_errors(first, run)
    failed = np.zeros(count, dtype=bool)
    failed[list(errors)] = True
    leave |= first.ok & ~failed & ~run["finite"]
    _fail(rows, members, failed & ~leave, "out-of-sample", errors)
    go = first.ok & ~failed & ~leave
    test = prices[:, n_train:]
    os_stat, _, os_ok = _adf(np.matmul(test, weights[:, :, None])[:, :, 0], n - n_train, go)
    leave |= go & ~os_ok
    go &= os_ok
    loglik, spread, status = np.full(count, np.nan), np.empty((count, n - n_train)), np.full(count, -9)
    oos_filter_pairs(
        prices, n_train, go, options.oos_start == "continue", run["out"], run["posterior"], first.hedge0,
        loglik, spread, status,
    )  # fmt: skip
    leave |= go & (status != OK)
    go &= status == OK
    o_stat, o_lags, o_ok = _adf(spread, n - n_train, go)
    leave |= go & ~o_ok
    go &= o_ok
    pos = members[go]
    rows.put("oos_static_adf_pvalue", pos, _pvalues(os_stat[go]))
    rows.put("oos_alpha11", pos, run["out"][go, 0])
    rows.put("oos_adf_pvalue", pos, _pvalues(o_stat[go]))
    rows.put("oos_adf_lags", pos, o_lags[go])
    rows.put("oos_loglik", pos, loglik[go])
    # _check_finite: a row that ends with a non-finite figure (an infinite half-life excepted) is
    # a failed row of the plain path
    figures = [c for c in rows.columns if c not in _STRINGS and c not in _INTS and c not in _BOOLS and c != "assets"]
    table = np.column_stack([rows.data[c][pos] for c in figures])
    infinite_ok = np.array([c == "static_half_life" for c in figures])
    bad = ~(np.isfinite(table) | (infinite_ok & (table > 0)))
    leave[np.flatnonzero(go)[bad.any(axis=1)]] = True

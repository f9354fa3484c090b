"""The screen's batch path for pairs (kalcoint._screen_pairs) against the plain per-basket path.

Held: on a generated universe whose assets start on their own dates (short pairs, pairs of
every status, a constant price the plain path refuses), every column of every row of the batch
path equals :func:`kalcoint.screen.evaluate_basket`'s row, bit for bit (the seed passes turn a
change in the last bit of their start into whole percents, so nothing less is accepted); and the
compiled pieces it rests on equal the plain loops they replace: the seed passes for k = 2 in one
sweep a pass, four pairs side by side, and the ADF's window sums four windows at a time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import kalcoint._screen_pairs as screen_pairs
from kalcoint import KalcointError, johansen
from kalcoint._kernels import adf as adf_kernels
from kalcoint._kernels import seed_passes_arrays, seed_passes_k2, tune_pairs
from kalcoint.screen import ScreenOptions, Universe, _basket_indices, _typed, batch_table, evaluate_basket
from kalcoint.synthetic import universe
from kalcoint.tuning.seed import first_pass_model


@pytest.fixture(scope="module")
def panel() -> Universe:
    """16 generated assets over 700 days: two start 150 days late, one 500 days late (its pairs
    are short), one has a constant price over its first 500 days (Johansen refuses its tuning
    rows out of sample), one a price beyond MAX_PRICE (Johansen refuses it): the plain path
    writes the rows of the last two."""
    prices = universe(16, 700, planted=[2, 2, 3], seed=11).prices.copy()
    prices.iloc[:150, [3, 9]] = np.nan
    prices.iloc[:500, 12] = np.nan
    prices.iloc[:500, 6] = prices.iloc[0, 6]
    prices.iloc[650, 15] = 1e51
    return Universe.from_frame(prices)


def _plain(panel: Universe, pairs: list[tuple[int, ...]], options: ScreenOptions) -> pd.DataFrame:
    return _typed(pd.DataFrame([evaluate_basket(panel, b, options) for b in pairs]), 2)


@pytest.mark.parametrize(
    "options",
    [
        ScreenOptions(size=2, min_rows=300),
        ScreenOptions(size=2, min_rows=300, oos_start="prior", iterations=12, tol=1e-3, train_fraction=0.6),
    ],
    ids=["default", "prior-tol"],
)
def test_batch_rows_equal_plain_rows(panel, options, monkeypatch):
    pairs = _basket_indices(list(panel.assets), 2, "all")
    plain_calls = []

    def counted(*args, **kwargs):
        plain_calls.append(args[1])
        return evaluate_basket(*args, **kwargs)

    monkeypatch.setattr(screen_pairs, "evaluate_basket", counted)
    fast = batch_table(panel, pairs, options)
    monkeypatch.undo()
    pd.testing.assert_frame_equal(fast, _plain(panel, pairs, options), check_exact=True)
    statuses = set(fast["status"])
    reasons = {r.split(":")[0] for r in fast["reason"] if r}
    assert statuses == {"ok", "short", "failed"} and {"tuning", "out-of-sample"} <= reasons
    # most pairs take the batch path; the constant and the huge price send some to the plain path
    assert {6, 15} <= {a for pair in plain_calls for a in pair} and len(plain_calls) < len(pairs) / 4


def test_batch_of_one_and_of_none(panel):
    options = ScreenOptions(size=2, min_rows=300)
    pair = [(0, 1)]
    pd.testing.assert_frame_equal(batch_table(panel, pair, options), _plain(panel, pair, options), check_exact=True)
    empty = batch_table(panel, [], options)
    assert len(empty) == 0 and list(empty.columns) == list(_plain(panel, pair, options).columns)


def _seed_inputs(panel: Universe, pair: tuple[int, int], rows: int):
    prices = np.ascontiguousarray(panel.values[-rows:, list(pair)])
    jres = johansen(prices)
    first = first_pass_model(prices, jres.weights)
    w = jres.weights
    bm = np.array([np.mean(prices @ w) / w[0], -w[1] / w[0]])
    return prices, first, bm


def _tunable(panel: Universe, rows: int, count: int) -> list:
    """The first ``count`` pairs of full-history assets whose first pass gives a model."""
    found = []
    for pair in _basket_indices(list(panel.assets), 2, "first"):
        if {3, 6, 9, 12, 15} & set(pair):
            continue
        try:
            found.append(_seed_inputs(panel, pair, rows))
        except KalcointError:
            continue
        if len(found) == count:
            break
    return found


@pytest.mark.parametrize("tol", [0.0, 1e-4])
def test_seed_passes_k2_equal_array_passes(panel, tol):
    """The k = 2 sweep (filter, re-estimate and history sums in one loop) against the filter
    followed by the re-estimate, every output bit for bit, over pairs that run all passes,
    converge, or break down."""
    n, iterations = 550, 30
    codes = set()
    for prices, first, bm in _tunable(panel, n, 10):
        y = np.ascontiguousarray(prices[:, 0])
        x = prices.copy()
        x[:, 0] = 1.0
        runs = []
        for kernel in ("arrays", "k2"):
            outs = [np.full((iterations, 4), np.nan), np.full((n, 2), np.nan), np.full(n, np.nan), np.full(n, np.nan)]
            model = np.full(6, np.nan)
            start = (y, x, first.alpha11, first.obs_var, first.state_var.copy(), first.initial_state.copy())
            if kernel == "arrays":
                flags = (False, False, False, False, False, iterations, tol)
                result = seed_passes_arrays(*start, first.initial_cov.copy(), bm, *flags, *outs, model)
            else:
                result = seed_passes_k2(
                    *start, first.initial_cov.copy(), bm, iterations, tol, True, *outs, model, np.empty(5)
                )
            runs.append((result, outs, model))
        (r_a, outs_a, m_a), (r_k, outs_k, m_k) = runs
        assert r_a == r_k
        codes.add(int(r_a[1]))
        assert np.array_equal(m_a, m_k, equal_nan=True)
        for a, b in zip(outs_a, outs_k):
            assert np.array_equal(a, b, equal_nan=True)
    assert codes == ({0, -1} if tol == 0.0 else {0, 1, -1})


def test_tune_pairs_side_by_side_equal_one_at_a_time(panel):
    """Four pairs side by side, a lane taking the next pair when its own ends, against
    :func:`seed_passes_k2` one pair at a time: passes, status, quantities, last posterior, the
    last pass's innovation variances and dynamic portfolio, bit for bit."""
    n, iterations = 550, 30
    inputs = _tunable(panel, n, 11)
    count = len(inputs)
    prices = np.stack([p for p, _, _ in inputs])
    select = np.ones(count, dtype=bool)
    select[3] = False
    first = [f for _, f, _ in inputs]
    outputs = {
        "passes": np.zeros(count, dtype=np.int64),
        "status": np.zeros(count, dtype=np.int64),
        "out": np.full((count, 6), np.nan),
        "posterior": np.full((count, 5), np.nan),
        "innov_var": np.full((count, n), np.nan),
        "spread": np.full((count, n), np.nan),
        "finite": np.zeros(count, dtype=bool),
    }
    tune_pairs(
        prices,
        n,
        select,
        np.array([f.alpha11 for f in first]),
        np.array([f.obs_var for f in first]),
        np.array([f.state_var[0] for f in first]),
        np.array([f.initial_state[1] for f in first]),
        np.array([f.initial_cov for f in first]),
        np.array([bm for _, _, bm in inputs]),
        iterations,
        0.0,
        *outputs.values(),
    )
    assert outputs["status"][3] == -9 and {0, -1} <= set(outputs["status"][select].tolist())
    for i in np.flatnonzero(select):
        p, f, bm = inputs[i]
        y = np.ascontiguousarray(p[:, 0])
        x = p.copy()
        x[:, 0] = 1.0
        b_filt, innov, innov_var, model, post = np.empty((n, 2)), np.empty(n), np.empty(n), np.empty(6), np.empty(5)
        start = (y, x, f.alpha11, f.obs_var, f.state_var.copy(), f.initial_state.copy(), f.initial_cov.copy(), bm)
        passes, status = seed_passes_k2(
            *start, iterations, 0.0, False, np.empty((iterations, 4)), b_filt, innov, innov_var, model, post
        )
        assert (outputs["passes"][i], outputs["status"][i]) == (passes, status)
        assert np.array_equal(outputs["out"][i], model)
        if status == 0:
            assert outputs["finite"][i]
            assert np.array_equal(outputs["posterior"][i], post)
            assert np.array_equal(outputs["innov_var"][i], innov_var)
            assert np.array_equal(outputs["spread"][i], y - (0.0 + x[:, 1] * b_filt[:, 1]))


def test_window_products_equal_plain_sums():
    """The ADF's lagged-difference cross products, four windows at a time, against plain Python
    sums in the order of the rows (Python floats are IEEE doubles: the same bits)."""
    rng = np.random.default_rng(5)
    for nlags in (0, 1, 3, 4, 7, 24):
        x = np.cumsum(rng.normal(size=300))
        n = x.size
        m = n - 1 - nlags
        diff = np.diff(x)
        level = x[nlags : n - 1] - x[nlags : n - 1].mean()
        raw, cross = np.zeros((nlags + 1, nlags + 1)), np.zeros(nlags + 1)
        adf_kernels.window_products(diff, level, nlags, m, raw, cross)
        for w in range(nlags + 1):
            a = c = 0.0
            for r in range(m):
                a += float(diff[nlags + r]) * float(diff[nlags - w + r])
                c += float(level[r]) * float(diff[nlags - w + r])
            assert raw[0, w] == a and cross[w] == c

"""Trading rules: Chan's bands, the linear rule, moving windows, the half-life lookback, shares.

Held: the bands rule equals Chan's code (with its hysteresis, its scale and NaN carry) and refuses
bad thresholds; moving means and standard deviations equal pandas' rolling ones, also with a
lookback that changes by day; z-scores, linear units, lookbacks from half-lives, shares and dollar
positions equal hand computations.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kalcoint.errors import KalcointError
from kc_reference import chan_matlab_units
from kalcoint.strategy import (
    bands,
    dollar_positions,
    filter_shares,
    linear,
    lookback_from_half_life,
    moving_mean_std,
    static_shares,
    zscore,
)


def test_bands_hand_series_with_hysteresis():
    # entry 1, exit 0.5 (scale 1): long below -1 until >= -0.5; short above 1 until <= 0.5
    dev = np.array([0.0, -1.2, -0.8, -0.6, -0.4, 0.7, 1.1, 0.9, 0.6, 0.5, -2.0, 3.0])
    units = bands(dev, np.ones_like(dev), entry=1.0, exit=0.5)
    np.testing.assert_array_equal(units, [0, 1, 1, 1, 0, 0, -1, -1, -1, 0, 1, -1])


def test_bands_scale_and_nan_carry():
    dev = np.array([-3.0, np.nan, -1.0, 0.0])
    scale = np.array([2.0, 2.0, 2.0, 2.0])  # entry at |dev| > 2, exit at |dev| <= 2 (exit = entry = 1)
    np.testing.assert_array_equal(bands(dev, scale, 1.0, 1.0), [1, 1, 0, 0])


def test_bands_equal_chans_code_on_random_innovations():
    rng = np.random.default_rng(7)
    e = rng.normal(size=2000)
    sq = rng.uniform(0.5, 1.5, size=2000)
    np.testing.assert_array_equal(bands(e, sq, 1.0, 1.0), chan_matlab_units(e, sq))


@pytest.mark.parametrize("entry,exit_", [(1.0, 1.5), (0.0, 0.0), (-1.0, -2.0), (np.nan, 0.0)])
def test_bands_refuse_bad_thresholds(entry, exit_):
    with pytest.raises(KalcointError):
        bands(np.zeros(3), np.ones(3), entry, exit_)


def test_moving_mean_std_equals_pandas_rolling():
    rng = np.random.default_rng(1)
    x = rng.normal(size=300).cumsum()
    mean, std = moving_mean_std(x, 23)
    s = pd.Series(x)
    np.testing.assert_allclose(mean[22:], s.rolling(23).mean().to_numpy()[22:], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(std[22:], s.rolling(23).std().to_numpy()[22:], rtol=1e-10)
    assert np.all(np.isnan(mean[:22])) and np.all(np.isnan(std[:22]))


def test_moving_window_per_day_lookback():
    x = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    mean, std = moving_mean_std(x, np.array([2, 2, 3, 2, 4]))
    np.testing.assert_allclose(mean[1:], [1.5, 7 / 3, 6.0, 7.5])
    np.testing.assert_allclose(std[3], np.std([4.0, 8.0], ddof=1))


def test_zscore_and_linear_units():
    x = np.array([1.0, 2.0, 3.0, 2.0, 6.0])
    z = zscore(x, 3)
    # day 3: window (1, 2, 3): mean 2, std 1 -> z = 1; day 5: (3, 2, 6): mean 11/3, std sqrt(13/3)
    assert np.isnan(z[0]) and np.isnan(z[1])
    assert z[2] == pytest.approx(1.0)
    assert z[4] == pytest.approx((6 - 11 / 3) / np.sqrt(13 / 3))
    u = linear(x, 3)
    np.testing.assert_allclose(u, np.nan_to_num(-z))
    assert u[0] == 0.0 and u[1] == 0.0


def test_lookback_from_half_life():
    rng = np.random.default_rng(3)
    x = np.zeros(5000)
    for t in range(1, x.size):
        x[t] = 0.9 * x[t - 1] + rng.normal()
    lb, hl = lookback_from_half_life(x)
    # the OLS regression dx = c + lambda x_{t-1}, plainly
    lam = np.polyfit(x[:-1], np.diff(x), 1)[0]
    assert hl == pytest.approx(-np.log(2) / lam, rel=1e-10)
    assert lb == round(hl) and 5 <= lb <= 8  # -ln 2 / ln 0.9 = 6.6 days
    fast = np.array([1.0, -1.0] * 50) + 0.01 * rng.normal(size=100)
    assert lookback_from_half_life(fast)[0] == 2  # floor: a moving std needs 2 days
    with pytest.raises(KalcointError, match="lookback"):
        lookback_from_half_life(np.arange(100.0) ** 2)  # not reverting


def test_shares_and_dollar_positions():
    b = np.array([[5.0, 0.5, -2.0], [6.0, 0.6, -1.0]])
    np.testing.assert_allclose(filter_shares(b), [[1.0, -0.5, 2.0], [1.0, -0.6, 1.0]])
    np.testing.assert_allclose(static_shares(np.array([1.0, -0.3]), 2), [[1.0, -0.3], [1.0, -0.3]])
    prices = np.array([[10.0, 20.0, 30.0], [11.0, 21.0, 31.0]])
    pos = dollar_positions(np.array([-1.0, 2.0]), filter_shares(b), prices)
    np.testing.assert_allclose(pos, [[-10.0, 10.0, -60.0], [22.0, -25.2, 62.0]])

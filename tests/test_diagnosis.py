"""The degeneracy diagnosis on EWA/EWC/IGE and on hand-made models."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from kalcoint.filtering import StateSpaceModel, kalman_filter
from kalcoint.tuning import tune
from kalcoint.tuning.diagnosis import (
    FROZEN_RATIO,
    OBS_VAR_TINY,
    STATE_SHARE_MAX,
    diagnose,
    diagnose_model,
    level_half_life,
)

ASSETS = ["EWA", "EWC", "IGE"]


@pytest.fixture(scope="module")
def values(ewa_ewc_ige: pd.DataFrame) -> np.ndarray:
    return ewa_ewc_ige.to_numpy()


@pytest.fixture(scope="module")
def price_change_var(values) -> float:
    return float(np.var(np.diff(values[:, 0])))


@pytest.mark.slow
def test_fires_on_the_seed_methods_collapse(ewa_ewc_ige, price_change_var):
    tuned = tune(ewa_ewc_ige, method="seed", iterations=2000)
    assert tuned.obs_var < 1e-28 and abs(tuned.alpha11) < 1e-4  # the collapse of docs/method.md §9
    assert tuned.degenerate
    reasons = tuned.degenerate_reasons
    assert len(reasons) == 3
    head, tail = reasons[0].split(" is tiny against ")
    assert head.startswith("measurement noise Ve = ") and float(head.split(" = ")[1]) < 1e-28
    assert tail.startswith("the daily price-change variance of EWA (0.24): the filter fits the price exactly")
    assert "dominated by the state term (100% on average)" in reasons[1]
    assert reasons[2].startswith("alpha11 collapsed to ") and "half-life 0.0" in reasons[2]
    d = diagnose(tuned, ewa_ewc_ige.to_numpy())
    assert d.metrics["price_change_var"] == pytest.approx(price_change_var, rel=1e-12)
    assert d.metrics["price_change_var"] == pytest.approx(0.2350, abs=1e-4)
    assert d.metrics["obs_var_ratio"] < 1e-28
    assert 1.0 - d.metrics["state_share"] < 1e-15
    assert d.metrics["level_half_life"] < 0.07
    assert tuned.to_dict()["degenerate"] is True and tuned.to_dict()["degenerate_reasons"] == reasons


def test_fires_within_ten_passes(ewa_ewc_ige):
    """Section 9: Ve falls below 1e-20 within ten passes; the diagnosis says so at pass 10."""
    tuned = tune(ewa_ewc_ige, method="seed", iterations=10)
    assert tuned.obs_var < 1e-20
    assert tuned.degenerate and any("tiny against" in r for r in tuned.degenerate_reasons)
    assert not any("alpha11 collapsed" in r for r in tuned.degenerate_reasons)  # alpha11 = 0.979 still


def test_seed_first_pass_is_not_degenerate(ewa_ewc_ige, values):
    tuned = tune(ewa_ewc_ige, method="seed", iterations=1)
    assert not tuned.degenerate and tuned.degenerate_reasons == []
    d = diagnose(tuned, values)
    assert d.notes == []  # its frozen hedge ratios are the method's static first pass (docs/method.md §4.3)
    assert d.metrics["drift_ratio"][1:] == [0.0, 0.0]
    assert d.metrics["obs_var_ratio"] == pytest.approx(7.5001, abs=1e-3)
    assert d.metrics["state_share"] == pytest.approx(0.2356, abs=1e-3)
    assert d.metrics["level_half_life"] == pytest.approx(301.9, abs=0.5)


@pytest.mark.slow
def test_quiet_on_mle(ewa_ewc_ige, values):
    tuned = tune(ewa_ewc_ige, method="mle")
    assert not tuned.degenerate and tuned.degenerate_reasons == []
    d = diagnose(tuned, values)
    assert d.metrics["obs_var_ratio"] == pytest.approx(0.0717, abs=1e-3)
    assert d.metrics["state_share"] == pytest.approx(0.7834, abs=1e-3)
    assert d.metrics["level_half_life"] == pytest.approx(358, abs=5)
    # MLE puts the EWC hedge ratio on its bound: a static hedge ratio, noted, not degenerate
    assert d.metrics["drift_ratio"][1] < FROZEN_RATIO
    assert len(d.notes) == 1 and "EWC hedge ratio" in d.notes[0]


@pytest.mark.slow
def test_quiet_on_em(ewa_ewc_ige):
    tuned = tune(ewa_ewc_ige, method="em")
    assert not tuned.degenerate and tuned.degenerate_reasons == []


@pytest.mark.parametrize(("assets", "share"), [(["EWC", "EWA"], 0.9707), (ASSETS, 0.9935)])
def test_quiet_on_chans_filter(chan_file, assets, share):
    prices = pd.read_csv(chan_file, index_col=0, parse_dates=True)[assets].dropna()
    d = diagnose_model(StateSpaceModel.chan(len(assets)), prices.to_numpy(), assets=assets)
    assert not d.degenerate and d.reasons == [] and d.notes == []
    assert d.metrics["state_share"] == pytest.approx(share, abs=1e-4)
    assert 1.0 - d.metrics["state_share"] > 50 * (1.0 - STATE_SHARE_MAX)
    assert d.metrics["obs_var_ratio"] > 1000 * OBS_VAR_TINY
    assert math.isinf(d.metrics["level_half_life"])


def _model(alpha11=0.97, obs_var=0.02, state_var=(0.01, 1e-5, 1e-5)):
    return StateSpaceModel(alpha11, obs_var, state_var, [-5.0, 1.38, -0.29], [25.0, 0.8, 0.26])


def test_each_check_on_hand_made_models(values):
    base = diagnose_model(_model(), values, assets=ASSETS)
    assert not base.degenerate and base.notes == []
    d = diagnose_model(_model(alpha11=0.49), values, assets=ASSETS)
    assert d.degenerate and len(d.reasons) == 1 and "alpha11 collapsed to 0.49" in d.reasons[0]
    assert not diagnose_model(_model(alpha11=0.5), values, assets=ASSETS).degenerate  # half-life 1 day
    d = diagnose_model(_model(state_var=(0.0, 1e-5, 1e-5)), values, assets=ASSETS)
    assert d.degenerate and d.reasons == [
        "state variance of the level is 0, so the level gets no new noise: with |alpha11| = 0.97 < 1 it "
        "decays geometrically to zero (half-life 23 days) and no mean-reverting spread is left"
    ]
    d = diagnose_model(_model(alpha11=1.0, state_var=(0.0, 1e-5, 1e-5)), values, assets=ASSETS)
    assert not d.degenerate  # a constant intercept: a static regression level
    d = diagnose_model(_model(state_var=(0.01, 0.0, 1e-5)), values, assets=ASSETS)
    assert not d.degenerate and d.notes == [
        "state variance of the EWC hedge ratio is 0: that hedge ratio is frozen (static)"
    ]
    d = diagnose_model(_model(obs_var=1e-9), values, assets=ASSETS)
    assert d.degenerate and "tiny against" in d.reasons[0] and d.metrics["obs_var_ratio"] < OBS_VAR_TINY
    d = diagnose_model(_model(obs_var=1e-4, state_var=(10.0, 1e-5, 1e-5)), values, assets=ASSETS)
    assert d.degenerate and d.reasons[-1].startswith("the innovation variance is dominated by the state term")
    assert d.metrics["obs_var_ratio"] > OBS_VAR_TINY


def test_metrics_match_their_definitions(values):
    model = _model()
    result = kalman_filter(values, model)
    d = diagnose_model(model, values, assets=ASSETS, result=result)
    scale = np.var(np.diff(values[:, 0]))
    q = result.innovation_var
    assert d.metrics["state_share"] == pytest.approx(np.mean(1.0 - model.obs_var / q), rel=1e-12)
    assert d.metrics["obs_var_ratio"] == pytest.approx(0.02 / scale, rel=1e-12)
    drift = [
        values.shape[0] * 0.01 / scale,
        values.shape[0] * 1e-5 * np.mean(values[:, 1] ** 2) / scale,
        values.shape[0] * 1e-5 * np.mean(values[:, 2] ** 2) / scale,
    ]
    assert d.metrics["drift_ratio"] == pytest.approx(drift, rel=1e-12)
    assert d.metrics["level_half_life"] == pytest.approx(math.log(0.5) / math.log(0.97), rel=1e-12)
    assert level_half_life(0.0) == 0.0 and level_half_life(-0.5) == pytest.approx(1.0)
    assert math.isinf(level_half_life(1.0))

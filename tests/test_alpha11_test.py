"""The likelihood-ratio test of alpha11 = 1 (a random-walk level) against alpha11 free, with its
parametric bootstrap p-value.

Held: the statistic, the two log-likelihoods and alpha11's estimate on EWA/EWC/IGE equal our
recorded figures; the fit with alpha11 fixed at 1 is the free fit on that boundary; the bootstrap's
draws do not depend on the number of workers; the null simulation has the model's moments;
a stationary level is rejected; bad options are refused; ``kalcoint compare`` reports the test in
its JSON. The size of the test under a true unit root (rejections in about 5% of seeds) is
measured by ``benchmarks/bench_alpha11_size.py`` (40 seeds, B = 99).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from kalcoint.alpha_test import alpha11_test, lr_statistic, simulate_null
from kalcoint.cointegration import johansen
from kalcoint.errors import KalcointError
from kalcoint.filtering import StateSpaceModel, kalman_filter
from kalcoint.synthetic import simulate
from kalcoint.tuning import mle

# Figures of our runs on EWA, EWC, IGE (1500 days); MLE's free optimum is in test_mle_em.
MLE_LOGLIK = -223.85833
NULL_LOGLIK = -224.43131


@pytest.fixture(scope="module")
def ewa_test(ewa_ewc_ige):
    return alpha11_test(ewa_ewc_ige, bootstrap=19, seed=0, workers=1)


def test_statistic_on_ewa_ewc_ige(ewa_ewc_ige, ewa_test):
    t = ewa_test
    assert t.loglik_free == pytest.approx(MLE_LOGLIK, abs=2e-4)
    assert t.alpha11_hat == pytest.approx(0.998066, abs=2e-5)
    assert t.loglik_null == pytest.approx(NULL_LOGLIK, abs=2e-4)
    assert t.null_model.alpha11 == 1.0
    assert t.lr_stat == pytest.approx(2 * (MLE_LOGLIK - NULL_LOGLIK), abs=5e-4)
    # the null is the maximum over the variances with alpha11 = 1: nudging any one of them lowers it
    best = kalman_filter(ewa_ewc_ige, t.null_model).loglik
    for i in (0, 2):
        for f in (0.98, 1.02):
            vw = t.null_model.state_var.copy()
            vw[i] *= f
            m = StateSpaceModel(1.0, t.null_model.obs_var, vw, t.null_model.initial_state, t.null_model.initial_cov)
            assert kalman_filter(ewa_ewc_ige, m).loglik < best
    # p = (1 + #{LR_b >= LR}) / (B + 1)
    assert t.p_value == (1 + np.sum(t.bootstrap_stats >= t.lr_stat)) / 20
    assert t.p_value == pytest.approx(0.25)
    assert t.to_dict() == {"lr_stat": t.lr_stat, "p_value": 0.25, "bootstrap": 19, "alpha11_hat": t.alpha11_hat}


def test_fixed_alpha11_mle_is_the_free_fit_on_the_boundary(ewa_ewc_ige):
    values = ewa_ewc_ige.to_numpy()
    jres = johansen(values)
    near = mle.fit(values, jres, fixed_alpha11=0.998066)
    free = mle.fit(values, jres)
    # holding alpha11 at the free optimum gives back the free optimum
    assert kalman_filter(values, near.model).loglik == pytest.approx(MLE_LOGLIK, abs=2e-4)
    assert near.model.obs_var == pytest.approx(free.model.obs_var, rel=1e-3)
    assert near.options["fixed_alpha11"] == 0.998066


@pytest.mark.slow
def test_bootstrap_is_deterministic_across_workers(ewa_ewc_ige, ewa_test):
    again = alpha11_test(ewa_ewc_ige, bootstrap=19, seed=0, workers=2)
    assert np.array_equal(again.bootstrap_stats, ewa_test.bootstrap_stats)
    other = alpha11_test(ewa_ewc_ige, bootstrap=19, seed=1, workers=1)
    assert not np.array_equal(other.bootstrap_stats, ewa_test.bootstrap_stats)


@pytest.mark.slow
def test_null_simulation_has_the_model_moments(ewa_ewc_ige):
    """Draws of y_t - x_t b0 under the null: mean 0 and variance x_t P0 x_t' + (t - 1) x_t Vw x_t'
    + Ve at day t (a random walk from the prior), checked on 4000 draws at three days."""
    values = ewa_ewc_ige.to_numpy()[:200]
    model = StateSpaceModel(1.0, 0.02, [0.03, 1e-5, 2e-5], [-5.0, 1.4, -0.3], [4.0, 0.05, 0.02])
    rng = np.random.default_rng(7)
    draws = np.array([simulate_null(values, model, rng)[:, 0] for _ in range(4000)])
    x = values.copy()
    x[:, 0] = 1.0
    for t in (0, 50, 199):
        dev = draws[:, t] - x[t] @ model.initial_state
        var = x[t] ** 2 @ model.initial_cov + t * (x[t] ** 2 @ model.state_var) + model.obs_var
        assert abs(dev.mean()) < 4 * np.sqrt(var / 4000)
        assert dev.var() == pytest.approx(var, rel=0.1)
    assert np.array_equal(simulate_null(values, model, rng)[:, 1:], values[:, 1:])  # x_t kept


@pytest.mark.slow
def test_rejects_a_stationary_level():
    """Truth alpha11 = 0.95 (the demo's model, n = 1500). Our run: LR 17.64, alpha11_hat 0.9539,
    largest of the 99 null statistics 6.61."""
    prices, _ = simulate(seed=11)
    t = alpha11_test(prices, bootstrap=99, seed=0)
    assert t.alpha11_hat == pytest.approx(0.95, abs=0.03)
    assert t.p_value == pytest.approx(0.01) and t.rejects(0.05)
    assert t.lr_stat == pytest.approx(17.637, abs=1e-2)
    assert t.lr_stat > 2 * np.nanmax(t.bootstrap_stats) and t.failed == 0


def test_bad_options_are_refused(ewa_ewc_ige):
    with pytest.raises(KalcointError, match="bootstrap -1"):
        alpha11_test(ewa_ewc_ige, bootstrap=-1)
    with pytest.raises(KalcointError, match="workers 0"):
        alpha11_test(ewa_ewc_ige, bootstrap=9, workers=0)
    assert lr_statistic(-10.0, -9.0) == 0.0
    with pytest.raises(KalcointError, match="no bootstrap p-value"):
        alpha11_test(ewa_ewc_ige, bootstrap=0).rejects()


@pytest.mark.slow
def test_compare_json_reports_the_test(run_cli, chan_file, tmp_path, ewa_test):
    out = tmp_path / "c.json"
    res = run_cli(
        "compare", chan_file, "--assets", "EWA,EWC,IGE", "--iterations", "5", "--bootstrap", "19", "--json", out
    )
    assert res.exit_code == 0, res.stderr
    d = json.loads(out.read_text())["alpha11_test"]
    assert set(d) == {"lr_stat", "p_value", "bootstrap", "alpha11_hat"}
    assert d["bootstrap"] == 19 and d["p_value"] == pytest.approx(0.25)
    assert d["lr_stat"] == pytest.approx(2 * (MLE_LOGLIK - NULL_LOGLIK), abs=5e-4)
    assert d["alpha11_hat"] == pytest.approx(0.998066, abs=2e-5)
    assert "LR 1.146" in res.stdout


def test_compare_refuses_a_negative_bootstrap(run_cli, chan_file, tmp_path):
    res = run_cli("compare", chan_file, "--assets", "EWA,EWC,IGE", "--bootstrap", "-1", "--json", tmp_path / "c.json")
    assert res.exit_code == 2 and "--bootstrap" in res.stderr
    assert not list(tmp_path.iterdir())

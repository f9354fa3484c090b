"""The seed method's passes (docs/method.md §4, §5 and §10): hand computations, the plain NumPy
reference, and the collapse law (docs/findings.md)."""

from __future__ import annotations

import functools
import math
import sys
from decimal import Decimal, localcontext
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kc_reference import RefRun, ref_first_pass, ref_seed  # noqa: E402

from kalcoint import ComputationError, JohansenResult, KalcointError, datasets, johansen, kalman_filter  # noqa: E402
from kalcoint.tuning import tune  # noqa: E402
from kalcoint.tuning.seed import SeedOptions, first_pass_model, johansen_path, run_seed_passes  # noqa: E402

EPS = np.finfo(np.float64).eps


def load(assets: list[str]) -> pd.DataFrame:
    prices = pd.read_csv(datasets.path("chan_etf"), index_col=0, parse_dates=True)
    return prices[assets].dropna()


def weights_only(w) -> JohansenResult:
    """A JohansenResult carrying given weights (the passes use nothing else)."""
    w = np.asarray(w, dtype=np.float64)
    k = w.size
    z = np.zeros(k)
    return JohansenResult([f"x{i + 1}" for i in range(k)], w, z, z, z, np.zeros((k, 3)), np.zeros((k, 3)), 0)


# --------------------------------------------------------------------------------------------
# A tiny series by hand: k = 2, n = 5, Johansen weights w = (1, -2) given.
#   p1 = 5 7 6 8 9,  p2 = 2 3 3 4 4,  y_port = p1 - 2 p2 = 1 1 0 0 1,  bJ = (y_port, 2)
# --------------------------------------------------------------------------------------------
P1 = [5, 7, 6, 8, 9]
P2 = [2, 3, 3, 4, 4]
TINY = np.array([P1, P2], dtype=np.float64).T
W = np.array([1.0, -2.0])


def test_first_pass_by_hand():
    assert johansen_path(TINY, W).tolist() == [[1, 2], [1, 2], [0, 2], [0, 2], [1, 2]]
    m = first_pass_model(TINY, W)
    # 4.1  a11 = (1*1 + 0*1 + 0*0 + 1*0) / (1 + 1 + 0 + 0) = 1/2
    assert m.alpha11 == 0.5
    # 4.2  Ve = mean(bJ1^2) - mean(bJ1)^2 = 3/5 - 9/25 = 6/25
    assert m.obs_var == pytest.approx(6 / 25, rel=1e-15)
    # 4.3  Gamma = diag(3/5, 4);  Vw = diag(Gamma - A Gamma A') = ((1 - 1/4) 3/5, 4 - 4) = (9/20, 0)
    assert m.state_var.tolist() == pytest.approx([9 / 20, 0.0], rel=1e-15, abs=0)
    # 4.4  b0 = (0, -w2/w1) = (0, 2)
    assert m.initial_state.tolist() == [0.0, 2.0]
    # 4.5  rows x_t A = (1/2, p2_t):  M = [[1/4, mean p2], [mean p2, mean p2^2]] = [[1/4, 8/5], [8/5, 54/5]]
    #      det = 54/20 - 64/25 = 7/50;  diag inv(M) = (54/5 / (7/50), 1/4 / (7/50)) = (540/7, 25/14)
    #      P0 = Ve diag inv(M) = (6/25 * 540/7, 6/25 * 25/14) = (648/35, 3/7)
    assert m.initial_cov.tolist() == pytest.approx([648 / 35, 3 / 7], rel=1e-14)


def test_first_pass_by_hand_alpha_held_at_one():
    m = first_pass_model(TINY, W, fix_alpha11=1.0)
    assert m.alpha11 == 1.0
    assert m.state_var.tolist() == [0.0, 0.0]  # (1 - 1) Gamma_11, and 4 - 4
    # M = [[1, 16/5], [16/5, 54/5]], det = 14/25, diag inv = (135/7, 25/14); P0 = 6/25 * that
    assert m.initial_cov.tolist() == pytest.approx([162 / 35, 3 / 7], rel=1e-14)


def D(num, den=1) -> Decimal:
    """num/den in 50-digit decimal arithmetic (exact for the figures of the first pass; for the
    later passes 1e-50 relative, i.e. exact as far as float64 can tell)."""
    return Decimal(num) / Decimal(den)


def exact_filter_k2(a11, ve, vw1, vw2, b0, p0):
    """docs/method.md §3 for k = 2 in 50-digit arithmetic, written out entry by entry."""
    b1, b2 = b0
    P11, P12, P22 = p0[0], D(0), p0[1]
    states, innov, qs = [], [], []
    for t in range(5):
        x2, y = D(P2[t]), D(P1[t])
        if t == 0:
            c1, c2, q11, q12, q22 = b1, b2, P11, P12, P22
        else:
            c1, c2 = a11 * b1, b2
            q11, q12, q22 = a11 * a11 * P11 + vw1, a11 * P12, P22 + vw2
        e = y - c1 - x2 * c2
        g1, g2 = q11 + q12 * x2, q12 + q22 * x2  # P_pred x'
        Q = g1 + x2 * g2 + ve
        b1, b2 = c1 + g1 / Q * e, c2 + g2 / Q * e
        P11, P12, P22 = q11 - g1 * g1 / Q, q12 - g1 * g2 / Q, q22 - g2 * g2 / Q
        states.append((b1, b2))
        innov.append(e)
        qs.append(Q)
    return states, innov, qs


def exact_next_pass(states, innov, residual, bm):
    """docs/method.md §5 for k = 2 in 50-digit arithmetic (b0 = (0, 2) every pass)."""
    n = 5
    b1 = [s[0] for s in states]
    b2 = [s[1] for s in states]
    a11 = sum(b1[t] * b1[t - 1] for t in range(1, n)) / sum(b1[t - 1] ** 2 for t in range(1, n))
    if residual == "posterior":
        ve = sum((P1[t] - b1[t] - P2[t] * b2[t]) ** 2 for t in range(n)) / n
    else:
        ve = sum(e * e for e in innov) / n
    gamma11 = sum(v * v for v in b1) / n
    vw1 = (1 - a11 * a11) * gamma11  # replaces the (b_{t+1} - A b_t) estimate of Vw_11
    vw2 = sum((b2[t + 1] - b2[t]) ** 2 for t in range(n - 1)) / (n - 1)
    c1, c2 = (D(3, 5), D(2)) if bm == "johansen" else (sum(b1) / n, sum(b2) / n)  # mean y_port = 3/5
    p01 = sum((v - c1) ** 2 for v in b1) / (n - 1)
    p02 = sum((v - c2) ** 2 for v in b2) / (n - 1)
    return a11, ve, vw1, vw2, p01, p02


def exact_loglik(innov, qs):
    two_pi = 2 * D("3.14159265358979323846264338327950288419716939937510")
    return float(-sum((two_pi * q).ln() + e * e / q for e, q in zip(innov, qs)) / 2)


@pytest.mark.parametrize("residual,bm", [("posterior", "johansen"), ("prior", "johansen"), ("posterior", "sample")])
def test_passes_two_and_three_by_hand(residual, bm):
    with localcontext() as ctx:
        ctx.prec = 50
        passes = exact_passes(residual, bm)
    check_runs_against(passes, residual, bm)


def exact_passes(residual, bm):
    model = (D(1, 2), D(6, 25), D(9, 20), D(0), (D(648, 35), D(3, 7)))  # the first pass, above
    b0 = (D(0), D(2))
    passes = []
    for _ in range(3):
        a11, ve, vw1, vw2, p0 = model
        states, innov, qs = exact_filter_k2(a11, ve, vw1, vw2, b0, p0)
        passes.append((model, states, exact_loglik(innov, qs)))
        a11, ve, vw1, vw2, p01, p02 = exact_next_pass(states, innov, residual, bm)
        model = (a11, ve, vw1, vw2, (p01, p02))
    return passes


def check_runs_against(passes, residual, bm):
    opts = SeedOptions(residual=residual, bm=bm)
    for n_pass in (1, 2, 3):
        run = run_seed_passes(TINY, weights_only(W), iterations=n_pass, options=opts)
        (a11, ve, vw1, vw2, p0), states, loglik = passes[n_pass - 1]
        m = run.model
        assert run.iterations == n_pass and not run.converged
        assert m.alpha11 == pytest.approx(float(a11), rel=1e-13)
        assert m.obs_var == pytest.approx(float(ve), rel=1e-12)
        assert m.state_var.tolist() == pytest.approx([float(vw1), float(vw2)], rel=1e-12, abs=0)
        assert m.initial_state.tolist() == [0.0, 2.0]
        assert m.initial_cov.tolist() == pytest.approx([float(p0[0]), float(p0[1])], rel=1e-12)
        np.testing.assert_allclose(run.filtered_state, np.array(states, dtype=float), rtol=1e-12)
        assert run.history[-1, 2] == pytest.approx(loglik, rel=1e-12)
        assert run.history[:, 0].tolist() == pytest.approx([float(p[0][0]) for p in passes[:n_pass]], rel=1e-13)
    # a few of the hand figures, to see them move: pass 2 re-estimated from pass 1's states
    if (residual, bm) == ("posterior", "johansen"):
        assert float(passes[1][0][0]) == pytest.approx(0.3944846743644214, rel=1e-12)
        assert float(passes[1][0][1]) == pytest.approx(0.01663368379117659, rel=1e-12)
        assert float(passes[2][0][1]) == pytest.approx(0.0011677874997545654, rel=1e-12)


# --------------------------------------------------------------------------------------------
# Real data against the plain NumPy reference (tests/kc_reference.py).
# --------------------------------------------------------------------------------------------


def assert_pass_equal(run, ref: RefRun, n_pass: int, y_max: float, rtol: float = 1e-10, vw_atol: float = 0.0) -> None:
    """The model and states of kalcoint's run of ``n_pass`` passes equal the reference's pass ``n_pass``."""
    m, rm, rf = run.model, ref.models[n_pass - 1], ref.filters[n_pass - 1]
    # a11 is dimensionless and O(1); once the method drives it to ~0 (§9), compare absolutely at
    # 1e-14 (observed differences stay below 1e-16 there).
    assert m.alpha11 == pytest.approx(rm.a11, rel=rtol, abs=1e-14)
    # Ve: after the collapse of §9 (pass ~8 on EWA/EWC/IGE) Ve is the mean square of rounding
    # noise in y_t - x_t.b_t (~1e-30, while |y| ~ 30): its digits are noise, different for any change
    # of summation order (observed: 0.5 relative). Compare it relatively while it is above the noise
    # floor (64 eps max|y|)^2, else require only that both are at that floor.
    floor = (64 * EPS * y_max) ** 2
    assert m.obs_var == pytest.approx(rm.Ve, rel=rtol, abs=floor)
    np.testing.assert_allclose(m.state_var, np.diag(rm.Vw), rtol=rtol, atol=vw_atol)
    np.testing.assert_allclose(m.initial_state, rm.b0, rtol=1e-15, atol=0)
    np.testing.assert_allclose(m.initial_cov, np.diag(rm.P0), rtol=rtol, atol=0)
    scale = np.max(np.abs(rf.b_filt), axis=0)
    assert np.max(np.abs(run.filtered_state - rf.b_filt) / scale) < rtol
    assert run.history[-1, 2] == pytest.approx(rf.loglik, rel=rtol)
    np.testing.assert_allclose(run.history[:, 0], [r.a11 for r in ref.models[:n_pass]], rtol=rtol, atol=1e-14)


BASKETS = [["EWA", "EWC"], ["EWA", "EWC", "IGE"], ["EWA", "EWC", "IGE", "EEM"]]


@functools.lru_cache(maxsize=None)
def reference_run(assets: tuple[str, ...], passes: int = 3):
    """Prices, Johansen result and the reference's first ``passes`` passes (3 take about 0.3 s,
    50 about 5 s; shared by the tests)."""
    prices = load(list(assets)).to_numpy()
    jres = johansen(prices)
    return prices, jres, ref_seed(prices, jres.weights, passes)


@pytest.fixture(params=BASKETS, ids=lambda a: "-".join(a))
def basket_ref(request):
    return reference_run(tuple(request.param))


@pytest.mark.parametrize(
    "n_pass", [1, 2, 3, pytest.param(10, marks=pytest.mark.slow), pytest.param(50, marks=pytest.mark.slow)]
)
@pytest.mark.parametrize("assets", BASKETS, ids=lambda a: "-".join(a))
def test_passes_match_reference(assets, n_pass):
    prices, jres, ref = reference_run(tuple(assets), max(n_pass, 3))
    run = run_seed_passes(prices, jres, iterations=n_pass)
    assert run.iterations == n_pass and not run.converged
    assert_pass_equal(run, ref, n_pass, np.max(np.abs(prices[:, 0])))
    # the factor of the collapse law, mean e_t^2 / Q_t^2 of each pass, against the reference's filters
    expected = [np.mean(f.e**2 / f.Q**2) for f in ref.filters[:n_pass]]
    np.testing.assert_allclose(run.history[:, 3], expected, rtol=1e-10)


@pytest.mark.slow
def test_collapse_figures_ewa_ewc_ige():
    """docs/method.md §9 on the triplet: Ve below 1e-20 within ten passes; a11 ends near 0."""
    prices, jres, ref = reference_run(("EWA", "EWC", "IGE"), 50)
    ves = [m.Ve for m in ref.models]
    assert ves[0] == pytest.approx(1.7626442562566154, rel=1e-10)
    assert ves[1] == pytest.approx(0.07831871327274266, rel=1e-10)
    assert max(ves[9:]) < 1e-20
    assert ref.models[-1].a11 == pytest.approx(-1.98603976e-05, rel=1e-6)


OPTIONS = {
    "prior": SeedOptions(residual="prior"),
    "sample": SeedOptions(bm="sample"),
    "alpha1": SeedOptions(fix_alpha11=1.0),
}


@pytest.mark.parametrize("name", [n if n == "prior" else pytest.param(n, marks=pytest.mark.slow) for n in OPTIONS])
def test_options_match_reference(name):
    opts = OPTIONS[name]
    prices = load(["EWA", "EWC", "IGE"]).to_numpy()
    jres = johansen(prices)
    ref = ref_seed(prices, jres.weights, 10, residual=opts.residual, bm=opts.bm, fixed_alpha11=opts.fix_alpha11)
    for n_pass in (1, 2, 3, 10):
        run = run_seed_passes(prices, jres, iterations=n_pass, options=opts)
        assert_pass_equal(run, ref, n_pass, np.max(np.abs(prices[:, 0])))
    if name == "alpha1":
        assert all(m.a11 == 1.0 and m.Vw[0, 0] == 0.0 for m in ref.models)


@pytest.mark.slow
def test_tol_stop_matches_reference():
    # residual="prior" does not collapse, so the relative changes fall smoothly (with the posterior
    # residual Ve becomes rounding noise whose relative change stays ~0.1, §9, and a tol stop
    # there depends on that noise).
    prices = load(["EWA", "EWC", "IGE"]).to_numpy()
    jres = johansen(prices)
    opts = SeedOptions(residual="prior")
    ref = ref_seed(prices, jres.weights, 2000, tol=1e-4, residual="prior")
    assert ref.converged and ref.passes == 38
    run = run_seed_passes(prices, jres, iterations=2000, tol=1e-4, options=opts)
    assert run.converged and run.iterations == 38 and run.history.shape == (38, 4)
    assert_pass_equal(run, ref, 38, np.max(np.abs(prices[:, 0])))
    assert run.model.alpha11 == pytest.approx(0.9769622559457075, rel=1e-10)
    # not converged within fewer passes than it needs
    short = run_seed_passes(prices, jres, iterations=37, tol=1e-4, options=opts)
    assert short.iterations == 37 and not short.converged
    tuned = tune(load(["EWA", "EWC", "IGE"]), iterations=2000, tol=1e-4, residual="prior", diagnose=False)
    assert tuned.converged and tuned.iterations == 38 and tuned.to_dict()["iterations"] == 38
    assert tuned.alpha11 == pytest.approx(run.model.alpha11, rel=1e-12)


def test_one_pass_is_the_first_pass_model():
    prices = load(["EWA", "EWC", "IGE"])
    values = prices.to_numpy()
    jres = johansen(values)
    first = first_pass_model(values, jres.weights)
    run = run_seed_passes(values, jres, iterations=1)
    tuned = tune(prices, iterations=1)
    # equal up to the rounding of the matrix products (run_seed_passes makes the panel C-contiguous);
    # Vw_11 = (1 - a11^2) Gamma_11 loses two digits to the cancellation in 1 - a11^2 (a11 = 0.9977)
    for m in (run.model, tuned.model):
        assert m.alpha11 == pytest.approx(first.alpha11, rel=1e-14)
        assert m.obs_var == pytest.approx(first.obs_var, rel=1e-14)
        np.testing.assert_allclose(m.state_var, first.state_var, rtol=1e-11, atol=0)
        np.testing.assert_array_equal(m.initial_state, first.initial_state)
        np.testing.assert_allclose(m.initial_cov, first.initial_cov, rtol=1e-13)
    assert tuned.iterations == 1 and run.iterations == 1
    np.testing.assert_allclose(
        tuned.result.filtered_state, kalman_filter(prices, first).filtered_state, rtol=1e-12, atol=1e-12
    )
    ref = ref_first_pass(values, jres.weights)
    assert first.alpha11 == pytest.approx(ref.a11, rel=1e-14)
    assert first.obs_var == pytest.approx(ref.Ve, rel=1e-13)
    np.testing.assert_allclose(first.state_var, np.diag(ref.Vw), rtol=1e-11, atol=0)
    np.testing.assert_allclose(first.initial_cov, np.diag(ref.P0), rtol=1e-12)


def test_tune_reports_the_last_pass(basket_ref):
    prices, jres, ref = basket_ref
    tuned = tune(prices, iterations=3, diagnose=False)
    assert tuned.method == "seed" and tuned.iterations == 3 and not tuned.converged
    assert tuned.alpha11 == pytest.approx(ref.models[-1].a11, rel=1e-10, abs=1e-14)
    assert tuned.loglik == pytest.approx(ref.filters[-1].loglik, rel=1e-10)
    assert tuned.history["alpha11"].shape == (3,)
    scale = np.max(np.abs(ref.filters[-1].b_filt), axis=0)
    assert np.max(np.abs(tuned.result.filtered_state - ref.filters[-1].b_filt) / scale) < 1e-10


@pytest.mark.slow
def test_alpha11_above_one_runs_as_written():
    # On the 250 days EWA/EWC/IGE rows 8..257 pass 2 estimates a11 = 1.00062 > 1: it runs, as docs/method.md §5
    # writes it, with Vw_11 = (1 - a11^2) Gamma_11 < 0, and later passes bring a11 back below 1.
    prices = load(["EWA", "EWC", "IGE"]).to_numpy()[8:258]
    jres = johansen(prices)
    ref = ref_seed(prices, jres.weights, 50)
    assert ref.models[1].a11 == pytest.approx(1.0006163676151547, rel=1e-10) and ref.models[1].Vw[0, 0] < 0
    for n_pass in (3, 50):  # pass 3 is built from the states of pass 2
        run = run_seed_passes(prices, jres, iterations=n_pass)
        assert_pass_equal(run, ref, n_pass, np.max(np.abs(prices[:, 0])))
    assert run.model.alpha11 == pytest.approx(0.002048931856727188, rel=1e-8)
    # a model that ends on such a pass is not a model: refused
    with pytest.raises(ComputationError, match=r"ended at pass 2 with alpha11 = 1\.00061\d* outside"):
        run_seed_passes(prices, jres, iterations=2)


def test_alpha11_above_one_is_refused_with_its_cause():
    # On EWA/EWC/IGE/SPY pass 2 estimates a11 = 1.00049 > 1, so Vw_11 = (1 - a11^2) Gamma_11 < 0 and
    # the filter of pass 2 reaches Q_t < 0 (the reference too): refused, naming that cause.
    prices = load(["EWA", "EWC", "IGE", "SPY"]).to_numpy()
    jres = johansen(prices)
    with np.errstate(invalid="ignore"):
        ref = ref_seed(prices, jres.weights, 2)
    assert ref.models[1].a11 == pytest.approx(1.0004926202734503, rel=1e-10)
    assert np.min(ref.filters[1].Q) < 0
    run_seed_passes(prices, jres, iterations=1)  # the first pass is fine
    with pytest.raises(ComputationError, match=r"pass 2 with alpha11 = 1\.0004926\d* outside \[-1, 1\].*state_var"):
        run_seed_passes(prices, jres, iterations=2000)


def test_bad_options_are_refused():
    jres = weights_only(W)
    with pytest.raises(KalcointError, match="iterations"):
        run_seed_passes(TINY, jres, iterations=0)
    with pytest.raises(KalcointError, match="tol"):
        run_seed_passes(TINY, jres, iterations=3, tol=0.0)
    with pytest.raises(KalcointError, match="residual"):
        SeedOptions(residual="innovation-ish")
    with pytest.raises(KalcointError, match="bm"):
        SeedOptions(bm="median")


# --------------------------------------------------------------------------------------------
# The collapse law (docs/findings.md): eps_t = (Ve / Q_t) e_t, so Ve' = Ve^2 mean(e_t^2 / Q_t^2).
# --------------------------------------------------------------------------------------------


def test_posterior_residual_is_the_scaled_innovation():
    """eps_t = y_t - x_t b_{t|t} = (Ve / Q_t) e_t, day by day, in the reference's pass 1 and 2."""
    prices, _, ref = reference_run(("EWA", "EWC", "IGE"))
    y, X = prices[:, 0], prices.copy()
    X[:, 0] = 1.0
    for m in (0, 1):
        f, ve = ref.filters[m], ref.models[m].Ve
        eps = y - np.einsum("ti,ti->t", X, f.b_filt)
        np.testing.assert_allclose(eps, ve / f.Q * f.e, rtol=1e-9, atol=64 * EPS * np.max(np.abs(y)))


@pytest.mark.parametrize("assets", BASKETS, ids=lambda a: "-".join(a))
def test_collapse_law_pass_by_pass(assets):
    """Ve of pass m + 1 equals Ve_m^2 * mean(e_t^2/Q_t^2) of pass m, the quantities coming from the
    compiled passes' own history: to 1e-9 relative while Ve > 1e-12, and at every pass within the
    round-off of the residuals: each eps_t is computed with an error |d_t| <= d = 64 eps max|y|, so
    mean(eps^2) is off by at most 2 sqrt(Ve') d + d^2 (about 1e-8 relative at Ve' ~ 1e-18)."""
    prices, jres, _ = reference_run(tuple(assets))
    h = run_seed_passes(prices, jres, iterations=50).history
    ve, factor = h[:, 1], h[:, 3]
    d = 64 * EPS * np.max(np.abs(prices[:, 0]))
    checked = 0
    for m in range(49):
        law = ve[m] ** 2 * factor[m]
        assert abs(ve[m + 1] - law) <= 1e-9 * law + 2 * math.sqrt(law) * d + d * d, m
        if ve[m + 1] > 1e-12:
            assert ve[m + 1] == pytest.approx(law, rel=1e-9), m
            checked += 1
    assert checked >= 3
    # and the collapse follows it: below 1e-20 within ten passes, then at the round-off floor of y
    assert np.min(ve[:10]) < 1e-20 and np.all(ve[10:] < d * d)


def test_collapse_figures_follow_the_law_on_ewa_ewc_ige():
    """The Ve sequence of the collapse (docs/findings.md), pass by pass: the exponent roughly doubles each pass."""
    prices, jres, _ = reference_run(("EWA", "EWC", "IGE"))
    h = run_seed_passes(prices, jres, iterations=8).history
    ve = h[:, 1]
    # on this basket the law holds to 1e-9 at every pass whose new Ve is above 1e-20 (passes 1-6)
    for m in range(7):
        if ve[m + 1] > 1e-20:
            assert ve[m + 1] == pytest.approx(ve[m] ** 2 * h[m, 3], rel=1e-9), m
    expected = [
        1.7626442562566,
        7.831871327274e-2,
        2.635870915777e-2,
        4.869543153646e-3,
        1.521908293241e-4,
        8.32078053593e-8,
        2.4982585355e-14,
        2.2086622541e-27,
    ]
    np.testing.assert_allclose(ve[:7], expected[:7], rtol=1e-9)
    # pass 8's Ve (~2e-27) is below the law's 1e-20 range: rounding noise, its digits move with the
    # last bits of the Johansen weights (kalcoint's compiled test equals statsmodels' to ~1e-12)
    assert ve[7] == pytest.approx(expected[7], rel=1e-2)


# --------------------------------------------------------------------------------------------
# The method corrected (docs/method.md §10): smoothed moments and the covariance terms.
# --------------------------------------------------------------------------------------------

CORRECTED = {
    "smoothed": SeedOptions(moments="smoothed"),
    "covariance_terms": SeedOptions(covariance_terms=True),
    "both": SeedOptions(moments="smoothed", covariance_terms=True),
}


@pytest.mark.parametrize(
    "name", [n if n == "covariance_terms" else pytest.param(n, marks=pytest.mark.slow) for n in CORRECTED]
)
def test_corrected_passes_match_reference(name):
    """The compiled smoother and re-estimates against the textbook RTS smoother and the expectations of
    the full matrices of §5 (tests/kc_reference.py), 1e-10. The hedge ratios' state variances are exactly
    0 in the first pass and stay 0 up to rounding (~1e-16): compared absolutely at 1e-14."""
    opts = CORRECTED[name]
    prices, jres, _ = reference_run(("EWA", "EWC", "IGE"))
    ref = ref_seed(prices, jres.weights, 10, moments=opts.moments, covariance_terms=opts.covariance_terms)
    for n_pass in (2, 3, 10):
        run = run_seed_passes(prices, jres, iterations=n_pass, options=opts)
        # rtol 1e-9: the compiled Johansen's weights (equal to statsmodels' to ~1e-12) leave
        # state_var_1 of the "both" run 2.4e-10 relative from the reference at pass 10
        assert_pass_equal(run, ref, n_pass, np.max(np.abs(prices[:, 0])), rtol=1e-9, vw_atol=1e-14)


@pytest.mark.slow
def test_which_change_stops_the_collapse():
    """EWA/EWC/IGE, 2000 passes each (docs/findings.md, "The method corrected")."""
    prices, jres, _ = reference_run(("EWA", "EWC", "IGE"))
    runs = {name: run_seed_passes(prices, jres, iterations=2000, options=o) for name, o in CORRECTED.items()}
    # smoothed moments alone: still collapses (Ve at the round-off floor by pass 20), a11 stays 0.987
    ve = runs["smoothed"].history[:, 1]
    assert ve[9] == pytest.approx(1.50964450e-2, rel=1e-6) and np.max(ve[19:]) < 1e-27
    assert runs["smoothed"].model.alpha11 == pytest.approx(0.9866236, abs=1e-6)
    # covariance terms alone: Ve never collapses but drifts down without settling
    ve = runs["covariance_terms"].history[:, 1]
    assert np.min(ve) == ve[-1] and ve[-1] == pytest.approx(2.5471502e-4, rel=1e-5)
    assert runs["covariance_terms"].history[-1, 2] == pytest.approx(-293.3044, abs=1e-3)
    # both (EM's M-step with the method's Vw_11 and P0 rules): a fixed point
    both = runs["both"]
    assert both.model.alpha11 == pytest.approx(0.98978538, abs=1e-7)
    assert both.model.obs_var == pytest.approx(8.7196458e-3, rel=1e-6)
    assert both.history[-1, 2] == pytest.approx(-259.36329, abs=1e-4)
    assert np.all(both.model.state_var[1:] < 1e-13)  # the hedge ratios stay frozen: 0 is absorbing (to rounding)
    tol_run = run_seed_passes(prices, jres, iterations=2000, tol=1e-8, options=CORRECTED["both"])
    assert tol_run.converged and tol_run.iterations < 2000


@pytest.mark.slow
def test_tune_json_history_shows_the_law(run_cli, chan_file, tmp_path):
    """`tune --json` carries per-pass alpha11, obs_var, loglik, mean_e2_over_q2: the law checks from it."""
    import json

    out = tmp_path / "tuned.json"
    res = run_cli("tune", chan_file, "--assets", "EWA,EWC,IGE", "--iterations", "8", "--json", out)
    assert res.exit_code == 0, res.stderr
    h = json.loads(out.read_text())["history"]
    assert sorted(h) == ["alpha11", "loglik", "mean_e2_over_q2", "obs_var"] and len(h["obs_var"]) == 8
    for m in range(6):
        assert h["obs_var"][m + 1] == pytest.approx(h["obs_var"][m] ** 2 * h["mean_e2_over_q2"][m], rel=1e-9)
    assert h["obs_var"][-1] == pytest.approx(2.2086622541e-27, rel=1e-9)
    res = run_cli(
        "tune",
        chan_file,
        "--assets",
        "EWA,EWC,IGE",
        "--iterations",
        "2000",
        "--moments",
        "smoothed",
        "--covariance-terms",
        "--json",
        out,
    )
    assert res.exit_code == 0, res.stderr
    d = json.loads(out.read_text())
    assert d["options"]["moments"] == "smoothed" and d["options"]["covariance_terms"] is True
    assert d["loglik"] == pytest.approx(-259.36329, abs=1e-4)


def test_corrected_options_are_checked(run_cli, chan_file):
    with pytest.raises(KalcointError, match="moments"):
        SeedOptions(moments="both")
    res = run_cli("tune", chan_file, "--assets", "EWA,EWC,IGE", "--moments", "rts")
    assert res.exit_code == 2 and "--moments 'rts' is not one of filtered, smoothed" in res.stderr
    res = run_cli("tune", chan_file, "--assets", "EWA,EWC,IGE", "--method", "mle", "--covariance-terms")
    assert res.exit_code == 2 and "--method seed only" in res.stderr


def test_collapsed_spread_is_stationary_even_on_a_random_walk():
    """docs/findings.md: on a basket whose true spread level is a random walk (a11 = 1), the 2000 passes
    collapse just the same and the dynamic portfolio's ADF test rejects a unit root: p = 0."""
    from kalcoint.cointegration import adf
    from kalcoint.synthetic import simulate

    prices, truth = simulate(alpha11=1.0, seed=3)
    assert adf(truth.states[:, 0]).pvalue == pytest.approx(0.461, abs=1e-3)
    tuned = tune(prices, iterations=2000)
    assert tuned.obs_var < 1e-28 and abs(tuned.alpha11 - 0.00607) < 1e-4
    test = tuned.adf()
    assert test.stat == pytest.approx(-132.86, abs=0.01) and test.pvalue == 0.0
    assert tuned.degenerate

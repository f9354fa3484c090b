"""The public surface: statsmodels-like results (parameters, standard errors, intervals, summaries
in text and HTML), the registry of tuning methods, the out-of-sample split rule shared by
``compare`` and ``screen``, the package's exports, and the command line's promise that bad input,
a bad option or an unwritable output is one line on stderr and exit 2, checked before any work.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from statsmodels.tools.numdiff import approx_hess3

import kalcoint as kc
from kalcoint.errors import KalcointError
from kalcoint.filtering import StateSpaceModel, observation_arrays
from kalcoint.oos import continue_filter, split, split_rows
from kalcoint.tuning import registry
from kalcoint.tuning.diagnosis import diagnose_model
from kalcoint.tuning.mle import _Likelihood

TRIPLET = "EWA,EWC,IGE"
NAMES = ["alpha11", "obs_var", "state_var.const", "state_var.EWC", "state_var.IGE"]


# ---------------------------------------------------------------- results as statsmodels users expect


@pytest.fixture(scope="module")
def mle_fit(ewa_ewc_ige):
    return kc.tune(ewa_ewc_ige, method="mle")


def plain_covariance(prices: pd.DataFrame, model: StateSpaceModel, free: list[int]) -> np.ndarray:
    """Inverse of statsmodels' second-difference Hessian of the negative log-likelihood, in the
    free natural quantities: a plain reference for cov_params."""
    y, X = observation_arrays(prices.to_numpy())
    lik = _Likelihood(y, X, model.initial_state.copy(), np.diag(model.initial_cov))
    params = np.concatenate([[model.alpha11, model.obs_var], model.state_var])

    def nll(p: np.ndarray) -> float:
        full = params.copy()
        full[free] = p
        return lik.natural_nll(full)

    return np.linalg.inv(approx_hess3(params[free], nll, epsilon=1e-4 * np.abs(params[free])))


@pytest.mark.slow
def test_mle_params_bse_cov_conf_int(ewa_ewc_ige, mle_fit):
    assert list(mle_fit.params.index) == NAMES and list(mle_fit.bse.index) == NAMES
    assert mle_fit.params["alpha11"] == pytest.approx(0.998066, abs=2e-5)
    assert mle_fit.bse["alpha11"] == pytest.approx(0.0020, rel=0.05)
    assert mle_fit.bse["obs_var"] == pytest.approx(0.00213, rel=0.05)
    assert mle_fit.bse["state_var.IGE"] == pytest.approx(3.8e-6, rel=0.05)
    # the EWC hedge ratio does not move: on its bound, with the reason
    assert math.isnan(mle_fit.bse["state_var.EWC"])
    assert set(mle_fit.bse_notes) == {"state_var.EWC"} and "on its bound" in mle_fit.bse_notes["state_var.EWC"]
    cov = mle_fit.cov_params()
    assert list(cov.index) == NAMES and list(cov.columns) == NAMES
    assert cov.loc["state_var.EWC"].isna().all() and cov["state_var.EWC"].isna().all()
    free = [0, 1, 2, 4]
    sub = cov.to_numpy()[np.ix_(free, free)]
    np.testing.assert_allclose(sub, sub.T, rtol=1e-12)
    assert abs(sub[0, 1]) > 0  # the whole inverse Hessian, not only its diagonal
    np.testing.assert_allclose(
        sub,
        plain_covariance(ewa_ewc_ige, mle_fit.model, free),
        rtol=0.02,
        atol=1e-3 * np.sqrt(np.outer(np.diag(sub), np.diag(sub))).max(),
    )
    ci = mle_fit.conf_int(0.05)
    assert list(ci.columns) == ["lower", "upper"]
    z = norm.ppf(0.975)
    assert ci.loc["alpha11", "lower"] == pytest.approx(mle_fit.params["alpha11"] - z * mle_fit.bse["alpha11"])
    assert ci.loc["obs_var", "upper"] == pytest.approx(mle_fit.params["obs_var"] + z * mle_fit.bse["obs_var"])
    assert mle_fit.llf == pytest.approx(-223.85833, abs=2e-4) and mle_fit.nobs == 1500
    assert mle_fit.aic == pytest.approx(-2 * mle_fit.llf + 2 * 5)
    assert mle_fit.bic == pytest.approx(-2 * mle_fit.llf + math.log(1500) * 5)


@pytest.mark.slow
def test_em_standard_errors_by_observed_information(ewa_ewc_ige, mle_fit):
    em = kc.tune(ewa_ewc_ige, method="em")
    for name in ("alpha11", "obs_var", "state_var.const", "state_var.IGE"):
        assert em.bse[name] == pytest.approx(mle_fit.bse[name], rel=0.02), name
    # EM stops short of the EWC bound (1e-7 instead of 0): the data prefer 0, so it is on its bound
    assert math.isnan(em.bse["state_var.EWC"]) and "on its bound" in em.bse_notes["state_var.EWC"]


def test_seed_has_no_standard_errors_and_says_why(ewa_ewc_ige):
    seed = kc.tune(ewa_ewc_ige, iterations=1)
    assert seed.bse.isna().all() and seed.cov_params().isna().all().all()
    assert set(seed.bse_notes) == set(NAMES[:2] + ["state_var.const", "state_var.EWC", "state_var.IGE"])
    assert all("does not end at a maximum of the likelihood" in why for why in seed.bse_notes.values())
    assert seed.to_dict().get("std_errors") is None
    assert seed.llf == pytest.approx(-2051.3168, abs=1e-3)


def test_interior_obs_var_is_not_called_on_its_bound():
    """Hedge assets priced ~1e5 make asset 1's daily price change huge (variance 1.6e7): obs_var = 1.02
    is below 1e-6 of it, which the old rule called "on its bound", yet the data pin it down."""
    prices, _ = kc.simulate(
        n=3000,
        alpha11=0.95,
        obs_var=1.0,
        state_var=(0.05, 1e-12, 1e-12),
        start_prices=(1e5, 5e4),
        daily_vol=0.02,
        seed=11,
    )
    scale = float(np.var(np.diff(prices.iloc[:, 0])))
    tuned = kc.tune(prices, method="mle")
    assert tuned.obs_var == pytest.approx(1.0209, abs=1e-3) and tuned.obs_var < 1e-6 * scale
    assert "obs_var" not in tuned.bse_notes and tuned.bse_notes == {}
    assert tuned.bse["obs_var"] == pytest.approx(0.0312, rel=0.02)
    # ~ the plain second-difference reference
    plain = plain_covariance(prices, tuned.model, [0, 1, 2])
    assert tuned.bse["obs_var"] == pytest.approx(math.sqrt(plain[1, 1]), rel=0.05)


def test_results_are_immutable_and_adf_is_computed_once(ewa_ewc_ige):
    tuned = kc.tune(ewa_ewc_ige, iterations=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        tuned.iterations = 5  # type: ignore[misc]
    assert tuned.adf() is tuned.adf()
    comp = kc.compare(ewa_ewc_ige, iterations=2, rows=("static_johansen",), bootstrap=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        comp.rows[0].adf_pvalue = 0.0  # type: ignore[misc]


@pytest.mark.slow
def test_compare_reports_progress_as_done_and_total(ewa_ewc_ige):
    calls: list[tuple[int, int]] = []
    kc.compare(
        ewa_ewc_ige, iterations=1, rows=("static_johansen",), bootstrap=0, progress=lambda d, t: calls.append((d, t))
    )
    assert calls == [(1, 2), (2, 2)]
    calls.clear()
    kc.compare(
        ewa_ewc_ige,
        iterations=1,
        rows=("static_johansen",),
        bootstrap=2,
        workers=1,
        progress=lambda d, t: calls.append((d, t)),
    )
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_summaries_have_text_and_html(ewa_ewc_ige):
    jo = kc.johansen(ewa_ewc_ige)
    tuned = kc.tune(ewa_ewc_ige, iterations=1)
    comp = kc.compare(ewa_ewc_ige, iterations=1, rows=("static_johansen", "alpha_estimated"), bootstrap=0)
    bt = kc.backtest(ewa_ewc_ige[["EWC", "EWA"]], "chan", delta=1e-4, obs_var=1e-3)
    for result, needle in ((jo, "34.4286"), (tuned, "state_var.EWC"), (comp, "-3.339"), (bt, "26.23%")):
        s = result.summary()
        assert needle in s.as_text() and needle in s.as_html()
        assert str(s) == s.as_text() and s._repr_html_() == s.as_html()
        assert s.as_html().count("<table>") >= 1


def test_hedge_ratios_are_labelled_and_frames_keep_dates(ewa_ewc_ige):
    jo = kc.johansen(ewa_ewc_ige)
    assert isinstance(jo.hedge_ratios, pd.Series) and list(jo.hedge_ratios.index) == ["EWC", "IGE"]
    np.testing.assert_allclose(jo.hedge_ratios, [1.376418, -0.293838], atol=1e-6)
    bt = kc.backtest(ewa_ewc_ige[["EWC", "EWA"]], "chan", delta=1e-4, obs_var=1e-3)
    frame = bt.to_frame()
    assert isinstance(frame.index, pd.DatetimeIndex) and frame.index[0] == pd.Timestamp("2006-04-26")
    assert list(frame.columns) == ["units", "return", "equity", "spread"]
    assert bt.metrics["apr"] == pytest.approx(0.262, abs=5e-4)  # Chan's Example 3.3: APR 26.2%


def test_package_exports_functions():
    assert callable(kc.backtest) and callable(kc.screen)
    from kalcoint.backtest import METRIC_KEYS  # the module stays importable

    assert METRIC_KEYS[0] == "apr"


# ---------------------------------------------------------------- the registry of tuning methods


def test_registry_runs_a_registered_fit(ewa_ewc_ige):
    def toy_fit(values, johansen_result, iterations=10, tol=None, *, scale=1.0):
        k = values.shape[1]
        model = StateSpaceModel(0.9, 0.02 * scale, np.full(k, 1e-4), np.zeros(k), np.ones(k))
        return registry.FitResult(model, iterations=3, converged=True, options={"scale": scale})

    registry.register("toy", toy_fit)
    try:
        tuned = kc.tune(ewa_ewc_ige, method="toy", scale=2.0)
        assert (tuned.method, tuned.iterations, tuned.obs_var) == ("toy", 3, 0.04)
        assert tuned.bse.isna().all()  # registered without inference=True
        with pytest.raises(KalcointError, match="takes no option colour .its options: scale."):
            kc.tune(ewa_ewc_ige, method="toy", colour="red")
        registry.register("toy_dict", lambda values, johansen_result, iterations=1, tol=None: {"model": None})
        with pytest.raises(TypeError, match="^tuning method 'toy_dict' returned dict, not a FitResult$"):
            kc.tune(ewa_ewc_ige, method="toy_dict")
    finally:
        registry._REGISTRY.pop("toy")
        registry._REGISTRY.pop("toy_dict", None)
    with pytest.raises(KalcointError, match="^method 'toy' is not one of seed, mle, em"):
        kc.tune(ewa_ewc_ige, method="toy")


def test_fix_alpha11_is_the_python_and_cli_name(ewa_ewc_ige):
    assert kc.tune(ewa_ewc_ige, iterations=1, fix_alpha11=1.0).alpha11 == 1.0
    with pytest.warns(DeprecationWarning):
        assert kc.tune(ewa_ewc_ige, iterations=1, fixed_alpha11=1.0).alpha11 == 1.0


# ---------------------------------------------------------------- one out-of-sample protocol


def test_one_split_rule_for_compare_and_screen(ewa_ewc_ige):
    assert [split_rows(n, 0.7) for n in (1500, 1001, 999, 10)] == [1050, 700, 699, 7]
    train, test = split(ewa_ewc_ige, 0.7)
    assert (len(train), len(test)) == (1050, 450)
    comp = kc.compare(ewa_ewc_ige.iloc[:1001], iterations=1, rows=("static_johansen",), bootstrap=0)
    assert comp.to_dict()["oos_rows"] == 1001 - 700  # floor, where round gave 300
    from kalcoint.screen import ScreenOptions, Universe, evaluate_basket

    options = ScreenOptions(size=3, iterations=1, min_rows=500)
    row = evaluate_basket(Universe.from_frame(ewa_ewc_ige.iloc[:1001]), (0, 1, 2), options)
    assert row["oos_nobs"] == 301
    # continuing the filter equals running it over the whole sample
    model = StateSpaceModel.chan(3)
    whole = kc.kalman_filter(ewa_ewc_ige, model)
    cont = continue_filter(kc.kalman_filter(train, model), test)
    np.testing.assert_allclose(cont.filtered_state, whole.filtered_state[1050:], rtol=1e-12)


# ---------------------------------------------------------------- errors and diagnosis


def test_library_errors_name_parameters():
    with pytest.raises(KalcointError) as err:
        StateSpaceModel.chan(2, obs_var=math.inf)
    assert str(err.value).startswith("obs_var inf must be a finite number > 0") and err.value.params == ("obs_var",)
    with pytest.raises(KalcointError, match="^delta 2 must be in"):
        StateSpaceModel.chan(2, delta=2)
    from kalcoint.cli._common import cli_message

    assert (
        cli_message(KalcointError("train_fraction 0.99 must be in [0.2, 0.95]", params="train_fraction"))
        == "--train-fraction 0.99 must be in [0.2, 0.95]"
    )
    msg = KalcointError("out out.csv exists: pass resume", params=("out", "resume"))
    assert cli_message(msg) == "--out out.csv exists: pass --resume"


def test_frozen_level_warning_does_not_contradict_itself(ewa_ewc_ige):
    values = ewa_ewc_ige.to_numpy()[:300]
    model = StateSpaceModel(0.99999987, 0.02, [0.0, 1e-4, 1e-5], [0.0, 1.3, -0.3], [1.0, 0.1, 0.1])
    reason = [r for r in diagnose_model(model, values).reasons if "decays" in r][0]
    assert "|alpha11| = 0.9999999 < 1" in reason and "alpha11 = 1 " not in reason


@pytest.mark.slow
def test_plots_do_not_switch_the_backend():
    code = (
        "import matplotlib; before = matplotlib.get_backend(); import kalcoint.plots, sys; "
        "print(before == matplotlib.get_backend(), 'matplotlib.pyplot' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"MPLBACKEND": "svg", "PATH": "", **_pythonpath()},
    )
    assert out.stdout.split() == ["True", "False"]


def _pythonpath() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k in ("PYTHONPATH", "HOME", "NUMBA_CACHE_DIR")}


# ---------------------------------------------------------------- data files


def test_gzip_csv_is_read(chan_file, tmp_path):
    gz = tmp_path / "chan.csv.gz"
    gz.write_bytes(gzip.compress(chan_file.read_bytes()))  # chan_file: the packaged file uncompressed
    prices = kc.load_prices(gz, ["EWA", "EWC", "IGE"])
    np.testing.assert_allclose(kc.johansen(prices).trace_stat, [34.4286, 17.5317, 4.4710], atol=1e-4)


def test_other_formats_are_named(chan_file, tmp_path):
    xlsx = tmp_path / "prices.xlsx"
    with zipfile.ZipFile(xlsx, "w") as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
    utf16 = tmp_path / "prices.txt"
    utf16.write_bytes(chan_file.read_text()[:4000].encode("utf-16"))
    with pytest.raises(KalcointError, match="Excel workbook .*Save As > CSV"):
        kc.load_prices(xlsx)
    with pytest.raises(KalcointError, match="UTF-16 text.*CSV UTF-8"):
        kc.load_prices(utf16)


def test_intraday_rows_are_refused_naming_the_day(tmp_path):
    path = tmp_path / "intraday.csv"
    lines = ["date,A,B"] + [
        f"2020-01-{d:02d} {h}:30,{10 + d + h / 100},{5 + d * d / 10 + h / 7}"
        for d in range(2, 30)
        for h in ((16,) if d < 9 else (10, 16))
    ]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(KalcointError, match="2 rows on 2020-01-09 .intraday timestamps 10:30 and 16:30.*one row"):
        kc.load_prices(path)


def yfinance_file(tmp_path):
    path = tmp_path / "yf.csv"
    rows = [f"2020-02-{d:02d},{10 + d},{5 + d * d / 10},{11 + d},{6 + d * d / 10}" for d in range(1, 29)]
    rows += [f"2020-03-{d:02d},{40 + d},{84 + d * d / 10},{41 + d},{85 + d * d / 10}" for d in range(1, 29)]
    path.write_text("Price,Adj Close,Adj Close,Close,Close\nTicker,AAA,BBB,AAA,BBB\nDate,,,,\n" + "\n".join(rows))
    return path


def test_yfinance_close_and_adj_close_note(tmp_path, run_cli):
    path = yfinance_file(tmp_path)
    prices = kc.load_prices(path)
    assert prices.iloc[0].tolist() == [12.0, 6.1]  # the Close columns
    assert prices.attrs["notes"] == [
        f"{path}: the file has both Close and Adj Close columns; using Close (Adj Close is ignored)"
    ]
    res = run_cli("johansen", path)
    assert res.exit_code == 0 and "using Close (Adj Close is ignored)" in res.stderr


# ---------------------------------------------------------------- the command line's promise


def one_line_exit_2(res) -> None:
    assert res.exit_code == 2, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("kalcoint: error: "), res.stderr
    assert "Traceback" not in res.stderr and "╭" not in res.stderr


@pytest.mark.parametrize(
    "args, needle",
    [
        (["tune", "{chan}", "--iterations", "abc"], "'--iterations'"),
        (["tune", "{chan}", "--tol", "x"], "'--tol'"),
        (["screen", "{chan}", "--out", "{tmp}/s.csv", "--workers", "-1"], "'--workers'"),
        (["tune", "{chan}", "--no-such-option"], "No such option"),
        (["tune"], "Missing argument"),
        (["tune", "{tmp}"], "is a directory"),
        (
            ["filter", "{chan}", "--assets", "EWC,EWA", "--method", "chan", "--obs-var", "inf", "--out", "{tmp}/f.csv"],
            "--obs-var inf must be a finite number > 0",
        ),
        (["tune", "{chan}", "--assets", TRIPLET, "--fix-alpha11", "nan"], "--fix-alpha11 nan"),
        (["tune", "{chan}", "--assets", TRIPLET, "--method", "mle", "--tol", "-1"], "--tol -1.0 must be"),
    ],
)
def test_usage_errors_are_one_line(run_cli, chan_file, tmp_path, args, needle):
    res = run_cli(*[a.replace("{chan}", str(chan_file)).replace("{tmp}", str(tmp_path)) for a in args])
    one_line_exit_2(res)
    assert needle in res.stderr
    assert not list(tmp_path.iterdir())


UNWRITABLE = "/sys/kalcoint-test-output"  # not writable, even for root


@pytest.mark.parametrize(
    "args, flag",
    [
        (["johansen", "{chan}", "--assets", TRIPLET, "--json", UNWRITABLE + ".json"], "--json"),
        (["tune", "{chan}", "--assets", TRIPLET, "--json", UNWRITABLE + ".json"], "--json"),
        (["tune", "{chan}", "--assets", TRIPLET, "--save", UNWRITABLE + ".kcm"], "--save"),
        (["tune", "{chan}", "--assets", TRIPLET, "--plot-dir", UNWRITABLE], "--plot-dir"),
        (["filter", "{chan}", "--assets", TRIPLET, "--method", "chan", "--out", UNWRITABLE + ".csv"], "--out"),
        (["compare", "{chan}", "--assets", TRIPLET, "--json", UNWRITABLE + ".json"], "--json"),
        (["compare", "{chan}", "--assets", TRIPLET, "--plot-dir", UNWRITABLE], "--plot-dir"),
        (["demo", "--out", UNWRITABLE], "--out"),
        (["backtest", "{chan}", "--assets", "EWC,EWA", "--method", "chan", "--json", UNWRITABLE + ".json"], "--json"),
        (["backtest", "{chan}", "--assets", "EWC,EWA", "--method", "chan", "--out", UNWRITABLE + ".csv"], "--out"),
        (["backtest", "{chan}", "--assets", "EWC,EWA", "--method", "chan", "--plot-dir", UNWRITABLE], "--plot-dir"),
        (["screen", "{chan}", "--assets", TRIPLET, "--out", UNWRITABLE + ".csv"], "--out"),
    ],
)
def test_unwritable_outputs_are_refused_before_work(run_cli, chan_file, args, flag):
    res = run_cli(*[a.replace("{chan}", str(chan_file)) for a in args])
    one_line_exit_2(res)
    assert f"{flag} {UNWRITABLE}" in res.stderr and "cannot write in /sys" in res.stderr
    assert res.stdout == ""  # nothing computed or printed


def test_live_commands_refuse_unwritable_outputs(run_cli, chan_file, tmp_path):
    model = tmp_path / "m.kcm"
    assert run_cli("tune", chan_file, "--assets", "EWC,EWA", "--iterations", "1", "--save", model).exit_code == 0
    for args in (
        ["status", model, "--json", UNWRITABLE + ".json"],
        ["history", model, "--out", UNWRITABLE + ".csv"],
        ["update", model, "--prices", chan_file, "--json", UNWRITABLE + ".json"],
    ):
        res = run_cli(*args)
        one_line_exit_2(res)
        assert "cannot write in /sys" in res.stderr


def test_tune_checks_every_option_before_tuning(run_cli, chan_file, tmp_path):
    save = tmp_path / "x.kcm"
    res = run_cli("tune", chan_file, "--assets", TRIPLET, "--entry", "-1", "--save", save)
    one_line_exit_2(res)
    assert "--entry -1.0 must be > 0" in res.stderr and res.stdout == "" and not save.exists()


def test_tune_prints_standard_errors_and_their_reasons(run_cli, chan_file, tmp_path):
    out = tmp_path / "t.json"
    res = run_cli("tune", chan_file, "--assets", "EWC,EWA", "--method", "em", "--iterations", "200", "--json", out)
    assert res.exit_code == 0, res.stderr
    d = json.loads(out.read_text())
    assert set(d["std_errors"]) == {"alpha11", "obs_var", "state_var"}
    assert "standard errors: alpha11 " in res.stdout
    assert d["aic"] == pytest.approx(-2 * d["loglik"] + 2 * 4)

"""The core commands end to end (``johansen``, ``tune``, ``filter``, ``compare``, ``demo``), run
in-process through the real entry point.

Held: ``johansen --json`` reproduces Chan's Example 2.7; ``tune`` and ``compare`` print and write
the figures of the library's results; ``filter`` writes the states of the library's filter;
``demo`` runs on the embedded data; bad input is one line on stderr, exit 2, and no output file.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from kalcoint.filtering import StateSpaceModel, kalman_filter

TRIPLET = "EWA,EWC,IGE"


def test_johansen_json_reproduces_chan_example_2_7(run_cli, chan_file, tmp_path):
    out = tmp_path / "j.json"
    res = run_cli("johansen", chan_file, "--assets", TRIPLET, "--json", out)
    assert res.exit_code == 0, res.stderr
    d = json.loads(out.read_text())
    assert set(d) == {"assets", "weights", "trace_stat", "max_eig_stat", "trace_crit", "max_eig_crit", "rank_95"}
    assert d["assets"] == ["EWA", "EWC", "IGE"]
    np.testing.assert_allclose(d["trace_stat"], [34.4286, 17.5317, 4.4710], atol=1e-4)
    np.testing.assert_allclose(d["max_eig_stat"], [16.8969, 13.0607, 4.4710], atol=1e-4)
    np.testing.assert_allclose(d["trace_crit"][0], [27.0669, 29.7961, 35.4628], atol=1e-4)
    assert d["rank_95"] == 3
    assert "34.4286" in res.stdout  # the readable table


@pytest.mark.slow
def test_tune_json_keys_and_figures(run_cli, chan_file, tmp_path):
    out = tmp_path / "t.json"
    res = run_cli("tune", chan_file, "--assets", TRIPLET, "--iterations", "2000", "--json", out)
    assert res.exit_code == 0, res.stderr
    d = json.loads(out.read_text())
    for key in (
        "method",
        "assets",
        "alpha11",
        "obs_var",
        "state_var",
        "initial_state",
        "initial_cov",
        "iterations",
        "converged",
        "loglik",
        "adf_pvalue",
        "elapsed_s",
        "degenerate",
        "degenerate_reasons",
    ):
        assert key in d, key
    assert d["method"] == "seed" and d["iterations"] == 2000 and d["converged"] is False
    # the collapse of docs/method.md §9: Ve below 1e-20, alpha11 near zero
    assert d["obs_var"] < 1e-20
    assert abs(d["alpha11"]) < 1e-3
    assert d["loglik"] == pytest.approx(-502.6013, abs=1e-3)
    assert d["initial_state"] == pytest.approx([0.0, 1.376418, -0.293838], abs=1e-6)
    assert d["degenerate"] is True
    assert "degenerate" in res.stderr


def test_tune_first_pass_and_tolerance(run_cli, chan_file, tmp_path):
    out = tmp_path / "t1.json"
    assert run_cli("tune", chan_file, "--assets", TRIPLET, "--iterations", "1", "--json", out).exit_code == 0
    d = json.loads(out.read_text())
    assert d["alpha11"] == pytest.approx(0.9977067451, rel=1e-9)
    assert d["obs_var"] == pytest.approx(1.762644, rel=1e-6)
    assert d["state_var"][1:] == [0.0, 0.0]
    out2 = tmp_path / "t2.json"
    assert (
        run_cli(
            "tune", chan_file, "--assets", TRIPLET, "--fix-alpha11", "1", "--iterations", "1", "--json", out2
        ).exit_code
        == 0
    )
    d2 = json.loads(out2.read_text())
    assert d2["alpha11"] == 1.0 and d2["state_var"] == [0.0, 0.0, 0.0]


def test_filter_chan_csv_matches_library(run_cli, chan_file, tmp_path, ewa_ewc_ige):
    out = tmp_path / "f.csv"
    res = run_cli(
        "filter",
        chan_file,
        "--assets",
        "EWC,EWA",
        "--method",
        "chan",
        "--delta",
        "1e-4",
        "--obs-var",
        "1e-3",
        "--out",
        out,
    )
    assert res.exit_code == 0, res.stderr
    table = pd.read_csv(out)
    assert list(table.columns) == ["date", "beta_const", "beta_EWA", "innovation", "innovation_var", "spread"]
    assert len(table) == 1500 and table["date"].iloc[0] == "2006-04-26"
    ref = kalman_filter(ewa_ewc_ige[["EWC", "EWA"]], StateSpaceModel.chan(2, delta=1e-4, obs_var=1e-3))
    np.testing.assert_allclose(table["beta_EWA"], ref.filtered_state[:, 1], rtol=1e-9)
    np.testing.assert_allclose(table["innovation_var"], ref.innovation_var, rtol=1e-9)
    # Chan's first update leaves the state at zero (P0 = 0)
    assert table["beta_EWA"].iloc[0] == 0.0 and table["innovation"].iloc[0] == pytest.approx(22.95)


def test_filter_seed_state_var_option(run_cli, chan_file, tmp_path):
    out = tmp_path / "f.csv"
    res = run_cli("filter", chan_file, "--assets", TRIPLET, "--method", "chan", "--state-var", "1e-5", "--out", out)
    assert res.exit_code == 0
    ref = kalman_filter(
        pd.read_csv(chan_file, index_col=0)[["EWA", "EWC", "IGE"]], StateSpaceModel.chan(3, state_var=1e-5)
    )
    np.testing.assert_allclose(pd.read_csv(out)["spread"], ref.spread, rtol=1e-9)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["tune", "{chan}", "--assets", "EWA,NOPE"], "unknown ticker 'NOPE'"),
        (["tune", "{chan}", "--assets", "EWA"], "2"),
        (["tune", "{tmp}/missing.csv", "--assets", TRIPLET], "missing.csv"),
        (["tune", "{chan}", "--assets", TRIPLET, "--method", "magic"], "--method"),
        (["tune", "{chan}", "--assets", TRIPLET, "--tol", "-1"], "--tol"),
        (["filter", "{chan}", "--assets", TRIPLET, "--model", "nothing.db", "--out", "{tmp}/o.csv"], "--model"),
        (
            [
                "filter",
                "{chan}",
                "--assets",
                TRIPLET,
                "--method",
                "chan",
                "--delta",
                "1e-4",
                "--state-var",
                "1e-5",
                "--out",
                "{tmp}/o.csv",
            ],
            "either --delta or --state-var",
        ),
        (
            ["filter", "{chan}", "--assets", TRIPLET, "--method", "chan", "--delta", "2", "--out", "{tmp}/o.csv"],
            "--delta",
        ),
        (["johansen", "{chan}", "--assets", "EWA,EDC"], "EDC"),
        (
            ["compare", "{chan}", "--assets", TRIPLET, "--train-fraction", "0.99", "--json", "{tmp}/o.json"],
            "--train-fraction",
        ),
    ],
)
def test_errors_are_one_line_exit_2_no_output(run_cli, chan_file, tmp_path, args, needle):
    argv = [a.replace("{chan}", str(chan_file)).replace("{tmp}", str(tmp_path)) for a in args]
    res = run_cli(*argv)
    assert res.exit_code == 2
    assert needle in res.stderr
    assert len([line for line in res.stderr.splitlines() if line.strip()]) == 1
    assert not list(tmp_path.iterdir())  # no partial output


@pytest.mark.slow
def test_compare_rows_and_figures(run_cli, chan_file, tmp_path):
    out = tmp_path / "c.json"
    plots = tmp_path / "plots"
    res = run_cli("compare", chan_file, "--assets", TRIPLET, "--iterations", "2000", "--json", out, "--plot-dir", plots)
    assert res.exit_code == 0, res.stderr
    d = json.loads(out.read_text())
    assert set(d) >= {"assets", "johansen", "rows"}
    rows = {r["name"]: r for r in d["rows"]}
    assert list(rows) == ["static_johansen", "alpha_1", "alpha_estimated", "adaptive", "chan", "mle", "em", "als"]
    for r in rows.values():
        assert {"name", "alpha11", "obs_var", "adf_stat", "adf_lags", "adf_pvalue"} <= set(r)
    assert rows["static_johansen"]["adf_stat"] == pytest.approx(-3.338706, abs=1e-5)
    assert rows["static_johansen"]["adf_pvalue"] == pytest.approx(0.0132345, rel=1e-4)
    assert rows["alpha_1"]["alpha11"] == 1.0
    assert rows["alpha_1"]["adf_pvalue"] == pytest.approx(0.177650, rel=1e-4)
    assert rows["alpha_estimated"]["alpha11"] == pytest.approx(0.9977067, rel=1e-6)
    assert rows["alpha_estimated"]["adf_pvalue"] == pytest.approx(0.0972849, rel=1e-4)
    assert rows["adaptive"]["obs_var"] < 1e-20 and rows["adaptive"]["adf_pvalue"] < 1e-20
    assert rows["adaptive"]["degenerate"] is True and rows["mle"]["degenerate"] is False
    assert rows["chan"]["alpha11"] == 1.0 and rows["chan"]["obs_var"] == 1e-3
    # MLE maximises the likelihood: no seed variant beats it
    for name in ("alpha_1", "alpha_estimated", "adaptive"):
        assert rows["mle"]["loglik"] >= rows[name]["loglik"]
    for name in ("portfolios.png", "hedge_ratios.png", "tuning_passes.png"):
        assert (plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_demo_runs_on_embedded_data(run_cli, tmp_path):
    out = tmp_path / "demo"
    res = run_cli("demo", "--out", out, "--iterations", "50")
    assert res.exit_code == 0, res.stderr
    d = json.loads((out / "comparison.json").read_text())
    assert d["assets"] == ["ETFA", "ETFB", "ETFC"] and d["nobs"] == 1500
    rows = {r["name"]: r for r in d["rows"]}
    assert rows["alpha_estimated"]["alpha11"] == pytest.approx(0.996118, abs=1e-6)
    # the generating model has alpha11 = 0.95 and Ve = 0.02: MLE finds them, the seed passes collapse
    assert rows["mle"]["alpha11"] == pytest.approx(0.95, abs=0.05)
    assert rows["mle"]["obs_var"] == pytest.approx(0.02, rel=0.3)
    assert rows["adaptive"]["obs_var"] < 1e-20
    prices = pd.read_csv(out / "demo_prices.csv")
    assert len(prices) == 1500 and list(prices.columns) == ["date", "ETFA", "ETFB", "ETFC"]
    for name in ("portfolios.png", "hedge_ratios.png", "tuning_passes.png"):
        assert (out / name).stat().st_size > 10_000

"""One name for each thing: a method is a ``method`` (``--method NAME``, ``method=``), a saved file
is a live model (``--model FILE``, ``model=``). The old forms (``--model NAME``, ``model="chan"``)
still work this release, give the same results, and warn once (one stderr line, one
DeprecationWarning); a method and a model together, or neither, are refused in one line."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from kalcoint.backtest import backtest
from kalcoint.errors import KalcointError

CHAN_3_3 = ("--assets", "EWC,EWA", "--delta", "1e-4", "--obs-var", "1e-3", "--strategy", "bands")


@pytest.fixture(scope="module")
def ewc_ewa(ewa_ewc_ige):
    return ewa_ewc_ige[["EWC", "EWA"]]


def _backtest_json(run_cli, chan_file, path, *flags):
    res = run_cli("backtest", chan_file, *CHAN_3_3, *flags, "--json", path)
    assert res.exit_code == 0, res.stderr
    payload = json.loads(path.read_text())
    payload.pop("elapsed_s", None)
    return res, payload


def test_backtest_method_flag_equals_the_deprecated_model_name(run_cli, tmp_path, chan_file):
    """Chan's Example 3.3 under --method chan: APR 26.23%, Sharpe 2.36, the same stdout and JSON as
    --model chan, which warns once."""
    new, new_json = _backtest_json(run_cli, chan_file, tmp_path / "new.json", "--method", "chan")
    old, old_json = _backtest_json(run_cli, chan_file, tmp_path / "old.json", "--model", "chan")
    assert round(new_json["apr"], 4) == 0.2623 and round(new_json["sharpe"], 2) == 2.36
    assert new.stdout == old.stdout and new_json == old_json
    assert "deprecated" not in new.stderr
    warned = [line for line in old.stderr.splitlines() if "deprecated" in line]
    assert warned == ["warning: --model chan is deprecated: use --method chan"]


def test_filter_method_flag_equals_the_deprecated_model_name(run_cli, tmp_path, chan_file):
    new_csv, old_csv = tmp_path / "new.csv", tmp_path / "old.csv"
    new = run_cli("filter", chan_file, "--assets", "EWC,EWA", "--method", "chan", "--out", new_csv)
    old = run_cli("filter", chan_file, "--assets", "EWC,EWA", "--model", "chan", "--out", old_csv)
    assert new.exit_code == old.exit_code == 0, new.stderr + old.stderr
    assert new.stdout.replace(str(new_csv), "OUT") == old.stdout.replace(str(old_csv), "OUT")
    assert new_csv.read_bytes() == old_csv.read_bytes()
    assert len(pd.read_csv(new_csv)) == 1500
    assert new.stderr == ""
    assert old.stderr == "warning: --model chan is deprecated: use --method chan\n"


def test_model_flag_takes_a_saved_model_without_a_warning(run_cli, tmp_path, chan_file, ewc_ewa):
    from kalcoint.live import save_chan_model

    path = tmp_path / "chan.kcm"
    save_chan_model(path, ewc_ewa.iloc[:100])
    res = run_cli("backtest", chan_file, "--model", path, "--json", tmp_path / "r.json")
    assert res.exit_code == 0, res.stderr
    assert "deprecated" not in res.stderr
    assert json.loads((tmp_path / "r.json").read_text())["mode"] == "replay"
    out = tmp_path / "f.csv"
    res = run_cli("filter", chan_file, "--model", path, "--out", out)
    assert res.exit_code == 0 and "deprecated" not in res.stderr
    assert len(pd.read_csv(out)) == 1500


@pytest.mark.parametrize("command", ["backtest", "filter"])
@pytest.mark.parametrize(
    "flags,message",
    [
        (["--method", "chan", "--model", "chan"], "give --method NAME or --model FILE (a saved model), not both"),
        ([], "give --method NAME ("),
        (["--method", "m.kcm"], "--method m.kcm is not one of "),
        (["--model", "m.kcm"], "--model m.kcm is not a model file; a method ("),
    ],
)
def test_method_and_model_flags_refused_in_one_line(run_cli, tmp_path, chan_file, command, flags, message):
    out = tmp_path / "o.csv"
    res = run_cli(command, chan_file, "--assets", "EWC,EWA", *flags, "--out", out)
    assert res.exit_code == 2
    assert res.stderr.startswith(f"kalcoint: error: {message}") and res.stderr.count("\n") == 1
    assert res.stdout == "" and not out.exists()


def test_library_method_keyword_equals_the_positional_and_the_old_keyword(ewc_ewa):
    positional = backtest(ewc_ewa, "chan")
    keyword = backtest(ewc_ewa, method="chan")
    default = backtest(ewc_ewa)
    with pytest.warns(DeprecationWarning, match=r"backtest\(model=\.\.\.\) is deprecated: use method=") as caught:
        old = backtest(ewc_ewa, model="chan")
    assert len(caught) == 1
    assert round(keyword.metrics["apr"], 4) == 0.2623
    for other in (positional, default, old):
        np.testing.assert_array_equal(other.returns, keyword.returns)
        assert other.model == keyword.model == "chan"


def test_library_model_keyword_takes_a_saved_model(ewc_ewa, tmp_path):
    from kalcoint.live import load_model, save_chan_model

    save_chan_model(tmp_path / "chan.kcm", ewc_ewa.iloc[:100])
    saved = load_model(tmp_path / "chan.kcm")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        by_keyword = backtest(ewc_ewa, model=saved)
    assert by_keyword.mode == "replay" and len(by_keyword.frame) == 1400
    np.testing.assert_array_equal(backtest(ewc_ewa, saved).returns, by_keyword.returns)
    with pytest.raises(KalcointError, match="give method .* or model .*, not both"):
        backtest(ewc_ewa, "chan", model=saved)

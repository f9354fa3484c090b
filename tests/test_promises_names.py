"""What a user typed or a file holds is printed literally, by every command that prints.

Ticker headers such as ``[/]`` and ``[red]EWA`` (rich markup), ``:smile:`` (an emoji code),
an ANSI escape, a NUL byte, a 300-character name and names in Japanese or emoji go through
``johansen``, ``tune``, ``filter``, ``backtest``, ``screen``, ``status``, ``versions``,
``update``, ``report`` and the error lines on stderr: each is shown as it is written, control
characters as ``\\x1b`` / ``\\x00`` escapes, with no traceback. Figures name the characters
their font lacks once, not once per character per figure; a price whose squares overflow
float64 is refused with its column and date; library errors name the command's flags.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import kalcoint as kc
from kalcoint.cli._common import cli_message, literal
from kalcoint.errors import KalcointError, MissingGlyphWarning
from kalcoint.plots import missing_glyphs, render_png

MARKUP = ["[/]", "[red]EWA", "EWC"]
CONTROL = ["\x1b[31mEWA", "E\x00WC", "IGE"]
UNICODE = ["日本", "🚀", "IGE"]
EMOJI_CODE = [":smile:", "EWC", "$\\foo$"]
LONG = ["A" * 300, "EWC", "IGE"]


def hostile_csv(tmp_path, prices: pd.DataFrame, names: list[str], rows: slice = slice(None)) -> str:
    """EWA, EWC, IGE of Chan's file under other headers."""
    frame = prices.iloc[rows].copy()
    frame.columns = names
    path = tmp_path / f"prices{len(list(tmp_path.iterdir()))}.csv"
    frame.to_csv(path, index_label="Date")
    return str(path)


def clean(res) -> None:
    """No traceback, nothing raw a terminal would act on."""
    for text in (res.stdout, res.stderr):
        assert "Traceback" not in text and "Error:" not in text
        assert "\x1b" not in text and "\x00" not in text


def test_literal_escapes_control_characters_only():
    assert literal("\x1b[31mEWA\x00") == "\\x1b[31mEWA\\x00"
    assert literal("a\u202eb\x7fc\x9b") == "a\\u202eb\\x7fc\\x9b"
    assert literal("[red]日本 🚀\tx\ny") == "[red]日本 🚀\\x09x\ny"


def test_markup_names_print_as_written(run_cli, tmp_path, ewa_ewc_ige):
    path = hostile_csv(tmp_path, ewa_ewc_ige, MARKUP)
    res = run_cli("johansen", path)
    assert res.exit_code == 0
    clean(res)
    assert "Johansen test: [/], [red]EWA, EWC  (n=1500, det_order=0, k_ar_diff=1)" in res.stdout
    assert "weights (largest eigenvalue): [/] +0.759964  [red]EWA -1.04603  EWC +0.223306\n" in res.stdout
    assert "hedge ratios -w_j/w_1: [red]EWA 1.37642  EWC -0.293838\n" in res.stdout
    assert "rank at 95% (trace test): 3\n" in res.stdout

    res = run_cli("tune", path)
    assert res.exit_code == 0
    clean(res)
    assert "Tuned model (seed): [/], [red]EWA, EWC" in res.stdout
    assert "│ [red]EWA │" in res.stdout and "│ EWC " in res.stdout
    assert "daily price-change variance of [/] (0.24)" in res.stderr

    out = tmp_path / "states.csv"
    res = run_cli("filter", path, "--method", "chan", "--out", out)
    assert res.exit_code == 0
    clean(res)
    assert "filtered 1500 rows of [/], [red]EWA, EWC (chan)" in res.stdout
    assert "last hedge ratios [red]EWA 0.410851, EWC 0.320811" in res.stdout


def test_control_characters_are_escaped(run_cli, tmp_path, ewa_ewc_ige):
    path = hostile_csv(tmp_path, ewa_ewc_ige, CONTROL)
    res = run_cli("johansen", path)
    assert res.exit_code == 0
    clean(res)
    assert "Johansen test: \\x1b[31mEWA, E\\x00WC, IGE  (n=1500" in res.stdout
    assert "weights (largest eigenvalue): \\x1b[31mEWA +0.759964  E\\x00WC -1.04603  IGE +0.223306\n" in res.stdout

    res = run_cli("backtest", path, "--method", "chan", "--assets", "\x1b[31mEWA,E\x00WC")
    assert res.exit_code == 0
    clean(res)
    assert res.stdout.startswith("Backtest (IN-SAMPLE): \\x1b[31mEWA, E\\x00WC, model chan")


@pytest.mark.slow
def test_emoji_codes_and_long_names_stay_whole(run_cli, tmp_path, ewa_ewc_ige):
    res = run_cli("johansen", hostile_csv(tmp_path, ewa_ewc_ige, EMOJI_CODE))
    assert res.exit_code == 0
    clean(res)
    assert "weights (largest eigenvalue): :smile: +0.759964  EWC -1.04603  $\\foo$ +0.223306\n" in res.stdout
    # figures draw "$\\foo$" as written: mathtext would fail on the unknown symbol
    path = hostile_csv(tmp_path, ewa_ewc_ige, EMOJI_CODE)
    res = run_cli("tune", path, "--plot-dir", tmp_path / "p")
    assert res.exit_code == 0 and (tmp_path / "p" / "tuning_passes.png").exists()
    clean(res)
    res = run_cli("backtest", path, "--method", "chan", "--assets", ":smile:,$\\foo$", "--plot-dir", tmp_path / "p")
    assert res.exit_code == 0 and (tmp_path / "p" / "equity.png").exists()
    clean(res)

    res = run_cli("johansen", hostile_csv(tmp_path, ewa_ewc_ige, LONG))
    assert res.exit_code == 0
    clean(res)
    # piped, a line is never wrapped: the 300 characters stay on the line that names them
    assert f"weights (largest eigenvalue): {'A' * 300} +0.759964  EWC -1.04603  IGE +0.223306\n" in res.stdout


@pytest.mark.slow
def test_unicode_names_and_one_note_for_the_figures(run_cli, tmp_path, ewa_ewc_ige):
    path = hostile_csv(tmp_path, ewa_ewc_ige, UNICODE)
    res = run_cli("tune", path, "--plot-dir", tmp_path / "plots")
    assert res.exit_code == 0
    clean(res)
    assert "Tuned model (seed): 日本, 🚀, IGE" in res.stdout
    notes = [line for line in res.stderr.splitlines() if line.startswith("note:")]
    assert notes == [
        "note: the figures' font (DejaVu Sans) has no glyph for 日 本 🚀 in the names: they show as empty boxes"
    ]
    assert "Glyph" not in res.stderr and "UserWarning" not in res.stderr
    assert (tmp_path / "plots" / "tuning_passes.png").stat().st_size > 1000


def test_missing_glyphs_gives_one_warning_and_leaves_the_filters(ewa_ewc_ige):
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.subplots()
    ax.plot([1, 2, 3])
    ax.set_title("日本 / 🚀 / 日本")
    before = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with missing_glyphs():
            render_png(fig)
            warnings.warn("another warning passes on", UserWarning, stacklevel=1)
    assert warnings.filters == before
    glyphs = [w for w in caught if issubclass(w.category, MissingGlyphWarning)]
    assert [str(w.message) for w in glyphs] == [
        "the figures' font (DejaVu Sans) has no glyph for 日 本 🚀 in the names: they show as empty boxes"
    ]
    assert [str(w.message) for w in caught if w.category is UserWarning] == ["another warning passes on"]
    assert not [w for w in caught if "missing from font" in str(w.message)]


def test_figure_text_is_drawn_as_written():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.subplots()
    ax.semilogy([1, 10, 100], label="$x$")
    ax.set_title("$\\foo$ on $y$")
    ax.legend()
    fig.suptitle("a $b$")
    assert render_png(fig)[:4] == b"\x89PNG"  # mathtext would fail on "\\foo"
    names = [ax.title, *ax.get_legend().get_texts(), *fig.texts]
    assert [t.get_text() for t in names] == ["$\\foo$ on $y$", "$x$", "a $b$"]
    assert not any(t.get_parse_math() for t in names)
    # the log axis's tick labels stay mathtext (10 to the power k)
    assert ax.get_yticklabels()[1].get_text().startswith("$\\mathdefault{10^")
    assert all(t.get_parse_math() for t in ax.get_yticklabels())


def test_error_lines_print_names_and_paths_literally(run_cli, tmp_path, ewa_ewc_ige):
    path = hostile_csv(tmp_path, ewa_ewc_ige, MARKUP)
    res = run_cli("johansen", path, "--assets", "[/],[bold]x")
    assert res.exit_code == 2 and res.stdout == ""
    assert res.stderr == (
        f"kalcoint: error: {path}: unknown ticker '[bold]x'; the file has 3 price columns: [/], [red]EWA, EWC\n"
    )
    clean(res)
    odd = tmp_path / "a\x1b[31m[b]c.csv"
    res = run_cli("tune", odd)
    assert res.exit_code == 2
    assert res.stderr.startswith(f"kalcoint: error: {tmp_path}/a\\x1b[31m[b]c.csv: file not found;")
    clean(res)
    missing = tmp_path / "[red]no" / "s.parquet"
    res = run_cli("study", path, "--out", missing, "--assets", "[/],EWC")
    assert res.exit_code == 2
    assert (
        res.stderr == f"kalcoint: error: --out {missing}: directory {missing.parent} does not exist; create it first\n"
    )
    res = run_cli("screen", path, "--out", tmp_path / "s.parquet", "--assets", "[/],[bold]q")
    assert (
        res.exit_code == 2
        and "unknown ticker '[bold]q'; the file has 3 price columns: [/], [red]EWA, EWC" in res.stderr
    )
    # click's own usage errors quote what was typed
    res = run_cli("johansen", path, "--[red]x")
    assert res.exit_code == 2 and res.stderr.startswith("kalcoint: error: No such option: --[red]x")
    clean(res)


def test_screen_prints_names_literally(run_cli, tmp_path, ewa_ewc_ige):
    path = hostile_csv(tmp_path, ewa_ewc_ige, MARKUP)
    res = run_cli("screen", path, "--size", "2", "--out", tmp_path / "s.parquet", "--workers", "0")
    assert res.exit_code == 0
    clean(res)
    assert "│ [/],[red]EWA │" in res.stdout and "│ [/],EWC " in res.stdout


@pytest.mark.slow
def test_live_commands_print_names_literally(run_cli, tmp_path, ewa_ewc_ige):
    head = hostile_csv(tmp_path, ewa_ewc_ige, CONTROL, slice(None, 1300))
    tail = hostile_csv(tmp_path, ewa_ewc_ige, CONTROL, slice(1300, 1310))
    model = tmp_path / "m.kcm"
    assert run_cli("tune", head, "--save", model).exit_code == 0
    for args in (("status", model), ("versions", model), ("update", model, "--prices", tail)):
        res = run_cli(*args)
        assert res.exit_code == 0, args
        clean(res)
    res = run_cli("status", model)
    assert "prices          \\x1b[31mEWA " in res.stdout and "  E\\x00WC " in res.stdout
    assert "shares per unit (1 unit = 1 share of \\x1b[31mEWA): \\x1b[31mEWA +1.0000  E\\x00WC " in res.stdout
    res = run_cli("report", model, "--out", tmp_path / "live.html")
    assert res.exit_code == 0
    clean(res)
    assert (
        f"(live model m.kcm: \\x1b[31mEWA, E\\x00WC, IGE, last date {ewa_ewc_ige.index[1309]:%Y-%m-%d})" in res.stderr
    )


@pytest.mark.slow
def test_compare_and_report_print_names_literally(run_cli, tmp_path, ewa_ewc_ige):
    path = hostile_csv(tmp_path, ewa_ewc_ige, ["[/]", "日本", "\x1b[31mIGE"])
    res = run_cli("compare", path, "--bootstrap", "0", "--plot-dir", tmp_path / "plots")
    assert res.exit_code == 0
    clean(res)
    assert "Comparison: [/], 日本, \\x1b[31mIGE  (n=1500" in res.stdout
    assert "DEGENERATE" in res.stdout
    assert [line for line in res.stderr.splitlines() if line.startswith("note:")] == [
        "note: the figures' font (DejaVu Sans) has no glyph for \\x1b 日 本 in the names: they show as empty boxes"
    ]
    res = run_cli("report", path, "--bootstrap", "0", "--out", tmp_path / "page.html")
    assert res.exit_code == 0
    clean(res)
    assert res.stderr.count("note: the figures' font") == 1 and "Glyph" not in res.stderr


# ---------------------------------------------------------------- overflowing prices


def test_a_price_whose_square_overflows_is_refused_by_name_and_date(run_cli, tmp_path, ewa_ewc_ige):
    for big in (1e308, 1e100):
        frame = ewa_ewc_ige.copy()
        frame.iloc[100, 1] = big
        path = tmp_path / "big.csv"
        frame.to_csv(path, index_label="Date")
        day = f"{frame.index[100]:%Y-%m-%d}"
        for command in (("johansen",), ("tune", "--method", "mle"), ("compare", "--bootstrap", "0")):
            res = run_cli(command[0], path, *command[1:])
            assert res.exit_code == 2 and res.stdout == "", command
            assert res.stderr == (
                f"kalcoint: error: {path}: column 'EWC': price {big:g} on {day} is beyond 1e+50 in size: "
                "squares and products of prices would overflow float64; correct the value\n"
            )
    frame.iloc[100, 1] = 1e308
    with pytest.raises(KalcointError, match=rf"^column 'EWC': price 1e\+308 on {day} is beyond 1e\+50"):
        kc.johansen(frame)
    with pytest.raises(KalcointError, match=r"^column 'x2': price 1e\+308 on row 101 is beyond"):
        kc.johansen(frame.to_numpy())
    with pytest.raises(KalcointError, match=rf"^column 'EWC': price 1e\+308 on {day}"):
        kc.kalman_filter(frame, kc.StateSpaceModel.chan(3))
    frame.iloc[100, 1] = 1e50  # the bound itself is accepted
    assert np.isfinite(kc.johansen(frame).trace_stat).all()


# ---------------------------------------------------------------- flags in messages


def test_library_names_become_the_commands_flags():
    err = KalcointError("capital=-5 must be > 0 (the capital); or resume=True", params=("capital", "resume"))
    assert cli_message(err) == "--capital -5 must be > 0 (the capital); or --resume"
    err = KalcointError("window 10 leaves no week; lower train_fraction", params=("window", "train_fraction"))
    assert cli_message(err) == "--window 10 leaves no week; lower --train-fraction"
    err = KalcointError("model file m.kcm does not exist; create one with save_model()")
    assert cli_message(err) == "model file m.kcm does not exist; create one with `kalcoint tune PRICES --save MODEL`"


def test_each_command_names_its_flags(run_cli, tmp_path, chan_file):
    out = tmp_path / "x"
    cases = [
        (("study", chan_file, "--out", out / "s.parquet", "--trials", "1"), "--trials 1 must be >= 2"),
        (("study", chan_file, "--out", out / "s.parquet", "--block", "0.5"), "--block 0.5 must be >= 1 day"),
        (
            ("report", chan_file, "--assets", "EWA,EWC", "--window", "10", "--out", out / "r.html"),
            "--window 10 must be an integer >= 20 (trading days)",
        ),
        (
            ("report", chan_file, "--assets", "EWA,EWC", "--train-fraction", "0.99", "--out", out / "r.html"),
            "--train-fraction 0.99 must be between 0.2 and 0.95",
        ),
        (
            ("backtest", chan_file, "--assets", "EWA,EWC", "--method", "chan", "--cost-bps", "-3"),
            "--cost-bps -3.0 must be a finite number >= 0",
        ),
        (
            ("status", tmp_path / "none.kcm"),
            f"model file {tmp_path / 'none.kcm'} does not exist; create one with `kalcoint tune PRICES --save MODEL`",
        ),
    ]
    out.mkdir()
    for args, message in cases:
        res = run_cli(*args)
        assert res.exit_code == 2, args
        assert res.stderr.startswith("kalcoint: error: ") and res.stderr.count("\n") == 1, res.stderr
        assert message in res.stderr, (args, res.stderr)

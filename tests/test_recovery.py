"""Recovery of planted baskets: on a generated universe (60 assets, 5 planted pairs among 1,770)
the screen's ranking puts the planted pairs first whatever their tuning status, the printed top N
shows them with that status, and the study's selection picks planted pairs far above chance."""

from __future__ import annotations

import pytest

import kalcoint as kc
from kalcoint.screen import ScreenOptions, rank_table
from kalcoint.study import StudyOptions, study
from kalcoint.synthetic import planted_share, recovery, universe

pytestmark = pytest.mark.slow  # a serial screen of 1,770 pairs: ~5 s of CPU


@pytest.fixture(scope="module")
def truth():
    return universe(60, 1500, planted=5, seed=3)


@pytest.fixture(scope="module")
def table(truth):
    return kc.screen(truth.prices, ScreenOptions(size=2), workers=0)


def test_screen_ranks_planted_pairs_first(table, truth):
    rec = recovery(table, truth)
    assert (rec.planted, rec.screened) == (5, 1770)
    assert rec.in_top == 4 and rec.positions[:4] == (1, 2, 3, 4)
    assert rec.roc_auc > 0.98


def test_planted_pairs_whose_tuning_fails_are_ranked_with_their_status(table, truth):
    top = rank_table(table, "static", top=5)
    planted = truth.planted_sets()
    hits = top[[frozenset(a) in planted for a in top["assets"]]]
    assert len(hits) == 4
    assert "failed" in set(hits["status"])  # hidden by a ranking of ok rows only
    assert all(r.startswith("tuning: ") for r in hits.loc[hits["status"] == "failed", "reason"])


def test_printed_top_shows_failed_planted_pairs(run_cli, tmp_path, truth, table):
    prices = tmp_path / "universe.csv"
    truth.prices.to_csv(prices)
    res = run_cli("screen", prices, "--size", "2", "--workers", "0", "--top", "4", "--out", tmp_path / "s.parquet")
    assert res.exit_code == 0, res.stderr
    ranked = rank_table(table, "static", top=4)
    for assets, status in zip(ranked["assets"], ranked["status"]):
        line = next(line for line in res.stdout.splitlines() if ",".join(assets) in line)
        assert status in line
    assert "failed: tuning" in res.stdout


def test_study_selects_planted_pairs_far_above_chance(truth):
    table, _ = study(truth.prices, StudyOptions(top=5, models=("static", "chan"), n_boot=200), workers=0)
    share, per_period = planted_share(table, truth)
    assert len(per_period) == 10
    # chance: 5 planted among 1,770 pairs, 0.3% of a random selection
    assert share >= 0.15
    assert sum(n > 0 for n in per_period) >= 6

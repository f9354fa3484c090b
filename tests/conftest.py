"""Shared fixtures: the packaged real data (:mod:`kalcoint.datasets`), Chan's ETF triplet, a CLI runner,
and the hypothesis profiles of the property tests (tests/test_properties_*.py).

Profiles: ``kalcoint`` (loaded by default) draws the same examples on every run (derandomized,
no example database, no deadline: a compiled kernel's first call may take seconds) and few of
them, so the fast properties add seconds to ``make test-fast``; each property also has a slow
twin (``@pytest.mark.slow``, ``_deep`` in its name) that sets a larger ``max_examples``.
``--hypothesis-profile=kalcoint-explore`` draws new random examples on each run (a failure prints
the seed and blob that reproduce it), for hunting defects rather than for CI.
"""

from __future__ import annotations

import gzip
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, settings

from kalcoint import datasets

REPO = Path(__file__).resolve().parents[1]
CHAN_FILE = datasets.path("chan_etf")

settings.register_profile(
    "kalcoint",
    derandomize=True,
    database=None,
    max_examples=8,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("kalcoint-explore", settings.get_profile("kalcoint"), derandomize=False)
settings.load_profile("kalcoint")


@pytest.fixture(scope="session")
def chan_file(tmp_path_factory) -> Path:
    """Chan's file as plain CSV text (the packaged dataset uncompressed), for tests that edit its bytes."""
    path = tmp_path_factory.mktemp("data") / "chan_etf_close.csv"
    path.write_bytes(gzip.decompress(CHAN_FILE.read_bytes()))
    return path


@pytest.fixture(scope="session")
def ewa_ewc_ige() -> pd.DataFrame:
    """EWA, EWC, IGE closes from Chan's file (1500 rows, 2006-04-26 to 2012-04-09)."""
    from kalcoint.data import load_prices

    return load_prices(CHAN_FILE, ["EWA", "EWC", "IGE"])


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """Run ``kalcoint ARGS`` in-process through the real entry point; returns exit code and output."""
    from kalcoint.cli import main

    def _run(*args: str | Path) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["kalcoint", *map(str, args)])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out = capsys.readouterr()
        return CliResult(code, out.out, out.err)

    return _run

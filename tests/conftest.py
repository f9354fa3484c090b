"""Shared fixtures: the packaged real data (:mod:`kalcoint.datasets`), Chan's ETF triplet, and a CLI runner."""

from __future__ import annotations

import gzip
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from kalcoint import datasets

REPO = Path(__file__).resolve().parents[1]
CHAN_FILE = datasets.path("chan_etf")


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

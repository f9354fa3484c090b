"""The Examples sections of the public docstrings are run and their printed figures checked."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "kalcoint._checks",
    "kalcoint._io",
    "kalcoint.alpha_test",
    "kalcoint.backtest",
    "kalcoint.live",
    "kalcoint.oos",
    "kalcoint.report",
    "kalcoint.report.basket",
    "kalcoint.report.live",
    "kalcoint.schedule",
    "kalcoint.screen",
    "kalcoint.study",
    "kalcoint.synthetic",
    "kalcoint.tuning.als",
]


@pytest.mark.slow
@pytest.mark.parametrize("name", MODULES)
def test_examples_in_docstrings_hold(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0

"""Every example in kalcoint's docstrings runs, and the figures it prints are the ones shown.

The modules are found by walking the package, so the examples of a new module are run without
listing it here. A module's ``>>>`` lines are counted in its source and each must be attempted:
an example is skipped only where it cannot run at all (it needs a cluster), with the reason on
its line. Modules whose examples take more than ~2.5 s (drawing every chart, or a whole page) are marked slow.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil
import re

import pytest

import kalcoint

SLOW = {"kalcoint.report", "kalcoint.report.basket", "kalcoint.plots", "kalcoint.study"}
"""Modules whose examples take more than ~5 s (the report renders every chart of a basket page)."""

PROMPT = re.compile(r"^\s*>>> ", re.MULTILINE)
SKIP = re.compile(r"^\s*>>> .*# (?P<reason>[^#]*\S)\s*# doctest: \+SKIP$", re.MULTILINE)


def module_names() -> list[str]:
    """kalcoint and every module below it."""
    # a package that fails to import is an error here, not a silently shorter list
    found = pkgutil.walk_packages(kalcoint.__path__, "kalcoint.", onerror=importlib.import_module)
    return ["kalcoint", *sorted(m.name for m in found)]


def params() -> list:
    return [pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name for name in module_names()]


def test_the_walk_finds_the_modules_with_examples():
    names = module_names()
    assert {"kalcoint.filtering", "kalcoint.tuning", "kalcoint.tuning.mle", "kalcoint.datasets"} <= set(names)
    assert SLOW <= set(names)


@pytest.mark.parametrize("name", params())
def test_examples_in_docstrings_hold(name):
    module = importlib.import_module(name)
    source = inspect.getsource(module)
    prompts = len(PROMPT.findall(source))
    skipped = len(SKIP.findall(source))
    assert source.count("+SKIP") == skipped, "a skipped example must say on its line why it cannot run"
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted == prompts - skipped

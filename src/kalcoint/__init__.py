"""kalcoint: trade cointegrated portfolios with a Kalman filter.

The pipeline, one module per step: :mod:`kalcoint.data` (price panels),
:mod:`kalcoint.cointegration` (Johansen, ADF, half-life), :mod:`kalcoint.filtering`
(the filter and smoother), :mod:`kalcoint.tuning` (the seed method's passes, MLE, EM,
diagnosis), :mod:`kalcoint.strategy` and :mod:`kalcoint.backtest`, :mod:`kalcoint.live`
(saved models), :mod:`kalcoint.screen` (universes), :mod:`kalcoint.plots`.

Importing kalcoint loads none of them (nor numpy, numba, scipy or statsmodels): each name
below is imported from its module on first use (``kalcoint.tune``, ``from kalcoint import
johansen``), and importing kalcoint changes no global state (no environment variable, no
numba setting; threads are limited only around the compiled hot paths, see
:mod:`kalcoint._threads`).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "cointegration": ("AdfResult", "JohansenResult", "adf", "half_life", "johansen"),
    "data": ("load_prices", "validate_prices"),
    "errors": ("ComputationError", "KalcointError"),
    "filtering": ("FilterResult", "StateSpaceModel", "kalman_filter", "rts_smoother"),
    "tuning": ("TunedModel", "tune"),
    "comparison": ("Comparison", "compare"),
    "synthetic": ("demo_prices", "simulate"),
    "live": ("LiveModel", "load_model", "save_model"),
    "backtest": ("BacktestResult", "compare_backtests"),
    "screen": ("screen",),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
_SUBMODULES = (
    "alpha_test",
    "backtest",
    "cli",
    "cointegration",
    "comparison",
    "data",
    "datasets",
    "errors",
    "filtering",
    "live",
    "oos",
    "plots",
    "schedule",
    "screen",
    "strategy",
    "synthetic",
    "tuning",
    "warmup",
)

__all__ = [
    "AdfResult",
    "BacktestResult",
    "backtest",
    "screen",
    "Comparison",
    "ComputationError",
    "FilterResult",
    "JohansenResult",
    "KalcointError",
    "LiveModel",
    "StateSpaceModel",
    "TunedModel",
    "adf",
    "compare",
    "compare_backtests",
    "datasets",
    "demo_prices",
    "half_life",
    "johansen",
    "kalman_filter",
    "load_model",
    "load_prices",
    "rts_smoother",
    "save_model",
    "simulate",
    "tune",
    "validate_prices",
]


_FUNCTION_OVER_MODULE = ("screen",)
"""``kalcoint.screen`` is the function; its module stays importable (``from kalcoint.screen import
...``). ``kalcoint.backtest`` is the module, and calling it runs the function
(``kc.backtest(prices, ...)``; ``kalcoint.backtest.backtest`` is the function itself)."""


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        # importing the submodule binds it on the package: keep the function of the same name instead
        if name in _FUNCTION_OVER_MODULE and isinstance(value, types.ModuleType):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    """Import a public name (or a submodule) on first use."""
    if name in _FUNCTION_OVER_MODULE:
        importlib.import_module(f".{name}", __name__)
        return globals()[name]
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'kalcoint' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # for type checkers and IDEs: the names as if imported eagerly
    from .backtest import BacktestResult, backtest, compare_backtests
    from .cointegration import AdfResult, JohansenResult, adf, half_life, johansen
    from .comparison import Comparison, compare
    from . import datasets
    from .data import load_prices, validate_prices
    from .errors import ComputationError, KalcointError
    from .filtering import FilterResult, StateSpaceModel, kalman_filter, rts_smoother
    from .live import LiveModel, load_model, save_model
    from .screen import screen
    from .synthetic import demo_prices, simulate
    from .tuning import TunedModel, tune

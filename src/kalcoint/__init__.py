"""kalcoint: trade cointegrated portfolios with a Kalman filter.

The pipeline, one module per step: :mod:`kalcoint.data` (price panels),
:mod:`kalcoint.cointegration` (Johansen, ADF, half-life), :mod:`kalcoint.filtering`
(the filter and smoother), :mod:`kalcoint.tuning` (the seed method's passes, MLE, EM,
diagnosis), :mod:`kalcoint.strategy` and :mod:`kalcoint.backtest`, :mod:`kalcoint.live`
(saved models), :mod:`kalcoint.screen` (universes), :mod:`kalcoint.plots`.
"""

import os as _os

# kalcoint's matrices are k x k with k ~ 2-5: a threaded BLAS only oversubscribes the cores
# (scipy's L-BFGS-B and the Dask screen workers slowed ~10x under load). Respect a user's setting.
for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
    _os.environ.setdefault(_var, "1")

from ._numba_cache import configure as _configure_numba_cache

_configure_numba_cache()  # before any kernel is defined

from .cointegration import AdfResult, JohansenResult, adf, half_life, johansen
from .data import load_prices, validate_prices
from .errors import ComputationError, KalcointError
from .filtering import FilterResult, StateSpaceModel, kalman_filter, rts_smoother
from .tuning import TunedModel, tune
from .comparison import Comparison, compare
from .synthetic import demo_prices, simulate
from .live import LiveModel, load_model, save_model
from .backtest import BacktestResult, compare_backtests
from .backtest import backtest  # the function (the module stays importable as kalcoint.backtest)
from .screen import screen  # the function, likewise

__version__ = "0.1.0"

__all__ = [
    "AdfResult", "BacktestResult", "backtest", "screen", "Comparison", "ComputationError", "FilterResult", "JohansenResult",
    "KalcointError", "LiveModel", "StateSpaceModel", "TunedModel", "adf", "compare", "compare_backtests",
    "demo_prices", "half_life", "johansen", "kalman_filter", "load_model", "load_prices", "rts_smoother",
    "save_model", "simulate", "tune", "validate_prices",
]

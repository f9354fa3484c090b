"""kalcoint: trade cointegrated portfolios with a Kalman filter.

The pipeline, one module per step: :mod:`kalcoint.data` (price panels),
:mod:`kalcoint.cointegration` (Johansen, ADF, half-life), :mod:`kalcoint.filtering`
(the filter and smoother), :mod:`kalcoint.tuning` (the seed method's passes, MLE, EM,
diagnosis), :mod:`kalcoint.strategy` and :mod:`kalcoint.backtest`, :mod:`kalcoint.live`
(saved models), :mod:`kalcoint.screen` (universes), :mod:`kalcoint.plots`.
"""

from .cointegration import AdfResult, JohansenResult, adf, half_life, johansen
from .data import load_prices, validate_prices
from .errors import ComputationError, KalcointError
from .filtering import FilterResult, StateSpaceModel, kalman_filter, rts_smoother
from .tuning import TunedModel, tune
from .comparison import Comparison, compare
from .synthetic import demo_prices, simulate
from .live import LiveModel, load_model, save_model

__version__ = "0.1.0"

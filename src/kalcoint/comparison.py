"""The method's comparison table (docs/method.md §7), with the honest columns of §9.

One row per variant: ``static_johansen``, ``alpha_1``, ``alpha_estimated``, ``adaptive``,
``chan``, ``mle``, ``em``. Each row gives ``alpha11``, ``obs_var``, the ADF statistic,
lags and p-value of its portfolio, the log-likelihood of its innovations, a Ljung-Box
test of the standardised innovations, the degeneracy flag, and an out-of-sample block:
tuned on the first ``train_fraction`` of the rows, then run over the rest.

Out of sample, a filter continues from its posterior state at the end of the training
rows with the tuned quantities (as a trader would run it); the static portfolio keeps the
Johansen weights estimated on the training rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd
from statsmodels.stats.diagnostic import acorr_ljungbox

from .cointegration import JohansenResult, adf, johansen
from .errors import ComputationError, KalcointError
from .filtering import FilterResult, StateSpaceModel, kalman_filter
from .tuning import TunedModel, tune

ROW_NAMES = ("static_johansen", "alpha_1", "alpha_estimated", "adaptive", "chan", "mle", "em")
LJUNG_BOX_LAGS = 10


@dataclass
class ComparisonRow:
    """One variant of the comparison; ``None`` where a figure does not apply."""

    name: str
    alpha11: float | None
    obs_var: float | None
    adf_stat: float
    adf_lags: int
    adf_pvalue: float
    loglik: float | None = None
    ljung_box_pvalue: float | None = None
    degenerate: bool = False
    degenerate_reasons: list[str] = field(default_factory=list)
    iterations: int | None = None
    oos_adf_pvalue: float | None = None
    oos_loglik: float | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Comparison:
    """The comparison for one basket: rows, the Johansen result, and the fitted variants
    (``tuned[name]`` for tuned rows, ``results[name]`` for the in-sample filter outputs)."""

    assets: list[str]
    johansen: JohansenResult
    rows: list[ComparisonRow]
    prices: pd.DataFrame
    tuned: dict[str, TunedModel]
    results: dict[str, FilterResult]
    train_fraction: float
    iterations: int

    def row(self, name: str) -> ComparisonRow:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The JSON record of ``kalcoint compare``: ``assets, johansen, rows`` (+ settings)."""
        return {
            "assets": list(self.assets),
            "johansen": self.johansen.to_dict(),
            "rows": [r.to_dict() for r in self.rows],
            "iterations": self.iterations,
            "train_fraction": self.train_fraction,
            "nobs": int(len(self.prices)),
            "oos_rows": int(len(self.prices) - _split(len(self.prices), self.train_fraction)),
        }

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([r.to_dict() for r in self.rows]).set_index("name")


def _split(n: int, train_fraction: float) -> int:
    return int(round(n * train_fraction))


def ljung_box_pvalue(result: FilterResult, lags: int = LJUNG_BOX_LAGS) -> float:
    """Ljung-Box p-value (``lags`` lags) of the standardised innovations ``e_t / sqrt(Q_t)``,
    first observation left out (its prior is not a forecast)."""
    z = result.standardized_innovation[1:]
    return float(acorr_ljungbox(z, lags=[lags], return_df=True)["lb_pvalue"].iloc[-1])


def _filter_row(name: str, result: FilterResult, model: StateSpaceModel) -> ComparisonRow:
    test = adf(result.spread)
    return ComparisonRow(
        name=name, alpha11=model.alpha11, obs_var=model.obs_var, adf_stat=test.stat, adf_lags=test.lags,
        adf_pvalue=test.pvalue, loglik=result.loglik, ljung_box_pvalue=ljung_box_pvalue(result),
    )


def _continue_out_of_sample(train: FilterResult, test_prices: pd.DataFrame, model: StateSpaceModel) -> FilterResult:
    return kalman_filter(test_prices, model, start=train.last_posterior)


def _oos(row: ComparisonRow, oos: FilterResult) -> None:
    row.oos_adf_pvalue = adf(oos.spread).pvalue
    row.oos_loglik = oos.loglik


def _static_row(prices: pd.DataFrame, test: pd.DataFrame, jres: JohansenResult, jtrain: JohansenResult
                ) -> ComparisonRow:
    full = adf(jres.portfolio(prices))
    row = ComparisonRow("static_johansen", None, None, full.stat, full.lags, full.pvalue)
    row.oos_adf_pvalue = adf(jtrain.portfolio(test)).pvalue
    return row


def _chan_row(prices: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame, model: StateSpaceModel
              ) -> tuple[ComparisonRow, FilterResult]:
    full = kalman_filter(prices, model)
    row = _filter_row("chan", full, model)
    _oos(row, _continue_out_of_sample(kalman_filter(train, model), test, model))
    return row, full


def _tuned_row(name: str, prices: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame, jres: JohansenResult,
               jtrain: JohansenResult, iterations: int) -> tuple[ComparisonRow, TunedModel]:
    """Rows ``alpha_1`` and ``alpha_estimated`` (first seed pass), ``adaptive`` (all passes), ``mle``, ``em``."""
    method = name if name in ("mle", "em") else "seed"
    options: dict[str, Any] = {"iterations": iterations}
    if name in ("alpha_1", "alpha_estimated"):
        options["iterations"] = 1
    if name == "alpha_1":
        options["fixed_alpha11"] = 1.0
    fit = tune(prices, method=method, johansen_result=jres, **options)
    row = _filter_row(name, fit.result, fit.model)
    row.iterations = fit.iterations
    row.degenerate, row.degenerate_reasons = fit.degenerate, list(fit.degenerate_reasons)
    fit_train = tune(train, method=method, johansen_result=jtrain, diagnose=False, **options)
    _oos(row, _continue_out_of_sample(fit_train.result, test, fit_train.model))
    return row, fit


def compare(
    prices: pd.DataFrame,
    iterations: int = 2000,
    train_fraction: float = 0.7,
    *,
    delta: float = 1e-4,
    chan_obs_var: float = 1e-3,
    det_order: int = 0,
    k_ar_diff: int = 1,
    rows: tuple[str, ...] = ROW_NAMES,
    progress: Callable[[str], None] | None = None,
) -> Comparison:
    """Build the comparison of docs/method.md §7 (plus MLE/EM and out-of-sample columns).

    prices : (n, k) panel, first column dependent. ``iterations`` is the number of seed
    passes for ``adaptive`` (and the iteration cap for ``mle``/``em``).
    A variant that fails (e.g. the seed passes break down) becomes a row with ``error``.
    """
    unknown = [r for r in rows if r not in ROW_NAMES]
    if unknown:
        raise KalcointError(f"unknown comparison rows {unknown}; choose from {', '.join(ROW_NAMES)}")
    if not 0.2 <= train_fraction <= 0.95:
        raise KalcointError(f"--train-fraction {train_fraction} must be between 0.2 and 0.95")
    n = len(prices)
    n_train = _split(n, train_fraction)
    train, test = prices.iloc[:n_train], prices.iloc[n_train:]
    if len(test) < 30:
        raise KalcointError(f"out-of-sample part has {len(test)} rows; needs at least 30 (lower --train-fraction)")
    jres = johansen(prices, det_order=det_order, k_ar_diff=k_ar_diff)
    jtrain = johansen(train, det_order=det_order, k_ar_diff=k_ar_diff)
    say = progress or (lambda _msg: None)
    out_rows: list[ComparisonRow] = []
    tuned: dict[str, TunedModel] = {}
    results: dict[str, FilterResult] = {}
    for name in rows:
        say(name)
        try:
            if name == "static_johansen":
                row = _static_row(prices, test, jres, jtrain)
            elif name == "chan":
                model = StateSpaceModel.chan(prices.shape[1], delta=delta, obs_var=chan_obs_var)
                row, results[name] = _chan_row(prices, train, test, model)
            else:
                row, tuned[name] = _tuned_row(name, prices, train, test, jres, jtrain, iterations)
                results[name] = tuned[name].result
        except ComputationError as exc:
            row = ComparisonRow(name, None, None, float("nan"), 0, float("nan"), error=str(exc))
        out_rows.append(row)
    return Comparison(list(map(str, prices.columns)), jres, out_rows, prices, tuned, results,
                      train_fraction, iterations)

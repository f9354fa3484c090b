"""The method's comparison table (docs/method.md §7), with the honest columns of §9.

One row per variant: ``static_johansen``, ``alpha_1``, ``alpha_estimated``, ``adaptive``,
``chan``, ``mle``, ``em``, ``als``. Each row gives ``alpha11``, ``obs_var``, the ADF statistic,
lags and p-value of its portfolio, the log-likelihood of its innovations, a Ljung-Box
test of the standardised innovations, the flags (``DEGENERATE``; ``BELOW MLE`` for an ``em`` row
more than :data:`BELOW_MLE_TOL` below the ``mle`` row's log-likelihood, on the whole sample or the
training rows), and an out-of-sample block: tuned on the first ``train_fraction`` of the rows,
then run over the rest.

Out of sample (:mod:`kalcoint.oos`: the first ``floor(train_fraction * n)`` rows), a filter
continues from its posterior state at the end of the training rows with the tuned quantities
(as a trader would run it); the static portfolio keeps the Johansen weights estimated on the
training rows.

``alpha11_test`` (:mod:`kalcoint.alpha_test`) adds the likelihood-ratio test of
``alpha11 = 1`` against ``alpha11`` free on the full sample, with its bootstrap p-value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd
from statsmodels.stats.diagnostic import acorr_ljungbox

from ._checks import CHAN_DELTA, CHAN_OBS_VAR
from ._summary import Summary, Table, cell
from .alpha_test import BOOTSTRAP, Alpha11Test, alpha11_test, check_options
from .cointegration import JohansenResult, adf, johansen
from .errors import ComputationError, KalcointError
from .filtering import FilterResult, StateSpaceModel, kalman_filter
from .oos import continue_filter, split_rows
from .tuning import TunedModel, tune

ROW_NAMES = ("static_johansen", "alpha_1", "alpha_estimated", "adaptive", "chan", "mle", "em", "als")
LJUNG_BOX_LAGS = 10
BELOW_MLE_TOL = 0.01
"""An ``em`` row whose log-likelihood (whole sample or training rows) is more than this below the
``mle`` row's is flagged ``BELOW MLE``: EM stopped at a stationary point short of the maximum."""


@dataclass(frozen=True)
class ComparisonRow:
    """One variant of the comparison; ``None`` where a figure does not apply.

    Examples
    --------
    >>> ComparisonRow("static_johansen", None, None, -3.34, 12, 0.0132).adf_pvalue
    0.0132
    """

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
    below_mle: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The row's JSON record."""
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items()}

    @property
    def flag(self) -> str:
        """``DEGENERATE`` and/or ``BELOW MLE`` (see :data:`BELOW_MLE_TOL`), or ``""``."""
        return ", ".join(w for w, on in (("DEGENERATE", self.degenerate), ("BELOW MLE", self.below_mle)) if on)


@dataclass(frozen=True)
class Comparison:
    """The comparison for one basket: rows, the Johansen result, and the fitted variants
    (``tuned[name]`` for tuned rows, ``results[name]`` for the in-sample filter outputs).

    Examples
    --------
    >>> import kalcoint as kc
    >>> comp = kc.compare(kc.demo_prices(), iterations=20, rows=("static_johansen", "chan"), bootstrap=0)
    >>> [r.name for r in comp.rows]
    ['static_johansen', 'chan']
    >>> print(comp.summary())
    Comparison: ETFA, ETFB, ETFC (nobs=1500, 2015-01-02 to 2020-10-01; out of sample = last 450 rows)
    row              alpha11  obs_var  ADF stat  lags     ADF p     loglik  LB p  OOS ADF p  OOS loglik  flag
    ---------------  -------  -------  --------  ----  --------  ---------  ----  ---------  ----------  ----
    static_johansen        -        -    -4.936     2  2.97e-05          -     -      0.119           -
    chan                   1    0.001    -1.454    22     0.556  -635672.6     1       0.26      -108.6
    ADF: constant, lags by AIC. LB p: Ljung-Box (10 lags) of the standardised innovations. OOS: tuned on the first part, filter continued over the rest.
    """

    assets: list[str]
    johansen: JohansenResult
    rows: list[ComparisonRow]
    prices: pd.DataFrame
    tuned: dict[str, TunedModel]
    results: dict[str, FilterResult]
    train_fraction: float
    iterations: int
    alpha11_test: Alpha11Test | None = None

    @property
    def nobs(self) -> int:
        """Rows of the sample."""
        return int(len(self.prices))

    @property
    def oos_nobs(self) -> int:
        """Rows of the out-of-sample part."""
        return self.nobs - split_rows(self.nobs, self.train_fraction)

    def row(self, name: str) -> ComparisonRow:
        """The row called ``name``."""
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
            "nobs": self.nobs,
            "oos_rows": self.oos_nobs,
            "alpha11_test": self.alpha11_test.to_dict() if self.alpha11_test is not None else None,
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per variant, indexed by ``name``."""
        return pd.DataFrame([r.to_dict() for r in self.rows]).set_index("name")

    def summary(self) -> Summary:
        """The comparison table; ``print`` it, or show it in a notebook."""
        header = (
            "row",
            "alpha11",
            "obs_var",
            "ADF stat",
            "lags",
            "ADF p",
            "loglik",
            "LB p",
            "OOS ADF p",
            "OOS loglik",
            "flag",
        )
        rows = []
        for r in self.rows:
            if r.error:
                rows.append((r.name, *["-"] * 9, f"failed: {r.error}"))
                continue
            rows.append(
                (
                    r.name,
                    cell(r.alpha11, ".4g"),
                    cell(r.obs_var, ".3g"),
                    cell(r.adf_stat, ".3f"),
                    cell(r.adf_lags),
                    cell(r.adf_pvalue, ".3g"),
                    cell(r.loglik, ".1f"),
                    cell(r.ljung_box_pvalue, ".3g"),
                    cell(r.oos_adf_pvalue, ".3g"),
                    cell(r.oos_loglik, ".1f"),
                    r.flag,
                )
            )
        idx = self.prices.index
        span = f", {idx[0]:%Y-%m-%d} to {idx[-1]:%Y-%m-%d}" if isinstance(idx, pd.DatetimeIndex) else ""
        title = (
            f"Comparison: {', '.join(self.assets)} (nobs={self.nobs}{span}; out of sample = last {self.oos_nobs} rows)"
        )
        notes = (
            "ADF: constant, lags by AIC. LB p: Ljung-Box (10 lags) of the standardised innovations. "
            "OOS: tuned on the first part, filter continued over the rest.",
        ) + tuple(
            f"BELOW MLE: the {r.name} fit's log-likelihood is {r.below_mle:.3g} below the mle fit's (whole sample "
            "or training rows): a stationary point short of the maximum."
            for r in self.rows
            if r.below_mle
        )
        return Summary(title, (Table(header, tuple(rows)),), notes)


def ljung_box_pvalue(result: FilterResult, lags: int = LJUNG_BOX_LAGS) -> float:
    """Ljung-Box p-value (``lags`` lags) of the standardised innovations ``e_t / sqrt(Q_t)``,
    first observation left out (its prior is not a forecast).

    Examples
    --------
    >>> import kalcoint as kc
    >>> res = kc.kalman_filter(kc.demo_prices(), kc.StateSpaceModel.chan(3))
    >>> 0.0 <= ljung_box_pvalue(res) <= 1.0
    True
    """
    z = result.standardized_innovation[1:]
    return float(acorr_ljungbox(z, lags=[lags], return_df=True)["lb_pvalue"].iloc[-1])


def _filter_row(name: str, result: FilterResult, model: StateSpaceModel) -> ComparisonRow:
    test = adf(result.spread)
    return ComparisonRow(
        name=name,
        alpha11=model.alpha11,
        obs_var=model.obs_var,
        adf_stat=test.stat,
        adf_lags=test.lags,
        adf_pvalue=test.pvalue,
        loglik=result.loglik,
        ljung_box_pvalue=ljung_box_pvalue(result),
    )


def _oos(row: ComparisonRow, oos: FilterResult) -> ComparisonRow:
    return replace(row, oos_adf_pvalue=adf(oos.spread).pvalue, oos_loglik=oos.loglik)


def _static_row(
    prices: pd.DataFrame, test: pd.DataFrame, jres: JohansenResult, jtrain: JohansenResult
) -> ComparisonRow:
    full = adf(jres.portfolio(prices))
    return ComparisonRow(
        "static_johansen",
        None,
        None,
        full.stat,
        full.lags,
        full.pvalue,
        oos_adf_pvalue=adf(jtrain.portfolio(test)).pvalue,
    )


def _chan_row(
    prices: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame, model: StateSpaceModel
) -> tuple[ComparisonRow, FilterResult]:
    full = kalman_filter(prices, model)
    row = _filter_row("chan", full, model)
    return _oos(row, continue_filter(kalman_filter(train, model), test)), full


def _tuned_row(
    name: str,
    prices: pd.DataFrame,
    train: pd.DataFrame,
    test: pd.DataFrame,
    jres: JohansenResult,
    jtrain: JohansenResult,
    iterations: int,
) -> tuple[ComparisonRow, TunedModel, float]:
    """Rows ``alpha_1`` and ``alpha_estimated`` (first seed pass), ``adaptive`` (all passes), ``mle``, ``em``;
    with the fit and the log-likelihood of the fit on the training rows."""
    method = name if name in ("mle", "em", "als") else "seed"
    options: dict[str, Any] = {"iterations": iterations}
    if name in ("alpha_1", "alpha_estimated"):
        options["iterations"] = 1
    if name == "alpha_1":
        options["fix_alpha11"] = 1.0
    fit = tune(prices, method=method, johansen_result=jres, **options)
    row = replace(
        _filter_row(name, fit.result, fit.model),
        iterations=fit.iterations,
        degenerate=fit.degenerate,
        degenerate_reasons=list(fit.degenerate_reasons),
    )
    fit_train = tune(train, method=method, johansen_result=jtrain, diagnose=False, **options)
    return _oos(row, continue_filter(fit_train.result, test)), fit, fit_train.loglik


def _below_mle(rows: list[ComparisonRow], train_logliks: dict[str, float]) -> list[ComparisonRow]:
    """``rows`` with the ``em`` row's ``below_mle`` set when its log-likelihood, on the whole sample
    or on the training rows, is more than :data:`BELOW_MLE_TOL` below the ``mle`` row's."""
    fits = {r.name: r for r in rows if r.name in ("mle", "em") and r.loglik is not None}
    if len(fits) < 2 or len(train_logliks) < 2:
        return rows
    gap = max(fits["mle"].loglik - fits["em"].loglik, train_logliks["mle"] - train_logliks["em"])  # type: ignore[operator]
    if not gap > BELOW_MLE_TOL:
        return rows
    return [replace(r, below_mle=float(gap)) if r.name == "em" else r for r in rows]


def compare(
    prices: pd.DataFrame,
    iterations: int = 2000,
    train_fraction: float = 0.7,
    *,
    delta: float = CHAN_DELTA,
    chan_obs_var: float = CHAN_OBS_VAR,
    det_order: int = 0,
    k_ar_diff: int = 1,
    rows: tuple[str, ...] = ROW_NAMES,
    progress: Callable[[int, int], None] | None = None,
    bootstrap: int = BOOTSTRAP,
    seed: int = 0,
    workers: int | None = None,
) -> Comparison:
    """Build the comparison of docs/method.md §7 (plus MLE/EM and out-of-sample columns).

    Parameters
    ----------
    prices : DataFrame, shape (n, k)
        Prices indexed by date, first column = dependent asset.
    iterations : int
        Seed passes for ``adaptive`` (and the iteration cap for ``mle``/``em``).
    train_fraction : float
        Share of the rows (first ``floor(train_fraction * n)``, :func:`kalcoint.oos.split_rows`)
        the out-of-sample columns are tuned on, in [0.2, 0.95].
    delta, chan_obs_var : float
        Chan's filter (defaults 1e-4 and 1e-3).
    det_order, k_ar_diff : int
        Johansen options.
    rows : tuple of str
        The variants, a subset of :data:`ROW_NAMES`.
    progress : callable, optional
        Called as ``progress(done, total)`` after each step: the first ``len(rows)`` steps are
        the rows, the rest the test of ``alpha11 = 1`` (one step per bootstrap sample, or one
        step when ``bootstrap = 0``), so ``total = len(rows) + max(bootstrap, 1)``.
    bootstrap, seed, workers : int
        The test of ``alpha11 = 1`` (:func:`kalcoint.alpha_test.alpha11_test`; ``bootstrap = 0``
        gives its statistic without a p-value); ``alpha11_test`` is None when its maximum-likelihood
        fits fail.

    Returns
    -------
    Comparison
        A variant that fails (e.g. the seed passes break down) becomes a row with ``error``.

    Examples
    --------
    >>> import kalcoint as kc
    >>> comp = kc.compare(kc.demo_prices(), iterations=20, rows=("static_johansen", "alpha_estimated"),
    ...                    bootstrap=0)
    >>> round(comp.row("alpha_estimated").alpha11, 4)
    0.9961
    """
    unknown = [r for r in rows if r not in ROW_NAMES]
    if unknown:
        raise KalcointError(f"unknown comparison rows {unknown}; choose from {', '.join(ROW_NAMES)}", params="rows")
    check_options(bootstrap, workers)
    if not 0.2 <= train_fraction <= 0.95:
        raise KalcointError(f"train_fraction {train_fraction} must be between 0.2 and 0.95", params="train_fraction")
    n = len(prices)
    n_train = split_rows(n, train_fraction)
    train, test = prices.iloc[:n_train], prices.iloc[n_train:]
    if len(test) < 30:
        raise KalcointError(
            f"out-of-sample part has {len(test)} rows; needs at least 30 (lower train_fraction)",
            params="train_fraction",
        )
    jres = johansen(prices, det_order=det_order, k_ar_diff=k_ar_diff)
    jtrain = johansen(train, det_order=det_order, k_ar_diff=k_ar_diff)
    total = len(rows) + max(bootstrap, 1)
    reached = [0]

    def tick(done: int) -> None:
        reached[0] = done
        if progress is not None:
            progress(done, total)

    out_rows: list[ComparisonRow] = []
    tuned: dict[str, TunedModel] = {}
    results: dict[str, FilterResult] = {}
    train_logliks: dict[str, float] = {}
    for name in rows:
        try:
            if name == "static_johansen":
                row = _static_row(prices, test, jres, jtrain)
            elif name == "chan":
                model = StateSpaceModel.chan(prices.shape[1], delta=delta, obs_var=chan_obs_var)
                row, results[name] = _chan_row(prices, train, test, model)
            else:
                row, tuned[name], train_logliks[name] = _tuned_row(name, prices, train, test, jres, jtrain, iterations)
                results[name] = tuned[name].result
        except ComputationError as exc:
            row = ComparisonRow(name, None, None, float("nan"), 0, float("nan"), error=str(exc))
        out_rows.append(row)
        tick(len(out_rows))
    try:
        unit_root = alpha11_test(
            prices,
            bootstrap,
            seed,
            workers,
            det_order=det_order,
            k_ar_diff=k_ar_diff,
            progress=lambda done, _b: tick(len(rows) + done),
        )
    except ComputationError:
        unit_root = None
    if reached[0] < total:
        tick(total)
    return Comparison(
        list(map(str, prices.columns)),
        jres,
        _below_mle(out_rows, train_logliks),
        prices,
        tuned,
        results,
        train_fraction,
        iterations,
        unit_root,
    )

"""Tuning the filter's quantities: the seed method's passes, maximum likelihood, EM, diagnosis.

``tune(prices, method=...)`` is the one entry point; it returns a :class:`TunedModel`. The
methods are listed in :mod:`kalcoint.tuning.registry` (one registration line per method).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from .._summary import Summary, Table, cell
from .._threads import single_threaded_call
from ..cointegration import AdfResult, JohansenResult, adf, johansen
from ..errors import KalcointError
from ..filtering import FilterResult, StateSpaceModel, kalman_filter
from . import registry
from .diagnosis import diagnose_model
from .inference import Inference, observed_information, param_names
from .registry import FitResult, register
from .seed import HISTORY_KEYS, SeedOptions, first_pass_model, johansen_path, run_seed_passes

METHODS = registry.names()
"""Names of the tuning methods registered when kalcoint was imported (see :mod:`.registry`)."""


@dataclass(frozen=True)
class TunedModel:
    """A tuned filter for one basket (immutable).

    Attributes
    ----------
    method : str
        The tuning method (a name of :func:`kalcoint.tuning.registry.names`).
    assets : list of str
        Tickers, dependent asset first.
    model : StateSpaceModel
        ``alpha11``, ``obs_var``, ``state_var`` (k,), ``initial_state`` (k,), ``initial_cov`` (k,)
        in the units of docs/method.md §1.
    johansen : JohansenResult
        Johansen test on the tuning sample.
    iterations : int
        Passes or optimiser iterations run; ``converged`` whether the stopping rule was met.
    llf : float
        Log-likelihood of the innovations of the tuned model on the tuning sample.
    history : dict of str to ndarray
        Per-iteration ``alpha11``, ``obs_var``, ``loglik`` (the seed passes also ``mean_e2_over_q2``,
        the mean of ``e_t^2 / Q_t^2`` over each pass).
    nobs : int
        Rows of the tuning sample.
    degenerate, degenerate_reasons, degenerate_notes
        The diagnosis (:mod:`kalcoint.tuning.diagnosis`).

    Results as statsmodels' and arch's: :attr:`params`, :attr:`bse`, :meth:`cov_params`,
    :meth:`conf_int`, :attr:`llf`, :attr:`aic`, :attr:`bic`, :attr:`nobs`, :meth:`summary`.

    Examples
    --------
    >>> import kalcoint as kc
    >>> tm = kc.tune(kc.demo_prices(), method="mle")
    >>> list(tm.params.index)
    ['alpha11', 'obs_var', 'state_var.const', 'state_var.ETFB', 'state_var.ETFC']
    >>> round(float(tm.params["alpha11"]), 2)
    0.96
    >>> print(tm.summary())  # doctest: +ELLIPSIS
    Tuned model (mle): ETFA, ETFB, ETFC, nobs=1500, 2015-01-02 to 2020-10-01
    ...
    llf              -297.6874
    ...
    alpha11             0.963336   0.009999      0.9437     0.9829
    obs_var            0.0197806   0.002484     0.01491    0.02465
    ...
    ADF (dynamic portfolio): stat -6.0562, lags 2, p-value 1.243e-07
    ...
    """

    method: str
    assets: list[str]
    model: StateSpaceModel
    johansen: JohansenResult
    iterations: int
    converged: bool
    llf: float
    history: dict[str, np.ndarray]
    elapsed_s: float
    start_date: pd.Timestamp | None = None
    end_date: pd.Timestamp | None = None
    nobs: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    degenerate: bool = False
    degenerate_reasons: list[str] = field(default_factory=list)
    degenerate_notes: list[str] = field(default_factory=list)
    _result: FilterResult | None = field(default=None, repr=False)

    # ------------------------------------------------------------ the quantities

    @property
    def alpha11(self) -> float:
        """First diagonal entry of the transition ``A``."""
        return self.model.alpha11

    @property
    def obs_var(self) -> float:
        """Measurement noise variance ``Ve`` (price units of asset 1, squared)."""
        return self.model.obs_var

    @property
    def state_var(self) -> np.ndarray:
        """(k,) diagonal of the state noise covariance ``Vw``."""
        return self.model.state_var

    @property
    def initial_state(self) -> np.ndarray:
        """(k,) prior mean of the state at the first observation."""
        return self.model.initial_state

    @property
    def initial_cov(self) -> np.ndarray:
        """(k,) diagonal of the prior covariance of the state."""
        return self.model.initial_cov

    @property
    def weights(self) -> np.ndarray:
        """(k,) Johansen weights of the tuning sample."""
        return self.johansen.weights

    @property
    def loglik(self) -> float:
        """Alias of :attr:`llf`."""
        return self.llf

    @property
    def result(self) -> FilterResult:
        """The tuned filter over the tuning sample."""
        if self._result is None:
            raise KalcointError("this tuned model holds no in-sample filter result")
        return self._result

    # ------------------------------------------------------------ inference

    @property
    def param_names(self) -> list[str]:
        """``alpha11, obs_var, state_var.const, state_var.<TICKER>...``."""
        return param_names(list(self.assets))

    @property
    def params(self) -> pd.Series:
        """The tuned quantities as a Series named by :attr:`param_names`."""
        values = np.concatenate([[self.alpha11, self.obs_var], self.state_var])
        return pd.Series(values, index=self.param_names, name="params")

    @property
    def df_model(self) -> int:
        """Number of estimated quantities (``alpha11`` is not one when held fixed)."""
        fixed = self.options.get("fix_alpha11") is not None
        return len(self.param_names) - int(fixed)

    @property
    def aic(self) -> float:
        """Akaike's criterion ``-2 llf + 2 df_model`` (the prior is held fixed, not counted)."""
        return -2.0 * self.llf + 2.0 * self.df_model

    @property
    def bic(self) -> float:
        """Schwarz's criterion ``-2 llf + log(nobs) df_model``."""
        return -2.0 * self.llf + math.log(self.nobs) * self.df_model

    @cached_property
    def _inference(self) -> Inference:
        size = len(self.param_names)
        if not registry.get(self.method).inference:
            why = (
                f"no standard error: method {self.method!r} does not end at a maximum of the likelihood, "
                "so the observed information says nothing about its estimates"
            )
            return Inference(np.full((size, size), np.nan), dict.fromkeys(range(size), why))
        result = self.result
        values = np.column_stack([result.y, result.X[:, 1:]])
        return observed_information(values, self.model)

    def cov_params(self) -> pd.DataFrame:
        """Covariance of :attr:`params`: the inverse observed information at the optimum
        (MLE, EM and every method registered with ``inference=True``), the whole matrix.
        Rows and columns of a quantity on its bound (and every entry for the seed method)
        are NaN; :attr:`bse_notes` says why."""
        names = self.param_names
        return pd.DataFrame(self._inference.cov.copy(), index=names, columns=names)

    @property
    def bse(self) -> pd.Series:
        """Standard errors of :attr:`params` (NaN where :attr:`bse_notes` says why)."""
        with np.errstate(invalid="ignore"):
            se = np.sqrt(np.diag(self._inference.cov))
        return pd.Series(se, index=self.param_names, name="bse")

    @property
    def bse_notes(self) -> dict[str, str]:
        """Parameter name -> why it has no standard error."""
        names = self.param_names
        return {names[i]: why for i, why in sorted(self._inference.notes.items())}

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Wald confidence intervals ``params -+ z_{1-alpha/2} bse``: columns ``lower``, ``upper``."""
        from scipy.stats import norm

        if not 0.0 < alpha < 1.0:
            raise KalcointError(f"alpha {alpha} must be in (0, 1), e.g. 0.05", params="alpha")
        z = float(norm.ppf(1.0 - alpha / 2.0))
        p, se = self.params, self.bse
        return pd.DataFrame({"lower": p - z * se, "upper": p + z * se})

    @property
    def std_errors(self) -> dict[str, Any] | None:
        """The ``std_errors`` record of the JSON output (None entries where :attr:`bse` is NaN);
        None for a method without inference."""
        if not registry.get(self.method).inference:
            return None
        se = [None if not math.isfinite(v) else float(v) for v in self.bse]
        return {"alpha11": se[0], "obs_var": se[1], "state_var": se[2:]}

    # ------------------------------------------------------------ filter, tests, output

    def filter(self, prices: pd.DataFrame | np.ndarray) -> FilterResult:
        """Run the tuned filter from its own prior over (n, k) prices."""
        return kalman_filter(prices, self.model)

    def apply(self, prices: pd.DataFrame | np.ndarray) -> FilterResult:
        """The tuned quantities applied to other prices, run from the model's prior (statsmodels'
        ``MLEResults.apply``; nothing is re-estimated). To continue the tuning rows instead, use
        ``self.result.extend(new_prices)``.

        Examples
        --------
        >>> import kalcoint as kc
        >>> p = kc.demo_prices()
        >>> tuned = kc.tune(p.iloc[:500], method="mle")
        >>> tuned.apply(p.iloc[500:]).nobs, tuned.result.extend(p.iloc[500:]).nobs
        (1000, 1000)
        """
        return kalman_filter(prices, self.model)

    @cached_property
    def _adf(self) -> AdfResult:
        return adf(self.result.spread)

    def adf(self) -> AdfResult:
        """ADF test (constant, AIC lags) of the in-sample dynamic portfolio (docs/method.md §6);
        computed once."""
        return self._adf

    def to_dict(self) -> dict[str, Any]:
        """The JSON record of ``kalcoint tune``."""
        d: dict[str, Any] = {
            "method": self.method,
            "assets": list(self.assets),
            **self.model.to_dict(),
            "iterations": int(self.iterations),
            "converged": bool(self.converged),
            "loglik": float(self.llf),
            "aic": float(self.aic),
            "bic": float(self.bic),
            "adf_pvalue": float(self.adf().pvalue) if self._result is not None else None,
            "elapsed_s": float(self.elapsed_s),
            "degenerate": bool(self.degenerate),
            "degenerate_reasons": list(self.degenerate_reasons),
            "johansen_weights": self.johansen.weights.tolist(),
            "nobs": int(self.nobs),
            "start_date": self.start_date.strftime("%Y-%m-%d") if self.start_date is not None else None,
            "end_date": self.end_date.strftime("%Y-%m-%d") if self.end_date is not None else None,
            "options": dict(self.options),
        }
        se = self.std_errors if self._result is not None else None
        if se is not None:
            d["std_errors"] = se
            d["std_error_notes"] = self.bse_notes
        if self.method == "em" and "loglik" in self.history:
            d["loglik_history"] = np.asarray(self.history["loglik"]).tolist()
        return d

    def summary(self, alpha: float = 0.05) -> Summary:
        """The tuned quantities with standard errors and confidence intervals, the fit and the ADF
        test of the dynamic portfolio; ``print`` it, or show it in a notebook."""
        span = f", {self.start_date:%Y-%m-%d} to {self.end_date:%Y-%m-%d}" if self.start_date is not None else ""
        title = f"Tuned model ({self.method}): {', '.join(self.assets)}, nobs={self.nobs}{span}"
        fit_rows = (
            ("iterations", f"{self.iterations}{' (converged)' if self.converged else ''}"),
            ("llf", cell(self.llf, ".4f")),
            ("aic", cell(self.aic, ".4f")),
            ("bic", cell(self.bic, ".4f")),
        )
        tables = [Table(("fit", "value"), fit_rows)]
        ci = self.conf_int(alpha) if self._result is not None else None
        lo, hi = f"[{alpha / 2:g}", f"{1 - alpha / 2:g}]"
        rows = []
        for name, value in self.params.items():
            se = self.bse[name] if ci is not None else math.nan  # type: ignore[call-overload]
            rows.append(
                (
                    str(name),
                    cell(value),
                    cell(se, ".4g"),
                    cell(ci.loc[name, "lower"] if ci is not None else None, ".4g"),  # type: ignore[index]
                    cell(ci.loc[name, "upper"] if ci is not None else None, ".4g"),  # type: ignore[index]
                )
            )
        tables.append(Table(("param", "estimate", "std err", lo, hi), tuple(rows)))
        prior = tuple(
            (n, cell(b0), cell(p0))
            for n, b0, p0 in zip(["const", *self.assets[1:]], self.initial_state, self.initial_cov)
        )
        tables.append(Table(("state", "initial_state", "initial_cov"), prior, title="prior (held fixed)"))
        notes = []
        if self._result is not None:
            r = self.adf()
            notes.append(f"ADF (dynamic portfolio): stat {r.stat:.4f}, lags {r.lags}, p-value {r.pvalue:.4g}")
        if ci is not None:
            notes += [f"{name}: {why}" for name, why in self.bse_notes.items()]
        if self.degenerate:
            notes.append("DEGENERATE: " + "; ".join(self.degenerate_reasons))
        return Summary(title, tuple(tables), tuple(notes))


def _panel(prices: pd.DataFrame | np.ndarray) -> tuple[np.ndarray, list[str], pd.Index | None]:
    if isinstance(prices, pd.DataFrame):
        return prices.to_numpy(dtype=np.float64), [str(c) for c in prices.columns], prices.index
    values = np.asarray(prices, dtype=np.float64)
    if values.ndim != 2:
        raise KalcointError(f"prices must be an (n, k) panel, got shape {values.shape}", params="prices")
    return values, [f"x{i + 1}" for i in range(values.shape[1])], None


@single_threaded_call  # one BLAS thread around the compiled passes and the optimisers
def tune(
    prices: pd.DataFrame | np.ndarray,
    method: str = "seed",
    iterations: int = 2000,
    tol: float | None = None,
    *,
    det_order: int = 0,
    k_ar_diff: int = 1,
    johansen_result: JohansenResult | None = None,
    diagnose: bool = True,
    **method_options: Any,
) -> TunedModel:
    """Tune the filter on an (n, k) price panel (first column = dependent asset).

    Parameters
    ----------
    prices : DataFrame or ndarray, shape (n, k)
        Prices (a DataFrame indexed by date keeps the tickers and dates).
    method : str
        A registered method: ``"seed"`` (the method's passes, docs/method.md §4-5),
        ``"mle"`` (maximum likelihood), ``"em"`` (expectation-maximisation) or ``"als"``
        (autocovariance least squares, :mod:`kalcoint.tuning.als`), see
        :func:`kalcoint.tuning.registry.names`.
    iterations : int
        Seed passes (default 2000), or the iteration cap of the other methods.
    tol : float, optional
        Early stop (relative change; the methods' own defaults when None).
    det_order, k_ar_diff : int
        Johansen options (docs/method.md §2); ``johansen_result`` skips the test.
    diagnose : bool
        Run the degeneracy diagnosis (docs/method.md §9).
    **method_options
        The method's own options, e.g. seed's ``residual``, ``bm``, ``fix_alpha11``, ``moments``,
        ``covariance_terms`` (:class:`SeedOptions`); MLE's and EM's ``initial_state``, ``initial_cov``.

    Returns
    -------
    TunedModel

    Examples
    --------
    >>> import kalcoint as kc
    >>> prices = kc.demo_prices()
    >>> first = kc.tune(prices, iterations=1)
    >>> round(first.alpha11, 4)
    0.9961
    >>> kc.tune(prices, iterations=1, fix_alpha11=1.0).alpha11
    1.0

    Maximum likelihood on Chan's EWA, EWC, IGE (the figures the README quotes):

    >>> mle = kc.tune(kc.datasets.load("chan_etf", ["EWA", "EWC", "IGE"]), method="mle")
    >>> round(float(mle.params["alpha11"]), 4), round(float(mle.bse["alpha11"]), 4)
    (0.9981, 0.002)
    >>> round(float(mle.params["obs_var"]), 4), round(float(mle.bse["obs_var"]), 4), round(mle.llf, 1)
    (0.0169, 0.0021, -223.9)
    """
    if "fixed_alpha11" in method_options:  # the old name of fix_alpha11
        warnings.warn("tune(fixed_alpha11=...) is deprecated; use fix_alpha11=", DeprecationWarning, stacklevel=2)
        method_options["fix_alpha11"] = method_options.pop("fixed_alpha11")
    if method_options.get("fix_alpha11", 0) is None:
        method_options.pop("fix_alpha11")  # None = not held fixed, every method's default
    registry.get(method)
    values, assets, index = _panel(prices)
    started = time.perf_counter()
    jres = johansen_result or johansen(values, det_order=det_order, k_ar_diff=k_ar_diff, assets=assets)
    out = registry.fit(method, values, jres, iterations, tol, method_options)
    result = kalman_filter(prices, out.model)
    diag = (
        diagnose_model(
            out.model,
            values,
            assets=assets,
            result=result,
            static_hedge_ratios=method == "seed" and int(out.iterations) == 1,
        )
        if diagnose
        else None
    )
    return TunedModel(
        method=method,
        assets=assets,
        model=out.model,
        johansen=jres,
        iterations=int(out.iterations),
        converged=bool(out.converged),
        llf=result.loglik,
        history={k: np.asarray(v) for k, v in out.history.items()},
        elapsed_s=time.perf_counter() - started,
        start_date=index[0] if index is not None else None,
        end_date=index[-1] if index is not None else None,
        nobs=values.shape[0],
        options=dict(out.options),
        degenerate=bool(diag.degenerate) if diag else False,
        degenerate_reasons=list(diag.reasons) if diag else [],
        degenerate_notes=list(diag.notes) if diag else [],
        _result=result,
    )


__all__ = [
    "HISTORY_KEYS",
    "METHODS",
    "FitResult",
    "SeedOptions",
    "TunedModel",
    "first_pass_model",
    "johansen_path",
    "register",
    "run_seed_passes",
    "tune",
]

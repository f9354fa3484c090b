"""Tuning the filter's quantities: the seed method's passes, maximum likelihood, EM, diagnosis.

``tune(prices, method=...)`` is the one entry point; it returns a :class:`TunedModel`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._threads import single_threaded_call
from ..cointegration import AdfResult, JohansenResult, adf, johansen
from ..errors import KalcointError
from ..filtering import FilterResult, StateSpaceModel, kalman_filter
from .diagnosis import diagnose as _diagnose
from .seed import HISTORY_KEYS, SeedOptions, first_pass_model, johansen_path, run_seed_passes

METHODS = ("seed", "mle", "em")


@dataclass
class TunedModel:
    """A tuned filter for one basket.

    The quantities (``alpha11``, ``obs_var``, ``state_var`` (k,), ``initial_state`` (k,),
    ``initial_cov`` (k,) diagonal) are in the units of docs/method.md §1. ``loglik`` is the
    log-likelihood of the innovations of the tuned model on the tuning sample.
    ``history`` holds per-iteration arrays (``alpha11``, ``obs_var``, ``loglik``; the seed
    passes also ``mean_e2_over_q2``, the mean of ``e_t^2 / Q_t^2`` over each pass).
    """

    method: str
    assets: list[str]
    model: StateSpaceModel
    johansen: JohansenResult
    iterations: int
    converged: bool
    loglik: float
    history: dict[str, np.ndarray]
    elapsed_s: float
    start_date: pd.Timestamp | None = None
    end_date: pd.Timestamp | None = None
    nobs: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    std_errors: dict[str, Any] | None = None
    degenerate: bool = False
    degenerate_reasons: list[str] = field(default_factory=list)
    _result: FilterResult | None = field(default=None, repr=False)

    @property
    def alpha11(self) -> float:
        return self.model.alpha11

    @property
    def obs_var(self) -> float:
        return self.model.obs_var

    @property
    def state_var(self) -> np.ndarray:
        return self.model.state_var

    @property
    def initial_state(self) -> np.ndarray:
        return self.model.initial_state

    @property
    def initial_cov(self) -> np.ndarray:
        return self.model.initial_cov

    @property
    def weights(self) -> np.ndarray:
        return self.johansen.weights

    @property
    def result(self) -> FilterResult:
        """The tuned filter over the tuning sample (the last pass's states)."""
        if self._result is None:
            raise KalcointError("this tuned model holds no in-sample filter result")
        return self._result

    def filter(self, prices: pd.DataFrame | np.ndarray) -> FilterResult:
        """Run the tuned filter from its own prior over (n, k) prices."""
        return kalman_filter(prices, self.model)

    def adf(self) -> AdfResult:
        """ADF test (constant, AIC lags) of the in-sample dynamic portfolio (docs/method.md §6)."""
        return adf(self.result.spread)

    def to_dict(self) -> dict[str, Any]:
        """The JSON record of ``kalcoint tune``."""
        d: dict[str, Any] = {
            "method": self.method,
            "assets": list(self.assets),
            **self.model.to_dict(),
            "iterations": int(self.iterations),
            "converged": bool(self.converged),
            "loglik": float(self.loglik),
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
        if self.std_errors is not None:
            d["std_errors"] = self.std_errors
        if self.method == "em" and "loglik" in self.history:
            d["loglik_history"] = self.history["loglik"].tolist()
        return d

    def summary(self) -> str:
        """A readable table of the tuned quantities."""
        lines = [
            f"Tuned model ({self.method}): {', '.join(self.assets)}, n={self.nobs}"
            + (f", {self.start_date:%Y-%m-%d} to {self.end_date:%Y-%m-%d}" if self.start_date is not None else ""),
            f"  iterations   {self.iterations}{' (converged)' if self.converged else ''}",
            f"  alpha11      {self.alpha11:.6g}",
            f"  obs_var      {self.obs_var:.6g}",
        ]
        names = ["const"] + list(self.assets[1:])
        for name, vw, b0, p0 in zip(names, self.state_var, self.initial_state, self.initial_cov):
            lines.append(f"  {name:<10} state_var {vw:.6g}  initial_state {b0:.6g}  initial_cov {p0:.6g}")
        lines.append(f"  loglik       {self.loglik:.6f}")
        if self._result is not None:
            r = self.adf()
            lines.append(f"  ADF (dynamic portfolio)  stat {r.stat:.4f}  lags {r.lags}  p-value {r.pvalue:.4g}")
        if self.degenerate:
            lines.append("  DEGENERATE: " + "; ".join(self.degenerate_reasons))
        return "\n".join(lines)


def _panel(prices: pd.DataFrame | np.ndarray) -> tuple[np.ndarray, list[str], pd.Index | None]:
    if isinstance(prices, pd.DataFrame):
        return prices.to_numpy(dtype=np.float64), [str(c) for c in prices.columns], prices.index
    values = np.asarray(prices, dtype=np.float64)
    return values, [f"x{i + 1}" for i in range(values.shape[1])], None


def _fit_seed(values: np.ndarray, jres: JohansenResult, iterations: int, tol: float | None,
              options: SeedOptions) -> dict[str, Any]:
    """The seed passes, in the form the other methods' ``fit`` returns."""
    run = run_seed_passes(values, jres, iterations, tol, options)
    return {
        "model": run.model, "iterations": run.iterations, "converged": run.converged,
        "history": {key: run.history[:, i] for i, key in enumerate(HISTORY_KEYS)},
        "options": {"residual": options.residual, "bm": options.bm, "fixed_alpha11": options.fixed_alpha11,
                    "moments": options.moments, "covariance_terms": options.covariance_terms, "tol": tol},
    }


@single_threaded_call  # one BLAS thread around the compiled passes and the optimisers
def tune(
    prices: pd.DataFrame | np.ndarray,
    method: str = "seed",
    iterations: int = 2000,
    tol: float | None = None,
    *,
    det_order: int = 0,
    k_ar_diff: int = 1,
    residual: str = "posterior",
    bm: str = "johansen",
    fixed_alpha11: float | None = None,
    moments: str = "filtered",
    covariance_terms: bool = False,
    johansen_result: JohansenResult | None = None,
    diagnose: bool = True,
    **method_options: Any,
) -> TunedModel:
    """Tune the filter on an (n, k) price panel (first column = dependent asset).

    method : "seed" (the method's passes, docs/method.md §4-5; ``iterations`` passes, default
        2000, ``tol`` optional early stop), "mle" (maximum likelihood on the innovations) or
        "em" (expectation-maximisation with the RTS smoother).
    residual, bm, fixed_alpha11, moments, covariance_terms : the seed options of docs/method.md §5
        and §10 (see :class:`SeedOptions`).
    """
    if method not in METHODS:
        raise KalcointError(f"--method {method!r} is not one of {', '.join(METHODS)}")
    values, assets, index = _panel(prices)
    started = time.perf_counter()
    jres = johansen_result or johansen(values, det_order=det_order, k_ar_diff=k_ar_diff, assets=assets)
    if method == "seed":
        if method_options:
            raise KalcointError(f"unknown seed options: {', '.join(method_options)}")
        out = _fit_seed(values, jres, iterations, tol,
                        SeedOptions(residual, bm, fixed_alpha11, moments, bool(covariance_terms)))
    else:
        if (residual, bm, fixed_alpha11, moments, covariance_terms) != ("posterior", "johansen", None, "filtered",
                                                                         False):
            raise KalcointError("residual, bm, fixed_alpha11, moments and covariance_terms are options of "
                                "method='seed' only")
        from importlib import import_module

        out = import_module(f".{method}", __name__).fit(values, jres, iterations=iterations, tol=tol,
                                                         **method_options)
    model = out["model"]
    result = kalman_filter(prices, model)
    tuned = TunedModel(
        method=method, assets=assets, model=model, johansen=jres, iterations=out["iterations"],
        converged=out["converged"], loglik=result.loglik, history=out.get("history", {}),
        elapsed_s=time.perf_counter() - started,
        start_date=index[0] if index is not None else None, end_date=index[-1] if index is not None else None,
        nobs=values.shape[0], options=out.get("options", {}), std_errors=out.get("std_errors"), _result=result,
    )
    if diagnose:
        diag = _diagnose(tuned, values)
        tuned.degenerate, tuned.degenerate_reasons = diag.degenerate, list(diag.reasons)
    return tuned


__all__ = [
    "METHODS", "SeedOptions", "TunedModel", "first_pass_model", "johansen_path", "run_seed_passes", "tune",
]

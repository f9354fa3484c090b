"""Is a tuned filter degenerate? (docs/method.md §9)

The seed method's passes can drive ``obs_var`` to ~0 and ``alpha11`` to ~0: the
filter then re-fits the state every day so that the price of asset 1 is matched
almost exactly, and the dynamic portfolio's ADF p-value measures the fit, not a
tradable mean reversion. :func:`diagnose` measures this on any tuned model with
scale-free figures, all relative to ``var(dy)``, the variance of the daily
changes of asset 1's price (what the filter has to explain each day):

``obs_var_ratio = obs_var / var(dy)``
    below ``OBS_VAR_TINY`` (1e-6): the measurement noise is negligible; the
    filter fits the price exactly. Degenerate.
``state_share = mean_t (Q_t - obs_var) / Q_t``
    share of the innovation variance ``Q_t`` that comes from the state's
    uncertainty; above ``STATE_SHARE_MAX`` (0.9999): the state moves to absorb each
    day's price move. Degenerate. Chan's filter sits at 0.971 (EWC on EWA) and 0.9935
    (EWA on EWC, IGE), so the threshold is ``0.9999``: 65 times closer to 1 than Chan.
``level_half_life = ln(1/2) / ln|alpha11|`` (days)
    below ``HALF_LIFE_MIN`` (1 day, i.e. ``|alpha11| < 0.5``): the level forgets
    itself within a day; there is no persistent spread to trade. Degenerate.
``drift_ratio_j = n * state_var_j * mean_t(x_{j,t}^2) / var(dy)``
    the variance that state j's noise adds to the fit over the whole sample,
    against one day's price change; below ``FROZEN_RATIO`` (1e-6) the state is
    frozen. A frozen hedge ratio is a legitimate static choice (the seed method's
    first pass freezes them by construction, docs/method.md §4 step 3, and maximum
    likelihood may find a hedge ratio does not move), so it is only a *note*. A
    frozen level with ``|alpha11| < 1`` decays deterministically to zero: no
    mean-reverting spread is left, which is degenerate.

``degenerate`` is true exactly when ``reasons`` is not empty; ``notes`` never make
a model degenerate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._checks import FROZEN_RATIO, HALF_LIFE_MIN, OBS_VAR_TINY, STATE_SHARE_MAX
from ..filtering import FilterResult, StateSpaceModel, kalman_filter


__all__ = [
    "FROZEN_RATIO",
    "HALF_LIFE_MIN",
    "OBS_VAR_TINY",
    "STATE_SHARE_MAX",
    "Diagnosis",
    "diagnose",
    "degenerate_reasons",
    "diagnose_model",
    "level_half_life",
]


@dataclass(frozen=True)
class Diagnosis:
    """The verdict on a tuned filter.

    Attributes
    ----------
    degenerate : bool
        True exactly when ``reasons`` is not empty.
    reasons : list of str
        Sentences a trader understands, one per failed check.
    notes : list of str
        Remarks that do not make the model degenerate (frozen hedge ratios).
    metrics : dict
        The figures behind them (see the module doc), JSON-ready.

    Examples
    --------
    >>> Diagnosis(False, []).degenerate
    False
    """

    degenerate: bool
    reasons: list[str]
    notes: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)


def _g(x: float) -> str:
    return f"{x:.2g}"


def _below_one(alpha11: float) -> str:
    """``alpha11`` with the fewest significant digits (>= 2) that still show ``|alpha11| < 1``."""
    for digits in range(2, 18):
        text = f"{alpha11:.{digits}g}"
        if abs(float(text)) < 1.0:
            return text
    return repr(alpha11)


def level_half_life(alpha11: float) -> float:
    """Half-life of the level ``b_1`` in observations: ``ln(1/2) / ln|alpha11|`` (inf for |alpha11| >= 1,
    0 for alpha11 = 0).

    Examples
    --------
    >>> round(level_half_life(0.5), 6), level_half_life(1.0)
    (1.0, inf)
    """
    a = abs(alpha11)
    if a >= 1.0:
        return math.inf
    if a == 0.0:
        return 0.0
    return math.log(0.5) / math.log(a)


def diagnose_model(
    model: StateSpaceModel,
    values: np.ndarray,
    *,
    assets: list[str] | None = None,
    result: FilterResult | None = None,
    static_hedge_ratios: bool = False,
) -> Diagnosis:
    """Diagnose a filter ``model`` on the (n, k) prices ``values`` it was tuned on.

    result : the filter's output on ``values`` (computed when None).
    static_hedge_ratios : the model freezes the hedge ratios on purpose (the seed method's first
        pass); frozen hedge ratios are then not even noted.

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> diagnose_model(kc.StateSpaceModel.chan(3), p.to_numpy()).degenerate
    False
    """
    values = np.asarray(values, dtype=np.float64)
    n, k = values.shape
    names = list(assets) if assets is not None else [f"x{i + 1}" for i in range(k)]
    result = result if result is not None else kalman_filter(values, model)
    scale = float(np.var(np.diff(values[:, 0])))
    q = result.innovation_var
    obs_ratio = model.obs_var / scale
    share = float(np.mean((q - model.obs_var) / q))
    half_life = level_half_life(model.alpha11)
    mean_sq = np.concatenate([[1.0], np.mean(values[:, 1:] ** 2, axis=0)])
    drift = n * model.state_var * mean_sq / scale
    dep = names[0]
    reasons = degenerate_reasons(
        model.alpha11, model.obs_var, float(model.state_var[0]), scale, share, float(drift[0]), dep
    )
    notes: list[str] = []
    if not static_hedge_ratios:
        for j in range(1, k):
            if drift[j] < FROZEN_RATIO:
                notes.append(
                    f"state variance of the {names[j]} hedge ratio is {_g(model.state_var[j])}: that hedge "
                    "ratio is frozen (static)"
                )
    metrics = {
        "obs_var_ratio": obs_ratio,
        "price_change_var": scale,
        "state_share": share,
        "level_half_life": half_life,
        "drift_ratio": drift.tolist(),
        "thresholds": {
            "obs_var_tiny": OBS_VAR_TINY,
            "state_share_max": STATE_SHARE_MAX,
            "half_life_min": HALF_LIFE_MIN,
            "frozen_ratio": FROZEN_RATIO,
        },
    }
    return Diagnosis(bool(reasons), reasons, notes, metrics)


def degenerate_reasons(
    alpha11: float, obs_var: float, level_var: float, scale: float, share: float, level_drift: float, dep: str
) -> list[str]:
    """The reasons of :func:`diagnose_model` from its figures (see the module doc).

    Parameters
    ----------
    alpha11, obs_var : float
        The model's quantities; ``level_var`` its ``state_var[0]``.
    scale : float
        ``var(dy)``, the variance of the daily changes of the dependent asset's price.
    share : float
        ``state_share``.
    level_drift : float
        ``drift_ratio`` of the level (``n state_var[0] / var(dy)``).
    dep : str
        The dependent asset's ticker.

    Returns
    -------
    list of str
        Empty when the model is not degenerate.

    Examples
    --------
    >>> degenerate_reasons(0.9, 1e-9, 0.1, 1.0, 0.5, 100.0, "A")[0][:32]
    'measurement noise Ve = 1e-09 is '
    """
    half_life = level_half_life(alpha11)
    reasons: list[str] = []
    if obs_var / scale < OBS_VAR_TINY:
        reasons.append(
            f"measurement noise Ve = {_g(obs_var)} is tiny against the daily price-change variance of "
            f"{dep} ({_g(scale)}): the filter fits the price exactly, so the spread's ADF p-value says "
            "nothing about tradability"
        )
    if share > STATE_SHARE_MAX:
        reasons.append(
            f"the innovation variance is dominated by the state term ({100 * share:.4g}% on average): the "
            f"filter moves its level and hedge ratios to absorb each day's move of {dep}"
        )
    if half_life < HALF_LIFE_MIN:
        reasons.append(
            f"alpha11 collapsed to {_g(alpha11)}: the spread's level forgets itself within a day "
            f"(half-life {_g(half_life)} days), so there is no persistent spread to trade"
        )
    if level_drift < FROZEN_RATIO and abs(alpha11) < 1.0:
        reasons.append(
            f"state variance of the level is {_g(level_var)}, so the level gets no new noise: with "
            f"|alpha11| = {_below_one(abs(alpha11))} < 1 it decays geometrically to zero (half-life "
            f"{_g(half_life)} days) and no mean-reverting spread is left"
        )
    return reasons


def diagnose(tuned: Any, values: np.ndarray) -> Diagnosis:
    """Diagnose a :class:`kalcoint.tuning.TunedModel` on the (n, k) prices it was tuned on.

    The seed method's first pass (one pass) freezes the hedge ratios by construction; that is
    not noted.

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> diagnose(kc.tune(p, iterations=200), p.to_numpy()).degenerate
    True
    """
    first_pass = tuned.method == "seed" and int(tuned.iterations) == 1
    result = getattr(tuned, "_result", None)
    return diagnose_model(tuned.model, values, assets=list(tuned.assets), result=result, static_hedge_ratios=first_pass)

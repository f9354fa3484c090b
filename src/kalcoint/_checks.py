"""One home for the checks and constants several modules share.

Constants: Chan's filter defaults (:data:`CHAN_DELTA`, :data:`CHAN_OBS_VAR`), the
bound of the estimators' ``alpha11`` (:data:`ALPHA11_MAX`) and the thresholds of the
diagnosis (:data:`OBS_VAR_TINY`, :data:`STATE_SHARE_MAX`, :data:`HALF_LIFE_MIN`,
:data:`FROZEN_RATIO`), the last also used by maximum likelihood to say when a variance
sits on its bound.

Checks raise :class:`~kalcoint.errors.KalcointError` naming the parameter (never a
command-line flag).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from .errors import KalcointError

CHAN_DELTA = 1e-4
"""Chan's ``delta``: state noise ``Vw = delta / (1 - delta) I``."""
CHAN_OBS_VAR = 1e-3
"""Chan's measurement noise variance ``Ve``."""
ALPHA11_MAX = 1.0 - 1e-6
"""|alpha11| bound of the estimators (MLE, EM): the level stays stationary."""

OBS_VAR_TINY = 1e-6
"""obs_var / var(daily change of asset 1) below this: the filter fits the price exactly."""
STATE_SHARE_MAX = 0.9999
"""Mean share of the innovation variance from the state term above this: the state absorbs every move."""
HALF_LIFE_MIN = 1.0
"""Half-life of the level, in observations (days), below this: alpha11 has collapsed (|alpha11| < 0.5)."""
FROZEN_RATIO = 1e-6
"""n * state_var_j * mean(x_j^2) / var(daily change of asset 1) below this: state j is frozen."""


def check_iterations(iterations: Any, name: str = "iterations") -> int:
    """``iterations`` as an int >= 1, else a :class:`KalcointError` naming ``name``.

    Examples
    --------
    >>> check_iterations(20)
    20
    """
    if isinstance(iterations, bool) or int(iterations) != iterations or iterations < 1:
        raise KalcointError(f"{name} {iterations} must be an integer >= 1", params=name)
    return int(iterations)


def check_tol(tol: Any, name: str = "tol") -> float | None:
    """``tol`` as a float > 0 (or None), else a :class:`KalcointError` naming ``name``.

    Examples
    --------
    >>> check_tol(1e-8), check_tol(None)
    (1e-08, None)
    """
    if tol is None:
        return None
    if not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol > 0):
        raise KalcointError(f"{name} {tol} must be a finite number > 0", params=name)
    return float(tol)


def check_positive(value: Any, name: str, *, allow_zero: bool = False, hint: str = "") -> float:
    """``value`` as a finite float > 0 (>= 0 with ``allow_zero``), else a :class:`KalcointError`.

    Examples
    --------
    >>> check_positive(1e-3, "obs_var")
    0.001
    """
    ok = isinstance(value, (int, float)) and math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise KalcointError(f"{name} {value} must be a finite number {bound}{'; ' + hint if hint else ''}", params=name)
    return float(value)


def check_choice(value: Any, choices: Any, name: str) -> str:
    """``value`` if it is one of ``choices``, else a :class:`KalcointError` listing them.

    Examples
    --------
    >>> check_choice("seed", ("seed", "mle"), "method")
    'seed'
    """
    if value not in choices:
        raise KalcointError(f"{name} {value!r} is not one of {', '.join(map(str, choices))}", params=name)
    return str(value)


def renamed(old_value: Any, new_value: Any, old: str, new: str, func: str) -> Any:
    """``new_value``, or ``old_value`` with a :class:`DeprecationWarning` when the caller still
    passed the keyword's old name (``old_value`` not None).

    Examples
    --------
    >>> renamed(None, 30.0, "checkpoint_s", "checkpoint", "screen")
    30.0
    """
    if old_value is None:
        return new_value
    warnings.warn(f"{func}({old}=...) is deprecated: use {new}=...", DeprecationWarning, stacklevel=3)
    return old_value


def check_resume(resume: bool, overwrite: bool) -> None:
    """Refuse ``resume`` and ``overwrite`` together: one keeps an output table, the other replaces it.

    Examples
    --------
    >>> check_resume(True, False)
    >>> check_resume(True, True)
    Traceback (most recent call last):
    ...
    kalcoint.errors.KalcointError: resume and overwrite exclude each other: resume keeps the rows of out, overwrite replaces them; pass one
    """
    if resume and overwrite:
        raise KalcointError(
            "resume and overwrite exclude each other: resume keeps the rows of out, overwrite replaces them; pass one",
            params=("resume", "overwrite", "out"),
        )

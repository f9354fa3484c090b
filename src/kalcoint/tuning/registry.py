"""The tuning methods, by name: an explicit registry instead of importing a module by its name.

Each method is a ``fit`` function

    fit(values, johansen_result, iterations=..., tol=..., **options) -> FitResult

on an (n, k) float64 price array (first column = dependent asset) and the Johansen result
of that sample. Adding a method is one line at the bottom of this module::

    register("als", "kalcoint.tuning.als:fit", inference=True, description="...")

The fit function is given as ``"module:function"`` (imported on first use, so that the
registry costs nothing at import) or as the function itself. A fit returns a
:class:`FitResult`; :func:`fit` refuses anything else. ``inference=True`` says the method ends at a
maximum of the likelihood, so that :meth:`kalcoint.tuning.TunedModel.cov_params` gives the
inverse of the observed information there.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

import numpy as np

from ..errors import KalcointError
from ..filtering import StateSpaceModel

__all__ = ["FitResult", "Method", "fit", "get", "names", "register"]


@dataclass(frozen=True)
class FitResult:
    """What a tuning method's ``fit`` returns.

    Attributes
    ----------
    model : StateSpaceModel
        The tuned quantities (``alpha11``, ``obs_var``, ``state_var`` (k,), the prior).
    iterations : int
        Passes or optimiser iterations run.
    converged : bool
        Whether the method's stopping rule was met (False: it ran out of iterations).
    history : mapping of str to ndarray
        Per-iteration arrays, at least ``alpha11``, ``obs_var``, ``loglik`` when kept.
    options : mapping
        The settings the method ran with and method-specific figures (JSON-ready).

    Examples
    --------
    >>> from kalcoint.filtering import StateSpaceModel
    >>> fr = FitResult(StateSpaceModel.chan(2), iterations=1, converged=True)
    >>> fr.iterations, fr.converged
    (1, True)
    """

    model: StateSpaceModel
    iterations: int
    converged: bool
    history: Mapping[str, np.ndarray] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Method:
    """A registered tuning method.

    Attributes
    ----------
    name : str
        The name ``tune(method=...)`` and ``--method`` take.
    target : str or callable
        The fit function, or ``"module:function"`` imported on first use.
    inference : bool
        The method ends at a maximum of the likelihood (standard errors by observed information).
    description : str
        One line for help texts.

    Examples
    --------
    >>> get("mle").inference
    True
    """

    name: str
    target: str | Callable[..., Any]
    inference: bool = False
    description: str = ""

    @property
    def function(self) -> Callable[..., Any]:
        """The fit function (imported on first use)."""
        if callable(self.target):
            return self.target
        module, _, attr = self.target.partition(":")
        return getattr(import_module(module), attr)  # type: ignore[no-any-return]

    def options(self) -> tuple[str, ...]:
        """The keyword options the fit takes besides ``iterations`` and ``tol``."""
        sig = inspect.signature(self.function)
        skip = {"values", "johansen_result", "iterations", "tol"}
        return tuple(
            p.name
            for p in list(sig.parameters.values())[2:]
            if p.name not in skip and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        )


_REGISTRY: dict[str, Method] = {}


def register(name: str, target: str | Callable[..., Any], *, inference: bool = False, description: str = "") -> Method:
    """Register (or replace) the tuning method ``name``.

    Parameters
    ----------
    name : str
        Method name, e.g. ``"als"``.
    target : str or callable
        ``fit`` function, or ``"module:function"``.
    inference : bool
        True when the fit ends at a likelihood maximum.
    description : str
        One line for help texts.

    Returns
    -------
    Method

    Examples
    --------
    >>> m = register("mle", "kalcoint.tuning.mle:fit", inference=True, description="maximum likelihood")
    >>> "mle" in names()
    True
    """
    method = Method(name, target, inference, description)
    _REGISTRY[name] = method
    return method


def names() -> tuple[str, ...]:
    """The registered method names, in registration order.

    Examples
    --------
    >>> names()[:3]
    ('seed', 'mle', 'em')
    """
    return tuple(_REGISTRY)


def get(name: str) -> Method:
    """The method registered as ``name``; a :class:`KalcointError` naming ``method`` otherwise.

    Examples
    --------
    >>> get("seed").name
    'seed'
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise KalcointError(f"method {name!r} is not one of {', '.join(_REGISTRY)}", params="method") from None


def fit(
    name: str, values: np.ndarray, johansen_result: Any, iterations: int, tol: float | None, options: Mapping[str, Any]
) -> FitResult:
    """Run method ``name``'s fit; unknown options are refused with the method's own list.

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices().to_numpy()
    >>> fit("seed", p, kc.johansen(p), 1, None, {}).iterations
    1
    """
    method = get(name)
    accepted = method.options()
    unknown = [key for key in options if key not in accepted]
    if unknown:
        listed = ", ".join(accepted) or "none"
        raise KalcointError(
            f"method {name!r} takes no option {', '.join(unknown)} (its options: {listed})", params=("method", *unknown)
        )
    out = method.function(values, johansen_result, iterations=iterations, tol=tol, **options)
    if not isinstance(out, FitResult):
        raise TypeError(f"tuning method {name!r} returned {type(out).__name__}, not a FitResult")
    return out


register("seed", "kalcoint.tuning.seed:fit", description="the seed method's passes (docs/method.md §4-§5)")
register("mle", "kalcoint.tuning.mle:fit", inference=True, description="maximum likelihood (L-BFGS-B)")
register("em", "kalcoint.tuning.em:fit", inference=True, description="expectation-maximisation (SQUAREM)")
register(
    "als",
    "kalcoint.tuning.als:fit",
    description="autocovariance least squares (noises from the innovations' lagged autocovariances)",
)

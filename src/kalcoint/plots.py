"""Figures (matplotlib, Agg backend; every figure is written atomically as PNG).

- :func:`plot_portfolios`: the static Johansen portfolio and the dynamic portfolios on one
  scale (the method's two figures; the dynamic spread is multiplied by ``w_1``).
- :func:`plot_hedge_ratios`: the hedge ratios over time, per variant, against Johansen's.
- :func:`plot_tuning_passes`: ``alpha11``, ``obs_var`` and the log-likelihood over the seed passes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ._io import atomic_path  # noqa: E402
from .cointegration import JohansenResult  # noqa: E402
from .filtering import FilterResult  # noqa: E402

COLORS = {"adaptive": "#d62728", "chan": "#1f77b4", "mle": "#2ca02c", "em": "#9467bd",
          "alpha_estimated": "#ff7f0e", "alpha_1": "#8c564b", "static_johansen": "#333333"}


def save_figure(fig: plt.Figure, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` as PNG atomically and close it."""
    target = Path(path)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return target


def _x(index: pd.Index | None, n: int) -> np.ndarray | pd.Index:
    return index if index is not None else np.arange(n)


def plot_portfolios(
    prices: pd.DataFrame, jres: JohansenResult, results: Mapping[str, FilterResult], path: str | os.PathLike[str],
    title: str | None = None,
) -> Path:
    """Static portfolio ``y_port`` and each dynamic portfolio ``w_1 * s_t``, stacked on one y-scale."""
    names = list(results)
    fig, axes = plt.subplots(1 + len(names), 1, figsize=(11, 2.6 * (1 + len(names))), sharex=True, sharey=True)
    axes = np.atleast_1d(axes)
    x = prices.index
    static = jres.portfolio(prices)
    axes[0].plot(x, static, color=COLORS["static_johansen"], lw=0.8)
    axes[0].axhline(static.mean(), color="grey", lw=0.6, ls="--")
    axes[0].set_title("static Johansen portfolio  y_port = " +
                      " ".join(f"{w:+.3f}·{a}" for a, w in zip(jres.assets, jres.weights)) +
                      f"   (sd {static.std():.3g})", fontsize=10)
    for ax, name in zip(axes[1:], names):
        dyn = jres.weights[0] * results[name].spread
        ax.plot(x, dyn, color=COLORS.get(name, "k"), lw=0.8)
        ax.axhline(dyn.mean(), color="grey", lw=0.6, ls="--")
        ax.set_title(f"dynamic portfolio ({name}), w1 · s_t   (sd {dyn.std():.3g})", fontsize=10)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(title or f"Static vs dynamic portfolio: {', '.join(jres.assets)}", fontsize=12)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_hedge_ratios(
    prices: pd.DataFrame, jres: JohansenResult, results: Mapping[str, FilterResult], path: str | os.PathLike[str],
) -> Path:
    """One panel per hedged asset: ``b_{j,t|t}`` of each variant and the static ``-w_j/w_1``."""
    assets = jres.assets[1:]
    fig, axes = plt.subplots(len(assets), 1, figsize=(11, 3.0 * len(assets)), sharex=True)
    axes = np.atleast_1d(axes)
    for j, (ax, asset) in enumerate(zip(axes, assets), start=1):
        for name, res in results.items():
            ax.plot(prices.index, res.filtered_state[:, j], lw=0.9, color=COLORS.get(name), label=name)
        ax.axhline(jres.hedge_ratios[j - 1], color=COLORS["static_johansen"], ls="--", lw=1.0, label="Johansen")
        ax.set_ylabel(f"b ({asset})")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="best", fontsize=8, ncol=len(results) + 1)
    fig.suptitle(f"Hedge ratios of {jres.assets[0]} on {', '.join(assets)} (shares per share)", fontsize=12)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_tuning_passes(history: Mapping[str, np.ndarray], path: str | os.PathLike[str], title: str = "") -> Path:
    """``alpha11``, ``obs_var`` (log scale) and the log-likelihood against the seed pass number."""
    passes = np.arange(1, len(history["alpha11"]) + 1)
    marker = dict(marker=".", ms=3) if len(passes) <= 100 else {}
    fig, axes = plt.subplots(3, 1, figsize=(9, 7.5), sharex=True)
    axes[0].plot(passes, history["alpha11"], color=COLORS["adaptive"], **marker)
    axes[0].set_ylabel("alpha11")
    axes[1].semilogy(passes, np.maximum(history["obs_var"], 1e-320), color=COLORS["chan"], **marker)
    axes[1].set_ylabel("obs_var (Ve)")
    axes[2].plot(passes, history["loglik"], color=COLORS["mle"], **marker)
    axes[2].set_ylabel("log-likelihood")
    axes[2].set_xlabel("tuning pass")
    if len(passes) > 30:
        for ax in axes:
            ax.set_xscale("log")
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
    fig.suptitle(title or "Seed method: quantities over the tuning passes", fontsize=12)
    fig.tight_layout()
    return save_figure(fig, path)

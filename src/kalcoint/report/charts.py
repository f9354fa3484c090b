"""The report's charts: matplotlib ``Figure`` objects (no pyplot, no global backend) written as
inline SVG text, with their element ids made unique per chart so that many can share one page."""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ParamSpec

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..backtest import BacktestResult
from ..comparison import Comparison
from ..plots import as_written, missing_glyphs

MODEL_COLORS = {
    "static": "#4d4d4d",
    "chan": "#1f77b4",
    "seed": "#d62728",
    "mle": "#2ca02c",
    "em": "#9467bd",
    "als": "#e377c2",
}
ROW_COLORS = {
    "static_johansen": "#4d4d4d",
    "alpha_1": "#8c564b",
    "alpha_estimated": "#ff7f0e",
    "adaptive": "#d62728",
    "chan": "#1f77b4",
    "mle": "#2ca02c",
    "em": "#9467bd",
    "als": "#e377c2",
}
DASHED = {"em"}  # EM lands on MLE's optimum: drawn dashed so both stay visible
INK, GRID, MUTED = "#1b2a3a", "#e3e8ee", "#6b7785"
P = ParamSpec("P")
WIDTH = 10.0  # inches; the SVG scales to the page's width

_RC: dict[str, Any] = {
    "svg.fonttype": "none",  # text stays text: smaller, crisp, selectable
    "svg.hashsalt": "kalcoint-report",
    "font.family": "DejaVu Sans",
    "font.size": 9.0,
    "axes.edgecolor": "#c5ced8",
    "axes.labelcolor": INK,
    "axes.titlesize": 10.0,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.titlecolor": INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": GRID,
    "grid.linewidth": 0.6,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "legend.frameon": False,
    "legend.fontsize": 8.5,
    "lines.linewidth": 1.1,
    "axes.xmargin": 0.0,
}


def styled(make: Callable[P, Figure]) -> Callable[P, Figure]:
    """Build the figure under the report's style (matplotlib reads most settings when an artist is
    made, so the whole chart is drawn inside the style's context; nothing global is left changed)."""

    @functools.wraps(make)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Figure:
        with matplotlib.rc_context(_RC):  # type: ignore[arg-type]
            return make(*args, **kwargs)

    return wrapper


def new_figure(height: float, rows: int = 1, cols: int = 1, **grid: object) -> tuple[Figure, np.ndarray]:
    """A Figure (``WIDTH`` x ``height`` inches) with a rows x cols array of axes."""
    fig = Figure(figsize=(WIDTH, height), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, **grid)  # type: ignore[call-overload]
    return fig, axes


_ID = re.compile(r'id="([^"]+)"')


def to_svg(fig: Figure, name: str) -> str:
    """The figure as an ``<svg>`` element (no XML prologue), ids prefixed with ``name``, sized by CSS."""
    buffer = io.StringIO()
    with matplotlib.rc_context(_RC), missing_glyphs():  # type: ignore[arg-type]
        as_written(fig).savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, count=1, flags=re.DOTALL)
    ids = set(_ID.findall(svg))
    for old in sorted(ids, key=len, reverse=True):
        new = f"{name}-{old}"
        svg = svg.replace(f'id="{old}"', f'id="{new}"').replace(f"url(#{old})", f"url(#{new})")
        svg = svg.replace(f'href="#{old}"', f'href="#{new}"')
    svg = re.sub(r'<svg([^>]*?) width="[^"]+" height="[^"]+"', r'<svg\1 class="chart-svg" role="img"', svg, count=1)
    return svg


def _dates(x: pd.Series | pd.Index) -> np.ndarray:
    return pd.DatetimeIndex(x).to_numpy()


def _date_axis(axes: np.ndarray) -> None:
    """Concise date ticks (years, or months within a year) on every axis."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    for ax in axes.ravel():
        locator = AutoDateLocator(minticks=4, maxticks=8)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator, show_offset=False))


def _top_legend(fig: Figure, ax: object, ncol: int) -> None:
    handles, labels = ax.get_legend_handles_labels()  # type: ignore[attr-defined]
    fig.legend(handles, labels, loc="outside upper center", ncol=ncol)


def _style(model: str) -> dict[str, object]:
    """Colour, dashes and width of a model's line: MLE drawn wider underneath EM's short dashes, so
    that both show where they coincide."""
    return {
        "color": MODEL_COLORS.get(model, ROW_COLORS.get(model, INK)),
        "linestyle": (0, (2.5, 2.5)) if model in DASHED else "-",
        "linewidth": 1.7 if model == "mle" else 0.9,
        "zorder": 3 if model in DASHED else 2,
    }


# ---------------------------------------------------------------- comparison


@styled
def portfolios(comp: Comparison, names: Sequence[str] = ("adaptive", "mle")) -> Figure:
    """The static Johansen portfolio and each dynamic portfolio ``w_1 s_t`` on one y-scale."""
    names = [n for n in names if n in comp.results]
    fig, axes = new_figure(1.7 * (1 + len(names)) + 0.3, 1 + len(names), 1, sharex=True, sharey=True)
    x = _dates(comp.prices.index)
    jres = comp.johansen
    static = jres.portfolio(comp.prices)
    series = [
        (
            "static Johansen portfolio  " + " ".join(f"{w:+.3f}·{a}" for a, w in zip(jres.assets, jres.weights)),
            static,
            "static_johansen",
        )
    ]
    series += [(f"dynamic portfolio ({n}), w1·s_t", jres.weights[0] * comp.results[n].spread, n) for n in names]
    for ax, (title, values, key) in zip(axes[:, 0], series):
        values = np.asarray(values)
        ax.plot(x, values, color=ROW_COLORS.get(key, INK), lw=0.8)
        ax.axhline(float(values.mean()), color=MUTED, lw=0.6, ls="--")
        ax.set_title(f"{title}   (sd {values.std():.3g})", fontsize=9)
    _date_axis(axes)
    return fig


@styled
def hedge_ratios(comp: Comparison, names: Sequence[str] = ("adaptive", "chan", "mle", "em")) -> Figure:
    """One panel per hedged asset: each filter's ``b_{j,t|t}`` and Johansen's ``-w_j/w_1``."""
    jres = comp.johansen
    names = [n for n in names if n in comp.results]
    hedged = jres.assets[1:]
    fig, axes = new_figure(2.3 * len(hedged) + 0.4, len(hedged), 1, sharex=True)
    x = _dates(comp.prices.index)
    for j, (ax, asset) in enumerate(zip(axes[:, 0], hedged), start=1):
        for n in names:
            ax.plot(x, comp.results[n].filtered_state[:, j], label=n, **_style(n))
        ax.axhline(jres.hedge_ratios.iloc[j - 1], color=ROW_COLORS["static_johansen"], ls=":", lw=1.2, label="Johansen")
        ax.set_title(f"hedge ratio of {asset} (shares of {asset} per share of {jres.assets[0]})", fontsize=9)
    _top_legend(fig, axes[0, 0], len(names) + 1)
    _date_axis(axes)
    return fig


@styled
def tuning_passes(history: Mapping[str, np.ndarray]) -> Figure:
    """alpha11, obs_var (log scale) and the log-likelihood over the seed passes (log pass axis)."""
    passes = np.arange(1, len(history["alpha11"]) + 1)
    fig, axes = new_figure(4.6, 1, 3)
    panels = (
        ("alpha11", history["alpha11"], ROW_COLORS["adaptive"], False),
        ("obs_var (Ve)", np.maximum(history["obs_var"], 1e-320), ROW_COLORS["chan"], True),
        ("log-likelihood", history["loglik"], ROW_COLORS["mle"], False),
    )
    for ax, (label, values, color, log_y) in zip(axes[0], panels):
        ax.plot(passes, values, color=color, lw=1.2)
        if log_y:
            ax.set_yscale("log")
        if len(passes) > 30:
            ax.set_xscale("log")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("seed pass")
    return fig


# ---------------------------------------------------------------- backtests


@styled
def equity_curves(
    runs: Mapping[tuple[str, str], BacktestResult | None], models: Sequence[str], modes: Sequence[str]
) -> Figure:
    """Equity (starting at 1, log scale) of every model, one panel per mode."""
    fig, axes = new_figure(3.4, 1, len(modes))
    for ax, mode in zip(axes[0], modes):
        for model in models:
            res = runs.get((model, mode))
            if res is not None:
                ax.plot(_dates(res.frame["date"]), res.equity, label=model, **_style(model))
        ax.axhline(1.0, color=MUTED, lw=0.6)
        ax.set_yscale("log")
        ax.set_title(f"equity, {mode}", fontsize=9)
    _top_legend(fig, axes[0, 0], len(models))
    _plain_log_ticks(axes)
    _date_axis(axes)
    return fig


def _plain_log_ticks(axes: np.ndarray) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator

    for ax in axes.ravel():
        ax.yaxis.set_major_locator(
            LogLocator(base=10, subs=(1.0, 1.1, 1.2, 1.35, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0))
        )
        ax.yaxis.set_minor_locator(LogLocator(base=10, subs=()))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))


@styled
def drawdowns(
    runs: Mapping[tuple[str, str], BacktestResult | None], models: Sequence[str], modes: Sequence[str]
) -> Figure:
    """Drawdown (% below the running peak) of every model, one panel per mode."""
    fig, axes = new_figure(3.4, 1, len(modes), sharey=True)
    for ax, mode in zip(axes[0], modes):
        for model in models:
            res = runs.get((model, mode))
            if res is not None:
                ax.plot(_dates(res.frame["date"]), 100.0 * res.drawdown, label=model, **_style(model))
        ax.set_title(f"drawdown (%), {mode}", fontsize=9)
    _top_legend(fig, axes[0, 0], len(models))
    _date_axis(axes)
    return fig


@styled
def rolling_sharpes(
    series: Mapping[tuple[str, str], pd.Series],
    runs: Mapping[tuple[str, str], BacktestResult],
    models: Sequence[str],
    modes: Sequence[str],
    days: int,
) -> Figure:
    """Rolling Sharpe ratio over ``days`` days of every model, one panel per mode (a gap where it is
    undefined: a run flat for ``days`` days)."""
    fig, axes = new_figure(3.4, 1, len(modes), sharey=True)
    for ax, mode in zip(axes[0], modes):
        for model in models:
            s, res = series.get((model, mode)), runs.get((model, mode))
            if s is not None and res is not None and len(s):
                index = pd.DatetimeIndex(res.frame["date"])
                full = s.reindex(index[index >= s.index[0]])  # NaN where undefined: the line breaks there
                ax.plot(_dates(full.index), full.to_numpy(), label=model, **_style(model))
        ax.axhline(0.0, color=MUTED, lw=0.6)
        ax.set_title(f"rolling {days}-day Sharpe, {mode}", fontsize=9)
    _top_legend(fig, axes[0, 0], len(models))
    _date_axis(axes)
    return fig


# ---------------------------------------------------------------- live


@styled
def live_spread(last_year: pd.DataFrame, entry: float, exit: float, retunes: Sequence[pd.Timestamp] = ()) -> Figure:
    """The spread, the innovation with its bands (entry and exit in sqrt(Q_t)), and the units held;
    ``retunes``: dates a new version took effect (dotted vertical lines)."""
    x = _dates(last_year["when"])
    fig, axes = new_figure(6.4, 3, 1, sharex=True, height_ratios=[2.0, 2.0, 1.0])
    ax0, ax1, ax2 = axes[:, 0]
    ax0.plot(x, last_year["spread"].to_numpy(), color=INK, lw=0.9)
    ax0.set_title("spread (price units of the dependent asset)", fontsize=9)
    e = last_year["innovation"].to_numpy()
    sd = np.sqrt(last_year["innovation_var"].to_numpy())
    ax1.fill_between(x, -entry * sd, entry * sd, color="#dbe7f3", lw=0, label=f"entry band ±{entry:g}·sqrt(Q)")
    if exit != entry:
        ax1.plot(x, exit * sd, color="#7aa6cf", lw=0.7, ls="--", label=f"exit ±{exit:g}·sqrt(Q)")
        ax1.plot(x, -exit * sd, color="#7aa6cf", lw=0.7, ls="--")
    ax1.plot(x, e, color=MODEL_COLORS["chan"], lw=0.9, label="innovation e_t")
    ax1.set_title("innovation and its bands", fontsize=9)
    ax1.legend(loc="upper left", ncol=3)
    units = last_year["units"].to_numpy()
    ax2.fill_between(x, 0, units, step="post", color="#2ca02c", alpha=0.35, lw=0)
    ax2.step(x, units, where="post", color="#2ca02c", lw=0.9)
    ax2.set_yticks([-1, 0, 1], labels=["short", "flat", "long"])
    ax2.set_ylim(-1.3, 1.3)
    ax2.set_title("position held at each close (units)", fontsize=9)
    for when in retunes:
        for ax in (ax0, ax1, ax2):
            ax.axvline(pd.Timestamp(when).to_datetime64(), color=MUTED, lw=0.7, ls=":")
    _date_axis(axes)
    return fig


@styled
def live_pnl(last_year: pd.DataFrame) -> Figure:
    """Cumulative dollar P&L of one unit's positions over the page's period."""
    x = _dates(last_year["when"])
    pnl = np.cumsum(last_year["pnl"].to_numpy() * (np.arange(len(last_year)) > 0))
    fig, axes = new_figure(2.8)
    ax = axes[0, 0]
    ax.plot(x, pnl, color=INK, lw=1.0)
    ax.fill_between(x, 0, pnl, where=pnl >= 0, color="#2ca02c", alpha=0.25, lw=0, interpolate=True)
    ax.fill_between(x, 0, pnl, where=pnl < 0, color="#d62728", alpha=0.25, lw=0, interpolate=True)
    ax.axhline(0.0, color=MUTED, lw=0.6)
    ax.set_title("cumulative P&L of the positions (dollars, one unit = one share of the dependent asset)", fontsize=9)
    _date_axis(axes)
    return fig

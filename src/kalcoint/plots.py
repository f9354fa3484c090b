"""Figures (matplotlib's object-oriented Figure API; every figure is written atomically as PNG).

No pyplot and no backend switch: importing kalcoint.plots leaves a notebook's inline figures
alone. The ``*_figure`` functions return a :class:`matplotlib.figure.Figure` (a notebook shows it).

- :func:`plot_portfolios`: the static Johansen portfolio and the dynamic portfolios on one
  scale (the method's two figures; the dynamic spread is multiplied by ``w_1``).
- :func:`plot_hedge_ratios`: the hedge ratios over time, per variant, against Johansen's.
- :func:`plot_tuning_passes`: ``alpha11``, ``obs_var`` and the log-likelihood over the seed passes.
- :func:`equity_figure`, :func:`spread_figure`, :func:`plot_backtest`: a backtest's equity curve with
  its drawdown, and the traded spread with its bands and the units held.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.text import Text

from ._io import atomic_path
from .cointegration import JohansenResult
from .errors import MissingGlyphWarning
from .filtering import FilterResult

if TYPE_CHECKING:
    from .backtest import BacktestResult

COLORS = {
    "adaptive": "#d62728",
    "chan": "#1f77b4",
    "mle": "#2ca02c",
    "em": "#9467bd",
    "alpha_estimated": "#ff7f0e",
    "alpha_1": "#8c564b",
    "static_johansen": "#333333",
}


_GLYPH = re.compile(r"Glyph (\d+) \(.*\) missing from font\(s\) (.+?)\.?$")


@contextmanager
def missing_glyphs() -> Iterator[None]:
    """Lay out or draw figures inside this: matplotlib's warning per character its font lacks
    (each character of a name in Japanese, each emoji) becomes one :class:`MissingGlyphWarning`
    naming them all; other warnings pass on as they were. The warning filters are restored on exit.

    Examples
    --------
    >>> fig = Figure()
    >>> _ = fig.subplots().set_title("EWA")
    >>> with missing_glyphs():
    ...     _ = render_png(fig)
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    chars: set[str] = set()
    fonts: dict[str, None] = {}
    for w in caught:
        match = _GLYPH.match(str(w.message))
        if match is None:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
        else:
            chars.add(chr(int(match.group(1))))
            fonts[match.group(2)] = None
    if chars:
        warnings.warn(
            f"the figures' font ({', '.join(fonts)}) has no glyph for {' '.join(sorted(chars))} "
            "in the names: they show as empty boxes",
            MissingGlyphWarning,
            stacklevel=3,
        )


def as_written(fig: Figure) -> Figure:
    """Draw the text ``fig`` holds (titles, axis labels, legends: where names go) as written: a
    name such as ``$x$`` or ``$\\foo$`` is not read as mathtext, which would restyle it or fail
    on an unknown symbol. Tick labels keep mathtext (a log axis's ``10^k``).

    Examples
    --------
    >>> fig = Figure()
    >>> _ = fig.subplots().set_title("$\\\\foo$")
    >>> render_png(as_written(fig))[:4]
    b'\\x89PNG'
    """
    ticks: set[int] = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            ticks.add(id(axis.offsetText))
            for tick in (*axis.get_major_ticks(), *axis.get_minor_ticks()):
                ticks.update((id(tick.label1), id(tick.label2)))
    for text in fig.findobj(Text):
        if id(text) not in ticks:
            text.set_parse_math(False)
    return fig


def _finish(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Lay ``fig`` out and write it as PNG (one warning for the characters its font lacks)."""
    with missing_glyphs():
        as_written(fig).tight_layout()
        return save_figure(fig, path)


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` as PNG atomically.

    Examples
    --------
    >>> fig = Figure()
    >>> _ = fig.subplots().plot([1, 2, 3])
    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     save_figure(fig, Path(tmp) / "line.png").read_bytes()[1:4]
    b'PNG'
    """
    target = Path(path)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    return target


def plot_portfolios(
    prices: pd.DataFrame,
    jres: JohansenResult,
    results: Mapping[str, FilterResult],
    path: str | os.PathLike[str],
    title: str | None = None,
) -> Path:
    """Static portfolio ``y_port`` and each dynamic portfolio ``w_1 * s_t``, stacked on one y-scale.

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> res = {"chan": kc.kalman_filter(p, kc.StateSpaceModel.chan(3))}
    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     plot_portfolios(p, kc.johansen(p), res, Path(tmp) / "portfolios.png").read_bytes()[1:4]
    b'PNG'
    """
    names = list(results)
    fig = Figure(figsize=(11, 2.6 * (1 + len(names))))
    axes = fig.subplots(1 + len(names), 1, sharex=True, sharey=True)
    axes = np.atleast_1d(axes)
    x = prices.index
    static = jres.portfolio(prices)
    axes[0].plot(x, static, color=COLORS["static_johansen"], lw=0.8)
    axes[0].axhline(static.mean(), color="grey", lw=0.6, ls="--")
    axes[0].set_title(
        "static Johansen portfolio  y_port = "
        + " ".join(f"{w:+.3f}·{a}" for a, w in zip(jres.assets, jres.weights))
        + f"   (sd {static.std():.3g})",
        fontsize=10,
    )
    for ax, name in zip(axes[1:], names):
        dyn = jres.weights[0] * results[name].spread
        ax.plot(x, dyn, color=COLORS.get(name, "k"), lw=0.8)
        ax.axhline(dyn.mean(), color="grey", lw=0.6, ls="--")
        ax.set_title(f"dynamic portfolio ({name}), w1 · s_t   (sd {dyn.std():.3g})", fontsize=10)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(title or f"Static vs dynamic portfolio: {', '.join(jres.assets)}", fontsize=12)
    return _finish(fig, path)


def plot_hedge_ratios(
    prices: pd.DataFrame,
    jres: JohansenResult,
    results: Mapping[str, FilterResult],
    path: str | os.PathLike[str],
) -> Path:
    """One panel per hedged asset: ``b_{j,t|t}`` of each variant and the static ``-w_j/w_1``.

    Examples
    --------
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> res = {"chan": kc.kalman_filter(p, kc.StateSpaceModel.chan(3))}
    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     plot_hedge_ratios(p, kc.johansen(p), res, Path(tmp) / "hedge_ratios.png").read_bytes()[1:4]
    b'PNG'
    """
    assets = jres.assets[1:]
    fig = Figure(figsize=(11, 3.0 * len(assets)))
    axes = fig.subplots(len(assets), 1, sharex=True)
    axes = np.atleast_1d(axes)
    for j, (ax, asset) in enumerate(zip(axes, assets), start=1):
        for name, res in results.items():
            ax.plot(prices.index, res.filtered_state[:, j], lw=0.9, color=COLORS.get(name), label=name)
        ax.axhline(jres.hedge_ratios.iloc[j - 1], color=COLORS["static_johansen"], ls="--", lw=1.0, label="Johansen")
        ax.set_ylabel(f"b ({asset})")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="best", fontsize=8, ncol=len(results) + 1)
    fig.suptitle(f"Hedge ratios of {jres.assets[0]} on {', '.join(assets)} (shares per share)", fontsize=12)
    return _finish(fig, path)


def plot_tuning_passes(history: Mapping[str, np.ndarray], path: str | os.PathLike[str], title: str = "") -> Path:
    """``alpha11``, ``obs_var`` (log scale) and the log-likelihood against the seed pass number.

    Examples
    --------
    >>> import kalcoint as kc
    >>> tm = kc.tune(kc.demo_prices(), iterations=20)
    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     plot_tuning_passes(tm.history, Path(tmp) / "passes.png").read_bytes()[1:4]
    b'PNG'
    """
    passes = np.arange(1, len(history["alpha11"]) + 1)
    marker: dict[str, Any] = {"marker": ".", "ms": 3} if len(passes) <= 100 else {}
    fig = Figure(figsize=(9, 7.5))
    axes = fig.subplots(3, 1, sharex=True)
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
    return _finish(fig, path)


# ---------------------------------------------------------------- backtests


def render_png(fig: Figure) -> bytes:
    """The figure as PNG bytes.

    Examples
    --------
    >>> fig = Figure()
    >>> _ = fig.subplots().plot([1, 2, 3])
    >>> render_png(fig)[:4]
    b'\x89PNG'
    """
    buffer = io.BytesIO()
    with missing_glyphs():
        as_written(fig).savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    return buffer.getvalue()


def write_png(data: bytes, path: str | os.PathLike[str]) -> Path:
    """Write PNG bytes atomically.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     write_png(b"PNG bytes", Path(tmp) / "figure.png").read_bytes()
    b'PNG bytes'
    """
    target = Path(path)
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return target


def _title(result: BacktestResult) -> str:
    return f"{', '.join(result.assets)}: {result.model}, {result.strategy}, {result.mode}, {result.cost_bps:g} bps"


def equity_figure(result: BacktestResult) -> Figure:
    """Equity curve (starting at 1) above its drawdown (fraction below the running peak).

    Examples
    --------
    >>> import kalcoint as kc
    >>> fig = equity_figure(kc.backtest(kc.demo_prices(), "chan"))  # a notebook shows fig
    >>> [ax.get_ylabel() for ax in fig.axes]
    ['equity', 'drawdown (%)']
    """
    m = result.metrics
    dates = result.frame["date"]
    fig = Figure(figsize=(11, 6))
    ax1, ax2 = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax1.plot(dates, result.equity, color="#1f77b4", lw=1.0)
    ax1.axhline(1.0, color="grey", lw=0.6, ls="--")
    ax1.set_ylabel("equity")
    calmar = "-" if m["calmar"] is None else f"{m['calmar']:.2f}"
    sharpe = "-" if m["sharpe"] is None else f"{m['sharpe']:.2f}"
    ax1.set_title(
        f"{_title(result)}\nAPR {100 * m['apr']:.2f}%  Sharpe {sharpe}  "
        f"max drawdown {100 * m['max_drawdown']:.2f}%  Calmar {calmar}",
        fontsize=10,
    )
    dd = 100 * result.drawdown
    ax2.fill_between(dates, dd, 0.0, color="#d62728", alpha=0.5, lw=0)
    ax2.set_ylabel("drawdown (%)")
    return fig


def spread_figure(result: BacktestResult) -> Figure:
    """Spread; standardised signal with the bands (or the z-score); units held at each close.

    Examples
    --------
    >>> import kalcoint as kc
    >>> fig = spread_figure(kc.backtest(kc.demo_prices(), "chan"))
    >>> [ax.get_ylabel().split("\\n")[0] for ax in fig.axes]
    ['spread (price units)', 'innovation / sqrt(Q)', 'units']
    """
    dates = result.frame["date"]
    fig = Figure(figsize=(11, 8))
    axes = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [2, 2, 1]})
    axes[0].plot(dates, result.spread, color="#333333", lw=0.8)
    axes[0].set_ylabel("spread (price units)")
    low, high = np.percentile(result.spread, [0.5, 99.5])
    pad = 0.1 * (high - low) or 1.0
    axes[0].set_ylim(low - pad, high + pad)
    axes[0].set_title(_title(result), fontsize=10)
    with np.errstate(invalid="ignore", divide="ignore"):
        signal = result.deviation / result.scale
    axes[1].plot(dates, signal, color="#1f77b4", lw=0.6)
    if result.strategy == "bands":
        label = "innovation / sqrt(Q)" if result.model != "static" else "z-score of the spread"
        for level, style in ((result.entry, "-"), (result.exit, "--")):
            for sign in (1, -1):
                axes[1].axhline(sign * level, color="#d62728", lw=0.8, ls=style)
        axes[1].set_ylabel(f"{label}\n(bands: entry -, exit --)")
    else:
        axes[1].axhline(0.0, color="grey", lw=0.6)
        axes[1].set_ylabel("z-score of the spread")
    finite = signal[np.isfinite(signal)]
    if finite.size:
        lim = max(np.percentile(np.abs(finite), 99.5), 1.5 * result.entry)
        axes[1].set_ylim(-lim, lim)
    axes[2].step(dates, result.units, where="post", color="#2ca02c", lw=0.8)
    axes[2].axhline(0.0, color="grey", lw=0.6)
    axes[2].set_ylabel("units")
    return fig


FIGURES = {"equity.png": equity_figure, "spread_positions.png": spread_figure}


def render_backtest(result: BacktestResult) -> dict[str, bytes]:
    """Both figures as PNG bytes, by file name (``equity.png``, ``spread_positions.png``).

    Examples
    --------
    >>> import kalcoint as kc
    >>> sorted(render_backtest(kc.backtest(kc.demo_prices(), "chan")))
    ['equity.png', 'spread_positions.png']
    """
    return {name: render_png(make(result)) for name, make in FIGURES.items()}


def plot_backtest(result: BacktestResult, plot_dir: str | os.PathLike[str]) -> list[Path]:
    """Write ``equity.png`` and ``spread_positions.png`` into ``plot_dir`` (rendered first, then
    written atomically); return their paths.

    Examples
    --------
    >>> import kalcoint as kc
    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     [p.name for p in plot_backtest(kc.backtest(kc.demo_prices(), "chan"), tmp)]
    ['equity.png', 'spread_positions.png']
    """
    rendered = render_backtest(result)
    return [write_png(data, Path(plot_dir) / name) for name, data in rendered.items()]


__all__ = [
    "equity_figure",
    "missing_glyphs",
    "plot_backtest",
    "render_backtest",
    "render_png",
    "spread_figure",
    "write_png",
]

"""Figures of a backtest (matplotlib, Agg backend; PNG written atomically).

- :func:`equity_figure`: the compounded equity curve and its drawdown.
- :func:`spread_figure`: the traded spread, the band rule's standardised signal with the
  entry/exit bands (or the z-score of the linear rule), and the units held.
- :func:`plot_backtest`: both, written as ``equity.png`` and ``spread_positions.png``.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ._io import atomic_path  # noqa: E402
from .backtest import BacktestResult  # noqa: E402


def render_png(fig: plt.Figure) -> bytes:
    """The figure as PNG bytes (the figure is closed)."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buffer.getvalue()


def write_png(data: bytes, path: str | os.PathLike[str]) -> Path:
    """Write PNG bytes atomically."""
    target = Path(path)
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return target


def _title(result: BacktestResult) -> str:
    return (f"{', '.join(result.assets)}: {result.model}, {result.strategy}, {result.mode}, "
            f"{result.cost_bps:g} bps")


def equity_figure(result: BacktestResult) -> plt.Figure:
    """Equity curve (starting at 1) above its drawdown (fraction below the running peak)."""
    m = result.metrics
    dates = result.frame["date"]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax1.plot(dates, result.equity, color="#1f77b4", lw=1.0)
    ax1.axhline(1.0, color="grey", lw=0.6, ls="--")
    ax1.set_ylabel("equity")
    calmar = "-" if m["calmar"] is None else f"{m['calmar']:.2f}"
    sharpe = "-" if m["sharpe"] is None else f"{m['sharpe']:.2f}"
    ax1.set_title(f"{_title(result)}\nAPR {100 * m['apr']:.2f}%  Sharpe {sharpe}  "
                  f"max drawdown {100 * m['max_drawdown']:.2f}%  Calmar {calmar}", fontsize=10)
    dd = 100 * result.drawdown
    ax2.fill_between(dates, dd, 0.0, color="#d62728", alpha=0.5, lw=0)
    ax2.set_ylabel("drawdown (%)")
    return fig


def spread_figure(result: BacktestResult) -> plt.Figure:
    """Spread; standardised signal with the bands (or the z-score); units held at each close."""
    dates = result.frame["date"]
    fig, axes = plt.subplots(3, 1, figsize=(11, 8), sharex=True, gridspec_kw={"height_ratios": [2, 2, 1]})
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
    """Both figures as PNG bytes, by file name (``equity.png``, ``spread_positions.png``)."""
    return {name: render_png(make(result)) for name, make in FIGURES.items()}


def plot_backtest(result: BacktestResult, plot_dir: str | os.PathLike[str]) -> list[Path]:
    """Write ``equity.png`` and ``spread_positions.png`` into ``plot_dir`` (rendered first, then
    written atomically); return their paths."""
    rendered = render_backtest(result)
    return [write_png(data, Path(plot_dir) / name) for name, data in rendered.items()]


__all__ = ["equity_figure", "plot_backtest", "render_backtest", "render_png", "spread_figure", "write_png"]

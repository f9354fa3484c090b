"""Rendering: the report's data (:mod:`.basket`, :mod:`.live`) into one self-contained HTML page
through the jinja2 templates shipped in ``kalcoint/report/templates``. Charts are inline SVG
(:mod:`.charts`), the style sheet is inlined, and the page loads nothing."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from markupsafe import Markup

from .._io import atomic_path
from ..backtest import METRIC_KEYS
from ..comparison import Comparison
from . import charts
from .basket import (
    MODES,
    ROLLING_DAYS,
    BasketReport,
    bootstrap_samples,
    monthly_returns,
    rolling_sharpe,
    trade_list,
)
from .live import VERSION_COLUMNS, LiveReport

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
METRIC_LABELS = {
    "apr": ("APR", "pct"),
    "sharpe": ("Sharpe", ".2f"),
    "max_drawdown": ("max drawdown", "pct"),
    "calmar": ("Calmar", ".2f"),
    "round_trips": ("round trips", "d"),
    "avg_holding_days": ("avg hold (days)", ".1f"),
    "time_in_market": ("in market", "pct0"),
    "turnover": ("turnover / yr", ".1f"),
    "half_life": ("half-life (days)", ".1f"),
}


# ---------------------------------------------------------------- cell formatting


def _missing(value: Any) -> bool:
    if value is None or value is pd.NaT:
        return True
    try:
        return isinstance(value, (float, np.floating)) and not math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def fmt(value: Any, spec: str = ".4g") -> str:
    """A table cell: ``-`` when missing or empty; ``pct`` (2 decimals) and ``pct0`` percentages, ``d`` integers,
    ``date`` as YYYY-MM-DD, ``yes``/``no`` for booleans, else ``format(value, spec)``."""
    if _missing(value):
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if spec == "date":
        return pd.Timestamp(value).strftime("%Y-%m-%d")
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, np.ndarray, dict)) and len(value) == 0:
        return "–"
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(fmt(v, spec) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {fmt(v, spec)}" for k, v in value.items())
    if spec == "pct":
        return f"{100 * float(value):.2f}%"
    if spec == "pct0":
        return f"{100 * float(value):.0f}%"
    if spec == "d":
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if not isinstance(value, (float, np.floating)):
        return str(value)
    return format(float(value), spec)


def sign_class(value: Any) -> str:
    """CSS class of a signed figure: ``pos``, ``neg`` or ``""``."""
    if _missing(value) or isinstance(value, str):
        return ""
    return "pos" if float(value) > 0 else "neg" if float(value) < 0 else ""


def heat(value: Any, scale: float) -> str:
    """Inline background colour of a monthly-return cell: green up, red down, by ``|value| / scale``."""
    if _missing(value):
        return "background:#f6f8fa"
    t = min(abs(float(value)) / scale, 1.0) if scale > 0 else 0.0
    top = (26, 152, 80) if value >= 0 else (215, 48, 39)
    rgb = tuple(round(255 + (c - 255) * 0.85 * t) for c in top)
    return f"background:rgb{rgb}" + (";color:#fff" if t > 0.6 else "")


def _environment() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("kalcoint.report", "templates"),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(fmt=fmt, sign=sign_class, heat=heat)
    env.globals.update(zip=zip)
    return env


def _page(template: str, **context: Any) -> str:
    env = _environment()
    css = (Path(__file__).parent / "templates" / "style.css").read_text(encoding="utf-8")
    return env.get_template(template).render(css=Markup(css), **context)


def _svg(fig: Any, name: str) -> Markup:
    return Markup(charts.to_svg(fig, name))


# ---------------------------------------------------------------- the basket page


def _comparison_context(report: BasketReport) -> dict[str, Any]:
    comp = report.comparison
    rows: list[dict[str, Any]] = []
    for r in comp.rows:
        tuned = comp.tuned.get(r.name)
        rows.append({"row": r, "notes": [], "iterations": r.iterations, "converged": getattr(tuned, "converged", None)})
    test = getattr(comp, "alpha11_test", None)
    if callable(test):
        try:
            test = test()
        except TypeError:  # a method that needs arguments: nothing to show
            test = None
    items = _as_items(test)
    return {
        "rows": rows,
        "johansen": comp.johansen,
        "alpha11_test": items,
        "alpha11_text": _alpha11_words(dict(items)) if items else None,
        "oos_rows": len(comp.prices) - round(len(comp.prices) * comp.train_fraction),
        "train_fraction": comp.train_fraction,
    }


def _alpha11_words(test: dict[str, Any]) -> str | None:
    """The test of alpha11 = 1 in a sentence (for a result with ``lr_stat``, ``p_value``, ...)."""
    if "lr_stat" not in test:
        return None
    words = (
        f"Likelihood-ratio test of alpha11 = 1 (the level a random walk, as in Chan's filter) against "
        f"alpha11 free, by maximum likelihood on the whole sample: LR = {fmt(test['lr_stat'], '.3f')}"
    )
    p = test.get("p_value")
    if p is None or _missing(p):
        words += (
            ". No p-value: this report drew no bootstrap samples (bootstrap 0), and with alpha11 = 1 on the "
            "boundary of the stationary region the chi-square table does not apply, so there is no asymptotic one."
        )
    else:
        verdict = "reject" if float(p) <= 0.05 else "do not reject"
        words += (
            f", bootstrap p-value {fmt(p, '.3g')} ({fmt(test.get('bootstrap'), 'd')} samples): at 5% "
            f"the data {verdict} alpha11 = 1."
        )
    if "alpha11_hat" in test:
        words += f" The free estimate is alpha11 = {fmt(test['alpha11_hat'], '.4f')}."
    return words


def _as_items(obj: Any) -> list[tuple[str, Any]] | None:
    """A result object (with ``to_dict``, a dict or a dataclass) as (name, value) pairs; None if absent."""
    if obj is None:
        return None
    if hasattr(obj, "to_dict"):
        obj = obj.to_dict()
    elif hasattr(obj, "__dataclass_fields__"):
        obj = {k: getattr(obj, k) for k in obj.__dataclass_fields__}
    if isinstance(obj, dict):
        return [(str(k), v) for k, v in obj.items() if not isinstance(v, (pd.DataFrame, dict))]
    return [("result", str(obj))]


def _run_context(report: BasketReport) -> list[dict[str, Any]]:
    out = []
    for model in report.settings.models:
        for mode in MODES:
            run = report.run(model, mode)
            item: dict[str, Any] = {"model": model, "mode": mode, "error": run.error, "result": run.result}
            if run.result is not None:
                table = monthly_returns(run.result)
                values = table[list(range(1, 13))].to_numpy(dtype=np.float64)
                finite = np.abs(values[np.isfinite(values)])
                tl = trade_list(run.result)
                item.update(
                    monthly=table,
                    scale=max(float(np.percentile(finite, 95)) if finite.size else 0.0, 0.01),
                    trades=tl,
                    wins=float((tl["return"] > 0).mean()) if len(tl) else None,
                    mean_trade=float(tl["return"].mean()) if len(tl) else None,
                    best=float(tl["return"].max()) if len(tl) else None,
                    worst=float(tl["return"].min()) if len(tl) else None,
                    period=(run.result.frame["date"].iloc[0], run.result.frame["date"].iloc[-1]),
                    failures=len(run.result.retune_failures),
                    retunes=len(run.result.retunes),
                )
            out.append(item)
    return out


def _headline(report: BasketReport) -> list[dict[str, str]]:
    comp = report.comparison
    cards = [
        {
            "label": "Johansen rank (95%)",
            "value": str(comp.johansen.rank_95),
            "note": f"trace r≤0 {comp.johansen.trace_stat[0]:.2f}",
        }
    ]
    static = comp.row("static_johansen")
    cards.append(
        {
            "label": "static portfolio ADF p",
            "value": fmt(static.adf_pvalue, ".3g"),
            "note": f"out of sample {fmt(static.oos_adf_pvalue, '.3g')}",
        }
    )
    degenerate = [r.name for r in comp.rows if r.degenerate]
    cards.append(
        {"label": "degenerate variants", "value": str(len(degenerate)), "note": ", ".join(degenerate) or "none flagged"}
    )
    wf = [
        (run.result.metrics.get("sharpe"), model)
        for (model, mode), run in report.runs.items()
        if mode == "walk-forward" and run.result is not None and run.result.metrics.get("sharpe") is not None
    ]
    if wf:
        sharpe, model = max(wf)
        apr = report.run(model, "walk-forward").result.metrics["apr"]  # type: ignore[union-attr]
        cards.append(
            {"label": "best walk-forward Sharpe", "value": f"{sharpe:.2f}", "note": f"{model}, APR {fmt(apr, 'pct')}"}
        )
    return cards


def comparison_charts(comp: Comparison) -> dict[str, Markup]:
    """The comparison's charts as inline SVG: ``portfolios``, ``hedge`` and (when the adaptive
    tuning ran) ``passes``."""
    makers: list[tuple[str, Callable[[], Any]]] = [
        ("portfolios", lambda: charts.portfolios(comp)),
        ("hedge", lambda: charts.hedge_ratios(comp)),
    ]
    if "adaptive" in comp.tuned and len(comp.tuned["adaptive"].history.get("alpha11", [])):
        makers.append(("passes", lambda: charts.tuning_passes(comp.tuned["adaptive"].history)))
    return {name: _svg(make(), name) for name, make in makers}


def backtest_charts(report: BasketReport) -> dict[str, Markup]:
    """The backtests' charts as inline SVG: ``equity``, ``drawdown``, ``sharpe``."""
    models = list(report.settings.models)
    ok = {key: run.result for key, run in report.runs.items() if run.result is not None}
    rolling = {key: rolling_sharpe(res) for key, res in ok.items()}
    return {
        "equity": _svg(charts.equity_curves(ok, models, MODES), "equity"),
        "drawdown": _svg(charts.drawdowns(ok, models, MODES), "drawdown"),
        "sharpe": _svg(charts.rolling_sharpes(rolling, ok, models, MODES, ROLLING_DAYS), "sharpe"),
    }


def render_basket(report: BasketReport, comparison_svgs: dict[str, Markup] | None = None) -> str:
    """The basket page as HTML text. comparison_svgs : :func:`comparison_charts` of the report's
    comparison when already drawn (e.g. while the backtests ran)."""
    svgs = dict(comparison_svgs or comparison_charts(report.comparison))
    svgs.update(backtest_charts(report))
    models = list(report.settings.models)
    prov = report.provenance
    return _page(
        "basket.html.j2",
        title=f"{' / '.join(prov.assets)} · kalcoint report",
        prov=prov,
        settings=report.settings,
        cards=_headline(report),
        comparison=_comparison_context(report),
        runs=_run_context(report),
        metrics=report.metrics_frame(),
        metric_labels=METRIC_LABELS,
        metric_keys=METRIC_KEYS,
        svgs=svgs,
        months=MONTHS,
        models=models,
        modes=MODES,
        rolling_days=ROLLING_DAYS,
        timings=report.timings,
        bootstrap=bootstrap_samples(report.settings),
        work=_work(report.timings),
    )


def _work(timings: dict[str, float]) -> list[tuple[str, float]]:
    """The CPU seconds of the report's parts, largest first, as (what, seconds)."""
    labels = {
        "comparison_cpu_s": "the comparison",
        "bootstrap_cpu_s": "the bootstrap of the alpha11 test",
        "backtests_cpu_s": "the backtests with their estimates",
    }
    out = []
    for key, seconds in timings.items():
        if key.endswith("_walk_forward_fits_cpu_s"):
            out.append((f"{key[: -len('_walk_forward_fits_cpu_s')]} weekly re-estimations", seconds))
        elif key in labels:
            out.append((labels[key], seconds))
    return sorted(out, key=lambda item: -item[1])


# ---------------------------------------------------------------- the live page


def render_live(report: LiveReport) -> str:
    """The live model's page as HTML text."""
    entry, exit_ = float(report.strategy.get("entry", 1.0)), float(report.strategy.get("exit", 1.0))
    svgs = {
        "spread": _svg(charts.live_spread(report.last_year, entry, exit_, report.retune_dates), "spread"),
        "pnl": _svg(charts.live_pnl(report.last_year), "pnl"),
    }
    status = report.status
    updates = report.history[report.history["kind"] == "update"]
    year = report.last_year
    return _page(
        "live.html.j2",
        title=f"{report.path.name} · kalcoint live model",
        r=report,
        svgs=svgs,
        status=status,
        n_updates=len(updates),
        entry=entry,
        exit=exit_,
        year_pnl=float(year["pnl"].iloc[1:].sum()) if len(year) > 1 else 0.0,
        update_pnl=float(updates["pnl"].sum()) if len(updates) else None,
        version_columns=[c for c in VERSION_COLUMNS if c in report.versions.columns],
        status_items=[(k, v) for k, v in status.items() if k not in ("cov", "assets", "path")],
    )


def write_html(html: str, path: str | os.PathLike[str]) -> Path:
    """Write the page atomically (UTF-8)."""
    target = Path(path)
    with atomic_path(target) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return target

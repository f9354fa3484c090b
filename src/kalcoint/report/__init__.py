"""``kalcoint report``: one self-contained HTML page per basket, or per live model file.

- :mod:`.basket` and :mod:`.live` assemble the data (no rendering);
- :mod:`.charts` draws the charts (matplotlib's ``Figure`` API, as SVG);
- :mod:`.render` fills the jinja2 templates of ``templates/`` (shipped with the package).

Why inline SVG from matplotlib, not Plotly or Bokeh
---------------------------------------------------
The page must open with nothing fetched and weigh at most 5 MB. Plotly's library alone is
4.8 MB minified (``plotly.min.js`` of plotly 7.1), which leaves almost nothing for the data of
fifteen charts of 1,500 days. Bokeh with inline resources would fit, but it is a new
dependency, it draws into canvases inside shadow DOM (opaque to text search, print and
screen readers), and interactivity is not what a tearsheet is read for (quantstats' and
pyfolio's tear sheets, the anchors, are static pictures). matplotlib is already a dependency:
its SVG is vector (sharp at any zoom, prints well), text stays text, and a whole EWA/EWC/IGE
report is well under the limit. The page carries no script at all.

Speed: the weekly re-estimations of the tuned models' walk-forward backtests and the bootstrap
of the test of alpha11 = 1 are most of the work, and each depends on its own window or sample
only: :func:`basket_report` makes them in chunks in worker processes (two by default) while the
comparison runs in the calling process, then runs every backtest with its estimates made
beforehand (:func:`kalcoint.schedule.with_estimates`, the same result as tuning week by week).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .basket import (
    BasketReport,
    Settings,
    basket_report,
    monthly_returns,
    rolling_sharpe,
    trade_list,
    trades,
)
from .live import LiveReport, live_report


def write_basket_report(
    report: BasketReport, path: str | os.PathLike[str], comparison_svgs: dict[str, Any] | None = None
) -> Path:
    """Render a basket report and write it atomically as one HTML file.

    Parameters
    ----------
    report : BasketReport
    path : path-like
    comparison_svgs : dict, optional
        The comparison's charts if already drawn (see
        :func:`kalcoint.report.render.comparison_charts`).

    Returns
    -------
    Path

    Examples
    --------
    >>> import kalcoint as kc
    >>> rep = basket_report(kc.demo_prices(), Settings(models=("static", "chan"), bootstrap=0, iterations=20), workers=1)
    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     html = write_basket_report(rep, Path(tmp) / "report.html").read_text(encoding="utf-8")
    >>> html.startswith("<!DOCTYPE html>")
    True
    """
    from .render import render_basket, write_html

    return write_html(render_basket(report, comparison_svgs), path)


def write_live_report(report: LiveReport, path: str | os.PathLike[str]) -> Path:
    """Render a live model's page and write it atomically as one HTML file.

    Parameters
    ----------
    report : LiveReport
    path : path-like

    Returns
    -------
    Path

    Examples
    --------
    >>> import os, tempfile
    >>> import kalcoint as kc
    >>> d = tempfile.mkdtemp()
    >>> live = kc.live.save_chan_model(os.path.join(d, "m.kcm"), kc.demo_prices().iloc[:1000])
    >>> write_live_report(live_report(live), os.path.join(d, "live.html")).name
    'live.html'
    """
    from .render import render_live, write_html

    return write_html(render_live(report), path)


__all__ = [
    "BasketReport",
    "LiveReport",
    "Settings",
    "basket_report",
    "live_report",
    "monthly_returns",
    "rolling_sharpe",
    "trade_list",
    "trades",
    "write_basket_report",
    "write_live_report",
]

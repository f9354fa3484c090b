"""The data of a live model's page: the last year of steps (spread, innovation and its bands,
units held), the P&L of the positions, the versions (retunes) and the last status.

P&L of the positions: one unit of the portfolio on day t holds one share of asset 1 and
``-b_{j,t}`` shares of asset j (the posterior state of that day, as ``kalcoint update`` sizes
it), so ``units_t`` units held at the close of day t earn, on day t+1, the dollars
``sum_j units_t shares_{t,j} (p_{t+1,j} - p_{t,j})`` (no costs). Returns divide by the gross
dollar position of day t (the backtests' convention, :func:`kalcoint.backtest.account`).

Versions: a model file that records its re-estimations exposes them as ``versions`` (each with
its quantities); a file without them has one version, the quantities it was saved with.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..backtest import account
from ..live import LiveModel, load_model, unit_shares
from .basket import trades

LAST_DAYS = 365
"""Calendar days of history the page charts (the last year)."""
VERSION_COLUMNS = (
    "id",
    "effective_date",
    "window_first",
    "window_last",
    "method",
    "alpha11",
    "obs_var",
    "state_var",
    "loglik",
    "degenerate",
    "outcome",
)


@dataclass
class LiveReport:
    """Everything the live page shows.

    Attributes
    ----------
    path : Path
        The model file.
    assets : list of str
    method : str
    strategy, tuning : dict
        The model's settings.
    history : DataFrame
        Every step (:meth:`LiveModel.history`) with ``pnl`` (dollars per day of the units held
        the day before), ``cum_pnl`` and ``return`` added.
    last_year : DataFrame
        Its rows of the last :data:`LAST_DAYS` calendar days.
    versions : DataFrame
        One row per version; ``versions_recorded`` says whether the file records them.
    retune_dates : list of Timestamp
        The effective dates of the applied re-estimations within the last year, for the charts.
    trades : DataFrame
        The holding periods of the last year (:func:`kalcoint.report.basket.trades`).
    status : dict
        The model's :meth:`LiveModel.status`.
    kalcoint_version, created_at : str

    Examples
    --------
    >>> import os, tempfile
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> live = kc.live.save_chan_model(os.path.join(tempfile.mkdtemp(), "m.kcm"), p.iloc[:1000])
    >>> _ = live.update(p.iloc[1000:1010])
    >>> rep = live_report(live)
    >>> rep.method, len(rep.history), len(rep.last_year)
    ('chan', 1010, 261)
    """

    path: Path
    assets: list[str]
    method: str
    strategy: dict[str, Any]
    tuning: dict[str, Any]
    history: pd.DataFrame
    last_year: pd.DataFrame
    versions: pd.DataFrame
    versions_recorded: bool
    retune_dates: list[pd.Timestamp]
    trades: pd.DataFrame
    status: dict[str, Any]
    kalcoint_version: str
    created_at: str


def position_pnl(history: pd.DataFrame, assets: list[str]) -> pd.DataFrame:
    """``pnl`` (dollars), ``cum_pnl`` and ``return`` (fraction of the gross position) of the units
    held, per step of ``history`` (the module docstring's convention).

    Parameters
    ----------
    history : DataFrame
        :meth:`LiveModel.history`.
    assets : list of str

    Returns
    -------
    DataFrame
        ``history`` with the three columns added.

    Examples
    --------
    >>> import os, tempfile
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> live = kc.live.save_chan_model(os.path.join(tempfile.mkdtemp(), "m.kcm"), p.iloc[:1000])
    >>> _ = live.update(p.iloc[1000:1010])
    >>> list(position_pnl(live.history(), live.assets).columns[-3:])
    ['pnl', 'cum_pnl', 'return']
    """
    prices = history[assets].to_numpy(dtype=np.float64)
    held = [f"shares_{a}" for a in assets]
    if set(held) <= set(history.columns):  # the shares held, whatever the model (static included)
        shares = history[held].to_numpy(dtype=np.float64)
        units = np.ones(len(history))
    else:
        states = history[["beta_const", *(f"beta_{a}" for a in assets[1:])]].to_numpy(dtype=np.float64)
        shares = np.array([unit_shares(b) for b in states]) if len(states) else np.empty((0, len(assets)))
        units = history["units"].to_numpy(dtype=np.float64)
    acc = account(prices, units, shares, 0.0)
    out = history.copy()
    out["pnl"] = acc.pnl
    out["cum_pnl"] = np.cumsum(acc.pnl)
    out["return"] = acc.returns
    return out


def _versions(live: LiveModel) -> tuple[pd.DataFrame, bool]:
    """The model's versions as a table, and whether the file records them (else the saved one)."""
    raw = getattr(live, "versions", None)
    if callable(raw):
        raw = raw()
    if raw is not None:
        if isinstance(raw, pd.DataFrame):
            frame = raw.reset_index(drop=True)
        else:
            frame = pd.DataFrame([v.to_dict() if hasattr(v, "to_dict") else dict(v) for v in raw])
        if len(frame):
            return frame, True
    tuning, model = live.tuning, live.model
    if model is None:  # the static model: its saved weights
        model_fields: dict[str, Any] = {"weights": None if live.weights is None else live.weights.tolist()}
    else:
        model_fields = {"alpha11": model.alpha11, "obs_var": model.obs_var, "state_var": list(model.state_var)}
    saved = {
        "id": 1,
        "effective_date": None,
        "window_first": tuning.get("start_date"),
        "window_last": tuning.get("end_date"),
        "method": live.method,
        **model_fields,
        "loglik": tuning.get("loglik"),
        "degenerate": tuning.get("degenerate"),
        "outcome": "saved",
    }
    return pd.DataFrame([saved]), False


def _retune_dates(versions: pd.DataFrame, recent: pd.DataFrame) -> list[pd.Timestamp]:
    """Effective dates of the applied versions that fall within ``recent``'s dates."""
    if "effective_date" not in versions or not len(recent):
        return []
    applied = versions[versions["outcome"].astype(str) == "applied"] if "outcome" in versions else versions
    dates = pd.to_datetime(applied["effective_date"].dropna(), errors="coerce").dropna()
    first, last = recent["when"].iloc[0], recent["when"].iloc[-1]
    return [pd.Timestamp(d) for d in dates if first <= d <= last]


def live_report(model: str | os.PathLike[str] | LiveModel) -> LiveReport:
    """Read a model file (or an open :class:`LiveModel`) and compute its page's data.

    Parameters
    ----------
    model : path-like or LiveModel

    Returns
    -------
    LiveReport

    Examples
    --------
    >>> import os, tempfile
    >>> import kalcoint as kc
    >>> p = kc.demo_prices()
    >>> live = kc.live.save_chan_model(os.path.join(tempfile.mkdtemp(), "m.kcm"), p.iloc[:1000])
    >>> _ = live.update(p.iloc[1000:1010])
    >>> rep = live_report(live.path)
    >>> list(rep.history.columns[-3:])
    ['pnl', 'cum_pnl', 'return']
    """
    from .. import __version__

    live = load_model(model) if isinstance(model, (str, os.PathLike)) else model
    assets = live.assets
    history = position_pnl(live.history(), assets)
    dates = pd.DatetimeIndex(pd.to_datetime(history["date"]))
    history.insert(list(history.columns).index("date") + 1, "when", dates)
    recent = history[dates > dates[-1] - pd.Timedelta(days=LAST_DAYS)].reset_index(drop=True)
    versions, recorded = _versions(live)
    return LiveReport(
        path=Path(live.path),
        assets=assets,
        method=live.method,
        strategy=live.strategy,
        tuning=live.tuning,
        history=history,
        last_year=recent,
        versions=versions,
        versions_recorded=recorded,
        retune_dates=_retune_dates(versions, recent) if recorded else [],
        trades=trades(pd.DatetimeIndex(recent["when"]), recent["units"].to_numpy(), recent["return"].to_numpy()),
        status=live.status(),
        kalcoint_version=__version__,
        created_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )

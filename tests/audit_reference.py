"""A plain-loop reference for the audit columns of `backtest --out` and `history --out`: the daily
returns recomputed from the file's dollar positions, shares held and the prices alone."""

from __future__ import annotations

import pandas as pd


def recompute_returns(out: pd.DataFrame, prices: pd.DataFrame, assets: list[str], cost_bps: float) -> list[float]:
    """The daily returns from the --out file's dollar positions, traded values and the prices alone,
    with a plain loop (docs/method.md §8: P&L over the gross position of the day before, costs
    over the larger gross position before or after the trade)."""
    p = prices.loc[pd.DatetimeIndex(out["date"]), assets].to_numpy()
    returns = []
    for t in range(len(out)):
        gross = sum(abs(out[f"position_{a}"].iloc[t]) for a in assets)
        before = sum(abs(out[f"position_{a}"].iloc[t - 1]) for a in assets) if t else 0.0
        r = 0.0
        if t and before > 0:
            pnl = sum(out[f"position_{a}"].iloc[t - 1] * (p[t, j] / p[t - 1, j] - 1) for j, a in enumerate(assets))
            r = pnl / before
        traded = sum(
            abs(out[f"shares_{a}"].iloc[t] - (out[f"shares_{a}"].iloc[t - 1] if t else 0.0)) * p[t, j]
            for j, a in enumerate(assets)
        )
        assert abs(out["traded"].iloc[t] - traded) <= 1e-12 * max(1.0, traded)
        assert abs(out["cost"].iloc[t] - traded * cost_bps / 1e4) <= 1e-12 * max(1.0, traded)
        if max(before, gross) > 0:
            r -= out["cost"].iloc[t] / max(before, gross)
        returns.append(r)
    return returns

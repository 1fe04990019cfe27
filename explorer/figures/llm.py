"""Figures of the LLM page: tokens and cost over time, usage per group. DataFrames from
:mod:`explorer.queries.llm` in, plotly figures out (no Streamlit, so notebooks draw the same)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

#: One colour per group, the same in both panels (plotly would cycle its colours per trace).
PALETTE = qualitative.D3 + qualitative.Pastel


def _empty(title: str) -> go.Figure:
    figure = go.Figure()
    figure.update_layout(
        title=title,
        height=260,
        xaxis={"visible": False},
        yaxis={"visible": False},
        annotations=[
            {
                "text": "No LLM calls for these filters",
                "showarrow": False,
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.5,
                "font": {"size": 14},
            }
        ],
    )
    return figure


def llm_usage_chart(series: pd.DataFrame, *, title: str = "Tokens and cost over time") -> go.Figure:
    """Stacked tokens (top) and cost (bottom) per group per bucket of :func:`llm_usage_over_time`."""
    if series.empty:
        return _empty(title)
    figure = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=("total tokens", "cost (USD)"),
    )
    for number, (group, rows) in enumerate(series.groupby("group", sort=True)):
        tokens = pd.to_numeric(rows["total_tokens"], errors="coerce")
        cost = pd.to_numeric(rows["cost_usd"], errors="coerce")
        color = PALETTE[number % len(PALETTE)]
        common = {"x": rows["bucket"], "name": str(group), "legendgroup": str(group), "marker_color": color}
        figure.add_trace(go.Bar(y=tokens, **common), row=1, col=1)
        figure.add_trace(go.Bar(y=cost, showlegend=False, **common), row=2, col=1)
    figure.update_layout(title=title, barmode="stack", height=460, legend={"orientation": "h", "y": -0.15})
    return figure


def llm_usage_bars(
    usage: pd.DataFrame, *, value: str = "cost_usd", top: int = 15, title: str | None = None
) -> go.Figure:
    """Horizontal bars of one column of :func:`llm_usage` (cost by default) per group, largest first."""
    label = title or f"{value} per group"
    if usage.empty:
        return _empty(label)
    rows = usage.assign(_v=pd.to_numeric(usage[value], errors="coerce")).dropna(subset=["_v"])
    rows = rows.sort_values("_v", ascending=False).head(top).iloc[::-1]
    if rows.empty:
        return _empty(label)
    figure = go.Figure(go.Bar(x=rows["_v"], y=rows["group"].astype(str), orientation="h"))
    figure.update_layout(title=label, height=max(260, 28 * len(rows) + 120), xaxis_title=value)
    return figure

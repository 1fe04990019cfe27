"""Trace search charts: whole-trace duration against start time, one clickable point per trace."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from explorer.figures.charts import _empty, format_ms
from explorer.figures.trace import ERROR_COLOR

OK_COLOR = "#4c78a8"


def trace_scatter(results: pd.DataFrame, *, title: str = "Duration against start time") -> go.Figure:
    """One point per trace of :func:`~explorer.queries.search_traces` output (``customdata[0]`` = trace id):
    x start time, y duration (log axis), red when the trace has error spans. Clicking a point selects it."""
    if results.empty:
        return _empty(title, "No trace matches: loosen a filter or widen the sidebar's time range")
    figure = go.Figure()
    failed = results["error_count"].fillna(0).to_numpy() > 0
    for mask, name, color, symbol in (
        (~failed, "no error", OK_COLOR, "circle"),
        (failed, "has errors", ERROR_COLOR, "x"),
    ):
        part = results[mask]
        if part.empty:
            continue
        figure.add_trace(
            go.Scatter(
                x=part["start_time"],
                y=part["duration_ms"],
                mode="markers",
                name=name,
                marker={
                    "color": color,
                    "symbol": symbol,
                    "size": 8,
                    "line": {"width": 0.5, "color": "white"},
                },
                customdata=np.stack([part["trace_id"].astype(str).to_numpy()], axis=-1),
                hovertext=[
                    f"<b>{r}</b> · {s}<br>{format_ms(d)} · {n} spans · {e} errors<br>{t[:12]}…"
                    for r, s, d, n, e, t in zip(
                        part["root_name"],
                        part["root_service"],
                        part["duration_ms"],
                        part["span_count"],
                        part["error_count"],
                        part["trace_id"],
                        strict=True,
                    )
                ],
                hovertemplate="%{hovertext}<extra>click to open</extra>",
            )
        )
    figure.update_layout(
        title=title,
        height=320,
        margin={"t": 50, "l": 10, "r": 10, "b": 30},
        yaxis={"title": "duration (ms)", "type": "log"},
        xaxis={"title": "start (UTC)"},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 1, "xanchor": "right"},
        clickmode="event+select",
    )
    return figure

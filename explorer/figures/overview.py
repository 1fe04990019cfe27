"""Overview charts: rate, errors and p95 per service over time, so an incident shows as a bump."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer.figures.charts import _empty
from explorer.figures.trace import service_colors

ROWS = (("rate_per_s", "spans / s"), ("errors", "errors"), ("p95_ms", "p95 ms"))


def red_over_time(frame: pd.DataFrame, *, title: str = "Rate, errors and p95 over time") -> go.Figure:
    """Three stacked panels sharing the time axis, one line per service (the trace view's colours):
    spans per second, error spans per bucket, p95 duration in ms."""
    if frame.empty:
        return _empty(title, "No spans in this window: widen the time range or clear the service filter")
    width = int(frame["bucket_s"].iloc[0]) if "bucket_s" in frame else None
    figure = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.05,
        subplot_titles=[label for _, label in ROWS],
    )
    colors = service_colors(frame["service_name"].dropna())
    for service, part in frame.groupby("service_name", sort=True):
        for row, (column, label) in enumerate(ROWS, start=1):
            figure.add_trace(
                go.Scatter(
                    x=part["bucket"],
                    y=part[column],
                    mode="lines+markers" if len(part) < 3 else "lines",
                    name=str(service),
                    legendgroup=str(service),
                    showlegend=row == 1,
                    line={"color": colors.get(str(service)), "width": 1.6, "shape": "hv"},
                    hovertemplate=f"%{{x}}<br>{service}: %{{y:.3~f}} {label}<extra></extra>",
                ),
                row=row,
                col=1,
            )
    for row in range(1, 4):
        figure.update_yaxes(rangemode="tozero", row=row, col=1)
    figure.update_layout(
        title=title + (f" (buckets of {width} s)" if width else ""),
        height=520,
        margin={"t": 100, "l": 10, "r": 10, "b": 30},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.05, "x": 0},
        hovermode="x unified",
    )
    return figure

"""Charts of the signal pages (latency, profiles, alerts, metrics, logs) and the shared helpers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

STATUS_COLORS = {"ERROR": "#d62728", "OK": "#2ca02c", "UNSET": "#4c78a8"}
#: Series colours without red, which reads as "error" and stays reserved for errors.
COLORWAY = ("#4c78a8", "#f58518", "#54a24b", "#b279a2", "#72b7b2", "#eeca3b", "#9d755d", "#bab0ac")
PERCENTILE_COLORS = {"p50_ms": "#9ecae1", "p95_ms": "#3182bd", "p99_ms": "#08519c"}
SEVERITY_COLORS = {"critical": "#b30000", "error": "#e34a33", "warning": "#fdae61", "info": "#74add1"}
LEVEL_COLORS = {
    "ERROR": "#d62728",
    "FATAL": "#7f0000",
    "WARN": "#ff9f1c",
    "WARNING": "#ff9f1c",
    "INFO": "#4c78a8",
    "DEBUG": "#9e9e9e",
}


def _empty(title: str, message: str = "No data for these filters") -> go.Figure:
    figure = go.Figure()
    figure.update_layout(
        title=title,
        height=260,
        xaxis={"visible": False},
        yaxis={"visible": False},
        annotations=[
            {
                "text": message,
                "showarrow": False,
                "font": {"size": 14},
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.5,
            }
        ],
    )
    return figure


def _sig(value: float) -> str:
    """Three significant digits, no exponent, no trailing zeros (1.81, 12.3, 850, 2)."""
    size = abs(value)
    text = f"{value:.0f}" if size >= 100 else f"{value:.1f}" if size >= 10 else f"{value:.2f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_ms(ms: float | None) -> str:
    """A duration in milliseconds as human text: 850 µs, 12.3 ms, 1.81 s, 2.5 min, 1.2 h."""
    if ms is None or (isinstance(ms, float) and math.isnan(ms)):
        return "–"
    ms = float(ms)
    size = abs(ms)
    if size == 0:
        return "0 ms"
    if size < 1:
        return f"{_sig(ms * 1000)} µs"
    if size < 1000:
        return f"{_sig(ms)} ms"
    if size < 60_000:
        return f"{_sig(ms / 1000)} s"
    if size < 3_600_000:
        return f"{_sig(ms / 60_000)} min"
    return f"{_sig(ms / 3_600_000)} h"


def _step_xy(hist: pd.DataFrame) -> tuple[list[float], list[float]]:
    xs: list[float] = []
    ys: list[float] = []
    previous_hi: Any = None
    for lo, hi, count in zip(hist["lo_ms"], hist["hi_ms"], hist["count"], strict=True):
        if previous_hi is None or not math.isclose(lo, previous_hi, rel_tol=1e-9):
            if previous_hi is not None:
                xs += [previous_hi]
                ys += [0]
            xs += [lo]
            ys += [0]
        xs += [lo, hi]
        ys += [count, count]
        previous_hi = hi
    xs.append(previous_hi)
    ys.append(0)
    return xs, ys


def duration_histogram(
    hist: pd.DataFrame, *, log_x: bool = False, title: str = "Duration histogram", side_by_side: bool = False
) -> go.Figure:
    """Histogram(s) of :func:`~explorer.queries.latency_histogram` output: one outline per group,
    overlaid or side by side; drawn as steps so bins stay exact on a log axis too."""
    if hist.empty:
        return _empty(title)
    groups = list(dict.fromkeys(hist["group"]))
    if side_by_side and len(groups) > 1:
        figure = make_subplots(
            rows=1, cols=len(groups), subplot_titles=[str(g) for g in groups], horizontal_spacing=0.06
        )
    else:
        figure = go.Figure()
    for i, group in enumerate(groups):
        xs, ys = _step_xy(hist[hist["group"] == group])
        trace = go.Scatter(
            x=xs,
            y=ys,
            mode="lines",
            name=str(group),
            fill="tozeroy",
            line={"width": 1.5},
            hovertemplate="%{x:.3f} ms: %{y}<extra>" + str(group) + "</extra>",
        )
        if side_by_side and len(groups) > 1:
            figure.add_trace(trace, row=1, col=i + 1)
        else:
            figure.add_trace(trace)
    figure.update_xaxes(type="log" if log_x else "linear", title="duration (ms)")
    figure.update_yaxes(title="count", rangemode="tozero")
    figure.update_layout(
        title=title,
        height=380,
        margin={"t": 80, "b": 95} if side_by_side and len(groups) > 1 else {"t": 60},
        showlegend=len(groups) > 1 and not side_by_side,
        colorway=list(COLORWAY),
    )
    if side_by_side and len(groups) > 1:
        # One shared x title under the panels and a y title on the first panel only: one per panel
        # overlapped the neighbouring panel's ticks at narrow widths.
        figure.update_xaxes(title=None)
        figure.update_yaxes(title=None)
        figure.update_yaxes(title="count", row=1, col=1)
        figure.add_annotation(
            text="duration (ms)",
            xref="paper",
            yref="paper",
            x=0.5,
            y=-0.2,
            yanchor="top",
            showarrow=False,
            font={"size": 13},
        )
    return figure


def red_chart(red: pd.DataFrame, *, top: int = 20) -> go.Figure:
    """p50/p95/p99 per operation (bars) for the busiest operations, error rate in the hover."""
    if red.empty:
        return _empty("Latency per operation")
    frame = red.head(top).iloc[::-1]
    labels = (
        frame["service_name"].fillna("∅").astype(str) + " · " + frame["operation"].fillna("∅").astype(str)
    )
    figure = go.Figure()
    for column, color in (("p50_ms", "#9ecae1"), ("p95_ms", "#3182bd"), ("p99_ms", "#08519c")):
        figure.add_trace(
            go.Bar(
                orientation="h",
                y=labels,
                x=frame[column],
                name=column.replace("_ms", ""),
                marker_color=color,
                customdata=np.stack([frame["spans"], frame["error_rate"] * 100], axis=-1),
                hovertemplate="%{y}<br>%{x:.3f} ms<br>%{customdata[0]} spans, %{customdata[1]:.1f}% errors<extra></extra>",
            )
        )
    figure.update_layout(
        title="Latency percentiles per operation",
        barmode="group",
        height=max(260, 28 * len(frame) + 120),
        xaxis={"title": "ms", "type": "log"},
        margin={"l": 10, "t": 50},
        yaxis={"automargin": True},
    )
    return figure


def percentile_lines(
    frame: pd.DataFrame,
    *,
    title: str = "Percentiles over time",
    time_column: str = "bucket",
    columns: Sequence[str] = ("p50_ms", "p95_ms", "p99_ms"),
    unit: str = "ms",
) -> go.Figure:
    """Lines of percentile columns over time."""
    if frame.empty:
        return _empty(title)
    figure = go.Figure()
    for column in columns:
        if column in frame:
            figure.add_trace(
                go.Scatter(
                    x=frame[time_column],
                    y=frame[column],
                    mode="lines+markers",
                    name=column.replace("_ms", ""),
                    marker={"size": 4},
                    line={"color": PERCENTILE_COLORS.get(column)},
                )
            )
    figure.update_layout(
        title=title, height=340, yaxis={"title": unit, "rangemode": "tozero"}, margin={"t": 50}
    )
    return figure


def hotspot_bars(hotspots: pd.DataFrame, *, top: int = 25) -> go.Figure:
    """Self and cumulative seconds of the top functions."""
    if hotspots.empty:
        return _empty("Profile hotspots", "No profile rows for these filters")
    frame = hotspots.head(top).iloc[::-1]
    labels = frame["function"].astype(str)
    figure = go.Figure()
    figure.add_trace(
        go.Bar(
            orientation="h", y=labels, x=frame["cumulative_s"], name="cumulative s", marker_color="#c6dbef"
        )
    )
    figure.add_trace(
        go.Bar(
            orientation="h",
            y=labels,
            x=frame["self_s"],
            name="self s",
            marker_color="#e6550d",
            customdata=frame[["calls"]].to_numpy(),
            hovertemplate="%{y}: self %{x:.4f} s, %{customdata[0]} calls<extra></extra>",
        )
    )
    figure.update_layout(
        title="Top functions (self vs cumulative time)",
        barmode="overlay",
        height=max(260, 26 * len(frame) + 120),
        xaxis={"title": "seconds"},
        yaxis={"automargin": True},
        margin={"t": 50},
    )
    return figure


def _package(function: str, file: str | None) -> str:
    """What an icicle box is coloured by: the file's package (``site-packages/httpx/…`` → ``httpx``), the
    file name for application code, or ``builtins`` for C functions (``<method 'join' …>``)."""
    if function.startswith(("<method", "<built-in", "<function")) or not file or file.startswith("~"):
        return "builtins"
    parts = file.replace("\\", "/").split("/")
    for marker in ("site-packages", "dist-packages", "lib"):
        if marker in parts[:-1]:
            rest = parts[parts.index(marker) + 1 :]
            if rest and rest[0].startswith("python"):
                rest = rest[1:]
            if rest:
                return rest[0].removesuffix(".py")
    return parts[-1].removesuffix(".py")


def icicle(
    tree: pd.DataFrame, *, files: dict[str, str] | None = None, title: str = "Call tree (icicle)"
) -> go.Figure:
    """Icicle of :func:`~explorer.queries.call_tree`: width is time, children below their caller, boxes
    coloured by package/file (``files`` maps function → file, e.g. from the hotspots), hover with self and
    cumulative seconds; six levels at a time (click a box to zoom in)."""
    if tree.empty:
        return _empty(title, "No call edges for these filters")
    files = files or {}
    packages = [_package(str(f), files.get(str(f))) for f in tree["function"]]
    palette = {p: COLORWAY[i % len(COLORWAY)] for i, p in enumerate(dict.fromkeys(sorted(set(packages))))}
    figure = go.Figure(
        go.Icicle(
            ids=tree["id"],
            labels=tree["function"],
            parents=tree["parent"],
            values=tree["value"],
            branchvalues="remainder",
            marker={"colors": [palette[p] for p in packages]},
            customdata=np.stack(
                [tree["value"], tree["total"], tree["calls"], np.array(packages, dtype=object)], axis=-1
            ),
            hovertemplate=(
                "<b>%{label}</b> · %{customdata[3]}<br>self %{customdata[0]:.4f} s · cumulative "
                "%{customdata[1]:.4f} s<br>%{customdata[2]} calls<extra></extra>"
            ),
            tiling={"orientation": "v"},
            maxdepth=6,
            insidetextfont={"size": 12},
            textinfo="label",
        )
    )
    figure.update_layout(
        title=title + " — colour: " + ", ".join(f"{p}" for p in list(palette)[:8]),
        height=520,
        margin={"t": 50, "l": 10, "r": 10, "b": 10},
    )
    return figure


def alert_timeline(
    windows: pd.DataFrame,
    series: pd.DataFrame | None = None,
    *,
    threshold: float | None = None,
    metric: str | None = None,
) -> go.Figure:
    """Alert windows as bars by severity (bottom) under the alerting metric and its threshold (top)."""
    if windows.empty and (series is None or series.empty):
        return _empty("Alerts timeline", "No alerts in this window")
    figure = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.55, 0.45],
        vertical_spacing=0.06,
        subplot_titles=(metric or "metric", "alerts"),
    )
    if series is not None and not series.empty:
        for name, part in series.groupby("series", sort=False):
            figure.add_trace(
                go.Scatter(x=part["timestamp"], y=part["value"], mode="lines", name=str(name)), row=1, col=1
            )
        if threshold is not None and not (isinstance(threshold, float) and math.isnan(threshold)):
            figure.add_trace(
                go.Scatter(
                    x=[series["timestamp"].min(), series["timestamp"].max()],
                    y=[threshold, threshold],
                    mode="lines",
                    name=f"threshold {threshold:g}",
                    line={"dash": "dash", "color": "#b30000"},
                ),
                row=1,
                col=1,
            )
    if not windows.empty:
        starts = pd.to_datetime(windows["start"], utc=True)
        ends = pd.to_datetime(windows["end"], utc=True)
        # A floor keeps instant (or still-firing, zero-length) alerts visible: 0.5% of the time shown, so a
        # short alert on a short store is not drawn wider than it was.
        shown_ms = (max(ends.max(), starts.max()) - starts.min()).total_seconds() * 1000
        width_ms = ((ends - starts).dt.total_seconds() * 1000).clip(lower=max(shown_ms * 0.005, 1.0))
        labels = (
            windows["title"].fillna("∅").astype(str) + " · " + windows["severity"].fillna("?").astype(str)
        )
        for severity, color in SEVERITY_COLORS.items():
            mask = windows["severity"].fillna("").str.lower() == severity
            if mask.any():
                figure.add_trace(
                    go.Bar(
                        orientation="h",
                        base=starts[mask],
                        x=width_ms[mask],
                        y=labels[mask],
                        name=severity,
                        marker_color=color,
                        customdata=np.stack(
                            [
                                windows.loc[mask, "resolved"].map({True: "resolved", False: "still firing"}),
                                windows.loc[mask, "peak_value"].astype(str),
                            ],
                            axis=-1,
                        ),
                        hovertemplate="%{y}<br>%{base} → %{customdata[0]}<br>value %{customdata[1]}<extra></extra>",
                    ),
                    row=2,
                    col=1,
                )
        other = ~windows["severity"].fillna("").str.lower().isin(list(SEVERITY_COLORS))
        if other.any():
            figure.add_trace(
                go.Bar(
                    orientation="h",
                    base=starts[other],
                    x=width_ms[other],
                    y=labels[other],
                    name="other",
                    marker_color="#999999",
                ),
                row=2,
                col=1,
            )
    figure.update_xaxes(type="date", row=2, col=1)
    figure.update_yaxes(automargin=True, row=2, col=1)
    figure.update_layout(title="Alerts timeline", height=520, barmode="overlay", margin={"t": 60})
    return figure


def metric_lines(series: pd.DataFrame, *, title: str = "Metric", unit: str | None = None) -> go.Figure:
    """One line per series of :func:`~explorer.queries.metric_series` output."""
    if series.empty:
        return _empty(title)
    figure = go.Figure()
    for name, part in series.groupby("series", sort=False):
        figure.add_trace(
            go.Scatter(
                x=part["timestamp"], y=part["value"], mode="lines+markers", name=str(name), marker={"size": 3}
            )
        )
    figure.update_layout(
        title=title,
        height=380,
        yaxis={"title": unit or ""},
        margin={"t": 50},
        colorway=list(COLORWAY),
    )
    stamps = pd.to_datetime(series["timestamp"]).dropna().unique()
    if len(stamps) == 1:
        # One point per series: plotly would zoom both axes onto it (ticks like "58.0967100001" and
        # sub-millisecond times); show a minute either side and the value axis from zero.
        at = pd.Timestamp(stamps[0])
        values = series["value"].dropna()
        low, high = min(0.0, float(values.min())), max(0.0, float(values.max()))
        pad = (high - low) * 0.1 or 1.0
        figure.update_layout(
            xaxis={"range": [at - pd.Timedelta(minutes=1), at + pd.Timedelta(minutes=1)]},
            yaxis={"range": [low - (pad if low < 0 else 0), high + pad]},
        )
        figure.update_traces(marker={"size": 9})
    return figure


def histogram_heatmap(buckets: pd.DataFrame, *, title: str = "Histogram buckets over time") -> go.Figure:
    """Observations per bucket (upper bound ``le``) per time bucket, as a heatmap."""
    if buckets.empty:
        return _empty(title)
    table = buckets.pivot_table(index="le", columns="timestamp", values="count", aggfunc="sum").sort_index()
    labels = [f"≤ {le:g}" if math.isfinite(le) else "> last bound" for le in table.index]
    figure = go.Figure(
        go.Heatmap(
            x=list(table.columns),
            y=labels,
            z=table.to_numpy(),
            colorscale="Viridis",
            hovertemplate="%{x}<br>%{y}: %{z}<extra></extra>",
        )
    )
    figure.update_layout(title=title, height=380, yaxis={"type": "category"}, margin={"t": 50})
    return figure


def log_volume(volume: pd.DataFrame, *, title: str = "Log records by level") -> go.Figure:
    """Stacked records per time bucket by level: :func:`~explorer.queries.log_volume` output (the real
    counts), or raw log rows (``timestamp``, ``severity_text``), bucketed per minute."""
    if volume.empty:
        return _empty(title, "No log records for these filters: widen the time range or loosen a filter")
    if "records" not in volume:
        volume = (
            volume.assign(
                bucket=pd.to_datetime(volume["timestamp"]).dt.floor("min"),
                level=volume["severity_text"].fillna("UNSET"),
            )
            .groupby(["bucket", "level"])
            .size()
            .reset_index(name="records")
        )
    width = int(volume["bucket_s"].iloc[0]) if "bucket_s" in volume else None
    figure = go.Figure()
    for level, part in volume.groupby("level", sort=False):
        figure.add_trace(
            go.Bar(
                x=part["bucket"],
                y=part["records"],
                name=str(level),
                marker_color=LEVEL_COLORS.get(str(level).upper(), "#999999"),
            )
        )
    figure.update_layout(
        title=title + (f" (per {width} s)" if width else ""),
        barmode="stack",
        height=260,
        margin={"t": 50},
        yaxis={"title": "records"},
    )
    return figure


def fired_chart(
    series: pd.DataFrame, fired: pd.DataFrame, *, threshold: float, title: str = "What would have fired"
) -> go.Figure:
    """A metric series with a typed threshold and the points where it would have fired marked."""
    figure = metric_lines(series, title=title)
    if series.empty:
        return figure
    figure.add_trace(
        go.Scatter(
            x=[series["timestamp"].min(), series["timestamp"].max()],
            y=[threshold, threshold],
            mode="lines",
            name=f"threshold {threshold:g}",
            line={"dash": "dash", "color": "#b30000"},
        )
    )
    if not fired.empty and "timestamp" in fired:
        figure.add_trace(
            go.Scatter(
                x=fired["timestamp"],
                y=fired.get("value", [threshold] * len(fired)),
                mode="markers",
                name="would fire",
                marker={"symbol": "x", "size": 10, "color": "#b30000"},
            )
        )
    return figure


def attribute_shares(compared: pd.DataFrame, key: str, *, title: str | None = None) -> go.Figure:
    """One key of :func:`~explorer.queries.compare_attributes`: each value's share of the selection and
    of the baseline, side by side (horizontal bars, largest difference on top)."""
    rows = compared[(compared["key"] == key) & compared["selection_share"].notna()]
    title = title or f"{key}: selection vs baseline"
    if rows.empty:
        return _empty(title, f"No values of {key} to compare")
    rows = rows.iloc[::-1]
    labels = [str(v) for v in rows["value"]]
    figure = go.Figure()
    for column, name, color, counts in (
        ("baseline_share", "baseline", "#9e9e9e", "baseline_count"),
        ("selection_share", "selection", "#d62728", "selection_count"),
    ):
        figure.add_trace(
            go.Bar(
                y=labels,
                x=rows[column].astype(float) * 100,
                name=name,
                orientation="h",
                marker_color=color,
                customdata=rows[counts],
                hovertemplate="%{y}: %{x:.1f}% (%{customdata} units)<extra>" + name + "</extra>",
            )
        )
    figure.update_layout(
        title=title,
        barmode="group",
        height=max(220, 60 + 40 * len(rows)),
        xaxis_title="share of the group (%)",
        margin={"l": 10, "r": 10, "t": 50, "b": 40},
        legend={"orientation": "h", "y": -0.25},
    )
    return figure

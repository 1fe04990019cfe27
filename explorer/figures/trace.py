"""The trace waterfall: every span of one trace as a bar at its true offset and width, drawn with WebGL.

Why WebGL (``scattergl``): a 10,000-span trace as 10,000 SVG ``<rect>`` bars (``go.Bar``) took ~7 s to
draw in headless Chromium. Here each service is one ``scattergl`` line trace whose segments are the
bars (``x = [start, end, NaN, ...]``), so the browser draws a handful of GPU line batches whatever the
span count. One invisible marker per span, at the middle of its bar, carries the span id: hovering or
clicking a row (``hovermode="y"``) picks that span, which is how the app selects spans from the chart.
The selected row is one layout shape (a band), the critical path a thin dark line through its bars,
errors a red mark at the bar's start, span events and logs small ticks on the bar. Nothing here is a
per-span SVG element except the y tick labels, which plotly only draws for the rows in view.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from explorer.figures.charts import LEVEL_COLORS, _empty, format_ms

#: Service colours: distinct hues without pure red, which stays reserved for errors.
SERVICE_PALETTE = (
    "#4c78a8",
    "#f58518",
    "#54a24b",
    "#b279a2",
    "#72b7b2",
    "#eeca3b",
    "#9d755d",
    "#bab0ac",
    "#1f77b4",
    "#8c6d31",
)
ERROR_COLOR = "#d62728"
CRITICAL_COLOR = "#111111"
SELECTED_FILL = "rgba(255, 193, 7, 0.35)"
#: Rows the waterfall shows before the user pans or zooms (the figure holds every span regardless).
WATERFALL_ROWS = 30
#: Pixels per row: compact, as in Jaeger, so ~30 spans fit under the header at 1280×720.
ROW_PX = 18
BAR_PX = 11
LABEL_CHARS = 44


def service_colors(services: pd.Series | list[str]) -> dict[str, str]:
    """A stable colour per service name (sorted names take the palette in turn)."""
    names = sorted({str(s) for s in services if isinstance(s, str)})
    return {name: SERVICE_PALETTE[i % len(SERVICE_PALETTE)] for i, name in enumerate(names)}


def _segments(x0: np.ndarray, x1: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Line segments (x0→x1 at height y) as one NaN-separated polyline, for one scattergl trace."""
    xs = np.empty(len(x0) * 3)
    ys = np.empty(len(x0) * 3)
    xs[0::3], xs[1::3], xs[2::3] = x0, x1, np.nan
    ys[0::3], ys[1::3], ys[2::3] = y, y, np.nan
    return xs, ys


def row_label(name: str, service: str, depth: int) -> str:
    """The y-axis label of a span row: nesting dots, the operation, the service."""
    name = name if len(name) <= LABEL_CHARS else name[: LABEL_CHARS - 1] + "…"
    return f"{'· ' * min(depth, 20)}{name} · {service}"


def waterfall(
    tree: pd.DataFrame,
    *,
    marks: pd.DataFrame | None = None,
    selected: str | None = None,
    show_critical: bool = True,
    rows: int = WATERFALL_ROWS,
) -> go.Figure:
    """The spans of ``tree`` (tree order, ``offset_ms``/``duration_ms``) as a waterfall, one row each.

    ``marks`` (from :func:`explorer.queries.trace_marks`: ``span_id``, ``offset_ms``, ``kind`` "event" or
    "log", ``label``, ``level``) become ticks on the bars. The span trace (``name="spans"``) holds one
    point per span with the span id as ``customdata[0]``; selecting it selects that span. ``selected``
    (a span id) is drawn as a highlighted row band.
    """
    if tree.empty:
        return _empty("Trace waterfall")
    n = len(tree)
    # Row i is drawn at y = -i on a normal axis: Streamlit's plotly.js build draws scattergl *lines* at the
    # wrong height on a reversed axis (markers are right), so the rows count down instead.
    y = -np.arange(n, dtype=float)
    offsets = tree["offset_ms"].to_numpy(dtype=float)
    widths = np.nan_to_num(tree["duration_ms"].to_numpy(dtype=float))
    total = max(float(np.nanmax(offsets + widths)), 1e-6)
    ends = offsets + widths
    services = tree["service_name"].fillna("∅").astype(str).to_numpy(dtype=object)
    names = tree["name"].fillna("∅").astype(str).to_numpy(dtype=object)
    status = tree["status_code"].fillna("UNSET").astype(str).to_numpy(dtype=object)
    span_ids = tree["span_id"].astype(str).to_numpy(dtype=object)
    depth = tree["depth"].to_numpy(dtype=int)
    durations = np.array([format_ms(w) for w in widths], dtype=object)
    colors = service_colors(services)
    data: list[dict] = []
    for service, color in colors.items():
        mask = services == service
        xs, ys = _segments(offsets[mask], ends[mask], y[mask])
        data.append(
            dict(
                type="scattergl",
                x=xs,
                y=ys,
                mode="lines",
                name=service,
                meta="service",
                line={"color": color, "width": BAR_PX},
                hoverinfo="skip",
            )
        )
    # Spans under 0.3 % of the trace are under a pixel wide at full zoom: a grey start tick keeps them
    # visible (the bar itself stays exact). One colour: a per-point colour array doubled the draw time.
    narrow = widths < total * 0.003
    if narrow.any():
        data.append(
            dict(
                type="scattergl",
                x=offsets[narrow],
                y=y[narrow],
                mode="markers",
                name="short spans",
                showlegend=False,
                marker={
                    "symbol": "line-ns",
                    "size": BAR_PX,
                    "line": {"width": 3, "color": "#555555"},
                },
                hoverinfo="skip",
            )
        )
    critical = (
        tree["critical"].to_numpy(dtype=bool) if show_critical and "critical" in tree else np.zeros(n, bool)
    )
    if critical.any():
        xs, ys = _segments(offsets[critical], ends[critical], y[critical])
        data.append(
            dict(
                type="scattergl",
                x=xs,
                y=ys,
                mode="lines",
                name="critical path",
                line={"color": CRITICAL_COLOR, "width": 2},
                hoverinfo="skip",
            )
        )
    errors = status == "ERROR"
    if errors.any():
        data.append(
            dict(
                type="scattergl",
                x=offsets[errors],
                y=y[errors],
                mode="markers",
                name="error",
                marker={
                    "symbol": "x",
                    "size": 9,
                    "color": ERROR_COLOR,
                    "line": {"width": 1, "color": "white"},
                },
                hoverinfo="skip",
            )
        )
    if marks is not None and not marks.empty:
        row_of = pd.Series(y, index=span_ids)
        placed = marks[marks["span_id"].isin(row_of.index)]
        for kind, symbol in (("event", "diamond"), ("log", "triangle-down")):
            part = placed[placed["kind"] == kind]
            if part.empty:
                continue
            level = part["level"].fillna("").astype(str).str.upper()
            data.append(
                dict(
                    type="scattergl",
                    x=part["offset_ms"].to_numpy(dtype=float),
                    y=row_of.loc[part["span_id"]].to_numpy(dtype=float) + 0.42,
                    mode="markers",
                    name=f"{kind}s",
                    marker={
                        "symbol": symbol,
                        "size": 8,
                        "color": [
                            LEVEL_COLORS.get(v, "#333333") if kind == "log" else "#333333" for v in level
                        ],
                        "line": {"width": 1, "color": "white"},
                    },
                    text=part["label"].fillna("").astype(str).str.slice(0, 160),
                    hovertemplate=f"{kind}: %{{text}}<br>+%{{x:.3f}} ms<extra></extra>",
                )
            )
    # The click/hover target: one invisible point per span, all in one column on a hidden, fixed second x
    # axis. Every point is equally far from the cursor in x, so the nearest one is the row under the
    # cursor wherever the user clicks in it (scattergl has no pure y-distance hover). customdata is the
    # span id alone and the hover one text per span, to keep the figure small.
    hover = [
        f"<b>{nm}</b> · {sv}<br>+{off:.3f} ms, {dur} · {st}"
        for nm, sv, off, dur, st in zip(names, services, offsets, durations, status, strict=True)
    ]
    data.append(
        dict(
            type="scattergl",
            x=np.full(n, 0.5),
            y=y,
            xaxis="x2",
            mode="markers",
            name="spans",
            showlegend=False,
            marker={"size": 4, "opacity": 0, "color": "#000000"},
            selected={"marker": {"opacity": 0}},
            unselected={"marker": {"opacity": 0}},
            customdata=span_ids[:, None],
            hovertext=hover,
            hovertemplate="%{hovertext}<extra></extra>",
        )
    )
    # Durations at the bar ends. Past 2,000 spans only the first screenfuls get one (hover and the table
    # give the rest): a text label is the one thing here that costs per span in the browser.
    labelled = slice(0, n if n <= 2_000 else min(n, rows * 4))
    data.append(
        dict(
            type="scatter",
            x=ends[labelled],
            y=y[labelled],
            mode="text",
            text=durations[labelled],
            textposition="middle right",
            textfont={"size": 10, "color": "#444444"},
            name="durations",
            hoverinfo="skip",
            showlegend=False,
        )
    )
    shapes = []
    if selected is not None:
        hit = np.flatnonzero(span_ids == selected)
        if hit.size:
            row = -float(hit[0])
            shapes.append(
                {
                    "type": "rect",
                    "xref": "paper",
                    "yref": "y",
                    "x0": 0,
                    "x1": 1,
                    "y0": row - 0.5,
                    "y1": row + 0.5,
                    "fillcolor": SELECTED_FILL,
                    "line": {"width": 1, "color": "#b38600"},
                    "layer": "below",
                }
            )
    visible = min(n, rows)
    labels = [row_label(nm, sv, int(d)) for nm, sv, d in zip(names, services, depth, strict=True)]
    layout = dict(
        height=ROW_PX * visible + 110,
        showlegend=True,
        dragmode="pan",
        hovermode="closest",
        hoverdistance=-1,
        clickmode="event+select",
        shapes=shapes,
        margin={"l": 10, "r": 10, "t": 30, "b": 36},
        legend={
            "orientation": "h",
            "yanchor": "bottom",
            "y": 1.0,
            "x": 0,
            "xanchor": "left",
            "font": {"size": 11},
            "itemwidth": 30,
        },
        xaxis={
            "title": {"text": "ms since trace start", "standoff": 4},
            "range": [-total * 0.01, total * 1.08],
            "zeroline": True,
            "side": "bottom",
        },
        xaxis2={"overlaying": "x", "range": [0, 1], "visible": False, "fixedrange": True},
        yaxis={
            "range": [-(visible - 0.5), 0.5],
            "tickmode": "array",
            "tickvals": y,
            "ticktext": labels,
            "tickfont": {"size": 11},
            "automargin": True,
            "fixedrange": False,
            "showgrid": False,
        },
        uirevision=str(tree["trace_id"].iloc[0]) if "trace_id" in tree else "waterfall",
    )
    # Built from plain dicts without plotly's per-value validation, which alone took ~1 s at 10,000
    # spans; the tests check the figure's content instead.
    return go.Figure(data=data, layout=layout, _validate=False)


def waterfall_data(
    tree: pd.DataFrame,
    *,
    marks: pd.DataFrame | None = None,
    selected: str | None = None,
    show_critical: bool = True,
    rows: int = WATERFALL_ROWS,
) -> dict:
    """The waterfall as plain columns for the app's canvas component (:mod:`explorer.components`): the same
    rows, colours, labels and marks as :func:`waterfall`, one list per field, JSON-ready.

    ``offset``/``duration`` are exact ms; ``service`` indexes ``services``/``colors``; ``error`` and
    ``critical`` are 0/1; ``marks`` hold ``row``, ``offset``, ``kind`` ("event"/"log"), ``color``, ``label``;
    ``selected`` is the selected row or -1. The plotly figure stays for notebooks; the app draws this in
    the browser because plotly alone costs ~0.9 s of a fresh tab's load (see docs/benchmarks.md).
    """
    if tree.empty:  # no rows, maybe no columns: the same fields, all empty
        tree = pd.DataFrame(
            {
                c: []
                for c in (
                    "offset_ms",
                    "duration_ms",
                    "service_name",
                    "name",
                    "status_code",
                    "span_id",
                    "depth",
                )
            }
        )
    n = len(tree)
    offsets = tree["offset_ms"].to_numpy(dtype=float)
    widths = np.nan_to_num(tree["duration_ms"].to_numpy(dtype=float))
    services = tree["service_name"].fillna("∅").astype(str).tolist()
    names = tree["name"].fillna("∅").astype(str).tolist()
    status = tree["status_code"].fillna("UNSET").astype(str).tolist()
    span_ids = tree["span_id"].astype(str).tolist()
    depth = tree["depth"].to_numpy(dtype=int).tolist()
    colors = service_colors(services)
    order = list(colors)
    index = {name: i for i, name in enumerate(order)}
    critical = (
        tree["critical"].to_numpy(dtype=bool) if show_critical and "critical" in tree else np.zeros(n, bool)
    )
    placed: dict[str, list] = {"row": [], "offset": [], "kind": [], "color": [], "label": []}
    if marks is not None and not marks.empty and n:
        row_of = {s: i for i, s in enumerate(span_ids)}
        part = marks[marks["span_id"].isin(row_of)]
        level = part["level"].fillna("").astype(str).str.upper().tolist()
        for span_id, offset, kind, lvl, label in zip(
            part["span_id"], part["offset_ms"], part["kind"], level, part["label"].fillna(""), strict=True
        ):
            placed["row"].append(row_of[span_id])
            placed["offset"].append(float(offset))
            placed["kind"].append(str(kind))
            placed["color"].append(LEVEL_COLORS.get(lvl, "#333333") if kind == "log" else "#333333")
            placed["label"].append(str(label)[:160])
    return {
        "rows": n,
        "visible": min(n, rows),
        "row_px": ROW_PX,
        "bar_px": BAR_PX,
        "total": max(float(np.nanmax(offsets + widths)), 1e-6) if n else 1.0,
        "offset": offsets.tolist(),
        "duration": widths.tolist(),
        "duration_text": [format_ms(w) for w in widths],
        "label": [row_label(nm, sv, d) for nm, sv, d in zip(names, services, depth, strict=True)],
        "name": names,
        "service": [index[s] for s in services],
        "services": order,
        "colors": [colors[s] for s in order],
        "status": status,
        "error": [int(s == "ERROR") for s in status],
        "critical": critical.astype(int).tolist(),
        "span_id": span_ids,
        "marks": placed,
        "selected": span_ids.index(selected) if selected in span_ids else -1,
        "error_color": ERROR_COLOR,
        "critical_color": CRITICAL_COLOR,
        "selected_fill": SELECTED_FILL,
    }

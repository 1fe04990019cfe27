"""The call graph (``explorer.queries.service_graph``) drawn as a plotly network: callers left, callees right.

Nodes sit in layers by their longest call path from a node nobody calls (a service's entry point), so
calls read left to right; marker colour is the node kind, size its span count. Edges are arrows whose
width grows with the calls; red when some calls failed; hovering an edge's midpoint shows calls, errors
and p95 latency. No I/O, no Streamlit.
"""

from __future__ import annotations

import math
from collections import defaultdict

import pandas as pd
import plotly.graph_objects as go

KIND_COLORS = {"service": "#4C78A8", "agent": "#B279A2", "tool": "#F58518", "model": "#54A24B"}
#: Arrows are annotations (one each): beyond this many edges the graph draws plain lines.
MAX_ARROWS = 150


def layout(nodes: pd.DataFrame, edges: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """(x, y) of every node: x its layer (longest path from an uncalled node), y spread within the layer."""
    names = list(nodes["node"]) if not nodes.empty else []
    names += (
        [n for n in pd.concat([edges["source"], edges["target"]]).unique() if n not in set(names)]
        if not edges.empty
        else []
    )
    callers: dict[str, set[str]] = defaultdict(set)
    for source, target in zip(edges.get("source", []), edges.get("target", []), strict=True):
        if source != target:
            callers[target].add(source)
    layer = dict.fromkeys(names, 0)
    for _ in range(len(names)):  # longest path by relaxation; a cycle stops growing after len(names) rounds
        changed = False
        for node in names:
            best = max((layer[c] + 1 for c in callers[node] if c in layer), default=0)
            if best > layer[node] and best < len(names):
                layer[node], changed = best, True
        if not changed:
            break
    by_layer: dict[int, list[str]] = defaultdict(list)
    kind_rank = {k: i for i, k in enumerate(KIND_COLORS)}
    for node in sorted(names, key=lambda n: (kind_rank.get(n.split(":", 1)[0], 9), n)):
        by_layer[layer[node]].append(node)
    positions = {}
    for x, members in by_layer.items():
        for i, node in enumerate(members):
            positions[node] = (float(x), -(i - (len(members) - 1) / 2))
    return positions


def call_graph(
    nodes: pd.DataFrame,
    edges: pd.DataFrame,
    *,
    title: str = "Calls between services, agents, tools and models",
) -> go.Figure:
    """The network figure of :func:`explorer.queries.service_graph`'s frames."""
    fig = go.Figure()
    fig.update_layout(
        title=title,
        height=max(360, 90 * max(1, _tallest(nodes, edges))),
        xaxis={"visible": False},
        yaxis={"visible": False},
        showlegend=True,
        margin={"l": 20, "r": 20, "t": 50, "b": 20},
        plot_bgcolor="white",
    )
    if nodes.empty and edges.empty:
        fig.add_annotation(
            text="No spans in this window", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper"
        )
        return fig
    pos = layout(nodes, edges)
    widest = max((x for x, _ in pos.values()), default=0.0)
    fig.update_xaxes(range=[-0.6, widest + 0.6])  # room for the labels of the first and last layers
    top = float(edges["calls"].max()) if not edges.empty else 1.0
    mid_x, mid_y, mid_text = [], [], []
    for failing in (False, True):
        xs: list[float | None] = []
        ys: list[float | None] = []
        subset = edges[(edges["errors"] > 0) == failing] if not edges.empty else edges
        for edge in subset.itertuples():
            (x0, y0), (x1, y1) = pos[edge.source], pos[edge.target]
            xs += [x0, x1, None]
            ys += [y0, y1, None]
            mid_x.append((x0 + x1) / 2)
            mid_y.append((y0 + y1) / 2)
            mid_text.append(
                f"{edge.source} → {edge.target}<br>{int(edge.calls):,} calls, {int(edge.errors):,} errors"
                f"<br>p95 {edge.p95_ms:,.1f} ms"
            )
            if len(edges) <= MAX_ARROWS:
                fig.add_annotation(
                    x=x1,
                    y=y1,
                    ax=x0,
                    ay=y0,
                    xref="x",
                    yref="y",
                    axref="x",
                    ayref="y",
                    text="",
                    showarrow=True,
                    arrowhead=2,
                    arrowsize=1,
                    standoff=14,
                    startstandoff=14,
                    arrowwidth=1 + 4 * math.log1p(edge.calls) / math.log1p(top),
                    arrowcolor="#d62728" if failing else "#888",
                )
        if xs and len(edges) > MAX_ARROWS:
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines",
                    line={"color": "#d62728" if failing else "#bbb", "width": 1},
                    hoverinfo="skip",
                    showlegend=False,
                )
            )
    fig.add_trace(
        go.Scatter(
            x=mid_x,
            y=mid_y,
            mode="markers",
            marker={"size": 8, "color": "rgba(0,0,0,0.15)"},
            hovertext=mid_text,
            hoverinfo="text",
            name="edges (hover)",
            showlegend=False,
        )
    )
    frame = nodes.set_index("node") if not nodes.empty else pd.DataFrame()
    for kind, color in KIND_COLORS.items():
        members = [n for n in pos if n.split(":", 1)[0] == kind]
        if not members:
            continue
        spans = [int(frame.at[n, "spans"]) if n in frame.index else 0 for n in members]
        errors = [int(frame.at[n, "errors"]) if n in frame.index else 0 for n in members]
        fig.add_trace(
            go.Scatter(
                x=[pos[n][0] for n in members],
                y=[pos[n][1] for n in members],
                mode="markers+text",
                text=[n.split(":", 1)[1] for n in members],
                textposition="top center",
                marker={
                    "size": [14 + 4 * math.log1p(s) for s in spans],
                    "color": color,
                    "line": {"color": ["#d62728" if e else "white" for e in errors], "width": 2},
                },
                hovertext=[
                    f"{n}<br>{s:,} spans, {e:,} errors"
                    for n, s, e in zip(members, spans, errors, strict=True)
                ],
                hoverinfo="text",
                name=kind,
            )
        )
    return fig


def _tallest(nodes: pd.DataFrame, edges: pd.DataFrame) -> int:
    if nodes.empty and edges.empty:
        return 1
    counts: dict[float, int] = defaultdict(int)
    for x, _y in layout(nodes, edges).values():
        counts[x] += 1
    return max(counts.values())

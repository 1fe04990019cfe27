"""Profiler samples: operations, hotspots, call edges and call trees."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Literal

import pandas as pd

from explorer.errors import QueryError
from explorer.queries._sql import Services, TimeLike, _frame, _limit, _Where
from explorer.store import Store


def _profile_where(
    operation: str | None,
    trace_id: str | None,
    span_id: str | None,
    service: Services,
    start: TimeLike,
    end: TimeLike,
) -> _Where:
    where = _Where()
    where.services(service)
    where.time("timestamp", start, end)
    if operation:
        where.add("operation = $operation", operation=operation)
    if trace_id:
        where.add("trace_id = $trace_id", trace_id=trace_id)
    if span_id:
        where.add("span_id = $span_id", span_id=span_id)
    return where


def profile_operations(
    store: Store, *, service: Services = None, start: TimeLike = None, end: TimeLike = None, limit: int = 200
) -> pd.DataFrame:
    """Operations that have profiles, with how many spans and the total profiled time."""
    where = _profile_where(None, None, None, service, start, end)
    sql = f"""SELECT operation, count(DISTINCT coalesce(span_id, profile_id)) AS profiles,
                     sum(self_time_s) FILTER (WHERE caller IS NULL) AS total_s
              FROM profiles WHERE {where.sql()} GROUP BY ALL ORDER BY profiles DESC, operation LIMIT $limit"""
    return _frame(store, sql, {**where.params, "limit": _limit(limit)})


def profile_hotspots(
    store: Store,
    *,
    operation: str | None = None,
    trace_id: str | None = None,
    span_id: str | None = None,
    service: Services = None,
    start: TimeLike = None,
    end: TimeLike = None,
    order: Literal["self", "cumulative", "calls"] = "self",
    limit: int = 50,
) -> pd.DataFrame:
    """Top functions by self or cumulative time (function total rows: ``caller IS NULL``), summed over profiles."""
    orders = {"self": "self_s", "cumulative": "cumulative_s", "calls": "calls"}
    if order not in orders:
        msg = f"order must be one of {', '.join(orders)}, got {order!r}"
        raise QueryError(msg)
    where = _profile_where(operation, trace_id, span_id, service, start, end)
    sql = f"""SELECT function, coalesce(file, '') AS file, coalesce(line, 0) AS line, sum(calls) AS calls,
                     sum(primitive_calls) AS primitive_calls, sum(self_time_s) AS self_s,
                     sum(cumulative_time_s) AS cumulative_s, count(DISTINCT coalesce(span_id, profile_id)) AS profiles,
                     sum(self_time_s) / nullif(sum(sum(self_time_s)) OVER (), 0) AS self_share,
                     any_value(trace_id) AS trace_id, any_value(span_id) AS span_id
              FROM profiles WHERE {where.sql()} AND caller IS NULL
              GROUP BY ALL ORDER BY {orders[order]} DESC NULLS LAST, function LIMIT $limit"""
    return _frame(store, sql, {**where.params, "limit": _limit(limit)})


def profile_edges(
    store: Store,
    *,
    operation: str | None = None,
    trace_id: str | None = None,
    span_id: str | None = None,
    service: Services = None,
    start: TimeLike = None,
    end: TimeLike = None,
    limit: int = 5000,
) -> pd.DataFrame:
    """Caller → callee edges (rows with ``caller`` set) summed over profiles."""
    where = _profile_where(operation, trace_id, span_id, service, start, end)
    sql = f"""SELECT caller, coalesce(caller_file, '') AS caller_file, coalesce(caller_line, 0) AS caller_line,
                     function, coalesce(file, '') AS file, coalesce(line, 0) AS line,
                     sum(calls) AS calls, sum(self_time_s) AS self_s, sum(cumulative_time_s) AS cumulative_s
              FROM profiles WHERE {where.sql()} AND caller IS NOT NULL
              GROUP BY ALL ORDER BY cumulative_s DESC LIMIT $limit"""
    return _frame(store, sql, {**where.params, "limit": _limit(limit)})


def profile_spans(
    store: Store,
    *,
    operation: str | None = None,
    service: Services = None,
    start: TimeLike = None,
    end: TimeLike = None,
    limit: int = 100,
) -> pd.DataFrame:
    """The profiled spans (trace and span ids) of an operation, longest first: links back to the trace view."""
    where = _profile_where(operation, None, None, service, start, end)
    sql = f"""SELECT trace_id, span_id, operation, min(timestamp) AS timestamp,
                     max(cumulative_time_s) FILTER (WHERE caller IS NULL) AS profiled_s
              FROM profiles WHERE {where.sql()} AND trace_id IS NOT NULL GROUP BY ALL
              ORDER BY profiled_s DESC NULLS LAST LIMIT $limit"""
    return _frame(store, sql, {**where.params, "limit": _limit(limit)})


def call_tree(
    hotspots: pd.DataFrame, edges: pd.DataFrame, *, max_depth: int = 12, max_nodes: int = 2000
) -> pd.DataFrame:
    """Expand the call graph into a tree for an icicle/flame chart: [id, parent, function, value, total, calls].

    Roots are functions nobody calls; each edge's cumulative time becomes the child's total, and
    ``value`` is the node's own remainder (total minus its children), as plotly's
    ``branchvalues="remainder"`` expects. Recursion is cut at a function already on the path.
    """
    columns = ["id", "parent", "function", "value", "total", "calls"]
    if hotspots.empty:
        return pd.DataFrame(columns=columns)
    callees: dict[str, list[tuple[str, float, int]]] = defaultdict(list)
    for row in edges.itertuples(index=False):
        callees[str(row.caller)].append(
            (str(row.function), float(row.cumulative_s or 0.0), int(row.calls or 0))
        )
    called = {callee for kids in callees.values() for callee, _, _ in kids}
    totals = hotspots.groupby("function", sort=False).agg(
        total=("cumulative_s", "sum"), calls=("calls", "sum")
    )
    roots = [f for f in totals.index if f not in called] or [totals["total"].idxmax()]
    rows: list[dict[str, Any]] = []
    stack: list[tuple[str, str, str, float, int, tuple[str, ...]]] = [
        (f"/{f}", "", f, float(totals.at[f, "total"]), int(totals.at[f, "calls"]), (f,))
        for f in sorted(roots, key=lambda f: -float(totals.at[f, "total"]))
    ]
    while stack and len(rows) < max_nodes:
        node_id, parent, function, total, calls, path = stack.pop()
        kids = [k for k in callees.get(function, ()) if k[0] not in path] if len(path) < max_depth else []
        child_total = sum(k[1] for k in kids)
        scale = total / child_total if child_total > total > 0 else 1.0
        rows.append(
            {
                "id": node_id,
                "parent": parent,
                "function": function,
                "value": max(total - child_total * scale, 0.0),
                "total": total,
                "calls": calls,
            }
        )
        for callee, cumulative, n in kids:
            stack.append((f"{node_id}/{callee}", node_id, callee, cumulative * scale, n, (*path, callee)))
    return pd.DataFrame(rows, columns=columns)

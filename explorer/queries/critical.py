"""The critical path of every trace of a root operation, computed in SQL and aggregated over traces."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import pandas as pd

from explorer.errors import QueryError
from explorer.queries._selection import TRACE_SPANS, root_traces_sql
from explorer.queries._sql import Services, TimeLike, _frame, _limit
from explorer.queries.structure import SEPARATOR
from explorer.store import Store

CriticalGroup = Literal["operation", "path"]


def _critical_sql(picked: str) -> str:
    """CTEs ending in ``cp``: one row per span on its trace's critical path, with ``critical_ns``, the
    time the path spends in that span itself (its window minus its critical children's windows).

    Jaeger's definition, as :func:`explorer.tree.critical_path` walks it: from the longest root, take
    children by latest end; a child is on the path when it starts before the cursor (the parent's end,
    then the start of the last child taken). The cursor before a child is the minimum of the parent's
    window end and the starts of every sibling that ends later (a skipped sibling starts after the
    cursor, so it never lowers it): a window function, so each tree level is one join of the recursion.
    """
    return f"""picked AS MATERIALIZED (SELECT row_number() OVER () AS t, * FROM ({picked})),
        s AS MATERIALIZED ({TRACE_SPANS}),
        linked AS MATERIALIZED (
            SELECT c.*, p.sid IS NOT NULL AND c.span_id <> c.parent_span_id AS has_parent
            FROM s c LEFT JOIN s p ON p.t = c.t AND p.sid = c.pid
        ),
        kids AS MATERIALIZED (
            SELECT t, sid, pid, name, service_name, start_ns, end_ns, min(start_ns) OVER (
                       PARTITION BY t, pid ORDER BY end_ns DESC, start_ns, span_id
                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_min
            FROM linked WHERE has_parent
        ),
        root AS (
            SELECT * FROM linked WHERE NOT has_parent
            QUALIFY row_number() OVER (PARTITION BY t ORDER BY end_ns - start_ns DESC, start_ns, span_id) = 1
        ),
        cp(t, sid, pid, name, service_name, path, depth, start_ns, win_start, win_end) AS (
            SELECT t, sid, NULL::UBIGINT, name, service_name, name, 0, start_ns, start_ns, end_ns FROM root
            UNION ALL
            SELECT k.t, k.sid, k.pid, k.name, k.service_name, p.path || '{SEPARATOR}' || k.name, p.depth + 1,
                   k.start_ns, greatest(k.start_ns, p.win_start),
                   least(k.end_ns, p.win_end, coalesce(k.prev_min, p.win_end))
            FROM cp p JOIN kids k ON k.t = p.t AND k.pid = p.sid
            WHERE k.start_ns < least(p.win_end, coalesce(k.prev_min, p.win_end))
              AND least(p.win_end, coalesce(k.prev_min, p.win_end)) > p.start_ns
        ),
        on_path AS MATERIALIZED (SELECT * FROM cp),
        child_windows AS (
            SELECT t, pid AS sid, sum(greatest(win_end - win_start, 0)) AS taken
            FROM on_path WHERE pid IS NOT NULL GROUP BY ALL
        ),
        critical AS (
            SELECT o.*, greatest(o.win_end - o.win_start, 0) - coalesce(c.taken, 0) AS critical_ns
            FROM on_path o LEFT JOIN child_windows c USING (t, sid)
        )"""


def _picked(
    operation: str,
    service: Services,
    start: TimeLike,
    end: TimeLike,
    min_duration_ms: float | None,
    trace_ids: Sequence[str] | None,
) -> tuple[str, dict[str, Any]]:
    roots, params = root_traces_sql(operation, service, start, end)
    conditions = []
    if min_duration_ms is not None:
        conditions.append("duration_ns >= $min_ns")
        params["min_ns"] = int(float(min_duration_ms) * 1e6)
    if trace_ids is not None:
        if isinstance(trace_ids, str):
            msg = "`trace_ids` must be a list of trace ids, not one string"
            raise QueryError(msg)
        conditions.append("list_contains($trace_ids, trace_id)")
        params["trace_ids"] = [str(t).strip().lower() for t in trace_ids]
    where = " AND ".join(conditions) if conditions else "TRUE"
    return f"SELECT trace_id, duration_ns FROM ({roots}) WHERE {where}", params


def critical_path_spans(
    store: Store,
    *,
    operation: str,
    service: Services = None,
    start: TimeLike = None,
    end: TimeLike = None,
    min_duration_ms: float | None = None,
    trace_ids: Sequence[str] | None = None,
    limit: int = 100_000,
) -> pd.DataFrame:
    """Every span on the critical path of each trace whose root is ``operation`` (in the window, at least
    ``min_duration_ms`` long, among ``trace_ids`` if given): trace and span ids, name, service, path from
    the root, depth, and ``critical_ms`` (the path's time in the span itself). The SQL twin of
    :func:`explorer.tree.critical_path`, for many traces at once."""
    picked, params = _picked(operation, service, start, end, min_duration_ms, trace_ids)
    sql = f"""WITH RECURSIVE {_critical_sql(picked)}
        SELECT l.trace_id, l.span_id, l.parent_span_id, c.name, c.service_name, c.path, c.depth,
               c.critical_ns / 1e6 AS critical_ms
        FROM critical c JOIN linked l USING (t, sid)
        ORDER BY l.trace_id, c.depth, c.win_start, l.span_id LIMIT $limit"""
    return _frame(store, sql, {**params, "limit": _limit(limit, maximum=100_000_000)})


def critical_path_summary(
    store: Store,
    *,
    operation: str,
    service: Services = None,
    start: TimeLike = None,
    end: TimeLike = None,
    min_duration_ms: float | None = None,
    trace_ids: Sequence[str] | None = None,
    by: CriticalGroup = "operation",
    limit: int = 100,
) -> pd.DataFrame:
    """Where the critical path of root ``operation``'s traces goes, aggregated per operation (service and
    span name) or per ``path`` from the root.

    Columns: ``share`` of all critical-path time (the traces' summed root durations), ``traces`` and
    ``on_path_pct`` (how many/which share of traces have it on the path), ``mean_ms`` and ``p95_ms`` of its
    critical time per trace where it is on the path, ``per_trace_ms`` (its critical time over all
    traces / traces), ``example_trace_id`` (the trace where it takes most). Largest share first.
    ``attrs``: ``traces`` and ``message``."""
    if by not in ("operation", "path"):
        msg = f"by must be 'operation' or 'path', got {by!r}"
        raise QueryError(msg)
    picked, params = _picked(operation, service, start, end, min_duration_ms, trace_ids)
    keys = "service_name, name" if by == "operation" else "path"
    sql = f"""WITH RECURSIVE {_critical_sql(picked)},
        per_trace AS (
            SELECT {keys}, t, sum(critical_ns) AS ns FROM critical GROUP BY ALL
        ),
        totals AS (SELECT count(DISTINCT t) AS n, sum(ns) AS total FROM per_trace),
        summary AS (
            SELECT {keys}, sum(ns) / any_value(total) AS share, count(*) AS traces,
                   count(*) / any_value(n) AS on_path_pct, avg(ns) / 1e6 AS mean_ms,
                   quantile_cont(ns, 0.95) / 1e6 AS p95_ms, sum(ns) / any_value(n) / 1e6 AS per_trace_ms,
                   arg_max(t, ns) AS example_t, any_value(n) AS n_traces
            FROM per_trace, totals GROUP BY {keys}
            ORDER BY share DESC, {keys} LIMIT $limit
        )
        SELECT {keys}, share, traces, on_path_pct, mean_ms, p95_ms, per_trace_ms,
               p.trace_id AS example_trace_id, n_traces
        FROM summary JOIN picked p ON p.t = summary.example_t ORDER BY share DESC, {keys}"""
    frame = _frame(store, sql, {**params, "limit": _limit(limit)})
    n = int(frame["n_traces"].iloc[0]) if not frame.empty else 0
    frame = frame.drop(columns="n_traces")
    message = "" if n else f"no trace has the root operation {operation!r} in the window: no critical path"
    frame.attrs.update(traces=n, message=message)
    return frame

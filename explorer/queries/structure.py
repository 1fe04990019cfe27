"""Structural diff: slow traces against fast ones of the same root operation, aggregated by span path."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import pandas as pd

from explorer.errors import QueryError
from explorer.queries._selection import TRACE_SPANS, root_traces_sql
from explorer.queries._sql import Services, TimeLike, _frame, _limit
from explorer.store import Store

StructureOrder = Literal["self", "total", "count"]
_ORDER = {"self": "self_diff_ms", "total": "total_diff_ms", "count": "count_diff"}
SEPARATOR = " > "


def _group(value: int | Sequence[str], name: str) -> tuple[int, list[str] | None]:
    if isinstance(value, str):
        msg = f"`{name}` must be a number of traces or a list of trace ids, got the string {value!r}"
        raise QueryError(msg)
    if isinstance(value, Sequence):
        ids = [str(v).strip().lower() for v in value if str(v).strip()]
        if not ids:
            msg = f"`{name}` is an empty list of trace ids; give trace ids or a number of traces"
            raise QueryError(msg)
        return len(ids), ids
    return _limit(value, name, 100_000), None


def compare_structure(
    store: Store,
    *,
    operation: str,
    service: Services = None,
    start: TimeLike = None,
    end: TimeLike = None,
    slow: int | Sequence[str] = 100,
    fast: int | Sequence[str] = 100,
    fast_percentile: float = 0.5,
    order: StructureOrder = "self",
    limit: int = 200,
) -> pd.DataFrame:
    """Per span path from the root (``POST /v1/chat > invoke_agent researcher > execute_tool web_search``),
    what slow traces of root ``operation`` do that fast ones do not.

    Groups: ``slow`` = the N slowest traces (or a list of trace ids); ``fast`` = the N traces at or just
    below the ``fast_percentile`` of root duration (0.5: typical, not the trivially fast failures), or a
    list. Per path and group: ``*_traces_pct`` (share of the group's traces holding the path), ``*_count``
    (spans per trace), ``*_self_ms`` (self time per trace: duration minus the union of its children's
    intervals), ``*_total_ms`` (summed duration per trace), and slow − fast differences. Sorted by the
    ``order`` difference, largest first. ``attrs``: ``slow``/``fast`` trace counts and ``message``.
    Computed in SQL (a recursive CTE for paths, window functions for self time), so a 10,000-span trace
    costs what its rows cost.
    """
    if order not in _ORDER:
        msg = f"order must be one of {', '.join(_ORDER)}, got {order!r}"
        raise QueryError(msg)
    if not 0 < float(fast_percentile) < 1:
        msg = f"fast_percentile must be between 0 and 1 (0.5 for the median), got {fast_percentile!r}"
        raise QueryError(msg)
    n_slow, slow_ids = _group(slow, "slow")
    n_fast, fast_ids = _group(fast, "fast")
    roots, params = root_traces_sql(operation, service, start, end)
    params = {**params, **({"slow_ids": slow_ids} if slow_ids else {"n_slow": n_slow})}
    if fast_ids:
        params["fast_ids"] = fast_ids
    else:
        params.update(n_fast=n_fast, fast_pct=float(fast_percentile))
    slow_pick = (
        "SELECT trace_id, 'slow' AS grp FROM roots WHERE list_contains($slow_ids, trace_id)"
        if slow_ids
        else "SELECT trace_id, 'slow' AS grp FROM roots ORDER BY duration_ns DESC, trace_id LIMIT $n_slow"
    )
    fast_pick = (
        "SELECT trace_id, 'fast' AS grp FROM roots WHERE list_contains($fast_ids, trace_id)"
        if fast_ids
        else """SELECT trace_id, 'fast' AS grp FROM roots
                WHERE duration_ns <= (SELECT quantile_disc(duration_ns, $fast_pct) FROM roots)
                  AND trace_id NOT IN (SELECT trace_id FROM slow_pick)
                ORDER BY duration_ns DESC, trace_id LIMIT $n_fast"""
    )
    sql = f"""WITH RECURSIVE roots AS MATERIALIZED ({roots}),
        slow_pick AS MATERIALIZED ({slow_pick}),
        fast_pick AS MATERIALIZED ({fast_pick}),
        picked AS MATERIALIZED (
            SELECT row_number() OVER () AS t, * FROM (SELECT * FROM slow_pick UNION ALL SELECT * FROM fast_pick)
        ),
        s AS MATERIALIZED ({TRACE_SPANS}),
        linked AS MATERIALIZED (
            SELECT c.*, p.sid IS NOT NULL AND c.span_id <> c.parent_span_id AS has_parent,
                   p.start_ns AS p_start, p.end_ns AS p_end
            FROM s c LEFT JOIN s p ON p.t = c.t AND p.sid = c.pid
        ),
        paths(t, sid, path, depth) AS (
            SELECT t, sid, name, 0 FROM linked WHERE NOT has_parent
            UNION ALL
            SELECT c.t, c.sid, p.path || '{SEPARATOR}' || c.name, p.depth + 1
            FROM paths p JOIN linked c ON c.t = p.t AND c.pid = p.sid
            WHERE c.has_parent
        ),
        clipped AS (
            SELECT t, pid, greatest(start_ns, p_start) AS s0, least(end_ns, p_end) AS e0
            FROM linked WHERE has_parent AND least(end_ns, p_end) > greatest(start_ns, p_start)
        ),
        runs AS (
            SELECT *, max(e0) OVER (PARTITION BY t, pid ORDER BY s0, e0
                                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_e
            FROM clipped
        ),
        islands AS (
            SELECT *, sum(CASE WHEN prev_e IS NULL OR s0 > prev_e THEN 1 ELSE 0 END)
                      OVER (PARTITION BY t, pid ORDER BY s0, e0 ROWS UNBOUNDED PRECEDING) AS island
            FROM runs
        ),
        covered AS (
            SELECT t, pid, sum(len) AS covered
            FROM (SELECT t, pid, island, max(e0) - min(s0) AS len FROM islands GROUP BY ALL)
            GROUP BY ALL
        ),
        per_trace AS (
            SELECT g.grp, g.trace_id, p.path, any_value(p.depth) AS depth, count(*) AS n,
                   sum(greatest(l.duration_ns - coalesce(c.covered, 0), 0)) AS self_ns,
                   sum(l.duration_ns) AS total_ns
            FROM paths p JOIN linked l USING (t, sid) JOIN picked g USING (t)
            LEFT JOIN covered c ON c.t = l.t AND c.pid = l.sid
            GROUP BY ALL
        ),
        sizes AS (
            SELECT count_if(grp = 'slow') AS n_slow, count_if(grp = 'fast') AS n_fast FROM picked
        ),
        agg AS (
            SELECT path, any_value(depth) AS depth,
                   count_if(grp = 'slow') AS slow_traces, count_if(grp = 'fast') AS fast_traces,
                   coalesce(sum(n) FILTER (WHERE grp = 'slow'), 0) AS slow_n,
                   coalesce(sum(n) FILTER (WHERE grp = 'fast'), 0) AS fast_n,
                   coalesce(sum(self_ns) FILTER (WHERE grp = 'slow'), 0) AS slow_self,
                   coalesce(sum(self_ns) FILTER (WHERE grp = 'fast'), 0) AS fast_self,
                   coalesce(sum(total_ns) FILTER (WHERE grp = 'slow'), 0) AS slow_total,
                   coalesce(sum(total_ns) FILTER (WHERE grp = 'fast'), 0) AS fast_total,
                   arg_max(trace_id, self_ns) FILTER (WHERE grp = 'slow') AS example_trace_id
            FROM per_trace GROUP BY path
        ),
        result AS (
            SELECT path, depth, split_part(path, '{SEPARATOR}', -1) AS name,
                   slow_traces / greatest(n_slow, 1) AS slow_traces_pct,
                   fast_traces / greatest(n_fast, 1) AS fast_traces_pct,
                   slow_n / greatest(n_slow, 1) AS slow_count, fast_n / greatest(n_fast, 1) AS fast_count,
                   slow_n / greatest(n_slow, 1) - fast_n / greatest(n_fast, 1) AS count_diff,
                   slow_self / greatest(n_slow, 1) / 1e6 AS slow_self_ms,
                   fast_self / greatest(n_fast, 1) / 1e6 AS fast_self_ms,
                   (slow_self / greatest(n_slow, 1) - fast_self / greatest(n_fast, 1)) / 1e6 AS self_diff_ms,
                   slow_total / greatest(n_slow, 1) / 1e6 AS slow_total_ms,
                   fast_total / greatest(n_fast, 1) / 1e6 AS fast_total_ms,
                   (slow_total / greatest(n_slow, 1) - fast_total / greatest(n_fast, 1)) / 1e6
                       AS total_diff_ms,
                   example_trace_id, n_slow, n_fast
            FROM agg, sizes
        )
        SELECT * FROM result ORDER BY {_ORDER[order]} DESC, path LIMIT $limit"""
    frame = _frame(store, sql, {**params, "limit": _limit(limit)})
    if frame.empty:
        sizes = _frame(
            store,
            f"""WITH roots AS MATERIALIZED ({roots}), slow_pick AS ({slow_pick}), fast_pick AS ({fast_pick})
                SELECT (SELECT count(*) FROM slow_pick) AS n_slow, (SELECT count(*) FROM fast_pick) AS n_fast""",
            params,
        )
    else:
        sizes = frame[["n_slow", "n_fast"]].head(1)
    got_slow = int(sizes["n_slow"].iloc[0]) if not sizes.empty else 0
    got_fast = int(sizes["n_fast"].iloc[0]) if not sizes.empty else 0
    frame = frame.drop(columns=["n_slow", "n_fast"])
    message = ""
    if got_slow == 0:
        message = (
            f"no trace has the root operation {operation!r} in the window (or none of the slow ids): "
            f"nothing to compare"
        )
    elif got_fast == 0:
        message = (
            f"no fast trace of {operation!r} to compare with: give more traces in the window, fewer slow "
            f"ones, or fast trace ids"
        )
    if message:
        frame = frame.iloc[0:0]
    frame.attrs.update(slow=got_slow, fast=got_fast, message=message)
    return frame

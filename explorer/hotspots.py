"""Profile queries: which operations were profiled, their hotspots, and one profile's call graph.

Rows of the ``profiles`` table with ``caller`` NULL are a function's totals in one profile; rows with
``caller`` set are caller→callee edges (see docs/profiling-and-alerts.md). These functions return
DataFrames and never import Streamlit, so pages, notebooks and the CLI share them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from explorer.errors import QueryError
from explorer.store import Store


def _limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        msg = f"limit must be a positive integer, got {limit!r}"
        raise QueryError(msg)
    return limit


def time_bound(value: datetime | pd.Timestamp | str | None, name: str) -> int | None:
    """Nanoseconds since the epoch of a ``since``/``until`` argument (naive times are taken as UTC).

    Bound as an integer against ``epoch_ns(timestamp)`` so nanosecond store times compare exactly.
    """
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        msg = f"{name} must be a datetime or an ISO 8601 time like '2025-01-31T12:00:00Z', got {value!r}"
        raise QueryError(msg) from exc
    if pd.isna(stamp):
        msg = f"{name} must be a time, got {value!r}"
        raise QueryError(msg)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.value)


def _filters(
    *,
    service: str | None = None,
    since: Any = None,
    until: Any = None,
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if service is not None:
        clauses.append("service_name = ?")
        params.append(service)
    start = time_bound(since, "since")
    if start is not None:
        clauses.append("epoch_ns(timestamp) >= ?")
        params.append(start)
    end = time_bound(until, "until")
    if end is not None:
        clauses.append("epoch_ns(timestamp) < ?")
        params.append(end)
    return "".join(f" AND {c}" for c in clauses), params


def profiled_operations(
    store: Store, *, service: str | None = None, since: Any = None, until: Any = None, limit: int = 100
) -> pd.DataFrame:
    """Operations that have profiles: count, measured time and last time seen, most recent first."""
    where, params = _filters(service=service, since=since, until=until)
    return store.sql(
        f"""
        SELECT operation, service_name,
               count(DISTINCT profile_id) AS profiles,
               sum(self_time_s) AS measured_time_s,
               min(timestamp) AS first_seen,
               max(timestamp) AS last_seen
        FROM profiles
        WHERE caller IS NULL{where}
        GROUP BY operation, service_name
        ORDER BY last_seen DESC, operation
        LIMIT ?
        """,
        [*params, _limit(limit)],
    )


def hotspots(
    store: Store,
    operation: str,
    *,
    profile_id: str | None = None,
    service: str | None = None,
    since: Any = None,
    until: Any = None,
    limit: int = 20,
) -> pd.DataFrame:
    """Top functions by self time over the profiles of ``operation`` (or one ``profile_id``), largest first.

    Columns: function, file, line, self_time_s, cumulative_time_s, calls, primitive_calls, profiles
    (how many profiles the function appears in), self_time_share (of all self time measured).
    """
    where, params = _filters(service=service, since=since, until=until)
    if profile_id is not None:
        where += " AND profile_id = ?"
        params.append(profile_id)
    return store.sql(
        f"""
        WITH totals AS (
            SELECT function, file, line,
                   sum(self_time_s) AS self_time_s,
                   sum(cumulative_time_s) AS cumulative_time_s,
                   sum(calls) AS calls,
                   sum(primitive_calls) AS primitive_calls,
                   count(DISTINCT profile_id) AS profiles
            FROM profiles
            WHERE caller IS NULL AND operation = ?{where}
            GROUP BY function, file, line
        )
        SELECT *, self_time_s / nullif(sum(self_time_s) OVER (), 0) AS self_time_share
        FROM totals
        ORDER BY self_time_s DESC, function, file, line
        LIMIT ?
        """,
        [operation, *params, _limit(limit)],
    )


def call_graph(store: Store, profile_id: str) -> pd.DataFrame:
    """Caller→callee edges of one profile (calls and times of ``function`` when called by ``caller``)."""
    return store.sql(
        """
        SELECT caller, caller_file, caller_line, function, file, line,
               calls, primitive_calls, self_time_s, cumulative_time_s
        FROM profiles
        WHERE profile_id = ? AND caller IS NOT NULL
        ORDER BY cumulative_time_s DESC, caller, function
        """,
        [profile_id],
    )


def span_profiles(store: Store, trace_id: str, span_id: str | None = None) -> pd.DataFrame:
    """The profiles recorded in a trace (or one span of it): profile_id, span_id, operation, time measured."""
    params: list[Any] = [trace_id.lower()]
    where = ""
    if span_id is not None:
        where = " AND span_id = ?"
        params.append(span_id.lower())
    return store.sql(
        f"""
        SELECT profile_id, trace_id, span_id, operation, min(timestamp) AS timestamp,
               sum(self_time_s) AS measured_time_s, sum(calls) AS calls, count(*) AS functions
        FROM profiles
        WHERE caller IS NULL AND trace_id = ?{where}
        GROUP BY profile_id, trace_id, span_id, operation
        ORDER BY timestamp
        """,
        params,
    )

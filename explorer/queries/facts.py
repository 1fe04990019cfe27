"""Store-wide facts: what the store holds, telemetry health, time bounds, services, operations, versions."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from explorer.queries._sql import Services, TimeLike, _frame, _limit, _ts, _Where
from explorer.store import OPERATIONS_VIEW, SPANS_DEDICATED_VIEW, TRACE_SUMMARIES_VIEW, Store
from ingest.store import rollups


def store_overview(store: Store) -> pd.DataFrame:
    """Rows and first/last timestamp of each table: what the store holds at a glance."""
    parts = [
        ("spans", "start_time"),
        ("logs", "timestamp"),
        ("metrics", "timestamp"),
        ("profiles", "timestamp"),
        ("alerts", "timestamp"),
    ]
    selects = [
        f"SELECT '{table}' AS table_name, count(*) AS rows, min({col}) AS first, max({col}) AS last FROM {table}"
        for table, col in parts
    ]
    if store.has_trace_summaries():  # the same numbers from the per-trace rollup: a tenth of the rows
        selects[0] = f"""SELECT 'spans' AS table_name, coalesce(sum(span_count), 0)::BIGINT AS rows,
                                min(start_time) AS first, max(last_start_time) AS last FROM {TRACE_SUMMARIES_VIEW}"""
    return store.sql(" UNION ALL ".join(selects))


def telemetry_health(store: Store, *, service: Services = None) -> pd.DataFrame:
    """What never reached the store, by service, what and why: the SDK's drop counters and rejected input.

    Rows: ``service_name``, ``what`` (``dropped_spans``, ``dropped_logs``, ``dropped_metric_points``,
    ``dropped_span_attributes``, ``truncated_logs``, ``unfinished_spans``, ``rejected_input``), ``reason``
    and ``count`` (only non-zero rows). The ``langswarm.telemetry.*`` counters are cumulative per process:
    each process's last value (one ``start_timestamp``) is summed. Rejected input comes from the records
    the importers and the receiver keep in ``<store>/_rejected/``.
    """
    where = _Where()
    where.services(service)
    counters = _frame(
        store,
        f"""WITH last AS (
                SELECT service_name, replace(name, 'langswarm.telemetry.', '') AS what,
                       coalesce(attributes['reason'], '') AS reason,
                       arg_max(value, timestamp) AS value
                FROM metrics
                WHERE name LIKE 'langswarm.telemetry.%' AND name <> 'langswarm.telemetry.exported'
                  AND {where.sql()}
                GROUP BY service_name, what, reason, start_timestamp)
            SELECT service_name, what, reason, CAST(sum(value) AS BIGINT) AS count
            FROM last GROUP BY ALL HAVING sum(value) > 0 ORDER BY count DESC, what, reason""",
        where.params,
    )
    rejected_glob = store.control / "_rejected" / "*.jsonl"
    if not any(rejected_glob.parent.glob(rejected_glob.name)) or service is not None:
        return counters
    rejected = store.sql(
        """SELECT NULL::VARCHAR AS service_name, 'rejected_input' AS what,
                  coalesce(signal, 'unknown') || ': ' || split_part(reason, ':', 1) AS reason,
                  CAST(sum(coalesce(items, 1)) AS BIGINT) AS count
           FROM read_json($glob, format = 'newline_delimited',
                          columns = {'signal': 'VARCHAR', 'reason': 'VARCHAR', 'items': 'BIGINT'})
           GROUP BY ALL ORDER BY count DESC""",
        {"glob": str(rejected_glob)},
    )
    return pd.concat([counters, rejected], ignore_index=True) if not counters.empty else rejected


def time_bounds(store: Store) -> tuple[datetime | None, datetime | None]:
    """The earliest and latest timestamp over every table (None, None for an empty store)."""
    frame = store_overview(store)
    firsts = frame["first"].dropna()
    lasts = frame["last"].dropna()
    if firsts.empty:
        return None, None
    return _ts(firsts.min(), "first"), _ts(lasts.max(), "last")


def list_services(
    store: Store, *, start: TimeLike = None, end: TimeLike = None, limit: int = 500
) -> pd.DataFrame:
    """Services seen in spans, logs and metrics, with their span count."""
    where = _Where()
    where.time("start_time", start, end)
    counted = f"SELECT service_name, count(*) AS spans FROM spans WHERE {where.sql()} GROUP BY ALL"
    if not where.clauses and store.has_rollup(rollups.OPERATIONS):  # a few rows per compacted file
        counted = f"SELECT service_name, sum(span_count) AS spans FROM {OPERATIONS_VIEW} GROUP BY ALL"
    sql = f"""
        SELECT service_name, sum(spans)::BIGINT AS spans FROM (
            {counted}
            UNION ALL SELECT DISTINCT service_name, 0 FROM logs
            UNION ALL SELECT DISTINCT service_name, 0 FROM metrics
        ) WHERE service_name IS NOT NULL GROUP BY ALL ORDER BY spans DESC, service_name LIMIT $limit
    """
    return _frame(store, sql, {**where.params, "limit": _limit(limit)})


def list_operations(
    store: Store, *, service: Services = None, start: TimeLike = None, end: TimeLike = None, limit: int = 1000
) -> pd.DataFrame:
    """Span names (operations) per service with their count, most frequent first."""
    where = _Where()
    where.services(service)
    where.time("start_time", start, end)
    counted, source = "count(*)", "spans"
    if start is None and end is None and store.has_rollup(rollups.OPERATIONS):
        # The per-operation rollup of compacted files and the spans of newer ones: the same counts.
        counted, source = "sum(span_count)::BIGINT", OPERATIONS_VIEW
    sql = f"""SELECT service_name, name AS operation, {counted} AS spans FROM {source} WHERE {where.sql()}
              GROUP BY ALL ORDER BY spans DESC, operation, service_name LIMIT $limit"""
    return _frame(store, sql, {**where.params, "limit": _limit(limit)})


def service_versions(store: Store, *, service: Services = None, limit: int = 100) -> pd.DataFrame:
    """``service.version`` values (resource attribute) with their span counts."""
    where = _Where()
    where.services(service)
    sql = f"""SELECT service_name, _service_version AS version, count(*) AS spans
              FROM {SPANS_DEDICATED_VIEW} WHERE {where.sql()} AND _service_version IS NOT NULL
              GROUP BY ALL ORDER BY service_name, version LIMIT $limit"""
    return _frame(store, sql, {**where.params, "limit": _limit(limit)})

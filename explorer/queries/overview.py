"""The Overview page's RED summary (rate, errors, duration per operation) and alert summary."""

from __future__ import annotations

import pandas as pd

from explorer.errors import QueryError
from explorer.genai import group_expression, spans_source
from explorer.queries._sql import (
    Services,
    TimeLike,
    _bucket_width,
    _data_span_s,
    _frame,
    _limit,
    _per_bucket,
    _services,
    _split_quantiles,
    _ts,
    _Where,
)
from explorer.store import Store


def red_summary(
    store: Store,
    *,
    service: Services = None,
    start: TimeLike = None,
    end: TimeLike = None,
    limit: int = 500,
    group_by: str = "operation",
) -> pd.DataFrame:
    """Rate, errors and duration percentiles per service and operation (the RED method).

    ``rate_per_s`` divides by the chosen window, or by the data's own time span when no window is given.
    ``group_by="model"`` (the GenAI model a span names) or ``"attr:KEY"`` puts that in the ``operation``
    column instead of the span name, keeping only spans that have it.
    """
    where = _Where()
    where.services(service)
    where.time("start_time", start, end)
    operation = "name"
    if group_by != "operation":
        operation = group_expression(group_by) or ""
        if not operation:
            msg = f"group_by must be operation, model or attr:KEY, got {group_by!r}"
            raise QueryError(msg)
        if group_by != "model":
            where.add(f"{operation} != '(not set)'")
    lo, hi = _ts(start, "start"), _ts(end, "end")
    window = (hi - lo).total_seconds() if lo is not None and hi is not None else None
    sql = f"""
        WITH f AS (SELECT service_name, {operation} AS name, start_time, duration_ns, status_code
                   FROM {spans_source(group_by)} WHERE {where.sql()}),
        w AS (SELECT greatest(coalesce($window, epoch(max(start_time)) - epoch(min(start_time))), 1.0) AS secs FROM f)
        SELECT service_name, name AS operation, count(*) AS spans,
               count_if(status_code = 'ERROR')::BIGINT AS errors,
               count_if(status_code = 'ERROR') / count(*) AS error_rate,
               count(*) / any_value(w.secs) AS rate_per_s,
               quantile_cont(duration_ns, [0.5, 0.95, 0.99]) AS q,
               max(duration_ns) / 1e6 AS max_ms
        FROM f, w GROUP BY service_name, name ORDER BY spans DESC, service_name, operation LIMIT $limit
    """
    frame = _frame(store, sql, {**where.params, "window": window, "limit": _limit(limit)})
    return _split_quantiles(frame, "q")


def slowest_operations(red: pd.DataFrame, *, limit: int = 10) -> pd.DataFrame:
    """The operations of a :func:`red_summary` with the highest p95."""
    return red.sort_values(["p95_ms", "spans"], ascending=False).head(_limit(limit)).reset_index(drop=True)


def failing_operations(red: pd.DataFrame, *, limit: int = 10) -> pd.DataFrame:
    """The operations of a :func:`red_summary` with errors, most errors first."""
    failing = red[red["errors"] > 0]
    return (
        failing.sort_values(["errors", "error_rate"], ascending=False)
        .head(_limit(limit))
        .reset_index(drop=True)
    )


def alert_summary(
    store: Store, *, service: Services = None, start: TimeLike = None, end: TimeLike = None
) -> pd.DataFrame:
    """Alert rows per severity and state in the window."""
    where = _Where()
    names = _services(service)
    if names is not None:
        where.add(
            "(list_contains($services, service_name) OR list_contains($services, component))", services=names
        )
    where.time("timestamp", start, end)
    sql = f"""SELECT coalesce(severity, 'unknown') AS severity, coalesce(state, 'unknown') AS state, count(*) AS alerts
              FROM alerts WHERE {where.sql()} GROUP BY ALL ORDER BY alerts DESC"""
    return _frame(store, sql, where.params)


def red_over_time(
    store: Store,
    *,
    service: Services = None,
    start: TimeLike = None,
    end: TimeLike = None,
    buckets: int = 60,
) -> pd.DataFrame:
    """Spans per second, errors and p95 (ms) per service per time bucket, so an incident shows as a bump.

    The bucket width is fitted to the window (or the data's own span): about ``buckets`` buckets, rounded
    to a readable width of at least one second. ``bucket_s`` is that width."""
    where = _Where()
    where.services(service)
    where.time("start_time", start, end)
    lo, hi = _ts(start, "start"), _ts(end, "end")
    if lo is None or hi is None:
        lo, hi = _data_span_s(store, "spans", "start_time", where)
    width = _bucket_width(lo, hi, _limit(buckets, "buckets", 10_000), 3600)
    sql = _per_bucket(
        "start_time",
        """service_name, count(*) / $width::DOUBLE AS rate_per_s, count_if(status_code = 'ERROR')::BIGINT AS errors,
           quantile_cont(duration_ns, 0.95) / 1e6 AS p95_ms""",
        f"spans WHERE {where.sql()}",
        then="service_name",
    )
    frame = _frame(store, sql, {**where.params, "width": width})
    return frame.assign(bucket_s=width)

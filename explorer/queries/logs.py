"""Log search and the list of loggers."""

from __future__ import annotations

import pandas as pd

from explorer.errors import QueryError
from explorer.queries._sql import (
    LEVELS,
    Services,
    TimeLike,
    _bucket_width,
    _data_span_s,
    _frame,
    _limit,
    _per_bucket,
    _ts,
    _Where,
)
from explorer.store import Store


def search_logs(
    store: Store,
    *,
    service: Services = None,
    min_level: str | int | None = None,
    logger: str | None = None,
    text: str | None = None,
    correlation_id: str | None = None,
    trace_id: str | None = None,
    event_name: str | None = None,
    start: TimeLike = None,
    end: TimeLike = None,
    limit: int = 500,
) -> pd.DataFrame:
    """Log records matching every criterion, newest first; ``min_level`` is a name (WARN) or a severity number.

    ``text`` matches the body, the event name or any attribute value (case-insensitive); ``event_name`` is
    the record's event name (the ``event_name`` field, else the ``event.name`` attribute of the Events API).
    """
    where = _log_where(service, min_level, logger, text, correlation_id, trace_id, event_name, start, end)
    sql = f"""SELECT timestamp, severity_text, severity_number, service_name, logger_name,
                     coalesce(event_name, attributes['event.name']) AS event_name, body, trace_id, span_id,
                     attributes['correlation_id'] AS correlation_id, attributes
              FROM logs WHERE {where.sql()} ORDER BY timestamp DESC LIMIT $limit"""
    return _frame(store, sql, {**where.params, "limit": _limit(limit)})


def log_volume(
    store: Store,
    *,
    service: Services = None,
    min_level: str | int | None = None,
    logger: str | None = None,
    text: str | None = None,
    correlation_id: str | None = None,
    trace_id: str | None = None,
    event_name: str | None = None,
    start: TimeLike = None,
    end: TimeLike = None,
    buckets: int = 60,
) -> pd.DataFrame:
    """Records per time bucket and level over *every* match of the :func:`search_logs` criteria (not the
    returned page): ``bucket``, ``level``, ``records``, ``bucket_s`` (about ``buckets`` buckets, ≥ 1 s)."""
    where = _log_where(service, min_level, logger, text, correlation_id, trace_id, event_name, start, end)
    lo, hi = _ts(start, "start"), _ts(end, "end")
    if lo is None or hi is None:
        lo, hi = _data_span_s(store, "logs", "timestamp", where)
    width = _bucket_width(lo, hi, _limit(buckets, "buckets", 10_000), 3600)
    sql = _per_bucket(
        "timestamp",
        "coalesce(severity_text, 'UNSET') AS level, count(*) AS records",
        f"logs WHERE {where.sql()}",
        then="level",
    )
    return _frame(store, sql, {**where.params, "width": width}).assign(bucket_s=width)


def _log_where(
    service: Services,
    min_level: str | int | None,
    logger: str | None,
    text: str | None,
    correlation_id: str | None,
    trace_id: str | None,
    event_name: str | None,
    start: TimeLike,
    end: TimeLike,
) -> _Where:
    where = _Where()
    where.services(service)
    where.time("timestamp", start, end)
    if min_level not in (None, "", "ALL"):
        if isinstance(min_level, str):
            level = LEVELS.get(min_level.upper().replace("WARNING", "WARN"))
            if level is None:
                msg = f"min_level {min_level!r} is not a level; use one of {', '.join(LEVELS)} or a severity number"
                raise QueryError(msg)
        else:
            level = int(min_level)
        where.add("severity_number >= $level", level=level)
    if logger:
        where.add("logger_name = $logger", logger=logger)
    if text:
        # the body, the event name and every attribute value: GenAI events keep their content in attributes
        where.add(
            "(contains(lower(body), $text) OR contains(lower(coalesce(event_name, '')), $text)"
            " OR len(list_filter(map_values(attributes), lambda v: contains(lower(v), $text))) > 0)",
            text=text.lower(),
        )
    if event_name:
        where.add("coalesce(event_name, attributes['event.name']) = $event_name", event_name=event_name)
    if correlation_id:
        where.add("attributes['correlation_id'] = $correlation_id", correlation_id=correlation_id)
    if trace_id:
        where.add("trace_id = $trace_id", trace_id=trace_id.strip().lower())
    return where


def list_loggers(store: Store, *, service: Services = None, limit: int = 500) -> pd.DataFrame:
    """Logger names with their record counts."""
    where = _Where()
    where.services(service)
    sql = f"""SELECT logger_name, count(*) AS records FROM logs WHERE {where.sql()} AND logger_name IS NOT NULL
              GROUP BY ALL ORDER BY records DESC LIMIT $limit"""
    return _frame(store, sql, {**where.params, "limit": _limit(limit)})

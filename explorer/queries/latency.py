"""Latency per operation (or service, version, span kind): histograms, percentiles, outliers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import pandas as pd

from explorer.errors import QueryError
from explorer.genai import group_expression, spans_source
from explorer.queries._sql import (
    Services,
    TimeLike,
    _bucket_width,
    _data_span_s,
    _frame,
    _histogram,
    _limit,
    _per_bucket,
    _split_quantiles,
    _ts,
    _Where,
)
from explorer.store import SPANS_DEDICATED_VIEW, Store

LatencyGroup = Literal["operation", "operation_kind", "version", "service", "kind", "all"]
_GROUPS = {
    "all": "'all'",
    "operation": "name",
    # A client span and the server span of the same name time different things (the server's work vs the
    # whole round trip): the Latency page keeps them apart as "GET /x (client)" and "GET /x (server)".
    "operation_kind": (
        "name || CASE kind WHEN 'CLIENT' THEN ' (client)' WHEN 'SERVER' THEN ' (server)' ELSE '' END"
    ),
    "kind": "coalesce(kind, '(none)')",
    "version": "coalesce({version}, '(none)')",
    "service": "service_name",
}


#: A span's ``service.version`` from its resource's attribute map.
_MAP_VERSION = "resource_attributes['service.version']"


def _source(group_by: str, versions: Sequence[str] | None) -> tuple[str, str]:
    """The FROM clause of a latency query and the SQL of a span's ``service.version`` in it: when the query
    groups or filters by version, the spans with ``_service_version`` (compacted files' dedicated column; the
    attribute map elsewhere: the same values without decoding 10M maps, :mod:`explorer.store`)."""
    if group_by == "model":
        return spans_source(group_by, resource_attributes=bool(versions)), _MAP_VERSION
    if group_by == "version" or versions:
        return f"{SPANS_DEDICATED_VIEW} AS spans", "_service_version"
    return "spans", _MAP_VERSION


def _latency_where(
    service: Services,
    operation: str | Sequence[str] | None,
    start: TimeLike,
    end: TimeLike,
    versions: Sequence[str] | None,
    version: str = _MAP_VERSION,
) -> _Where:
    where = _Where()
    where.services(service)
    where.time("start_time", start, end)
    if operation:
        where.add(
            "list_contains($operations, name)",
            operations=[operation] if isinstance(operation, str) else list(operation),
        )
    if versions:
        where.add(f"list_contains($versions, {version})", versions=list(versions))
    return where


def _group(group_by: str, version: str = _MAP_VERSION) -> str:
    extra = group_expression(group_by) if isinstance(group_by, str) else None  # "model", "attr:KEY"
    if extra is not None:
        return extra
    if group_by not in _GROUPS:
        msg = f"group_by must be one of {', '.join(_GROUPS)}, model or attr:KEY, got {group_by!r}"
        raise QueryError(msg)
    return _GROUPS[group_by].format(version=version)


def latency_histogram(
    store: Store,
    *,
    service: Services = None,
    operation: str | Sequence[str] | None = None,
    start: TimeLike = None,
    end: TimeLike = None,
    versions: Sequence[str] | None = None,
    group_by: LatencyGroup = "operation",
    bins: int = 40,
    log_scale: bool = False,
) -> pd.DataFrame:
    """Span-duration histogram per group, bins shared by all groups: [group, lo_ms, hi_ms, count]."""
    source, version = _source(group_by, versions)
    where = _latency_where(service, operation, start, end, versions, version)
    with_vals = f"WITH vals AS (SELECT {_group(group_by, version)} AS grp, duration_ns AS d FROM {source} WHERE {where.sql()})"
    return _histogram(store, with_vals, where.params, bins=bins, log_scale=log_scale)


def latency_percentiles(
    store: Store,
    *,
    service: Services = None,
    operation: str | Sequence[str] | None = None,
    start: TimeLike = None,
    end: TimeLike = None,
    versions: Sequence[str] | None = None,
    group_by: LatencyGroup = "operation",
    limit: int = 200,
) -> pd.DataFrame:
    """Count, mean, p50/p90/p95/p99 and max duration (ms) per group."""
    source, version = _source(group_by, versions)
    where = _latency_where(service, operation, start, end, versions, version)
    sql = f"""SELECT {_group(group_by, version)} AS "group", count(*) AS spans, avg(duration_ns) / 1e6 AS mean_ms,
                     quantile_cont(duration_ns, [0.5, 0.9, 0.95, 0.99]) AS q, max(duration_ns) / 1e6 AS max_ms,
                     count_if(status_code = 'ERROR')::BIGINT AS errors
              FROM {source} WHERE {where.sql()}
              GROUP BY ALL ORDER BY spans DESC LIMIT $limit"""
    frame = _frame(store, sql, {**where.params, "limit": _limit(limit)})
    return _split_quantiles(frame, "q", ("p50_ms", "p90_ms", "p95_ms", "p99_ms"))


def percentiles_over_time(
    store: Store,
    *,
    service: Services = None,
    operation: str | Sequence[str] | None = None,
    start: TimeLike = None,
    end: TimeLike = None,
    versions: Sequence[str] | None = None,
    buckets: int = 60,
) -> pd.DataFrame:
    """p50/p95/p99 (ms) and count per time bucket; the bucket width is rounded to a readable size."""
    source, version = _source("operation", versions)
    where = _latency_where(service, operation, start, end, versions, version)
    lo, hi = _ts(start, "start"), _ts(end, "end")
    if lo is None or hi is None:
        lo, hi = _data_span_s(store, source, "start_time", where)
    width = _bucket_width(lo, hi, _limit(buckets, "buckets", 10_000), 3600)
    sql = _per_bucket(
        "start_time",
        "count(*) AS spans, quantile_cont(duration_ns, [0.5, 0.95, 0.99]) AS q",
        f"{source} WHERE {where.sql()}",
    )
    frame = _frame(store, sql, {**where.params, "width": width})
    return _split_quantiles(frame, "q")


def latency_outliers(
    store: Store,
    *,
    service: Services = None,
    operation: str | Sequence[str] | None = None,
    start: TimeLike = None,
    end: TimeLike = None,
    versions: Sequence[str] | None = None,
    limit: int = 20,
) -> pd.DataFrame:
    """The slowest spans (with their trace ids) for the filters."""
    source, version = _source("version", versions)  # the rows show each span's version
    where = _latency_where(service, operation, start, end, versions, version)
    sql = f"""SELECT trace_id, span_id, service_name, name AS operation, start_time, duration_ns / 1e6 AS duration_ms,
                     status_code, {version} AS version
              FROM {source} WHERE {where.sql()} ORDER BY duration_ns DESC LIMIT $limit"""
    return _frame(store, sql, {**where.params, "limit": _limit(limit)})

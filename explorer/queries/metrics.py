"""Metric catalog, series over time and histogram buckets/quantiles."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from explorer.queries._sql import (
    PERCENTILES,
    Services,
    TimeLike,
    _as_list,
    _bucket_width,
    _data_span_s,
    _frame,
    _limit,
    _ts,
    _Where,
)
from explorer.store import Store


def metric_catalog(store: Store, *, service: Services = None, limit: int = 1000) -> pd.DataFrame:
    """Every metric name with its type, unit, temporality, number of series and points."""
    where = _Where()
    where.services(service)
    sql = f"""SELECT name, any_value(type) AS type, any_value(unit) AS unit, any_value(temporality) AS temporality,
                     count(DISTINCT (service_name, CAST(attributes AS VARCHAR))) AS series, count(*) AS points,
                     min(timestamp) AS first, max(timestamp) AS last
              FROM metrics WHERE {where.sql()} GROUP BY name ORDER BY name LIMIT $limit"""
    return _frame(store, sql, {**where.params, "limit": _limit(limit)})


def metric_label_keys(store: Store, *, name: str, limit: int = 200) -> pd.DataFrame:
    """Label (attribute) keys of a metric with how many distinct values each has."""
    sql = """SELECT k AS key, count(DISTINCT attributes[k]) AS values
             FROM (SELECT attributes, unnest(map_keys(attributes)) AS k FROM metrics WHERE name = $name)
             GROUP BY k ORDER BY k LIMIT $limit"""
    return _frame(store, sql, {"name": name, "limit": _limit(limit)})


def _series_label(group_by: Sequence[str], params: dict[str, Any]) -> str:
    if not group_by:
        return "name"
    parts = []
    for i, key in enumerate(group_by):
        if key == "service_name":
            parts.append("'service=' || coalesce(service_name, '∅')")
        else:
            params[f"g{i}"] = key
            parts.append(f"$g{i} || '=' || coalesce(attributes[$g{i}], '∅')")
    return "concat_ws(', ', " + ", ".join(parts) + ")"


def metric_series(
    store: Store,
    *,
    name: str,
    service: Services = None,
    start: TimeLike = None,
    end: TimeLike = None,
    labels: Mapping[str, str] | None = None,
    group_by: Sequence[str] = (),
    rate: bool | None = None,
    buckets: int = 120,
) -> pd.DataFrame:
    """A metric over time per label group: [timestamp, series, value].

    Counters stored cumulatively are turned into per-second rates (``rate=None`` decides by the stored
    type/temporality); a drop in a cumulative value is a reset and counts from zero, like Prometheus.
    Gauges are averaged per bucket; several series in one group are summed (rates) or averaged (gauges).
    """
    where = _Where()
    where.add("name = $name", name=name)
    where.services(service)
    where.time("timestamp", start, end)
    for i, (key, value) in enumerate((labels or {}).items()):
        where.add(f"attributes[$lk{i}] = $lv{i}", **{f"lk{i}": key, f"lv{i}": value})
    kind = _frame(
        store,
        f"SELECT any_value(type) AS type, any_value(temporality) AS temporality FROM metrics WHERE {where.sql()}",
        where.params,
    )
    mtype = kind["type"].iloc[0] if not kind.empty else None
    temporality = kind["temporality"].iloc[0] if not kind.empty else None
    if rate is None:
        rate = mtype == "counter"
    lo, hi = _ts(start, "start"), _ts(end, "end")
    if lo is None or hi is None:
        lo, hi = _data_span_s(store, "metrics", "timestamp", where)
    width = _bucket_width(lo, hi, _limit(buckets, "buckets", 10_000), 3600)
    params: dict[str, Any] = {**where.params, "width": width}
    label = _series_label(group_by, params)
    sid = "concat_ws('|', service_name, CAST(attributes AS VARCHAR), resource_attributes['service.instance.id'])"
    if rate and temporality != "delta":
        point = """CASE WHEN prev IS NULL OR dt <= 0 THEN NULL
                        WHEN value >= prev THEN (value - prev) / dt ELSE value / dt END"""
        sql = f"""
            WITH p AS (SELECT timestamp, value, {label} AS series, {sid} AS sid,
                              lag(value) OVER w AS prev, epoch(timestamp) - epoch(lag(timestamp) OVER w) AS dt
                       FROM metrics WHERE {where.sql()} WINDOW w AS (PARTITION BY {sid} ORDER BY timestamp)),
            per_series AS (SELECT time_bucket(to_seconds($width), timestamp) AS timestamp, series, sid, avg({point}) AS v
                           FROM p GROUP BY ALL)
            SELECT timestamp, series, sum(v) AS value FROM per_series WHERE v IS NOT NULL GROUP BY ALL ORDER BY series, timestamp"""
    elif rate:
        sql = f"""SELECT time_bucket(to_seconds($width), timestamp) AS timestamp, {label} AS series,
                         sum(value) / $width AS value
                  FROM metrics WHERE {where.sql()} GROUP BY ALL ORDER BY series, timestamp"""
    else:
        sql = f"""
            WITH per_series AS (SELECT time_bucket(to_seconds($width), timestamp) AS timestamp, {label} AS series,
                                       {sid} AS sid, avg(value) AS v
                                FROM metrics WHERE {where.sql()} GROUP BY ALL)
            SELECT timestamp, series, {"sum" if mtype == "counter" else "avg"}(v) AS value FROM per_series
            GROUP BY ALL ORDER BY series, timestamp"""
    return _frame(store, sql, params)


def histogram_buckets(
    store: Store,
    *,
    name: str,
    service: Services = None,
    start: TimeLike = None,
    end: TimeLike = None,
    labels: Mapping[str, str] | None = None,
    buckets: int = 60,
    limit: int = 200_000,
) -> pd.DataFrame:
    """Per time bucket, the observations of a histogram metric per bucket bound: [timestamp, le, count].

    Cumulative points are differenced per series (a shrinking count is a reset), so each time bucket holds
    what was observed in it. ``le`` is the bucket's upper bound (``inf`` for the last bucket).
    """
    where = _Where()
    where.add("name = $name AND type = 'histogram'", name=name)
    where.services(service)
    where.time("timestamp", start, end)
    for i, (key, value) in enumerate((labels or {}).items()):
        where.add(f"attributes[$lk{i}] = $lv{i}", **{f"lk{i}": key, f"lv{i}": value})
    sid = "concat_ws('|', service_name, CAST(attributes AS VARCHAR), resource_attributes['service.instance.id'])"
    sql = f"""SELECT timestamp, {sid} AS sid, temporality, bucket_counts, explicit_bounds FROM metrics
              WHERE {where.sql()} ORDER BY sid, timestamp LIMIT $limit"""
    points = _frame(store, sql, {**where.params, "limit": _limit(limit)})
    out_columns = ["timestamp", "le", "count"]
    if points.empty:
        return pd.DataFrame(columns=out_columns)
    lo, hi = _ts(points["timestamp"].min(), "lo"), _ts(points["timestamp"].max(), "hi")
    width = _bucket_width(
        _ts(start, "start") or lo, _ts(end, "end") or hi, _limit(buckets, "buckets", 10_000), 3600
    )
    rows: dict[tuple[pd.Timestamp, float], float] = defaultdict(float)
    previous: dict[str, tuple[tuple[float, ...], np.ndarray]] = {}
    for point in points.itertuples(index=False):
        counts = np.asarray(_as_list(point.bucket_counts), dtype=float)
        bounds = tuple(float(b) for b in _as_list(point.explicit_bounds))
        if counts.size != len(bounds) + 1:
            continue  # malformed point: bucket and bound counts disagree; the SQL page shows it as stored
        delta = counts
        if point.temporality != "delta":
            prior = previous.get(point.sid)
            if prior is not None and prior[0] == bounds and (counts >= prior[1]).all():
                delta = counts - prior[1]
            previous[point.sid] = (bounds, counts)
        stamp = pd.Timestamp(point.timestamp)
        bucket = stamp.floor(f"{width}s")
        for le, n in zip((*bounds, math.inf), delta, strict=True):
            rows[(bucket, le)] += float(n)
    frame = pd.DataFrame([(t, le, n) for (t, le), n in rows.items()], columns=out_columns)
    return frame.sort_values(["timestamp", "le"]).reset_index(drop=True)


def histogram_quantiles(buckets: pd.DataFrame, quantiles: Sequence[float] = PERCENTILES) -> pd.DataFrame:
    """Quantiles per time bucket from :func:`histogram_buckets`, interpolating inside a bucket like
    Prometheus' ``histogram_quantile`` (the +Inf bucket reports its lower bound)."""
    names = [f"p{round(q * 100):d}" for q in quantiles]
    if buckets.empty:
        return pd.DataFrame(columns=["timestamp", "count", *names])
    rows = []
    for stamp, group in buckets.groupby("timestamp", sort=True):
        group = group.sort_values("le")
        les = group["le"].to_numpy(dtype=float)
        counts = group["count"].to_numpy(dtype=float)
        total = counts.sum()
        row: dict[str, Any] = {"timestamp": stamp, "count": total}
        cumulative = np.cumsum(counts)
        for q, label in zip(quantiles, names, strict=True):
            if total <= 0:
                row[label] = np.nan
                continue
            rank = q * total
            i = int(np.searchsorted(cumulative, rank, side="left"))
            i = min(i, len(les) - 1)
            lower = les[i - 1] if i > 0 else 0.0
            upper = les[i]
            if math.isinf(upper):
                row[label] = lower
                continue
            below = cumulative[i - 1] if i > 0 else 0.0
            inside = counts[i]
            row[label] = lower + (upper - lower) * ((rank - below) / inside if inside > 0 else 1.0)
        rows.append(row)
    return pd.DataFrame(rows, columns=["timestamp", "count", *names])

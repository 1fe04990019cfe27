"""Shared SQL building blocks of the query layer: time and service filters, bounded limits, the WHERE
builder, frame fetching, histogram and quantile helpers. Identifiers only from fixed lists; values bound."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from explorer.errors import QueryError
from explorer.store import TRACE_SUMMARIES_VIEW, Store

TimeLike: TypeAlias = datetime | date | pd.Timestamp | str | None
Services = str | Sequence[str] | None

#: Log levels by their OTel severity number floor (DEBUG 5, INFO 9, WARN 13, ERROR 17, FATAL 21).
LEVELS: dict[str, int] = {"TRACE": 1, "DEBUG": 5, "INFO": 9, "WARN": 13, "ERROR": 17, "FATAL": 21}
PERCENTILES = (0.5, 0.95, 0.99)


def _ts(value: TimeLike, name: str) -> datetime | None:
    """A timezone-aware UTC datetime from what a user or widget gives; naive values are taken as UTC."""
    if value is None or value == "":
        return None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        msg = f"`{name}` must be a datetime or an ISO-8601 string, got {value!r} ({exc})"
        raise QueryError(msg) from None
    if pd.isna(stamp):
        return None
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.to_pydatetime(warn=False)


def _services(service: Services) -> list[str] | None:
    if service is None or service == "" or (not isinstance(service, str) and len(service) == 0):
        return None
    return [service] if isinstance(service, str) else [str(s) for s in service]


def _limit(limit: int, name: str = "limit", maximum: int = 1_000_000) -> int:
    if not isinstance(limit, (int, np.integer)) or isinstance(limit, bool) or not 0 < int(limit) <= maximum:
        msg = f"`{name}` must be an integer between 1 and {maximum}, got {limit!r}"
        raise QueryError(msg)
    return int(limit)


class _Where:
    """WHERE clauses with their named parameters, built from allow-listed column names."""

    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.params: dict[str, Any] = {}

    def add(self, clause: str, **params: Any) -> None:
        self.clauses.append(clause)
        self.params.update(params)

    def time(self, column: str, start: TimeLike, end: TimeLike) -> None:
        """``start <= column < end`` plus the day-partition bounds that let DuckDB skip files."""
        lo, hi = _ts(start, "start"), _ts(end, "end")
        if lo is not None and hi is not None and hi < lo:
            msg = f"the time range is reversed: end {hi.isoformat()} is before start {lo.isoformat()}"
            raise QueryError(msg)
        if lo is not None:
            self.add(f"{column} >= $t_lo AND date >= $d_lo", t_lo=lo, d_lo=lo.date())
        if hi is not None:
            self.add(f"{column} < $t_hi AND date <= $d_hi", t_hi=hi, d_hi=hi.date())

    def services(self, service: Services, column: str = "service_name") -> None:
        names = _services(service)
        if names is not None:
            self.add(f"list_contains($services, {column})", services=names)

    def sql(self) -> str:
        return " AND ".join(self.clauses) if self.clauses else "TRUE"


def _frame(store: Store, sql: str, params: Mapping[str, Any]) -> pd.DataFrame:
    return store.sql(sql, dict(params))


def _split_quantiles(
    frame: pd.DataFrame, column: str, names: Sequence[str] = ("p50_ms", "p95_ms", "p99_ms")
) -> pd.DataFrame:
    values = frame.pop(column)
    for i, name in enumerate(names):
        frame[name] = [float(v[i]) / 1e6 if v is not None and len(v) > i else np.nan for v in values]
    return frame


def _histogram(
    store: Store, with_vals: str, params: dict[str, Any], *, bins: int, log_scale: bool
) -> pd.DataFrame:
    """Bins shared by every group of ``vals(grp, d)``: [group, lo_ms, hi_ms, count]; log-spaced if asked."""
    bins = _limit(bins, "bins", 1000)
    x = "ln(greatest(d, 1))" if log_scale else "d"
    sql = f"""{with_vals},
        b AS (SELECT min({x}) AS lo, max({x}) AS hi FROM vals WHERE d IS NOT NULL),
        h AS (SELECT grp, least(floor(({x} - lo) / greatest(hi - lo, 1e-9) * $bins), $bins - 1)::INT AS bin, count(*) AS n
              FROM vals, b WHERE d IS NOT NULL GROUP BY ALL)
        SELECT grp AS "group", bin, n AS count, any_value(b.lo) AS lo, any_value(b.hi) AS hi
        FROM h, b GROUP BY ALL ORDER BY "group", bin"""
    frame = _frame(store, sql, {**params, "bins": bins})
    if frame.empty:
        return pd.DataFrame(
            {
                "group": pd.Series(dtype=str),
                "lo_ms": pd.Series(dtype=float),
                "hi_ms": pd.Series(dtype=float),
                "count": pd.Series(dtype="int64"),
            }
        )
    lo, hi = float(frame["lo"].iloc[0]), float(frame["hi"].iloc[0])
    width = max(hi - lo, 1e-9) / bins
    edges_lo = lo + frame["bin"].astype(float) * width
    edges_hi = edges_lo + width
    if log_scale:
        edges_lo, edges_hi = np.exp(edges_lo), np.exp(edges_hi)
    return pd.DataFrame(
        {
            "group": frame["group"].astype(str),
            "lo_ms": np.asarray(edges_lo, dtype=float) / 1e6,
            "hi_ms": np.asarray(edges_hi, dtype=float) / 1e6,
            "count": frame["count"].astype("int64"),
        }
    )


def _is_null(value: Any) -> bool:
    """None, NaN, pd.NA or NaT (a NULL from DuckDB), but not a list, array or mapping."""
    if value is None:
        return True
    if isinstance(value, (list, tuple, dict, np.ndarray, Mapping)):
        return False
    return bool(pd.isna(value))


def _as_dict(value: Any) -> dict[str, str]:
    if _is_null(value):
        return {}
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    return {str(k): v for k, v in value}


def _as_list(value: Any) -> list[Any]:
    if _is_null(value):
        return []
    return list(value)


def _bucket_width(start: datetime | None, end: datetime | None, buckets: int, fallback_s: float) -> int:
    span_s = (end - start).total_seconds() if start is not None and end is not None else fallback_s
    width = max(span_s / max(buckets, 1), 1.0)
    for nice in (1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400):
        if width <= nice:
            return nice
    return int(math.ceil(width / 86400) * 86400)


#: ``time_bucket``'s default origin, 2000-01-03 00:00 UTC, in microseconds since 1970.
_BUCKET_ORIGIN_US = 946_857_600_000_000


def _bucketed(column: str) -> tuple[str, str]:
    """``(number, start)``: SQL for the number of the ``$width``-second bucket holding the timestamp ``column``
    (group by it as ``_bucket_number``), and SQL turning ``_bucket_number`` into the bucket's start.

    Exactly ``time_bucket(to_seconds($width), column)`` — same origin, floored before it, a TIMESTAMP WITH
    TIME ZONE — in integer arithmetic on the microseconds, because ``time_bucket`` works through the
    calendar of a zoned timestamp: the Overview's rate chart at 10M spans in 250 ms instead of 400.
    """
    us = f"(epoch_us({column}) - {_BUCKET_ORIGIN_US})"
    width = "($width::BIGINT * 1000000)"
    number = f"({us} // {width} - CASE WHEN {us} % {width} < 0 THEN 1 ELSE 0 END)"  # // truncates; floor it
    return number, f"timezone('UTC', make_timestamp(_bucket_number * {width} + {_BUCKET_ORIGIN_US}))"


def _per_bucket(column: str, columns: str, source: str, then: str = "") -> str:
    """``SELECT bucket, {columns} FROM {source} GROUP BY ALL`` per ``$width``-second bucket of the timestamp
    ``column`` (:func:`_bucketed`), ordered by bucket, then by ``then``."""
    number, start = _bucketed(column)
    return f"""SELECT {start} AS bucket, * EXCLUDE (_bucket_number) FROM (
                   SELECT {number} AS _bucket_number, {columns} FROM {source} GROUP BY ALL
               ) ORDER BY bucket{", " + then if then else ""}"""


def _data_span_s(
    store: Store, table: str, column: str, where: _Where
) -> tuple[datetime | None, datetime | None]:
    sql = f"SELECT min({column}) AS lo, max({column}) AS hi FROM {table} WHERE {where.sql()}"
    if (table, column) == ("spans", "start_time") and not where.clauses and store.has_trace_summaries():
        sql = f"SELECT min(start_time) AS lo, max(last_start_time) AS hi FROM {TRACE_SUMMARIES_VIEW}"
    frame = _frame(store, sql, where.params)
    if frame.empty or pd.isna(frame["lo"].iloc[0]):
        return None, None
    return _ts(frame["lo"].iloc[0], "lo"), _ts(frame["hi"].iloc[0], "hi")


def now_utc() -> datetime:
    """The current time in UTC (one place, so pages and tests agree)."""
    return datetime.now(UTC)

"""Query functions over a :class:`~explorer.store.Store`: keyword-only filters in, pandas DataFrames out.

Shared by the Streamlit pages, the notebooks and the CLI. Every function bounds its result
(``limit``), passes values as bound parameters (``$name``), and takes identifiers only from fixed
lists. Time filters also prune on the store's ``date`` partition, so a narrow window reads few files.
No Streamlit import here (a test checks it).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

from explorer.errors import QueryError
from explorer.store import Store

TimeLike = datetime | date | pd.Timestamp | str | None
Services = str | Sequence[str] | None

#: Log levels by their OTel severity number floor (DEBUG 5, INFO 9, WARN 13, ERROR 17, FATAL 21).
LEVELS: dict[str, int] = {"TRACE": 1, "DEBUG": 5, "INFO": 9, "WARN": 13, "ERROR": 17, "FATAL": 21}
PERCENTILES = (0.5, 0.95, 0.99)


# --------------------------------------------------------------------------- filter building


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


# --------------------------------------------------------------------------- store-wide facts


def store_overview(store: Store) -> pd.DataFrame:
    """Rows and first/last timestamp of each table: what the store holds at a glance."""
    parts = [
        ("spans", "start_time"),
        ("logs", "timestamp"),
        ("metrics", "timestamp"),
        ("profiles", "timestamp"),
        ("alerts", "timestamp"),
    ]
    sql = " UNION ALL ".join(
        f"SELECT '{table}' AS table_name, count(*) AS rows, min({col}) AS first, max({col}) AS last FROM {table}"
        for table, col in parts
    )
    return store.sql(sql)


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
    rejected_glob = store.root / "_rejected" / "*.jsonl"
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
    sql = f"""
        SELECT service_name, sum(spans)::BIGINT AS spans FROM (
            SELECT service_name, count(*) AS spans FROM spans WHERE {where.sql()} GROUP BY ALL
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
    sql = f"""SELECT service_name, name AS operation, count(*) AS spans FROM spans WHERE {where.sql()}
              GROUP BY ALL ORDER BY spans DESC, operation LIMIT $limit"""
    return _frame(store, sql, {**where.params, "limit": _limit(limit)})


def service_versions(store: Store, *, service: Services = None, limit: int = 100) -> pd.DataFrame:
    """``service.version`` values (resource attribute) with their span counts."""
    where = _Where()
    where.services(service)
    sql = f"""SELECT service_name, resource_attributes['service.version'] AS version, count(*) AS spans
              FROM spans WHERE {where.sql()} AND resource_attributes['service.version'] IS NOT NULL
              GROUP BY ALL ORDER BY service_name, version LIMIT $limit"""
    return _frame(store, sql, {**where.params, "limit": _limit(limit)})


# --------------------------------------------------------------------------- overview (RED)


def red_summary(
    store: Store, *, service: Services = None, start: TimeLike = None, end: TimeLike = None, limit: int = 500
) -> pd.DataFrame:
    """Rate, errors and duration percentiles per service and operation (the RED method).

    ``rate_per_s`` divides by the chosen window, or by the data's own time span when no window is given.
    """
    where = _Where()
    where.services(service)
    where.time("start_time", start, end)
    lo, hi = _ts(start, "start"), _ts(end, "end")
    window = (hi - lo).total_seconds() if lo is not None and hi is not None else None
    sql = f"""
        WITH f AS (SELECT service_name, name, start_time, duration_ns, status_code FROM spans WHERE {where.sql()}),
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


def _split_quantiles(
    frame: pd.DataFrame, column: str, names: Sequence[str] = ("p50_ms", "p95_ms", "p99_ms")
) -> pd.DataFrame:
    values = frame.pop(column)
    for i, name in enumerate(names):
        frame[name] = [float(v[i]) / 1e6 if v is not None and len(v) > i else np.nan for v in values]
    return frame


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


# --------------------------------------------------------------------------- trace search


TraceOrder = Literal["recent", "slowest", "errors"]
_ORDERS: dict[str, str] = {
    "recent": "start_time DESC, trace_id",
    "slowest": "duration_ns DESC, trace_id",
    "errors": "error_count DESC, start_time DESC, trace_id",
}


@dataclass(frozen=True)
class TraceFilter:
    """Trace search criteria. Span criteria (service, operation, attribute) must hold on one span;
    ``status`` and the duration range apply to the whole trace (first start to last end)."""

    service: Services = None
    operation: str | None = None
    status: Literal["error", "ok"] | None = None
    min_duration_ms: float | None = None
    max_duration_ms: float | None = None
    start: TimeLike = None
    end: TimeLike = None
    attribute: tuple[str, str] | str | None = None
    correlation_id: str | None = None
    log_text: str | None = None
    trace_id: str | None = None

    def _attribute(self) -> tuple[str, str] | None:
        if self.attribute is None or self.attribute == "":
            return None
        if isinstance(self.attribute, str):
            key, sep, value = self.attribute.partition("=")
            if not sep or not key.strip():
                msg = (
                    f"attribute filter {self.attribute!r} must look like key=value, e.g. http.route=/checkout"
                )
                raise QueryError(msg)
            return key.strip(), value.strip()
        key, value = self.attribute
        return str(key), str(value)

    def cte(self) -> tuple[str, dict[str, Any]]:
        """SQL defining ``traces`` (one row per matching trace) and its parameters."""
        if self.status not in (None, "", "error", "ok"):
            msg = f"status must be 'error', 'ok' or None, got {self.status!r}"
            raise QueryError(msg)
        span = _Where()
        span.services(self.service)
        span.time("start_time", self.start, self.end)
        if self.operation:
            span.add("name = $operation", operation=self.operation)
        attribute = self._attribute()
        if attribute is not None:
            span.add(
                "(attributes[$attr_key] = $attr_value OR resource_attributes[$attr_key] = $attr_value)",
                attr_key=attribute[0],
                attr_value=attribute[1],
            )
        if self.trace_id:
            span.add("starts_with(trace_id, $trace_prefix)", trace_prefix=self.trace_id.strip().lower())
        params = dict(span.params)
        selectors = [f"SELECT DISTINCT trace_id FROM spans WHERE {span.sql()}"]
        if self.correlation_id:
            params["correlation_id"] = self.correlation_id
            selectors.append(
                "SELECT trace_id FROM spans WHERE attributes['correlation_id'] = $correlation_id "
                "UNION SELECT trace_id FROM logs WHERE attributes['correlation_id'] = $correlation_id "
                "AND trace_id IS NOT NULL"
            )
        if self.log_text:
            params["log_text"] = self.log_text.lower()
            selectors.append(
                "SELECT trace_id FROM logs WHERE trace_id IS NOT NULL AND contains(lower(body), $log_text)"
            )
        having = []
        if self.status == "error":
            having.append("error_count > 0")
        elif self.status == "ok":
            having.append("error_count = 0")
        if self.min_duration_ms is not None:
            having.append("duration_ns >= $min_ns")
            params["min_ns"] = int(float(self.min_duration_ms) * 1e6)
        if self.max_duration_ms is not None:
            having.append("duration_ns <= $max_ns")
            params["max_ns"] = int(float(self.max_duration_ms) * 1e6)
        # Without any criterion every trace matches: skip the semi-join (a second scan of every span).
        filtered = bool(span.clauses) or len(selectors) > 1
        matched = " INTERSECT ".join(f"({s})" for s in selectors)
        source = "spans WHERE trace_id IN (SELECT trace_id FROM matched)" if filtered else "spans"
        # Only cheap aggregates here: they run over every matching trace. Root names and service lists
        # are looked up for the returned page of traces only (see search_traces).
        sql = f"""
            {"matched AS (" + matched + ")," if filtered else ""}
            traces AS (
                SELECT * FROM (
                    SELECT trace_id, min(start_time) AS start_time,
                           epoch_ns(max(end_time)) - epoch_ns(min(start_time)) AS duration_ns,
                           count(*) AS span_count, count_if(status_code = 'ERROR')::BIGINT AS error_count
                    FROM {source} GROUP BY trace_id
                ) WHERE {" AND ".join(having) if having else "TRUE"}
            )"""
        return sql, params


def search_traces(
    store: Store,
    *,
    service: Services = None,
    operation: str | None = None,
    status: Literal["error", "ok"] | None = None,
    min_duration_ms: float | None = None,
    max_duration_ms: float | None = None,
    start: TimeLike = None,
    end: TimeLike = None,
    attribute: tuple[str, str] | str | None = None,
    correlation_id: str | None = None,
    log_text: str | None = None,
    trace_id: str | None = None,
    order: TraceOrder = "recent",
    limit: int = 100,
) -> pd.DataFrame:
    """Traces matching every given criterion, with root name/service, start, duration, span and error counts.

    ``matches`` is the number of matching traces before ``limit``.
    """
    if order not in _ORDERS:
        msg = f"order must be one of {', '.join(_ORDERS)}, got {order!r}"
        raise QueryError(msg)
    cte, params = TraceFilter(
        service=service,
        operation=operation,
        status=status,
        min_duration_ms=min_duration_ms,
        max_duration_ms=max_duration_ms,
        start=start,
        end=end,
        attribute=attribute,
        correlation_id=correlation_id,
        log_text=log_text,
        trace_id=trace_id,
    ).cte()
    sql = f"""WITH {cte},
        page AS MATERIALIZED (
            SELECT *, count(*) OVER () AS matches FROM traces ORDER BY {_ORDERS[order]} LIMIT $limit
        ),
        details AS (
            SELECT trace_id,
                   coalesce(any_value(name) FILTER (WHERE parent_span_id IS NULL), arg_min(name, start_time)) AS root_name,
                   coalesce(any_value(service_name) FILTER (WHERE parent_span_id IS NULL),
                            arg_min(service_name, start_time)) AS root_service,
                   string_agg(DISTINCT service_name, ', ' ORDER BY service_name) AS services
            FROM spans WHERE trace_id IN (SELECT trace_id FROM page) GROUP BY trace_id
        )
        SELECT trace_id, root_name, root_service, start_time, duration_ns / 1e6 AS duration_ms, span_count,
               error_count, services, matches
        FROM page LEFT JOIN details USING (trace_id) ORDER BY {_ORDERS[order]}"""
    return _frame(store, sql, {**params, "limit": _limit(limit)})


def trace_duration_histogram(
    store: Store, *, bins: int = 40, log_scale: bool = True, **filters: Any
) -> pd.DataFrame:
    """Histogram of whole-trace durations over every match of ``filters`` (the :class:`TraceFilter` fields)."""
    cte, params = TraceFilter(**filters).cte()
    return _histogram(
        store,
        f"WITH {cte}, vals AS (SELECT 'traces' AS grp, duration_ns AS d FROM traces)",
        params,
        bins=bins,
        log_scale=log_scale,
    )


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


# --------------------------------------------------------------------------- one trace


def trace_tree(store: Store, trace_id: str) -> pd.DataFrame:
    """The spans of a trace in tree order with ``depth``, ``offset_ms``/``duration_ms`` from the trace
    start (nanosecond exact), ``critical`` (on the critical path) and ``children``."""
    tree = store.trace(trace_id.strip())
    start_ns = tree["start_time"].astype("int64")
    end_ns = tree["end_time"].astype("int64")
    t0 = int(start_ns.min())
    tree = tree.assign(
        start_ns=start_ns,
        end_ns=end_ns,
        offset_ms=(start_ns - t0) / 1e6,
        duration_ms=tree["duration_ns"].astype("float64") / 1e6,
    )
    parent_counts = tree["parent_span_id"].value_counts()
    tree["children"] = tree["span_id"].map(parent_counts).fillna(0).astype("int64")
    tree["critical"] = tree["span_id"].isin(critical_path(tree))
    return tree


def critical_path(tree: pd.DataFrame) -> set[str]:
    """Span ids on the critical path: from the root, the last-finishing child, then the child that finished
    before it started, and so on (Jaeger's definition). Iterative, so deep traces do not recurse."""
    if tree.empty:
        return set()
    ids = tree["span_id"].tolist()
    parents = tree["parent_span_id"].tolist()
    start = (
        tree["start_time"].astype("int64").tolist() if "start_ns" not in tree else tree["start_ns"].tolist()
    )
    end = tree["end_time"].astype("int64").tolist() if "end_ns" not in tree else tree["end_ns"].tolist()
    known = set(ids)
    children: dict[str, list[int]] = defaultdict(list)
    roots = []
    for i, parent in enumerate(parents):
        if isinstance(parent, str) and parent in known and parent != ids[i]:
            children[parent].append(i)
        else:
            roots.append(i)
    for kids in children.values():
        kids.sort(key=lambda k: end[k], reverse=True)
    root = max(roots, key=lambda i: (end[i] - start[i], -i))
    path: set[str] = set()
    stack = [(root, end[root])]
    while stack:
        i, until = stack.pop()
        if ids[i] in path:
            continue
        path.add(ids[i])
        cursor = min(end[i], until)
        for k in children.get(ids[i], ()):
            if cursor <= start[i]:
                break
            if start[k] >= cursor:
                continue  # runs after the chosen later sibling started: it overlaps, it does not block
            stack.append((k, cursor))
            cursor = start[k]
    return path


def collapse_subtrees(tree: pd.DataFrame, collapsed: Iterable[str]) -> pd.DataFrame:
    """Hide the descendants of the ``collapsed`` span ids; ``hidden`` counts what each row hides."""
    collapsed = set(collapsed)
    if not collapsed or tree.empty:
        return tree.assign(hidden=0)
    keep, hidden = [], [0] * len(tree)
    depth = tree["depth"].tolist()
    ids = tree["span_id"].tolist()
    hiding_until: int | None = None
    owner = -1
    for i in range(len(tree)):
        if hiding_until is not None and depth[i] > hiding_until:
            hidden[owner] += 1
            continue
        hiding_until = None
        keep.append(i)
        if ids[i] in collapsed:
            hiding_until, owner = depth[i], i
    result = tree.assign(hidden=hidden).iloc[keep].reset_index(drop=True)
    return result


@dataclass
class SpanDetail:
    """One span's attributes, events, exception stack traces and links, ready to display."""

    span: dict[str, Any]
    attributes: dict[str, str]
    resource: dict[str, str]
    events: pd.DataFrame
    exceptions: list[dict[str, str]] = field(default_factory=list)
    links: pd.DataFrame = field(default_factory=pd.DataFrame)


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


def span_detail(tree: pd.DataFrame, span_id: str) -> SpanDetail:
    """Attributes, events (with offsets), exception stack traces and links of one span of ``tree``."""
    rows = tree[tree["span_id"] == span_id]
    if rows.empty:
        msg = f"span {span_id!r} is not in this trace; pick one of its {len(tree)} spans"
        raise QueryError(msg)
    row = rows.iloc[0]
    t0 = int(tree["start_ns"].min()) if "start_ns" in tree else int(tree["start_time"].astype("int64").min())
    events = []
    exceptions = []
    for event in _as_list(row.get("events")):
        attrs = _as_dict(event.get("attributes"))
        stamp = pd.Timestamp(event.get("timestamp"))
        offset = (stamp.value - t0) / 1e6 if not pd.isna(stamp) else np.nan
        events.append(
            {
                "offset_ms": offset,
                "name": event.get("name"),
                "attributes": json.dumps(attrs, ensure_ascii=False),
            }
        )
        if event.get("name") == "exception":
            exceptions.append(
                {
                    "type": attrs.get("exception.type", ""),
                    "message": attrs.get("exception.message", ""),
                    "stacktrace": attrs.get("exception.stacktrace", ""),
                }
            )
    links = pd.DataFrame(
        [
            {
                "trace_id": link.get("trace_id"),
                "span_id": link.get("span_id"),
                "attributes": json.dumps(_as_dict(link.get("attributes")), ensure_ascii=False),
            }
            for link in _as_list(row.get("links"))
        ],
        columns=["trace_id", "span_id", "attributes"],
    )
    scalar = {
        k: row[k]
        for k in (
            "trace_id",
            "span_id",
            "parent_span_id",
            "name",
            "kind",
            "service_name",
            "start_time",
            "end_time",
            "duration_ns",
            "status_code",
            "status_message",
            "scope_name",
        )
        if k in row.index
    }
    return SpanDetail(
        span=scalar,
        attributes=_as_dict(row.get("attributes")),
        resource=_as_dict(row.get("resource_attributes")),
        events=pd.DataFrame(events, columns=["offset_ms", "name", "attributes"]),
        exceptions=exceptions,
        links=links,
    )


def trace_logs(store: Store, trace_id: str, *, limit: int = 5000) -> pd.DataFrame:
    """The log records of a trace in time order."""
    sql = """SELECT timestamp, severity_text, severity_number, service_name, logger_name, body, span_id, attributes
             FROM logs WHERE trace_id = $trace_id ORDER BY timestamp LIMIT $limit"""
    return _frame(store, sql, {"trace_id": trace_id.strip().lower(), "limit": _limit(limit)})


def trace_timeline(tree: pd.DataFrame, logs: pd.DataFrame) -> pd.DataFrame:
    """Span starts, span events and logs of one trace interleaved by time, with offsets from the trace start."""
    if tree.empty:
        return pd.DataFrame(columns=["offset_ms", "kind", "what", "service_name", "span_id", "level"])
    t0 = int(tree["start_ns"].min())
    parts = [
        pd.DataFrame(
            {
                "offset_ms": tree["offset_ms"],
                "kind": "span",
                "what": [
                    "  " * min(int(d), 40) + str(n)
                    for d, n in zip(tree["depth"], tree["name"].fillna(""), strict=True)
                ],
                "service_name": tree["service_name"],
                "span_id": tree["span_id"],
                "level": tree["status_code"],
            }
        )
    ]
    if not logs.empty:
        parts.append(
            pd.DataFrame(
                {
                    "offset_ms": (logs["timestamp"].astype("int64") - t0) / 1e6,
                    "kind": "log",
                    "what": logs["body"].fillna("∅"),
                    "service_name": logs["service_name"],
                    "span_id": logs["span_id"],
                    "level": logs["severity_text"],
                }
            )
        )
    return pd.concat(parts, ignore_index=True).sort_values("offset_ms", kind="stable").reset_index(drop=True)


def span_profile(store: Store, *, trace_id: str, span_id: str, limit: int = 500) -> pd.DataFrame:
    """Profile rows (function totals and call edges) recorded for one span."""
    sql = """SELECT * EXCLUDE (date) FROM profiles WHERE trace_id = $trace_id AND span_id = $span_id
             ORDER BY caller NULLS FIRST, cumulative_time_s DESC LIMIT $limit"""
    return _frame(store, sql, {"trace_id": trace_id, "span_id": span_id, "limit": _limit(limit)})


# --------------------------------------------------------------------------- latency


LatencyGroup = Literal["operation", "version", "service", "all"]
_GROUPS = {
    "all": "'all'",
    "operation": "name",
    "version": "coalesce(resource_attributes['service.version'], '(none)')",
    "service": "service_name",
}


def _latency_where(
    service: Services,
    operation: str | Sequence[str] | None,
    start: TimeLike,
    end: TimeLike,
    versions: Sequence[str] | None,
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
        where.add("list_contains($versions, resource_attributes['service.version'])", versions=list(versions))
    return where


def _group(group_by: str) -> str:
    if group_by not in _GROUPS:
        msg = f"group_by must be one of {', '.join(_GROUPS)}, got {group_by!r}"
        raise QueryError(msg)
    return _GROUPS[group_by]


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
    where = _latency_where(service, operation, start, end, versions)
    with_vals = (
        f"WITH vals AS (SELECT {_group(group_by)} AS grp, duration_ns AS d FROM spans WHERE {where.sql()})"
    )
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
    where = _latency_where(service, operation, start, end, versions)
    sql = f"""SELECT {_group(group_by)} AS "group", count(*) AS spans, avg(duration_ns) / 1e6 AS mean_ms,
                     quantile_cont(duration_ns, [0.5, 0.9, 0.95, 0.99]) AS q, max(duration_ns) / 1e6 AS max_ms,
                     count_if(status_code = 'ERROR')::BIGINT AS errors
              FROM spans WHERE {where.sql()} GROUP BY ALL ORDER BY spans DESC LIMIT $limit"""
    frame = _frame(store, sql, {**where.params, "limit": _limit(limit)})
    return _split_quantiles(frame, "q", ("p50_ms", "p90_ms", "p95_ms", "p99_ms"))


def _bucket_width(start: datetime | None, end: datetime | None, buckets: int, fallback_s: float) -> int:
    span_s = (end - start).total_seconds() if start is not None and end is not None else fallback_s
    width = max(span_s / max(buckets, 1), 1.0)
    for nice in (1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400):
        if width <= nice:
            return nice
    return int(math.ceil(width / 86400) * 86400)


def _data_span_s(
    store: Store, table: str, column: str, where: _Where
) -> tuple[datetime | None, datetime | None]:
    frame = _frame(
        store,
        f"SELECT min({column}) AS lo, max({column}) AS hi FROM {table} WHERE {where.sql()}",
        where.params,
    )
    if frame.empty or pd.isna(frame["lo"].iloc[0]):
        return None, None
    return _ts(frame["lo"].iloc[0], "lo"), _ts(frame["hi"].iloc[0], "hi")


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
    where = _latency_where(service, operation, start, end, versions)
    lo, hi = _ts(start, "start"), _ts(end, "end")
    if lo is None or hi is None:
        lo, hi = _data_span_s(store, "spans", "start_time", where)
    width = _bucket_width(lo, hi, _limit(buckets, "buckets", 10_000), 3600)
    sql = f"""SELECT time_bucket(to_seconds($width), start_time) AS bucket, count(*) AS spans,
                     quantile_cont(duration_ns, [0.5, 0.95, 0.99]) AS q
              FROM spans WHERE {where.sql()} GROUP BY ALL ORDER BY bucket"""
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
    where = _latency_where(service, operation, start, end, versions)
    sql = f"""SELECT trace_id, span_id, service_name, name AS operation, start_time, duration_ns / 1e6 AS duration_ms,
                     status_code, resource_attributes['service.version'] AS version
              FROM spans WHERE {where.sql()} ORDER BY duration_ns DESC LIMIT $limit"""
    return _frame(store, sql, {**where.params, "limit": _limit(limit)})


# --------------------------------------------------------------------------- profiles


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


# --------------------------------------------------------------------------- alerts


def alert_events(
    store: Store,
    *,
    service: Services = None,
    severity: str | Sequence[str] | None = None,
    state: str | None = None,
    start: TimeLike = None,
    end: TimeLike = None,
    limit: int = 2000,
) -> pd.DataFrame:
    """Alert rows (firing and resolved) in time order."""
    where = _Where()
    names = _services(service)
    if names is not None:
        where.add(
            "(list_contains($services, service_name) OR list_contains($services, component))", services=names
        )
    where.time("timestamp", start, end)
    if severity:
        where.add(
            "list_contains($severities, severity)",
            severities=[severity] if isinstance(severity, str) else list(severity),
        )
    if state:
        where.add("state = $state", state=state)
    sql = f"""SELECT * EXCLUDE (date) FROM alerts WHERE {where.sql()} ORDER BY timestamp LIMIT $limit"""
    return _frame(store, sql, {**where.params, "limit": _limit(limit)})


def alert_windows(events: pd.DataFrame, *, until: TimeLike = None) -> pd.DataFrame:
    """Pair each firing row with the next resolved row of the same alert (``alert_id``, else title+component).

    ``end`` is the resolution time, or ``until`` (default: the last event) for alerts still firing.
    """
    columns = [
        "alert",
        "title",
        "severity",
        "component",
        "metric_name",
        "threshold",
        "peak_value",
        "start",
        "end",
        "resolved",
        "trace_id",
        "correlation_id",
    ]
    if events.empty:
        return pd.DataFrame(columns=columns)
    frame = events.sort_values("timestamp", kind="stable")
    stop = _ts(until, "until") or _ts(frame["timestamp"].max(), "until")
    open_: dict[str, dict[str, Any]] = {}
    windows: list[dict[str, Any]] = []
    for row in frame.itertuples(index=False):
        key = (
            row.alert_id if isinstance(row.alert_id, str) and row.alert_id else f"{row.title}|{row.component}"
        )
        stamp = _ts(row.timestamp, "timestamp")
        if row.state == "resolved":
            window = open_.pop(key, None)
            if window is not None:
                window.update(end=stamp, resolved=True)
                windows.append(window)
            continue
        if key in open_:
            window = open_[key]
            if row.current_value is not None and not pd.isna(row.current_value):
                window["peak_value"] = np.nanmax([window["peak_value"], row.current_value])
            continue
        open_[key] = {
            "alert": key,
            "title": row.title,
            "severity": row.severity,
            "component": row.component,
            "metric_name": row.metric_name,
            "threshold": row.threshold,
            "peak_value": row.current_value,
            "start": stamp,
            "end": stop,
            "resolved": False,
            "trace_id": row.trace_id,
            "correlation_id": row.correlation_id,
        }
    windows.extend(open_.values())
    result = pd.DataFrame(windows, columns=columns).sort_values("start", kind="stable").reset_index(drop=True)
    return result


# --------------------------------------------------------------------------- logs


def search_logs(
    store: Store,
    *,
    service: Services = None,
    min_level: str | int | None = None,
    logger: str | None = None,
    text: str | None = None,
    correlation_id: str | None = None,
    trace_id: str | None = None,
    start: TimeLike = None,
    end: TimeLike = None,
    limit: int = 500,
) -> pd.DataFrame:
    """Log records matching every criterion, newest first; ``min_level`` is a name (WARN) or a severity number."""
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
        where.add("contains(lower(body), $text)", text=text.lower())
    if correlation_id:
        where.add("attributes['correlation_id'] = $correlation_id", correlation_id=correlation_id)
    if trace_id:
        where.add("trace_id = $trace_id", trace_id=trace_id.strip().lower())
    sql = f"""SELECT timestamp, severity_text, severity_number, service_name, logger_name, body, trace_id, span_id,
                     attributes['correlation_id'] AS correlation_id, attributes
              FROM logs WHERE {where.sql()} ORDER BY timestamp DESC LIMIT $limit"""
    return _frame(store, sql, {**where.params, "limit": _limit(limit)})


def list_loggers(store: Store, *, service: Services = None, limit: int = 500) -> pd.DataFrame:
    """Logger names with their record counts."""
    where = _Where()
    where.services(service)
    sql = f"""SELECT logger_name, count(*) AS records FROM logs WHERE {where.sql()} AND logger_name IS NOT NULL
              GROUP BY ALL ORDER BY records DESC LIMIT $limit"""
    return _frame(store, sql, {**where.params, "limit": _limit(limit)})


# --------------------------------------------------------------------------- metrics


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


def now_utc() -> datetime:
    """The current time in UTC (one place, so pages and tests agree)."""
    return datetime.now(UTC)

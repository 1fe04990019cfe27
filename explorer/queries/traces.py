"""Trace search: filters over whole traces and the duration histogram of the matches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from explorer.errors import QueryError
from explorer.genai import LLM_CALLS_TABLE
from explorer.queries._sql import Services, TimeLike, _frame, _histogram, _limit, _Where
from explorer.queries.content import json_escaped, span_content_filter_sql
from explorer.store import SPANS_DEDICATED_VIEW, TRACE_SUMMARIES_VIEW, Store

TraceOrder = Literal["recent", "slowest", "errors", "cost", "tokens"]
_ORDERS: dict[str, str] = {
    "recent": "start_time DESC, trace_id",
    "slowest": "duration_ns DESC, trace_id",
    "errors": "error_count DESC, start_time DESC, trace_id",
    "cost": "cost_usd DESC NULLS LAST, start_time DESC, trace_id",
    "tokens": "total_tokens DESC NULLS LAST, start_time DESC, trace_id",
}
#: Model-call totals per trace from the ``llm_calls`` view (a call wrapped by another counts once).
_LLM_PER_TRACE = f"""SELECT trace_id, count(*) AS llm_calls, sum(total_tokens)::BIGINT AS total_tokens,
           sum(cost_usd) AS cost_usd
    FROM {LLM_CALLS_TABLE} WHERE kind IN ('llm', 'embedding') AND NOT nested GROUP BY trace_id"""


@dataclass(frozen=True)
class TraceFilter:
    """Trace search criteria. Span criteria (service, operation, attribute, ``status="error"``) must hold
    on one span: ``service=payment, status=error`` finds traces where a payment span failed, not traces
    where some other span did. ``status="ok"`` (no error span at all) and the duration range apply to the
    whole trace (first start to last end)."""

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
    min_cost_usd: float | None = None
    min_tokens: int | None = None
    content_text: str | None = None

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

    def cte(self, *, materialized: bool = False, rollup: bool = False) -> tuple[str, dict[str, Any]]:
        """SQL defining ``traces`` (one row per matching trace) and its parameters; ``materialized`` for a
        query that reads it twice; ``rollup`` (:meth:`Store.has_trace_summaries`) to sum the matched
        traces' rows of the per-trace rollup instead of aggregating their spans again."""
        if self.status not in (None, "", "error", "ok"):
            msg = f"status must be 'error', 'ok' or None, got {self.status!r}"
            raise QueryError(msg)
        span = _Where()
        span.services(self.service)
        span.time("start_time", self.start, self.end)
        if self.operation:
            span.add("name = $operation", operation=self.operation)
        if self.status == "error":
            span.add("status_code = 'ERROR'")
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
        # Without a span criterion, every trace would pass this one: a DISTINCT over every span for nothing.
        selectors = [f"SELECT DISTINCT trace_id FROM spans WHERE {span.sql()}"] if span.clauses else []
        if self.correlation_id:
            params["correlation_id"] = self.correlation_id
            selectors.append(
                f"SELECT trace_id FROM {SPANS_DEDICATED_VIEW} WHERE _correlation_id = $correlation_id "
                "UNION SELECT trace_id FROM logs WHERE attributes['correlation_id'] = $correlation_id "
                "AND trace_id IS NOT NULL"
            )
        if self.log_text:
            params["log_text"] = self.log_text.lower()
            selectors.append(
                "SELECT trace_id FROM logs WHERE trace_id IS NOT NULL AND contains(lower(body), $log_text)"
            )
        if self.min_cost_usd is not None or self.min_tokens is not None:
            params["min_cost_usd"] = float(self.min_cost_usd or 0)
            params["min_tokens"] = int(self.min_tokens or 0)
            selectors.append(
                f"SELECT trace_id FROM ({_LLM_PER_TRACE}) WHERE coalesce(cost_usd, 0) >= $min_cost_usd "
                "AND coalesce(total_tokens, 0) >= $min_tokens"
            )
        if self.content_text:
            # prompts, responses and tool arguments: span content attributes, GenAI log bodies and attributes
            needle = self.content_text.strip().lower()
            spans_in, logs_in = _Where(), _Where()
            spans_in.time("start_time", self.start, self.end)
            logs_in.time("timestamp", self.start, self.end)
            params.update(spans_in.params | logs_in.params, content=needle, content_json=json_escaped(needle))
            selectors.append(
                f"SELECT trace_id FROM spans WHERE {spans_in.sql()} "
                f"AND {span_content_filter_sql('$content', '$content_json' if json_escaped(needle) != needle else None)} "
                f"UNION SELECT trace_id FROM logs WHERE trace_id IS NOT NULL AND {logs_in.sql()} "
                "AND (contains(lower(body), $content) OR len(list_filter(map_values(attributes), "
                "lambda v: contains(lower(v), $content) OR contains(lower(v), $content_json))) > 0)"
            )
        having = []
        if self.status == "ok":
            having.append("error_count = 0")
        if self.min_duration_ms is not None:
            having.append("duration_ns >= $min_ns")
            params["min_ns"] = int(float(self.min_duration_ms) * 1e6)
        if self.max_duration_ms is not None:
            having.append("duration_ns <= $max_ns")
            params["max_ns"] = int(float(self.max_duration_ms) * 1e6)
        # Without any criterion every trace matches: skip the semi-join (a second scan of every span).
        filtered = bool(selectors)
        matched = " INTERSECT ".join(f"({s})" for s in selectors)
        # Only cheap aggregates here: they run over every matching trace. Root names and service lists
        # are looked up for the returned page of traces only (see search_traces).
        # A correlation id, log text, content text or trace id prefix finds a few traces, whose spans the
        # trace-sorted compacted files yield from a few row groups: cheaper than every rollup row
        # (10M spans: a correlation id 143 ms from spans, 303 ms from the rollup). Broad criteria (service,
        # operation, status, attribute, cost) match many traces, which the rollup sums from a tenth of the rows.
        few = bool(self.correlation_id or self.log_text or self.content_text or self.trace_id)
        if filtered and (few or not rollup):
            per_trace = """SELECT trace_id, min(start_time) AS start_time,
                           max(end_time_unix_nano) - min(start_time_unix_nano) AS duration_ns,
                           count(*) AS span_count,
                           coalesce(count_if(status_code = 'ERROR'), 0)::BIGINT AS error_count
                    FROM spans WHERE trace_id IN (SELECT trace_id FROM matched) GROUP BY trace_id"""
        else:
            # Every trace, or the matched ones: from the per-trace rollup of compacted files (one row per trace
            # and file) and the spans of newer files; the same sums as over their spans, from a tenth of the
            # rows (at 10M spans the second pass over every span was half of a filtered search).
            only_matched = "WHERE trace_id IN (SELECT trace_id FROM matched)" if filtered else ""
            per_trace = f"""SELECT trace_id, min(start_time) AS start_time,
                           max(end_time_unix_nano) - min(start_time_unix_nano) AS duration_ns,
                           sum(span_count)::BIGINT AS span_count, sum(error_count)::BIGINT AS error_count
                    FROM {TRACE_SUMMARIES_VIEW} {only_matched} GROUP BY trace_id"""
        sql = f"""
            {"matched AS (" + matched + ")," if filtered else ""}
            traces AS {"MATERIALIZED " if materialized else ""}(
                SELECT * FROM ({per_trace}) WHERE {" AND ".join(having) if having else "TRUE"}
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
    min_cost_usd: float | None = None,
    min_tokens: int | None = None,
    content_text: str | None = None,
    order: TraceOrder = "recent",
    limit: int = 100,
    with_llm: bool = False,
) -> pd.DataFrame:
    """Traces matching every given criterion, with root name/service, start, duration, span and error counts.

    ``matches`` is the number of matching traces before ``limit``. With ``with_llm`` (implied by the cost
    and token filters and orders) each trace also has ``llm_calls``, ``total_tokens`` and ``cost_usd``
    (NULL: no model call, or none reported usage / had a price). ``content_text`` finds traces by text in
    prompts, responses and tool arguments (span content attributes and log records, any GenAI convention).
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
        min_cost_usd=min_cost_usd,
        min_tokens=min_tokens,
        content_text=content_text,
    ).cte(materialized=True, rollup=store.has_trace_summaries())
    llm = with_llm or order in ("cost", "tokens") or min_cost_usd is not None or min_tokens is not None
    ranked = f"traces LEFT JOIN ({_LLM_PER_TRACE}) USING (trace_id)" if llm else "traces"
    sql = f"""WITH {cte},
        page AS MATERIALIZED (SELECT * FROM {ranked} ORDER BY {_ORDERS[order]} LIMIT $limit),
        counted AS (SELECT count(*) AS matches FROM traces),  -- not a window over every match: 1/3 faster
        details AS (
            SELECT trace_id,
                   coalesce(any_value(name) FILTER (WHERE parent_span_id IS NULL), arg_min(name, start_time)) AS root_name,
                   coalesce(any_value(service_name) FILTER (WHERE parent_span_id IS NULL),
                            arg_min(service_name, start_time)) AS root_service,
                   string_agg(DISTINCT service_name, ', ' ORDER BY service_name) AS services
            FROM spans WHERE trace_id IN (SELECT trace_id FROM page) GROUP BY trace_id
        )
        SELECT trace_id, root_name, root_service, start_time, duration_ns / 1e6 AS duration_ms, span_count,
               error_count, services,{" llm_calls, total_tokens, cost_usd," if llm else ""} matches
        FROM page LEFT JOIN details USING (trace_id), counted ORDER BY {_ORDERS[order]}"""
    return _frame(store, sql, {**params, "limit": _limit(limit)})


def trace_duration_histogram(
    store: Store, *, bins: int = 40, log_scale: bool = True, **filters: Any
) -> pd.DataFrame:
    """Histogram of whole-trace durations over every match of ``filters`` (the :class:`TraceFilter` fields)."""
    cte, params = TraceFilter(**filters).cte(rollup=store.has_trace_summaries())
    return _histogram(
        store,
        f"WITH {cte}, vals AS (SELECT 'traces' AS grp, duration_ns AS d FROM traces)",
        params,
        bins=bins,
        log_scale=log_scale,
    )

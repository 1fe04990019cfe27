"""LLM calls: the rows of the ``llm_calls`` view, usage (calls, errors, tokens, cost, latency) per model,
provider, service, agent, session, trace, operation or any attribute key, and usage over time.

Model calls (kinds ``llm`` and ``embedding``) are what is counted; a call seen twice because two
instrumentations wrapped it (``nested``: its parent is a model call too) counts once. Unknown usage stays
unknown: token sums skip it, ``unknown_usage`` counts it, and a group whose calls all lack usage has NULL
tokens, never 0. Cost is NULL when no call of the group is priced; ``unpriced_calls`` says how many known
usages had no price.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pandas as pd

from explorer.errors import QueryError
from explorer.genai import LLM_CALLS_TABLE
from explorer.queries._sql import (
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

#: ``by`` names of :func:`llm_usage` and their column in ``llm_calls``; anything else is an attribute key.
USAGE_GROUPS: dict[str, str] = {
    "model": "coalesce(model, '(unknown model)')",
    "request_model": "coalesce(request_model, model, '(unknown model)')",
    "provider": "coalesce(provider, '(unknown provider)')",
    "service": "service_name",
    "agent": "coalesce(agent_name, '(no agent)')",
    "session": "coalesce(session_id, '(no session)')",
    "user": "coalesce(user_id, '(no user)')",
    "conversation": "coalesce(conversation_id, '(no conversation)')",
    "trace": "trace_id",
    "operation": "coalesce(operation, kind)",
    "kind": "kind",
    "convention": "convention",
}
_ATTRIBUTE_KEY = re.compile(r"^[A-Za-z0-9_.:/@-]{1,200}$")

#: The columns of :func:`llm_calls` (the view's, without the raw attribute map).
CALL_COLUMNS = (
    "trace_id, span_id, parent_span_id, service_name, name, kind, operation, provider, request_model, "
    "response_model, model, input_tokens, output_tokens, cached_input_tokens, total_tokens, usage_unknown, "
    "cost_usd, price_model, start_time, duration_ns / 1e6 AS duration_ms, ttft_ms, status_code, error_type, "
    "is_error, agent_name, tool_name, session_id, user_id, conversation_id, convention, nested"
)


def attribute_key(key: str) -> str:
    """``key`` checked to be an attribute key (letters, digits, ``_.:/@-``), so it can be written into SQL."""
    if not isinstance(key, str) or not _ATTRIBUTE_KEY.match(key):
        msg = (
            f"by must be one of {', '.join(USAGE_GROUPS)} or an attribute key (letters, digits and _.:/@-), "
            f"got {key!r}"
        )
        raise QueryError(msg)
    return key


def _by(by: str) -> str:
    if by in USAGE_GROUPS:
        return USAGE_GROUPS[by]
    return f"coalesce(attributes['{attribute_key(by)}'], '(not set)')"


def _source(by: str | None) -> str:
    """The relation a grouping reads: the view (with its attribute maps) only for an attribute key."""
    return LLM_CALLS_TABLE if by is None or by in USAGE_GROUPS else "llm_calls"


def _where(
    *,
    service: Services,
    start: TimeLike,
    end: TimeLike,
    model: str | Sequence[str] | None = None,
    kinds: Sequence[str] | None = ("llm", "embedding"),
    trace_id: str | None = None,
    include_nested: bool = False,
) -> _Where:
    where = _Where()
    where.services(service)
    where.time("start_time", start, end)
    if kinds:
        where.add("list_contains($kinds, kind)", kinds=list(kinds))
    if not include_nested:
        where.add("NOT nested")
    if model:
        where.add("list_contains($models, model)", models=[model] if isinstance(model, str) else list(model))
    if trace_id:
        where.add("trace_id = $trace_id", trace_id=trace_id.strip().lower())
    return where


def llm_calls(
    store: Store,
    *,
    service: Services = None,
    start: TimeLike = None,
    end: TimeLike = None,
    model: str | Sequence[str] | None = None,
    kinds: Sequence[str] | None = None,
    trace_id: str | None = None,
    include_nested: bool = True,
    order: str = "recent",
    limit: int = 1000,
) -> pd.DataFrame:
    """Rows of ``llm_calls`` (every GenAI span: model calls, tools, agents, chains, retrievers), newest first.

    ``order``: ``recent``, ``cost``, ``tokens`` or ``slowest``. ``include_nested=False`` drops a model call
    that another instrumentation's model call wraps.
    """
    orders = {
        "recent": "start_time DESC",
        "cost": "cost_usd DESC NULLS LAST, start_time DESC",
        "tokens": "total_tokens DESC NULLS LAST, start_time DESC",
        "slowest": "duration_ns DESC NULLS LAST",
        "start": "start_time, span_id",
    }
    if order not in orders:
        msg = f"order must be one of {', '.join(orders)}, got {order!r}"
        raise QueryError(msg)
    where = _where(
        service=service,
        start=start,
        end=end,
        model=model,
        kinds=kinds,
        trace_id=trace_id,
        include_nested=include_nested,
    )
    sql = f"SELECT {CALL_COLUMNS} FROM {LLM_CALLS_TABLE} WHERE {where.sql()} ORDER BY {orders[order]} LIMIT $limit"
    return _frame(store, sql, {**where.params, "limit": _limit(limit)})


_SUMS = """count(*) AS calls,
    count_if(is_error)::BIGINT AS errors,
    count_if(is_error) / count(*) AS error_rate,
    sum(input_tokens)::BIGINT AS input_tokens,
    sum(output_tokens)::BIGINT AS output_tokens,
    sum(cached_input_tokens)::BIGINT AS cached_input_tokens,
    sum(total_tokens)::BIGINT AS total_tokens,
    count_if(usage_unknown)::BIGINT AS unknown_usage,
    sum(cost_usd) AS cost_usd,
    count_if(NOT usage_unknown AND price_model IS NULL)::BIGINT AS unpriced_calls,
    sum(duration_ns) / 1e6 AS llm_time_ms"""
#: The three latency percentiles from one sort of the durations: three ``quantile_cont`` calls sort three
#: times (1M calls: 41 -> 22 ms). :data:`_FROM_Q` names them, one level up.
_QUANTILES = "quantile_cont(duration_ns, [0.5, 0.95, 0.99]) AS _q"
_FROM_Q = "_q[1] / 1e6 AS p50_ms, _q[2] / 1e6 AS p95_ms, _q[3] / 1e6 AS p99_ms"
_RANGE = "min(start_time) AS first_call, max(start_time) AS last_call"
#: The sums each order of :func:`llm_usage` sorts by, written as in :data:`_SUMS` (so they rank alike).
_RANKED_BY = {
    "cost": "sum(cost_usd) AS cost_usd, sum(total_tokens)::BIGINT AS total_tokens, count(*) AS calls",
    "tokens": "sum(total_tokens)::BIGINT AS total_tokens, count(*) AS calls",
    "calls": "count(*) AS calls",
    "errors": "count_if(is_error)::BIGINT AS errors, count(*) AS calls",
    "llm_time": "sum(duration_ns) / 1e6 AS llm_time_ms",
}


def llm_usage(
    store: Store,
    *,
    by: str = "model",
    service: Services = None,
    start: TimeLike = None,
    end: TimeLike = None,
    model: str | Sequence[str] | None = None,
    order: str = "cost",
    limit: int = 500,
) -> pd.DataFrame:
    """Model-call usage per group: ``group``, calls, errors, error_rate, input/output/cached/total tokens,
    unknown_usage (calls without usage), cost_usd, unpriced_calls, p50/p95/p99 latency (ms), first/last call.

    ``by``: model, provider, service, agent, session, user, conversation, trace, operation, kind,
    convention, or an attribute key of the call spans. ``order``: cost, tokens, calls, slowest (p95),
    errors, llm_time (summed call time: for ``by="trace"``, the traces that waited longest on models).
    """
    orders = {
        "cost": 'cost_usd DESC NULLS LAST, total_tokens DESC NULLS LAST, calls DESC, "group"',
        "tokens": 'total_tokens DESC NULLS LAST, calls DESC, "group"',
        "calls": 'calls DESC, "group"',
        "slowest": 'p95_ms DESC NULLS LAST, "group"',
        "errors": 'errors DESC, calls DESC, "group"',
        "llm_time": 'llm_time_ms DESC NULLS LAST, "group"',
    }
    if order not in orders:
        msg = f"order must be one of {', '.join(orders)}, got {order!r}"
        raise QueryError(msg)
    where = _where(service=service, start=start, end=end, model=model)
    params = {**where.params, "limit": _limit(limit)}
    if order == "slowest":
        sql = f"""SELECT * EXCLUDE (_q, first_call, last_call), {_FROM_Q}, first_call, last_call FROM (
                      SELECT {_by(by)} AS "group", {_SUMS}, {_QUANTILES}, {_RANGE}
                      FROM {_source(by)} WHERE {where.sql()} GROUP BY ALL
                  ) ORDER BY {orders[order]} LIMIT $limit"""
        return _frame(store, sql, params)
    # By trace there is a group per trace (~1M on 10M spans): rank the groups by the sums the order needs
    # first, then compute every aggregate (percentiles the costliest) for the groups shown only (10M: ~3x
    # faster than all sums for every group).
    sql = f"""
        WITH f AS NOT MATERIALIZED (
            SELECT {_by(by)} AS "group", is_error, input_tokens, output_tokens, cached_input_tokens,
                   total_tokens, usage_unknown, cost_usd, price_model, duration_ns, start_time
            FROM {_source(by)} WHERE {where.sql()}
        ),
        top AS MATERIALIZED (
            SELECT "group", {_RANKED_BY[order]} FROM f GROUP BY "group" ORDER BY {orders[order]} LIMIT $limit
        ),
        shown AS (
            SELECT "group", {_SUMS}, {_QUANTILES}, {_RANGE}
            FROM f WHERE "group" IN (SELECT "group" FROM top) GROUP BY "group"
        )
        SELECT * EXCLUDE (_q, first_call, last_call), {_FROM_Q}, first_call, last_call
        FROM shown ORDER BY {orders[order]}"""
    return _frame(store, sql, params)


def llm_totals(
    store: Store, *, service: Services = None, start: TimeLike = None, end: TimeLike = None
) -> dict[str, Any]:
    """One summary of the model calls: calls, errors, error_rate, tokens, unknown_usage, cost_usd,
    unpriced_calls, models, traces (0 calls and None tokens/cost on a store without GenAI spans)."""
    where = _where(service=service, start=start, end=end)
    sql = f"""SELECT * EXCLUDE (_q), {_FROM_Q} FROM (
                  SELECT {_SUMS}, {_QUANTILES}, {_RANGE}, count(DISTINCT model) AS models,
                         count(DISTINCT trace_id) AS traces
                  FROM {LLM_CALLS_TABLE} WHERE {where.sql()})"""
    row = _frame(store, sql, where.params).iloc[0].to_dict()
    totals = {k: (None if _missing(v) else v) for k, v in row.items()}
    for count in ("errors", "unknown_usage", "unpriced_calls"):
        totals[count] = int(totals[count] or 0)
    return totals


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def llm_usage_over_time(
    store: Store,
    *,
    by: str | None = None,
    service: Services = None,
    start: TimeLike = None,
    end: TimeLike = None,
    buckets: int = 60,
    limit_groups: int = 8,
) -> pd.DataFrame:
    """Calls, errors, tokens and cost per time bucket (and per group of ``by``, its ``limit_groups``
    costliest groups, the rest as ``(other)``): bucket, group, calls, errors, input/output/total tokens,
    unknown_usage, cost_usd. The bucket width is rounded to a readable size."""
    where = _where(service=service, start=start, end=end)
    lo, hi = _ts(start, "start"), _ts(end, "end")
    if lo is None or hi is None:
        lo, hi = _data_span_s(store, LLM_CALLS_TABLE, "start_time", where)
    width = _bucket_width(lo, hi, _limit(buckets, "buckets", 10_000), 3600)
    group = _by(by) if by else "'all'"
    per_bucket = _per_bucket(
        "start_time",
        """CASE WHEN grp IN (SELECT grp FROM top) THEN grp ELSE '(other)' END AS "group",
           count(*) AS calls, count_if(is_error)::BIGINT AS errors,
           sum(input_tokens)::BIGINT AS input_tokens, sum(output_tokens)::BIGINT AS output_tokens,
           sum(total_tokens)::BIGINT AS total_tokens, count_if(usage_unknown)::BIGINT AS unknown_usage,
           sum(cost_usd) AS cost_usd""",
        "f",
        then='"group"',
    )
    sql = f"""
        WITH f AS (SELECT {group} AS grp, * FROM {_source(by)} WHERE {where.sql()}),
        top AS (SELECT grp FROM f GROUP BY grp
                ORDER BY sum(cost_usd) DESC NULLS LAST, sum(total_tokens) DESC NULLS LAST, count(*) DESC, grp
                LIMIT $top)
        {per_bucket}
    """
    top = _limit(limit_groups, "limit_groups", 1000)
    return _frame(store, sql, {**where.params, "width": width, "top": top})


def unpriced_models(
    store: Store, *, service: Services = None, start: TimeLike = None, end: TimeLike = None
) -> pd.DataFrame:
    """Models with known usage but no price (their cost is NULL): model, provider, calls, total_tokens."""
    where = _where(service=service, start=start, end=end)
    sql = f"""SELECT coalesce(model, '(unknown model)') AS model, any_value(provider) AS provider,
                     count(*) AS calls, sum(total_tokens)::BIGINT AS total_tokens
              FROM {LLM_CALLS_TABLE} WHERE {where.sql()} AND NOT usage_unknown AND price_model IS NULL
              GROUP BY ALL ORDER BY calls DESC, model"""
    return _frame(store, sql, where.params)


def trace_llm_spans(store: Store, trace_id: str) -> pd.DataFrame:
    """Model, tokens and cost per GenAI span of one trace (for the trace view): span_id, kind, model,
    input/output/total tokens, usage_unknown, cost_usd, nested, convention, agent_name, tool_name, ttft_ms."""
    sql = f"""SELECT span_id, kind, model, provider, input_tokens, output_tokens, cached_input_tokens,
                    total_tokens, usage_unknown, cost_usd, price_model, nested, convention, agent_name,
                    tool_name, ttft_ms, error_type
             FROM {LLM_CALLS_TABLE} WHERE trace_id = $trace_id ORDER BY start_time, span_id"""
    return _frame(store, sql, {"trace_id": str(trace_id).strip().lower()})


def trace_llm_totals(spans: pd.DataFrame) -> dict[str, Any]:
    """A trace's model-call totals from :func:`trace_llm_spans`: calls, tokens, cost, unknown usage (a wrapped
    duplicate counts once; tokens and cost None when no call reported them)."""
    calls = spans[spans["kind"].isin(["llm", "embedding"]) & ~spans["nested"].astype(bool)]

    def total(column: str) -> Any:
        known = calls[column].dropna()
        return None if known.empty else known.sum()

    return {
        "calls": len(calls),
        "input_tokens": total("input_tokens"),
        "output_tokens": total("output_tokens"),
        "total_tokens": total("total_tokens"),
        "cost_usd": total("cost_usd"),
        "unknown_usage": int(calls["usage_unknown"].astype(bool).sum()),
        "models": sorted(calls["model"].dropna().unique().tolist()),
    }

"""Sessions: traces grouped by the session id of whichever convention set it, and a session as its turns.

A trace belongs to the session named by the first of its spans (in time) that carries ``session.id``,
``gen_ai.conversation.id`` or OpenLLMetry's ``traceloop.association.properties.session_id``. Tokens are
summed over the trace's LLM spans (every convention's token keys); once issue 13's ``llm_calls`` view
lands, tokens and cost could come from it (it also de-duplicates a call instrumented twice, which this
sum counts twice, and prices calls that carry no cost attribute).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from explorer.errors import QueryError
from explorer.queries._sql import Services, TimeLike, _as_dict, _as_list, _frame, _is_null, _limit, _Where
from explorer.queries.messages import LLM_SPAN_SQL, conversation
from explorer.store import Store

SESSION_SQL = (
    "coalesce(attributes['session.id'], attributes['gen_ai.conversation.id'], "
    "attributes['traceloop.association.properties.session_id'])"
)
USER_SQL = (
    "coalesce(attributes['user.id'], attributes['enduser.id'], "
    "attributes['traceloop.association.properties.user_id'], attributes['gen_ai.user.id'])"
)
INPUT_TOKENS_SQL = (
    "coalesce(TRY_CAST(attributes['gen_ai.usage.input_tokens'] AS BIGINT), "
    "TRY_CAST(attributes['gen_ai.usage.prompt_tokens'] AS BIGINT), "
    "TRY_CAST(attributes['llm.token_count.prompt'] AS BIGINT))"
)
OUTPUT_TOKENS_SQL = (
    "coalesce(TRY_CAST(attributes['gen_ai.usage.output_tokens'] AS BIGINT), "
    "TRY_CAST(attributes['gen_ai.usage.completion_tokens'] AS BIGINT), "
    "TRY_CAST(attributes['llm.token_count.completion'] AS BIGINT))"
)
COST_SQL = "coalesce(TRY_CAST(attributes['gen_ai.usage.cost'] AS DOUBLE), TRY_CAST(attributes['llm.cost.total'] AS DOUBLE))"


def _per_trace(where: _Where, extra: str = "", having: str = "TRUE") -> str:
    """SQL of one row per trace that has a session: its session, user, times, errors, LLM calls, tokens.

    One pass reads the attributes (session, user, LLM flag, tokens) and keeps only the spans that carry
    one of them (``p``); a second pass over the session traces reads no attributes (times, errors,
    services). ``having`` narrows the traces (e.g. to one session) before the second pass."""
    return f"""
        a AS (
            SELECT trace_id, span_id, start_time, attributes, {SESSION_SQL} AS sid, {USER_SQL} AS uid,
                   {LLM_SPAN_SQL} AS is_llm
            FROM spans WHERE {where.sql()}
        ),
        p AS (
            SELECT trace_id, arg_min(sid, start_time) FILTER (WHERE sid IS NOT NULL) AS session_id,
                   arg_min(uid, start_time) FILTER (WHERE uid IS NOT NULL) AS user_id,
                   count_if(is_llm) AS llm_calls,
                   sum(CASE WHEN is_llm THEN {INPUT_TOKENS_SQL} END) AS input_tokens,
                   sum(CASE WHEN is_llm THEN {OUTPUT_TOKENS_SQL} END) AS output_tokens,
                   sum(CASE WHEN is_llm THEN {COST_SQL} END) AS cost
                   {extra}
            FROM a WHERE sid IS NOT NULL OR uid IS NOT NULL OR is_llm
            GROUP BY trace_id HAVING session_id IS NOT NULL AND {having}
        ),
        t AS (
            SELECT p.*, r.* EXCLUDE (trace_id) FROM p JOIN (
                SELECT trace_id, min(start_time) AS start_time, max(end_time) AS end_time, count(*) AS spans,
                       count_if(status_code = 'ERROR') AS errors,
                       coalesce(arg_min(name, start_time) FILTER (WHERE parent_span_id IS NULL),
                                arg_min(name, start_time)) AS root_name,
                       list(DISTINCT service_name) AS service_list
                FROM spans WHERE {where.sql()} AND trace_id IN (SELECT trace_id FROM p) GROUP BY trace_id
            ) AS r USING (trace_id)
        )"""


def sessions(
    store: Store,
    *,
    user_id: str | None = None,
    service: Services = None,
    start: TimeLike = None,
    end: TimeLike = None,
    limit: int = 200,
) -> pd.DataFrame:
    """Sessions, most recent first: session and user ids, first/last time, turns (traces), LLM calls,
    tokens, cost (when recorded), errors and duration (first start to last end); ``user_id`` filters."""
    where = _Where()
    where.services(service)
    where.time("start_time", start, end)
    having = "TRUE"
    params: dict[str, Any] = {**where.params, "limit": _limit(limit)}
    if user_id:
        having = "list_contains(users, $user_id)"
        params["user_id"] = user_id
    sql = f"""WITH {_per_trace(where)}
        SELECT * FROM (
            SELECT session_id, string_agg(DISTINCT user_id, ', ' ORDER BY user_id) AS user_id,
                   list(DISTINCT user_id) FILTER (WHERE user_id IS NOT NULL) AS users,
                   min(start_time) AS first_time, max(end_time) AS last_time, count(*) AS turns,
                   sum(llm_calls)::BIGINT AS llm_calls, sum(input_tokens)::BIGINT AS input_tokens,
                   sum(output_tokens)::BIGINT AS output_tokens,
                   (coalesce(sum(input_tokens), 0) + coalesce(sum(output_tokens), 0))::BIGINT AS total_tokens,
                   sum(cost) AS cost, sum(errors)::BIGINT AS errors,
                   (epoch_ns(max(end_time)) - epoch_ns(min(start_time))) / 1e6 AS duration_ms,
                   array_to_string(list_sort(list_distinct(flatten(list(service_list)))), ', ') AS services
            FROM t GROUP BY session_id
        ) WHERE {having}
        ORDER BY last_time DESC, session_id LIMIT $limit"""
    frame = _frame(store, sql, params)
    return frame.drop(columns=["users"])


def session_traces(
    store: Store, session_id: str, *, start: TimeLike = None, end: TimeLike = None, limit: int = 500
) -> pd.DataFrame:
    """The turns of one session in time order: each trace with its times, errors, LLM calls and tokens, the
    user's input (the last user message sent to its first LLM call) and the final answer (the output of its
    last LLM call) when content was recorded. ``start``/``end`` (e.g. the session's first and last time from
    :func:`sessions`) let the search read only those days' files."""
    if not session_id or not str(session_id).strip():
        msg = "session_traces needs a session id (from the session.id or gen_ai.conversation.id attribute)"
        raise QueryError(msg)
    # Find the session's traces first (one pass over the attributes), then read only their spans: a
    # constant id list lets the Parquet scan skip the other rows' attribute maps.
    window = _Where()
    window.time("start_time", start, end)
    found = _frame(
        store,
        f"SELECT DISTINCT trace_id FROM spans WHERE {window.sql()} AND {SESSION_SQL} = $session_id LIMIT $cap",
        {**window.params, "session_id": str(session_id), "cap": _limit(limit) * 4},
    )
    where = _Where()
    where.add(
        "trace_id IN (SELECT unnest($traces))", traces=found["trace_id"].tolist(), session_id=str(session_id)
    )
    extra = """,
                   arg_min(attributes, start_time) FILTER (WHERE is_llm) AS first_llm,
                   arg_min(span_id, start_time) FILTER (WHERE is_llm) AS first_llm_id,
                   arg_max(attributes, start_time) FILTER (WHERE is_llm) AS last_llm,
                   arg_max(span_id, start_time) FILTER (WHERE is_llm) AS last_llm_id"""
    sql = f"""WITH {_per_trace(where, extra, "session_id = $session_id")}
        SELECT * FROM t ORDER BY start_time, trace_id LIMIT $limit"""
    turns = _frame(store, sql, {**where.params, "limit": _limit(limit)})
    columns = [
        "turn",
        "trace_id",
        "start_time",
        "duration_ms",
        "root_name",
        "user_id",
        "llm_calls",
        "input_tokens",
        "output_tokens",
        "errors",
        "input",
        "answer",
        "services",
    ]
    if turns.empty:
        return pd.DataFrame(columns=columns)
    logs = _genai_logs(
        store, turns["trace_id"].tolist(), turns["first_llm_id"].tolist() + turns["last_llm_id"].tolist()
    )
    inputs, answers = [], []
    for row in turns.itertuples():
        inputs.append(_last_user(row.first_llm, logs.get(row.first_llm_id)))
        answers.append(_answer(row.last_llm, logs.get(row.last_llm_id)))
    turns = turns.assign(
        turn=range(1, len(turns) + 1),
        duration_ms=(turns["end_time"] - turns["start_time"]).dt.total_seconds() * 1e3,
        input=inputs,
        answer=answers,
        services=[", ".join(sorted(v)) for v in turns["service_list"]],
    )
    for name in ("llm_calls", "input_tokens", "output_tokens", "errors"):
        turns[name] = turns[name].astype("Int64")
    return turns[columns]


def _genai_logs(store: Store, trace_ids: list[str], span_ids: list[Any]) -> dict[str, pd.DataFrame]:
    """The GenAI event log records of the given spans, per span id (one query for the whole session)."""
    wanted = [s for s in span_ids if not _is_null(s)]
    if not wanted:
        return {}
    frame = _frame(
        store,
        """SELECT span_id, coalesce(event_name, attributes['event.name']) AS event_name, body, attributes
           FROM logs WHERE list_contains($traces, trace_id) AND list_contains($spans, span_id)
             AND starts_with(coalesce(event_name, attributes['event.name'], ''), 'gen_ai.')
           ORDER BY timestamp, observed_timestamp NULLS LAST""",
        {"traces": trace_ids, "spans": wanted},
    )
    return {str(k): g for k, g in frame.groupby("span_id", sort=False)}


def _last_user(attributes: Any, logs: pd.DataFrame | None) -> str | None:
    if _is_null(attributes):
        return None
    frame = conversation(_as_dict(attributes), (), logs)
    users = frame[(frame["direction"] == "input") & (frame["role"] == "user") & frame["recorded"]]
    return None if users.empty else users["content"].iloc[-1]


def _answer(attributes: Any, logs: pd.DataFrame | None) -> str | None:
    if _is_null(attributes):
        return None
    frame = conversation(_as_dict(attributes), (), logs)
    out = frame[(frame["direction"] == "output") & frame["recorded"]]
    texts = [str(c) for c in out["content"] if not _is_null(c) and c]
    if texts:
        return "\n\n".join(texts)
    calls = [f"{c.get('name')}({c.get('arguments')})" for calls in out["tool_calls"] for c in _as_list(calls)]
    return ("calls " + ", ".join(calls)) if calls else None

"""Text search over what the models were given and answered: log bodies, log attributes and the span
attributes that hold prompts, responses and tool arguments (every GenAI convention's keys)."""

from __future__ import annotations

import json

import pandas as pd

from explorer.errors import QueryError
from explorer.queries._sql import Services, TimeLike, _frame, _limit, _Where
from explorer.queries.messages import CONTENT_KEYS
from explorer.store import Store

_EXACT = [k for k in CONTENT_KEYS if not k.endswith(".")]
_PREFIXES = [k for k in CONTENT_KEYS if k.endswith(".")]


def content_key_sql(key: str = "e.key") -> str:
    """SQL predicate: the attribute ``key`` holds message content (a fixed list, no user input)."""
    exact = ", ".join(f"'{k}'" for k in _EXACT)
    prefixes = " OR ".join(f"starts_with({key}, '{p}')" for p in _PREFIXES)
    return f"({key} IN ({exact}) OR {prefixes})"


def span_content_match_sql(param: str = "$text", escaped: str = "$text_json") -> str:
    """SQL over a ``spans`` row: the content attributes whose value contains the lower-cased ``param``
    (or its JSON-escaped form ``escaped``: JSON attributes may keep ``é`` as ``\\u00e9``)."""
    return (
        f"list_filter(map_entries(attributes), lambda e: {content_key_sql()} "
        f"AND (contains(lower(e.value), {param}) OR contains(lower(e.value), {escaped})))"
    )


def span_content_filter_sql(param: str = "$text", escaped: str | None = "$text_json") -> str:
    """SQL predicate over a ``spans`` row, cheap first: the text anywhere in the attribute values joined
    (one string test a row), then in a content key (the per-entry lambda, on the rows that passed)."""
    forms = [param] + ([escaped] if escaped else [])
    joined = "lower(array_to_string(map_values(attributes), chr(10)))"
    anywhere = " OR ".join(f"contains({joined}, {f})" for f in forms)
    entries = " OR ".join(f"contains(lower(e.value), {f})" for f in forms)
    return (
        f"(({anywhere}) AND len(list_filter(map_entries(attributes), "
        f"lambda e: {content_key_sql()} AND ({entries}))) > 0)"
    )


def json_escaped(needle: str) -> str:
    """``needle`` as it appears inside a JSON string written with ASCII escapes (lower-cased)."""
    return json.dumps(needle)[1:-1].lower()


def _needle(text: str) -> str:
    needle = (text or "").strip().lower()
    if len(needle) < 2:
        msg = f"content search needs at least 2 characters, got {text!r}"
        raise QueryError(msg)
    return needle


def search_content(
    store: Store,
    text: str,
    *,
    service: Services = None,
    start: TimeLike = None,
    end: TimeLike = None,
    spans: bool = True,
    logs: bool = True,
    limit: int = 200,
) -> pd.DataFrame:
    """Where ``text`` occurs (case-insensitive) in span content attributes, log bodies or log attributes,
    newest first: time, trace and span ids, service, span or log name, ``found_in`` (the attribute key or
    ``body``) and a ``snippet`` around the first hit. Bounded by ``limit`` and the time window."""
    needle = _needle(text)
    escaped = json_escaped(needle)
    parts = []
    span_where = _Where()
    span_where.services(service)
    span_where.time("start_time", start, end)
    log_where = _Where()
    log_where.services(service)
    log_where.time("timestamp", start, end)
    params = {**span_where.params, **log_where.params, "text": needle, "text_json": escaped}
    params["limit"] = _limit(limit, maximum=10_000)
    # Cheap tests first (see span_content_filter_sql); the JSON-escaped form only when it differs.
    second = "$text_json" if escaped != needle else None
    joined = "lower(array_to_string(map_values(attributes), chr(10)))"
    anywhere = f"(contains({joined}, $text)" + (f" OR contains({joined}, $text_json))" if second else ")")
    if spans:
        parts.append(
            f"""SELECT * FROM (
                  SELECT start_time AS time, trace_id, span_id, service_name, 'span' AS signal, name,
                         {span_content_match_sql()}[1] AS hit
                  FROM spans WHERE {span_where.sql()} AND {span_content_filter_sql("$text", second)})
                WHERE hit IS NOT NULL"""
        )
    if logs:
        parts.append(
            f"""SELECT * FROM (
                  SELECT timestamp AS time, trace_id, span_id, service_name, 'log' AS signal,
                         coalesce(event_name, attributes['event.name'], logger_name) AS name,
                         CASE WHEN contains(lower(body), $text) THEN {{'key': 'body', 'value': body}}
                              ELSE list_filter(map_entries(attributes), lambda e: contains(lower(e.value), $text)
                                                  OR contains(lower(e.value), $text_json))[1]
                         END AS hit
                  FROM logs WHERE {log_where.sql()} AND (contains(lower(body), $text) OR {anywhere}))
                WHERE hit IS NOT NULL"""
        )
    if not parts:
        msg = "search_content needs spans=True or logs=True"
        raise QueryError(msg)
    union = " UNION ALL ".join(f"({p})" for p in parts)
    sql = f"""SELECT time, trace_id, span_id, service_name, signal, name, hit.key AS found_in,
                     hit.value AS value
              FROM ({union}) ORDER BY time DESC LIMIT $limit"""
    frame = _frame(store, sql, params)
    frame["snippet"] = [_snippet(v, needle) for v in frame.pop("value")]
    return frame


def _snippet(value: object, needle: str, width: int = 80) -> str:
    """The text around the first occurrence of ``needle``, with ellipses where cut."""
    text = "" if value is None else str(value)
    at = text.lower().find(needle)
    if at < 0:
        return text[: 2 * width]
    lo, hi = max(at - width, 0), min(at + len(needle) + width, len(text))
    return ("…" if lo else "") + text[lo:hi] + ("…" if hi < len(text) else "")

"""The conversation of an LLM span, read from whichever GenAI convention recorded it.

Prompt and answer content reaches the store in four shapes (tests/data/genai/CONVENTIONS.md):

- JSON span attributes: ``gen_ai.input.messages`` / ``gen_ai.output.messages`` / ``gen_ai.system_instructions``
  (OTel GenAI semconv, latest; OpenLLMetry 0.62), messages of typed parts;
- flattened span attributes: ``llm.input_messages.N.message.*`` / ``llm.output_messages.N.message.*`` and
  ``input.value`` / ``output.value`` (OpenInference), ``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*``
  (OpenLLMetry before 0.60);
- span events named like the GenAI events (``gen_ai.user.message``, ``gen_ai.choice``,
  ``gen_ai.content.prompt`` / ``gen_ai.content.completion``, ``gen_ai.client.inference.operation.details``),
  content in the event's attributes;
- log records of the same names (``event_name`` column or ``attributes['event.name']``): content in the
  body (a JSON object) or, with an empty body, in the attributes.

:func:`conversation` turns one span's attributes, events and logs into rows; :func:`messages` reads them
from the store. The rows come input first, then output. Once issue 13's ``llm_calls`` view lands,
:func:`is_llm_span` and the SQL in :data:`LLM_SPAN_SQL` could read its ``is_llm`` flag instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from explorer.queries._sql import _as_dict, _as_list, _frame, _is_null, _limit
from explorer.store import Store

#: Columns of :func:`messages` / :func:`conversation`.
MESSAGE_COLUMNS = [
    "index",
    "direction",
    "role",
    "content",
    "parts",
    "tool_calls",
    "tool_call_id",
    "finish_reason",
    "source",
    "recorded",
]

#: What the panel says when an LLM span carries no content (instrumentations record it only when asked).
NOT_RECORDED = (
    "content not recorded: the instrumentation keeps prompts and answers only when content capture is on "
    "(docs/explorer.md, 'Content capture')"
)

#: SQL predicate over a span row's ``attributes``: the span is an LLM call in one of the conventions.
LLM_SPAN_SQL = """(attributes['gen_ai.operation.name'] IN ('chat', 'text_completion', 'generate_content', 'completion')
    OR attributes['llm.request.type'] IN ('chat', 'completion')
    OR attributes['openinference.span.kind'] = 'LLM'
    OR attributes['traceloop.span.kind'] = 'llm')"""

#: SQL predicate: the span is a tool execution.
TOOL_SPAN_SQL = """(attributes['gen_ai.operation.name'] = 'execute_tool'
    OR attributes['openinference.span.kind'] = 'TOOL'
    OR attributes['traceloop.span.kind'] = 'tool'
    OR attributes['gen_ai.tool.name'] IS NOT NULL
    OR attributes['tool.name'] IS NOT NULL)"""

#: SQL predicate: the span is an agent invocation.
AGENT_SPAN_SQL = """(attributes['gen_ai.operation.name'] IN ('invoke_agent', 'create_agent')
    OR attributes['openinference.span.kind'] = 'AGENT'
    OR attributes['traceloop.span.kind'] = 'agent'
    OR attributes['gen_ai.agent.name'] IS NOT NULL)"""

#: Span attribute keys (or key prefixes, ending in ".") that hold message content; content search reads these.
CONTENT_KEYS = (
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.prompt",
    "gen_ai.completion",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "input.value",
    "output.value",
    "traceloop.entity.input",
    "traceloop.entity.output",
    "llm.input_messages.",
    "llm.output_messages.",
    "gen_ai.prompt.",
    "gen_ai.completion.",
)

_ROLE_OF_EVENT = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
_OUTPUT_EVENTS = {"gen_ai.choice"}
_DETAIL_EVENTS = {"gen_ai.client.inference.operation.details"}
_LEGACY_EVENTS = {"gen_ai.content.prompt": "gen_ai.prompt", "gen_ai.content.completion": "gen_ai.completion"}
GENAI_EVENT_NAMES = frozenset({*_ROLE_OF_EVENT, *_OUTPUT_EVENTS, *_DETAIL_EVENTS, *_LEGACY_EVENTS})
_NUMBERED = re.compile(r"^(?P<n>\d+)\.(?P<rest>.+)$")


def is_llm_span(attributes: Mapping[str, Any]) -> bool:
    """Whether a span's attributes mark it as an LLM call (the Python twin of :data:`LLM_SPAN_SQL`)."""
    return (
        attributes.get("gen_ai.operation.name")
        in ("chat", "text_completion", "generate_content", "completion")
        or attributes.get("llm.request.type") in ("chat", "completion")
        or attributes.get("openinference.span.kind") == "LLM"
        or attributes.get("traceloop.span.kind") == "llm"
        or any(
            key.startswith(("gen_ai.input.messages", "llm.input_messages.", "gen_ai.prompt."))
            for key in attributes
        )
    )


def is_tool_span(attributes: Mapping[str, Any]) -> bool:
    """Whether a span's attributes mark it as a tool execution (the twin of :data:`TOOL_SPAN_SQL`)."""
    return (
        attributes.get("gen_ai.operation.name") == "execute_tool"
        or attributes.get("openinference.span.kind") == "TOOL"
        or attributes.get("traceloop.span.kind") == "tool"
        or "gen_ai.tool.name" in attributes
        or "tool.name" in attributes
    )


def tool_io(attributes: Mapping[str, Any], name: str | None = None) -> dict[str, str | None]:
    """A tool span's name, call id, arguments and result from whichever convention recorded them."""

    def first(*keys: str) -> str | None:
        for key in keys:
            value = attributes.get(key)
            if not _is_null(value) and value != "":
                return str(value)
        return None

    return {
        "name": first("gen_ai.tool.name", "tool.name", "traceloop.entity.name") or name,
        "call_id": first("gen_ai.tool.call.id", "tool_call.id", "tool.call_id"),
        "arguments": first(
            "gen_ai.tool.call.arguments", "tool.parameters", "input.value", "traceloop.entity.input"
        ),
        "result": first("gen_ai.tool.call.result", "output.value", "traceloop.entity.output"),
    }


# --- parsing helpers -------------------------------------------------------------------------------------------


def _json(value: Any) -> Any:
    """A JSON value from text (the store keeps lists and maps as JSON text); other values as they are."""
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("{", "[", '"'):
            try:
                return json.loads(text)
            except ValueError:
                return value
    return value


def _text(value: Any) -> str | None:
    if _is_null(value):
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _arguments(value: Any) -> str | None:
    """Tool-call arguments as JSON text: objects (the semconv parts) are serialised, strings kept as sent."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _mapping(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a mapping, else an empty one (JSON fields that may be missing or null)."""
    return value if isinstance(value, Mapping) else {}


def _tool_call(raw: Mapping[str, Any]) -> dict[str, str | None]:
    """One tool call from the OpenAI shape (``function: {name, arguments}``) or a semconv ``tool_call`` part."""
    function = _mapping(raw.get("function"))
    return {
        "id": _text(raw.get("id")),
        "name": _text(raw.get("name", function.get("name"))),
        "arguments": _arguments(raw.get("arguments", function.get("arguments"))),
    }


def _content_parts(content: Any) -> tuple[str | None, list[str], list[dict[str, Any]], str | None]:
    """(text, part types, tool calls, tool-call id of a response part) from a content value or a parts list.

    Text parts are joined by blank lines; other parts (images, audio, files) are named in the text as
    ``[image_url part]`` so a reader knows they were there.
    """
    content = _json(content) if isinstance(content, str) and content[:1] == "[" else content
    if content is None:
        return None, [], [], None
    if isinstance(content, str):
        return content, ["text"], [], None
    if isinstance(content, Mapping):
        content = [content]
    if not isinstance(content, list):
        return _text(content), ["text"], [], None
    texts: list[str] = []
    kinds: list[str] = []
    calls: list[dict[str, Any]] = []
    response_id = None
    for part in content:
        if isinstance(part, str):
            texts.append(part)
            kinds.append("text")
            continue
        if not isinstance(part, Mapping):
            continue
        kind = str(part.get("type") or "text")
        kinds.append(kind)
        if kind == "text" or kind == "reasoning":
            body = part.get("content", part.get("text"))
            if body is not None:
                texts.append(_text(body) or "")
        elif kind in ("tool_call", "function"):
            calls.append(_tool_call(part))
        elif kind == "tool_call_response":
            response_id = _text(part.get("id"))
            texts.append(_text(part.get("response", part.get("result"))) or "")
        else:
            detail = part.get("uri") or part.get("url") or part.get("mime_type") or part.get("modality")
            if kind == "image_url" and isinstance(part.get("image_url"), Mapping):
                detail = part["image_url"].get("url")
            if isinstance(detail, str) and detail.startswith("data:"):
                detail = detail.split(",", 1)[0]
            texts.append(f"[{kind} part{': ' + str(detail)[:120] if detail else ''}]")
    return ("\n\n".join(texts) if texts else None), kinds, calls, response_id


def _message(
    role: Any,
    content: Any,
    *,
    direction: str,
    source: str,
    tool_calls: Iterable[Mapping[str, Any]] = (),
    tool_call_id: Any = None,
    finish_reason: Any = None,
) -> dict[str, Any]:
    text, kinds, part_calls, response_id = _content_parts(content)
    calls = [_tool_call(c) for c in tool_calls if isinstance(c, Mapping)] + part_calls
    return {
        "direction": direction,
        "role": _text(role) or ("assistant" if direction == "output" else None),
        "content": text,
        "parts": kinds,
        "tool_calls": calls,
        "tool_call_id": _text(tool_call_id) or response_id,
        "finish_reason": _text(finish_reason),
        "source": source,
        "recorded": True,
    }


def _semconv_messages(value: Any, direction: str, source: str) -> list[dict[str, Any]]:
    """Messages from ``gen_ai.input.messages`` / ``gen_ai.output.messages`` (a JSON list of role + parts)."""
    value = _json(value)
    if not isinstance(value, list):
        return []
    rows = []
    for item in value:
        if not isinstance(item, Mapping):
            continue
        parts = item.get("parts", item.get("content"))
        rows.append(
            _message(
                item.get("role"),
                parts,
                direction=direction,
                source=source,
                tool_calls=item.get("tool_calls") or (),
                tool_call_id=item.get("tool_call_id"),
                finish_reason=item.get("finish_reason"),
            )
        )
    return rows


def _system_instructions(value: Any, source: str) -> list[dict[str, Any]]:
    if _is_null(value):
        return []
    return [_message("system", _json(value), direction="input", source=source)]


def _numbered(attributes: Mapping[str, Any], prefix: str) -> list[tuple[int, dict[str, Any]]]:
    """Group ``<prefix>N.<rest>`` keys by N: [(N, {rest: value})] in N order."""
    groups: dict[int, dict[str, Any]] = {}
    for key, value in attributes.items():
        if not key.startswith(prefix):
            continue
        match = _NUMBERED.match(key[len(prefix) :])
        if match:
            groups.setdefault(int(match["n"]), {})[match["rest"]] = value
    return sorted(groups.items())


def _openinference(attributes: Mapping[str, Any], key: str, direction: str) -> list[dict[str, Any]]:
    """Messages from ``llm.input_messages.N.message.*`` / ``llm.output_messages.N.message.*``."""
    rows = []
    for _, fields in _numbered(attributes, f"{key}."):
        message = {k.removeprefix("message."): v for k, v in fields.items()}
        contents = _numbered(message, "contents.")
        content: Any = message.get("content")
        if content is None and contents:
            content = [
                {
                    "type": part.get("message_content.type", "text"),
                    "content": part.get("message_content.text"),
                    "uri": part.get("message_content.image.image.url"),
                }
                for _, part in contents
            ]
        calls = [
            {
                "id": call.get("tool_call.id"),
                "name": call.get("tool_call.function.name"),
                "arguments": call.get("tool_call.function.arguments"),
            }
            for _, call in _numbered(message, "tool_calls.")
        ]
        rows.append(
            _message(
                message.get("role"),
                content,
                direction=direction,
                source="attribute",
                tool_calls=calls,
                tool_call_id=message.get("tool_call_id"),
                finish_reason=attributes.get("llm.finish_reason") if direction == "output" else None,
            )
        )
    return rows


def _openllmetry_flat(attributes: Mapping[str, Any], key: str, direction: str) -> list[dict[str, Any]]:
    """Messages from ``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*`` (OpenLLMetry before 0.60)."""
    rows = []
    for _, fields in _numbered(attributes, f"{key}."):
        calls = [
            {"id": call.get("id"), "name": call.get("name"), "arguments": call.get("arguments")}
            for _, call in _numbered(fields, "tool_calls.")
        ]
        if not calls and fields.get("function_call.name") is not None:
            calls = [
                {"name": fields.get("function_call.name"), "arguments": fields.get("function_call.arguments")}
            ]
        rows.append(
            _message(
                fields.get("role"),
                fields.get("content"),
                direction=direction,
                source="attribute",
                tool_calls=calls,
                tool_call_id=fields.get("tool_call_id"),
                finish_reason=fields.get("finish_reason"),
            )
        )
    return rows


def _openai_body(value: Any, direction: str) -> list[dict[str, Any]]:
    """Messages from an OpenAI request (``{"messages": [...]}``) or response (``{"choices": [...]}``) JSON body,
    as OpenInference records it in ``input.value`` / ``output.value``."""
    body = _json(value)
    if not isinstance(body, Mapping):
        return []
    rows = []
    if direction == "input":
        for item in _as_list(body.get("messages")):
            if isinstance(item, Mapping):
                rows.append(
                    _message(
                        item.get("role"),
                        item.get("content"),
                        direction="input",
                        source="attribute",
                        tool_calls=item.get("tool_calls") or (),
                        tool_call_id=item.get("tool_call_id"),
                    )
                )
    else:
        for choice in _as_list(body.get("choices")):
            if not isinstance(choice, Mapping):
                continue
            message = _mapping(choice.get("message"))
            rows.append(
                _message(
                    message.get("role"),
                    message.get("content", choice.get("text")),
                    direction="output",
                    source="attribute",
                    tool_calls=message.get("tool_calls") or (),
                    finish_reason=choice.get("finish_reason"),
                )
            )
    return rows


def _event_messages(name: str, fields: Mapping[str, Any], body: Any, source: str) -> list[dict[str, Any]]:
    """Messages from one GenAI event (a span event or a log record), content in ``body`` or in ``fields``."""
    body = _json(body)
    if name in _DETAIL_EVENTS:
        return (
            _system_instructions(fields.get("gen_ai.system_instructions"), source)
            + _semconv_messages(fields.get("gen_ai.input.messages"), "input", source)
            + _semconv_messages(fields.get("gen_ai.output.messages"), "output", source)
        )
    if name in _LEGACY_EVENTS:
        direction = "input" if name == "gen_ai.content.prompt" else "output"
        value = _json(fields.get(_LEGACY_EVENTS[name]))
        if isinstance(value, list):
            return _semconv_messages(value, direction, source)
        return [
            _message(None if direction == "input" else "assistant", value, direction=direction, source=source)
        ]
    if not isinstance(body, Mapping):
        # Span events (and some SDKs) put the fields in attributes: content, tool_calls, id, role ...
        body = (
            {k.removeprefix("gen_ai.event."): _json(v) for k, v in fields.items()}
            if _is_null(body) or body == ""
            else {"content": body}
        )
    if name in _OUTPUT_EVENTS:
        message = _mapping(body.get("message"))
        calls = list(_as_list(message.get("tool_calls"))) + list(_as_list(body.get("tool_calls")))
        return [
            _message(
                message.get("role") or "assistant",
                message.get("content"),
                direction="output",
                source=source,
                tool_calls=calls,
                finish_reason=body.get("finish_reason"),
            )
        ]
    role = body.get("role") or _ROLE_OF_EVENT.get(name)
    return [
        _message(
            role,
            body.get("content"),
            direction="input",
            source=source,
            tool_calls=_as_list(body.get("tool_calls")),
            tool_call_id=body.get("tool_call_id", body.get("id") if role == "tool" else None),
        )
    ]


def _from_attributes(attributes: Mapping[str, Any], direction: str) -> list[dict[str, Any]]:
    """The first attribute shape that holds this direction's messages."""
    if direction == "input":
        rows = _semconv_messages(attributes.get("gen_ai.input.messages"), "input", "attribute")
        if rows:
            return _system_instructions(attributes.get("gen_ai.system_instructions"), "attribute") + rows
        return (
            _openinference(attributes, "llm.input_messages", "input")
            or _openllmetry_flat(attributes, "gen_ai.prompt", "input")
            or _openai_body(attributes.get("input.value"), "input")
        )
    return (
        _semconv_messages(attributes.get("gen_ai.output.messages"), "output", "attribute")
        or _openinference(attributes, "llm.output_messages", "output")
        or _openllmetry_flat(attributes, "gen_ai.completion", "output")
        or _openai_body(attributes.get("output.value"), "output")
    )


def _finish_reasons(attributes: Mapping[str, Any]) -> list[str]:
    """Finish reasons the span states apart from its messages (a list attribute, or the response body)."""
    reasons = _json(attributes.get("gen_ai.response.finish_reasons"))
    if isinstance(reasons, list) and reasons:
        return [str(r) for r in reasons]
    if not _is_null(attributes.get("llm.finish_reason")):
        return [str(attributes["llm.finish_reason"])]
    body = _json(attributes.get("output.value"))
    if isinstance(body, Mapping):
        return [str(c.get("finish_reason")) for c in _as_list(body.get("choices")) if isinstance(c, Mapping)]
    return []


def conversation(
    attributes: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]] = (),
    logs: pd.DataFrame | None = None,
    *,
    failed: str | None = None,
) -> pd.DataFrame:
    """The messages of one span, input before output, from its attributes, span events or logs (first found).

    ``events`` are the span's events (``name``, ``attributes``); ``logs`` the span's log records in time
    order (``event_name``, ``body``, ``attributes``). Each direction comes from the first shape that has it,
    so a span recorded both on the span and as log events is not shown twice. A direction with no content
    gives one row with ``recorded`` False saying so (naming the error when the call ``failed``).
    """
    attributes = dict(attributes)
    found: dict[str, list[dict[str, Any]]] = {}
    for direction in ("input", "output"):
        found[direction] = _from_attributes(attributes, direction)
    event_rows: list[dict[str, Any]] = []
    for event in events:
        name: str | None = str(event.get("name") or "")
        if name in GENAI_EVENT_NAMES:
            fields = _as_dict(event.get("attributes"))
            event_rows += _event_messages(name, fields, fields.get("body"), "event")
    log_rows: list[dict[str, Any]] = []
    if logs is not None and not logs.empty:
        for log in logs.itertuples(index=False):
            fields = _as_dict(getattr(log, "attributes", None))
            field: Any = getattr(log, "event_name", None)
            name = str(fields.get("event.name") if _is_null(field) else field)
            if name in GENAI_EVENT_NAMES:
                log_rows += _event_messages(str(name), fields, getattr(log, "body", None), "log")
    for direction in ("input", "output"):
        for candidates in (event_rows, log_rows):
            if not found[direction]:
                found[direction] = [row for row in candidates if row["direction"] == direction]
    reasons = _finish_reasons(attributes)
    outputs = found["output"]
    for i, row in enumerate(outputs):
        if row["finish_reason"] is None and i < len(reasons) and len(reasons) == len(outputs):
            row["finish_reason"] = reasons[i]
    rows = []
    failed = failed or attributes.get("error.type")
    for direction in ("input", "output"):
        if found[direction]:
            rows += found[direction]
            continue
        note = NOT_RECORDED
        if direction == "output" and failed:
            note = f"no answer: the call failed ({failed})"
        rows.append(
            {
                "direction": direction,
                "role": None,
                "content": note,
                "parts": [],
                "tool_calls": [],
                "tool_call_id": None,
                "finish_reason": None,
                "source": "none",
                "recorded": False,
            }
        )
    # object columns: a missing content or id stays None (pandas would make a string column's None NaN)
    frame = pd.DataFrame(rows, columns=MESSAGE_COLUMNS[1:], dtype=object)
    frame["recorded"] = frame["recorded"].astype(bool)
    frame.insert(0, "index", range(len(frame)))
    return frame


def messages(store: Store, trace_id: str, span_id: str, *, log_limit: int = 2000) -> pd.DataFrame:
    """The conversation of one span as rows (see :func:`conversation`); empty if the span is not in the store."""
    trace_id, span_id = trace_id.strip().lower(), span_id.strip().lower()
    spans = _frame(
        store,
        """SELECT attributes, events, parent_span_id, start_time, status_code, status_message
           FROM spans WHERE trace_id = $trace_id AND span_id = $span_id
           ORDER BY end_time DESC NULLS LAST LIMIT 1""",
        {"trace_id": trace_id, "span_id": span_id},
    )
    if spans.empty:
        return pd.DataFrame(columns=MESSAGE_COLUMNS)
    row = spans.iloc[0]
    logs = span_logs(store, trace_id, span_id, limit=log_limit)
    if not any(name in _OUTPUT_EVENTS or name in _DETAIL_EVENTS for name in logs.get("event_name", [])):
        late = _late_choice(store, trace_id, row["parent_span_id"], row["start_time"])
        logs = pd.concat([logs, late], ignore_index=True) if not late.empty else logs
    events = _as_list(row["events"])
    failed = None
    if row["status_code"] == "ERROR":
        kinds = [
            _as_dict(e.get("attributes")).get("exception.type")
            for e in events
            if e.get("name") == "exception"
        ]
        failed = (
            next((k for k in kinds if k), None)
            or (None if _is_null(row["status_message"]) else row["status_message"])
            or "error"
        )
    return conversation(_as_dict(row["attributes"]), events, logs, failed=failed)


def span_logs(store: Store, trace_id: str, span_id: str, *, limit: int = 2000) -> pd.DataFrame:
    """One span's log records in emission order (time, then the order they were written)."""
    return _frame(
        store,
        """SELECT timestamp, coalesce(event_name, attributes['event.name']) AS event_name, body, attributes
           FROM logs WHERE trace_id = $trace_id AND span_id = $span_id
           ORDER BY timestamp, observed_timestamp NULLS LAST LIMIT $limit""",
        {"trace_id": trace_id, "span_id": span_id, "limit": _limit(limit)},
    )


def _late_choice(store: Store, trace_id: str, parent_span_id: Any, start: Any) -> pd.DataFrame:
    """The answer event of a streamed call emitted after its span ended, so under the parent span
    (OpenLLMetry's event mode does this): the parent's first ``gen_ai.choice`` log after the call started."""
    if _is_null(parent_span_id):
        return pd.DataFrame()
    return _frame(
        store,
        """SELECT timestamp, coalesce(event_name, attributes['event.name']) AS event_name, body, attributes
           FROM logs WHERE trace_id = $trace_id AND span_id = $parent AND timestamp >= $start
             AND coalesce(event_name, attributes['event.name']) = 'gen_ai.choice'
           ORDER BY timestamp LIMIT 1""",
        {"trace_id": trace_id, "parent": parent_span_id, "start": start},
    )


def tool_call(store: Store, trace_id: str, span_id: str) -> dict[str, str | None]:
    """A tool span's name, call id, arguments and result: from its own attributes when recorded, else from
    the LLM calls around it in the trace (the call that asked for the tool before it started, and the
    ``tool`` message answering that call id after it). ``source`` says which."""
    trace_id, span_id = trace_id.strip().lower(), span_id.strip().lower()
    spans = _frame(
        store,
        f"""SELECT span_id, name, start_time, end_time, attributes, {LLM_SPAN_SQL} AS is_llm
            FROM spans WHERE trace_id = $trace_id ORDER BY start_time LIMIT 10000""",
        {"trace_id": trace_id},
    )
    rows = spans[spans["span_id"] == span_id]
    if rows.empty:
        return {"name": None, "call_id": None, "arguments": None, "result": None, "source": None}
    tool = rows.iloc[0]
    found: dict[str, str | None] = {
        **tool_io(_as_dict(tool["attributes"]), str(tool["name"])),
        "source": "attribute",
    }
    if found["arguments"] is not None and found["result"] is not None:
        return found
    name = (found["name"] or "").removeprefix("execute_tool ").removeprefix("tool ").strip()
    found["name"] = name or found["name"]
    sources = {"attribute"} if found["arguments"] is not None else set()
    llm = spans[spans["is_llm"].fillna(False).astype(bool)]
    if found["arguments"] is None:
        for candidate in llm[llm["start_time"] <= tool["start_time"]].iloc[::-1].itertuples():
            out = messages(store, trace_id, candidate.span_id)
            calls = [c for calls in out[out["direction"] == "output"]["tool_calls"] for c in calls]
            match = next((c for c in calls if c.get("name") == name), None)
            if match is not None:
                found.update(call_id=found["call_id"] or match.get("id"), arguments=match.get("arguments"))
                sources.add("llm span")
                break
    if found["result"] is None and (found["arguments"] is not None or found["call_id"] is not None):
        for candidate in llm[llm["start_time"] >= tool["start_time"]].itertuples():
            inputs = messages(store, trace_id, candidate.span_id)
            answers = inputs[(inputs["direction"] == "input") & (inputs["role"] == "tool")]
            if found["call_id"] is not None and answers["tool_call_id"].notna().any():
                answers = answers[answers["tool_call_id"] == found["call_id"]]
            if not answers.empty:
                found["result"] = answers["content"].iloc[-1]
                sources.add("llm span")
                break
    found["source"] = " and ".join(sorted(sources)) or None
    return found

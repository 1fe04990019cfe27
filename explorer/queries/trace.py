"""One trace: its span tree, a span's details, its logs, timeline and profile rows."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from explorer.errors import QueryError
from explorer.queries._sql import _as_dict, _as_list, _frame, _is_null, _limit
from explorer.store import Store
from explorer.tree import critical_path


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


@dataclass
class SpanDetail:
    """One span's attributes, events, exception stack traces and links, ready to display."""

    span: dict[str, Any]
    attributes: dict[str, str]
    resource: dict[str, str]
    events: pd.DataFrame
    exceptions: list[dict[str, str]] = field(default_factory=list)
    links: pd.DataFrame = field(default_factory=pd.DataFrame)


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
    sql = """SELECT timestamp, severity_text, severity_number, service_name, logger_name,
                    coalesce(event_name, attributes['event.name']) AS event_name, body, span_id, attributes
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
                    "what": [log_summary(row) for row in logs.to_dict("records")],
                    "service_name": logs["service_name"],
                    "span_id": logs["span_id"],
                    "level": logs["severity_text"],
                }
            )
        )
    return pd.concat(parts, ignore_index=True).sort_values("offset_ms", kind="stable").reset_index(drop=True)


def log_summary(log: dict[str, Any], width: int = 300) -> str:
    """One line for a log record: ``[event name] body``, or for an empty body the event name and its
    attributes (GenAI events keep their content there), cut at ``width`` characters."""
    body = log.get("body")
    name = log.get("event_name")
    name = None if _is_null(name) else str(name)
    if not _is_null(body) and str(body) != "":
        text = f"[{name}] {body}" if name else str(body)
    else:
        attributes = {k: v for k, v in _as_dict(log.get("attributes")).items() if k != "event.name"}
        shown = ", ".join(f"{k}={v}" for k, v in attributes.items())
        text = " ".join(part for part in (f"[{name}]" if name else "", shown) if part) or "∅"
    return text if len(text) <= width else text[: width - 1] + "…"


def span_profile(store: Store, *, trace_id: str, span_id: str, limit: int = 500) -> pd.DataFrame:
    """Profile rows (function totals and call edges) recorded for one span."""
    sql = """SELECT * EXCLUDE (date) FROM profiles WHERE trace_id = $trace_id AND span_id = $span_id
             ORDER BY caller NULLS FIRST, cumulative_time_s DESC LIMIT $limit"""
    return _frame(store, sql, {"trace_id": trace_id, "span_id": span_id, "limit": _limit(limit)})

"""One trace: its span tree, a span's details, its logs, timeline and profile rows."""

from __future__ import annotations

import json
from collections import Counter
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
    # The exact *_unix_nano columns: the microsecond timestamps would tie spans started in one microsecond.
    # Lists and numpy rather than a pandas call per column: a lookup is a few rows, where each call's fixed
    # cost is the whole cost (the trace view's ~3 ms of the 50 ms target at 10M spans).
    start_ns = tree["start_time_unix_nano"].to_numpy(dtype="int64")
    ends = tree["end_time_unix_nano"].tolist()
    end_ns = np.array(
        [s if _is_null(e) else int(e) for s, e in zip(start_ns.tolist(), ends, strict=True)], dtype="int64"
    )
    t0 = int(start_ns.min()) if len(start_ns) else 0
    parent_counts = Counter(p for p in tree["parent_span_id"].tolist() if isinstance(p, str))
    tree = tree.assign(
        start_ns=start_ns,
        end_ns=end_ns,
        offset_ms=(start_ns - t0) / 1e6,
        duration_ms=tree["duration_ns"].to_numpy(dtype="float64", na_value=np.nan) / 1e6,
        children=np.array([parent_counts.get(s, 0) for s in tree["span_id"].tolist()], dtype="int64"),
    )
    path = critical_path(tree)
    tree["critical"] = np.array([s in path for s in tree["span_id"].tolist()], dtype="bool")
    return tree


def typed_value(text: Any) -> tuple[Any, str]:
    """An attribute value as stored (text) back with its type: ``"42"`` → ``(42, "int")``, ``"2.5"`` →
    ``(2.5, "float")``, ``"true"`` → ``(True, "bool")``, JSON arrays/objects → ``"json"``, else ``"str"``."""
    if not isinstance(text, str):
        return text, type(text).__name__
    if text in ("true", "false"):
        return text == "true", "bool"
    try:
        return int(text), "int"
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if text.strip().lower() not in ("nan", "inf", "-inf", "infinity", "-infinity"):
            return number, "float"
    if text[:1] in "[{" and text[-1:] in "]}":
        try:
            json.loads(text)
        except ValueError:
            return text, "str"
        return text, "json"
    return text, "str"


def kv_table(mapping: dict[str, Any]) -> pd.DataFrame:
    """An attribute map as a key/value table sorted by key: ``key``, ``value`` (text as stored), ``type``
    and ``number`` (the value as a number when it is one, so it sorts and reads as a number)."""
    rows = []
    for key in sorted(mapping):
        value, kind = typed_value(mapping[key])
        rows.append(
            {
                "key": key,
                "value": "" if mapping[key] is None else str(mapping[key]),
                "type": kind,
                "number": float(value) if kind in ("int", "float") else np.nan,
            }
        )
    return pd.DataFrame(rows, columns=["key", "value", "type", "number"])


@dataclass
class SpanDetail:
    """One span's attributes, events, exception stack traces and links, ready to display.

    ``events`` has one row per event (``attributes`` as JSON text, for notebooks); ``event_attributes``
    one row per event attribute (``event``, ``offset_ms``, ``name``, ``key``, ``value``, ``type``), which
    is what the app shows as a key/value table."""

    span: dict[str, Any]
    attributes: dict[str, str]
    resource: dict[str, str]
    events: pd.DataFrame
    exceptions: list[dict[str, str]] = field(default_factory=list)
    links: pd.DataFrame = field(default_factory=pd.DataFrame)
    event_attributes: pd.DataFrame = field(default_factory=pd.DataFrame)


def span_detail(tree: pd.DataFrame, span_id: str) -> SpanDetail:
    """Attributes, events (with offsets), exception stack traces and links of one span of ``tree``."""
    rows = tree[tree["span_id"] == span_id]
    if rows.empty:
        msg = f"span {span_id!r} is not in this trace; pick one of its {len(tree)} spans"
        raise QueryError(msg)
    row = rows.iloc[0]
    t0 = int(tree["start_ns"].min()) if "start_ns" in tree else int(tree["start_time_unix_nano"].min())
    events = []
    exceptions = []
    event_rows: list[dict[str, Any]] = []
    for index, event in enumerate(_as_list(row.get("events"))):
        attrs = _as_dict(event.get("attributes"))
        nanos = event.get("time_unix_nano")
        offset = (int(nanos) - t0) / 1e6 if nanos is not None and not pd.isna(nanos) else np.nan
        events.append(
            {
                "offset_ms": offset,
                "name": event.get("name"),
                "attributes": json.dumps(attrs, ensure_ascii=False),
            }
        )
        table = kv_table(attrs)
        event_rows.extend(
            {"event": index, "offset_ms": offset, "name": event.get("name"), **kv}
            for kv in table[["key", "value", "type"]].to_dict("records")
        )
        if not attrs:
            event_rows.append(
                {
                    "event": index,
                    "offset_ms": offset,
                    "name": event.get("name"),
                    "key": "",
                    "value": "",
                    "type": "",
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
        event_attributes=pd.DataFrame(
            event_rows, columns=["event", "offset_ms", "name", "key", "value", "type"]
        ),
    )


def trace_logs(store: Store, trace_id: str, *, limit: int = 5000) -> pd.DataFrame:
    """The log records of a trace in time order."""
    select = """timestamp, time_unix_nano, severity_text, severity_number, service_name, logger_name,
                coalesce(event_name, attributes['event.name']) AS event_name, body, span_id, attributes"""
    # Store.trace_rows: the files holding the trace first, as for its spans (half the time at 10M spans).
    order = f"ORDER BY time_unix_nano LIMIT {_limit(limit)}"
    return store.trace_rows("logs", trace_id.strip().lower(), select=select, order=order)


def trace_timeline(tree: pd.DataFrame, logs: pd.DataFrame) -> pd.DataFrame:
    """Span starts and logs of one trace interleaved by time, with offsets from the trace start.

    ``status`` is the span status (span rows only), ``level`` the log severity (log rows only): two columns,
    since an ``ERROR`` span and an ``ERROR`` log record are different things."""
    if tree.empty:
        return pd.DataFrame(
            columns=["offset_ms", "kind", "what", "service_name", "span_id", "status", "level"]
        )
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
                "status": tree["status_code"],
                "level": None,
            }
        )
    ]
    if not logs.empty:
        parts.append(
            pd.DataFrame(
                {
                    "offset_ms": (logs["time_unix_nano"].astype("float64") - t0) / 1e6,
                    "kind": "log",
                    "what": [log_summary(row) for row in logs.to_dict("records")],
                    "service_name": logs["service_name"],
                    "span_id": logs["span_id"],
                    "status": None,
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


def trace_marks(tree: pd.DataFrame, logs: pd.DataFrame) -> pd.DataFrame:
    """Span events and log records of one trace as ticks for the waterfall: ``span_id``, ``offset_ms``
    (from the trace start), ``kind`` ("event" or "log"), ``label`` and ``level`` (log severity).

    Logs without a span id (or with one outside the trace) are left out: they have no bar to sit on."""
    columns = ["span_id", "offset_ms", "kind", "label", "level"]
    if tree.empty:
        return pd.DataFrame(columns=columns)
    t0 = int(tree["start_ns"].min())
    parts = []
    if "events" in tree:
        has = tree["events"].map(lambda v: not _is_empty(v))
        rows = [
            (span_id, _event_ns(event), event.get("name"))
            for span_id, events in zip(tree.loc[has, "span_id"], tree.loc[has, "events"], strict=True)
            for event in _as_list(events)
        ]
        if rows:
            frame = pd.DataFrame(rows, columns=["span_id", "ns", "label"])
            parts.append(
                pd.DataFrame(
                    {
                        "span_id": frame["span_id"],
                        "offset_ms": (frame["ns"] - t0) / 1e6,
                        "kind": "event",
                        "label": frame["label"],
                        "level": None,
                    }
                )
            )
    if not logs.empty:
        placed = logs[logs["span_id"].isin(tree["span_id"])]
        if not placed.empty:
            parts.append(
                pd.DataFrame(
                    {
                        "span_id": placed["span_id"],
                        "offset_ms": (_log_ns(placed) - t0) / 1e6,
                        "kind": "log",
                        "label": placed["body"].fillna("∅").astype(str),
                        "level": placed["severity_text"],
                    }
                )
            )
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]


def _event_ns(event: dict[str, Any]) -> int:
    """An event's time in ns since the epoch: the exact ``time_unix_nano`` when stored, else its timestamp."""
    nanos = event.get("time_unix_nano")
    if nanos is not None and not pd.isna(nanos):
        return int(nanos)
    return int(pd.Timestamp(event.get("timestamp")).as_unit("ns").value)


def _log_ns(logs: pd.DataFrame) -> pd.Series:
    """Log times in ns since the epoch: ``time_unix_nano`` when present, else the timestamp column."""
    if "time_unix_nano" in logs:
        return logs["time_unix_nano"].astype("float64")
    return pd.to_datetime(logs["timestamp"], utc=True).dt.as_unit("ns").astype("int64").astype("float64")


def _is_empty(value: Any) -> bool:
    return not hasattr(value, "__len__") or isinstance(value, str) or len(value) == 0


def trace_header(tree: pd.DataFrame) -> dict[str, Any]:
    """The facts a trace view's header line shows: root service and operation, start, duration, spans,
    errors, services, depth."""
    roots = tree[tree["depth"] == 0] if "depth" in tree else tree.head(1)
    root = roots.sort_values("start_ns").iloc[0] if not roots.empty else tree.iloc[0]
    return {
        "root_service": root["service_name"],
        "root_name": root["name"],
        "start": pd.Timestamp(int(tree["start_ns"].min()), tz="UTC"),
        "duration_ms": float((tree["end_ns"].max() - tree["start_ns"].min()) / 1e6),
        "spans": len(tree),
        "errors": int((tree["status_code"] == "ERROR").sum()),
        "services": int(tree["service_name"].nunique()),
        "depth": int(tree["depth"].max()) + 1 if "depth" in tree else 1,
    }

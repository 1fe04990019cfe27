"""Jaeger JSON (the UI's "Download JSON", the query API's ``/api/traces``) to the ``spans`` table.

``{"data": [{"traceID", "spans": [...], "processes": {"p1": {"serviceName", "tags"}}}]}``. The mapping
follows OpenTelemetry's Jaeger translator: the first ``CHILD_OF`` reference in the same trace is the
parent and every other reference a link; the ``span.kind``, ``otel.status_code``,
``otel.status_description``, ``error`` and ``otel.scope.name``/``otel.library.name`` tags become
kind, status and scope; Jaeger logs become span events (name from the ``event`` field); process tags
become resource attributes. Times are microseconds in Jaeger and nanoseconds in the store.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ingest.sources.otlp import InputError
from ingest.store import schema
from ingest.store.encoding import attribute_text, hex_array, table_from_columns

_HEX = re.compile(r"[0-9a-fA-F]+")
_KINDS = {
    "server": "SERVER",
    "client": "CLIENT",
    "producer": "PRODUCER",
    "consumer": "CONSUMER",
    "internal": "INTERNAL",
}
_SPECIAL_TAGS = {
    "span.kind",
    "otel.status_code",
    "otel.status_description",
    "otel.scope.name",
    "otel.scope.version",
    "otel.library.name",
    "otel.library.version",
}


def is_jaeger(obj: Any) -> bool:
    """Whether a parsed JSON document looks like Jaeger's trace JSON."""
    return (
        isinstance(obj, dict)
        and isinstance(obj.get("data"), list)
        and not any(k in obj for k in ("resourceSpans", "resourceLogs", "resourceMetrics"))
    )


def _id(value: Any, width: int, what: str) -> bytes:
    """A Jaeger hex id (leading zeros may be missing; 64-bit trace ids are widened) as bytes."""
    if not isinstance(value, str) or not value or not _HEX.fullmatch(value) or len(value) > width * 2:
        msg = f"{what} {value!r} is not a hex id of at most {width * 2} digits"
        raise InputError(msg)
    return bytes.fromhex(value.rjust(width * 2, "0"))


def _tag_value(tag: dict[str, Any]) -> Any:
    kind = str(tag.get("type", "string")).lower()
    value: Any = tag.get("value")
    if kind in ("int64", "int"):
        return int(value)
    if kind in ("float64", "float"):
        return float(value)
    if kind in ("bool", "boolean"):
        return value if isinstance(value, bool) else str(value).lower() == "true"
    if kind == "binary":
        return base64.b64decode(value) if isinstance(value, str) else bytes(value)
    return value if isinstance(value, str) else attribute_text(value)


def _tags(tags: Any, where: str) -> dict[str, Any]:
    if tags is None:
        return {}
    if not isinstance(tags, list):
        msg = f"{where} must be an array of {{key, type, value}}"
        raise InputError(msg)
    out: dict[str, Any] = {}
    for i, tag in enumerate(tags):
        if not isinstance(tag, dict) or "key" not in tag:
            msg = f"{where}[{i}] must be an object with key, type and value"
            raise InputError(msg)
        try:
            out[str(tag["key"])] = _tag_value(tag)
        except (TypeError, ValueError) as exc:
            msg = f"{where}[{i}] ({tag.get('key')!r}): value {tag.get('value')!r} is not a {tag.get('type')}: {exc}"
            raise InputError(msg) from None
    return out


def decode_trace(trace: Any, where: str) -> list[dict[str, Any]]:
    """One element of ``data``: its spans as row dicts (raises :class:`InputError` naming the field)."""
    if not isinstance(trace, dict):
        msg = f"{where} must be an object with traceID, spans and processes"
        raise InputError(msg)
    processes = trace.get("processes") or {}
    if not isinstance(processes, dict):
        msg = f"{where}.processes must be an object"
        raise InputError(msg)
    resources = {}
    for pid, process in processes.items():
        if not isinstance(process, dict):
            msg = f"{where}.processes.{pid} must be an object"
            raise InputError(msg)
        attrs = {"service.name": process.get("serviceName")}
        attrs.update(_tags(process.get("tags"), f"{where}.processes.{pid}.tags"))
        resources[pid] = {k: v for k, v in attrs.items() if v is not None}
    spans = trace.get("spans")
    if not isinstance(spans, list):
        msg = f"{where}.spans must be an array"
        raise InputError(msg)
    rows = []
    for i, span in enumerate(spans):
        rows.append(_span(span, f"{where}.spans[{i}]", resources, trace.get("traceID")))
    return rows


def _span(span: Any, where: str, resources: dict[Any, dict[str, Any]], trace_id: Any) -> dict[str, Any]:
    if not isinstance(span, dict):
        msg = f"{where} must be an object"
        raise InputError(msg)
    tid = _id(span.get("traceID", trace_id), 16, f"{where}.traceID")
    sid = _id(span.get("spanID"), 8, f"{where}.spanID")
    try:
        start_us = int(span["startTime"])
        duration_us = int(span.get("duration", 0))
    except (KeyError, TypeError, ValueError):
        msg = f"{where}: startTime (microseconds) is required and duration must be an integer"
        raise InputError(msg) from None
    tags = _tags(span.get("tags"), f"{where}.tags")
    parent = None
    links = []
    for r, ref in enumerate(span.get("references") or []):
        if not isinstance(ref, dict):
            msg = f"{where}.references[{r}] must be an object"
            raise InputError(msg)
        ref_trace = _id(ref.get("traceID"), 16, f"{where}.references[{r}].traceID")
        ref_span = _id(ref.get("spanID"), 8, f"{where}.references[{r}].spanID")
        if parent is None and ref.get("refType", "CHILD_OF") == "CHILD_OF" and ref_trace == tid:
            parent = ref_span
        else:
            links.append({"trace_id": ref_trace, "span_id": ref_span, "ref_type": ref.get("refType")})
    if parent is None and span.get("parentSpanID"):
        parent = _id(span.get("parentSpanID"), 8, f"{where}.parentSpanID")
    events = []
    for e, log in enumerate(span.get("logs") or []):
        if not isinstance(log, dict):
            msg = f"{where}.logs[{e}] must be an object"
            raise InputError(msg)
        fields = _tags(log.get("fields"), f"{where}.logs[{e}].fields")
        name = fields.pop("event", None) or fields.pop("message", None) or "log"
        try:
            stamp = int(log["timestamp"]) * 1000
        except (KeyError, TypeError, ValueError):
            msg = f"{where}.logs[{e}].timestamp (microseconds) is required"
            raise InputError(msg) from None
        events.append({"name": str(name), "timestamp": stamp, "attributes": fields})
    kind = _KINDS.get(str(tags.get("span.kind", "")).lower(), "INTERNAL")
    status = str(tags.get("otel.status_code", "")).upper()
    if status not in ("OK", "ERROR"):
        status = "ERROR" if tags.get("error") in (True, "true") else "UNSET"
    resource = resources.get(span.get("processID"), {})
    if "process" in span and isinstance(span["process"], dict):  # the older embedded form
        resource = {"service.name": span["process"].get("serviceName")}
        resource.update(_tags(span["process"].get("tags"), f"{where}.process.tags"))
    return {
        "trace_id": tid,
        "span_id": sid,
        "parent_span_id": parent,
        "name": str(span.get("operationName", "")),
        "kind": kind,
        "service_name": resource.get("service.name"),
        "start_time": start_us * 1000,
        "end_time": (start_us + duration_us) * 1000,
        "status_code": status,
        "status_message": tags.get("otel.status_description"),
        "attributes": {k: v for k, v in tags.items() if k not in _SPECIAL_TAGS},
        "resource_attributes": resource,
        "events": events,
        "links": links,
        "scope_name": tags.get("otel.scope.name") or tags.get("otel.library.name"),
        "scope_version": tags.get("otel.scope.version") or tags.get("otel.library.version"),
    }


def _map(rows: list[dict[str, Any]]) -> pa.MapArray:
    keys: list[str] = []
    values: list[str] = []
    offsets = [0]
    for row in rows:
        for k, v in row.items():
            keys.append(k)
            values.append(attribute_text(v))
        offsets.append(len(keys))
    return pa.MapArray.from_arrays(
        pa.array(offsets, pa.int32()),
        pa.array(keys, pa.string()),
        pa.array(values, pa.string()),
        type=schema.ATTRIBUTES,
    )


def spans_table(rows: list[dict[str, Any]]) -> pa.Table:
    """The ``spans`` table of decoded Jaeger span rows."""
    n = len(rows)
    events = [e for r in rows for e in r["events"]]
    links = [link for r in rows for link in r["links"]]
    event_offsets = [0]
    link_offsets = [0]
    for r in rows:
        event_offsets.append(event_offsets[-1] + len(r["events"]))
        link_offsets.append(link_offsets[-1] + len(r["links"]))
    parents = [r["parent_span_id"] for r in rows]
    start = pa.array([r["start_time"] for r in rows], pa.int64())
    end = pa.array([r["end_time"] for r in rows], pa.int64())
    columns = {
        "trace_id": hex_array(b"".join(r["trace_id"] for r in rows), 16),
        "span_id": hex_array(b"".join(r["span_id"] for r in rows), 8),
        "parent_span_id": hex_array(
            b"".join(p if p is not None else bytes(8) for p in parents), 8, [p is not None for p in parents]
        ),
        "name": [r["name"] for r in rows],
        "kind": [r["kind"] for r in rows],
        "service_name": [r["service_name"] for r in rows],
        "start_time": start.cast(schema.NS_TIMESTAMP),
        "end_time": end.cast(schema.NS_TIMESTAMP),
        "duration_ns": pc.subtract(end, start),
        "status_code": [r["status_code"] for r in rows],
        "status_message": [r["status_message"] for r in rows],
        "attributes": _map([r["attributes"] for r in rows]),
        "resource_attributes": _map([r["resource_attributes"] for r in rows]),
        "events": pa.ListArray.from_arrays(
            pa.array(event_offsets, pa.int32()),
            pa.StructArray.from_arrays(
                [
                    pa.array([e["name"] for e in events], pa.string()),
                    pa.array([e["timestamp"] for e in events], pa.int64()).cast(schema.NS_TIMESTAMP),
                    _map([e["attributes"] for e in events]),
                ],
                fields=list(schema.EVENT_NS),
            ),
            type=pa.list_(schema.EVENT_NS),
        ),
        "links": pa.ListArray.from_arrays(
            pa.array(link_offsets, pa.int32()),
            pa.StructArray.from_arrays(
                [
                    hex_array(b"".join(link["trace_id"] for link in links), 16),
                    hex_array(b"".join(link["span_id"] for link in links), 8),
                    pa.nulls(len(links), pa.string()),
                    _map(
                        [{"jaeger.ref_type": link["ref_type"]} if link["ref_type"] else {} for link in links]
                    ),
                ],
                fields=list(schema.LINK),
            ),
            type=pa.list_(schema.LINK),
        ),
        "scope_name": [r["scope_name"] for r in rows],
        "scope_version": [r["scope_version"] for r in rows],
        "dropped_attributes_count": pa.array([0] * n, pa.int32()),
        "dropped_events_count": pa.array([0] * n, pa.int32()),
        "dropped_links_count": pa.array([0] * n, pa.int32()),
    }
    return table_from_columns("spans", columns, n)

"""A trace as OTLP/JSON (``ExportTraceServiceRequest``), for Jaeger, Tempo, Phoenix or any OTLP importer.

Follows the OTLP/JSON encoding rules: trace and span ids are lowercase hex (not base64), 64-bit integers
are decimal strings, enums are integers. The store keeps attribute values as text
(:func:`ingest.store.encoding.attribute_text`), so every attribute is exported as a ``stringValue``: the
original type is not recorded and guessing it (is ``"42"`` a number?) would be wrong as often as right.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

SPAN_KINDS = {"INTERNAL": 1, "SERVER": 2, "CLIENT": 3, "PRODUCER": 4, "CONSUMER": 5}
STATUS_CODES = {"UNSET": 0, "OK": 1, "ERROR": 2}


def _missing(value: Any) -> bool:
    """None, NaN, pd.NA or NaT (a NULL from DuckDB), but not a list, array or mapping."""
    if value is None:
        return True
    if isinstance(value, (list, tuple, dict, np.ndarray, Mapping)):
        return False
    return bool(pd.isna(value))


def _pairs(value: Any) -> list[tuple[str, Any]]:
    if _missing(value):
        return []
    items = value.items() if isinstance(value, Mapping) else value
    return [(str(k), v) for k, v in items]


def _attributes(value: Any) -> list[dict[str, Any]]:
    return [{"key": k, "value": {"stringValue": "" if _missing(v) else str(v)}} for k, v in _pairs(value)]


def _nanos(value: Any) -> str:
    return str(pd.Timestamp(value).value)


def _exact(row: Mapping[str, Any], stamp: str, nano: str | None = None) -> str:
    """The exact nanoseconds of a time: its ``*_unix_nano`` column when the row has one, else the timestamp."""
    value: Any = row.get(nano or f"{stamp}_unix_nano")
    return str(int(value)) if not _missing(value) else _nanos(row.get(stamp))


def _int(value: Any) -> int:
    return 0 if _missing(value) else int(value)


def _span(row: Mapping[str, Any]) -> dict[str, Any]:
    span: dict[str, Any] = {
        "traceId": row["trace_id"],
        "spanId": row["span_id"],
        "name": "" if _missing(row.get("name")) else str(row["name"]),
        "kind": SPAN_KINDS.get(str(row.get("kind")), 0),
        "startTimeUnixNano": _exact(row, "start_time"),
        "endTimeUnixNano": _exact(row, "end_time")
        if not _missing(row.get("end_time"))
        else _exact(row, "start_time"),
        "attributes": _attributes(row.get("attributes")),
        "droppedAttributesCount": _int(row.get("dropped_attributes_count")),
        "events": [
            {
                "timeUnixNano": _exact(e, "timestamp", "time_unix_nano"),
                "name": e.get("name") or "",
                "attributes": _attributes(e.get("attributes")),
            }
            for e in ([] if _missing(row.get("events")) else row["events"])
        ],
        "droppedEventsCount": _int(row.get("dropped_events_count")),
        "links": [
            {
                "traceId": link.get("trace_id"),
                "spanId": link.get("span_id"),
                "traceState": link.get("trace_state") or "",
                "attributes": _attributes(link.get("attributes")),
            }
            for link in ([] if _missing(row.get("links")) else row["links"])
        ],
        "droppedLinksCount": _int(row.get("dropped_links_count")),
        "status": {"code": STATUS_CODES.get(str(row.get("status_code")), 0)},
    }
    if not _missing(row.get("parent_span_id")):
        span["parentSpanId"] = row["parent_span_id"]
    if not _missing(row.get("trace_state")) and row.get("trace_state"):
        span["traceState"] = row["trace_state"]
    if not _missing(row.get("status_message")) and row.get("status_message"):
        span["status"]["message"] = str(row["status_message"])
    return span


def trace_to_otlp(spans: pd.DataFrame) -> dict[str, Any]:
    """The spans of one or more traces (store rows) as an OTLP ``ExportTraceServiceRequest`` dict,
    grouped by resource and instrumentation scope like an SDK export."""
    resources: dict[str, dict[str, Any]] = {}
    for row in spans.to_dict("records"):
        resource_attrs = _attributes(row.get("resource_attributes"))
        resource_key = json.dumps(resource_attrs, sort_keys=True)
        resource = resources.setdefault(
            resource_key, {"resource": {"attributes": resource_attrs}, "scopeSpans": [], "_scopes": {}}
        )
        scope_name = "" if _missing(row.get("scope_name")) else str(row["scope_name"])
        scope_version = "" if _missing(row.get("scope_version")) else str(row["scope_version"])
        scope = resource["_scopes"].get((scope_name, scope_version))
        if scope is None:
            scope = {"scope": {"name": scope_name, "version": scope_version}, "spans": []}
            resource["_scopes"][(scope_name, scope_version)] = scope
            resource["scopeSpans"].append(scope)
        scope["spans"].append(_span(row))
    for resource in resources.values():
        del resource["_scopes"]
    return {"resourceSpans": list(resources.values())}


def trace_to_otlp_json(spans: pd.DataFrame, *, indent: int | None = None) -> str:
    """:func:`trace_to_otlp` serialised as JSON text (UTF-8 kept as is)."""
    return json.dumps(trace_to_otlp(spans), ensure_ascii=False, indent=indent)

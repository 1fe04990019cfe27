"""OTLP requests (protobuf messages, or OTLP JSON objects) to store tables — the exact path.

Used by the OTLP/HTTP receiver for every request, by the importer for protobuf files, and for any
JSON line the fast DuckDB path (:mod:`ingest.sources.otlp_json`) cannot take as it is. One walker per
signal turns a decoded ``Export*ServiceRequest`` into the same columns the SDK exporters write
(:mod:`ingest.store.encoding`), so every path writes one schema through one writer.

OTLP JSON is read by protobuf's ``json_format`` after two fixes it cannot do itself: trace and span
ids are hex in OTLP JSON (``json_format`` would silently read them as base64), and ``arrayValue`` /
``kvlistValue`` given as a bare list (as in opentelemetry-proto's ``examples/events.json``) are
wrapped into ``{"values": [...]}``. Enums as integers, int64 as decimal strings and unknown fields
are what ``json_format`` already accepts.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from ingest.errors import IngestError
from ingest.store import schema
from ingest.store.encoding import MapColumn, MetricRows, attribute_text, hex_array, table_from_columns

#: Signal name -> (store table, OTLP JSON top-level key, request class, response class).
SIGNALS: dict[str, tuple[str, str, type[Message], type[Message]]] = {
    "traces": (
        "spans",
        "resourceSpans",
        trace_service_pb2.ExportTraceServiceRequest,
        trace_service_pb2.ExportTraceServiceResponse,
    ),
    "metrics": (
        "metrics",
        "resourceMetrics",
        metrics_service_pb2.ExportMetricsServiceRequest,
        metrics_service_pb2.ExportMetricsServiceResponse,
    ),
    "logs": (
        "logs",
        "resourceLogs",
        logs_service_pb2.ExportLogsServiceRequest,
        logs_service_pb2.ExportLogsServiceResponse,
    ),
}
#: OTLP JSON top-level key -> signal name.
SIGNAL_OF_KEY = {key: signal for signal, (_, key, _, _) in SIGNALS.items()}
#: What one item of each signal is called in messages and partial-success responses.
ITEM_NAME = {"traces": "spans", "metrics": "data points", "logs": "log records"}

KIND_NAMES = ("INTERNAL",) + schema.SPAN_KINDS  # index = OTLP enum value; 0 (UNSPECIFIED) reads as INTERNAL
STATUS_NAMES = schema.STATUS_CODES
_INT64_MAX = 2**63 - 1
_HEX = re.compile(r"[0-9a-fA-F]*")
_INTEGER = re.compile(r"-?[0-9]{1,20}", re.ASCII)
#: How much of a bad value an error message quotes: a 5 MB trace id must not come back in a 400.
QUOTE_LIMIT = 200
#: Deepest nesting of OTLP JSON objects taken (protobuf's JSON reader default; upb's binary limit too).
MAX_JSON_DEPTH = 100
#: OTLP JSON fields holding 64-bit integers, which OTLP JSON writes as decimal strings.
_INT_FIELDS = ("startTimeUnixNano", "endTimeUnixNano", "timeUnixNano", "observedTimeUnixNano", "asInt", "count")


class InputError(IngestError, ValueError):
    """Input that is not valid OTLP (or Jaeger) data; the message says what and where."""


def quote(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)`` cut to about ``limit`` characters, saying how long it was, for error messages."""
    if isinstance(value, str | bytes) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value):,} characters)"
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def cap_quoted(message: str, limit: int = QUOTE_LIMIT) -> str:
    """``message`` with every run of ``limit`` + 20 characters or more cut to ``limit`` (values quoted by
    other libraries; what :func:`quote` already cut stays as it is)."""
    return re.sub(
        rf"[^\s:,;()]{{{limit + 20},}}",
        lambda m: f"{m.group(0)[:limit]}... ({len(m.group(0)):,} characters)",
        message,
    )


def strict_int(value: Any, path: str) -> Any:
    """A 64-bit integer field of OTLP JSON: a JSON integer or a string of ASCII decimal digits.

    ``int()`` (and protobuf's JSON reader, which calls it) also takes ``"5_0"``, ``"+5"``, ``"\\t5"``,
    ``"1e3"`` and non-ASCII digits such as ``"\\uff15"``; none of them is OTLP JSON.
    """
    if isinstance(value, str) and not _INTEGER.fullmatch(value):
        msg = f"{path} {quote(value)} is not an integer (OTLP JSON writes 64-bit integers as decimal digits)"
        raise InputError(msg)
    return value


@dataclass
class Decoded:
    """Rows decoded from one request or object, and what had to be left out and why."""

    signal: str
    table: pa.Table | None
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return 0 if self.table is None else self.table.num_rows


# --------------------------------------------------------------------------- AnyValue


def any_value(value: Any) -> Any:
    """The Python value of a protobuf ``AnyValue`` (lists and dicts for arrays and kvlists)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


def any_value_text(value: Any) -> str | None:
    """An ``AnyValue`` as the store's attribute text (see :func:`ingest.store.encoding.attribute_text`)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind is None:
        return None
    return attribute_text(any_value(value))


def json_any_value(value: Any) -> Any:
    """The Python value of an OTLP JSON ``AnyValue`` object (int64 strings become ints, bytes decode)."""
    if not isinstance(value, dict):
        msg = f"an AnyValue must be an object like {{'stringValue': ...}}, got {type(value).__name__}"
        raise InputError(msg)
    for kind, raw in value.items():
        if kind == "stringValue":
            return raw if isinstance(raw, str) else str(raw)
        if kind == "intValue":
            return int(strict_int(raw, "intValue"))
        if kind == "doubleValue":
            return float(raw)
        if kind == "boolValue":
            return raw if isinstance(raw, bool) else str(raw).lower() == "true"
        if kind == "bytesValue":
            return base64.b64decode(raw)
        if kind in ("arrayValue", "kvlistValue"):
            items = raw.get("values", []) if isinstance(raw, dict) else raw
            if kind == "arrayValue":
                return [json_any_value(v) for v in items]
            return {kv.get("key", ""): json_any_value(kv.get("value", {})) for kv in items}
    return None


# --------------------------------------------------------------------------- columns


class _Maps(MapColumn):
    """A map column filled from protobuf ``KeyValue`` lists (the store's one map builder, plus this reader)."""

    __slots__ = ()

    def add(self, key_values: Iterable[Any]) -> None:  # type: ignore[override]
        for kv in key_values:
            self.keys.append(kv.key)
            v = kv.value
            self.values.append(v.string_value if v.WhichOneof("value") == "string_value" else any_value_text(v))
        self.offsets.append(len(self.keys))


def _resource_pairs(resource: Any) -> tuple[list[str], list[str | None], str | None]:
    keys = [kv.key for kv in resource.attributes]
    values = [any_value_text(kv.value) for kv in resource.attributes]
    service = None
    for k, v in zip(keys, values):
        if k == "service.name":
            service = v
    return keys, values, service


def _ids(raw: list[bytes], width: int, nullable: bool) -> pa.Array:
    """Hex ids from raw id bytes; empty bytes become NULL when ``nullable`` (caller checked widths)."""
    if not nullable:
        return hex_array(b"".join(raw), width)
    valid = [len(r) == width for r in raw]
    if all(valid):
        return hex_array(b"".join(raw), width)
    zero = bytes(width)
    return hex_array(b"".join([r if ok else zero for r, ok in zip(raw, valid)]), width, valid)


def _times(values: list[int]) -> pa.Array:
    return pa.array(values, pa.int64()).cast(schema.TIMESTAMP)


def _opt_times(values: list[int]) -> pa.Array:
    """Timestamps where 0 (OTLP's "unset") becomes NULL."""
    return pa.array([v or None for v in values], pa.int64()).cast(schema.TIMESTAMP)


def _id_error(what: str, raw: bytes, width: int, *, optional: bool) -> str | None:
    n = len(raw)
    if n == width or (optional and n == 0):
        return None
    expected = f"{width} bytes ({width * 2} hex digits)" + (" or empty" if optional else "")
    return f"{what} has {n} bytes, expected {expected}"


# --------------------------------------------------------------------------- spans


def _scalar_text(value: Any, kind: str | None) -> str | None:
    if kind == "int_value":
        return str(value.int_value)
    if kind == "double_value":
        return repr(value.double_value)
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind is None:
        return None
    return attribute_text(any_value(value))


def _maps(kv_lists: list[Any]) -> pa.MapArray:
    """A ``MAP(VARCHAR, VARCHAR)`` column from repeated KeyValue fields, one list comprehension a column.

    Comprehensions over the whole batch instead of per-span method calls: about twice as fast,
    which is most of the receiver's cost per span.
    """
    counts = np.fromiter(map(len, kv_lists), dtype=np.int32, count=len(kv_lists))
    offsets = np.zeros(len(kv_lists) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    flat = [kv for kvs in kv_lists for kv in kvs]
    values = [kv.value for kv in flat]
    kinds = [v.WhichOneof("value") for v in values]
    texts = [v.string_value if k == "string_value" else _scalar_text(v, k) for v, k in zip(values, kinds)]
    return pa.MapArray.from_arrays(
        pa.array(offsets),
        pa.array([kv.key for kv in flat], pa.string()),
        pa.array(texts, pa.string()),
        type=schema.ATTRIBUTES,
    )


def _offsets(lists: list[Any]) -> pa.Array:
    offsets = np.zeros(len(lists) + 1, dtype=np.int32)
    np.cumsum(np.fromiter(map(len, lists), dtype=np.int32, count=len(lists)), out=offsets[1:])
    return pa.array(offsets)


def decode_traces(request: Any) -> Decoded:
    """Spans of an ``ExportTraceServiceRequest``; a span with an invalid id or time is rejected alone."""
    spans: list[Any] = []
    resource_of: list[int] = []
    scope_of: list[int] = []
    resources = []
    scopes = []
    where: list[tuple[int, int, int]] = []
    for r, resource_spans in enumerate(request.resource_spans):
        resources.append(resource_spans.resource)
        for s, scope_spans in enumerate(resource_spans.scope_spans):
            batch = scope_spans.spans
            spans.extend(batch)
            resource_of.extend([r] * len(batch))
            scope_of.extend([len(scopes)] * len(batch))
            scopes.append(scope_spans.scope)
            where.extend((r, s, i) for i in range(len(batch)))
    trace_ids = [s.trace_id for s in spans]
    span_ids = [s.span_id for s in spans]
    parent_ids = [s.parent_span_id for s in spans]
    starts = [s.start_time_unix_nano for s in spans]
    ends = [s.end_time_unix_nano for s in spans]
    links_lists = [s.links for s in spans]
    events_lists = [s.events for s in spans]
    bad_rows = [
        i
        for i in range(len(spans))
        if len(trace_ids[i]) != 16
        or len(span_ids[i]) != 8
        or len(parent_ids[i]) not in (0, 8)
        or not 0 < starts[i] <= _INT64_MAX
        or not 0 < ends[i] <= _INT64_MAX
        or ends[i] < starts[i]
        or (links_lists[i]
        and any(len(link.trace_id) != 16 or len(link.span_id) != 8 for link in links_lists[i]))
        or (events_lists[i]
        and any(e.time_unix_nano > _INT64_MAX for e in events_lists[i]))
    ]
    errors: list[str] = []
    if bad_rows:
        for i in bad_rows[:10]:
            r, s, k = where[i]
            errors.append(f"resourceSpans[{r}].scopeSpans[{s}].spans[{k}]: {_span_problem(spans[i])}")
        bad = set(bad_rows)
        good = [i for i in range(len(spans)) if i not in bad]
        spans = [spans[i] for i in good]
        resource_of = [resource_of[i] for i in good]
        scope_of = [scope_of[i] for i in good]
        trace_ids = [trace_ids[i] for i in good]
        span_ids = [span_ids[i] for i in good]
        parent_ids = [parent_ids[i] for i in good]
        starts = [starts[i] for i in good]
        ends = [ends[i] for i in good]
        links_lists = [links_lists[i] for i in good]
        events_lists = [events_lists[i] for i in good]
    rejected = len(bad_rows)
    n = len(spans)
    if n == 0:
        return Decoded("traces", None, rejected, errors)
    resource_maps = _maps([res.attributes for res in resources])
    services = []
    for res in resources:
        service = None
        for kv in res.attributes:
            if kv.key == "service.name":
                service = any_value_text(kv.value)
        services.append(service)
    res_index = pa.array(resource_of, pa.int32())
    scope_index = pa.array(scope_of, pa.int32())
    statuses = [s.status for s in spans]
    codes = [st.code for st in statuses]
    kinds = [s.kind for s in spans]
    start = pa.array(starts, pa.int64())
    end = pa.array(ends, pa.int64())
    events = [e for es in events_lists for e in es]
    links = [link for ls in links_lists for link in ls]
    columns = {
        "trace_id": hex_array(b"".join(trace_ids), 16),
        "span_id": hex_array(b"".join(span_ids), 8),
        "parent_span_id": _ids(parent_ids, 8, True),
        "trace_state": [s.trace_state or None for s in spans],
        "name": [s.name for s in spans],
        "kind": [KIND_NAMES[k] if 0 <= k < len(KIND_NAMES) else "INTERNAL" for k in kinds],
        "service_name": pa.array(services, pa.string()).take(res_index),
        "start_time": start.cast(schema.TIMESTAMP),
        "end_time": end.cast(schema.TIMESTAMP),
        "duration_ns": pc.subtract(end, start),
        "status_code": [STATUS_NAMES[c] if 0 <= c < len(STATUS_NAMES) else "UNSET" for c in codes],
        "status_message": [st.message or None for st in statuses],
        "attributes": _maps([s.attributes for s in spans]),
        "resource_attributes": resource_maps.take(res_index),
        "events": pa.ListArray.from_arrays(
            _offsets(events_lists),
            pa.StructArray.from_arrays(
                [
                    pa.array([e.name for e in events], pa.string()),
                    _times([e.time_unix_nano for e in events]),
                    _maps([e.attributes for e in events]),
                ],
                fields=list(schema.EVENT),
            ),
            type=pa.list_(schema.EVENT),
        ),
        "links": pa.ListArray.from_arrays(
            _offsets(links_lists),
            pa.StructArray.from_arrays(
                [
                    hex_array(b"".join([link.trace_id for link in links]), 16),
                    hex_array(b"".join([link.span_id for link in links]), 8),
                    pa.array([link.trace_state or None for link in links], pa.string()),
                    _maps([link.attributes for link in links]),
                ],
                fields=list(schema.LINK),
            ),
            type=pa.list_(schema.LINK),
        ),
        "scope_name": pa.array([sc.name or None for sc in scopes], pa.string()).take(scope_index),
        "scope_version": pa.array([sc.version or None for sc in scopes], pa.string()).take(scope_index),
        "dropped_attributes_count": pa.array([s.dropped_attributes_count for s in spans], pa.int32()),
        "dropped_events_count": pa.array([s.dropped_events_count for s in spans], pa.int32()),
        "dropped_links_count": pa.array([s.dropped_links_count for s in spans], pa.int32()),
    }
    return Decoded("traces", table_from_columns("spans", columns, n), rejected, errors)


def _span_problem(span: Any) -> str | None:
    problem = (
        _id_error("traceId", span.trace_id, 16, optional=False)
        or _id_error("spanId", span.span_id, 8, optional=False)
        or _id_error("parentSpanId", span.parent_span_id, 8, optional=True)
    )
    if problem:
        return problem
    if span.start_time_unix_nano == 0 or span.end_time_unix_nano == 0:
        return "startTimeUnixNano and endTimeUnixNano are required"
    if span.start_time_unix_nano > _INT64_MAX or span.end_time_unix_nano > _INT64_MAX:
        return "startTimeUnixNano/endTimeUnixNano is past the year 2262"
    if span.end_time_unix_nano < span.start_time_unix_nano:
        return (
            f"endTimeUnixNano {span.end_time_unix_nano} is before startTimeUnixNano {span.start_time_unix_nano}"
            " (a span cannot end before it starts; the span is rejected, not clamped)"
        )
    for link in span.links:
        problem = _id_error("a link's traceId", link.trace_id, 16, optional=False) or _id_error(
            "a link's spanId", link.span_id, 8, optional=False
        )
        if problem:
            return problem
    for event in span.events:
        if event.time_unix_nano > _INT64_MAX:
            return "an event's timeUnixNano is past the year 2262"
    return None


# --------------------------------------------------------------------------- logs


def decode_logs(request: Any) -> Decoded:
    """Log records of an ``ExportLogsServiceRequest``; a record with an invalid id is rejected alone."""
    cols: dict[str, list[Any]] = {
        name: []
        for name in (
            "timestamp",
            "observed_timestamp",
            "trace_id",
            "span_id",
            "trace_flags",
            "severity_text",
            "severity_number",
            "body",
            "service_name",
            "logger_name",
            "event_name",
            "dropped_attributes_count",
        )
    }
    attrs = _Maps()
    resources = _Maps()
    errors: list[str] = []
    rejected = 0
    for r, resource_logs in enumerate(request.resource_logs):
        rkeys, rvalues, service = _resource_pairs(resource_logs.resource)
        for s, scope_logs in enumerate(resource_logs.scope_logs):
            logger = scope_logs.scope.name or None
            for i, record in enumerate(scope_logs.log_records):
                problem = _id_error("traceId", record.trace_id, 16, optional=True) or _id_error(
                    "spanId", record.span_id, 8, optional=True
                )
                if not problem and max(record.time_unix_nano, record.observed_time_unix_nano) > _INT64_MAX:
                    problem = "timeUnixNano/observedTimeUnixNano is past the year 2262"
                if problem:
                    rejected += 1
                    if len(errors) < 10:
                        errors.append(f"resourceLogs[{r}].scopeLogs[{s}].logRecords[{i}]: {problem}")
                    continue
                cols["timestamp"].append(record.time_unix_nano or record.observed_time_unix_nano or None)
                cols["observed_timestamp"].append(record.observed_time_unix_nano or None)
                cols["trace_id"].append(record.trace_id)
                cols["span_id"].append(record.span_id)
                cols["trace_flags"].append(record.flags & 0xFF)
                cols["severity_text"].append(record.severity_text or None)
                cols["severity_number"].append(record.severity_number or None)
                cols["body"].append(any_value_text(record.body) if record.HasField("body") else None)
                cols["service_name"].append(service)
                cols["logger_name"].append(logger)
                cols["event_name"].append(record.event_name or None)
                cols["dropped_attributes_count"].append(record.dropped_attributes_count)
                attrs.add(record.attributes)
                resources.add_encoded(rkeys, rvalues)
    n = len(cols["timestamp"])
    if n == 0:
        return Decoded("logs", None, rejected, errors)
    columns: dict[str, Any] = dict(cols)
    columns["timestamp"] = pa.array(cols["timestamp"], pa.int64()).cast(schema.TIMESTAMP)
    columns["observed_timestamp"] = pa.array(cols["observed_timestamp"], pa.int64()).cast(schema.TIMESTAMP)
    columns["trace_id"] = _ids(cols["trace_id"], 16, True)
    columns["span_id"] = _ids(cols["span_id"], 8, True)
    columns["attributes"] = attrs.finish()
    columns["resource_attributes"] = resources.finish()
    return Decoded("logs", table_from_columns("logs", columns, n), rejected, errors)


# --------------------------------------------------------------------------- metrics

_TEMPORALITY = {1: "delta", 2: "cumulative"}


def _point_attributes(point: Any) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in point.attributes}


def _optional(point: Any, name: str) -> float | None:
    return getattr(point, name) if point.HasField(name) else None


def decode_metrics(request: Any) -> Decoded:
    """Data points of an ``ExportMetricsServiceRequest``, one row each (all five metric types)."""
    rows = MetricRows()
    errors: list[str] = []
    rejected = 0
    for r, resource_metrics in enumerate(request.resource_metrics):
        rkeys, rvalues, service = _resource_pairs(resource_metrics.resource)
        resource = (rkeys, rvalues)
        for s, scope_metrics in enumerate(resource_metrics.scope_metrics):
            scope_name = scope_metrics.scope.name or None
            for m, metric in enumerate(scope_metrics.metrics):
                common = {
                    "name": metric.name,
                    "description": metric.description or None,
                    "unit": metric.unit or None,
                    "service_name": service,
                    "scope_name": scope_name,
                }
                kind = metric.WhichOneof("data")
                if kind is None:
                    # A metric with no data carries no point: nothing to store, nothing lost.
                    continue
                data = getattr(metric, kind)
                for p, point in enumerate(data.data_points):
                    if max(point.time_unix_nano, point.start_time_unix_nano) > _INT64_MAX:
                        rejected += 1
                        if len(errors) < 10:
                            errors.append(
                                f"resourceMetrics[{r}].scopeMetrics[{s}].metrics[{m}].dataPoints[{p}]: "
                                "timeUnixNano is past the year 2262"
                            )
                        continue
                    _add_point(rows, kind, data, point, resource, common)
    table = rows.finish() if rows.num_rows else None
    return Decoded("metrics", table, rejected, errors)


def _add_point(
    rows: MetricRows, kind: str, data: Any, point: Any, resource: tuple[list[str], list[Any]], common: dict
) -> None:
    base = {
        "timestamp": point.time_unix_nano or None,
        "start_timestamp": point.start_time_unix_nano or None,
    }
    if kind in ("gauge", "sum"):
        which = point.WhichOneof("value")
        value = None if which is None else float(getattr(point, which))
        if kind == "sum":
            rows.add(
                attributes=_point_attributes(point),
                resource=resource,
                type="counter" if data.is_monotonic else "gauge",
                is_monotonic=data.is_monotonic,
                temporality=_TEMPORALITY.get(data.aggregation_temporality),
                value=value,
                **base,
                **common,
            )
        else:
            rows.add(attributes=_point_attributes(point), resource=resource, type="gauge", value=value, **base, **common)
    elif kind == "histogram":
        rows.add(
            attributes=_point_attributes(point),
            resource=resource,
            type="histogram",
            temporality=_TEMPORALITY.get(data.aggregation_temporality),
            count=point.count,
            sum=_optional(point, "sum"),
            bucket_counts=list(point.bucket_counts),
            explicit_bounds=list(point.explicit_bounds),
            min=_optional(point, "min"),
            max=_optional(point, "max"),
            **base,
            **common,
        )
    elif kind == "exponential_histogram":
        rows.add(
            attributes=_point_attributes(point),
            resource=resource,
            type="exponential_histogram",
            temporality=_TEMPORALITY.get(data.aggregation_temporality),
            count=point.count,
            sum=_optional(point, "sum"),
            min=_optional(point, "min"),
            max=_optional(point, "max"),
            scale=point.scale,
            zero_count=point.zero_count,
            positive_offset=point.positive.offset,
            positive_bucket_counts=list(point.positive.bucket_counts),
            negative_offset=point.negative.offset,
            negative_bucket_counts=list(point.negative.bucket_counts),
            **base,
            **common,
        )
    else:  # summary
        rows.add(
            attributes=_point_attributes(point),
            resource=resource,
            type="summary",
            count=point.count,
            sum=point.sum,
            quantiles=[{"quantile": q.quantile, "value": q.value} for q in point.quantile_values],
            **base,
            **common,
        )


DECODERS: dict[str, Callable[[Any], Decoded]] = {
    "traces": decode_traces,
    "metrics": decode_metrics,
    "logs": decode_logs,
}


def count_items(signal: str, request: Any) -> int:
    """How many spans, data points or log records a request holds (for partial-success counts)."""
    if signal == "traces":
        return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
    if signal == "logs":
        return sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)
    total = 0
    for rm in request.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                if kind is not None:
                    total += len(getattr(metric, kind).data_points)
    return total


# --------------------------------------------------------------------------- parsing


def parse_protobuf(signal: str, body: bytes | bytearray) -> Any:
    """Decode a binary ``Export*ServiceRequest``; raises :class:`InputError` naming the signal."""
    request_class = SIGNALS[signal][2]
    try:
        return request_class.FromString(body)
    except DecodeError as exc:
        msg = f"body is not a valid protobuf {request_class.__name__} ({exc})"
        raise InputError(msg) from None


def detect_protobuf_signal(body: bytes) -> str | None:
    """Which signal a binary OTLP message holds, or None when it reads as none of them.

    Each request type parses any bytes without error, so the signal is the one whose schema knows
    every field of the message (nothing left as an unknown field) and that holds at least one item.
    """
    for signal in ("traces", "logs", "metrics"):
        try:
            request = SIGNALS[signal][2].FromString(body)
        except DecodeError:
            continue
        if count_items(signal, request) == 0:
            continue
        request.DiscardUnknownFields()
        if request.ByteSize() == len(body):
            return signal
    return None


def request_from_json(obj: Any, signal: str | None = None) -> tuple[str, Any]:
    """An OTLP JSON object as a protobuf request, following the OTLP JSON rules (hex ids).

    ``signal`` defaults to the one named by the object's top-level key. Raises :class:`InputError`
    with the JSON path of the first problem.
    """
    if not isinstance(obj, dict):
        msg = f"expected a JSON object with resourceSpans, resourceMetrics or resourceLogs, got {_json_kind(obj)}"
        raise InputError(msg)
    if signal is None:
        present = [key for key in SIGNAL_OF_KEY if key in obj]
        if not present:
            keys = ", ".join(list(obj)[:5]) or "none"
            msg = f"no resourceSpans, resourceMetrics or resourceLogs key (keys: {keys})"
            raise InputError(msg)
        if len(present) > 1:
            msg = f"one object holds several signals ({', '.join(present)}); OTLP sends one per request"
            raise InputError(msg)
        signal = SIGNAL_OF_KEY[present[0]]
    key = SIGNALS[signal][1]
    try:
        fixed = _fix_json(obj, key)
        request = json_format.ParseDict(
            fixed, SIGNALS[signal][2](), ignore_unknown_fields=True, max_recursion_depth=MAX_JSON_DEPTH
        )
    except json_format.ParseError as exc:
        if "Message too deep" in str(exc):
            msg = f"{key} is nested too deeply (OTLP JSON values may nest at most {MAX_JSON_DEPTH} levels)"
            raise InputError(msg) from None
        raise InputError(cap_quoted(str(exc))) from None
    except RecursionError:
        msg = f"{key} is nested too deeply to decode (OTLP JSON values may nest at most {MAX_JSON_DEPTH} levels)"
        raise InputError(msg) from None
    return signal, request


def _json_kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _hex_to_b64(value: Any, path: str, width: int, *, optional: bool) -> str:
    if value is None or value == "":
        if optional:
            return ""
        msg = f"{path} is missing (a span needs a {width * 2}-hex-digit id)"
        raise InputError(msg)
    if not isinstance(value, str) or len(value) != width * 2 or not _HEX.fullmatch(value):
        hint = " (looks like base64; OTLP JSON ids are hex)" if isinstance(value, str) and len(value) in (12, 24) else ""
        msg = f"{path} {quote(value)} is not {width * 2} hex digits{hint}"
        raise InputError(msg)
    return base64.b64encode(bytes.fromhex(value)).decode("ascii")


def _fix_values(key_values: Any, path: str) -> Any:
    """Wrap bare-list ``arrayValue``/``kvlistValue`` into ``{"values": [...]}``, recursively."""
    if not isinstance(key_values, list):
        return key_values
    out = []
    for i, kv in enumerate(key_values):
        if isinstance(kv, dict) and isinstance(kv.get("value"), dict):
            kv = dict(kv)
            kv["value"] = _fix_any(kv["value"], f"{path}[{i}].value")
        out.append(kv)
    return out


def _fix_any(value: dict, path: str) -> dict:
    if "intValue" in value:
        strict_int(value["intValue"], f"{path}.intValue")
    if "arrayValue" in value:
        inner = value["arrayValue"]
        items = inner if isinstance(inner, list) else inner.get("values", []) if isinstance(inner, dict) else inner
        if isinstance(items, list):
            return {
                "arrayValue": {
                    "values": [_fix_any(v, f"{path}.arrayValue[{j}]") if isinstance(v, dict) else v for j, v in enumerate(items)]
                }
            }
    if "kvlistValue" in value:
        inner = value["kvlistValue"]
        items = inner if isinstance(inner, list) else inner.get("values", []) if isinstance(inner, dict) else inner
        if isinstance(items, list):
            return {"kvlistValue": {"values": _fix_values(items, path)}}
    return value


def _fix_attributes(obj: dict, path: str) -> None:
    if "attributes" in obj:
        obj["attributes"] = _fix_values(obj["attributes"], f"{path}.attributes")


def _fix_json(obj: dict, key: str) -> dict:
    """A shallow-copied request with hex ids as base64 and AnyValue shapes normalised."""
    out = dict(obj)
    resources = obj.get(key)
    if not isinstance(resources, list):
        if resources is None:
            return out
        msg = f"{key} must be an array, got {_json_kind(resources)}"
        raise InputError(msg)
    fixed_resources = []
    scope_key, items_key = {
        "resourceSpans": ("scopeSpans", "spans"),
        "resourceLogs": ("scopeLogs", "logRecords"),
        "resourceMetrics": ("scopeMetrics", "metrics"),
    }[key]
    for r, resource in enumerate(resources):
        if not isinstance(resource, dict):
            msg = f"{key}[{r}] must be an object, got {_json_kind(resource)}"
            raise InputError(msg)
        resource = dict(resource)
        if isinstance(resource.get("resource"), dict):
            resource["resource"] = dict(resource["resource"])
            _fix_attributes(resource["resource"], f"{key}[{r}].resource")
        scopes = resource.get(scope_key)
        if isinstance(scopes, list):
            fixed_scopes = []
            for s, scope in enumerate(scopes):
                if not isinstance(scope, dict):
                    msg = f"{key}[{r}].{scope_key}[{s}] must be an object, got {_json_kind(scope)}"
                    raise InputError(msg)
                scope = dict(scope)
                if isinstance(scope.get("scope"), dict):
                    scope["scope"] = dict(scope["scope"])
                    _fix_attributes(scope["scope"], f"{key}[{r}].{scope_key}[{s}].scope")
                items = scope.get(items_key)
                if isinstance(items, list):
                    base = f"{key}[{r}].{scope_key}[{s}].{items_key}"
                    scope[items_key] = [_fix_item(key, item, f"{base}[{i}]") for i, item in enumerate(items)]
                fixed_scopes.append(scope)
            resource[scope_key] = fixed_scopes
        fixed_resources.append(resource)
    out[key] = fixed_resources
    return out


def _strict_ints(obj: dict, path: str) -> None:
    for name in _INT_FIELDS:
        if name in obj:
            strict_int(obj[name], f"{path}.{name}")
    if isinstance(obj.get("bucketCounts"), list):
        for b, count in enumerate(obj["bucketCounts"]):
            strict_int(count, f"{path}.bucketCounts[{b}]")


def _fix_item(key: str, item: Any, path: str) -> Any:
    if not isinstance(item, dict):
        msg = f"{path} must be an object, got {_json_kind(item)}"
        raise InputError(msg)
    item = dict(item)
    _strict_ints(item, path)
    if key == "resourceSpans":
        item["traceId"] = _hex_to_b64(item.get("traceId"), f"{path}.traceId", 16, optional=False)
        item["spanId"] = _hex_to_b64(item.get("spanId"), f"{path}.spanId", 8, optional=False)
        item["parentSpanId"] = _hex_to_b64(item.get("parentSpanId"), f"{path}.parentSpanId", 8, optional=True)
        _fix_attributes(item, path)
        for name in ("events", "links"):
            if isinstance(item.get(name), list):
                fixed = []
                for j, sub in enumerate(item[name]):
                    if isinstance(sub, dict):
                        sub = dict(sub)
                        sub_path = f"{path}.{name}[{j}]"
                        _strict_ints(sub, sub_path)
                        if name == "links":
                            sub["traceId"] = _hex_to_b64(sub.get("traceId"), f"{sub_path}.traceId", 16, optional=False)
                            sub["spanId"] = _hex_to_b64(sub.get("spanId"), f"{sub_path}.spanId", 8, optional=False)
                        _fix_attributes(sub, sub_path)
                    fixed.append(sub)
                item[name] = fixed
    elif key == "resourceLogs":
        item["traceId"] = _hex_to_b64(item.get("traceId"), f"{path}.traceId", 16, optional=True)
        item["spanId"] = _hex_to_b64(item.get("spanId"), f"{path}.spanId", 8, optional=True)
        _fix_attributes(item, path)
        if isinstance(item.get("body"), dict):
            item["body"] = _fix_any(item["body"], f"{path}.body")
    else:
        for kind in ("gauge", "sum", "histogram", "exponentialHistogram", "summary"):
            data = item.get(kind)
            if isinstance(data, dict) and isinstance(data.get("dataPoints"), list):
                data = dict(data)
                points = []
                for p, point in enumerate(data["dataPoints"]):
                    if isinstance(point, dict):
                        point = dict(point)
                        p_path = f"{path}.{kind}.dataPoints[{p}]"
                        _strict_ints(point, p_path)
                        _fix_attributes(point, p_path)
                        if isinstance(point.get("exemplars"), list):
                            point["exemplars"] = [
                                _fix_exemplar(e, f"{p_path}.exemplars[{x}]") for x, e in enumerate(point["exemplars"])
                            ]
                    points.append(point)
                data["dataPoints"] = points
                item[kind] = data
    return item


def _fix_exemplar(exemplar: Any, path: str) -> Any:
    if not isinstance(exemplar, dict):
        return exemplar
    exemplar = dict(exemplar)
    _strict_ints(exemplar, path)
    exemplar["traceId"] = _hex_to_b64(exemplar.get("traceId"), f"{path}.traceId", 16, optional=True)
    exemplar["spanId"] = _hex_to_b64(exemplar.get("spanId"), f"{path}.spanId", 8, optional=True)
    if "filteredAttributes" in exemplar:
        exemplar["filteredAttributes"] = _fix_values(exemplar["filteredAttributes"], f"{path}.filteredAttributes")
    return exemplar


def decode_json_object(obj: Any, signal: str | None = None) -> Decoded:
    """Decode one OTLP JSON object (already parsed) into store rows."""
    signal, request = request_from_json(obj, signal)
    return DECODERS[signal](request)

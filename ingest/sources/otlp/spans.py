"""``ExportTraceServiceRequest`` to ``spans`` rows; a span with an invalid id or time is rejected alone."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ingest.sources.otlp.columns import _id_error, _ids, _maps, _offsets, _times
from ingest.sources.otlp.model import _INT64_MAX, KIND_NAMES, STATUS_NAMES, Decoded
from ingest.sources.otlp.values import any_value_text
from ingest.store import schema
from ingest.store.encoding import hex_array, table_from_columns


def decode_traces(request: Any) -> Decoded:
    """Spans of an ``ExportTraceServiceRequest``; a span with an invalid id or time is rejected alone."""
    spans: list[Any] = []
    resource_of: list[int] = []
    scope_of: list[int] = []
    resources = []
    scopes: list[Any] = []
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
        or (
            links_lists[i]
            and any(len(link.trace_id) != 16 or len(link.span_id) != 8 for link in links_lists[i])
        )
        or (events_lists[i] and any(e.time_unix_nano > _INT64_MAX for e in events_lists[i]))
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
        "start_time": start.cast(schema.NS_TIMESTAMP),
        "end_time": end.cast(schema.NS_TIMESTAMP),
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
                fields=list(schema.EVENT_NS),
            ),
            type=pa.list_(schema.EVENT_NS),
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

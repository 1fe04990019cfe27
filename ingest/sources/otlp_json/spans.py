"""The ``spans`` table from the reader's resourceSpans."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest.sources.otlp_json.attributes import _attribute_maps, _nested_list, _resources, _unstored_ok
from ingest.sources.otlp_json.nesting import _empty_null, _field, _flatten, _levels
from ingest.sources.otlp_json.scalars import (
    _KIND_CODES,
    _KIND_OF_CODE,
    _STATUS_CODES,
    _STATUS_OF_CODE,
    _count,
    _enum,
    _hex,
    _times,
    _uint,
)
from ingest.store import schema
from ingest.store.encoding import table_from_columns


def _spans(resource_spans: pa.Array) -> tuple[pa.Table | None, np.ndarray, np.ndarray]:
    res_items, scopes, spans, lines, res_of, scope_of, odd_lines = _levels(
        resource_spans, "scopeSpans", "spans"
    )
    n = len(spans)
    if n == 0:
        return None, odd_lines, np.zeros(len(odd_lines), dtype=bool)
    trace_id, ok = _hex(_field(spans, "traceId"), 32, optional=False)
    span_id, ok_span = _hex(_field(spans, "spanId"), 16, optional=False)
    parent, ok_parent = _hex(_field(spans, "parentSpanId"), 16, optional=True)
    start, ok_start = _uint(_field(spans, "startTimeUnixNano"), required=True)
    end, ok_end = _uint(_field(spans, "endTimeUnixNano"), required=True)
    kind, ok_kind = _enum(_field(spans, "kind"), _KIND_CODES, _KIND_OF_CODE)
    status = _field(spans, "status")
    status_code, ok_status = _enum(_field(status, "code"), _STATUS_CODES, _STATUS_OF_CODE)
    dropped_attrs, ok_da = _count(_field(spans, "droppedAttributesCount"))
    dropped_events, ok_de = _count(_field(spans, "droppedEventsCount"))
    dropped_links, ok_dl = _count(_field(spans, "droppedLinksCount"))
    _, ok_flags = _uint(_field(spans, "flags"), required=False, limit=2**32 - 1)
    ok &= ok_span & ok_parent & ok_start & ok_end & ok_kind & ok_status & ok_da & ok_de & ok_dl & ok_flags
    ok &= np.asarray(pc.fill_null(pc.not_equal(start, 0), False).to_numpy(zero_copy_only=False), dtype=bool)
    res_ok, scope_ok = _unstored_ok(res_items, scopes)
    ok &= res_ok[res_of] & scope_ok[scope_of]
    # A span that ends before it starts takes the exact path, which rejects it and says so.
    ok &= np.asarray(
        pc.fill_null(pc.greater_equal(end, start), False).to_numpy(zero_copy_only=False), dtype=bool
    )

    events_col = _field(spans, "events")
    events, span_of_event = _flatten(events_col)
    event_time, ok_et = _uint(_field(events, "timeUnixNano"), required=False)
    _, ok_eda = _count(_field(events, "droppedAttributesCount"))
    links_col = _field(spans, "links")
    links, span_of_link = _flatten(links_col)
    link_trace, ok_lt = _hex(_field(links, "traceId"), 32, optional=False)
    link_span, ok_ls = _hex(_field(links, "spanId"), 16, optional=False)
    _, ok_lda = _count(_field(links, "droppedAttributesCount"))
    _, ok_lf = _uint(_field(links, "flags"), required=False, limit=2**32 - 1)
    for sub_ok, owner in ((ok_et & ok_eda, span_of_event), (ok_lt & ok_ls & ok_lda & ok_lf, span_of_link)):
        if not sub_ok.all():
            ok[owner[~sub_ok]] = False

    resource_maps, services = _resources(res_items)
    res_index = pa.array(res_of)
    scope_struct = _field(scopes, "scope")
    scope_index = pa.array(scope_of)
    columns = {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": parent,
        "trace_state": _empty_null(_field(spans, "traceState")),
        "name": pc.fill_null(_field(spans, "name"), ""),
        "kind": kind,
        "service_name": services.take(res_index),
        "start_time": _times(start),
        "end_time": _times(end),
        "duration_ns": pc.subtract(end, start),
        "status_code": status_code,
        "status_message": _empty_null(_field(status, "message")),
        "attributes": _attribute_maps(_field(spans, "attributes")),
        "resource_attributes": resource_maps.take(res_index),
        "events": _nested_list(
            events_col,
            schema.EVENT_NS,
            [
                pc.fill_null(_field(events, "name"), ""),
                _times(event_time),
                _attribute_maps(_field(events, "attributes")),
            ],
        ),
        "links": _nested_list(
            links_col,
            schema.LINK,
            [
                link_trace,
                link_span,
                _empty_null(_field(links, "traceState")),
                _attribute_maps(_field(links, "attributes")),
            ],
        ),
        "scope_name": _empty_null(_field(scope_struct, "name")).take(scope_index),
        "scope_version": _empty_null(_field(scope_struct, "version")).take(scope_index),
        "dropped_attributes_count": dropped_attrs,
        "dropped_events_count": dropped_events,
        "dropped_links_count": dropped_links,
    }
    return (
        table_from_columns("spans", columns, n),
        np.concatenate([lines, odd_lines]),
        np.concatenate([ok, np.zeros(len(odd_lines), dtype=bool)]),
    )

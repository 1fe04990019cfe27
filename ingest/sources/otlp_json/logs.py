"""The ``logs`` table from the reader's resourceLogs."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest.sources.otlp_json.attributes import _attribute_maps, _resources, _unstored_ok, _value_text
from ingest.sources.otlp_json.nesting import _empty_null, _field, _levels
from ingest.sources.otlp_json.scalars import _SEVERITY_NAMES, _count, _hex, _times, _uint
from ingest.store.encoding import table_from_columns


def _logs(resource_logs: pa.Array) -> tuple[pa.Table | None, np.ndarray, np.ndarray]:
    res_items, scopes, records, lines, res_of, scope_of, odd_lines = _levels(
        resource_logs, "scopeLogs", "logRecords"
    )
    n = len(records)
    if n == 0:
        return None, odd_lines, np.zeros(len(odd_lines), dtype=bool)
    trace_id, ok = _hex(_field(records, "traceId"), 32, optional=True)
    span_id, ok_span = _hex(_field(records, "spanId"), 16, optional=True)
    time, ok_time = _uint(_field(records, "timeUnixNano"), required=False)
    observed, ok_observed = _uint(_field(records, "observedTimeUnixNano"), required=False)
    severity_text = _field(records, "severityNumber").cast(pa.string())
    severity_index = pc.index_in(severity_text, value_set=pa.array(_SEVERITY_NAMES))
    severity_digits, ok_sev = _uint(
        pc.if_else(pc.is_valid(severity_index), pa.scalar(None, pa.string()), severity_text),
        required=False,
        limit=2**31 - 1,
    )
    severity = pc.coalesce(severity_index.cast(pa.int64()), severity_digits)
    flags, ok_flags = _uint(_field(records, "flags"), required=False, limit=2**32 - 1)
    dropped, ok_dropped = _count(_field(records, "droppedAttributesCount"))
    ok &= ok_span & ok_time & ok_observed & ok_sev & ok_flags & ok_dropped
    # A null record ("logRecords": [null]) has no required field to fail on: protobuf refuses it.
    ok &= np.asarray(pc.is_valid(records).to_numpy(zero_copy_only=False), dtype=bool)
    res_ok, scope_ok = _unstored_ok(res_items, scopes)
    ok &= res_ok[res_of] & scope_ok[scope_of]
    time = pc.if_else(pc.equal(pc.fill_null(time, 0), 0), observed, time)
    observed = pc.if_else(pc.equal(pc.fill_null(observed, 0), 0), pa.scalar(None, pa.int64()), observed)
    time = pc.if_else(pc.equal(pc.fill_null(time, 0), 0), pa.scalar(None, pa.int64()), time)
    severity = pc.if_else(pc.equal(pc.fill_null(severity, 0), 0), pa.scalar(None, pa.int64()), severity)
    resource_maps, services = _resources(res_items)
    res_index = pa.array(res_of)
    scope_struct = _field(scopes, "scope")
    body = _field(records, "body")
    columns = {
        "timestamp": _times(time),
        "observed_timestamp": _times(observed),
        "trace_id": trace_id,
        "span_id": span_id,
        "trace_flags": pc.bit_wise_and(pc.fill_null(flags, 0), 0xFF).cast(pa.int32()),
        "severity_text": _empty_null(_field(records, "severityText")),
        "severity_number": severity.cast(pa.int32()),
        "body": _value_text(body) if len(body) else body,
        "attributes": _attribute_maps(_field(records, "attributes")),
        "resource_attributes": resource_maps.take(res_index),
        "service_name": services.take(res_index),
        "logger_name": _empty_null(_field(scope_struct, "name")).take(pa.array(scope_of)),
        "event_name": _empty_null(_field(records, "eventName")),
        "dropped_attributes_count": dropped,
    }
    return (
        table_from_columns("logs", columns, n),
        np.concatenate([lines, odd_lines]),
        np.concatenate([ok, np.zeros(len(odd_lines), dtype=bool)]),
    )

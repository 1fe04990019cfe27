"""OTel SDK log records to the ``logs`` table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from ingest.store.encoding.columns import _EMPTY, _flat_map, attribute_text, table_from_columns
from ingest.store.encoding.spans import _resource_columns


def body_text(body: Any) -> str | None:
    """A log body as text: strings as they are, anything else as JSON."""
    if body is None or type(body) is str:
        return body
    return attribute_text(body)


def encode_logs(records: Sequence[Any]) -> pa.Table:
    """Encode OTel SDK ``ReadableLogRecord`` (or ``LogData``) objects as a ``logs`` table."""
    n = len(records)
    logs = [r.log_record for r in records]
    resource_column, services = _resource_columns([r.resource for r in records])
    scopes = [r.instrumentation_scope for r in records]
    columns = {
        "timestamp": [log.timestamp if log.timestamp is not None else log.observed_timestamp for log in logs],
        "observed_timestamp": [log.observed_timestamp for log in logs],
        "trace_id": [f"{log.trace_id:032x}" if log.trace_id else None for log in logs],
        "span_id": [f"{log.span_id:016x}" if log.span_id else None for log in logs],
        "trace_flags": [None if log.trace_flags is None else int(log.trace_flags) for log in logs],
        "severity_text": [log.severity_text for log in logs],
        "severity_number": [
            None if log.severity_number is None else log.severity_number.value for log in logs
        ],
        "body": [body_text(log.body) for log in logs],
        "attributes": _flat_map([log.attributes or _EMPTY for log in logs]),
        "resource_attributes": resource_column,
        "service_name": services,
        "logger_name": [None if sc is None else sc.name for sc in scopes],
        "event_name": [getattr(log, "event_name", None) or None for log in logs],
        "dropped_attributes_count": [getattr(r, "dropped_attributes", 0) for r in records],
    }
    return table_from_columns("logs", columns, n)

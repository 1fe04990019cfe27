"""``ExportLogsServiceRequest`` to ``logs`` rows."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from ingest.sources.otlp.columns import _id_error, _ids, _Maps, _resource_pairs
from ingest.sources.otlp.model import _INT64_MAX, Decoded
from ingest.sources.otlp.values import any_value_text
from ingest.store import schema
from ingest.store.encoding import table_from_columns


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
    columns["timestamp"] = pa.array(cols["timestamp"], pa.int64()).cast(schema.NS_TIMESTAMP)
    columns["observed_timestamp"] = pa.array(cols["observed_timestamp"], pa.int64()).cast(schema.NS_TIMESTAMP)
    columns["trace_id"] = _ids(cols["trace_id"], 16, True)
    columns["span_id"] = _ids(cols["span_id"], 8, True)
    columns["attributes"] = attrs.finish()
    columns["resource_attributes"] = resources.finish()
    return Decoded("logs", table_from_columns("logs", columns, n), rejected, errors)

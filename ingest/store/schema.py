"""The store's tables: one Arrow schema per signal, shared by exporters, importers and the receiver.

The column names are fixed by SPEC.md. Attribute maps are ``MAP(VARCHAR, VARCHAR)`` so that
``attributes['key']`` works in DuckDB; values are encoded as text by :func:`ingest.store.encoding.attribute_text`
(numbers stay castable, lists and maps become JSON arrays/objects).
"""

from __future__ import annotations

import pyarrow as pa

#: Every time column is a microsecond UTC timestamp: the precision Spark 4 (which refuses Parquet's
#: nanosecond timestamps with default settings), ClickHouse, DuckDB, polars and pandas all read as a
#: timestamp. The exact nanoseconds sit beside it in an integer ``*_unix_nano`` column (see NANO_COLUMNS).
TIMESTAMP = pa.timestamp("us", tz="UTC")
#: What the encoders hand to :func:`ingest.encoding.table_from_columns`: nanosecond timestamps (or the
#: integer nanoseconds), which it splits into the stored microsecond timestamp and ``*_unix_nano``.
NS_TIMESTAMP = pa.timestamp("ns", tz="UTC")
UNIX_NANO = pa.int64()
ATTRIBUTES = pa.map_(pa.string(), pa.string())

EVENT = pa.struct(
    [
        ("name", pa.string()),
        ("timestamp", TIMESTAMP),
        ("time_unix_nano", UNIX_NANO),
        ("attributes", ATTRIBUTES),
    ]
)
#: A span event as the encoders build it (nanosecond timestamp, no ``time_unix_nano``); also the
#: event type of stores written before the portable layout.
EVENT_NS = pa.struct([("name", pa.string()), ("timestamp", NS_TIMESTAMP), ("attributes", ATTRIBUTES)])
LINK = pa.struct(
    [
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("trace_state", pa.string()),
        ("attributes", ATTRIBUTES),
    ]
)
QUANTILE = pa.struct([("quantile", pa.float64()), ("value", pa.float64())])

SPANS = pa.schema(
    [
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("parent_span_id", pa.string()),
        ("trace_state", pa.string()),
        ("name", pa.string()),
        ("kind", pa.string()),
        ("service_name", pa.string()),
        ("start_time", TIMESTAMP),
        ("end_time", TIMESTAMP),
        ("start_time_unix_nano", UNIX_NANO),
        ("end_time_unix_nano", UNIX_NANO),
        ("duration_ns", pa.int64()),
        ("status_code", pa.string()),
        ("status_message", pa.string()),
        ("attributes", ATTRIBUTES),
        ("resource_attributes", ATTRIBUTES),
        ("events", pa.list_(EVENT)),
        ("links", pa.list_(LINK)),
        ("scope_name", pa.string()),
        ("scope_version", pa.string()),
        ("dropped_attributes_count", pa.int32()),
        ("dropped_events_count", pa.int32()),
        ("dropped_links_count", pa.int32()),
    ]
)

LOGS = pa.schema(
    [
        ("timestamp", TIMESTAMP),
        ("observed_timestamp", TIMESTAMP),
        ("time_unix_nano", UNIX_NANO),
        ("observed_time_unix_nano", UNIX_NANO),
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("trace_flags", pa.int32()),
        ("severity_text", pa.string()),
        ("severity_number", pa.int32()),
        ("body", pa.string()),
        ("attributes", ATTRIBUTES),
        ("resource_attributes", ATTRIBUTES),
        ("service_name", pa.string()),
        ("logger_name", pa.string()),
        ("event_name", pa.string()),
        ("dropped_attributes_count", pa.int32()),
    ]
)

METRICS = pa.schema(
    [
        ("timestamp", TIMESTAMP),
        ("start_timestamp", TIMESTAMP),
        ("time_unix_nano", UNIX_NANO),
        ("start_time_unix_nano", UNIX_NANO),
        ("name", pa.string()),
        ("description", pa.string()),
        ("unit", pa.string()),
        # counter | gauge | histogram | exponential_histogram | summary
        ("type", pa.string()),
        ("is_monotonic", pa.bool_()),
        # cumulative | delta | NULL for gauges
        ("temporality", pa.string()),
        ("value", pa.float64()),
        ("attributes", ATTRIBUTES),
        ("resource_attributes", ATTRIBUTES),
        ("service_name", pa.string()),
        ("scope_name", pa.string()),
        ("count", pa.int64()),
        ("sum", pa.float64()),
        ("bucket_counts", pa.list_(pa.int64())),
        ("explicit_bounds", pa.list_(pa.float64())),
        ("min", pa.float64()),
        ("max", pa.float64()),
        ("scale", pa.int32()),
        ("zero_count", pa.int64()),
        ("positive_offset", pa.int32()),
        ("positive_bucket_counts", pa.list_(pa.int64())),
        ("negative_offset", pa.int32()),
        ("negative_bucket_counts", pa.list_(pa.int64())),
        ("quantiles", pa.list_(QUANTILE)),
    ]
)

PROFILES = pa.schema(
    [
        ("timestamp", TIMESTAMP),
        ("time_unix_nano", UNIX_NANO),
        ("profile_id", pa.string()),
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("service_name", pa.string()),
        ("operation", pa.string()),
        ("function", pa.string()),
        ("file", pa.string()),
        ("line", pa.int64()),
        ("calls", pa.int64()),
        ("primitive_calls", pa.int64()),
        ("self_time_s", pa.float64()),
        ("cumulative_time_s", pa.float64()),
        ("caller", pa.string()),
        ("caller_file", pa.string()),
        ("caller_line", pa.int64()),
    ]
)

ALERTS = pa.schema(
    [
        ("timestamp", TIMESTAMP),
        ("time_unix_nano", UNIX_NANO),
        ("alert_id", pa.string()),
        ("severity", pa.string()),
        ("title", pa.string()),
        ("description", pa.string()),
        ("component", pa.string()),
        ("metric_name", pa.string()),
        ("current_value", pa.float64()),
        ("threshold", pa.float64()),
        ("comparison", pa.string()),
        ("state", pa.string()),
        ("correlation_id", pa.string()),
        ("trace_id", pa.string()),
        ("service_name", pa.string()),
        ("labels", ATTRIBUTES),
    ]
)

#: Every table of the store with its schema and the exact time column that decides its day partition.
TABLES: dict[str, tuple[pa.Schema, str]] = {
    "spans": (SPANS, "start_time_unix_nano"),
    "logs": (LOGS, "time_unix_nano"),
    "metrics": (METRICS, "time_unix_nano"),
    "profiles": (PROFILES, "time_unix_nano"),
    "alerts": (ALERTS, "time_unix_nano"),
}

#: Per table, each microsecond timestamp column and the integer column with its exact nanoseconds
#: (the OTLP field names). Span events have the same pair inside the ``events`` list.
NANO_COLUMNS: dict[str, dict[str, str]] = {
    "spans": {"start_time": "start_time_unix_nano", "end_time": "end_time_unix_nano"},
    "logs": {"timestamp": "time_unix_nano", "observed_timestamp": "observed_time_unix_nano"},
    "metrics": {"timestamp": "time_unix_nano", "start_timestamp": "start_time_unix_nano"},
    "profiles": {"timestamp": "time_unix_nano"},
    "alerts": {"timestamp": "time_unix_nano"},
}

SPAN_KINDS = ("INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
STATUS_CODES = ("UNSET", "OK", "ERROR")


def schema_for(table: str) -> pa.Schema:
    """Return the Arrow schema of a store table, or raise ``KeyError`` naming the valid tables."""
    try:
        return TABLES[table][0]
    except KeyError:
        msg = f"unknown store table {table!r}; the tables are {', '.join(TABLES)}"
        raise KeyError(msg) from None

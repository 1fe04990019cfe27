"""Arrow encoding of telemetry: OTel SDK spans, log records and metrics to store tables.

Columns are built in batches, one list per column, and handed to Arrow in one call each: a
per-row dict or pandas frame would cost several times more (see docs/benchmarks.md). Importers and
the OTLP receiver build the same column lists from other inputs and finish them with
:func:`table_from_columns`, so every path writes one schema.

Modules: ``columns`` (shared building blocks), ``spans``, ``logs``, ``metrics``.
"""

from __future__ import annotations

from ingest.store.encoding.columns import (
    MapColumn,
    attribute_text,
    encoded_pairs,
    hex_array,
    map_column,
    micro_timestamps,
    portable_events,
    span_id_array,
    table_from_columns,
    text_array,
    to_store_layout,
    trace_id_array,
    unix_nanos,
    valid_text,
)
from ingest.store.encoding.logs import body_text, encode_logs
from ingest.store.encoding.metrics import MetricRows, encode_metrics
from ingest.store.encoding.spans import encode_spans

__all__ = [
    "MapColumn",
    "MetricRows",
    "attribute_text",
    "body_text",
    "encode_logs",
    "encode_metrics",
    "encode_spans",
    "encoded_pairs",
    "hex_array",
    "map_column",
    "micro_timestamps",
    "portable_events",
    "span_id_array",
    "table_from_columns",
    "text_array",
    "to_store_layout",
    "trace_id_array",
    "unix_nanos",
    "valid_text",
]

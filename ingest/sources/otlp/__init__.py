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

Modules, one concept each: :mod:`~ingest.sources.otlp.model` (signals, :class:`Decoded`,
:class:`InputError`, quoting), :mod:`~ingest.sources.otlp.values` (AnyValue),
:mod:`~ingest.sources.otlp.columns` (shared column builders), :mod:`~ingest.sources.otlp.spans`,
:mod:`~ingest.sources.otlp.logs`, :mod:`~ingest.sources.otlp.metrics` (the walkers),
:mod:`~ingest.sources.otlp.protobuf` (binary requests, :data:`DECODERS`) and
:mod:`~ingest.sources.otlp.jsonfix` (OTLP JSON to protobuf).
"""

from ingest.sources.otlp.jsonfix import decode_json_object, json_any_value_text, request_from_json
from ingest.sources.otlp.logs import decode_logs
from ingest.sources.otlp.metrics import decode_metrics
from ingest.sources.otlp.model import (
    ITEM_NAME,
    KIND_NAMES,
    MAX_JSON_DEPTH,
    QUOTE_LIMIT,
    SIGNAL_OF_KEY,
    SIGNALS,
    STATUS_NAMES,
    Decoded,
    InputError,
    cap_quoted,
    quote,
    strict_int,
)
from ingest.sources.otlp.protobuf import DECODERS, count_items, detect_protobuf_signal, parse_protobuf
from ingest.sources.otlp.spans import decode_traces
from ingest.sources.otlp.values import any_value, any_value_text

__all__ = [
    "DECODERS",
    "ITEM_NAME",
    "KIND_NAMES",
    "MAX_JSON_DEPTH",
    "QUOTE_LIMIT",
    "SIGNALS",
    "SIGNAL_OF_KEY",
    "STATUS_NAMES",
    "Decoded",
    "InputError",
    "any_value",
    "any_value_text",
    "cap_quoted",
    "count_items",
    "decode_json_object",
    "decode_logs",
    "decode_metrics",
    "decode_traces",
    "detect_protobuf_signal",
    "json_any_value_text",
    "parse_protobuf",
    "quote",
    "request_from_json",
    "strict_int",
]

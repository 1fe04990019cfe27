"""Signals and their request/response classes, what a decode returns, input errors and how they quote values."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from ingest.errors import InputError
from ingest.store import schema

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
_INT_FIELDS = (
    "startTimeUnixNano",
    "endTimeUnixNano",
    "timeUnixNano",
    "observedTimeUnixNano",
    "asInt",
    "count",
)


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

"""OTLP test input made by the real OTel SDK: spans, log records and metrics, as protobuf and OTLP JSON.

The SDK's own OTLP encoders (opentelemetry-exporter-otlp-proto-common) give the protobuf requests;
OTLP JSON is protobuf's ``MessageToDict`` with the OTLP JSON rules applied (hex ids, integer enums),
which is what the Collector's ``file`` exporter writes. The same SDK objects also go through the
store's own encoder (``ingest.store.encoding``), so tests can compare every importer path with it.
"""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs as otlp_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics as otlp_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as otlp_spans
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

_ID_KEYS = {"traceId", "spanId", "parentSpanId"}


def sdk_spans(n_traces: int = 3, service: str = "checkout") -> list[Any]:
    """Finished SDK spans: roots with children, every kind, an error, events, a link, unicode, lists."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"service.name": service, "host.name": "h-1", "ids": [1, 2]}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("shop.lib", "2.1.0")
    first_context = None
    for t in range(n_traces):
        with tracer.start_as_current_span(
            "GET /cart", kind=SpanKind.SERVER, attributes={"http.status": 200}
        ) as root:
            first_context = first_context or root.get_span_context()
            for i, kind in enumerate(
                [SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER, SpanKind.INTERNAL]
            ):
                links = [Link(first_context, {"why": "retry"})] if i == 0 and t > 0 else []
                with tracer.start_as_current_span(f"step-{i} ✓", kind=kind, links=links) as span:
                    span.set_attribute("n", i)
                    span.set_attribute("ratio", i / 3)
                    span.set_attribute("ok", i % 2 == 0)
                    span.set_attribute("tags", ["a", "b"])
                    span.set_attribute("nums", [1.5, 2.5])
                    span.add_event("tick", {"at": i, "unicode": "é中"})
                    if i == 3:
                        span.set_status(Status(StatusCode.ERROR, "boom"))
            root.set_status(Status(StatusCode.OK))
    provider.shutdown()
    return list(exporter.get_finished_spans())


def sdk_logs(n: int = 5, service: str = "checkout") -> list[Any]:
    """SDK log records emitted inside a span (trace context set): text and structured bodies, an event name."""
    from opentelemetry._logs import SeverityNumber

    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource({"service.name": service}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    tracer_provider = TracerProvider(resource=Resource({"service.name": service}))
    logger = provider.get_logger("shop.logs", "3.0")
    with tracer_provider.get_tracer("t").start_as_current_span("work"):
        for i in range(n):
            logger.emit(
                timestamp=1_700_000_000_000_000_000 + i,
                severity_number=SeverityNumber.WARN,
                severity_text="WARN",
                body=f"item {i} failed" if i % 2 else {"item": i, "tags": ["x", "y"]},
                attributes={"item": i, "tags": ["x", "y"], "ok": False},
                event_name="item.failed" if i == 0 else None,
            )
    provider.shutdown()
    tracer_provider.shutdown()
    return list(exporter.get_finished_logs())


def sdk_metrics(service: str = "checkout") -> Any:
    """One collection of SDK metrics: a counter, an up-down counter, a histogram, a gauge."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(resource=Resource({"service.name": service}), metric_readers=[reader])
    meter = provider.get_meter("shop.metrics", "1.0")
    counter = meter.create_counter("orders", unit="1", description="orders placed")
    updown = meter.create_up_down_counter("queue.depth")
    histogram = meter.create_histogram("latency", unit="ms")
    gauge = meter.create_gauge("temperature")
    for i in range(5):
        counter.add(1, {"region": "eu"})
        updown.add(2 - i)
        histogram.record(3.0 * i, {"route": "/cart"})
        gauge.set(20.5 + i)
    data = reader.get_metrics_data()
    provider.shutdown()
    return data


def to_otlp_json(request: Any) -> dict[str, Any]:
    """A protobuf request as OTLP JSON: camelCase, int64 as strings, integer enums, hex ids."""
    obj = json_format.MessageToDict(request, use_integers_for_enums=True)
    _hex_ids(obj)
    return obj


def _hex_ids(value: Any) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in _ID_KEYS and isinstance(item, str):
                value[key] = base64.b64decode(item).hex()
            else:
                _hex_ids(item)
    elif isinstance(value, list):
        for item in value:
            _hex_ids(item)


def jsonl(objects: list[dict[str, Any]]) -> bytes:
    """JSON Lines as the Collector's ``file`` exporter writes them (one compact request a line)."""
    return b"".join(
        json.dumps(o, separators=(",", ":"), ensure_ascii=False).encode() + b"\n" for o in objects
    )


def length_prefixed(messages: list[Any]) -> bytes:
    """Protobuf requests framed as the Collector's ``file`` exporter ``proto`` format: 4-byte big-endian length."""
    out = b""
    for message in messages:
        body = message.SerializeToString()
        out += struct.pack(">I", len(body)) + body
    return out


__all__ = [
    "jsonl",
    "length_prefixed",
    "otlp_logs",
    "otlp_metrics",
    "otlp_spans",
    "sdk_logs",
    "sdk_metrics",
    "sdk_spans",
    "to_otlp_json",
]

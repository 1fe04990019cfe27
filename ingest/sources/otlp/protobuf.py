"""Binary OTLP requests: parsing, telling the signal, counting items; the decoder of each signal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf.message import DecodeError

from ingest.sources.otlp.logs import decode_logs
from ingest.sources.otlp.metrics import decode_metrics
from ingest.sources.otlp.model import SIGNALS, Decoded, InputError
from ingest.sources.otlp.spans import decode_traces

DECODERS: dict[str, Callable[[Any], Decoded]] = {
    "traces": decode_traces,
    "metrics": decode_metrics,
    "logs": decode_logs,
}


def count_items(signal: str, request: Any) -> int:
    """How many spans, data points or log records a request holds (for partial-success counts)."""
    if signal == "traces":
        return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
    if signal == "logs":
        return sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)
    total = 0
    for rm in request.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                if kind is not None:
                    total += len(getattr(metric, kind).data_points)
    return total


def parse_protobuf(signal: str, body: bytes | bytearray) -> Any:
    """Decode a binary ``Export*ServiceRequest``; raises :class:`InputError` naming the signal."""
    request_class = SIGNALS[signal][2]
    try:
        return request_class.FromString(body)
    except DecodeError as exc:
        msg = f"body is not a valid protobuf {request_class.__name__} ({exc})"
        raise InputError(msg) from None


def detect_protobuf_signal(body: bytes) -> str | None:
    """Which signal a binary OTLP message holds, or None when it reads as none of them.

    Each request type parses any bytes without error, so the signal is the one whose schema knows
    every field of the message (nothing left as an unknown field) and that holds at least one item.
    """
    for signal in ("traces", "logs", "metrics"):
        try:
            request = SIGNALS[signal][2].FromString(body)
        except DecodeError:
            continue
        if count_items(signal, request) == 0:
            continue
        request.DiscardUnknownFields()
        if request.ByteSize() == len(body):
            return signal
    return None

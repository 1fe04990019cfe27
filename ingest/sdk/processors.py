"""Span/log processor helpers: drop accounting, correlation ids on every span, unfinished-span snapshots.

The OTel SDK's batch processors drop records when their queue is full; :class:`Pipe` derives the
exact number dropped from what was handed to each pipeline and what its exporter wrote.
:class:`SpanGuard` runs first on every span of a provider (spans
from V2Tracer, from the plain ``opentelemetry`` API and from contrib instrumentations alike).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk._logs import LogRecordProcessor
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from ingest.sdk.correlation import CORRELATION_ATTRIBUTE, get_correlation_id
from ingest.sdk.sampling import TraceSpanLimiter

_log = logging.getLogger(__name__)

UNFINISHED = "langswarm.span.unfinished"
UNFINISHED_REASON = "langswarm.span.unfinished_reason"
SNAPSHOT_TIME = "langswarm.span.snapshot_time_unix_nano"
OPEN_SECONDS = "langswarm.span.open_seconds"


class TelemetryCounters:
    """Thread-safe counters of what the pipeline dropped, truncated or snapshotted, by (kind, reason)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()

    def add(self, kind: str, reason: str, n: int = 1) -> None:
        if n:
            with self._lock:
                self._counts[(kind, reason)] += n

    def get(self, kind: str, reason: str | None = None) -> int:
        with self._lock:
            return sum(
                v for (k, r), v in self._counts.items() if k == kind and (reason is None or r == reason)
            )

    def by_reason(self, kind: str) -> dict[str, int]:
        with self._lock:
            return {r: v for (k, r), v in self._counts.items() if k == kind}


class Pipe:
    """One export pipeline (processor + counting exporter) and the records handed to it.

    Drops are computed, not sampled: ``handed - exported - failed - queued``. The SDK's batch
    processor reports queue-full drops only through internal metrics that are off by default and
    whose check races with its worker (it can count a drop that did not happen), so the exact
    figure is derived from what went in and what came out; after shutdown the queue is empty and
    the figure is final.
    """

    def __init__(self, processor: Any, exporter: Any) -> None:
        self.processor = processor
        self.exporter = exporter

    def queued(self) -> int:
        batch = getattr(self.processor, "_batch_processor", None)
        queue = getattr(batch, "_queue", None)
        return len(queue) if queue is not None else 0

    def dropped(self, handed: int) -> int:
        return max(0, handed - self.exporter.exported - self.exporter.failed - self.queued())


class LogCounter(LogRecordProcessor):
    """First log processor: counts records handed to the export pipelines (for exact drop counts)."""

    def __init__(self) -> None:
        self.emitted = 0
        self._lock = threading.Lock()

    def on_emit(self, log_record: Any) -> None:
        with self._lock:
            self.emitted += 1

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


class CountingSpanExporter(SpanExporter):
    """Delegates to a span exporter and counts spans it failed to export (reason ``export_failed``)."""

    def __init__(self, inner: SpanExporter, counters: TelemetryCounters, name: str) -> None:
        self.inner = inner
        self.counters = counters
        self.name = name
        self.exported = 0
        self.failed = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.inner.export(spans)
        except Exception:
            _log.exception("span exporter %s raised; %d spans lost", self.name, len(spans))
            result = SpanExportResult.FAILURE
        if result is SpanExportResult.SUCCESS:
            self.exported += len(spans)
        else:
            self.failed += len(spans)
            self.counters.add("spans", "export_failed", len(spans))
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


class CountingLogExporter(LogRecordExporter):
    """Delegates to a log exporter and counts records it failed to export."""

    def __init__(self, inner: LogRecordExporter, counters: TelemetryCounters, name: str) -> None:
        self.inner = inner
        self.counters = counters
        self.name = name
        self.exported = 0
        self.failed = 0

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        try:
            result = self.inner.export(batch)
        except Exception:
            _log.exception("log exporter %s raised; %d records lost", self.name, len(batch))
            result = LogRecordExportResult.FAILURE
        if result is LogRecordExportResult.SUCCESS:
            self.exported += len(batch)
        else:
            self.failed += len(batch)
            self.counters.add("logs", "export_failed", len(batch))
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


class CountingMetricExporter(MetricExporter):
    """Delegates to a metric exporter and counts data points it failed to export."""

    def __init__(self, inner: MetricExporter, counters: TelemetryCounters, name: str) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self.inner = inner
        self.counters = counters
        self.name = name

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        try:
            result = self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        except Exception:
            _log.exception("metric exporter %s raised", self.name)
            result = MetricExportResult.FAILURE
        if result is not MetricExportResult.SUCCESS:
            points = sum(
                len(m.data.data_points)
                for rm in metrics_data.resource_metrics
                for sm in rm.scope_metrics
                for m in sm.metrics
            )
            self.counters.add("metric_points", "export_failed", points)
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)


class SpanGuard(SpanProcessor):
    """First processor of every provider span: correlation id, open-span tracking, trace limits.

    - Adds ``correlation_id`` (from :mod:`ingest.sdk.correlation`) to each span started while one is set,
      so spans of the plain OTel API and contrib instrumentations carry it too.
    - With ``span_timeout_seconds``, remembers open spans; :meth:`snapshot_open` writes those open
      longer than the timeout (and, at shutdown, all still open) through ``emit`` as *unfinished*
      spans: ``end_time`` NULL, attributes ``langswarm.span.unfinished = true``,
      ``langswarm.span.unfinished_reason`` (``timeout``/``shutdown``),
      ``langswarm.span.snapshot_time_unix_nano`` and ``langswarm.span.open_seconds``. If the span
      ends later, its finished row is written as well (same ``span_id``, non-NULL ``end_time``).
    - Forgets a trace's span count when its local root ends, and counts attributes dropped by
      ``max_attributes_per_span``.
    """

    def __init__(
        self,
        counters: TelemetryCounters,
        *,
        correlation: bool = True,
        track_open: bool = False,
        limiter: TraceSpanLimiter | None = None,
    ) -> None:
        self.counters = counters
        self.correlation = correlation
        self.track_open = track_open
        self.limiter = limiter
        self.open: dict[int, Span] = {}
        self.snapshotted: set[int] = set()
        self.emit: Callable[[ReadableSpan], None] | None = None
        self.handed = 0
        self._handed_lock = threading.Lock()  # spans end on many threads; += alone can lose counts

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if self.correlation:
            cid = get_correlation_id()
            if cid is not None:
                span.set_attribute(CORRELATION_ATTRIBUTE, cid)
        if self.track_open:
            self.open[span.context.span_id] = span

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context.trace_flags.sampled:
            with self._handed_lock:
                self.handed += 1
        if self.track_open:
            span_id = context.span_id
            self.open.pop(span_id, None)
            if span_id in self.snapshotted:
                self.snapshotted.discard(span_id)
        if self.limiter is not None:
            parent = span.parent
            if parent is None or parent.is_remote:
                self.limiter.forget(context.trace_id)
        dropped = span.dropped_attributes
        if dropped:
            self.counters.add("span_attributes", "max_attributes_per_span", dropped)

    def snapshot_open(self, *, older_than_s: float | None, reason: str) -> int:
        """Write open spans (those open at least ``older_than_s``; all if None) as unfinished; returns the count."""
        if self.emit is None:
            return 0
        now = time.time_ns()
        cutoff = None if older_than_s is None else now - int(older_than_s * 1e9)
        written = 0
        for span_id, span in list(self.open.items()):
            start = span.start_time
            if start is None or span.end_time is not None or span_id in self.snapshotted:
                continue
            if cutoff is not None and start > cutoff:
                continue
            self.snapshotted.add(span_id)
            with self._handed_lock:
                self.handed += 1
            self.emit(_unfinished_copy(span, now, reason))
            self.counters.add("unfinished_spans", reason)
            written += 1
        return written

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def _unfinished_copy(span: Span, now_ns: int, reason: str) -> ReadableSpan:
    """A read-only copy of an open span, marked unfinished, with ``end_time`` None."""
    attributes = dict(span.attributes or {})
    attributes[UNFINISHED] = True
    attributes[UNFINISHED_REASON] = reason
    attributes[SNAPSHOT_TIME] = now_ns
    attributes[OPEN_SECONDS] = round((now_ns - (span.start_time or now_ns)) / 1e9, 6)
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes,
        events=tuple(span.events),
        links=tuple(span.links),
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=None,
        instrumentation_scope=span.instrumentation_scope,
    )


class Watchdog:
    """A daemon thread that periodically runs a callable until stopped (used for span timeouts)."""

    def __init__(self, interval_s: float, action: Callable[[], Any], name: str) -> None:
        self.interval_s = interval_s
        self._action = action
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._action()
            except Exception:
                _log.exception("watchdog %s failed", self._thread.name)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

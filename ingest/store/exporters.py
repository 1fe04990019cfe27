"""OpenTelemetry SDK exporters that write the Parquet store.

Thin classes over one :class:`~ingest.store.writer.StoreWriter`, implementing the SDK's own exporter
interfaces so they plug into ``BatchSpanProcessor``, ``BatchLogRecordProcessor`` and
``PeriodicExportingMetricReader``. ``export()`` never raises into the application: a failure is
logged, counted in ``dropped`` and reported as FAILURE.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from ingest.store.encoding import encode_logs, encode_metrics, encode_spans
from ingest.store.writer import StoreWriter

_log = logging.getLogger(__name__)

StoreLike = StoreWriter | str | os.PathLike[str] | None


def _writer(store: StoreLike) -> StoreWriter:
    return store if isinstance(store, StoreWriter) else StoreWriter(store)


class _Counts:
    """Rows exported and rows dropped by one exporter (read by the provider's self-telemetry)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.exported = 0
        self.dropped = 0

    def ok(self, n: int) -> None:
        with self._lock:
            self.exported += n

    def failed(self, n: int) -> None:
        with self._lock:
            self.dropped += n


class _BatchWriter:
    """The shared body of the span and log exporters: encode a batch, write it, count the outcome."""

    def __init__(
        self, store: StoreLike, table: str, encode: Callable[[Sequence[Any]], Any], noun: str
    ) -> None:
        self.writer = _writer(store)
        self.counts = _Counts()
        self.shut_down = False
        self._table, self._encode, self._noun = table, encode, noun

    def write(self, batch: Sequence[Any]) -> bool:
        """Write one batch; False (logged and counted, never raised) if it could not be written."""
        if self.shut_down:
            self.counts.failed(len(batch))
            _log.warning(
                "exporter is shut down; %d %s not written to %s", len(batch), self._noun, self.writer.root
            )
            return False
        if not batch:
            return True
        try:
            self.writer.write(self._table, self._encode(batch))
        except Exception:
            self.counts.failed(len(batch))
            _log.exception("could not write %d %s to %s", len(batch), self._noun, self.writer.root)
            return False
        self.counts.ok(len(batch))
        return True


class ParquetSpanExporter(SpanExporter):
    """Writes each batch of finished spans as one Parquet file per day under ``<store>/spans/``."""

    def __init__(self, store: StoreLike = None) -> None:
        self._batches = _BatchWriter(store, "spans", encode_spans, "spans")
        self.writer, self.counts = self._batches.writer, self._batches.counts

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS if self._batches.write(spans) else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self._batches.shut_down = True

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


class ParquetLogExporter(LogRecordExporter):
    """Writes each batch of log records as Parquet under ``<store>/logs/``."""

    def __init__(self, store: StoreLike = None) -> None:
        self._batches = _BatchWriter(store, "logs", encode_logs, "log records")
        self.writer, self.counts = self._batches.writer, self._batches.counts

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        return LogRecordExportResult.SUCCESS if self._batches.write(batch) else LogRecordExportResult.FAILURE

    def shutdown(self) -> None:
        self._batches.shut_down = True

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


class ParquetMetricExporter(MetricExporter):
    """Writes each collection of metric points as Parquet under ``<store>/metrics/``.

    Cumulative temporality by default (a counter row holds its running total), like Prometheus.
    """

    def __init__(
        self,
        store: StoreLike = None,
        preferred_temporality: dict[type, AggregationTemporality] | None = None,
        preferred_aggregation: dict[type, Any] | None = None,
    ) -> None:
        super().__init__(
            preferred_temporality=preferred_temporality,
            preferred_aggregation=preferred_aggregation,
        )
        self.writer = _writer(store)
        self.counts = _Counts()
        self._shutdown = False

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        if self._shutdown:
            _log.warning("ParquetMetricExporter is shut down; a metrics collection was not written")
            return MetricExportResult.FAILURE
        try:
            table = encode_metrics(metrics_data)
            self.writer.write("metrics", table)
        except Exception:
            points = sum(
                len(m.data.data_points)
                for rm in metrics_data.resource_metrics
                for sm in rm.scope_metrics
                for m in sm.metrics
            )
            self.counts.failed(points)
            _log.exception("could not write %d metric points to %s", points, self.writer.root)
            return MetricExportResult.FAILURE
        self.counts.ok(table.num_rows)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._shutdown = True

"""LangSwarm Observability — instrumentation and ingestion.

Telemetry goes through the OpenTelemetry SDK into a local Parquet store::

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from ingest import ParquetSpanExporter

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(ParquetSpanExporter("telemetry")))

The store layout and columns are described in docs/store-schema.md.
"""

from ingest.errors import ConfigurationError, IngestError, StoreError
from ingest.exporters import ParquetLogExporter, ParquetMetricExporter, ParquetSpanExporter
from ingest.store import StoreWriter, resolve_store_path

__all__ = [
    "ConfigurationError",
    "IngestError",
    "ParquetLogExporter",
    "ParquetMetricExporter",
    "ParquetSpanExporter",
    "StoreError",
    "StoreWriter",
    "resolve_store_path",
]

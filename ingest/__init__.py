"""LangSwarm Observability — instrumentation and ingestion on the OpenTelemetry SDK.

The LangSwarm V2 guide's API, writing a local Parquet store (docs/store-schema.md)::

    from ingest import ObservabilityProvider

    provider = ObservabilityProvider.create({"tracing": {"sampling_rate": 1.0}}, "my-service")
    tracer = provider.get_tracer("agent")
    with tracer.start_span("plan") as span:
        span.set_attribute("step", 1)
    provider.shutdown()

The exporters also plug into a plain OTel SDK set-up: ``BatchSpanProcessor(ParquetSpanExporter(DIR))``.
Names are imported lazily, so ``import ingest`` stays cheap for a process that only needs one part.
"""

from __future__ import annotations

from ingest._lazy import lazy_exports

# Public name -> module that defines it. One module per concept; see each module's docstring.
_EXPORTS = {
    "Alert": "ingest.sdk.alerts",
    "AlertManager": "ingest.sdk.alerts",
    "AlertDeliveryError": "ingest.errors",
    "AlertSeverity": "ingest.sdk.alerts",
    "CompactionError": "ingest.errors",
    "ConfigurationError": "ingest.errors",
    "DistributedObservability": "ingest.sdk.distributed",
    "HealthCheckManager": "ingest.sdk.health",
    "ImportFileError": "ingest.errors",
    "IngestError": "ingest.errors",
    "InputError": "ingest.errors",
    "MetricError": "ingest.errors",
    "MigrationError": "ingest.errors",
    "PruneError": "ingest.errors",
    "NoOpLogger": "ingest.sdk.noop",
    "NoOpMetrics": "ingest.sdk.noop",
    "NoOpTracer": "ingest.sdk.noop",
    "ObservabilityProvider": "ingest.sdk.provider",
    "ObservableComponent": "ingest.sdk.components",
    "ParquetLogExporter": "ingest.store.exporters",
    "ParquetMetricExporter": "ingest.store.exporters",
    "ParquetSpanExporter": "ingest.store.exporters",
    "PerformanceProfiler": "ingest.sdk.profiler",
    "ProductionObservabilitySetup": "ingest.sdk.production",
    "ResourceMonitor": "ingest.sdk.resource_monitor",
    "RemoteCallError": "ingest.errors",
    "StoreError": "ingest.errors",
    "TelemetryValueError": "ingest.errors",
    "StoreWriter": "ingest.store.writer",
    "Threshold": "ingest.sdk.alerts",
    "V2Logger": "ingest.sdk.logger",
    "V2Metrics": "ingest.sdk.metrics",
    "V2Tracer": "ingest.sdk.tracer",
    "WebhookAlertHandler": "ingest.sdk.alerts",
    "correlation_scope": "ingest.sdk.correlation",
    "get_correlation_id": "ingest.sdk.correlation",
    "new_correlation_id": "ingest.sdk.correlation",
    "set_correlation_id": "ingest.sdk.correlation",
    "resolve_store_path": "ingest.store.writer",
    "resolve_store": "ingest.store.writer",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports("ingest", _EXPORTS, globals())

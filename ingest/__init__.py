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
    "Alert": "ingest.alerts",
    "AlertManager": "ingest.alerts",
    "AlertDeliveryError": "ingest.alerts",
    "AlertSeverity": "ingest.alerts",
    "ConfigurationError": "ingest.errors",
    "DistributedObservability": "ingest.distributed",
    "HealthCheckManager": "ingest.health",
    "IngestError": "ingest.errors",
    "NoOpLogger": "ingest.noop",
    "NoOpMetrics": "ingest.noop",
    "NoOpTracer": "ingest.noop",
    "ObservabilityProvider": "ingest.provider",
    "ObservableComponent": "ingest.components",
    "ParquetLogExporter": "ingest.exporters",
    "ParquetMetricExporter": "ingest.exporters",
    "ParquetSpanExporter": "ingest.exporters",
    "PerformanceProfiler": "ingest.profiler",
    "ProductionObservabilitySetup": "ingest.production",
    "ResourceMonitor": "ingest.resource_monitor",
    "StoreError": "ingest.errors",
    "StoreWriter": "ingest.store",
    "Threshold": "ingest.alerts",
    "V2Logger": "ingest.logger",
    "V2Metrics": "ingest.metrics",
    "V2Tracer": "ingest.tracer",
    "WebhookAlertHandler": "ingest.alerts",
    "correlation_scope": "ingest.correlation",
    "get_correlation_id": "ingest.correlation",
    "new_correlation_id": "ingest.correlation",
    "set_correlation_id": "ingest.correlation",
    "resolve_store_path": "ingest.store",
    "resolve_store": "ingest.store",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports("ingest", _EXPORTS, globals())

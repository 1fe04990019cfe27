"""The instrumentation SDK: the LangSwarm V2 guide's API on the OpenTelemetry SDK.

``provider`` builds the OTel tracer, logger and meter providers from one config (``config``) and hands
out the guide's ``V2Tracer`` (``tracer``), ``V2Logger`` (``logger``) and ``V2Metrics`` (``metrics``).
Around them: sampling, span processors, correlation ids and context propagation (``distributed``),
framework middleware, components, the profiler, alerts, health checks, resource monitoring and the
production presets. Nothing here reads a source; spans, logs and metrics leave through the store's
exporters (``ingest.store.exporters``) or OTLP.
"""

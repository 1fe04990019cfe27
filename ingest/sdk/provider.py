"""ObservabilityProvider: one service's OTel tracer, meter and logger providers wired to the store.

``ObservabilityProvider.create(config, service_name)`` validates the config (ingest/sdk/config.py),
builds *its own* SDK ``TracerProvider``, ``MeterProvider`` and ``LoggerProvider`` (never mutating
another provider's), and connects them to the exporters chosen per signal — the Parquet store by
default, OTLP and console on request — through batch processors sized so a tight loop does not
overflow them, with every drop counted. Components get a :class:`~ingest.sdk.logger.V2Logger`,
:class:`~ingest.sdk.tracer.V2Tracer` and :class:`~ingest.sdk.metrics.V2Metrics` from it.

The plain ``opentelemetry`` API (``trace.get_tracer(...)``, contrib instrumentations such as
``requests``) is routed to the *oldest live* provider created with
``integrations.global_providers: true`` (the default): the global tracer and logger providers
are set once, to routers that forward to that provider, so API spans land in the same traces
and store, and a provider created later (or after the first one shut down) takes over without
re-setting the globals, which the OTel API forbids. If the application set its own global
providers first, they are left alone. The global propagator is wrapped so that contrib HTTP
clients also send the current correlation id (W3C baggage ``correlation_id``).
"""

from __future__ import annotations

import atexit
import importlib
import logging
import logging.handlers
import os
import sys
import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from opentelemetry import _logs as logs_api
from opentelemetry import trace as trace_api
from opentelemetry._logs._internal import ProxyLoggerProvider
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    ConsoleLogRecordExporter,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from ingest.errors import ConfigurationError
from ingest.sdk.config import resolve_config
from ingest.sdk.logger import JsonFormatter, TextFormatter, V2Logger
from ingest.sdk.metrics import MetricRegistry, V2Metrics
from ingest.sdk.noop import NoOpLogger, NoOpMetrics, NoOpTracer
from ingest.sdk.processors import (
    CountingLogExporter,
    CountingMetricExporter,
    CountingSpanExporter,
    LogCounter,
    Pipe,
    SpanGuard,
    TelemetryCounters,
    Watchdog,
)
from ingest.sdk.sampling import AdaptiveSampler, TraceSpanLimiter, build_sampler
from ingest.sdk.tracer import V2Tracer
from ingest.store.exporters import ParquetLogExporter, ParquetMetricExporter, ParquetSpanExporter
from ingest.store.writer import StoreWriter

_log = logging.getLogger(__name__)

#: Environment variables read for Kubernetes metadata (set them with the downward API).
KUBERNETES_ENV = {
    "k8s.namespace.name": ("KUBERNETES_NAMESPACE", "POD_NAMESPACE", "K8S_NAMESPACE"),
    "k8s.pod.name": ("KUBERNETES_POD_NAME", "POD_NAME", "K8S_POD_NAME", "HOSTNAME"),
    "k8s.node.name": ("KUBERNETES_NODE_NAME", "NODE_NAME", "K8S_NODE_NAME"),
    "k8s.container.name": ("KUBERNETES_CONTAINER_NAME", "CONTAINER_NAME", "K8S_CONTAINER_NAME"),
    "k8s.pod.ip": ("POD_IP", "K8S_POD_IP"),
}


def kubernetes_attributes(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``k8s.*`` resource attributes from the environment (the downward API's usual variable names)."""
    env = os.environ if environ is None else environ
    out = {}
    for attribute, names in KUBERNETES_ENV.items():
        for name in names:
            if env.get(name):
                out[attribute] = env[name]
                break
    return out


def _otlp_endpoint(base: str, signal: str) -> str:
    """OTLP/HTTP URL of a signal: a bare ``http://host:4318`` gets ``/v1/<signal>``; a full path is kept."""
    stripped = base.rstrip("/")
    scheme_sep = stripped.find("://")
    path = stripped[scheme_sep + 3 :].partition("/")[2] if scheme_sep >= 0 else ""
    return f"{stripped}/v1/{signal}" if not path else stripped


@dataclass(frozen=True)
class SignalExport:
    """How one signal is exported: its config section, OTLP path, the three exporters and the counter."""

    section: str
    otlp_path: str
    parquet: Callable[[StoreWriter], Any]
    otlp: tuple[str, str]
    console: Callable[[], Any]
    counting: Callable[[Any, TelemetryCounters, str], Any]


#: Signal -> how it is exported. One table, so a setting (endpoint, headers, timeout, compression)
#: reaches every signal's exporter alike; the three pipelines only differ in the processor/reader.
SIGNAL_EXPORTS: dict[str, SignalExport] = {
    "spans": SignalExport(
        "tracing",
        "traces",
        ParquetSpanExporter,
        ("opentelemetry.exporter.otlp.proto.http.trace_exporter", "OTLPSpanExporter"),
        ConsoleSpanExporter,
        CountingSpanExporter,
    ),
    "logs": SignalExport(
        "logging",
        "logs",
        ParquetLogExporter,
        ("opentelemetry.exporter.otlp.proto.http._log_exporter", "OTLPLogExporter"),
        ConsoleLogRecordExporter,
        CountingLogExporter,
    ),
    "metrics": SignalExport(
        "metrics",
        "metrics",
        ParquetMetricExporter,
        ("opentelemetry.exporter.otlp.proto.http.metric_exporter", "OTLPMetricExporter"),
        ConsoleMetricExporter,
        CountingMetricExporter,
    ),
}


def otlp_exporter(signal: str, section: Mapping[str, Any]) -> Any:
    """The OTLP/HTTP exporter of ``signal`` with the section's endpoint, headers, timeout and compression."""
    from opentelemetry.exporter.otlp.proto.http import Compression

    spec = SIGNAL_EXPORTS[signal]
    module, name = spec.otlp
    exporter_class = getattr(importlib.import_module(module), name)
    compression = section["compression"]  # None: the exporter reads OTEL_EXPORTER_OTLP_*COMPRESSION
    return exporter_class(
        endpoint=_otlp_endpoint(section["endpoint"], spec.otlp_path),
        headers=dict(section["headers"]) or None,
        timeout=section["export_timeout_millis"] / 1000.0,
        compression=None if compression is None else Compression(compression),
    )


def build_exporters(
    signal: str, config: Mapping[str, Any], store_writer: StoreWriter, counters: TelemetryCounters
) -> list[Any]:
    """The counting exporters of ``signal``, one per name in its section's ``exporter`` list."""
    spec = SIGNAL_EXPORTS[signal]
    section = config[spec.section]
    exporters = []
    for name in section["exporter"]:
        if name == "parquet":
            inner = spec.parquet(store_writer)
        elif name == "otlp":
            inner = otlp_exporter(signal, section)
        elif name == "console":
            inner = spec.console()
        else:  # resolve_config allows only the names above
            msg = f"config key '{spec.section}.exporter' names an unknown exporter {name!r}"
            raise ConfigurationError(msg)
        exporters.append(spec.counting(inner, counters, name))
    return exporters


class ObservabilityProvider:
    """The telemetry of one service: OTel SDK providers, exporters, the store writer and components.

    Contract used by the rest of the package: ``service_name``, ``config`` (validated, resolved),
    ``store_writer`` (the one :class:`~ingest.store.writer.StoreWriter`, shared by the exporters and by
    modules that write the profiles/alerts tables), ``tracer_provider``, ``meter_provider``,
    ``logger_provider``, ``get_logger/get_tracer/get_metrics``, ``force_flush()``, ``shutdown()``.
    """

    _live: ClassVar[list[ObservabilityProvider]] = []
    _live_lock = threading.Lock()

    @classmethod
    def create(
        cls, config: Mapping[str, Any] | None = None, service_name: str = "langswarm"
    ) -> ObservabilityProvider:
        """Validate ``config`` and build a provider for ``service_name`` (the guide's entry point)."""
        return cls(config, service_name)

    def __init__(self, config: Mapping[str, Any] | None = None, service_name: str = "langswarm") -> None:
        self.config = resolve_config(config, service_name)
        self.service_name = service_name
        self.counters = TelemetryCounters()
        self._shutdown = False
        self._shutdown_lock = threading.Lock()
        self._loggers: dict[str, V2Logger | NoOpLogger] = {}
        self._tracers: dict[str, V2Tracer | NoOpTracer] = {}
        self._metrics: dict[str | None, V2Metrics | NoOpMetrics] = {}
        self._stdlib_handler: logging.Handler | None = None
        self._watchdog: Watchdog | None = None
        self.prometheus_server: Any = None
        cfg = self.config

        self.store_writer = StoreWriter(
            cfg["store"]["path"],
            durable=cfg["store"]["durable"],
            retention_days=cfg["store"]["retention_days"],
        )
        self.resource = self._resource()
        # Things that can fail on bad settings (log file, Prometheus port) come first, before any
        # SDK provider starts its background threads.
        self._handlers = self._build_log_handlers()
        try:
            self.meter_provider = self._build_meter_provider()
        except Exception:
            for handler in self._handlers:
                handler.close()
            raise
        self.metric_registry = MetricRegistry(
            self.meter_provider, cfg["metrics"], enabled=cfg["metrics"]["enabled"]
        )
        self.tracer_provider, self.span_guard, self.adaptive_sampler = self._build_tracer_provider()
        self.logger_provider = self._build_logger_provider()
        self._register_self_telemetry()

        timeout = cfg["performance"]["span_timeout_seconds"]
        if timeout is not None and self.span_guard.track_open:
            interval = max(0.05, min(timeout / 2.0, 5.0))
            self._watchdog = Watchdog(
                interval,
                lambda: self.span_guard.snapshot_open(older_than_s=timeout, reason="timeout"),
                f"langswarm-span-timeout-{service_name}",
            )
        if cfg["logging"]["capture_stdlib"]:
            self._capture_stdlib()
        if cfg["integrations"]["global_providers"]:
            _install_global_routers()
        with self._live_lock:
            self._live.append(self)
        atexit.register(self.shutdown)

    # -- construction ----------------------------------------------------------------------------------
    def _resource(self) -> Resource:
        attrs: dict[str, Any] = {"service.name": self.service_name}
        if self.config["logging"]["include_kubernetes_metadata"]:
            attrs.update(kubernetes_attributes())
        attrs.update(self.config["resource"])
        attrs["service.name"] = self.service_name
        return Resource.create(attrs)

    def _build_meter_provider(self) -> MeterProvider:
        cfg = self.config["metrics"]
        interval_ms = cfg["export_interval"] * 1000.0
        self.metric_exporters: list[CountingMetricExporter] = build_exporters(
            "metrics", self.config, self.store_writer, self.counters
        )
        readers: list[Any] = [
            PeriodicExportingMetricReader(
                exporter,
                export_interval_millis=interval_ms,
                export_timeout_millis=cfg["export_timeout_millis"],
            )
            for exporter in self.metric_exporters
        ]
        self.prometheus_registry = None
        if cfg["prometheus_endpoint"]:
            from opentelemetry.exporter.prometheus import PrometheusMetricReader
            from prometheus_client import CollectorRegistry

            from ingest.sdk.middleware import start_prometheus_server

            # A registry per provider (not prometheus_client's global REGISTRY), so two providers in
            # one process each serve their own metrics.
            self.prometheus_registry = CollectorRegistry(auto_describe=True)
            try:
                self.prometheus_server = start_prometheus_server(
                    self.prometheus_registry,
                    cfg["prometheus_endpoint"],
                    cfg["prometheus_host"],
                    cfg["prometheus_port"],
                )
            except OSError as exc:
                msg = (
                    f"cannot serve Prometheus metrics on {cfg['prometheus_host']}:{cfg['prometheus_port']} "
                    f"({exc}); change 'metrics.prometheus_port' (0 picks a free port) or 'metrics.prometheus_host'"
                )
                raise ConfigurationError(msg) from exc
            readers.append(
                PrometheusMetricReader(registry=self.prometheus_registry, scope_info_enabled=False)
            )
        return MeterProvider(resource=self.resource, metric_readers=readers, shutdown_on_exit=False)

    def _build_tracer_provider(self) -> tuple[TracerProvider, SpanGuard, AdaptiveSampler | None]:
        cfg = self.config["tracing"]
        perf = self.config["performance"]
        limiter = None
        if perf["max_spans_per_trace"]:
            counters = self.counters
            limiter = TraceSpanLimiter(
                perf["max_spans_per_trace"], on_drop=lambda: counters.add("spans", "max_spans_per_trace")
            )
        if cfg["enabled"]:
            sampler, adaptive = build_sampler(cfg, limiter)
        else:
            sampler, adaptive, limiter = ALWAYS_OFF, None, None
        provider = TracerProvider(
            sampler=sampler,
            resource=self.resource,
            shutdown_on_exit=False,
            span_limits=SpanLimits(max_span_attributes=perf["max_attributes_per_span"]),
        )
        guard = SpanGuard(
            self.counters,
            correlation=True,
            track_open=perf["span_timeout_seconds"] is not None and cfg["enabled"],
            limiter=limiter,
        )
        provider.add_span_processor(guard)
        self.span_exporters: list[CountingSpanExporter] = []
        self.span_processors: list[Any] = []
        self.span_pipes: list[Pipe] = []
        exporters = (
            build_exporters("spans", self.config, self.store_writer, self.counters) if cfg["enabled"] else []
        )
        for exporter in exporters:
            if cfg["span_processor"] == "simple":
                processor: Any = SimpleSpanProcessor(exporter)
            else:
                processor = BatchSpanProcessor(
                    exporter,
                    max_queue_size=cfg["max_queue_size"],
                    schedule_delay_millis=cfg["schedule_delay_millis"],
                    max_export_batch_size=cfg["max_export_batch_size"],
                    export_timeout_millis=cfg["export_timeout_millis"],
                    meter_provider=self.meter_provider,
                )
            provider.add_span_processor(processor)
            self.span_exporters.append(exporter)
            self.span_processors.append(processor)
            self.span_pipes.append(Pipe(processor, exporter))
        processors = tuple(self.span_processors)

        def emit(span: Any) -> None:
            for p in processors:
                p.on_end(span)

        guard.emit = emit
        adaptive_root = adaptive if isinstance(adaptive, AdaptiveSampler) else None
        return provider, guard, adaptive_root

    def _build_logger_provider(self) -> LoggerProvider:
        cfg = self.config["logging"]
        provider = LoggerProvider(
            resource=self.resource, shutdown_on_exit=False, meter_provider=self.meter_provider
        )
        self.log_counter = LogCounter()
        provider.add_log_record_processor(self.log_counter)
        self.log_exporters: list[CountingLogExporter] = []
        self.log_pipes: list[Pipe] = []
        for exporter in build_exporters("logs", self.config, self.store_writer, self.counters):
            if self.config["tracing"]["span_processor"] == "simple":
                processor: Any = SimpleLogRecordProcessor(exporter)
            else:
                processor = BatchLogRecordProcessor(
                    exporter,
                    schedule_delay_millis=cfg["schedule_delay_millis"],
                    max_export_batch_size=cfg["max_export_batch_size"],
                    max_queue_size=cfg["max_queue_size"],
                    export_timeout_millis=cfg["export_timeout_millis"],
                    meter_provider=self.meter_provider,
                )
            provider.add_log_record_processor(processor)
            self.log_exporters.append(exporter)
            self.log_pipes.append(Pipe(processor, exporter))
        return provider

    def _build_log_handlers(self) -> tuple[logging.Handler, ...]:
        cfg = self.config["logging"]
        extra: dict[str, Any] = {}
        if cfg["include_kubernetes_metadata"]:
            k8s = kubernetes_attributes()
            if k8s:
                extra["kubernetes"] = {k.split(".")[1]: v for k, v in k8s.items()}
        formatter: logging.Formatter = JsonFormatter(extra) if cfg["format"] == "json" else TextFormatter()
        handlers: list[logging.Handler] = []
        if cfg["output"] in ("console", "both"):
            stream = sys.stdout if cfg["console_stream"] == "stdout" else sys.stderr
            handlers.append(logging.StreamHandler(stream))
        if cfg["output"] in ("file", "both"):
            path = Path(cfg["file_path"] or Path("logs") / f"{self.service_name}.log")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                handlers.append(
                    logging.handlers.RotatingFileHandler(
                        path,
                        maxBytes=cfg["rotation"]["max_size"],
                        backupCount=cfg["rotation"]["backup_count"],
                        encoding="utf-8",
                    )
                )
            except OSError as exc:
                msg = f"config key 'logging.file_path' = {str(path)!r} cannot be opened for writing: {exc}"
                raise ConfigurationError(msg) from exc
        for handler in handlers:
            handler.setFormatter(formatter)
            handler.setLevel(logging.DEBUG)
        return tuple(handlers)

    def _register_self_telemetry(self) -> None:
        """Observable counters ``langswarm.telemetry.*``: what was dropped, truncated, snapshotted, exported."""
        meter = self.meter_provider.get_meter("langswarm.telemetry")
        counters = self.counters

        def by_reason(kind: str, always: tuple[str, ...]) -> Any:
            def callback(options: CallbackOptions) -> list[Observation]:
                values = dict.fromkeys(always, 0)
                values.update(counters.by_reason(kind))
                if kind == "spans":
                    values["queue_full"] = self.dropped_spans()
                elif kind == "logs":
                    values["queue_full"] = self.dropped_logs()
                return [Observation(v, {"reason": r}) for r, v in sorted(values.items())]

            return callback

        meter.create_observable_counter(
            "langswarm.telemetry.dropped_spans",
            callbacks=[by_reason("spans", ("queue_full", "export_failed", "max_spans_per_trace"))],
            description="Spans lost before reaching an exporter, by reason",
        )
        meter.create_observable_counter(
            "langswarm.telemetry.dropped_logs",
            callbacks=[by_reason("logs", ("queue_full", "export_failed"))],
            description="Log records lost before reaching an exporter, by reason",
        )
        meter.create_observable_counter(
            "langswarm.telemetry.dropped_metric_points",
            callbacks=[by_reason("metric_points", ("export_failed",))],
            description="Metric data points an exporter failed to write",
        )
        meter.create_observable_counter(
            "langswarm.telemetry.dropped_span_attributes",
            callbacks=[by_reason("span_attributes", ("max_attributes_per_span",))],
            description="Span attributes dropped by performance.max_attributes_per_span",
        )
        meter.create_observable_counter(
            "langswarm.telemetry.truncated_logs",
            callbacks=[by_reason("truncated_logs", ("max_log_entry_size",))],
            description="Log records truncated to performance.max_log_entry_size (kept, marked)",
        )
        meter.create_observable_counter(
            "langswarm.telemetry.unfinished_spans",
            callbacks=[by_reason("unfinished_spans", ("timeout", "shutdown"))],
            description="Open spans written as unfinished snapshots (span_timeout_seconds or shutdown)",
        )

        def exported(options: CallbackOptions) -> list[Observation]:
            out = [
                Observation(e.exported, {"signal": "spans", "exporter": e.name}) for e in self.span_exporters
            ]
            out += [
                Observation(e.exported, {"signal": "logs", "exporter": e.name}) for e in self.log_exporters
            ]
            return out

        meter.create_observable_counter(
            "langswarm.telemetry.exported",
            callbacks=[exported],
            description="Spans and log records exported, by signal and exporter",
        )

    def _capture_stdlib(self) -> None:
        """Send stdlib ``logging`` records (other libraries) into this provider's logs too."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            handler = LoggingHandler(
                level=logging.getLevelName(self.config["logging"]["level"]),
                logger_provider=self.logger_provider,
            )
        handler.addFilter(lambda record: not record.name.startswith(("opentelemetry", "ingest")))
        logging.getLogger().addHandler(handler)
        self._stdlib_handler = handler

    def dropped_spans(self) -> int:
        """Spans lost because an export queue was full (exact once the provider is shut down)."""
        return sum(pipe.dropped(self.span_guard.handed) for pipe in self.span_pipes)

    def dropped_logs(self) -> int:
        """Log records lost because an export queue was full (exact once the provider is shut down)."""
        return sum(pipe.dropped(self.log_counter.emitted) for pipe in self.log_pipes)

    # -- components -------------------------------------------------------------------------------------
    def _component_enabled(self, component: str) -> bool:
        integrations = self.config["integrations"]
        return integrations["all_components"] or component in integrations["components"]

    def get_logger(self, component: str) -> V2Logger | NoOpLogger:
        """The component's logger (a no-op one if it is excluded by ``logging.exclude_components``)."""
        logger = self._loggers.get(component)
        if logger is None:
            cfg = self.config["logging"]
            if not self._component_enabled(component):
                logger = NoOpLogger()
            else:
                logger = V2Logger(
                    component,
                    self.logger_provider.get_logger(component),
                    level=cfg["level"],
                    handlers=self._handlers,
                    correlation=cfg["correlation"],
                    max_entry_size=self.config["performance"]["max_log_entry_size"],
                    counters=self.counters,
                    service_name=self.service_name,
                    enabled=component not in cfg["exclude_components"],
                )
            self._loggers[component] = logger
        return logger

    def get_tracer(self, component: str) -> V2Tracer | NoOpTracer:
        """The component's tracer (instrumentation scope = component name)."""
        tracer = self._tracers.get(component)
        if tracer is None:
            if not self._component_enabled(component):
                tracer = NoOpTracer()
            else:
                tracer = V2Tracer(self.tracer_provider.get_tracer(component), component)
            self._tracers[component] = tracer
        return tracer

    def get_metrics(self, component: str | None = None) -> V2Metrics | NoOpMetrics:
        """Metrics of the provider; every component shares one registry, so names are provider-wide."""
        metrics = self._metrics.get(component)
        if metrics is None:
            if component is not None and not self._component_enabled(component):
                metrics = NoOpMetrics()
            else:
                metrics = V2Metrics(self.metric_registry, component)
            self._metrics[component] = metrics
        return metrics

    # -- lifecycle ----------------------------------------------------------------------------------------
    @property
    def is_shutdown(self) -> bool:
        return self._shutdown

    @property
    def prometheus_url(self) -> str | None:
        """The scrape URL of the Prometheus endpoint, if one is serving."""
        return None if self.prometheus_server is None else self.prometheus_server.url

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export everything buffered now: spans, logs, then a metrics collection (with self-telemetry)."""
        if self._shutdown:
            return False
        ok = self.tracer_provider.force_flush(timeout_millis)
        ok = self.logger_provider.force_flush(timeout_millis) and ok
        ok = self.meter_provider.force_flush(timeout_millis) and ok
        return bool(ok)

    def snapshot_open_spans(self, reason: str = "snapshot") -> int:
        """Write every still-open span as an unfinished span now (e.g. from a signal handler)."""
        return self.span_guard.snapshot_open(older_than_s=None, reason=reason)

    def shutdown(self, timeout_millis: int = 30_000) -> None:
        """Flush and close everything, in order (spans, logs, then metrics with final drop counts). Idempotent."""
        with self._shutdown_lock:
            if self._shutdown:
                return
            self._shutdown = True
        with self._live_lock:
            if self in self._live:
                self._live.remove(self)
        try:
            atexit.unregister(self.shutdown)
        except Exception:  # pragma: no cover - atexit.unregister never raises in CPython
            pass
        if self._watchdog is not None:
            self._watchdog.stop()
        if self.span_guard.track_open:
            self.span_guard.snapshot_open(older_than_s=None, reason="shutdown")
        if self._stdlib_handler is not None:
            logging.getLogger().removeHandler(self._stdlib_handler)
        for step in (self.tracer_provider.shutdown, self.logger_provider.shutdown):
            try:
                step()
            except Exception:
                _log.exception("error while shutting down %s", step)
        try:
            self.meter_provider.shutdown(timeout_millis=timeout_millis)
        except Exception:
            _log.exception("error while shutting down the meter provider")
        for handler in self._handlers:
            try:
                handler.flush()
                if isinstance(handler, logging.FileHandler):
                    handler.close()
            except Exception:
                _log.exception("error while closing log handler %s", handler)
        if self.prometheus_server is not None:
            self.prometheus_server.stop()

    def __enter__(self) -> ObservabilityProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        state = "shut down" if self._shutdown else "live"
        return f"ObservabilityProvider(service_name={self.service_name!r}, store={str(self.store_writer.root)!r}, {state})"


# -- routing of the global OTel API -------------------------------------------------------------------------


def global_provider() -> ObservabilityProvider | None:
    """The provider the plain ``opentelemetry`` API currently reaches (oldest live one with globals on)."""
    with ObservabilityProvider._live_lock:
        for provider in ObservabilityProvider._live:
            if provider.config["integrations"]["global_providers"]:
                return provider
    return None


class _RoutingTracer(trace_api.Tracer):
    """A tracer of the global API that starts spans on the current :func:`global_provider`."""

    def __init__(self, name: str, version: str | None, schema_url: str | None, attributes: Any) -> None:
        self._args = (name, version, schema_url, attributes)
        self._cache: tuple[Any, trace_api.Tracer] | None = None

    def _delegate(self) -> trace_api.Tracer:
        provider = global_provider()
        if provider is None:
            return trace_api.NoOpTracer()
        cache = self._cache
        if cache is not None and cache[0] is provider:
            return cache[1]
        name, version, schema_url, attributes = self._args
        tracer = provider.tracer_provider.get_tracer(name, version, schema_url, attributes)
        self._cache = (provider, tracer)
        return tracer

    def start_span(self, *args: Any, **kwargs: Any) -> trace_api.Span:
        return self._delegate().start_span(*args, **kwargs)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        return self._delegate().start_as_current_span(*args, **kwargs)


class _RoutingTracerProvider(trace_api.TracerProvider):
    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Any = None,
    ) -> trace_api.Tracer:
        return _RoutingTracer(
            instrumenting_module_name, instrumenting_library_version, schema_url, attributes
        )


class _RoutingLogger(logs_api.Logger):
    def __init__(self, name: str, version: str | None, schema_url: str | None, attributes: Any) -> None:
        super().__init__(name, version, schema_url, attributes)
        self._args = (name, version, schema_url, attributes)

    def _delegate(self) -> Any:
        provider = global_provider()
        if provider is None:
            return None
        name, version, schema_url, attributes = self._args
        return provider.logger_provider.get_logger(name, version, schema_url, attributes)

    def emit(self, *args: Any, **kwargs: Any) -> None:
        logger = self._delegate()
        if logger is not None:
            logger.emit(*args, **kwargs)

    def enabled(self, *args: Any, **kwargs: Any) -> bool:
        return global_provider() is not None


class _RoutingLoggerProvider(logs_api.LoggerProvider):
    def get_logger(
        self, name: str, version: str | None = None, schema_url: str | None = None, attributes: Any = None
    ) -> logs_api.Logger:
        return _RoutingLogger(name, version, schema_url, attributes)


_routers_installed = False
_routers_lock = threading.Lock()


def _install_global_routers() -> None:
    """Set the global tracer/logger providers to the routers, once, unless the application set its own."""
    global _routers_installed
    with _routers_lock:
        if _routers_installed:
            return
        _routers_installed = True
        if isinstance(trace_api.get_tracer_provider(), trace_api.ProxyTracerProvider):
            trace_api.set_tracer_provider(_RoutingTracerProvider())
        else:
            _log.info("a global TracerProvider is already set; the plain OTel API will not reach langswarm")
        if isinstance(logs_api.get_logger_provider(), ProxyLoggerProvider):
            logs_api.set_logger_provider(_RoutingLoggerProvider())
        from ingest.sdk.distributed import install_correlation_propagator

        install_correlation_propagator()

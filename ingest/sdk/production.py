"""Production presets: the guide's ProductionObservabilitySetup, exporting OTLP to an OpenTelemetry Collector.

Every preset sends traces, metrics and logs as OTLP/HTTP to a Collector (``OTEL_EXPORTER_OTLP_ENDPOINT``,
default ``http://localhost:4318``: a sidecar or node agent) which forwards them to the backend —
Jaeger/Tempo, CloudWatch/X-Ray, Cloud Trace/Monitoring/Logging, Azure Monitor; the matching
Collector configurations are in ``deploy/``. The guide's vendor exporters (``xray``,
``cloud_trace``, ``application_insights``) are Collector exporters here, not in-process ones.
When a store is given (argument ``store_path`` or ``LANGSWARM_TELEMETRY_DIR``) telemetry is also
written to the local Parquet store for post-mortem debugging with the explorer.
See docs/deployment.md.
"""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Mapping
from typing import Any

from ingest.errors import ConfigurationError
from ingest.sdk.provider import ObservabilityProvider, kubernetes_attributes
from ingest.store.writer import STORE_ENV

DEFAULT_COLLECTOR = "http://localhost:4318"
CLOUD_PROVIDERS = ("aws", "gcp", "azure")


def _collector_endpoint(default: str = DEFAULT_COLLECTOR) -> str:
    return os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or default


def _exporters(store_path: str | None) -> list[str]:
    return ["otlp", "parquet"] if (store_path or os.environ.get(STORE_ENV)) else ["otlp"]


def deep_merge(base: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in, nested mappings merged key by key (neither is modified)."""
    out = copy.deepcopy(dict(base))
    for key, value in (overrides or {}).items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class ProductionObservabilitySetup:
    """Factory methods returning an :class:`ObservabilityProvider` configured for production."""

    @classmethod
    def production_config(
        cls,
        service_name: str,
        service_version: str,
        environment: str = "production",
        *,
        log_dir: str | None = None,
        store_path: str | None = None,
    ) -> dict[str, Any]:
        """The production configuration (the guide's, with OTLP to a Collector and adaptive sampling)."""
        exporters = _exporters(store_path)
        log_dir = log_dir or os.environ.get("LANGSWARM_LOG_DIR") or "/var/log/langswarm"
        endpoint = os.environ.get("TRACING_ENDPOINT") or _collector_endpoint()
        return {
            "logging": {
                "level": "INFO",
                "output": "file",
                "file_path": os.path.join(log_dir, f"{service_name}.log"),
                "format": "json",
                "rotation": {"max_size": "100MB", "backup_count": 10},
                "correlation": True,
                "exporter": exporters,
                "endpoint": endpoint,
            },
            "tracing": {
                "enabled": True,
                # 10% under load, but every trace while the service sees under 10 traces/s.
                "sampling_rate": 0.1,
                "adaptive_sampling": True,
                "adaptive_traces_per_second": 10.0,
                "exporter": exporters,
                "endpoint": endpoint,
                "span_processor": "batch",
                "max_export_batch_size": 512,
                "export_timeout_millis": 30000,
            },
            "metrics": {
                "enabled": True,
                "export_interval": 60,
                "exporter": exporters,
                "endpoint": endpoint,
                "prometheus_endpoint": "/metrics",
                "prometheus_host": os.environ.get("LANGSWARM_PROMETHEUS_HOST", "0.0.0.0"),
                "prometheus_port": int(os.environ.get("LANGSWARM_PROMETHEUS_PORT", "9464")),
                "include_histograms": True,
                "exclude_labels": ["user_id", "session_id"],
                "custom_buckets": {
                    "request_duration": [0.001, 0.01, 0.1, 1.0, 5.0, 10.0, 30.0],
                    "response_size": [100, 1000, 10000, 100000, 1000000],
                },
            },
            "integrations": {"all_components": True, "detailed_spans": False, "parameter_logging": False},
            "performance": {
                "max_spans_per_trace": 100,
                "max_attributes_per_span": 20,
                "span_timeout_seconds": 300,
                "max_log_entry_size": 32768,
            },
            "store": {"path": store_path},
            "resource": {"service.version": service_version, "deployment.environment": environment},
        }

    @classmethod
    def create_production_observability(
        cls,
        service_name: str,
        service_version: str,
        environment: str = "production",
        *,
        log_dir: str | None = None,
        store_path: str | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> ObservabilityProvider:
        """A provider with :meth:`production_config`; ``overrides`` are merged key by key."""
        config = deep_merge(
            cls.production_config(
                service_name, service_version, environment, log_dir=log_dir, store_path=store_path
            ),
            overrides,
        )
        return ObservabilityProvider.create(config, service_name)

    @classmethod
    def kubernetes_config(
        cls, namespace: str, service_name: str, *, store_path: str | None = None
    ) -> dict[str, Any]:
        """JSON logs to stdout with k8s metadata, OTLP to the namespace's Collector service, /metrics."""
        exporters = _exporters(store_path)
        endpoint = _collector_endpoint(f"http://otel-collector.{namespace}.svc.cluster.local:4318")
        return {
            "logging": {
                "output": "console",
                "console_stream": "stdout",
                "format": "json",
                "include_kubernetes_metadata": True,
                "exporter": exporters,
                "endpoint": endpoint,
            },
            "tracing": {
                "exporter": exporters,
                "endpoint": endpoint,
                "sampling_rate": float(os.environ.get("LANGSWARM_SAMPLING_RATE", "1.0")),
            },
            "metrics": {
                "exporter": exporters,
                "endpoint": endpoint,
                "export_interval": 30,
                "prometheus_endpoint": "/metrics",
                "prometheus_host": os.environ.get("LANGSWARM_PROMETHEUS_HOST", "0.0.0.0"),
                "prometheus_port": int(os.environ.get("LANGSWARM_PROMETHEUS_PORT", "9464")),
                "kubernetes_labels": {
                    "namespace": namespace,
                    "service": service_name,
                    "version": os.getenv("APP_VERSION", "unknown"),
                },
            },
            "store": {"path": store_path},
            "resource": {
                "k8s.namespace.name": namespace,
                "service.version": os.getenv("APP_VERSION", "unknown"),
            },
        }

    @classmethod
    def setup_kubernetes_observability(
        cls,
        namespace: str,
        service_name: str,
        *,
        store_path: str | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> ObservabilityProvider:
        """A provider for a Kubernetes pod (metadata from the downward-API environment variables)."""
        config = deep_merge(cls.kubernetes_config(namespace, service_name, store_path=store_path), overrides)
        return ObservabilityProvider.create(config, service_name)

    @classmethod
    def cloud_config(
        cls, cloud_provider: str, service_name: str, *, store_path: str | None = None
    ) -> dict[str, Any]:
        """OTLP to a Collector configured for ``aws``, ``gcp`` or ``azure`` (deploy/<cloud>/), cloud resource attributes."""
        if cloud_provider not in CLOUD_PROVIDERS:
            close = difflib.get_close_matches(str(cloud_provider).lower(), CLOUD_PROVIDERS, n=1, cutoff=0.3)
            did_you_mean = f"; did you mean {close[0]!r}?" if close else ""
            msg = f"cloud provider {cloud_provider!r} is not supported; allowed: {', '.join(CLOUD_PROVIDERS)}{did_you_mean}"
            raise ConfigurationError(msg)
        exporters = _exporters(store_path)
        endpoint = _collector_endpoint()
        resource: dict[str, Any] = {"cloud.provider": cloud_provider}
        if cloud_provider == "aws":
            region: str | None = os.getenv("AWS_REGION") or os.getenv("AWS_DEFAULT_REGION") or "us-east-1"
            resource.update({"cloud.region": region, "aws.log.group.names": f"/aws/langswarm/{service_name}"})
        elif cloud_provider == "gcp":
            project = os.getenv("GOOGLE_CLOUD_PROJECT")
            if project:
                resource["cloud.account.id"] = project
            region = os.getenv("GOOGLE_CLOUD_REGION")
            if region:
                resource["cloud.region"] = region
        else:
            region = os.getenv("AZURE_REGION") or os.getenv("REGION_NAME")
            if region:
                resource["cloud.region"] = region
        resource.update(kubernetes_attributes())
        return {
            "logging": {
                "output": "console",
                "console_stream": "stdout",
                "format": "json",
                "exporter": exporters,
                "endpoint": endpoint,
            },
            "tracing": {"exporter": exporters, "endpoint": endpoint},
            "metrics": {"exporter": exporters, "endpoint": endpoint, "export_interval": 60},
            "store": {"path": store_path},
            "resource": resource,
        }

    @classmethod
    def setup_cloud_observability(
        cls,
        cloud_provider: str,
        service_name: str,
        *,
        store_path: str | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> ObservabilityProvider:
        """A provider for ``aws``, ``gcp`` or ``azure``: OTLP to the Collector in deploy/<cloud>/."""
        config = deep_merge(cls.cloud_config(cloud_provider, service_name, store_path=store_path), overrides)
        return ObservabilityProvider.create(config, service_name)

    @classmethod
    def _setup_aws_observability(cls, service_name: str) -> ObservabilityProvider:
        return cls.setup_cloud_observability("aws", service_name)

    @classmethod
    def _setup_gcp_observability(cls, service_name: str) -> ObservabilityProvider:
        return cls.setup_cloud_observability("gcp", service_name)

    @classmethod
    def _setup_azure_observability(cls, service_name: str) -> ObservabilityProvider:
        return cls.setup_cloud_observability("azure", service_name)

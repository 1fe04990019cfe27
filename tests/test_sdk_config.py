"""Configuration: validation messages, environment resolution, defaults, and documentation coverage."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest import ConfigurationError
from ingest.sdk.config import SCHEMA, parse_size, resolve_config

DOCS = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


class TestValidation:
    @pytest.mark.parametrize(
        ("config", "message"),
        [
            ({"tracng": {}}, r"unknown config key 'tracng'; did you mean 'tracing'\?"),
            ({"metrics": {"exclude_label": ["a"]}}, r"did you mean 'metrics\.exclude_labels'"),
            (
                {"tracing": {"sampling_rate": "high"}},
                r"'tracing\.sampling_rate' = 'high' is not valid; expected a number",
            ),
            (
                {"tracing": {"exporter": "jaeger"}},
                r"'tracing\.exporter' = 'jaeger' is not allowed; allowed: 'parquet', 'otlp'",
            ),
            ({"tracing": {"exporter": ["otlp", "none"]}}, r"'none' alone"),
            (
                {"tracing": {"enabled": "yes"}},
                r"'tracing\.enabled' = 'yes' is not valid; expected true or false",
            ),
            ({"performance": {"max_spans_per_trace": True}}, r"expected an integer"),
            ({"performance": {"max_spans_per_trace": 0}}, r"a whole number >= 1"),
            ({"logging": {"rotation": {"max_size": "100 parsecs"}}}, r"'logging\.rotation\.max_size'"),
            ({"logging": {"rotation": {"max_sise": "1MB"}}}, r"did you mean 'logging\.rotation\.max_size'"),
            ({"logging": {"level": "LOUD"}}, r"'logging\.level' = 'LOUD' is not allowed; allowed: 'DEBUG'"),
            ({"logging": {"level": "infoo"}}, r"did you mean 'INFO'"),
            ({"metrics": {"prometheus_endpoint": "metrics"}}, r"a URL path starting with '/'"),
            (
                {"metrics": {"custom_buckets": {"lat": [1, 0.5]}}},
                r"'metrics\.custom_buckets\.lat'.*increasing",
            ),
            ({"tracing": {"endpoint": "collector:4318"}}, r"an http:// or https:// URL"),
            (
                {"tracing": {"max_queue_size": 10, "max_export_batch_size": 20}},
                r"max_export_batch_size' = 20 is larger",
            ),
            ({"resource": {"service.version": [1]}}, r"'resource\.service\.version'"),
            ("not a dict", r"must be a mapping"),
        ],
    )
    def test_bad_config_names_key_and_allowed(self, config, message):
        """Each bad key or value is refused with the key path and what is allowed."""
        with pytest.raises(ConfigurationError, match=message):
            resolve_config(config, "svc")

    def test_service_name_required(self):
        """An empty service name is refused."""
        with pytest.raises(ConfigurationError, match="service_name"):
            resolve_config({}, " ")

    def test_defaults_are_complete_and_normalised(self):
        """The resolved config has every key; aliases and sizes are normalised."""
        cfg = resolve_config(
            {"logging": {"level": "warn", "rotation": {"max_size": "2MB"}}, "tracing": {"exporter": "otlp"}},
            "s",
        )
        assert set(cfg) == set(SCHEMA)
        for section, keys in SCHEMA.items():
            assert set(cfg[section]) >= set(keys)
        assert cfg["logging"]["level"] == "WARNING"
        assert cfg["logging"]["rotation"] == {"max_size": 2 * 1024**2, "backup_count": 5}
        assert (
            cfg["tracing"]["exporter"] == ("otlp",) and cfg["tracing"]["endpoint"] == "http://localhost:4318"
        )
        assert cfg["metrics"]["exporter"] == ("parquet",)
        assert resolve_config({"tracing": {"exporter": "none"}}, "s")["tracing"]["exporter"] == ()


class TestEnvironment:
    def test_argument_then_environment_then_default(self, monkeypatch):
        """Environment variables fill keys the argument leaves out; the argument wins."""
        monkeypatch.setenv("LANGSWARM_LOG_LEVEL", "debug")
        monkeypatch.setenv("LANGSWARM_SAMPLING_RATE", "0.25")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
        monkeypatch.setenv("LANGSWARM_PROMETHEUS_PORT", "9999")
        cfg = resolve_config({"tracing": {"exporter": "otlp"}}, "s")
        assert cfg["logging"]["level"] == "DEBUG"
        assert cfg["tracing"]["sampling_rate"] == 0.25
        assert cfg["tracing"]["endpoint"] == "http://collector:4318"
        assert cfg["metrics"]["prometheus_port"] == 9999
        assert resolve_config({"logging": {"level": "ERROR"}}, "s")["logging"]["level"] == "ERROR"

    def test_bad_environment_value_names_the_key(self, monkeypatch):
        """A bad environment value is reported like a bad argument."""
        monkeypatch.setenv("LANGSWARM_SAMPLING_RATE", "lots")
        with pytest.raises(ConfigurationError, match=r"'tracing\.sampling_rate' = 'lots'"):
            resolve_config({}, "s")


class TestSizes:
    @pytest.mark.parametrize(
        ("text", "size"),
        [("100MB", 100 * 1024**2), ("512 kb", 512 * 1024), ("1G", 1024**3), (4096, 4096), ("1.5KB", 1536)],
    )
    def test_parse_size(self, text, size):
        """Sizes accept bytes or binary units in any case."""
        assert parse_size(text) == size

    @pytest.mark.parametrize("bad", ["", "MB", "-1MB", 0, True, "10XB"])
    def test_parse_size_rejects(self, bad):
        """Zero, negative, unitless garbage and booleans are refused."""
        with pytest.raises(ConfigurationError):
            parse_size(bad, "logging.rotation.max_size")


def test_every_key_is_documented():
    """docs/configuration.md documents every configuration key by its full path."""
    text = DOCS.read_text()
    missing = []
    for section, keys in SCHEMA.items():
        for key in keys:
            paths = (
                [f"{section}.rotation.max_size", f"{section}.rotation.backup_count"]
                if key == "rotation"
                else [f"{section}.{key}"]
            )
            missing += [p for p in paths if f"`{p}`" not in text]
    assert not missing, f"undocumented config keys: {missing}"


def test_the_guides_literal_configs_are_accepted():
    """The guide's production, Kubernetes and troubleshooting configs validate as written."""
    production = {
        "logging": {
            "level": "INFO",
            "output": "file",
            "file_path": "/var/log/langswarm/svc.log",
            "format": "json",
            "rotation": {"max_size": "100MB", "backup_count": 10},
            "correlation": True,
        },
        "tracing": {
            "enabled": True,
            "sampling_rate": 0.1,
            "exporter": "otlp",
            "endpoint": "http://jaeger:14268/api/traces",
            "span_processor": "batch",
            "max_export_batch_size": 512,
            "export_timeout_millis": 30000,
        },
        "metrics": {
            "enabled": True,
            "export_interval": 60,
            "prometheus_endpoint": "/metrics",
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
    }
    kubernetes = {
        "logging": {"output": "console", "format": "json", "include_kubernetes_metadata": True},
        "tracing": {
            "exporter": "otlp",
            "endpoint": "http://jaeger-collector.ns.svc.cluster.local:14268/api/traces",
        },
        "metrics": {
            "prometheus_endpoint": "/metrics",
            "kubernetes_labels": {"namespace": "ns", "service": "svc", "version": "unknown"},
        },
    }
    troubleshooting = {
        "tracing": {"sampling_rate": 0.01, "adaptive_sampling": True},
        "logging": {"level": "WARNING", "exclude_components": ["debug_component"]},
        "metrics": {"exclude_labels": ["high_cardinality_label"]},
    }
    for config in (production, kubernetes, troubleshooting):
        resolve_config(config, "svc")
    assert resolve_config(production, "svc")["tracing"]["endpoint"] == "http://jaeger:14268/api/traces"

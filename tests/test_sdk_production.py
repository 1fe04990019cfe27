"""Production presets: OTLP to a (real, local) collector endpoint, Prometheus, JSON logs, the local store."""

from __future__ import annotations

import gzip
import json
import re
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client.parser import text_string_to_metric_families

from explorer import open_store
from ingest import ConfigurationError, ProductionObservabilitySetup

REPO = Path(__file__).resolve().parents[1]


class _Collector(BaseHTTPRequestHandler):
    """Accepts OTLP/HTTP protobuf posts and keeps them (a stand-in for nothing: it is the receiving end)."""

    received: list[tuple[str, bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.server.received.append((self.path, body))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", server.received  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def production_env(tmp_path, monkeypatch, collector):
    endpoint, received = collector
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.delenv("TRACING_ENDPOINT", raising=False)
    monkeypatch.setenv("LANGSWARM_TELEMETRY_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("LANGSWARM_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("LANGSWARM_PROMETHEUS_HOST", "127.0.0.1")
    monkeypatch.setenv("LANGSWARM_PROMETHEUS_PORT", "0")
    return tmp_path, received


def _decode(received: list[tuple[str, bytes]], path: str, message: type) -> list:
    out = []
    for got_path, body in received:
        if got_path == path:
            request = message()
            request.ParseFromString(body)
            out.append(request)
    return out


class TestProductionPreset:
    def test_production_config_end_to_end(self, production_env):
        """OTLP reaches the collector, /metrics scrapes, JSON file logs, store has resource + limits applied."""
        tmp_path, received = production_env
        provider = ProductionObservabilitySetup.create_production_observability("api", "1.2.3", "staging")
        assert provider.config["tracing"]["exporter"] == ("otlp", "parquet")
        tracer = provider.get_tracer("api")
        logger = provider.get_logger("api")
        metrics = provider.get_metrics("api")
        with tracer.start_span("handle_request") as span:
            span.set_attributes({f"attr_{i}": i for i in range(25)})
            logger.info("request handled", user_id="u-1", route="/chat")
            metrics.increment_counter("requests_total", labels={"route": "/chat", "user_id": "u-1"})
            metrics.record_histogram("http_request_duration_seconds", 0.02, labels={"route": "/chat"})
        with urllib.request.urlopen(provider.prometheus_url, timeout=30) as response:
            families = {f.name: f for f in text_string_to_metric_families(response.read().decode())}
        sample = next(s for s in families["requests"].samples if s.name == "requests_total")
        assert sample.labels == {"route": "/chat"} and sample.value == 1.0
        les = sorted(
            float(s.labels["le"])
            for s in families["http_request_duration_seconds"].samples
            if "le" in s.labels
        )
        assert les == [0.001, 0.01, 0.1, 1.0, 5.0, 10.0, 30.0, float("inf")]
        provider.shutdown()

        traces = _decode(received, "/v1/traces", ExportTraceServiceRequest)
        names = [s.name for t in traces for rs in t.resource_spans for ss in rs.scope_spans for s in ss.spans]
        assert names == ["handle_request"]
        otlp_span = traces[0].resource_spans[0].scope_spans[0].spans[0]
        # 25 set + 2 added by the adaptive sampler, limit 20 (performance.max_attributes_per_span)
        assert otlp_span.trace_id.hex() == span.trace_id and otlp_span.dropped_attributes_count == 7
        logs = _decode(received, "/v1/logs", ExportLogsServiceRequest)
        assert [
            r.body.string_value
            for lg in logs
            for rl in lg.resource_logs
            for sl in rl.scope_logs
            for r in sl.log_records
        ] == ["request handled"]
        metric_names = {
            m.name
            for req in _decode(received, "/v1/metrics", ExportMetricsServiceRequest)
            for rm in req.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
        }
        assert {
            "requests_total",
            "http_request_duration_seconds",
            "langswarm.telemetry.dropped_spans",
        } <= metric_names

        store = open_store(tmp_path / "store")
        row = store.sql(
            "SELECT resource_attributes['service.version'] AS v, resource_attributes['deployment.environment'] AS env, "
            "dropped_attributes_count AS dropped, attributes['attr_24'] AS newest, attributes['attr_0'] AS oldest "
            "FROM spans"
        ).iloc[0]
        # the SDK keeps the newest attributes when over the limit
        assert (row["v"], row["env"], row["dropped"], row["newest"]) == ("1.2.3", "staging", 7, "24")
        assert row["oldest"] is None or row["oldest"] != row["oldest"]
        attrs = store.sql("SELECT attributes FROM metrics WHERE name = 'requests_total'")["attributes"]
        assert all("user_id" not in dict(a) for a in attrs)
        lines = [json.loads(line) for line in (tmp_path / "logs" / "api.log").read_text().splitlines()]
        assert lines[-1]["message"] == "request handled" and lines[-1]["trace_id"] == span.trace_id
        assert lines[-1]["level"] == "INFO" and lines[-1]["user_id"] == "u-1"

    def test_kubernetes_preset(self, production_env, monkeypatch, capfd):
        """JSON to stdout with k8s metadata from the environment; namespace labels on metrics."""
        tmp_path, received = production_env
        from ingest.sdk.provider import KUBERNETES_ENV

        for names in KUBERNETES_ENV.values():
            for name in names:
                monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("KUBERNETES_NAMESPACE", "agents")
        monkeypatch.setenv("KUBERNETES_POD_NAME", "agent-7f9c")
        monkeypatch.setenv("KUBERNETES_NODE_NAME", "node-1")
        monkeypatch.setenv("APP_VERSION", "2.0.0")
        provider = ProductionObservabilitySetup.setup_kubernetes_observability("agents", "agent")
        provider.get_logger("agent").info("ready", port=8080)
        provider.get_metrics("agent").set_gauge("ready", 1)
        provider.shutdown()
        line = json.loads(capfd.readouterr().out.strip().splitlines()[-1])
        assert line["message"] == "ready" and line["port"] == 8080
        assert line["kubernetes"] == {"namespace": "agents", "pod": "agent-7f9c", "node": "node-1"}
        store = open_store(tmp_path / "store")
        res = dict(store.sql("SELECT resource_attributes FROM logs")["resource_attributes"][0])
        assert res["k8s.pod.name"] == "agent-7f9c" and res["k8s.namespace.name"] == "agents"
        attrs = dict(store.sql("SELECT attributes FROM metrics WHERE name = 'ready'")["attributes"][0])
        assert attrs == {"namespace": "agents", "service": "agent", "version": "2.0.0"}
        assert any(path == "/v1/logs" for path, _ in received)

    @pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
    def test_cloud_presets_export_otlp(self, production_env, monkeypatch, cloud):
        """Each cloud preset sends OTLP to the collector with cloud.provider set; deploy/ has its config."""
        _, received = production_env
        monkeypatch.setenv("AWS_REGION", "eu-west-1")
        provider = ProductionObservabilitySetup.setup_cloud_observability(cloud, f"svc-{cloud}")
        with provider.get_tracer("t").start_span("work"):
            pass
        provider.shutdown()
        traces = _decode(received, "/v1/traces", ExportTraceServiceRequest)
        resource = {a.key: a.value.string_value for a in traces[0].resource_spans[0].resource.attributes}
        assert resource["cloud.provider"] == cloud and resource["service.name"] == f"svc-{cloud}"
        if cloud == "aws":
            assert resource["cloud.region"] == "eu-west-1"
        config = (REPO / "deploy" / cloud / "otel-collector.yaml").read_text()
        _check_collector_config(config)

    def test_unknown_cloud_is_a_clear_error(self):
        """An unsupported cloud names the allowed ones and the closest."""
        with pytest.raises(
            ConfigurationError, match=r"'awz' is not supported; allowed: aws, gcp, azure; did you mean 'aws'"
        ):
            ProductionObservabilitySetup.setup_cloud_observability("awz", "svc")


def _check_collector_config(text: str) -> None:
    """Every exporter a pipeline names is defined, and an OTLP HTTP receiver listens on 4318."""
    assert re.search(
        r"^receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: 0\.0\.0\.0:4318", text, re.M
    )
    exporters_block = re.search(r"^exporters:\n((?:  .*\n|\n)*)", text, re.M).group(1)
    defined = set(re.findall(r"^  ([\w/]+):", exporters_block, re.M))
    used = {
        name.strip() for group in re.findall(r"exporters: \[([^\]]+)\]", text) for name in group.split(",")
    }
    assert used and used <= defined
    assert "pipelines:" in text and "traces:" in text


def test_kubernetes_deploy_files_are_consistent():
    """The k8s collector config is well formed and the deployment exposes the metrics port it scrapes."""
    _check_collector_config((REPO / "deploy" / "kubernetes" / "otel-collector.yaml").read_text())
    deployment = (REPO / "deploy" / "kubernetes" / "deployment.yaml").read_text()
    assert 'prometheus.io/port: "9464"' in deployment and "containerPort: 9464" in deployment
    assert "KUBERNETES_POD_NAME" in deployment and "fieldPath: metadata.namespace" in deployment

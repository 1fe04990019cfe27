"""Logs and metrics through the real OTel SDK and the Parquet exporters, read back with DuckDB."""

from __future__ import annotations

import logging

import pandas as pd
import pytest
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from explorer import open_store
from ingest import ParquetLogExporter, ParquetMetricExporter

RESOURCE = Resource.create({"service.name": "agent-orchestrator"})


class TestLogExport:
    def test_logs_carry_the_current_trace_and_span(self, tmp_path):
        """stdlib logging through OTel's LoggingHandler lands with the active span's ids and extra fields."""
        logger_provider = LoggerProvider(resource=RESOURCE)
        logger_provider.add_log_record_processor(BatchLogRecordProcessor(ParquetLogExporter(tmp_path)))
        handler = LoggingHandler(level=logging.DEBUG, logger_provider=logger_provider)
        log = logging.getLogger("tests.planner")
        log.setLevel(logging.DEBUG)
        log.addHandler(handler)
        tracer = TracerProvider(resource=RESOURCE).get_tracer("tests")
        try:
            log.info("outside any span")
            with tracer.start_as_current_span("plan") as span:
                ctx = span.get_span_context()
                log.warning("plan is slow: %s ms", 1234, extra={"step": 3, "model": "gpt-4o", "ok": False})
                try:
                    raise RuntimeError("planner crashed")
                except RuntimeError:
                    log.exception("planner failed ✗")
        finally:
            log.removeHandler(handler)
            logger_provider.shutdown()

        frame = open_store(tmp_path).sql("SELECT * FROM logs ORDER BY timestamp")
        assert frame["body"].tolist() == ["outside any span", "plan is slow: 1234 ms", "planner failed ✗"]
        assert pd.isna(frame.iloc[0]["trace_id"])
        warning = frame.iloc[1]
        assert warning["trace_id"] == f"{ctx.trace_id:032x}" and warning["span_id"] == f"{ctx.span_id:016x}"
        assert warning["severity_text"] == "WARN" or warning["severity_text"] == "WARNING"
        assert warning["severity_number"] == 13
        attributes = dict(warning["attributes"])
        assert attributes["step"] == "3" and attributes["model"] == "gpt-4o" and attributes["ok"] == "false"
        assert warning["service_name"] == "agent-orchestrator"
        assert warning["logger_name"] == "tests.planner"
        error = frame.iloc[2]
        assert error["severity_number"] == 17
        assert "planner crashed" in dict(error["attributes"])["exception.stacktrace"]


class TestMetricExport:
    @pytest.fixture
    def meter(self, tmp_path):
        exporter = ParquetMetricExporter(tmp_path)
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
        provider = MeterProvider(
            resource=RESOURCE,
            metric_readers=[reader],
            views=[
                View(
                    instrument_name="llm_latency_seconds",
                    aggregation=ExplicitBucketHistogramAggregation([0.1, 1.0, 10.0]),
                )
            ],
        )
        yield provider.get_meter("tests.metrics"), provider, tmp_path
        provider.shutdown()

    def test_counters_gauges_histograms_with_labels(self, meter):
        """Each instrument type lands with its labels, values and (for histograms) buckets."""
        m, provider, root = meter
        requests = m.create_counter("requests_total")
        requests.add(3, {"route": "/plan", "status": "200"})
        requests.add(2, {"route": "/plan", "status": "200"})
        requests.add(1, {"route": "/plan", "status": "500"})
        depth = m.create_gauge("queue_depth")
        depth.set(7, {"queue": "tools"})
        inflight = m.create_up_down_counter("inflight")
        inflight.add(5)
        inflight.add(-2)
        latency = m.create_histogram("llm_latency_seconds", unit="s")
        for value in (0.05, 0.5, 0.7, 4.0, 30.0):
            latency.record(value, {"model": "gpt-4o"})
        provider.force_flush()

        store = open_store(root)
        counters = store.sql(
            "SELECT attributes['status'] AS status, value, type, temporality FROM metrics "
            "WHERE name = 'requests_total' ORDER BY status"
        )
        assert counters["status"].tolist() == ["200", "500"]
        assert counters["value"].tolist() == [5.0, 1.0]
        assert set(counters["type"]) == {"counter"} and set(counters["temporality"]) == {"cumulative"}
        gauge = store.sql(
            "SELECT type, value, attributes['queue'] AS q FROM metrics WHERE name = 'queue_depth'"
        )
        assert gauge.iloc[0].tolist() == ["gauge", 7.0, "tools"]
        updown = store.sql("SELECT type, value, is_monotonic FROM metrics WHERE name = 'inflight'").iloc[0]
        assert updown["type"] == "gauge" and updown["value"] == 3.0 and not updown["is_monotonic"]
        hist = store.sql("SELECT * FROM metrics WHERE name = 'llm_latency_seconds'").iloc[0]
        assert hist["type"] == "histogram" and hist["unit"] == "s"
        assert hist["count"] == 5 and hist["sum"] == pytest.approx(35.25)
        assert list(hist["explicit_bounds"]) == [0.1, 1.0, 10.0]
        assert list(hist["bucket_counts"]) == [1, 2, 1, 1]
        assert hist["min"] == 0.05 and hist["max"] == 30.0
        assert dict(hist["attributes"]) == {"model": "gpt-4o"}
        assert hist["service_name"] == "agent-orchestrator"

    def test_cumulative_counter_across_collections(self, meter):
        """Two collections give two rows; the later one holds the running total."""
        m, provider, root = meter
        counter = m.create_counter("tokens_total")
        counter.add(10)
        provider.force_flush()
        counter.add(5)
        provider.force_flush()
        values = open_store(root).sql(
            "SELECT value FROM metrics WHERE name = 'tokens_total' ORDER BY timestamp"
        )
        assert values["value"].tolist() == [10.0, 15.0]


def test_a_lone_surrogate_costs_neither_the_log_nor_the_metric_batch(make_provider, tmp_path):
    """Found with the span fuzzing: one string with a lone surrogate (bytes decoded with
    surrogateescape) made the log batch, and the whole metrics collection with the provider's own
    telemetry, fail to export. Now the code point is stored as U+FFFD and nothing is lost."""
    provider = make_provider({"tracing": {"span_processor": "simple"}}, "svc \udcff")
    logger = provider.get_logger("comp\ud800")
    logger.info("ok")
    logger.info("file \udcff.txt", path="x\ud800")
    provider.get_metrics("comp").increment_counter("opened_total", labels={"path": "\udcff"})
    provider.shutdown()
    assert provider.counters.by_reason("logs") == {} and provider.counters.by_reason("metric_points") == {}
    store = open_store(tmp_path / "store")
    logs = store.sql(
        "SELECT body, attributes['path'] AS path, service_name, logger_name FROM logs ORDER BY body"
    )
    assert logs.body.tolist() == ["file \ufffd.txt", "ok"]
    assert logs.path.tolist()[0] == "x\ufffd" and set(logs.logger_name) == {"comp\ufffd"}
    assert set(logs.service_name) == {"svc \ufffd"}
    labels = store.sql("SELECT attributes['path'] AS path FROM metrics WHERE name = 'opened_total'")
    assert set(labels.path) == {"\ufffd"}

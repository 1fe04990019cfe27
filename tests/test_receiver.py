"""``python -m ingest serve`` fed by the OTel SDK's own OTLP/HTTP exporters; everything lands after SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(params=[1, 2], ids=["one-process", "two-workers"])
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[subprocess.Popen, str, Path]]:
    """``python -m ingest serve`` on a free port; rows wait a minute unless SIGTERM flushes them."""
    store = tmp_path / "store"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ingest",
            "serve",
            "--store",
            str(store),
            "--port",
            "0",
            "--flush-interval",
            "60",
            "--workers",
            str(request.param),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        line = process.stdout.readline()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, (line, process.stderr.read() if process.poll() is not None else "")
        yield process, match.group(1), store
    finally:
        if process.poll() is None:  # the test failed half-way: stop the server and its workers
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def test_sdk_exporters_spans_metrics_logs_all_land_after_sigterm(
    server: tuple[subprocess.Popen, str, Path],
) -> None:
    process, url, store = server
    resource = Resource({"service.name": "shop", "deployment.environment": "test"})

    local = InMemorySpanExporter()
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        BatchSpanProcessor(
            OTLPSpanExporter(endpoint=f"{url}/v1/traces"), max_queue_size=10_000, max_export_batch_size=256
        )
    )
    tracer_provider.add_span_processor(SimpleSpanProcessor(local))
    tracer = tracer_provider.get_tracer("shop.checkout", "1.2")
    for t in range(300):
        with tracer.start_as_current_span("POST /order", attributes={"order": t, "vip": t % 7 == 0}):
            for step in ("reserve", "charge", "ship"):
                with tracer.start_as_current_span(step) as span:
                    span.add_event("retry", {"attempt": 1})
    tracer_provider.shutdown()

    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"{url}/v1/logs", compression=Compression.Gzip))
    )
    logger = logger_provider.get_logger("shop.audit")
    for i in range(250):
        logger.emit(
            severity_number=SeverityNumber.INFO, severity_text="INFO", body=f"audit {i}", attributes={"i": i}
        )
    logger_provider.shutdown()

    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{url}/v1/metrics"), export_interval_millis=3_600_000
    )
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = meter_provider.get_meter("shop.metrics")
    orders = meter.create_counter("orders")
    latency = meter.create_histogram("latency", unit="ms")
    stock = meter.create_up_down_counter("stock")
    for i in range(40):
        orders.add(1, {"region": "eu" if i % 2 else "us"})
        latency.record(float(i), {"route": "/order"})
        stock.add(-1)
    meter_provider.shutdown()  # one final export of every stream

    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "stopped" in out and '"pending_rows": 0' in out and 'write_failures": 1' not in out

    spans = ds.dataset(store / "spans", format="parquet", partitioning="hive").to_table().to_pylist()
    assert len(spans) == 1200
    expected_ids = {
        (f"{s.context.trace_id:032x}", f"{s.context.span_id:016x}") for s in local.get_finished_spans()
    }
    assert {(s["trace_id"], s["span_id"]) for s in spans} == expected_ids
    roots = [s for s in spans if s["parent_span_id"] is None]
    assert len(roots) == 300 and all(s["kind"] == "INTERNAL" and s["service_name"] == "shop" for s in roots)
    assert {dict(s["attributes"])["order"] for s in roots} == {str(t) for t in range(300)}
    assert all(s["scope_name"] == "shop.checkout" and s["scope_version"] == "1.2" for s in spans)
    assert sum(len(s["events"]) for s in spans) == 900

    logs = ds.dataset(store / "logs", format="parquet", partitioning="hive").to_table().to_pylist()
    assert sorted(r["body"] for r in logs) == sorted(f"audit {i}" for i in range(250))
    assert {r["severity_number"] for r in logs} == {9} and {r["logger_name"] for r in logs} == {"shop.audit"}

    metrics = ds.dataset(store / "metrics", format="parquet", partitioning="hive").to_table().to_pylist()
    points = {(m["name"], tuple(sorted(dict(m["attributes"]).items()))): m for m in metrics}
    assert set(points) == {
        ("orders", (("region", "eu"),)),
        ("orders", (("region", "us"),)),
        ("latency", (("route", "/order"),)),
        ("stock", ()),
    }
    assert points[("orders", (("region", "eu"),))]["value"] == 20.0
    assert points[("orders", (("region", "eu"),))]["type"] == "counter"
    histogram = points[("latency", (("route", "/order"),))]
    assert (
        histogram["type"] == "histogram"
        and histogram["count"] == 40
        and histogram["sum"] == float(sum(range(40)))
    )
    assert sum(histogram["bucket_counts"]) == 40 and histogram["min"] == 0.0 and histogram["max"] == 39.0
    assert points[("stock", ())]["value"] == -40.0 and points[("stock", ())]["type"] == "gauge"

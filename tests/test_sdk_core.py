"""The SDK core: provider → OTel SDK → Parquet store, read back with DuckDB."""

from __future__ import annotations

import asyncio

import pytest

from explorer import open_store
from ingest import ConfigurationError, ObservabilityProvider
from ingest.sdk.correlation import (
    correlation_scope,
    get_correlation_id,
    new_correlation_id,
    set_correlation_id,
)


class TestProviderRoundTrip:
    def test_spans_logs_metrics_reach_the_store(self, make_provider):
        """A traced, logged and measured operation is in all three tables with matching ids."""
        provider = make_provider(service_name="orders")
        tracer = provider.get_tracer("checkout")
        logger = provider.get_logger("checkout")
        metrics = provider.get_metrics("checkout")
        with correlation_scope("corr-42"):
            with tracer.start_span("place_order", {"order.items": 3}) as root:
                logger.info("order received", order_id="o-1", amount=12.5)
                with tracer.start_span("charge_card", kind="client") as child:
                    child.set_attributes({"card.brand": "visa", "retries": 0})
                    child.set_status("OK", "charged")
                metrics.increment_counter("orders_total", labels={"status": "ok"})
                metrics.record_histogram("order_duration_seconds", 0.25, labels={"status": "ok"})
                metrics.set_gauge("open_carts", 7)
        provider.shutdown()

        store = open_store(provider.store_writer.root)
        spans = store.sql(
            "SELECT name, trace_id, span_id, parent_span_id, kind, service_name, status_code, "
            "attributes['correlation_id'] AS cid, attributes['order.items'] AS items, "
            "attributes['langswarm.status_message'] AS ok_message, scope_name FROM spans ORDER BY start_time"
        )
        assert list(spans["name"]) == ["place_order", "charge_card"]
        assert spans["trace_id"].nunique() == 1 and spans["trace_id"][0] == root.trace_id
        assert spans["parent_span_id"][1] == root.span_id == spans["span_id"][0]
        assert spans["parent_span_id"].isna()[0]
        assert list(spans["cid"]) == ["corr-42", "corr-42"]
        assert list(spans["kind"]) == ["INTERNAL", "CLIENT"]
        assert spans["status_code"][1] == "OK" and spans["ok_message"][1] == "charged"
        assert spans["items"][0] == "3" and set(spans["service_name"]) == {"orders"}
        assert set(spans["scope_name"]) == {"checkout"}

        logs = store.sql(
            "SELECT body, trace_id, span_id, severity_text, logger_name, attributes['order_id'] AS oid, "
            "CAST(attributes['amount'] AS DOUBLE) AS amount, attributes['correlation_id'] AS cid FROM logs"
        )
        assert logs.to_dict("records") == [
            {
                "body": "order received",
                "trace_id": root.trace_id,
                "span_id": root.span_id,
                "severity_text": "INFO",
                "logger_name": "checkout",
                "oid": "o-1",
                "amount": 12.5,
                "cid": "corr-42",
            }
        ]
        m = store.sql(
            "SELECT name, type, value, count, sum, attributes['status'] AS status FROM metrics "
            "WHERE name IN ('orders_total', 'order_duration_seconds', 'open_carts') ORDER BY name"
        )
        by_name = {r["name"]: r for r in m.to_dict("records")}
        assert by_name["orders_total"]["type"] == "counter" and by_name["orders_total"]["value"] == 1.0
        assert by_name["order_duration_seconds"]["type"] == "histogram"
        assert (
            by_name["order_duration_seconds"]["count"] == 1
            and by_name["order_duration_seconds"]["sum"] == 0.25
        )
        assert by_name["open_carts"]["type"] == "gauge" and by_name["open_carts"]["value"] == 7.0

    def test_async_span_and_exception_marks_error(self, make_provider):
        """An exception leaving an (async) span block is recorded once, marks ERROR and propagates."""
        provider = make_provider()
        tracer = provider.get_tracer("worker")

        async def work() -> None:
            async with tracer.start_span("outer"):
                with tracer.start_span("inner") as inner:
                    await asyncio.sleep(0)
                    try:
                        raise KeyError("missing")
                    except KeyError as exc:
                        inner.record_exception(exc)
                        inner.set_status("ERROR", "lookup failed")
                        raise

        with pytest.raises(KeyError):
            asyncio.run(work())
        provider.shutdown()
        spans = open_store(provider.store_writer.root).sql(
            "SELECT name, status_code, status_message, len(events) AS n_events, events[1].name AS event "
            "FROM spans ORDER BY name"
        )
        rows = {r["name"]: r for r in spans.to_dict("records")}
        assert rows["inner"]["status_code"] == "ERROR" and rows["inner"]["status_message"] == "lookup failed"
        assert rows["inner"]["n_events"] == 1 and rows["inner"]["event"] == "exception"
        assert rows["outer"]["status_code"] == "ERROR"
        assert "KeyError" in rows["outer"]["status_message"]

    def test_get_current_span_with_block_does_not_end_it(self, make_provider):
        """``with tracer.get_current_span() as span`` annotates the active span without ending it."""
        provider = make_provider()
        tracer = provider.get_tracer("batch")
        with tracer.start_span("batch") as outer:
            with tracer.get_current_span() as current:
                current.set_attribute("batch_size", 4)
            assert current.span_id == outer.span_id
            outer.set_attribute("after", True)
        provider.shutdown()
        row = open_store(provider.store_writer.root).sql(
            "SELECT attributes['batch_size'] AS b, attributes['after'] AS a FROM spans"
        )
        assert row.to_dict("records") == [{"b": "4", "a": "true"}]

    def test_second_provider_does_not_disturb_the_first(self, tmp_path, make_provider):
        """Two providers in one process keep their own service names, stores and pipelines."""
        first = make_provider({"store": {"path": str(tmp_path / "a")}}, service_name="alpha")
        second = make_provider({"store": {"path": str(tmp_path / "b")}}, service_name="beta")
        with first.get_tracer("x").start_span("from-alpha"):
            with second.get_tracer("y").start_span("from-beta"):
                pass
        second.shutdown()
        with first.get_tracer("x").start_span("alpha-after-beta-shutdown"):
            pass
        first.shutdown()
        a = open_store(tmp_path / "a").sql("SELECT name, service_name FROM spans ORDER BY name")
        b = open_store(tmp_path / "b").sql("SELECT name, service_name FROM spans")
        assert a.to_dict("records") == [
            {"name": "alpha-after-beta-shutdown", "service_name": "alpha"},
            {"name": "from-alpha", "service_name": "alpha"},
        ]
        assert b.to_dict("records") == [{"name": "from-beta", "service_name": "beta"}]

    def test_shutdown_is_idempotent_and_flushes(self, make_provider):
        """shutdown() twice is harmless; a logger call after it is ignored, not raised."""
        provider = make_provider()
        provider.get_logger("c").warning("before")
        provider.shutdown()
        provider.shutdown()
        assert provider.is_shutdown
        provider.get_logger("c").warning("after")
        logs = open_store(provider.store_writer.root).sql("SELECT body, severity_text FROM logs")
        assert logs.to_dict("records") == [{"body": "before", "severity_text": "WARN"}]


class TestMetricsExport:
    def test_export_metrics_values_and_series(self, make_provider):
        """Counters sum over series, gauges give the last set, histograms the last observation."""
        provider = make_provider()
        metrics = provider.get_metrics()
        metrics.increment_counter("calls_total", labels={"op": "a", "env": "dev"})
        metrics.increment_counter("calls_total", 2, labels={"op": "b", "env": "dev"})
        metrics.set_gauge("queue_depth", 5, labels={"queue": "x"})
        metrics.set_gauge("queue_depth", 3, labels={"queue": "y"})
        hist = metrics.create_histogram("latency_seconds", buckets=[0.1, 1.0])
        hist.observe(0.5)
        hist.observe(2.0)
        out = asyncio.run(metrics.export_metrics())
        assert out["calls_total"]["value"] == 3.0 and out["calls_total"]["type"] == "counter"
        assert out["calls_total"]["labels"] == {"env": "dev"}
        assert sorted(s["labels"]["op"] for s in out["calls_total"]["series"]) == ["a", "b"]
        assert out["queue_depth"]["value"] == 3.0 and out["queue_depth"]["labels"] == {"queue": "y"}
        assert out["latency_seconds"]["value"] == 2.0
        assert out["latency_seconds"]["count"] == 2 and out["latency_seconds"]["sum"] == 2.5
        assert out["latency_seconds"]["buckets"] == [0.1, 1.0]


class TestConfigErrors:
    def test_unknown_key_suggests_the_closest(self):
        """A typo names the key path and the closest valid key."""
        with pytest.raises(
            ConfigurationError, match=r"tracing\.sampling_rat'.*did you mean 'tracing\.sampling_rate'"
        ):
            ObservabilityProvider.create({"tracing": {"sampling_rat": 0.5}}, "svc")

    def test_bad_value_names_what_is_allowed(self):
        """A bad value names the key and what is allowed."""
        with pytest.raises(ConfigurationError, match=r"logging\.output.*'console', 'file', 'both', 'none'"):
            ObservabilityProvider.create({"logging": {"output": "cloudwatch"}}, "svc")
        with pytest.raises(ConfigurationError, match=r"tracing\.sampling_rate.*<= 1\.0"):
            ObservabilityProvider.create({"tracing": {"sampling_rate": 1.5}}, "svc")


class TestCorrelation:
    def test_helpers(self):
        """set/get/scope/new behave like a contextvar and restore the previous id."""
        assert get_correlation_id() is None
        with correlation_scope() as cid:
            assert get_correlation_id() == cid and len(cid) == 32
            with correlation_scope("inner"):
                assert get_correlation_id() == "inner"
            assert get_correlation_id() == cid
        assert get_correlation_id() is None
        token = set_correlation_id("x")
        assert get_correlation_id() == "x"
        from ingest.sdk.correlation import reset_correlation_id

        reset_correlation_id(token)
        assert get_correlation_id() is None
        assert new_correlation_id("req_").startswith("req_")


class TestNoOps:
    def test_noops_have_every_public_method(self):
        """NoOpLogger/Tracer/Metrics offer every public method of the real classes."""
        from ingest import NoOpLogger, NoOpMetrics, NoOpTracer, V2Logger, V2Metrics, V2Tracer
        from ingest.sdk.noop import NoOpSpan
        from ingest.sdk.tracer import V2Span

        for real, noop in (
            (V2Logger, NoOpLogger),
            (V2Tracer, NoOpTracer),
            (V2Metrics, NoOpMetrics),
            (V2Span, NoOpSpan),
        ):
            public = {n for n in dir(real) if not n.startswith("_") and callable(getattr(real, n))}
            missing = {n for n in public if not hasattr(noop, n)}
            assert not missing, f"{noop.__name__} lacks {sorted(missing)}"

    def test_noop_calls_do_nothing_and_let_exceptions_through(self):
        """No-op spans are context managers (sync and async) that do not swallow exceptions."""
        from ingest import NoOpLogger, NoOpMetrics, NoOpTracer

        tracer, logger, metrics = NoOpTracer(), NoOpLogger(), NoOpMetrics()
        with pytest.raises(ZeroDivisionError), tracer.start_span("x") as span:
            span.set_attribute("a", 1).set_status("ERROR", "m")
            logger.log("INFO", "m", k=1)
            metrics.create_histogram("h").observe(1)
            raise ZeroDivisionError("boom")

        async def run() -> dict:
            async with tracer.start_span("y"):
                with metrics.create_histogram("h").timer():
                    pass
            return await metrics.export_metrics()

        assert asyncio.run(run()) == {}


class TestLifecycle:
    def test_interpreter_exit_flushes_the_store(self, tmp_path):
        """A provider never shut down explicitly is flushed by the atexit hook (open spans as unfinished)."""
        import subprocess
        import sys
        import textwrap
        from pathlib import Path

        repo = Path(__file__).resolve().parents[1]
        script = textwrap.dedent(
            f"""
            from ingest import ObservabilityProvider
            p = ObservabilityProvider.create({{"store": {{"path": {str(tmp_path / "s")!r}}}, "logging": {{"output": "none"}}}}, "exiting")
            t = p.get_tracer("x")
            with t.start_span("done"):
                p.get_logger("x").info("bye")
            t.start_span("still_open")
            """
        )
        subprocess.run([sys.executable, "-c", script], cwd=repo, check=True, timeout=120)
        store = open_store(tmp_path / "s")
        spans = store.sql("SELECT name, end_time IS NULL AS open FROM spans ORDER BY name")
        assert spans.to_dict("records") == [
            {"name": "done", "open": False},
            {"name": "still_open", "open": True},
        ]
        assert list(store.sql("SELECT body FROM logs")["body"]) == ["bye"]
        assert not store.sql("SELECT 1 FROM metrics WHERE name = 'langswarm.telemetry.exported'").empty

    def test_resource_monitor_sets_gauges(self, make_provider):
        """ResourceMonitor.sample() records psutil readings as gauges and warns over thresholds."""
        from ingest.sdk.resource_monitor import ResourceMonitor

        provider = make_provider()
        monitor = ResourceMonitor(provider, cpu_threshold=-1.0, memory_threshold=-1.0)
        values = monitor.sample()
        assert values["process_memory_rss_bytes"] > 0 and 0 <= values["system_memory_percent"] <= 100
        monitor.start(interval_s=0.05)
        monitor.stop()
        provider.shutdown()
        store = open_store(provider.store_writer.root)
        names = set(store.sql("SELECT DISTINCT name FROM metrics")["name"])
        assert {
            "process_cpu_percent",
            "process_memory_rss_bytes",
            "system_cpu_percent",
            "system_memory_percent",
        } <= names
        warnings = store.sql("SELECT body FROM logs WHERE severity_text = 'WARN'")
        assert set(warnings["body"]) == {"High CPU usage detected", "High memory usage detected"}

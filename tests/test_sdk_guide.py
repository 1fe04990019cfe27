"""The guide's examples run against ``ingest`` (import line changed), then the store is checked with DuckDB."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest

from explorer import open_store
from ingest import (
    HealthCheckManager,
    NoOpLogger,
    NoOpMetrics,
    NoOpTracer,
    ObservabilityProvider,
    ObservableComponent,
)
from ingest.sdk.components import observe_operation


class CustomDataProcessor(ObservableComponent):
    """The guide's example component; ``observe_operation`` is used the way the guide means it."""

    def __init__(self, observability_provider: ObservabilityProvider):
        super().__init__("data_processor", observability_provider)
        self.processed_count = 0

    async def _initialize_impl(self) -> None:
        await asyncio.sleep(0.01)
        self.logger.info("Data processor initialized")

    @ObservableComponent.observe_operation("process_data")
    async def process_data(self, data: dict) -> dict:
        self.processed_count += 1
        processed_data = {
            "original": data,
            "processed_at": time.time(),
            "processed_count": self.processed_count,
        }
        self.metrics.set_gauge("processed_items_count", self.processed_count)
        return processed_data

    @observe_operation("batch_process")
    async def batch_process(self, data_batch: list) -> list:
        results = []
        with self.tracer.get_current_span() as span:
            span.set_attribute("batch_size", len(data_batch))
        for i, data_item in enumerate(data_batch):
            with self.tracer.start_span(f"process_item_{i}") as item_span:
                item_span.set_attribute("item_index", i)
                item_span.set_attribute("item_size", len(str(data_item)))
                result = await self.process_data(data_item)
                results.append(result)
        return results

    @observe_operation("validate")
    def validate(self, data: dict) -> bool:
        if "id" not in data:
            raise ValueError("missing id")
        return True


class TestObservableComponent:
    def test_custom_data_processor(self, make_provider):
        """initialize + batch_process give the expected span tree, metrics and logs."""
        provider = make_provider({"logging": {"level": "DEBUG"}}, service_name="pipeline")
        processor = CustomDataProcessor(provider)

        async def main() -> list:
            await processor.initialize()
            return await processor.batch_process([{"id": 1}, {"id": 2}, {"id": 3}])

        results = asyncio.run(main())
        assert [r["processed_count"] for r in results] == [1, 2, 3]
        assert processor.validate({"id": 9}) is True
        with pytest.raises(ValueError, match="missing id"):
            processor.validate({})
        provider.shutdown()

        store = open_store(provider.store_writer.root)
        spans = store.sql(
            "SELECT name, trace_id, span_id, parent_span_id, status_code, attributes FROM spans"
        )
        by_name = {r["name"]: r for r in spans.to_dict("records")}
        init = by_name["data_processor_initialization"]
        assert init["status_code"] == "OK" and init["parent_span_id"] != init["parent_span_id"]  # NaN: a root
        batch = by_name["data_processor_batch_process"]
        assert dict(batch["attributes"])["batch_size"] == "3"
        assert dict(batch["attributes"])["operation"] == "batch_process"
        items = spans[spans["name"].str.startswith("process_item_")]
        assert len(items) == 3 and set(items["parent_span_id"]) == {batch["span_id"]}
        process = spans[spans["name"] == "data_processor_process_data"]
        assert set(process["parent_span_id"]) == set(items["span_id"])
        assert set(spans[spans["name"] != "data_processor_initialization"]["trace_id"]) >= {batch["trace_id"]}
        failed = spans[(spans["name"] == "data_processor_validate") & (spans["status_code"] == "ERROR")]
        assert len(failed) == 1

        metrics = store.sql(
            "SELECT name, value, coalesce(attributes['operation'], '') AS op, coalesce(attributes['status'], '') AS status, "
            "coalesce(attributes['error_type'], '') AS err FROM metrics WHERE name LIKE 'component_%' AND type = 'counter' "
            "QUALIFY row_number() OVER (PARTITION BY name, CAST(attributes AS VARCHAR) ORDER BY timestamp DESC) = 1"
        )
        counts = {(r["name"], r["op"], r["status"], r["err"]): r["value"] for r in metrics.to_dict("records")}
        assert counts[("component_operations_total", "process_data", "success", "")] == 3
        assert counts[("component_operations_total", "batch_process", "success", "")] == 1
        assert counts[("component_operations_total", "validate", "error", "")] == 1
        assert counts[("component_errors_total", "validate", "", "ValueError")] == 1
        assert counts[("component_initializations_total", "", "success", "")] == 1
        gauge = store.sql(
            "SELECT value FROM metrics WHERE name = 'processed_items_count' ORDER BY timestamp DESC LIMIT 1"
        )
        assert gauge["value"][0] == 3.0

        logs = store.sql("SELECT body, severity_text, trace_id, span_id FROM logs")
        bodies = list(logs["body"])
        assert "Data processor initialized" in bodies and "Component initialization completed" in bodies
        assert bodies.count("Starting process_data") == 3 and bodies.count("Completed process_data") == 3
        err = logs[logs["body"] == "Failed validate"]
        assert err["severity_text"].tolist() == ["ERROR"]
        span_ids = set(spans["span_id"])
        assert set(logs["span_id"]) <= span_ids

    def test_without_provider_uses_noops(self):
        """A component built without a provider works and records nothing."""
        processor = CustomDataProcessor(None)
        assert isinstance(processor.logger, NoOpLogger)
        assert isinstance(processor.tracer, NoOpTracer)
        assert isinstance(processor.metrics, NoOpMetrics)
        out = asyncio.run(processor.batch_process([{"id": 1}]))
        assert out[0]["processed_count"] == 1

    def test_instance_decorator_and_integrations(self, make_provider):
        """``component.observe_operation(name)(func)`` wraps plain functions; parameter_logging records args."""
        provider = make_provider({"integrations": {"parameter_logging": True, "detailed_spans": False}})
        component = ObservableComponent("tools", provider)

        @component.observe_operation("lookup")
        def lookup(key: str, *, default: int = 0) -> int:
            return len(key) + default

        assert lookup("abc", default=1) == 4
        provider.shutdown()
        row = open_store(provider.store_writer.root).sql(
            "SELECT name, attributes['operation.arg.0'] AS a0, attributes['operation.kwarg.default'] AS k, "
            "coalesce(attributes['args_count'], '-') AS n FROM spans"
        )
        assert row.to_dict("records") == [{"name": "tools_lookup", "a0": "'abc'", "k": "1", "n": "-"}]

    def test_excluded_component_gets_noops(self, make_provider):
        """integrations.all_components=false limits telemetry to integrations.components."""
        provider = make_provider({"integrations": {"all_components": False, "components": ["kept"]}})
        assert isinstance(provider.get_tracer("other"), NoOpTracer)
        assert not isinstance(provider.get_tracer("kept"), NoOpTracer)


class CustomObservabilityIntegration:
    """The guide's integration class, unchanged except for a shorter monitor/middleware section."""

    def __init__(self, observability_provider: ObservabilityProvider):
        self.observability = observability_provider
        self.logger = observability_provider.get_logger("custom_integration")
        self.tracer = observability_provider.get_tracer("custom_integration")
        self.metrics = observability_provider.get_metrics("custom_integration")
        self.setup_custom_metrics()

    def setup_custom_metrics(self):
        self.request_counter = self.metrics.create_counter(
            "custom_requests_total", description="Total custom requests processed"
        )
        self.processing_time_histogram = self.metrics.create_histogram(
            "custom_processing_duration_seconds",
            description="Custom processing duration",
            buckets=[0.001, 0.01, 0.1, 1.0, 5.0, 10.0],
        )
        self.active_connections_gauge = self.metrics.create_gauge(
            "custom_active_connections", description="Number of active connections"
        )

    async def trace_custom_operation(self, operation_name: str, operation_func, *args, **kwargs):
        with self.tracer.start_span(f"custom_{operation_name}") as span:
            correlation_id = kwargs.get("correlation_id", f"custom_{int(time.time())}")
            span.set_attributes(
                {
                    "operation": operation_name,
                    "correlation_id": correlation_id,
                    "args_count": len(args),
                    "kwargs_keys": list(kwargs.keys()),
                }
            )
            self.logger.info(
                f"Starting custom operation: {operation_name}",
                correlation_id=correlation_id,
                operation=operation_name,
            )
            start_time = time.time()
            try:
                with self.processing_time_histogram.timer(labels={"operation": operation_name}):
                    result = await operation_func(*args, **kwargs)
                operation_time = time.time() - start_time
                self.request_counter.increment(labels={"operation": operation_name, "status": "success"})
                span.set_attributes(
                    {"operation_time": operation_time, "result_type": type(result).__name__, "success": True}
                )
                span.set_status("OK", f"Operation {operation_name} completed")
                self.logger.info(
                    f"Custom operation completed: {operation_name}",
                    correlation_id=correlation_id,
                    operation=operation_name,
                    duration=operation_time,
                    success=True,
                )
                return result
            except Exception as e:
                operation_time = time.time() - start_time
                self.request_counter.increment(labels={"operation": operation_name, "status": "error"})
                span.record_exception(e)
                span.set_status("ERROR", str(e))
                span.set_attributes(
                    {"operation_time": operation_time, "error_type": type(e).__name__, "success": False}
                )
                self.logger.error(
                    f"Custom operation failed: {operation_name}",
                    correlation_id=correlation_id,
                    operation=operation_name,
                    duration=operation_time,
                    error_type=type(e).__name__,
                    error_message=str(e),
                )
                raise

    def monitor_resource_usage(self):
        import psutil

        cpu_percent = psutil.cpu_percent()
        memory_percent = psutil.virtual_memory().percent
        self.metrics.set_gauge("system_cpu_percent", cpu_percent)
        self.metrics.set_gauge("system_memory_percent", memory_percent)

    def create_custom_middleware(self):
        def observability_middleware(request, response, next_handler):
            correlation_id = request.headers.get("x-correlation-id", f"req_{int(time.time())}")
            with self.tracer.start_span("custom_request") as span:
                span.set_attributes(
                    {
                        "http_method": request.method,
                        "http_path": request.path,
                        "correlation_id": correlation_id,
                        "user_agent": request.headers.get("user-agent", "unknown"),
                    }
                )
                start_time = time.time()
                result = next_handler(request, response)
                request_time = time.time() - start_time
                self.metrics.increment_counter(
                    "http_requests_total",
                    labels={"method": request.method, "status": str(response.status_code)},
                )
                self.metrics.record_histogram(
                    "http_request_duration_seconds",
                    request_time,
                    labels={"method": request.method, "path": request.path},
                )
                span.set_attributes({"http_status_code": response.status_code, "request_time": request_time})
                return result

        return observability_middleware


class TestCustomIntegration:
    def test_guide_integration(self, make_provider):
        """Operations, custom buckets, gauges and the framework-agnostic middleware reach the store."""
        provider = make_provider(service_name="integration")
        integration = CustomObservabilityIntegration(provider)

        async def ok(x, correlation_id=None):
            return {"x": x}

        async def boom(correlation_id=None):
            raise RuntimeError("backend down")

        async def main() -> None:
            assert await integration.trace_custom_operation("fetch", ok, 1, correlation_id="c-1") == {"x": 1}
            with pytest.raises(RuntimeError):
                await integration.trace_custom_operation("explode", boom, correlation_id="c-2")

        asyncio.run(main())
        integration.monitor_resource_usage()
        middleware = integration.create_custom_middleware()
        request = SimpleNamespace(
            method="GET", path="/items", headers={"x-correlation-id": "c-3", "user-agent": "t"}
        )
        response = SimpleNamespace(status_code=200)
        assert middleware(request, response, lambda req, resp: "body") == "body"
        provider.shutdown()

        store = open_store(provider.store_writer.root)
        spans = store.sql(
            "SELECT name, status_code, attributes['correlation_id'] AS cid, coalesce(attributes['kwargs_keys'], '-') AS keys "
            "FROM spans ORDER BY start_time"
        )
        assert spans.to_dict("records") == [
            {"name": "custom_fetch", "status_code": "OK", "cid": "c-1", "keys": '["correlation_id"]'},
            {"name": "custom_explode", "status_code": "ERROR", "cid": "c-2", "keys": '["correlation_id"]'},
            {"name": "custom_request", "status_code": "UNSET", "cid": "c-3", "keys": "-"},
        ]
        hist = store.sql(
            "SELECT explicit_bounds, count FROM metrics WHERE name = 'custom_processing_duration_seconds' "
            "AND attributes['operation'] = 'fetch' ORDER BY timestamp DESC LIMIT 1"
        )
        assert list(hist["explicit_bounds"][0]) == [0.001, 0.01, 0.1, 1.0, 5.0, 10.0]
        assert hist["count"][0] == 1
        counter = store.sql(
            "SELECT attributes['status'] AS status, max(value) AS v FROM metrics "
            "WHERE name = 'custom_requests_total' GROUP BY 1 ORDER BY 1"
        )
        assert counter.to_dict("records") == [{"status": "error", "v": 1.0}, {"status": "success", "v": 1.0}]
        gauges = store.sql("SELECT DISTINCT name FROM metrics WHERE name LIKE 'system_%' ORDER BY 1")
        assert list(gauges["name"]) == ["system_cpu_percent", "system_memory_percent"]
        logs = store.sql("SELECT body, attributes['correlation_id'] AS cid FROM logs ORDER BY timestamp")
        assert ("Custom operation failed: explode", "c-2") in list(zip(logs["body"], logs["cid"]))


async def database_health_check():
    await asyncio.sleep(0.01)
    return {
        "healthy": True,
        "message": "Database connection successful",
        "details": {"connection_pool_size": 10},
    }


async def external_service_health_check():
    await asyncio.sleep(0.01)
    return {"healthy": True, "message": "External service accessible", "details": {"response_time_ms": 50}}


class TestHealthChecks:
    def test_health_check_manager(self, make_provider):
        """Sync, async, unhealthy and raising checks: results, spans, status gauge and durations."""
        provider = make_provider(service_name="health")
        manager = HealthCheckManager(provider)
        manager.register_health_check("database", database_health_check)
        manager.register_health_check("external", external_service_health_check)
        manager.register_health_check("disk", lambda: {"healthy": False, "message": "disk 97% full"})
        manager.register_health_check("cache", lambda: 1 / 0)
        result = asyncio.run(manager.run_health_checks())
        assert result["healthy"] is False
        assert result["checks"]["database"]["healthy"] is True
        assert result["checks"]["database"]["details"] == {"connection_pool_size": 10}
        assert result["checks"]["disk"] == {
            "healthy": False,
            "duration": result["checks"]["disk"]["duration"],
            "details": {},
            "message": "disk 97% full",
        }
        assert result["checks"]["cache"]["error_type"] == "ZeroDivisionError"
        provider.shutdown()

        store = open_store(provider.store_writer.root)
        spans = store.sql(
            "SELECT name, span_id, parent_span_id, status_code, attributes['healthy'] AS h FROM spans"
        )
        root = spans[spans["name"] == "health_checks"].iloc[0]
        children = spans[spans["parent_span_id"] == root["span_id"]]
        assert sorted(children["name"]) == [
            "health_check_cache",
            "health_check_database",
            "health_check_disk",
            "health_check_external",
        ]
        status = dict(zip(children["name"], children["status_code"]))
        assert status["health_check_database"] == "OK" and status["health_check_cache"] == "ERROR"
        gauge = store.sql(
            "SELECT attributes['check'] AS c, value FROM metrics WHERE name = 'health_check_status' ORDER BY 1"
        )
        assert dict(zip(gauge["c"], gauge["value"])) == {
            "cache": 0.0,
            "database": 1.0,
            "disk": 0.0,
            "external": 1.0,
            "overall": 0.0,
        }
        durations = store.sql(
            "SELECT count(*) AS n FROM metrics WHERE name = 'health_check_duration_seconds' AND count = 1"
        )
        assert durations["n"][0] == 4

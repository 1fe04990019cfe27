"""Two real processes over HTTP on 127.0.0.1 form one trace (W3C traceparent + baggage); the plain OTel
API and the requests instrumentation land in the same traces and store."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from explorer import open_store
from ingest import DistributedObservability
from ingest.sdk.correlation import correlation_scope
from ingest.sdk.distributed import extract_headers, inject_headers

REPO = Path(__file__).resolve().parents[1]

SERVER = textwrap.dedent(
    """
    import json, signal, sys
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from ingest import ObservabilityProvider
    from ingest.sdk.middleware import ObservabilityWSGIMiddleware

    provider = ObservabilityProvider.create(
        {"store": {"path": sys.argv[1], "durable": False}, "logging": {"output": "none"}}, "inventory"
    )
    tracer = provider.get_tracer("inventory")
    logger = provider.get_logger("inventory")

    def app(environ, start_response):
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(size) or b"{}")
        with tracer.start_span("reserve_stock") as span:
            span.set_attribute("sku", str(body.get("sku")))
            logger.info("stock reserved", sku=str(body.get("sku")))
        out = json.dumps({"reserved": True, "sku": body.get("sku")}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))])
        return [out]

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = make_server("127.0.0.1", 0, ObservabilityWSGIMiddleware(app, provider), handler_class=Quiet)
    # SIGTERM -> SystemExit -> interpreter exit -> the provider's atexit shutdown flushes the store.
    signal.signal(signal.SIGTERM, lambda *args: sys.exit(0))
    print(server.server_port, flush=True)
    server.serve_forever()
    """
)


@pytest.fixture
def inventory_service(tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen]]:
    """The inventory service in its own process, writing the same store; stopped with SIGTERM."""
    store = tmp_path / "store"
    script = tmp_path / "inventory_service.py"
    script.write_text(SERVER)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(store)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        if not line.strip():
            raise RuntimeError(f"inventory service did not start: {proc.stderr.read()}")
        yield f"http://127.0.0.1:{int(line)}", store, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, proc.stderr.read()


class TestAcrossProcesses:
    def test_cross_service_call_forms_one_trace(self, inventory_service, make_provider):
        """gateway → HTTP → inventory: one trace, correct parents, correlation id on both sides."""
        url, store_dir, proc = inventory_service
        provider = make_provider({"store": {"path": str(store_dir)}}, service_name="gateway")
        dist = DistributedObservability(provider, {"inventory": url})

        async def call() -> dict:
            return await dist.cross_service_call("inventory", "reserve", {"sku": "A1"})

        with correlation_scope("order-77"):
            result = asyncio.run(dist.propagate_context(call))
        assert result == {"reserved": True, "sku": "A1"}
        provider.shutdown()
        _stop(proc)

        store = open_store(store_dir)
        spans = store.sql(
            "SELECT service_name, name, kind, trace_id, span_id, parent_span_id, "
            "attributes['correlation_id'] AS cid, attributes['http.response.status_code'] AS status "
            "FROM spans ORDER BY start_time"
        )
        rows = {r["name"]: r for r in spans.to_dict("records")}
        assert set(rows) == {
            "distributed_operation",
            "cross_service_inventory_reserve",
            "POST /reserve",
            "reserve_stock",
        }
        assert spans["trace_id"].nunique() == 1
        root, client = rows["distributed_operation"], rows["cross_service_inventory_reserve"]
        server, work = rows["POST /reserve"], rows["reserve_stock"]
        assert client["parent_span_id"] == root["span_id"] and client["kind"] == "CLIENT"
        assert server["parent_span_id"] == client["span_id"] and server["kind"] == "SERVER"
        assert work["parent_span_id"] == server["span_id"]
        assert (server["service_name"], work["service_name"], root["service_name"]) == (
            "inventory",
            "inventory",
            "gateway",
        )
        assert server["status"] == "200"
        assert set(spans["cid"]) == {"order-77"}
        logs = store.sql("SELECT service_name, body, trace_id, attributes['correlation_id'] AS cid FROM logs")
        remote = logs[logs["body"] == "stock reserved"].iloc[0]
        assert remote["service_name"] == "inventory" and remote["cid"] == "order-77"
        assert remote["trace_id"] == root["trace_id"]
        assert set(logs["cid"]) == {"order-77"}

    def test_plain_api_and_requests_instrumentation_join_the_trace(self, inventory_service, make_provider):
        """Spans of the plain OTel API and of RequestsInstrumentor share the V2Tracer trace and store."""
        import requests
        from opentelemetry import trace
        from opentelemetry.instrumentation.requests import RequestsInstrumentor

        url, store_dir, proc = inventory_service
        provider = make_provider({"store": {"path": str(store_dir)}}, service_name="gateway")
        tracer = provider.get_tracer("gateway")
        RequestsInstrumentor().instrument()
        try:
            with correlation_scope("req-9"), tracer.start_span("checkout") as root:
                with trace.get_tracer("plain.library").start_as_current_span("plain-op"):
                    response = requests.post(f"{url}/reserve", json={"sku": "B2"}, timeout=30)
        finally:
            RequestsInstrumentor().uninstrument()
        assert response.json()["sku"] == "B2"
        assert response.headers["x-correlation-id"] == "req-9"
        provider.shutdown()
        _stop(proc)

        spans = open_store(store_dir).sql(
            "SELECT service_name, name, scope_name, span_id, parent_span_id, trace_id, "
            "attributes['correlation_id'] AS cid FROM spans ORDER BY start_time"
        )
        rows = {r["name"]: r for r in spans.to_dict("records")}
        assert set(spans["trace_id"]) == {root.trace_id}
        plain = rows["plain-op"]
        assert plain["parent_span_id"] == root.span_id and plain["scope_name"] == "plain.library"
        client = rows["POST"]
        assert client["scope_name"] == "opentelemetry.instrumentation.requests"
        assert client["parent_span_id"] == plain["span_id"]
        assert rows["POST /reserve"]["parent_span_id"] == client["span_id"]
        assert set(spans["cid"]) == {"req-9"}


class TestHeaders:
    def test_inject_extract_round_trip(self, make_provider):
        """traceparent, baggage and x-correlation-id round-trip; flags keep the sampled bit."""
        provider = make_provider()
        with correlation_scope("abc"), provider.get_tracer("t").start_span("op") as span:
            headers = inject_headers()
        assert headers["traceparent"].startswith(f"00-{span.trace_id}-{span.span_id}-")
        assert int(headers["traceparent"][-2:], 16) & 1 == 1
        assert "correlation_id=abc" in headers["baggage"]
        assert headers["x-correlation-id"] == "abc"
        ctx, cid = extract_headers({k.upper(): v for k, v in headers.items()})
        from opentelemetry import trace

        assert cid == "abc"
        assert format(trace.get_current_span(ctx).get_span_context().trace_id, "032x") == span.trace_id

    def test_unknown_service_is_a_clear_error(self, make_provider):
        """Calling a service with no endpoint names it and how to configure it."""
        from ingest import ConfigurationError

        dist = DistributedObservability(make_provider())
        with pytest.raises(ConfigurationError, match=r"no endpoint for service 'billing'.*service_endpoints"):
            asyncio.run(dist.cross_service_call("billing", "charge", {}))

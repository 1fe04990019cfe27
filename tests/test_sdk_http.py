"""HTTP surfaces over real sockets on 127.0.0.1: the Prometheus endpoint, ASGI and WSGI middleware."""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from prometheus_client.parser import text_string_to_metric_families

from explorer import open_store
from ingest.sdk.distributed import inject_headers
from ingest.sdk.middleware import ObservabilityASGIMiddleware, ObservabilityWSGIMiddleware


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def _families(text: str) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(text)}


class TestPrometheusEndpoint:
    def test_scrape_and_parse(self, make_provider):
        """The endpoint serves the text format prometheus_client parses; exclude_labels and buckets apply."""
        provider = make_provider(
            {
                "metrics": {
                    "prometheus_endpoint": "/metrics",
                    "prometheus_port": 0,
                    "exclude_labels": ["user_id"],
                    "custom_buckets": {"request_duration": [0.1, 0.5, 2.0]},
                }
            },
            service_name="scraped",
        )
        metrics = provider.get_metrics("api")
        metrics.increment_counter("api_calls_total", 3, labels={"route": "/chat", "user_id": "u-1"})
        metrics.record_histogram("http_request_duration_seconds", 0.3, labels={"route": "/chat"})
        metrics.set_gauge("queue_depth", 4)
        status, headers, body = _get(provider.prometheus_url)
        assert status == 200 and headers["Content-Type"].startswith("text/plain")
        families = _families(body.decode())
        calls = families["api_calls"]
        sample = next(s for s in calls.samples if s.name == "api_calls_total")
        assert sample.value == 3.0 and sample.labels == {"route": "/chat"}
        hist = families["http_request_duration_seconds"]
        bounds = sorted(float(s.labels["le"]) for s in hist.samples if s.name.endswith("_bucket"))
        assert bounds == [0.1, 0.5, 2.0, float("inf")]
        count = next(s for s in hist.samples if s.name.endswith("_count"))
        assert count.value == 1.0
        assert next(iter(families["queue_depth"].samples)).value == 4.0
        assert _get(provider.prometheus_url.replace("/metrics", "/other"))[0] == 404

    def test_two_providers_serve_their_own_metrics(self, make_provider):
        """Each provider has its own registry: no metric appears on the other's endpoint."""
        a = make_provider({"metrics": {"prometheus_endpoint": "/metrics", "prometheus_port": 0}}, "a")
        b = make_provider({"metrics": {"prometheus_endpoint": "/metrics", "prometheus_port": 0}}, "b")
        a.get_metrics().increment_counter("only_in_a_total")
        b.get_metrics().increment_counter("only_in_b_total")
        text_a = _get(a.prometheus_url)[2].decode()
        text_b = _get(b.prometheus_url)[2].decode()
        assert "only_in_a_total" in text_a and "only_in_b_total" not in text_a
        assert "only_in_b_total" in text_b and "only_in_a_total" not in text_b


class _Uvicorn:
    """An ASGI app served by uvicorn in a thread on a free port."""

    def __init__(self, app: object) -> None:
        import uvicorn

        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
            if not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


async def _asgi_app(scope, receive, send):
    if scope["path"] == "/fail":
        raise RuntimeError("handler crashed")
    await asyncio.sleep(0)
    body = b'{"ok": true}'
    await send(
        {"type": "http.response.start", "status": 201, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


class TestASGIMiddleware:
    def test_server_span_metrics_and_correlation(self, make_provider):
        """Contrib server spans continue the caller's trace; metrics and x-correlation-id are recorded."""
        provider = make_provider(service_name="asgi-api")
        app = ObservabilityASGIMiddleware(_asgi_app, provider)
        caller = provider.get_tracer("caller")
        with _Uvicorn(app) as base:
            with caller.start_span("client-call") as client:
                headers = dict(inject_headers(correlation_id="corr-asgi"))
                status, response_headers, _ = _get(f"{base}/items", headers)
            assert status == 201 and response_headers["x-correlation-id"] == "corr-asgi"
            assert _get(f"{base}/fail")[0] == 500  # uvicorn answers for an app that raised
        provider.shutdown()

        store = open_store(provider.store_writer.root)
        spans = store.sql(
            "SELECT name, kind, trace_id, parent_span_id, status_code, attributes['correlation_id'] AS cid "
            "FROM spans WHERE kind = 'SERVER'"
        )
        ok = spans[spans["cid"] == "corr-asgi"].iloc[0]
        assert ok["trace_id"] == client.trace_id and ok["parent_span_id"] == client.span_id
        failed = spans[spans["cid"] != "corr-asgi"].iloc[0]
        assert failed["status_code"] == "ERROR"
        counts = store.sql(
            "SELECT attributes['path'] AS path, attributes['status'] AS status, max(value) AS n FROM metrics "
            "WHERE name = 'http_requests_total' GROUP BY ALL ORDER BY path"
        )
        assert counts.to_dict("records") == [
            {"path": "/fail", "status": "500", "n": 1.0},
            {"path": "/items", "status": "201", "n": 1.0},
        ]
        durations = store.sql(
            "SELECT attributes['path'] AS path, max(count) AS n FROM metrics "
            "WHERE name = 'http_request_duration_seconds' GROUP BY ALL ORDER BY path"
        )
        assert list(durations["n"]) == [1, 1]
        logs = store.sql(
            "SELECT body, severity_text, attributes['correlation_id'] AS cid FROM logs ORDER BY timestamp"
        )
        assert ("Request failed", "ERROR") in list(zip(logs["body"], logs["severity_text"]))
        assert "corr-asgi" in set(logs["cid"])


@pytest.fixture
def wsgi_server(make_provider) -> Iterator[tuple[str, object]]:
    provider = make_provider(service_name="wsgi-api")

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/boom":
            raise ValueError("bad thing")

        def body() -> Iterator[bytes]:
            yield b"part1,"
            yield b"part2"

        start_response("200 OK", [("Content-Type", "text/plain")])
        return body()

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def log_exception(self, *args: object) -> None:  # wsgiref prints the traceback otherwise
            pass

    server = make_server("127.0.0.1", 0, ObservabilityWSGIMiddleware(app, provider), handler_class=Quiet)
    server.handle_error = lambda *args: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class TestWSGIMiddleware:
    def test_streaming_body_and_error(self, wsgi_server):
        """A streamed response ends its span on close; an exception gives a 500 and an ERROR span."""
        base, provider = wsgi_server
        status, headers, body = _get(f"{base}/stream?x=1", {"x-correlation-id": "wsgi-1"})
        assert (status, body, headers["x-correlation-id"]) == (200, b"part1,part2", "wsgi-1")
        assert _get(f"{base}/boom")[0] == 500
        provider.shutdown()
        store = open_store(provider.store_writer.root)
        spans = store.sql(
            "SELECT name, status_code, coalesce(attributes['url.query'], '') AS q, attributes['correlation_id'] AS cid, "
            "len(events) AS events FROM spans ORDER BY start_time"
        )
        assert spans.to_dict("records") == [
            {"name": "GET /stream", "status_code": "UNSET", "q": "x=1", "cid": "wsgi-1", "events": 0},
            {"name": "GET /boom", "status_code": "ERROR", "q": "", "cid": spans["cid"][1], "events": 1},
        ]
        counts = store.sql(
            "SELECT attributes['status'] AS status, max(value) AS n FROM metrics "
            "WHERE name = 'http_requests_total' GROUP BY ALL ORDER BY status"
        )
        assert counts.to_dict("records") == [{"status": "200", "n": 1.0}, {"status": "500", "n": 1.0}]


def test_port_in_use_is_a_configuration_error(make_provider):
    """A Prometheus port already taken names the setting to change."""
    from ingest import ConfigurationError

    first = make_provider({"metrics": {"prometheus_endpoint": "/metrics", "prometheus_port": 0}})
    with pytest.raises(ConfigurationError, match=r"change 'metrics\.prometheus_port'"):
        make_provider(
            {"metrics": {"prometheus_endpoint": "/metrics", "prometheus_port": first.prometheus_server.port}}
        )

"""HTTP integration: the Prometheus scrape endpoint and ASGI/WSGI request middleware.

- :func:`start_prometheus_server` serves a provider's metrics in the Prometheus text format at
  ``metrics.prometheus_endpoint`` (prometheus_client's exposition over a per-provider registry).
- :class:`ObservabilityASGIMiddleware` wraps an ASGI app with the OTel contrib
  ``OpenTelemetryMiddleware`` (server spans, W3C context extraction) and adds the guide's
  ``http_requests_total`` / ``http_request_duration_seconds`` and ``x-correlation-id`` handling.
- :class:`ObservabilityWSGIMiddleware` does the same for WSGI apps, hand-written on V2Tracer
  because ``opentelemetry-instrumentation-wsgi`` has no release compatible with the pinned SDK.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import make_server

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler

from ingest.sdk.correlation import (
    correlation_scope,
    new_correlation_id,
    reset_correlation_id,
    set_correlation_id,
)
from ingest.sdk.distributed import extract_headers

if TYPE_CHECKING:
    from ingest.sdk.provider import ObservabilityProvider


class PrometheusServer:
    """A running scrape endpoint: ``url``, ``port`` and ``stop()``."""

    def __init__(self, server: Any, thread: threading.Thread, host: str, path: str) -> None:
        self._server = server
        self._thread = thread
        self.host = host
        self.port: int = server.server_port
        self.path = path

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}{self.path}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _ScrapeHandler(_SilentHandler):
    """prometheus_client's quiet handler with Nagle off: wsgiref writes headers and body separately, and
    with Nagle plus delayed ACKs each scrape waited ~40-200 ms for nothing."""

    disable_nagle_algorithm = True


def start_prometheus_server(registry: CollectorRegistry, path: str, host: str, port: int) -> PrometheusServer:
    """Serve ``registry`` at ``http://host:port{path}`` in a daemon thread (port 0 picks a free port)."""
    metrics_app = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "/") != path:
            body = f"not found; metrics are served at {path}\n".encode()
            start_response(
                "404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
            )
            return [body]
        return metrics_app(environ, start_response)

    server = make_server(host, port, app, ThreadingWSGIServer, handler_class=_ScrapeHandler)
    thread = threading.Thread(
        target=server.serve_forever, name=f"langswarm-prometheus-{server.server_port}", daemon=True
    )
    thread.start()
    return PrometheusServer(server, thread, host, path)


def _request_metrics(provider: ObservabilityProvider, component: str) -> tuple[Any, Any, Any]:
    metrics = provider.get_metrics(component)
    total = metrics.create_counter(
        "http_requests_total", description="HTTP requests served, by method, path, status"
    )
    duration = metrics.create_histogram(
        "http_request_duration_seconds",
        description="HTTP request duration in seconds, by method and path",
        unit="s",
    )
    return total, duration, provider.get_logger(component)


class ObservabilityASGIMiddleware:
    """ASGI middleware: OTel contrib server spans + request metrics + ``x-correlation-id``.

    The correlation id comes from the ``x-correlation-id`` header or W3C baggage (a new one
    otherwise), is current while the app runs (so the server span and every log carry it) and is
    echoed in the response header.
    """

    def __init__(
        self,
        app: Any,
        provider: ObservabilityProvider,
        *,
        component: str = "http",
        excluded_urls: str | None = None,
    ) -> None:
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        self.app = app
        self.provider = provider
        self.requests_total, self.duration, self.logger = _request_metrics(provider, component)
        self.otel = OpenTelemetryMiddleware(
            app,
            excluded_urls=excluded_urls,
            tracer_provider=provider.tracer_provider,
            meter_provider=provider.meter_provider,
        )

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope.get("type") != "http":
            await self.otel(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        _, cid = extract_headers(headers)
        cid = cid or new_correlation_id("req_")
        method = scope.get("method", "GET")
        path = scope.get("path", "/")
        status = {"code": 500}

        async def send_wrapper(message: MutableMapping[str, Any]) -> None:
            if message.get("type") == "http.response.start":
                status["code"] = int(message.get("status", 500))
                message = {
                    **message,
                    "headers": [*message.get("headers", ()), (b"x-correlation-id", cid.encode())],
                }
            await send(message)

        start = time.perf_counter()
        with correlation_scope(cid):
            try:
                await self.otel(scope, receive, send_wrapper)
            except Exception as e:
                status["code"] = 500
                self.logger.error(
                    "Request failed",
                    method=method,
                    path=path,
                    error_type=type(e).__name__,
                    error_message=str(e),
                )
                raise
            finally:
                _record(self, method, path, status["code"], time.perf_counter() - start)


def _record(mw: Any, method: str, path: str, status: int, elapsed: float) -> None:
    mw.requests_total.increment(labels={"method": method, "path": path, "status": str(status)})
    mw.duration.observe(elapsed, labels={"method": method, "path": path})
    mw.logger.info("Request completed", method=method, path=path, status_code=status, duration=elapsed)


class ObservabilityWSGIMiddleware:
    """WSGI middleware: SERVER spans continuing W3C context, request metrics, ``x-correlation-id``.

    Hand-written on the provider's OTel tracer because ``opentelemetry-instrumentation-wsgi`` has
    no release compatible with the pinned SDK (BRIEF); span name and attributes follow the HTTP
    semantic conventions (``http.request.method``, ``url.path``, ``http.response.status_code``).
    The span ends when the server closes the response iterable, so streaming bodies are timed.
    """

    def __init__(
        self, app: Callable[..., Any], provider: ObservabilityProvider, *, component: str = "http"
    ) -> None:
        self.app = app
        self.provider = provider
        self.tracer = provider.tracer_provider.get_tracer("ingest.sdk.middleware.wsgi")
        self.requests_total, self.duration, self.logger = _request_metrics(provider, component)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        parent, cid = extract_headers(headers)
        cid = cid or new_correlation_id("req_")
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/") or "/"
        attributes = {
            "http.request.method": method,
            "url.path": path,
            "url.scheme": environ.get("wsgi.url_scheme", "http"),
            "server.address": environ.get("SERVER_NAME", ""),
            "user_agent.original": environ.get("HTTP_USER_AGENT", ""),
        }
        if environ.get("QUERY_STRING"):
            attributes["url.query"] = environ["QUERY_STRING"]
        cid_token = set_correlation_id(cid)
        span = self.tracer.start_span(
            f"{method} {path}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        )
        token = context_api.attach(trace_api.set_span_in_context(span, parent))
        start = time.perf_counter()
        state = {"status": 500}

        def start_response_wrapper(
            status: str, response_headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            code = int(status.split(" ", 1)[0])
            state["status"] = code
            span.set_attribute("http.response.status_code", code)
            if code >= 500:
                span.set_status(Status(StatusCode.ERROR, status))
            return start_response(status, [*response_headers, ("x-correlation-id", cid)], exc_info)

        def finish(error: BaseException | None = None) -> None:
            # Runs when the server closes the response, after __call__ returned: restore the request's
            # span and correlation id so the completion log carries them.
            with correlation_scope(cid), trace_api.use_span(span, end_on_exit=False):
                _finish(error)

        def _finish(error: BaseException | None) -> None:
            elapsed = time.perf_counter() - start
            if error is not None:
                span.record_exception(error, escaped=True)
                span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
                state["status"] = 500
                self.logger.error(
                    "Request failed",
                    method=method,
                    path=path,
                    error_type=type(error).__name__,
                    error_message=str(error),
                )
            _record(self, method, path, state["status"], elapsed)
            span.end()

        try:
            try:
                result = self.app(environ, start_response_wrapper)
            except Exception as e:
                finish(e)
                raise
            return _ClosingIterable(result, finish)
        finally:
            context_api.detach(token)
            reset_correlation_id(cid_token)


class _ClosingIterable:
    """Passes the app's response through and calls ``finish`` once when the server closes it."""

    def __init__(self, result: Iterable[bytes], finish: Callable[[BaseException | None], None]) -> None:
        self._result = result
        self._finish = finish
        self._done = False

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._result
        except Exception as e:
            self._close(e)
            raise

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            self._close(None)

    def _close(self, error: BaseException | None) -> None:
        if not self._done:
            self._done = True
            self._finish(error)

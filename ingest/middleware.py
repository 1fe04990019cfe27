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
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler


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


def start_prometheus_server(registry: CollectorRegistry, path: str, host: str, port: int) -> PrometheusServer:
    """Serve ``registry`` at ``http://host:port{path}`` in a daemon thread (port 0 picks a free port)."""
    metrics_app = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "/") != path:
            body = f"not found; metrics are served at {path}\n".encode()
            start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
            return [body]
        return metrics_app(environ, start_response)

    server = make_server(host, port, app, ThreadingWSGIServer, handler_class=_SilentHandler)
    thread = threading.Thread(target=server.serve_forever, name=f"langswarm-prometheus-{server.server_port}", daemon=True)
    thread.start()
    return PrometheusServer(server, thread, host, path)


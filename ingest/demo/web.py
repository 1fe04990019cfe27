"""HTTP between the demo's services: stdlib WSGI servers on 127.0.0.1 and a traced JSON client.

Servers are ``wsgiref`` with one thread per request, each app wrapped in the SDK's
:class:`~ingest.sdk.middleware.ObservabilityWSGIMiddleware` (SERVER spans continuing the caller's W3C
context, ``http_requests_total``, correlation ids). The client opens a CLIENT span per attempt and
sends the context with :func:`~ingest.sdk.distributed.inject_headers` — exactly what an application using
this SDK does. A tiny JSON router is hand-written because the standard library has none and the demo
must not pull in a web framework.
"""

from __future__ import annotations

import io
import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from ingest.sdk.distributed import inject_headers
from ingest.sdk.middleware import ObservabilityWSGIMiddleware

if TYPE_CHECKING:
    from ingest.sdk.provider import ObservabilityProvider

#: Simulation-control header (like Envoy's ``x-envoy-fault-*``): tells a service which scenario entry
#: decides its behaviour for this call, so a run is reproducible whatever order threads run in.
FAULT_KEY_HEADER = "x-demo-fault-key"

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass
class Request:
    """One incoming request: method, path, lower-case headers and the decoded JSON body."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Response:
    """What a route returns: status and a JSON-serialisable body."""

    status: int
    body: Any = field(default_factory=dict)


Route = Callable[[Request], Response]


class JsonApp:
    """A WSGI app dispatching ``(method, path)`` to route functions; JSON in, JSON out."""

    def __init__(self, routes: Mapping[tuple[str, str], Route]) -> None:
        self.routes = dict(routes)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/") or "/"
        route = self.routes.get((method, path))
        if route is None:
            response = Response(404, {"error": f"no route {method} {path}"})
        else:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except json.JSONDecodeError as exc:
                response = Response(400, {"error": f"request body is not JSON: {exc}"})
            else:
                headers = {
                    k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")
                }
                response = route(Request(method, path, headers, body))
        data = json.dumps(response.body).encode()
        start_response(
            f"{response.status} {_REASONS.get(response.status, 'Status')}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
        )
        return [data]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up early (a timed-out call) is expected here; nothing to print."""


class _QuietHandler(WSGIRequestHandler):
    # wsgiref writes the status line, each header and the body in separate send() calls: with Nagle's
    # algorithm on, each waits for the client's delayed ACK (~40 ms on Linux) and a local call takes 250 ms.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def get_stderr(self) -> io.StringIO:
        return io.StringIO()


class Server:
    """A running service: ``url`` and ``stop()``."""

    def __init__(self, name: str, app: Callable[..., Any], provider: ObservabilityProvider) -> None:
        self.name = name
        wrapped = ObservabilityWSGIMiddleware(app, provider)
        self._server = _Server(("127.0.0.1", 0), _QuietHandler)
        self._server.set_app(wrapped)
        self.port: int = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"demo-{name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting requests and close the socket (requests in flight finish on their threads)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


class CallError(Exception):
    """A call to another service failed: ``status`` is the HTTP status, or None for a timeout/connection error."""

    def __init__(self, message: str, status: int | None, body: Any = None, *, timeout: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.timeout = timeout

    @property
    def retryable(self) -> bool:
        """Timeouts and 5xx/429 answers may succeed on another attempt; other 4xx answers will not."""
        return self.timeout or self.status is None or self.status >= 500 or self.status == 429


class HttpClient:
    """JSON over HTTP with a CLIENT span per call and the trace context + correlation id injected."""

    def __init__(self, provider: ObservabilityProvider, component: str = "http.client") -> None:
        self.tracer = provider.get_tracer(component)

    def call(
        self,
        method: str,
        base_url: str,
        path: str,
        payload: Any = None,
        *,
        timeout_s: float,
        headers: Mapping[str, str] | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send one request; returns the decoded JSON body or raises :class:`CallError`."""
        url = f"{base_url}{path}"
        host, _, port = base_url.split("//", 1)[1].partition(":")
        span_attributes = {
            "http.request.method": method,
            "url.full": url,
            "url.template": path,
            "server.address": host,
            "server.port": int(port or 80),
            **(attributes or {}),
        }
        with self.tracer.start_span(f"{method} {path}", span_attributes, kind="client") as span:
            out_headers = inject_headers({"content-type": "application/json", **(headers or {})})
            data = None if payload is None else json.dumps(payload).encode()
            request = urllib.request.Request(url, data=data, headers=dict(out_headers), method=method)
            try:
                with urllib.request.urlopen(request, timeout=timeout_s) as reply:
                    span.set_attribute("http.response.status_code", reply.status)
                    return json.loads(reply.read() or b"null")
            except urllib.error.HTTPError as exc:
                raw = exc.read()
                try:
                    body = json.loads(raw) if raw else None
                except json.JSONDecodeError:
                    body = raw.decode(errors="replace")
                span.set_attributes({"http.response.status_code": exc.code, "error.type": str(exc.code)})
                detail = body.get("error") if isinstance(body, dict) else body
                message = f"{method} {url} returned HTTP {exc.code}: {detail}"
                span.set_status("ERROR", message)
                raise CallError(message, exc.code, body) from None
            except TimeoutError as exc:
                message = f"{method} {url} timed out after {timeout_s:.3g}s"
                span.set_attribute("error.type", "timeout")
                span.set_status("ERROR", message)
                raise CallError(message, None, timeout=True) from exc
            except urllib.error.URLError as exc:
                timed_out = isinstance(exc.reason, (TimeoutError, socket.timeout))
                message = f"{method} {url} " + (
                    f"timed out after {timeout_s:.3g}s" if timed_out else f"failed: {exc.reason}"
                )
                span.set_attribute("error.type", "timeout" if timed_out else type(exc.reason).__name__)
                span.set_status("ERROR", message)
                raise CallError(message, None, timeout=timed_out) from exc

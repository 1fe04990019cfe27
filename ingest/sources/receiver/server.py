"""The receiver: an HTTP server capped in connections, with its batcher, byte budgets and counters."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict
from http.server import ThreadingHTTPServer
from typing import Any

from google.protobuf import json_format
from google.rpc import status_pb2

from ingest.sources.otlp import Decoded
from ingest.sources.receiver.batcher import Batcher
from ingest.sources.receiver.body import _PIECE
from ingest.sources.receiver.handler import OTLPHandler
from ingest.sources.receiver.limits import _MIB, ByteBudget, Limits
from ingest.store import objectstore
from ingest.store.rejects import RejectWriter
from ingest.store.writer import StoreWriter, resolve_store

_log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4318


class OTLPServer(ThreadingHTTPServer):
    """The HTTP server holding the receiver's state for its handlers; at most ``max_connections`` open."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], receiver: Receiver, sock: socket.socket | None = None
    ) -> None:
        self.receiver = receiver
        self._open = 0
        self._open_lock = threading.Lock()
        if sock is None:
            super().__init__(address, OTLPHandler)
        else:  # a listening socket shared by worker processes
            super().__init__(address, OTLPHandler, bind_and_activate=False)
            self.socket.close()
            # Non-blocking: every worker wakes for a new connection, one wins the accept, and the
            # others must not block in accept() (they could never be shut down).
            sock.setblocking(False)
            self.socket = sock
            self.server_address = sock.getsockname()

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = self.socket.accept()  # BlockingIOError when another worker won it
        connection.setblocking(True)
        return connection, address

    def process_request(self, request: Any, client_address: Any) -> None:
        """A thread per connection, up to ``max_connections``; past it a 503 written here, then close."""
        with self._open_lock:
            refuse = self._open >= self.receiver.limits.max_connections
            if not refuse:
                self._open += 1
        if refuse:
            self.receiver.refused_count(503)
            _refuse_connection(request, self.receiver.limits.max_connections)
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._open_lock:
                self._open -= 1

    @property
    def open_connections(self) -> int:
        return self._open


def _refuse_connection(sock: socket.socket, limit: int) -> None:
    """Answer a connection past the cap with 503 + Retry-After without reading it (no thread for it)."""
    status = status_pb2.Status(
        code=14, message=f"too many connections (--max-connections {limit}); retry later"
    )
    body = json_format.MessageToJson(status, indent=None).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
        f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    try:
        sock.settimeout(0.5)
        sock.sendall(head.encode() + body)
        sock.shutdown(socket.SHUT_WR)
        sock.setblocking(False)
        while sock.recv(_PIECE):  # what already arrived, so closing does not reset the connection
            pass
    except OSError:  # nothing more to read now (BlockingIOError), or the client left
        pass


class Receiver:
    """The OTLP/HTTP receiver: server, batcher and counters; :meth:`stop` flushes everything accepted."""

    def __init__(
        self,
        store: str | None = None,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        max_body: int | None = None,
        memory_mb: int | None = None,
        max_concurrent_decodes: int | None = None,
        max_connections: int | None = None,
        read_timeout: float | None = None,
        max_days_per_request: int | None = None,
        max_pending_mb: int | None = None,
        flush_rows: int = 65_536,
        flush_interval: float = 1.0,
        durable: bool = True,
        sock: socket.socket | None = None,
        name: str = "receiver",
        retention_days: float | None = None,
        required_headers: Mapping[str, str] | None = None,
    ) -> None:
        #: Headers every POST must carry with exactly these values (e.g. an API key), else 401.
        self.required_headers = dict(required_headers or {})
        self.limits = Limits.resolve(
            max_body=max_body,
            memory_mb=memory_mb,
            max_concurrent_decodes=max_concurrent_decodes,
            max_connections=max_connections,
            read_timeout=read_timeout,
            max_days_per_request=max_days_per_request,
            max_pending_mb=max_pending_mb,
        )
        self.root = resolve_store(store)
        self.max_body = self.limits.max_body
        self.body_budget = ByteBudget(self.limits.body_budget)
        self.decode_budget = ByteBudget(self.limits.decode_budget)
        self.writer = StoreWriter(self.root, durable=durable, retention_days=retention_days)
        self.batcher = Batcher(
            self.writer,
            flush_rows=flush_rows,
            flush_interval=flush_interval,
            max_pending_rows=4 * flush_rows,
            max_pending_bytes=self.limits.max_pending_mb * _MIB,
        )
        self.rejects = RejectWriter(objectstore.local_control(self.root), name)
        self.server = OTLPServer((host, port), self, sock)
        self.refused: dict[int, int] = {}
        self._last_log = -1.0
        self._unlogged = 0
        self._lock = threading.Lock()
        self._inflight = 0
        self._idle = threading.Condition(self._lock)
        self.requests: dict[str, int] = {}
        self.items: dict[str, int] = {}
        self.rejected_items: dict[str, int] = {}
        self.rejected_requests = 0
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        """Serve on a background thread."""
        self._thread = threading.Thread(target=self.server.serve_forever, name="otlp-http", daemon=True)
        self._thread.start()

    def enter(self) -> None:
        with self._lock:
            self._inflight += 1

    def leave(self) -> None:
        with self._lock:
            self._inflight -= 1
            if self._inflight == 0:
                self._idle.notify_all()

    def count(self, signal_name: str, decoded: Decoded) -> None:
        with self._lock:
            self.requests[signal_name] = self.requests.get(signal_name, 0) + 1
            self.items[signal_name] = self.items.get(signal_name, 0) + decoded.accepted
            if decoded.rejected:
                self.rejected_items[signal_name] = self.rejected_items.get(signal_name, 0) + decoded.rejected

    def refused_count(self, code: int) -> None:
        """Count a refusal by HTTP status (stats()["refused"])."""
        with self._lock:
            self.refused[code] = self.refused.get(code, 0) + 1

    def reject(
        self, signal_name: str | None, code: int, message: str, body: bytes | bytearray | None, client: str
    ) -> None:
        """Count a refused request and keep it (with the reason) under ``<store>/_rejected/``.

        The log gets at most one line a second (saying how many more were refused meanwhile), so a
        client sending bad requests in a loop cannot fill the disk through the log either.
        """
        now = time.monotonic()
        with self._lock:
            self.rejected_requests += 1
            quiet = now - self._last_log < 1.0
            if quiet:
                self._unlogged += 1
            else:
                self._last_log, unlogged, self._unlogged = now, self._unlogged, 0
        if not quiet:
            more = f" ({unlogged:,} more refused in the last second)" if unlogged else ""
            _log.warning(
                "rejected a %s request from %s: HTTP %d %s%s", signal_name or "?", client, code, message, more
            )
        self.rejects.reject(f"HTTP {code} from {client}: {message}", body, signal=signal_name)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": dict(self.requests),
                "accepted": dict(self.items),
                "rejected_items": dict(self.rejected_items),
                "rejected_requests": self.rejected_requests,
                "written": dict(self.batcher.written),
                "pending_rows": self.batcher.pending(),
                "write_failures": self.batcher.write_failures,
                "refused": {str(code): n for code, n in sorted(self.refused.items())},
                "open_connections": self.server.open_connections,
                "peak_body_bytes": self.body_budget.peak,
                "limits": {**asdict(self.limits), "memory_bound_mb": round(self.limits.bound_mb)},
            }

    def stop(self, timeout: float = 30.0) -> None:
        """Stop accepting connections, let requests in flight finish, write everything accepted."""
        self.server.shutdown()
        with self._lock:
            self._idle.wait_for(lambda: self._inflight == 0, timeout=timeout)
        self.batcher.close()
        self.server.server_close()
        self.rejects.close()

"""``python -m ingest serve``: an OTLP/HTTP receiver that any OTel SDK or Collector can export to.

``POST /v1/traces``, ``/v1/metrics``, ``/v1/logs`` with ``application/x-protobuf`` or
``application/json`` bodies, optionally ``Content-Encoding: gzip`` (or ``deflate``), as the OTLP
specification's HTTP transport describes. Responses follow it too: 200 with an
``Export*ServiceResponse`` (``partial_success`` counting rejected spans/points/records and why),
400 with a ``google.rpc.Status`` for a body that cannot be decoded, 413 past the body size limit,
415 for other content types, 503 while shutting down (the SDKs retry).

Accepted rows are gathered per table and written through the one :class:`~ingest.store.StoreWriter`
when a table holds ``flush_rows`` rows or its oldest row is ``flush_interval`` seconds old; memory is
bounded because a request that finds ``max_pending_rows`` waiting writes them itself before being
answered. SIGTERM/SIGINT stop accepting, finish the requests in flight, write everything accepted,
then exit. Why stdlib ``ThreadingHTTPServer``: decoding is the cost (the GIL serialises it in any
Python server), and it measured as fast as uvicorn here (docs/benchmarks.md, "Ingest").
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import zlib
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pyarrow as pa
from google.protobuf import json_format
from google.rpc import status_pb2

from ingest.errors import StoreError
from ingest.otlp import DECODERS, ITEM_NAME, SIGNALS, Decoded, InputError, parse_protobuf, request_from_json
from ingest.rejects import RejectWriter
from ingest import objectstore
from ingest.store import StoreWriter, resolve_store

_log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4318
DEFAULT_MAX_BODY = 20 << 20
PATHS = {"/v1/traces": "traces", "/v1/metrics": "metrics", "/v1/logs": "logs"}
_PROTOBUF = "application/x-protobuf"
_JSON = "application/json"
_REJECTED_FIELD = {"traces": "rejected_spans", "metrics": "rejected_data_points", "logs": "rejected_log_records"}


class Closed(Exception):
    """The receiver is shutting down and takes no more data."""


class Batcher:
    """Accepted rows per table, written in batches by size or age; thread-safe, memory-bounded."""

    def __init__(
        self,
        writer: StoreWriter,
        *,
        flush_rows: int = 65_536,
        flush_interval: float = 1.0,
        max_pending_rows: int = 262_144,
    ) -> None:
        self.writer = writer
        self.flush_rows = flush_rows
        self.flush_interval = flush_interval
        self.max_pending_rows = max_pending_rows
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._pending: dict[str, list[pa.Table]] = {}
        self._rows: dict[str, int] = {}
        self._since: dict[str, float] = {}
        self._closed = False
        self._wake = threading.Event()
        self.accepted: dict[str, int] = {}
        self.written: dict[str, int] = {}
        self.write_failures = 0
        self._thread = threading.Thread(target=self._run, name="otlp-flusher", daemon=True)
        self._thread.start()

    def add(self, table_name: str, table: pa.Table) -> None:
        """Take rows; raises :class:`Closed` once shutdown began (the caller answers 503)."""
        with self._lock:
            if self._closed:
                raise Closed
            self._pending.setdefault(table_name, []).append(table)
            self._rows[table_name] = self._rows.get(table_name, 0) + table.num_rows
            self._since.setdefault(table_name, time.monotonic())
            self.accepted[table_name] = self.accepted.get(table_name, 0) + table.num_rows
            rows = self._rows[table_name]
        if rows >= self.max_pending_rows:
            self.flush(table_name)  # back-pressure: this request waits for the write
        elif rows >= self.flush_rows:
            self._wake.set()

    def pending(self) -> int:
        with self._lock:
            return sum(self._rows.values())

    def flush(self, table_name: str | None = None) -> None:
        """Write what is pending (of one table or all); failed writes stay pending for the next try."""
        with self._write_lock:
            names = [table_name] if table_name else list(self._pending)
            for name in names:
                with self._lock:
                    parts = self._pending.pop(name, [])
                    self._rows.pop(name, None)
                    self._since.pop(name, None)
                if not parts:
                    continue
                table = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
                try:
                    self.writer.write(name, table)
                except StoreError:
                    self.write_failures += 1
                    _log.exception("cannot write %d %s rows; keeping them to retry", table.num_rows, name)
                    with self._lock:
                        self._pending.setdefault(name, []).insert(0, table)
                        self._rows[name] = self._rows.get(name, 0) + table.num_rows
                        self._since.setdefault(name, time.monotonic())
                    continue
                self.written[name] = self.written.get(name, 0) + table.num_rows

    def _due(self) -> list[str]:
        now = time.monotonic()
        with self._lock:
            return [
                name
                for name, rows in self._rows.items()
                if rows >= self.flush_rows or now - self._since.get(name, now) >= self.flush_interval
            ]

    def _run(self) -> None:
        while True:
            self._wake.wait(timeout=min(0.25, self.flush_interval))
            self._wake.clear()
            if self._closed:
                return
            for name in self._due():
                self.flush(name)

    def close(self) -> None:
        """Refuse new rows, then write everything accepted."""
        with self._lock:
            self._closed = True
        self._wake.set()
        self._thread.join()
        self.flush()
        if self.pending():  # a write failed: one last try after a pause
            time.sleep(1.0)
            self.flush()


class OTLPServer(ThreadingHTTPServer):
    """The HTTP server holding the receiver's state for its handlers."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], receiver: Receiver, sock: socket.socket | None = None) -> None:
        self.receiver = receiver
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


class OTLPHandler(BaseHTTPRequestHandler):
    """One OTLP/HTTP request: read, decompress, decode, hand to the batcher, answer."""

    protocol_version = "HTTP/1.1"
    server: OTLPServer
    server_version = "langswarm-otlp"
    #: Requests answered on one keep-alive connection before asking the client to reconnect, so the
    #: kernel spreads long-lived exporter connections over the worker processes again and again.
    max_requests_per_connection = 64
    _served = 0

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        _log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        if self.path in ("/", "/health", "/healthz"):
            self._reply(200, _JSON, json.dumps(self.server.receiver.stats()).encode())
        else:
            self._error(404, f"no such endpoint {self.path!r}; POST to /v1/traces, /v1/metrics or /v1/logs", _JSON)

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        receiver = self.server.receiver
        self._served += 1
        if self._served >= self.max_requests_per_connection:
            self.close_connection = True
        receiver.enter()
        try:
            self._post(receiver)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # a bug of ours: answer 500 (the client retries) and keep serving
            _log.exception("error handling %s", self.path)
            self.close_connection = True
            self._error(500, f"internal error: {type(exc).__name__}: {exc}", _PROTOBUF)
        finally:
            receiver.leave()

    def _post(self, receiver: Receiver) -> None:
        path = self.path.split("?", 1)[0]
        signal_name = PATHS.get(path)
        content_type = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        reply_type = _JSON if content_type == _JSON else _PROTOBUF
        if signal_name is None:
            self._drain_or_close()
            self._error(404, f"no such endpoint {path!r}; POST to /v1/traces, /v1/metrics or /v1/logs", reply_type)
            return
        if content_type not in (_PROTOBUF, _JSON):
            self._drain_or_close()
            self._error(
                415, f"Content-Type {content_type or '(none)'!r} is not supported; use {_PROTOBUF} or {_JSON}", reply_type
            )
            return
        body = self._read_body(receiver.max_body, reply_type)
        if body is None:
            return
        encoding = (self.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding in ("gzip", "deflate"):
            try:
                body = _decompress(body, encoding, receiver.max_body)
            except _TooLarge:
                self._reject(receiver, signal_name, 413, f"the {encoding} body inflates past the {receiver.max_body:,}-byte limit", None, reply_type)
                return
            except (zlib.error, EOFError) as exc:
                self._reject(receiver, signal_name, 400, f"the body is not valid {encoding} data ({exc})", body, reply_type)
                return
        elif encoding != "identity":
            self._error(415, f"Content-Encoding {encoding!r} is not supported; use gzip, deflate or none", reply_type)
            return
        try:
            decoded = self._decode(signal_name, body, content_type)
        except InputError as exc:
            self._reject(receiver, signal_name, 400, str(exc), body, reply_type)
            return
        if decoded.table is not None:
            try:
                receiver.batcher.add(SIGNALS[signal_name][0], decoded.table)
            except Closed:
                self._error(503, "the receiver is shutting down; retry against the next instance", reply_type, retry=True)
                return
        receiver.count(signal_name, decoded)
        self._reply(200, reply_type, _response(signal_name, decoded, reply_type))

    def _decode(self, signal_name: str, body: bytes, content_type: str) -> Decoded:
        if content_type == _PROTOBUF:
            request = parse_protobuf(signal_name, body)
        else:
            try:
                obj = json.loads(body)
            except (ValueError, UnicodeDecodeError) as exc:
                msg = f"the body is not valid JSON: {exc}"
                raise InputError(msg) from None
            _, request = request_from_json(obj, signal_name)
        return DECODERS[signal_name](request)

    def _read_body(self, limit: int, reply_type: str) -> bytes | None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked(limit, reply_type)
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            self.close_connection = True
            self._error(411, "Content-Length is required", reply_type)
            return None
        try:
            length = int(length_header)
        except ValueError:
            self.close_connection = True
            self._error(400, f"Content-Length {length_header!r} is not a number", reply_type)
            return None
        if length > limit:
            # Read and drop a moderately oversized body so the client gets the 413 instead of a reset.
            if length <= max(4 * limit, 64 << 20):
                remaining = length
                while remaining > 0:
                    chunk = self.rfile.read(min(remaining, 1 << 20))
                    if not chunk:
                        break
                    remaining -= len(chunk)
            self.close_connection = True
            self._reject(
                self.server.receiver, PATHS.get(self.path), 413,
                f"the body has {length:,} bytes, more than the {limit:,}-byte limit (--max-body-mb)", None, reply_type,
            )
            return None
        body = self.rfile.read(length)
        if len(body) != length:
            self.close_connection = True
            self._error(400, f"the body ended after {len(body)} of {length} bytes", reply_type)
            return None
        return body

    def _read_chunked(self, limit: int, reply_type: str) -> bytes | None:
        parts = []
        size = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                chunk = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                self._error(400, "malformed chunked body", reply_type)
                return None
            if chunk == 0:
                while self.rfile.readline(1024).strip():
                    pass
                return b"".join(parts)
            size += chunk
            if size > limit:
                self.close_connection = True
                self._error(413, f"the body is larger than the {limit:,}-byte limit (--max-body-mb)", reply_type)
                return None
            parts.append(self.rfile.read(chunk))
            self.rfile.readline(8)

    def _drain_or_close(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if 0 <= length <= (1 << 20):
            self.rfile.read(length)
        else:
            self.close_connection = True

    def _reject(
        self, receiver: Receiver, signal_name: str | None, code: int, message: str, body: bytes | None, reply_type: str
    ) -> None:
        receiver.reject(signal_name, code, message, body, self.client_address[0])
        self._error(code, message, reply_type)

    def _error(self, code: int, message: str, reply_type: str, *, retry: bool = False) -> None:
        status = status_pb2.Status(code=3 if code < 500 else 14, message=message)
        body = (
            json_format.MessageToJson(status, indent=None).encode()
            if reply_type == _JSON
            else status.SerializeToString()
        )
        self._reply(code, reply_type, body, retry=retry)

    def _reply(self, code: int, content_type: str, body: bytes, *, retry: bool = False) -> None:
        try:
            self.send_response(code, HTTPStatus(code).phrase)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if retry:
                self.send_header("Retry-After", "1")
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class _TooLarge(Exception):
    pass


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """Inflate with a ceiling, so a small compressed body cannot grow without bound."""
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    out = inflater.decompress(body, limit + 1)
    if len(out) > limit or inflater.unconsumed_tail:
        raise _TooLarge
    if not inflater.eof:
        msg = "the compressed body is truncated"
        raise EOFError(msg)
    return out


def _response(signal_name: str, decoded: Decoded, reply_type: str) -> bytes:
    response = SIGNALS[signal_name][3]()
    if decoded.rejected:
        partial = response.partial_success
        setattr(partial, _REJECTED_FIELD[signal_name], decoded.rejected)
        partial.error_message = (
            f"{decoded.rejected} {ITEM_NAME[signal_name]} rejected: " + "; ".join(decoded.errors)
        )[:4096]
    if reply_type == _JSON:
        return json_format.MessageToJson(response, indent=None).encode()
    return response.SerializeToString()


class Receiver:
    """The OTLP/HTTP receiver: server, batcher and counters; :meth:`stop` flushes everything accepted."""

    def __init__(
        self,
        store: str | None = None,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        max_body: int = DEFAULT_MAX_BODY,
        flush_rows: int = 65_536,
        flush_interval: float = 1.0,
        durable: bool = True,
        sock: socket.socket | None = None,
        name: str = "receiver",
        retention_days: float | None = None,
    ) -> None:
        self.root = resolve_store(store)
        self.max_body = max_body
        self.writer = StoreWriter(self.root, durable=durable, retention_days=retention_days)
        self.batcher = Batcher(
            self.writer, flush_rows=flush_rows, flush_interval=flush_interval, max_pending_rows=4 * flush_rows
        )
        self.rejects = RejectWriter(objectstore.local_control(self.root), name)
        self.server = OTLPServer((host, port), self, sock)
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

    def reject(self, signal_name: str | None, code: int, message: str, body: bytes | None, client: str) -> None:
        """Count a refused request and keep it (with the reason) under ``<store>/_rejected/``."""
        with self._lock:
            self.rejected_requests += 1
        _log.warning("rejected a %s request from %s: HTTP %d %s", signal_name or "?", client, code, message)
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
            }

    def stop(self, timeout: float = 30.0) -> None:
        """Stop accepting connections, let requests in flight finish, write everything accepted."""
        self.server.shutdown()
        with self._lock:
            self._idle.wait_for(lambda: self._inflight == 0, timeout=timeout)
        self.batcher.close()
        self.server.server_close()
        self.rejects.close()


# --------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m ingest serve``."""
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST}: this machine only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    parser.add_argument(
        "--max-body-mb", type=float, default=DEFAULT_MAX_BODY / (1 << 20),
        help="largest request body accepted, before and after decompression (default 20)",
    )
    parser.add_argument("--flush-rows", type=int, default=65_536, help="rows per table that trigger a write (default 65536)")
    parser.add_argument(
        "--flush-interval", type=float, default=1.0, help="seconds rows may wait before they are written (default 1)"
    )
    parser.add_argument(
        "--workers", type=int, default=min(os.cpu_count() or 1, 4),
        help="processes sharing the port, each decoding on its own core (default: the cores, at most 4)",
    )
    parser.add_argument(
        "--retention-days", type=float, default=None, metavar="DAYS",
        help="remove whole day partitions older than this, at start and hourly (ingest/prune.py; default: keep all)",
    )


def _serve(args: argparse.Namespace, sock: socket.socket, name: str) -> int:
    """One receiver on an already listening socket, until SIGTERM/SIGINT; then write everything."""
    _tune_gc()
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    receiver = Receiver(
        args.store,
        host=args.host,
        port=args.port,
        max_body=int(args.max_body_mb * (1 << 20)),
        flush_rows=args.flush_rows,
        flush_interval=args.flush_interval,
        sock=sock,
        name=name,
        retention_days=args.retention_days,
    )
    receiver.start()
    while not stop.wait(0.5):
        pass
    receiver.stop()
    print(f"{name} stopped: {json.dumps(receiver.stats())}", flush=True)
    return 0 if not receiver.batcher.pending() else 1


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT, then write everything accepted and print a summary.

    With ``--workers`` > 1 the listening socket is opened here and shared by forked worker
    processes (the kernel hands each connection to one of them): decoding is CPU-bound and the GIL
    would keep one process on one core. SIGTERM/SIGINT are passed on to every worker, which writes
    what it accepted before exiting.
    """
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    try:
        sock = socket.create_server((args.host, args.port), backlog=128)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    host, port = sock.getsockname()[:2]
    store = resolve_store(args.store)
    workers = max(1, args.workers)
    if workers == 1 or not hasattr(os, "fork"):
        print(f"listening on http://{host}:{port} (OTLP/HTTP: /v1/traces /v1/metrics /v1/logs), store {store}", flush=True)
        code = _serve(args, sock, "receiver")
        print("stopped", flush=True)
        return code
    children = []
    sys.stdout.flush()
    sys.stderr.flush()
    for index in range(workers):
        pid = os.fork()
        if pid == 0:  # a worker: no thread exists yet in this process, so forking is safe
            code = 1
            try:
                _stop_with_parent()
                code = _serve(args, sock, f"receiver-{index}")
            finally:
                sys.stdout.flush()
                os._exit(code)
        children.append(pid)
    sock.close()

    def forward(signum: int, frame: Any) -> None:
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    print(
        f"listening on http://{host}:{port} (OTLP/HTTP: /v1/traces /v1/metrics /v1/logs), store {store}, "
        f"{workers} worker processes",
        flush=True,
    )
    code = 0
    for pid in children:
        _, status = os.waitpid(pid, 0)
        code = max(code, os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)
    print("stopped: every worker wrote what it accepted" if code == 0 else "stopped: a worker could not write everything", flush=True)
    return code


def _tune_gc() -> None:
    """Fewer garbage collections while decoding: each request makes ~10 protobuf wrappers a span, all
    freed by reference counting, yet every 700 of them started a collection that walked the young
    objects (measured: about a third of the decoding time). Objects alive at start-up are frozen."""
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


def _stop_with_parent() -> None:
    """Have the kernel send this worker SIGTERM if the parent dies (Linux), so none is left orphaned.

    A parent killed outright (SIGKILL) cannot pass the signal on; the worker then still writes
    everything it accepted before exiting. Elsewhere this does nothing.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def free_port(host: str = DEFAULT_HOST) -> int:
    """A port free right now on ``host`` (for tests and benchmarks)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])

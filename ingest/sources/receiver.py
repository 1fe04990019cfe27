"""``python -m ingest serve``: an OTLP/HTTP receiver that any OTel SDK or Collector can export to.

``POST /v1/traces``, ``/v1/metrics``, ``/v1/logs`` with ``application/x-protobuf`` or
``application/json`` bodies, optionally ``Content-Encoding: gzip`` (every member of a multi-member
gzip body is read) or ``deflate``, with a ``Content-Length`` or ``Transfer-Encoding: chunked``, as
the OTLP specification's HTTP transport describes. Responses follow it too: 200 with an
``Export*ServiceResponse`` (``partial_success`` counting rejected spans/points/records and why), and
every refusal a ``google.rpc.Status`` saying what and where: 400 for a body that cannot be decoded or
malformed framing, 408 for a request that does not arrive in time, 411 without a length, 413 past the
body limit (decided from the announced length, before reading), 415 for other content types or
encodings, 429 while the rows waiting to be written are at their cap, 503 at the connection or
decoding limits and while shutting down. 408/429/503 carry ``Retry-After``: OTLP clients retry them.

Memory is bounded per process (:class:`Limits`, docs/security.md "The OTLP/HTTP receiver"): bodies
are read in pieces against a byte budget, decoded under a semaphore sized from ``memory_mb``, and
rows wait for the writer up to a cap. A connection must send each request within ``read_timeout``
seconds (plus a second per MiB of body), and at most ``max_connections`` are open at once.

Accepted rows are gathered per table and written through the one :class:`~ingest.store.writer.StoreWriter`
when a table holds ``flush_rows`` rows or its oldest row is ``flush_interval`` seconds old.
SIGTERM/SIGINT stop accepting, finish the requests in flight, write everything accepted, then exit.
Why stdlib ``ThreadingHTTPServer``: decoding is the cost (the GIL serialises it in any Python
server), and it measured as fast as uvicorn here (docs/benchmarks.md, "Ingest").
"""

from __future__ import annotations

import argparse
import collections
import gc
import hmac
import io
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NoReturn

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from google.protobuf import json_format
from google.rpc import status_pb2

from ingest.errors import ConfigurationError, StoreError
from ingest.sources.otlp import (
    DECODERS,
    ITEM_NAME,
    MAX_JSON_DEPTH,
    SIGNALS,
    Decoded,
    InputError,
    cap_quoted,
    parse_protobuf,
    quote,
    request_from_json,
)
from ingest.store import schema
from ingest.store.rejects import RejectWriter
from ingest.store.writer import StoreWriter, resolve_store_path

_log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4318
DEFAULT_MAX_BODY = 20 << 20
PATHS = {"/v1/traces": "traces", "/v1/metrics": "metrics", "/v1/logs": "logs"}
_PROTOBUF = "application/x-protobuf"
_JSON = "application/json"
_REJECTED_FIELD = {"traces": "rejected_spans", "metrics": "rejected_data_points", "logs": "rejected_log_records"}
_MIB = 1 << 20
_PIECE = 64 << 10
_NS_PER_DAY = 86_400 * 10**9
#: google.rpc.Code of each refusal (the OTLP Status body).
_RPC_CODE = {401: 16, 408: 4, 429: 8, 503: 14}
_LENGTH = re.compile(rb"[0-9]+")
_CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]{1,15})(;[^\r\n]*)?\r?\n")
#: Most gzip members one body may hold (each costs a decompressor; real clients send one).
MAX_GZIP_MEMBERS = 1_000

# --------------------------------------------------------------------------- limits

#: Resident memory of an idle receiver process (Python, pyarrow, protobuf), rounded up from 131 MB.
BASE_MB = 150
#: Memory of decoding one request, per byte of (inflated) body, besides the body itself: the decoded
#: protobuf request or JSON objects and the Arrow rows. Measured 26.1x for a 19 MB protobuf of SDK
#: spans and 13.3x for OTLP JSON (docs/security.md); 28 leaves room.
DECODE_FACTOR = 28
_ENV = "LANGSWARM_RECEIVER_"


@dataclass(frozen=True)
class Limits:
    """The receiver's limits; :meth:`resolve` takes argument > ``LANGSWARM_RECEIVER_*`` > default."""

    max_body: int = DEFAULT_MAX_BODY
    memory_mb: int = 1024
    max_concurrent_decodes: int = 1
    max_connections: int = 256
    read_timeout: float = 10.0
    max_days_per_request: int = 32
    max_pending_mb: int = 64

    @classmethod
    def resolve(
        cls,
        *,
        max_body: int | None = None,
        memory_mb: int | None = None,
        max_concurrent_decodes: int | None = None,
        max_connections: int | None = None,
        read_timeout: float | None = None,
        max_days_per_request: int | None = None,
        max_pending_mb: int | None = None,
    ) -> Limits:
        """Limits from arguments, the environment and defaults; decodes at once derived from memory."""
        body_mb = _setting("max_body_mb", None if max_body is None else max_body / _MIB, DEFAULT_MAX_BODY / _MIB, float)
        memory = int(_setting("memory_mb", memory_mb, cls.memory_mb, int))
        pending = int(_setting("max_pending_mb", max_pending_mb, cls.max_pending_mb, int))
        fixed = memory_needed(body_mb, 0, pending)
        per_decode = (DECODE_FACTOR + 2) * body_mb
        decodes = _setting("max_concurrent_decodes", max_concurrent_decodes, None, int)
        if decodes is None:
            if memory < fixed + per_decode:
                msg = (
                    f"memory_mb {memory} cannot hold one request of --max-body-mb {body_mb:g} "
                    f"(needs at least {fixed + per_decode:,.0f} MB: {BASE_MB} for the process, "
                    f"{DECODE_FACTOR + 4}x the body limit, twice --max-pending-mb {pending}); "
                    "raise --memory-mb or lower --max-body-mb/--max-pending-mb"
                )
                raise ConfigurationError(msg)
            decodes = int((memory - fixed) // per_decode)
        return cls(
            max_body=int(body_mb * _MIB),
            memory_mb=memory,
            max_concurrent_decodes=int(decodes),
            max_connections=int(_setting("max_connections", max_connections, cls.max_connections, int)),
            read_timeout=float(_setting("read_timeout_s", read_timeout, cls.read_timeout, float)),
            max_days_per_request=int(
                _setting("max_days_per_request", max_days_per_request, cls.max_days_per_request, int)
            ),
            max_pending_mb=pending,
        )

    @property
    def body_budget(self) -> int:
        """Bytes of bodies held at once, as read and as inflated: a full one per decode, plus one more."""
        return 2 * (self.max_concurrent_decodes + 1) * self.max_body

    @property
    def decode_budget(self) -> int:
        """Decoding memory in bytes: ``DECODE_FACTOR`` per body byte, for that many full-size bodies."""
        return self.max_concurrent_decodes * DECODE_FACTOR * self.max_body

    @property
    def bound_mb(self) -> float:
        """The documented ceiling on this process's resident memory, in MB."""
        return memory_needed(self.max_body / _MIB, self.max_concurrent_decodes, self.max_pending_mb)


def memory_needed(max_body_mb: float, decodes: int, max_pending_mb: int) -> float:
    """Memory bound (MB) = process + bodies held (read and inflated) + decoding + rows waiting and being written."""
    bodies = 2 * (decodes + 1) * max_body_mb
    return BASE_MB + bodies + decodes * DECODE_FACTOR * max_body_mb + 2 * max_pending_mb


def _setting(name: str, value: float | None, default: float | None, kind: type) -> Any:
    """``value``, else the environment variable ``LANGSWARM_RECEIVER_<NAME>``, else ``default``; > 0."""
    env = _ENV + name.upper()
    if value is None and os.environ.get(env, "").strip():
        raw = os.environ[env].strip()
        try:
            value = kind(raw)
        except ValueError:
            msg = f"{env}={quote(raw)} is not a {'whole ' if kind is int else ''}number"
            raise ConfigurationError(msg) from None
    if value is None:
        return default
    if value <= 0:
        msg = f"{name} must be positive, got {value} (argument --{name.replace('_', '-')} or {env})"
        raise ConfigurationError(msg)
    return value


class ByteBudget:
    """Bytes the process may hold at once for one purpose; a caller waits at most ``timeout`` for room.

    Large reservations (over 1/64 of the limit) are granted first come, first served, so a stream of
    others cannot starve one; small ones take room whenever it is free, so a batch of a few spans is
    not queued behind a 20 MB request.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.peak = 0
        self._cond = threading.Condition()
        self._queue: collections.deque[object] = collections.deque()

    def reserve(self, n: int, timeout: float) -> bool:
        with self._cond:
            if n <= self.limit // 64:
                granted = self._cond.wait_for(lambda: self.used + n <= self.limit, timeout=timeout)
            else:
                ticket = object()
                self._queue.append(ticket)
                try:
                    granted = self._cond.wait_for(
                        lambda: self._queue[0] is ticket and self.used + n <= self.limit, timeout=timeout
                    )
                finally:
                    self._queue.remove(ticket)
                    self._cond.notify_all()
            if granted:
                self.used += n
                self.peak = max(self.peak, self.used)
            return granted

    def release(self, n: int) -> None:
        if n:
            with self._cond:
                self.used -= n
                self._cond.notify_all()


class _Closed(Exception):
    """The receiver is shutting down and takes no more data."""


class Batcher:
    """Accepted rows per table, written in batches by size or age; thread-safe, memory-bounded.

    :meth:`full` says the rows waiting are at their cap (rows or Arrow bytes); the receiver then
    answers 429 before reading a body, so a store that cannot keep up (or cannot be written) makes
    clients retry later instead of growing memory.
    """

    def __init__(
        self,
        writer: StoreWriter,
        *,
        flush_rows: int = 65_536,
        flush_interval: float = 1.0,
        max_pending_rows: int = 262_144,
        max_pending_bytes: int = 128 * _MIB,
    ) -> None:
        self.writer = writer
        self.flush_rows = flush_rows
        self.flush_interval = flush_interval
        self.max_pending_rows = max_pending_rows
        self.max_pending_bytes = max_pending_bytes
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._pending: dict[str, list[pa.Table]] = {}
        self._rows: dict[str, int] = {}
        self._bytes = 0
        self._since: dict[str, float] = {}
        self._closed = False
        self._wake = threading.Event()
        self.accepted: dict[str, int] = {}
        self.written: dict[str, int] = {}
        self.write_failures = 0
        self._thread = threading.Thread(target=self._run, name="otlp-flusher", daemon=True)
        self._thread.start()

    def add(self, table_name: str, table: pa.Table) -> None:
        """Take rows; raises :class:`_Closed` once shutdown began (the caller answers 503)."""
        with self._lock:
            if self._closed:
                raise _Closed
            self._keep(table_name, [table])
            self.accepted[table_name] = self.accepted.get(table_name, 0) + table.num_rows
            rows = self._rows[table_name]
        if self.full():
            self.flush(table_name)  # back-pressure: this request waits for the write
        elif rows >= self.flush_rows:
            self._wake.set()

    def _keep(self, name: str, tables: list[pa.Table], *, first: bool = False) -> None:
        """Add ``tables`` to what is pending (caller holds the lock)."""
        parts = self._pending.setdefault(name, [])
        if first:
            parts[0:0] = tables
        else:
            parts.extend(tables)
        self._rows[name] = self._rows.get(name, 0) + sum(t.num_rows for t in tables)
        self._bytes += sum(t.nbytes for t in tables)
        self._since.setdefault(name, time.monotonic())

    def pending(self) -> int:
        with self._lock:
            return sum(self._rows.values())

    def pending_bytes(self) -> int:
        with self._lock:
            return self._bytes

    def full(self) -> bool:
        """Whether the rows waiting are at their cap (``max_pending_rows`` or ``max_pending_bytes``)."""
        with self._lock:
            return sum(self._rows.values()) >= self.max_pending_rows or self._bytes >= self.max_pending_bytes

    def flush(self, table_name: str | None = None) -> None:
        """Write what is pending (of one table or all); failed writes stay pending for the next try."""
        with self._write_lock:
            names = [table_name] if table_name else list(self._pending)
            for name in names:
                with self._lock:
                    parts = self._pending.pop(name, [])
                    self._rows.pop(name, None)
                    self._since.pop(name, None)
                    self._bytes -= sum(t.nbytes for t in parts)
                if not parts:
                    continue
                table = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
                try:
                    self.writer.write(name, table)
                except StoreError:
                    self.write_failures += 1
                    _log.exception("cannot write %d %s rows; keeping them to retry", table.num_rows, name)
                    with self._lock:
                        self._keep(name, parts, first=True)
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


# --------------------------------------------------------------------------- server


class OTLPServer(ThreadingHTTPServer):
    """The HTTP server holding the receiver's state for its handlers; at most ``max_connections`` open."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], receiver: Receiver, sock: socket.socket | None = None) -> None:
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
    status = status_pb2.Status(code=14, message=f"too many connections (--max-connections {limit}); retry later")
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


class _DeadlineReader(io.RawIOBase):
    """A socket's reading side that fails with ``TimeoutError`` once ``deadline`` (monotonic) passed.

    A per-``recv`` timeout alone lets a client send a byte every few seconds for ever (slowloris); a
    deadline for the whole request does not.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.deadline = time.monotonic() + 10.0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            msg = "the request did not arrive in time"
            raise TimeoutError(msg)
        self.sock.settimeout(remaining)
        return self.sock.recv_into(buffer)


class _Refusal(Exception):
    """A request refused with ``code``; ``retry`` adds Retry-After, ``record`` keeps it under _rejected/."""

    def __init__(self, code: int, message: str, *, retry: bool = False, record: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry = retry
        self.record = record


# --------------------------------------------------------------------------- handler


class OTLPHandler(BaseHTTPRequestHandler):
    """One OTLP/HTTP request: check the headers, read, decompress, decode, hand to the batcher, answer."""

    protocol_version = "HTTP/1.1"
    server: OTLPServer
    server_version = "langswarm-otlp"
    #: Requests answered on one keep-alive connection before asking the client to reconnect, so the
    #: kernel spreads long-lived exporter connections over the worker processes again and again.
    max_requests_per_connection = 64
    _served = 0
    _reserved = 0
    _body_unread = False

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.receiver.limits.read_timeout)  # writes to a stalled client
        self._raw = _DeadlineReader(self.connection)
        self.rfile = io.BufferedReader(self._raw, _PIECE)

    def handle_one_request(self) -> None:
        """The request line and headers must arrive within ``read_timeout`` (idle keep-alive included)."""
        self._raw.deadline = time.monotonic() + self.server.receiver.limits.read_timeout
        super().handle_one_request()

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        if self.path in ("/", "/health", "/healthz"):
            self._reply(200, _JSON, json.dumps(self.server.receiver.stats()).encode())
        else:
            self._error(404, f"no such endpoint {quote(self.path)}; POST to /v1/traces, /v1/metrics or /v1/logs", _JSON)

    def handle_expect_100(self) -> bool:
        """``Expect: 100-continue``: refuse from the headers alone, so the client never sends the body."""
        try:
            self._check_headers(self.server.receiver)
        except _Refusal as refusal:
            self.close_connection = True
            self._body_unread = False
            self.server.receiver.refused_count(refusal.code)
            self._error(refusal.code, refusal.message, self._reply_type(), retry=refusal.retry)
            return False
        return super().handle_expect_100()

    def do_POST(self) -> None:
        receiver = self.server.receiver
        self._served += 1
        if self._served >= self.max_requests_per_connection:
            self.close_connection = True
        self._body_unread = True
        receiver.enter()
        try:
            self._post(receiver)
        except _Refusal as refusal:
            self._refuse(receiver, refusal)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # a bug of ours: answer 500 (the client retries) and keep serving
            _log.exception("error handling %s", quote(self.path))
            self.close_connection = True
            self._error(500, cap_quoted(f"internal error: {type(exc).__name__}: {exc}"), self._reply_type())
        finally:
            receiver.body_budget.release(self._reserved)
            self._reserved = 0
            receiver.leave()

    def _reply_type(self) -> str:
        content_type = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        return _JSON if content_type == _JSON else _PROTOBUF

    def _check_headers(self, receiver: Receiver) -> str:
        """Refusals decided from the request line and headers alone; returns the signal."""
        refused = self._missing_header(receiver.required_headers)
        if refused is not None:  # first: an unauthenticated client learns nothing else and costs no decoding
            raise _Refusal(401, f"header {quote(refused)} is missing or wrong; this receiver requires it")
        path = self.path.split("?", 1)[0]
        signal_name = PATHS.get(path)
        if signal_name is None:
            msg = f"no such endpoint {quote(path)}; POST to /v1/traces, /v1/metrics or /v1/logs"
            raise _Refusal(404, msg)
        content_type = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if content_type not in (_PROTOBUF, _JSON):
            msg = f"Content-Type {quote(content_type or '(none)')} is not supported; use {_PROTOBUF} or {_JSON}"
            raise _Refusal(415, msg)
        encoding = (self.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding not in ("gzip", "deflate", "identity"):
            msg = f"Content-Encoding {quote(encoding)} is not supported; use gzip, deflate or none"
            raise _Refusal(415, msg)
        self._body_length(receiver.limits.max_body)
        if receiver.batcher.full():
            msg = "the rows waiting to be written are at their cap (--max-pending-mb); retry later"
            raise _Refusal(429, msg, retry=True)
        return signal_name

    def _missing_header(self, required: Mapping[str, str]) -> str | None:
        """The first required header absent or different (name case-insensitive, value in constant time)."""
        for name, value in required.items():
            sent = self.headers.get(name)
            if sent is None or not hmac.compare_digest(sent.encode("utf-8", "replace"), value.encode("utf-8")):
                return name
        return None

    def _body_length(self, limit: int) -> int | None:
        """The announced body length (None when chunked), strictly parsed; 411/413/400 refusals."""
        transfer = self.headers.get_all("Transfer-Encoding") or []
        lengths = self.headers.get_all("Content-Length") or []
        if transfer:
            if [t.strip().lower() for t in transfer] != ["chunked"]:
                msg = f"Transfer-Encoding {quote(', '.join(transfer))} is not supported; use chunked or a Content-Length"
                raise _Refusal(400, msg)
            if lengths:
                msg = "a request has either Content-Length or Transfer-Encoding: chunked, not both"
                raise _Refusal(400, msg)
            return None
        if not lengths:
            raise _Refusal(411, "Content-Length is required (or Transfer-Encoding: chunked)")
        if len(lengths) > 1:
            raise _Refusal(400, f"{len(lengths)} Content-Length headers; send one")
        raw = lengths[0].strip().encode("utf-8", "replace")
        if not _LENGTH.fullmatch(raw):
            msg = f"Content-Length {quote(lengths[0])} is not a length (ASCII decimal digits only)"
            raise _Refusal(400, msg)
        length = int(raw) if len(raw) <= 19 else 1 << 63  # a longer number is past any limit
        if length > limit:
            shown = f"{length:,}" if len(raw) <= 19 else f"{len(raw)} digits of"
            msg = f"the body has {shown} bytes, more than the {limit:,}-byte limit (--max-body-mb)"
            raise _Refusal(413, msg, record=True)
        return length

    def _post(self, receiver: Receiver) -> None:
        signal_name = self._check_headers(receiver)
        reply_type = self._reply_type()
        limits = receiver.limits
        body = self._read_body(receiver)
        self._body_unread = False
        body = self._inflate(receiver, signal_name, body)
        cost = DECODE_FACTOR * len(body)
        if not receiver.decode_budget.reserve(cost, timeout=limits.read_timeout):
            msg = (
                f"the receiver is decoding as much as --max-concurrent-decodes {limits.max_concurrent_decodes} "
                f"full-size requests take; retry later"
            )
            raise _Refusal(503, msg, retry=True)
        try:
            decoded = self._decode_body(receiver, signal_name, body)
        finally:
            receiver.decode_budget.release(cost)
        if decoded.table is not None:
            try:
                receiver.batcher.add(SIGNALS[signal_name][0], decoded.table)
            except _Closed:
                raise _Refusal(503, "the receiver is shutting down; retry against the next instance", retry=True) from None
        receiver.count(signal_name, decoded)
        self._reply(200, reply_type, _response(signal_name, decoded, reply_type))

    def _inflate(self, receiver: Receiver, signal_name: str, body: bytearray) -> bytearray:
        """The body decompressed (gzip, deflate), its output reserved from the byte budget as it grows."""
        limits = receiver.limits
        encoding = (self.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding not in ("gzip", "deflate"):
            return body
        try:
            return _decompress(body, encoding, limits.max_body, lambda n: self._reserve(receiver, n))
        except _TooLarge:
            msg = f"the {encoding} body inflates past the {limits.max_body:,}-byte limit (--max-body-mb)"
            raise _Refusal(413, msg, record=True) from None
        except (zlib.error, EOFError, ValueError) as exc:
            self._record(receiver, signal_name, 400, f"the body is not valid {encoding} data ({exc})", body)

    def _reserve(self, receiver: Receiver, n: int) -> None:
        """Hold ``n`` more bytes of the body budget for this request, or refuse it with 503."""
        if not receiver.body_budget.reserve(n, timeout=1.0):
            msg = (
                f"the receiver holds {receiver.body_budget.limit:,} bytes of request bodies already "
                "(--memory-mb, --max-body-mb); retry later"
            )
            raise _Refusal(503, msg, retry=True)
        self._reserved += n

    def _decode_body(self, receiver: Receiver, signal_name: str, body: bytearray) -> Decoded:
        limits = receiver.limits
        content_type = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        try:
            decoded = _decode(signal_name, body, content_type)
        except InputError as exc:
            self._record(receiver, signal_name, 400, cap_quoted(str(exc)), body)
        if decoded.table is not None:
            days = _distinct_days(decoded.table, schema.TABLES[SIGNALS[signal_name][0]][1])
            if days > limits.max_days_per_request:
                msg = (
                    f"the {ITEM_NAME[signal_name]} fall on {days:,} different days, more than "
                    f"{limits.max_days_per_request} per request (--max-days-per-request: each day is a file); "
                    "send old data with `python -m ingest import`"
                )
                self._record(receiver, signal_name, 400, msg, body)
        return decoded

    def _record(
        self, receiver: Receiver, signal_name: str, code: int, message: str, body: bytes | bytearray
    ) -> NoReturn:
        """Keep a refused body (a bounded sample) under ``_rejected/``, then refuse."""
        receiver.reject(signal_name, code, message, body, self.client_address[0])
        raise _Refusal(code, message)

    def _read_body(self, receiver: Receiver) -> bytearray:
        """The body in pieces, each reserved from the receiver's byte budget before it is read."""
        limits = receiver.limits
        length = self._body_length(limits.max_body)
        allowance = (length if length is not None else limits.max_body) / _MIB
        self._raw.deadline = time.monotonic() + limits.read_timeout + allowance
        body = bytearray()
        try:
            if length is not None:
                self._read_into(body, length, receiver, length)
            else:
                self._read_chunked(body, receiver)
        except TimeoutError:
            msg = (
                f"the body did not arrive within {limits.read_timeout:g} s plus 1 s per MiB "
                "(--read-timeout); the connection is closed"
            )
            raise _Refusal(408, msg, retry=True) from None
        return body

    def _read_into(self, body: bytearray, n: int, receiver: Receiver, announced: int | None) -> None:
        while n > 0:
            size = min(n, _PIECE)
            self._reserve(receiver, size)
            piece = self.rfile.read(size)
            body += piece
            if len(piece) < size:
                got = len(body)
                where = f"after {got:,} of {announced:,} bytes" if announced is not None else "inside a chunk"
                raise _Refusal(400, f"the body ended {where} (the client closed the connection)")
            n -= size

    def _read_chunked(self, body: bytearray, receiver: Receiver) -> None:
        """``Transfer-Encoding: chunked``: strict hex sizes, a running total against the limit."""
        limit = receiver.limits.max_body
        total = 0
        while True:
            line = self.rfile.readline(1026)
            match = _CHUNK_LINE.fullmatch(line)
            if match is None:
                msg = f"malformed chunked body: chunk size line {quote(line[:64])} is not hex digits and CRLF"
                raise _Refusal(400, msg)
            size = int(match.group(1), 16)
            if size == 0:
                break
            total += size
            if total > limit:
                msg = f"the chunked body passes the {limit:,}-byte limit (--max-body-mb) at {total:,} bytes"
                raise _Refusal(413, msg)
            self._read_into(body, size, receiver, None)
            if self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise _Refusal(400, "malformed chunked body: a chunk's data is not followed by CRLF")
        for _ in range(64):  # trailer fields, then the empty line
            line = self.rfile.readline(8192)
            if line in (b"\r\n", b"\n"):
                return
            if not line.endswith(b"\n"):
                break
        raise _Refusal(400, "malformed chunked body: the trailer does not end with an empty line")

    def _refuse(self, receiver: Receiver, refusal: _Refusal) -> None:
        """Answer a refusal; a body left unread is read and dropped for a moment, so the client sees it."""
        receiver.refused_count(refusal.code)
        if refusal.record:
            receiver.reject(PATHS.get(self.path.split("?", 1)[0]), refusal.code, refusal.message, None, self.client_address[0])
        elif refusal.code >= 500 or refusal.code in (408, 429):
            _log.info("refused a request from %s: HTTP %d %s", self.client_address[0], refusal.code, refusal.message)
        unread = self._body_unread
        if unread or refusal.code >= 500 or refusal.code in (408, 429):
            self.close_connection = True
        self._error(refusal.code, refusal.message, self._reply_type(), retry=refusal.retry)
        if unread and refusal.code != 408:
            self._discard()

    def _discard(self) -> None:
        """Read and drop what the client still sends, for at most a second and 64 MiB, in small pieces."""
        self._raw.deadline = time.monotonic() + 1.0
        dropped = 0
        try:
            while dropped < (64 << 20):
                piece = self.rfile.read1(_PIECE)
                if not piece:
                    return
                dropped += len(piece)
        except OSError:
            return

    def _error(self, code: int, message: str, reply_type: str, *, retry: bool = False) -> None:
        status = status_pb2.Status(code=_RPC_CODE.get(code, 3 if code < 500 else 14), message=message[:4096])
        body = (
            json_format.MessageToJson(status, indent=None).encode()
            if reply_type == _JSON
            else status.SerializeToString()
        )
        self._reply(code, reply_type, body, retry=retry)

    def _reply(self, code: int, content_type: str, body: bytes, *, retry: bool = False) -> None:
        try:
            self.connection.settimeout(self.server.receiver.limits.read_timeout)  # a client that stops reading
            self.send_response(code, HTTPStatus(code).phrase)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if retry:
                self.send_header("Retry-After", "1")
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client left, or stopped reading (the write timed out)
            self.close_connection = True


def _decode(signal_name: str, body: bytes | bytearray, content_type: str) -> Decoded:
    if content_type == _PROTOBUF:
        request = parse_protobuf(signal_name, body)
    else:
        try:
            obj = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            msg = f"the body is not valid JSON: {cap_quoted(str(exc))}"
            raise InputError(msg) from None
        except RecursionError:
            msg = f"the JSON body is nested too deeply (OTLP JSON nests at most {MAX_JSON_DEPTH} levels)"
            raise InputError(msg) from None
        _, request = request_from_json(obj, signal_name)
    return DECODERS[signal_name](request)


def _distinct_days(table: pa.Table, time_column: str) -> int:
    """How many UTC days (store partitions, so files) the rows fall on, as the store writer splits them."""
    times = table.column(time_column).combine_chunks().cast(pa.int64())
    today = time.time_ns() // _NS_PER_DAY
    days = pc.fill_null(pc.divide(times, _NS_PER_DAY), today).to_numpy(zero_copy_only=False)
    return int(np.unique(days).size)


class _TooLarge(Exception):
    pass


def _decompress(body: bytearray, encoding: str, limit: int, reserve: Callable[[int], None]) -> bytearray:
    """Inflate with a ceiling, so a small compressed body cannot grow without bound.

    gzip: every member (RFC 1952 allows several, and ``cat a.gz b.gz`` makes them), up to
    :data:`MAX_GZIP_MEMBERS`; anything after the last member that is not another member is an error,
    never silently dropped. deflate: the zlib format (RFC 1950), or raw deflate as some clients send.
    Output grows a MiB at a time, each reserved with ``reserve`` first.
    """
    if encoding == "gzip":
        wbits = 16 + zlib.MAX_WBITS
    else:
        zlib_header = len(body) >= 2 and (body[0] * 256 + body[1]) % 31 == 0 and body[0] & 0x0F == 8
        wbits = zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS
    out = bytearray()
    data: bytes | bytearray = body
    members = 0
    while True:
        inflater = zlib.decompressobj(wbits)
        while not inflater.eof:
            room = min(_MIB, limit - len(out) + 1)
            piece = inflater.decompress(data, room)
            if len(out) + len(piece) > limit:
                raise _TooLarge
            reserve(len(piece))
            out += piece
            data = inflater.unconsumed_tail
            if not piece and not data:
                break
        if not inflater.eof:
            msg = f"the compressed body is truncated (member {members + 1} has no end)"
            raise EOFError(msg)
        members += 1
        data = inflater.unused_data
        if not data:
            return out
        if encoding != "gzip" or data[:2] != b"\x1f\x8b":
            msg = f"{len(data):,} bytes follow the end of the {encoding} data and are not another gzip member"
            raise ValueError(msg)
        if members >= MAX_GZIP_MEMBERS:
            msg = f"more than {MAX_GZIP_MEMBERS:,} gzip members"
            raise ValueError(msg)


def _response(signal_name: str, decoded: Decoded, reply_type: str) -> bytes:
    response = SIGNALS[signal_name][3]()
    if decoded.rejected:
        partial = response.partial_success
        setattr(partial, _REJECTED_FIELD[signal_name], decoded.rejected)
        partial.error_message = cap_quoted(
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
        self.root = resolve_store_path(store)
        self.max_body = self.limits.max_body
        self.body_budget = ByteBudget(self.limits.body_budget)
        self.decode_budget = ByteBudget(self.limits.decode_budget)
        self.writer = StoreWriter(self.root, durable=durable)
        self.batcher = Batcher(
            self.writer,
            flush_rows=flush_rows,
            flush_interval=flush_interval,
            max_pending_rows=4 * flush_rows,
            max_pending_bytes=self.limits.max_pending_mb * _MIB,
        )
        self.rejects = RejectWriter(self.root, name)
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


# --------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m ingest serve``."""
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST}: this machine only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    parser.add_argument(
        "--max-body-mb", type=float, default=None,
        help="largest request body accepted, before and after decompression (default 20; LANGSWARM_RECEIVER_MAX_BODY_MB)",
    )
    parser.add_argument(
        "--memory-mb", type=int, default=None,
        help="memory budget of each worker process; sets how many requests are decoded at once "
        "(default 1024; LANGSWARM_RECEIVER_MEMORY_MB; docs/security.md)",
    )
    parser.add_argument(
        "--max-concurrent-decodes", type=int, default=None,
        help="requests decoded at once per process, past it 503 + Retry-After "
        "(default: what --memory-mb holds; LANGSWARM_RECEIVER_MAX_CONCURRENT_DECODES)",
    )
    parser.add_argument(
        "--max-connections", type=int, default=None,
        help="open connections per process, past it 503 + Retry-After (default 256; LANGSWARM_RECEIVER_MAX_CONNECTIONS)",
    )
    parser.add_argument(
        "--read-timeout", type=float, default=None,
        help="seconds a request's line and headers may take to arrive, and its body plus 1 s per MiB "
        "(default 10; LANGSWARM_RECEIVER_READ_TIMEOUT_S)",
    )
    parser.add_argument(
        "--max-days-per-request", type=int, default=None,
        help="different days (store partitions) one request may write to (default 32; "
        "LANGSWARM_RECEIVER_MAX_DAYS_PER_REQUEST)",
    )
    parser.add_argument(
        "--max-pending-mb", type=int, default=None,
        help="Arrow MB of rows waiting to be written, past it 429 + Retry-After (default 64; "
        "LANGSWARM_RECEIVER_MAX_PENDING_MB)",
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
        "--require-header", metavar="NAME=VALUE", action="append", type=_header_arg, default=[],
        help="refuse (401) a request without this header and value, e.g. X-Api-Key=secret; repeatable",
    )


def _header_arg(text: str) -> tuple[str, str]:
    """``NAME=VALUE`` of ``--require-header``."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value:
        msg = f"{text!r} is not NAME=VALUE, e.g. X-Api-Key=secret"
        raise argparse.ArgumentTypeError(msg)
    return name.strip(), value


def _serve(args: argparse.Namespace, sock: socket.socket, name: str) -> int:
    """One receiver on an already listening socket, until SIGTERM/SIGINT; then write everything."""
    _tune_gc()
    _limit_malloc_arenas()
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    receiver = Receiver(
        args.store,
        host=args.host,
        port=args.port,
        **_limit_arguments(args),
        flush_rows=args.flush_rows,
        flush_interval=args.flush_interval,
        sock=sock,
        name=name,
        required_headers=dict(args.require_header),
    )
    receiver.start()
    while not stop.wait(0.5):
        pass
    receiver.stop()
    print(f"{name} stopped: {json.dumps(receiver.stats())}", flush=True)
    return 0 if not receiver.batcher.pending() else 1


def _limit_arguments(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "max_body": None if args.max_body_mb is None else int(args.max_body_mb * _MIB),
        "memory_mb": args.memory_mb,
        "max_concurrent_decodes": args.max_concurrent_decodes,
        "max_connections": args.max_connections,
        "read_timeout": args.read_timeout,
        "max_days_per_request": args.max_days_per_request,
        "max_pending_mb": args.max_pending_mb,
    }


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT, then write everything accepted and print a summary.

    With ``--workers`` > 1 the listening socket is opened here and shared by forked worker
    processes (the kernel hands each connection to one of them): decoding is CPU-bound and the GIL
    would keep one process on one core. SIGTERM/SIGINT are passed on to every worker, which writes
    what it accepted before exiting.
    """
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    try:
        limits = Limits.resolve(**_limit_arguments(args))
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bound = (
        f"memory bound {limits.bound_mb:,.0f} MB per process ({limits.max_concurrent_decodes} decodes at once "
        f"of up to {limits.max_body / _MIB:g} MB, {limits.max_connections} connections)"
    )
    try:
        sock = socket.create_server((args.host, args.port), backlog=128)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    host, port = sock.getsockname()[:2]
    store = resolve_store_path(args.store)
    workers = max(1, args.workers)
    if workers == 1 or not hasattr(os, "fork"):
        print(
            f"listening on http://{host}:{port} (OTLP/HTTP: /v1/traces /v1/metrics /v1/logs), store {store}, {bound}",
            flush=True,
        )
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
        f"{workers} worker processes, {bound}",
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


def _limit_malloc_arenas(arenas: int = 2) -> None:
    """At most ``arenas`` glibc malloc arenas in this process, unless ``MALLOC_ARENA_MAX`` says otherwise.

    glibc gives each thread that allocates at once its own arena (up to 8 per core) and keeps what is
    freed there: with a thread per connection, memory freed after one large decode stayed resident in
    other threads' arenas. Measured under 100 abusive clients: peak RSS 1,099 MB with glibc's default,
    818 MB with two arenas (documented bound 918 MB). Elsewhere (musl, macOS) this does nothing.
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        m_arena_max = -8
        libc.mallopt(m_arena_max, arenas)
    except (OSError, AttributeError):
        return


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

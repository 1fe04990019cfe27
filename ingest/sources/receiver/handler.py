"""One OTLP/HTTP request: check the headers, read the body, inflate, decode, hand over, answer.

Every refusal is a :class:`_Refusal` raised where it is decided and answered in one place
(``_refuse``); checks that need only the request line and headers are in ``_check_headers``, which
runs before any body byte is read (and answers ``Expect: 100-continue``).
"""

from __future__ import annotations

import hmac
import io
import json
import logging
import re
import time
import zlib
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from google.protobuf import json_format
from google.rpc import status_pb2

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
from ingest.sources.receiver.batcher import _Closed
from ingest.sources.receiver.body import _PIECE, _DeadlineReader, _decompress, _TooLarge
from ingest.sources.receiver.limits import _MIB, DECODE_FACTOR
from ingest.store import schema

if TYPE_CHECKING:
    from ingest.sources.receiver.server import OTLPServer, Receiver

_log = logging.getLogger(__name__)

PATHS = {"/v1/traces": "traces", "/v1/metrics": "metrics", "/v1/logs": "logs"}
_PROTOBUF = "application/x-protobuf"
_JSON = "application/json"
_REJECTED_FIELD = {
    "traces": "rejected_spans",
    "metrics": "rejected_data_points",
    "logs": "rejected_log_records",
}
_NS_PER_DAY = 86_400 * 10**9
#: google.rpc.Code of each refusal (the OTLP Status body).
_RPC_CODE = {401: 16, 408: 4, 429: 8, 503: 14}
_LENGTH = re.compile(rb"[0-9]+")
_CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]{1,15})(;[^\r\n]*)?\r?\n")


class _Refusal(Exception):
    """A request refused with ``code``; ``retry`` adds Retry-After, ``record`` keeps it under _rejected/."""

    def __init__(self, code: int, message: str, *, retry: bool = False, record: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry = retry
        self.record = record


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
            self._error(
                404,
                f"no such endpoint {quote(self.path)}; POST to /v1/traces, /v1/metrics or /v1/logs",
                _JSON,
            )

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
            msg = (
                f"Content-Type {quote(content_type or '(none)')} is not supported; use {_PROTOBUF} or {_JSON}"
            )
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
            if sent is None or not hmac.compare_digest(
                sent.encode("utf-8", "replace"), value.encode("utf-8")
            ):
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
                raise _Refusal(
                    503, "the receiver is shutting down; retry against the next instance", retry=True
                ) from None
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
            receiver.reject(
                PATHS.get(self.path.split("?", 1)[0]),
                refusal.code,
                refusal.message,
                None,
                self.client_address[0],
            )
        elif refusal.code >= 500 or refusal.code in (408, 429):
            _log.info(
                "refused a request from %s: HTTP %d %s", self.client_address[0], refusal.code, refusal.message
            )
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
            self.connection.settimeout(
                self.server.receiver.limits.read_timeout
            )  # a client that stops reading
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

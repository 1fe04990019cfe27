"""Receiver abuse: lengths, framing, encodings, bombs, nesting, slow and many clients, days fan-out.

Each test asserts the refusal (status, Retry-After where the client should retry, a message saying
what and where) AND that the receiver keeps serving valid requests with nothing accepted lost. Real
HTTP on 127.0.0.1; raw sockets where the framing itself is malformed.
"""

from __future__ import annotations

import gzip
import http.client
import json
import re
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from ingest.errors import ConfigurationError, StoreError
from ingest.sources.importer import Importer
from ingest.sources.otlp import request_from_json
from ingest.sources.receiver import MAX_GZIP_MEMBERS, Limits, Receiver
from ingest.store.rejects import read_rejected
from tests.otlp_samples import otlp_spans, sdk_spans, to_otlp_json

PB = "application/x-protobuf"
JSON = "application/json"
LIMIT = 1 << 20
SPANS_PER_REQUEST = 15


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def request_json() -> dict:
    return to_otlp_json(otlp_spans(sdk_spans()))


@pytest.fixture(scope="module")
def good(request_json: dict) -> bytes:
    """A valid protobuf ExportTraceServiceRequest of 15 spans."""
    return request_from_json(request_json)[1].SerializeToString()


class Served:
    """A receiver under test plus the count of spans it answered 200 for (all must be stored)."""

    def __init__(self, receiver: Receiver, good: bytes) -> None:
        self.receiver = receiver
        self.good = good
        self.accepted = 0

    @property
    def address(self) -> tuple[str, int]:
        return self.receiver.address

    def still_serving(self, attempts: int = 50) -> None:
        """A valid request is answered 200, retrying 429/503 and transport errors as an OTLP client does.

        (A connection past --max-connections is answered 503 at once; a client still sending its
        body then sees the connection reset instead, which OTLP exporters retry too.)
        """
        for _ in range(attempts):
            try:
                status, headers, _ = post(self, self.good)
            except (ConnectionError, http.client.RemoteDisconnected):
                time.sleep(0.2)
                continue
            if status == 200:
                self.accepted += SPANS_PER_REQUEST
                return
            assert status in (429, 503) and headers.get("Retry-After") == "1", status
            time.sleep(0.2)
        pytest.fail("the receiver never accepted a valid request again")

    def stop_and_check(self) -> list[dict]:
        """Stop (writing everything) and require exactly the accepted spans in the store."""
        self.receiver.stop()
        stored = spans_in(Path(self.receiver.root))
        assert len(stored) == self.accepted
        return stored


def make(tmp_path: Path, good: bytes, **limits: object) -> Served:
    options: dict = {"max_body": LIMIT, "read_timeout": 1.0, "flush_interval": 0.05, "durable": False}
    options.update(limits)
    receiver = Receiver(str(tmp_path / "store"), port=0, **options)
    receiver.start()
    return Served(receiver, good)


@pytest.fixture
def served(tmp_path: Path, good: bytes) -> Iterator[Served]:
    instance = make(tmp_path, good)
    try:
        yield instance
    finally:
        instance.receiver.stop()


def post(served: Served, body: bytes, content_type: str = PB, **headers: str) -> tuple[int, dict, bytes]:
    host, port = served.address
    connection = http.client.HTTPConnection(host, port, timeout=30)
    try:
        connection.request("POST", "/v1/traces", body=body, headers={"Content-Type": content_type, **headers})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def raw(served: Served, data: bytes) -> tuple[int, dict, bytes]:
    """Send ``data`` as is on a new connection and read the one response (the socket stays open)."""
    sock = socket.create_connection(served.address, timeout=30)
    try:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        sock.close()


def head(content_length: str | None = None, *, extra: str = "", content_type: str = PB) -> bytes:
    lines = ["POST /v1/traces HTTP/1.1", "Host: x", f"Content-Type: {content_type}"]
    if content_length is not None:
        lines.append(f"Content-Length: {content_length}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode("utf-8")


def message(body: bytes, content_type: str = PB) -> str:
    if content_type == JSON:
        return json.loads(body)["message"]
    return status_pb2.Status.FromString(body).message


def spans_in(store: Path) -> list[dict]:
    folder = store / "spans"
    return ds.dataset(folder, format="parquet").to_table().to_pylist() if folder.exists() else []


def chunked(body: bytes, sizes: list[int]) -> bytes:
    out, at = [], 0
    for size in sizes:
        out.append(b"%x\r\n" % size + body[at : at + size] + b"\r\n")
        at += size
    out.append(b"%x\r\n" % (len(body) - at) + body[at:] + b"\r\n" if at < len(body) else b"")
    return b"".join(out) + b"0\r\n\r\n"


# --------------------------------------------------------------------------- lengths


class TestContentLength:
    @pytest.mark.parametrize("value", ["-1", "5_0", "+50", "0x10", "1e3", "50.0", "５０", "5 0", ""])
    def test_a_length_that_is_not_ascii_digits_is_a_400_without_reading(
        self, served: Served, value: str
    ) -> None:
        """``int()`` took -1 (then read until the client closed), ``5_0``, ``+50`` and non-ASCII digits."""
        status, headers, body = raw(served, head(value) + b"x" * 50)
        assert status == 400 and "is not a length (ASCII decimal digits only)" in message(body)
        assert headers.get("Connection") == "close"
        served.still_serving()
        served.stop_and_check()

    def test_a_missing_length_is_a_411(self, served: Served) -> None:
        status, _, body = raw(served, head(None))
        assert status == 411 and "Content-Length is required" in message(body)
        served.still_serving()
        served.stop_and_check()

    def test_two_lengths_are_a_400(self, served: Served) -> None:
        status, _, body = raw(served, head("5", extra="Content-Length: 5\r\n") + b"12345")
        assert status == 400 and "2 Content-Length headers" in message(body)
        served.still_serving()
        served.stop_and_check()

    @pytest.mark.parametrize("value", [str(LIMIT + 1), str(1 << 40), "9" * 40])
    def test_a_length_above_the_limit_is_a_413_before_any_body_byte(self, served: Served, value: str) -> None:
        """The answer comes while the client has not sent a byte of the body (nothing is read or buffered)."""
        status, headers, body = raw(served, head(value))
        assert status == 413 and "more than the 1,048,576-byte limit (--max-body-mb)" in message(body)
        assert headers.get("Connection") == "close"
        served.still_serving()
        served.stop_and_check()

    def test_a_body_shorter_than_its_length_is_a_400_when_the_client_closes(self, served: Served) -> None:
        sock = socket.create_connection(served.address, timeout=30)
        sock.sendall(head("1000") + b"x" * 10)
        sock.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert response.status == 400 and "the body ended after 10 of 1,000 bytes" in message(response.read())
        sock.close()
        served.still_serving()
        served.stop_and_check()

    def test_expect_100_continue_with_too_long_a_body_is_refused_from_the_headers(
        self, served: Served
    ) -> None:
        status, _, _ = raw(served, head(str(LIMIT * 4), extra="Expect: 100-continue\r\n"))
        assert status == 413  # not "100 Continue": the client never sends the body
        served.still_serving()
        served.stop_and_check()


# --------------------------------------------------------------------------- chunked


class TestChunked:
    def test_a_chunked_body_with_extensions_and_a_trailer_is_stored(
        self, served: Served, good: bytes
    ) -> None:
        body = chunked(good, [1, 100, 7])
        body = body.replace(b"64\r\n", b"64;name=value\r\n", 1).replace(
            b"0\r\n\r\n", b"0\r\nX-Trailer: y\r\n\r\n"
        )
        status, _, answer = raw(served, head(None, extra="Transfer-Encoding: chunked\r\n") + body)
        assert status == 200, message(answer)
        served.accepted += SPANS_PER_REQUEST
        served.still_serving()
        served.stop_and_check()

    def test_http_client_chunked_upload_is_stored(self, served: Served, good: bytes) -> None:
        host, port = served.address
        connection = http.client.HTTPConnection(host, port, timeout=30)
        connection.request(
            "POST", "/v1/traces", body=iter([good[:50], good[50:]]), headers={"Content-Type": PB}
        )
        assert connection.getresponse().status == 200
        connection.close()
        served.accepted += SPANS_PER_REQUEST
        served.stop_and_check()

    @pytest.mark.parametrize("size_line", [b"-1", b" 5", b"0x5", b"5_0", b"+5", b"g", b"", b"1" * 20])
    def test_a_chunk_size_that_is_not_hex_is_a_400(self, served: Served, size_line: bytes) -> None:
        """A chunk size of -1 made the old receiver read until the client closed."""
        data = head(None, extra="Transfer-Encoding: chunked\r\n") + size_line + b"\r\n" + b"x" * 64
        status, _, body = raw(served, data)
        assert status == 400 and "malformed chunked body: chunk size line" in message(body)
        served.still_serving()
        served.stop_and_check()

    def test_a_chunk_past_the_limit_is_a_413_before_its_data(self, served: Served) -> None:
        """One announced chunk larger than the limit: refused at its size line, none of it read."""
        data = head(None, extra="Transfer-Encoding: chunked\r\n") + b"%x\r\n" % (LIMIT + 1)
        status, _, body = raw(served, data)
        assert status == 413 and "passes the 1,048,576-byte limit" in message(body)
        served.still_serving()
        served.stop_and_check()

    def test_many_small_chunks_past_the_limit_are_a_413_as_soon_as_the_total_passes(
        self, served: Served
    ) -> None:
        piece = b"%x\r\n" % (64 << 10) + b"x" * (64 << 10) + b"\r\n"
        data = (
            head(None, extra="Transfer-Encoding: chunked\r\n") + piece * 17
        )  # 17 x 64 KiB > 1 MiB; no last chunk
        status, _, body = raw(served, data)
        assert status == 413 and "at 1,114,112 bytes" in message(body)
        served.still_serving()
        served.stop_and_check()

    @pytest.mark.parametrize(
        ("extra", "words"),
        [
            ("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", "not both"),
            ("Transfer-Encoding: gzip, chunked\r\n", "Transfer-Encoding 'gzip, chunked' is not supported"),
        ],
    )
    def test_ambiguous_framing_is_a_400(self, served: Served, extra: str, words: str) -> None:
        status, _, body = raw(served, head(None, extra=extra) + b"5\r\nhello\r\n0\r\n\r\n")
        assert status == 400 and words in message(body)
        served.still_serving()
        served.stop_and_check()

    def test_chunk_data_without_its_crlf_is_a_400(self, served: Served, good: bytes) -> None:
        data = head(None, extra="Transfer-Encoding: chunked\r\n") + b"5\r\nhelloXX0\r\n\r\n"
        status, _, body = raw(served, data)
        assert status == 400 and "not followed by CRLF" in message(body)
        served.still_serving()
        served.stop_and_check()


# --------------------------------------------------------------------------- encodings and bombs


class TestEncodings:
    def test_deflate_zlib_and_raw_are_stored(self, served: Served, good: bytes) -> None:
        raw_deflate = zlib.compressobj(wbits=-15)
        for body in (zlib.compress(good), raw_deflate.compress(good) + raw_deflate.flush()):
            status, _, answer = post(served, body, **{"Content-Encoding": "deflate"})
            assert status == 200, message(answer)
            served.accepted += SPANS_PER_REQUEST
        served.stop_and_check()

    def test_every_gzip_member_is_read(self, served: Served, good: bytes, request_json: dict) -> None:
        """Two members (``cat a.gz b.gz``): the old receiver kept the first and answered 200."""
        status, _, answer = post(
            served, gzip.compress(good) + gzip.compress(good), **{"Content-Encoding": "gzip"}
        )
        assert status == 200, message(answer)  # two protobuf messages concatenated = one with both span lists
        served.accepted += 2 * SPANS_PER_REQUEST
        text = json.dumps(request_json).encode()
        half = len(text) // 2
        status, _, answer = post(
            served,
            gzip.compress(text[:half]) + gzip.compress(text[half:]),
            JSON,
            **{"Content-Encoding": "gzip"},
        )
        assert status == 200, message(answer, JSON)
        served.accepted += SPANS_PER_REQUEST
        served.stop_and_check()

    @pytest.mark.parametrize(
        ("tail", "words"),
        [
            (b"garbage!", "8 bytes follow the end of the gzip data"),
            (b"\x1f\x8b\x08\x00", "truncated (member 2 has no end)"),
        ],
    )
    def test_bytes_after_the_last_gzip_member_are_a_400(
        self, served: Served, good: bytes, tail: bytes, words: str
    ) -> None:
        status, _, answer = post(served, gzip.compress(good) + tail, **{"Content-Encoding": "gzip"})
        assert status == 400 and words in message(answer)
        served.still_serving()
        served.stop_and_check()

    def test_bytes_after_a_deflate_stream_are_a_400(self, served: Served, good: bytes) -> None:
        status, _, answer = post(served, zlib.compress(good) + b"more", **{"Content-Encoding": "deflate"})
        assert status == 400 and "4 bytes follow the end of the deflate data" in message(answer)
        served.still_serving()
        served.stop_and_check()

    def test_too_many_gzip_members_are_a_400(self, served: Served) -> None:
        body = gzip.compress(b"") * (MAX_GZIP_MEMBERS + 1)
        status, _, answer = post(served, body, **{"Content-Encoding": "gzip"})
        assert status == 400 and f"more than {MAX_GZIP_MEMBERS:,} gzip members" in message(answer)
        served.still_serving()
        served.stop_and_check()

    @pytest.mark.parametrize("members", [1, 40])
    def test_a_gzip_bomb_in_one_or_many_members_is_a_413(self, served: Served, members: int) -> None:
        body = b"".join(gzip.compress(b"\0" * (8 * LIMIT // members)) for _ in range(members))
        status, _, answer = post(served, body, **{"Content-Encoding": "gzip"})
        assert status == 413 and "inflates past the 1,048,576-byte limit" in message(answer)
        served.still_serving()
        served.stop_and_check()


# --------------------------------------------------------------------------- JSON: nesting, integers, huge values


def _span_json(request_json: dict) -> tuple[dict, dict]:
    copy = json.loads(json.dumps(request_json))
    return copy, copy["resourceSpans"][0]["scopeSpans"][0]["spans"][0]


class TestJSONContent:
    @pytest.mark.parametrize("depth", [150, 1_000])
    def test_json_nested_too_deep_is_a_400_not_a_500(
        self, served: Served, request_json: dict, depth: int
    ) -> None:
        """An attribute 1,000 arrays deep answered 500 with a traceback (clients do not retry a 500)."""
        obj, span = _span_json(request_json)
        span["attributes"] = [{"key": "deep", "value": "@"}]
        value = '{"stringValue": "x"}'
        for _ in range(depth):
            value = '{"arrayValue": {"values": [' + value + "]}}"
        status, _, answer = post(served, json.dumps(obj).replace('"@"', value).encode(), JSON)
        assert status == 400 and "nested too deeply" in message(answer, JSON), message(answer, JSON)
        served.still_serving()
        served.stop_and_check()

    def test_json_nested_past_the_json_reader_is_a_400(self, served: Served, request_json: dict) -> None:
        obj, _ = _span_json(request_json)
        obj["unknown"] = "@"
        body = json.dumps(obj).replace('"@"', "[" * 100_000 + "]" * 100_000).encode()
        status, _, answer = post(served, body, JSON)
        assert status == 400 and "the JSON body is nested too deeply" in message(answer, JSON)
        served.still_serving()
        served.stop_and_check()

    @pytest.mark.parametrize("value", ["5_0", "+5", "\t5", "1e3", "５"])
    def test_lenient_integers_are_a_400(self, served: Served, request_json: dict, value: str) -> None:
        obj, span = _span_json(request_json)
        span["startTimeUnixNano"] = value
        status, _, answer = post(served, json.dumps(obj).encode(), JSON)
        assert status == 400
        assert "spans[0].startTimeUnixNano" in message(answer, JSON) and "is not an integer" in message(
            answer, JSON
        )
        obj, span = _span_json(request_json)
        span["attributes"] = [{"key": "n", "value": {"intValue": value}}]
        status, _, answer = post(served, json.dumps(obj).encode(), JSON)
        assert status == 400 and "attributes[0].value.intValue" in message(answer, JSON)
        served.still_serving()
        served.stop_and_check()

    def test_a_huge_bad_value_is_not_echoed(self, served: Served, request_json: dict) -> None:
        """A 900 KB trace id came back whole in the 400 (and in the log)."""
        obj, span = _span_json(request_json)
        span["traceId"] = "z" * 900_000
        status, _, answer = post(served, json.dumps(obj).encode(), JSON)
        assert status == 400 and len(answer) < 1_000
        assert "traceId 'zzzz" in message(answer, JSON) and "(900,000 characters)" in message(answer, JSON)
        obj, span = _span_json(request_json)
        span["startTimeUnixNano"] = 7.5e300  # quoted by protobuf's own message
        span["name"] = {"x": "y" * 900_000}
        status, _, answer = post(served, json.dumps(obj).encode(), JSON)
        assert status == 400 and len(answer) < 2_000
        served.still_serving()
        served.stop_and_check()

    def test_a_span_ending_before_it_starts_is_rejected_alone(
        self, served: Served, request_json: dict
    ) -> None:
        """It was stored with a negative duration. The rule: rejected (partial success), never clamped."""
        obj, span = _span_json(request_json)
        span["endTimeUnixNano"] = str(int(span["startTimeUnixNano"]) - 1)
        status, _, answer = post(served, json.dumps(obj).encode(), JSON)
        assert status == 200
        partial = json.loads(answer)["partialSuccess"]
        assert partial["rejectedSpans"] == "1"
        assert (
            "spans[0]: endTimeUnixNano" in partial["errorMessage"]
            and "before startTimeUnixNano" in partial["errorMessage"]
        )
        served.accepted += SPANS_PER_REQUEST - 1
        stored = served.stop_and_check()
        assert all(row["duration_ns"] >= 0 for row in stored)


# --------------------------------------------------------------------------- slow and many clients


def _drip(served: Served, prefix: bytes, drip: bytes, *, count: int = 200, pause: float = 0.05) -> bytes:
    """Send ``prefix`` then ``drip`` a byte at a time; returns what the server answered when it gave up on us."""
    sock = socket.create_connection(served.address, timeout=30)
    try:
        sock.sendall(prefix)
        for i in range(count):
            try:
                sock.sendall(drip[i % len(drip) : i % len(drip) + 1])
            except OSError:
                break
            time.sleep(pause)
        else:
            pytest.fail(
                f"the receiver kept a connection sending a byte every {pause} s for {count * pause:g} s"
            )
        try:
            return sock.recv(65536)
        except OSError:
            return b""
    finally:
        sock.close()


class TestSlowAndManyClients:
    def test_a_slowloris_header_drip_is_cut_off(self, served: Served) -> None:
        """Headers a byte at a time never time out per recv; the request's deadline (1 s here) ends it."""
        outcome: list[BaseException | bytes] = []

        def attack() -> None:
            try:
                outcome.append(_drip(served, b"POST /v1/traces HTTP/1.1\r\n", b"X-Slow: aaaaaaaa\r\n"))
            except BaseException as exc:  # pytest.fail in a thread: reported below
                outcome.append(exc)

        thread = threading.Thread(target=attack)
        thread.start()
        served.still_serving()  # while the drip goes on
        thread.join()
        assert outcome == [b""]  # closed without an answer (the stdlib's "Request timed out")
        served.stop_and_check()

    def test_a_slow_body_gets_a_408_and_the_connection_closed(self, served: Served) -> None:
        answer = _drip(served, head("60000"), b"x", count=400)
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408")
        served.still_serving()
        served.stop_and_check()

    def test_connections_past_the_cap_get_a_503_and_idle_ones_are_closed(
        self, tmp_path: Path, good: bytes
    ) -> None:
        served = make(tmp_path, good, max_connections=8)
        try:
            idle = [socket.create_connection(served.address, timeout=30) for _ in range(8)]
            while served.receiver.server.open_connections < 8:  # the acceptor has taken them all
                time.sleep(0.01)
            sock = socket.create_connection(served.address, timeout=30)
            response = http.client.HTTPResponse(sock)
            response.begin()  # answered without being read: no thread for it
            status, headers, body = response.status, dict(response.getheaders()), response.read()
            sock.close()
            assert status == 503 and headers["Retry-After"] == "1"
            assert "too many connections (--max-connections 8)" in json.loads(body)["message"]
            served.still_serving(attempts=100)  # the idle ones are closed after --read-timeout
            for sock in idle:
                assert sock.recv(100) == b""  # closed by the server, never answered
                sock.close()
            assert served.receiver.stats()["refused"]["503"] >= 1
        finally:
            served.stop_and_check()

    def test_decoding_past_the_budget_gets_a_503_with_retry_after(self, tmp_path: Path, good: bytes) -> None:
        """Decoding memory is weighed by body size: a full budget refuses, a small request fits beside a big one."""
        served = make(tmp_path, good, max_concurrent_decodes=1)
        budget = served.receiver.decode_budget
        try:
            assert budget.reserve(budget.limit, timeout=1)  # full-size requests are being decoded
            status, headers, body = post(served, good)
            assert status == 503 and headers["Retry-After"] == "1"
            assert "decoding as much as --max-concurrent-decodes 1 full-size requests take" in message(body)
            budget.release(budget.limit)
            assert budget.reserve(budget.limit - 28 * len(good), timeout=1)  # all but room for this one
            served.still_serving(attempts=1)
            budget.release(budget.limit - 28 * len(good))
        finally:
            served.stop_and_check()

    def test_bodies_past_the_byte_budget_get_a_503(self, tmp_path: Path, good: bytes) -> None:
        served = make(tmp_path, good)
        budget = served.receiver.body_budget
        try:
            assert budget.reserve(budget.limit, timeout=1)  # other requests' bodies fill the budget
            status, headers, body = post(served, good)
            assert (
                status == 503
                and headers["Retry-After"] == "1"
                and "bytes of request bodies already" in message(body)
            )
            budget.release(budget.limit)
            served.still_serving()
        finally:
            served.stop_and_check()

    def test_many_concurrent_clients_all_land(self, tmp_path: Path, good: bytes) -> None:
        served = make(tmp_path, good, max_concurrent_decodes=2, max_connections=16)
        errors: list[BaseException] = []
        lock = threading.Lock()

        def client() -> None:
            try:
                for _ in range(5):
                    served.still_serving(attempts=200)
            except BaseException as exc:
                with lock:
                    errors.append(exc)

        threads = [threading.Thread(target=client) for _ in range(32)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        assert served.accepted == 32 * 5 * SPANS_PER_REQUEST
        served.stop_and_check()


# --------------------------------------------------------------------------- back-pressure and days


class TestBackPressureAndDays:
    def test_pending_rows_at_their_cap_get_429_and_nothing_is_lost(
        self, tmp_path: Path, good: bytes, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The store cannot be written: rows wait up to the cap, then clients get 429 + Retry-After."""
        served = make(tmp_path, good, flush_rows=10)  # cap: 40 rows
        real_write = served.receiver.writer.write
        failing = threading.Event()
        failing.set()

        def write(name: str, table: object) -> object:
            if failing.is_set():
                raise StoreError("disk full (simulated)")
            return real_write(name, table)

        monkeypatch.setattr(served.receiver.writer, "write", write)
        try:
            codes = []
            while 429 not in codes and len(codes) < 10:
                status, headers, body = post(served, good)
                codes.append(status)
                if status == 200:
                    served.accepted += SPANS_PER_REQUEST
                else:
                    assert status == 429 and headers["Retry-After"] == "1"
                    assert "at their cap (--max-pending-mb); retry later" in message(body)
            assert codes.count(200) >= 3 and codes[-1] == 429  # 45 rows reached the cap of 40
            assert served.receiver.batcher.pending() == served.accepted
            failing.clear()  # the disk is back: the flusher writes what waited, clients retry
            served.still_serving(attempts=100)
            served.still_serving(attempts=100)
        finally:
            served.stop_and_check()

    def test_spans_on_too_many_days_are_refused_without_writing_a_file(
        self, tmp_path: Path, request_json: dict
    ) -> None:
        """2,000 different days in one 110 KB request created over a thousand fsynced Parquet files."""
        base = request_from_json(request_json)[1]
        served = make(tmp_path, base.SerializeToString(), max_days_per_request=32)
        try:
            spans = base.resource_spans[0].scope_spans[0].spans
            template = trace_service_pb2.ExportTraceServiceRequest()
            template.CopyFrom(base)
            target = template.resource_spans[0].scope_spans[0].spans
            del target[:]
            for day in range(2_000):
                span = target.add()
                span.CopyFrom(spans[day % len(spans)])
                span.span_id = day.to_bytes(8, "big")
                span.start_time_unix_nano = 1_700_000_000 * 10**9 + day * 86_400 * 10**9
                span.end_time_unix_nano = span.start_time_unix_nano + 1000
            status, _, body = post(served, template.SerializeToString())
            assert status == 400
            assert (
                "fall on 2,000 different days, more than 32 per request (--max-days-per-request"
                in message(body)
            )
            del target[32:]
            status, _, body = post(served, template.SerializeToString())
            assert status == 200
            served.accepted += 32
            served.still_serving()
        finally:
            stored = served.stop_and_check()
        folders = {p.name for p in (Path(served.receiver.root) / "spans").iterdir()}
        assert len(folders) <= 33 and len(stored) == 32 + SPANS_PER_REQUEST


# --------------------------------------------------------------------------- limits


class TestLimits:
    def test_the_decodes_at_once_follow_from_the_memory_budget(self) -> None:
        assert Limits.resolve().max_concurrent_decodes == 1  # 1024 MB, 20 MB bodies
        limits = Limits.resolve(max_body=4 << 20, memory_mb=1024)
        assert limits.max_concurrent_decodes == 6 and limits.bound_mb <= 1024
        assert Limits.resolve(max_concurrent_decodes=3).max_concurrent_decodes == 3

    def test_a_budget_too_small_for_one_request_is_refused_at_start(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with pytest.raises(
            ConfigurationError, match=r"memory_mb 256 cannot hold one request of --max-body-mb 20"
        ):
            Limits.resolve(memory_mb=256)
        monkeypatch.setenv("LANGSWARM_RECEIVER_MAX_CONNECTIONS", "many")
        with pytest.raises(
            ConfigurationError, match="LANGSWARM_RECEIVER_MAX_CONNECTIONS='many' is not a whole number"
        ):
            Limits.resolve()
        monkeypatch.setenv("LANGSWARM_RECEIVER_MAX_CONNECTIONS", "12")
        assert Limits.resolve().max_connections == 12
        assert Limits.resolve(max_connections=5).max_connections == 5
        with pytest.raises(ConfigurationError, match="read_timeout_s must be positive"):
            Limits.resolve(read_timeout=0)


class TestTheImporterFollowsTheSameRules:
    def test_a_span_ending_before_it_starts_is_rejected_by_the_import_too(
        self, tmp_path: Path, request_json: dict
    ) -> None:
        """The fast JSON Lines path hands such a line to the exact path, which rejects it, never clamps."""
        obj, span = _span_json(request_json)
        span["endTimeUnixNano"] = str(int(span["startTimeUnixNano"]) - 1)
        source = tmp_path / "spans.jsonl"
        source.write_text(json.dumps(request_json) + "\n" + json.dumps(obj) + "\n")
        [report] = Importer(tmp_path / "store", progress=False, durable=False).import_paths([source])
        assert report.written == {"spans": SPANS_PER_REQUEST}
        [record] = [
            r for path in (tmp_path / "store" / "_rejected").glob("*.jsonl") for r in read_rejected(path)
        ]
        assert record["line"] == 2 and "before startTimeUnixNano" in record["reason"]
        assert all(row["duration_ns"] >= 0 for row in spans_in(tmp_path / "store"))

    def test_lenient_integers_are_rejected_by_the_import_too(
        self, tmp_path: Path, request_json: dict
    ) -> None:
        obj, span = _span_json(request_json)
        span["startTimeUnixNano"] = "1_700_000_000_000_000_000"
        source = tmp_path / "spans.jsonl"
        source.write_text(json.dumps(obj) + "\n")
        [report] = Importer(tmp_path / "store", progress=False, durable=False).import_paths([source])
        assert report.written == {}
        [record] = [
            r for path in (tmp_path / "store" / "_rejected").glob("*.jsonl") for r in read_rejected(path)
        ]
        assert "startTimeUnixNano '1_700_000_000_000_000_000' is not an integer" in record["reason"]


@pytest.mark.slow
def test_the_abuse_bench_runs_small_and_loses_nothing() -> None:
    """bench/receiver_abuse.py with one client of each kind for a few seconds: exit 0, spans sent = stored."""
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [
            sys.executable,
            "bench/receiver_abuse.py",
            "--clients",
            "16",
            "--seconds",
            "3",
            "--baseline-seconds",
            "1",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    sent, stored = re.search(
        r"well-behaved spans sent ([\d,]+), stored ([\d,]+) \(equal\)", result.stdout
    ).groups()
    assert sent == stored and int(sent.replace(",", "")) > 0
    assert re.search(r"server peak RSS [\d,]+ MB .*documented bound 918 MB", result.stdout)

"""Bad requests to the OTLP/HTTP receiver: clear 4xx answers, the server keeps serving, nothing valid is lost."""

from __future__ import annotations

import gzip
import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from ingest.sources.otlp import request_from_json
from ingest.sources.receiver import Receiver
from ingest.store.rejects import read_rejected
from tests.otlp_samples import otlp_spans, sdk_spans, to_otlp_json

PB = "application/x-protobuf"
JSON = "application/json"


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    """An in-process receiver on a free port with a 1 MB body limit."""
    instance = Receiver(str(tmp_path / "store"), port=0, max_body=1 << 20, durable=False)
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="module")
def request_json() -> dict:
    return to_otlp_json(otlp_spans(sdk_spans()))


def post(
    receiver: Receiver, path: str, body: bytes, content_type: str = PB, **headers: str
) -> tuple[int, bytes]:
    host, port = receiver.address
    connection = http.client.HTTPConnection(host, port, timeout=30)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": content_type, **headers})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def status_message(body: bytes, content_type: str = PB) -> str:
    if content_type == JSON:
        return json.loads(body)["message"]
    return status_pb2.Status.FromString(body).message


def spans_in(store: Path) -> list[dict]:
    folder = store / "spans"
    return ds.dataset(folder, format="parquet").to_table().to_pylist() if folder.exists() else []


class TestMalformedRequests:
    def test_every_kind_of_bad_request_gets_a_clear_4xx_and_valid_data_still_lands(
        self, receiver: Receiver, request_json: dict
    ) -> None:
        good = request_from_json(request_json)[1].SerializeToString()
        base64_ids = json.loads(json.dumps(request_json))
        span = base64_ids["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
        span["traceId"] = "W47/95gDgQPSabYzgT/GDA=="
        cases = [
            ("/v1/traces", b"\xff\x00 not protobuf", PB, {}, 400, "not a valid protobuf"),
            ("/v1/traces", b"{not json", JSON, {}, 400, "not valid JSON"),
            (
                "/v1/traces",
                json.dumps({"resourceSpans": "x"}).encode(),
                JSON,
                {},
                400,
                "resourceSpans must be an array",
            ),
            ("/v1/traces", json.dumps([1, 2]).encode(), JSON, {}, 400, "expected a JSON object"),
            ("/v1/traces", json.dumps(base64_ids).encode(), JSON, {}, 400, "looks like base64"),
            ("/v1/traces", gzip.compress(good)[:-20], PB, {"Content-Encoding": "gzip"}, 400, "gzip"),
            ("/v1/traces", b"x" * (2 << 20), PB, {}, 413, "limit"),
            ("/v1/traces", gzip.compress(b"\0" * (8 << 20)), PB, {"Content-Encoding": "gzip"}, 413, "limit"),
            ("/v1/traces", good, "text/plain", {}, 415, "Content-Type"),
            ("/v1/traces", good, PB, {"Content-Encoding": "br"}, 415, "Content-Encoding"),
            ("/v1/spans", good, PB, {}, 404, "/v1/traces"),
        ]
        for path, body, content_type, headers, code, words in cases:
            status, answer = post(receiver, path, body, content_type, **headers)
            assert status == code, (path, content_type, headers, answer)
            reply_type = JSON if content_type == JSON else PB
            assert words in status_message(answer, reply_type), (code, status_message(answer, reply_type))
        status, answer = post(receiver, "/v1/traces", good)
        assert (
            status == 200
            and trace_service_pb2.ExportTraceServiceResponse.FromString(answer).partial_success.rejected_spans
            == 0
        )
        status, _ = post(
            receiver,
            "/v1/traces",
            gzip.compress(json.dumps(request_json).encode()),
            JSON,
            **{"Content-Encoding": "gzip"},
        )
        assert status == 200
        receiver.stop()
        stored = spans_in(Path(receiver.root))
        assert len(stored) == 30  # the protobuf and the JSON copy of the 15 valid spans, nothing else
        expected = {
            (s["traceId"], s["spanId"]) for s in request_json["resourceSpans"][0]["scopeSpans"][0]["spans"]
        }
        assert {(s["trace_id"], s["span_id"]) for s in stored} == expected
        rejected = [
            r for path in (Path(receiver.root) / "_rejected").glob("*.jsonl") for r in read_rejected(path)
        ]
        assert len(rejected) == 8 and all(r["reason"].startswith("HTTP 4") for r in rejected)
        assert receiver.stats()["rejected_requests"] == 8

    def test_partial_success_counts_and_names_the_rejected_spans(
        self, receiver: Receiver, request_json: dict
    ) -> None:
        request = request_from_json(request_json)[1]
        request.resource_spans[0].scope_spans[0].spans[3].trace_id = b"\x01\x02\x03"
        request.resource_spans[0].scope_spans[0].spans[5].span_id = b""
        status, answer = post(receiver, "/v1/traces", request.SerializeToString())
        assert status == 200
        partial = trace_service_pb2.ExportTraceServiceResponse.FromString(answer).partial_success
        assert partial.rejected_spans == 2
        assert (
            "spans[3]: traceId has 3 bytes" in partial.error_message
            and "spans[5]: spanId has 0 bytes" in partial.error_message
        )
        status, answer = post(receiver, "/v1/traces", json.dumps(request_json).encode(), JSON)
        assert status == 200 and json.loads(answer) == {}
        receiver.stop()
        assert len(spans_in(Path(receiver.root))) == 13 + 15

    def test_get_reports_counters(self, receiver: Receiver) -> None:
        host, port = receiver.address
        connection = http.client.HTTPConnection(host, port, timeout=30)
        connection.request("GET", "/")
        stats = json.loads(connection.getresponse().read())
        connection.close()
        assert stats["rejected_requests"] == 0 and stats["pending_rows"] == 0


def test_binds_to_loopback_by_default(tmp_path: Path) -> None:
    instance = Receiver(str(tmp_path / "store"), port=0)
    try:
        assert instance.address[0] == "127.0.0.1"
    finally:
        instance.server.server_close()
        instance.batcher.close()

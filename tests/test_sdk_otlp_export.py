"""The provider's OTLP export of all three signals, against the real receiver with a required header.

``tracing.headers`` (e.g. an API key for a hosted backend) must reach the log and metric exporters
too: before one table built every signal's exporter, only spans carried it and a receiver that checks
the key refused the logs and metrics (they were lost).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pyarrow.dataset as ds
import pytest
import requests

from ingest.sources.receiver import Receiver

REPO = Path(__file__).resolve().parents[1]
KEY = "s3cret-key"


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    """A receiver on a free port that requires ``X-Api-Key: s3cret-key`` on every request."""
    server = Receiver(
        str(tmp_path / "received"),
        port=0,
        flush_interval=0.05,
        durable=False,
        required_headers={"X-Api-Key": KEY},
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _otlp_config(url: str, headers: dict[str, str] | None) -> dict[str, Any]:
    tracing: dict[str, Any] = {"exporter": "otlp", "endpoint": url, "span_processor": "simple"}
    if headers is not None:
        tracing["headers"] = headers
    return {
        "tracing": tracing,
        "logging": {"exporter": "otlp", "endpoint": url},
        "metrics": {"exporter": "otlp", "endpoint": url, "export_interval": 3600},
    }


def _emit_all(provider: Any) -> None:
    with provider.get_tracer("checkout").start_span("POST /order", attributes={"order": 7}):
        provider.get_logger("checkout").info("order placed", order=7)
    provider.get_metrics("checkout").increment_counter("orders_total", labels={"region": "eu"})
    assert provider.force_flush(5_000) is not None


def _rows(root: Path, table: str) -> list[dict[str, Any]]:
    if not (root / table).exists():
        return []
    return ds.dataset(root / table, format="parquet", partitioning="hive").to_table().to_pylist()


def test_headers_reach_span_log_and_metric_exporters(
    receiver: Receiver, make_provider: Callable[..., Any]
) -> None:
    host, port = receiver.address
    provider = make_provider(_otlp_config(f"http://{host}:{port}", {"x-api-key": KEY}), "shop")
    _emit_all(provider)
    provider.shutdown()
    receiver.stop()

    assert receiver.stats()["rejected_requests"] == 0
    root = receiver.root
    spans = _rows(root, "spans")
    assert [(s["name"], s["service_name"]) for s in spans] == [("POST /order", "shop")]
    logs = _rows(root, "logs")
    assert [r["body"] for r in logs] == ["order placed"] and dict(logs[0]["attributes"])["order"] == "7"
    orders = [m for m in _rows(root, "metrics") if m["name"] == "orders_total"]
    # A cumulative counter: one point per collection (force_flush, shutdown), each the running total.
    assert orders and {(m["value"], tuple(dict(m["attributes"]).items())) for m in orders} == {
        (1.0, (("region", "eu"),))
    }
    failed = [e.failed for e in provider.span_exporters + provider.log_exporters]
    assert failed == [0, 0] and provider.counters.by_reason("metric_points") == {}


def test_without_the_header_the_receiver_refuses_every_signal(
    receiver: Receiver, make_provider: Callable[..., Any]
) -> None:
    host, port = receiver.address
    provider = make_provider(_otlp_config(f"http://{host}:{port}", None), "shop")
    _emit_all(provider)
    provider.shutdown()
    receiver.stop()

    assert receiver.stats()["requests"] == {}
    assert all(_rows(receiver.root, table) == [] for table in ("spans", "logs", "metrics"))
    assert [e.failed for e in provider.span_exporters + provider.log_exporters] == [1, 1]
    assert provider.counters.by_reason("metric_points").get("export_failed", 0) >= 1


def test_refusal_is_a_401_with_a_readable_reason_before_the_body_is_read(receiver: Receiver) -> None:
    host, port = receiver.address
    url = f"http://{host}:{port}/v1/traces"
    wrong = requests.post(
        url, data=b"{}", headers={"Content-Type": "application/json", "X-Api-Key": "guess"}, timeout=10
    )
    assert wrong.status_code == 401
    assert "X-Api-Key" in wrong.json()["message"] and KEY not in wrong.text
    # A body that is not even JSON: the header decides first, so the answer is 401, not 400.
    missing = requests.post(url, data=b"not json", headers={"Content-Type": "application/json"}, timeout=10)
    assert missing.status_code == 401
    right = requests.post(
        url, data=b"{}", headers={"Content-Type": "application/json", "x-API-key": KEY}, timeout=10
    )
    assert right.status_code == 200


class _Recorder(BaseHTTPRequestHandler):
    """Answers every OTLP POST with 200 and records path, Content-Encoding and the custom headers."""

    seen: ClassVar[list[tuple[str, str, tuple[tuple[str, str], ...]]]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        custom = tuple(sorted((k.lower(), v) for k, v in self.headers.items() if k.lower() in ("a", "b")))
        self.seen.append((self.path, self.headers.get("Content-Encoding", "identity"), custom))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_every_signal_gets_its_endpoint_headers_and_compression(make_provider: Callable[..., Any]) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    _Recorder.seen = []
    try:
        provider = make_provider(
            {
                "tracing": {
                    "exporter": "otlp",
                    "endpoint": url,
                    "headers": {"a": "1"},
                    "compression": "gzip",
                    "span_processor": "simple",
                },
                "logging": {"exporter": "otlp", "endpoint": f"{url}/custom/logs"},
                "metrics": {
                    "exporter": "otlp",
                    "endpoint": url,
                    "headers": {"b": "2"},
                    "compression": "deflate",
                    "export_interval": 3600,
                },
            }
        )
        _emit_all(provider)
        provider.shutdown()
    finally:
        server.shutdown()
        server.server_close()
    assert set(_Recorder.seen) >= {
        ("/v1/traces", "gzip", (("a", "1"),)),
        ("/custom/logs", "gzip", (("a", "1"),)),
        ("/v1/metrics", "deflate", (("b", "2"),)),
    }
    assert {path for path, _, _ in _Recorder.seen} == {"/v1/traces", "/custom/logs", "/v1/metrics"}


def test_unset_log_and_metric_settings_inherit_tracing() -> None:
    from ingest.sdk.config import resolve_config

    cfg = resolve_config(
        {
            "tracing": {"headers": {"k": "v"}, "compression": "gzip", "export_timeout_millis": 1234},
            "metrics": {"export_timeout_millis": 99},
        },
        "svc",
    )
    assert [cfg[s]["headers"] for s in ("tracing", "logging", "metrics")] == [{"k": "v"}] * 3
    assert [cfg[s]["compression"] for s in ("tracing", "logging", "metrics")] == ["gzip"] * 3
    assert [cfg[s]["export_timeout_millis"] for s in ("tracing", "logging", "metrics")] == [1234, 1234, 99]


def test_serve_require_header_flag(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ingest",
            "serve",
            "--store",
            str(tmp_path / "s"),
            "--port",
            "0",
            "--workers",
            "1",
            "--require-header",
            "X-Api-Key=abc",
            "--require-header",
            "X-Tenant=t1",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", process.stdout.readline())
        assert match
        url = f"{match.group(1)}/v1/logs"
        json_type = {"Content-Type": "application/json"}
        only_key = requests.post(url, data=b"{}", headers={**json_type, "X-Api-Key": "abc"}, timeout=10)
        both = requests.post(
            url, data=b"{}", headers={**json_type, "X-Api-Key": "abc", "X-Tenant": "t1"}, timeout=10
        )
        assert (only_key.status_code, both.status_code) == (401, 200)
        assert "X-Tenant" in only_key.json()["message"]
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    bad = subprocess.run(
        [sys.executable, "-m", "ingest", "serve", "--require-header", "no-equals-sign"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "NAME=VALUE" in bad.stderr

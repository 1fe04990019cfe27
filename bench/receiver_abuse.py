"""The OTLP/HTTP receiver under abuse: does a well-behaved client still get every span stored?

``python -m ingest serve --workers 1`` runs in a subprocess with its default limits (or the ones given
here). ``--clients`` abusive clients hammer it from threads for ``--seconds`` (a bounded loop on
127.0.0.1), each with one kind of abuse, round robin: slowloris headers, a slow body, idle
connections, bad or huge Content-Length, bad or huge chunk sizes, gzip bombs (one and many members),
JSON nested too deep, a trace id of 900 KB, garbage protobuf, ambiguous framing, and heavy valid
requests (19 MB of protobuf spans, on 2,000 different days or on one). Meanwhile one well-behaved
client sends 100-span protobuf batches with unique span ids, retrying 408/429/503 and transport
errors as an OTLP exporter does (after ``Retry-After``).

Printed: the well-behaved client's spans sent and stored (must be equal), its median request latency
alone (the baseline, measured first in the same run) and under abuse, the server's peak RSS (VmHWM)
against the documented bound (``memory_bound_mb`` of the receiver's limits), and the refusals by
status, as the clients saw them and as the server counted them. Exit status 1 if a span is missing,
the server crashed, or the peak RSS passed the bound.

    .venv/bin/python bench/receiver_abuse.py --clients 200 --seconds 60
"""

from __future__ import annotations

import argparse
import collections
import gzip
import http.client
import json
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2  # noqa: E402

from ingest.sources.otlp import request_from_json  # noqa: E402
from tests.otlp_samples import otlp_spans, sdk_spans, to_otlp_json  # noqa: E402

PB = "application/x-protobuf"
JSON = "application/json"
GOOD_SERVICE = "well-behaved"


# --------------------------------------------------------------------------- payloads


def good_batch(batch: int, spans: int = 100) -> bytes:
    """``spans`` spans of service ``well-behaved`` with span ids unique to ``batch``."""
    request = trace_service_pb2.ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    attribute = resource_spans.resource.attributes.add()
    attribute.key, attribute.value.string_value = "service.name", GOOD_SERVICE
    scope = resource_spans.scope_spans.add()
    now = time.time_ns()
    for i in range(spans):
        span = scope.spans.add()
        span.trace_id = batch.to_bytes(8, "big") + b"\x00" * 7 + b"\x01"
        span.span_id = (batch * spans + i + 1).to_bytes(8, "big")
        span.name = "work"
        span.start_time_unix_nano = now
        span.end_time_unix_nano = now + 1000 + i
    return request.SerializeToString()


def payloads() -> dict[str, bytes]:
    """The abusive bodies, built once."""
    sample = request_from_json(to_otlp_json(otlp_spans(sdk_spans(n_traces=20))))[1]
    heavy = trace_service_pb2.ExportTraceServiceRequest()
    one = sample.SerializeToString()
    for _ in range((19 << 20) // len(one)):
        heavy.resource_spans.extend(sample.resource_spans)
    spread = trace_service_pb2.ExportTraceServiceRequest()
    spread.CopyFrom(heavy)
    day = 0
    for resource_spans in spread.resource_spans:
        for scope in resource_spans.scope_spans:
            for span in scope.spans:
                span.start_time_unix_nano = 1_600_000_000 * 10**9 + (day % 2_000) * 86_400 * 10**9
                span.end_time_unix_nano = span.start_time_unix_nano + 1
                day += 1
    obj = to_otlp_json(otlp_spans(sdk_spans()))
    deep_value = '{"stringValue": "x"}'
    for _ in range(1_000):
        deep_value = '{"arrayValue": {"values": [' + deep_value + "]}}"
    span = obj["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["attributes"] = [{"key": "deep", "value": "@"}]
    deep = json.dumps(obj).replace('"@"', deep_value).encode()
    span["attributes"] = []
    span["traceId"] = "z" * 900_000
    huge_id = json.dumps(obj).encode()
    bomb = gzip.compress(b"\0" * (64 << 20))
    return {
        "heavy_one_day": heavy.SerializeToString(),
        "heavy_2000_days": spread.SerializeToString(),
        "deep_json": deep,
        "huge_trace_id": huge_id,
        "gzip_bomb": bomb,
        "gzip_bomb_members": b"".join([gzip.compress(b"\0" * (1 << 20))] * 64),
        "garbage": bytes(range(256)) * 64,
    }


# --------------------------------------------------------------------------- clients


class Tally:
    """Responses seen by the abusive clients, by kind and status (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_status: collections.Counter[str] = collections.Counter()
        self.by_kind: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        self.longest: dict[str, float] = collections.defaultdict(float)

    def add(self, kind: str, outcome: str, seconds: float) -> None:
        with self.lock:
            self.by_status[outcome] += 1
            self.by_kind[kind][outcome] += 1
            self.longest[kind] = max(self.longest[kind], seconds)


def _status(sock: socket.socket) -> str:
    try:
        response = http.client.HTTPResponse(sock)
        response.begin()
        response.read()
        return str(response.status)
    except (OSError, http.client.HTTPException):
        return "closed"


def _raw(address: tuple[str, int], data: bytes) -> str:
    try:
        with socket.create_connection(address, timeout=30) as sock:
            sock.sendall(data)
            return _status(sock)
    except OSError:
        return "closed"


def _post(address: tuple[str, int], body: bytes, content_type: str = PB, **headers: str) -> str:
    connection = http.client.HTTPConnection(*address, timeout=120)
    try:
        connection.request("POST", "/v1/traces", body=body, headers={"Content-Type": content_type, **headers})
        response = connection.getresponse()
        answer = response.read()
        if response.status == 503 and b"decoding" in answer:
            return "503 decoding"
        if response.status == 503 and b"bodies" in answer:
            return "503 bodies"
        return str(response.status)
    except (OSError, http.client.HTTPException):
        return "closed"
    finally:
        connection.close()


def _drip(address: tuple[str, int], prefix: bytes, drip: bytes, stop: float) -> str:
    try:
        with socket.create_connection(address, timeout=30) as sock:
            sock.sendall(prefix)
            while time.monotonic() < stop:
                try:
                    sock.sendall(drip)
                except OSError:
                    break
                time.sleep(0.5)
            sock.settimeout(2)
            return _status(sock)
    except OSError:
        return "closed"


def _idle(address: tuple[str, int], stop: float) -> str:
    try:
        with socket.create_connection(address, timeout=30) as sock:
            sock.settimeout(max(0.1, stop - time.monotonic()))
            try:
                data = sock.recv(4096)
            except TimeoutError:
                return "still open at the end"
            return data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/") else "closed"
    except OSError:
        return "closed"


def _head(length: str | None, extra: str = "") -> bytes:
    lines = ["POST /v1/traces HTTP/1.1", "Host: x", f"Content-Type: {PB}"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


KINDS = [
    "slowloris_headers",
    "slow_body",
    "idle_connection",
    "negative_length",
    "lenient_length",
    "huge_length",
    "negative_chunk",
    "huge_chunk",
    "gzip_bomb",
    "gzip_bomb_members",
    "deep_json",
    "huge_trace_id",
    "garbage",
    "ambiguous_framing",
    "heavy_2000_days",
    "heavy_one_day",
]


def abuse(kind: str, address: tuple[str, int], bodies: dict[str, bytes], stop: float, tally: Tally) -> None:
    """One abusive client: its kind of abuse, again and again until ``stop``."""
    chunked = "Transfer-Encoding: chunked\r\n"
    while time.monotonic() < stop:
        started = time.monotonic()
        if kind == "slowloris_headers":
            outcome = _drip(address, b"POST /v1/traces HTTP/1.1\r\n", b"X", stop)
        elif kind == "slow_body":
            outcome = _drip(address, _head(str(1 << 20)), b"x" * 16, stop)
        elif kind == "idle_connection":
            outcome = _idle(address, stop)
        elif kind == "negative_length":
            outcome = _raw(address, _head("-1") + b"x" * 4096)
        elif kind == "lenient_length":
            outcome = _raw(address, _head("4_0") + b"x" * 40)
        elif kind == "huge_length":
            outcome = _raw(address, _head(str(1 << 40)))
        elif kind == "negative_chunk":
            outcome = _raw(address, _head(None, chunked) + b"-1\r\n" + b"x" * 4096)
        elif kind == "huge_chunk":
            outcome = _raw(address, _head(None, chunked) + b"7fffffffffff\r\n" + b"x" * 4096)
        elif kind in ("gzip_bomb", "gzip_bomb_members"):
            outcome = _post(address, bodies[kind], **{"Content-Encoding": "gzip"})
        elif kind in ("deep_json", "huge_trace_id"):
            outcome = _post(address, bodies[kind], JSON)
        elif kind == "garbage":
            outcome = _post(address, bodies["garbage"])
        elif kind == "ambiguous_framing":
            outcome = _raw(address, _head("5", chunked) + b"5\r\nhello\r\n0\r\n\r\n")
        else:
            outcome = _post(address, bodies[kind])
        tally.add(kind, outcome, time.monotonic() - started)
        if outcome in ("429", "503", "closed"):
            time.sleep(0.2)


class WellBehaved:
    """Sends unique 100-span batches until ``stop``; retries each until it is answered 200."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.sent = 0
        self.batches = 0
        self.latencies: list[float] = []
        self.retries: collections.Counter[str] = collections.Counter()

    def run(self, stop: float, give_up: float) -> list[float]:
        latencies: list[float] = []
        while time.monotonic() < stop:
            body = good_batch(self.batches)
            self.batches += 1
            started = time.perf_counter()
            while True:
                outcome = _post(self.address, body)
                if outcome == "200":
                    break
                self.retries[outcome] += 1
                if time.monotonic() > give_up:
                    raise SystemExit(f"the well-behaved client gave up on a batch: {dict(self.retries)}")
                time.sleep(1.0)  # Retry-After: 1
            latencies.append(time.perf_counter() - started)
            self.sent += 100
            time.sleep(0.05)
        return latencies


# --------------------------------------------------------------------------- server


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def stats(address: tuple[str, int]) -> dict:
    connection = http.client.HTTPConnection(*address, timeout=60)
    try:
        connection.request("GET", "/")
        return json.loads(connection.getresponse().read())
    finally:
        connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200, help="abusive clients (default 200)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long they abuse (default 60)")
    parser.add_argument(
        "--baseline-seconds", type=float, default=5.0, help="well-behaved client alone first (default 5)"
    )
    parser.add_argument(
        "--serve-args", default="", help="extra `ingest serve` options, e.g. '--memory-mb 512'"
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="receiver-abuse-"))
    store = work / "store"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ingest",
            "serve",
            "--store",
            str(store),
            "--port",
            "0",
            "--workers",
            "1",
            *args.serve_args.split(),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        match = re.search(r"http://([\d.]+):(\d+)", line)
        if not match:
            raise SystemExit(f"receiver did not start: {line} {process.stderr.read()}")
        address = (match.group(1), int(match.group(2)))
        bound = stats(address)["limits"]["memory_bound_mb"]
        bodies = payloads()
        good = WellBehaved(address)
        alone = good.run(time.monotonic() + args.baseline_seconds, time.monotonic() + 600)
        rss_alone = peak_rss_mb(process.pid)

        tally = Tally()
        stop = time.monotonic() + args.seconds
        threads = [
            threading.Thread(
                target=abuse, args=(KINDS[i % len(KINDS)], address, bodies, stop, tally), daemon=True
            )
            for i in range(args.clients)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        under = good.run(stop, stop + 600)
        for thread in threads:
            thread.join(timeout=120)
        abused_for = stop - started
        drained_after = time.monotonic() - stop
        crashed = process.poll() is not None
        server = {} if crashed else stats(address)
        peak = peak_rss_mb(process.pid)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=600)
    finally:
        if process.poll() is None:
            process.kill()

    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    spans = ds.dataset(store / "spans", format="parquet") if (store / "spans").exists() else None
    stored = 0
    if spans is not None:
        table = spans.to_table(
            columns=["service_name", "span_id"], filter=pc.field("service_name") == GOOD_SERVICE
        )
        stored = len(set(table.column("span_id").to_pylist()))
    shutil.rmtree(work, ignore_errors=True)

    print(
        f"{args.clients} abusive clients for {abused_for:.0f} s ({len(KINDS)} kinds, round robin), one well-behaved "
        f"client; the last abusive request ended {drained_after:.0f} s after that"
    )
    print(
        f"well-behaved spans sent {good.sent:,}, stored {stored:,} ({'equal' if stored == good.sent else 'MISSING'})"
    )
    print(
        f"well-behaved median latency: alone {statistics.median(alone) * 1000:.1f} ms, "
        f"under abuse {statistics.median(under) * 1000:.1f} ms "
        f"({statistics.median(under) / statistics.median(alone):.1f}x); retries {dict(good.retries)}"
    )
    print(
        f"server peak RSS {peak:,.0f} MB (idle with the baseline client {rss_alone:,.0f} MB), documented bound {bound:,} MB"
    )
    print("refusals seen by abusive clients, by status:", dict(sorted(tally.by_status.items())))
    for kind in KINDS:
        print(
            f"  {kind:20s} longest {tally.longest[kind]:5.1f} s  {dict(sorted(tally.by_kind[kind].items()))}"
        )
    print(
        "refusals counted by the server:",
        server.get("refused"),
        "peak body bytes",
        server.get("peak_body_bytes"),
    )
    failed = crashed or stored != good.sent or peak > bound or process.returncode != 0
    if failed:
        print(f"FAILED: crashed={crashed} exit={process.returncode} {err[-800:]}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Fixture stores for the explorer tests, built with ``ingest`` itself.

Spans and logs go through the real OTel SDK (TracerProvider, LoggerProvider) and the Parquet
exporters, with explicit timestamps so every duration and offset is known; SDK metrics go through a
MeterProvider and ParquetMetricExporter. The SDK cannot back-date metric points, profiles or alerts, so
time-spread metric series, ``profiles`` and ``alerts`` rows are written through
:class:`ingest.store.writer.StoreWriter` with the schemas of :mod:`ingest.store.schema`.

Hostile data on purpose: unicode names and values, a 200 KB attribute, mixed attribute types, nulls in
profile/alert/log rows, an orphan span whose parent was never exported, a counter reset, and a
2,000-span trace.
"""

from __future__ import annotations

import atexit
import functools
import random
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from ingest import ParquetLogExporter, ParquetMetricExporter, ParquetSpanExporter, StoreWriter
from ingest.store.encoding import table_from_columns

MS = 1_000_000
S = 1_000 * MS
BIG_TRACE_SPANS = 2_000
HUGE_VALUE = "x" * 200_000


class SeededIds(IdGenerator):
    """Deterministic random ids, so a rebuilt fixture store has the same trace ids."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def generate_span_id(self) -> int:
        return self._random.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self._random.getrandbits(128) or 1

    def is_trace_id_random(self) -> bool:
        return True


@dataclass
class StoreFacts:
    """What a fixture store holds, for tests to assert exact values."""

    root: Path
    base: datetime
    end: datetime
    span_count: int = 0
    trace_count: int = 0
    checkout_trace_id: str = ""
    checkout_span_ids: dict[str, str] = field(default_factory=dict)
    checkout_spans: int = 0
    correlation_id: str = "corr-42"
    big_trace_id: str = ""
    orphan_trace_id: str = ""
    orphan_span_id: str = ""
    missing_parent_id: str = ""
    unicode_trace_id: str = ""
    error_trace_ids: list[str] = field(default_factory=list)
    db_query_ns: int = 0


def _hex(span: trace.Span) -> tuple[str, str]:
    ctx = span.get_span_context()
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"


class _Telemetry:
    """The SDK providers of one fixture store: one TracerProvider per service resource, one LoggerProvider."""

    def __init__(self, writer: StoreWriter, seed: int) -> None:
        self.writer = writer
        self.ids = SeededIds(seed)
        self.span_exporter = ParquetSpanExporter(writer)
        self.log_exporter = ParquetLogExporter(writer)
        self.tracer_providers: dict[tuple[str, str], TracerProvider] = {}
        self.logger_providers: dict[str, LoggerProvider] = {}

    def tracer(self, service: str, version: str = "1.0") -> trace.Tracer:
        key = (service, version)
        if key not in self.tracer_providers:
            provider = TracerProvider(
                resource=Resource({"service.name": service, "service.version": version}),
                id_generator=self.ids,
            )
            provider.add_span_processor(
                BatchSpanProcessor(self.span_exporter, max_queue_size=65_536, max_export_batch_size=4_096)
            )
            self.tracer_providers[key] = provider
        return self.tracer_providers[key].get_tracer("tests.storegen", "1.0")

    def log(
        self,
        service: str,
        logger: str,
        t_ns: int,
        level: str,
        body: str | None,
        span: trace.Span | None = None,
        **attributes: object,
    ) -> None:
        if service not in self.logger_providers:
            provider = LoggerProvider(resource=Resource({"service.name": service}))
            provider.add_log_record_processor(
                BatchLogRecordProcessor(self.log_exporter, max_queue_size=65_536)
            )
            self.logger_providers[service] = provider
        severity = {
            "DEBUG": SeverityNumber.DEBUG,
            "INFO": SeverityNumber.INFO,
            "WARN": SeverityNumber.WARN,
            "ERROR": SeverityNumber.ERROR,
        }[level]
        context = trace.set_span_in_context(span) if span is not None else None
        self.logger_providers[service].get_logger(logger).emit(
            timestamp=t_ns,
            observed_timestamp=t_ns,
            context=context,
            severity_text=level,
            severity_number=severity,
            body=body,
            attributes=attributes or None,
        )

    def shutdown(self) -> None:
        for provider in self.tracer_providers.values():
            provider.force_flush()
        for provider in self.logger_providers.values():
            provider.force_flush()
        for provider in self.tracer_providers.values():
            provider.shutdown()
        for provider in self.logger_providers.values():
            provider.shutdown()
        if self.span_exporter.counts.dropped or self.log_exporter.counts.dropped:
            msg = f"fixture store lost rows: spans {self.span_exporter.counts.dropped}, logs {self.log_exporter.counts.dropped}"
            raise RuntimeError(msg)


def _ctx(span: trace.Span):
    return trace.set_span_in_context(span)


def _checkout_trace(t: _Telemetry, facts: StoreFacts, start: int, *, linked: SpanContext | None) -> None:
    """The known trace: frontend → cart (sub-ms db query) → payment (error with a stack trace), logs, links."""
    front = t.tracer("frontend", "1.1")
    cart = t.tracer("cart")
    payment = t.tracer("payment")
    links = [Link(linked, {"link.reason": "retry of"})] if linked is not None else []
    root = front.start_span(
        "POST /checkout",
        kind=SpanKind.SERVER,
        start_time=start,
        links=links,
        attributes={
            "correlation_id": facts.correlation_id,
            "http.route": "/checkout",
            "order.id": 42,
            "user.tier": "gold",
            "retry": False,
            "weights": [0.5, 1.5],
        },
    )
    facts.checkout_trace_id, facts.checkout_span_ids["root"] = _hex(root)
    t.log(
        "frontend",
        "frontend.http",
        start + 1 * MS,
        "INFO",
        "checkout started for order 42",
        root,
        correlation_id=facts.correlation_id,
    )
    load = front.start_span("cart.load", context=_ctx(root), kind=SpanKind.CLIENT, start_time=start + 2 * MS)
    facts.checkout_span_ids["cart.load"] = _hex(load)[1]
    query = cart.start_span(
        "db.query",
        context=_ctx(load),
        kind=SpanKind.CLIENT,
        start_time=start + 2 * MS + 300_000,
        attributes={"db.statement": "SELECT * FROM carts WHERE id = ?"},
    )
    facts.checkout_span_ids["db.query"] = _hex(query)[1]
    facts.db_query_ns = 250_000
    query.end(end_time=start + 2 * MS + 300_000 + facts.db_query_ns)
    load.end(end_time=start + 9 * MS)
    charge = payment.start_span(
        "payment.charge",
        context=_ctx(root),
        kind=SpanKind.CLIENT,
        start_time=start + 10 * MS,
        attributes={"correlation_id": facts.correlation_id},
    )
    facts.checkout_span_ids["payment.charge"] = _hex(charge)[1]
    charge.add_event("card.validated", {"card.brand": "visa"}, timestamp=start + 12 * MS)
    try:
        raise ValueError("card declined: insufficient funds")
    except ValueError as exc:
        charge.record_exception(exc, timestamp=start + 40 * MS)
    charge.set_status(Status(StatusCode.ERROR, "card declined"))
    t.log(
        "payment",
        "payment.gateway",
        start + 41 * MS,
        "ERROR",
        "card declined for order 42",
        charge,
        correlation_id=facts.correlation_id,
        amount=99.5,
    )
    charge.end(end_time=start + 45 * MS)
    root.set_status(Status(StatusCode.ERROR, "payment failed"))
    root.end(end_time=start + 50 * MS)
    facts.checkout_spans = 4
    facts.error_trace_ids.append(facts.checkout_trace_id)


def _regular_traces(t: _Telemetry, facts: StoreFacts, base_ns: int, rng: random.Random) -> SpanContext | None:
    """80 ordinary traces over the hour: two versions of the frontend, every tenth payment fails."""
    first: SpanContext | None = None
    for i in range(80):
        start = base_ns + i * 40 * S + rng.randrange(0, 5 * S)
        version = "1.0" if i < 40 else "1.1"
        slow = 1.0 if version == "1.0" else 1.6
        route = "GET /products" if i % 2 else "POST /checkout"
        front = t.tracer("frontend", version)
        root = front.start_span(
            route,
            kind=SpanKind.SERVER,
            start_time=start,
            attributes={"http.route": route.split()[1], "correlation_id": f"corr-{1000 + i}"},
        )
        if first is None:
            first = root.get_span_context()
        cursor = start + MS
        load = front.start_span("cart.load", context=_ctx(root), kind=SpanKind.CLIENT, start_time=cursor)
        q_start = cursor + 100_000
        q_ns = int(rng.uniform(0.2, 0.9) * MS)
        query = t.tracer("cart").start_span("db.query", context=_ctx(load), start_time=q_start)
        query.end(end_time=q_start + q_ns)
        cursor += int(rng.uniform(3, 8) * MS * slow)
        load.end(end_time=cursor)
        if route == "POST /checkout":
            charge = t.tracer("payment").start_span(
                "payment.charge", context=_ctx(root), start_time=cursor + MS
            )
            cursor += int(rng.uniform(20, 60) * MS * slow)
            if i % 10 == 0:
                charge.set_status(Status(StatusCode.ERROR, "gateway timeout"))
                charge.add_event(
                    "exception",
                    {
                        "exception.type": "TimeoutError",
                        "exception.message": "gateway timeout",
                        "exception.stacktrace": "Traceback (most recent call last):\n  TimeoutError",
                    },
                    timestamp=cursor,
                )
                facts.error_trace_ids.append(_hex(root)[0])
                t.log(
                    "payment", "payment.gateway", cursor, "ERROR", f"gateway timeout after retry {i}", charge
                )
            charge.end(end_time=cursor)
        t.log("frontend", "frontend.http", cursor, "INFO", f"{route} served", root)
        root.end(end_time=cursor + MS)
    return first


def _big_trace(t: _Telemetry, facts: StoreFacts, start: int) -> None:
    """A 2,000-span trace: 39 steps of 50 calls each, plus a 10-deep chain (deep and wide at once)."""
    tracer = t.tracer("batch-worker")
    root = tracer.start_span("batch.run", kind=SpanKind.CONSUMER, start_time=start)
    facts.big_trace_id = _hex(root)[0]
    made = 1
    cursor = start
    parent = root
    for depth in range(10):
        chain = tracer.start_span(
            f"chain.level{depth}", context=_ctx(parent), start_time=cursor + depth * 1000
        )
        chain.end(end_time=cursor + 5 * MS - depth * 1000)
        parent = chain
        made += 1
    steps = 39
    calls = (BIG_TRACE_SPANS - made - steps) // steps
    for s in range(steps):
        step = tracer.start_span("batch.step", context=_ctx(root), start_time=cursor, attributes={"step": s})
        made += 1
        for c in range(calls):
            call = tracer.start_span(
                "llm.call",
                context=_ctx(step),
                start_time=cursor + c * 100_000,
                attributes={"model": "gpt-4o" if c % 2 else "claude", "tokens": c},
            )
            call.end(end_time=cursor + c * 100_000 + 80_000)
            made += 1
        cursor += calls * 100_000 + 50_000
        step.end(end_time=cursor)
    assert made == BIG_TRACE_SPANS, made
    root.end(end_time=cursor + MS)


def _hostile_traces(t: _Telemetry, facts: StoreFacts, start: int) -> None:
    """Unicode, a huge attribute, mixed types and an orphan whose parent was never exported."""
    tracer = t.tracer("検索-service")
    span = tracer.start_span(
        "検索 🔍 query",
        start_time=start,
        attributes={
            "用户": "数据 ✓",
            "prompt": HUGE_VALUE,
            "n": 3,
            "ratio": 0.25,
            "ok": True,
            "tags": ["a", "ü"],
            "empty": "",
        },
    )
    facts.unicode_trace_id = _hex(span)[0]
    span.add_event("note ✎", {"emoji": "🚀"}, timestamp=start + MS)
    span.end(end_time=start + 3 * MS)
    t.log("検索-service", "検索.logger", start + MS, "WARN", "ünïcödé body 🚀 with 'quotes'", span)
    t.log("検索-service", "検索.logger", start + 2 * MS, "DEBUG", None, None)

    missing = SpanContext(
        trace_id=0xA1B2C3D4E5F60718293A4B5C6D7E8F90,
        span_id=0x0BADC0FFEE0DDF00D & (2**64 - 1),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    orphan = t.tracer("cart").start_span(
        "orphan.work", context=trace.set_span_in_context(NonRecordingSpan(missing)), start_time=start + 5 * MS
    )
    child = t.tracer("cart").start_span("orphan.child", context=_ctx(orphan), start_time=start + 6 * MS)
    child.end(end_time=start + 7 * MS)
    orphan.end(end_time=start + 8 * MS)
    facts.orphan_trace_id, facts.orphan_span_id = _hex(orphan)
    facts.missing_parent_id = f"{missing.span_id:016x}"


def _profiles(writer: StoreWriter, facts: StoreFacts, t_ns: int) -> None:
    """A cProfile-like call graph for the failing payment.charge span (totals and caller→callee edges)."""
    trace_id, span_id = facts.checkout_trace_id, facts.checkout_span_ids["payment.charge"]
    #          function,             file,               line, calls, self, cumulative, caller
    rows = [
        ("charge", "payment/api.py", 10, 1, 0.001, 0.040, None),
        ("validate_card", "payment/cards.py", 5, 1, 0.002, 0.004, None),
        ("call_gateway", "payment/gateway.py", 20, 3, 0.003, 0.033, None),
        ("json.dumps", None, None, 3, 0.001, 0.001, None),
        ("socket.recv", "<built-in>", 0, 12, 0.030, 0.030, None),
        ("validate_card", "payment/cards.py", 5, 1, 0.002, 0.004, "charge"),
        ("call_gateway", "payment/gateway.py", 20, 3, 0.003, 0.033, "charge"),
        ("json.dumps", None, None, 3, 0.001, 0.001, "call_gateway"),
        ("socket.recv", "<built-in>", 0, 12, 0.029, 0.029, "call_gateway"),
        ("socket.recv", "<built-in>", 0, 1, 0.001, 0.001, "validate_card"),
    ]
    n = len(rows)
    columns = {
        "timestamp": pa.array([t_ns] * n, pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
        "profile_id": ["prof-1"] * n,
        "trace_id": [trace_id] * n,
        "span_id": [span_id] * n,
        "service_name": ["payment"] * n,
        "operation": ["payment.charge"] * n,
        "function": [r[0] for r in rows],
        "file": [r[1] for r in rows],
        "line": [r[2] for r in rows],
        "calls": [r[3] for r in rows],
        "primitive_calls": [r[3] for r in rows],
        "self_time_s": [r[4] for r in rows],
        "cumulative_time_s": [r[5] for r in rows],
        "caller": [r[6] for r in rows],
        "caller_file": [
            {
                "charge": "payment/api.py",
                "call_gateway": "payment/gateway.py",
                "validate_card": "payment/cards.py",
            }.get(r[6])
            for r in rows
        ],
        "caller_line": [{"charge": 10, "call_gateway": 20, "validate_card": 5}.get(r[6]) for r in rows],
    }
    writer.write("profiles", table_from_columns("profiles", columns, n))


def _alerts(writer: StoreWriter, facts: StoreFacts, base_ns: int) -> None:
    """A critical alert that fired and resolved, a warning still firing, and one with null fields."""
    rows = [
        (
            base_ns + 20 * 60 * S,
            "a-1",
            "critical",
            "High error rate",
            "error_rate",
            0.12,
            0.05,
            ">",
            "firing",
            facts.correlation_id,
            facts.error_trace_ids[0],
            "payment",
        ),
        (
            base_ns + 30 * 60 * S,
            "a-1",
            "critical",
            "High error rate",
            "error_rate",
            0.02,
            0.05,
            ">",
            "resolved",
            facts.correlation_id,
            None,
            "payment",
        ),
        (
            base_ns + 40 * 60 * S,
            "a-2",
            "warning",
            "Slow LLM ⏱",
            "llm.latency_seconds",
            2.5,
            2.0,
            ">",
            "firing",
            None,
            None,
            "frontend",
        ),
        (
            base_ns + 45 * 60 * S,
            "a-3",
            "info",
            "Heartbeat ✓",
            None,
            None,
            None,
            None,
            "firing",
            None,
            None,
            None,
        ),
    ]
    n = len(rows)
    columns = {
        "timestamp": pa.array([r[0] for r in rows], pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
        "alert_id": [r[1] for r in rows],
        "severity": [r[2] for r in rows],
        "title": [r[3] for r in rows],
        "description": [f"{r[3]}: {r[5]} vs {r[6]}" if r[5] is not None else None for r in rows],
        "component": [r[11] for r in rows],
        "metric_name": [r[4] for r in rows],
        "current_value": [r[5] for r in rows],
        "threshold": [r[6] for r in rows],
        "comparison": [r[7] for r in rows],
        "state": [r[8] for r in rows],
        "correlation_id": [r[9] for r in rows],
        "trace_id": [r[10] for r in rows],
        "service_name": [r[11] for r in rows],
    }
    writer.write("alerts", table_from_columns("alerts", columns, n))


def _metric_series(writer: StoreWriter, base_ns: int) -> None:
    """Minute-by-minute series for an hour: an error-rate gauge, a cumulative counter with a reset, a histogram."""
    ts, names, types, values, attrs, services, temporality, counts, sums, buckets, bounds = (
        [] for _ in range(11)
    )
    bounds_s = [0.1, 0.5, 1.0, 2.0, 5.0]
    totals = {"gpt-4o": 0.0, "claude": 0.0}
    hist = [0] * (len(bounds_s) + 1)
    hist_sum = 0.0
    for minute in range(60):
        t_ns = base_ns + minute * 60 * S
        ts.append(t_ns)
        names.append("error_rate")
        types.append("gauge")
        values.append(0.12 if 20 <= minute < 30 else 0.01 + (minute % 5) * 0.002)
        attrs.append({"service": "payment"})
        services.append("payment")
        temporality.append(None)
        counts.append(None)
        sums.append(None)
        buckets.append(None)
        bounds.append(None)
        for model, step in (("gpt-4o", 100.0), ("claude", 40.0)):
            totals[model] = step if (model == "claude" and minute == 30) else totals[model] + step
            ts.append(t_ns)
            names.append("llm.tokens")
            types.append("counter")
            values.append(totals[model])
            attrs.append({"model": model})
            services.append("frontend")
            temporality.append("cumulative")
            counts.append(None)
            sums.append(None)
            buckets.append(None)
            bounds.append(None)
        slow_bucket = 4 if 40 <= minute < 45 else 1
        hist[slow_bucket] += 5
        hist[0] += 3
        hist_sum += 5 * (3.0 if slow_bucket == 4 else 0.3) + 3 * 0.05
        ts.append(t_ns)
        names.append("llm.latency_seconds")
        types.append("histogram")
        values.append(None)
        attrs.append({"model": "gpt-4o"})
        services.append("frontend")
        temporality.append("cumulative")
        counts.append(sum(hist))
        sums.append(hist_sum)
        buckets.append(list(hist))
        bounds.append(bounds_s)
    n = len(ts)
    from ingest.store.encoding import map_column

    columns = {
        "timestamp": pa.array(ts, pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
        "name": names,
        "type": types,
        "value": values,
        "attributes": map_column(attrs),
        "service_name": services,
        "temporality": temporality,
        "count": counts,
        "sum": sums,
        "bucket_counts": buckets,
        "explicit_bounds": bounds,
        "unit": ["1" if nm != "llm.latency_seconds" else "s" for nm in names],
    }
    writer.write("metrics", table_from_columns("metrics", columns, n))


def _sdk_metrics(writer: StoreWriter) -> None:
    """Three collections of real SDK instruments (their timestamps are wall-clock: the SDK cannot back-date)."""
    exporter = ParquetMetricExporter(writer)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(resource=Resource({"service.name": "frontend"}), metric_readers=[reader])
    meter = provider.get_meter("tests.storegen")
    requests = meter.create_counter("http.server.requests")
    duration = meter.create_histogram("http.server.duration", unit="ms")
    depth = meter.create_gauge("queue.depth")
    for round_ in range(3):
        for route, status in (("/checkout", "200"), ("/checkout", "500"), ("/products", "200")):
            requests.add(5 + round_, {"http.route": route, "http.status_code": status})
            duration.record(10.0 * (round_ + 1), {"http.route": route})
        depth.set(round_ * 2, {"queue": "jobs"})
        reader.collect()
    provider.shutdown()


def build_store(root: str | Path, *, seed: int = 7) -> StoreFacts:
    """Build the fixture store at ``root``; returns the facts tests assert against."""
    root = Path(root)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    base = now - timedelta(hours=1, minutes=5)
    base_ns = int(base.timestamp()) * S
    facts = StoreFacts(root=root, base=base, end=base + timedelta(hours=1))
    writer = StoreWriter(root, durable=False)
    telemetry = _Telemetry(writer, seed)
    rng = random.Random(seed)
    first = _regular_traces(telemetry, facts, base_ns, rng)
    _checkout_trace(telemetry, facts, base_ns + 25 * 60 * S + 7 * S, linked=first)
    _big_trace(telemetry, facts, base_ns + 50 * 60 * S)
    _hostile_traces(telemetry, facts, base_ns + 55 * 60 * S)
    telemetry.shutdown()
    _profiles(writer, facts, base_ns + 25 * 60 * S + 7 * S)
    _alerts(writer, facts, base_ns)
    _metric_series(writer, base_ns)
    _sdk_metrics(writer)
    regular = 80 * 3 + 40  # root, cart.load, db.query each; payment.charge on the 40 checkouts
    facts.span_count = regular + facts.checkout_spans + BIG_TRACE_SPANS + 1 + 2
    facts.trace_count = 80 + 1 + 1 + 1 + 1
    return facts


def build_empty_store(root: str | Path) -> Path:
    """An existing store directory with no file at all."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    return root


@functools.cache
def shared_store() -> StoreFacts:
    """One fixture store per test process (building it takes about a second), removed at exit."""
    root = Path(tempfile.mkdtemp(prefix="langswarm-fixture-store-"))
    atexit.register(shutil.rmtree, root, True)
    return build_store(root / "store")


WIDE_TRACE_SPANS = 10_000


def build_wide_trace_store(root: str | Path, *, spans: int = WIDE_TRACE_SPANS, seed: int = 11) -> str:
    """A store holding one trace of ``spans`` spans (an agent run: 100 steps of tool/LLM calls over five
    services, 1 % errors), for the browser's 10,000-span trace view test and bench/browser.py.
    Returns the trace id."""
    rng = random.Random(seed)
    root = Path(root)
    ids = [f"{rng.getrandbits(64):016x}" for _ in range(spans)]
    trace_id = f"{rng.getrandbits(128):032x}"
    per_step = max(spans // 100, 2)
    parents: list[str | None] = [None]
    names = ["agent.run"]
    for i in range(1, spans):
        step = (i - 1) // per_step * per_step + 1
        parents.append(ids[0] if i == step else ids[step])
        names.append("agent.step" if i == step else ("llm.call" if i % 3 == 0 else "tool.call"))
    services = ["agent", "llm-gateway", "search", "vector-db", "tools"]
    start0 = int(datetime.now(UTC).replace(microsecond=0).timestamp()) * S - 3600 * S
    durations = [int(rng.lognormvariate(12.6, 1.0)) for _ in range(spans)]
    starts = [start0]
    for i in range(1, spans):
        starts.append(starts[-1] + durations[i - 1] // 2)
    durations[0] = starts[-1] + durations[-1] - start0
    status = ["ERROR" if rng.random() < 0.01 else "UNSET" for _ in range(spans)]
    columns = {
        "trace_id": [trace_id] * spans,
        "span_id": ids,
        "parent_span_id": parents,
        "name": names,
        "kind": ["INTERNAL"] * spans,
        "service_name": [services[0] if i == 0 else services[i % len(services)] for i in range(spans)],
        "start_time": pa.array(starts, pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
        "end_time": pa.array([s + d for s, d in zip(starts, durations, strict=True)], pa.int64()).cast(
            pa.timestamp("ns", tz="UTC")
        ),
        "duration_ns": durations,
        "status_code": status,
        "status_message": [
            "tool failed: see https://example.com/x" if s == "ERROR" else None for s in status
        ],
    }
    StoreWriter(root, durable=False).write("spans", table_from_columns("spans", columns, spans))
    return trace_id

"""A store with planted causes of slowness, written through the real OTel SDK and ingest's Parquet exporter.

Three root operations, each slow for one known reason:

- ``POST /chat`` (200 traces): slow exactly when its ``llm.call`` child uses ``gen_ai.request.model =
  slow-model`` (40 traces, 2 s; others 100–300 ms). Noise: ``user.tier`` (4 values at random on the
  root), a unique ``request.id`` per trace, random ``gen_ai.usage.input_tokens``.
- ``GET /report`` (100 traces): slow exactly when the root span has ``user.tier = free`` (25 traces).
- ``agent.run`` (100 traces): plan → tool → write in sequence; the 20 slow traces make 4 ``web_search``
  calls under ``tool`` (3 extra retries of 100 ms), the others 1.
- ``batch`` (30 traces): ``prepare`` 0–50 ms, ``noise`` 10–800 ms, ``slow_step`` 50–990 ms, root
  0–1000 ms: the critical path is ``slow_step`` 940 ms, ``noise`` 40 ms, ``prepare`` 10 ms, the root
  itself 10 ms.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from ingest import ParquetSpanExporter, StoreWriter
from tests.storegen import SeededIds

MS = 1_000_000
BASE_NS = 1_795_000_000 * 1_000_000_000  # 2026-11-18, fixed so the store is the same every time


@dataclass
class WhyFacts:
    """What the planted store holds."""

    root: Path
    slow_model_traces: set[str] = field(default_factory=set)
    free_traces: set[str] = field(default_factory=set)
    retry_traces: list[str] = field(default_factory=list)
    calm_agent_traces: list[str] = field(default_factory=list)
    batch_traces: list[str] = field(default_factory=list)


def build_why_store(root: Path, seed: int = 15) -> WhyFacts:
    """Write the planted store under ``root`` and return what it holds."""
    facts = WhyFacts(root=root)
    writer = StoreWriter(root, durable=False)
    provider = TracerProvider(
        resource=Resource({"service.name": "app", "service.version": "2.0"}), id_generator=SeededIds(seed)
    )
    provider.add_span_processor(
        BatchSpanProcessor(ParquetSpanExporter(writer), max_queue_size=65_536, max_export_batch_size=8_192)
    )
    tracer = provider.get_tracer("tests.whygen")
    rng = random.Random(seed)
    t = BASE_NS

    def span(
        name: str, start: int, end: int, parent: trace.Span | None = None, **attributes: object
    ) -> trace.Span:
        context = trace.set_span_in_context(parent) if parent is not None else None
        s = tracer.start_span(name, context=context, start_time=start, attributes=attributes or None)
        s._end_at = end  # type: ignore[attr-defined]
        return s

    def close(*spans: trace.Span) -> None:
        for s in spans:
            s.end(end_time=s._end_at)  # type: ignore[attr-defined]

    for i in range(200):
        slow = i % 5 == 0
        length = 2000 * MS if slow else rng.randint(100, 300) * MS
        tier = rng.choice(["free", "pro", "team", "enterprise"])
        root = span("POST /chat", t, t + length, None, **{"user.tier": tier, "request.id": f"req-{i:05d}"})
        llm = span(
            "llm.call",
            t + 5 * MS,
            t + length - 5 * MS,
            root,
            **{
                "gen_ai.request.model": "slow-model" if slow else rng.choice(["fast-a", "fast-b", "fast-c"]),
                "gen_ai.usage.input_tokens": rng.randint(10, 5000),
            },
        )
        close(llm, root)
        if slow:
            facts.slow_model_traces.add(f"{root.get_span_context().trace_id:032x}")
        t += 10 * MS
    for i in range(100):
        tier = "free" if i % 4 == 0 else rng.choice(["pro", "team", "enterprise"])
        length = (1500 if tier == "free" else rng.randint(50, 200)) * MS
        root = span("GET /report", t, t + length, None, **{"user.tier": tier, "request.id": f"rep-{i:05d}"})
        close(root)
        if tier == "free":
            facts.free_traces.add(f"{root.get_span_context().trace_id:032x}")
        t += 10 * MS
    for i in range(100):
        retries = i % 5 == 0
        calls = 4 if retries else 1
        tool_len = calls * 100 * MS
        root = span("agent.run", t, t + (50 + 10) * MS + tool_len + 50 * MS)
        plan = span("plan", t, t + 50 * MS, root)
        tool = span("tool", t + 50 * MS, t + 50 * MS + tool_len + 10 * MS, root)
        searches = [
            span("web_search", t + (55 + k * 100) * MS, t + (155 + k * 100) * MS, tool, attempt=k + 1)
            for k in range(calls)
        ]
        write = span("write", t + 60 * MS + tool_len, t + 110 * MS + tool_len, root)
        close(plan, *searches, tool, write, root)
        trace_id = f"{root.get_span_context().trace_id:032x}"
        (facts.retry_traces if retries else facts.calm_agent_traces).append(trace_id)
        t += 10 * MS
    for _ in range(30):
        root = span("batch", t, t + 1000 * MS)
        prepare = span("prepare", t, t + 50 * MS, root)
        noise = span("noise", t + 10 * MS, t + 800 * MS, root)
        step = span("slow_step", t + 50 * MS, t + 990 * MS, root)
        close(prepare, noise, step, root)
        facts.batch_traces.append(f"{root.get_span_context().trace_id:032x}")
        t += 10 * MS
    provider.shutdown()
    return facts

"""Export cost per span: ParquetSpanExporter (Arrow conversion + Parquet write) vs OTLP protobuf encoding.

All run in this process on the same 100,000 SDK spans, in the same batch sizes, so the ratios hold on a
noisy machine: the exporter with the compiled span encoder (``ingest.store._spanpack``, what an install
uses), the same exporter on the pure-Python encoder (what runs where nothing could be compiled), and
the OTel SDK's own OTLP protobuf encoding.

Usage: ``.venv/bin/python bench/exporters.py [--spans N] [--runs R]``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

# The repository root first: this folder's ingest.py (the ingest benchmark) would shadow the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ingest import ParquetSpanExporter
from ingest.store.encoding import spans as encoding


def make_spans(count: int) -> Sequence[ReadableSpan]:
    """Spans shaped like an agent run: GenAI attributes, nesting, an event on one in ten."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "bench", "service.version": "1.0"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bench.exporters")
    rng = random.Random(7)
    made = 0
    while made < count:
        with tracer.start_as_current_span("agent.run", attributes={"agent": "orchestrator"}):
            made += 1
            for step in range(min(9, count - made)):
                with tracer.start_as_current_span(
                    "llm.call",
                    attributes={
                        "gen_ai.request.model": "gpt-4o",
                        "gen_ai.usage.input_tokens": rng.randint(50, 4000),
                        "gen_ai.usage.output_tokens": rng.randint(10, 800),
                        "step": step,
                        "cached": rng.random() < 0.2,
                    },
                ) as span:
                    if rng.random() < 0.1:
                        span.add_event("retry", {"attempt": 1})
                made += 1
    return memory.get_finished_spans()


def time_batches(
    spans: Sequence[ReadableSpan], batch: int, export: Callable[[Sequence[ReadableSpan]], object]
) -> float:
    """Seconds to push every span through ``export`` in batches of ``batch``."""
    started = time.perf_counter()
    for i in range(0, len(spans), batch):
        export(spans[i : i + batch])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    spans = make_spans(args.spans)
    n = len(spans)
    compiled = encoding._spanpack
    if compiled is None:
        print(
            "ingest.store._spanpack is not compiled (run `make install`): both columns are the Python encoder"
        )
    print(f"{n} spans, median of {args.runs} runs, µs/span; ratio = ours (compiled) / OTLP encode")
    print(f"{'batch':>6} {'ours (compiled)':>16} {'ours (Python)':>14} {'OTLP encode':>12} {'ratio':>6}")
    # 512 is the OTel SDK's default export batch, 4096 the ObservabilityProvider's, n one single batch.
    for batch in (512, 4_096, n):
        ours, python, otlp = [], [], []
        for _ in range(args.runs):
            for times, module in ((ours, compiled), (python, None)):
                encoding._spanpack = module
                with tempfile.TemporaryDirectory() as store:
                    exporter = ParquetSpanExporter(store)
                    times.append(time_batches(spans, batch, exporter.export) / n * 1e6)
                    assert exporter.counts.exported == n and exporter.counts.dropped == 0
            encoding._spanpack = compiled
            otlp.append(time_batches(spans, batch, lambda b: encode_spans(b).SerializeToString()) / n * 1e6)
        medians = [statistics.median(times) for times in (ours, python, otlp)]
        ratio = medians[0] / medians[2]
        print(f"{batch:>6} {medians[0]:>16.2f} {medians[1]:>14.2f} {medians[2]:>12.2f} {ratio:>6.2f}")


if __name__ == "__main__":
    main()

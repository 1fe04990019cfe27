"""SDK overhead: this SDK's span and log calls against the raw OTel SDK with the same processor and exporter.

Measured in one run: short rounds, each timing both sides back to back in alternating order; the
ratios are medians of the per-round ratios (the machine is shared and noisy):

- span: ``start_span`` + 3 attributes + end through V2Tracer (a provider with its default config:
  correlation ids, open-span tracking, per-trace limits, drop accounting) versus
  ``start_as_current_span`` + 3 attributes on a raw SDK ``TracerProvider`` with the same
  ``BatchSpanProcessor`` sizes and ``ParquetSpanExporter``; target ratio <= 1.10;
  (a raw ``start_span`` + 3 attributes + ``end()`` that is never made current is printed as a
  reference floor: it skips the context attach/detach both of the compared calls do);
- no-op span: ``NoOpTracer().start_span`` + 3 attributes; target < 1 µs;
- log: ``V2Logger.info(msg, **2 fields)`` versus a stdlib ``logging`` call with the same fields through
  OTel's ``LoggingHandler`` into the same batch processor and ``ParquetLogExporter``; target ratio <= 1.5.

Usage: ``python bench/sdk_overhead.py [--spans N] [--rounds R] [--check]`` (``--check`` exits 1 if a
target is missed). Results are recorded in docs/benchmarks.md ("SDK overhead").
"""

from __future__ import annotations

import argparse
import gc
import logging
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from ingest import ObservabilityProvider
from ingest.sdk.noop import NoOpTracer
from ingest.store.exporters import ParquetLogExporter, ParquetSpanExporter
from ingest.store.writer import StoreWriter

QUEUE = 32768
BATCH = 4096
DELAY_MS = 1000


def _timed(loop, n: int) -> float:
    """µs per iteration of ``loop(n)`` (GC off during the loop, like timeit)."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        loop(n)
        return (time.perf_counter() - start) / n * 1e6
    finally:
        gc.enable()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=5_000, help="spans (and log calls) per round")
    parser.add_argument("--rounds", type=int, default=21, help="rounds; medians are reported")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args()
    n = args.spans

    root = Path(tempfile.mkdtemp(prefix="sdk-overhead-"))
    resource = Resource.create({"service.name": "bench"})

    # Raw OTel SDK: same processor sizes, same exporter, same store writer settings.
    raw_writer = StoreWriter(root / "raw")
    raw_tp = TracerProvider(resource=resource, shutdown_on_exit=False)
    raw_tp.add_span_processor(
        BatchSpanProcessor(
            ParquetSpanExporter(raw_writer),
            max_queue_size=QUEUE,
            max_export_batch_size=BATCH,
            schedule_delay_millis=DELAY_MS,
        )
    )
    raw_tracer = raw_tp.get_tracer("bench")
    raw_lp = LoggerProvider(resource=resource, shutdown_on_exit=False)
    raw_lp.add_log_record_processor(
        BatchLogRecordProcessor(
            ParquetLogExporter(raw_writer),
            max_queue_size=QUEUE,
            max_export_batch_size=BATCH,
            schedule_delay_millis=DELAY_MS,
        )
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        handler = LoggingHandler(logger_provider=raw_lp)
    std_logger = logging.getLogger("bench.stdlib")
    std_logger.handlers[:] = [handler]
    std_logger.setLevel(logging.INFO)
    std_logger.propagate = False

    provider = ObservabilityProvider.create(
        {
            "store": {"path": str(root / "sdk")},
            "logging": {"output": "none"},
            "metrics": {"export_interval": 3600},
            "tracing": {
                "max_queue_size": QUEUE,
                "max_export_batch_size": BATCH,
                "schedule_delay_millis": DELAY_MS,
            },
        },
        "bench",
    )
    tracer = provider.get_tracer("bench")
    logger = provider.get_logger("bench")
    noop = NoOpTracer()

    def raw_spans(k: int) -> None:
        for _ in range(k):
            with raw_tracer.start_as_current_span("op") as span:
                span.set_attribute("a", 1)
                span.set_attribute("b", "x")
                span.set_attribute("c", 2.5)

    def raw_bare_spans(k: int) -> None:
        for _ in range(k):
            span = raw_tracer.start_span("op")
            span.set_attribute("a", 1)
            span.set_attribute("b", "x")
            span.set_attribute("c", 2.5)
            span.end()

    def sdk_spans(k: int) -> None:
        for _ in range(k):
            with tracer.start_span("op") as span:
                span.set_attribute("a", 1)
                span.set_attribute("b", "x")
                span.set_attribute("c", 2.5)

    def noop_spans(k: int) -> None:
        for _ in range(k):
            with noop.start_span("op") as span:
                span.set_attribute("a", 1)
                span.set_attribute("b", "x")
                span.set_attribute("c", 2.5)

    def std_logs(k: int) -> None:
        for i in range(k):
            std_logger.info("request handled", extra={"route": "/chat", "n": i})

    def sdk_logs(k: int) -> None:
        for i in range(k):
            logger.info("request handled", route="/chat", n=i)

    results: dict[str, list[float]] = {
        name: [] for name in ("raw", "raw_bare", "sdk", "noop", "std_log", "sdk_log")
    }
    span_ratios: list[float] = []
    log_ratios: list[float] = []
    warm = max(1000, n // 10)
    for loop in (raw_spans, raw_bare_spans, sdk_spans, noop_spans, std_logs, sdk_logs):
        loop(warm)
    raw_tp.force_flush()
    provider.force_flush()
    raw_lp.force_flush()

    def flush() -> None:
        raw_tp.force_flush()
        raw_lp.force_flush()
        provider.tracer_provider.force_flush()
        provider.logger_provider.force_flush()

    # Short interleaved rounds, order alternating: each round's ratio compares two loops run seconds
    # apart, so load from other processes mostly cancels out; the median ratio is reported.
    for r in range(args.rounds):
        pairs = (
            [("raw", raw_spans), ("sdk", sdk_spans)]
            if r % 2 == 0
            else [("sdk", sdk_spans), ("raw", raw_spans)]
        )
        for name, loop in pairs:
            results[name].append(_timed(loop, n))
            flush()
        span_ratios.append(results["sdk"][-1] / results["raw"][-1])
        results["raw_bare"].append(_timed(raw_bare_spans, n))
        flush()
        results["noop"].append(_timed(noop_spans, n))
        logs = (
            [("std_log", std_logs), ("sdk_log", sdk_logs)]
            if r % 2 == 0
            else [("sdk_log", sdk_logs), ("std_log", std_logs)]
        )
        for name, loop in logs:
            results[name].append(_timed(loop, n))
            flush()
        log_ratios.append(results["sdk_log"][-1] / results["std_log"][-1])

    med = {name: statistics.median(values) for name, values in results.items()}
    span_ratio = statistics.median(span_ratios)
    log_ratio = statistics.median(log_ratios)
    checks = [
        ("span ratio (V2Tracer / raw OTel)", span_ratio, 1.10, f"{span_ratio:.3f}"),
        ("no-op span µs", med["noop"], 1.0, f"{med['noop']:.3f}"),
        ("log ratio (V2Logger / stdlib+LoggingHandler)", log_ratio, 1.5, f"{log_ratio:.3f}"),
    ]
    print(f"sdk_overhead: {n} calls per round, {args.rounds} rounds, medians (µs per call)")
    print(f"  raw OTel span (start_as_current_span + 3 attrs)  {med['raw']:8.2f}")
    print(f"  raw OTel span, not made current (reference)     {med['raw_bare']:8.2f}")
    print(f"  V2Tracer span (start_span + 3 attrs)            {med['sdk']:8.2f}")
    print(f"  NoOpTracer span (start_span + 3 attrs)          {med['noop']:8.3f}")
    print(f"  stdlib logging + OTel LoggingHandler            {med['std_log']:8.2f}")
    print(f"  V2Logger.info                                   {med['sdk_log']:8.2f}")
    missed = 0
    for label, value, target, text in checks:
        ok = value <= target
        missed += not ok
        print(f"  {label:<46} {text:>8}  target <= {target}  {'ok' if ok else 'MISSED'}")
    spread = {name: (min(v), max(v)) for name, v in results.items()}
    print("  per-round range: " + ", ".join(f"{k} {lo:.2f}-{hi:.2f}" for k, (lo, hi) in spread.items()))
    q = statistics.quantiles(span_ratios, n=4)
    print(f"  span ratio quartiles {q[0]:.3f} / {q[1]:.3f} / {q[2]:.3f}; log ratio median {log_ratio:.3f}")
    # The fastest round of each side is the least disturbed by other processes: a second estimate.
    print(
        f"  ratio of fastest rounds: span {min(results['sdk']) / min(results['raw']):.3f}, "
        f"log {min(results['sdk_log']) / min(results['std_log']):.3f}"
    )
    provider.shutdown()
    raw_tp.shutdown()
    raw_lp.shutdown()
    stored = provider.store_writer.rows_written["spans"]
    print(f"  spans written by the SDK provider: {stored} (dropped: {provider.dropped_spans()})")
    return 1 if (args.check and missed) else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Explorer speed on a 1,000,000-span store: each page's queries and the 10,000-span trace view.

    .venv/bin/python bench/explorer.py [--store DIR] [--runs 5] [--regenerate] [--spans 10000000] [--as-written]

Builds the store once (Arrow columns made with numpy and written through ingest's StoreWriter: the SDK
path costs ~20 µs a span, too slow for a million), then compacts it as an operator's nightly
``python -m ingest compact`` would (``--as-written`` keeps the writer's files), and reuses it on later runs. Prints, per page, the
median time of running all its query functions cold (no Streamlit cache), and for the trace view the
10k-span tree, critical path and waterfall figure. The baseline, measured in the same run, is a bare
DuckDB full scan of the span columns the pages read (``count(*), sum(duration_ns)`` over every file).
About 10% of the spans are LLM calls in four GenAI conventions (OTel GenAI current and older, OpenInference,
OpenLLMetry), 5% of them without usage and one model unpriced, so the LLM queries have work to do.
Targets (docs/benchmarks.md): every page under 1 s on 1M spans, the 10k-span trace view under 2 s.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from timing import median

from explorer import figures, open_store, queries
from explorer.alert_history import alert_history
from explorer.sql_guard import EXAMPLES, GuardedSQL
from explorer.store import Store
from ingest.store import schema
from ingest.store.compact import Compactor
from ingest.store.encoding import hex_array, table_from_columns
from ingest.store.writer import StoreWriter

SPANS = 1_000_000  # --spans sets it (a store of another size needs its own --store)
BIG_TRACE = 10_000
PER_TRACE = 10  # root -> 3 children -> 2 grandchildren each
CHUNK = 50_000  # rows per written file, like a busy exporter's batches after a while
DAYS = 7
T0 = np.datetime64("2026-01-05T00:00:00", "ns").astype(np.int64)
SERVICES = np.array(["frontend", "cart", "payment", "search", "llm-gateway"])
OPERATIONS = np.array(
    [
        "POST /checkout",
        "cart.load",
        "db.query",
        "payment.charge",
        "search.query",
        "llm.call",
        "cache.get",
        "render",
        "auth.check",
        "queue.publish",
    ]
)
VERSIONS = np.array(["1.4.0", "1.5.0"])
PARENT_SLOT = np.array([-1, 0, 0, 0, 1, 1, 2, 2, 3, 3])  # parent position inside a 10-span trace


def _map(keys: list[str], values: list[np.ndarray]) -> pa.MapArray:
    """A MAP column with the same keys on every row, built from per-key value columns."""
    n = len(values[0])
    k = len(keys)
    flat_values = np.empty(n * k, dtype=object)
    for i, column in enumerate(values):
        flat_values[i::k] = column
    return pa.MapArray.from_arrays(
        pa.array(np.arange(0, n * k + 1, k, dtype=np.int32)),
        pa.array(np.tile(np.array(keys, dtype=object), n), pa.string()),
        pa.array(flat_values, pa.string()),
        type=schema.ATTRIBUTES,
    )


def _ids(rng: np.random.Generator, n: int, width: int) -> pa.StringArray:
    return hex_array(rng.integers(0, 256, size=n * width, dtype=np.uint8).tobytes(), width)


def _span_chunk(rng: np.random.Generator, first_trace: int, traces: int) -> pa.Table:
    n = traces * PER_TRACE
    trace_idx = np.repeat(np.arange(traces), PER_TRACE)
    slot = np.tile(np.arange(PER_TRACE), traces)
    trace_ids = _ids(rng, traces, 16).take(pa.array(trace_idx))
    span_ids = _ids(rng, n, 8)
    parent_pos = np.where(PARENT_SLOT[slot] >= 0, trace_idx * PER_TRACE + PARENT_SLOT[slot], 0)
    parents = span_ids.take(pa.array(parent_pos))
    parents = pa.compute.if_else(pa.array(PARENT_SLOT[slot] >= 0), parents, pa.nulls(n, pa.string()))
    span_of_week = (first_trace + np.arange(traces)) / (SPANS // PER_TRACE)
    trace_start = T0 + (span_of_week * DAYS * 86_400e9).astype(np.int64) + rng.integers(0, 10**9, traces)
    op = (slot + trace_idx % 3) % len(OPERATIONS)
    op[slot == 0] = trace_idx[slot == 0] % 2  # two kinds of root
    duration = (rng.lognormal(mean=np.log(2e6), sigma=1.0, size=n) * (1 + (op == 5) * 20)).astype(np.int64)
    offset = np.where(slot == 0, 0, (rng.random(n) * 5e6).astype(np.int64))
    start = trace_start[trace_idx] + offset
    duration[slot == 0] = duration[slot == 0] + 20_000_000
    status = np.where(rng.random(n) < 0.02, "ERROR", "UNSET")
    service = SERVICES[(slot + trace_idx) % len(SERVICES)]
    version = VERSIONS[(trace_idx // 7) % 2]
    correlation = np.char.add("corr-", (first_trace + trace_idx).astype(str))
    columns = {
        "trace_id": trace_ids,
        "span_id": span_ids,
        "parent_span_id": parents,
        "name": pa.array(OPERATIONS[op]),
        "kind": pa.array(np.where(slot == 0, "SERVER", "INTERNAL")),
        "service_name": pa.array(service),
        "start_time": pa.array(start).cast(schema.NS_TIMESTAMP),
        "end_time": pa.array(start + duration).cast(schema.NS_TIMESTAMP),
        "duration_ns": pa.array(duration),
        "status_code": pa.array(status),
        "status_message": pa.array(np.where(status == "ERROR", "upstream failed", None)),
        "attributes": _map(
            ["correlation_id", "http.route", "model"],
            [
                correlation.astype(object),
                np.where(slot == 0, "/checkout", "/internal").astype(object),
                np.where(op == 5, "gpt-4o", "none").astype(object),
            ],
        ),
        "resource_attributes": _map(
            ["service.name", "service.version"], [service.astype(object), version.astype(object)]
        ),
        "scope_name": pa.array(np.full(n, "bench")),
    }
    table = table_from_columns("spans", columns, n)
    return _with_genai(rng, table, op == 5, trace_idx + first_trace)


#: GenAI spans of the bench store: the ``llm.call`` spans (about 10% of all spans) in four conventions.
GENAI_MODELS = np.array(["gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet-20241022", "gpt-4.1", "acme-local-7b"])
GENAI_CONVENTIONS: dict[str, list[str]] = {
    "otel-genai": [
        "gen_ai.operation.name",
        "gen_ai.provider.name",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.agent.name",
        "gen_ai.conversation.id",
    ],
    "otel-genai-legacy": [
        "gen_ai.operation.name",
        "gen_ai.system",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.usage.prompt_tokens",
        "gen_ai.usage.completion_tokens",
    ],
    "openinference": [
        "openinference.span.kind",
        "llm.provider",
        "llm.model_name",
        "llm.token_count.prompt",
        "llm.token_count.completion",
        "llm.token_count.total",
        "session.id",
        "user.id",
    ],
    "openllmetry": [
        "llm.request.type",
        "gen_ai.system",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.usage.prompt_tokens",
        "gen_ai.usage.completion_tokens",
        "llm.usage.total_tokens",
        "traceloop.association.properties.session_id",
    ],
}


def _with_genai(rng: np.random.Generator, table: pa.Table, llm: np.ndarray, trace: np.ndarray) -> pa.Table:
    """Replace the attributes of the ``llm`` rows by GenAI ones, each trace in one of four conventions;
    2% of the calls fail without usage and 3% are streamed without usage."""
    rows = np.flatnonzero(llm)
    n = len(rows)
    convention = trace[rows] % len(GENAI_CONVENTIONS)
    model = GENAI_MODELS[rng.choice(len(GENAI_MODELS), size=n, p=[0.45, 0.25, 0.15, 0.1, 0.05])]
    provider = np.where(np.char.startswith(model, "claude"), "anthropic", "openai")
    provider = np.where(model == "acme-local-7b", "acme", provider)
    input_tokens = rng.integers(50, 8000, n)
    output_tokens = rng.integers(5, 1200, n)
    unknown = rng.random(n) < 0.05
    tokens_in = np.where(unknown, None, input_tokens.astype(str)).astype(object)
    tokens_out = np.where(unknown, None, output_tokens.astype(str)).astype(object)
    total = np.where(unknown, None, (input_tokens + output_tokens).astype(str)).astype(object)
    cached = np.where(unknown, None, (input_tokens // 3).astype(str)).astype(object)
    agent = np.array(["planner", "researcher", "writer"])[trace[rows] % 3].astype(object)
    session = np.char.add("sess-", (trace[rows] // 5).astype(str)).astype(object)
    values = {
        "gen_ai.operation.name": np.full(n, "chat", dtype=object),
        "gen_ai.provider.name": provider.astype(object),
        "gen_ai.system": provider.astype(object),
        "llm.provider": provider.astype(object),
        "gen_ai.request.model": model.astype(object),
        "gen_ai.response.model": model.astype(object),
        "llm.model_name": model.astype(object),
        "gen_ai.usage.input_tokens": tokens_in,
        "gen_ai.usage.output_tokens": tokens_out,
        "gen_ai.usage.prompt_tokens": tokens_in,
        "gen_ai.usage.completion_tokens": tokens_out,
        "gen_ai.usage.cache_read.input_tokens": cached,
        "llm.token_count.prompt": tokens_in,
        "llm.token_count.completion": tokens_out,
        "llm.token_count.total": total,
        "llm.usage.total_tokens": total,
        "gen_ai.agent.name": agent,
        "gen_ai.conversation.id": session,
        "session.id": session,
        "user.id": np.char.add("user-", (trace[rows] % 97).astype(str)).astype(object),
        "traceloop.association.properties.session_id": session,
        "openinference.span.kind": np.full(n, "LLM", dtype=object),
        "llm.request.type": np.full(n, "chat", dtype=object),
    }
    pieces = [table.filter(pa.array(~llm))]
    llm_rows = table.take(pa.array(rows))
    for number, keys in enumerate(GENAI_CONVENTIONS.values()):
        pick = np.flatnonzero(convention == number)
        part = llm_rows.take(pa.array(pick))
        attributes = _map(keys, [values[key][pick] for key in keys])
        pieces.append(part.set_column(part.schema.get_field_index("attributes"), "attributes", attributes))
    return pa.concat_tables(pieces)


def _big_trace(rng: np.random.Generator) -> tuple[pa.Table, str]:
    """A 10,000-span trace: 100 agent steps of 99 tool/LLM calls, sub-ms to tens of ms."""
    n = BIG_TRACE
    ids = _ids(rng, n, 8).to_pylist()
    trace_id = _ids(rng, 1, 16)[0].as_py()
    parents = [None] + [ids[0] if i % 100 == 1 else ids[(i - 1) // 100 * 100 + 1] for i in range(1, n)]
    start0 = int(T0 + 3 * 86_400e9)
    durations = rng.lognormal(mean=np.log(3e5), sigma=1.2, size=n).astype(np.int64)
    starts = start0 + np.cumsum(np.r_[0, durations[:-1] // 2])
    durations[0] = int(starts[-1] + durations[-1] - start0)
    columns = {
        "trace_id": [trace_id] * n,
        "span_id": ids,
        "parent_span_id": parents,
        "name": ["agent.run"] + ["agent.step" if i % 100 == 1 else "tool.call" for i in range(1, n)],
        "kind": ["INTERNAL"] * n,
        "service_name": ["agent"] * n,
        "start_time": pa.array(starts).cast(schema.NS_TIMESTAMP),
        "end_time": pa.array(starts + durations).cast(schema.NS_TIMESTAMP),
        "duration_ns": durations,
        "status_code": ["UNSET"] * n,
    }
    return table_from_columns("spans", columns, n), trace_id


def _side_tables(writer: StoreWriter, rng: np.random.Generator, big_trace: str) -> None:
    n = SPANS // 5  # 200,000 log records for 1M spans
    t = T0 + np.sort(rng.integers(0, int(DAYS * 86_400e9), n))
    level = rng.choice(np.array([9, 13, 17]), size=n, p=[0.9, 0.07, 0.03])
    columns = {
        "timestamp": pa.array(t).cast(schema.NS_TIMESTAMP),
        "trace_id": _ids(rng, n, 16),
        "span_id": _ids(rng, n, 8),
        "severity_number": pa.array(level.astype(np.int32)),
        "severity_text": pa.array(np.where(level == 17, "ERROR", np.where(level == 13, "WARN", "INFO"))),
        "body": pa.array(np.char.add("request handled id=", np.arange(n).astype(str))),
        "service_name": pa.array(SERVICES[np.arange(n) % len(SERVICES)]),
        "logger_name": pa.array(np.char.add("app.", SERVICES[np.arange(n) % len(SERVICES)])),
        "attributes": _map(
            ["correlation_id"], [np.char.add("corr-", (np.arange(n) // 2).astype(str)).astype(object)]
        ),
    }
    writer.write("logs", table_from_columns("logs", columns, n))
    minutes = DAYS * 24 * 60
    m = minutes * 2
    stamps = T0 + np.repeat(np.arange(minutes), 2) * 60_000_000_000
    model = np.tile(np.array(["gpt-4o", "claude"], dtype=object), minutes)
    values = np.cumsum(rng.integers(50, 150, m).astype(float))
    columns = {
        "timestamp": pa.array(stamps).cast(schema.NS_TIMESTAMP),
        "name": ["llm.tokens"] * m,
        "type": ["counter"] * m,
        "temporality": ["cumulative"] * m,
        "value": values,
        "service_name": ["llm-gateway"] * m,
        "attributes": _map(["model"], [model]),
    }
    writer.write("metrics", table_from_columns("metrics", columns, m))
    p = 5_000
    functions = np.array([f"mod{i % 40}.fn{i % 200}" for i in range(p)], dtype=object)
    callers = np.where(np.arange(p) % 2 == 0, None, functions[(np.arange(p) + 1) % p])
    columns = {
        "timestamp": pa.array(T0 + np.arange(p) * 10**9).cast(schema.NS_TIMESTAMP),
        "profile_id": np.char.add("p", (np.arange(p) // 50).astype(str)).astype(object),
        "trace_id": [big_trace] * p,
        "span_id": ["0" * 16] * p,
        "operation": ["tool.call"] * p,
        "function": functions,
        "calls": np.arange(p) % 7 + 1,
        "primitive_calls": np.arange(p) % 7 + 1,
        "self_time_s": rng.random(p) / 100,
        "cumulative_time_s": rng.random(p) / 10,
        "caller": callers,
    }
    writer.write("profiles", table_from_columns("profiles", columns, p))
    a = 200
    columns = {
        "timestamp": pa.array(T0 + np.arange(a) * 3_000_000_000_000).cast(schema.NS_TIMESTAMP),
        "alert_id": [f"a{i // 2}" for i in range(a)],
        "severity": ["critical", "critical"] * (a // 2),
        "title": ["High token rate"] * a,
        "metric_name": ["llm.tokens"] * a,
        "threshold": [1e6] * a,
        "state": ["firing", "resolved"] * (a // 2),
        "current_value": rng.random(a) * 2e6,
    }
    writer.write("alerts", table_from_columns("alerts", columns, a))


def build(root: Path) -> str:
    """Write the bench store; returns the id of the 10,000-span trace."""
    rng = np.random.default_rng(42)
    writer = StoreWriter(root, durable=False)
    traces = (SPANS - BIG_TRACE) // PER_TRACE
    per_chunk = CHUNK // PER_TRACE
    for first in range(0, traces, per_chunk):
        writer.write("spans", _span_chunk(rng, first, min(per_chunk, traces - first)))
    big, trace_id = _big_trace(rng)
    writer.write("spans", big)
    _side_tables(writer, rng, trace_id)
    (root / "BIG_TRACE").write_text(trace_id)
    return trace_id


def main() -> int:
    global SPANS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=str(Path(tempfile.gettempdir()) / "langswarm-bench-explorer"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument(
        "--spans", type=int, default=SPANS, help="spans in a newly built store (default 1,000,000)"
    )
    parser.add_argument(
        "--as-written",
        action="store_true",
        help="keep a newly built store's files as the writer wrote them (default: compact them)",
    )
    args = parser.parse_args()
    SPANS = args.spans
    root = Path(args.store)
    if args.regenerate or not (root / "BIG_TRACE").exists():
        if (root / "BIG_TRACE").exists():
            shutil.rmtree(root)  # only a store this script made (it has the marker file)
        elif root.exists() and any(root.iterdir()):
            print(f"{root} is not empty and not a bench store; pass --store to an empty or new directory")
            return 2
        started = time.perf_counter()
        trace_id = build(root)
        print(f"built {SPANS:,}-span store in {time.perf_counter() - started:.1f} s at {root}")
        if not args.as_written:
            started = time.perf_counter()
            days = Compactor(root).run().days
            print(
                f"compacted {sum(d.inputs for d in days)} files into {sum(d.outputs for d in days)} in "
                f"{time.perf_counter() - started:.1f} s (python -m ingest compact)"
            )
    trace_id = (root / "BIG_TRACE").read_text().strip()
    store = open_store(root)
    spans = int(store.sql("SELECT count(*) AS n FROM spans").n[0])
    first, last = queries.time_bounds(store)
    hour = {"start": last - timedelta(hours=1), "end": last}
    guard = GuardedSQL(store)

    def overview() -> None:
        queries.time_bounds(store)
        queries.list_services(store)
        red = queries.red_summary(store)
        queries.slowest_operations(red)
        queries.failing_operations(red)
        queries.alert_windows(queries.alert_events(store))
        queries.red_over_time(store)

    def traces() -> None:
        queries.list_operations(store)
        queries.search_traces(store, limit=200)
        queries.trace_duration_histogram(store)

    def traces_filtered() -> None:
        queries.search_traces(store, service="payment", status="error", min_duration_ms=5, limit=200)
        queries.trace_duration_histogram(store, service="payment", status="error", min_duration_ms=5)

    def traces_correlation() -> None:
        queries.search_traces(store, correlation_id="corr-4242")

    def traces_log_text() -> None:
        queries.search_traces(store, log_text="id=123456")

    def trace_view() -> None:
        tree = queries.trace_tree(store, trace_id)
        logs = queries.trace_logs(store, trace_id)
        view = queries.collapse_subtrees(tree, ())
        figures.waterfall(view, marks=queries.trace_marks(view, logs))
        queries.trace_header(tree)
        queries.trace_timeline(tree, logs)
        queries.span_detail(tree, tree.span_id.iloc[0])
        queries.span_profile(store, trace_id=trace_id, span_id=tree.span_id.iloc[0])

    # A different trace each run (cycled): no run finds the rows of an earlier one in a cache.
    lookup_ids = itertools.cycle(
        row[0]
        for row in store.con.execute(
            # Sampled after the filter (a sample of spans, then the roots among them, left ~6 traces).
            "SELECT trace_id FROM (SELECT trace_id FROM spans WHERE parent_span_id IS NULL) "
            "USING SAMPLE 64 ROWS (reservoir, 17)"
        ).fetchall()
    )

    def trace_by_id(on: Store | None = None) -> None:
        lookup = next(lookup_ids)
        queries.trace_tree(on or store, lookup)
        queries.trace_logs(on or store, lookup)
        queries.profile_hotspots(on or store, trace_id=lookup)

    def trace_by_id_new_store() -> None:
        with open_store(root) as fresh:
            trace_by_id(fresh)

    tree = queries.trace_tree(store, trace_id)
    llm_trace = queries.llm_usage(store, by="trace", order="cost", limit=1)["group"].iloc[0]

    def waterfall_only() -> None:
        figures.waterfall(tree)

    def latency() -> None:
        queries.list_operations(store)
        queries.latency_histogram(store, operation=["llm.call", "db.query", "cart.load"], log_scale=True)
        queries.latency_percentiles(store, operation=["llm.call", "db.query", "cart.load"])
        queries.percentiles_over_time(
            store, operation=["llm.call", "db.query", "cart.load"], start=first, end=last
        )
        queries.latency_outliers(store, operation=["llm.call", "db.query", "cart.load"])

    def latency_versions() -> None:
        queries.latency_histogram(store, group_by="version", log_scale=True)
        queries.latency_percentiles(store, group_by="version")

    def profiles() -> None:
        queries.profile_operations(store)
        hot = queries.profile_hotspots(store, operation="tool.call")
        edges = queries.profile_edges(store, operation="tool.call")
        queries.call_tree(hot, edges)
        queries.profile_spans(store, operation="tool.call")

    def alerts() -> None:
        events = queries.alert_events(store)
        windows = queries.alert_windows(events, until=last)
        queries.metric_series(store, name="llm.tokens")
        queries.search_traces(
            store, start=windows.start.iloc[0], end=windows.end.iloc[0], order="errors", limit=50
        )
        queries.search_logs(
            store, start=windows.start.iloc[0], end=windows.end.iloc[0], min_level="WARN", limit=200
        )
        queries.metric_catalog(store)
        alert_history(store, [{"metric_name": "llm.tokens", "threshold": 1e6, "severity": "warning"}])

    def logs() -> None:
        queries.list_loggers(store)
        queries.search_logs(store, min_level="ERROR", limit=500)
        queries.log_volume(store, min_level="ERROR")
        queries.search_logs(store, text="id=4242", limit=500)
        queries.log_volume(store, text="id=4242")

    def metrics() -> None:
        queries.metric_catalog(store)
        queries.metric_label_keys(store, name="llm.tokens")
        queries.metric_series(store, name="llm.tokens", group_by=["model"])

    def sql() -> None:
        guard.run(EXAMPLES["Slowest operations (p95)"])

    def baseline() -> None:
        store.sql("SELECT count(*), sum(duration_ns) FROM spans")

    def llm_page() -> None:
        queries.llm_totals(store)
        queries.llm_usage(store, by="model")
        queries.llm_usage_over_time(store, by="model", buckets=60)
        queries.llm_usage(store, by="trace", order="cost", limit=10)
        queries.llm_usage(store, by="trace", order="llm_time", limit=10)
        queries.unpriced_models(store)
        queries.llm_calls(store, include_nested=False, limit=200)

    def llm_by(by: str) -> Callable[[], object]:
        return lambda: queries.llm_usage(store, by=by)

    def llm_hour() -> None:
        queries.llm_totals(store, **hour)
        queries.llm_usage(store, by="model", **hour)
        queries.llm_usage_over_time(store, by="model", **hour)

    def llm_trace_view() -> None:
        queries.trace_llm_totals(queries.trace_llm_spans(store, llm_trace))

    def llm_first_query() -> None:
        with open_store(root) as fresh:  # a new Store: the per-file cache of GenAI rows is built here
            queries.llm_totals(fresh)

    def traces_by_cost() -> None:
        queries.search_traces(store, order="cost", limit=200)

    def traces_min_cost() -> None:
        queries.search_traces(store, min_cost_usd=0.05, limit=200)

    def latency_by_model() -> None:
        queries.latency_percentiles(store, group_by="model")

    def red_by_model() -> None:
        queries.red_summary(store, group_by="model")

    def overview_hour() -> None:
        queries.red_summary(store, **hour)
        queries.alert_windows(queries.alert_events(store, **hour))
        queries.red_over_time(store, **hour)

    cases = [
        ("baseline: full scan count(*), sum(duration_ns)", baseline, None),
        ("Overview (all 7 days)", overview, 1.0),
        ("Overview (last hour)", overview_hour, 1.0),
        ("Traces (no filter)", traces, 1.0),
        ("Traces (service+status+duration)", traces_filtered, 1.0),
        ("Traces (correlation id)", traces_correlation, 1.0),
        ("Traces (text in logs)", traces_log_text, 1.0),
        ("Trace by id (spans, logs, profile rows; open store)", trace_by_id, 0.05),
        ("  the same, opening the store first", trace_by_id_new_store, None),
        (f"Trace view ({len(tree):,} spans, all queries + waterfall)", trace_view, 2.0),
        (f"  waterfall figure only ({len(tree):,} bars)", waterfall_only, None),
        ("Latency (3 operations)", latency, 1.0),
        ("Latency (versions side by side)", latency_versions, 1.0),
        ("Profile hotspots", profiles, 1.0),
        ("Alerts (incl. what-would-have-fired)", alerts, 1.0),
        ("Logs", logs, 1.0),
        ("Metrics", metrics, 1.0),
        ("SQL (example query)", sql, 1.0),
        ("LLM: first query on a newly opened store (cache build)", llm_first_query, None),
        ("LLM calls page (all 7 days, 7 queries)", llm_page, 1.0),
        ("LLM calls page (last hour)", llm_hour, 1.0),
        ("llm_usage by model", llm_by("model"), 1.0),
        ("llm_usage by agent", llm_by("agent"), 1.0),
        ("llm_usage by session", llm_by("session"), 1.0),
        ("llm_usage by trace", llm_by("trace"), 1.0),
        ("llm_usage by attribute key", llm_by("gen_ai.conversation.id"), 1.0),
        ("Trace view LLM table (one trace)", llm_trace_view, 1.0),
        ("Traces ordered by LLM cost", traces_by_cost, 1.0),
        ("Traces with LLM cost >= $0.05", traces_min_cost, 1.0),
        ("Latency percentiles by model", latency_by_model, 1.0),
        ("RED summary by model", red_by_model, 1.0),
    ]
    print(
        f"store: {spans:,} spans, {root}; median of {args.runs} runs each, trace lookups "
        f"{max(args.runs, 15)} (cold: no Streamlit cache; each lookup another trace)"
    )
    base = None
    failed = []
    for label, function, target in cases:
        function()  # warm the OS page cache, as a second visit would
        # A lookup takes tens of ms and reads another trace each run: more runs, or one slow file decides.
        runs = max(args.runs, 15) if function in (trace_by_id, trace_by_id_new_store) else args.runs
        seconds = median(function, runs)
        base = base or seconds
        verdict = "" if target is None else ("ok" if seconds < target else f"OVER {target:g} s")
        if target is not None and seconds >= target:
            failed.append(label)
        print(f"{label:<58} {seconds * 1000:8.0f} ms  {seconds / base:5.1f}x baseline  {verdict}")
    guard.close()
    store.close()
    if failed:
        print(f"over target: {', '.join(failed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

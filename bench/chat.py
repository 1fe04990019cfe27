"""Sessions, one session, the call graph of a day and content search on bench/explorer.py's 1M-span store.

    .venv/bin/python bench/chat.py [--store DIR] [--runs 5] [--regenerate]

Builds bench/explorer.py's store (1,000,000 spans over 7 days, 200,000 logs) and adds an agent workload
to it: 20,000 traces of 5 spans (``invoke_agent`` root with ``session.id`` / ``user.id``, two LLM calls,
a tool, a third LLM call) in 2,000 sessions of 10 turns, 30 % of LLM calls with their messages as
``gen_ai.input.messages`` / ``gen_ai.output.messages`` (100,000 spans more). Prints the median of each
case and its ratio to a baseline measured in the same run (a bare full scan of the span columns); the
correlation-id trace search of bench/explorer.py (which also reads every span's attribute map) is printed
as a reference, since reading that map dominates these queries.
Target (docs/benchmarks.md): each under 1 s.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from timing import median  # noqa: E402

from explorer import open_store, queries  # noqa: E402
from ingest.store import schema  # noqa: E402
from ingest.store.encoding import table_from_columns  # noqa: E402
from ingest.store.writer import StoreWriter  # noqa: E402

TRACES = 20_000
TURNS = 10
SPANS_PER_TRACE = 5
CONTENT_SHARE = 0.3


def _bench_explorer() -> object:
    spec = importlib.util.spec_from_file_location("bench_explorer", ROOT / "bench" / "explorer.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _agent_spans(rng: np.random.Generator, t0: int, days: int) -> pa.Table:
    """The agent workload: TRACES traces of SPANS_PER_TRACE spans, sessions of TURNS turns."""
    rows: dict[str, list] = {
        k: []
        for k in (
            "trace_id",
            "span_id",
            "parent_span_id",
            "name",
            "kind",
            "service_name",
            "start_time",
            "end_time",
            "duration_ns",
            "status_code",
            "attributes",
        )
    }
    week = days * 86_400 * 10**9
    for t in range(TRACES):
        session, turn = divmod(t, TURNS)
        start = t0 + int(session / (TRACES / TURNS) * week) + turn * 60 * 10**9
        trace_id = f"{rng.integers(1, 2**63):016x}{t:016x}"
        ids = [f"{t:08x}{i:08x}" for i in range(SPANS_PER_TRACE)]
        question = (
            f"turn {turn} of session {session}: compare plan {rng.integers(0, 50)} with option {t % 97}"
        )
        user = f"user-{session % 300:03d}"

        def add(
            i: int,
            parent: str | None,
            name: str,
            kind: str,
            offset: int,
            duration: int,
            status: str,
            attributes: dict[str, str],
            rows: dict[str, list] = rows,
            ids: list[str] = ids,
            trace_id: str = trace_id,
            start: int = start,
        ) -> None:
            rows["trace_id"].append(trace_id)
            rows["span_id"].append(ids[i])
            rows["parent_span_id"].append(parent)
            rows["name"].append(name)
            rows["kind"].append(kind)
            rows["service_name"].append("agent-app")
            rows["start_time"].append(start + offset)
            rows["end_time"].append(start + offset + duration)
            rows["duration_ns"].append(duration)
            rows["status_code"].append(status)
            rows["attributes"].append(list(attributes.items()))

        add(
            0,
            None,
            "invoke_agent assistant",
            "INTERNAL",
            0,
            900_000_000,
            "UNSET",
            {
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": "assistant",
                "session.id": f"bench-session-{session:05d}",
                "user.id": user,
            },
        )
        for i, (offset, model) in (
            (1, (1_000_000, "gpt-4o")),
            (2, (300_000_000, "gpt-4o-mini")),
            (4, (600_000_000, "gpt-4o")),
        ):
            attributes = {
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": model,
                "gen_ai.usage.input_tokens": str(int(rng.integers(50, 2000))),
                "gen_ai.usage.output_tokens": str(int(rng.integers(10, 400))),
            }
            if rng.random() < CONTENT_SHARE:
                attributes["gen_ai.input.messages"] = json.dumps(
                    [
                        {
                            "role": "system",
                            "parts": [{"type": "text", "content": "You are a planning assistant." * 8}],
                        },
                        {"role": "user", "parts": [{"type": "text", "content": question}]},
                    ]
                )
                attributes["gen_ai.output.messages"] = json.dumps(
                    [
                        {
                            "role": "assistant",
                            "parts": [{"type": "text", "content": f"Answer to {question}. " * 6}],
                            "finish_reason": "stop",
                        }
                    ]
                )
            status = "ERROR" if rng.random() < 0.02 else "UNSET"
            add(
                i,
                ids[0],
                f"chat {model}",
                "CLIENT",
                offset,
                int(rng.integers(50, 250)) * 1_000_000,
                status,
                attributes,
            )
        add(
            3,
            ids[0],
            "execute_tool search",
            "INTERNAL",
            500_000_000,
            int(rng.integers(5, 80)) * 1_000_000,
            "UNSET",
            {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"},
        )
    columns = dict(rows)
    columns["start_time"] = pa.array(np.array(rows["start_time"], dtype=np.int64)).cast(schema.NS_TIMESTAMP)
    columns["end_time"] = pa.array(np.array(rows["end_time"], dtype=np.int64)).cast(schema.NS_TIMESTAMP)
    columns["attributes"] = pa.array(rows["attributes"], schema.ATTRIBUTES)
    columns["resource_attributes"] = pa.array(
        [[("service.name", "agent-app")]] * len(rows["name"]), schema.ATTRIBUTES
    )
    columns["scope_name"] = ["bench.agent"] * len(rows["name"])
    return table_from_columns("spans", columns, len(rows["name"]))


def build(root: Path) -> None:
    """bench/explorer.py's store plus the agent workload."""
    explorer_bench = _bench_explorer()
    explorer_bench.build(root)  # type: ignore[attr-defined]
    rng = np.random.default_rng(14)
    table = _agent_spans(rng, int(explorer_bench.T0), int(explorer_bench.DAYS))  # type: ignore[attr-defined]
    writer = StoreWriter(root, durable=False)
    for offset in range(0, table.num_rows, 50_000):
        writer.write("spans", table.slice(offset, 50_000))
    (root / "CHAT_BENCH").write_text("1")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=str(Path(tempfile.gettempdir()) / "langswarm-bench-chat"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--regenerate", action="store_true")
    args = parser.parse_args()
    root = Path(args.store)
    if args.regenerate or not (root / "CHAT_BENCH").exists():
        if (root / "CHAT_BENCH").exists():
            shutil.rmtree(root)  # only a store this script made (it has the marker file)
        elif root.exists() and any(root.iterdir()):
            print(f"{root} is not empty and not a bench store; pass --store to an empty or new directory")
            return 2
        started = time.perf_counter()
        build(root)
        print(f"built the store in {time.perf_counter() - started:.1f} s at {root}")
    store = open_store(root)
    spans = int(store.sql("SELECT count(*) AS n FROM spans").n[0])
    _first, last = queries.time_bounds(store)
    day = {"start": last - timedelta(days=1), "end": last}
    latest = queries.sessions(store, limit=1).iloc[0]
    one = latest.session_id
    bounds = {
        "start": latest.first_time - timedelta(seconds=1),
        "end": latest.last_time + timedelta(seconds=1),
    }
    llm = store.sql(
        "SELECT trace_id, span_id FROM spans WHERE attributes['gen_ai.input.messages'] IS NOT NULL LIMIT 1"
    ).iloc[0]

    cases: list[tuple[str, Callable[[], object], float | None]] = [
        (
            "baseline: full scan count(*), sum(duration_ns)",
            lambda: store.sql("SELECT count(*), sum(duration_ns) FROM spans"),
            None,
        ),
        (
            "reference: Traces by correlation id (bench/explorer.py's case)",
            lambda: queries.search_traces(store, correlation_id="corr-4242"),
            None,
        ),
        ("sessions list (all 7 days, 200 rows)", lambda: queries.sessions(store, limit=200), 1.0),
        ("sessions list (last day)", lambda: queries.sessions(store, limit=200, **day), 1.0),
        ("sessions list (one user)", lambda: queries.sessions(store, user_id="user-007"), 1.0),
        (
            f"one session ({TURNS} turns, inputs and answers), as the page opens it",
            lambda: queries.session_traces(store, one, **bounds),
            1.0,
        ),
        ("one session, no time bounds", lambda: queries.session_traces(store, one), None),
        ("graph (last day)", lambda: queries.service_graph(store, **day), 1.0),
        ("graph (all 7 days)", lambda: queries.service_graph(store), None),
        (
            "content search (all 7 days, spans + logs)",
            lambda: queries.search_content(store, "option 42", limit=200),
            1.0,
        ),
        (
            "content search (last day)",
            lambda: queries.search_content(store, "option 42", limit=200, **day),
            1.0,
        ),
        (
            "traces by prompt text (last day)",
            lambda: queries.search_traces(store, content_text="option 42", limit=200, **day),
            1.0,
        ),
        ("messages of one LLM span", lambda: queries.messages(store, llm.trace_id, llm.span_id), 1.0),
    ]
    print(f"store: {spans:,} spans, {root}; median of {args.runs} runs each (cold: no Streamlit cache)")
    base = None
    failed = []
    for label, function, target in cases:
        function()  # warm the OS page cache, as a second visit would
        seconds = median(function, args.runs)
        base = base or seconds
        verdict = "" if target is None else ("ok" if seconds < target else f"OVER {target:g} s")
        if target is not None and seconds >= target:
            failed.append(label)
        print(f"{label:<58} {seconds * 1000:8.0f} ms  {seconds / base:5.1f}x baseline  {verdict}")
    store.close()
    if failed:
        print(f"over target: {', '.join(failed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

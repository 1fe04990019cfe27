"""Cost of PerformanceProfiler: a profiled call versus the same call unprofiled, and at sample_rate=0.01.

The workload is a realistic agent step (parse a JSON tool result, tokenise with a regex, score and rank
passages, render a prompt): about a hundred distinct functions and a few thousand calls per step. Each run
alternates the variants in ``--rounds`` short rounds of ``--calls`` calls (``--sampled-calls`` for the
sampled variant and its own baseline, so each run profiles about fifty calls); the script prints, per
variant, the median over ``--runs`` runs of the per-call time, and the added cost against the unprofiled
baseline measured in the same runs. The profiler writes to a throwaway store (default durable writes; its background writer included).

    .venv/bin/python bench/profiler_overhead.py [--runs 7] [--rounds 10] [--calls 30] [--sampled-calls 500]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import random
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest import ObservabilityProvider, PerformanceProfiler  # noqa: E402

WORD = re.compile(r"[A-Za-z][a-z']+")
TOOL_RESULT = json.dumps(
    {
        "query": "how do agents share memory",
        "passages": [
            {
                "id": i,
                "source": f"doc-{i % 7}",
                "text": " ".join(
                    f"Agents exchange messages through shared memory stores number {j} and retrieval"
                    for j in range(6)
                ),
                "score": (i * 37 % 101) / 101,
            }
            for i in range(24)
        ],
    }
)


@dataclass
class Passage:
    id: int
    source: str
    text: str
    score: float


def tokenize(text: str) -> list[str]:
    return [w.lower() for w in WORD.findall(text)]


def overlap(query: list[str], tokens: list[str]) -> float:
    wanted = set(query)
    return sum(1 for t in tokens if t in wanted) / (len(tokens) or 1)


def rank(query: list[str], passages: list[Passage]) -> list[tuple[float, Passage]]:
    scored = [(0.7 * overlap(query, tokenize(p.text)) + 0.3 * p.score, p) for p in passages]
    return sorted(scored, key=lambda pair: pair[0], reverse=True)


def render(query: str, ranked: list[tuple[float, Passage]]) -> str:
    lines = [f"[{p.source}#{p.id} {s:.2f}] {p.text[:120]}" for s, p in ranked[:8]]
    return "Answer the question using the passages.\n" + "\n".join(lines) + f"\nQuestion: {query}\n"


def agent_step(payload: str = TOOL_RESULT) -> int:
    """One retrieval-augmented agent step: parse, tokenise, rank, render."""
    data = json.loads(payload)
    passages = [Passage(**p) for p in data["passages"]]
    prompt = render(data["query"], rank(tokenize(data["query"]), passages))
    return len(prompt)


def raw_cprofile(payload: str = TOOL_RESULT) -> int:
    """cProfile alone around the step (enable, call, disable, read the stats): the floor of any profiler."""
    profile = cProfile.Profile()
    profile.enable()
    try:
        return agent_step(payload)
    finally:
        profile.disable()
        profile.getstats()


def timed(func, calls: int) -> float:
    """Seconds taken by ``calls`` calls of ``func``."""
    start = time.perf_counter()
    for _ in range(calls):
        func()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="runs (default 7)")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds per run (default 10)")
    parser.add_argument("--calls", type=int, default=30, help="calls per round, profiled variants (default 30)")
    parser.add_argument(
        "--sampled-calls", type=int, default=500, help="calls per round, sampled variants (default 500)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as store:
        config = {"store": {"path": store}, "logging": {"output": "none"}}
        provider = ObservabilityProvider.create(config, "bench-profiler")
        profiler = PerformanceProfiler(provider, rng=random.Random(1))
        always = profiler.profile_operation("agent_step")(agent_step)
        detailed = profiler.profile_operation("agent_step_detailed", detailed=True)(agent_step)
        sampled = profiler.profile_operation("agent_step_sampled", sample_rate=0.01)(agent_step)
        variants = {
            "unprofiled": (agent_step, args.calls),
            "raw cProfile": (raw_cprofile, args.calls),
            "profiled": (always, args.calls),
            "profiled detailed": (detailed, args.calls),
            "unprofiled (long)": (agent_step, args.sampled_calls),
            "sample_rate=0.01": (sampled, args.sampled_calls),
        }
        for func, _ in variants.values():  # warm up imports, caches and the exporters
            timed(func, 20)
        samples: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.runs):
            # Each run alternates the variants in short rounds, so slow drifts of a noisy machine hit all alike.
            spent = dict.fromkeys(variants, 0.0)
            for _ in range(args.rounds):
                for name, (func, calls) in variants.items():
                    spent[name] += timed(func, calls)
            for name, (_, calls) in variants.items():
                samples[name].append(spent[name] / (calls * args.rounds))
        provider.shutdown()
        functions, calls = duckdb.sql(
            f"SELECT count(*), sum(calls) FROM read_parquet('{store}/profiles/**/*.parquet') "
            "WHERE caller IS NULL AND profile_id = (SELECT min(profile_id) FROM "
            f"read_parquet('{store}/profiles/**/*.parquet') WHERE operation = 'agent_step')"
        ).fetchall()[0]
        sampled_profiles = duckdb.sql(
            f"SELECT count(DISTINCT profile_id) FROM read_parquet('{store}/profiles/**/*.parquet') "
            "WHERE operation = 'agent_step_sampled'"
        ).fetchall()[0][0]

    median = {name: statistics.median(values) for name, values in samples.items()}
    sampled_calls = (args.runs * args.rounds + 2) * args.sampled_calls
    print(
        f"profiler overhead: median of {args.runs} runs x {args.rounds} interleaved rounds; workload "
        f"{median['unprofiled'] * 1e6:.0f}us/call, {functions} functions and {calls} calls per step; "
        f"sample_rate=0.01 profiled {sampled_profiles} of {sampled_calls} calls"
    )
    print(f"{'variant':<20}{'calls/run':>10}{'per call':>12}{'added':>12}{'ratio':>8}")
    for name, value in median.items():
        base = median["unprofiled (long)" if "long" in name or "sample" in name else "unprofiled"]
        calls_per_run = variants[name][1] * args.rounds
        print(
            f"{name:<20}{calls_per_run:>10}{value * 1e6:>10.1f}us{(value - base) * 1e6:>10.1f}us{value / base:>7.3f}x"
        )
    expected = 0.01 * (median["profiled"] - median["unprofiled"])
    print(f"expected added cost at sample_rate=0.01 (0.01 x profiled added cost): {expected * 1e6:.1f}us/call")


if __name__ == "__main__":
    main()

"""Cost of PerformanceProfiler: a profiled call versus the same call unprofiled, and at sample_rate=0.01.

The workload is a realistic agent step (parse a JSON tool result, tokenise with a regex, score and rank
passages, render a prompt): 25 functions and about 2,000 calls per step, about 300 us. Each run
alternates the variants in ``--rounds`` short rounds of ``--calls`` calls (``--sampled-calls`` for the
sampled variant and its own baseline, so each run profiles about fifty calls); the script prints, per
variant, the median over ``--runs`` runs of the per-call time, and the added cost against the unprofiled
baseline measured in the same runs; for sample_rate=0.01, whose cost is below the machine's noise, also a
figure from the medians of single calls alternated with the baseline. Profiles go to a throwaway store
(durable writes, the default); they are written between rounds and timed apart, per row.

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

from ingest import ObservabilityProvider, PerformanceProfiler

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
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7, help="runs (default 7)")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds per run (default 10)")
    parser.add_argument(
        "--calls", type=int, default=30, help="calls per round, profiled variants (default 30)"
    )
    parser.add_argument(
        "--sampled-calls", type=int, default=500, help="calls per round, sampled variants (default 500)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as store:
        config = {"store": {"path": store}, "logging": {"output": "none"}}
        provider = ObservabilityProvider.create(config, "bench-profiler")
        # The background writer is held back: the rows are written between rounds, timed on their own, so no
        # variant pays for another's writes (in production the writer thread does this every 5 s).
        profiler = PerformanceProfiler(
            provider, rng=random.Random(1), flush_interval_s=3600, max_buffered_rows=10**9
        )
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
        profiler.flush()
        writes: list[tuple[int, float]] = []
        single: dict[str, list[float]] = {"plain": [], "unsampled": [], "sampled": []}
        samples: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.runs):
            # Each run alternates the variants in short rounds: slow drifts of a noisy machine hit all alike.
            spent = dict.fromkeys(variants, 0.0)
            for _ in range(args.rounds):
                for name, (func, calls) in variants.items():
                    if name == "unprofiled (long)":
                        continue
                    if name == "sample_rate=0.01":
                        # The 1% variant differs from its baseline by a few percent, less than this machine's
                        # noise: alternate single calls with the baseline and keep each call's time.
                        for _ in range(calls):
                            start = time.perf_counter()
                            agent_step()
                            middle = time.perf_counter()
                            before = profiler.profiles_recorded
                            func()
                            end = time.perf_counter()
                            spent["unprofiled (long)"] += middle - start
                            spent[name] += end - middle
                            single["plain"].append(middle - start)
                            single["sampled" if profiler.profiles_recorded > before else "unsampled"].append(
                                end - middle
                            )
                        continue
                    spent[name] += timed(func, calls)
                start = time.perf_counter()
                rows = profiler.flush()
                writes.append((rows, time.perf_counter() - start))
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
    sampled_calls = args.runs * args.rounds * args.sampled_calls + 20  # and the warm-up calls
    print(
        f"profiler overhead: median of {args.runs} runs x {args.rounds} interleaved rounds; workload "
        f"{median['unprofiled'] * 1e6:.0f}us/call, {functions} functions and {calls} calls per step; "
        f"sample_rate=0.01 profiled {sampled_profiles} of {sampled_calls} calls"
    )
    print(f"{'variant':<20}{'calls/run':>10}{'per call':>12}{'added':>12}{'ratio':>8}")
    for name, value in median.items():
        base = median["unprofiled (long)" if "long" in name or "sample" in name else "unprofiled"]
        calls_per_run = variants[name][1] * args.rounds
        added = (value - base) * 1e6
        print(f"{name:<20}{calls_per_run:>10}{value * 1e6:>10.1f}us{added:>10.1f}us{value / base:>7.3f}x")
    # Means of single calls carry this machine's long tail (preemptions of several ms); per-call medians do
    # not, so the 1% cost is also given as: share x (median sampled call) + (1 - share) x (median unsampled
    # call) - median plain call, all from the same alternating loop.
    med = {kind: statistics.median(times) for kind, times in single.items()}
    share = len(single["sampled"]) / (len(single["sampled"]) + len(single["unsampled"]))
    added = share * med["sampled"] + (1 - share) * med["unsampled"] - med["plain"]
    print(
        f"sample_rate=0.01 from per-call medians: plain {med['plain'] * 1e6:.1f}us, unsampled "
        f"{med['unsampled'] * 1e6:.1f}us, sampled {med['sampled'] * 1e6:.1f}us ({share:.2%} of calls): "
        f"added {added * 1e6:.1f}us per call ({added / med['plain']:.1%})"
    )
    rows = statistics.median(r for r, _ in writes)
    seconds = statistics.median(t for _, t in writes)
    print(
        f"writing profiles (background thread, off the calls' path): median {seconds * 1e3:.1f}ms per file "
        f"of {rows:.0f} rows = {seconds / rows * 1e6:.2f}us per row, "
        f"{seconds / rows * 52 * 1e6:.0f}us per profile of this workload"
    )


if __name__ == "__main__":
    main()

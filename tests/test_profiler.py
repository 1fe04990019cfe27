"""PerformanceProfiler: real cProfile, real provider and store, profiles read back with DuckDB."""

from __future__ import annotations

import asyncio
import cProfile
import random
import sys
import threading

import pytest

from explorer import open_store
from explorer.queries import profile_edges, profile_hotspots, profile_operations, profile_spans
from ingest import ConfigurationError, PerformanceProfiler
from ingest.sdk.profiler import SKIP_NESTED, SKIP_OTHER


def leaf(x):
    return x * 2


def middle(n):
    total = 0
    for i in range(n):
        total += leaf(i)
    return total


def fact(n):
    return 1 if n <= 1 else n * fact(n - 1)


def spin(n):
    total = 0
    for i in range(n):
        total += i % 7
    return total


def heavy():
    return spin(400_000)


def medium():
    return spin(40_000)


def light():
    return spin(4_000)


class Agent:
    def plan(self, steps):
        return [middle(s) for s in range(steps)]


@pytest.fixture
def setup(make_provider, tmp_path):
    provider = make_provider()
    profiler = PerformanceProfiler(provider)

    def read():
        provider.force_flush()
        return open_store(tmp_path / "store")

    return provider, profiler, read


def short(name):
    """A function's qualified name without the test's ``...<locals>.`` prefix."""
    return name.split("<locals>.")[-1]


def totals(store, operation):
    """Per-function total rows of an operation's profiles, keyed by (short) function name."""
    frame = store.sql("SELECT * FROM profiles WHERE operation = ? AND caller IS NULL", [operation])
    return {short(row.function): row for row in frame.itertuples()}


def edge(store, operation, caller, function):
    frame = store.sql(
        "SELECT caller, function, calls, primitive_calls FROM profiles "
        "WHERE operation = ? AND caller IS NOT NULL",
        [operation],
    )
    frame = frame[(frame["caller"].map(short) == caller) & (frame["function"].map(short) == function)]
    assert len(frame) == 1, f"expected one {caller} -> {function} edge, got {len(frame)}"
    return frame.iloc[0]


class TestSyncProfiles:
    def test_nested_and_recursive_calls_are_counted_and_linked_to_the_span(self, setup):
        """Call counts match what the code did; every row carries the profiled span's trace and span ids."""
        provider, profiler, read = setup

        @profiler.profile_operation("plan")
        def plan():
            total = 0
            for _ in range(3):
                total += middle(4)
            return total + fact(6)

        tracer = provider.get_tracer("tests")
        with tracer.start_span("request") as parent:
            assert plan() == 3 * (0 + 2 + 4 + 6) + 720
        store = read()

        fns = totals(store, "plan")
        plan_name = "plan"
        assert fns[plan_name].calls == 1
        assert fns["middle"].calls == 3
        assert fns["leaf"].calls == 12
        assert (fns["fact"].calls, fns["fact"].primitive_calls) == (6, 1)
        assert fns["leaf"].file == __file__ and fns["leaf"].line == leaf.__code__.co_firstlineno
        assert edge(store, "plan", plan_name, "middle")["calls"] == 3
        assert edge(store, "plan", "middle", "leaf")["calls"] == 12
        assert edge(store, "plan", plan_name, "fact")["calls"] == 1
        assert edge(store, "plan", "fact", "fact")["calls"] == 5
        assert not any("_lsprof" in name for name in fns), "the profiler's own disable() is not a row"
        ours = store.sql(
            "SELECT count(*) FROM profiles WHERE file LIKE '%ingest%' OR caller_file LIKE '%ingest%'"
        )
        assert ours.iloc[0, 0] == 0, "no frame of the profiler or the SDK is measured"

        rows = store.sql("SELECT DISTINCT profile_id, trace_id, span_id, service_name FROM profiles")
        assert len(rows) == 1
        span = store.sql("SELECT * FROM spans WHERE span_id = ?", [rows.iloc[0]["span_id"]]).iloc[0]
        assert span["name"] == "profiled_plan"
        assert span["trace_id"] == rows.iloc[0]["trace_id"] == parent.trace_id
        assert span["parent_span_id"] == parent.span_id
        attributes = dict(span["attributes"])
        assert attributes["profile.id"] == rows.iloc[0]["profile_id"]
        assert attributes["profiling.enabled"] == "true"
        assert "profile.top_function" not in attributes
        assert rows.iloc[0]["service_name"] == "test-service"

    def test_methods_keep_their_qualified_name(self, setup):
        """A profiled method's rows name functions by qualified name (Agent.plan)."""
        _, profiler, read = setup
        agent = Agent()
        agent.plan = profiler.profile_operation("agent_plan")(agent.plan)
        agent.plan(4)
        fns = totals(read(), "agent_plan")
        assert fns["Agent.plan"].calls == 1
        assert fns["middle"].calls == 4 and fns["leaf"].calls == 0 + 1 + 2 + 3

    def test_detailed_puts_the_summary_on_the_span(self, setup):
        """detailed=True: total calls, top function by self time and its time, as span attributes."""
        _, profiler, read = setup
        profiler.profile_operation("busy", detailed=True)(lambda: [heavy(), light()])()
        store = read()
        fns = store.sql("SELECT * FROM profiles WHERE operation = 'busy' AND caller IS NULL")
        top = fns.sort_values("self_time_s", ascending=False).iloc[0]
        attributes = dict(store.sql("SELECT attributes FROM spans WHERE name = 'profiled_busy'").iloc[0, 0])
        assert int(attributes["profile.total_calls"]) == fns["calls"].sum()
        assert attributes["profile.top_function"] == top["function"] == "spin"
        assert float(attributes["profile.top_function_time_s"]) == pytest.approx(top["self_time_s"])
        assert int(attributes["profile.functions"]) == len(fns)

    def test_failing_call_still_profiled_and_raises(self, setup):
        """The user's exception propagates unchanged; the span is ERROR and the profile is kept."""
        _, profiler, read = setup

        @profiler.profile_operation("explode")
        def explode():
            middle(2)
            raise KeyError("no such tool")

        with pytest.raises(KeyError, match="no such tool"):
            explode()
        store = read()
        assert totals(store, "explode")["middle"].calls == 1
        assert store.sql("SELECT count(*) FROM profiles WHERE file LIKE '%ingest%'").iloc[0, 0] == 0
        failure = store.sql("SELECT attributes FROM logs WHERE body = 'Profiled operation failed: explode'")
        assert dict(failure.iloc[0, 0])["error_type"] == "KeyError"
        span = store.sql("SELECT status_code FROM spans WHERE name = 'profiled_explode'").iloc[0]
        assert span["status_code"] == "ERROR"

    def test_hotspots_are_ordered_by_self_time(self, setup):
        """The hotspot query ranks functions by summed self time over an operation's profiles."""
        _, profiler, read = setup

        @profiler.profile_operation("hot")
        def hot():
            light()
            heavy()
            medium()

        hot()
        hot()
        store = read()
        top = profile_hotspots(store, operation="hot", limit=50)
        raw = store.sql(
            "SELECT function, sum(self_time_s) AS s FROM profiles WHERE operation = 'hot' AND caller IS NULL "
            "GROUP BY function ORDER BY s DESC, function"
        )
        assert top["function"].tolist() == raw["function"].tolist()
        assert top["self_s"].tolist() == pytest.approx(raw["s"].tolist())
        assert top.iloc[0]["function"] == "spin"
        spin_row = top.iloc[0]
        assert spin_row["calls"] == 6 and spin_row["profiles"] == 2
        assert top["self_share"].sum() == pytest.approx(1.0)
        # Per caller, heavy's spin (10x the work of medium's, 100x light's) has the most self time.
        span_id = store.sql("SELECT span_id FROM profiles WHERE operation = 'hot' LIMIT 1").iloc[0, 0]
        edges = profile_edges(store, span_id=span_id)
        spin_edges = edges[edges["function"] == "spin"].set_index("caller")["self_s"]
        assert spin_edges["heavy"] > max(spin_edges["medium"], spin_edges["light"])
        assert profile_hotspots(store, span_id=span_id)["profiles"].max() == 1
        assert profile_hotspots(store, operation="no-such-operation").empty
        ops = profile_operations(store)
        assert ops.set_index("operation").loc["hot", "profiles"] == 2

    def test_concurrent_threads_get_their_own_profiles(self, setup):
        """Two threads profiling at once each see exactly their own calls."""
        _, profiler, read = setup
        op = profiler.profile_operation("threaded")(middle)
        barrier = threading.Barrier(2)

        def run(n):
            barrier.wait()
            for _ in range(5):
                op(n)

        threads = [threading.Thread(target=run, args=(n,)) for n in (3, 7)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        frame = read().sql(
            "SELECT profile_id, calls FROM profiles "
            "WHERE operation = 'threaded' AND caller IS NULL AND function = 'leaf'"
        )
        assert len(frame) == 10
        assert sorted(frame["calls"].tolist()) == [3] * 5 + [7] * 5


class TestAsyncProfiles:
    def test_nested_and_recursive_coroutines_only_this_task(self, setup):
        """Async profiles count this task's calls only, not those of tasks that run while it waits.

        cProfile counts every start or resumption of a coroutine as a call: a coroutine that suspends
        k times counts 1 + k calls. Coroutines that never suspend (afib) and sync functions count exactly.
        """
        _, profiler, read = setup

        async def fetch(i):
            await asyncio.sleep(0)  # suspends once
            return leaf(i)

        async def afib(n):
            return n if n < 2 else await afib(n - 1) + await afib(n - 2)

        @profiler.profile_operation("answer")
        async def answer():
            total = 0
            for i in range(3):
                total += await fetch(i)
            return total + await afib(6) + middle(2)

        async def background():
            for _ in range(20):
                leaf(-1)
                middle(5)
                await asyncio.sleep(0)

        async def main():
            noise = asyncio.create_task(background())
            await asyncio.sleep(0)
            result = await answer()
            await noise
            return result

        assert asyncio.run(main()) == (0 + 2 + 4) + 8 + 2
        store = read()
        fns = totals(store, "answer")
        assert store.sql("SELECT count(*) FROM profiles WHERE file LIKE '%ingest%'").iloc[0, 0] == 0
        assert fns["afib"].calls == 25 and fns["afib"].primitive_calls == 1
        assert fns["leaf"].calls == 3 + 2, "background task's leaf/middle calls are not in the profile"
        assert fns["middle"].calls == 1
        assert "background" not in fns
        assert fns["fetch"].calls == 3 + 3  # 3 calls + 3 resumptions
        assert fns["answer"].calls == 1 + 3  # 1 call + resumed after each fetch suspension
        assert edge(store, "answer", "fetch", "leaf")["calls"] == 3
        assert edge(store, "answer", "afib", "afib")["calls"] == 24
        profile = store.sql("SELECT DISTINCT span_id, trace_id FROM profiles WHERE operation = 'answer'")
        assert len(profile) == 1
        span = store.sql(
            "SELECT name, trace_id FROM spans WHERE span_id = ?", [profile.iloc[0]["span_id"]]
        ).iloc[0]
        assert span["name"] == "profiled_answer" and span["trace_id"] == profile.iloc[0]["trace_id"]
        assert not any("coroutine" in name or "_lsprof" in name for name in fns)

    def test_concurrent_profiled_tasks_are_separate(self, setup):
        """Two profiled tasks interleaving on one loop each get a profile with only their own calls."""
        _, profiler, read = setup

        @profiler.profile_operation("worker")
        async def worker(n):
            for _ in range(n):
                leaf(n)
                await asyncio.sleep(0)

        async def main():
            await asyncio.gather(worker(2), worker(5))

        asyncio.run(main())
        frame = read().sql(
            "SELECT calls FROM profiles WHERE operation = 'worker' AND caller IS NULL AND function = 'leaf'"
        )
        assert sorted(frame["calls"].tolist()) == [2, 5]

    def test_cancelled_task_propagates_and_keeps_its_profile(self, setup):
        """Cancellation reaches the profiled coroutine; the partial profile is still written."""
        _, profiler, read = setup

        @profiler.profile_operation("slow")
        async def slow(flag):
            middle(3)
            flag.set()
            await asyncio.sleep(3600)

        async def main():
            flag = asyncio.Event()
            task = asyncio.create_task(slow(flag))
            await flag.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())
        store = read()
        assert totals(store, "slow")["middle"].calls == 1
        assert store.sql("SELECT status_code FROM spans WHERE name = 'profiled_slow'").iloc[0, 0] == "ERROR"


class TestProfilerAlreadyActive:
    def test_nested_profiled_call_runs_unprofiled_and_is_recorded(self, setup):
        """The inner profiled call runs in the outer profile; its span says why it has none of its own."""
        _, profiler, read = setup
        inner = profiler.profile_operation("inner")(middle)

        @profiler.profile_operation("outer")
        def outer():
            return inner(4) + inner(2)

        assert outer() == 12 + 2
        store = read()
        assert store.sql("SELECT count(*) FROM profiles WHERE operation = 'inner'").iloc[0, 0] == 0
        assert totals(store, "outer")["leaf"].calls == 6
        spans = store.sql("SELECT name, attributes FROM spans WHERE name = 'profiled_inner'")
        assert len(spans) == 2
        for attributes in spans["attributes"]:
            attributes = dict(attributes)
            assert attributes["profiling.enabled"] == "false"
            assert attributes["profiling.skipped_reason"] == SKIP_NESTED
        skipped = store.sql(
            "SELECT value FROM metrics WHERE name = 'profiler_skipped_calls_total' "
            "AND attributes['reason'] = ? AND attributes['operation'] = 'inner' "
            "ORDER BY timestamp DESC LIMIT 1",
            [SKIP_NESTED],
        )
        assert skipped.iloc[0, 0] == 2
        assert profiler.calls_skipped == 2

    def test_another_tools_profiler_is_left_running(self, setup):
        """With another cProfile active, the call succeeds unprofiled and that profiler keeps measuring."""
        _, profiler, read = setup
        op = profiler.profile_operation("guarded")(middle)
        theirs = cProfile.Profile()
        theirs.enable()
        try:
            result = op(3)
            still_theirs = sys.getprofile() is theirs
        finally:
            theirs.disable()
        assert result == 6 and still_theirs
        theirs_counts = {
            e.code.co_name: e.callcount for e in theirs.getstats() if not isinstance(e.code, str)
        }
        assert theirs_counts["leaf"] == 3, "the other tool's profile saw the call"
        store = read()
        assert store.sql("SELECT count(*) FROM profiles").iloc[0, 0] == 0
        attributes = dict(
            store.sql("SELECT attributes FROM spans WHERE name = 'profiled_guarded'").iloc[0, 0]
        )
        assert attributes["profiling.skipped_reason"] == SKIP_OTHER
        op(2)  # once the other tool is gone, calls are profiled again
        assert totals(read(), "guarded")["leaf"].calls == 2


class TestSampling:
    def test_sample_rate_profiles_the_drawn_share(self, make_provider, tmp_path):
        """Exactly the calls whose draw falls under sample_rate are profiled; others have no span."""
        provider = make_provider()
        profiler = PerformanceProfiler(provider, sample_rate=0.2, rng=random.Random(42))
        op = profiler.profile_operation("sampled")(leaf)
        assert [op(i) for i in range(200)] == [2 * i for i in range(200)]
        draws = random.Random(42)
        expected = sum(draws.random() < 0.2 for _ in range(200))
        provider.force_flush()
        store = open_store(tmp_path / "store")
        assert 0 < expected < 200
        assert store.sql("SELECT count(DISTINCT profile_id) FROM profiles").iloc[0, 0] == expected
        assert store.sql("SELECT count(*) FROM spans WHERE name = 'profiled_sampled'").iloc[0, 0] == expected

    def test_rate_zero_and_per_operation_override(self, make_provider, tmp_path):
        """sample_rate=0 never profiles; a per-operation rate overrides the profiler's."""
        provider = make_provider()
        profiler = PerformanceProfiler(provider, sample_rate=0.0)
        never = profiler.profile_operation("never")(leaf)
        always = profiler.profile_operation("always", sample_rate=1.0)(leaf)
        for i in range(10):
            never(i)
            always(i)
        provider.force_flush()
        ops = open_store(tmp_path / "store").sql(
            "SELECT operation, count(DISTINCT profile_id) AS n FROM profiles GROUP BY 1"
        )
        assert ops.set_index("operation")["n"].to_dict() == {"always": 10}


class TestBufferAndErrors:
    def test_rows_wait_in_the_buffer_until_flush_or_provider_shutdown(self, make_provider, tmp_path):
        """Profiles are batched: nothing on disk before a flush; provider.shutdown() writes them."""
        provider = make_provider()
        profiler = PerformanceProfiler(provider, flush_interval_s=3600)
        op = profiler.profile_operation("batched")(middle)
        for _ in range(3):
            op(2)
        assert not (tmp_path / "store" / "profiles").exists()
        provider.shutdown()
        store = open_store(tmp_path / "store")
        assert store.sql("SELECT count(DISTINCT profile_id) FROM profiles").iloc[0, 0] == 3
        assert profiler.rows_written == store.sql("SELECT count(*) FROM profiles").iloc[0, 0]
        assert len(list((tmp_path / "store" / "profiles").rglob("*.parquet"))) == 1

    def test_unwritable_store_counts_dropped_rows_and_never_raises(self, make_provider, tmp_path):
        """A store that cannot be written loses the batch, counted; the user's calls are unaffected."""
        provider = make_provider()
        profiler = PerformanceProfiler(provider, flush_interval_s=3600)
        op = profiler.profile_operation("doomed")(middle)
        op(2)
        (tmp_path / "store").mkdir(exist_ok=True)
        (tmp_path / "store" / "profiles").write_text("not a directory")
        assert profiler.flush() == 0
        assert profiler.rows_dropped > 0 and profiler.rows_written == 0
        assert op(3) == 6

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"sample_rate": 1.5}, "sample_rate must be a number from 0.0"),
            ({"sample_rate": "all"}, "sample_rate must be a number from 0.0"),
            ({"flush_interval_s": 0}, "flush_interval_s must be a positive number"),
        ],
    )
    def test_bad_settings_are_named(self, make_provider, kwargs, message):
        """Bad constructor arguments raise ConfigurationError naming the argument."""
        with pytest.raises(ConfigurationError, match=message):
            PerformanceProfiler(make_provider(), **kwargs)

    def test_bad_decorator_arguments_are_named(self, make_provider):
        """An empty operation name, a bad rate or a generator function are refused at decoration time."""
        profiler = PerformanceProfiler(make_provider())
        with pytest.raises(ConfigurationError, match="operation_name must be a non-empty string"):
            profiler.profile_operation("")
        with pytest.raises(ConfigurationError, match="sample_rate must be"):
            profiler.profile_operation("x", sample_rate=-0.1)

        def gen():
            yield 1

        with pytest.raises(ConfigurationError, match="cannot wrap the generator function"):
            profiler.profile_operation("gen")(gen)

    def test_profiled_spans_link_back_to_their_trace(self, setup):
        """Each profiled call is one profiled span of the caller's trace."""
        provider, profiler, read = setup
        op = profiler.profile_operation("step")(middle)
        with provider.get_tracer("tests").start_span("job") as parent:
            op(2)
            op(3)
        store = read()
        found = profile_spans(store, operation="step")
        assert len(found) == 2 and set(found["trace_id"]) == {parent.trace_id}
        children = store.sql("SELECT span_id FROM spans WHERE parent_span_id = ?", [parent.span_id])
        assert set(found["span_id"]) == set(children["span_id"])

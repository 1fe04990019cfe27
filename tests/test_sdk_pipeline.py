"""Pipeline guarantees: nothing dropped silently, unfinished spans, sampling, per-trace and per-span limits."""

from __future__ import annotations

import time

from explorer import open_store
from ingest.sdk.sampling import AdaptiveSampler


def _telemetry(store, name: str) -> dict[str, float]:
    """Latest value of a ``langswarm.telemetry.*`` counter by reason."""
    rows = store.sql(
        "SELECT attributes['reason'] AS reason, max(value) AS v FROM metrics WHERE name = ? GROUP BY ALL",
        [f"langswarm.telemetry.{name}"],
    )
    return dict(zip(rows["reason"], rows["v"]))


class TestDrops:
    def test_tight_loop_loses_nothing_with_default_queues(self, make_provider):
        """20k spans in a tight loop all reach the store and the store says zero were dropped."""
        provider = make_provider()
        tracer = provider.get_tracer("loop")
        n = 20_000
        for i in range(n):
            with tracer.start_span("tick") as span:
                span.set_attribute("i", i)
        provider.shutdown()
        store = open_store(provider.store_writer.root)
        assert store.sql("SELECT count(*) AS n FROM spans")["n"][0] == n
        assert _telemetry(store, "dropped_spans") == {
            "queue_full": 0,
            "export_failed": 0,
            "max_spans_per_trace": 0,
        }

    def test_queue_overflow_is_counted_exactly(self, make_provider):
        """With a tiny queue spans are dropped, and stored + counted drops == spans started."""
        provider = make_provider(
            {
                "tracing": {"max_queue_size": 8, "max_export_batch_size": 8},
                "logging": {"max_queue_size": 8, "max_export_batch_size": 8},
            }
        )
        tracer = provider.get_tracer("loop")
        logger = provider.get_logger("loop")
        n = 3000
        for i in range(n):
            with tracer.start_span("tick"):
                logger.info("tick", i=i)
        provider.shutdown()
        store = open_store(provider.store_writer.root)
        stored_spans = store.sql("SELECT count(*) AS n FROM spans")["n"][0]
        stored_logs = store.sql("SELECT count(*) AS n FROM logs")["n"][0]
        span_drops = _telemetry(store, "dropped_spans")["queue_full"]
        log_drops = _telemetry(store, "dropped_logs")["queue_full"]
        assert span_drops > 0 and log_drops > 0
        assert stored_spans + span_drops == n
        assert stored_logs + log_drops == n
        exported = store.sql(
            "SELECT attributes['signal'] AS s, max(value) AS v FROM metrics "
            "WHERE name = 'langswarm.telemetry.exported' GROUP BY ALL"
        )
        assert dict(zip(exported["s"], exported["v"])) == {"spans": stored_spans, "logs": stored_logs}

    def test_many_threads_account_exactly(self, make_provider):
        """Spans ended on several threads with a small queue: stored + counted drops == spans started."""
        import threading

        provider = make_provider({"tracing": {"max_queue_size": 16, "max_export_batch_size": 16}})
        tracer = provider.get_tracer("threads")

        def work() -> None:
            for _ in range(1500):
                with tracer.start_span("t"):
                    pass

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        provider.shutdown()
        store = open_store(provider.store_writer.root)
        stored = store.sql("SELECT count(*) AS n FROM spans")["n"][0]
        assert stored + _telemetry(store, "dropped_spans")["queue_full"] == 6000

    def test_export_failures_are_counted(self, tmp_path, make_provider):
        """A store that cannot be written counts every span as export_failed (never raises into the app)."""
        blocker = tmp_path / "not-a-dir"
        blocker.write_text("a file where the store should be")
        provider = make_provider({"store": {"path": str(blocker)}, "metrics": {"exporter": "none"}})
        with provider.get_tracer("x").start_span("lost"):
            pass
        provider.shutdown()
        assert provider.counters.get("spans", "export_failed") == 1


class TestUnfinishedSpans:
    def test_hung_span_is_written_unfinished_then_finished(self, make_provider):
        """A span open past span_timeout_seconds is stored with end_time NULL and marked; its end is stored too."""
        provider = make_provider({"performance": {"span_timeout_seconds": 0.1}})
        tracer = provider.get_tracer("jobs")
        hung = tracer.start_span("hung_operation", {"job": "j-1"})
        with hung:
            deadline = time.monotonic() + 60
            while provider.counters.get("unfinished_spans", "timeout") == 0 and time.monotonic() < deadline:
                time.sleep(0.02)
            provider.force_flush()
            store = open_store(provider.store_writer.root)
            snapshot = store.sql(
                "SELECT name, end_time, duration_ns, attributes['langswarm.span.unfinished'] AS unfinished, "
                "attributes['langswarm.span.unfinished_reason'] AS reason, attributes['job'] AS job, "
                "CAST(attributes['langswarm.span.open_seconds'] AS DOUBLE) AS open_s FROM spans"
            )
            assert len(snapshot) == 1
            row = snapshot.iloc[0]
            assert (
                row["name"] == "hung_operation" and row["unfinished"] == "true" and row["reason"] == "timeout"
            )
            assert row["end_time"] is None or row["end_time"] != row["end_time"]  # NULL (NaT)
            assert row["job"] == "j-1" and row["open_s"] >= 0.1
        left_open = tracer.start_span("never_ended")
        provider.shutdown()
        store = open_store(provider.store_writer.root)
        rows = store.sql(
            "SELECT name, span_id, end_time IS NULL AS open, coalesce(attributes['langswarm.span.unfinished_reason'], '') "
            "AS reason FROM spans ORDER BY name, open"
        )
        assert [tuple(r) for r in rows[["name", "open", "reason"]].itertuples(index=False)] == [
            ("hung_operation", False, ""),
            ("hung_operation", True, "timeout"),
            ("never_ended", True, "shutdown"),
        ]
        assert rows["span_id"][0] == rows["span_id"][1] == hung.span_id
        assert rows["span_id"][2] == left_open.span_id
        assert _telemetry(store, "unfinished_spans") == {"timeout": 1, "shutdown": 1}


class TestSampling:
    def test_ratio_keeps_or_drops_whole_traces(self, make_provider):
        """sampling_rate applies per trace: every stored trace is complete."""
        provider = make_provider({"tracing": {"sampling_rate": 0.5}})
        tracer = provider.get_tracer("s")
        for _ in range(400):
            with tracer.start_span("root"):
                with tracer.start_span("child"):
                    with tracer.start_span("grandchild"):
                        pass
        provider.shutdown()
        per_trace = open_store(provider.store_writer.root).sql(
            "SELECT trace_id, count(*) AS n FROM spans GROUP BY 1"
        )
        assert set(per_trace["n"]) == {3}
        assert 100 < len(per_trace) < 300

    def test_zero_rate_keeps_nothing(self, make_provider):
        """sampling_rate 0 records no spans (and they are not counted as drops)."""
        provider = make_provider({"tracing": {"sampling_rate": 0.0}})
        with provider.get_tracer("s").start_span("root") as span:
            assert not span.is_recording()
        provider.shutdown()
        store = open_store(provider.store_writer.root)
        assert store.sql("SELECT count(*) AS n FROM spans")["n"][0] == 0

    def test_adaptive_sampler_budget_then_ratio(self):
        """The token bucket admits traces_per_second roots, refills over time, then applies the ratio."""
        now = [0.0]
        sampler = AdaptiveSampler(0.0, 5.0, clock=lambda: now[0])
        decisions = [
            sampler.should_sample(None, trace_id=i + 1, name="r").decision.is_sampled() for i in range(20)
        ]
        assert decisions == [True] * 5 + [False] * 15
        now[0] += 0.4  # refills 2 tokens
        decisions = [
            sampler.should_sample(None, trace_id=i + 100, name="r").decision.is_sampled() for i in range(5)
        ]
        assert decisions == [True, True, False, False, False]
        full = AdaptiveSampler(1.0, 1.0, clock=lambda: now[0])
        full.should_sample(None, trace_id=1, name="r")
        result = full.should_sample(None, trace_id=2, name="r")
        assert result.decision.is_sampled() and result.attributes["langswarm.sampling.rule"] == "ratio"
        assert (sampler.kept_by_budget, sampler.dropped) == (7, 18)

    def test_adaptive_sampling_in_a_provider(self, make_provider):
        """adaptive_sampling keeps at least the budget under a zero floor, whole traces, marked with the rule."""
        provider = make_provider(
            {"tracing": {"sampling_rate": 0.0, "adaptive_sampling": True, "adaptive_traces_per_second": 5}}
        )
        tracer = provider.get_tracer("s")
        for _ in range(200):
            with tracer.start_span("root"):
                with tracer.start_span("child"):
                    pass
        provider.shutdown()
        spans = open_store(provider.store_writer.root).sql(
            "SELECT trace_id, count(*) AS n, max(attributes['langswarm.sampling.rule']) AS rule FROM spans GROUP BY 1"
        )
        assert 5 <= len(spans) < 200
        assert set(spans["n"]) == {2} and set(spans["rule"]) == {"budget"}
        assert provider.adaptive_sampler.kept_by_budget == len(spans)


class TestLimits:
    def test_max_spans_per_trace(self, make_provider):
        """Spans past the limit are refused, counted and flagged on their parent; the rest stays a tree."""
        provider = make_provider({"performance": {"max_spans_per_trace": 5}})
        tracer = provider.get_tracer("s")
        with tracer.start_span("root") as root:
            for i in range(10):
                with tracer.start_span(f"child_{i}"):
                    with tracer.start_span("grandchild"):
                        pass
        with tracer.start_span("next_trace"):
            pass
        provider.shutdown()
        store = open_store(provider.store_writer.root)
        spans = store.sql(
            "SELECT name, trace_id, parent_span_id, attributes['langswarm.limit.max_spans_per_trace_reached'] AS hit "
            "FROM spans WHERE trace_id = ?",
            [root.trace_id],
        )
        assert len(spans) == 5
        assert sorted(spans["name"]) == ["child_0", "child_1", "grandchild", "grandchild", "root"]
        assert set(spans[spans["hit"] == "true"]["name"]) == {"root"}
        assert _telemetry(store, "dropped_spans")["max_spans_per_trace"] == 16
        assert store.sql("SELECT count(*) AS n FROM spans WHERE name = 'next_trace'")["n"][0] == 1

    def test_max_attributes_per_span(self, make_provider):
        """Attributes beyond the limit are dropped by the SDK and counted per span and in total."""
        provider = make_provider({"performance": {"max_attributes_per_span": 3}})
        with provider.get_tracer("s").start_span("wide") as span:
            span.set_attributes({f"k{i}": i for i in range(5)})
        provider.shutdown()
        store = open_store(provider.store_writer.root)
        assert store.sql("SELECT dropped_attributes_count AS d FROM spans")["d"][0] == 2
        assert _telemetry(store, "dropped_span_attributes") == {"max_attributes_per_span": 2}

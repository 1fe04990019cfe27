"""Spans through the real OTel SDK and ParquetSpanExporter, read back with DuckDB."""

from __future__ import annotations

import asyncio
import json
import threading

import duckdb
import pandas as pd
import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from explorer import open_store
from ingest import ParquetSpanExporter


@pytest.fixture
def traced(tmp_path):
    """A TracerProvider exporting to a fresh store; yields (tracer, provider, store dir)."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": "checkout", "deployment.environment": "test"})
    )
    exporter = ParquetSpanExporter(tmp_path)
    # The SDK default queue (2048) drops spans in a tight loop; size it like the provider does.
    provider.add_span_processor(
        BatchSpanProcessor(exporter, max_queue_size=65_536, max_export_batch_size=8_192)
    )
    yield provider.get_tracer("tests.exporters", "1.2.3"), provider, tmp_path
    provider.shutdown()


def _hex(span) -> tuple[str, str]:
    ctx = span.get_span_context()
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"


class TestSpanExport:
    def test_nested_spans_across_threads_and_tasks_form_one_tree(self, traced):
        """Children started in threads and asyncio tasks keep their parent and reconstruct as a tree."""
        tracer, provider, root_dir = traced

        def worker(n: int, ctx) -> None:
            token = otel_context.attach(ctx)
            try:
                with tracer.start_as_current_span(f"thread-{n}"):
                    with tracer.start_as_current_span(f"thread-{n}-leaf"):
                        pass
            finally:
                otel_context.detach(token)

        async def task(n: int) -> None:
            with tracer.start_as_current_span(f"task-{n}"):
                await asyncio.sleep(0)
                with tracer.start_as_current_span(f"task-{n}-leaf"):
                    await asyncio.sleep(0)

        async def run_tasks() -> None:
            await asyncio.gather(*(task(n) for n in range(3)))

        with tracer.start_as_current_span("root") as root:
            ctx = otel_context.get_current()
            threads = [threading.Thread(target=worker, args=(n, ctx)) for n in range(3)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            asyncio.run(run_tasks())
        trace_id, root_id = _hex(root)
        provider.force_flush()

        tree = open_store(root_dir).trace(trace_id)
        assert len(tree) == 13
        assert tree.iloc[0]["name"] == "root" and tree.iloc[0]["depth"] == 0
        by_name = tree.set_index("name")
        for n in range(3):
            assert by_name.loc[f"thread-{n}", "parent_span_id"] == root_id
            assert by_name.loc[f"thread-{n}", "depth"] == 1
            assert by_name.loc[f"thread-{n}-leaf", "parent_span_id"] == by_name.loc[f"thread-{n}", "span_id"]
            assert by_name.loc[f"task-{n}-leaf", "depth"] == 2
        # depth-first: each leaf directly follows its parent
        names = tree["name"].tolist()
        for n in range(3):
            assert names.index(f"task-{n}-leaf") == names.index(f"task-{n}") + 1
        assert not tree["orphan"].any()

    def test_every_attribute_type_keeps_its_meaning(self, traced):
        """Numbers cast back to numbers, booleans to booleans, lists survive as arrays."""
        tracer, provider, root_dir = traced
        attrs = {
            "s": "héllo ✓",
            "i": 42,
            "neg": -7,
            "f": 2.5,
            "b": True,
            "sl": ["a", "b"],
            "il": [1, 2, 3],
            "fl": [0.5, 1.5],
            "bl": [True, False],
            "empty": "",
        }
        with tracer.start_as_current_span("typed", attributes=attrs) as span:
            trace_id, _ = _hex(span)
        provider.force_flush()
        row = (
            open_store(root_dir)
            .sql(
                """SELECT attributes['s'] AS s, attributes['i']::BIGINT + 1 AS i, attributes['neg']::INT AS neg,
                      attributes['f']::DOUBLE * 2 AS f, attributes['b']::BOOLEAN AS b,
                      attributes['sl']::VARCHAR[] AS sl, attributes['il']::INT[] AS il,
                      attributes['fl']::DOUBLE[] AS fl, attributes['bl']::BOOLEAN[] AS bl,
                      attributes['empty'] AS empty, attributes['missing'] AS missing
               FROM spans WHERE trace_id = ?""",
                [trace_id],
            )
            .iloc[0]
        )
        assert row["s"] == "héllo ✓"
        assert row["i"] == 43 and row["neg"] == -7 and row["f"] == 5.0 and bool(row["b"]) is True
        assert list(row["sl"]) == ["a", "b"] and list(row["il"]) == [1, 2, 3]
        assert list(row["fl"]) == [0.5, 1.5] and list(row["bl"]) == [True, False]
        assert row["empty"] == "" and pd.isna(row["missing"])

    def test_exception_event_keeps_its_stacktrace(self, traced):
        """record_exception's event attributes, including the stack trace, are readable in SQL."""
        tracer, provider, root_dir = traced

        def failing_tool() -> None:
            raise ValueError("tool exploded")

        with pytest.raises(ValueError):
            with tracer.start_as_current_span("call-tool") as span:
                trace_id, _ = _hex(span)
                span.add_event("retry", {"attempt": 2})
                failing_tool()
        provider.force_flush()
        store = open_store(root_dir)
        span_row = store.sql(
            "SELECT status_code, status_message FROM spans WHERE trace_id = ?", [trace_id]
        ).iloc[0]
        assert span_row["status_code"] == "ERROR"
        assert "tool exploded" in span_row["status_message"]
        events = store.sql(
            """SELECT e.name, e.attributes['exception.type'] AS type,
                      e.attributes['exception.stacktrace'] AS stack, e.attributes['attempt']::INT AS attempt
               FROM (SELECT unnest(events) AS e FROM spans WHERE trace_id = ?)""",
            [trace_id],
        )
        assert events["name"].tolist() == ["retry", "exception"]
        assert events.iloc[0]["attempt"] == 2
        assert events.iloc[1]["type"] == "ValueError"
        assert "failing_tool" in events.iloc[1]["stack"] and "Traceback" in events.iloc[1]["stack"]

    def test_links_kind_status_scope_and_resource(self, traced):
        """Links keep their target and attributes; kind, explicit status, scope and resource are stored."""
        tracer, provider, root_dir = traced
        with tracer.start_as_current_span("producer", kind=SpanKind.PRODUCER) as producer:
            producer_trace, producer_span = _hex(producer)
        link = Link(producer.get_span_context(), {"link.reason": "batch"})
        with tracer.start_as_current_span("consumer", kind=SpanKind.CONSUMER, links=[link]) as consumer:
            consumer.set_status(Status(StatusCode.OK))
            consumer_trace, _ = _hex(consumer)
        provider.force_flush()
        row = open_store(root_dir).sql("SELECT * FROM spans WHERE trace_id = ?", [consumer_trace]).iloc[0]
        assert row["kind"] == "CONSUMER" and row["status_code"] == "OK"
        assert row["scope_name"] == "tests.exporters" and row["scope_version"] == "1.2.3"
        assert row["service_name"] == "checkout"
        assert dict(row["resource_attributes"])["deployment.environment"] == "test"
        (stored_link,) = row["links"]
        assert stored_link["trace_id"] == producer_trace and stored_link["span_id"] == producer_span
        assert dict(stored_link["attributes"]) == {"link.reason": "batch"}
        assert row["duration_ns"] == row["end_time_unix_nano"] - row["start_time_unix_nano"]

    def test_ids_are_lowercase_hex_and_roots_have_null_parent(self, traced):
        """Ids are 32/16 lowercase hex digits exactly as the SDK formats them; roots have NULL parents."""
        tracer, provider, root_dir = traced
        with tracer.start_as_current_span("root") as root:
            with tracer.start_as_current_span("child"):
                pass
        trace_id, span_id = _hex(root)
        provider.force_flush()
        frame = open_store(root_dir).sql(
            "SELECT name, trace_id, span_id, parent_span_id FROM spans ORDER BY name DESC"
        )
        assert frame["trace_id"].tolist() == [trace_id, trace_id]
        assert frame.iloc[0]["span_id"] == span_id and pd.isna(frame.iloc[0]["parent_span_id"])
        assert frame.iloc[1]["parent_span_id"] == span_id
        assert trace.format_trace_id(int(trace_id, 16)) == trace_id

    def test_many_spans_in_several_batches_are_all_written(self, traced):
        """Nothing is lost across batches: 5,000 spans in, 5,000 rows out, unique ids."""
        tracer, provider, root_dir = traced
        for i in range(5_000):
            with tracer.start_as_current_span("op", attributes={"i": i}):
                pass
        provider.force_flush()
        counts = (
            open_store(root_dir)
            .sql(
                "SELECT count(*) AS n, count(DISTINCT span_id) AS ids, sum(attributes['i']::BIGINT) AS total FROM spans"
            )
            .iloc[0]
        )
        assert counts["n"] == 5_000 and counts["ids"] == 5_000
        assert counts["total"] == sum(range(5_000))


class TestEncodingEdgeCases:
    def test_non_string_values_in_lists_and_huge_values(self, traced):
        """Large and unicode attribute values round-trip unchanged."""
        tracer, provider, root_dir = traced
        huge = "x" * 200_000 + "✓"
        with tracer.start_as_current_span("big", attributes={"huge": huge, "emoji": "🚀"}) as span:
            trace_id, _ = _hex(span)
        provider.force_flush()
        row = (
            open_store(root_dir)
            .sql(
                "SELECT attributes['huge'] AS huge, attributes['emoji'] AS emoji FROM spans WHERE trace_id = ?",
                [trace_id],
            )
            .iloc[0]
        )
        assert row["huge"] == huge and row["emoji"] == "🚀"

    def test_attribute_text_encodes_json_for_sequences(self):
        """attribute_text is the documented encoding: JSON for sequences, decimal numbers, true/false."""
        from ingest.store.encoding import attribute_text

        assert attribute_text([1, 2]) == "[1, 2]"
        assert json.loads(attribute_text(("a", "b"))) == ["a", "b"]
        assert attribute_text(False) == "false"
        assert attribute_text(3) == "3" and attribute_text(0.1) == "0.1"
        assert attribute_text(b"\x00\x01") == "AAE="


def test_plain_duckdb_reads_the_store_without_project_code(traced):
    """Any DuckDB session finds the SPEC columns with hive partitioning, no project code involved."""
    tracer, provider, root_dir = traced
    with tracer.start_as_current_span("one"):
        pass
    provider.force_flush()
    con = duckdb.connect()
    columns = {
        row[0]
        for row in con.execute(
            f"DESCRIBE SELECT * FROM read_parquet('{root_dir}/spans/**/*.parquet', hive_partitioning=true)"
        ).fetchall()
    }
    spec = {
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
        "status_message",
        "attributes",
        "resource_attributes",
        "events",
        "links",
        "scope_name",
        "date",
    }
    assert spec <= columns
    types = dict(
        con.execute(
            f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('{root_dir}/spans/**/*.parquet'))"
        ).fetchall()
    )
    assert types["start_time"] == "TIMESTAMP WITH TIME ZONE"  # microseconds: what every engine reads
    assert types["start_time_unix_nano"] == types["end_time_unix_nano"] == "BIGINT"
    assert types["duration_ns"] == "BIGINT"
    assert types["attributes"] == "MAP(VARCHAR, VARCHAR)"

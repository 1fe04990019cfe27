"""The compiled span encoder (ingest.store._spanpack) writes exactly the table the Python encoder writes.

Spans come from the real OTel SDK; each case encodes them through both paths and compares the
Arrow tables cell for cell, so a field the C code reads differently fails here by name.
"""

from __future__ import annotations

import math

import pyarrow as pa
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from ingest.store.encoding import encode_spans
from ingest.store.encoding import spans as encoding

needs_compiled = pytest.mark.skipif(
    encoding._spanpack is None, reason="ingest.store._spanpack is not compiled"
)


def _python(spans) -> pa.Table:
    return encoding._encode_spans_python(spans, encoding._all_sdk_spans(spans))


def _assert_same(spans) -> pa.Table:
    """Both encoders on ``spans``; fails naming the first column that differs."""
    compiled, python = encode_spans(spans), _python(spans)
    assert compiled.schema == python.schema
    for name in python.schema.names:
        assert compiled.column(name).to_pylist() == python.column(name).to_pylist(), name
    return compiled


@pytest.fixture
def recorded():
    """A tracer whose finished spans are kept in memory; yields (tracer, exporter)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "pack", "service.version": "2"}),
        span_limits=SpanLimits(max_span_attributes=8, max_events=2, max_links=1),
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    yield provider.get_tracer("tests.spanpack", "0.1"), memory
    provider.shutdown()


def test_the_compiled_encoder_is_built_and_used(recorded, monkeypatch):
    """`make install` compiled the extension (a failed build must not pass silently) and it is used."""
    assert encoding._spanpack is not None, "ingest.store._spanpack was not built: is there a C compiler?"
    tracer, memory = recorded
    with tracer.start_as_current_span("one"):
        pass
    calls = []
    real = encoding._spanpack.pack_spans
    monkeypatch.setattr(encoding._spanpack, "pack_spans", lambda *args: calls.append(1) or real(*args))
    table = encode_spans(list(memory.get_finished_spans()))
    assert calls == [1] and table.num_rows == 1


@needs_compiled
def test_every_attribute_type_matches(recorded):
    """Strings, bools, ints (negative, 64-bit edges), floats (inf, nan, -0.0), sequences encode alike."""
    tracer, memory = recorded
    values = [
        "plain",
        "ünïcode ✓ 🚀",
        "",
        True,
        False,
        0,
        -1,
        7,
        2**63 - 1,
        -(2**63),
        1.5,
        -0.0,
        1e300,
        0.1,
        math.inf,
        -math.inf,
        math.nan,
        ["a", "b"],
        [1, 2, 3],
        [True, False],
        [0.5],
        (),
    ]
    for i in range(0, len(values), 6):
        attributes = {f"k{j}": v for j, v in enumerate(values[i : i + 6])}
        with tracer.start_as_current_span(f"types-{i}", attributes=attributes):
            pass
    table = _assert_same(list(memory.get_finished_spans()))
    names, maps = table.column("name").to_pylist(), table.column("attributes").to_pylist()
    rows = {name: dict(pairs) for name, pairs in zip(names, maps)}
    assert rows["types-0"]["k3"] == "true" and rows["types-0"]["k4"] == "false"
    assert rows["types-6"]["k3"] == "-9223372036854775808" and rows["types-6"]["k5"] == "-0.0"
    assert rows["types-12"]["k4"] == "nan" and rows["types-18"]["k0"] == "[1, 2, 3]"


@needs_compiled
def test_tree_kinds_status_events_links_and_limits(recorded):
    """Parents, every kind, status messages, events with attributes, links, and dropped counts."""
    tracer, memory = recorded
    with tracer.start_as_current_span("root", kind=SpanKind.SERVER) as root:
        for kind in SpanKind:
            with tracer.start_as_current_span(
                f"child-{kind.name}", kind=kind, links=[Link(root.get_span_context(), {"why": "fan-in"})]
            ) as child:
                child.add_event("retry", {"attempt": 1, "ok": False})
                child.add_event("second")
                child.add_event("third, dropped by the limit")
                for i in range(12):  # over max_span_attributes: some are dropped
                    child.set_attribute(f"a{i}", i)
        with tracer.start_as_current_span("failing") as failing:
            failing.set_status(Status(StatusCode.ERROR, "upstream timed out"))
            try:
                raise ValueError("boom")
            except ValueError as exc:
                failing.record_exception(exc)
        with tracer.start_as_current_span("ok") as ok:
            ok.set_status(StatusCode.OK)
    table = _assert_same(list(memory.get_finished_spans()))
    assert set(table.column("kind").to_pylist()) == {kind.name for kind in SpanKind}
    assert max(table.column("dropped_attributes_count").to_pylist()) > 0
    assert max(table.column("dropped_events_count").to_pylist()) > 0
    assert table.column("parent_span_id").null_count == 1


@needs_compiled
def test_unfinished_spans_and_spans_from_several_resources():
    """Spans with no end time, and a batch mixing resources, scopes and names shared or not."""
    memory = InMemorySpanExporter()
    spans = []
    for service in ("a", "b"):
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(SimpleSpanProcessor(memory))
        for scope in ("s1", "s2"):
            with provider.get_tracer(scope).start_as_current_span(f"{service}-{scope}"):
                pass
        open_span = provider.get_tracer("open").start_span("still running")
        spans.append(open_span)  # an SDK Span that has not ended: end_time is None
    table = _assert_same(list(memory.get_finished_spans()) + spans)
    assert table.column("end_time").null_count == 2
    assert table.column("service_name").to_pylist() == ["a", "a", "b", "b", "a", "b"]


@needs_compiled
def test_spans_it_does_not_recognise_take_the_python_path(recorded):
    """A ReadableSpan holding a mapping the C code does not know is encoded by Python, not refused."""
    tracer, memory = recorded
    with tracer.start_as_current_span("normal", attributes={"x": 1}):
        pass
    normal = memory.get_finished_spans()[0]
    odd = ReadableSpan(
        name="odd",
        context=normal.context,
        attributes=_Attributes({"from": "a custom mapping"}),
        resource=normal.resource,
        instrumentation_scope=normal.instrumentation_scope,
        start_time=1,
        end_time=2,
    )
    spans = [normal, odd]
    assert encoding._spanpack.pack_spans(spans, *encoding._PACK_ARGS) is None
    table = encode_spans(spans)
    assert table.column("attributes").to_pylist()[1] == [("from", "a custom mapping")]


class _Attributes(dict):
    """A dict subclass: not the exact types the compiled encoder reads."""

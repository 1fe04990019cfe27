"""Random spans through the compiled span encoder (ingest._spanpack) and the Python encoder.

Spans are built as the SDK builds them (ReadableSpan over BoundedAttributes and BoundedList, the
types the C code reads directly), with random ids (0 and 2**128-1 included), names and messages
with any code point (lone surrogates too), attribute values of every type the SDK accepts plus the
ones it never stores but a caller could smuggle into the containers (None, dicts, bytes, ints past
64 bits, str/int/float subclasses, non-str keys), events, links, kinds, statuses and times from
None to past int64. ``encode_spans`` must give exactly the Python encoder's table, or fail as it
does with an ordinary exception; it never crashes the process.
"""

from __future__ import annotations

import enum
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from ingest.store.encoding import encode_spans
from ingest.store.encoding import spans as encoding

pytestmark = pytest.mark.skipif(encoding._spanpack is None, reason="ingest._spanpack is not compiled")


class _Str(str):
    pass


class _Int(int):
    pass


class _Float(float):
    pass


class _Color(enum.IntEnum):
    RED = 1


_text = st.one_of(
    st.text(max_size=10), st.sampled_from(["", "é", "🚀", "\x00", "\ud800", "a\udfffb", "null"])
)
_int = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 2**63, -(2**63) - 1]),
)
_float = st.floats(allow_nan=True, allow_infinity=True)
_scalar = st.one_of(_text, st.booleans(), _int, _float)
_sdk_value = st.one_of(
    _scalar,
    st.lists(_text, max_size=3).map(tuple),
    st.lists(st.integers(-(2**63), 2**63 - 1), max_size=3).map(tuple),
    st.lists(st.booleans(), max_size=3).map(tuple),
    st.lists(_float, max_size=3).map(tuple),
)
# What the SDK never stores, but a caller can put straight into a container's dict.
_smuggled = st.one_of(
    st.none(),
    st.binary(max_size=6),
    st.dictionaries(_text, _scalar, max_size=2),
    st.lists(_scalar, max_size=3),
    st.builds(_Str, _text),
    st.builds(_Int, st.integers(-10, 10)),
    st.builds(_Float, _float),
    st.just(_Color.RED),
    st.just(object),
)
_key = st.one_of(st.text(max_size=8), st.sampled_from(["service.name", "\ud800", ""]))


@st.composite
def _attributes(draw: st.DrawFn, smuggle: bool) -> BoundedAttributes | None:
    if draw(st.integers(0, 9)) == 0:
        return None
    values = draw(st.dictionaries(_key.filter(lambda k: "\ud800" not in k), _sdk_value, max_size=4))
    container = BoundedAttributes(
        maxlen=draw(st.sampled_from([None, 2, 128])), attributes=None, immutable=False
    )
    for key, value in values.items():
        container[key] = value  # the SDK's own checks: what it refuses is dropped, as in a real span
    if smuggle:
        for key, value in draw(
            st.dictionaries(st.one_of(_key, st.integers(0, 3)), _smuggled, max_size=2)
        ).items():
            container._dict[key] = value
    return container


_trace_id = st.one_of(st.integers(0, 2**128 - 1), st.sampled_from([0, 1, 2**128 - 1]))
_span_id = st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, 2**64 - 1]))


def _context(trace_id: int, span_id: int) -> SpanContext:
    return SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(1))


@st.composite
def _span(draw: st.DrawFn) -> ReadableSpan:
    smuggle = draw(st.integers(0, 3)) == 0
    events = BoundedList(draw(st.sampled_from([None, 1, 5])))
    for _ in range(draw(st.integers(0, 3))):
        events.append(
            Event(
                draw(_text), attributes=draw(_attributes(smuggle)), timestamp=draw(st.integers(0, 2**63 - 1))
            )
        )
    links = BoundedList(draw(st.sampled_from([None, 1, 5])))
    for _ in range(draw(st.integers(0, 2))):
        links.append(Link(_context(draw(_trace_id), draw(_span_id)), attributes=draw(_attributes(smuggle))))
    parent = draw(st.one_of(st.none(), st.builds(_context, _trace_id, _span_id)))
    code = draw(st.sampled_from(list(StatusCode)))
    description = draw(st.one_of(st.none(), _text)) if code is StatusCode.ERROR else None
    times = st.one_of(st.none(), st.integers(0, 2**63 - 1), st.sampled_from([0, 2**63 - 1]))
    if smuggle:
        times = st.one_of(times, st.integers(2**63, 2**64), st.integers(-(2**63), -1))
    scope = draw(st.one_of(st.none(), st.builds(InstrumentationScope, _text, st.one_of(st.none(), _text))))
    resource = (
        Resource.get_empty()
        if draw(st.booleans())
        else Resource(draw(st.dictionaries(_key.filter(lambda k: "\ud800" not in k), _scalar, max_size=3)))
    )
    return ReadableSpan(
        name=draw(_text),
        context=_context(draw(_trace_id), draw(_span_id)),
        parent=parent,
        resource=resource,
        attributes=draw(_attributes(smuggle)),
        events=events,
        links=links,
        kind=draw(st.sampled_from(list(SpanKind))),
        status=Status(code, description),
        start_time=draw(times),
        end_time=draw(times),
        instrumentation_scope=scope,
    )


def _outcome(encode: Any, spans: list[ReadableSpan]) -> tuple[str, Any]:
    try:
        table = encode(spans)
    except (ValueError, TypeError, OverflowError, pa.ArrowException) as exc:  # a clean refusal
        return "error", type(exc).__name__
    return "table", {name: table.column(name).to_pylist() for name in table.schema.names}


def _python(spans: list[ReadableSpan]) -> pa.Table:
    """The Python encoder; for strings that are not valid Unicode, on the spans with U+FFFD for them."""
    try:
        return encoding._encode_spans_python(spans, encoding._all_sdk_spans(spans))
    except UnicodeEncodeError:
        valid = [encoding._with_valid_text(span) for span in spans]
        return encoding._encode_spans_python(valid, encoding._all_sdk_spans(valid))


def _same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN (float columns)."""
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


@given(st.lists(_span(), min_size=1, max_size=5))
def test_compiled_encoder_writes_the_python_table_or_refuses_alike(spans: list[ReadableSpan]) -> None:
    compiled, python = _outcome(encode_spans, spans), _outcome(_python, spans)
    assert compiled[0] == python[0], (compiled, python)
    if compiled[0] == "table":
        for name, values in python[1].items():
            assert _same(compiled[1][name], values), name


@given(st.lists(_span(), min_size=1, max_size=5))
def test_pack_spans_answers_buffers_none_or_an_ordinary_exception(spans: list[ReadableSpan]) -> None:
    """The extension itself: column buffers, None (not SDK-shaped: the Python path decides) or an exception."""
    try:
        packed = encoding._spanpack.pack_spans(spans, *encoding._PACK_ARGS)
    except (ValueError, TypeError, OverflowError, UnicodeError):
        return
    assert packed is None or len(packed["trace_id"]) == 32 * len(spans)


def test_a_lone_surrogate_no_longer_fails_the_batch() -> None:
    """Found by fuzzing: one string with a lone surrogate (a file name read with surrogateescape, say)
    made both encoders raise UnicodeEncodeError, so the exporter lost the whole batch. Now the
    code point is written as U+FFFD and every span is kept."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"service.name": "svc\udcff"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("scope\ud800")
    with tracer.start_as_current_span("fine"):
        pass
    with tracer.start_as_current_span(
        "open \udcff.txt", attributes={"path": "a\udcff", "k\ud800": 1, "l": ("\udc80",)}
    ) as span:
        span.add_event("e\ud800", {"x": "\udc00"})
        span.set_status(Status(StatusCode.ERROR, "bad \udcff"))
    provider.shutdown()
    rows = {row["name"]: row for row in encode_spans(list(memory.get_finished_spans())).to_pylist()}
    assert set(rows) == {"fine", "open \ufffd.txt"}
    row = rows["open \ufffd.txt"]
    assert dict(row["attributes"]) == {"path": "a\ufffd", "k\ufffd": "1", "l": '["\ufffd"]'}
    assert row["events"][0]["name"] == "e\ufffd" and row["events"][0]["attributes"] == [("x", "\ufffd")]
    assert row["status_message"] == "bad \ufffd" and row["scope_name"] == "scope\ufffd"
    assert row["service_name"] == "svc\ufffd"

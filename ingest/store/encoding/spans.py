"""OTel SDK spans to the ``spans`` table: the compiled encoder (``_spanpack``) when every span is an SDK
span, else the Python encoder; both write the same table (tests/test_spanpack.py)."""

from __future__ import annotations

import copy
import operator
from collections.abc import Sequence
from itertools import chain
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind, StatusCode

from ingest.store import schema
from ingest.store.encoding.columns import (
    _EMPTY,
    _INT32,
    _fixed_width_strings,
    _flat_map,
    _struct_list,
    _valid_attributes,
    _valid_items,
    attribute_text,
    span_id_array,
    table_from_columns,
    text_array,
    trace_id_array,
    valid_text,
)

try:
    from ingest.store import _spanpack
except ImportError:  # not compiled (a source tree used without `pip install -e .`): the Python path
    _spanpack = None  # type: ignore[assignment]  # the optional C module: None means the Python path


def _trace_state_texts(states: list[Any]) -> pa.StringArray:
    """W3C tracestate headers, each distinct TraceState object encoded once."""
    # Traces usually carry equal but not identical (empty) TraceStates: no ``__eq__`` pass first.
    distinct, indices = _distinct(states, shared=False)
    return pa.array([ts.to_header() if ts else None for ts in distinct], pa.string()).take(pa.array(indices))


def _all_sdk_spans(spans: Sequence[Any]) -> bool:
    return all(issubclass(t, ReadableSpan) for t in set(map(type, spans)))


def _span_parts(spans: Sequence[Any], sdk: bool) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    """Attributes, events, links and their bounded containers of each span.

    SDK spans keep these in ``BoundedAttributes``/``BoundedList`` whose public accessors copy
    under a lock (a tuple or a mapping proxy per call); at 100k spans that alone costs several
    µs/span, so SDK spans are read through the containers' underlying dict and deque. Anything
    else that quacks like a ReadableSpan goes through the public properties.
    """
    if sdk:
        attrs, dropped_attrs = _unwrap(list(map(_RAW_ATTRIBUTES, spans)), BoundedAttributes, _DICT, _EMPTY)
        events, dropped_events = _unwrap(list(map(_RAW_EVENTS, spans)), BoundedList, _DQ, ())
        links, dropped_links = _unwrap(list(map(_RAW_LINKS, spans)), BoundedList, _DQ, ())
        return attrs, events, links, [dropped_attrs, dropped_events, dropped_links]
    attrs = [s.attributes or _EMPTY for s in spans]
    events = [s.events or () for s in spans]
    links = [s.links or () for s in spans]
    dropped = [
        [getattr(s, "dropped_attributes", 0) for s in spans],
        [getattr(s, "dropped_events", 0) for s in spans],
        [getattr(s, "dropped_links", 0) for s in spans],
    ]
    return attrs, events, links, dropped


_RAW_ATTRIBUTES = operator.attrgetter("_attributes")


_RAW_EVENTS = operator.attrgetter("_events")


_RAW_LINKS = operator.attrgetter("_links")


_DICT = operator.attrgetter("_dict")


_DQ = operator.attrgetter("_dq")


_DROPPED = operator.attrgetter("dropped")


def _unwrap(containers: list[Any], bounded: type[Any], inner: Any, empty: Any) -> tuple[list[Any], list[int]]:
    """The plain dict/deque inside each bounded container and its drop count (C-level when uniform)."""
    if set(map(type, containers)) == {bounded}:
        return list(map(inner, containers)), list(map(_DROPPED, containers))
    return (
        [inner(c) if type(c) is bounded else (c or empty) for c in containers],
        [c.dropped if type(c) is bounded else 0 for c in containers],
    )


def _nested_offsets(items: list[Any]) -> np.ndarray:
    offsets = np.zeros(len(items) + 1, dtype=np.int32)
    np.cumsum(np.fromiter(map(len, items), dtype=np.int32, count=len(items)), out=offsets[1:])
    return offsets


def _distinct(objects: Sequence[Any], *, shared: bool = True) -> tuple[list[Any], np.ndarray]:
    """The distinct objects of a batch (by identity) and each row's index into them.

    A batch usually shares one resource and a scope or two: encoding each once and repeating it
    with Arrow's ``take`` is a C-level copy instead of per-row Python work. ``shared`` says the
    rows usually hold the very same object, worth checking first with ``list.count`` (identity
    first, so it calls ``__eq__`` only on rows that differ).
    """
    n = len(objects)
    first = objects[0]
    if shared and objects.count(first) == n:
        return [first], np.zeros(n, dtype=np.int32)
    by_id = dict(zip(map(id, objects), objects))
    index_of = {key: i for i, key in enumerate(by_id)}
    indices = np.fromiter(map(index_of.__getitem__, map(id, objects)), dtype=np.int32, count=n)
    return list(by_id.values()), indices


class _ResourceColumns:
    """Resource attribute map and service name per row, with the last single-resource result kept.

    An exporter sees one resource all its life and mostly full batches, so the repeated map
    column (thousands of strings) is built once and reused while resource and batch size match.
    """

    def __init__(self) -> None:
        self._last: tuple[Any, int, pa.MapArray, pa.Array] | None = None

    def __call__(self, resources: Sequence[Any]) -> tuple[pa.MapArray, pa.Array]:
        n = len(resources)
        last = self._last
        if last is not None and last[1] == n and resources.count(last[0]) == n:
            return last[2], last[3]
        distinct, indices = _distinct(resources)
        attrs = [r.attributes if r is not None else _EMPTY for r in distinct]
        services = [attr.get("service.name") for attr in attrs]
        take = pa.array(indices)
        columns = (
            _flat_map(attrs).take(take),
            text_array([None if s is None else str(s) for s in services], pa.string()).take(take),
        )
        if len(distinct) == 1:
            # One tuple assignment, so a thread reading ``_last`` never sees a half-updated entry.
            self._last = (distinct[0], n, *columns)
        return columns


_resource_columns = _ResourceColumns()


def _scope_columns(scopes: Sequence[Any]) -> tuple[pa.Array, pa.Array]:
    """Scope name and version per row, each distinct scope read once."""
    distinct, indices = _distinct(scopes)
    take = pa.array(indices)
    names = text_array([None if sc is None else sc.name for sc in distinct], pa.string())
    versions = text_array([None if sc is None else sc.version for sc in distinct], pa.string())
    return names.take(take), versions.take(take)


_ENUM_NAME = operator.attrgetter("_name_")


_SPAN_FIELD_NAMES = (
    "context",
    "parent",
    "start_time",
    "end_time",
    "status",
    "instrumentation_scope",
    "name",
    "kind",
    "resource",
)


# (span field getters, status code getter, status description getter): SDK spans are read through the
# fields behind their properties (3x cheaper per access), anything else through the public properties.
_SDK_GETTERS = (
    tuple(operator.attrgetter(f"_{name}") for name in _SPAN_FIELD_NAMES),
    operator.attrgetter("_status_code"),
    operator.attrgetter("_description"),
)


_PUBLIC_GETTERS = (
    tuple(operator.attrgetter(name) for name in _SPAN_FIELD_NAMES),
    operator.attrgetter("status_code"),
    operator.attrgetter("description"),
)


_ITEM0, _ITEM1, _ITEM4 = operator.itemgetter(0), operator.itemgetter(1), operator.itemgetter(4)


def encode_spans(spans: Sequence[Any]) -> pa.Table:
    """Encode OTel SDK ``ReadableSpan`` objects as a ``spans`` table.

    SDK spans go through the compiled ``ingest.store._spanpack`` when it is built (half the cost, see
    docs/benchmarks.md); anything it does not recognise, and every span when it is not built, takes
    the Python encoder below. Both write the same table (tests/test_spanpack.py holds them equal).
    """
    try:
        return _encode_spans(spans)
    except UnicodeEncodeError:
        # A lone UTF-16 surrogate in some string (a name, key or value built from undecodable bytes
        # with errors="surrogateescape", e.g. a file name): Parquet holds UTF-8, so rather than fail
        # the whole batch, those code points are written as U+FFFD. Only this rare batch pays.
        return _encode_spans([_with_valid_text(span) for span in spans])


def _encode_spans(spans: Sequence[Any]) -> pa.Table:
    n = len(spans)
    if not n:
        return table_from_columns("spans", {}, 0)
    sdk = _all_sdk_spans(spans)
    if sdk and _spanpack is not None:
        packed = _spanpack.pack_spans(spans if type(spans) is list else list(spans), *_PACK_ARGS)
        if packed is not None:
            return _table_from_packed(packed, n)
    return _encode_spans_python(spans, sdk)


def _with_valid_text(span: Any) -> Any:
    """A copy of an SDK span whose every string is valid Unicode (see :func:`valid_text`)."""
    if not isinstance(span, ReadableSpan):
        return span
    span = copy.copy(span)
    span._name = valid_text(span._name)
    span._attributes = _valid_attributes(span._attributes)
    span._events = _valid_items(span._events)
    span._links = _valid_items(span._links)
    status = copy.copy(span._status)
    status._description = valid_text(status._description)
    span._status = status
    resource = span._resource
    span._resource = Resource(valid_text(dict(resource.attributes)), resource.schema_url)
    scope = span._instrumentation_scope
    if scope is not None:
        span._instrumentation_scope = InstrumentationScope(
            valid_text(scope.name),
            valid_text(scope.version),
            scope.schema_url,
            valid_text(dict(scope.attributes or {})),
        )
    return span


def _encode_spans_python(spans: Sequence[Any], sdk: bool) -> pa.Table:
    """The pure-Python span encoder: one C-level ``map`` per column."""
    n = len(spans)
    # C-level ``map`` per column: properties and comprehensions would cost more than the Parquet write.
    span_fields, status_code, status_description = _SDK_GETTERS if sdk else _PUBLIC_GETTERS
    contexts, parents, starts, ends, statuses, scopes, names, kinds, resources = (
        list(map(getter, spans)) for getter in span_fields
    )
    status_codes = list(map(status_code, statuses))
    status_messages = list(map(status_description, statuses))
    # SpanContext is a tuple: (trace_id, span_id, is_remote, trace_flags, trace_state, is_valid).
    trace_ids = list(map(_ITEM0, contexts))
    span_ids = list(map(_ITEM1, contexts))
    trace_states = list(map(_ITEM4, contexts))
    start_ns = pa.array(starts, pa.int64())
    end_ns = pa.array(ends, pa.int64())
    attrs, events, links, (dropped_attrs, dropped_events, dropped_links) = _span_parts(spans, sdk)
    resource_column, services = _resource_columns(resources)
    scope_names, scope_versions = _scope_columns(scopes)

    flat_events = list(chain.from_iterable(events))
    flat_links = list(chain.from_iterable(links))
    columns = {
        "trace_id": trace_id_array(trace_ids),
        "span_id": span_id_array(span_ids),
        "parent_span_id": span_id_array([None if p is None else p.span_id for p in parents]),
        "trace_state": _trace_state_texts(trace_states),
        "name": names,
        # Enum ``_name_`` is a plain attribute; ``.name``/``.value`` are descriptors and 5x slower.
        "kind": list(map(_ENUM_NAME, kinds)),
        "service_name": services,
        "start_time": start_ns.cast(schema.NS_TIMESTAMP),
        "end_time": end_ns.cast(schema.NS_TIMESTAMP),
        "duration_ns": pc.subtract(end_ns, start_ns),
        "status_code": list(map(_ENUM_NAME, status_codes)),
        "status_message": status_messages,
        "attributes": _flat_map(attrs),
        "resource_attributes": resource_column,
        "events": _events_column(_nested_offsets(events), flat_events),
        "links": _links_column(_nested_offsets(links), flat_links),
        "scope_name": scope_names,
        "scope_version": scope_versions,
        "dropped_attributes_count": pa.array(dropped_attrs, _INT32),
        "dropped_events_count": pa.array(dropped_events, _INT32),
        "dropped_links_count": pa.array(dropped_links, _INT32),
    }
    return table_from_columns("spans", columns, n)


def _events_column(offsets: np.ndarray, events: list[Any]) -> pa.ListArray:
    """The ``events`` list column from per-span offsets into the batch's flat list of events."""
    return _struct_list(
        offsets,
        [
            ("name", text_array([e.name for e in events], pa.string())),
            ("timestamp", pa.array([e.timestamp for e in events], schema.NS_TIMESTAMP)),
            ("attributes", _flat_map([e.attributes or _EMPTY for e in events])),
        ],
        schema.EVENT_NS,
    )


def _links_column(offsets: np.ndarray, links: list[Any]) -> pa.ListArray:
    """The ``links`` list column from per-span offsets into the batch's flat list of links."""
    contexts = [link.context for link in links]
    return _struct_list(
        offsets,
        [
            ("trace_id", trace_id_array([c.trace_id for c in contexts])),
            ("span_id", span_id_array([c.span_id for c in contexts])),
            (
                "trace_state",
                pa.array(
                    [c.trace_state.to_header() if c.trace_state else None for c in contexts], pa.string()
                ),
            ),
            ("attributes", _flat_map([link.attributes or _EMPTY for link in links])),
        ],
        schema.LINK,
    )


_KINDS = tuple(sorted(SpanKind, key=operator.attrgetter("value")))


_KIND_TEXTS = pa.array([kind.name for kind in _KINDS], pa.string())


_STATUS_CODES = tuple(sorted(StatusCode, key=operator.attrgetter("value")))


_STATUS_TEXTS = pa.array([code.name for code in _STATUS_CODES], pa.string())


# What pack_spans needs to know: the SDK's container types, the enum members in code order, and the
# Python text of values it has no C text for.
_PACK_ARGS = (BoundedAttributes, BoundedList, _KINDS, _STATUS_CODES, attribute_text)


def _buffer(data: bytes | None) -> pa.Buffer | None:
    return None if data is None else pa.py_buffer(data)


def _packed_strings(column: tuple[bytes, bytes, bytes | None, int]) -> pa.StringArray:
    offsets, data, validity, nulls = column
    return pa.StringArray.from_buffers(
        len(offsets) // 4 - 1, pa.py_buffer(offsets), pa.py_buffer(data), _buffer(validity), nulls
    )


def _packed_numbers(
    type_: pa.DataType, n: int, data: bytes, validity: bytes | None = None, nulls: int = 0
) -> pa.Array:
    return pa.Array.from_buffers(type_, n, [_buffer(validity), pa.py_buffer(data)], null_count=nulls)


def _table_from_packed(packed: dict[str, Any], n: int) -> pa.Table:
    """The ``spans`` table from the column buffers ``_spanpack.pack_spans`` returns."""
    start_ns = _packed_numbers(pa.int64(), n, *packed["start_time"])
    end_ns = _packed_numbers(pa.int64(), n, *packed["end_time"])
    resource_column, services = _resource_columns(packed["resources"])
    scope_names, scope_versions = _scope_columns(packed["scopes"])
    event_offsets = np.frombuffer(packed["event_offsets"], dtype=np.int32)
    link_offsets = np.frombuffer(packed["link_offsets"], dtype=np.int32)
    columns = {
        "trace_id": _fixed_width_strings(packed["trace_id"], 32, n),
        "span_id": _fixed_width_strings(packed["span_id"], 16, n),
        "parent_span_id": _fixed_width_strings(
            packed["parent_span_id"], 16, n, packed["parent_valid"], packed["parent_nulls"]
        ),
        "trace_state": _trace_state_texts(packed["trace_states"]),
        "name": _packed_strings(packed["name"]),
        "kind": _KIND_TEXTS.take(_packed_numbers(pa.int8(), n, packed["kind"])),
        "service_name": services,
        "start_time": start_ns.cast(schema.NS_TIMESTAMP),
        "end_time": end_ns.cast(schema.NS_TIMESTAMP),
        "duration_ns": pc.subtract(end_ns, start_ns),
        "status_code": _STATUS_TEXTS.take(_packed_numbers(pa.int8(), n, packed["status_code"])),
        "status_message": _packed_strings(packed["status_message"]),
        "attributes": pa.MapArray.from_arrays(
            _packed_numbers(pa.int32(), n + 1, packed["attribute_rows"]),
            _packed_strings(packed["attribute_keys"]),
            _packed_strings(packed["attribute_values"]),
            type=schema.ATTRIBUTES,
        ),
        "resource_attributes": resource_column,
        "events": _events_column(event_offsets, packed["events"]),
        "links": _links_column(link_offsets, packed["links"]),
        "scope_name": scope_names,
        "scope_version": scope_versions,
        "dropped_attributes_count": _packed_numbers(_INT32, n, packed["dropped_attributes"]),
        "dropped_events_count": _packed_numbers(_INT32, n, packed["dropped_events"]),
        "dropped_links_count": _packed_numbers(_INT32, n, packed["dropped_links"]),
    }
    return table_from_columns("spans", columns, n)

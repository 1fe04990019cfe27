"""Arrow encoding of telemetry: OTel SDK spans, log records and metrics to store tables.

Columns are built in batches, one list per column, and handed to Arrow in one call each: a
per-row dict or pandas frame would cost several times more (see docs/benchmarks.md). Importers and
the OTLP receiver build the same column lists from other inputs and finish them with
:func:`table_from_columns`, so every path writes one schema.
"""

from __future__ import annotations

import base64
import copy
import json
import operator
import re
from collections.abc import Iterable, Mapping, Sequence
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

try:
    from ingest.store import _spanpack
except ImportError:  # not compiled (a source tree used without `pip install -e .`): the Python path
    _spanpack = None  # type: ignore[assignment]  # the optional C module: None means the Python path

_INT32 = pa.int32()


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, tuple):
        return list(value)
    return str(value)


def attribute_text(value: Any) -> str:
    """Encode one attribute value as text that keeps its meaning in SQL.

    Strings stay as they are, booleans become ``true``/``false`` and numbers their decimal form (so
    ``CAST(attributes['n'] AS DOUBLE)`` works); sequences and maps become JSON (so
    ``CAST(attributes['l'] AS INT[])`` or ``json_extract`` work); bytes become base64.
    """
    kind = type(value)
    if kind is str:
        return value
    if kind is bool:
        return "true" if value else "false"
    if kind is int or kind is float:
        return repr(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, (list, tuple, Mapping)):
        return json.dumps(
            value if not isinstance(value, tuple) else list(value), default=_json_default, ensure_ascii=False
        )
    if value is None:
        return "null"
    return str(value)


class MapColumn:
    """Accumulates one ``MAP(VARCHAR, VARCHAR)`` column row by row and finishes it in one Arrow call."""

    __slots__ = ("keys", "offsets", "values")

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.values: list[str | None] = []
        self.offsets: list[int] = [0]

    def add(self, mapping: Mapping[str, Any] | None) -> None:
        """Append one row from a mapping of attribute values (None or empty gives an empty map)."""
        if mapping:
            self.keys.extend(mapping.keys())
            self.values.extend([v if type(v) is str else attribute_text(v) for v in mapping.values()])
        self.offsets.append(len(self.keys))

    def add_encoded(self, keys: Sequence[str], values: Sequence[str | None]) -> None:
        """Append one row whose values are already text (e.g. a resource shared by many rows)."""
        self.keys.extend(keys)
        self.values.extend(values)
        self.offsets.append(len(self.keys))

    def finish(self) -> pa.MapArray:
        return pa.MapArray.from_arrays(
            pa.array(self.offsets, pa.int32()),
            text_array(self.keys, pa.string()),
            text_array(self.values, pa.string()),
            type=schema.ATTRIBUTES,
        )


def text_array(data: Any, type_: pa.DataType) -> pa.Array:
    """``pa.array(data, type_)``; a string holding a lone UTF-16 surrogate is written with U+FFFD.

    Such strings come from bytes decoded with ``errors="surrogateescape"`` (file names, say); Parquet
    holds UTF-8, and one of them must not cost the whole batch its export. Only that batch pays.
    """
    try:
        return pa.array(data, type_)
    except UnicodeEncodeError:
        return pa.array(valid_text(list(data)), type_)


def encoded_pairs(mapping: Mapping[str, Any] | None) -> tuple[list[str], list[str]]:
    """Keys and text values of a mapping, for :meth:`MapColumn.add_encoded`."""
    if not mapping:
        return [], []
    return list(mapping.keys()), [attribute_text(v) for v in mapping.values()]


def map_column(rows: Iterable[Mapping[str, Any] | None]) -> pa.MapArray:
    """One map column from an iterable of mappings."""
    column = MapColumn()
    for row in rows:
        column.add(row)
    return column.finish()


def table_from_columns(table: str, columns: Mapping[str, Any], num_rows: int) -> pa.Table:
    """Build a store table from column lists or arrays; absent columns are filled with nulls.

    Time columns may be given as nanosecond timestamps or integer nanoseconds (lists of ints,
    ``schema.NS_TIMESTAMP`` arrays) under their timestamp name: each becomes the stored microsecond
    timestamp plus its exact ``*_unix_nano`` column (``schema.NANO_COLUMNS``), and span events likewise,
    so every encoder, importer, the receiver and compaction write one portable layout.

    Raises ``ValueError`` naming a column that is not in the table's schema, so a typo in an
    importer fails loudly instead of silently writing nulls.
    """
    table_schema = schema.schema_for(table)
    unknown = set(columns) - set(table_schema.names)
    if unknown:
        msg = f"columns {sorted(unknown)} are not in the {table!r} schema ({', '.join(table_schema.names)})"
        raise ValueError(msg)
    columns = dict(columns)
    for stamp, nano in schema.NANO_COLUMNS[table].items():
        if columns.get(nano) is None and columns.get(stamp) is not None:
            columns[nano] = unix_nanos(columns[stamp])
        if columns.get(nano) is not None:
            columns[stamp] = micro_timestamps(columns[nano])
    if table == "spans" and columns.get("events") is not None:
        columns["events"] = portable_events(columns["events"])
    arrays = []
    for field in table_schema:
        data = columns.get(field.name)
        if data is None:
            arrays.append(pa.nulls(num_rows, field.type))
        elif isinstance(data, (pa.Array, pa.ChunkedArray)):
            arrays.append(data if data.type == field.type else data.cast(field.type))
        else:
            arrays.append(text_array(data, field.type))
    return pa.Table.from_arrays(arrays, schema=table_schema)


def unix_nanos(data: Any) -> pa.Array:
    """Integer nanoseconds since the epoch of a time column: nanosecond (or coarser) timestamps, ints or
    a list of ints/datetimes (ints are nanoseconds); NULL stays NULL."""
    if isinstance(data, pa.ChunkedArray):
        data = data.combine_chunks()
    if not isinstance(data, pa.Array):
        data = pa.array(data, schema.NS_TIMESTAMP)
    if pa.types.is_timestamp(data.type):
        data = data.cast(pa.timestamp("ns", tz=data.type.tz))
    return data.cast(schema.UNIX_NANO)


def micro_timestamps(nanos: Any) -> pa.Array:
    """The stored microsecond UTC timestamps of integer nanoseconds (truncated to the microsecond)."""
    if isinstance(nanos, pa.ChunkedArray):
        nanos = nanos.combine_chunks()
    if not isinstance(nanos, pa.Array):
        nanos = pa.array(nanos, schema.UNIX_NANO)
    return nanos.cast(schema.UNIX_NANO).cast(schema.NS_TIMESTAMP).cast(schema.TIMESTAMP, safe=False)


def portable_events(events: pa.Array | pa.ChunkedArray) -> pa.ListArray:
    """A span ``events`` column in the stored type: each event's nanosecond timestamp becomes a
    microsecond ``timestamp`` plus its exact ``time_unix_nano``; an already stored column is returned as is."""
    if isinstance(events, pa.ChunkedArray):
        events = events.combine_chunks()
    target = pa.list_(schema.EVENT)
    if events.type == target:
        return events
    offsets = np.asarray(events.offsets)
    first = int(offsets[0]) if len(offsets) else 0
    items = events.values.slice(first, int(offsets[-1]) - first if len(offsets) else 0)
    nanos = unix_nanos(items.field("timestamp"))
    children = pa.StructArray.from_arrays(
        [items.field("name"), micro_timestamps(nanos), nanos, items.field("attributes")],
        fields=list(schema.EVENT),
    )
    mask = events.is_null() if events.null_count else None
    return pa.ListArray.from_arrays(pa.array(offsets - first, pa.int32()), children, type=target, mask=mask)


def to_store_layout(table_name: str, table: pa.Table) -> pa.Table:
    """Any table of ``table_name`` (e.g. a file written before the portable layout, with nanosecond
    timestamps and no ``*_unix_nano`` columns) in the current schema."""
    if table.schema.equals(schema.schema_for(table_name)):
        return table
    columns = {name: table.column(name) for name in table.column_names if name in schema.schema_for(table_name).names}
    return table_from_columns(table_name, columns, table.num_rows)


def _struct_list(
    offsets: Any, fields: Sequence[tuple[str, pa.Array]], item_type: pa.StructType
) -> pa.ListArray:
    children = pa.StructArray.from_arrays([a for _, a in fields], fields=list(item_type))
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), children, type=pa.list_(item_type))


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def hex_array(raw: bytes, width: int, valid: list[bool] | None = None) -> pa.StringArray:
    """Lowercase hex strings of fixed-width big-endian ids packed in ``raw`` (``width`` bytes each).

    Vectorised with numpy: 4x faster than ``"%016x" % id`` per row, which matters at 100k spans.
    ``valid`` marks which rows are non-null (e.g. spans that have a parent).
    """
    data = np.frombuffer(raw, dtype=np.uint8)
    n = data.size // width
    digits = np.empty(data.size * 2, dtype=np.uint8)
    digits[0::2] = _HEX_DIGITS[data >> 4]
    digits[1::2] = _HEX_DIGITS[data & 15]
    if valid is None:
        return _fixed_width_strings(digits, width * 2, n)
    bitmap = pa.array(valid, pa.bool_()).buffers()[1]
    return _fixed_width_strings(digits, width * 2, n, bitmap, n - sum(valid))


def _fixed_width_strings(
    chars: Any, width: int, n: int, validity: Any = None, nulls: int = 0
) -> pa.StringArray:
    """``n`` strings of ``width`` characters each, packed in ``chars`` (bytes or a numpy byte array)."""
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    if validity is not None and not isinstance(validity, pa.Buffer):
        validity = pa.py_buffer(validity)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars), validity, nulls)


def trace_id_array(ids: Sequence[int]) -> pa.StringArray:
    """32-char hex trace ids from the SDK's 128-bit integers."""
    return hex_array(b"".join(map(_TO_16_BYTES, ids)), 16)


_TO_16_BYTES = operator.methodcaller("to_bytes", 16, "big")


def span_id_array(ids: Sequence[int | None]) -> pa.StringArray:
    """16-char hex span ids from the SDK's 64-bit integers; ``None`` stays NULL."""
    if None in ids:
        valid = [i is not None for i in ids]
        packed = np.array([0 if i is None else i for i in ids], dtype=">u8")
        return hex_array(packed.tobytes(), 8, valid)
    return hex_array(np.array(ids, dtype=">u8").tobytes(), 8)


def _flat_map(dicts: list[Mapping[str, Any]]) -> pa.MapArray:
    """One map column from per-row mappings, flattened with C-level iteration (no per-row Python)."""
    keys = list(chain.from_iterable(dicts))
    values = list(chain.from_iterable(map(_values, dicts)))
    offsets = np.zeros(len(dicts) + 1, dtype=np.int32)
    np.cumsum(np.fromiter(map(len, dicts), dtype=np.int32, count=len(dicts)), out=offsets[1:])
    return pa.MapArray.from_arrays(
        pa.array(offsets),
        text_array(keys, pa.string()),
        text_array(_texts(values), pa.string()),
        type=schema.ATTRIBUTES,
    )


_values = operator.methodcaller("values")


def _texts(values: list[Any]) -> list[str]:
    """:func:`attribute_text` over a list, with strings and numbers inlined (the common cases)."""
    return [
        v if (t := type(v)) is str else repr(v) if t is int or t is float else attribute_text(v)
        for v in values
    ]
_EMPTY: Mapping[str, Any] = {}


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
    "context", "parent", "start_time", "end_time", "status", "instrumentation_scope", "name", "kind",
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


_SURROGATES = re.compile("[\ud800-\udfff]")


def valid_text(value: Any) -> Any:
    """``value`` with each lone UTF-16 surrogate in its strings (keys and items too) replaced by U+FFFD."""
    if isinstance(value, str):
        return _SURROGATES.sub("\ufffd", value)
    if isinstance(value, (list, tuple)):
        items = [valid_text(item) for item in value]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, Mapping):
        return {valid_text(k): valid_text(v) for k, v in value.items()}
    return value


def _valid_attributes(container: Any) -> Any:
    if isinstance(container, BoundedAttributes):
        out = BoundedAttributes(maxlen=None, attributes=None, immutable=False)
        out._dict.update(valid_text(dict(container._dict)))
        out.dropped = container.dropped
        return out
    return None if container is None else valid_text(dict(container))


def _valid_items(container: Any) -> Any:
    """Events or links (a BoundedList keeps its drop count) with valid text in names and attributes."""
    items = []
    for item in container or ():
        item = copy.copy(item)
        if hasattr(item, "_name"):
            item._name = valid_text(item._name)
        item._attributes = _valid_attributes(item._attributes)
        items.append(item)
    if isinstance(container, BoundedList):
        out: BoundedList[Any] = BoundedList(None)
        out.extend(items)
        out.dropped = container.dropped
        return out
    return items


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
            valid_text(scope.name), valid_text(scope.version), scope.schema_url, valid_text(dict(scope.attributes or {}))
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


def body_text(body: Any) -> str | None:
    """A log body as text: strings as they are, anything else as JSON."""
    if body is None or type(body) is str:
        return body
    return attribute_text(body)


def encode_logs(records: Sequence[Any]) -> pa.Table:
    """Encode OTel SDK ``ReadableLogRecord`` (or ``LogData``) objects as a ``logs`` table."""
    n = len(records)
    logs = [r.log_record for r in records]
    resource_column, services = _resource_columns([r.resource for r in records])
    scopes = [r.instrumentation_scope for r in records]
    columns = {
        "timestamp": [log.timestamp if log.timestamp is not None else log.observed_timestamp for log in logs],
        "observed_timestamp": [log.observed_timestamp for log in logs],
        "trace_id": [f"{log.trace_id:032x}" if log.trace_id else None for log in logs],
        "span_id": [f"{log.span_id:016x}" if log.span_id else None for log in logs],
        "trace_flags": [None if log.trace_flags is None else int(log.trace_flags) for log in logs],
        "severity_text": [log.severity_text for log in logs],
        "severity_number": [
            None if log.severity_number is None else log.severity_number.value for log in logs
        ],
        "body": [body_text(log.body) for log in logs],
        "attributes": _flat_map([log.attributes or _EMPTY for log in logs]),
        "resource_attributes": resource_column,
        "service_name": services,
        "logger_name": [None if sc is None else sc.name for sc in scopes],
        "event_name": [getattr(log, "event_name", None) or None for log in logs],
        "dropped_attributes_count": [getattr(r, "dropped_attributes", 0) for r in records],
    }
    return table_from_columns("logs", columns, n)


class MetricRows:
    """Column lists for the ``metrics`` table, filled one data point at a time."""

    def __init__(self) -> None:
        nanos = set(schema.NANO_COLUMNS["metrics"].values())  # derived from the timestamps at finish
        self.columns: dict[str, list[Any]] = {name: [] for name in schema.METRICS.names if name not in nanos}
        self.attributes = MapColumn()
        self.resources = MapColumn()
        self.num_rows = 0

    def add(
        self,
        *,
        attributes: Mapping[str, Any] | None,
        resource: tuple[list[str], list[str]],
        **values: Any,
    ) -> None:
        """Append one data point; ``values`` are column name → value, absent columns become NULL."""
        for name, column in self.columns.items():
            column.append(values.get(name))
        self.attributes.add(attributes)
        self.resources.add_encoded(*resource)
        self.num_rows += 1

    def finish(self) -> pa.Table:
        columns: dict[str, Any] = dict(self.columns)
        columns["attributes"] = self.attributes.finish()
        columns["resource_attributes"] = self.resources.finish()
        return table_from_columns("metrics", columns, self.num_rows)


_TEMPORALITY = {1: "delta", 2: "cumulative"}


def encode_metrics(metrics_data: Any) -> pa.Table:
    """Encode an OTel SDK ``MetricsData`` as a ``metrics`` table, one row per data point."""
    # Local import: the metrics SDK is heavy and only needed when metrics are exported.
    from opentelemetry.sdk.metrics.export import (
        ExponentialHistogram,
        ExponentialHistogramDataPoint,
        Gauge,
        Histogram,
        HistogramDataPoint,
        NumberDataPoint,
        Sum,
    )

    rows = MetricRows()
    p: NumberDataPoint | HistogramDataPoint | ExponentialHistogramDataPoint
    for resource_metrics in metrics_data.resource_metrics:
        resource = resource_metrics.resource
        resource_pairs = encoded_pairs(resource.attributes)
        service = resource.attributes.get("service.name")
        for scope_metrics in resource_metrics.scope_metrics:
            scope_name = scope_metrics.scope.name if scope_metrics.scope else None
            for metric in scope_metrics.metrics:
                data = metric.data
                common = {
                    "name": metric.name,
                    "description": metric.description or None,
                    "unit": metric.unit or None,
                    "service_name": service,
                    "scope_name": scope_name,
                }
                if isinstance(data, Sum):
                    kind = "counter" if data.is_monotonic else "gauge"
                    temporality = _TEMPORALITY.get(int(data.aggregation_temporality))
                    for p in data.data_points:
                        rows.add(
                            attributes=p.attributes,
                            resource=resource_pairs,
                            timestamp=p.time_unix_nano,
                            start_timestamp=p.start_time_unix_nano,
                            type=kind,
                            is_monotonic=data.is_monotonic,
                            temporality=temporality,
                            value=float(p.value),
                            **common,
                        )
                elif isinstance(data, Gauge):
                    for p in data.data_points:
                        rows.add(
                            attributes=p.attributes,
                            resource=resource_pairs,
                            timestamp=p.time_unix_nano,
                            start_timestamp=p.start_time_unix_nano or None,
                            type="gauge",
                            value=float(p.value),
                            **common,
                        )
                elif isinstance(data, Histogram):
                    temporality = _TEMPORALITY.get(int(data.aggregation_temporality))
                    for p in data.data_points:
                        rows.add(
                            attributes=p.attributes,
                            resource=resource_pairs,
                            timestamp=p.time_unix_nano,
                            start_timestamp=p.start_time_unix_nano,
                            type="histogram",
                            temporality=temporality,
                            count=p.count,
                            sum=float(p.sum),
                            bucket_counts=list(p.bucket_counts),
                            explicit_bounds=[float(b) for b in p.explicit_bounds],
                            min=_finite_or_none(p.min),
                            max=_finite_or_none(p.max),
                            **common,
                        )
                elif isinstance(data, ExponentialHistogram):
                    temporality = _TEMPORALITY.get(int(data.aggregation_temporality))
                    for p in data.data_points:
                        rows.add(
                            attributes=p.attributes,
                            resource=resource_pairs,
                            timestamp=p.time_unix_nano,
                            start_timestamp=p.start_time_unix_nano,
                            type="exponential_histogram",
                            temporality=temporality,
                            count=p.count,
                            sum=float(p.sum),
                            min=_finite_or_none(p.min),
                            max=_finite_or_none(p.max),
                            scale=p.scale,
                            zero_count=p.zero_count,
                            positive_offset=p.positive.offset,
                            positive_bucket_counts=list(p.positive.bucket_counts),
                            negative_offset=p.negative.offset,
                            negative_bucket_counts=list(p.negative.bucket_counts),
                            **common,
                        )
    return rows.finish()


def _finite_or_none(value: float | None) -> float | None:
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return None
    return float(value)


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


"""The fast path for OTLP JSON files: a JSON Lines reader plus vectorised Arrow, no per-span Python.

A reader turns each line into nested Arrow lists of spans and log records shaped by :data:`SPEC`:
the compiled ``ingest.sources._jsonarrow`` when it is built (one pass, no GIL, AnyValues already as text),
else DuckDB's ``read_json_objects`` + ``json_transform`` (its C++ reader, on every core). The store
columns are then built with Arrow compute and numpy over whole columns. Per-span Python would cost
~10x more (see docs/benchmarks.md, "Ingest").

Every scalar is read as text and checked here (ids are hex of the right width, times are decimal
integers, enums are known numbers or names), so nothing the reader takes leniently slips through:
a line with anything unexpected is *flagged* and handed, with its line number, to the exact path
(:mod:`ingest.sources.otlp`), which either imports it or says precisely what is wrong. Metric lines always
take the exact path (their five point types make a columnar path not worth it at their volumes).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest.sources.otlp import KIND_NAMES, STATUS_NAMES, InputError, json_any_value_text
from ingest.store import schema
from ingest.store.encoding import table_from_columns

try:
    from ingest.sources import _jsonarrow
except ImportError:  # not compiled (a source tree used without `pip install -e .`): DuckDB reads
    _jsonarrow = None  # type: ignore[assignment]  # the optional C module: None means DuckDB reads

_V = "VARCHAR"


class _Text(str):
    """A VARCHAR that must be a JSON string: protobuf's string and bytes fields (ids, names, keys).

    DuckDB gets plain ``VARCHAR`` (json_transform cannot tell); the compiled reader flags a line
    holding a number, bool, object or array there, since the exact path rejects it.
    """


_S = _Text(_V)
# AnyValues stay JSON text ({"stringValue":"GET"}): DuckDB writes them minified, key first, and
# numpy cuts the value out of the text (_value_text) — 20% less DuckDB time than a 7-field struct.
_ANY = "JSON"
_KVS = [{"key": _S, "value": _ANY}]
_RESOURCE = {"attributes": _KVS, "droppedAttributesCount": _V}
# Fields the store does not keep are read too (scope attributes, flags, schema URLs): the exact path
# (protobuf) refuses a line where one is malformed, so the fast path must see them to flag it.
_SCOPE = {"name": _S, "version": _S, "attributes": _KVS, "droppedAttributesCount": _V}
_SPAN = {
    "traceId": _S,
    "spanId": _S,
    "traceState": _S,
    "parentSpanId": _S,
    "name": _S,
    "kind": _V,
    "startTimeUnixNano": _V,
    "endTimeUnixNano": _V,
    "attributes": _KVS,
    "droppedAttributesCount": _V,
    "events": [{"timeUnixNano": _V, "name": _S, "attributes": _KVS, "droppedAttributesCount": _V}],
    "droppedEventsCount": _V,
    "links": [
        {
            "traceId": _S,
            "spanId": _S,
            "traceState": _S,
            "attributes": _KVS,
            "droppedAttributesCount": _V,
            "flags": _V,
        }
    ],
    "droppedLinksCount": _V,
    "status": {"message": _S, "code": _V},
    "flags": _V,
}
_LOG = {
    "timeUnixNano": _V,
    "observedTimeUnixNano": _V,
    "severityNumber": _V,
    "severityText": _S,
    "body": _ANY,
    "attributes": _KVS,
    "droppedAttributesCount": _V,
    "flags": _V,
    "traceId": _S,
    "spanId": _S,
    "eventName": _S,
}
SPEC = {
    "resourceSpans": [
        {
            "resource": _RESOURCE,
            "scopeSpans": [{"scope": _SCOPE, "spans": [_SPAN], "schemaUrl": _S}],
            "schemaUrl": _S,
        }
    ],
    "resourceLogs": [
        {
            "resource": _RESOURCE,
            "scopeLogs": [{"scope": _SCOPE, "logRecords": [_LOG], "schemaUrl": _S}],
            "schemaUrl": _S,
        }
    ],
    # Only whether metrics are there: their lines go to the exact path.
    "resourceMetrics": [{"resource": {"droppedAttributesCount": _V}}],
}

_KIND_CODES = ["", "0", "1", "2", "3", "4", "5"] + [
    f"SPAN_KIND_{n}" for n in ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
]
_KIND_OF_CODE = pa.array(["INTERNAL"] + list(KIND_NAMES) + list(KIND_NAMES))
_STATUS_CODES = ["", "0", "1", "2", "STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"]
_STATUS_OF_CODE = pa.array(["UNSET"] + list(STATUS_NAMES) + list(STATUS_NAMES))
_SEVERITY_NAMES = ["SEVERITY_NUMBER_UNSPECIFIED"] + [
    f"SEVERITY_NUMBER_{level}{i if i > 1 else ''}"
    for level in ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
    for i in range(1, 5)
]
_HEX_OK = np.zeros(256, dtype=bool)
_HEX_OK[np.frombuffer(b"0123456789abcdefABCDEF", dtype=np.uint8)] = True
_LOWER_HEX_OK = np.zeros(256, dtype=bool)
_LOWER_HEX_OK[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = True
_LOWER = np.arange(256, dtype=np.uint8)
_LOWER[np.frombuffer(b"ABCDEF", dtype=np.uint8)] = np.frombuffer(b"abcdef", dtype=np.uint8)
_INT64_MAX = 2**63 - 1


_VARCHAR, _ANYVALUE, _STRUCT, _LIST, _STRING = 0, 1, 2, 3, 4
# What the compiled reader gives for an AnyValue: its text and what the text is (ANY_* in _jsonarrow.c).
_READ_ANYVALUE = pa.struct([("text", pa.string()), ("kind", pa.int8())])
_ANY_DOUBLE, _ANY_JSON = 2, 3


def _compile(spec: Any, nodes: list[tuple[int, Any]]) -> pa.DataType:
    """Flatten a json_transform spec into ``_jsonarrow``'s node list (parents first); its Arrow type."""
    index = len(nodes)
    if isinstance(spec, dict):
        nodes.append((_STRUCT, []))
        fields = []
        for name, child in spec.items():
            child_index = len(nodes)
            fields.append(pa.field(name, _compile(child, nodes)))
            nodes[index][1].append((name, child_index))
        return pa.struct(fields)
    if isinstance(spec, list):
        nodes.append((_LIST, index + 1))
        return pa.list_(_compile(spec[0], nodes))
    if spec == _ANY:
        nodes.append((_ANYVALUE, None))
        return _READ_ANYVALUE
    nodes.append((_STRING if isinstance(spec, _Text) else _VARCHAR, None))
    return pa.string()


_NODES: list[tuple[int, Any]] = []
_ROW_TYPE = _compile(SPEC, _NODES)


def _node_array(parts: list[tuple[Any, ...]], index: int, type_: pa.DataType) -> pa.Array:
    """The Arrow array of node ``index`` (and, recursively, its children) from ``_jsonarrow`` buffers."""
    rows, nulls, validity, offsets, data, kinds = parts[index]
    bitmap = pa.py_buffer(validity) if nulls else None
    kind, fields = _NODES[index]
    if kind == _STRUCT:
        children = [_node_array(parts, child, type_.field(i).type) for i, (_, child) in enumerate(fields)]
        return pa.Array.from_buffers(type_, rows, [bitmap], null_count=nulls, children=children)
    if kind == _LIST:
        item = _node_array(parts, fields, type_.value_type)
        buffers = [bitmap, pa.py_buffer(offsets)]
        return pa.Array.from_buffers(type_, rows, buffers, null_count=nulls, children=[item])
    text = pa.StringArray.from_buffers(rows, pa.py_buffer(offsets), pa.py_buffer(data), bitmap, nulls)
    if kind in (_VARCHAR, _STRING):
        return text
    kind_codes = pa.Array.from_buffers(pa.int8(), rows, [None, pa.py_buffer(kinds)])
    return pa.Array.from_buffers(type_, rows, [bitmap], null_count=nulls, children=[text, kind_codes])


def compiled_reader() -> bool:
    """Whether the compiled JSON Lines reader (``ingest.sources._jsonarrow``) is built."""
    return _jsonarrow is not None


def transform_lines(data: bytes | memoryview) -> pa.Table:
    """Each non-blank line of ``data`` as one row ``j`` of :data:`SPEC` (what :func:`transform_sql` gives).

    The compiled reader, GIL released while it reads: run it beside the Arrow half as DuckDB is.
    """
    if _jsonarrow is None:
        msg = "ingest.sources._jsonarrow is not compiled; use transform_sql through DuckDB"
        raise RuntimeError(msg)
    parts = _jsonarrow.transform(data, _NODES)
    return pa.table({"j": _node_array(parts, 0, _ROW_TYPE)})


def transform_sql(source_sql: str, *, with_length: bool = False) -> str:
    """The DuckDB query over a ``read_json_objects`` source: one row per JSON line, in order.

    ``with_length`` adds ``n``, the length of each object's JSON text (for a progress bar).
    """
    spec = json.dumps(SPEC).replace("'", "''")
    length = ", strlen(json::VARCHAR) AS n" if with_length else ""
    return f"SELECT json_transform(json, '{spec}') AS j{length} FROM {source_sql}"


@dataclass
class BlockResult:
    """What one block of JSON lines decoded to; row numbers count the block's non-blank lines from 0."""

    spans: pa.Table | None = None
    logs: pa.Table | None = None
    rows: int = 0
    #: rows the exact path must take: row -> why the fast path would not (a hint; the exact path decides)
    flagged: dict[int, str] = field(default_factory=dict)


def decode_block(
    con: duckdb.DuckDBPyConnection,
    path: str,
    *,
    fmt: str = "newline_delimited",
    max_object: int | None = None,
) -> BlockResult:
    """Decode the JSON objects in ``path`` (``fmt`` as DuckDB's read_json_objects ``format``).

    ``max_object`` raises DuckDB's object size limit (16 MB by default) for one big document; an
    object the reader cannot take comes back flagged and takes the exact path either way.
    """
    return decode_transformed(transform_block(con, path, fmt=fmt, max_object=max_object))


def transform_block(
    con: duckdb.DuckDBPyConnection,
    path: str,
    *,
    fmt: str = "newline_delimited",
    max_object: int | None = None,
) -> pa.Table:
    """The reading half of :func:`decode_block` (releases the GIL: run it beside the Arrow half).

    JSON Lines go through the compiled reader when it is built, anything else through DuckDB.
    """
    if _jsonarrow is not None and fmt == "newline_delimited" and max_object is None:
        with open(path, "rb") as block:
            return transform_lines(block.read())
    quoted = path.replace("'", "''")
    size = f", maximum_object_size={int(max_object)}" if max_object else ""
    source = f"read_json_objects('{quoted}', format='{fmt}', ignore_errors=true{size})"
    return con.sql(transform_sql(source)).to_arrow_table()


def decode_transformed(result: pa.Table) -> BlockResult:
    """Build store tables from the rows of :func:`transform_sql`."""
    n = result.num_rows
    out = BlockResult(rows=n)
    if n == 0:
        return out
    j = result.column("j").combine_chunks()
    resource_spans = pc.struct_field(j, "resourceSpans")
    resource_logs = pc.struct_field(j, "resourceLogs")
    resource_metrics = pc.struct_field(j, "resourceMetrics")
    bad = np.zeros(n, dtype=bool)
    objects = np.asarray(pc.is_valid(j).to_numpy(zero_copy_only=False), dtype=bool)
    no_signal = np.asarray(
        pc.and_(
            pc.and_(pc.is_null(resource_spans), pc.is_null(resource_logs)), pc.is_null(resource_metrics)
        ).to_numpy(zero_copy_only=False),
        dtype=bool,
    )
    for row in np.flatnonzero(~objects):
        out.flagged[int(row)] = "not valid JSON"
    for row in np.flatnonzero(objects & no_signal):
        out.flagged[int(row)] = "no resourceSpans, resourceMetrics or resourceLogs"
    bad |= ~objects | no_signal
    has_metrics = (
        np.asarray(pc.fill_null(pc.list_value_length(resource_metrics), 0).to_numpy(), dtype=np.int64) > 0
    )
    for row in np.flatnonzero(has_metrics & ~bad):
        out.flagged[int(row)] = "metrics"
    bad |= has_metrics
    try:
        spans, span_lines, span_ok = _spans(resource_spans)
        logs, log_lines, log_ok = _logs(resource_logs)
    except _UndecodableValue:
        # Rare (a malformed nested AnyValue) and not traced to its line here: every line of the
        # block takes the exact path, which imports the good ones and reports the bad one.
        for row in np.flatnonzero(~bad):
            out.flagged[int(row)] = "an attribute value the fast path cannot take as it is"
        return out
    for lines, ok, what in ((span_lines, span_ok, "a span"), (log_lines, log_ok, "a log record")):
        for row in np.unique(lines[~ok]):
            out.flagged.setdefault(int(row), f"{what} with a field the fast path cannot take as it is")
            bad[row] = True
    out.spans = _keep(spans, span_lines, bad)
    out.logs = _keep(logs, log_lines, bad)
    return out


def _keep(table: pa.Table | None, lines: np.ndarray, bad: np.ndarray) -> pa.Table | None:
    if table is None or table.num_rows == 0:
        return None
    drop = bad[lines[: table.num_rows]]
    if drop.any():
        table = table.filter(pa.array(~drop))
    return table if table.num_rows else None


# --------------------------------------------------------------------------- nesting


def _flatten(lists: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Items of a list column and, for each item, the index of the row it came from."""
    parents = pc.list_parent_indices(lists).to_numpy()
    return pc.list_flatten(lists), np.asarray(parents, dtype=np.int64)


def _levels(
    resources: pa.Array, scope_key: str, items_key: str
) -> tuple[pa.Array, pa.Array, pa.Array, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Resource, scope and item structs with item -> line, item -> resource, item -> scope indices.

    Also the lines with a resource or scope entry whose list came out NULL: absent, or of the wrong
    JSON type (which the reader cannot tell apart). Such entries are pointless when valid, so those
    lines simply take the exact path, which says which it was.
    """
    res_items, line_of_res = _flatten(resources)
    scope_lists = pc.struct_field(res_items, scope_key)
    scopes, res_of_scope = _flatten(scope_lists)
    item_lists = pc.struct_field(scopes, items_key)
    items, scope_of_item = _flatten(item_lists)
    res_of_item = res_of_scope[scope_of_item]
    odd_res = np.asarray(pc.is_null(scope_lists).to_numpy(zero_copy_only=False), dtype=bool)
    odd_scope = np.asarray(pc.is_null(item_lists).to_numpy(zero_copy_only=False), dtype=bool)
    odd_lines = np.concatenate([line_of_res[odd_res], line_of_res[res_of_scope[odd_scope]]])
    return res_items, scopes, items, line_of_res[res_of_item], res_of_item, scope_of_item, odd_lines


def _field(array: pa.Array, name: str) -> pa.Array:
    return pc.struct_field(array, name)


def _empty_null(array: pa.Array) -> pa.Array:
    """Empty strings (OTLP's default) as NULL."""
    return pc.if_else(pc.equal(array, ""), pa.scalar(None, pa.string()), array)


# --------------------------------------------------------------------------- scalars


def _hex(array: pa.Array, width: int, *, optional: bool) -> tuple[pa.Array, np.ndarray]:
    """Lowercased hex ids and which rows are valid; empty/absent is valid (NULL) only when ``optional``.

    The usual case — every id present, of the right width, already lower case — returns the array
    itself after one pass over its bytes.
    """
    n = len(array)
    array = array.cast(pa.string())
    if n == 0:
        return array, np.ones(0, dtype=bool)
    if array.null_count == 0:
        offsets, data = _string_buffers(array)
        if offsets[-1] - offsets[0] == n * width:
            chars = data[offsets[0] : offsets[-1]]
            if _LOWER_HEX_OK[chars].all() and (np.diff(offsets) == width).all():
                return array, np.ones(n, dtype=bool)
    lengths = np.asarray(pc.fill_null(pc.binary_length(array), 0).to_numpy(), dtype=np.int64)
    ok = lengths == width
    if optional:
        ok |= lengths == 0
    sel = np.flatnonzero(lengths == width)
    out_valid = lengths == width
    digits = np.zeros((n, width), dtype=np.uint8)
    if sel.size:
        chosen = array if sel.size == n else array.take(pa.array(sel))
        offsets, data = _string_buffers(chosen)
        block = data[offsets[0] : offsets[-1]].reshape(sel.size, width)
        good = _HEX_OK[block].all(axis=1)
        ok[sel[~good]] = False
        digits[sel] = _LOWER[block]
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    mask = None if out_valid.all() else pa.array(out_valid, pa.bool_()).buffers()[1]
    ids = pa.StringArray.from_buffers(
        n, pa.py_buffer(offsets), pa.py_buffer(digits.tobytes()), mask, null_count=int(n - out_valid.sum())
    )
    return ids, ok


def _string_buffers(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (this slice's) and the character data of a string array, as numpy views."""
    buffers = array.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32)[array.offset : array.offset + len(array) + 1]
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else np.zeros(0, np.uint8)
    return offsets, data


def _uint(array: pa.Array, *, required: bool, limit: int = _INT64_MAX) -> tuple[pa.Array, np.ndarray]:
    """Decimal-integer text as int64 (NULL where absent) and which rows are valid."""
    array = array.cast(pa.string())
    n = len(array)
    if array.null_count == n:  # absent everywhere (the usual case for the dropped counts)
        return pa.nulls(n, pa.int64()), np.full(n, not required, dtype=bool)
    if array.null_count == 0 and pc.all(pc.utf8_is_digit(array)).as_py():
        # Every row plain digits (the usual case for times): one cast, one range check.
        try:
            values = array.cast(pa.uint64())
        except pa.ArrowInvalid:
            values = None  # more than 20 digits or past uint64: the row-by-row path below says which
        if values is not None and (pc.max(values).as_py() or 0) <= limit:
            return values.cast(pa.int64()), np.ones(n, dtype=bool)
    digits = pc.utf8_is_digit(array)
    present = pc.is_valid(array)
    ok_arrow = pc.if_else(present, pc.fill_null(digits, False), not required)
    ok = np.asarray(ok_arrow.to_numpy(zero_copy_only=False), dtype=bool)
    clean = pc.if_else(pc.fill_null(digits, False), array, pa.scalar(None, pa.string()))
    # 20 digits can exceed uint64; such text is invalid anyway (the exact path says why).
    long = np.asarray(
        pc.fill_null(pc.greater(pc.binary_length(clean), 19), False).to_numpy(zero_copy_only=False)
    )
    if long.any():
        ok &= ~long
        clean = pc.if_else(pa.array(long), pa.scalar(None, pa.string()), clean)
    values = clean.cast(pa.uint64())
    too_big = pc.fill_null(pc.greater(values, pa.scalar(limit, pa.uint64())), False)
    too_big = np.asarray(too_big.to_numpy(zero_copy_only=False))
    if too_big.any():
        ok &= ~too_big
        values = pc.if_else(pa.array(too_big), pa.scalar(None, pa.uint64()), values)
    return values.cast(pa.int64()), ok


def _enum(array: pa.Array, codes: list[str], names: pa.Array) -> tuple[pa.Array, np.ndarray]:
    index = pc.index_in(array.cast(pa.string()), value_set=pa.array(codes))
    ok = np.asarray(pc.or_(pc.is_valid(index), pc.is_null(array)).to_numpy(zero_copy_only=False), dtype=bool)
    return pc.take(names, pc.fill_null(index, 0)), ok


def _count(array: pa.Array) -> tuple[pa.Array, np.ndarray]:
    values, ok = _uint(array, required=False, limit=2**31 - 1)
    return pc.fill_null(values, 0).cast(pa.int32()), ok


def _times(values: pa.Array) -> pa.Array:
    return values.cast(schema.NS_TIMESTAMP)


# --------------------------------------------------------------------------- attributes


# Length of the AnyValue key by its first two letters: {"stringValue": ... is 2 + 11 + 2 bytes, etc.
_ANY_KEYS = (b"stringValue", b"intValue", b"doubleValue", b"boolValue", b"bytesValue")
_KEY_LENGTH = np.zeros((256, 256), dtype=np.int64)
for _key in _ANY_KEYS:
    _KEY_LENGTH[_key[0], _key[1]] = len(_key)
_QUOTE = ord('"')
#: An int64 as Python's int() then str() writes it; 19 digits go to the exact decoder (range check).
_CANONICAL_INT64 = r"^(0|-?[1-9][0-9]{0,17})$"
_BACKSLASH = ord("\\")


def _value_text(values: pa.Array) -> pa.Array:
    """AnyValue JSON texts as attribute text, vectorised; arrays, kvlists and escapes in Python.

    ``{"stringValue":"GET"}`` -> ``GET``, ``{"intValue":"10"}`` -> ``10``, ``{"doubleValue":0.5}`` ->
    ``0.5``, ``{"boolValue":true}`` -> ``true``; ``{}`` (no value) -> NULL; the rest (bytes, arrays,
    kvlists, escapes, and a value of another JSON type than its key's) through
    :func:`~ingest.otlp.json_any_value_text`, protobuf's reading, as the exact path's.
    """
    if pa.types.is_struct(values.type):
        return _read_value_text(values)
    values = values.cast(pa.string())
    n = len(values)
    if n == 0:
        return values
    buffers = values.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32)[values.offset : values.offset + n + 1].astype(
        np.int64
    )
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else np.zeros(0, np.uint8)
    starts, ends = offsets[:-1], offsets[1:]
    ok = ends - starts >= 6
    if values.null_count:
        ok &= np.asarray(values.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    if not ok.any():  # no value has text (all absent or empty): nothing to cut
        return pa.nulls(n, pa.string())
    at = np.where(ok, starts, 0)
    last = len(data) - 1
    first_letter = data[np.minimum(at + 2, last)]
    key_length = np.where(ok, _KEY_LENGTH[first_letter, data[np.minimum(at + 3, last)]], 0)
    simple = key_length > 0
    # The first two letters only guess the key: check all of {"key": and that the value holds no quote
    # (an escaped one takes the slow path below), else a mistyped key or a second key would be cut
    # into the text.
    for key in _ANY_KEYS:
        rows = np.flatnonzero(simple & (key_length == len(key)) & (first_letter == key[0]))
        if rows.size:
            window = data[np.minimum(at[rows, None] + np.arange(len(key) + 4), last)]
            simple[rows[~(window == np.frombuffer(b'{"' + key + b'":', dtype=np.uint8)).all(axis=1)]] = False
    value_start = starts + key_length + 4  # past {"key":
    value_end = ends - 1  # before }
    quoted = simple & (data[np.where(simple, np.minimum(value_start, last), 0)] == _QUOTE)
    value_start = value_start + quoted
    value_end = value_end - quoted
    quotes = np.flatnonzero(data == _QUOTE)
    simple &= np.searchsorted(quotes, value_end) == np.searchsorted(quotes, value_start)
    slow = ok & ~simple
    escapes = np.flatnonzero(data[offsets[0] : offsets[-1]] == _BACKSLASH) + offsets[0]
    if escapes.size:
        slow[np.unique(np.searchsorted(offsets, escapes, side="right") - 1)] = True
    # The JSON type protobuf takes as it is, per key (as _jsonarrow.c checks): a string for
    # stringValue, true/false for boolValue, a number for doubleValue, a canonical int64 for intValue
    # (checked on the text below); bytesValue always goes to the exact decoder (it re-encodes).
    second_letter = data[np.minimum(at + 3, last)]
    first_value_byte = data[np.where(simple, np.minimum(value_start, last), 0)]
    typed = np.where(
        first_letter == ord("s"),
        quoted,
        np.where(
            first_letter == ord("d"),
            (first_value_byte == ord("-"))
            | ((first_value_byte >= ord("0")) & (first_value_byte <= ord("9"))),
            np.where(
                second_letter == ord("o"),  # boolValue
                ~quoted & ((first_value_byte == ord("t")) | (first_value_byte == ord("f"))),
                first_letter == ord("i"),  # intValue; bytesValue (b, y) is never simple
            ),
        ),
    )
    slow |= ok & simple & ~typed
    simple &= typed
    keep = simple & ~slow & (value_end >= value_start)
    lengths = np.where(keep, value_end - value_start, 0)
    new_offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_offsets[1:])
    # A mask of the bytes to keep: runs of (gap, value) lengths expanded by np.repeat (values are in
    # buffer order and never overlap); several times faster than gathering byte indices.
    rows = np.flatnonzero(lengths)
    if rows.size:
        first, last = value_start[rows], value_end[rows]
        runs = np.empty(2 * rows.size + 1, dtype=np.int64)
        runs[0] = first[0]
        runs[1::2] = last - first
        runs[2:-1:2] = first[1:] - last[:-1]
        runs[-1] = len(data) - last[-1]
        pattern = np.zeros(2 * rows.size + 1, dtype=bool)
        pattern[1::2] = True
        kept = np.repeat(pattern, runs)
    else:
        kept = np.zeros(len(data), dtype=bool)
    text = pa.StringArray.from_buffers(
        n,
        pa.py_buffer(new_offsets.astype(np.int32)),
        pa.py_buffer(data[kept].tobytes()),
        pa.array(keep).buffers()[1],
        null_count=int(n - keep.sum()),
    )
    # Doubles as Python writes them (repr), like the exporter and the exact path: the JSON text of a
    # number is not canonical ("1.50", "1e5") and readers reformat it (DuckDB writes 6e-05 as 0.00006).
    doubles = keep & (first_letter == ord("d"))
    if doubles.any():
        text = _canonical_doubles(text, np.flatnonzero(doubles))
    ints = np.flatnonzero(keep & (first_letter == ord("i")))
    if ints.size:
        canonical = pc.match_substring_regex(text.take(pa.array(ints)), _CANONICAL_INT64)
        slow[ints[~np.asarray(canonical.to_numpy(zero_copy_only=False), dtype=bool)]] = True
    slow_rows = np.flatnonzero(slow)
    exact = [_exact_value_text(json_text) for json_text in values.take(pa.array(slow_rows)).to_pylist()]
    return _replace_rows(text, slow_rows, exact)


class _UndecodableValue(Exception):
    """An AnyValue the exact decoder refuses: its lines take the exact path, which says why."""


def _exact_value_text(json_text: str) -> str | None:
    """One AnyValue's text through the exact decoder (arrays, kvlists, escapes)."""
    try:
        return json_any_value_text(json.loads(json_text))
    except (InputError, ValueError, RecursionError) as exc:
        raise _UndecodableValue(json_text) from exc


def _read_value_text(values: pa.StructArray) -> pa.Array:
    """:func:`_value_text` of the compiled reader's AnyValues, which come as text already."""
    text = pc.struct_field(values, "text")
    kinds = np.asarray(pc.fill_null(pc.struct_field(values, "kind"), 0).to_numpy(zero_copy_only=False))
    doubles = np.flatnonzero(kinds == _ANY_DOUBLE)
    if doubles.size:
        text = _canonical_doubles(text, doubles)
    exact = np.flatnonzero(kinds == _ANY_JSON)
    json_texts = text.take(pa.array(exact)).to_pylist()
    return _replace_rows(text, exact, [_exact_value_text(json_text) for json_text in json_texts])


def _canonical_doubles(text: pa.StringArray, rows: np.ndarray) -> pa.StringArray:
    """``text`` with the doubles at ``rows`` as Python's ``repr`` writes them.

    Plain decimals from 1e-4 up that are already the shortest round-trip text (Arrow's float
    formatting, checked in one vectorised pass) are kept; the rest ("1.50", "1e5", "NaN") go through
    ``repr(float())``.
    A text that is no number at all stays as it is.
    """
    numbers = text.take(pa.array(rows))
    try:
        shortest = pc.equal(numbers.cast(pa.float64()).cast(pa.string()), numbers)
        # repr writes fixed-point only from 1e-4 up to 1e16 (Arrow's formatting goes further).
        plain = pc.and_(
            pc.match_substring(numbers, "."), pc.invert(pc.match_substring_regex(numbers, r"[eE]|^-?0\.0000"))
        )
        canonical = np.asarray(pc.and_(shortest, plain).to_numpy(zero_copy_only=False), dtype=bool)
        redo = np.flatnonzero(~canonical)
    except pa.ArrowInvalid:  # some text is no number: check every one
        redo = np.arange(len(rows))
    texts = [_double_text(number) for number in numbers.take(pa.array(redo)).to_pylist()]
    return _replace_rows(text, rows[redo], texts)


def _replace_rows(text: pa.StringArray, rows: np.ndarray, texts: Sequence[str | None]) -> pa.StringArray:
    """``text`` with the (ascending) ``rows`` replaced by ``texts``: values Python had to write."""
    if not rows.size:
        return text
    mask = np.zeros(len(text), dtype=bool)
    mask[rows] = True
    return pc.replace_with_mask(text, pa.array(mask), pa.array(texts, pa.string()))


def _double_text(number: str) -> str:
    try:
        return repr(float(number))
    except ValueError:
        return number


def _list_offsets(lists: pa.Array) -> np.ndarray:
    """Offsets from 0 into ``list_flatten(lists)``, a NULL list counting as empty (as flatten skips it)."""
    lengths = np.asarray(pc.fill_null(pc.list_value_length(lists), 0).to_numpy(), dtype=np.int32)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def _attribute_maps(kv_lists: pa.Array) -> pa.MapArray:
    """A ``MAP(VARCHAR, VARCHAR)`` column from a list<struct<key, value: AnyValue>> column."""
    offsets = _list_offsets(kv_lists)
    flat = pc.list_flatten(kv_lists)
    keys = pc.fill_null(_field(flat, "key"), "")
    values = _value_text(_field(flat, "value"))
    return pa.MapArray.from_arrays(pa.array(offsets), keys, values, type=schema.ATTRIBUTES)


def _resources(res_items: pa.Array) -> tuple[pa.MapArray, pa.Array]:
    """Resource attribute maps and service names, one per resource item."""
    maps = _attribute_maps(_field(_field(res_items, "resource"), "attributes"))
    keys = maps.keys
    is_service = np.asarray(pc.equal(keys, "service.name").to_numpy(zero_copy_only=False), dtype=bool)
    services: list[str | None] = [None] * len(maps)
    if is_service.any():
        offsets = maps.offsets.to_numpy()
        owner = np.searchsorted(offsets, np.flatnonzero(is_service), side="right") - 1
        items = maps.items.to_pylist()
        for row, index in zip(owner.tolist(), np.flatnonzero(is_service).tolist()):
            services[row] = items[index]
    return maps, pa.array(services, pa.string())


def _unstored_ok(res_items: pa.Array, scopes: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Per resource and per scope: whether the fields the store does not keep are well-formed.

    A malformed dropped count or scope attribute makes protobuf refuse the whole line, so the fast
    path must not import it. A scope attribute value protobuf refuses raises _UndecodableValue.
    """
    _, res_ok = _count(_field(_field(res_items, "resource"), "droppedAttributesCount"))
    scope = _field(scopes, "scope")
    _, scope_ok = _count(_field(scope, "droppedAttributesCount"))
    _attribute_maps(_field(scope, "attributes"))
    return res_ok, scope_ok


def _nested_list(parents: pa.Array, item_type: pa.DataType, children: list[pa.Array]) -> pa.ListArray:
    """A list<struct> column whose offsets are those of ``parents`` (nulls become empty lists)."""
    items = pa.StructArray.from_arrays(children, fields=list(item_type))
    return pa.ListArray.from_arrays(pa.array(_list_offsets(parents)), items, type=pa.list_(item_type))


# --------------------------------------------------------------------------- spans


def _spans(resource_spans: pa.Array) -> tuple[pa.Table | None, np.ndarray, np.ndarray]:
    res_items, scopes, spans, lines, res_of, scope_of, odd_lines = _levels(
        resource_spans, "scopeSpans", "spans"
    )
    n = len(spans)
    if n == 0:
        return None, odd_lines, np.zeros(len(odd_lines), dtype=bool)
    trace_id, ok = _hex(_field(spans, "traceId"), 32, optional=False)
    span_id, ok_span = _hex(_field(spans, "spanId"), 16, optional=False)
    parent, ok_parent = _hex(_field(spans, "parentSpanId"), 16, optional=True)
    start, ok_start = _uint(_field(spans, "startTimeUnixNano"), required=True)
    end, ok_end = _uint(_field(spans, "endTimeUnixNano"), required=True)
    kind, ok_kind = _enum(_field(spans, "kind"), _KIND_CODES, _KIND_OF_CODE)
    status = _field(spans, "status")
    status_code, ok_status = _enum(_field(status, "code"), _STATUS_CODES, _STATUS_OF_CODE)
    dropped_attrs, ok_da = _count(_field(spans, "droppedAttributesCount"))
    dropped_events, ok_de = _count(_field(spans, "droppedEventsCount"))
    dropped_links, ok_dl = _count(_field(spans, "droppedLinksCount"))
    _, ok_flags = _uint(_field(spans, "flags"), required=False, limit=2**32 - 1)
    ok &= ok_span & ok_parent & ok_start & ok_end & ok_kind & ok_status & ok_da & ok_de & ok_dl & ok_flags
    ok &= np.asarray(pc.fill_null(pc.not_equal(start, 0), False).to_numpy(zero_copy_only=False), dtype=bool)
    res_ok, scope_ok = _unstored_ok(res_items, scopes)
    ok &= res_ok[res_of] & scope_ok[scope_of]
    # A span that ends before it starts takes the exact path, which rejects it and says so.
    ok &= np.asarray(
        pc.fill_null(pc.greater_equal(end, start), False).to_numpy(zero_copy_only=False), dtype=bool
    )

    events_col = _field(spans, "events")
    events, span_of_event = _flatten(events_col)
    event_time, ok_et = _uint(_field(events, "timeUnixNano"), required=False)
    _, ok_eda = _count(_field(events, "droppedAttributesCount"))
    links_col = _field(spans, "links")
    links, span_of_link = _flatten(links_col)
    link_trace, ok_lt = _hex(_field(links, "traceId"), 32, optional=False)
    link_span, ok_ls = _hex(_field(links, "spanId"), 16, optional=False)
    _, ok_lda = _count(_field(links, "droppedAttributesCount"))
    _, ok_lf = _uint(_field(links, "flags"), required=False, limit=2**32 - 1)
    for sub_ok, owner in ((ok_et & ok_eda, span_of_event), (ok_lt & ok_ls & ok_lda & ok_lf, span_of_link)):
        if not sub_ok.all():
            ok[owner[~sub_ok]] = False

    resource_maps, services = _resources(res_items)
    res_index = pa.array(res_of)
    scope_struct = _field(scopes, "scope")
    scope_index = pa.array(scope_of)
    columns = {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": parent,
        "trace_state": _empty_null(_field(spans, "traceState")),
        "name": pc.fill_null(_field(spans, "name"), ""),
        "kind": kind,
        "service_name": services.take(res_index),
        "start_time": _times(start),
        "end_time": _times(end),
        "duration_ns": pc.subtract(end, start),
        "status_code": status_code,
        "status_message": _empty_null(_field(status, "message")),
        "attributes": _attribute_maps(_field(spans, "attributes")),
        "resource_attributes": resource_maps.take(res_index),
        "events": _nested_list(
            events_col,
            schema.EVENT_NS,
            [
                pc.fill_null(_field(events, "name"), ""),
                _times(event_time),
                _attribute_maps(_field(events, "attributes")),
            ],
        ),
        "links": _nested_list(
            links_col,
            schema.LINK,
            [
                link_trace,
                link_span,
                _empty_null(_field(links, "traceState")),
                _attribute_maps(_field(links, "attributes")),
            ],
        ),
        "scope_name": _empty_null(_field(scope_struct, "name")).take(scope_index),
        "scope_version": _empty_null(_field(scope_struct, "version")).take(scope_index),
        "dropped_attributes_count": dropped_attrs,
        "dropped_events_count": dropped_events,
        "dropped_links_count": dropped_links,
    }
    return (
        table_from_columns("spans", columns, n),
        np.concatenate([lines, odd_lines]),
        np.concatenate([ok, np.zeros(len(odd_lines), dtype=bool)]),
    )


# --------------------------------------------------------------------------- logs


def _logs(resource_logs: pa.Array) -> tuple[pa.Table | None, np.ndarray, np.ndarray]:
    res_items, scopes, records, lines, res_of, scope_of, odd_lines = _levels(
        resource_logs, "scopeLogs", "logRecords"
    )
    n = len(records)
    if n == 0:
        return None, odd_lines, np.zeros(len(odd_lines), dtype=bool)
    trace_id, ok = _hex(_field(records, "traceId"), 32, optional=True)
    span_id, ok_span = _hex(_field(records, "spanId"), 16, optional=True)
    time, ok_time = _uint(_field(records, "timeUnixNano"), required=False)
    observed, ok_observed = _uint(_field(records, "observedTimeUnixNano"), required=False)
    severity_text = _field(records, "severityNumber").cast(pa.string())
    severity_index = pc.index_in(severity_text, value_set=pa.array(_SEVERITY_NAMES))
    severity_digits, ok_sev = _uint(
        pc.if_else(pc.is_valid(severity_index), pa.scalar(None, pa.string()), severity_text),
        required=False,
        limit=2**31 - 1,
    )
    severity = pc.coalesce(severity_index.cast(pa.int64()), severity_digits)
    flags, ok_flags = _uint(_field(records, "flags"), required=False, limit=2**32 - 1)
    dropped, ok_dropped = _count(_field(records, "droppedAttributesCount"))
    ok &= ok_span & ok_time & ok_observed & ok_sev & ok_flags & ok_dropped
    # A null record ("logRecords": [null]) has no required field to fail on: protobuf refuses it.
    ok &= np.asarray(pc.is_valid(records).to_numpy(zero_copy_only=False), dtype=bool)
    res_ok, scope_ok = _unstored_ok(res_items, scopes)
    ok &= res_ok[res_of] & scope_ok[scope_of]
    time = pc.if_else(pc.equal(pc.fill_null(time, 0), 0), observed, time)
    observed = pc.if_else(pc.equal(pc.fill_null(observed, 0), 0), pa.scalar(None, pa.int64()), observed)
    time = pc.if_else(pc.equal(pc.fill_null(time, 0), 0), pa.scalar(None, pa.int64()), time)
    severity = pc.if_else(pc.equal(pc.fill_null(severity, 0), 0), pa.scalar(None, pa.int64()), severity)
    resource_maps, services = _resources(res_items)
    res_index = pa.array(res_of)
    scope_struct = _field(scopes, "scope")
    body = _field(records, "body")
    columns = {
        "timestamp": _times(time),
        "observed_timestamp": _times(observed),
        "trace_id": trace_id,
        "span_id": span_id,
        "trace_flags": pc.bit_wise_and(pc.fill_null(flags, 0), 0xFF).cast(pa.int32()),
        "severity_text": _empty_null(_field(records, "severityText")),
        "severity_number": severity.cast(pa.int32()),
        "body": _value_text(body) if len(body) else body,
        "attributes": _attribute_maps(_field(records, "attributes")),
        "resource_attributes": resource_maps.take(res_index),
        "service_name": services.take(res_index),
        "logger_name": _empty_null(_field(scope_struct, "name")).take(pa.array(scope_of)),
        "event_name": _empty_null(_field(records, "eventName")),
        "dropped_attributes_count": dropped,
    }
    return (
        table_from_columns("logs", columns, n),
        np.concatenate([lines, odd_lines]),
        np.concatenate([ok, np.zeros(len(odd_lines), dtype=bool)]),
    )


def row_hint(result: BlockResult, row: int) -> Any:
    """Why the fast path flagged ``row`` (for messages); None when it did not."""
    return result.flagged.get(row)

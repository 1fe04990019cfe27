"""The readers of the OTLP JSON fast path and its block API: the JSON Lines reader (compiled
``_jsonarrow`` or DuckDB's ``json_transform``) shaped by :data:`SPEC`, and blocks of lines decoded into
store tables with the lines to hand to the exact path."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest.sources.otlp_json.attributes import _READ_ANYVALUE, _UndecodableValue
from ingest.sources.otlp_json.logs import _logs
from ingest.sources.otlp_json.spans import _spans

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


_VARCHAR, _ANYVALUE, _STRUCT, _LIST, _STRING = 0, 1, 2, 3, 4


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


def row_hint(result: BlockResult, row: int) -> Any:
    """Why the fast path flagged ``row`` (for messages); None when it did not."""
    return result.flagged.get(row)

"""AnyValues and attribute lists to the store's attribute maps, as the exact path writes them."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest.sources.otlp import InputError, json_any_value_text
from ingest.sources.otlp_json.nesting import _field
from ingest.sources.otlp_json.scalars import _count
from ingest.store import schema

# What the compiled reader gives for an AnyValue: its text and what the text is (ANY_* in _jsonarrow.c).
_READ_ANYVALUE = pa.struct([("text", pa.string()), ("kind", pa.int8())])


#: An int64 as Python's int() then str() writes it; 19 digits go to the exact decoder (range check).
_CANONICAL_INT64 = r"^(0|-?[1-9][0-9]{0,17})$"


_ANY_DOUBLE, _ANY_JSON = 2, 3


# Length of the AnyValue key by its first two letters: {"stringValue": ... is 2 + 11 + 2 bytes, etc.
_ANY_KEYS = (b"stringValue", b"intValue", b"doubleValue", b"boolValue", b"bytesValue")


_KEY_LENGTH = np.zeros((256, 256), dtype=np.int64)


for _key in _ANY_KEYS:
    _KEY_LENGTH[_key[0], _key[1]] = len(_key)


_QUOTE = ord('"')


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

"""Scalar checks of the fast path: ids, integers, enums and times read as text and checked; a value
that does not pass flags its line for the exact path."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest.sources.otlp import KIND_NAMES, STATUS_NAMES
from ingest.store import schema

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

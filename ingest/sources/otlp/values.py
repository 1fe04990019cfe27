"""OTLP ``AnyValue`` (protobuf or OTLP JSON) to Python values and the store's attribute text."""

from __future__ import annotations

import base64
from typing import Any

from ingest.sources.otlp.model import InputError, strict_int
from ingest.store.encoding import attribute_text


def any_value(value: Any) -> Any:
    """The Python value of a protobuf ``AnyValue`` (lists and dicts for arrays and kvlists)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


def any_value_text(value: Any) -> str | None:
    """An ``AnyValue`` as the store's attribute text (see :func:`ingest.store.encoding.attribute_text`)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind is None:
        return None
    return attribute_text(any_value(value))


def json_any_value(value: Any) -> Any:
    """The Python value of an OTLP JSON ``AnyValue`` object (int64 strings become ints, bytes decode)."""
    if not isinstance(value, dict):
        msg = f"an AnyValue must be an object like {{'stringValue': ...}}, got {type(value).__name__}"
        raise InputError(msg)
    for kind, raw in value.items():
        if kind == "stringValue":
            return raw if isinstance(raw, str) else str(raw)
        if kind == "intValue":
            return int(strict_int(raw, "intValue"))
        if kind == "doubleValue":
            return float(raw)
        if kind == "boolValue":
            return raw if isinstance(raw, bool) else str(raw).lower() == "true"
        if kind == "bytesValue":
            return base64.b64decode(raw)
        if kind in ("arrayValue", "kvlistValue"):
            items = raw.get("values", []) if isinstance(raw, dict) else raw
            if kind == "arrayValue":
                return [json_any_value(v) for v in items]
            return {kv.get("key", ""): json_any_value(kv.get("value", {})) for kv in items}
    return None

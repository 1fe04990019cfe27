"""OTLP ``AnyValue`` (protobuf or OTLP JSON) to Python values and the store's attribute text."""

from __future__ import annotations

from typing import Any

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

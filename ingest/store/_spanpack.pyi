"""Types of the compiled span encoder (``_spanpack.c``): mypy cannot read a C module's signatures."""

from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.trace import SpanKind, StatusCode

def pack_spans(
    spans: list[Any],
    bounded_attributes: type[Any],
    bounded_list: type[Any],
    kinds: Sequence[SpanKind],
    codes: Sequence[StatusCode],
    attribute_text: Callable[[Any], str],
    /,
) -> dict[str, Any] | None:
    """Column buffers of a list of SDK spans, or None if a span is not one the SDK makes."""

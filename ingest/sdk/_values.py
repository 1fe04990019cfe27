"""The one rule for turning a Python value into an OTel attribute value (spans, log records, metric labels).

The OTel SDK accepts ``str``, ``bool``, ``int``, ``float`` and homogeneous sequences of them; anything
else (None, dicts, mixed lists, objects) would be dropped with a warning, so it is kept as text by
:func:`~ingest.encoding.attribute_text` (JSON where possible) — the same text the store writes.
"""

from __future__ import annotations

from typing import Any

from ingest.store.encoding import attribute_text

#: Types every OTel attribute accepts as they are (exact types: a subclass goes through the slow path).
PLAIN_TYPES = frozenset((str, bool, int, float))


def attribute_value(value: Any) -> Any:
    """A value the OTel SDK accepts: primitives and homogeneous sequences kept, everything else as text."""
    kind = type(value)
    if kind in PLAIN_TYPES:
        return value
    if kind in (list, tuple):
        kinds = {type(v) for v in value}
        if len(kinds) <= 1 and kinds <= PLAIN_TYPES:
            return value
    return attribute_text(value)


def scalar_value(value: Any) -> Any:
    """A value that must stay a single hashable scalar (a metric label): primitives kept, others as text."""
    return value if isinstance(value, (str, bool, int, float)) else attribute_text(value)

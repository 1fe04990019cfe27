"""Types of the compiled OTLP JSON reader (``_jsonarrow.c``): mypy cannot read a C module's signatures."""

from typing import Any

from typing_extensions import Buffer

def transform(data: Buffer, spec: list[tuple[int, Any]], /) -> list[tuple[Any, ...]]:
    """``(rows, nulls, validity, offsets, data, kinds)`` per node of ``spec``, one row of node 0 per line."""

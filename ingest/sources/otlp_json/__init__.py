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

Modules: ``reader`` (the readers, :data:`SPEC` and the block API), ``nesting``, ``scalars``, ``attributes``,
``spans``, ``logs``.
"""

from __future__ import annotations

from ingest.sources.otlp_json.reader import (
    SPEC,
    BlockResult,
    compiled_reader,
    decode_block,
    decode_transformed,
    row_hint,
    transform_block,
    transform_lines,
    transform_sql,
)

__all__ = [
    "SPEC",
    "BlockResult",
    "compiled_reader",
    "decode_block",
    "decode_transformed",
    "row_hint",
    "transform_block",
    "transform_lines",
    "transform_sql",
]

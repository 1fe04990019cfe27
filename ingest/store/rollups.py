"""Rollups: small derived tables that compaction writes beside the span files it merges, so a question
about every trace reads one row per trace instead of every span (like Tempo's per-block trace index).

``trace_summaries/date=D/<name>.parquet`` is the *twin* of the compacted span file
``spans/date=D/<name>.parquet``: one row per trace id in that file, with its first start, last end, span
count and error count, and its last span start (:data:`TRACE_SUMMARY_SCHEMA`, docs/store-schema.md "Rollups"). A trace cut across
files has one row in each twin; readers add them up. ``operations/date=D/<name>.parquet`` is its other twin:
one row per service and span name, with span and error counts and the first and last start
(:data:`OPERATION_SCHEMA`). Span files without a twin (written since the last
compaction) are read raw, and a twin whose span file is gone (a crash between the two renames, a day
pruned half-way) is ignored and removed by the next compaction, so a rollup never changes an answer: it
only makes it cheaper (:mod:`explorer.store`, ``_rollup.trace_summaries``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from ingest.store import schema

TRACE_SUMMARIES = "trace_summaries"
OPERATIONS = "operations"
#: Rollup table -> the table whose files it summarises, one twin per file.
ROLLUPS: dict[str, str] = {TRACE_SUMMARIES: "spans", OPERATIONS: "spans"}

TRACE_SUMMARY_SCHEMA = pa.schema(
    [
        pa.field("trace_id", pa.string()),
        pa.field("start_time", schema.TIMESTAMP),  # the earliest span start (microseconds)
        pa.field("start_time_unix_nano", pa.int64()),  # the same, exact
        pa.field("last_start_time", schema.TIMESTAMP),  # the latest span start (the store's time range)
        pa.field("end_time_unix_nano", pa.int64()),  # the latest span end; NULL if no span has ended
        pa.field("span_count", pa.int64()),  # rows in the span file, as count(*) over them
        pa.field("error_count", pa.int64()),  # spans with status_code 'ERROR'
    ]
)


def trace_summaries(spans: pa.Table) -> pa.Table:
    """One row per trace id of ``spans`` (a compacted file's rows, in the store's current layout)."""
    aggregates = [
        ("start_time", "min"),
        ("start_time_unix_nano", "min"),
        ("start_time", "max"),
        ("end_time_unix_nano", "max"),
        ("trace_id", "count"),
        ("error", "sum"),
    ]
    return _summarise(spans, ["trace_id"], aggregates, TRACE_SUMMARY_SCHEMA)


OPERATION_SCHEMA = pa.schema(
    [
        pa.field("service_name", pa.string()),
        pa.field("name", pa.string()),  # the span name (operation)
        pa.field("span_count", pa.int64()),  # the file's spans of this service and name
        pa.field("error_count", pa.int64()),  # of them, spans with status_code 'ERROR'
        pa.field("start_time", schema.TIMESTAMP),  # their earliest start
        pa.field("last_start_time", schema.TIMESTAMP),  # their latest start
    ]
)


def operations(spans: pa.Table) -> pa.Table:
    """One row per (service, span name) of ``spans`` (a compacted file's rows): a few dozen rows where the
    file has hundreds of thousands, so listing services and operations does not read every span."""
    aggregates = [("name", "count"), ("error", "sum"), ("start_time", "min"), ("start_time", "max")]
    return _summarise(spans, ["service_name", "name"], aggregates, OPERATION_SCHEMA)


def _summarise(
    spans: pa.Table, keys: list[str], aggregates: list[tuple[str, str]], target: pa.Schema
) -> pa.Table:
    """``spans`` grouped by ``keys`` with ``aggregates`` (column, function), as ``target``: the keys, then
    one column per aggregate in order. ``error`` is whether a span's status is ERROR (1 or 0); ``count``
    counts every row, NULLs too, as SQL's ``count(*)``."""
    errors = pc.fill_null(pc.equal(spans.column("status_code"), "ERROR"), False).cast(pa.int64())
    columns = {name: spans.column(name) for name in {*keys, *(c for c, _ in aggregates)} - {"error"}}
    grouped = (
        pa.table({**columns, "error": errors})
        .group_by(keys, use_threads=False)
        .aggregate([(c, f, pc.CountOptions(mode="all")) if f == "count" else (c, f) for c, f in aggregates])
    )
    return pa.table(
        [grouped.column(k) for k in keys] + [grouped.column(f"{c}_{f}") for c, f in aggregates], schema=target
    )


#: Each rollup table's columns.
SCHEMAS: dict[str, pa.Schema] = {TRACE_SUMMARIES: TRACE_SUMMARY_SCHEMA, OPERATIONS: OPERATION_SCHEMA}
#: How compaction computes each rollup's twin from a compacted file's rows.
BUILDERS: dict[str, Callable[[pa.Table], pa.Table]] = {
    TRACE_SUMMARIES: trace_summaries,
    OPERATIONS: operations,
}


#: Dedicated columns compaction adds to the span files it writes (Tempo's "dedicated attribute columns"):
#: attributes queries group or search by, copied out of their map as ``service_name`` is, so such a query
#: reads one flat column instead of decoding every span's map (docs/store-schema.md). Readers in this
#: project hide them from the ``spans`` view (``SELECT *`` is unchanged) and read them through
#: ``_rollup.spans_dedicated`` (as ``_service_version``, ``_correlation_id``).
DEDICATED_SPAN_COLUMNS: dict[str, tuple[str, str]] = {
    "service_version": ("resource_attributes", "service.version"),
    "correlation_id": ("attributes", "correlation_id"),
}


def with_dedicated_columns(spans: pa.Table) -> pa.Table:
    """``spans`` with :data:`DEDICATED_SPAN_COLUMNS` (re)computed from their maps, appended last."""
    for name, (column, key) in DEDICATED_SPAN_COLUMNS.items():
        if name in spans.column_names:  # a compacted file merged again: recompute for every row
            spans = spans.drop_columns([name])
        values = pc.map_lookup(spans.column(column), pa.scalar(key), "first")
        spans = spans.append_column(pa.field(name, pa.string()), values)
    return spans


def twin(root: Path, table: str, span_file: Path) -> Path:
    """The rollup ``table``'s twin of ``span_file`` (same day folder name and file name)."""
    return root / table / span_file.parent.name / span_file.name


def twins(root: Path, table: str) -> list[tuple[Path, Path]]:
    """``(twin, the file it summarises)`` for every file of the rollup ``table``, whether or not that file
    still exists (the inverse of :func:`twin`)."""
    source = root / ROLLUPS[table]
    return [
        (path, source / path.parent.name / path.name)
        for path in sorted((root / table).glob("date=*/*.parquet"))
    ]


def remove_orphans(root: Path) -> int:
    """Delete rollup files whose summarised file is gone; returns how many (run by compaction, locked)."""
    removed = 0
    for table in ROLLUPS:
        for path, summarised in twins(root, table):
            if not summarised.exists():
                path.unlink(missing_ok=True)
                removed += 1
    return removed

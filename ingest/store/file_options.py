"""How the store's Parquet files are encoded: per-column encodings, dictionaries, statistics, compression
levels and the trace-id bloom filter — one set for the live writer (fast), one for compaction (smaller).

Measured on the sample workload (docs/benchmarks.md, "Bytes per span"): the writer's options cost ~3% of
its write time and save ~14% of the bytes; compaction spends ~3x its old write time for ~18% (53.6 ->
43.9 B/span on sample_data's spans). Every encoding used is one Spark 4, chdb and DuckDB read with their
default settings (tests/test_engines.py reads sample_data, written with these options).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ingest.store import schema

#: Row-group size of the writer's files (compaction cuts its own, smaller ones).
WRITER_ROW_GROUP_ROWS = 128 * 1024

#: Leaf names (the last part of a column path) whose values are nearly unique per row: a dictionary only
#: costs time on them (a trace id repeats a few times at most within one live file).
_UNIQUE = frozenset(
    {
        "trace_id",
        "span_id",
        "parent_span_id",
        "start_time",
        "end_time",
        "duration_ns",
        "timestamp",
        "observed_timestamp",
        "start_timestamp",
        "start_time_unix_nano",
        "end_time_unix_nano",
        "time_unix_nano",
        "observed_time_unix_nano",
        "value",
        "sum",
        "profile_id",
        "alert_id",
    }
)
#: Random hex ids: DELTA_LENGTH_BYTE_ARRAY stores their lengths once per page instead of per value.
_IDS = frozenset({"trace_id", "span_id", "parent_span_id"})

#: Tables whose ``trace_id`` gets a Parquet bloom filter: a lookup by trace id, the post-mortem's most
#: common query, then skips every row group that cannot hold the trace (DuckDB probes the filters; ids
#: arrive in no order, so min/max statistics cannot tell). docs/store-schema.md, docs/benchmarks.md.
BLOOM_TABLES = frozenset({"spans", "logs", "profiles"})
#: False-positive rate of those filters: ~10 bits per distinct trace id. At 5% a lookup of a trace with no
#: log record still decoded one 128k-row group of the 10M-span bench store's logs in two: 11.9 -> 5.7 ms.
BLOOM_FPP = 0.01


#: The most varied leaf of a span (prompts, SQL, URLs): plain and zstd level 9 in compacted files.
_SPAN_ATTRIBUTE_VALUES = "attributes.key_value.value"


def _leaves(field: pa.Field, prefix: str = "") -> Iterator[tuple[str, pa.DataType]]:
    """(Parquet column path, type) of every leaf column under ``field``: ``attributes.key_value.key``,
    ``events.list.element.time_unix_nano`` — the names pyarrow's per-column options take."""
    path = f"{prefix}{field.name}"
    kind = field.type
    if pa.types.is_map(kind):
        yield from _leaves(pa.field("key", kind.key_type), f"{path}.key_value.")
        yield from _leaves(pa.field("value", kind.item_type), f"{path}.key_value.")
    elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
        yield from _leaves(pa.field("element", kind.value_type), f"{path}.list.")
    elif pa.types.is_struct(kind):
        for child in kind:
            yield from _leaves(child, f"{path}.")
    else:
        yield path, kind


def _is_time(kind: pa.DataType) -> bool:
    return pa.types.is_timestamp(kind) or pa.types.is_int64(kind)


@functools.cache
def writer_options(table_name: str) -> dict[str, Any]:
    """The live writer's options: statistics on flat columns only (for row-group pruning; on maps and lists
    they cost ~30% of the write and buy nothing), dictionaries on repetitive leaves — nested ones included —
    BYTE_STREAM_SPLIT on times (their bytes of equal significance side by side for zstd) and
    DELTA_LENGTH_BYTE_ARRAY on ids."""
    table_schema = schema.schema_for(table_name)
    dictionary, encoding = [], {}
    for field in table_schema:
        for path, kind in _leaves(field):
            # A map's keys and values (attributes) repeat across rows whatever their names.
            leaf = "" if ".key_value." in path else path.rsplit(".", 1)[-1]
            if leaf in _IDS and pa.types.is_string(kind):
                encoding[path] = "DELTA_LENGTH_BYTE_ARRAY"
            elif leaf in _UNIQUE and _is_time(kind):
                encoding[path] = "BYTE_STREAM_SPLIT"
            elif leaf not in _UNIQUE:
                dictionary.append(path)
    return {
        "write_statistics": [f.name for f in table_schema if not pa.types.is_nested(f.type)],
        "use_dictionary": dictionary,
        "column_encoding": encoding,
        "max_rows_per_page": 1 << 20,  # pages cut by size only: fewer, better-compressed pages
    }


@functools.cache
def compaction_options(table_name: str) -> dict[str, Any]:
    """Compaction's options: the writer's, plus what pays off on its sorted, larger files — a dictionary on
    ``trace_id`` (a trace's rows are adjacent), none on span attribute values but zstd level 9 for them and
    level 15 for times (about 3x the writer's CPU, spent offline)."""
    options = dict(writer_options(table_name))
    encoding = dict(options["column_encoding"])
    dictionary = [path for path in options["use_dictionary"] if path != _SPAN_ATTRIBUTE_VALUES]
    if "trace_id" in encoding:
        del encoding["trace_id"]
        dictionary.append("trace_id")
    levels = {path: 15 for path, kind in encoding.items() if kind == "BYTE_STREAM_SPLIT"}
    if _SPAN_ATTRIBUTE_VALUES in options["use_dictionary"]:
        levels[_SPAN_ATTRIBUTE_VALUES] = 9
    return {**options, "use_dictionary": dictionary, "column_encoding": encoding, "compression_level": levels}


def without_levels(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` for a codec other than zstd, whose levels differ (the writer's ``compression`` argument)."""
    return {k: v for k, v in options.items() if k != "compression_level"}


def bloom_options(table_name: str, table: pa.Table, group_rows: int) -> dict[str, Any]:
    """``bloom_filter_options`` for a file of ``table`` in row groups of ``group_rows``: the trace-id filter
    sized to the distinct trace ids one group can hold (none for other tables or no rows)."""
    if table_name not in BLOOM_TABLES or not table.num_rows:
        return {}
    distinct = pc.count_distinct(table.column("trace_id")).as_py() or 1
    return {"bloom_filter_options": {"trace_id": {"ndv": min(distinct, group_rows), "fpp": BLOOM_FPP}}}

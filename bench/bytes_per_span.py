"""Bytes per span on disk: sample_data's spans as the live writer and as compaction encode them.

    .venv/bin/python bench/bytes_per_span.py [--runs 5]

Reads the committed sample workload (sample_data/spans: 31,340 spans of an agent app) and writes it to
memory four ways, printing bytes per span and the median write time of each:

- baselines, same run: pyarrow's defaults with zstd (what a plain ``to_parquet`` gives) and the same spans
  as OTLP JSON (``explorer.otlp_export``: what a Collector's file exporter would keep);
- the live writer (:func:`ingest.store.file_options.writer_options`), in arrival order (by end time) in
  files of 4,096 spans, the SDK exporter's batch, and as one file;
- compaction (:func:`ingest.store.file_options.compaction_options`), sorted as ``ingest compact`` sorts.

Target (issue 17): at most 45 B/span on this workload, without slowing the writer (bench/exporters.py).
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from timing import median

from explorer import open_store
from explorer.otlp_export import trace_to_otlp_json
from ingest.store.compact import SORT_KEYS, Compactor
from ingest.store.file_options import WRITER_ROW_GROUP_ROWS, bloom_options, writer_options

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"
BATCH = 4096


def _parquet(table: pa.Table, **options: object) -> int:
    sink = io.BytesIO()
    pq.write_table(table, sink, **options)  # type: ignore[arg-type]
    return len(sink.getvalue())


def _writer_files(table: pa.Table, rows: int) -> int:
    """Bytes of ``table`` written as the store writer writes it, in files of ``rows`` rows."""
    total = 0
    for start in range(0, table.num_rows, rows):
        part = table.slice(start, rows)
        total += _parquet(
            part,
            compression="zstd",
            row_group_size=WRITER_ROW_GROUP_ROWS,
            **writer_options("spans"),
            **bloom_options("spans", part, WRITER_ROW_GROUP_ROWS),
        )
    return total


def _compacted(table: pa.Table) -> int:
    """Bytes of ``table`` written as ``python -m ingest compact`` writes a day (its sort, row groups, options)."""
    keys = [k for k in SORT_KEYS["spans"] if k in table.column_names]
    ordered = table.sort_by([(k, "ascending") for k in keys])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "compacted.parquet"
        Compactor(Path(folder))._write(ordered, path, keys, "spans")
        return path.stat().st_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    table = pq.read_table(sorted((SAMPLE / "spans").glob("date=*/*.parquet")))
    n = table.num_rows
    arrival = table.sort_by([("end_time_unix_nano", "ascending")])
    with open_store(SAMPLE) as store:
        otlp_json = len(trace_to_otlp_json(store.sql("SELECT * FROM spans")).encode())
    ways: list[tuple[str, Callable[[], int]]] = [
        ("baseline: pyarrow defaults, zstd", lambda: _parquet(table, compression="zstd")),
        (f"live writer, arrival order, files of {BATCH:,}", lambda: _writer_files(arrival, BATCH)),
        ("live writer, arrival order, one file", lambda: _writer_files(arrival, n)),
        ("compaction (sorted by trace, start)", lambda: _compacted(table)),
    ]
    print(f"sample_data spans: {n:,}; median write time of {args.runs} runs")
    print(f"{'way':<48}{'B/span':>8}{'write ms':>10}")
    print(f"{'OTLP JSON of the same spans (for scale)':<48}{otlp_json / n:>8.1f}{'':>10}")
    for name, function in ways:
        size = function()
        seconds = median(function, args.runs)
        print(f"{name:<48}{size / n:>8.1f}{seconds * 1000:>10.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m ingest compact``: merge a day's small Parquet files into few large, sorted ones.

Exporters, the importer and the receiver each write many small files; queries then open hundreds of
files and a trace lookup reads them all. Compaction rewrites each day's small files of a table into
files of up to ``target_rows`` rows, sorted (spans by ``trace_id, start_time``) with row groups of
``row_group_rows`` rows that hold whole traces, so the min/max statistics of ``trace_id`` let DuckDB skip
every row group but the one that holds a trace. Beside each compacted span file go its rollup twins,
one row per trace (``trace_summaries/``) and per service and operation (``operations/``;
:mod:`ingest.store.rollups`), so listing every trace reads a tenth of the rows and listing operations a few. Exact duplicate spans (same ``trace_id`` and
``span_id``, e.g. an exporter's retry) are kept once; of a span's unfinished snapshot and its finished
row, the finished one. Temporaries of killed writers and compactions are removed first.

Safe while writers and readers run — the protocol (docs/importing.md, "Compaction"):

1. One compactor at a time: an exclusive ``flock`` on ``<store>/_compact/compactor.lock``.
2. The inputs are the day's files listed once at the start; files written later are not touched,
   so writers (which only ever add new files, atomically) need no lock.
3. The merged rows go to hidden ``.<name>.tmp`` files in the same folder (readers' ``*.parquet``
   globs never match them), fsynced; rows are counted against the inputs before going on.
4. A journal ``<store>/_compact/<id>.json`` names the outputs and inputs (written atomically).
5. The swap, under an exclusive ``flock`` on ``<store>/_compact/readers.lock``: rename the outputs
   into place, then unlink the inputs, then fsync the folder. Readers that hold the shared lock
   (:func:`read_lock`) around a query see either all the inputs or all the outputs, never both and
   never neither. A reader without the lock could, for the microseconds between the renames and
   the unlinks, see a span twice (never miss one: outputs appear before inputs go).
6. The journal is deleted. After a crash the next run finishes the job: outputs in place -> the
   journal's remaining inputs are unlinked; outputs not in place -> the temporaries are removed
   and the inputs stay.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest.errors import CompactionError
from ingest.store import rollups, schema
from ingest.store.encoding import to_store_layout
from ingest.store.file_options import bloom_options, compaction_options, without_levels
from ingest.store.lock import COMPACT_DIR, COMPACTOR_LOCK, READERS_LOCK
from ingest.store.writer import remove_stale_temporaries, resolve_store_path

#: Sort order of each table's compacted files: most selective lookups first.
SORT_KEYS: dict[str, list[str]] = {
    # Trace first: a lookup by id reads one row group, and a trace's spans side by side compress better than
    # by service (bench/explorer.py's 10M store: 48 MB a day against 77 MB; docs/benchmarks.md).
    "spans": ["trace_id", "start_time_unix_nano", "span_id"],
    "logs": ["service_name", "time_unix_nano"],
    "metrics": ["service_name", "name", "time_unix_nano"],
    "profiles": ["profile_id", "function"],
    "alerts": ["time_unix_nano"],
}
DEFAULT_SMALL_BYTES = 32 << 20
DEFAULT_TARGET_ROWS = 500_000
DEFAULT_ROW_GROUP_ROWS = 32_768


_COMPACT_REFUSED = (
    "compaction is refused on object storage (readers there hold no lock, so a day's files cannot be swapped "
    "without a reader seeing them half-done; see docs/deployment.md) — it"
)


@contextmanager
def _exclusive(path: Path, *, wait: bool) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            msg = f"another compaction is running on this store (it holds {path})"
            raise CompactionError(msg) from None
        yield
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class DayReport:
    """What compacting one table's day did."""

    table: str
    day: str
    inputs: int = 0
    outputs: int = 0
    rows: int = 0
    duplicates: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        line = (
            f"{self.table}/date={self.day}: {self.inputs} files ({self.bytes_before / 1e6:.1f} MB) -> "
            f"{self.outputs} ({self.bytes_after / 1e6:.1f} MB), {self.rows:,} rows in {self.seconds:.2f} s"
        )
        if self.duplicates:
            line += f"; {self.duplicates:,} duplicate spans dropped"
        return line


@dataclass
class CompactReport:
    days: list[DayReport] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    #: temporary files removed: a killed compaction's (any age) and crashed writers' (over an hour old)
    temporaries_removed: int = 0
    #: rollup files whose span file was gone (ingest/store/rollups.py)
    orphan_rollups_removed: int = 0


class Compactor:
    """Compacts the day partitions of a store; see the module docstring for the protocol."""

    def __init__(
        self,
        store: str | os.PathLike[str] | None = None,
        *,
        small_bytes: int = DEFAULT_SMALL_BYTES,
        target_rows: int = DEFAULT_TARGET_ROWS,
        row_group_rows: int = DEFAULT_ROW_GROUP_ROWS,
        compression: str = "zstd",
    ) -> None:
        self.root = resolve_store_path(store, what=_COMPACT_REFUSED)
        self.small_bytes = small_bytes
        self.target_rows = target_rows
        self.row_group_rows = row_group_rows
        self.compression = compression
        self.control = self.root / COMPACT_DIR

    def run(self, tables: list[str] | None = None, days: list[str] | None = None) -> CompactReport:
        """Compact every day of ``tables`` (default all) with at least two small files."""
        if not self.root.is_dir():
            msg = f"store directory {str(self.root)!r} does not exist; pass --store DIR"
            raise CompactionError(msg)
        report = CompactReport()
        # The readers' lock file exists before any swap can happen (see read_lock).
        self.control.mkdir(parents=True, exist_ok=True)
        (self.control / READERS_LOCK).touch(exist_ok=True)
        with _exclusive(self.control / COMPACTOR_LOCK, wait=False):
            report.recovered = self.recover()
            report.temporaries_removed = self._remove_orphan_outputs() + remove_stale_temporaries(self.root)
            report.orphan_rollups_removed = rollups.remove_orphans(self.root)
            for table in tables or list(schema.TABLES):
                base = self.root / table
                if not base.is_dir():
                    continue
                for folder in sorted(base.glob("date=*")):
                    day = folder.name.split("=", 1)[1]
                    if days and day not in days:
                        continue
                    day_report = self.compact_day(table, folder)
                    if day_report is not None:
                        report.days.append(day_report)
        return report

    # ---------------------------------------------------------------- one day

    def compact_day(self, table: str, folder: Path) -> DayReport | None:
        """Merge the small files of one day folder; None when there is nothing to merge."""
        started = time.monotonic()
        small = []
        for path in sorted(folder.glob("*.parquet")):
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            if size < self.small_bytes:
                small.append((path, size))
        if len(small) < 2:
            return None
        report = DayReport(table, folder.name.split("=", 1)[1])
        for group in self._groups(small):
            self._merge(table, folder, group, report)
        report.seconds = time.monotonic() - started
        return report if report.inputs else None

    def _groups(self, files: list[tuple[Path, int]]) -> Iterator[list[tuple[Path, int, int]]]:
        """Files in groups of at most ``target_rows`` rows (a bigger single file stays alone)."""
        group: list[tuple[Path, int, int]] = []
        rows = 0
        for path, size in files:
            try:
                n = pq.ParquetFile(path).metadata.num_rows
            except (OSError, pa.ArrowInvalid):
                continue  # vanished or not readable: not ours to touch
            if group and rows + n > self.target_rows:
                if len(group) > 1:
                    yield group
                group, rows = [], 0
            group.append((path, size, n))
            rows += n
        if len(group) > 1:
            yield group

    def _merge(
        self, table_name: str, folder: Path, group: list[tuple[Path, int, int]], report: DayReport
    ) -> None:
        # Files written before the portable layout (nanosecond timestamps) come out in the current one.
        tables = [to_store_layout(table_name, pq.read_table(path)) for path, _, _ in group]
        expected = sum(n for _, _, n in group)
        merged = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
        if merged.num_rows != expected:
            msg = f"{folder}: read {merged.num_rows} rows from files whose metadata says {expected}; not compacting"
            raise CompactionError(msg)
        keys = [k for k in SORT_KEYS.get(table_name, []) if k in merged.column_names]
        order = [(k, "ascending") for k in keys]
        if table_name == "spans" and "end_time_unix_nano" in merged.column_names:
            # Copies of a span side by side, the finished one (latest end_time; NULLs sort last by
            # default) first: the one _drop_duplicate_spans keeps, as the explorer's reader prefers it.
            order.append(("end_time_unix_nano", "descending"))
        if order:
            merged = merged.sort_by(order)
        duplicates = 0
        if table_name == "spans":
            merged, duplicates = _drop_duplicate_spans(merged)
            merged = rollups.with_dedicated_columns(merged)
        run_id = uuid.uuid4().hex[:12]
        stamp = time.time_ns()
        outputs = []
        twins = []  # rollup files of the outputs (ingest/store/rollups.py), swapped in with them
        for i, start in enumerate(range(0, merged.num_rows, self.target_rows)):
            part = merged.slice(start, self.target_rows)
            name = f"{stamp}-compact-{run_id}-{i:03d}.parquet"
            tmp = folder / f".{name}.tmp"
            self._write(part, tmp, keys, table_name)
            outputs.append((tmp, folder / name))
            for rollup, source in rollups.ROLLUPS.items():
                if source != table_name:
                    continue
                final = rollups.twin(self.root, rollup, folder / name)
                twins.append((final.parent / f".{name}.tmp", final))
                self._write_rollup(rollups.BUILDERS[rollup](part), twins[-1][0])
        written = sum(pq.ParquetFile(tmp).metadata.num_rows for tmp, _ in outputs)
        if written != expected - duplicates:
            for tmp, _ in outputs + twins:
                tmp.unlink(missing_ok=True)
            msg = (
                f"{folder}: wrote {written} rows, expected {expected - duplicates}; inputs left as they were"
            )
            raise CompactionError(msg)
        journal = self.control / f"{run_id}.json"
        _write_json(
            journal,
            {
                "folder": str(folder),
                "outputs": [[tmp.name, final.name] for tmp, final in outputs],
                "inputs": [path.name for path, _, _ in group],
            },
        )
        with _exclusive(self.control / READERS_LOCK, wait=True):
            # Span files first: a span file without its twin is read raw, a twin without its file ignored.
            for tmp, final in outputs + twins:
                os.replace(tmp, final)
            for path, _, _ in group:
                path.unlink(missing_ok=True)
                self._unlink_twins(table_name, path)
        _fsync_dir(folder)
        for twin_folder in {final.parent for _, final in twins}:
            _fsync_dir(twin_folder)
        journal.unlink()
        report.inputs += len(group)
        report.outputs += len(outputs)
        report.rows += written
        report.duplicates += duplicates
        report.bytes_before += sum(size for _, size, _ in group)
        report.bytes_after += sum(final.stat().st_size for _, final in outputs)

    def _write(self, table: pa.Table, path: Path, keys: list[str], table_name: str) -> None:
        """Row groups of at most ``row_group_rows`` rows that start where the first sort key changes, unless
        several whole runs of it fit in one (:func:`_row_groups`): spans in groups of whole traces, so one
        group's ``trace_id`` min/max (and bloom filter) is all a lookup by id has to read.
        """
        sorting = [pq.SortingColumn(table.schema.get_field_index(k)) for k in keys]
        options = compaction_options(table_name)
        dedicated = [name for name in rollups.DEDICATED_SPAN_COLUMNS if name in table.column_names]
        if dedicated:  # flat and repetitive: statistics and a dictionary, like service_name
            options = {
                **options,
                "use_dictionary": [*options["use_dictionary"], *dedicated],
                "write_statistics": [*options["write_statistics"], *dedicated],
            }
        with open(path, "wb") as sink:
            with pq.ParquetWriter(
                sink,
                table.schema,
                compression=self.compression,
                sorting_columns=sorting or None,
                # Smaller than the writer's files at ~3x its CPU (sample_data's spans: 53.6 -> 43.9 B/span).
                **(options if self.compression == "zstd" else without_levels(options)),
                # The writer's trace-id bloom filter, sized for one row group.
                **bloom_options(table_name, table, self.row_group_rows),
            ) as writer:
                runs = _runs(table, keys[0] if keys else None)
                for offset, size in _row_groups(runs, self.row_group_rows):
                    writer.write_table(table.slice(offset, size), row_group_size=size)
            sink.flush()
            os.fsync(sink.fileno())

    def _write_rollup(self, table: pa.Table, path: Path) -> None:
        """Write a rollup file (a few columns, one row per trace or operation: plain zstd, fsynced like the outputs)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as sink:
            pq.write_table(table, sink, compression=self.compression)
            sink.flush()
            os.fsync(sink.fileno())

    def _unlink_twins(self, table_name: str, path: Path) -> None:
        """Remove the rollup twins of a merged input (a compacted file merged again has them)."""
        for rollup, source in rollups.ROLLUPS.items():
            if source == table_name:
                rollups.twin(self.root, rollup, path).unlink(missing_ok=True)

    # ---------------------------------------------------------------- crash recovery

    def _remove_orphan_outputs(self) -> int:
        """Delete the temporaries of compactions killed before their journal was written.

        Under the compactor lock no other compaction is writing, so any such file is an orphan,
        however new; writers' temporaries are left to :func:`remove_stale_temporaries` (by age).
        """
        removed = 0
        for tmp in self.root.glob("*/date=*/.*-compact-*.parquet.tmp"):
            try:
                tmp.unlink()
                removed += 1
            except OSError:
                continue
        return removed

    def recover(self) -> list[str]:
        """Finish or undo the swaps of a compaction that stopped half-way; returns what was done."""
        done: list[str] = []
        journals = sorted(self.control.glob("*.json"))
        if not journals:
            return done
        with _exclusive(self.control / READERS_LOCK, wait=True):
            for journal in journals:
                done.extend(self._recover_one(journal))
        return done

    def _recover_one(self, journal_path: Path) -> list[str]:
        done = []
        for journal in [journal_path]:
            try:
                entry = json.loads(journal.read_text())
                folder = Path(entry["folder"])
                outputs = entry["outputs"]
                inputs = entry["inputs"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if all((folder / final).exists() for _, final in outputs):
                for name in inputs:
                    (folder / name).unlink(missing_ok=True)
                    self._unlink_twins(folder.parent.name, folder / name)
                done.append(
                    f"{folder}: finished an interrupted compaction (removed {len(inputs)} merged inputs)"
                )
            else:
                # Some outputs may be in place already: the inputs still hold every row, so undo them.
                for tmp, final in outputs:
                    (folder / tmp).unlink(missing_ok=True)
                    if any((folder / name).exists() for name in inputs):
                        (folder / final).unlink(missing_ok=True)
                done.append(f"{folder}: undid an interrupted compaction (inputs kept)")
            journal.unlink(missing_ok=True)
        return done


def _runs(table: pa.Table, column: str | None) -> list[tuple[int, int]]:
    """(start, length) of the runs of equal values of a sorted column (one run without a column)."""
    n = table.num_rows
    if column is None or n == 0:
        return [(0, n)]
    values = table.column(column).combine_chunks()
    if n == 1:
        return [(0, 1)]
    changed = pc.fill_null(pc.not_equal(values.slice(1), values.slice(0, n - 1)), True)
    nulls = np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    change = np.asarray(changed.to_numpy(zero_copy_only=False), dtype=bool) & ~(nulls[1:] & nulls[:-1])
    starts = np.concatenate([[0], np.flatnonzero(change) + 1])
    ends = np.concatenate([starts[1:], [n]])
    return [(int(a), int(b - a)) for a, b in zip(starts, ends)]


def _row_groups(runs: list[tuple[int, int]], limit: int) -> list[tuple[int, int]]:
    """(start, length) of row groups of at most ``limit`` rows over ``runs`` of equal first-key values: a run
    longer than a group gets groups of its own; short runs whole share one group (one group per 14 alerts,
    not 14 groups of one, and a small store's few services in one group: ~4% smaller files for sample_data)."""
    groups: list[tuple[int, int]] = []
    start = length = 0  # the group being filled
    for run_start, run_length in runs:
        if length and length + run_length <= limit:
            length += run_length
            continue
        if length:
            groups.append((start, length))
        while run_length > limit:
            groups.append((run_start, limit))
            run_start, run_length = run_start + limit, run_length - limit
        start, length = run_start, run_length
    if length:
        groups.append((start, length))
    return groups


def _drop_duplicate_spans(table: pa.Table) -> tuple[pa.Table, int]:
    """Keep the first of spans with the same (trace_id, span_id); ``table`` is sorted so they are adjacent.

    The sort puts a span's finished row before its unfinished snapshot (``end_time`` NULL, written
    when it was open past ``span_timeout_seconds``), so the finished one is kept.
    """
    n = table.num_rows
    if n < 2:
        return table, 0
    trace = table.column("trace_id").combine_chunks()
    span = table.column("span_id").combine_chunks()
    same = pc.and_(
        pc.equal(trace.slice(1), trace.slice(0, n - 1)), pc.equal(span.slice(1), span.slice(0, n - 1))
    )
    dup = np.concatenate(
        [[False], np.asarray(pc.fill_null(same, False).to_numpy(zero_copy_only=False), dtype=bool)]
    )
    count = int(dup.sum())
    return (table.filter(pa.array(~dup)), count) if count else (table, 0)


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(value, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


# --------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m ingest compact``."""
    parser.add_argument(
        "--table",
        action="append",
        choices=list(schema.TABLES),
        help="table to compact (repeatable; default all)",
    )
    parser.add_argument(
        "--day", action="append", metavar="YYYY-MM-DD", help="day to compact (repeatable; default all)"
    )
    parser.add_argument(
        "--small-mb",
        type=float,
        default=DEFAULT_SMALL_BYTES / (1 << 20),
        help="files smaller than this are merged (default 32)",
    )
    parser.add_argument(
        "--target-rows",
        type=int,
        default=DEFAULT_TARGET_ROWS,
        help=f"rows per merged file, at most (default {DEFAULT_TARGET_ROWS:,}; ~1 KB of memory a span)",
    )
    parser.add_argument(
        "--row-group-rows",
        type=int,
        default=DEFAULT_ROW_GROUP_ROWS,
        help=f"rows per Parquet row group (default {DEFAULT_ROW_GROUP_ROWS:,}: a trace lookup reads few)",
    )


def run(args: argparse.Namespace) -> int:
    """Compact the store and print what each day became."""
    compactor = Compactor(
        args.store,
        small_bytes=int(args.small_mb * (1 << 20)),
        target_rows=args.target_rows,
        row_group_rows=args.row_group_rows,
    )
    report = compactor.run(args.table, args.day)
    for line in report.recovered:
        print(line)
    if report.temporaries_removed:
        print(
            f"removed {report.temporaries_removed} temporary files left by writers or compactions that were killed"
        )
    for day in report.days:
        print(day.summary())
    if not report.days:
        print(f"nothing to compact in {compactor.root} (no day has two files under {args.small_mb:g} MB)")
    sys.stdout.flush()
    return 0

"""``python -m ingest migrate``: rewrite files written before the portable layout, in place.

Stores written before microsecond timestamps (nanosecond ``TIMESTAMP`` columns, no ``*_unix_nano``)
still open in this project's explorer, whose views derive the missing columns (docs/store-schema.md).
Spark refuses nanosecond Parquet timestamps with default settings, so a store meant for other engines
is migrated once: each old file is rewritten in the current layout under a hidden temporary name and
renamed over itself while the store's read lock is held exclusively (as compaction swaps files), so a
reader sees the old file or the new one, never a mix. Files already in the layout are left alone, so
the command can be run again after an interruption.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ingest.errors import MigrationError
from ingest.store import schema
from ingest.store.compact import COMPACT_DIR, COMPACTOR_LOCK, READERS_LOCK, CompactionError, _exclusive
from ingest.store.encoding import to_store_layout
from ingest.store.file_options import writer_options
from ingest.store.rollups import DEDICATED_SPAN_COLUMNS
from ingest.store.writer import resolve_store_path


@dataclass
class MigrateReport:
    """What a migration did: files rewritten and files already in the current layout."""

    rewritten: list[Path] = field(default_factory=list)
    current: int = 0


def is_current(path: Path, table: str) -> bool:
    """Whether a Parquet file already has the current layout (its footer only is read). Compaction's
    dedicated span columns (:mod:`ingest.store.rollups`) are extra, not a layout change: kept."""
    found = pq.read_schema(path)
    if table == "spans":
        found = pa.schema([f for f in found if f.name not in DEDICATED_SPAN_COLUMNS])
    return found.equals(schema.schema_for(table), check_metadata=False)


def migrate(store: str | os.PathLike[str] | None = None, *, dry_run: bool = False) -> MigrateReport:
    """Rewrite every file of ``store`` that is not in the current layout; see the module docstring."""
    root = resolve_store_path(store, what="migrate (copy an s3:// store down, migrate it, copy it back)")
    if not root.is_dir():
        msg = f"store directory {str(root)!r} does not exist; pass --store DIR"
        raise MigrationError(msg)
    control = root / COMPACT_DIR
    control.mkdir(parents=True, exist_ok=True)
    (control / READERS_LOCK).touch(exist_ok=True)
    report = MigrateReport()
    try:
        with _exclusive(control / COMPACTOR_LOCK, wait=False):
            for table in schema.TABLES:
                for path in sorted((root / table).glob("date=*/*.parquet")):
                    if is_current(path, table):
                        report.current += 1
                        continue
                    if not dry_run:
                        _rewrite(path, table, control)
                    report.rewritten.append(path)
    except CompactionError as exc:
        msg = f"{exc}; run migrate when no compaction is running"
        raise MigrationError(msg) from None
    return report


def _rewrite(path: Path, table: str, control: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        converted = to_store_layout(table, pq.read_table(path))
        with open(tmp, "wb") as sink:
            pq.write_table(
                converted, sink, compression="zstd", row_group_size=128 * 1024, **writer_options(table)
            )
            sink.flush()
            os.fsync(sink.fileno())
        with _exclusive(control / READERS_LOCK, wait=True):
            os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        msg = f"cannot rewrite {path}: {exc}"
        raise MigrationError(msg) from exc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m ingest migrate``."""
    parser.add_argument("--dry-run", action="store_true", help="list the files to rewrite, change nothing")


def run(args: argparse.Namespace) -> int:
    """Migrate the store and print each file rewritten."""
    report = migrate(args.store, dry_run=args.dry_run)
    verb = "would rewrite" if args.dry_run else "rewrote"
    for path in report.rewritten:
        print(f"{verb} {path}")
    print(f"{verb} {len(report.rewritten)} files; {report.current} already in the current layout")
    sys.stdout.flush()
    return 0

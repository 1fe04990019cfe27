"""The one writer of the telemetry store: Arrow tables in, day-partitioned Parquet files out.

Layout: ``<root>/<table>/date=YYYY-MM-DD/<file>.parquet``. Each file is written under a hidden
temporary name in the same folder and renamed into place, so a reader (DuckDB, pandas, Spark) never
sees a partial file and a crash loses at most the batch being written. On object storage
(``s3://bucket/prefix``, :mod:`ingest.store.objectstore`) each file is put once under its final key instead.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest.errors import StoreError
from ingest.store import objectstore, schema
from ingest.store.file_options import WRITER_ROW_GROUP_ROWS, bloom_options, writer_options

_log = logging.getLogger(__name__)

STORE_ENV = "LANGSWARM_TELEMETRY_DIR"
DEFAULT_STORE = "telemetry"
_NS_PER_DAY = 86_400 * 1_000_000_000
_TMP_SUFFIX = ".tmp"


def resolve_store(path: str | os.PathLike[str] | None = None) -> Path | str:
    """The store: the argument, else ``$LANGSWARM_TELEMETRY_DIR``, else ``./telemetry``; a local directory
    as a ``Path``, a store on object storage as its normalised ``s3://bucket/prefix`` URL."""
    if path is None or str(path) == "":
        path = os.environ.get(STORE_ENV) or DEFAULT_STORE
    if objectstore.is_object_store(path):
        return objectstore.normalise(str(path))
    return Path(path)


def resolve_store_path(path: str | os.PathLike[str] | None = None, *, what: str = "this command") -> Path:
    """The local store directory (see :func:`resolve_store`); raises :class:`StoreError` for an ``s3://``
    store, naming ``what`` needs a local one."""
    root = resolve_store(path)
    if isinstance(root, str):
        msg = f"{what} works on a local store directory, not on {root}"
        raise StoreError(msg)
    return root


class StoreWriter:
    """Writes Arrow tables into the store; safe to share between threads and exporters.

    ``durable=True`` fsyncs each file before the rename, so even a power loss cannot leave a
    renamed-but-empty file; turn it off for throwaway stores where speed matters more.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        compression: str = "zstd",
        durable: bool = True,
        retention_days: float | None = None,
    ) -> None:
        self.root = resolve_store(root)
        self.remote = isinstance(self.root, str)
        self.fs = objectstore.filesystem() if self.remote else None
        self.compression = compression
        self.durable = durable
        self._counter = itertools.count()
        self._prefix = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._lock = threading.Lock()
        self.rows_written: dict[str, int] = dict.fromkeys(schema.TABLES, 0)
        self.files_written = 0
        _load_lazy_imports()
        if isinstance(self.root, Path):  # not self.remote
            _sweep_once(self.root)
        # store.retention_days / serve --retention-days: whole old days go, at start and hourly (ingest/store/prune.py).
        self._retention = None
        if retention_days is not None:
            from ingest.store.prune import AutoPrune

            self._retention = AutoPrune(self.root, retention_days)
            self._retention.maybe_run()

    def write(self, table_name: str, table: pa.Table) -> list[Path | str]:
        """Write ``table`` to ``table_name``, one file per day it spans; returns the files written."""
        table_schema, time_column = schema.TABLES.get(table_name, (None, ""))
        if table_schema is None:
            schema.schema_for(table_name)  # raises the KeyError naming the valid tables
        if table.num_rows == 0:
            return []
        written = [self._write_file(table_name, day, part) for day, part in _split_by_day(table, time_column)]
        with self._lock:
            self.rows_written[table_name] += table.num_rows
            self.files_written += len(written)
        if self._retention is not None:
            self._retention.maybe_run()
        return written

    def _write_file(self, table_name: str, day: str, table: pa.Table) -> Path | str:
        name = f"{time.time_ns()}-{self._prefix}-{next(self._counter):06d}.parquet"
        if isinstance(self.root, str):
            return self._put_object(f"{self.root}/{table_name}/date={day}/{name}", table_name, table)
        folder = self.root / table_name / f"date={day}"
        final = folder / name
        tmp = folder / f".{name}{_TMP_SUFFIX}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as sink:
                pq.write_table(
                    table,
                    sink,
                    compression=self.compression,
                    row_group_size=WRITER_ROW_GROUP_ROWS,
                    **_write_options(table_name, table),
                )
                if self.durable:
                    sink.flush()
                    os.fsync(sink.fileno())
            os.replace(tmp, final)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            msg = f"cannot write {table.num_rows} {table_name} rows to {folder}: {exc}"
            raise StoreError(msg) from exc
        return final

    def _put_object(self, url: str, table_name: str, table: pa.Table) -> str:
        """Encode the file in memory and put it under its final key in one upload (no rename on S3)."""
        sink = pa.BufferOutputStream()
        pq.write_table(
            table,
            sink,
            compression=self.compression,
            row_group_size=WRITER_ROW_GROUP_ROWS,
            **_write_options(table_name, table),
        )
        objectstore.put_once(self.fs, url, sink.getvalue().to_pybytes())
        return url


@functools.cache
def _load_lazy_imports() -> None:
    """Pay pyarrow's lazy imports (its first ``pa.array`` imports pandas, ~0.2 s) when a writer is made.

    Otherwise the first export pays them on the exporter thread while holding the GIL, stalling every
    application thread for that long in the middle of the load.
    """
    pa.array([0])


def _write_options(table_name: str, table: pa.Table) -> dict[str, Any]:
    """The writer's encodings (:mod:`ingest.store.file_options`) plus the trace-id bloom filter."""
    return {
        **writer_options(table_name),
        **bloom_options(table_name, table, WRITER_ROW_GROUP_ROWS),
    }


def _split_by_day(table: pa.Table, time_column: str) -> list[tuple[str, pa.Table]]:
    """Split rows by the UTC day of ``time_column``; rows with no time go to the day they are written."""
    times = table.column(time_column).combine_chunks().cast(pa.int64())
    today = time.time_ns() // _NS_PER_DAY
    days = np.asarray(pc.fill_null(pc.divide(times, _NS_PER_DAY), today).to_numpy(zero_copy_only=False))
    first = days[0]
    if (days == first).all():
        return [(_day_name(int(first)), table)]
    parts = []
    for day in np.unique(days):
        indices = np.flatnonzero(days == day)
        parts.append((_day_name(int(day)), table.take(pa.array(indices))))
    return parts


def _day_name(day_number: int) -> str:
    return str(np.datetime64(day_number, "D"))


#: Age after which a hidden temporary file is taken for a crashed writer's: a live writer renames its
#: file within seconds of creating it (a compaction within minutes) and its mtime moves as it writes.
STALE_TEMPORARY_S = 3600.0


def remove_stale_temporaries(root: str | os.PathLike[str], *, older_than_s: float = STALE_TEMPORARY_S) -> int:
    """Delete temporary files left by crashed writers (older than ``older_than_s``); returns the count.

    Run once per process by every :class:`StoreWriter` (so by the SDK at start-up, ``import`` and
    ``serve``) and by ``compact``. Lists every day folder: ~0.1 s for 100,000 files (docs/store-schema.md).
    """
    removed = 0
    cutoff = time.time() - older_than_s
    for tmp in Path(root).glob(f"*/date=*/.*{_TMP_SUFFIX}"):
        try:
            if tmp.stat().st_mtime < cutoff:
                tmp.unlink()
                removed += 1
        except OSError:
            continue  # gone already (another process swept it), or not ours to remove
    if removed:
        _log.info("removed %d temporary files left in %s by writers that stopped mid-write", removed, root)
    return removed


_swept: set[Path] = set()
_swept_lock = threading.Lock()


def _sweep_once(root: Path) -> None:
    """:func:`remove_stale_temporaries` the first time this process opens a writer on ``root``."""
    key = root.absolute()
    with _swept_lock:
        if key in _swept:
            return
        _swept.add(key)
    remove_stale_temporaries(root)

"""The importer's writer thread: decoded tables go to the store while the next block is decoded."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pyarrow as pa

from ingest.sources.importer.dedupe import SpanIndex
from ingest.store.writer import StoreWriter


class _Sink:
    """Gathers decoded tables, dedupes spans, and writes them on background threads."""

    def __init__(self, writer: StoreWriter, index: SpanIndex, flush_rows: int) -> None:
        self.writer = writer
        self.index = index
        self.flush_rows = flush_rows
        self._parts: dict[str, list[pa.Table]] = {}
        self._rows: dict[str, int] = {}
        # Two writers: Parquet encoding releases the GIL, and the last batches then finish side by side.
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="ingest-writer")
        self._inflight: list[Future[Any]] = []
        self._lock = threading.Lock()
        self.written: dict[str, int] = {}
        self.duplicates = 0

    def add(self, table_name: str, table: pa.Table | None) -> None:
        if table is None or table.num_rows == 0:
            return
        self._parts.setdefault(table_name, []).append(table)
        self._rows[table_name] = self._rows.get(table_name, 0) + table.num_rows
        if self._rows[table_name] >= self.flush_rows:
            self._submit(table_name)

    def _submit(self, table_name: str) -> None:
        parts = self._parts.pop(table_name, [])
        self._rows.pop(table_name, None)
        if not parts:
            return
        # At most one batch waits while two are written: bounded memory, overlapped with decoding.
        while len(self._inflight) >= 3:
            self._inflight.pop(0).result()
        self._inflight.append(self._pool.submit(self._write, table_name, parts))

    def _write(self, table_name: str, parts: list[pa.Table]) -> None:
        table = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        if table_name == "spans":
            with self._lock:  # one batch at a time through the index: it is what decides duplicates
                table, duplicates = self.index.filter(table)
                self.duplicates += duplicates
        if table.num_rows:
            self.writer.write(table_name, table)
            with self._lock:
                self.written[table_name] = self.written.get(table_name, 0) + table.num_rows

    def close(self) -> None:
        try:
            for table_name in list(self._parts):
                self._submit(table_name)
            for future in self._inflight:
                future.result()
        finally:
            self._inflight = []
            self._pool.shutdown(wait=True)

"""Accepted rows per table, written through the store's one writer in batches by size or age."""

from __future__ import annotations

import logging
import threading
import time

import pyarrow as pa

from ingest.errors import StoreError
from ingest.sources.receiver.limits import _MIB
from ingest.store.writer import StoreWriter

_log = logging.getLogger(__name__)


class _Closed(Exception):
    """The receiver is shutting down and takes no more data."""


class Batcher:
    """Accepted rows per table, written in batches by size or age; thread-safe, memory-bounded.

    :meth:`full` says the rows waiting are at their cap (rows or Arrow bytes); the receiver then
    answers 429 before reading a body, so a store that cannot keep up (or cannot be written) makes
    clients retry later instead of growing memory.
    """

    def __init__(
        self,
        writer: StoreWriter,
        *,
        flush_rows: int = 65_536,
        flush_interval: float = 1.0,
        max_pending_rows: int = 262_144,
        max_pending_bytes: int = 128 * _MIB,
    ) -> None:
        self.writer = writer
        self.flush_rows = flush_rows
        self.flush_interval = flush_interval
        self.max_pending_rows = max_pending_rows
        self.max_pending_bytes = max_pending_bytes
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._pending: dict[str, list[pa.Table]] = {}
        self._rows: dict[str, int] = {}
        self._bytes = 0
        self._since: dict[str, float] = {}
        self._closed = False
        self._wake = threading.Event()
        self.accepted: dict[str, int] = {}
        self.written: dict[str, int] = {}
        self.write_failures = 0
        self._thread = threading.Thread(target=self._run, name="otlp-flusher", daemon=True)
        self._thread.start()

    def add(self, table_name: str, table: pa.Table) -> None:
        """Take rows; raises :class:`_Closed` once shutdown began (the caller answers 503)."""
        with self._lock:
            if self._closed:
                raise _Closed
            self._keep(table_name, [table])
            self.accepted[table_name] = self.accepted.get(table_name, 0) + table.num_rows
            rows = self._rows[table_name]
        if self.full():
            self.flush(table_name)  # back-pressure: this request waits for the write
        elif rows >= self.flush_rows:
            self._wake.set()

    def _keep(self, name: str, tables: list[pa.Table], *, first: bool = False) -> None:
        """Add ``tables`` to what is pending (caller holds the lock)."""
        parts = self._pending.setdefault(name, [])
        if first:
            parts[0:0] = tables
        else:
            parts.extend(tables)
        self._rows[name] = self._rows.get(name, 0) + sum(t.num_rows for t in tables)
        self._bytes += sum(t.nbytes for t in tables)
        self._since.setdefault(name, time.monotonic())

    def pending(self) -> int:
        with self._lock:
            return sum(self._rows.values())

    def pending_bytes(self) -> int:
        with self._lock:
            return self._bytes

    def full(self) -> bool:
        """Whether the rows waiting are at their cap (``max_pending_rows`` or ``max_pending_bytes``)."""
        with self._lock:
            return sum(self._rows.values()) >= self.max_pending_rows or self._bytes >= self.max_pending_bytes

    def flush(self, table_name: str | None = None) -> None:
        """Write what is pending (of one table or all); failed writes stay pending for the next try."""
        with self._write_lock:
            names = [table_name] if table_name else list(self._pending)
            for name in names:
                with self._lock:
                    parts = self._pending.pop(name, [])
                    self._rows.pop(name, None)
                    self._since.pop(name, None)
                    self._bytes -= sum(t.nbytes for t in parts)
                if not parts:
                    continue
                table = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
                try:
                    self.writer.write(name, table)
                except StoreError:
                    self.write_failures += 1
                    _log.exception("cannot write %d %s rows; keeping them to retry", table.num_rows, name)
                    with self._lock:
                        self._keep(name, parts, first=True)
                    continue
                self.written[name] = self.written.get(name, 0) + table.num_rows

    def _due(self) -> list[str]:
        now = time.monotonic()
        with self._lock:
            return [
                name
                for name, rows in self._rows.items()
                if rows >= self.flush_rows or now - self._since.get(name, now) >= self.flush_interval
            ]

    def _run(self) -> None:
        while True:
            self._wake.wait(timeout=min(0.25, self.flush_interval))
            self._wake.clear()
            if self._closed:
                return
            for name in self._due():
                self.flush(name)

    def close(self) -> None:
        """Refuse new rows, then write everything accepted."""
        with self._lock:
            self._closed = True
        self._wake.set()
        self._thread.join()
        self.flush()
        if self.pending():  # a write failed: one last try after a pause
            time.sleep(1.0)
            self.flush()

"""``python -m ingest import``: OTLP JSON / JSON Lines / protobuf and Jaeger JSON files into the store.

Formats are detected from the content, not the file name: gzip and zstd by their magic bytes,
JSON by its first character, OTLP JSON Lines (the Collector's ``file`` exporter) when the first line
is a whole object, otherwise one JSON document (an OTLP request, or Jaeger's ``{"data": [...]}``);
anything else is read as OTLP protobuf, length-prefixed as the Collector's ``proto`` format writes
it or one bare message. The signal (traces, metrics, logs) is detected per line or message.

A plain JSON Lines file is one DuckDB query over the file (:mod:`ingest.otlp_json`) whose result
streams in batches; compressed ones go in blocks of ~32 MB of whole lines that a reader thread
decompresses ahead; a writer thread writes Parquet meanwhile. Lines the fast path flags take the
exact path (:mod:`ingest.otlp`) with their line number. A line, object or
message that cannot be imported is written to ``<store>/_rejected/`` with the reason
(:mod:`ingest.rejects`) and the rest of the file is still imported. Memory is bounded whatever the
input: one line, document or message is held whole at most, up to ``max_object_bytes``
(``--max-object-mb``); a longer one is read past without being kept, and rejected.

Re-importing: a file whose exact content was already imported into the store is skipped (a
ledger in ``<store>/_imports/``); ``force=True`` imports it again, and spans are deduplicated on
``(trace_id, span_id)`` against the store's spans of the same days and the run itself either way.
See docs/importing.md.
"""

from __future__ import annotations

import collections
import gc
import gzip
import hashlib
import io
import json
import mmap
import os
import queue
import re
import shutil
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

from ingest import jaeger, schema
from ingest.compact import read_lock
from ingest.errors import ConfigurationError, IngestError
from ingest.otlp import (
    DECODERS,
    ITEM_NAME,
    SIGNALS,
    InputError,
    count_items,
    decode_json_object,
    detect_protobuf_signal,
    parse_protobuf,
)
from ingest.otlp_json import (
    BlockResult,
    compiled_reader,
    decode_block,
    decode_transformed,
    transform_block,
    transform_lines,
    transform_sql,
)
from ingest.rejects import CAP_ENV, REJECTED_DIR, ItemDigest, RejectWriter
from ingest import objectstore
from ingest.store import StoreWriter, resolve_store

BLOCK_BYTES = 32 << 20
#: The largest JSON line, JSON document or protobuf message held in memory (``--max-object-mb``).
DEFAULT_MAX_OBJECT_BYTES = 64 << 20
#: Rows gathered per table before one Parquet file is written (fewer, larger files).
FLUSH_ROWS = 131_072
IMPORTS_DIR = "_imports"
_GZIP = b"\x1f\x8b"
_ZSTD = b"\x28\xb5\x2f\xfd"
_BOM = b"\xef\xbb\xbf"
_NS_PER_DAY = 86_400 * 1_000_000_000
_TABLE_OF_SIGNAL = {signal: spec[0] for signal, spec in SIGNALS.items()}


class ImportFileError(IngestError):
    """A file cannot be imported at all (missing, unreadable, undetectable); the message says which."""


@dataclass
class FileReport:
    """What importing one file did."""

    path: str
    format: str = ""
    written: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    rejected: int = 0
    rejected_file: str | None = None
    #: rejections kept without their sample: ``_rejected/`` was over its cap
    samples_dropped: int = 0
    skipped: str | None = None
    bytes: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One human line: what was written, skipped and rejected."""
        if self.skipped:
            return f"{self.path}: skipped ({self.skipped})"
        parts = [f"{self.written[t]:,} {t}" for t in schema.TABLES if self.written.get(t)] or ["nothing"]
        line = f"{self.path} [{self.format}]: wrote {', '.join(parts)} in {self.seconds:.2f} s"
        spans = self.written.get("spans", 0)
        if spans >= 10_000 and self.seconds > 0:
            line += f" ({spans / self.seconds:,.0f} spans/s)"
        if self.duplicates:
            line += f"; {self.duplicates:,} duplicate spans skipped"
        if self.rejected:
            line += f"; {self.rejected:,} rejected -> {self.rejected_file}"
        if self.samples_dropped:
            line += (
                f" ({self.samples_dropped:,} kept without a sample: {REJECTED_DIR}/ is over its cap, "
                f"${CAP_ENV})"
            )
        return line


# --------------------------------------------------------------------------- reading


def _open_stream(path: Path, compression: str | None) -> IO[bytes]:
    raw = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
    if compression == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if compression == "zstd":
        import zstandard

        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, closefd=True), 1 << 20)
    return raw


def _file_digest() -> Any:
    """A new digest of the kind the ledger records (XXH3-128)."""
    # XXH3 hashes 579 MB in 0.05 CPU-s here, SHA-256 in 0.4 (7% of an import). It identifies content
    # and does not guard against forgery: a file made to collide with an imported one of the same
    # size would be skipped, which --force overrides.
    return xxhash.xxh3_128()


class _CountingReader(io.RawIOBase):
    """A raw file that hashes and counts what is read (the ledger's digest, the progress bar's bytes)."""

    def __init__(self, path: Path, start: int = 0) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed in close()
        if start:
            self._file.seek(start)
        self.digest = _file_digest()
        self.position = start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._file.readinto(buffer)
        if n:
            view = memoryview(buffer)[:n]
            self.digest.update(view)
            self.position += n
        return n or 0

    def close(self) -> None:
        self._file.close()
        super().close()


def _decompressed(counting: _CountingReader, compression: str | None) -> IO[bytes]:
    buffered = io.BufferedReader(counting, 4 << 20)
    if compression == "gzip":
        return gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    if compression == "zstd":
        import zstandard

        return io.BufferedReader(_ZstdErrorsAsOSError(zstandard.ZstdDecompressor().stream_reader(buffered)), 4 << 20)
    return buffered


class _ZstdErrorsAsOSError(io.RawIOBase):
    """A zstd stream whose corruption errors are OSError, as gzip's are (``ZstdError`` derives from
    Exception only, so a damaged .zst file crashed the import instead of being reported).

    Each read decodes at most one zstd block (128 KiB): what a read decodes before it meets the
    damage is lost with the error, so small steps keep nearly everything before it.
    """

    _STEP = 128 << 10

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        import zstandard

        with memoryview(buffer) as view:
            try:
                return int(self._inner.readinto(view[: self._STEP]))
            except zstandard.ZstdError as exc:
                raise OSError(f"zstd: {exc}") from None

    def close(self) -> None:
        self._inner.close()
        super().close()


@dataclass
class Sniffed:
    compression: str | None
    kind: str  # jsonl | json | protobuf | empty


def sniff(path: Path) -> Sniffed:
    """Compression and kind of a file, from its first bytes."""
    with open(path, "rb") as handle:
        magic = handle.read(4)
    compression = "gzip" if magic[:2] == _GZIP else "zstd" if magic == _ZSTD else None
    try:
        with _open_stream(path, compression) as stream:
            sample = stream.read(1 << 16)
    except (OSError, EOFError) as exc:
        msg = f"{path}: cannot read {compression or ''} data: {exc}".replace("  ", " ")
        raise ImportFileError(msg) from None
    except Exception as exc:  # zstandard.ZstdError has no common base
        msg = f"{path}: cannot read {compression} data: {exc}"
        raise ImportFileError(msg) from None
    text = sample[3:] if sample.startswith(_BOM) else sample
    stripped = text.lstrip()
    if not stripped:
        return Sniffed(compression, "empty")
    if stripped[:1] not in (b"{", b"["):
        return Sniffed(compression, "protobuf")
    first, newline, _ = stripped.partition(b"\n")
    if newline:
        try:
            json.loads(first)
        except ValueError:
            return Sniffed(compression, "json")
    elif len(sample) < (1 << 16):
        return Sniffed(compression, "json")
    return Sniffed(compression, "jsonl")


def _scratch_dir() -> str:
    """Where blocks handed to DuckDB are written: memory-backed /dev/shm when there is one."""
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK):
        return shm
    return tempfile.gettempdir()


@dataclass
class _Block:
    data: bytes
    first_line: int
    path: str
    position: int
    last: bool = False


# --------------------------------------------------------------------------- dedupe


def _id_keys(trace_ids: pa.Array, span_ids: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Exact 48-byte keys (trace id hex + span id hex) as six uint64 words a row, and which rows have them.

    Only ids of the store's widths (32 and 16 characters) make a key: other rows cannot be duplicates
    of valid ones. Built from the string buffers in numpy, no Python object per span.
    """
    n = len(trace_ids)
    parts = []
    ok = np.ones(n, dtype=bool)
    for ids, width in ((trace_ids, 32), (span_ids, 16)):
        ids = ids.cast(pa.string())
        lengths = np.asarray(pc.fill_null(pc.binary_length(ids), 0).to_numpy(), dtype=np.int64)
        ok &= lengths == width
        parts.append((ids, width))
    rows = np.flatnonzero(ok)
    if rows.size == 0:
        return np.zeros((0, 6), dtype=np.uint64), ok
    matrices = []
    for ids, width in parts:
        chosen = ids if rows.size == n else ids.take(pa.array(rows))
        buffers = chosen.buffers()
        offsets = np.frombuffer(buffers[1], dtype=np.int32)[chosen.offset : chosen.offset + rows.size + 1]
        matrices.append(np.frombuffer(buffers[2], dtype=np.uint8)[offsets[0] : offsets[-1]].reshape(rows.size, width))
    return np.ascontiguousarray(np.hstack(matrices)).view(np.uint64), ok


# Odd 64-bit multipliers (from splitmix64/xxHash) for _key_hash.
_MIX = np.array(
    [0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
     0xD6E8FEB86659FD93],
    dtype=np.uint64,
)


def _key_hash(keys: np.ndarray) -> np.ndarray:
    """A well-mixed 64-bit number per key: only the order of the index; equal numbers are compared in full."""
    h = keys[:, 0] * _MIX[0]
    for i in range(1, keys.shape[1]):
        h ^= keys[:, i] * _MIX[i]
    h ^= h >> np.uint64(31)
    h *= _MIX[1]
    h ^= h >> np.uint64(29)
    return h


class SpanIndex:
    """The (trace_id, span_id) pairs of finished spans already in the store (per day, loaded on first
    use) and of this run.

    Only finished spans (``end_time`` set) are indexed: an unfinished snapshot (written while the span
    was open past ``span_timeout_seconds``) must not keep its finished row out. An incoming snapshot of
    a span already finished is a duplicate; snapshots are never indexed, so a repeated one is kept
    (readers and compaction prefer the finished row, and keep one copy).

    Exact keys (the 48 id characters) kept in a few runs sorted by a 64-bit hash of the key, looked
    up with numpy's ``searchsorted`` and compared in full: ~56 bytes a span and no Python object per
    span. (A Python set of the keys cost 0.5 CPU-s a million spans, 7% of an import; no library
    keeps a growing set of fixed-width keys vectorised.) Runs are merged as they grow, so a batch
    is looked up in O(log n) runs.
    """

    def __init__(self, root: Path | str, fs: Any = None) -> None:
        self.root = root
        self.fs = fs  # an s3fs filesystem when ``root`` is an s3:// URL
        self._days: set[str] = set()
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []  # (sorted hashes, keys in that order)

    def __len__(self) -> int:
        return sum(len(hashes) for hashes, _ in self._runs)

    def _load_day(self, day: str) -> None:
        self._days.add(day)
        if isinstance(self.root, str):
            self._load_remote_day(day)
            return
        folder = self.root / "spans" / f"date={day}"
        if not folder.is_dir():
            return
        # Under the readers' lock, a compaction cannot swap the day's files between listing and reading.
        with read_lock(self.root):
            for path in sorted(folder.glob("*.parquet")):
                try:
                    ids = pq.read_table(path, columns=["trace_id", "span_id", "end_time"])
                except (OSError, pa.ArrowInvalid):
                    continue  # not a readable store file: nothing to compare against
                self._add_finished(ids)

    def _load_remote_day(self, day: str) -> None:
        """The day's spans on object storage (no compaction runs there, so no lock is needed)."""
        for key in sorted(self.fs.glob(f"{self.root}/spans/date={day}/*.parquet")):
            try:
                ids = pq.read_table(key, columns=["trace_id", "span_id", "end_time"], filesystem=self.fs)
            except (OSError, pa.ArrowInvalid):
                continue
            self._add_finished(ids)

    def _add_finished(self, ids: pa.Table) -> None:
        ids = ids.filter(pc.is_valid(ids.column("end_time")))
        keys, _ = _id_keys(ids.column("trace_id").combine_chunks(), ids.column("span_id").combine_chunks())
        self.add(keys)

    def add(self, keys: np.ndarray) -> np.ndarray:
        """Add ``keys`` (rows of six uint64 words); True for each row not seen before, in order.

        Of copies within ``keys`` the first is the fresh one.
        """
        m = len(keys)
        if m == 0:
            return np.zeros(0, dtype=bool)
        hashes = _key_hash(keys)
        order = np.argsort(hashes, kind="stable")  # stable: copies stay in row order
        hashes = hashes[order]
        keys = keys[order]
        seen = np.zeros(m, dtype=bool)
        same_hash = hashes[1:] == hashes[:-1]
        if same_hash.any():
            same_key = same_hash & (keys[1:] == keys[:-1]).all(axis=1)
            seen[1:] = same_key
            if (same_hash & ~same_key).any():
                self._exact_within(hashes, keys, seen)
        self._lookup(hashes, keys, seen)
        fresh = ~seen
        if fresh.any():
            self._runs.append((hashes[fresh], keys[fresh]))
            self._merge()
        out = np.empty(m, dtype=bool)
        out[order] = fresh
        return out

    def contains(self, keys: np.ndarray) -> np.ndarray:
        """True for each row of ``keys`` already indexed; nothing is added."""
        m = len(keys)
        if m == 0:
            return np.zeros(0, dtype=bool)
        hashes = _key_hash(keys)
        order = np.argsort(hashes, kind="stable")
        seen = np.zeros(m, dtype=bool)
        self._lookup(hashes[order], keys[order], seen)
        out = np.empty(m, dtype=bool)
        out[order] = seen
        return out

    def _lookup(self, hashes: np.ndarray, keys: np.ndarray, seen: np.ndarray) -> None:
        """Set ``seen`` for the rows (sorted by hash) found in the indexed runs."""
        for run_hashes, run_keys in self._runs:
            rows = np.flatnonzero(~seen)
            if rows.size == 0:
                break
            at = np.searchsorted(run_hashes, hashes[rows])
            inside = at < len(run_hashes)
            rows, at = rows[inside], at[inside]
            hit = run_hashes[at] == hashes[rows]
            rows, at = rows[hit], at[hit]
            equal = (run_keys[at] == keys[rows]).all(axis=1)
            seen[rows[equal]] = True
            for row, first in zip(rows[~equal].tolist(), at[~equal].tolist()):
                # Another key of the same hash: the run may hold more of that hash after it.
                stop = int(np.searchsorted(run_hashes, hashes[row], side="right"))
                if (run_keys[first:stop] == keys[row]).all(axis=1).any():
                    seen[row] = True

    @staticmethod
    def _exact_within(hashes: np.ndarray, keys: np.ndarray, seen: np.ndarray) -> None:
        """Redo ``seen`` for runs of one hash holding different keys (a 64-bit collision: rare)."""
        same_hash = np.concatenate([[False], hashes[1:] == hashes[:-1]])
        starts = np.flatnonzero(~same_hash)
        stops = np.append(starts[1:], len(hashes))
        for start, stop in zip(starts.tolist(), stops.tolist()):
            if stop - start < 2 or (keys[start + 1 : stop] == keys[start]).all():
                continue
            group: set[bytes] = set()
            for row in range(start, stop):
                key = keys[row].tobytes()
                seen[row] = key in group
                group.add(key)

    def _merge(self) -> None:
        """Merge the newest runs while the older is no more than twice the newer (so O(log n) runs)."""
        runs = self._runs
        while len(runs) > 1 and len(runs[-2][0]) <= 2 * len(runs[-1][0]):
            newer_hashes, newer_keys = runs.pop()
            older_hashes, older_keys = runs.pop()
            hashes = np.concatenate([older_hashes, newer_hashes])
            order = np.argsort(hashes, kind="stable")  # two sorted runs: a linear merge
            runs.append((hashes[order], np.concatenate([older_keys, newer_keys])[order]))

    def filter(self, table: pa.Table) -> tuple[pa.Table, int]:
        """``table`` without spans already seen (in the store or earlier in this run), and how many."""
        n = table.num_rows
        if n == 0:
            return table, 0
        starts = table.column("start_time_unix_nano").combine_chunks().cast(pa.int64()).to_numpy()
        for day_number in np.unique(starts // _NS_PER_DAY):
            day = str(np.datetime64(int(day_number), "D"))
            if day not in self._days:
                self._load_day(day)
        keys, valid = _id_keys(table.column("trace_id").combine_chunks(), table.column("span_id").combine_chunks())
        finished = np.asarray(table.column("end_time").combine_chunks().is_valid().to_numpy(zero_copy_only=False))
        finished = finished[np.flatnonzero(valid)]
        rows = np.flatnonzero(valid)
        keep = np.ones(n, dtype=bool)  # rows with odd ids are kept: they cannot be duplicates of valid ones
        keep[rows[finished]] = self.add(keys[finished])
        keep[rows[~finished]] = ~self.contains(keys[~finished])
        duplicates = int(n - keep.sum())
        if duplicates:
            table = table.filter(pa.array(keep))
        return table, duplicates


# --------------------------------------------------------------------------- ledger


class Ledger:
    """Which file contents were fully imported into a store: ``<store>/_imports/ledger.jsonl``."""

    def __init__(self, root: Path) -> None:
        self.path = root / IMPORTS_DIR / "ledger.jsonl"

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        out = []
        with open(self.path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out

    def find(self, path: Path) -> dict[str, Any] | None:
        """The ledger entry of a file with this exact content, if any (hashes only when sizes match).

        Entries written before the XXH3 digest hold a SHA-256 one; either kind is compared.
        """
        size = path.stat().st_size
        matches = [e for e in self.entries() if e.get("size") == size]
        if not matches:
            return None
        digests = {}
        if any("xxh3_128" in e for e in matches):
            digests["xxh3_128"] = _file_digest()
        if any("xxh3_128" not in e and "sha256" in e for e in matches):
            digests["sha256"] = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(8 << 20):
                for digest in digests.values():
                    digest.update(chunk)
        found = {kind: digest.hexdigest() for kind, digest in digests.items()}
        return next((e for e in matches if any(e.get(kind) == value for kind, value in found.items())), None)

    def record(self, path: Path, xxh3_128: str, report: FileReport) -> None:
        entry = {
            "xxh3_128": xxh3_128,
            "size": path.stat().st_size,
            "path": str(path.resolve()),
            "imported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "written": report.written,
            "rejected": report.rejected,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")


# --------------------------------------------------------------------------- progress


class Progress:
    """A one-line progress bar on stderr: bytes read of the file, rows written, rate."""

    def __init__(self, enabled: bool, stream: IO[str] | None = None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self._last = 0.0
        self._shown = False

    def update(self, name: str, done: int, total: int, rows: int, started: float, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.2:
            return
        self._last = now
        fraction = min(1.0, done / total) if total else 1.0
        bar = "#" * int(fraction * 24)
        rate = rows / max(now - started, 1e-9)
        self.stream.write(
            f"\r{name[-40:]:>40} [{bar:<24}] {fraction:6.1%} {done / 1e6:8.1f}/{total / 1e6:.1f} MB "
            f"{rows:>12,} rows {rate:>10,.0f}/s"
        )
        self.stream.flush()
        self._shown = True

    def done(self) -> None:
        if self.enabled and self._shown:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False


# --------------------------------------------------------------------------- writing


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


# --------------------------------------------------------------------------- importer


class Importer:
    """Imports files into one store; see the module docstring for formats and the dedupe policy."""

    def __init__(
        self,
        store: str | os.PathLike[str] | None = None,
        *,
        force: bool = False,
        progress: bool | None = None,
        block_bytes: int = BLOCK_BYTES,
        flush_rows: int = FLUSH_ROWS,
        durable: bool = True,
        log: IO[str] | None = None,
        max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES,
    ) -> None:
        if max_object_bytes < 1:
            msg = f"max_object_bytes must be at least 1 byte, not {max_object_bytes} (--max-object-mb)"
            raise ConfigurationError(msg)
        self.root = resolve_store(store)
        self.force = force
        self.max_object_bytes = max_object_bytes
        self.block_bytes = block_bytes
        self.flush_rows = flush_rows
        self.writer = StoreWriter(self.root, durable=durable)
        self.index = SpanIndex(self.root, self.writer.fs)
        # An s3:// store keeps its ledger and rejected input in a local control folder (objectstore.py).
        self.control = objectstore.local_control(self.root)
        self.ledger = Ledger(self.control)
        self.log = log or sys.stderr
        enabled = progress if progress is not None else self.log.isatty()
        self.progress = Progress(enabled, self.log)

    # ---------------------------------------------------------------- entry points

    def import_paths(self, paths: Sequence[str | os.PathLike[str]]) -> list[FileReport]:
        """Import every file (directories: every file inside, sorted), one report each."""
        reports = []
        for path in _expand(paths):
            reports.append(self.import_file(path))
        return reports

    def import_file(self, path: str | os.PathLike[str]) -> FileReport:
        """Import one file; raises :class:`ImportFileError` only when the file cannot be read at all."""
        path = Path(path)
        report = FileReport(str(path))
        if not path.is_file():
            msg = f"{path}: no such file"
            raise ImportFileError(msg)
        if not self.force:
            entry = self.ledger.find(path)
            if entry is not None:
                report.skipped = (
                    f"this content was imported into {self.root} at {entry.get('imported_at')} "
                    f"from {entry.get('path')}; use --force to import it again (spans are deduplicated)"
                )
                return report
        started = time.monotonic()
        sniffed = sniff(path)
        report.format = sniffed.kind + (f"+{sniffed.compression}" if sniffed.compression else "")
        rejects = RejectWriter(self.control, str(path))
        sink = _Sink(self.writer, self.index, self.flush_rows)
        counting = _CountingReader(path)
        try:
            with _decompressed(counting, sniffed.compression) as stream:
                if sniffed.kind == "jsonl" and sniffed.compression is None:
                    self._jsonl_stream(path, counting, sink, rejects, started)
                elif sniffed.kind == "jsonl":
                    self._jsonl(path, stream, counting, sink, rejects, started)
                elif sniffed.kind == "json":
                    self._document(path, stream, sink, rejects, report)
                elif sniffed.kind == "protobuf":
                    self._protobuf(path, stream, counting, sink, rejects, report, started)
                # An empty file holds nothing to import. The ledger's digest covers the whole file:
                try:
                    while stream.read(1 << 20):
                        pass
                except (EOFError, OSError):
                    pass  # damage already reported as a rejection
        except (OSError, EOFError) as exc:
            msg = f"{path}: cannot read: {exc}"
            raise ImportFileError(msg) from None
        finally:
            self.progress.done()
            counting.close()
            sink.close()  # writes everything decoded so far, whatever happened
            rejects.close()
        report.written = sink.written
        report.duplicates = sink.duplicates
        report.rejected = rejects.count
        report.rejected_file = str(rejects.path) if rejects.count else None
        report.samples_dropped = rejects.samples_dropped
        report.problems = list(rejects.messages)
        report.bytes = counting.position
        report.seconds = time.monotonic() - started
        self.ledger.record(path, counting.digest.hexdigest(), report)
        return report

    # ---------------------------------------------------------------- JSON Lines

    def _blocks(
        self, stream: IO[bytes], counting: _CountingReader, scratch: str, rejects: RejectWriter, start_line: int = 1
    ) -> Iterator[_Block]:
        """Blocks of whole lines, each also written to ``scratch`` for DuckDB to read.

        A line over the object limit is read past (hashed, its start kept as a sample) and rejected
        here, by number; the lines around it still come in blocks.
        """
        line = start_line
        index = 0
        carry = b""
        ended = False
        limit = self.max_object_bytes
        piece_bytes = min(1 << 20, limit + 1)  # so that no line over the limit fits inside one piece
        # read1: one decompression step a call, so a damaged stream loses nothing decoded before the damage.
        read = getattr(stream, "read1", stream.read)
        while not ended:
            pieces = [carry] if carry else []
            size = len(carry)
            tail = len(carry) - (carry.rfind(b"\n") + 1)  # bytes of the line being read (carry starts at a line start)
            carry = b""
            too_long = False
            try:
                while True:
                    piece = read(piece_bytes)
                    if not piece:
                        ended = True
                        break
                    size += len(piece)
                    pieces.append(piece)
                    first = piece.find(b"\n")
                    if tail + (len(piece) if first == -1 else first) > limit:
                        # The line being read is over the limit (no line inside a piece can be): stop here.
                        too_long = True
                        break
                    cut = piece.rfind(b"\n") + 1
                    tail = tail + len(piece) if cut == 0 else len(piece) - cut
                    if size < self.block_bytes or cut == 0:  # a long line: keep reading until it ends
                        continue
                    pieces[-1] = piece[:cut]
                    carry = piece[cut:]
                    break
            except (EOFError, OSError) as exc:
                # A truncated or corrupt compressed stream: keep every whole line before the damage.
                ended = True
                data = b"".join(pieces)
                cut = data.rfind(b"\n") + 1
                rejects.reject(
                    f"the compressed stream is damaged after {counting.position:,} bytes ({exc}); "
                    "this partial line and anything after it cannot be read",
                    data[cut:],
                    line=line + data.count(b"\n", 0, cut),
                )
                pieces = [data[:cut]]
            data = b"".join(pieces)
            pieces = []
            head = b""
            if too_long:  # the long line starts ``tail`` bytes before the last piece
                start = len(data) - len(piece) - tail
                data, head = data[:start], data[start:]
            if data:
                path = os.path.join(scratch, f"block-{index:06d}.jsonl")
                with open(path, "wb") as handle:
                    handle.write(data)
                yield _Block(data, line, path, counting.position)
                line += data.count(b"\n")
                index += 1
            elif not too_long:
                return
            if too_long:
                carry, ended = self._skip_long_line(read, head, piece_bytes, counting, rejects, line)
                line += 1

    def _skip_long_line(
        self,
        read: Callable[[int], bytes],
        head: bytes,
        piece_bytes: int,
        counting: _CountingReader,
        rejects: RejectWriter,
        line: int,
    ) -> tuple[bytes, bool]:
        """Read past a line over the limit whose bytes so far are ``head`` and reject it (unless blank).

        Returns what follows its line end and whether the stream ended.
        """
        digest = rejects.digest()
        blank = True
        damage = ""
        piece, ended = head, False
        try:
            while True:
                end = piece.find(b"\n")
                part = piece if end == -1 else piece[:end]
                digest.update(part)
                blank = blank and _NOT_BLANK.search(part) is None
                if end != -1:
                    rest = piece[end + 1 :]
                    break
                piece = read(piece_bytes)
                if not piece:
                    rest, ended = b"", True
                    break
        except (EOFError, OSError) as exc:
            rest, ended = b"", True
            damage = f"; the compressed stream is damaged after {counting.position:,} bytes ({exc}), nothing after it can be read"
        if not blank or damage:
            rejects.reject(self._too_big(f"line {line}", digest.size) + damage, digest, line=line)
        return rest, ended

    def _jsonl(
        self,
        path: Path,
        stream: IO[bytes],
        counting: _CountingReader,
        sink: _Sink,
        rejects: RejectWriter,
        started: float,
        start_line: int = 1,
    ) -> None:
        """JSON Lines in blocks (compressed input, or the rest of a file the stream could not finish)."""
        total = path.stat().st_size
        scratch = tempfile.mkdtemp(prefix="ingest-", dir=_scratch_dir())
        blocks: queue.Queue[_Block | BaseException | None] = queue.Queue(maxsize=2)
        stop = threading.Event()

        def read_ahead() -> None:
            try:
                for block in self._blocks(stream, counting, scratch, rejects, start_line):
                    while not stop.is_set():
                        try:
                            blocks.put(block, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                blocks.put(None)
            except BaseException as exc:  # handed to the main thread and raised there
                blocks.put(exc)

        reader = threading.Thread(target=read_ahead, name="ingest-reader", daemon=True)
        reader.start()
        con = duckdb.connect()
        # Three stages overlap: DuckDB transforms block k+1 (its own threads) while this thread builds
        # the columns of block k and the sink's thread writes block k-1.
        transformer = ThreadPoolExecutor(1, thread_name_prefix="ingest-duckdb")
        ahead: collections.deque[tuple[_Block, Future[pa.Table]]] = collections.deque()
        rows = 0

        def take(block: _Block, transformed: Future[pa.Table]) -> int:
            result = decode_transformed(transformed.result())
            os.unlink(block.path)
            return self._take_block(block, result, sink, rejects)

        try:
            while True:
                item = blocks.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                ahead.append((item, transformer.submit(transform_block, con, item.path)))
                if len(ahead) > 1:
                    block, transformed = ahead.popleft()
                    rows += take(block, transformed)
                    self.progress.update(path.name, block.position, total, rows, started)
            while ahead:
                block, transformed = ahead.popleft()
                rows += take(block, transformed)
                self.progress.update(path.name, block.position, total, rows, started)
        finally:
            stop.set()
            for _, transformed in ahead:
                transformed.cancel()
            transformer.shutdown(wait=True)
            reader.join()
            con.close()
            shutil.rmtree(scratch, ignore_errors=True)
        self.progress.update(path.name, total, total, rows, started, force=True)

    def _jsonl_stream(
        self, path: Path, counting: _CountingReader, sink: _Sink, rejects: RejectWriter, started: float
    ) -> None:
        """A plain JSON Lines file, read by the compiled reader (or DuckDB) while the columns are built.

        Rows come in file order, one per non-blank line, so a flagged row's line is found by counting
        lines (only when there is one).
        """
        total = path.stat().st_size
        hasher = threading.Thread(target=_drain, args=(counting,), name="ingest-hash", daemon=True)
        hasher.start()
        cursor = _LineCursor(path)
        state = {"rows": 0, "written": 0, "bytes": 0}

        def take(table: pa.Table, size: int) -> None:
            result = decode_transformed(table.select(["j"]))
            for row in sorted(result.flagged):
                state["written"] += self._flagged_line(cursor, state["rows"] + row, sink, rejects)
            for table_name, part in (("spans", result.spans), ("logs", result.logs)):
                if part is not None:
                    sink.add(table_name, part)
                    state["written"] += part.num_rows
            state["rows"] += table.num_rows
            state["bytes"] += size
            self.progress.update(path.name, min(state["bytes"], total), total, state["written"], started)

        def skip(long_line: _LongLine) -> None:
            """A line the chunker read past (over the limit): reject it by number, from the mapped file."""
            state["bytes"] += long_line.length + 1
            if long_line.blank:
                return
            start, end = long_line.start, long_line.start + long_line.length
            line_no = cursor.pass_line(start, end)
            rejects.reject(self._too_big(f"line {line_no}", end - start), cursor.digest(start, end, rejects), line=line_no)
            state["rows"] += 1

        try:
            if compiled_reader():
                self._jsonl_compiled(path, take, skip)
            else:
                self._jsonl_duckdb(path, cursor, take, sink, rejects, started)
        finally:
            cursor.close()
            hasher.join()
        self.progress.update(path.name, total, total, state["written"], started, force=True)

    def _flagged_line(self, cursor: _LineCursor, row: int, sink: _Sink, rejects: RejectWriter) -> int:
        """Take a line the fast path flagged through the exact path, or reject it when over the limit."""
        line_no, start, end = cursor.locate(row)
        if end - start > self.max_object_bytes:
            rejects.reject(self._too_big(f"line {line_no}", end - start), cursor.digest(start, end, rejects), line=line_no)
            return 0
        return self._exact_json(cursor.text(start, end), sink, rejects, line=line_no)

    def _too_big(self, what: str, size: int) -> str:
        return (
            f"{what} is {size:,} bytes, more than the {self.max_object_bytes:,}-byte limit on one JSON line, "
            "JSON document or protobuf message (raise it with --max-object-mb); nothing of it was imported"
        )

    def _jsonl_compiled(
        self, path: Path, take: Callable[[pa.Table, int], None], skip: Callable[[_LongLine], None]
    ) -> None:
        """The compiled reader over chunks of whole lines: chunk k+1 is read (no GIL) while chunk k is taken."""
        # No line over the limit fits in a chunk; at the default limit a longer one is seen in the first fill.
        size = min(_CHUNK_BYTES, self.max_object_bytes) + 1
        with open(path, "rb") as source, ThreadPoolExecutor(1, thread_name_prefix="ingest-json") as pool:
            ahead: collections.deque[tuple[int, Future[pa.Table]] | _LongLine] = collections.deque()

            def settle(item: tuple[int, Future[pa.Table]] | _LongLine) -> None:
                if isinstance(item, _LongLine):
                    skip(item)
                else:
                    take(item[1].result(), item[0])

            for chunk in _line_chunks(source, size, self.max_object_bytes):
                if isinstance(chunk, _LongLine):
                    ahead.append(chunk)
                else:
                    ahead.append((len(chunk), pool.submit(transform_lines, chunk)))
                if len(ahead) > 1:
                    settle(ahead.popleft())
            while ahead:
                settle(ahead.popleft())

    def _jsonl_duckdb(
        self,
        path: Path,
        cursor: _LineCursor,
        take: Callable[[pa.Table, int], None],
        sink: _Sink,
        rejects: RejectWriter,
        started: float,
    ) -> None:
        """One DuckDB query over the file, its result streamed in batches (when nothing is compiled).

        No copy of the file and DuckDB's memory stays warm (a fresh query per block faulted in new pages
        for every result: ~15% more CPU). Should DuckDB fail part-way, the rest of the file (from the
        first row not taken) goes through the block path.
        """
        con = duckdb.connect()
        rows_taken = 0
        try:
            # A row whose JSON is over the object limit comes back empty: flagged, then rejected by its length.
            query = (
                f"SELECT CASE WHEN n > {int(self.max_object_bytes)} THEN NULL ELSE j END AS j, n "
                f"FROM ({transform_sql(_json_source(path), with_length=True)})"
            )
            reader = con.sql(query).to_arrow_reader(65_536)
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                table = pa.Table.from_batches([batch])
                take(table, int(pc.sum(table.column("n")).as_py() or 0) + table.num_rows)
                rows_taken += table.num_rows
        except duckdb.Error:
            # Take the rest exactly as compressed input is taken: blocks, every line numbered.
            offset, line_no = cursor.position_of(rows_taken)
            with open(path, "rb") as rest:
                rest.seek(offset)
                rest_counting = _CountingReader(path, start=offset)
                with _decompressed(rest_counting, None) as stream:
                    self._jsonl(path, stream, rest_counting, sink, rejects, started, start_line=line_no)
        finally:
            con.close()

    def _take_block(self, block: _Block, result: BlockResult, sink: _Sink, rejects: RejectWriter) -> int:
        """Hand a decoded block to the sink; flagged lines go through the exact path with their numbers."""
        rows = 0
        if result.flagged:
            lines = block.data.split(b"\n")
            numbered = [(block.first_line + i, text) for i, text in enumerate(lines) if text.strip()]
            if len(numbered) != result.rows:
                # DuckDB split the lines differently (e.g. two objects on one line): take every line exactly.
                return self._exact_lines(numbered, sink, rejects)
            rows += self._exact_lines([numbered[row] for row in sorted(result.flagged)], sink, rejects)
        for table_name, table in (("spans", result.spans), ("logs", result.logs)):
            if table is not None:
                sink.add(table_name, table)
                rows += table.num_rows
        return rows

    def _exact_lines(self, lines: list[tuple[int, bytes]], sink: _Sink, rejects: RejectWriter) -> int:
        rows = 0
        for line_no, text in lines:
            rows += self._exact_json(text, sink, rejects, line=line_no)
        return rows

    def _exact_json(self, text: bytes, sink: _Sink, rejects: RejectWriter, *, line: int | None) -> int:
        """Import one JSON line/object exactly, or reject it whole with the reason; returns rows."""
        try:
            obj = _loads(text)
        except _TooDeep as exc:
            rejects.reject(str(exc), text, line=line)
            return 0
        except ValueError as exc:
            reason = f"not valid JSON: {exc}"
            if isinstance(exc, json.JSONDecodeError) and (
                exc.msg.startswith("Unterminated") or exc.pos >= len(text.rstrip()) - 1
            ):
                reason += " (the JSON ends early: truncated?)"
            rejects.reject(reason, text, line=line)
            return 0
        if jaeger.is_jaeger(obj):
            return self._jaeger(obj, sink, rejects, line=line)
        try:
            decoded = decode_json_object(obj)
        except (InputError, RecursionError) as exc:
            reason = str(exc) if isinstance(exc, InputError) else "a value nested too deeply to decode"
            rejects.reject(reason, text, line=line, signal=_signal_of(obj))
            return 0
        if decoded.errors or decoded.rejected:
            reason = f"{decoded.rejected} {ITEM_NAME[decoded.signal]} invalid: " + "; ".join(decoded.errors)
            rejects.reject(reason, text, line=line, signal=decoded.signal, items=decoded.rejected + decoded.accepted)
            return 0
        sink.add(_TABLE_OF_SIGNAL[decoded.signal], decoded.table)
        return decoded.accepted

    # ---------------------------------------------------------------- one document

    def _whole(self, stream: IO[bytes], rejects: RejectWriter, what: str) -> bytes | None:
        """The whole (decompressed) content when it is within the object limit; else None, rejected.

        Past the limit the rest is read only to hash and count it, so memory stays at the limit.
        """
        try:
            data = _read_upto(stream, self.max_object_bytes + 1)
        except (EOFError, OSError) as exc:
            rejects.reject(f"the file cannot be decompressed ({exc}); nothing of it was imported", None)
            return None
        if len(data) <= self.max_object_bytes:
            return data
        digest = rejects.digest()
        digest.update(data)
        data = b""
        damage = ""
        try:
            _drain_into(stream, None, [digest])
        except (EOFError, OSError) as exc:
            damage = f"; the compressed stream is damaged after {digest.size:,} bytes ({exc})"
        rejects.reject(self._too_big(what, digest.size) + damage, digest, offset=0)
        return None

    def _document(self, path: Path, stream: IO[bytes], sink: _Sink, rejects: RejectWriter, report: FileReport) -> None:
        text = self._whole(stream, rejects, "the document")
        if text is None:
            return
        if text.startswith(_BOM):
            text = text[3:]
        try:
            obj = _loads(text)
        except _TooDeep as exc:
            rejects.reject(str(exc), text, line=None)
            return
        except ValueError as exc:
            rejects.reject(f"not valid JSON: {exc}", text, line=getattr(exc, "lineno", None))
            return
        if jaeger.is_jaeger(obj):
            report.format = report.format.replace("json", "jaeger-json", 1)
            self._jaeger(obj, sink, rejects, line=None)
            return
        if not isinstance(obj, dict):
            rejects.reject(
                "expected an OTLP JSON object (resourceSpans, resourceMetrics or resourceLogs) "
                "or Jaeger JSON ({\"data\": [...]})",
                text,
                line=1,
            )
            return
        # The fast path takes big documents; what it flags goes through the exact path.
        scratch = tempfile.mkdtemp(prefix="ingest-", dir=_scratch_dir())
        try:
            block_path = os.path.join(scratch, "document.json")
            with open(block_path, "wb") as handle:
                handle.write(text)
            con = duckdb.connect()
            try:
                result = decode_block(con, block_path, fmt="unstructured", max_object=len(text) + 1024)
            finally:
                con.close()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if result.rows != 1 or result.flagged:
            self._exact_json(text, sink, rejects, line=1)
            return
        sink.add("spans", result.spans)
        sink.add("logs", result.logs)

    def _jaeger(self, obj: dict[str, Any], sink: _Sink, rejects: RejectWriter, *, line: int | None) -> int:
        rows: list[dict[str, Any]] = []
        where_line = f"line {line}: " if line else ""
        for i, trace in enumerate(obj["data"]):
            try:
                rows.extend(jaeger.decode_trace(trace, f"data[{i}]"))
            except InputError as exc:
                rejects.reject(f"{where_line}{exc}", json.dumps(trace), line=line, signal="traces")
        if rows:
            sink.add("spans", jaeger.spans_table(rows))
        return len(rows)

    # ---------------------------------------------------------------- protobuf

    def _protobuf(
        self,
        path: Path,
        stream: IO[bytes],
        counting: _CountingReader,
        sink: _Sink,
        rejects: RejectWriter,
        report: FileReport,
        started: float,
    ) -> None:
        """Length-prefixed messages (the Collector's ``proto`` files) read one at a time, or one bare message.

        A 4-byte big-endian length that the rest of the file holds starts the framed format; otherwise
        the file is one message. Messages over the object limit are read past (hashed) and rejected.
        """
        limit = self.max_object_bytes
        total = path.stat().st_size
        rows = 0
        offset = 0

        def take(number: int, at: int, body: bytes) -> None:
            nonlocal rows
            rows += self._message(number, at, body, sink, rejects)
            self.progress.update(path.name, counting.position, total, rows, started)

        try:
            head = _read_upto(stream, 4)
            first = struct.unpack(">I", head)[0] if len(head) == 4 else 0
            if first == 0 or first > limit:
                # One bare message (its first bytes are no length, or a big one), or an oversized first message.
                rest = _read_upto(stream, limit + 1 - len(head))
                if len(head) + len(rest) <= limit:
                    report.format += " (one message)"
                    take(1, 0, head + rest)
                    return
                whole, body = rejects.digest(), rejects.digest()
                whole.update(head)
                whole.update(rest)
                body.update(rest)
                want = first - len(rest) if first else None
                rest = b""
                got = _drain_into(stream, want, [whole, body])
                if want is None or got < want:
                    report.format += " (one message)"
                    rejects.reject(self._too_big("the file (one protobuf message)", whole.size), whole, offset=0)
                    return
                report.format += " (length-prefixed)"
                rejects.reject(self._too_big("message 1 at byte 0", first), body, offset=0)
            else:
                body_bytes = _read_upto(stream, first)
                if len(body_bytes) < first:  # shorter than its first bytes say: one bare message
                    report.format += " (one message)"
                    take(1, 0, head + body_bytes)
                    return
                report.format += " (length-prefixed)"
                take(1, 0, body_bytes)
            offset = 4 + first
            number = 2
            while True:
                head = _read_upto(stream, 4)
                if not head:
                    return
                if len(head) < 4:
                    rejects.reject(
                        f"{len(head)} stray bytes at byte {offset} after the last message (truncated?)", head, offset=offset
                    )
                    return
                (length,) = struct.unpack(">I", head)
                if length > limit:
                    digest = rejects.digest()
                    got = _drain_into(stream, length, [digest])
                    if got < length:
                        rejects.reject(_cut_short(offset, length, got), digest, offset=offset)
                        return
                    rejects.reject(self._too_big(f"message {number} at byte {offset}", length), digest, offset=offset)
                else:
                    body_bytes = _read_upto(stream, length)
                    if len(body_bytes) < length:
                        rejects.reject(_cut_short(offset, length, len(body_bytes)), head + body_bytes, offset=offset)
                        return
                    take(number, offset, body_bytes)
                offset += 4 + length
                number += 1
        except (EOFError, OSError) as exc:
            rejects.reject(
                f"the compressed stream is damaged after {counting.position:,} bytes ({exc}); "
                f"nothing from byte {offset:,} of the decompressed data on could be read",
                None,
                offset=offset,
            )

    def _message(self, number: int, offset: int, body: bytes, sink: _Sink, rejects: RejectWriter) -> int:
        """Import one protobuf message, or reject it whole with the reason; returns rows."""
        signal = detect_protobuf_signal(body)
        if signal is None:
            rejects.reject(
                f"message {number} at byte {offset} is not an OTLP traces, metrics or logs request", body, offset=offset
            )
            return 0
        request = parse_protobuf(signal, body)
        decoded = DECODERS[signal](request)
        if decoded.errors or decoded.rejected:
            reason = (
                f"message {number} at byte {offset}: {decoded.rejected} {ITEM_NAME[signal]} invalid: "
                + "; ".join(decoded.errors)
            )
            rejects.reject(reason, body, offset=offset, signal=signal, items=count_items(signal, request))
            return 0
        sink.add(_TABLE_OF_SIGNAL[signal], decoded.table)
        return decoded.accepted


def _cut_short(offset: int, length: int, got: int) -> str:
    return f"message at byte {offset} claims {length} bytes but only {got} remain (the file is truncated)"


class _TooDeep(ValueError):
    """JSON nested deeper than Python's reader can follow (it recurses once per level)."""


def _loads(text: bytes | str) -> Any:
    """``json.loads``, with nesting too deep for it (a few hundred ``[``) as a ValueError, not a crash."""
    try:
        return json.loads(text)
    except RecursionError:
        msg = "nested too deeply to decode (Python's JSON reader allows about 1,000 levels)"
        raise _TooDeep(msg) from None


def _read_upto(stream: IO[bytes], n: int) -> bytes:
    """Up to ``n`` bytes (fewer only at the end), read in pieces: nothing is allocated ahead for ``n``."""
    pieces = []
    left = n
    while left > 0:
        piece = stream.read(min(left, 1 << 20))
        if not piece:
            break
        pieces.append(piece)
        left -= len(piece)
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def _drain_into(stream: IO[bytes], n: int | None, digests: Sequence[ItemDigest]) -> int:
    """Read up to ``n`` bytes (all, when None) into ``digests`` only; returns how many were read."""
    got = 0
    while n is None or got < n:
        piece = stream.read(1 << 20 if n is None else min(n - got, 1 << 20))
        if not piece:
            break
        for digest in digests:
            digest.update(piece)
        got += len(piece)
    return got


@dataclass
class _LongLine:
    """A line longer than the object limit, read past by :func:`_line_chunks` without being kept."""

    start: int  # byte offset in the file
    length: int  # without its line end
    blank: bool  # only whitespace: not a row, like any blank line


# Any byte bytes.strip() keeps: a line holding one is not blank.
_NOT_BLANK = re.compile(rb"[^ \t\n\r\x0b\x0c]")


def _skip_line(source: IO[bytes], start: int, head: memoryview) -> tuple[_LongLine, bytes]:
    """Read past the rest of a line that starts with ``head``; (the line, what follows its line end)."""
    length = len(head)
    blank = _NOT_BLANK.search(head) is None
    while True:
        piece = source.read(1 << 20)
        if not piece:
            return _LongLine(start, length, blank), b""
        end = piece.find(b"\n")
        part = piece if end == -1 else piece[:end]
        blank = blank and _NOT_BLANK.search(part) is None
        length += len(part)
        if end != -1:
            return _LongLine(start, length, blank), piece[end + 1 :]


_CHUNK_BYTES = 64 << 20


def _line_chunks(source: IO[bytes], size: int, max_line: int) -> Iterator[memoryview | _LongLine]:
    """The file in pieces of about ``size`` bytes that end at a line end; a line of more than
    ``max_line`` bytes is read past and stands for itself as a :class:`_LongLine`.

    A line longer than the buffer grows it, up to ``max_line + 1`` bytes: memory stays within a
    few times ``max_line`` whatever the file holds. Pass ``size <= max_line + 1`` so no line over
    the limit fits in a piece. Two buffers, filled in turn: a piece stays intact until the
    next-but-one is read, long enough for the one reader working ahead. Fresh buffers for every
    piece would be page-faulted in anew each time: measured ~2x the kernel time of the whole import.
    """
    buffers = [bytearray(size), bytearray(size)]
    which = 0
    carry = b""
    base = 0  # file offset of the buffer's first byte
    while True:
        buffer = buffers[which]
        need = min(len(carry) * 2, max_line + 1)
        if need > len(buffer):  # a line longer than the buffer: grow it
            buffer = buffers[which] = bytearray(need)
        buffer[: len(carry)] = carry
        view = memoryview(buffer)
        filled = len(carry)
        while filled < len(buffer):
            got = source.readinto(view[filled:])
            if not got:
                break
            filled += got
        if filled == len(carry):  # end of file
            if carry:
                yield view[:filled]
            return
        end = buffer.rfind(b"\n", 0, filled)
        if end == -1:
            if filled > max_line:  # one line, longer than the limit: read past it
                long_line, carry = _skip_line(source, base, view[:filled])
                base += long_line.length + 1
                yield long_line
            else:
                carry = bytes(view[:filled])
            continue
        carry = bytes(view[end + 1 : filled])
        base += end + 1
        yield view[: end + 1]
        which ^= 1


def _drain(counting: _CountingReader) -> None:
    """Read a file to its end through ``counting`` (which hashes it), into one reused buffer."""
    buffer = bytearray(8 << 20)
    while counting.readinto(buffer):
        pass


def _json_source(path: Path) -> str:
    quoted = str(path).replace("'", "''")
    return f"read_json_objects('{quoted}', format='newline_delimited', ignore_errors=true)"


class _LineCursor:
    """Walks a JSON Lines file forward to the n-th non-blank line (DuckDB's n-th row), for line numbers."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed in close()
        size = os.fstat(self._file.fileno()).st_size
        self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        self._size = size
        self._pos = 0
        self._line = 1
        self._row = -1

    def locate(self, row: int) -> tuple[int, int, int]:
        """(line number, start, end) of non-blank line number ``row`` (0-based), its text not read.

        Rows must not go backwards.
        """
        while self._pos < self._size:
            end = self._map.find(b"\n", self._pos)
            end = self._size if end == -1 else end
            start = self._pos
            line = self._line
            self._pos = end + 1
            self._line += 1
            if _NOT_BLANK.search(self._map, start, end) is not None:
                self._row += 1
                if self._row == row:
                    return line, start, end
        msg = f"row {row} is past the end of the file ({self._row + 1} non-blank lines)"
        raise IndexError(msg)

    def pass_line(self, start: int, end: int) -> int:
        """Line number of the non-blank line at bytes ``start:end`` (a line read past); the cursor moves
        beyond it without reading it, so a long line's pages are never mapped in."""
        while self._pos < start:
            stop = self._map.find(b"\n", self._pos, start)
            stop = start - 1 if stop == -1 else stop
            if _NOT_BLANK.search(self._map, self._pos, stop) is not None:
                self._row += 1
            self._pos = stop + 1
            self._line += 1
        line = self._line
        self._row += 1
        self._pos = end + 1
        self._line += 1
        return line

    def text(self, start: int, end: int) -> bytes:
        return bytes(self._map[start:end])

    def digest(self, start: int, end: int, rejects: RejectWriter) -> ItemDigest:
        """The :class:`ItemDigest` of bytes ``start:end``, read a piece at a time (not through the map)."""
        digest = rejects.digest()
        for at in range(start, end, 8 << 20):
            digest.update(os.pread(self._file.fileno(), min(8 << 20, end - at), at))
        return digest

    def position_of(self, row: int) -> tuple[int, int]:
        """(byte offset, line number) where non-blank line ``row`` starts (the end when there is none)."""
        if row <= self._row:
            msg = "position_of cannot go backwards"
            raise IndexError(msg)
        while self._pos < self._size:
            end = self._map.find(b"\n", self._pos)
            end = self._size if end == -1 else end
            if _NOT_BLANK.search(self._map, self._pos, end) is not None:
                if self._row + 1 == row:
                    return self._pos, self._line
                self._row += 1
            self._pos = end + 1
            self._line += 1
        return self._size, self._line

    def close(self) -> None:
        if isinstance(self._map, mmap.mmap):
            self._map.close()
        self._file.close()


def _signal_of(obj: Any) -> str | None:
    if isinstance(obj, dict):
        for signal, spec in SIGNALS.items():
            if spec[1] in obj:
                return signal
    return None


def _expand(paths: Sequence[str | os.PathLike[str]]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        else:
            yield path


# --------------------------------------------------------------------------- command line


def add_arguments(parser: Any) -> None:
    """Options of ``python -m ingest import``."""
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or directories to import")
    parser.add_argument(
        "--force",
        action="store_true",
        help="import files whose content was imported before (spans are still deduplicated)",
    )
    parser.add_argument(
        "--max-object-mb",
        type=float,
        default=DEFAULT_MAX_OBJECT_BYTES / (1 << 20),
        metavar="MB",
        help="largest JSON line, JSON document or protobuf message read into memory; a bigger one is "
        f"rejected and the rest of the file imported (default {DEFAULT_MAX_OBJECT_BYTES >> 20})",
    )
    bar = parser.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None, help="show a progress bar")
    bar.add_argument("--no-progress", dest="progress", action="store_false", help="never show a progress bar")
    parser.epilog = (
        "Exit status: 0 when everything was imported (or skipped as already imported), 1 when some "
        "input was rejected (see <store>/_rejected/), 2 when a file could not be read at all."
    )


def run(args: Any) -> int:
    """Import ``args.paths``; print what each file gave and every rejection with its line."""
    # The exact path makes a wrapper object per protobuf field it reads, all freed by reference
    # counting; collections every 700 allocations would cost it about a third (see ingest.receiver).
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    importer = Importer(
        args.store, force=args.force, progress=args.progress, max_object_bytes=int(args.max_object_mb * (1 << 20))
    )
    status = 0
    totals: dict[str, int] = {}
    rejected = 0
    for path in _expand(args.paths):
        try:
            report = importer.import_file(path)
        except ImportFileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 2
            continue
        print(report.summary())
        for table, n in report.written.items():
            totals[table] = totals.get(table, 0) + n
        if report.rejected:
            rejected += report.rejected
            status = max(status, 1)
            for message in report.problems:
                print(f"  rejected {message}", file=sys.stderr)
            if report.rejected > len(report.problems):
                print(f"  ... {report.rejected - len(report.problems)} more in {report.rejected_file}", file=sys.stderr)
    written = ", ".join(f"{totals[t]:,} {t}" for t in schema.TABLES if totals.get(t)) or "nothing"
    print(f"total: wrote {written} to {importer.root}" + (f"; {rejected:,} rejected" if rejected else ""))
    return status

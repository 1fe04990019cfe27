"""The import's span dedupe index: ``(trace_id, span_id)`` of the store's finished spans on the days a file
touches, plus the run's own, as 64-bit key hashes in sorted NumPy arrays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest.sources.importer.report import _NS_PER_DAY
from ingest.store.lock import read_lock


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
        matrices.append(
            np.frombuffer(buffers[2], dtype=np.uint8)[offsets[0] : offsets[-1]].reshape(rows.size, width)
        )
    return np.ascontiguousarray(np.hstack(matrices)).view(np.uint64), ok


# Odd 64-bit multipliers (from splitmix64/xxHash) for _key_hash.
_MIX = np.array(
    [
        0x9E3779B97F4A7C15,
        0xBF58476D1CE4E5B9,
        0x94D049BB133111EB,
        0xC2B2AE3D27D4EB4F,
        0x165667B19E3779F9,
        0xD6E8FEB86659FD93,
    ],
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
        keys, valid = _id_keys(
            table.column("trace_id").combine_chunks(), table.column("span_id").combine_chunks()
        )
        finished = np.asarray(
            table.column("end_time").combine_chunks().is_valid().to_numpy(zero_copy_only=False)
        )
        finished = finished[np.flatnonzero(valid)]
        rows = np.flatnonzero(valid)
        keep = np.ones(n, dtype=bool)  # rows with odd ids are kept: they cannot be duplicates of valid ones
        keep[rows[finished]] = self.add(keys[finished])
        keep[rows[~finished]] = ~self.contains(keys[~finished])
        duplicates = int(n - keep.sum())
        if duplicates:
            table = table.filter(pa.array(keep))
        return table, duplicates

"""``python -m ingest prune --older-than 30d``: retention by whole day partitions, locally and on ``s3://``.

A day partition ``<table>/date=D`` holds rows whose exact time is in [D 00:00, D+1 00:00) UTC; it is removed
only when all of it is older than the limit (D+1 00:00 <= now - limit), so no row newer than the limit is
ever removed and a day is never cut in half. Locally, removal waits for the store's readers' lock held
exclusively (the lock every explorer query holds shared, as compaction's swap does), so no query sees a
day vanish half-way, and it refuses to run beside a compaction. Object storage has no lock (and no
compaction): a query reading exactly those old days while they are removed may fail and is re-run.

``store.retention_days`` (SDK config) and ``serve --retention-days`` apply the same rule from the writer
itself: at start and then at most once an hour after a write, without waiting for readers (a busy lock
skips that round).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from ingest.errors import ConfigurationError, IngestError, PruneError
from ingest.store import objectstore, schema
from ingest.store.rollups import ROLLUPS
from ingest.store.writer import resolve_store

_log = logging.getLogger(__name__)

_UNITS = {"d": 1.0, "w": 7.0, "h": 1 / 24}
#: How often a writer with a retention setting prunes (after a write), at most.
AUTO_INTERVAL_S = 3600.0


def parse_age(text: str) -> timedelta:
    """``30d``, ``2w``, ``36h`` (or a bare number of days) as a timedelta; raises ConfigurationError."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([dwh]?)\s*", text or "")
    if not match or float(match.group(1)) <= 0:
        msg = f"--older-than {text!r} is not an age; write e.g. 30d (days), 2w (weeks) or 36h (hours)"
        raise ConfigurationError(msg)
    return timedelta(days=float(match.group(1)) * _UNITS[match.group(2) or "d"])


@dataclass
class Removed:
    """One day partition removed (or that would be, in a dry run)."""

    table: str
    day: str
    files: int
    bytes: int

    def line(self, verb: str) -> str:
        return f"{verb} {self.table}/date={self.day}: {self.files} files, {self.bytes / 1e6:.1f} MB"


@dataclass
class PruneReport:
    cutoff: datetime
    removed: list[Removed] = field(default_factory=list)
    kept_days: int = 0


def prunable(day: str, cutoff: datetime) -> bool:
    """Whether the whole day ``YYYY-MM-DD`` (UTC) ends at or before ``cutoff``."""
    try:
        start = date.fromisoformat(day)
    except ValueError:
        return False  # not a day partition: never touched
    end = datetime(start.year, start.month, start.day, tzinfo=UTC) + timedelta(days=1)
    return end <= cutoff


def prune(
    store: str | os.PathLike[str] | None,
    older_than: timedelta,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    wait: bool = True,
) -> PruneReport:
    """Remove every day partition of every table that lies wholly before ``now - older_than``.

    ``wait=False`` (the writers' automatic retention) gives up with :class:`PruneError` instead of waiting
    for running queries.
    """
    cutoff = (now or datetime.now(UTC)) - older_than
    root = resolve_store(store)
    report = PruneReport(cutoff)
    if isinstance(root, str):
        _prune_remote(root, cutoff, report, dry_run)
    else:
        _prune_local(root, cutoff, report, dry_run, wait)
    return report


def _prune_local(root: Path, cutoff: datetime, report: PruneReport, dry_run: bool, wait: bool) -> None:
    from ingest.store.compact import COMPACT_DIR, COMPACTOR_LOCK, READERS_LOCK, CompactionError, _exclusive

    if not root.is_dir():
        msg = f"store directory {str(root)!r} does not exist; pass --store DIR"
        raise PruneError(msg)
    folders = []
    for table in (*schema.TABLES, *ROLLUPS):  # a day's rollups (compaction's) go with its data
        for folder in sorted((root / table).glob("date=*")):
            if prunable(folder.name.split("=", 1)[1], cutoff):
                folders.append((table, folder))
            elif table not in ROLLUPS:
                report.kept_days += 1
    control = root / COMPACT_DIR
    if not dry_run:  # from now on readers take the lock (see compact.read_lock), as after a compaction
        control.mkdir(parents=True, exist_ok=True)
        (control / READERS_LOCK).touch(exist_ok=True)
    if not folders:
        return
    try:
        with _exclusive(control / COMPACTOR_LOCK, wait=False) if not dry_run else contextlib.nullcontext():
            with _exclusive(control / READERS_LOCK, wait=wait) if not dry_run else contextlib.nullcontext():
                for table, folder in folders:
                    files = list(folder.glob("*.parquet"))
                    size = sum(_size(f) for f in files)
                    if not dry_run:
                        for path in files:
                            path.unlink(missing_ok=True)
                        _remove_if_empty(folder)
                    report.removed.append(Removed(table, folder.name.split("=", 1)[1], len(files), size))
    except CompactionError:
        msg = "a compaction or running queries hold the store's locks; prune again when they are done"
        raise PruneError(msg) from None


def _prune_remote(url: str, cutoff: datetime, report: PruneReport, dry_run: bool) -> None:
    fs = objectstore.filesystem()
    for table in schema.TABLES:
        days = sorted({key.rsplit("/", 2)[-2] for key in fs.glob(f"{url}/{table}/date=*/*.parquet")})
        for part in days:
            day = part.split("=", 1)[1]
            if not prunable(day, cutoff):
                report.kept_days += 1
                continue
            keys = fs.glob(f"{url}/{table}/{part}/*.parquet", detail=True)
            if not dry_run and keys:
                fs.rm(list(keys))
            report.removed.append(
                Removed(table, day, len(keys), sum(int(v.get("size") or 0) for v in keys.values()))
            )


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _remove_if_empty(folder: Path) -> None:
    """Remove a day folder once it holds no store file (a writer's temporary file keeps it)."""
    try:
        if not any(folder.iterdir()):
            folder.rmdir()
    except OSError:
        pass  # a writer put a file there meanwhile: the folder stays


class AutoPrune:
    """A writer's ``retention_days``: prune at start, then at most every ``AUTO_INTERVAL_S`` after a write."""

    def __init__(self, root: Path | str, days: float, interval_s: float = AUTO_INTERVAL_S) -> None:
        if days <= 0:
            msg = f"store.retention_days must be more than 0, not {days}"
            raise ConfigurationError(msg)
        self.root = root
        self.age = timedelta(days=days)
        self.interval_s = interval_s
        self._next = 0.0

    def maybe_run(self) -> PruneReport | None:
        """Prune if the interval has passed; never raises (retention must not break exporting)."""
        now = time.monotonic()
        if now < self._next:
            return None
        self._next = now + self.interval_s
        try:
            report = prune(self.root, self.age, wait=False)
        except (IngestError, OSError) as exc:
            _log.info("retention skipped this round: %s", exc)
            return None
        for removed in report.removed:
            _log.warning("retention (%s): %s", self.age, removed.line("removed"))
        return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m ingest prune``."""
    parser.add_argument(
        "--older-than",
        required=True,
        metavar="AGE",
        help="remove day partitions wholly older than this: 30d, 2w, 36h (days by default)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print what would be removed, remove nothing")


def run(args: argparse.Namespace) -> int:
    """Prune the store and print each day partition removed."""
    report = prune(args.store, parse_age(args.older_than), dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for removed in report.removed:
        print(removed.line(verb))
    total = sum(r.bytes for r in report.removed) / 1e6
    print(
        f"{verb} {len(report.removed)} day partitions ({total:.1f} MB) ending before "
        f"{report.cutoff:%Y-%m-%d %H:%M} UTC; kept {report.kept_days}"
    )
    sys.stdout.flush()
    return 0

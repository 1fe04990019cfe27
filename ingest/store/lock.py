"""The store's readers' lock: queries hold it shared, compaction's swap takes it exclusively.

Its own module so readers (the explorer, the importer's dedupe scan) need not import the compactor.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

COMPACT_DIR = "_compact"
READERS_LOCK = "readers.lock"
COMPACTOR_LOCK = "compactor.lock"


@contextmanager
def read_lock(root: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the store's shared read lock for one query, so a compaction never swaps files under it.

    Free when no compaction ever ran on the store (no lock file; nothing is created, so a read-only
    store stays untouched). Cost: one open and one ``flock`` (microseconds).
    """
    path = Path(root) / COMPACT_DIR / READERS_LOCK
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing releases the lock

"""Rejected input: why it was refused, and a bounded sample of it, under ``<store>/_rejected/``.

One JSON Lines file per source and run, ``<store>/_rejected/<UTC time>-<pid>-<source>.jsonl``;
each line is one rejected line, object, message or request::

    {"source": "/data/otel.jsonl", "line": 17, "offset": null, "signal": "traces",
     "reason": "resourceSpans[0].scopeSpans[0].spans[2].traceId 'xyz' is not 32 hex digits",
     "size": 2291, "sha256": "9f86d0...", "truncated": false, "data": "<the line, as text>"}

``data`` is a sample: the first ``sample_bytes`` bytes of the original (64 KiB by default,
``$LANGSWARM_REJECTED_SAMPLE_KB``), as text when they are UTF-8 text, else base64 in
``data_base64``; ``truncated`` says whether that is less than the whole. ``size`` and ``sha256``
describe the whole original, so a rejected gigabyte costs a few hundred bytes on disk, not a
gigabyte (or six, with every NUL escaped). Once ``_rejected/`` holds ``cap_bytes`` (256 MiB by
default, ``$LANGSWARM_REJECTED_MAX_MB``) records go on without their sample and say so
(``"sample_dropped": true``), so refusals are always counted and the folder stops growing by
samples. Whole originals stay where they came from: for the importer, ``source`` and
``line``/``offset`` point into the input file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

from ingest.errors import ConfigurationError

REJECTED_DIR = "_rejected"
MAX_MESSAGES = 20
#: A reason may quote the bad value (an id, a key list): it is cut to this many characters.
MAX_REASON_CHARS = 2000
SAMPLE_ENV = "LANGSWARM_REJECTED_SAMPLE_KB"
CAP_ENV = "LANGSWARM_REJECTED_MAX_MB"
DEFAULT_SAMPLE_BYTES = 64 << 10
DEFAULT_CAP_BYTES = 256 << 20
#: While ``_rejected/`` is over its cap it is measured again at most this often (files removed by hand).
REMEASURE_FULL_S = 1.0
#: Control characters that JSON escapes to six bytes each: a sample holding them is kept as base64.
_BINARY = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _setting(value: int | None, env: str, unit: int, default: int) -> int:
    """A size in bytes: the argument, else ``$env`` (in ``unit`` bytes), else the default."""
    if value is not None:
        if value < 0:
            msg = f"a rejected-input size limit must be 0 or more bytes, not {value} (set by argument)"
            raise ConfigurationError(msg)
        return int(value)
    text = os.environ.get(env)
    if text is None or not text.strip():
        return default
    try:
        number = float(text)
    except ValueError:
        number = -1.0
    if not number >= 0:  # also refuses NaN
        msg = f"${env}={text!r} is not a size; set it to a number of {'KiB' if unit == 1024 else 'MiB'} (0 or more)"
        raise ConfigurationError(msg)
    return int(number * unit)


class ItemDigest:
    """Size, SHA-256 and first bytes of an item read in pieces, for rejecting it without holding it.

    The importer skips an over-long line or oversized message this way: memory stays at the sample.
    """

    def __init__(self, sample_bytes: int) -> None:
        self.sample_bytes = sample_bytes
        self.sample = bytearray()
        self.size = 0
        self._sha = hashlib.sha256()

    def update(self, piece: bytes | bytearray | memoryview) -> None:
        view = memoryview(piece)
        room = self.sample_bytes - len(self.sample)
        if room > 0:
            self.sample += view[:room]
        self._sha.update(view)
        self.size += len(view)

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


class _FolderBudget:
    """How many bytes ``_rejected/`` holds: measured now and then, plus what this process wrote since.

    Shared by the writers of one process (the importer makes one per file); other processes'
    writes are seen at the next measurement, taken after every 1/64 of the cap written here, and
    at most once a second while the folder is full (files deleted by hand free room again). So
    writers in N processes overshoot the cap by at most N/64 of it.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.used = 0
        self.since = 0
        self.measured_at: float | None = None

    def _measure(self) -> None:
        total = 0
        try:
            with os.scandir(self.folder) as entries:
                for entry in entries:
                    try:
                        total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue
        except OSError:
            total = 0
        self.used, self.since, self.measured_at = total, 0, time.monotonic()

    def room_for(self, n: int, cap: int) -> bool:
        """Whether ``n`` more bytes of sample keep the folder within ``cap`` (call under the lock)."""
        now = time.monotonic()
        if (
            self.measured_at is None
            or self.since >= max(cap // 64, 1)
            or (self.used + n > cap and now - self.measured_at >= REMEASURE_FULL_S)
        ):
            self._measure()
        return self.used + n <= cap

    def wrote(self, n: int) -> None:
        self.used += n
        self.since += n


_budgets: dict[Path, _FolderBudget] = {}
_budgets_lock = threading.Lock()


def _budget(folder: Path) -> _FolderBudget:
    key = folder.resolve()
    with _budgets_lock:
        if key not in _budgets:
            _budgets[key] = _FolderBudget(key)
        return _budgets[key]


class RejectWriter:
    """Appends rejected items of one source to its file under ``<store>/_rejected/`` (thread-safe).

    ``sample_bytes`` (default ``$LANGSWARM_REJECTED_SAMPLE_KB`` KiB, else 64 KiB) is how much of each
    item is kept; ``cap_bytes`` (default ``$LANGSWARM_REJECTED_MAX_MB`` MiB, else 256 MiB) how big
    ``_rejected/`` may grow by samples before records are kept without one.
    """

    def __init__(
        self,
        store_root: str | os.PathLike[str],
        source: str,
        *,
        sample_bytes: int | None = None,
        cap_bytes: int | None = None,
    ) -> None:
        self.folder = Path(store_root) / REJECTED_DIR
        self.source = source
        self.sample_bytes = _setting(sample_bytes, SAMPLE_ENV, 1 << 10, DEFAULT_SAMPLE_BYTES)
        self.cap_bytes = _setting(cap_bytes, CAP_ENV, 1 << 20, DEFAULT_CAP_BYTES)
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(source).name or "input")[:80]
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.path = self.folder / f"{stamp}-{os.getpid()}-{stem}.jsonl"
        self.count = 0
        #: records written without their sample because ``_rejected/`` was over ``cap_bytes``
        self.samples_dropped = 0
        #: "source:line: reason" of the first rejections, for the command line to print
        self.messages: list[str] = []
        self._lock = threading.Lock()
        self._file: Any = None
        self._budget = _budget(self.folder)

    def digest(self) -> ItemDigest:
        """An :class:`ItemDigest` keeping this writer's sample size, for an item read in pieces."""
        return ItemDigest(self.sample_bytes)

    def reject(
        self,
        reason: str,
        data: bytes | bytearray | str | ItemDigest | None,
        *,
        line: int | None = None,
        offset: int | None = None,
        signal: str | None = None,
        items: int | None = None,
    ) -> None:
        """Record one rejected line/object/message with why; ``items`` is how many spans etc. it held.

        ``data`` is the whole original (bytes or text), an :class:`ItemDigest` of one read in
        pieces, or None when nothing of it was read.
        """
        if len(reason) > MAX_REASON_CHARS:
            reason = f"{reason[:MAX_REASON_CHARS]}... ({len(reason) - MAX_REASON_CHARS:,} more characters)"
        record: dict[str, Any] = {
            "source": self.source,
            "line": line,
            "offset": offset,
            "signal": signal,
            "reason": reason,
        }
        if items is not None:
            record["items"] = items
        sample_field, sample_text = None, None
        if data is None:
            record.update(size=None, sha256=None, truncated=False, data=None)
        else:
            if isinstance(data, ItemDigest):
                size, sha256, head = data.size, data.hexdigest(), bytes(data.sample[: self.sample_bytes])
            else:
                raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
                size, sha256, head = len(raw), hashlib.sha256(raw).hexdigest(), raw[: self.sample_bytes]
            record.update(size=size, sha256=sha256, truncated=len(head) < size)
            sample_field, sample_text = _sample(head, truncated=len(head) < size)
        where = f":{line}" if line is not None else f" (byte {offset})" if offset is not None else ""
        with self._lock:
            if len(self.messages) < MAX_MESSAGES:
                self.messages.append(f"{self.source}{where}: {reason}")
            if self._file is None:
                self.folder.mkdir(parents=True, exist_ok=True)
                # backslashreplace: a lone surrogate in a reason is written as its JSON escape, never an error
                self._file = open(self.path, "a", encoding="utf-8", errors="backslashreplace")  # noqa: SIM115
            budget = self._budget
            text = json.dumps(record, ensure_ascii=False) + "\n"
            if sample_field is not None:
                with_sample = json.dumps({**record, sample_field: sample_text}, ensure_ascii=False) + "\n"
                with _budgets_lock:
                    kept = budget.room_for(
                        len(with_sample.encode("utf-8", "backslashreplace")), self.cap_bytes
                    )
                if kept:
                    text = with_sample
                else:
                    record.update(truncated=record["size"] > 0, sample_dropped=True)
                    text = json.dumps(record, ensure_ascii=False) + "\n"
                    self.samples_dropped += 1
            self._file.write(text)
            self._file.flush()
            with _budgets_lock:
                budget.wrote(len(text.encode("utf-8", "backslashreplace")))
            self.count += 1

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def _sample(head: bytes, *, truncated: bool) -> tuple[str, str]:
    """("data", text) when ``head`` is UTF-8 text, else ("data_base64", base64 of it)."""
    if not _BINARY.search(head):
        try:
            return "data", head.decode("utf-8")
        except UnicodeDecodeError as exc:
            # A cut through the last character of a truncated sample: keep the whole characters.
            if truncated and exc.end == len(head) and exc.start >= len(head) - 3:
                try:
                    return "data", head[: exc.start].decode("utf-8")
                except UnicodeDecodeError:
                    pass
    return "data_base64", base64.b64encode(head).decode("ascii")


def read_rejected(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of a rejected-input file (for tests and tools)."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]

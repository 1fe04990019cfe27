"""Rejected input: kept, with the reason, under ``<store>/_rejected/`` so nothing is lost silently.

One JSON Lines file per source and run, ``<store>/_rejected/<UTC time>-<pid>-<source>.jsonl``;
each line is one rejected line, object or message::

    {"source": "/data/otel.jsonl", "line": 17, "offset": null, "signal": "traces",
     "reason": "resourceSpans[0].scopeSpans[0].spans[2].traceId 'xyz' is not 32 hex digits",
     "data": "<the original line, as text>"}

Binary input (protobuf) is kept as ``data_base64`` with its byte ``offset`` and ``line`` null.
``jq -r .data FILE`` gives back the rejected lines to fix and import again.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

REJECTED_DIR = "_rejected"
MAX_MESSAGES = 20


class RejectWriter:
    """Appends rejected items of one source to its file under ``<store>/_rejected/`` (thread-safe)."""

    def __init__(self, store_root: str | os.PathLike[str], source: str) -> None:
        self.folder = Path(store_root) / REJECTED_DIR
        self.source = source
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(source).name or "input")[:80]
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.path = self.folder / f"{stamp}-{os.getpid()}-{stem}.jsonl"
        self.count = 0
        #: "source:line: reason" of the first rejections, for the command line to print
        self.messages: list[str] = []
        self._lock = threading.Lock()
        self._file: Any = None

    def reject(
        self,
        reason: str,
        data: bytes | str | None,
        *,
        line: int | None = None,
        offset: int | None = None,
        signal: str | None = None,
        items: int | None = None,
    ) -> None:
        """Record one rejected line/object/message with why; ``items`` is how many spans etc. it held."""
        record: dict[str, Any] = {
            "source": self.source,
            "line": line,
            "offset": offset,
            "signal": signal,
            "reason": reason,
        }
        if items is not None:
            record["items"] = items
        if isinstance(data, bytes):
            try:
                record["data"] = data.decode("utf-8")
            except UnicodeDecodeError:
                record["data_base64"] = base64.b64encode(data).decode("ascii")
        else:
            record["data"] = data
        text = json.dumps(record, ensure_ascii=False) + "\n"
        where = f":{line}" if line is not None else f" (byte {offset})" if offset is not None else ""
        with self._lock:
            if len(self.messages) < MAX_MESSAGES:
                self.messages.append(f"{self.source}{where}: {reason}")
            if self._file is None:
                self.folder.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
            self._file.write(text)
            self._file.flush()
            self.count += 1

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def read_rejected(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of a rejected-input file (for tests and tools)."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]

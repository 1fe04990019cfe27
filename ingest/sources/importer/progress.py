"""Progress lines on stderr for long imports."""

from __future__ import annotations

import sys
import time
from typing import IO


class Progress:
    """A one-line progress bar on stderr: bytes read of the file, rows written, rate."""

    def __init__(self, enabled: bool, stream: IO[str] | None = None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self._last = 0.0
        self._shown = False

    def update(
        self, name: str, done: int, total: int, rows: int, started: float, *, force: bool = False
    ) -> None:
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

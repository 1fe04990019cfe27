"""What an import reports per file, and its error."""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest.sources.otlp import (
    SIGNALS,
)
from ingest.store import schema
from ingest.store.rejects import CAP_ENV, REJECTED_DIR

BLOCK_BYTES = 32 << 20


#: The largest JSON line, JSON document or protobuf message held in memory (``--max-object-mb``).
DEFAULT_MAX_OBJECT_BYTES = 64 << 20


#: Rows gathered per table before one Parquet file is written (fewer, larger files).
FLUSH_ROWS = 131_072


_NS_PER_DAY = 86_400 * 1_000_000_000


_TABLE_OF_SIGNAL = {signal: spec[0] for signal, spec in SIGNALS.items()}


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

"""``python -m ingest import``: OTLP JSON / JSON Lines / protobuf and Jaeger JSON files into the store.

Formats are detected from the content, not the file name: gzip and zstd by their magic bytes,
JSON by its first character, OTLP JSON Lines (the Collector's ``file`` exporter) when the first line
is a whole object, otherwise one JSON document (an OTLP request, or Jaeger's ``{"data": [...]}``);
anything else is read as OTLP protobuf, length-prefixed as the Collector's ``proto`` format writes
it or one bare message. The signal (traces, metrics, logs) is detected per line or message.

Modules: ``reading`` (streams, sniffing, bounded lines), ``importer`` (the :class:`Importer`),
``dedupe`` (the span index), ``ledger`` (files already imported), ``sink`` (the writer thread),
``progress``, ``report`` and ``cli``.

A plain JSON Lines file is one DuckDB query over the file (:mod:`ingest.sources.otlp_json`) whose result
streams in batches; compressed ones go in blocks of ~32 MB of whole lines that a reader thread
decompresses ahead; a writer thread writes Parquet meanwhile. Lines the fast path flags take the
exact path (:mod:`ingest.sources.otlp`) with their line number. A line, object or
message that cannot be imported is written to ``<store>/_rejected/`` with the reason
(:mod:`ingest.store.rejects`) and the rest of the file is still imported. Memory is bounded whatever the
input: one line, document or message is held whole at most, up to ``max_object_bytes``
(``--max-object-mb``); a longer one is read past without being kept, and rejected.

Re-importing: a file whose exact content was already imported into the store is skipped (a
ledger in ``<store>/_imports/``); ``force=True`` imports it again, and spans are deduplicated on
``(trace_id, span_id)`` against the store's spans of the same days and the run itself either way.
See docs/importing.md.
"""

from __future__ import annotations

from ingest.errors import ImportFileError
from ingest.sources.importer.cli import add_arguments, run
from ingest.sources.importer.dedupe import SpanIndex
from ingest.sources.importer.importer import Importer
from ingest.sources.importer.ledger import IMPORTS_DIR, Ledger
from ingest.sources.importer.reading import Sniffed, sniff
from ingest.sources.importer.report import (
    BLOCK_BYTES,
    DEFAULT_MAX_OBJECT_BYTES,
    FLUSH_ROWS,
    FileReport,
)

__all__ = [
    "BLOCK_BYTES",
    "DEFAULT_MAX_OBJECT_BYTES",
    "FLUSH_ROWS",
    "IMPORTS_DIR",
    "FileReport",
    "ImportFileError",
    "Importer",
    "Ledger",
    "Sniffed",
    "SpanIndex",
    "add_arguments",
    "run",
    "sniff",
]

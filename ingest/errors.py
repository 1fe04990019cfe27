"""Exceptions raised by ``ingest``; every one derives from :class:`IngestError`.

All of them live here (and are exported from ``ingest``), so ``except ingest.IngestError`` catches
everything the package raises on purpose and the modules that raise them only import from here. The
ones about a bad value also derive from :class:`ValueError`, so code written before they existed
(``except ValueError``) keeps working.
"""

from __future__ import annotations


class IngestError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigurationError(IngestError, ValueError):
    """A configuration key or value is not valid; the message names the key path and what is allowed."""


class TelemetryValueError(IngestError, ValueError):
    """An instrumentation call got a value it cannot record (span kind, span status, log level);
    the message lists what is allowed."""


class MetricError(IngestError, ValueError):
    """A metric name, value or type is not valid (e.g. one name used as a counter and a gauge)."""


class StoreError(IngestError):
    """The telemetry store cannot be written (bad path, permissions, disk full)."""


class CompactionError(IngestError):
    """Compaction cannot run (another one holds the lock, or the store cannot be written)."""


class PruneError(IngestError):
    """Retention cannot prune now (a compaction or running queries hold the store, or it is missing)."""


class MigrationError(IngestError):
    """The store cannot be migrated to the portable layout (not a local directory, or a file cannot be rewritten)."""


class InputError(IngestError, ValueError):
    """Input that is not valid OTLP (or Jaeger) data; the message says what and where."""


class ImportFileError(IngestError):
    """A file cannot be imported at all (missing, unreadable, undetectable); the message says which."""


class RemoteCallError(IngestError):
    """A cross-service HTTP call failed (connection error or non-2xx status); the message names the URL."""


class AlertDeliveryError(IngestError):
    """An alert handler could not deliver an alert (e.g. the webhook answered with an error)."""

"""Exceptions raised by ``ingest``; every one derives from :class:`IngestError`."""

from __future__ import annotations


class IngestError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigurationError(IngestError, ValueError):
    """A configuration key or value is not valid; the message names the key path and what is allowed."""


class StoreError(IngestError):
    """The telemetry store cannot be written (bad path, permissions, disk full)."""

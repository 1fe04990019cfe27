"""Exceptions raised by ``explorer``; every one derives from :class:`ExplorerError`."""

from __future__ import annotations


class ExplorerError(Exception):
    """Base class of every error this package raises on purpose."""


class StoreNotFoundError(ExplorerError, FileNotFoundError):
    """The store directory does not exist."""


class TraceNotFoundError(ExplorerError, LookupError):
    """No span of the requested trace id is in the store."""


class QueryError(ExplorerError, ValueError):
    """A query was refused or failed; the message says why and what to change."""


class PricesError(ExplorerError, ValueError):
    """A prices file (the LLM cost table) cannot be read; the message names the file and line."""

"""Correlation ids: one contextvar shared by the logger, the tracer, middleware and propagation.

A correlation id ties together everything done for one request or job, across spans, logs, alerts
and services (it travels as W3C baggage ``correlation_id``). It lives in a :class:`contextvars.ContextVar`,
so it follows ``asyncio`` tasks and ``contextvars.copy_context()`` and never leaks between threads.
Spans started while it is set carry it as attribute ``correlation_id``, and so do log records.
"""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

CORRELATION_ATTRIBUTE = "correlation_id"
BAGGAGE_KEY = "correlation_id"

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "langswarm_correlation_id", default=None
)

#: The guide's name for the same variable (``current_correlation_id.get()`` works).
current_correlation_id = _current


def get_correlation_id() -> str | None:
    """The correlation id of the current context, or None."""
    return _current.get()


def set_correlation_id(correlation_id: str | None) -> contextvars.Token[str | None]:
    """Set the correlation id of the current context; returns a token for :func:`reset_correlation_id`."""
    if correlation_id is not None and not isinstance(correlation_id, str):
        correlation_id = str(correlation_id)
    return _current.set(correlation_id)


def reset_correlation_id(token: contextvars.Token[str | None]) -> None:
    """Restore the correlation id that was current before :func:`set_correlation_id` returned ``token``."""
    _current.reset(token)


def new_correlation_id(prefix: str = "") -> str:
    """A fresh random correlation id (32 hex chars), optionally prefixed like ``req_``."""
    return f"{prefix}{uuid.uuid4().hex}"


@contextmanager
def correlation_scope(correlation_id: str | None = None) -> Iterator[str]:
    """Run a block with ``correlation_id`` (a new one if None) and restore the previous id after it."""
    cid = correlation_id if correlation_id is not None else new_correlation_id()
    token = _current.set(cid)
    try:
        yield cid
    finally:
        _current.reset(token)

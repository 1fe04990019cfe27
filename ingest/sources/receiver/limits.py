"""The receiver's limits and the memory bound they give; byte budgets that hold a process to it.

Every limit resolves argument > ``LANGSWARM_RECEIVER_*`` environment variable > default. The bound and
how each term was measured: docs/security.md, "The OTLP/HTTP receiver".
"""

from __future__ import annotations

import collections
import os
import threading
from dataclasses import dataclass
from typing import Any

from ingest.errors import ConfigurationError
from ingest.sources.otlp import quote

DEFAULT_MAX_BODY = 20 << 20
_MIB = 1 << 20

#: Resident memory of an idle receiver process (Python, pyarrow, protobuf), rounded up from 131 MB.
BASE_MB = 150
#: Memory of decoding one request, per byte of (inflated) body, besides the body itself: the decoded
#: protobuf request or JSON objects and the Arrow rows. Measured 26.1x for a 19 MB protobuf of SDK
#: spans and 13.3x for OTLP JSON (docs/security.md); 28 leaves room.
DECODE_FACTOR = 28
_ENV = "LANGSWARM_RECEIVER_"


@dataclass(frozen=True)
class Limits:
    """The receiver's limits; :meth:`resolve` takes argument > ``LANGSWARM_RECEIVER_*`` > default."""

    max_body: int = DEFAULT_MAX_BODY
    memory_mb: int = 1024
    max_concurrent_decodes: int = 1
    max_connections: int = 256
    read_timeout: float = 10.0
    max_days_per_request: int = 32
    max_pending_mb: int = 64

    @classmethod
    def resolve(
        cls,
        *,
        max_body: int | None = None,
        memory_mb: int | None = None,
        max_concurrent_decodes: int | None = None,
        max_connections: int | None = None,
        read_timeout: float | None = None,
        max_days_per_request: int | None = None,
        max_pending_mb: int | None = None,
    ) -> Limits:
        """Limits from arguments, the environment and defaults; decodes at once derived from memory."""
        body_mb = _setting(
            "max_body_mb", None if max_body is None else max_body / _MIB, DEFAULT_MAX_BODY / _MIB, float
        )
        memory = int(_setting("memory_mb", memory_mb, cls.memory_mb, int))
        pending = int(_setting("max_pending_mb", max_pending_mb, cls.max_pending_mb, int))
        fixed = memory_needed(body_mb, 0, pending)
        per_decode = (DECODE_FACTOR + 2) * body_mb
        decodes = _setting("max_concurrent_decodes", max_concurrent_decodes, None, int)
        if decodes is None:
            if memory < fixed + per_decode:
                msg = (
                    f"memory_mb {memory} cannot hold one request of --max-body-mb {body_mb:g} "
                    f"(needs at least {fixed + per_decode:,.0f} MB: {BASE_MB} for the process, "
                    f"{DECODE_FACTOR + 4}x the body limit, twice --max-pending-mb {pending}); "
                    "raise --memory-mb or lower --max-body-mb/--max-pending-mb"
                )
                raise ConfigurationError(msg)
            decodes = int((memory - fixed) // per_decode)
        return cls(
            max_body=int(body_mb * _MIB),
            memory_mb=memory,
            max_concurrent_decodes=int(decodes),
            max_connections=int(_setting("max_connections", max_connections, cls.max_connections, int)),
            read_timeout=float(_setting("read_timeout_s", read_timeout, cls.read_timeout, float)),
            max_days_per_request=int(
                _setting("max_days_per_request", max_days_per_request, cls.max_days_per_request, int)
            ),
            max_pending_mb=pending,
        )

    @property
    def body_budget(self) -> int:
        """Bytes of bodies held at once, as read and as inflated: a full one per decode, plus one more."""
        return 2 * (self.max_concurrent_decodes + 1) * self.max_body

    @property
    def decode_budget(self) -> int:
        """Decoding memory in bytes: ``DECODE_FACTOR`` per body byte, for that many full-size bodies."""
        return self.max_concurrent_decodes * DECODE_FACTOR * self.max_body

    @property
    def bound_mb(self) -> float:
        """The documented ceiling on this process's resident memory, in MB."""
        return memory_needed(self.max_body / _MIB, self.max_concurrent_decodes, self.max_pending_mb)


def memory_needed(max_body_mb: float, decodes: int, max_pending_mb: int) -> float:
    """Memory bound (MB) = process + bodies held (read and inflated) + decoding + rows waiting and being written."""
    bodies = 2 * (decodes + 1) * max_body_mb
    return BASE_MB + bodies + decodes * DECODE_FACTOR * max_body_mb + 2 * max_pending_mb


def _setting(name: str, value: float | None, default: float | None, kind: type) -> Any:
    """``value``, else the environment variable ``LANGSWARM_RECEIVER_<NAME>``, else ``default``; > 0."""
    env = _ENV + name.upper()
    if value is None and os.environ.get(env, "").strip():
        raw = os.environ[env].strip()
        try:
            value = kind(raw)
        except ValueError:
            msg = f"{env}={quote(raw)} is not a {'whole ' if kind is int else ''}number"
            raise ConfigurationError(msg) from None
    if value is None:
        return default
    if value <= 0:
        msg = f"{name} must be positive, got {value} (argument --{name.replace('_', '-')} or {env})"
        raise ConfigurationError(msg)
    return value


class ByteBudget:
    """Bytes the process may hold at once for one purpose; a caller waits at most ``timeout`` for room.

    Large reservations (over 1/64 of the limit) are granted first come, first served, so a stream of
    others cannot starve one; small ones take room whenever it is free, so a batch of a few spans is
    not queued behind a 20 MB request.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.peak = 0
        self._cond = threading.Condition()
        self._queue: collections.deque[object] = collections.deque()

    def reserve(self, n: int, timeout: float) -> bool:
        with self._cond:
            if n <= self.limit // 64:
                granted = self._cond.wait_for(lambda: self.used + n <= self.limit, timeout=timeout)
            else:
                ticket = object()
                self._queue.append(ticket)
                try:
                    granted = self._cond.wait_for(
                        lambda: self._queue[0] is ticket and self.used + n <= self.limit, timeout=timeout
                    )
                finally:
                    self._queue.remove(ticket)
                    self._cond.notify_all()
            if granted:
                self.used += n
                self.peak = max(self.peak, self.used)
            return granted

    def release(self, n: int) -> None:
        if n:
            with self._cond:
                self.used -= n
                self._cond.notify_all()

"""V2Tracer: the guide's tracer API as a thin layer over an OpenTelemetry SDK ``Tracer``.

``start_span`` returns a :class:`V2Span` that is its own context manager (``with`` and
``async with``): entering makes it the current span, leaving ends it; an exception leaving the
block is recorded, marks the span ERROR and is re-raised. Sampling, limits, ids and export are
the SDK's; this layer only adapts names (``set_status("OK"|"ERROR", msg)``, hex ``trace_id``)
and keeps the per-span cost within a few percent of the raw SDK (bench/sdk_overhead.py).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from contextvars import Token
from types import TracebackType
from typing import Any, TypeVar

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from ingest.errors import TelemetryValueError
from ingest.sdk._values import PLAIN_TYPES as _PLAIN
from ingest.sdk._values import attribute_value

F = TypeVar("F", bound=Callable[..., Any])

STATUS_MESSAGE_ATTRIBUTE = "langswarm.status_message"

_KINDS = {k.name.lower(): k for k in SpanKind}
_STATUSES = {"OK": StatusCode.OK, "ERROR": StatusCode.ERROR, "UNSET": StatusCode.UNSET}
_set_span_in_context = trace_api.set_span_in_context
_attach = context_api.attach
_detach = context_api.detach


def span_kind(kind: SpanKind | str) -> SpanKind:
    """A SpanKind from itself or its name (``"server"``, ``"CLIENT"``, ...)."""
    if type(kind) is SpanKind:
        return kind
    if isinstance(kind, str) and kind.strip().lower() in _KINDS:
        return _KINDS[kind.strip().lower()]
    msg = f"span kind {kind!r} is not valid; allowed: {', '.join(_KINDS)} (or an opentelemetry SpanKind)"
    raise TelemetryValueError(msg)


def clean_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Attributes with every value made acceptable to the SDK (see :func:`attribute_value`)."""
    if not attributes:
        return None
    return {str(k): (v if type(v) in _PLAIN else attribute_value(v)) for k, v in attributes.items()}


class V2Span:
    """A span handle: context manager, attribute/status/event setters, hex ids.

    Wraps an OTel span (``.span``). ``ends`` is False for handles from ``get_current_span()``,
    whose ``with`` block neither activates nor ends the span.
    """

    __slots__ = ("_ends", "_recorded", "_token", "span")

    def __init__(self, span: trace_api.Span, ends: bool = True) -> None:
        self.span = span
        self._ends = ends
        self._token: Token[context_api.Context] | None = None
        self._recorded: BaseException | None = None

    # -- context manager -------------------------------------------------------------------------
    def __enter__(self) -> V2Span:
        if self._ends:
            self._token = _attach(_set_span_in_context(self.span))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._ends:
            return
        span = self.span
        try:
            if exc is not None and span.is_recording():
                if exc is not self._recorded:
                    span.record_exception(exc, escaped=True)
                status = getattr(span, "status", None)
                if status is None or status.status_code is not StatusCode.ERROR:
                    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        finally:
            if self._token is not None:
                _detach(self._token)
                self._token = None
            span.end()

    async def __aenter__(self) -> V2Span:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    # -- the guide's span API ----------------------------------------------------------------------
    def set_attribute(self, key: str, value: Any) -> V2Span:
        self.span.set_attribute(key, value if type(value) in _PLAIN else attribute_value(value))
        return self

    def set_attributes(self, attributes: Mapping[str, Any]) -> V2Span:
        cleaned = clean_attributes(attributes)
        if cleaned:
            self.span.set_attributes(cleaned)
        return self

    def set_status(self, status: str | StatusCode | Status, message: str | None = None) -> V2Span:
        """Set ``"OK"``, ``"ERROR"`` (or ``"UNSET"``) with an optional message.

        OTel keeps a description only for ERROR; the message of an OK status is kept as the
        attribute ``langswarm.status_message`` instead of being dropped.
        """
        if isinstance(status, Status):
            self.span.set_status(status)
            return self
        code = status if isinstance(status, StatusCode) else _STATUSES.get(str(status).upper())
        if code is None:
            msg = f"span status {status!r} is not valid; allowed: 'OK', 'ERROR', 'UNSET'"
            raise TelemetryValueError(msg)
        if code is StatusCode.ERROR:
            self.span.set_status(Status(code, None if message is None else str(message)))
        else:
            self.span.set_status(Status(code))
            if message:
                self.span.set_attribute(STATUS_MESSAGE_ATTRIBUTE, str(message))
        return self

    def record_exception(
        self, exception: BaseException, attributes: Mapping[str, Any] | None = None, escaped: bool = False
    ) -> V2Span:
        """Add an ``exception`` event; the same exception leaving the ``with`` block is not recorded twice."""
        self._recorded = exception
        self.span.record_exception(exception, attributes=clean_attributes(attributes), escaped=escaped)
        return self

    def add_event(
        self, name: str, attributes: Mapping[str, Any] | None = None, timestamp: int | None = None
    ) -> V2Span:
        self.span.add_event(name, attributes=clean_attributes(attributes), timestamp=timestamp)
        return self

    def update_name(self, name: str) -> V2Span:
        self.span.update_name(name)
        return self

    def end(self, end_time: int | None = None) -> None:
        """End the span now (for spans not used as a context manager)."""
        self.span.end(end_time)

    def is_recording(self) -> bool:
        return self.span.is_recording()

    def get_span_context(self) -> trace_api.SpanContext:
        return self.span.get_span_context()

    @property
    def trace_id(self) -> str:
        """The trace id as 32 lowercase hex characters."""
        return format(self.span.get_span_context().trace_id, "032x")

    @property
    def span_id(self) -> str:
        """The span id as 16 lowercase hex characters."""
        return format(self.span.get_span_context().span_id, "016x")

    @property
    def name(self) -> str | None:
        return getattr(self.span, "name", None)

    def __repr__(self) -> str:
        return f"V2Span(name={self.name!r}, trace_id={self.trace_id}, span_id={self.span_id})"


class V2Tracer:
    """Starts spans for one component on its provider's OTel ``TracerProvider``."""

    def __init__(self, otel_tracer: trace_api.Tracer, component: str = "") -> None:
        self.otel_tracer = otel_tracer
        self.component = component

    def start_span(
        self,
        name: str,
        attributes: Mapping[str, Any] | None = None,
        kind: SpanKind | str = SpanKind.INTERNAL,
        *,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
    ) -> V2Span:
        """A new child of the current span (or a root); use it as ``with``/``async with``."""
        if type(kind) is not SpanKind:
            kind = span_kind(kind)
        if attributes:
            attributes = clean_attributes(attributes)
        span = self.otel_tracer.start_span(name, None, kind, attributes, links, start_time, False, False)
        return V2Span(span)

    # The OTel spelling, for code moving from the plain API.
    start_as_current_span = start_span

    def get_current_span(self) -> V2Span:
        """The current span (a no-op span if none); ``with`` on it neither activates nor ends it."""
        return V2Span(trace_api.get_current_span(), ends=False)

    def trace(self, name: str | None = None, attributes: Mapping[str, Any] | None = None) -> Callable[[F], F]:
        """Decorator running a sync or async function inside a span named ``name`` (default: its qualname)."""

        def decorator(func: F) -> F:
            span_name = name or func.__qualname__
            if inspect.iscoroutinefunction(func):

                @functools.wraps(func)
                async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                    with self.start_span(span_name, attributes):
                        return await func(*args, **kwargs)

                return async_wrapper  # type: ignore[return-value]

            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                with self.start_span(span_name, attributes):
                    return func(*args, **kwargs)

            return wrapper  # type: ignore[return-value]

        return decorator

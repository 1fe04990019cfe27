"""No-op logger, tracer and metrics with the same methods as V2Logger, V2Tracer and V2Metrics.

For components built without a provider (the guide's ``ObservableComponent(name, None)``) and for
components excluded by ``integrations``. Everything is a shared singleton that does nothing, so a
no-op span costs well under a microsecond (bench/sdk_overhead.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_INVALID_TRACE = "0" * 32
_INVALID_SPAN = "0" * 16


class NoOpSpan:
    """A span that records nothing; a context manager that lets exceptions through."""

    __slots__ = ()
    trace_id = _INVALID_TRACE
    span_id = _INVALID_SPAN
    name = None

    def __enter__(self) -> NoOpSpan:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    async def __aenter__(self) -> NoOpSpan:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def set_attribute(self, key: str, value: Any) -> NoOpSpan:
        return self

    def set_attributes(self, attributes: Mapping[str, Any]) -> NoOpSpan:
        return self

    def set_status(self, status: Any, message: str | None = None) -> NoOpSpan:
        return self

    def record_exception(
        self, exception: BaseException, attributes: Any = None, escaped: bool = False
    ) -> NoOpSpan:
        return self

    def add_event(self, name: str, attributes: Any = None, timestamp: int | None = None) -> NoOpSpan:
        return self

    def update_name(self, name: str) -> NoOpSpan:
        return self

    def end(self, end_time: int | None = None) -> None:
        return None

    def is_recording(self) -> bool:
        return False

    def get_span_context(self) -> Any:
        from opentelemetry.trace import INVALID_SPAN_CONTEXT

        return INVALID_SPAN_CONTEXT


NOOP_SPAN = NoOpSpan()


class NoOpTracer:
    """A tracer whose spans record nothing."""

    component = ""

    def start_span(self, name: str, attributes: Any = None, kind: Any = None, **kwargs: Any) -> NoOpSpan:
        return NOOP_SPAN

    start_as_current_span = start_span

    def get_current_span(self) -> NoOpSpan:
        return NOOP_SPAN

    def trace(self, name: str | None = None, attributes: Any = None) -> Callable[[F], F]:
        def decorator(func: F) -> F:
            return func

        return decorator


class NoOpLogger:
    """A logger that discards every record."""

    component = ""
    level = "DISABLED"

    def debug(self, msg: Any, **fields: Any) -> None:
        return None

    info = warning = warn = error = critical = fatal = debug

    def exception(self, msg: Any, *, exc_info: BaseException | None = None, **fields: Any) -> None:
        return None

    def log(self, level: Any, msg: Any, **fields: Any) -> None:
        return None

    def is_enabled_for(self, level: Any) -> bool:
        return False


class _NoOpInstrument:
    """Counter, gauge and histogram at once: increment/set/observe do nothing."""

    __slots__ = ("name",)

    def __init__(self, name: str = "") -> None:
        self.name = name

    def increment(self, value: float = 1, labels: Any = None) -> None:
        return None

    inc = add = increment

    def set(self, value: float, labels: Any = None) -> None:
        return None

    def observe(self, value: float, labels: Any = None) -> None:
        return None

    record = observe

    @contextmanager
    def timer(self, labels: Any = None) -> Iterator[None]:
        yield


class NoOpMetrics:
    """Metrics that record nothing; ``export_metrics()`` returns an empty dict."""

    component = None

    def increment_counter(self, name: str, value: float = 1, labels: Any = None) -> None:
        return None

    def record_histogram(self, name: str, value: float, labels: Any = None) -> None:
        return None

    def set_gauge(self, name: str, value: float, labels: Any = None) -> None:
        return None

    def create_counter(self, name: str, description: str = "", unit: str = "") -> _NoOpInstrument:
        return _NoOpInstrument(name)

    def create_histogram(
        self, name: str, description: str = "", unit: str = "", buckets: Sequence[float] | None = None
    ) -> _NoOpInstrument:
        return _NoOpInstrument(name)

    def create_gauge(self, name: str, description: str = "", unit: str = "") -> _NoOpInstrument:
        return _NoOpInstrument(name)

    @contextmanager
    def timer(self, name: str, labels: Any = None) -> Iterator[None]:
        yield

    async def export_metrics(self) -> dict[str, dict[str, Any]]:
        return {}

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {}

    async def cleanup_old_data(self, cutoff: float) -> int:
        return 0

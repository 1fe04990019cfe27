"""Performance profiling as telemetry: cProfile around a call, inside a span, rows in the ``profiles`` table.

``PerformanceProfiler(provider).profile_operation("plan")`` decorates a sync or async function. Each
profiled call runs inside a span ``profiled_<operation>`` and writes, keyed by ``profile_id``,
``trace_id`` and ``span_id``: one row per function (``caller`` NULL: its totals) and one row per
caller→callee edge (``caller`` set), so the explorer can rank hotspots and draw a call graph.

What is measured (see docs/profiling-and-alerts.md): cProfile's wall-clock times for the code that runs
on the calling thread. For a coroutine, the profiler is switched on only while the decorated task's
own coroutine runs — between two awaits that suspend it, other tasks of the event loop run unprofiled —
and cProfile counts every resumption of a coroutine as a call (``calls`` of a coroutine function =
invocations + suspensions). Threads the call starts are not profiled.
"""

from __future__ import annotations

import atexit
import cProfile
import functools
import inspect
import logging
import operator
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

from ingest.errors import ConfigurationError
from ingest.store.encoding import table_from_columns

if TYPE_CHECKING:
    from ingest.sdk.provider import ObservabilityProvider

_log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

#: Entries the profiler's own machinery adds at the root of a profile: the call that switches it off and
#: the ``send``/``throw`` that resume a profiled coroutine. Dropped only when nothing in the profile
#: calls them.
_MACHINERY = frozenset(
    {
        "<method 'disable' of '_lsprof.Profiler' objects>",
        "<method 'send' of 'coroutine' objects>",
        "<method 'throw' of 'coroutine' objects>",
    }
)
_NO_CALLER = (None, None, None)
_COLUMNS = (
    "timestamp",
    "profile_id",
    "trace_id",
    "span_id",
    "service_name",
    "operation",
    "function",
    "file",
    "line",
    "calls",
    "primitive_calls",
    "self_time_s",
    "cumulative_time_s",
    "caller",
    "caller_file",
    "caller_line",
)

SKIP_NESTED = "nested_profiled_call"
SKIP_OTHER = "another_profiler_active"

# Per-thread depth of profiled steps of ours that are running: tells a nested profiled call from another
# tool's profiler on Pythons (3.12+) where sys.getprofile() does not show cProfile.
_state = threading.local()


def _depth() -> int:
    return getattr(_state, "depth", 0)


def _label(code: Any) -> tuple[str, str | None, int | None]:
    """Function name, file and first line of a cProfile entry's code (a C function has no file or line)."""
    if isinstance(code, str):
        return code, None, None
    return code.co_qualname, code.co_filename, code.co_firstlineno


class _Session:
    """One profiled call: its cProfile.Profile, switched on for each step that runs the call's own code."""

    __slots__ = ("partial", "profile", "skipped", "steps")

    def __init__(self) -> None:
        self.profile = cProfile.Profile()
        self.skipped: str | None = None
        self.partial = False
        self.steps = 0

    def enable(self) -> bool:
        """Switch profiling on for one step; False (and the reason kept) when a profiler already runs."""
        if self.skipped is not None:
            return False
        if _depth():
            return self._refuse(SKIP_NESTED)
        if sys.getprofile() is not None:
            # Python 3.11 lets a second cProfile.enable() silently take over the thread: look first.
            return self._refuse(SKIP_OTHER)
        self.steps += 1
        _state.depth = getattr(_state, "depth", 0) + 1
        try:
            # Last call here: anything after it would be measured as part of the user's profile.
            self.profile.enable()
        except ValueError:  # 3.12+: "Another profiling tool is already active"
            _leave()
            self.steps -= 1
            return self._refuse(SKIP_OTHER)
        return True

    def _refuse(self, reason: str) -> bool:
        if self.steps == 0:
            self.skipped = reason
        else:
            self.partial = True
        self.steps += 1
        return False


def _leave() -> None:
    """Bookkeeping after ``profile.disable()``, which callers invoke first so no frame of ours is measured."""
    _state.depth = _depth() - 1


class _ProfiledCoroutine:
    """Awaitable that drives a coroutine step by step with its profiler on only while that coroutine runs.

    Hand-written because neither cProfile nor asyncio offers per-task profiling: a plain enable() before
    ``await`` would also measure every other task the loop runs while this one is suspended.
    """

    __slots__ = ("coro", "session")

    def __init__(self, coro: Coroutine[Any, Any, Any], session: _Session) -> None:
        self.coro = coro
        self.session = session

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, session = self.coro, self.session
        value: Any = None
        error: BaseException | None = None
        while True:
            on = session.enable()
            try:
                if error is None:
                    yielded = coro.send(value)
                else:
                    yielded = coro.throw(error)
            except StopIteration as stop:
                return stop.value
            finally:
                if on:
                    session.profile.disable()
                    _leave()
            try:
                value = yield yielded
                error = None
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # cancellation or an error thrown in by the event loop
                value, error = None, exc


class ProfileRows:
    """Column lists of the ``profiles`` table, filled one profile at a time (no per-row dicts)."""

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {name: [] for name in _COLUMNS}
        self.num_rows = 0

    def add_profile(
        self,
        stats: list[Any],
        *,
        timestamp_ns: int,
        profile_id: str,
        trace_id: str | None,
        span_id: str | None,
        service_name: str | None,
        operation: str,
    ) -> dict[str, Any]:
        """Append the rows of one ``cProfile.Profile.getstats()``; returns its summary for the span."""
        called = {sub.code for entry in stats for sub in (entry.calls or ()) if isinstance(sub.code, str)}
        entries = [
            e
            for e in stats
            if not (isinstance(e.code, str) and e.code in _MACHINERY and e.code not in called)
        ]
        # Keyed by id(): hashing a code object rehashes its bytecode and constants on every lookup.
        labels: dict[int, tuple[str, str | None, int | None]] = {}
        rows: list[tuple[Any, ...]] = []
        total_calls = 0
        total_time = 0.0
        top: tuple[float, str] = (-1.0, "none")
        for entry in entries:
            label = labels.get(id(entry.code)) or labels.setdefault(id(entry.code), _label(entry.code))
            rows.append(
                (*label, entry.callcount, entry.reccallcount, entry.inlinetime, entry.totaltime, *_NO_CALLER)
            )
            total_calls += entry.callcount
            total_time += entry.inlinetime
            if entry.inlinetime > top[0]:
                top = (entry.inlinetime, label[0])
            for sub in entry.calls or ():
                sub_label = labels.get(id(sub.code)) or labels.setdefault(id(sub.code), _label(sub.code))
                rows.append(
                    (*sub_label, sub.callcount, sub.reccallcount, sub.inlinetime, sub.totaltime, *label)
                )
        if rows:
            c = self.columns
            (function, file, line, calls, recursive, inline, total, caller, caller_file, caller_line) = zip(
                *rows
            )
            c["function"] += function
            c["file"] += file
            c["line"] += line
            c["calls"] += calls
            c["primitive_calls"] += map(operator.sub, calls, recursive)
            c["self_time_s"] += inline
            c["cumulative_time_s"] += total
            c["caller"] += caller
            c["caller_file"] += caller_file
            c["caller_line"] += caller_line
            added = len(rows)
            c["timestamp"] += [timestamp_ns] * added
            c["profile_id"] += [profile_id] * added
            c["trace_id"] += [trace_id] * added
            c["span_id"] += [span_id] * added
            c["service_name"] += [service_name] * added
            c["operation"] += [operation] * added
            self.num_rows += added
        return {
            "profile.total_calls": total_calls,
            "profile.total_time_s": total_time,
            "profile.top_function": top[1],
            "profile.top_function_time_s": max(top[0], 0.0),
            "profile.functions": len(entries),
        }

    def finish(self) -> Any:
        """The rows so far as one Arrow ``profiles`` table."""
        return table_from_columns("profiles", self.columns, self.num_rows)


def _check_rate(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        msg = f"{name} must be a number from 0.0 (never profile) to 1.0 (profile every call), got {value!r}"
        raise ConfigurationError(msg)
    return float(value)


class PerformanceProfiler:
    """cProfile-based profiling of chosen operations, written to the store's ``profiles`` table.

    ``sample_rate`` (0..1) is the share of calls that are profiled (drawn from ``rng``); the others call
    the function directly, with no span and no profile. Rows are buffered and written by a background
    thread every ``flush_interval_s`` seconds (sooner at ``max_buffered_rows``), by :meth:`flush`, and by
    the provider's ``force_flush()`` and ``shutdown()``.
    """

    def __init__(
        self,
        observability_provider: ObservabilityProvider,
        *,
        sample_rate: float = 1.0,
        flush_interval_s: float = 5.0,
        max_buffered_rows: int = 20_000,
        rng: random.Random | None = None,
    ) -> None:
        self.observability = observability_provider
        self.sample_rate = _check_rate(sample_rate, "sample_rate")
        if (
            isinstance(flush_interval_s, bool)
            or not isinstance(flush_interval_s, (int, float))
            or flush_interval_s <= 0
        ):
            msg = f"flush_interval_s must be a positive number of seconds, got {flush_interval_s!r}"
            raise ConfigurationError(msg)
        self.flush_interval_s = float(flush_interval_s)
        if (
            isinstance(max_buffered_rows, bool)
            or not isinstance(max_buffered_rows, int)
            or max_buffered_rows < 1
        ):
            msg = f"max_buffered_rows must be a positive integer, got {max_buffered_rows!r}"
            raise ConfigurationError(msg)
        self.max_buffered_rows = max_buffered_rows
        self.logger = observability_provider.get_logger("profiler")
        self.tracer = observability_provider.get_tracer("profiler")
        self.metrics = observability_provider.get_metrics("profiler")
        self.service_name = getattr(observability_provider, "service_name", None)
        self._writer = observability_provider.store_writer
        self._random = (rng or random.Random()).random
        self._lock = threading.Lock()
        self._rows = ProfileRows()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        #: Profiles written / rows written / rows dropped because the store could not be written.
        self.profiles_recorded = 0
        self.rows_written = 0
        self.rows_dropped = 0
        self.calls_skipped = 0
        tracer_provider = getattr(observability_provider, "tracer_provider", None)
        if isinstance(tracer_provider, TracerProvider):
            # The provider's force_flush()/shutdown() (also run at exit) reach the profile buffer too.
            tracer_provider.add_span_processor(_FlushOnProviderFlush(self))
        else:
            atexit.register(self.shutdown)

    def profile_operation(
        self, operation_name: str, detailed: bool = False, *, sample_rate: float | None = None
    ) -> Callable[[F], F]:
        """Decorator: profile each (sampled) call of a sync or async function as ``operation_name``."""
        if not isinstance(operation_name, str) or not operation_name:
            msg = f"operation_name must be a non-empty string, got {operation_name!r}"
            raise ConfigurationError(msg)
        rate = self.sample_rate if sample_rate is None else _check_rate(sample_rate, "sample_rate")
        span_name = f"profiled_{operation_name}"

        def decorator(func: F) -> F:
            if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
                msg = (
                    f"profile_operation({operation_name!r}) cannot wrap the generator function "
                    f"{func.__qualname__}: profile the function that consumes it instead"
                )
                raise ConfigurationError(msg)
            if inspect.iscoroutinefunction(func):

                @functools.wraps(func)
                async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                    if rate < 1.0 and self._random() >= rate:
                        return await func(*args, **kwargs)
                    with self.tracer.start_span(span_name) as span:
                        session = _Session()
                        started = time.perf_counter()
                        error: BaseException | None = None
                        try:
                            return await _ProfiledCoroutine(func(*args, **kwargs), session)
                        except BaseException as exc:
                            error = exc
                            raise
                        finally:
                            self._record(
                                session, span, operation_name, detailed, time.perf_counter() - started, error
                            )

                return async_wrapper  # type: ignore[return-value]

            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                if rate < 1.0 and self._random() >= rate:
                    return func(*args, **kwargs)
                with self.tracer.start_span(span_name) as span:
                    session = _Session()
                    started = time.perf_counter()
                    error: BaseException | None = None
                    on = session.enable()
                    try:
                        return func(*args, **kwargs)
                    except BaseException as exc:
                        error = exc  # nothing is called here: the profiler is still on
                        raise
                    finally:
                        if on:
                            # First call after the function's: nothing of ours is measured.
                            session.profile.disable()
                            _leave()
                        self._record(
                            session, span, operation_name, detailed, time.perf_counter() - started, error
                        )

            return wrapper  # type: ignore[return-value]

        return decorator

    def _record(
        self,
        session: _Session,
        span: Any,
        operation: str,
        detailed: bool,
        elapsed: float,
        error: BaseException | None,
    ) -> None:
        """Turn a finished session into rows, span attributes, a log line and a duration metric."""
        try:
            if isinstance(error, Exception):  # not cancellation or KeyboardInterrupt: those are no failure
                self.logger.error(
                    f"Profiled operation failed: {operation}",
                    operation=operation,
                    error_type=type(error).__name__,
                )
            if session.skipped is not None:
                self.calls_skipped += 1
                span.set_attributes(
                    {
                        "profiling.enabled": False,
                        "profiling.skipped_reason": session.skipped,
                        "execution_time": elapsed,
                    }
                )
                self.metrics.increment_counter(
                    "profiler_skipped_calls_total",
                    1,
                    labels={"operation": operation, "reason": session.skipped},
                )
                return
            profile_id = uuid.uuid4().hex
            with self._lock:
                summary = self._rows.add_profile(
                    session.profile.getstats(),
                    timestamp_ns=time.time_ns(),  # when the call ended
                    profile_id=profile_id,
                    trace_id=_valid_id(getattr(span, "trace_id", None)),
                    span_id=_valid_id(getattr(span, "span_id", None)),
                    service_name=self.service_name,
                    operation=operation,
                )
                self.profiles_recorded += 1
                full = self._rows.num_rows >= self.max_buffered_rows
            if self._closed:
                self.flush()
            elif full:
                self._ensure_flusher()
                self._wake.set()
            else:
                self._ensure_flusher()
            attributes: dict[str, Any] = {
                "profiling.enabled": True,
                "profile.id": profile_id,
                "execution_time": elapsed,
            }
            if session.partial:
                attributes["profiling.partial"] = True
            if detailed:
                attributes.update(summary)
            span.set_attributes(attributes)
            self.metrics.record_histogram(
                "profiled_operation_duration_seconds", elapsed, labels={"operation": operation}
            )
            self.logger.info(
                f"Profiled operation completed: {operation}",
                operation=operation,
                profile_id=profile_id,
                execution_time=elapsed,
                **({k.replace(".", "_"): v for k, v in summary.items()} if detailed else {}),
            )
        except Exception:  # profiling must never break the user's call
            _log.exception("could not record the profile of %s", operation)

    def _ensure_flusher(self) -> None:
        if self._thread is not None or self._closed:
            return
        with self._lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._flush_loop, name="profiler-flush", daemon=True)
                self._thread.start()

    def _flush_loop(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            self.flush()

    def flush(self) -> int:
        """Write the buffered profile rows to the store now; returns the number of rows written."""
        with self._lock:
            if self._rows.num_rows == 0:
                return 0
            rows, self._rows = self._rows, ProfileRows()
        try:
            self._writer.write("profiles", rows.finish())
        except Exception:
            with self._lock:
                self.rows_dropped += rows.num_rows
            _log.exception("could not write %d profile rows to the store; they are dropped", rows.num_rows)
            try:
                self.metrics.increment_counter("profiler_rows_dropped_total", rows.num_rows)
            except Exception:
                _log.exception("could not count dropped profile rows")
            return 0
        with self._lock:
            self.rows_written += rows.num_rows
        return rows.num_rows

    def shutdown(self) -> None:
        """Stop the background writer and write what is buffered; later profiles are written at once."""
        if self._closed:
            self.flush()
            return
        self._closed = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self.flush()
        atexit.unregister(self.shutdown)


class _FlushOnProviderFlush(SpanProcessor):
    """Ties the profiler's buffer to the SDK lifecycle: the TracerProvider flushes and shuts it down.

    Does nothing per span; the provider runs ``force_flush``/``shutdown`` of its span processors from
    ``provider.force_flush()``, ``provider.shutdown()`` and at interpreter exit.
    """

    def __init__(self, profiler: PerformanceProfiler) -> None:
        self.profiler = profiler

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        self.profiler.flush()
        return True

    def shutdown(self) -> None:
        self.profiler.shutdown()


def _valid_id(value: Any) -> str | None:
    """A hex trace/span id, or None for a missing or all-zero (invalid, no-op span) one."""
    if not value or not isinstance(value, str) or not value.strip("0"):
        return None
    return value

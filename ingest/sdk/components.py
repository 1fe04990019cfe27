"""ObservableComponent: the guide's base class for components with built-in logs, spans and metrics.

``observe_operation(name)`` wraps a sync or async method in a span ``<component>_<name>`` with
the guide's metrics (``component_operations_total``, ``component_operation_duration_seconds``,
``component_errors_total``) and debug logs. It works where the guide wants it — as a decorator
inside a subclass body::

    class CustomDataProcessor(ObservableComponent):
        @ObservableComponent.observe_operation("process_data")   # or the module-level observe_operation
        async def process_data(self, data): ...

— and on an instance, ``component.observe_operation("op")(func)``, for plain functions.
(The guide's own ``@property`` trick cannot run: a property object is not callable in a class body.)
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ingest.sdk.noop import NoOpLogger, NoOpMetrics, NoOpTracer

if TYPE_CHECKING:
    from ingest.sdk.provider import ObservabilityProvider

F = TypeVar("F", bound=Callable[..., Any])
_MAX_PARAM_CHARS = 256


def _wrap(func: F, operation_name: str, bound: ObservableComponent | None) -> F:
    """Wrap ``func``; the component is ``bound`` or, when None, the first argument (``self``)."""

    def parts(args: tuple[Any, ...]) -> tuple[ObservableComponent, tuple[Any, ...]]:
        if bound is not None:
            return bound, args
        return args[0], args[1:]

    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            component, call_args = parts(args)
            with component._operation(operation_name, call_args, kwargs) as op:
                return op.done(await func(*args, **kwargs))

        async_wrapper.__observed_operation__ = operation_name  # type: ignore[attr-defined]
        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        component, call_args = parts(args)
        with component._operation(operation_name, call_args, kwargs) as op:
            return op.done(func(*args, **kwargs))

    wrapper.__observed_operation__ = operation_name  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


class _ObserveOperation:
    """Descriptor behind ``observe_operation``: unbound in a class body, bound on an instance."""

    def __get__(
        self, instance: ObservableComponent | None, owner: type | None = None
    ) -> Callable[[str], Callable[[F], F]]:
        def observe_operation(operation_name: str) -> Callable[[F], F]:
            def decorator(func: F) -> F:
                return _wrap(func, operation_name, instance)

            return decorator

        return observe_operation


def observe_operation(operation_name: str) -> Callable[[F], F]:
    """Decorator for methods of an :class:`ObservableComponent` subclass (sync or async)."""

    def decorator(func: F) -> F:
        return _wrap(func, operation_name, None)

    return decorator


class _Operation:
    """One observed call: span, timing, metrics and logs around it."""

    __slots__ = ("args", "component", "kwargs", "name", "span", "span_cm", "start")

    def __init__(
        self, component: ObservableComponent, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        self.component = component
        self.name = name
        self.args = args
        self.kwargs = kwargs

    def __enter__(self) -> _Operation:
        c = self.component
        self.span_cm = c.tracer.start_span(f"{c.component_name}_{self.name}")
        self.span = self.span_cm.__enter__()
        self.start = time.perf_counter()
        attrs: dict[str, Any] = {"component": c.component_name, "operation": self.name}
        if c.detailed_spans:
            attrs["args_count"] = len(self.args)
            attrs["kwargs_count"] = len(self.kwargs)
        if c.parameter_logging:
            for i, value in enumerate(self.args):
                attrs[f"operation.arg.{i}"] = repr(value)[:_MAX_PARAM_CHARS]
            for key, value in self.kwargs.items():
                attrs[f"operation.kwarg.{key}"] = repr(value)[:_MAX_PARAM_CHARS]
        self.span.set_attributes(attrs)
        if c.detailed_spans:
            c.logger.debug(f"Starting {self.name}", operation=self.name, args_count=len(self.args))
        return self

    def done(self, result: Any) -> Any:
        c = self.component
        elapsed = time.perf_counter() - self.start
        c.metrics.increment_counter(
            "component_operations_total",
            labels={"component": c.component_name, "operation": self.name, "status": "success"},
        )
        c.metrics.record_histogram(
            "component_operation_duration_seconds",
            elapsed,
            labels={"component": c.component_name, "operation": self.name},
        )
        self.span.set_status("OK", f"{self.name} completed successfully")
        if c.detailed_spans:
            c.logger.debug(
                f"Completed {self.name}",
                operation=self.name,
                duration=elapsed,
                result_type=type(result).__name__,
            )
        return result

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        c = self.component
        if exc is not None and isinstance(exc, Exception):
            elapsed = time.perf_counter() - self.start
            c.metrics.increment_counter(
                "component_operations_total",
                labels={"component": c.component_name, "operation": self.name, "status": "error"},
            )
            c.metrics.increment_counter(
                "component_errors_total",
                labels={
                    "component": c.component_name,
                    "operation": self.name,
                    "error_type": type(exc).__name__,
                },
            )
            self.span.record_exception(exc)
            self.span.set_status("ERROR", str(exc))
            c.logger.error(
                f"Failed {self.name}",
                operation=self.name,
                duration=elapsed,
                error_type=type(exc).__name__,
                error_message=str(exc),
            )
        self.span_cm.__exit__(exc_type, exc, tb)


class ObservableComponent:
    """Base class for components with built-in observability (no-op telemetry without a provider)."""

    observe_operation = _ObserveOperation()

    def __init__(
        self, component_name: str, observability_provider: ObservabilityProvider | None = None
    ) -> None:
        self.component_name = component_name
        self.observability = observability_provider
        if observability_provider is not None:
            self.logger = observability_provider.get_logger(component_name)
            self.tracer = observability_provider.get_tracer(component_name)
            self.metrics = observability_provider.get_metrics(component_name)
            integrations = observability_provider.config["integrations"]
            self.detailed_spans = integrations["detailed_spans"]
            self.parameter_logging = integrations["parameter_logging"]
        else:
            self.logger = NoOpLogger()
            self.tracer = NoOpTracer()
            self.metrics = NoOpMetrics()
            self.detailed_spans = False
            self.parameter_logging = False

    def _operation(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Operation:
        return _Operation(self, name, args, kwargs)

    async def initialize(self) -> None:
        """Run ``_initialize_impl`` in a span ``<component>_initialization`` with the guide's metrics and logs."""
        with self.tracer.start_span(f"{self.component_name}_initialization") as span:
            start_time = time.perf_counter()
            try:
                span.set_attribute("component", self.component_name)
                self.logger.info("Component initialization started")
                await self._initialize_impl()
                initialization_time = time.perf_counter() - start_time
                self.metrics.increment_counter(
                    "component_initializations_total",
                    labels={"component": self.component_name, "status": "success"},
                )
                self.metrics.record_histogram(
                    "component_initialization_duration_seconds",
                    initialization_time,
                    labels={"component": self.component_name},
                )
                span.set_status("OK", "Initialization completed successfully")
                self.logger.info(
                    "Component initialization completed", initialization_time=initialization_time
                )
            except Exception as e:
                self.metrics.increment_counter(
                    "component_initializations_total",
                    labels={"component": self.component_name, "status": "error"},
                )
                self.metrics.increment_counter(
                    "component_errors_total",
                    labels={"component": self.component_name, "error_type": type(e).__name__},
                )
                span.record_exception(e)
                span.set_status("ERROR", str(e))
                self.logger.error(
                    "Component initialization failed", error_type=type(e).__name__, error_message=str(e)
                )
                raise

    async def _initialize_impl(self) -> None:
        """Override with the component's initialisation."""
        return None

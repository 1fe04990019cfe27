"""Distributed context propagation: W3C ``traceparent`` + ``baggage`` over HTTP, correlation ids.

:func:`inject_headers` writes the current trace context (``traceparent``/``tracestate``), the
correlation id as W3C baggage ``correlation_id`` and as ``x-correlation-id`` into outgoing
headers; :func:`extract_headers` reads them back on the receiving side, so a call between two
processes forms one trace whose spans and logs share the correlation id. The W3C propagators are
used explicitly (not the global ``OTEL_PROPAGATORS`` choice) so both sides always agree.
:class:`DistributedObservability` is the guide's class on top, with a real HTTP transport.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import baggage, propagate
from opentelemetry import context as context_api
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import (
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ingest.errors import ConfigurationError, RemoteCallError
from ingest.sdk.correlation import (
    BAGGAGE_KEY,
    current_correlation_id,
    get_correlation_id,
    new_correlation_id,
    reset_correlation_id,
    set_correlation_id,
)

if TYPE_CHECKING:
    from ingest.sdk.provider import ObservabilityProvider

CORRELATION_HEADER = "x-correlation-id"
PROPAGATOR = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])

#: The guide's context variable holding ``{"trace_id", "span_id", "correlation_id"}`` of the
#: current distributed operation (``current_correlation_id`` is :mod:`ingest.sdk.correlation`'s).
current_trace_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "langswarm_trace_context", default=None
)

__all__ = [
    "CORRELATION_HEADER",
    "CorrelationPropagator",
    "DistributedObservability",
    "RemoteCallError",
    "continue_from_headers",
    "current_correlation_id",
    "current_trace_context",
    "extract_headers",
    "inject_headers",
    "install_correlation_propagator",
]


class CorrelationPropagator(TextMapPropagator):
    """Wraps a propagator so the current correlation id travels with every injected context.

    Installed around the global propagator by the first provider, so contrib instrumentations that
    call ``opentelemetry.propagate.inject`` (requests, httpx, ...) send the correlation id as W3C
    baggage ``correlation_id`` and ``x-correlation-id`` without any code change.
    """

    def __init__(self, inner: TextMapPropagator) -> None:
        self.inner = inner

    def inject(
        self, carrier: Any, context: context_api.Context | None = None, setter: Setter[Any] = default_setter
    ) -> None:
        cid = get_correlation_id()
        if cid is not None:
            ctx = context if context is not None else context_api.get_current()
            if baggage.get_baggage(BAGGAGE_KEY, ctx) is None:
                context = baggage.set_baggage(BAGGAGE_KEY, cid, ctx)
            setter.set(carrier, CORRELATION_HEADER, cid)
        self.inner.inject(carrier, context=context, setter=setter)

    def extract(
        self, carrier: Any, context: context_api.Context | None = None, getter: Getter[Any] = default_getter
    ) -> context_api.Context:
        return self.inner.extract(carrier, context=context, getter=getter)

    @property
    def fields(self) -> set[str]:
        return set(self.inner.fields) | {CORRELATION_HEADER}


def install_correlation_propagator() -> None:
    """Wrap the global propagator in a :class:`CorrelationPropagator` (once)."""
    current = propagate.get_global_textmap()
    if not isinstance(current, CorrelationPropagator):
        propagate.set_global_textmap(CorrelationPropagator(current))


def inject_headers(
    headers: MutableMapping[str, str] | None = None, *, correlation_id: str | None = None
) -> MutableMapping[str, str]:
    """Add ``traceparent``/``tracestate``, ``baggage`` (with ``correlation_id``) and ``x-correlation-id``."""
    carrier: MutableMapping[str, str] = {} if headers is None else headers
    cid = correlation_id if correlation_id is not None else get_correlation_id()
    ctx = context_api.get_current()
    if cid is not None:
        ctx = baggage.set_baggage(BAGGAGE_KEY, cid, ctx)
        carrier[CORRELATION_HEADER] = cid
    PROPAGATOR.inject(carrier, context=ctx)
    return carrier


def extract_headers(headers: Mapping[str, str]) -> tuple[context_api.Context, str | None]:
    """The remote parent context and correlation id (baggage first, then ``x-correlation-id``)."""
    lowered = {str(k).lower(): v for k, v in headers.items()}
    ctx = PROPAGATOR.extract(lowered)
    cid = baggage.get_baggage(BAGGAGE_KEY, ctx) or lowered.get(CORRELATION_HEADER)
    return ctx, None if cid is None else str(cid)


@contextmanager
def continue_from_headers(headers: Mapping[str, str], *, new_if_missing: bool = True) -> Iterator[str | None]:
    """Run a block as a continuation of the caller: its trace context and correlation id become current."""
    ctx, cid = extract_headers(headers)
    if cid is None and new_if_missing:
        cid = new_correlation_id()
    token = context_api.attach(ctx)
    cid_token = set_correlation_id(cid)
    try:
        yield cid
    finally:
        reset_correlation_id(cid_token)
        context_api.detach(token)


class DistributedObservability:
    """The guide's distributed patterns: context propagation across async work and services.

    ``service_endpoints`` maps a service name to its base URL; :meth:`cross_service_call` POSTs the
    JSON payload to ``<base>/<operation>`` with the trace context and correlation id in the headers.
    Subclasses may override :meth:`_send` for another transport (gRPC, a queue).
    """

    def __init__(
        self,
        observability_provider: ObservabilityProvider,
        service_endpoints: Mapping[str, str] | None = None,
        *,
        timeout_s: float = 10.0,
    ) -> None:
        self.observability = observability_provider
        self.logger = observability_provider.get_logger("distributed")
        self.tracer = observability_provider.get_tracer("distributed")
        self.metrics = observability_provider.get_metrics("distributed")
        self.service_endpoints = dict(service_endpoints or {})
        self.timeout_s = timeout_s

    async def propagate_context(
        self, operation_func: Callable[[], Awaitable[Any]], context: Mapping[str, Any] | None = None
    ) -> Any:
        """Run ``operation_func`` in a ``distributed_operation`` span with a correlation id (given, current or new)."""
        correlation_id = context.get("correlation_id") if context else None
        if not correlation_id:
            correlation_id = get_correlation_id() or new_correlation_id("dist_")
        cid_token = set_correlation_id(correlation_id)
        try:
            with self.tracer.start_span("distributed_operation") as span:
                span.set_attribute("correlation_id", correlation_id)
                span.set_attribute("distributed", True)
                trace_token = current_trace_context.set(
                    {"trace_id": span.trace_id, "span_id": span.span_id, "correlation_id": correlation_id}
                )
                self.logger.info(
                    "Distributed operation started", correlation_id=correlation_id, trace_id=span.trace_id
                )
                try:
                    result = await operation_func()
                except Exception as e:
                    self.logger.error(
                        "Distributed operation failed",
                        correlation_id=correlation_id,
                        trace_id=span.trace_id,
                        error_type=type(e).__name__,
                    )
                    raise
                finally:
                    current_trace_context.reset(trace_token)
                self.logger.info(
                    "Distributed operation completed", correlation_id=correlation_id, trace_id=span.trace_id
                )
                return result
        finally:
            reset_correlation_id(cid_token)

    def get_current_context(self) -> dict[str, Any]:
        """``{"trace_context": {...} | None, "correlation_id": str | None}`` of the current context."""
        return {"trace_context": current_trace_context.get(), "correlation_id": get_correlation_id()}

    def inject_headers(self, headers: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
        """Outgoing headers carrying the current trace context and correlation id (see :func:`inject_headers`)."""
        return inject_headers(headers)

    def continue_from_headers(self, headers: Mapping[str, str]) -> Any:
        """Context manager continuing a caller's trace on the receiving side (see :func:`continue_from_headers`)."""
        return continue_from_headers(headers)

    async def cross_service_call(self, service_name: str, operation: str, payload: Mapping[str, Any]) -> Any:
        """Call ``operation`` of ``service_name`` in a CLIENT span; the callee joins the same trace."""
        context = self.get_current_context()
        correlation_id = context.get("correlation_id")
        with self.tracer.start_span(f"cross_service_{service_name}_{operation}", kind="client") as span:
            span.set_attributes(
                {
                    "service_name": service_name,
                    "operation": operation,
                    "call_type": "cross_service",
                    **({"correlation_id": correlation_id} if correlation_id else {}),
                }
            )
            enriched_payload = {**payload, "_observability_context": context}
            self.logger.info(
                "Cross-service call started",
                service_name=service_name,
                operation=operation,
                correlation_id=correlation_id,
            )
            labels = {"service": service_name, "operation": operation}
            try:
                headers = inject_headers({"content-type": "application/json"})
                result = await self._send(service_name, operation, enriched_payload, dict(headers))
            except Exception as e:
                span.set_attribute("call_success", False)
                span.record_exception(e)
                span.set_status("ERROR", f"{type(e).__name__}: {e}")
                self.metrics.increment_counter(
                    "cross_service_calls_total", labels={**labels, "status": "error"}
                )
                self.logger.error(
                    "Cross-service call failed",
                    service_name=service_name,
                    operation=operation,
                    correlation_id=correlation_id,
                    error_type=type(e).__name__,
                )
                raise
            span.set_attribute("call_success", True)
            self.metrics.increment_counter(
                "cross_service_calls_total", labels={**labels, "status": "success"}
            )
            self.logger.info(
                "Cross-service call completed",
                service_name=service_name,
                operation=operation,
                correlation_id=correlation_id,
            )
            return result

    async def _send(
        self, service_name: str, operation: str, payload: Mapping[str, Any], headers: dict[str, str]
    ) -> Any:
        """POST ``payload`` as JSON to ``service_endpoints[service_name]/operation``; returns the decoded JSON."""
        base = self.service_endpoints.get(service_name)
        if base is None:
            known = ", ".join(sorted(self.service_endpoints)) or "none"
            msg = (
                f"no endpoint for service {service_name!r}; pass service_endpoints={{{service_name!r}: 'http://host:port'}} "
                f"to DistributedObservability (known: {known})"
            )
            raise ConfigurationError(msg)
        url = f"{base.rstrip('/')}/{operation.lstrip('/')}"
        body = json.dumps(payload, default=str).encode()
        return await asyncio.to_thread(self._post, url, body, headers)

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> Any:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                data = response.read()
                content_type = response.headers.get("content-type", "")
        except urllib.error.HTTPError as e:
            detail = e.read()[:200].decode(errors="replace")
            raise RemoteCallError(f"POST {url} returned HTTP {e.code}: {detail}") from e
        except (urllib.error.URLError, OSError) as e:
            raise RemoteCallError(f"POST {url} failed after {time.perf_counter() - start:.2f}s: {e}") from e
        if "json" in content_type:
            return json.loads(data)
        return data.decode(errors="replace")

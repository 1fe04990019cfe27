"""HealthCheckManager: registered sync or async checks, run in spans, with status gauge and duration histogram.

A check returns a dict like ``{"healthy": bool, "message": str, "details": {...}}`` (a plain bool
is accepted too) or raises; each run records ``health_check_status{check}`` (1 healthy / 0 not,
plus ``check="overall"``), ``health_check_duration_seconds{check}``, a span
``health_check_<name>`` under ``health_checks`` and a log record per failure.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ingest.errors import ConfigurationError

if TYPE_CHECKING:
    from ingest.sdk.provider import ObservabilityProvider

CheckResult = dict[str, Any] | bool


class HealthCheckManager:
    """Runs health checks with observability (the guide's class, with the tracer it forgot to set)."""

    def __init__(
        self, observability_provider: ObservabilityProvider, *, timeout_s: float | None = 30.0
    ) -> None:
        self.observability = observability_provider
        self.logger = observability_provider.get_logger("health")
        self.tracer = observability_provider.get_tracer("health")
        self.metrics = observability_provider.get_metrics("health")
        self.timeout_s = timeout_s
        self.health_checks: dict[str, Callable[[], Any]] = {}
        self.health_status_gauge = self.metrics.create_gauge(
            "health_check_status", description="Health check status (1=healthy, 0=unhealthy)"
        )
        self.health_check_duration = self.metrics.create_histogram(
            "health_check_duration_seconds", description="Health check execution duration", unit="s"
        )

    def register_health_check(self, name: str, check_func: Callable[[], Any]) -> None:
        """Register ``check_func`` (sync or async, no arguments) under ``name``."""
        if not callable(check_func):
            msg = f"health check {name!r} must be a callable taking no arguments; got {check_func!r}"
            raise ConfigurationError(msg)
        self.health_checks[name] = check_func
        self.logger.info(f"Health check registered: {name}", check_name=name)

    async def _call(self, check_func: Callable[[], Any]) -> Any:
        if inspect.iscoroutinefunction(check_func):
            coro = check_func()
        else:
            result = await asyncio.to_thread(check_func)
            coro = result if inspect.isawaitable(result) else None
            if coro is None:
                return result
        if self.timeout_s is None:
            return await coro
        return await asyncio.wait_for(coro, self.timeout_s)

    async def run_health_checks(self) -> dict[str, Any]:
        """Run every check and return ``{"healthy", "checks": {name: {...}}, "timestamp"}``."""
        overall_healthy = True
        results: dict[str, Any] = {}
        with self.tracer.start_span("health_checks") as span:
            span.set_attribute("check_count", len(self.health_checks))
            for check_name, check_func in self.health_checks.items():
                with self.tracer.start_span(f"health_check_{check_name}") as check_span:
                    check_span.set_attribute("check_name", check_name)
                    start_time = time.perf_counter()
                    try:
                        check_result = await self._call(check_func)
                        duration = time.perf_counter() - start_time
                        if isinstance(check_result, bool):
                            check_result = {"healthy": check_result}
                        elif not isinstance(check_result, dict):
                            msg = f"health check {check_name!r} returned {type(check_result).__name__}; expected a dict or bool"
                            raise TypeError(msg)
                        is_healthy = bool(check_result.get("healthy", False))
                        self.health_status_gauge.set(1 if is_healthy else 0, labels={"check": check_name})
                        self.health_check_duration.observe(duration, labels={"check": check_name})
                        overall_healthy = overall_healthy and is_healthy
                        results[check_name] = {
                            "healthy": is_healthy,
                            "duration": duration,
                            "details": check_result.get("details", {}),
                            "message": check_result.get("message", ""),
                        }
                        check_span.set_attributes({"healthy": is_healthy, "duration": duration})
                        if is_healthy:
                            check_span.set_status("OK")
                            self.logger.debug(
                                f"Health check completed: {check_name}",
                                check_name=check_name,
                                healthy=True,
                                duration=duration,
                            )
                        else:
                            check_span.set_status("ERROR", str(check_result.get("message", "unhealthy")))
                            self.logger.warning(
                                f"Health check unhealthy: {check_name}",
                                check_name=check_name,
                                healthy=False,
                                duration=duration,
                                message=str(check_result.get("message", "")),
                            )
                    except Exception as e:
                        duration = time.perf_counter() - start_time
                        overall_healthy = False
                        self.health_status_gauge.set(0, labels={"check": check_name})
                        self.health_check_duration.observe(duration, labels={"check": check_name})
                        error = "timed out" if isinstance(e, TimeoutError) else str(e)
                        results[check_name] = {
                            "healthy": False,
                            "duration": duration,
                            "error": error,
                            "error_type": type(e).__name__,
                        }
                        check_span.set_attributes({"healthy": False, "duration": duration})
                        check_span.record_exception(e)
                        check_span.set_status("ERROR", error)
                        self.logger.error(
                            f"Health check failed: {check_name}",
                            check_name=check_name,
                            error_type=type(e).__name__,
                            error_message=error,
                        )
            self.health_status_gauge.set(1 if overall_healthy else 0, labels={"check": "overall"})
            span.set_attribute("overall_healthy", overall_healthy)
            if not overall_healthy:
                span.set_status("ERROR", "one or more health checks failed")
        return {"healthy": overall_healthy, "checks": results, "timestamp": time.time()}

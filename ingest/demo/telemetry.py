"""The demo's telemetry set-up: provider config per service, rolling gauges, health loops, alert rules.

Every service gets its own :class:`~ingest.sdk.provider.ObservabilityProvider` (its own ``service.name``)
writing to the same store, configured the way a user would for a short-lived job: no console logs,
short export intervals so the run's minute of wall-clock time still gives a metric point per second.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ingest.sdk.alerts import AlertSeverity

#: Version of each demo service (resource attribute ``service.version``).
VERSIONS = {"gateway": "1.8.2", "orchestrator": "2.4.0", "tool-service": "0.9.7"}


def provider_config(
    store: str, service: str, *, seed: int, time_scale: float, metric_interval_s: float
) -> dict[str, Any]:
    """The ObservabilityProvider config of one demo service."""
    return {
        "store": {"path": store, "durable": False},
        "logging": {"output": "none", "level": "INFO", "schedule_delay_millis": 2000},
        "tracing": {"sampling_rate": 1.0, "schedule_delay_millis": 2000},
        "metrics": {"export_interval": metric_interval_s},
        "integrations": {"global_providers": False},
        "resource": {
            "service.version": VERSIONS.get(service, "1.0.0"),
            "service.namespace": "langswarm-demo",
            "deployment.environment.name": "demo",
            "langswarm.demo.seed": seed,
            "langswarm.demo.time_scale": time_scale,
        },
    }


class Rolling:
    """Observations of the last ``max_age_s`` seconds (thread-safe): the windows behind the alerting gauges.

    A time window, like a monitoring query's ``[1m]``. With fewer than ``min_count`` observations the
    summaries are 0 (not enough data), as alert rules with a minimum sample size do: when traffic stops
    the gauges fall back to 0, so an alert resolves once the slow or failing calls have aged out.
    """

    def __init__(self, max_age_s: float, *, min_count: int = 8, max_size: int = 20_000) -> None:
        self.max_age_s = max_age_s
        self.min_count = min_count
        self._values: deque[tuple[float, float]] = deque(maxlen=max_size)
        self._lock = threading.Lock()

    def add(self, value: float) -> None:
        """Record one observation now."""
        with self._lock:
            self._values.append((time.monotonic(), float(value)))

    def _live(self) -> list[float]:
        cutoff = time.monotonic() - self.max_age_s
        with self._lock:
            while self._values and self._values[0][0] < cutoff:
                self._values.popleft()
            return [v for _, v in self._values]

    def quantile(self, q: float) -> float:
        """Nearest-rank quantile of the window (0.0 when empty)."""
        values = sorted(self._live())
        if len(values) < self.min_count:
            return 0.0
        return values[min(len(values) - 1, int(q * len(values)))]

    def mean(self) -> float:
        """Mean of the window (0.0 when empty)."""
        values = self._live()
        return sum(values) / len(values) if len(values) >= self.min_count else 0.0


class Ticker:
    """Calls every registered function every ``interval_s`` seconds on one daemon thread (gauge refreshes)."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.callbacks: list[Callable[[], None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-gauges", daemon=True)

    def add(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` on every tick."""
        self.callbacks.append(callback)

    def tick(self) -> None:
        """Call every callback now."""
        for callback in self.callbacks:
            callback()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.tick()

    def start(self) -> None:
        self.tick()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.tick()


class HealthLoop:
    """Runs a HealthCheckManager every ``interval_s`` seconds on a thread with its own event loop."""

    def __init__(self, manager: Any, interval_s: float, name: str) -> None:
        self.manager = manager
        self.interval_s = interval_s
        self._stop = threading.Event()
        self.runs = 0
        self.last: dict[str, Any] | None = None
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._run()), name=f"health-{name}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    async def _run(self) -> None:
        while not self._stop.is_set():
            self.last = await self.manager.run_health_checks()
            self.runs += 1
            await asyncio.to_thread(self._stop.wait, self.interval_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@dataclass(frozen=True)
class Rule:
    """One alert threshold of a demo service (``threshold`` in the metric's unit, real seconds for latency)."""

    service: str
    metric_name: str
    threshold: float
    severity: AlertSeverity
    labels: dict[str, str] | None = None


def alert_rules(time_scale: float) -> list[Rule]:
    """The thresholds the demo's AlertManagers watch; latency thresholds follow the time scale."""
    return [
        Rule(
            "orchestrator",
            "llm_latency_p95_seconds",
            round(18.0 * time_scale, 6),
            AlertSeverity.ERROR,
            {"gen_ai.system": "openai"},
        ),
        Rule("orchestrator", "tool_error_ratio", 0.3, AlertSeverity.ERROR, {"tool": "web_search"}),
        Rule("orchestrator", "agent_queue_depth", 12, AlertSeverity.WARNING),
        Rule("gateway", "gateway_error_ratio", 0.08, AlertSeverity.CRITICAL),
        Rule("tool-service", "upstream_error_ratio", 0.3, AlertSeverity.WARNING, {"upstream": "search-api"}),
    ]


def collect_alerts(sink: list[Any], echo: Callable[[str], None] | None) -> Callable[[Any], None]:
    """An alert handler appending every transition to ``sink`` (and printing it when ``echo`` is set)."""
    lock = threading.Lock()

    def handler(alert: Any) -> None:
        with lock:
            sink.append(alert)
        if echo is not None:
            echo(
                f"  alert {alert.state:<8} [{alert.severity.value}] {alert.service_name}: {alert.description}"
            )

    return handler

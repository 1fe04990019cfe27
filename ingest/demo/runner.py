"""Run the demo: start the three services, send the scenario's requests, watch alerts and health, flush.

All three services run in this process, each on its own ``127.0.0.1`` port and with its own
ObservabilityProvider, so the store gets three ``service.name`` values and traces that cross them.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.demo.gateway import Gateway
from ingest.demo.orchestrator import Orchestrator
from ingest.demo.scenario import DEFAULT_TIME_SCALE, WINDOW_S, Scenario, scale_requests
from ingest.demo.telemetry import HealthLoop, Ticker, alert_rules, collect_alerts, provider_config
from ingest.demo.tools import ToolService
from ingest.demo.web import FAULT_KEY_HEADER, HttpClient, Server
from ingest.errors import ConfigurationError
from ingest.sdk.alerts import AlertManager
from ingest.sdk.health import HealthCheckManager
from ingest.sdk.provider import ObservabilityProvider
from ingest.sdk.resource_monitor import ResourceMonitor
from ingest.store.writer import resolve_store_path

SERVICES = ("gateway", "orchestrator", "tool-service")


@dataclass
class DemoResult:
    """What a run did: requests by HTTP status, alert transitions, wall time, the store."""

    store: Path
    seed: int
    requests: int
    statuses: Counter[int] = field(default_factory=Counter)
    alerts: list[Any] = field(default_factory=list)
    health_runs: int = 0
    wall_s: float = 0.0
    time_scale: float = DEFAULT_TIME_SCALE

    def summary(self) -> str:
        """A few lines for the terminal."""
        statuses = ", ".join(f"{code}: {n}" for code, n in sorted(self.statuses.items()))
        fired = sum(1 for a in self.alerts if a.state == "firing")
        resolved = sum(1 for a in self.alerts if a.state == "resolved")
        return (
            f"demo: {self.requests} requests (seed {self.seed}, time scale 1:{1 / self.time_scale:g}) in "
            f"{self.wall_s:.1f}s -> {statuses}\n"
            f"      alerts: {fired} fired, {resolved} resolved; health-check rounds: {self.health_runs}\n"
            f"      store: {self.store}  (explore: streamlit run explorer -- --store {self.store})"
        )


def run_demo(
    store: str | Path | None = None,
    *,
    seed: int = 7,
    scale: str | int = "small",
    time_scale: float = DEFAULT_TIME_SCALE,
    rate: float | None = None,
    echo: Callable[[str], None] | None = None,
) -> DemoResult:
    """Run the simulated multi-agent application against ``store`` and return what happened."""
    if not 0.0 < time_scale <= 1.0:
        msg = f"time_scale must be in (0, 1] (real seconds per modelled second), got {time_scale!r}"
        raise ConfigurationError(msg)
    if rate is not None and not rate > 0:
        msg = f"rate must be a positive number of requests per second, got {rate!r}"
        raise ConfigurationError(msg)
    scenario = Scenario(seed, scale_requests(scale), time_scale=time_scale)
    root = resolve_store_path(store)
    root.mkdir(parents=True, exist_ok=True)
    rate = rate or scenario.default_rate
    say = echo or (lambda line: None)
    result = DemoResult(root, seed, scenario.requests, time_scale=time_scale)
    metric_interval = 1.0 if scenario.requests >= 400 else 0.5
    providers: dict[str, ObservabilityProvider] = {}
    # Many threads each hand the GIL on at every HTTP hop; the default 5 ms switch interval would add
    # tens of milliseconds of pure waiting to every local call.
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    started = time.perf_counter()
    servers: list[Server] = []
    loops: list[HealthLoop] = []
    managers: list[AlertManager] = []
    monitor: ResourceMonitor | None = None
    profilers: list[Any] = []
    ticker = Ticker(0.1)
    try:
        for name in SERVICES:
            config = provider_config(
                str(root), name, seed=seed, time_scale=time_scale, metric_interval_s=metric_interval
            )
            providers[name] = ObservabilityProvider.create(config, name)
        # System-wide CPU includes every other process on the machine: gauges only, no warnings.
        monitor = ResourceMonitor(providers["orchestrator"], cpu_threshold=100.0, memory_threshold=95.0)
        tools = ToolService(providers["tool-service"], scenario)
        servers.append(Server("tool-service", tools.app(), providers["tool-service"]))
        orchestrator = Orchestrator(providers["orchestrator"], scenario, servers[0].url)
        servers.append(Server("orchestrator", orchestrator.app(), providers["orchestrator"]))
        gateway = Gateway(providers["gateway"], scenario, servers[1].url)
        servers.append(Server("gateway", gateway.app(), providers["gateway"]))
        profilers = [tools.profiler, orchestrator.profiler]
        say(
            f"demo: services up — gateway {servers[2].url}, orchestrator {servers[1].url}, tools {servers[0].url}"
        )

        _warm_up(providers)
        for service in (tools, orchestrator, gateway):
            ticker.add(service.refresh)
        ticker.start()
        loops = _health_loops(
            providers, scenario, servers, orchestrator, tools, interval_s=max(0.5, metric_interval)
        )
        managers = _alert_managers(providers, scenario, result.alerts, echo)
        for loop in loops:
            loop.start()
        for manager in managers:
            manager.start(interval_s=0.25)
        monitor.start(interval_s=metric_interval)

        say(
            f"demo: sending {scenario.requests} requests at ~{rate:g}/s (incident between "
            f"{scenario.slow_llm[0]:.0%} and {scenario.tool_outage[1]:.0%} of them)"
        )
        result.statuses = _drive(servers[2].url, scenario, rate)
        say(f"demo: all answered; cooling down for {scenario.real(WINDOW_S):.1f}s so the alert windows drain")
        time.sleep(scenario.real(WINDOW_S) + 0.5)
    finally:
        ticker.stop()
        for manager in managers:
            manager.stop()
        for loop in loops:
            loop.stop()
            result.health_runs += loop.runs
        if monitor is not None:
            monitor.stop()
        for server in servers:
            server.stop()
        for manager in managers:  # a last look, once the windows are back to normal
            _final_check(manager)
        for profiler in profilers:
            profiler.shutdown()
        for provider in providers.values():
            provider.shutdown()
        sys.setswitchinterval(switch_interval)
    result.wall_s = time.perf_counter() - started
    return result


def _warm_up(providers: dict[str, Any]) -> None:
    """Write one span, log and metric point per service before the load starts.

    The first export of each signal imports and initialises the Parquet writing path; done under load,
    that stalls every thread for a few hundred milliseconds and times out calls that should not.
    """
    for name, provider in providers.items():
        with provider.get_tracer("demo").start_span("demo.startup", {"langswarm.demo.service": name}):
            provider.get_logger("demo").info("Service starting", service=name)
        provider.force_flush()


def _drive(gateway_url: str, scenario: Scenario, rate: float) -> Counter[int]:
    """Send every request on a seeded Poisson schedule (open loop) and wait for all answers."""
    arrivals = scenario.rng("arrivals")
    schedule = []
    t = 0.0
    for _ in range(scenario.requests):
        t += arrivals.expovariate(rate)
        schedule.append(t)

    def send(index: int) -> int:
        plan = scenario.request(index)
        body = json.dumps(
            {
                "question": plan.question,
                "user_id": plan.user_id,
                "session_id": plan.session_id,
                "tenant": plan.tenant,
            }
        ).encode()
        headers = {
            "content-type": "application/json",
            "authorization": f"Bearer sk-{plan.tenant}-{'valid' if plan.api_key_valid else 'revoked'}",
            "user-agent": "langswarm-demo-client/1.0",
            "x-correlation-id": plan.request_id,
            FAULT_KEY_HEADER: str(index),
        }
        request = urllib.request.Request(f"{gateway_url}/v1/chat", data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=120) as reply:
                reply.read()
                return int(reply.status)
        except urllib.error.HTTPError as exc:
            exc.read()
            return int(exc.code)
        except (urllib.error.URLError, OSError):
            return 0

    statuses: Counter[int] = Counter()
    with ThreadPoolExecutor(max_workers=min(400, scenario.requests), thread_name_prefix="demo-user") as pool:
        futures = []
        start = time.monotonic()
        for index, at in enumerate(schedule):
            delay = start + at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(send, index))
        for future in futures:
            statuses[future.result()] += 1
    return statuses


def _health_loops(
    providers: dict[str, Any],
    scenario: Scenario,
    servers: list[Server],
    orchestrator: Orchestrator,
    tools: ToolService,
    *,
    interval_s: float,
) -> list[HealthLoop]:
    """One HealthCheckManager per service, each checking what that service depends on."""
    tool_url, orchestrator_url = servers[0].url, servers[1].url
    p95_limit = next(
        r.threshold for r in alert_rules(scenario.time_scale) if r.metric_name == "llm_latency_p95_seconds"
    )

    def http_check(provider: ObservabilityProvider, url: str) -> Callable[[], dict[str, Any]]:
        client = HttpClient(provider, "health_client")

        def check() -> dict[str, Any]:
            client.call("GET", url, "/health", timeout_s=2.0)
            return {"healthy": True, "message": f"{url} answered"}

        return check

    def llm_check(system: str) -> Callable[[], dict[str, Any]]:
        def check() -> dict[str, Any]:
            p95 = orchestrator.llm.p95_of(system)
            healthy = p95 <= p95_limit
            return {
                "healthy": healthy,
                "details": {"p95_s": p95},
                "message": f"{system} p95 {p95:.3f}s "
                + ("within" if healthy else "above")
                + f" {p95_limit:.3f}s",
            }

        return check

    def queue_check() -> dict[str, Any]:
        depth = orchestrator.waiting
        return {
            "healthy": depth <= 12,
            "details": {"queue_depth": depth},
            "message": f"{depth} requests waiting",
        }

    def search_check() -> dict[str, Any]:
        ratio = tools.search_window.mean()
        return {
            "healthy": ratio <= 0.3,
            "details": {"error_ratio": ratio},
            "message": f"search API error ratio {ratio:.0%}",
        }

    checks = {
        "gateway": {"orchestrator": http_check(providers["gateway"], orchestrator_url)},
        "orchestrator": {
            "tool_service": http_check(providers["orchestrator"], tool_url),
            "llm_openai": llm_check("openai"),
            "llm_anthropic": llm_check("anthropic"),
            "agent_queue": queue_check,
        },
        "tool-service": {"search_api": search_check},
    }
    loops = []
    for service, service_checks in checks.items():
        manager = HealthCheckManager(providers[service], timeout_s=5.0)
        for name, check in service_checks.items():
            manager.register_health_check(name, check)
        loops.append(HealthLoop(manager, interval_s, service))
    return loops


def _alert_managers(
    providers: dict[str, Any], scenario: Scenario, sink: list[Any], echo: Callable[[str], None] | None
) -> list[AlertManager]:
    managers: dict[str, AlertManager] = {}
    handler = collect_alerts(sink, echo)
    for rule in alert_rules(scenario.time_scale):
        manager = managers.get(rule.service)
        if manager is None:
            manager = managers[rule.service] = AlertManager(providers[rule.service], component=rule.service)
            manager.add_alert_handler(handler)
        manager.add_threshold(rule.metric_name, rule.threshold, rule.severity, "greater", rule.labels)
    return list(managers.values())


def _final_check(manager: AlertManager) -> None:
    asyncio.run(manager.check_metrics_and_alert())

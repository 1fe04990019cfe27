"""The tool service: ``web_search`` (over an upstream search API), ``vector_search`` and ``calculator``.

``POST /tools/<name>`` with ``{"query": ...}``; answers ``{"results": [...]}``. Each call's fate comes
from the scenario (key in the ``x-demo-fault-key`` header). During the incident the upstream search
API answers 502 to most calls and hangs on some; the service then answers 502, or 504 after its own
24 s upstream timeout — long after the orchestrator's 8 s client timeout gave up.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ingest.demo import textwork
from ingest.demo.scenario import WINDOW_S, Scenario
from ingest.demo.telemetry import Rolling
from ingest.demo.web import FAULT_KEY_HEADER, JsonApp, Request, Response
from ingest.sdk.profiler import PerformanceProfiler

if TYPE_CHECKING:
    from ingest.sdk.provider import ObservabilityProvider


class ToolService:
    """The tool service (see the module docstring)."""

    def __init__(self, provider: ObservabilityProvider, scenario: Scenario) -> None:
        self.scenario = scenario
        self.tracer = provider.get_tracer("tools")
        self.logger = provider.get_logger("tools")
        metrics = provider.get_metrics("tools")
        self.executions = metrics.create_counter(
            "tool_executions_total", "Tool executions by tool and status"
        )
        self.duration = metrics.create_histogram(
            "tool_execution_duration_seconds",
            "Tool execution time",
            "s",
            buckets=[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0],
        )
        self.upstream_errors = metrics.create_gauge(
            "upstream_error_ratio", "Share of failed calls to each upstream API over the last modelled minute"
        )
        self.search_window = Rolling(scenario.real(WINDOW_S))
        self.profiler = PerformanceProfiler(
            provider, rng=scenario.rng("profiler", "tools"), flush_interval_s=2.0
        )
        self._rank = self.profiler.profile_operation("rank_results", sample_rate=0.25)(textwork.rank_results)

    def refresh(self) -> None:
        """Set the upstream error-ratio gauge from its window (called by the demo's ticker)."""
        self.upstream_errors.set(round(self.search_window.mean(), 4), {"upstream": "search-api"})

    def app(self) -> JsonApp:
        """The service's routes: ``POST /tools/<name>`` for each tool and ``GET /health``."""
        return JsonApp(
            {
                ("POST", "/tools/web_search"): lambda req: self._run("web_search", req),
                ("POST", "/tools/vector_search"): lambda req: self._run("vector_search", req),
                ("POST", "/tools/calculator"): lambda req: self._run("calculator", req),
                ("GET", "/health"): lambda req: Response(200, {"status": "ok"}),
            }
        )

    def _run(self, tool: str, request: Request) -> Response:
        started = time.perf_counter()
        try:
            index, step, attempt = (int(part) for part in request.headers[FAULT_KEY_HEADER].split("/"))
            query = str((request.body or {})["query"])
        except (KeyError, ValueError, TypeError) as exc:
            return Response(400, {"error": f"bad tool request: {exc!r}"})
        outcome = self.scenario.tool(index, step, attempt, tool)
        span = self.tracer.get_current_span()
        span.set_attributes({"gen_ai.tool.name": tool, "langswarm.tool.attempt": attempt})
        handler = {"web_search": self._web_search, "vector_search": self._vector_search}.get(
            tool, self._calculator
        )
        response = handler(index, step, query, outcome)
        self.executions.increment(labels={"tool": tool, "status": str(response.status)})
        self.duration.observe(time.perf_counter() - started, {"tool": tool})
        return response

    def _web_search(self, index: int, step: int, query: str, outcome: Any) -> Response:
        s = self.scenario
        attributes = {
            "server.address": "api.search.example.com",
            "server.port": 443,
            "http.request.method": "GET",
            "url.template": "/v2/search",
            "langswarm.upstream": "search-api",
        }
        with self.tracer.start_span("GET /v2/search", attributes, kind="client") as span:
            if outcome.hangs:
                time.sleep(s.real(outcome.latency_s))
                self.search_window.add(1.0)
                span.set_attribute("error.type", "timeout")
                span.set_status("ERROR", "search API did not answer within 24s")
                self.logger.error(
                    "Search API timed out", upstream="search-api", timeout_s=24, query=query[:80]
                )
                return Response(504, {"error": outcome.error})
            for latency in outcome.upstream_latencies_s or (outcome.latency_s,):
                time.sleep(s.real(latency))
            if outcome.status >= 500:
                self.search_window.add(1.0)
                upstream_status = 429 if outcome.status == 503 else 502
                span.set_attributes(
                    {"http.response.status_code": upstream_status, "error.type": str(upstream_status)}
                )
                span.set_status("ERROR", outcome.error)
                self.logger.error(
                    "Search API call failed",
                    upstream="search-api",
                    upstream_status=upstream_status,
                    error=outcome.error,
                )
                return Response(outcome.status, {"error": outcome.error})
            span.set_attribute("http.response.status_code", 200)
        self.search_window.add(0.0)
        results = textwork.snippets(s.rng("results", index, step), outcome.results)
        ranked = self._rank(query, results)
        return Response(200, {"results": ranked[:3]})

    def _vector_search(self, index: int, step: int, query: str, outcome: Any) -> Response:
        s = self.scenario
        attributes = {
            "db.system.name": "qdrant",
            "db.operation.name": "search",
            "db.collection.name": "kb_chunks",
            "server.address": "qdrant.internal",
            "server.port": 6333,
        }
        with self.tracer.start_span("search kb_chunks", attributes, kind="client") as span:
            time.sleep(s.real(outcome.latency_s))
            if outcome.status >= 500:
                span.set_status("ERROR", outcome.error)
                self.logger.error("Vector index search failed", collection="kb_chunks", error=outcome.error)
                return Response(outcome.status, {"error": outcome.error})
            span.set_attribute("db.response.returned_rows", outcome.results)
        results = textwork.snippets(s.rng("results", index, step), outcome.results)
        ranked = self._rank(query, results)
        return Response(200, {"results": ranked[:3]})

    def _calculator(self, index: int, step: int, query: str, outcome: Any) -> Response:
        with self.tracer.start_span("calculator.eval", {"langswarm.expression.length": len(query)}):
            time.sleep(self.scenario.real(outcome.latency_s))
            if outcome.status != 200:
                self.logger.warning("Calculator rejected the expression", error=outcome.error)
                return Response(outcome.status, {"error": outcome.error})
        return Response(
            200, {"results": [{"title": "Result", "url": "calc://result", "text": f"{query} = 42"}]}
        )

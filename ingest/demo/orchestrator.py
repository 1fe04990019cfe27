"""The orchestrator service: an agent pool running orchestrator → planner → researcher → writer.

``POST /agents/run`` waits for a free agent slot (``agent_queue_depth``), then runs the orchestrator
agent, which looks up the user's memory, asks the planner for a plan, lets the researcher call tools on
the tool service over HTTP (retries with backoff, timeouts) and summarise with an LLM, and has the
writer compose the answer. LLM timeouts fall back to another provider's model; a request with half or
more of its research steps failed answers 502, one whose model and fallback both timed out answers 504.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from ingest.demo import content, textwork
from ingest.demo.llm import LLMClient, LLMTimeout
from ingest.demo.scenario import (
    AGENT_MODELS,
    MODELS,
    TOOL_ATTEMPTS,
    TOOL_TIMEOUT_S,
    TOOLS,
    WINDOW_S,
    RequestPlan,
    Scenario,
    Step,
)
from ingest.demo.telemetry import Rolling
from ingest.demo.web import FAULT_KEY_HEADER, CallError, HttpClient, JsonApp, Request, Response
from ingest.sdk.components import ObservableComponent
from ingest.sdk.profiler import PerformanceProfiler

if TYPE_CHECKING:
    from ingest.sdk.provider import ObservabilityProvider


class ToolFailed(Exception):
    """A tool call failed for good (not retryable, or out of attempts)."""


class ResearchFailed(Exception):
    """Half or more of a request's research steps failed: too little to ground an answer on."""


class MemoryStore(ObservableComponent):
    """Conversation and user-profile memory (a key-value store) and a semantic index, as one component."""

    def __init__(self, provider: ObservabilityProvider, scenario: Scenario) -> None:
        super().__init__("memory", provider)
        self.scenario = scenario
        self._data: dict[str, str] = {}
        self._lock = threading.Lock()
        self.lookups = self.metrics.create_counter(
            "memory_lookups_total", "Memory look-ups by kind and result"
        )

    @ObservableComponent.observe_operation("lookup")
    def lookup(self, plan: RequestPlan) -> bool:
        """The user's profile and the session's recent turns; True on a hit."""
        span = self.tracer.get_current_span()
        hit = plan.index % 7 != 0 and int(plan.user_id[-3:]) % 4 != 0
        span.set_attributes(
            {
                "db.system.name": "redis",
                "db.operation.name": "MGET",
                "db.namespace": "memory",
                "langswarm.memory.hit": hit,
            }
        )
        time.sleep(self.scenario.real(self.scenario.memory_latency(plan.index, "lookup")))
        self.lookups.increment(labels={"kind": "profile", "result": "hit" if hit else "miss"})
        return hit

    @ObservableComponent.observe_operation("semantic_search")
    def semantic_search(self, plan: RequestPlan) -> int:
        """Past answers similar to the question (vector search); returns how many were found."""
        found = self.scenario.rng("semantic", plan.index).randint(0, 5)
        self.tracer.get_current_span().set_attributes(
            {
                "db.system.name": "qdrant",
                "db.operation.name": "search",
                "db.collection.name": "answers",
                "langswarm.memory.results": found,
            }
        )
        time.sleep(self.scenario.real(self.scenario.memory_latency(plan.index, "semantic")))
        self.lookups.increment(labels={"kind": "semantic", "result": "hit" if found else "miss"})
        return found

    @ObservableComponent.observe_operation("store")
    def store(self, plan: RequestPlan, answer: str) -> None:
        """Append the turn to the session's history."""
        self.tracer.get_current_span().set_attributes({"db.system.name": "redis", "db.operation.name": "SET"})
        time.sleep(self.scenario.real(self.scenario.memory_latency(plan.index, "store")))
        with self._lock:
            self._data[plan.session_id] = answer[-2000:]


class Orchestrator:
    """The agent service (see the module docstring)."""

    def __init__(
        self, provider: ObservabilityProvider, scenario: Scenario, tool_url: str, *, workers: int = 48
    ) -> None:
        self.scenario = scenario
        self.tool_url = tool_url
        self.tracer = provider.get_tracer("orchestrator")
        self.logger = provider.get_logger("orchestrator")
        self.metrics = provider.get_metrics("orchestrator")
        self.http = HttpClient(provider, "tool_client")
        self.llm = LLMClient(provider, scenario)
        self.memory = MemoryStore(provider, scenario)
        self.profiler = PerformanceProfiler(
            provider, rng=scenario.rng("profiler", "orchestrator"), flush_interval_s=2.0
        )
        self._compose = self.profiler.profile_operation("compose_answer", detailed=True, sample_rate=0.2)(
            textwork.compose_answer
        )
        self._parse_plan = self.profiler.profile_operation("parse_plan", sample_rate=0.1)(textwork.parse_plan)
        self._slots = threading.Semaphore(workers)
        self._queue_lock = threading.Lock()
        self.waiting = 0
        self.running = 0
        self.queue_depth = self.metrics.create_gauge(
            "agent_queue_depth", "Requests waiting for an agent slot"
        )
        self.active = self.metrics.create_gauge("agent_active_runs", "Requests being worked on by agents")
        self.runs = self.metrics.create_counter("agent_runs_total", "Agent invocations by agent and outcome")
        self.run_duration = self.metrics.create_histogram(
            "agent_run_duration_seconds",
            "Agent invocation duration",
            "s",
            buckets=[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
        )
        self.tool_calls = self.metrics.create_counter(
            "tool_calls_total", "Tool call attempts by tool and outcome"
        )
        self.retries = self.metrics.create_counter("tool_retries_total", "Tool call retries by tool")
        self.tool_error_ratio = self.metrics.create_gauge(
            "tool_error_ratio",
            "Share of failed attempts among each tool's calls over the last modelled minute",
        )
        self._avoid: dict[int, set[str]] = {}
        self._avoid_lock = threading.Lock()
        self._tool_windows = {tool: Rolling(scenario.real(WINDOW_S)) for tool in TOOLS}

    def app(self) -> JsonApp:
        """The service's routes: ``POST /agents/run`` and ``GET /health``."""
        return JsonApp(
            {
                ("POST", "/agents/run"): self.run,
                ("GET", "/health"): lambda req: Response(200, {"status": "ok"}),
            }
        )

    # -- the request --------------------------------------------------------------------------------------
    def run(self, request: Request) -> Response:
        """``POST /agents/run``: wait for an agent slot, then run the agents; 502/504 when they fail."""
        index = int(request.headers[FAULT_KEY_HEADER])
        plan = self.scenario.request(index)
        self._wait_for_slot()
        try:
            answer = self.orchestrate(plan)
            return Response(200, answer)
        except ResearchFailed as exc:
            return Response(502, {"error": str(exc)})
        except LLMTimeout as exc:
            return Response(504, {"error": str(exc)})
        finally:
            with self._avoid_lock:
                self._avoid.pop(index, None)
            with self._queue_lock:
                self.running -= 1
                self.active.set(self.running)
            self._slots.release()

    def _wait_for_slot(self) -> None:
        with self.tracer.start_span("agent.queue_wait") as span:
            with self._queue_lock:
                self.waiting += 1
                span.set_attribute("langswarm.queue.depth_on_arrival", self.waiting - 1)
                self.queue_depth.set(self.waiting)
            self._slots.acquire()
            with self._queue_lock:
                self.waiting -= 1
                self.running += 1
                self.queue_depth.set(self.waiting)
                self.active.set(self.running)

    def orchestrate(self, plan: RequestPlan) -> dict[str, Any]:
        """The orchestrator agent: memory, plan, research, write, remember."""
        attributes = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "orchestrator",
            "enduser.id": plan.user_id,
            "session.id": plan.session_id,
            "gen_ai.conversation.id": plan.session_id,
            "langswarm.tenant": plan.tenant,
            "langswarm.request.mode": plan.mode,
            "langswarm.request.topic": plan.topic,
        }
        with self._agent("orchestrator", attributes) as span:
            self.logger.info("Agent run started", mode=plan.mode, topic=plan.topic, user=plan.user_id)
            self.memory.lookup(plan)
            steps = self.planner(plan)
            findings = self.researcher(plan, steps) if plan.mode == "research" else []
            result = self.writer(plan, findings)
            self.memory.store(plan, str(result["answer"]))
            span.set_attributes(
                {
                    "langswarm.answer.citations": result["citations"],
                    "langswarm.answer.tokens": result["answer_tokens"],
                }
            )
            self.logger.info("Agent run completed", citations=result["citations"], mode=plan.mode)
            return {
                "answer": result["answer"],
                "citations": result["citations"],
                "degraded": result["degraded"],
            }

    def _agent(self, name: str, attributes: dict[str, Any] | None = None) -> Any:
        return _AgentRun(
            self, name, attributes or {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": name}
        )

    def chat(self, plan: RequestPlan, agent: str, step: int) -> Any:
        """An agent's LLM call, falling back to the agent's second model after a timeout.

        A provider that timed out once is skipped for the rest of the request (sticky fallback).
        """
        model, fallback, max_tokens, temperature = AGENT_MODELS[agent]
        tokens = self.scenario.prompt_tokens(plan.index, agent, step)
        with self._avoid_lock:
            avoid = set(self._avoid.get(plan.index, ()))
        if MODELS[model].system in avoid:
            return self.llm.chat(
                plan.index,
                f"{agent}:{step}:fallback",
                agent,
                fallback,
                input_tokens=tokens,
                max_tokens=max_tokens,
                temperature=temperature,
                fallback_from=model,
                conversation_id=plan.session_id,
            )
        try:
            return self.llm.chat(
                plan.index,
                f"{agent}:{step}",
                agent,
                model,
                input_tokens=tokens,
                max_tokens=max_tokens,
                temperature=temperature,
                conversation_id=plan.session_id,
            )
        except LLMTimeout as exc:
            with self._avoid_lock:
                self._avoid.setdefault(plan.index, set()).add(MODELS[model].system)
            self.logger.warning(
                "LLM call timed out; falling back to another model",
                agent=agent,
                model=model,
                fallback_model=fallback,
                error=str(exc),
            )
            return self.llm.chat(
                plan.index,
                f"{agent}:{step}:fallback",
                agent,
                fallback,
                input_tokens=tokens,
                max_tokens=max_tokens,
                temperature=temperature,
                fallback_from=model,
                conversation_id=plan.session_id,
            )

    # -- the agents ---------------------------------------------------------------------------------------
    def planner(self, plan: RequestPlan) -> list[dict[str, object]]:
        """The planner agent: one LLM call, then the (profiled) parsing of its JSON plan."""
        with self._agent("planner"):
            self.chat(plan, "planner", 0)
            raw = textwork.plan_json(
                self.scenario.rng("plan", plan.index), [s.tool for s in plan.steps], plan.question
            )
            steps = self._parse_plan(raw)
            self.logger.info("Plan created", steps=len(steps), tools=[s.tool for s in plan.steps])
            return steps

    def researcher(self, plan: RequestPlan, steps: list[dict[str, object]]) -> list[dict[str, Any]]:
        """The researcher agent: a tool call and an LLM summary per step; fails when half the steps fail."""
        with self._agent("researcher") as span:
            self.memory.semantic_search(plan)
            findings: list[dict[str, Any]] = []
            failed: list[str] = []
            for step in plan.steps:
                try:
                    findings.extend(self.execute_tool(plan, step))
                except ToolFailed as exc:
                    failed.append(f"{step.tool}: {exc}")
                    self.logger.error("Research step failed", tool=step.tool, step=step.index, error=str(exc))
                    continue
                self.chat(plan, "researcher", step.index)
            span.set_attributes(
                {"langswarm.research.steps": len(plan.steps), "langswarm.research.failed_steps": len(failed)}
            )
            if failed and 2 * len(failed) >= len(plan.steps):
                msg = f"{len(failed)} of {len(plan.steps)} research steps failed; last: {failed[-1]}"
                raise ResearchFailed(msg)
            if failed:
                self.logger.warning(
                    "Answering with partial research", failed_steps=len(failed), steps=len(plan.steps)
                )
            return findings

    def writer(self, plan: RequestPlan, findings: list[dict[str, Any]]) -> dict[str, Any]:
        """The writer agent: one LLM call, then the (profiled) composition of the answer."""
        with self._agent("writer"):
            self.chat(plan, "writer", 0)
            r = self.scenario.rng("writer", plan.index)
            paragraphs = [
                " ".join(textwork.sentence(r, r.randint(10, 18)) for _ in range(3)) for _ in range(4)
            ]
            citations = (findings or textwork.snippets(r, 3))[:6]
            result = self._compose(plan.question, paragraphs, citations)
            result["degraded"] = plan.mode == "research" and len(findings) == 0
            return result

    def execute_tool(self, plan: RequestPlan, step: Step) -> list[dict[str, Any]]:
        """Call a tool on the tool service: up to TOOL_ATTEMPTS attempts with exponential backoff."""
        s = self.scenario
        attributes = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": step.tool,
            "gen_ai.tool.type": "function",
            "gen_ai.tool.call.id": content.call_id(plan.index, step.index),
            **content.tool_arguments(s, plan.index, step.index),
        }
        with self.tracer.start_span(f"execute_tool {step.tool}", attributes) as span:
            for attempt in range(1, TOOL_ATTEMPTS + 1):
                try:
                    reply = self.http.call(
                        "POST",
                        self.tool_url,
                        f"/tools/{step.tool}",
                        {"query": step.query},
                        timeout_s=s.real(TOOL_TIMEOUT_S),
                        headers={FAULT_KEY_HEADER: f"{plan.index}/{step.index}/{attempt}"},
                        attributes={"http.request.resend_count": attempt - 1} if attempt > 1 else None,
                    )
                except CallError as exc:
                    outcome = "timeout" if exc.timeout else f"http_{exc.status}"
                    self._tool_outcome(step.tool, outcome)
                    if not exc.retryable or attempt == TOOL_ATTEMPTS:
                        span.set_attribute("langswarm.tool.attempts", attempt)
                        reason = "not retryable" if not exc.retryable else f"gave up after {attempt} attempts"
                        raise ToolFailed(f"{reason}: {exc}") from exc
                    backoff = s.backoff(plan.index, step.index, attempt)
                    span.add_event(
                        "retry",
                        {"attempt": attempt, "backoff_s": round(s.real(backoff), 4), "error": str(exc)},
                    )
                    self.retries.increment(labels={"tool": step.tool})
                    self.logger.warning(
                        "Tool call failed; retrying",
                        tool=step.tool,
                        attempt=attempt,
                        backoff_s=round(s.real(backoff), 4),
                        error=str(exc),
                    )
                    time.sleep(s.real(backoff))
                    continue
                self._tool_outcome(step.tool, "ok")
                results = list(reply.get("results", []))
                span.set_attributes(
                    {"langswarm.tool.attempts": attempt, "langswarm.tool.results": len(results)}
                )
                return results
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _tool_outcome(self, tool: str, outcome: str) -> None:
        self._tool_windows[tool].add(0.0 if outcome == "ok" else 1.0)
        self.tool_calls.increment(labels={"tool": tool, "outcome": outcome})

    def refresh(self) -> None:
        """Set the windowed gauges (tool error ratios, LLM p95) — called by the demo's ticker."""
        for tool, window in self._tool_windows.items():
            self.tool_error_ratio.set(round(window.mean(), 4), {"tool": tool})
        self.llm.refresh()


class _AgentRun:
    """``with`` block of one agent invocation: span, run counter and duration."""

    def __init__(self, owner: Orchestrator, name: str, attributes: dict[str, Any]) -> None:
        self.owner = owner
        self.name = name
        self.attributes = attributes

    def __enter__(self) -> Any:
        self.started = time.perf_counter()
        self.cm = self.owner.tracer.start_span(f"invoke_agent {self.name}", self.attributes)
        return self.cm.__enter__()

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        elapsed = time.perf_counter() - self.started
        status = "ok" if exc is None else "error"
        self.owner.runs.increment(labels={"agent": self.name, "status": status})
        self.owner.run_duration.observe(elapsed, {"agent": self.name})
        self.cm.__exit__(exc_type, exc, tb)

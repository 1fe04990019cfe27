"""A simulated LLM client instrumented with the OpenTelemetry GenAI semantic conventions.

Each call is a CLIENT span ``chat <model>`` with ``gen_ai.operation.name``, ``gen_ai.system`` (and its
successor ``gen_ai.provider.name``), ``gen_ai.request.model``, ``gen_ai.usage.input_tokens``,
``gen_ai.usage.output_tokens``, ``gen_ai.usage.cache_read.input_tokens``, ``gen_ai.agent.name``,
``gen_ai.conversation.id`` (the user's session: its turns are one conversation), a ``gen_ai.first_token``
event when the first token arrives, and the response attributes, plus the semconv metrics
``gen_ai.client.operation.duration`` and ``gen_ai.client.token.usage``. The reply's tokens and latency
come from the :class:`~ingest.demo.scenario.Scenario`; the latency is slept (scaled), not faked.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ingest.demo import content
from ingest.demo.scenario import WINDOW_S, LLMCall, Scenario
from ingest.demo.telemetry import Rolling

if TYPE_CHECKING:
    from ingest.sdk.provider import ObservabilityProvider

#: The semconv's advisory bucket boundaries.
DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576]
_HOSTS = {"openai": "api.openai.com", "anthropic": "api.anthropic.com"}
_RESPONSE_MODELS = {
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
}


class LLMTimeout(TimeoutError):
    """The provider did not answer within the client timeout."""


class LLMClient:
    """Chat completions against the scenario's simulated providers, with spans, metrics and logs."""

    def __init__(self, provider: ObservabilityProvider, scenario: Scenario) -> None:
        self.scenario = scenario
        self.tracer = provider.get_tracer("gen_ai.client")
        self.logger = provider.get_logger("gen_ai.client")
        metrics = provider.get_metrics("gen_ai.client")
        self.duration = metrics.create_histogram(
            "gen_ai.client.operation.duration", "GenAI operation duration", "s", buckets=DURATION_BUCKETS
        )
        self.tokens = metrics.create_histogram(
            "gen_ai.client.token.usage",
            "Input and output tokens per GenAI operation",
            "{token}",
            buckets=TOKEN_BUCKETS,
        )
        self.requests = metrics.create_counter(
            "llm_requests_total", "LLM calls by provider, model and outcome"
        )
        self.token_total = metrics.create_counter("llm_tokens_total", "Tokens by model and type", "{token}")
        self.cost = metrics.create_counter("llm_cost_usd_total", "Estimated spend by model", "USD")
        self.p95 = metrics.create_gauge(
            "llm_latency_p95_seconds",
            "p95 latency of each provider's calls over the last modelled minute",
            "s",
        )
        self._windows = {system: Rolling(scenario.real(WINDOW_S)) for system in ("openai", "anthropic")}

    def p95_of(self, system: str) -> float:
        """Current rolling p95 latency (real seconds) of a provider."""
        return self._windows[system].quantile(0.95)

    def chat(
        self,
        index: int,
        call: str,
        agent: str,
        model: str,
        *,
        input_tokens: int,
        max_tokens: int,
        temperature: float,
        fallback_from: str | None = None,
        conversation_id: str | None = None,
    ) -> LLMCall:
        """One chat completion; raises :class:`LLMTimeout` when the provider hangs past the timeout."""
        s = self.scenario
        outcome = s.llm(index, call, model, input_tokens=input_tokens, max_tokens=max_tokens)
        system = outcome.model.system
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": system,
            "gen_ai.provider.name": system,
            "gen_ai.request.model": model,
            "gen_ai.request.max_tokens": max_tokens,
            "gen_ai.request.temperature": temperature,
            "gen_ai.agent.name": agent,
            "gen_ai.output.type": "text",
            "server.address": _HOSTS[system],
            "server.port": 443,
        }
        if fallback_from is not None:
            attributes["langswarm.llm.fallback_from"] = fallback_from
        if conversation_id is not None:
            attributes["gen_ai.conversation.id"] = conversation_id
        base = {"gen_ai.operation.name": "chat", "gen_ai.system": system, "gen_ai.request.model": model}
        started = time.perf_counter()
        with self.tracer.start_span(f"chat {model}", attributes, kind="client") as span:
            if outcome.timed_out:
                time.sleep(s.real(outcome.latency_s))
                elapsed = time.perf_counter() - started
                self._observe(system, elapsed)
                self.duration.observe(elapsed, {**base, "error.type": "timeout"})
                self.requests.increment(labels={"gen_ai.system": system, "model": model, "status": "timeout"})
                span.set_attribute("error.type", "timeout")
                self.logger.warning(
                    f"{system} did not answer within {outcome.latency_s:.0f}s",
                    agent=agent,
                    model=model,
                    timeout_s=outcome.latency_s,
                )
                msg = f"{system} {model}: no response within the {outcome.latency_s:.0f}s client timeout"
                raise LLMTimeout(msg)
            ttft = min(outcome.ttft_s or 0.0, outcome.latency_s)
            time.sleep(s.real(ttft))
            span.add_event("gen_ai.first_token")  # streamed: the first token arrived (the view's ttft_ms)
            time.sleep(s.real(outcome.latency_s - ttft))
            elapsed = time.perf_counter() - started
            span.set_attributes(
                {
                    "gen_ai.response.model": _RESPONSE_MODELS.get(model, model),
                    "gen_ai.response.id": outcome.response_id,
                    "gen_ai.response.finish_reasons": [outcome.finish_reason],
                    "gen_ai.usage.input_tokens": outcome.input_tokens,
                    "gen_ai.usage.output_tokens": outcome.output_tokens,
                    "gen_ai.usage.cache_read.input_tokens": outcome.cached_input_tokens,
                }
            )
            content.record(
                span, self.logger, s, index, call, agent
            )  # for a share of calls, as opt-in capture does
        self._observe(system, elapsed)
        response = {**base, "gen_ai.response.model": _RESPONSE_MODELS.get(model, model)}
        self.duration.observe(elapsed, response)
        self.tokens.observe(outcome.input_tokens, {**response, "gen_ai.token.type": "input"})
        self.tokens.observe(outcome.output_tokens, {**response, "gen_ai.token.type": "output"})
        self.requests.increment(labels={"gen_ai.system": system, "model": model, "status": "ok"})
        self.token_total.increment(outcome.input_tokens, {"model": model, "type": "input"})
        self.token_total.increment(outcome.output_tokens, {"model": model, "type": "output"})
        m = outcome.model
        self.cost.increment(
            outcome.input_tokens * m.usd_per_input_token + outcome.output_tokens * m.usd_per_output_token,
            {"model": model},
        )
        if outcome.finish_reason == "length":
            self.logger.warning(
                "Completion truncated at max_tokens", agent=agent, model=model, max_tokens=max_tokens
            )
        return outcome

    def _observe(self, system: str, elapsed: float) -> None:
        self._windows[system].add(elapsed)

    def refresh(self) -> None:
        """Set the p95 gauges from the windows (called by the demo's ticker)."""
        for system, window in self._windows.items():
            self.p95.set(round(window.quantile(0.95), 6), {"gen_ai.system": system})

"""The demo's world: who asks what, how each model and tool behaves, and when the incident happens.

Everything here is a pure function of ``(seed, request index, call key)``: the services ask the scenario
what happens to a call instead of drawing from a shared random generator, so two runs with one seed
produce the same requests, failures, retries, token counts and modelled latencies whatever order the
threads run in. Durations are *modelled* seconds; the services sleep ``modelled * time_scale`` real
seconds (see :data:`DEFAULT_TIME_SCALE`), so span durations in the store are the scaled ones.

The incident (fractions of the request sequence, so it scales with ``--scale``):

- ``slow_llm``: the ``openai`` provider slows down — time to first token x8, generation /3, and one call
  in six hangs past the client timeout (the researcher then falls back to ``anthropic``).
- ``tool_outage``: the ``web_search`` tool's upstream search API answers 502 to most calls and hangs on
  some; the orchestrator retries (3 attempts, exponential backoff) and gives up on a step when all fail.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field

from ingest.errors import ConfigurationError

#: Real seconds slept per modelled second (1:20): a 2 s modelled LLM call sleeps 100 ms.
DEFAULT_TIME_SCALE = 0.05
#: Named sizes of ``--scale``: number of user requests (= traces through the gateway).
SCALES = {"small": 150, "medium": 1200}
#: Most user requests per real second the load generator sends (open loop, seeded Poisson schedule);
#: smaller runs send slower so the incident and the recovery after it both last several seconds.
MAX_RATE = 30.0

SLOW_PROVIDER = "openai"
OUTAGE_TOOL = "web_search"


@dataclass(frozen=True)
class Model:
    """A chat model: its provider and modelled speed (time to first token, output tokens per second)."""

    name: str
    system: str
    ttft_s: float
    tokens_per_s: float
    usd_per_input_token: float
    usd_per_output_token: float


MODELS = {
    m.name: m
    for m in (
        Model("gpt-4o", "openai", 0.45, 75.0, 2.5e-6, 10e-6),
        Model("gpt-4o-mini", "openai", 0.30, 130.0, 0.15e-6, 0.6e-6),
        Model("claude-3-5-sonnet-20241022", "anthropic", 0.55, 65.0, 3e-6, 15e-6),
        Model("claude-3-5-haiku-20241022", "anthropic", 0.35, 120.0, 0.8e-6, 4e-6),
    )
}

#: Agent -> (model, fallback model used after a timeout, max output tokens, temperature).
AGENT_MODELS = {
    "planner": ("gpt-4o-mini", "claude-3-5-haiku-20241022", 400, 0.0),
    "researcher": ("gpt-4o", "claude-3-5-haiku-20241022", 800, 0.2),
    "writer": ("claude-3-5-sonnet-20241022", "gpt-4o-mini", 1500, 0.7),
}
#: Modelled client timeout of one LLM call (seconds).
LLM_TIMEOUT_S = 30.0
#: Modelled client timeout of one tool call over HTTP (seconds); retries: attempts and first backoff.
TOOL_TIMEOUT_S = 8.0
TOOL_ATTEMPTS = 3
TOOL_BACKOFF_S = 0.5
#: Length of the windows behind the alerting gauges (p95 latency, error ratios), modelled seconds.
WINDOW_S = 60.0
#: How long the gateway waits for the orchestrator (modelled): generous, so queueing never times out.
GATEWAY_TIMEOUT_S = 900.0

TOOLS = ("web_search", "vector_search", "calculator")

_TOPICS = (
    ("vector databases", "Compare pgvector, Qdrant and Weaviate for a 10M-document RAG index"),
    ("observability", "How do I propagate trace context across a Celery queue?"),
    ("pricing", "Estimate the monthly LLM cost of 40k support conversations"),
    ("security", "Summarise the OWASP top 10 for LLM applications"),
    ("kubernetes", "Why does my pod restart with OOMKilled after a model upgrade?"),
    ("finance", "What was the euro area inflation trend over the last 12 months?"),
    ("travel", "Plan a three-day rail trip from Zurich to Vienna"),
    ("databases", "When should I partition a Postgres table by date?"),
    ("ml", "Explain LoRA fine-tuning versus full fine-tuning for a 7B model"),
    ("support", "Draft a reply to a customer whose invoice was charged twice"),
    ("legal", "What does GDPR say about retention of chat transcripts?"),
    ("python", "Is asyncio.TaskGroup safe to use with blocking client libraries?"),
    ("analytics", "Which DuckDB functions compute approximate percentiles?"),
    ("product", "Write release notes for the multi-agent orchestrator v2.4"),
)
_TENANTS = ("acme", "globex", "initech", "umbrella", "hooli")


@dataclass(frozen=True)
class Phase:
    """Which incident effects are active for one request."""

    slow_llm: bool
    tool_outage: bool

    @property
    def name(self) -> str:
        """``baseline``, ``slow_llm``, ``slow_llm+tool_outage`` or ``tool_outage``."""
        parts = [p for p, on in (("slow_llm", self.slow_llm), ("tool_outage", self.tool_outage)) if on]
        return "+".join(parts) or "baseline"


@dataclass(frozen=True)
class Step:
    """One research step: which tool the researcher calls with which query."""

    index: int
    tool: str
    query: str


@dataclass(frozen=True)
class RequestPlan:
    """One user request as the load generator sends it, and what the agents will do for it."""

    index: int
    request_id: str
    user_id: str
    session_id: str
    tenant: str
    topic: str
    question: str
    mode: str  # "research" (planner, researcher, writer) or "quick" (planner, writer)
    steps: tuple[Step, ...]
    api_key_valid: bool
    phase: Phase


@dataclass(frozen=True)
class LLMCall:
    """What one LLM call does: tokens, modelled latency, whether it hangs past the client timeout."""

    model: Model
    input_tokens: int
    output_tokens: int
    latency_s: float
    timed_out: bool
    finish_reason: str
    response_id: str
    cached_input_tokens: int = 0
    ttft_s: float | None = None  # modelled time to the first token; None when the call timed out


@dataclass(frozen=True)
class ToolCall:
    """What one tool-service attempt does: HTTP status, modelled latency, whether it hangs, result count."""

    tool: str
    status: int
    latency_s: float
    hangs: bool
    results: int
    error: str | None = None
    upstream_latencies_s: tuple[float, ...] = field(default=())


class Scenario:
    """The deterministic world of one demo run (``seed``, ``requests``) — see the module docstring."""

    def __init__(
        self,
        seed: int = 7,
        requests: int = SCALES["small"],
        *,
        time_scale: float = DEFAULT_TIME_SCALE,
        slow_llm: tuple[float, float] = (0.30, 0.55),
        tool_outage: tuple[float, float] = (0.40, 0.62),
    ) -> None:
        self.seed = int(seed)
        self.requests = int(requests)
        self.time_scale = float(time_scale)
        self.slow_llm = slow_llm
        self.tool_outage = tool_outage

    # -- randomness ----------------------------------------------------------------------------------
    def rng(self, *key: object) -> random.Random:
        """A generator seeded by the run's seed and ``key`` (same key, same draws, in any thread)."""
        return random.Random("|".join([str(self.seed), *map(str, key)]))

    @property
    def default_rate(self) -> float:
        """Requests per real second: ``MAX_RATE``, or fewer so that a run lasts at least ten seconds."""
        return min(MAX_RATE, self.requests / 10.0)

    def real(self, modelled_s: float) -> float:
        """Real seconds to sleep for a modelled duration."""
        return max(0.0, modelled_s * self.time_scale)

    # -- the incident ----------------------------------------------------------------------------------
    def phase(self, index: int) -> Phase:
        """The incident effects active for request ``index``."""
        x = index / max(1, self.requests)
        return Phase(
            slow_llm=self.slow_llm[0] <= x < self.slow_llm[1],
            tool_outage=self.tool_outage[0] <= x < self.tool_outage[1],
        )

    # -- requests --------------------------------------------------------------------------------------
    def request(self, index: int) -> RequestPlan:
        """The user request number ``index`` (0-based)."""
        r = self.rng("request", index)
        topic, question = _TOPICS[r.randrange(len(_TOPICS))]
        user = r.randrange(1, 90)
        mode = "quick" if r.random() < 0.22 else "research"
        steps: list[Step] = []
        if mode == "research":
            for i in range(r.choice((1, 2, 2, 3, 3, 4))):
                tool = r.choices(TOOLS, weights=(0.58, 0.32, 0.10))[0]
                steps.append(
                    Step(i, tool, f"{topic} {['overview', 'benchmarks', 'pricing', 'pitfalls'][i % 4]}")
                )
        return RequestPlan(
            index=index,
            request_id=f"req-{self.seed}-{index:05d}",
            user_id=f"user-{user:03d}",
            session_id=f"sess-{user:03d}-{r.randrange(1, 4)}",
            tenant=_TENANTS[user % len(_TENANTS)],
            topic=topic,
            question=question,
            mode=mode,
            steps=tuple(steps),
            api_key_valid=r.random() >= 0.012,
            phase=self.phase(index),
        )

    # -- models ------------------------------------------------------------------------------------------
    def llm(self, index: int, call: str, model_name: str, *, input_tokens: int, max_tokens: int) -> LLMCall:
        """One LLM call of request ``index`` (``call`` names it uniquely within the request)."""
        model = MODELS[model_name]
        r = self.rng("llm", index, call, model_name)
        slow = self.phase(index).slow_llm and model.system == SLOW_PROVIDER
        output = min(max_tokens, int(r.lognormvariate(math.log(max_tokens * 0.35), 0.45)) + 12)
        cached = int(input_tokens * r.uniform(0.3, 0.8)) if r.random() < 0.35 else 0
        ttft = model.ttft_s * r.lognormvariate(0.0, 0.35)
        speed = model.tokens_per_s * r.uniform(0.8, 1.15)
        if r.random() < 0.015:  # the long tail every provider has: a congested replica
            ttft *= r.uniform(2.0, 6.0)
        if slow:
            ttft *= r.uniform(6.0, 10.0)
            speed /= r.uniform(2.5, 3.5)
        latency = ttft + output / speed
        hangs = slow and r.random() < 1 / 6
        if hangs or latency > LLM_TIMEOUT_S:
            return LLMCall(
                model, input_tokens, 0, LLM_TIMEOUT_S, True, "timeout", _hex_id(r, "chatcmpl-"), cached
            )
        finish = "length" if output >= max_tokens else "stop"
        return LLMCall(
            model, input_tokens, output, latency, False, finish, _hex_id(r, "chatcmpl-"), cached, ttft
        )

    def prompt_tokens(self, index: int, agent: str, step: int = 0) -> int:
        """Input tokens of an agent's prompt (system prompt + question + context)."""
        r = self.rng("prompt", index, agent, step)
        base = {"planner": (350, 900), "researcher": (1500, 6000), "writer": (2500, 9000)}[agent]
        return r.randint(*base)

    # -- tools -------------------------------------------------------------------------------------------
    def tool(self, index: int, step: int, attempt: int, tool: str) -> ToolCall:
        """Attempt ``attempt`` (1-based) of the tool call of research step ``step`` of request ``index``."""
        r = self.rng("tool", index, step, attempt, tool)
        outage = self.phase(index).tool_outage and tool == OUTAGE_TOOL
        if tool == "web_search":
            upstream = tuple(r.lognormvariate(math.log(0.35), 0.4) for _ in range(r.randint(1, 2)))
            latency = sum(upstream) + r.uniform(0.02, 0.08)
            roll = r.random()
            if outage:
                if roll < 0.14:
                    return ToolCall(
                        tool, 504, TOOL_TIMEOUT_S * 3, True, 0, "upstream search API did not answer"
                    )
                if roll < 0.70:
                    return ToolCall(
                        tool,
                        502,
                        latency * 0.6,
                        False,
                        0,
                        "upstream search API returned 502 Bad Gateway",
                        upstream[:1],
                    )
            else:
                if roll < 0.008:
                    return ToolCall(
                        tool, 504, TOOL_TIMEOUT_S * 3, True, 0, "upstream search API did not answer"
                    )
                if roll < 0.035:
                    return ToolCall(
                        tool,
                        503,
                        latency * 0.3,
                        False,
                        0,
                        "upstream search API rate limit exceeded (429)",
                        upstream[:1],
                    )
            return ToolCall(tool, 200, min(latency, 3.0), False, r.randint(3, 10), None, upstream)
        if tool == "vector_search":
            latency = r.lognormvariate(math.log(0.12), 0.35)
            if r.random() < 0.01:
                return ToolCall(tool, 500, latency, False, 0, "vector index shard unavailable")
            return ToolCall(tool, 200, min(latency, 3.0), False, r.randint(4, 12))
        latency = r.uniform(0.004, 0.02)
        if r.random() < 0.06:
            return ToolCall(tool, 400, latency, False, 0, "invalid expression: unbalanced parentheses")
        return ToolCall(tool, 200, latency, False, 1)

    def backoff(self, index: int, step: int, attempt: int) -> float:
        """Modelled wait before retry ``attempt + 1`` (exponential with jitter)."""
        r = self.rng("backoff", index, step, attempt)
        return TOOL_BACKOFF_S * (2 ** (attempt - 1)) * r.uniform(0.8, 1.2)

    # -- memory ------------------------------------------------------------------------------------------
    def memory_latency(self, index: int, kind: str) -> float:
        """Modelled latency of one memory look-up or write."""
        r = self.rng("memory", index, kind)
        return r.lognormvariate(math.log(0.004 if kind != "semantic" else 0.03), 0.5)

    def gateway_overhead(self, index: int) -> tuple[float, float]:
        """Modelled (auth, rate-limit) check latencies at the gateway."""
        r = self.rng("gateway", index)
        return r.lognormvariate(math.log(0.006), 0.4), r.lognormvariate(math.log(0.002), 0.3)


def _hex_id(r: random.Random, prefix: str) -> str:
    return prefix + hashlib.blake2b(r.getrandbits(64).to_bytes(8, "big"), digest_size=12).hexdigest()


def scale_requests(scale: str | int) -> int:
    """Number of user requests for ``--scale`` (``small``, ``medium`` or a positive number)."""
    if isinstance(scale, int) and not isinstance(scale, bool):
        value = scale
    elif isinstance(scale, str) and scale.strip().lower() in SCALES:
        return SCALES[scale.strip().lower()]
    else:
        try:
            value = int(str(scale).strip())
        except ValueError:
            value = 0
    if value < 1:
        msg = f"--scale {scale!r} is not valid; allowed: {', '.join(SCALES)} or a positive number of requests"
        raise ConfigurationError(msg)
    return value

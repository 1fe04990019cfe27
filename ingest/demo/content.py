"""Message content for a share of the demo's LLM calls, as GenAI instrumentations record it when asked.

Real instrumentations record prompts and answers only when content capture is on
(``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``, ``TRACELOOP_TRACE_CONTENT``, OpenInference's
``OPENINFERENCE_HIDE_INPUTS``). The demo does it for :data:`CAPTURE_SHARE` of the calls, half of them as JSON
span attributes (``gen_ai.input.messages`` / ``gen_ai.output.messages``) and half as a log record
``gen_ai.client.inference.operation.details`` with an empty body and the messages in its attributes — the
two shapes of the OTel GenAI conventions. The text is made up from the request (its question, the
research step's tool and query), deterministic per request and call.
"""

from __future__ import annotations

import json
from typing import Any

from ingest.demo.scenario import Scenario

#: Share of LLM calls whose messages are recorded (the rest say "content not recorded" in the explorer).
CAPTURE_SHARE = 0.3
EVENT_NAME = "gen_ai.client.inference.operation.details"
_SYSTEM = {
    "planner": "You are the planner. Break the user's question into research steps; answer with a JSON plan.",
    "researcher": "You are the researcher. Summarise what the tool found in two sentences, citing sources.",
    "writer": "You are the writer. Answer the user's question from the research notes, in four short paragraphs.",
}


def capture_mode(scenario: Scenario, index: int, call: str) -> str | None:
    """``"attributes"``, ``"events"`` or None (not recorded) for one call, deterministic per request and call."""
    draw = scenario.rng("content", index, call).random()
    if draw >= CAPTURE_SHARE:
        return None
    return "attributes" if draw < CAPTURE_SHARE / 2 else "events"


def call_id(index: int, step: int) -> str:
    """The tool call id shared by the researcher's LLM call and the ``execute_tool`` span of a step."""
    return f"call_{index:05d}_{step}"


def tool_arguments(scenario: Scenario, index: int, step: int) -> dict[str, str]:
    """The ``gen_ai.tool.call.arguments`` attribute of a research step's tool span, when its request records content."""
    if capture_mode(scenario, index, f"researcher:{step}") is None:
        return {}
    plan = scenario.request(index)
    return {"gen_ai.tool.call.arguments": json.dumps({"query": plan.steps[step].query})}


def messages(
    scenario: Scenario, index: int, call: str, agent: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(input, output) messages of one call in the GenAI semconv parts shape."""
    plan = scenario.request(index)
    name, _, rest = call.partition(":")
    step = int(rest.split(":")[0] or 0) if rest else 0
    inputs: list[dict[str, Any]] = [
        {
            "role": "system",
            "parts": [{"type": "text", "content": _SYSTEM.get(agent, "You are a helpful agent.")}],
        },
        {"role": "user", "parts": [{"type": "text", "content": plan.question}]},
    ]
    if name == "researcher" and step < len(plan.steps):
        tool = plan.steps[step]
        identifier = call_id(index, step)
        inputs += [
            {
                "role": "assistant",
                "parts": [
                    {
                        "type": "tool_call",
                        "id": identifier,
                        "name": tool.tool,
                        "arguments": {"query": tool.query},
                    }
                ],
            },
            {
                "role": "tool",
                "parts": [
                    {
                        "type": "tool_call_response",
                        "id": identifier,
                        "response": f"{tool.tool} found 5 results for {tool.query!r}: docs, a benchmark, two posts, a talk.",
                    }
                ],
            },
        ]
        answer = (
            f"The sources on {tool.query} agree on the basics; the benchmark shows the main trade-off [1][2]."
        )
    elif name == "planner":
        answer = json.dumps({"steps": [{"tool": s.tool, "query": s.query} for s in plan.steps]})
    else:
        answer = f"Here is what I found about {plan.topic}: four paragraphs grounded in the research notes."
    output = [{"role": "assistant", "parts": [{"type": "text", "content": answer}], "finish_reason": "stop"}]
    return inputs, output


def record(span: Any, logger: Any, scenario: Scenario, index: int, call: str, agent: str) -> None:
    """Record the call's messages on ``span`` or as an event log record, if this call captures content."""
    mode = capture_mode(scenario, index, call)
    if mode is None:
        return
    inputs, output = messages(scenario, index, call, agent)
    fields = {"gen_ai.input.messages": json.dumps(inputs), "gen_ai.output.messages": json.dumps(output)}
    if mode == "attributes":
        span.set_attributes(fields)
    else:
        logger.info("", **{"event.name": EVENT_NAME, "gen_ai.operation.name": "chat", **fields})

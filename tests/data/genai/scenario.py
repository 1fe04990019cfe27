"""The scenario app that ``record.py`` runs inside each instrumentation's throwaway virtual environment.

A small "agent" using the real ``openai`` client against the fake server, with one or more real GenAI
instrumentations on and the OpenTelemetry SDK exporting traces, logs and metrics over OTLP/HTTP to the
capture server. Each trace runs under a manual ``agent.run`` root span carrying ``session.id`` / ``user.id``
(and ``gen_ai.conversation.id`` for the chat). Every request carries ``x-fixture-trace`` / ``x-fixture-call``
headers so the fake server's record of it can be joined to the trace. Writes what the app knows (trace ids,
the calls it made, the spans and log records the SDK finished) as JSON to ``--out``.

Only ``openai`` and the OpenTelemetry packages installed in the venv are imported; nothing from the project.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
from collections.abc import Callable, Iterator
from typing import Any

import openai
from opentelemetry import trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.metrics import set_meter_provider
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

try:  # renamed in SDK 1.39
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter as InMemoryLogs
except ImportError:
    from opentelemetry.sdk._logs.export import InMemoryLogExporter as InMemoryLogs  # type: ignore[no-redef]

SYSTEM = "You are a terse travel assistant. Answer in one sentence."
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
        },
    },
}
PACKAGES = (
    "openai",
    "httpx",
    "opentelemetry-api",
    "opentelemetry-sdk",
    "opentelemetry-exporter-otlp-proto-http",
    "opentelemetry-exporter-otlp-json-http",
    "opentelemetry-instrumentation",
    "opentelemetry-semantic-conventions",
    "opentelemetry-instrumentation-openai-v2",
    "opentelemetry-util-genai",
    "opentelemetry-instrumentation-openai",
    "opentelemetry-semantic-conventions-ai",
    "openinference-instrumentation-openai",
    "openinference-instrumentation",
    "openinference-semantic-conventions",
    "traceloop-sdk",
)


def exporters(protocol: str) -> tuple[Any, Any, Any]:
    """The OTLP/HTTP span, log and metric exporter classes for ``protobuf`` or ``json``."""
    if protocol == "json":
        from opentelemetry.exporter.otlp.json.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.json.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter  # type: ignore[no-redef]
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter  # type: ignore[no-redef]
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # type: ignore[no-redef]
    return OTLPSpanExporter, OTLPLogExporter, OTLPMetricExporter


class Telemetry:
    """The SDK providers exporting to the capture server, plus in-memory copies the app counts."""

    def __init__(self, set_name: str, endpoint: str, protocol: str, *, hand_over_spans: bool = False) -> None:
        span_exporter, log_exporter, metric_exporter = exporters(protocol)
        resource = Resource.create({"service.name": f"genai-{set_name}", "fixture.set": set_name})
        self.endpoint = endpoint
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider(resource=resource)
        #: The OTLP span export; handed over to Traceloop.init (which adds it itself) when traceloop-sdk is on.
        self.span_export = BatchSpanProcessor(span_exporter(endpoint=f"{endpoint}/v1/traces"))
        if not hand_over_spans:
            self.tracer_provider.add_span_processor(self.span_export)
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        trace.set_tracer_provider(self.tracer_provider)
        self.logs = InMemoryLogs()
        self.logger_provider = LoggerProvider(resource=resource)
        self.logger_provider.add_log_record_processor(
            BatchLogRecordProcessor(log_exporter(endpoint=f"{endpoint}/v1/logs"))
        )
        self.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(self.logs))
        set_logger_provider(self.logger_provider)
        with contextlib.suppress(
            ImportError
        ):  # the Events API, used by older instrumentations, gone in newer SDKs
            from opentelemetry._events import set_event_logger_provider
            from opentelemetry.sdk._events import EventLoggerProvider

            set_event_logger_provider(EventLoggerProvider(self.logger_provider))
        reader = PeriodicExportingMetricReader(
            metric_exporter(endpoint=f"{endpoint}/v1/metrics"), export_interval_millis=3_600_000
        )
        self.meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
        set_meter_provider(self.meter_provider)

    def shutdown(self) -> None:
        """Export everything: spans, log records, one final collection of every metric stream."""
        self.tracer_provider.shutdown()
        self.logger_provider.shutdown()
        self.meter_provider.shutdown()


def instrument(name: str, telemetry: Telemetry, options: dict[str, Any]) -> None:
    """Turn one instrumentation on, with the providers passed explicitly as each documents."""
    providers = {"tracer_provider": telemetry.tracer_provider}
    if name == "otel-openai-v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(
            **providers, logger_provider=telemetry.logger_provider, meter_provider=telemetry.meter_provider
        )
    elif name == "openinference":
        from openinference.instrumentation.openai import OpenAIInstrumentor as OpenInferenceInstrumentor

        OpenInferenceInstrumentor().instrument(**providers)
    elif name == "openllmetry":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor as OpenLLMetryInstrumentor

        OpenLLMetryInstrumentor(**options).instrument(**providers, meter_provider=telemetry.meter_provider)
    elif name == "traceloop-sdk":
        from traceloop.sdk import Instruments, Traceloop

        # Traceloop.init reuses the global TracerProvider and adds the processor given (wrapped to stamp the
        # association properties on each span); api_endpoint points at the capture server so nothing leaves.
        Traceloop.init(
            app_name="genai-fixtures",
            api_endpoint=telemetry.endpoint,
            processor=telemetry.span_export,
            instruments={Instruments.OPENAI},
            telemetry_enabled=False,
            **options,
        )
    else:
        raise SystemExit(
            f"unknown instrumentation {name!r}: use otel-openai-v2, openinference, openllmetry "
            "or traceloop-sdk"
        )


class Agent:
    """Runs the scenario's traces and remembers what it did."""

    def __init__(self, client: openai.OpenAI, instrumentations: list[str]) -> None:
        self.client = client
        self.tracer = trace.get_tracer("genai-fixtures.scenario", "1.0")
        self.instrumentations = instrumentations
        self.traces: list[dict[str, Any]] = []

    @contextlib.contextmanager
    def run(
        self, label: str, *, session: str | None, user: str | None = None, conversation: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """One trace under an ``agent.run`` root span; an exception is recorded on the root, then swallowed."""
        attributes = {"fixture.scenario": label}
        attributes |= {"session.id": session} if session else {}
        attributes |= {"user.id": user} if user else {}
        attributes |= {"gen_ai.conversation.id": conversation} if conversation else {}
        record: dict[str, Any] = {"label": label, "root_attributes": attributes, "calls": [], "error": None}
        self.traces.append(record)
        with (
            contextlib.suppress(openai.APIStatusError),
            self.tracer.start_as_current_span("agent.run", attributes=attributes) as root,
            self._native_session(session, user),
        ):
            context = root.get_span_context()
            record["trace_id"] = f"{context.trace_id:032x}"
            record["root_span_id"] = f"{context.span_id:016x}"
            try:
                yield record
            except openai.APIStatusError as error:
                record["error"] = f"{type(error).__name__}: HTTP {error.status_code}"
                raise

    @contextlib.contextmanager
    def _native_session(self, session: str | None, user: str | None) -> Iterator[None]:
        """The instrumentation's own session/user context (its documented way to tag LLM spans), where it has one."""
        if "traceloop-sdk" in self.instrumentations:
            from traceloop.sdk import Traceloop

            # Attached for good (the SDK returns no token): set on every run, empty when the run has none.
            Traceloop.set_association_properties(
                {key: value for key, value in (("session_id", session), ("user_id", user)) if value}
            )
        if "openinference" not in self.instrumentations or not (session or user):
            yield
            return
        from openinference.instrumentation import using_attributes

        with using_attributes(session_id=session or "", user_id=user or ""):
            yield

    def call(
        self,
        record: dict[str, Any],
        create: Callable[..., Any],
        *,
        kind: str,
        expect: int = 200,
        **kwargs: Any,
    ) -> Any:
        """Make one API call with the joining headers and note it; streams are read to the end."""
        step = f"{record['label']}/{len(record['calls']) + 1}"
        headers = {"x-fixture-trace": record["trace_id"], "x-fixture-call": step}
        if expect != 200:
            headers["x-fake-status"] = str(expect)
        record["calls"].append(
            {
                "call": step,
                "kind": kind,
                "model_requested": kwargs.get("model"),
                "stream": bool(kwargs.get("stream")),
                "expected_status": expect,
            }
        )
        result = create(**kwargs, extra_headers=headers)
        if kwargs.get("stream"):
            return list(result)
        return result


def scenario(agent: Agent, set_name: str) -> None:
    """The traces every set records (see README.md for what each is for)."""
    chat = agent.client.chat.completions
    first_question = "Is it worth visiting Lyon in November?"
    with agent.run(
        "chat-turn-1", session=f"{set_name}:trip-chat", user="ada", conversation=f"{set_name}:conv-1"
    ) as r:
        answer = agent.call(
            r,
            chat.create,
            kind="chat",
            model="gpt-4o-mini",
            messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": first_question}],
        )
    with agent.run(
        "chat-turn-2", session=f"{set_name}:trip-chat", user="ada", conversation=f"{set_name}:conv-1"
    ) as r:
        agent.call(
            r,
            chat.create,
            kind="chat",
            model="gpt-4o-mini",
            messages=[
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": first_question},
                {"role": "assistant", "content": answer.choices[0].message.content},
                {"role": "user", "content": "Et en décembre ? Réponds aussi en 日本語, s'il te plaît."},
            ],
        )
    with agent.run("tool-round-trip", session=f"{set_name}:weather", user="bob") as r:
        question = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "What's the weather in Paris right now?"},
        ]
        first = agent.call(
            r, chat.create, kind="chat", model="gpt-4.1", messages=question, tools=[WEATHER_TOOL]
        )
        tool_call = first.choices[0].message.tool_calls[0]
        with agent.tracer.start_as_current_span("tool get_weather", attributes={"tool.name": "get_weather"}):
            arguments = json.loads(tool_call.function.arguments)
            result = json.dumps(
                {"city": arguments["city"], "temperature": 11, "unit": arguments["unit"], "sky": "overcast"}
            )
        agent.call(
            r,
            chat.create,
            kind="chat",
            model="gpt-4.1",
            tools=[WEATHER_TOOL],
            messages=[
                *question,
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": tool_call.id,
                            "type": "function",
                            "function": {
                                "name": tool_call.function.name,
                                "arguments": tool_call.function.arguments,
                            },
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": tool_call.id, "content": result},
            ],
        )
    with agent.run("stream-no-usage", session=f"{set_name}:weather", user="bob") as r:
        agent.call(
            r,
            chat.create,
            kind="chat",
            model="gpt-4o-mini",
            stream=True,
            messages=[{"role": "user", "content": "Name three rivers of France."}],
        )
    with agent.run("stream-with-usage", session="cross-conventions", user="carol") as r:
        agent.call(
            r,
            chat.create,
            kind="chat",
            model="gpt-4.1",
            stream=True,
            stream_options={"include_usage": True},
            messages=[
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": "Suggest a day trip from Marseille."},
            ],
        )
    with agent.run("embeddings", session=None) as r:
        agent.call(
            r,
            agent.client.embeddings.create,
            kind="embeddings",
            model="text-embedding-3-small",
            input=["Lyon in November", "Paris weather"],
        )
    with agent.run("length-limit", session=f"{set_name}:weather", user="bob") as r:
        agent.call(
            r,
            chat.create,
            kind="chat",
            model="gpt-4.1",
            max_tokens=5,
            messages=[{"role": "user", "content": "Describe the Loire valley in detail."}],
        )
    with agent.run("server-error", session="cross-conventions", user="carol") as r:
        agent.call(
            r,
            chat.create,
            kind="chat",
            model="gpt-4.1",
            expect=500,
            messages=[{"role": "user", "content": "This one fails upstream."}],
        )
    with agent.run("rate-limited", session="cross-conventions", user="carol") as r:
        agent.call(
            r,
            chat.create,
            kind="chat",
            model="gpt-4o-mini",
            expect=429,
            messages=[{"role": "user", "content": "This one is rate limited."}],
        )


def versions() -> dict[str, str]:
    """The installed versions of the packages that shape the telemetry."""
    found = {}
    for name in PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[name] = importlib.metadata.version(name)
    return found


def main() -> None:
    """Run the scenario once and write what the app knows to ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--set", required=True)
    parser.add_argument("--instrument", action="append", required=True)
    parser.add_argument(
        "--openllmetry-options",
        default="{}",
        help="JSON keyword arguments of OpenLLMetry's instrumentor (or of Traceloop.init)",
    )
    parser.add_argument("--openai-url", required=True)
    parser.add_argument("--otlp-endpoint", required=True)
    parser.add_argument("--protocol", choices=["protobuf", "json"], default="protobuf")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    telemetry = Telemetry(
        args.set, args.otlp_endpoint, args.protocol, hand_over_spans="traceloop-sdk" in args.instrument
    )
    for name in args.instrument:
        instrument(name, telemetry, json.loads(args.openllmetry_options))
    agent = Agent(
        openai.OpenAI(base_url=args.openai_url, api_key="sk-fake-key", max_retries=0), args.instrument
    )
    scenario(agent, args.set)
    telemetry.shutdown()
    spans = [
        {
            "trace_id": f"{s.context.trace_id:032x}",
            "span_id": f"{s.context.span_id:016x}",
            "parent_span_id": f"{s.parent.span_id:016x}" if s.parent else None,
            "name": s.name,
            "scope": s.instrumentation_scope.name if s.instrumentation_scope else None,
        }
        for s in telemetry.spans.get_finished_spans()
    ]
    logs = []
    for data in telemetry.logs.get_finished_logs():
        record = data.log_record
        attributes = dict(record.attributes or {})
        logs.append(
            {
                "trace_id": f"{record.trace_id:032x}" if record.trace_id else None,
                "event_name": getattr(record, "event_name", None) or attributes.get("event.name"),
                "scope": data.instrumentation_scope.name if data.instrumentation_scope else None,
            }
        )
    with open(args.out, "w", encoding="utf-8") as out:
        json.dump(
            {"traces": agent.traces, "spans": spans, "log_records": logs, "versions": versions()},
            out,
            indent=1,
            ensure_ascii=False,
        )


if __name__ == "__main__":
    main()

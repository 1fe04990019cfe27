"""Sessions across conventions and the service/agent/tool/model graph: on the recorded fixtures and on a
small store written through the real OTel SDK whose edges are counted by hand."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from explorer import open_store, queries
from explorer.errors import QueryError
from explorer.store import Store
from ingest import ParquetSpanExporter, StoreWriter
from ingest.sources.importer import Importer
from tests import genai_fixtures

MS = 1_000_000
T0 = 1_767_225_600 * 1_000_000_000  # 2026-01-01T00:00:00Z


def write_spans(root: Path, spans: list[dict[str, Any]]) -> Path:
    """Write span trees through the real SDK: each dict has ``name`` and optional ``service``,
    ``attributes``, ``error``, ``ms`` (duration), ``at`` (ms after T0) and ``children``. A child in another
    service gets its parent from the caller's context, as a remote parent would."""
    writer = StoreWriter(root, durable=False)
    exporter = ParquetSpanExporter(writer)
    providers: dict[str, TracerProvider] = {}

    def tracer(service: str) -> trace.Tracer:
        if service not in providers:
            providers[service] = TracerProvider(resource=Resource({"service.name": service}))
            providers[service].add_span_processor(SimpleSpanProcessor(exporter))
        return providers[service].get_tracer("tests.sessions_graph")

    def emit(spec: dict[str, Any], parent: trace.Span | None, start_ns: int) -> None:
        service = spec.get("service", "app")
        context = trace.set_span_in_context(parent) if parent is not None else None
        span = tracer(service).start_span(
            spec["name"], context=context, start_time=start_ns, attributes=spec.get("attributes")
        )
        if spec.get("error"):
            span.set_status(Status(StatusCode.ERROR, "failed"))
        for child in spec.get("children", []):
            emit(child, span, start_ns + MS)
        span.end(end_time=start_ns + int(spec.get("ms", 10) * MS))

    for spec in spans:
        emit(spec, None, T0 + int(spec.get("at", 0) * MS))
    for provider in providers.values():
        provider.shutdown()
    return root


def _llm(model: str, *, error: bool = False, ms: float = 10, **attributes: Any) -> dict[str, Any]:
    return {
        "name": f"chat {model}",
        "attributes": {"gen_ai.operation.name": "chat", "gen_ai.request.model": model, **attributes},
        "error": error,
        "ms": ms,
    }


@pytest.fixture(scope="module")
def graph_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """Two traces: web -> api (remote parent) -> planner agent -> gpt-4o x2 and a search tool -> gpt-4o-mini."""

    def run(at: float, tool_error: bool) -> dict[str, Any]:
        agent = {
            "name": "invoke_agent planner",
            "service": "api",
            "attributes": {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"},
            "children": [
                _llm("gpt-4o", ms=30),
                {
                    "name": "execute_tool search",
                    "service": "api",
                    "attributes": {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"},
                    "error": tool_error,
                    "ms": 5,
                    "children": [_llm("gpt-4o-mini", ms=2)],
                },
                _llm("gpt-4o", ms=50),
                {"name": "db.query", "service": "api"},  # the agent's own service: no edge
            ],
        }
        api = {"name": "POST /plan", "service": "api", "children": [agent]}
        return {
            "name": "GET /",
            "service": "web",
            "at": at,
            "children": [{"name": "HTTP POST", "service": "web", "children": [api]}],
        }

    root = write_spans(tmp_path_factory.mktemp("graph"), [run(0, False), run(1000, True)])
    return open_store(root)


@pytest.fixture(scope="module")
def fixture_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    root = tmp_path_factory.mktemp("genai-sessions")
    files = [f for name in genai_fixtures.sets() for f in genai_fixtures.payload_files(name)]
    Importer(root, progress=False, durable=False, log=io.StringIO()).import_paths(files)
    return open_store(root)


class TestGraphByHand:
    def test_edges_and_counts_equal_a_hand_count(self, graph_store: Store) -> None:
        """Every edge, with its calls and errors, as counted from the two traces above."""
        nodes, edges = queries.service_graph(graph_store)
        got = {(r.source, r.target): (r.calls, r.errors) for r in edges.itertuples()}
        assert got == {
            ("service:web", "service:api"): (2, 0),
            ("service:api", "agent:planner"): (2, 0),
            ("agent:planner", "model:gpt-4o"): (4, 0),
            ("agent:planner", "tool:search"): (2, 1),
            ("tool:search", "model:gpt-4o-mini"): (2, 0),
        }
        assert dict(zip(nodes.node, nodes.kind, strict=True)) == {
            "agent:planner": "agent",
            "model:gpt-4o": "model",
            "model:gpt-4o-mini": "model",
            "service:api": "service",
            "service:web": "service",
            "tool:search": "tool",
        }
        p95 = edges.set_index(["source", "target"]).p95_ms[("agent:planner", "model:gpt-4o")]
        assert p95 == pytest.approx(50.0)  # quantile_cont(0.95) of 30, 30, 50, 50: rank 2.85, between the 50s

    def test_one_trace_and_a_window(self, graph_store: Store) -> None:
        """``trace_id`` gives one trace's graph; a window before the data gives empty frames."""
        trace_id = graph_store.sql(
            "SELECT trace_id FROM spans WHERE name = 'GET /' ORDER BY start_time"
        ).trace_id[1]
        _, edges = queries.service_graph(graph_store, trace_id=trace_id)
        assert edges.set_index(["source", "target"]).errors[("agent:planner", "tool:search")] == 1
        assert edges.calls.sum() == 1 + 1 + 2 + 1 + 1
        nodes, edges = queries.service_graph(graph_store, start="2020-01-01", end="2020-01-02")
        assert nodes.empty and edges.empty

    def test_service_filter_keeps_touching_edges(self, graph_store: Store) -> None:
        """Filtering by the web service keeps its edge to api and the nodes on it."""
        nodes, edges = queries.service_graph(graph_store, service="web")
        assert list(zip(edges.source, edges.target, strict=True)) == [("service:web", "service:api")]
        assert set(nodes.node) == {"service:web", "service:api"}


class TestSessionsOnFixtures:
    def test_sessions_group_the_right_traces_across_conventions(self, fixture_store: Store) -> None:
        """Each session holds exactly the traces the manifests put in it, whichever convention recorded them."""
        expected: dict[str, set[str]] = {}
        for name in genai_fixtures.sets():
            for trace_ in genai_fixtures.manifest(name)["traces"]:
                key = trace_["session_id"] or trace_["conversation_id"]
                if key:
                    expected.setdefault(key, set()).add(trace_["trace_id"])
        listed = queries.sessions(fixture_store, limit=1000)
        assert set(listed.session_id) == set(expected)
        assert dict(zip(listed.session_id, listed.turns, strict=True)) == {
            k: len(v) for k, v in expected.items()
        }
        for session_id in (
            "cross-conventions",
            "otel-openai-v2-2.1b0:trip-chat",
            "openllmetry-0.40.14:weather",
        ):
            turns = queries.session_traces(fixture_store, session_id)
            assert set(turns.trace_id) == expected[session_id]
            assert list(turns.start_time) == sorted(turns.start_time)

    def test_cross_convention_session_spans_every_set(self, fixture_store: Store) -> None:
        """The shared session has the same three traces from every set, and every set's service."""
        row = queries.sessions(fixture_store, limit=1000).set_index("session_id").loc["cross-conventions"]
        assert row.turns == 3 * len(genai_fixtures.sets())
        assert set(row.services.split(", ")) == {f"genai-{n}" for n in genai_fixtures.sets()}

    def test_turns_show_the_user_input_and_the_answer(self, fixture_store: Store) -> None:
        """A session opens as its turns: the user's message and the model's final answer, as recorded."""
        for name in ("otel-openai-v2-2.4b0-events", "openinference-0.1.66", "openllmetry-0.40.14"):
            traces_ = [
                t for t in genai_fixtures.manifest(name)["traces"] if t["session_id"] == f"{name}:trip-chat"
            ]
            turns = queries.session_traces(fixture_store, f"{name}:trip-chat")
            assert list(turns.input) == [
                t["calls"][-1]["request"]["messages"][-1]["content"] for t in traces_
            ]
            assert list(turns.answer) == [t["calls"][-1]["answer"]["content"] for t in traces_]
            assert list(turns.input_tokens) == [t["calls"][-1]["input_tokens"] for t in traces_]

    def test_user_filter_and_tokens(self, fixture_store: Store) -> None:
        """Filter by user id; tokens are the sum of the calls' ground truth (one instrumentation per set)."""
        ada = queries.sessions(fixture_store, user_id="ada", limit=1000)
        assert set(ada.user_id) == {"ada"} and len(ada) == len(genai_fixtures.sets())
        name = "otel-openai-v2-2.4b0"
        truth = [c for t, c in genai_fixtures.calls(name) if t["session_id"] == f"{name}:weather"]
        row = queries.sessions(fixture_store, limit=1000).set_index("session_id").loc[f"{name}:weather"]
        assert row.input_tokens == sum(c["input_tokens"] or 0 for c in truth if c["kind"] == "chat")
        assert queries.sessions(fixture_store, user_id="nobody").empty

    def test_unknown_and_empty_session(self, fixture_store: Store) -> None:
        assert queries.session_traces(fixture_store, "no-such-session").empty
        with pytest.raises(QueryError, match="needs a session id"):
            queries.session_traces(fixture_store, " ")

    def test_fixture_graph(self, fixture_store: Store) -> None:
        """On one set: the root service calls both models and the tool; the tool is a leaf."""
        nodes, edges = queries.service_graph(fixture_store, service="genai-otel-openai-v2-2.4b0")
        assert set(nodes.kind) == {"service", "model", "tool"}
        got = {(r.source, r.target): r.calls for r in edges.itertuples()}
        assert got == {
            ("service:genai-otel-openai-v2-2.4b0", "model:gpt-4.1"): 5,
            ("service:genai-otel-openai-v2-2.4b0", "model:gpt-4o-mini"): 4,
            ("service:genai-otel-openai-v2-2.4b0", "tool:get_weather"): 1,
        }


class TestEmptyStore:
    def test_empty_store(self, tmp_path: Path) -> None:
        """No spans: empty frames with their columns."""
        (tmp_path / "spans").mkdir()
        store = open_store(tmp_path)
        assert queries.sessions(store).empty
        nodes, edges = queries.service_graph(store)
        assert nodes.empty and edges.empty and {"source", "target", "calls"} <= set(edges.columns)


class TestCli:
    def test_trace_messages_and_logs(self, fixture_store: Store, capsys: pytest.CaptureFixture[str]) -> None:
        """`python -m explorer trace ID --messages --logs` prints each LLM span's conversation and the event logs."""
        from explorer.cli import main

        name = "otel-openai-v2-2.4b0-events"
        trace_ = next(t for t in genai_fixtures.manifest(name)["traces"] if t["label"] == "tool-round-trip")
        assert (
            main(["trace", trace_["trace_id"], "--messages", "--logs", "--store", str(fixture_store.root)])
            == 0
        )
        out = capsys.readouterr().out
        assert out.count("== chat gpt-4.1") == 2
        assert '-> get_weather({"city": "Paris", "unit": "celsius"}) id=call_' in out
        assert "[input tool] result of call_" in out and "Anything else?" in out
        assert out.count("[gen_ai.client.inference.operation.details] gen_ai.operation.name=chat") == 2

    def test_sessions_list_and_one_session(
        self, fixture_store: Store, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`python -m explorer sessions` lists sessions (filtered by user); with an id it prints the turns."""
        from explorer.cli import main

        assert main(["sessions", "--user", "ada", "--store", str(fixture_store.root), "--limit", "100"]) == 0
        out = capsys.readouterr().out
        assert out.count(":trip-chat") == len(genai_fixtures.sets()) and "weather" not in out
        assert main(["sessions", "openinference-0.1.66:trip-chat", "--store", str(fixture_store.root)]) == 0
        out = capsys.readouterr().out
        assert "Is it worth visiting Lyon in November?" in out and "日本語" in out

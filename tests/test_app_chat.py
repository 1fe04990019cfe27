"""The app on the recorded GenAI fixtures under AppTest: the trace view's chat panel shows, for every recorded
shape, the messages the fake OpenAI server saw; a tool span shows its arguments and result; the Sessions and
Graph pages render on the fixtures and on an empty store."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from explorer import open_store
from explorer.queries.messages import LLM_SPAN_SQL
from ingest.sources.importer import Importer
from tests import genai_fixtures
from tests.storegen import build_empty_store

APP = str(Path(__file__).resolve().parent.parent / "explorer" / "streamlit_app.py")
SETS = genai_fixtures.sets()


@pytest.fixture(scope="module")
def genai_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every recorded set imported into one store."""
    root = tmp_path_factory.mktemp("genai-app")
    files = [f for name in SETS for f in genai_fixtures.payload_files(name)]
    Importer(root, progress=False, durable=False, log=io.StringIO()).import_paths(files)
    return root


def _app(monkeypatch: pytest.MonkeyPatch, root: Path, page: str, **params: str) -> AppTest:
    monkeypatch.setenv("LANGSWARM_TELEMETRY_DIR", str(root))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page(f"app_pages/{page}.py")
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _same_text(shown: str, sent: str) -> bool:
    """The panel pretty-prints JSON; anything else is shown as sent."""
    try:
        return json.loads(shown) == json.loads(sent)
    except ValueError:
        return shown == sent


def _bubbles(at: AppTest) -> list[tuple[str, str | None, list[str]]]:
    """(role, content block or None, tool-call argument blocks) per chat bubble."""
    found = []
    for bubble in at.chat_message:
        header = bubble.markdown[0].value
        codes = [c.value for c in bubble.code]
        calls = sum(":material/build: calls" in m.value for m in bubble.markdown)
        content = codes[0] if len(codes) > calls else None
        found.append((bubble.name, content, codes[len(codes) - calls :], header))
    return [(r, c, a) for r, c, a, _ in found]


class TestChatPanel:
    @pytest.mark.parametrize("name", SETS)
    def test_chat_shows_what_the_fake_server_saw(self, monkeypatch, genai_store: Path, name: str) -> None:
        """The tool round trip's second call (system, user, assistant tool call, tool result, answer): every
        bubble's role and text equal the request the fake server got and the answer it sent."""
        trace: dict[str, Any] = next(
            t for t in genai_fixtures.manifest(name)["traces"] if t["label"] == "tool-round-trip"
        )
        call = trace["calls"][1]
        spans = open_store(genai_store).sql(
            f"SELECT span_id FROM spans WHERE trace_id = $t AND {LLM_SPAN_SQL} ORDER BY start_time",
            {"t": trace["trace_id"]},
        )
        span_id = spans.span_id.iloc[
            -1
        ]  # the mixed set has two spans per call: the last is of the second call
        at = _app(monkeypatch, genai_store, "trace_view", trace_id=trace["trace_id"])
        at.selectbox(key="span_pick").select(span_id).run()
        assert not at.exception
        bubbles = _bubbles(at)
        truth = [*call["request"]["messages"], {"role": "assistant", **call["answer"]}]
        assert [b[0] for b in bubbles] == [m["role"] for m in truth]
        for (_role, content, calls), message in zip(bubbles, truth, strict=True):
            if message["content"]:
                assert content is not None and _same_text(content, message["content"]), (content, message)
            assert [json.loads(a) for a in calls] == [
                json.loads(c["arguments"]) for c in message["tool_calls"]
            ]

    def test_tool_span_shows_arguments_and_result(self, monkeypatch, genai_store: Path) -> None:
        """The tool span (only its name recorded) shows the arguments the model asked for and the result it got."""
        trace = next(
            t
            for t in genai_fixtures.manifest("openinference-0.1.66")["traces"]
            if t["label"] == "tool-round-trip"
        )
        tool = open_store(genai_store).sql(
            "SELECT span_id FROM spans WHERE trace_id = $t AND name = 'tool get_weather'",
            {"t": trace["trace_id"]},
        )
        at = _app(monkeypatch, genai_store, "trace_view", trace_id=trace["trace_id"])
        at.selectbox(key="span_pick").select(tool.span_id.iloc[0]).run()
        codes = [json.loads(c.value) for c in at.code if c.value.startswith("{")]
        assert {"city": "Paris", "unit": "celsius"} in codes
        assert {"city": "Paris", "temperature": 11, "unit": "celsius", "sky": "overcast"} in codes

    def test_content_not_recorded_is_stated(self, monkeypatch, tmp_path: Path) -> None:
        """An LLM span without content says so in the panel."""
        from tests.test_sessions_graph import write_spans

        root = write_spans(
            tmp_path / "s", [{"name": "chat gpt-4o", "attributes": {"gen_ai.operation.name": "chat"}}]
        )
        trace_id = open_store(root).sql("SELECT trace_id FROM spans").trace_id[0]
        at = _app(monkeypatch, root, "trace_view", trace_id=trace_id)
        assert any("content not recorded" in i.value for i in at.info)


SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"


class TestSessionsAndGraphPages:
    def test_sessions_page_lists_and_opens_a_session(self, monkeypatch, genai_store: Path) -> None:
        """The shared session lists every set's turns; picking a session shows its turns and the chat."""
        at = _app(monkeypatch, genai_store, "sessions")
        listed = at.dataframe[0].value
        assert "cross-conventions" in set(listed.session_id)
        at.selectbox(key="session_id").select("otel-openai-v2-2.1b0:trip-chat").run()
        assert not at.exception
        turns = at.dataframe[1].value
        assert list(turns.input) == [
            "Is it worth visiting Lyon in November?",
            "Et en décembre ? Réponds aussi en 日本語, s'il te plaît.",
        ]
        assert [m.name for m in at.chat_message] == ["user", "assistant", "user", "assistant"]
        at.text_input(key="session_user").input("bob").run()
        assert set(at.dataframe[0].value.user_id) == {"bob"}

    def test_graph_page_draws_the_network(self, monkeypatch, genai_store: Path) -> None:
        """The graph has a marker trace per node kind and the edge table the models and the tool."""
        at = _app(monkeypatch, genai_store, "graph")
        spec = json.loads(at.get("plotly_chart")[0].proto.spec)
        kinds = {t["name"] for t in spec["data"] if t.get("mode") == "markers+text"}
        assert kinds == {"service", "tool", "model"}
        edges = at.dataframe[0].value
        assert {"model:gpt-4.1", "model:gpt-4o-mini", "tool:get_weather"} <= set(edges.target)

    @pytest.mark.parametrize("page", ["sessions", "graph"])
    def test_pages_on_the_sample_and_an_empty_store(self, monkeypatch, tmp_path: Path, page: str) -> None:
        """No exception and no error box on the committed sample store and on an empty one."""
        for root in (SAMPLE, build_empty_store(tmp_path / "empty")):
            at = _app(monkeypatch, root, page)
            assert not at.error, [e.value for e in at.error]
            assert at.title[0].value in ("Sessions", "Graph")

    def test_trace_view_draws_the_trace_graph(self, monkeypatch, genai_store: Path) -> None:
        """The trace view's call graph of a tool round trip: the root service calls the model twice and the tool."""
        trace = next(
            t
            for t in genai_fixtures.manifest("otel-openai-v2-2.4b0")["traces"]
            if t["label"] == "tool-round-trip"
        )
        at = _app(monkeypatch, genai_store, "trace_view", trace_id=trace["trace_id"])
        at.toggle(key="show_call_graph").set_value(True).run()
        specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
        graph = next(s for s in specs if s["layout"].get("title", {}).get("text") == "Calls in this trace")
        hover = [h for t in graph["data"] if t.get("name") == "edges (hover)" for h in t["hovertext"]]
        assert any("model:gpt-4.1<br>2 calls" in h for h in hover)

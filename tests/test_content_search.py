"""Log event names, empty-body GenAI log records and text search over prompts/responses, on the recorded fixtures."""

from __future__ import annotations

import io

import pytest

from explorer import open_store, queries
from explorer.errors import QueryError
from explorer.store import Store
from ingest.sources.importer import Importer
from tests import genai_fixtures

EVENTS_SET = "otel-openai-v2-2.4b0-events"  # log records with an empty body, content in attributes
API_SET = "otel-openai-v2-2.1b0"  # Events API: event name only in attributes['event.name']


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """Every recorded set imported into one store."""
    root = tmp_path_factory.mktemp("genai-search")
    files = [f for name in genai_fixtures.sets() for f in genai_fixtures.payload_files(name)]
    Importer(root, progress=False, durable=False, log=io.StringIO()).import_paths(files)
    return open_store(root)


def _trace(name: str, label: str) -> str:
    return next(t["trace_id"] for t in genai_fixtures.manifest(name)["traces"] if t["label"] == label)


class TestLogEventNames:
    def test_timeline_shows_event_name_and_attributes_of_an_empty_body(self, store: Store) -> None:
        """The trace timeline names the event and lists its attributes instead of showing an empty body."""
        trace_id = _trace(EVENTS_SET, "chat-turn-1")
        tree = queries.trace_tree(store, trace_id)
        logs = queries.trace_logs(store, trace_id)
        assert logs.body.isna().all() and set(logs.event_name) == {
            "gen_ai.client.inference.operation.details"
        }
        lines = queries.trace_timeline(tree, logs).query("kind == 'log'").what.tolist()
        assert len(lines) == 1
        assert lines[0].startswith("[gen_ai.client.inference.operation.details] ")
        assert "gen_ai.request.model=gpt-4o-mini" in lines[0] and "∅" not in lines[0]

    def test_event_name_attribute_is_read_when_the_field_is_empty(self, store: Store) -> None:
        """Events API records carry their name in attributes['event.name']; the timeline and Logs show it."""
        trace_id = _trace(API_SET, "chat-turn-1")
        logs = queries.trace_logs(store, trace_id)
        assert list(logs.event_name) == ["gen_ai.system.message", "gen_ai.user.message", "gen_ai.choice"]
        what = queries.trace_timeline(queries.trace_tree(store, trace_id), logs).query("kind == 'log'").what
        assert what.iloc[1] == '[gen_ai.user.message] {"content": "Is it worth visiting Lyon in November?"}'
        found = queries.search_logs(store, event_name="gen_ai.user.message", service=f"genai-{API_SET}")
        users = sum(
            m["role"] == "user"
            for _, c in genai_fixtures.calls(API_SET)
            for m in c["request"].get("messages", [])
        )
        assert len(found) == users == 10 and set(found.event_name) == {"gen_ai.user.message"}

    def test_log_summary_cuts_long_lines(self) -> None:
        """A huge attribute value does not make a huge timeline row."""
        line = queries.log_summary(
            {"body": None, "event_name": "x", "attributes": {"k": "v" * 10_000}}, width=50
        )
        assert len(line) == 50 and line.endswith("…")
        assert queries.log_summary({"body": None, "event_name": None, "attributes": {}}) == "∅"


class TestTextSearch:
    def test_logs_text_matches_attributes_of_an_empty_body(self, store: Store) -> None:
        """A word that occurs only in an event's attributes is found by the Logs page search."""
        found = queries.search_logs(store, text="Loire valley", service=f"genai-{EVENTS_SET}")
        assert len(found) == 1 and found.body.isna().all()
        assert found.event_name.iloc[0] == "gen_ai.client.inference.operation.details"

    def test_content_search_finds_a_word_only_in_a_prompt(self, store: Store) -> None:
        """The user's words occur only in the prompts: every convention's span attribute or log is found."""
        hits = queries.search_content(store, "rivers of FRANCE")
        services = set(hits.service_name)
        assert services == {f"genai-{name}" for name in genai_fixtures.sets()}
        assert {"gen_ai.input.messages", "input.value", "gen_ai.prompt.0.content", "body"} <= set(
            hits.found_in
        )
        assert all("rivers of france" in s.lower() for s in hits.snippet)

    def test_content_search_reads_json_escaped_text(self, store: Store) -> None:
        """Accents and Japanese kept as \\u escapes in JSON attributes are found by the plain text."""
        hits = queries.search_content(store, "日本語", logs=False, service="genai-otel-openai-v2-2.4b0")
        assert list(hits.found_in) == ["gen_ai.input.messages"]  # one row per span: its first matching key
        assert hits.trace_id.iloc[0] == _trace("otel-openai-v2-2.4b0", "chat-turn-2")

    def test_content_search_is_bounded(self, store: Store) -> None:
        """``limit`` caps the rows; a one-letter needle is refused with a message."""
        assert len(queries.search_content(store, "paris", limit=3)) == 3
        with pytest.raises(QueryError, match="at least 2 characters"):
            queries.search_content(store, "a")

    def test_tool_arguments_are_searchable(self, store: Store) -> None:
        """A tool call's argument value is found in the span that asked for it."""
        hits = queries.search_content(
            store, '"unit": "celsius"', logs=False, service="genai-openllmetry-0.40.14"
        )
        assert "gen_ai.completion.0.tool_calls.0.arguments" in set(hits.found_in)

    def test_traces_page_finds_traces_by_prompt_text(self, store: Store) -> None:
        """``search_traces(content_text=...)`` returns the trace of every set whose prompt had the text."""
        found = queries.search_traces(store, content_text="Describe the Loire valley")
        expected = {_trace(name, "length-limit") for name in genai_fixtures.sets()}
        assert set(found.trace_id) == expected
        assert queries.search_traces(store, content_text="no such words anywhere").empty

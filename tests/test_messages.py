"""Conversations read from every recorded GenAI shape equal what the fake OpenAI server was sent and answered.

The store is filled by the real importer from the recorded OTLP payloads (tests/data/genai); the ground truth
is each set's manifest (the fake server's record of every request and answer).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from explorer import open_store
from explorer.queries.messages import LLM_SPAN_SQL, NOT_RECORDED, conversation, messages
from explorer.store import Store
from ingest.sources.importer import Importer
from tests import genai_fixtures

SETS = genai_fixtures.sets()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """Every recorded set imported into one store, as a user importing them all would have it."""
    root = tmp_path_factory.mktemp("genai-all")
    files = [f for name in SETS for f in genai_fixtures.payload_files(name)]
    Importer(root, progress=False, durable=False, log=io.StringIO()).import_paths(files)
    return open_store(root)


def _calls_by_span(store: Store, name: str) -> list[tuple[dict[str, Any], str, str]]:
    """(call, trace id, span id) for every chat call of a set: the trace's LLM spans of each instrumentation
    scope in start order are the trace's calls in order (the mixed set has two spans per call)."""
    found = []
    for trace in genai_fixtures.manifest(name)["traces"]:
        chats = [c for c in trace["calls"] if c["kind"] == "chat"]
        spans = store.sql(
            f"SELECT span_id, scope_name FROM spans WHERE trace_id = $t AND {LLM_SPAN_SQL} ORDER BY start_time",
            {"t": trace["trace_id"]},
        )
        for _scope, group in spans.groupby("scope_name"):
            assert len(group) == len(chats), (name, trace["label"])
            found += [
                (call, trace["trace_id"], span) for call, span in zip(chats, group.span_id, strict=True)
            ]
    return found


def _calls(row: pd.Series) -> list[tuple[str, Any]]:
    return [(c["name"], json.loads(c["arguments"])) for c in row["tool_calls"]]


def _shape(frame: pd.DataFrame) -> list[tuple[str, str | None, list[tuple[str, Any]]]]:
    return [(r["role"], r["content"] or None, _calls(r)) for _, r in frame.iterrows()]


def _truth(items: list[dict[str, Any]]) -> list[tuple[str, str | None, list[tuple[str, Any]]]]:
    return [
        (
            m.get("role", "assistant"),
            m["content"] or None,
            [(c["name"], json.loads(c["arguments"])) for c in m["tool_calls"]],
        )
        for m in items
    ]


class TestRecordedConversations:
    @pytest.mark.parametrize("name", SETS)
    def test_messages_equal_what_the_fake_server_saw(self, store: Store, name: str) -> None:
        """Role by role and text by text, input then output, for every chat call of the set."""
        checked = 0
        for call, trace_id, span_id in _calls_by_span(store, name):
            frame = messages(store, trace_id, span_id)
            sent = frame[frame.direction == "input"]
            answered = frame[frame.direction == "output"]
            assert list(frame.direction) == sorted(frame.direction, key=["input", "output"].index)
            assert _shape(sent) == _truth(call["request"]["messages"]), (name, call["call"])
            if call["answer"] is None:
                assert not answered.recorded.any() and "failed" in answered.content.iloc[0]
            else:
                assert _shape(answered) == _truth([call["answer"]]), (name, call["call"])
                assert answered.finish_reason.iloc[0] in (call["answer"]["finish_reason"], "tool_call")
            assert set(frame.source[frame.recorded]) <= {"attribute", "log", "event"}
            checked += 1
        chats = sum(c["kind"] == "chat" for _, c in genai_fixtures.calls(name))
        assert chats == 9  # nine traces, one of them embeddings, tool-round-trip has two calls
        assert checked == chats * len(genai_fixtures.manifest(name)["instrumentations"])

    @pytest.mark.parametrize("name", SETS)
    def test_tool_call_arguments_and_result_round_trip(self, store: Store, name: str) -> None:
        """The tool call's arguments come back as sent, and the tool result is answered to the same call id."""
        calls = [c for c in _calls_by_span(store, name) if c[0]["call"].startswith("tool-round-trip/")]
        first = messages(store, calls[0][1], calls[0][2])
        (tool_call,) = first[first.direction == "output"].tool_calls.iloc[0]
        truth = calls[0][0]["answer"]["tool_calls"][0]
        assert tool_call["name"] == truth["name"] == "get_weather"
        assert (
            json.loads(tool_call["arguments"])
            == json.loads(truth["arguments"])
            == {"city": "Paris", "unit": "celsius"}
        )
        second = messages(store, calls[1][1], calls[1][2])
        tool = second[second.role == "tool"].iloc[0]
        assert json.loads(tool.content)["temperature"] == 11
        if tool.tool_call_id is not None and tool_call["id"] is not None:
            assert tool.tool_call_id == tool_call["id"] == truth["id"]

    def test_the_source_names_the_shape(self, store: Store) -> None:
        """Span attributes, log records with an empty body and log bodies are each named as the source."""
        sources = {}
        for name in (
            "otel-openai-v2-2.4b0",
            "otel-openai-v2-2.4b0-events",
            "otel-openai-v2-2.1b0",
            "openinference-0.1.66",
        ):
            _call, trace_id, span_id = _calls_by_span(store, name)[0]
            sources[name] = set(messages(store, trace_id, span_id).source)
        assert sources == {
            "otel-openai-v2-2.4b0": {"attribute"},
            "otel-openai-v2-2.4b0-events": {"log"},
            "otel-openai-v2-2.1b0": {"log"},
            "openinference-0.1.66": {"attribute"},
        }


class TestShapes:
    def test_span_events_carry_a_conversation(self) -> None:
        """GenAI events recorded as span events (content in their attributes) read like log events."""
        events = [
            {"name": "gen_ai.system.message", "attributes": {"content": "Be brief."}},
            {"name": "gen_ai.user.message", "attributes": {"content": "Hi «there»"}},
            {
                "name": "gen_ai.choice",
                "attributes": {
                    "finish_reason": "stop",
                    "message": json.dumps({"role": "assistant", "content": "Hello"}),
                },
            },
        ]
        frame = conversation({"gen_ai.operation.name": "chat"}, events)
        assert list(zip(frame.role, frame.content, frame.source, strict=True)) == [
            ("system", "Be brief.", "event"),
            ("user", "Hi «there»", "event"),
            ("assistant", "Hello", "event"),
        ]
        assert frame.finish_reason.iloc[-1] == "stop"

    def test_legacy_prompt_and_completion_events(self) -> None:
        """``gen_ai.content.prompt`` / ``gen_ai.content.completion`` span events with JSON message lists."""
        events = [
            {
                "name": "gen_ai.content.prompt",
                "attributes": {"gen_ai.prompt": json.dumps([{"role": "user", "content": "Q?"}])},
            },
            {
                "name": "gen_ai.content.completion",
                "attributes": {"gen_ai.completion": json.dumps([{"role": "assistant", "content": "A."}])},
            },
        ]
        frame = conversation({}, events)
        assert list(zip(frame.direction, frame.role, frame.content, strict=True)) == [
            ("input", "user", "Q?"),
            ("output", "assistant", "A."),
        ]

    def test_multi_part_content_keeps_text_and_names_other_parts(self) -> None:
        """An image part next to text is named in the text, the text kept whole."""
        value = json.dumps(
            [
                {
                    "role": "user",
                    "parts": [
                        {"type": "text", "content": "What is in this picture?"},
                        {"type": "uri", "modality": "image", "uri": "https://example.com/cat.png"},
                        {
                            "type": "blob",
                            "modality": "image",
                            "mime_type": "image/png",
                            "content": "iVBOR...",
                        },
                    ],
                }
            ]
        )
        frame = conversation({"gen_ai.input.messages": value, "gen_ai.output.messages": "[]"})
        user = frame.iloc[0]
        assert user.content.startswith("What is in this picture?")
        assert (
            "[uri part: https://example.com/cat.png]" in user.content
            and "[blob part: image/png]" in user.content
        )
        assert user.parts == ["text", "uri", "blob"]
        assert "iVBOR" not in user.content

    def test_openinference_multi_part_contents(self) -> None:
        """``llm.input_messages.N.message.contents.M.message_content.*`` parts, text and image."""
        attributes = {
            "openinference.span.kind": "LLM",
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.contents.0.message_content.type": "text",
            "llm.input_messages.0.message.contents.0.message_content.text": "Describe:",
            "llm.input_messages.0.message.contents.1.message_content.type": "image",
            "llm.input_messages.0.message.contents.1.message_content.image.image.url": "https://x/y.jpg",
        }
        frame = conversation(attributes)
        assert frame.content.iloc[0] == "Describe:\n\n[image part: https://x/y.jpg]"

    def test_content_not_recorded_says_so(self) -> None:
        """An LLM span without content gives one row per direction stating it, not an empty table."""
        frame = conversation({"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"})
        assert list(frame.direction) == ["input", "output"]
        assert not frame.recorded.any()
        assert list(frame.content) == [NOT_RECORDED, NOT_RECORDED]

    def test_numbered_keys_sort_as_numbers(self) -> None:
        """Message 10 comes after message 9, not after message 1."""
        attributes = {f"gen_ai.prompt.{i}.role": "user" for i in range(12)} | {
            f"gen_ai.prompt.{i}.content": f"m{i}" for i in range(12)
        }
        frame = conversation(attributes)
        assert list(frame.content[frame.recorded]) == [f"m{i}" for i in range(12)]

    def test_unknown_span_is_empty(self, tmp_path: Path) -> None:
        """A span id that is not in the store gives no rows."""
        (tmp_path / "spans").mkdir()
        assert messages(open_store(tmp_path), "0" * 32, "0" * 16).empty

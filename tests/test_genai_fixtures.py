"""The recorded GenAI fixtures land whole through the real receiver and the real importer, and their ground truth holds.

Each set under ``tests/data/genai`` is what real instrumentations (OTel ``openai-v2``, OpenInference, OpenLLMetry,
current and older releases) exported while the real ``openai`` client talked to a fake OpenAI server; see
``tests/data/genai/README.md``. These tests only check that nothing is lost on the way into the store; the
``llm_calls`` checks build on the same fixtures.
"""

from __future__ import annotations

import importlib.util
import io
import json
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from explorer import open_store
from ingest.sources.importer import Importer
from ingest.sources.receiver import Receiver
from tests import genai_fixtures

SETS = genai_fixtures.sets()
RESPONSES = {
    "traces": ExportTraceServiceResponse,
    "logs": ExportLogsServiceResponse,
    "metrics": ExportMetricsServiceResponse,
}


def _rejected(store: Path) -> list[Path]:
    folder = store / "_rejected"
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.stat().st_size) if folder.exists() else []


@pytest.fixture(scope="module", params=SETS)
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One set into two stores: POSTed to an in-process receiver as the exporters sent it, and imported from files."""
    name = request.param
    received = tmp_path_factory.mktemp(f"received-{name}")
    receiver = Receiver(str(received), port=0, durable=False)
    receiver.start()
    answers = []
    try:
        host, port = receiver.address
        for payload in genai_fixtures.payloads(name):
            answers.append((payload, *genai_fixtures.post(f"http://{host}:{port}", payload)))
    finally:
        receiver.stop()  # writes everything accepted
    imported = tmp_path_factory.mktemp(f"imported-{name}")
    reports = Importer(imported, progress=False, durable=False, log=io.StringIO()).import_paths(
        genai_fixtures.payload_files(name)
    )
    return {
        "set": name,
        "received": received,
        "answers": answers,
        "stats": receiver.stats(),
        "imported": imported,
        "reports": reports,
    }


def _count(store: Path, table: str) -> int:
    if not (store / table).exists():
        return 0
    return int(open_store(store).sql(f"SELECT count(*) AS n FROM {table}")["n"][0])


class TestRecordedSets:
    def test_every_convention_is_recorded_in_two_releases_and_mixed(self) -> None:
        """The sets cover OTel openai-v2, OpenInference and OpenLLMetry in two releases each, and one mixed trace set."""
        versions: dict[str, set[str]] = {}
        packages = {
            "otel-openai-v2": "opentelemetry-instrumentation-openai-v2",
            "openinference": "openinference-instrumentation-openai",
            "openllmetry": "opentelemetry-instrumentation-openai",
        }
        packages_of = packages | {"traceloop-sdk": "opentelemetry-instrumentation-openai"}
        for name in SETS:
            manifest = genai_fixtures.manifest(name)
            for instrumentation in manifest["instrumentations"]:
                convention = "openllmetry" if instrumentation == "traceloop-sdk" else instrumentation
                versions.setdefault(convention, set()).add(manifest["packages"][packages_of[instrumentation]])
        assert {key: len(found) >= 2 for key, found in versions.items()} == dict.fromkeys(packages, True)
        assert any(len(genai_fixtures.manifest(name)["instrumentations"]) == 2 for name in SETS)

    @pytest.mark.parametrize("name", SETS)
    def test_manifest_lists_every_payload_file_and_call(self, name: str) -> None:
        """Every file under payloads/ is listed with its byte size, and the calls equal the fake server's exchanges."""
        manifest = genai_fixtures.manifest(name)
        on_disk = sorted(p.name for p in (genai_fixtures.GENAI_DATA / name / "payloads").iterdir())
        assert sorted(Path(p["file"]).name for p in manifest["payloads"]) == on_disk
        assert all(
            len(p.body) == entry["bytes"]
            for p, entry in zip(genai_fixtures.payloads(name), manifest["payloads"], strict=True)
        )
        assert sorted(call["exchange"] for _, call in genai_fixtures.calls(name)) == list(
            range(len(genai_fixtures.exchanges(name)))
        )

    @pytest.mark.parametrize("name", SETS)
    def test_ground_truth_tokens_are_what_the_fake_server_answered(self, name: str) -> None:
        """Per call, the manifest's tokens equal the usage in the answer body or last stream chunk, else null."""
        exchanges = genai_fixtures.exchanges(name)
        kinds = Counter()
        for _trace, call in genai_fixtures.calls(name):
            exchange = exchanges[call["exchange"]]
            assert exchange["request"]["model"] == call["model_requested"]
            assert exchange["status"] == call["status"] == call["expected_status"]
            if call["status"] != 200:
                assert call["input_tokens"] is None and call["answer"] is None
                kinds[call["status"]] += 1
                continue
            if exchange.get("stream"):
                usage = exchange["stream"][-1].get("usage")
                model = exchange["stream"][0]["model"]
                kinds["stream-with-usage" if usage else "stream-without-usage"] += 1
            else:
                usage = exchange["response"]["usage"]
                model = exchange["response"]["model"]
            assert call["model_answered"] == model
            if usage is None:
                assert (call["input_tokens"], call["output_tokens"], call["cached_tokens"]) == (
                    None,
                    None,
                    None,
                )
                continue
            assert call["input_tokens"] == usage["prompt_tokens"]
            assert call["output_tokens"] == usage.get("completion_tokens")
            cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
            assert call["cached_tokens"] == cached
            kinds["cached"] += bool(cached)
        assert kinds == Counter(
            {500: 1, 429: 1, "stream-with-usage": 1, "stream-without-usage": 1, "cached": 2}
        )


class TestThroughTheReceiver:
    def test_every_payload_is_accepted_whole(self, loaded: dict[str, Any]) -> None:
        """Each captured request gets a 200 with no partial rejection, and nothing lands in _rejected/."""
        for payload, status, body in loaded["answers"]:
            assert status == 200, payload.file
            if "json" in payload.content_type:
                assert not json.loads(body or b"{}").get("partialSuccess"), payload.file
            else:
                response = RESPONSES[payload.signal].FromString(body)
                assert not response.HasField("partial_success"), (payload.file, response)
        assert loaded["stats"]["rejected_requests"] == 0 and not loaded["stats"]["rejected_items"]
        assert _rejected(loaded["received"]) == []

    def test_store_holds_every_span_log_record_and_metric_point(self, loaded: dict[str, Any]) -> None:
        """Span, log record and metric point counts in the store equal what the exporters sent."""
        counts = genai_fixtures.manifest(loaded["set"])["counts"]
        store = loaded["received"]
        assert (_count(store, "spans"), _count(store, "logs"), _count(store, "metrics")) == (
            counts["spans"],
            counts["log_records"],
            counts["metric_points"],
        )
        assert counts["spans"] > counts["traces"]

    def test_every_recorded_trace_is_in_the_store_with_its_root(self, loaded: dict[str, Any]) -> None:
        """Each trace id from the manifest is stored with all its spans and its agent.run root with the session."""
        manifest = genai_fixtures.manifest(loaded["set"])
        store = open_store(loaded["received"])
        spans = store.sql(
            "SELECT trace_id, span_id, parent_span_id, name, service_name, "
            "attributes['session.id'] AS session FROM spans"
        )
        per_trace = spans.groupby("trace_id").size().to_dict()
        assert per_trace == {t["trace_id"]: t["spans"] for t in manifest["traces"]}
        roots = spans[spans["parent_span_id"].isna()].set_index("trace_id")
        for trace in manifest["traces"]:
            root = roots.loc[trace["trace_id"]]
            assert (root["span_id"], root["name"]) == (trace["root_span_id"], "agent.run")
            assert (root["session"] if isinstance(root["session"], str) else None) == trace["session_id"]
        assert set(spans["service_name"]) == {manifest["service_name"]}

    def test_log_records_keep_their_event_names_and_traces(self, loaded: dict[str, Any]) -> None:
        """Log event names (field or ``event.name`` attribute) count as the SDK emitted them, each tied to a trace."""
        manifest = genai_fixtures.manifest(loaded["set"])
        if not _count(loaded["received"], "logs"):
            assert manifest["counts"]["log_records"] == 0
            return
        logs = open_store(loaded["received"]).sql(
            "SELECT coalesce(event_name, attributes['event.name']) AS event, trace_id FROM logs"
        )
        assert Counter(logs["event"]) == Counter(manifest["log_event_names"])
        assert set(logs["trace_id"]) <= genai_fixtures.trace_ids(loaded["set"])


class TestThroughTheImporter:
    def test_every_file_is_imported_with_nothing_rejected(self, loaded: dict[str, Any]) -> None:
        """Every payload file imports as OTLP protobuf or JSON, nothing rejected or skipped."""
        for report in loaded["reports"]:
            assert (report.rejected, report.skipped, report.problems) == (0, None, []), report.summary()
            assert report.format.startswith(("protobuf", "json")), report.summary()
        assert _rejected(loaded["imported"]) == []

    def test_importer_writes_what_the_exporters_sent(self, loaded: dict[str, Any]) -> None:
        """The rows written per table equal the manifest's counts, and every recorded trace id is stored."""
        counts = genai_fixtures.manifest(loaded["set"])["counts"]
        written: Counter[str] = Counter()
        for report in loaded["reports"]:
            written.update(report.written)
        assert (written["spans"], written["logs"], written["metrics"]) == (
            counts["spans"],
            counts["log_records"],
            counts["metric_points"],
        )
        stored = set(open_store(loaded["imported"]).sql("SELECT DISTINCT trace_id FROM spans")["trace_id"])
        assert stored == genai_fixtures.trace_ids(loaded["set"])

    def test_importer_and_receiver_store_the_same_rows(self, loaded: dict[str, Any]) -> None:
        """Both ways in give the same spans (ids, names, attributes, events) and the same log records."""
        span_sql = (
            "SELECT trace_id, span_id, name, status_code, CAST(attributes AS VARCHAR) AS a, "
            "CAST(events AS VARCHAR) AS e FROM spans ORDER BY trace_id, span_id"
        )
        log_sql = "SELECT trace_id, span_id, body, CAST(attributes AS VARCHAR) AS a FROM logs ORDER BY ALL"
        left, right = open_store(loaded["imported"]), open_store(loaded["received"])
        assert left.sql(span_sql).to_dict("records") == right.sql(span_sql).to_dict("records")
        if _count(loaded["received"], "logs"):
            assert left.sql(log_sql).to_dict("records") == right.sql(log_sql).to_dict("records")


def test_mixed_set_has_two_conventions_in_every_llm_trace(tmp_path: Path) -> None:
    """In the mixed set every call's trace holds one OpenInference and one OpenLLMetry span per call."""
    name = next(n for n in SETS if len(genai_fixtures.manifest(n)["instrumentations"]) == 2)
    Importer(tmp_path, progress=False, durable=False, log=io.StringIO()).import_paths(
        genai_fixtures.payload_files(name)
    )
    scopes = open_store(tmp_path).sql("SELECT trace_id, scope_name, count(*) AS n FROM spans GROUP BY ALL")
    by_trace = {(r.trace_id, r.scope_name): r.n for r in scopes.itertuples()}
    for trace in genai_fixtures.manifest(name)["traces"]:
        calls = len(trace["calls"])
        assert by_trace.get((trace["trace_id"], "openinference.instrumentation.openai")) == calls
        assert by_trace.get((trace["trace_id"], "opentelemetry.instrumentation.openai.v1")) == calls


# --------------------------------------------------------------------------- the fake server itself


def _fake_openai_module() -> Any:
    spec = importlib.util.spec_from_file_location("fake_openai", genai_fixtures.GENAI_DATA / "fake_openai.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ask(url: str, body: dict[str, Any], **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


class TestFakeOpenAI:
    def test_streams_usage_only_when_include_usage_asks(self) -> None:
        """A stream ends with a usage chunk only with stream_options.include_usage; the record says so."""
        fake_openai = _fake_openai_module()
        question = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}
        with fake_openai.FakeOpenAI() as fake:
            _, _, plain = _ask(f"{fake.base_url}/chat/completions", question)
            _, _, counted = _ask(
                f"{fake.base_url}/chat/completions", question | {"stream_options": {"include_usage": True}}
            )
            records = fake.exchanges
        chunks = [
            json.loads(line[6:]) for line in counted.decode().split("\n\n") if line.startswith("data: {")
        ]
        assert b'"usage"' not in plain and plain.endswith(b"data: [DONE]\n\n")
        assert (
            chunks[-1]["choices"] == []
            and chunks[-1]["usage"]["prompt_tokens"] == records[1]["answer"]["usage"]["input_tokens"]
        )
        assert records[0]["answer"]["usage"] is None
        assert (
            "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1])
            == records[1]["answer"]["content"]
        )

    def test_errors_and_rate_limits_are_answered_and_recorded(self) -> None:
        """x-fake-status 500 / 429 answer OpenAI's error body, 429 with Retry-After; both are recorded without usage."""
        fake_openai = _fake_openai_module()
        question = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}
        with fake_openai.FakeOpenAI() as fake:
            failed = _ask(f"{fake.base_url}/chat/completions", question, **{"x-fake-status": "500"})
            limited = _ask(f"{fake.base_url}/chat/completions", question, **{"x-fake-status": "429"})
            records = fake.exchanges
        assert failed[0] == 500 and json.loads(failed[2])["error"]["type"] == "server_error"
        assert limited[0] == 429 and limited[1]["Retry-After"] == "7"
        assert json.loads(limited[2])["error"]["code"] == "rate_limit_exceeded"
        assert [(r["status"], r["answer"]) for r in records] == [(500, None), (429, None)]

    def test_tool_calls_then_tool_result_then_deterministic_answer(self) -> None:
        """With tools the answer calls the tool; after the tool's result it answers text; the same request, the same answer."""
        fake_openai = _fake_openai_module()
        tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"required": ["city"]}}}
        ask = {"model": "gpt-4.1", "tools": [tool], "messages": [{"role": "user", "content": "weather?"}]}
        with fake_openai.FakeOpenAI() as fake:
            first = json.loads(_ask(f"{fake.base_url}/chat/completions", ask)[2])
            again = json.loads(_ask(f"{fake.base_url}/chat/completions", ask)[2])
            call = first["choices"][0]["message"]["tool_calls"][0]
            ask["messages"] += [
                first["choices"][0]["message"],
                {"role": "tool", "tool_call_id": call["id"], "content": "11 C"},
            ]
            final = json.loads(_ask(f"{fake.base_url}/chat/completions", ask)[2])
        assert first == again and first["choices"][0]["finish_reason"] == "tool_calls"
        assert json.loads(call["function"]["arguments"]) == {"city": "Paris", "unit": "celsius"}
        assert (
            final["choices"][0]["finish_reason"] == "stop"
            and "11 C" in final["choices"][0]["message"]["content"]
        )
        assert (
            final["usage"]["prompt_tokens_details"]["cached_tokens"] > 0
            and final["model"] == "gpt-4.1-2025-04-14"
        )

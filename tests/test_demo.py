"""The demo application: one small ``python -m ingest demo`` run, checked with SQL over the store it wrote."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from explorer import Store, open_store
from ingest.demo.scenario import AGENT_MODELS, SCALES, Scenario, scale_requests
from ingest.errors import ConfigurationError

ROOT = Path(__file__).resolve().parents[1]
SEED = 11
REQUESTS = SCALES["small"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "LANGSWARM_TELEMETRY_DIR"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def _demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingest", "demo", *args], cwd=ROOT, env=_env(), capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    store = tmp_path_factory.mktemp("demo") / "store"
    proc = _demo("--store", str(store), "--scale", "small", "--seed", str(SEED), "--quiet")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return store, proc


@pytest.fixture(scope="module")
def store(run: tuple[Path, subprocess.CompletedProcess[str]]) -> Store:
    return open_store(run[0])


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return Scenario(SEED, REQUESTS)


def _one(store: Store, sql: str, params: list | None = None) -> Any:
    return store.sql(sql, params).iloc[0, 0]


class TestRun:
    def test_summary_names_requests_alerts_and_store(self, run):
        """The command prints how many requests it sent, the alert count and where the store is."""
        store_dir, proc = run
        assert f"{REQUESTS} requests (seed {SEED}" in proc.stdout
        assert "alerts:" in proc.stdout and str(store_dir) in proc.stdout

    def test_every_service_wrote_every_signal(self, store):
        """Gateway, orchestrator and tool service each have spans, logs and metrics; profiles and alerts exist."""
        services = {"gateway", "orchestrator", "tool-service"}
        for table in ("spans", "logs", "metrics"):
            found = set(store.sql(f"SELECT DISTINCT service_name FROM {table}")["service_name"])
            assert services <= found, (table, found)
        assert _one(store, "SELECT count(*) FROM profiles") > 0
        assert _one(store, "SELECT count(*) FROM alerts") > 0

    def test_bad_scale_is_refused_with_the_allowed_values(self, tmp_path):
        """An unknown --scale exits 2 naming the allowed values, before anything is written."""
        proc = _demo("--store", str(tmp_path / "never"), "--scale", "huge")
        assert proc.returncode == 2
        assert "--scale 'huge'" in proc.stderr and "small" in proc.stderr and "medium" in proc.stderr
        assert not (tmp_path / "never").exists()


class TestTraces:
    def test_parents_in_another_service(self, store):
        """CLIENT spans are parents of SERVER spans in the next service: gateway→orchestrator→tool-service."""
        edges = store.sql(
            """SELECT p.service_name AS parent_service, p.kind AS parent_kind,
                      c.service_name AS child_service, c.kind AS child_kind, count(*) AS n
               FROM spans c JOIN spans p ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id
               WHERE c.service_name <> p.service_name GROUP BY ALL"""
        )
        pairs = {
            (r.parent_service, r.child_service): (r.parent_kind, r.child_kind) for r in edges.itertuples()
        }
        assert pairs[("gateway", "orchestrator")] == ("CLIENT", "SERVER")
        assert pairs[("orchestrator", "tool-service")] == ("CLIENT", "SERVER")

    def test_each_accepted_request_is_one_trace_through_three_services(self, store, scenario):
        """Every request with a valid key is one trace rooted at the gateway that reaches the orchestrator."""
        traces = store.sql(
            """SELECT trace_id, count(DISTINCT service_name) AS services,
                      count(*) FILTER (WHERE parent_span_id IS NULL) AS roots,
                      any_value(name) FILTER (WHERE parent_span_id IS NULL) AS root,
                      any_value(attributes['correlation_id']) FILTER (WHERE parent_span_id IS NULL) AS cid
               FROM spans GROUP BY trace_id"""
        )
        requests = traces[traces["root"] == "POST /v1/chat"]
        assert len(requests) == REQUESTS and (requests["roots"] == 1).all()
        rejected = {
            scenario.request(i).request_id for i in range(REQUESTS) if not scenario.request(i).api_key_valid
        }
        accepted = requests[~requests["cid"].isin(rejected)]
        assert (accepted["services"] >= 2).all()
        assert (requests["services"] == 3).sum() > REQUESTS // 2  # research requests reach the tool service
        assert set(requests[requests["services"] == 1]["cid"]) == rejected

    def test_correlation_id_follows_the_request_across_services(self, store, scenario):
        """The gateway's correlation id is on the spans and logs of every service of that request."""
        cid = next(
            scenario.request(i).request_id
            for i in range(REQUESTS)
            if scenario.request(i).mode == "research" and scenario.request(i).api_key_valid
        )
        spans = store.sql(
            "SELECT DISTINCT service_name, trace_id FROM spans WHERE attributes['correlation_id'] = ?", [cid]
        )
        assert set(spans["service_name"]) == {"gateway", "orchestrator", "tool-service"}
        assert spans["trace_id"].nunique() == 1
        logs = store.sql(
            "SELECT DISTINCT service_name, trace_id FROM logs WHERE attributes['correlation_id'] = ?", [cid]
        )
        assert {"gateway", "orchestrator"} <= set(logs["service_name"])
        assert set(logs["trace_id"]) == set(spans["trace_id"])


class TestFailures:
    def test_errors_in_every_service_and_failed_requests(self, store):
        """Spans end in ERROR in all three services and some chat requests answered 5xx."""
        errors = store.sql(
            "SELECT service_name, count(*) AS n FROM spans WHERE status_code = 'ERROR' GROUP BY ALL"
        )
        assert set(errors["service_name"]) == {"gateway", "orchestrator", "tool-service"}
        failed = _one(
            store,
            """SELECT count(*) FROM spans WHERE name = 'POST /v1/chat'
                                AND attributes['http.response.status_code'] IN ('502', '504')""",
        )
        assert failed > 0
        exceptions = set(
            store.sql(
                """SELECT DISTINCT e.attributes['exception.type'] AS type
               FROM (SELECT unnest(events) AS e FROM spans WHERE status_code = 'ERROR') WHERE e.name = 'exception'"""
            )["type"]
        )
        assert {
            "ingest.demo.orchestrator.ToolFailed",
            "ingest.demo.llm.LLMTimeout",
            "ingest.demo.web.CallError",
        } <= exceptions

    def test_retries_after_failed_attempts(self, store):
        """A tool call retried: attempts with http.request.resend_count under one execute_tool span, retry events."""
        retried = store.sql(
            """SELECT p.span_id, list(c.attributes['http.request.resend_count'] ORDER BY c.start_time) AS resends,
                      list(c.status_code ORDER BY c.start_time) AS statuses, any_value(p.events) AS events
               FROM spans p JOIN spans c ON c.parent_span_id = p.span_id AND c.trace_id = p.trace_id
               WHERE p.name LIKE 'execute_tool %' AND c.kind = 'CLIENT' GROUP BY p.span_id
               HAVING count(*) > 1"""
        )
        assert not retried.empty
        first = retried.iloc[0]
        assert list(first["resends"]) == [None, *[str(i) for i in range(1, len(first["resends"]))]]
        assert first["statuses"][0] == "ERROR"
        assert sum(e["name"] == "retry" for e in first["events"]) == len(first["resends"]) - 1
        assert _one(store, "SELECT count(*) FROM logs WHERE body = 'Tool call failed; retrying'") > 0

    def test_timeouts_and_fallbacks(self, store):
        """Tool calls time out on the client; timed-out LLM calls are followed by a fallback model in the trace."""
        assert (
            _one(
                store,
                """SELECT count(*) FROM spans WHERE kind = 'CLIENT' AND name LIKE 'POST /tools/%'
                              AND attributes['error.type'] = 'timeout'""",
            )
            > 0
        )
        pairs = store.sql(
            """SELECT t.attributes['gen_ai.request.model'] AS model, f.attributes['gen_ai.request.model'] AS fallback
               FROM spans t JOIN spans f ON f.trace_id = t.trace_id AND f.start_time >= t.end_time
               WHERE t.name LIKE 'chat %' AND t.attributes['error.type'] = 'timeout'
                 AND f.attributes['langswarm.llm.fallback_from'] = t.attributes['gen_ai.request.model']"""
        )
        assert not pairs.empty
        assert {(m, AGENT_MODELS[a][1]) for a, (m, *_rest) in AGENT_MODELS.items()} >= set(
            map(tuple, pairs[["model", "fallback"]].drop_duplicates().to_numpy())
        )


class TestGenAI:
    def test_chat_spans_follow_the_genai_conventions(self, store):
        """Every chat span names its system, operation and model; successful ones carry token counts."""
        chats = store.sql(
            """SELECT name, status_code, attributes['gen_ai.system'] AS system,
                      attributes['gen_ai.operation.name'] AS op, attributes['gen_ai.request.model'] AS model,
                      TRY_CAST(attributes['gen_ai.usage.input_tokens'] AS BIGINT) AS input_tokens,
                      TRY_CAST(attributes['gen_ai.usage.output_tokens'] AS BIGINT) AS output_tokens
               FROM spans WHERE name LIKE 'chat %'"""
        )
        assert set(chats["system"]) == {"openai", "anthropic"}
        assert (chats["op"] == "chat").all()
        assert (chats["name"] == "chat " + chats["model"]).all()
        ok = chats[chats["status_code"] != "ERROR"]
        assert (ok["input_tokens"] > 0).all() and (ok["output_tokens"] > 0).all()
        assert chats[chats["status_code"] == "ERROR"]["output_tokens"].isna().all()

    def test_token_counts_are_the_scenarios(self, store, scenario):
        """The planner's first call of each request used exactly the tokens the seeded scenario gives it."""
        model, _fallback, max_tokens, _t = AGENT_MODELS["planner"]
        rows = store.sql(
            """SELECT attributes['correlation_id'] AS cid,
                      CAST(attributes['gen_ai.usage.input_tokens'] AS BIGINT) AS input_tokens,
                      CAST(attributes['gen_ai.usage.output_tokens'] AS BIGINT) AS output_tokens
               FROM spans WHERE name = ? AND attributes['gen_ai.agent.name'] = 'planner' AND status_code <> 'ERROR'
                 AND attributes['langswarm.llm.fallback_from'] IS NULL""",
            [f"chat {model}"],
        )
        assert len(rows) > REQUESTS // 2
        index = {scenario.request(i).request_id: i for i in range(REQUESTS)}
        for row in rows.itertuples():
            i = index[row.cid]
            expected = scenario.llm(
                i,
                "planner:0",
                model,
                input_tokens=scenario.prompt_tokens(i, "planner"),
                max_tokens=max_tokens,
            )
            assert (row.input_tokens, row.output_tokens) == (expected.input_tokens, expected.output_tokens)

    def test_a_share_of_calls_records_content_in_both_shapes(self, store):
        """About CAPTURE_SHARE of the chat calls carry messages, as span attributes or as an empty-body event log;
        the explorer reads both, with the researcher's tool call and its result, and sessions span several turns."""
        from explorer import queries
        from ingest.demo.content import CAPTURE_SHARE, EVENT_NAME

        chats = store.sql(
            """SELECT trace_id, span_id, attributes['gen_ai.input.messages'] IS NOT NULL AS on_span
               FROM spans WHERE name LIKE 'chat %' AND status_code <> 'ERROR'"""
        )
        events = store.sql(
            "SELECT DISTINCT span_id FROM logs WHERE attributes['event.name'] = ? AND body = ''", [EVENT_NAME]
        )
        shares = (chats["on_span"].mean(), chats["span_id"].isin(events["span_id"]).mean())
        assert all(CAPTURE_SHARE / 4 < share < CAPTURE_SHARE for share in shares), shares
        sample = chats[chats["span_id"].isin(events["span_id"])].iloc[0]
        frame = queries.messages(store, sample.trace_id, sample.span_id)
        assert set(frame.source) == {"log"} and list(frame.role[:2]) == ["system", "user"]
        researched = store.sql(
            """SELECT trace_id, span_id FROM spans WHERE attributes['gen_ai.agent.name'] = 'researcher'
                 AND attributes['gen_ai.input.messages'] IS NOT NULL LIMIT 1"""
        ).iloc[0]
        frame = queries.messages(store, researched.trace_id, researched.span_id)
        assert list(frame.role) == ["system", "user", "assistant", "tool", "assistant"]
        assert "query" in frame.tool_calls.iloc[2][0]["arguments"]
        multi = queries.sessions(store, limit=1000)
        assert (multi.turns > 1).any()

    def test_genai_metrics(self, store):
        """gen_ai.client.token.usage (input and output) and gen_ai.client.operation.duration are histograms."""
        kinds = store.sql(
            """SELECT name, any_value(type) AS type, list(DISTINCT attributes['gen_ai.token.type']) AS token_types
               FROM metrics WHERE name LIKE 'gen_ai.client.%' GROUP BY name"""
        ).set_index("name")
        assert kinds.loc["gen_ai.client.token.usage", "type"] == "histogram"
        assert {"input", "output"} <= set(kinds.loc["gen_ai.client.token.usage", "token_types"])
        assert kinds.loc["gen_ai.client.operation.duration", "type"] == "histogram"


class TestProfilesAlertsHealth:
    def test_profiles_belong_to_their_spans(self, store):
        """Profiles of compose_answer and rank_results point at their profiled_* spans; the hotspot is there."""
        profiles = store.sql(
            """SELECT p.operation, s.name AS span_name, s.service_name, count(*) AS rows
               FROM profiles p LEFT JOIN spans s ON s.trace_id = p.trace_id AND s.span_id = p.span_id GROUP BY ALL"""
        )
        assert {"compose_answer", "rank_results"} <= set(profiles["operation"])
        assert (profiles["span_name"] == "profiled_" + profiles["operation"]).all()
        assert (
            _one(
                store, "SELECT count(*) FROM profiles WHERE function = 'dedupe_citations' AND caller IS NULL"
            )
            > 0
        )

    def test_alerts_fire_and_resolve(self, store):
        """The LLM latency and tool error alerts each fired and were resolved (same alert_id, resolved later)."""
        episodes = store.sql(
            """SELECT metric_name, alert_id, min(timestamp) FILTER (WHERE state = 'firing') AS fired,
                      min(timestamp) FILTER (WHERE state = 'resolved') AS resolved
               FROM alerts GROUP BY ALL"""
        )
        done = episodes.dropna(subset=["fired", "resolved"])
        assert {"llm_latency_p95_seconds", "tool_error_ratio"} <= set(done["metric_name"])
        assert (done["resolved"] > done["fired"]).all()
        assert pd.Series(store.sql("SELECT DISTINCT state FROM alerts")["state"]).sort_values().tolist() == [
            "firing",
            "resolved",
        ]

    def test_health_checks_ran_and_saw_the_incident(self, store):
        """Each service ran health checks (spans and status gauge); the openai check went unhealthy at some point."""
        assert set(
            store.sql("SELECT DISTINCT service_name FROM spans WHERE name = 'health_checks'")["service_name"]
        ) == {"gateway", "orchestrator", "tool-service"}
        status = store.sql(
            """SELECT attributes['check'] AS check, min(value) AS lowest, max(value) AS highest
               FROM metrics WHERE name = 'health_check_status' GROUP BY ALL"""
        ).set_index("check")
        assert status.loc["llm_openai", "lowest"] == 0 and status.loc["llm_openai", "highest"] == 1
        assert status.loc["orchestrator", "highest"] == 1

    def test_queue_and_request_metrics(self, store):
        """The gateway counts requests by status and the orchestrator reports its queue depth."""
        statuses = set(
            store.sql(
                "SELECT DISTINCT attributes['status'] AS status FROM metrics WHERE name = 'gateway_requests_total'"
            )["status"]
        )
        assert {"200", "401"} <= statuses
        assert (
            _one(store, "SELECT count(*) FROM metrics WHERE name = 'agent_queue_depth' AND type = 'gauge'")
            > 0
        )


class TestScenario:
    def test_same_seed_same_world(self):
        """Plans, LLM replies and tool outcomes are a function of the seed alone."""
        a, b, other = Scenario(3, 200), Scenario(3, 200), Scenario(4, 200)
        assert [a.request(i) for i in range(200)] == [b.request(i) for i in range(200)]
        assert a.llm(5, "writer:0", "gpt-4o", input_tokens=900, max_tokens=800) == b.llm(
            5, "writer:0", "gpt-4o", input_tokens=900, max_tokens=800
        )
        assert [a.request(i).question for i in range(50)] != [other.request(i).question for i in range(50)]

    def test_incident_phases_follow_the_request_sequence(self):
        """The slow LLM and the search outage cover the middle of the run and overlap."""
        s = Scenario(7, 100)
        phases = [s.phase(i).name for i in range(100)]
        assert phases[0] == phases[-1] == "baseline"
        assert {"slow_llm", "slow_llm+tool_outage", "tool_outage"} <= set(phases)
        outage = [s.tool(i, 0, 1, "web_search").status != 200 for i in range(100) if s.phase(i).tool_outage]
        normal = [
            s.tool(i, 0, 1, "web_search").status != 200 for i in range(100) if not s.phase(i).tool_outage
        ]
        assert sum(outage) / len(outage) > 0.4 > sum(normal) / len(normal)

    @pytest.mark.parametrize("bad", ["huge", "0", "-3", ""])
    def test_scale_errors_name_the_allowed_values(self, bad):
        """A bad --scale raises ConfigurationError naming small, medium and numbers."""
        with pytest.raises(ConfigurationError, match="small, medium or a positive number"):
            scale_requests(bad)
        assert scale_requests("medium") == SCALES["medium"] and scale_requests("42") == 42


class TestGenAIConventions:
    def test_llm_calls_read_the_demo_in_current_conventions(self, store):
        """Every chat span has provider, request/response model, agent, conversation and usage incl. cached
        tokens; only timed-out calls lack usage; the first token is an event; llm_calls prices every call."""
        from explorer import llm_calls, llm_totals

        calls = llm_calls(store, kinds=["llm"], limit=100_000)
        assert len(calls) > 100 and set(calls["convention"]) == {"langswarm"}
        assert set(calls["provider"]) == {"openai", "anthropic"}
        assert (
            calls[["request_model", "model", "agent_name", "conversation_id", "session_id"]]
            .notna()
            .all()
            .all()
        )
        answered = calls[~calls["is_error"]]
        assert not answered["usage_unknown"].any() and answered["cached_input_tokens"].notna().all()
        assert (answered["cached_input_tokens"] > 0).any() and answered["ttft_ms"].notna().all()
        assert (answered["ttft_ms"] <= answered["duration_ms"]).all()
        assert set(calls[calls["is_error"]]["error_type"]) <= {"timeout"}
        assert llm_totals(store)["unpriced_calls"] == 0
        tools = llm_calls(store, kinds=["tool"], limit=100_000)
        assert len(tools) > 0 and tools["tool_name"].notna().all() and tools["agent_name"].notna().all()

    def test_a_conversation_spans_several_turns(self, store):
        """A user's session is one conversation over several requests (traces)."""
        turns = store.sql(
            "SELECT conversation_id, count(DISTINCT trace_id) AS traces FROM llm_calls "
            "WHERE kind = 'llm' GROUP BY ALL ORDER BY traces DESC"
        )
        assert turns["traces"].iloc[0] > 1

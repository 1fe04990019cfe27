"""Why slow: attribute comparison, structural diff and aggregated critical path, on planted causes and
the sample store."""

from __future__ import annotations

from pathlib import Path

import pytest

from explorer import (
    QueryError,
    compare_attributes,
    compare_structure,
    critical_path,
    critical_path_spans,
    critical_path_summary,
    open_store,
)
from explorer.queries._selection import check_predicate
from tests.storegen import build_empty_store
from tests.whygen import build_why_store

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    facts = build_why_store(tmp_path_factory.mktemp("why"))
    with open_store(facts.root) as store:
        yield store, facts


@pytest.fixture(scope="module")
def sample():
    with open_store(SAMPLE) as store:
        yield store


@pytest.fixture(scope="module")
def empty(tmp_path_factory):
    with open_store(build_empty_store(tmp_path_factory.mktemp("empty"))) as store:
        yield store


def _top_keys(frame, n=3):
    return list(dict.fromkeys(frame["key"]))[:n]


class TestCompareAttributes:
    def test_the_planted_model_ranks_first_with_exact_counts(self, planted):
        """Slow chats are exactly the slow-model ones: `model` ranks first, 40 of 40, none in the baseline."""
        store, facts = planted
        frame = compare_attributes(store, operation="POST /chat", slower_than_ms=1000)
        assert frame.attrs["selection"] == 40 and frame.attrs["baseline"] == 160
        first = frame.iloc[0]
        assert (first["rank"], first["key"], first["value"]) == (1, "model", "slow-model")
        assert (first["selection_count"], first["baseline_count"], first["score"]) == (40, 0, 1.0)
        assert first["example_trace_id"] in facts.slow_model_traces

    def test_ids_are_not_ranked_and_numbers_are_binned(self, planted):
        """A unique request id is listed last as high-cardinality; token counts are compared in deciles."""
        store, _ = planted
        frame = compare_attributes(store, operation="POST /chat", percentile=0.8)
        ids = frame[frame["key"] == "request.id"]
        assert list(ids["kind"]) == ["high-cardinality"] and ids["rank"].isna().all()
        assert ids.index[0] == len(frame) - 1
        tokens = frame[frame["key"] == "gen_ai.usage.input_tokens"]
        assert set(tokens["kind"]) == {"numeric"} and tokens["value"].str.contains("–|<|≥").all()
        assert _top_keys(frame, 1) == ["model"]

    def test_span_scope_finds_a_root_attribute(self, planted):
        """Slow reports are the free tier's: user.tier=free first, 25 selected of 25."""
        store, _ = planted
        frame = compare_attributes(store, operation="GET /report", slower_than_ms=1000, scope="span")
        first = frame.iloc[0]
        assert (first["key"], first["value"], first["selection_count"], first["baseline_count"]) == (
            "user.tier",
            "free",
            25,
            0,
        )

    def test_a_predicate_selects_like_a_condition(self, planted):
        """A checked SQL predicate selects the same spans as the equivalent duration condition."""
        store, _ = planted
        by_predicate = compare_attributes(store, operation="POST /chat", predicate="duration_ns > 1e9")
        assert by_predicate.attrs["selection"] == 40
        assert by_predicate.iloc[0]["value"] == "slow-model"

    def test_empty_selection_or_baseline_is_a_message(self, planted, empty):
        """Nothing selected, everything selected, or an empty store: an empty frame saying why."""
        store, _ = planted
        none = compare_attributes(store, operation="POST /chat", slower_than_ms=60_000)
        assert none.empty and "nothing to compare" in none.attrs["message"]
        every = compare_attributes(store, operation="POST /chat", slower_than_ms=0)
        assert every.empty and "no baseline" in every.attrs["message"]
        nothing = compare_attributes(empty, operation="POST /chat", percentile=0.9)
        assert nothing.empty
        assert nothing.attrs["message"] == "no 'POST /chat' span in the window: nothing to compare"

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({}, "give a condition"),
            ({"percentile": 95}, "between 0 and 1"),
            ({"errors": True, "scope": "everything"}, "scope must be"),
            ({"errors": True, "operation": ""}, "pick an operation"),
        ],
    )
    def test_bad_arguments_are_refused_clearly(self, planted, kwargs, message):
        store, _ = planted
        with pytest.raises(QueryError, match=message):
            compare_attributes(store, **{"operation": "POST /chat", **kwargs})


class TestPredicate:
    def test_runs_duckdbs_rendering_not_the_text(self):
        """Comments and spacing are gone: the SQL that runs is DuckDB's rendering of the checked tree."""
        assert check_predicate("duration_ns > 5 -- trailing") == "((duration_ns > 5))"
        assert "user.tier" in check_predicate("attributes['user.tier'] = 'free'")

    @pytest.mark.parametrize(
        ("predicate", "message"),
        [
            ("true) UNION SELECT * FROM logs WHERE (true", "not a single condition"),
            ("1 = 1; DROP TABLE spans", "not a single condition|does not parse"),
            ("trace_id IN (SELECT trace_id FROM logs)", "subquery"),
            ("EXISTS (SELECT * FROM read_parquet('/etc/x'))", "subquery"),
            ("current_setting('home_directory') = ''", "current_setting"),
            ("secret_column = 1", "use the spans columns"),
            ("duration_ns > ", "does not parse"),
            ("   ", "empty"),
        ],
    )
    def test_anything_but_a_condition_over_spans_is_refused(self, predicate, message):
        with pytest.raises(QueryError, match=message):
            check_predicate(predicate)


class TestCompareStructure:
    def test_the_planted_retries_come_first_with_their_count(self, planted):
        """The 20 slow agent runs make 3 extra web_search calls: that path tops the self-time difference."""
        store, facts = planted
        frame = compare_structure(store, operation="agent.run", slow=20, fast=20)
        assert frame.attrs == {"slow": 20, "fast": 20, "message": ""}
        first = frame.iloc[0]
        assert first["path"] == "agent.run > tool > web_search"
        assert first["slow_count"] == 4 and first["fast_count"] == 1 and first["count_diff"] == 3
        assert first["self_diff_ms"] == pytest.approx(300)
        assert first["example_trace_id"] in facts.retry_traces
        tool = frame.set_index("path").loc["agent.run > tool"]
        assert tool["self_diff_ms"] == pytest.approx(0) and tool["total_diff_ms"] == pytest.approx(300)

    def test_explicit_trace_lists(self, planted):
        """Groups can be given as trace ids."""
        store, facts = planted
        frame = compare_structure(
            store, operation="agent.run", slow=facts.retry_traces[:5], fast=facts.calm_agent_traces[:7]
        )
        assert frame.attrs["slow"] == 5 and frame.attrs["fast"] == 7
        assert frame.iloc[0]["count_diff"] == 3

    def test_empty_groups_are_a_message(self, planted, empty):
        store, _ = planted
        assert "nothing to compare" in compare_structure(empty, operation="agent.run").attrs["message"]
        lonely = compare_structure(store, operation="agent.run", slow=100, fast=5)
        assert lonely.empty and "no fast trace" in lonely.attrs["message"]
        with pytest.raises(QueryError, match="list of trace ids"):
            compare_structure(store, operation="agent.run", slow="abc")

    def test_a_big_trace_is_aggregated_by_path(self):
        """The fixture store's 2,000-span trace: every span lands on one path, counts add up."""
        from tests.storegen import BIG_TRACE_SPANS, shared_store

        facts = shared_store()
        with open_store(facts.root) as store:
            big = store.sql(
                "SELECT name FROM spans WHERE trace_id = ? AND parent_span_id IS NULL", [facts.big_trace_id]
            )
            frame = compare_structure(
                store, operation=big["name"][0], slow=[facts.big_trace_id], fast=[facts.big_trace_id]
            )
            assert frame["slow_count"].sum() == BIG_TRACE_SPANS


class TestCriticalPath:
    def test_the_planted_slow_step_has_the_largest_share(self, planted):
        """slow_step 940 ms of 1000, noise 40, prepare 10, the root 10: exact shares, every trace."""
        store, _ = planted
        frame = critical_path_summary(store, operation="batch")
        assert frame.attrs["traces"] == 30
        shares = dict(zip(frame["name"], frame["share"].round(6), strict=True))
        assert shares == {"slow_step": 0.94, "noise": 0.04, "prepare": 0.01, "batch": 0.01}
        first = frame.iloc[0]
        assert first["traces"] == 30
        assert first["mean_ms"] == pytest.approx(940) and first["p95_ms"] == pytest.approx(940)

    def test_by_path(self, planted):
        store, _ = planted
        frame = critical_path_summary(store, operation="agent.run", by="path")
        assert frame.iloc[0]["path"] == "agent.run > tool > web_search"
        assert frame["share"].sum() == pytest.approx(1)

    def test_sql_equals_the_tree_walk_on_planted_traces(self, planted):
        store, _ = planted
        spans = critical_path_spans(store, operation="agent.run")
        for trace_id, rows in spans.groupby("trace_id"):
            assert set(rows["span_id"]) == critical_path(store.trace(trace_id)), trace_id

    def test_sql_equals_the_tree_walk_on_the_sample(self, sample):
        """Every sample chat trace: the SQL critical path is explorer.tree.critical_path's span set."""
        spans = critical_path_spans(sample, operation="POST /v1/chat")
        groups = dict(list(spans.groupby("trace_id")))
        assert len(groups) == 1200
        for trace_id in sorted(groups)[::4]:
            assert set(groups[trace_id]["span_id"]) == critical_path(sample.trace(trace_id)), trace_id

    def test_empty_store(self, empty):
        frame = critical_path_summary(empty, operation="batch")
        assert frame.empty and "no trace" in frame.attrs["message"]


class TestSampleIncident:
    """The documented causes of the sample incident (sample_data/README.md) are in the top three."""

    def test_slow_chats_retried_web_search(self, sample):
        frame = compare_attributes(sample, operation="POST /v1/chat", percentile=0.9)
        assert {"langswarm.tool.attempt", "http.request.resend_count"} & set(_top_keys(frame))

    def test_failed_chats_met_the_search_outage(self, sample):
        frame = compare_attributes(sample, operation="POST /v1/chat", errors=True)
        top = frame[frame["key"].isin(_top_keys(frame))]
        assert ((top["key"] == "http.response.status_code") & (top["value"] == "502")).any()

    def test_slow_llm_calls_timed_out(self, sample):
        chats = sample.sql("SELECT DISTINCT name FROM spans WHERE name LIKE 'chat %'")["name"].tolist()
        frame = compare_attributes(sample, operation=chats, percentile=0.9, scope="span")
        top = frame[frame["key"].isin(_top_keys(frame))]
        assert ((top["key"] == "error.type") & (top["value"] == "timeout")).any()

    def test_structure_shows_the_queue_the_openai_calls_and_the_retries(self, sample):
        frame = compare_structure(sample, operation="POST /v1/chat", slow=50, fast=50).head(3)
        leaves = list(frame["name"])
        assert "agent.queue_wait" in leaves and "chat gpt-4o" in leaves and "GET /v2/search" in leaves
        search = frame[frame["name"] == "GET /v2/search"].iloc[0]
        assert search["count_diff"] > 1

    def test_critical_path_is_the_queue_and_openai(self, sample):
        frame = critical_path_summary(sample, operation="POST /v1/chat").head(3)
        assert {"agent.queue_wait", "chat gpt-4o"} <= set(frame["name"])


class TestCli:
    def test_why_prints_the_three_views(self, capsys):
        """`python -m explorer why` on the sample: retries, the queue and gpt-4o are named."""
        from explorer import open_store
        from explorer.cli import main

        with open_store(SAMPLE) as store:  # the count depends on the sample's regeneration, not on the code
            slow = store.sql(
                "SELECT count(*) AS n FROM spans WHERE name = 'POST /v1/chat' AND duration_ns > 5e9"
            )
        code = main(["why", "--store", str(SAMPLE), "--operation", "POST /v1/chat", "--slower-than", "5s"])
        out = capsys.readouterr().out
        assert code == 0
        assert f"== Attributes: {int(slow['n'][0])} spans slower than 5,000.0 ms" in out
        assert "langswarm.tool.attempt" in out and "agent.queue_wait" in out and "chat gpt-4o" in out

    def test_json_and_csv(self, capsys, planted):
        """JSON holds every view with its rows and message; CSV one section per view."""
        import json

        from explorer.cli import main

        store, _ = planted
        root = str(store.root)
        argv = ["why", "--store", root, "--operation", "POST /chat", "--slower-than", "1000"]
        assert main([*argv, "--format", "json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["attributes"]["rows"][0]["key"] == "model" and out["attributes"]["selection"] == 40
        assert out["structure"]["rows"] and out["critical_path"]["rows"]
        assert main(["why", "--store", root, "--operation", "batch", "--errors", "--format", "csv"]) == 0
        text = capsys.readouterr().out
        assert "# attributes" in text and "# critical_path" in text and "slow_step" in text

    def test_bad_duration_is_a_usage_error(self, capsys):
        from explorer.cli import main

        with pytest.raises(SystemExit):
            main(["why", "--store", str(SAMPLE), "--operation", "x", "--slower-than", "soon"])
        assert "not a duration" in capsys.readouterr().err

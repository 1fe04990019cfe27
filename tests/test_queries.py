"""Query functions over a fixture store written by the real OTel SDK and ingest's Parquet exporters."""

from __future__ import annotations

import ast
import json
import random
from datetime import timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from explorer import QueryError, TraceNotFoundError, open_store, queries
from explorer.queries._sql import _bucketed
from tests.storegen import BIG_TRACE_SPANS, HUGE_VALUE, build_empty_store, shared_store

EXPLORER = Path(__file__).resolve().parent.parent / "explorer"


@pytest.fixture(scope="module")
def facts():
    return shared_store()


@pytest.fixture(scope="module")
def store(facts):
    with open_store(facts.root) as opened:
        yield opened


@pytest.fixture(scope="module")
def empty(tmp_path_factory):
    with open_store(build_empty_store(tmp_path_factory.mktemp("empty"))) as opened:
        yield opened


class TestLayering:
    @pytest.mark.parametrize(
        "module",
        [
            *(f"queries/{path.name}" for path in sorted((EXPLORER / "queries").glob("*.py"))),
            "tree.py",
            *(f"figures/{path.name}" for path in sorted((EXPLORER / "figures").glob("*.py"))),
            *(f"sql_guard/{path.name}" for path in sorted((EXPLORER / "sql_guard").glob("*.py"))),
            "otlp_export.py",
            "store.py",
        ],
    )
    def test_query_and_figure_modules_never_import_streamlit(self, module):
        """The layers under the pages stay usable from notebooks: no streamlit import anywhere in them."""
        tree = ast.parse((EXPLORER / module).read_text())
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        imported |= {
            (node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
        }
        assert "streamlit" not in imported

    def test_public_functions_take_keyword_only_filters(self):
        """Every public query function with filters takes them keyword-only (positional: store and ids only)."""
        import inspect

        for name in dir(queries):
            function = getattr(queries, name)
            if (
                name.startswith("_")
                or not inspect.isfunction(function)
                or not function.__module__.startswith(queries.__name__ + ".")
            ):
                continue
            for parameter in inspect.signature(function).parameters.values():
                if parameter.name in {"limit", "service", "start", "end", "operation"}:
                    assert parameter.kind is parameter.KEYWORD_ONLY, f"{name}({parameter.name})"


class TestOverview:
    def test_red_counts_errors_and_percentiles_per_operation(self, store, facts):
        """RED rows: payment.charge has 41 spans of which 9 failed; percentiles are ordered and in ms."""
        red = queries.red_summary(store)
        charge = red[(red.service_name == "payment") & (red.operation == "payment.charge")].iloc[0]
        assert charge.spans == 41 and charge.errors == 9
        assert charge.error_rate == pytest.approx(9 / 41)
        assert charge.p50_ms <= charge.p95_ms <= charge.p99_ms <= charge.max_ms
        assert red["spans"].sum() == facts.span_count

    def test_rate_uses_the_given_window(self, store, facts):
        """With a window, rate_per_s is spans divided by the window length."""
        red = queries.red_summary(
            store, service="cart", start=facts.base, end=facts.base + timedelta(hours=2)
        )
        query = red[red.operation == "db.query"].iloc[0]
        assert query.rate_per_s == pytest.approx(query.spans / 7200)

    def test_slowest_and_failing(self, store):
        """Slowest sorts by p95; failing lists only operations with errors."""
        red = queries.red_summary(store)
        assert queries.slowest_operations(red, limit=1).iloc[0].operation == "batch.run"
        failing = queries.failing_operations(red)
        assert set(failing.operation) == {"payment.charge", "POST /checkout"}

    def test_alert_summary_by_state(self, store):
        summary = queries.alert_summary(store)
        assert int(summary[summary.state == "firing"].alerts.sum()) == 3
        assert int(summary[summary.state == "resolved"].alerts.sum()) == 1


class TestTimeBuckets:
    """Charts bucket time by integer arithmetic (``_sql._bucketed``); the buckets are ``time_bucket``'s."""

    @pytest.mark.parametrize("width", [1, 7, 60, 900, 86_400, 2 * 86_400, 30 * 86_400])
    def test_the_same_buckets_as_time_bucket(self, width):
        number, start = _bucketed("ts")
        rng = random.Random(width)
        origin = 946_857_600_000_000  # time_bucket's origin; times before it are floored, not truncated
        step = width * 1_000_000
        edges = [origin + k * step + d for k in range(-3, 4) for d in (-1, 0, 1)]
        times = edges + [rng.randrange(-(10**15), 3 * 10**15) for _ in range(5000)]  # 1938 to 2065
        con = duckdb.connect()
        con.execute("SET TimeZone = 'America/New_York'")  # time_bucket of a zoned timestamp buckets in UTC
        wrong, total = con.execute(
            f"""SELECT count(*) FILTER (WHERE time_bucket(to_seconds($width), ts) IS DISTINCT FROM {start}), count(*)
                FROM (SELECT ts, {number} AS _bucket_number
                      FROM (SELECT timezone('UTC', make_timestamp(unnest($us))) AS ts))""",
            {"width": width, "us": times},
        ).fetchall()[0]
        assert (wrong, total) == (0, len(times))

    def test_charts_match_time_bucket(self, store):
        over_time = queries.red_over_time(store, buckets=37)
        width = int(over_time.bucket_s.iloc[0])
        expected = store.sql(
            """SELECT time_bucket(to_seconds($width), start_time) AS bucket, service_name, count(*) AS n
               FROM spans GROUP BY ALL ORDER BY bucket, service_name""",
            {"width": width},
        )
        assert over_time.bucket.tolist() == expected.bucket.tolist()
        assert (over_time.rate_per_s * width).round().astype(int).tolist() == expected.n.tolist()
        volume = queries.log_volume(store, buckets=23)
        expected = store.sql(
            "SELECT DISTINCT time_bucket(to_seconds($width), timestamp) AS bucket FROM logs ORDER BY bucket",
            {"width": int(volume.bucket_s.iloc[0])},
        )
        assert sorted(set(volume.bucket)) == expected.bucket.tolist()


class TestTraceSearch:
    def test_correlation_id_finds_the_checkout_trace(self, store, facts):
        """The correlation id set as a span and log attribute finds exactly the known trace."""
        found = queries.search_traces(store, correlation_id=facts.correlation_id)
        assert found.trace_id.tolist() == [facts.checkout_trace_id]
        row = found.iloc[0]
        assert row.root_name == "POST /checkout" and row.span_count == 4 and row.error_count == 2
        assert row.duration_ms == pytest.approx(50.0)

    def test_log_text_and_attribute_filters(self, store, facts):
        """Text in a log body (case-insensitive) and key=value on an attribute both find the trace."""
        assert queries.search_traces(store, log_text="CARD DECLINED").trace_id.tolist() == [
            facts.checkout_trace_id
        ]
        assert queries.search_traces(store, attribute="user.tier=gold").trace_id.tolist() == [
            facts.checkout_trace_id
        ]
        assert queries.search_traces(store, attribute=("用户", "数据 ✓")).trace_id.tolist() == [
            facts.unicode_trace_id
        ]

    def test_duration_range_applies_to_the_whole_trace(self, store, facts):
        """A 50 ms trace matches 49-51 ms even though none of its other spans lasts that long."""
        found = queries.search_traces(store, operation="db.query", min_duration_ms=49.9, max_duration_ms=50.1)
        assert facts.checkout_trace_id in found.trace_id.tolist()
        assert (found.duration_ms.between(49.9, 50.1)).all()

    def test_status_and_service(self, store, facts):
        """status='error' returns exactly the traces with an error span."""
        errors = queries.search_traces(store, status="error", limit=1000)
        assert set(errors.trace_id) == set(facts.error_trace_ids)
        ok = queries.search_traces(store, status="ok", service="payment", limit=1000)
        assert (ok.error_count == 0).all() and len(ok) == 41 - 9

    def test_time_range_and_order(self, store, facts):
        """A window keeps only traces starting inside it; 'slowest' sorts by duration."""
        start = facts.base + timedelta(minutes=50)
        found = queries.search_traces(store, start=start, end=start + timedelta(minutes=1), order="slowest")
        assert found.trace_id.iloc[0] == facts.big_trace_id
        assert found.span_count.iloc[0] == BIG_TRACE_SPANS
        assert (pd.to_datetime(found.start_time, utc=True) >= pd.Timestamp(start)).all()

    def test_matches_counts_beyond_the_limit(self, store, facts):
        found = queries.search_traces(store, limit=5)
        assert len(found) == 5 and found.matches.iloc[0] == facts.trace_count

    def test_histogram_covers_every_match(self, store, facts):
        hist = queries.trace_duration_histogram(store, bins=20)
        assert hist["count"].sum() == facts.trace_count
        assert (hist.lo_ms < hist.hi_ms).all()

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"attribute": "no-equals-sign"}, "key=value"),
            ({"status": "broken"}, "status must be"),
            ({"order": "random"}, "order must be"),
            ({"limit": 0}, "`limit`"),
            ({"start": "yesterday-ish"}, "`start`"),
        ],
    )
    def test_bad_filters_are_refused_clearly(self, store, kwargs, message):
        with pytest.raises(QueryError, match=message):
            queries.search_traces(store, **kwargs)

    def test_sql_injection_in_a_filter_is_just_a_value(self, store):
        """Filters are bound parameters: a quote in a value matches nothing and breaks nothing."""
        assert queries.search_traces(store, operation="x' OR '1'='1").empty
        assert queries.search_logs(store, text="'); DROP VIEW spans; --").empty
        assert not queries.red_summary(store).empty


class TestTraceTree:
    def test_offsets_and_widths_are_nanosecond_exact(self, store, facts):
        """The sub-millisecond db.query keeps its 0.25 ms width and 2.3 ms offset."""
        tree = queries.trace_tree(store, facts.checkout_trace_id)
        query = tree[tree.span_id == facts.checkout_span_ids["db.query"]].iloc[0]
        assert query.duration_ms == pytest.approx(0.25, abs=1e-9)
        assert query.offset_ms == pytest.approx(2.3, abs=1e-9)
        assert tree.name.tolist() == ["POST /checkout", "cart.load", "db.query", "payment.charge"]
        assert tree.depth.tolist() == [0, 1, 2, 1]

    def test_critical_path(self, store, facts):
        """Sequential children are all critical; in the big trace, parallel chain spans are not."""
        tree = queries.trace_tree(store, facts.checkout_trace_id)
        assert tree.critical.all()
        big = queries.trace_tree(store, facts.big_trace_id)
        assert not big[big.name.str.startswith("chain.")].critical.any()
        assert big[big.name == "batch.step"].critical.all()

    def test_critical_path_picks_the_last_finishing_child(self):
        """Of two overlapping children the one ending last is critical; one running in its shadow is not."""
        frame = pd.DataFrame(
            {
                "span_id": ["r", "a", "b", "c"],
                "parent_span_id": [None, "r", "r", "r"],
                "start_time": [0, 10, 20, 60],
                "end_time": [100, 50, 40, 90],
            }
        )
        assert queries.critical_path(frame) == {"r", "a", "c"}

    def test_orphans_and_unknown_traces(self, store, facts):
        """A span whose parent was never exported is shown as a root, not lost."""
        tree = queries.trace_tree(store, facts.orphan_trace_id)
        assert tree.name.tolist() == ["orphan.work", "orphan.child"] and tree.orphan.tolist() == [True, False]
        assert tree.parent_span_id.iloc[0] == facts.missing_parent_id
        with pytest.raises(TraceNotFoundError):
            queries.trace_tree(store, "0" * 32)

    def test_collapse_hides_descendants(self, store, facts):
        big = queries.trace_tree(store, facts.big_trace_id)
        steps = big[big.name == "batch.step"].span_id.tolist()
        view = queries.collapse_subtrees(big, steps)
        assert len(view) == BIG_TRACE_SPANS - len(steps) * 50
        assert view[view.name == "batch.step"].hidden.tolist() == [50] * len(steps)

    def test_span_detail_events_exception_links(self, store, facts):
        tree = queries.trace_tree(store, facts.checkout_trace_id)
        charge = queries.span_detail(tree, facts.checkout_span_ids["payment.charge"])
        assert charge.events.name.tolist() == ["card.validated", "exception"]
        assert charge.events.offset_ms.tolist() == pytest.approx([12.0, 40.0])
        assert charge.exceptions[0]["type"] == "ValueError"
        assert "insufficient funds" in charge.exceptions[0]["stacktrace"]
        assert "Traceback" in charge.exceptions[0]["stacktrace"]
        root = queries.span_detail(tree, facts.checkout_span_ids["root"])
        assert root.links.attributes.str.contains("retry of").all() and len(root.links) == 1
        assert root.attributes["order.id"] == "42" and root.resource["service.version"] == "1.1"
        with pytest.raises(QueryError, match="not in this trace"):
            queries.span_detail(tree, "nope")

    def test_huge_and_unicode_attributes_survive(self, store, facts):
        tree = queries.trace_tree(store, facts.unicode_trace_id)
        detail = queries.span_detail(tree, tree.span_id.iloc[0])
        assert detail.attributes["prompt"] == HUGE_VALUE and detail.attributes["用户"] == "数据 ✓"
        assert json.loads(detail.attributes["tags"]) == ["a", "ü"]

    def test_logs_interleave_with_spans(self, store, facts):
        tree = queries.trace_tree(store, facts.checkout_trace_id)
        timeline = queries.trace_timeline(tree, queries.trace_logs(store, facts.checkout_trace_id))
        assert timeline.kind.tolist() == ["span", "log", "span", "span", "span", "log"]
        assert timeline.offset_ms.is_monotonic_increasing

    def test_span_profile(self, store, facts):
        rows = queries.span_profile(
            store, trace_id=facts.checkout_trace_id, span_id=facts.checkout_span_ids["payment.charge"]
        )
        assert len(rows) == 10 and rows.caller.isna().sum() == 5


class TestLatency:
    def test_histogram_bins_count_every_span(self, store):
        hist = queries.latency_histogram(store, operation="db.query", bins=10, log_scale=True)
        assert hist["count"].sum() == 81  # 80 ordinary traces and the checkout trace
        shortest = store.sql("SELECT min(duration_ns) / 1e6 AS ms FROM spans WHERE name = 'db.query'").ms[0]
        assert hist.lo_ms.min() == pytest.approx(shortest, rel=1e-6)
        assert (hist.hi_ms / hist.lo_ms).round(9).nunique() == 1  # log-spaced: every bin has the same ratio

    def test_versions_side_by_side(self, store):
        table = queries.latency_percentiles(
            store, service="frontend", operation="POST /checkout", group_by="version"
        )
        assert set(table.group) == {"1.0", "1.1"}
        assert table.set_index("group").loc["1.1", "p50_ms"] > table.set_index("group").loc["1.0", "p50_ms"]

    def test_percentiles_over_time_and_outliers(self, store, facts):
        over = queries.percentiles_over_time(
            store, operation="POST /checkout", start=facts.base, end=facts.end
        )
        assert over.spans.sum() == 41 and (over.p50_ms <= over.p99_ms).all()
        outliers = queries.latency_outliers(store, limit=1)
        assert outliers.trace_id.tolist() == [facts.big_trace_id]

    def test_bad_group_is_refused(self, store):
        with pytest.raises(QueryError, match="group_by must be one of"):
            queries.latency_percentiles(store, group_by="colour")


class TestProfiles:
    def test_hotspots_by_self_and_cumulative(self, store):
        by_self = queries.profile_hotspots(store, operation="payment.charge")
        assert by_self.function.iloc[0] == "socket.recv" and by_self.self_s.iloc[0] == pytest.approx(0.030)
        by_cumulative = queries.profile_hotspots(store, operation="payment.charge", order="cumulative")
        assert by_cumulative.function.iloc[0] == "charge"
        assert by_self.self_share.sum() == pytest.approx(1.0)

    def test_call_tree_values_add_up(self, store, facts):
        """Each node's remainder plus its children equals its cumulative time (plotly 'remainder' branch values)."""
        scope = {"trace_id": facts.checkout_trace_id, "span_id": facts.checkout_span_ids["payment.charge"]}
        tree = queries.call_tree(
            queries.profile_hotspots(store, **scope), queries.profile_edges(store, **scope)
        )
        root = tree[tree.parent == ""].iloc[0]
        assert root.function == "charge" and root.total == pytest.approx(0.040)
        assert tree.value.sum() == pytest.approx(0.040)
        assert set(tree.id) >= {"/charge/call_gateway/socket.recv", "/charge/validate_card/socket.recv"}

    def test_profile_spans_link_back(self, store, facts):
        spans = queries.profile_spans(store, operation="payment.charge")
        assert spans.span_id.tolist() == [facts.checkout_span_ids["payment.charge"]]


class TestAlerts:
    def test_windows_pair_firing_with_resolved(self, store, facts):
        windows = queries.alert_windows(queries.alert_events(store), until=facts.end)
        critical = windows[windows.alert == "a-1"].iloc[0]
        assert critical.resolved and (critical.end - critical.start) == timedelta(minutes=10)
        warning = windows[windows.alert == "a-2"].iloc[0]
        assert not warning.resolved and warning.end == facts.end
        assert len(windows) == 3


class TestLogsAndMetrics:
    def test_log_search(self, store, facts):
        errors = queries.search_logs(store, min_level="ERROR")
        assert (errors.severity_number >= 17).all() and len(errors) == 9
        by_corr = queries.search_logs(store, correlation_id=facts.correlation_id)
        assert set(by_corr.trace_id) == {facts.checkout_trace_id} and len(by_corr) == 2
        assert queries.search_logs(store, text="ÜNÏCÖDÉ").body.tolist() == ["ünïcödé body 🚀 with 'quotes'"]
        with pytest.raises(QueryError, match="is not a level"):
            queries.search_logs(store, min_level="LOUD")

    def test_counter_rate_handles_a_reset(self, store):
        """llm.tokens grows 40/min for claude with a reset at minute 30: the rate stays 40/60 per second."""
        series = queries.metric_series(store, name="llm.tokens", group_by=["model"])
        claude = series[series.series == "model=claude"]
        assert claude.value.to_numpy() == pytest.approx(40 / 60)
        gpt = series[series.series == "model=gpt-4o"]
        assert gpt.value.to_numpy() == pytest.approx(100 / 60)

    def test_gauge_and_catalog(self, store):
        catalog = queries.metric_catalog(store).set_index("name")
        assert catalog.loc["llm.tokens", "type"] == "counter" and catalog.loc["llm.tokens", "series"] == 2
        gauge = queries.metric_series(store, name="error_rate")
        assert gauge.value.max() == pytest.approx(0.12) and gauge.series.unique().tolist() == ["error_rate"]
        assert queries.metric_label_keys(store, name="llm.tokens").key.tolist() == ["model"]

    def test_histogram_buckets_and_quantiles(self, store, facts):
        """Cumulative buckets are differenced: every minute observed 8 values; minutes 40-44 are slow."""
        buckets = queries.histogram_buckets(store, name="llm.latency_seconds")
        per_minute = buckets.groupby("timestamp")["count"].sum()
        assert (per_minute == 8).all()
        quantiles = queries.histogram_quantiles(buckets).set_index("timestamp")
        slow = pd.Timestamp(facts.base + timedelta(minutes=42))
        slow = slow.tz_localize("UTC") if slow.tzinfo is None else slow.tz_convert("UTC")
        assert quantiles.loc[slow, "p50"] > 2.0
        assert quantiles.p50.median() < 0.5


class TestEmptyStore:
    def test_every_query_returns_an_empty_frame(self, empty):
        """An empty store gives empty results with the right columns, never an error."""
        assert queries.red_summary(empty).empty
        assert queries.search_traces(empty).empty
        assert queries.trace_duration_histogram(empty).empty
        assert queries.latency_histogram(empty).empty
        assert queries.percentiles_over_time(empty).empty
        assert queries.profile_hotspots(empty).empty
        assert queries.call_tree(queries.profile_hotspots(empty), queries.profile_edges(empty)).empty
        assert queries.alert_windows(queries.alert_events(empty)).empty
        assert queries.search_logs(empty).empty
        assert queries.metric_catalog(empty).empty
        assert queries.histogram_buckets(empty, name="x").empty
        assert queries.time_bounds(empty) == (None, None)
        assert list(queries.red_summary(empty).columns)[:3] == ["service_name", "operation", "spans"]


class TestErrorStatusMatchesTheSpan:
    def test_status_error_applies_to_the_span_that_matched(self, store, facts):
        """In the checkout trace payment.charge failed and cart.load did not: `operation=cart.load,
        status=error` must not find it (it did when status meant "any span of the trace failed")."""
        prefix = facts.checkout_trace_id[:16]
        failed = queries.search_traces(store, operation="payment.charge", status="error", trace_id=prefix)
        assert failed.trace_id.tolist() == [facts.checkout_trace_id]
        fine = queries.search_traces(store, operation="cart.load", status="error", trace_id=prefix)
        assert fine.empty
        anywhere = queries.search_traces(store, status="error", trace_id=prefix)
        assert anywhere.trace_id.tolist() == [facts.checkout_trace_id]


class TestLatencyGroups:
    def test_client_and_server_spans_of_one_name_stay_apart(self, store):
        table = queries.latency_percentiles(
            store, operation=["POST /checkout", "cart.load"], group_by="operation_kind"
        )
        assert {"POST /checkout (server)", "cart.load (client)"} <= set(table.group)
        # group_by="operation" stays the plain name, which operation= filters take back.
        assert set(queries.latency_percentiles(store, operation="cart.load").group) == {"cart.load"}
        kinds = queries.latency_percentiles(store, group_by="kind")
        assert {"SERVER", "CLIENT"} <= set(kinds.group)


class TestCliPipe:
    def test_closed_pipe_ends_quietly(self, facts):
        """`python -m explorer trace ID | head -1`: no BrokenPipeError traceback when the reader leaves."""
        import subprocess
        import sys

        process = subprocess.Popen(
            [sys.executable, "-m", "explorer", "trace", "--store", str(facts.root), facts.big_trace_id],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=Path(__file__).resolve().parent.parent,
        )
        assert process.stdout.readline()
        process.stdout.close()
        stderr = process.stderr.read().decode()
        process.wait(timeout=120)
        assert "Traceback" not in stderr and "BrokenPipeError" not in stderr

    @pytest.mark.parametrize("fmt", ["csv", "json"])
    def test_sql_csv_and_json_output(self, facts, fmt):
        """`python -m explorer sql --format csv|json` prints every row, machine-readable."""
        import io
        import subprocess
        import sys

        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "explorer",
                "sql",
                "--store",
                str(facts.root),
                "--format",
                fmt,
                "SELECT name, count(*) AS n FROM spans GROUP BY name ORDER BY n DESC, name",
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        frame = (
            pd.read_csv(io.StringIO(done.stdout))
            if fmt == "csv"
            else pd.read_json(io.StringIO(done.stdout), lines=True)
        )
        assert frame.name.iloc[0] == "llm.call" and frame.n.iloc[0] == 1950 and len(frame) > 5


class TestTraceIdPrefix:
    def test_unique_prefix_opens_the_trace_and_ambiguity_is_named(self, store, facts):
        full = store.trace(facts.checkout_trace_id[:8].upper())
        assert full.trace_id.iloc[0] == facts.checkout_trace_id

    def test_ambiguous_prefix_lists_the_candidates(self, tmp_path):
        import pyarrow as pa

        from ingest import StoreWriter
        from ingest.store.encoding import table_from_columns

        ids = ["abcd" + "0" * 28, "abcd" + "1" * 28]
        columns = {
            "trace_id": ids,
            "span_id": ["a" * 16, "b" * 16],
            "name": ["x", "y"],
            "service_name": ["s", "s"],
            "start_time": pa.array([1_700_000_000_000_000_000] * 2, pa.int64()).cast(
                pa.timestamp("ns", tz="UTC")
            ),
            "end_time": pa.array([1_700_000_000_100_000_000] * 2, pa.int64()).cast(
                pa.timestamp("ns", tz="UTC")
            ),
            "duration_ns": [100_000_000] * 2,
        }
        StoreWriter(tmp_path / "s", durable=False).write("spans", table_from_columns("spans", columns, 2))
        with open_store(tmp_path / "s") as two:
            with pytest.raises(TraceNotFoundError, match="ambiguous.*" + ids[0]):
                two.trace("abcd")
            assert two.trace("abcd1").trace_id.iloc[0] == ids[1]

"""The Streamlit app under AppTest: every page on the fixture store, an empty store and a missing one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from explorer import open_store, queries
from explorer.store import Store
from tests.storegen import BIG_TRACE_SPANS, build_empty_store, shared_store

APP = str(Path(__file__).resolve().parent.parent / "explorer" / "streamlit_app.py")
PAGES = [
    "overview",
    "traces",
    "trace_view",
    "latency",
    "profiles",
    "alerts",
    "logs",
    "metrics",
    "sql",
    "llm",
    "sessions",
    "graph",
    "why_slow",
]


@pytest.fixture(scope="module")
def facts():
    return shared_store()


def _app(monkeypatch, root) -> AppTest:
    monkeypatch.setenv("LANGSWARM_TELEMETRY_DIR", str(root))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def _page(at: AppTest, name: str, **query_params: str) -> AppTest:
    at.switch_page(f"app_pages/{name}.py")
    for key, value in query_params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _figures(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def _waterfall(at: AppTest) -> dict:
    """The data the trace view's waterfall component (explorer/components/waterfall.js) draws."""
    components = [c for c in at.get("bidi_component") if c.proto.component_name == "langswarm_waterfall"]
    assert len(components) == 1
    return json.loads(components[0].proto.json)


def _bars(at: AppTest) -> dict[str, np.ndarray]:
    """The waterfall's bars in row order: y (row), base (start offset ms), x (width ms)."""
    data = _waterfall(at)
    return {
        "y": np.arange(data["rows"]),
        "base": np.asarray(data["offset"], dtype=float),
        "x": np.asarray(data["duration"], dtype=float),
    }


class TestEveryPage:
    @pytest.mark.parametrize("page", PAGES)
    def test_page_on_the_fixture_store(self, monkeypatch, facts, page):
        """Each page runs without exception or error box, and draws its content."""
        at = _page(
            _app(monkeypatch, facts.root),
            page,
            **({"trace_id": facts.checkout_trace_id} if page == "trace_view" else {}),
        )
        assert not at.error, [e.value for e in at.error]
        assert at.title and at.title[0].value
        # Every table reads back as the browser gets it (nested Arrow columns are shown as text or not sent).
        assert all(isinstance(table.value, pd.DataFrame) for table in at.dataframe)
        if page == "trace_view":
            assert _waterfall(at)["rows"] == 4
        elif page not in ("sql", "llm", "sessions"):  # the fixture store has no model calls or sessions
            assert _figures(at), f"{page} drew no chart"

    @pytest.mark.parametrize("page", PAGES)
    def test_page_on_an_empty_store(self, monkeypatch, tmp_path, page):
        """An existing but empty store: no exception, no error box."""
        at = _page(_app(monkeypatch, build_empty_store(tmp_path / "empty")), page)
        assert not at.error, [e.value for e in at.error]

    @pytest.mark.parametrize("page", ["overview", "trace_view", "sql"])
    def test_missing_store_says_how_to_open_one(self, monkeypatch, tmp_path, page):
        at = _page(_app(monkeypatch, tmp_path / "nowhere"), page)
        assert "does not exist" in at.sidebar.warning[0].value
        assert "--store DIR" in at.info[0].value

    def test_store_from_the_command_line_wins(self, monkeypatch, facts, tmp_path):
        """`streamlit run explorer -- --store DIR` beats the environment variable."""
        from explorer import app_state

        monkeypatch.setenv("LANGSWARM_TELEMETRY_DIR", str(tmp_path))
        assert app_state.default_store(["--store", str(facts.root)]) == (facts.root, "--store")
        assert app_state.default_store([]) == (tmp_path, "$LANGSWARM_TELEMETRY_DIR")
        monkeypatch.delenv("LANGSWARM_TELEMETRY_DIR")
        monkeypatch.chdir(tmp_path)
        assert app_state.default_store([])[1] == "sample store"


class TestOverview:
    def test_counts_and_links(self, monkeypatch, facts):
        at = _page(_app(monkeypatch, facts.root), "overview")
        metrics = {m.label: m.value for m in at.metric}
        assert metrics["Spans"] == f"{facts.span_count:,}"
        windows = next(d.value for d in at.dataframe if "lasted" in d.value.columns)
        firing = int((windows.state == "firing now").sum())
        assert metrics["Alerts firing now"] == str(firing) and len(windows) == 3
        assert set(windows.state) <= {"firing now", "resolved"}
        # The rate/errors/p95 chart over time: one line per service in each of its three panels.
        chart = next(f for f in _figures(at) if "over time" in f["layout"]["title"]["text"])
        assert {t["name"] for t in chart["data"]} >= {"frontend", "payment"}
        red = at.dataframe[0].value
        assert "traces?service=payment&operation=payment.charge" in red.traces.tolist()
        assert "traces?service=frontend&operation=POST+%2Fcheckout" in red.traces.tolist()

    def test_time_range_preset_narrows_everything(self, monkeypatch, facts):
        at = _page(_app(monkeypatch, facts.root), "overview")
        at.sidebar.selectbox(key="time_preset").select("Last 15 minutes").run()
        spans = int(at.metric[0].value.replace(",", ""))
        assert 0 < spans < facts.span_count

    def test_moving_between_pages_does_not_rescan(self, monkeypatch, facts):
        """Query results come from st.cache_data: returning to a page runs no SQL on the store."""
        at = _page(_app(monkeypatch, facts.root), "overview")
        _page(at, "traces")
        calls = []
        original = Store.sql
        monkeypatch.setattr(Store, "sql", lambda self, *a, **k: calls.append(a) or original(self, *a, **k))
        _page(at, "overview")
        assert calls == []


class TestTraces:
    def test_search_by_correlation_id_finds_the_trace(self, monkeypatch, facts):
        at = _page(_app(monkeypatch, facts.root), "traces")
        at.text_input(key="correlation_id").input(facts.correlation_id).run()
        results = at.dataframe[0].value
        assert results.trace_id.tolist() == [facts.checkout_trace_id]
        assert "**1 matching traces**" in [m.value for m in at.markdown]

    def test_deep_link_filters_and_status(self, monkeypatch, facts):
        at = _page(_app(monkeypatch, facts.root), "traces", service="payment", status="error")
        results = at.dataframe[0].value
        assert set(results.trace_id) == set(facts.error_trace_ids)
        assert (results.error_count > 0).all()

    def test_service_dropdown_scatter_and_error_rows(self, monkeypatch, facts):
        """Service is a dropdown like Operation; the scatter has one clickable point per result (trace id in
        customdata), error traces in their own red series; error rows are tinted."""
        at = _page(_app(monkeypatch, facts.root), "traces")
        assert {"any", "payment", "frontend"} <= set(at.selectbox(key="service").options)
        at.selectbox(key="service").select("payment").run()
        scatter = next(f for f in _figures(at) if f["layout"]["title"]["text"].startswith("Duration against"))
        ids = {c[0] for t in scatter["data"] for c in t["customdata"]}
        assert ids == set(at.dataframe[0].value.trace_id)
        failed = next(t for t in scatter["data"] if t["name"] == "has errors")
        assert {c[0] for c in failed["customdata"]} <= set(facts.error_trace_ids)

    def test_log_text_search(self, monkeypatch, facts):
        at = _page(_app(monkeypatch, facts.root), "traces")
        at.text_input(key="log_text").input("card declined").run()
        assert at.dataframe[0].value.trace_id.tolist() == [facts.checkout_trace_id]


class TestTraceView:
    def test_waterfall_bars_have_true_base_and_width(self, monkeypatch, facts):
        """One bar per span; base = ms offset from the trace start, x = duration, sub-ms kept exact."""
        at = _page(_app(monkeypatch, facts.root), "trace_view", trace_id=facts.checkout_trace_id)
        bars = _bars(at)
        assert bars["y"].tolist() == [0, 1, 2, 3]  # one bar per span
        assert bars["base"].tolist() == pytest.approx([0.0, 2.0, 2.3, 10.0], abs=1e-9)
        assert bars["x"].tolist() == pytest.approx([50.0, 7.0, 0.25, 35.0], abs=1e-9)
        header = at.markdown[0].value
        assert "**50 ms**" in header and "4 spans" in header and "2 errors" in header

    def test_span_detail_shows_the_stack_trace(self, monkeypatch, facts):
        at = _page(_app(monkeypatch, facts.root), "trace_view", trace_id=facts.checkout_trace_id)
        at.selectbox(key="span_pick").select(facts.checkout_span_ids["payment.charge"]).run()
        assert any("insufficient funds" in code.value and "Traceback" in code.value for code in at.code)
        profile_tables = [d.value for d in at.dataframe if "self_time_s" in d.value.columns]
        assert profile_tables and profile_tables[0].function.iloc[0] == "socket.recv"

    def test_collapsing_subtrees_of_the_big_trace(self, monkeypatch, facts):
        """Collapsing three steps hides their 50 calls each from the waterfall (10k-span traces stay usable)."""
        at = _page(_app(monkeypatch, facts.root), "trace_view", trace_id=facts.big_trace_id)
        assert len(_bars(at)["x"]) == BIG_TRACE_SPANS
        with open_store(facts.root) as store:
            tree = queries.trace_tree(store, facts.big_trace_id)
        steps = tree[tree.name == "batch.step"].span_id.tolist()[:3]
        at.multiselect(key="collapsed").set_value(steps).run()
        assert len(_bars(at)["x"]) == BIG_TRACE_SPANS - 3 * 50

    def test_call_graph_only_when_asked(self, monkeypatch, facts):
        """The trace's call graph is behind a toggle: opening a trace draws no plotly chart at all."""
        at = _page(_app(monkeypatch, facts.root), "trace_view", trace_id=facts.checkout_trace_id)
        assert _figures(at) == []
        at.toggle(key="show_call_graph").set_value(True).run()
        (graph,) = _figures(at)
        assert graph["layout"]["title"]["text"] == "Calls in this trace"

    def test_unknown_trace_is_a_warning_not_a_crash(self, monkeypatch, facts):
        at = _page(_app(monkeypatch, facts.root), "trace_view", trace_id="f" * 32)
        assert "is not in the store" in at.warning[0].value

    def test_no_trace_id_offers_recent_traces(self, monkeypatch, facts):
        at = _page(_app(monkeypatch, facts.root), "trace_view")
        chosen = at.selectbox(key="recent_trace").value
        at.button(key="open_recent").click().run()
        assert at.text_input(key="trace_id").value == chosen
        assert len(_bars(at)["x"]) > 0


class TestSqlPage:
    @pytest.mark.parametrize(
        ("sql", "message"),
        [
            ("COPY spans TO '/tmp/out.parquet' (FORMAT parquet)", "COPY refused"),
            ("ATTACH '/tmp/other.duckdb' AS other", "ATTACH refused"),
            ("SELECT * FROM read_csv('/etc/passwd')", "Only the store's views"),
        ],
    )
    def test_refuses_writes_attach_and_outside_files(self, monkeypatch, facts, sql, message):
        at = _page(_app(monkeypatch, facts.root), "sql")
        at.text_area(key="sql_text").input(sql).run()
        assert at.error and message in at.error[0].value

    def test_runs_a_query_and_offers_downloads(self, monkeypatch, facts):
        at = _page(_app(monkeypatch, facts.root), "sql")
        at.text_area(key="sql_text").input(
            "SELECT name, count(*) AS n FROM spans GROUP BY name ORDER BY n DESC"
        ).run()
        frame = at.dataframe[0].value
        assert frame.name.iloc[0] == "llm.call" and frame.n.iloc[0] == 1950
        assert {b.proto.label for b in at.get("download_button")} == {"Download CSV", "Download Parquet"}


class TestOtherPages:
    def test_logs_by_level_and_correlation(self, monkeypatch, facts):
        at = _page(_app(monkeypatch, facts.root), "logs", level="ERROR")
        assert len(at.dataframe[0].value) == 9
        at.text_input(key="correlation_id").input(facts.correlation_id).run()
        assert set(at.dataframe[0].value.trace_id) == {facts.checkout_trace_id}

    def test_what_would_have_fired(self, monkeypatch, facts):
        """A typed threshold over the stored error_rate gauge: one episode fires (minutes 20-29) and resolves."""
        at = _page(_app(monkeypatch, facts.root), "alerts")
        assert not at.selectbox(key="wf_metric").value.startswith("langswarm.telemetry.")
        at.selectbox(key="wf_metric").select("error_rate").run()
        # The threshold starts at the metric's p95 over the range, not 0 (which fires on every point).
        with open_store(facts.root) as store:
            values = queries.metric_series(store, name="error_rate", rate=False)["value"]
        assert at.number_input(key="wf_threshold").value == pytest.approx(values.quantile(0.95), rel=1e-2)
        at.number_input(key="wf_threshold").set_value(0.05).run()
        assert any("**1 alert(s) would have fired**, 1 resolved." in m.value for m in at.markdown)
        assert at.dataframe[-1].value.state.tolist() == ["firing", "resolved"]

    def test_alert_window_lists_traces_and_logs(self, monkeypatch, facts):
        at = _page(_app(monkeypatch, facts.root), "alerts")
        traces = next(d.value for d in at.dataframe if "root_name" in d.value.columns)
        assert facts.checkout_trace_id in traces.trace_id.tolist()  # 25 min in, inside the 20-30 min alert
        logs = next(d.value for d in at.dataframe if "body" in d.value.columns)
        assert "card declined for order 42" in logs.body.tolist()

    def test_metrics_counter_as_rate(self, monkeypatch, facts):
        at = _page(_app(monkeypatch, facts.root), "metrics", metric="llm.tokens")
        series = at.dataframe[0].value
        assert series.value.to_numpy() == pytest.approx(140 / 60)

    def test_one_point_counter_says_a_rate_needs_two(self, monkeypatch, tmp_path):
        """A counter collected once has no rate: the page says why and how to see the value, not just "No data"."""
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource

        from ingest import ParquetMetricExporter

        root = build_empty_store(tmp_path / "one-point")
        reader = PeriodicExportingMetricReader(ParquetMetricExporter(root), export_interval_millis=3_600_000)
        provider = MeterProvider(resource=Resource({"service.name": "cron"}), metric_readers=[reader])
        provider.get_meter("tests").create_counter("jobs.done").add(3)
        provider.shutdown()
        at = _page(_app(monkeypatch, root), "metrics", metric="jobs.done")
        assert any("A rate needs two points" in i.value for i in at.info)
        at.toggle(key="metric_rate").set_value(False).run()
        assert at.dataframe[0].value.value.tolist() == [3]

    def test_profiles_for_one_span(self, monkeypatch, facts):
        at = _page(
            _app(monkeypatch, facts.root),
            "profiles",
            trace_id=facts.checkout_trace_id,
            span_id=facts.checkout_span_ids["payment.charge"],
        )
        assert at.dataframe[0].value.function.iloc[0] == "socket.recv"
        assert [t["type"] for f in _figures(at) for t in f["data"]].count("icicle") == 1


class TestReload:
    def test_reload_picks_up_new_files(self, monkeypatch, facts, tmp_path):
        """Files written after the app opened the store appear after "Reload store"."""
        root = build_empty_store(tmp_path / "growing")
        at = _page(_app(monkeypatch, root), "overview")
        assert at.metric[0].value == "0"
        shutil.copytree(facts.root / "spans", root / "spans")
        at.sidebar.button(key="reload").click().run()
        _page(at, "overview")
        assert at.metric[0].value == f"{facts.span_count:,}"


class TestModes:
    def test_histogram_metric_as_percentiles_and_heatmap(self, monkeypatch, facts):
        at = _page(_app(monkeypatch, facts.root), "metrics", metric="llm.latency_seconds")
        assert [t["name"] for t in _figures(at)[0]["data"]] == ["p50", "p95", "p99"]
        at.button_group(key="hist_view").set_value("heatmap").run()
        assert _figures(at)[0]["data"][0]["type"] == "heatmap"

    def test_latency_compares_versions_and_windows(self, monkeypatch, facts):
        """Versions: one histogram panel per service.version; windows: panels A and B with percentiles."""
        at = _page(_app(monkeypatch, facts.root), "latency")
        at.button_group(key="lat_mode").set_value("versions").run()
        assert not at.exception
        assert set(at.dataframe[0].value.group) == {"1.0", "1.1"}
        at.button_group(key="lat_mode").set_value("windows").run()
        assert not at.exception
        assert [t["name"] for t in _figures(at)[0]["data"]] == ["window A", "window B"]
        assert set(at.dataframe[0].value.window) == {"A", "B"}


class TestMetricChoice:
    def test_sdk_self_metrics_go_last_or_hidden(self):
        """langswarm.telemetry.* sorts first alphabetically but must never be what a page opens on."""
        from explorer.app_state import metric_names

        names = ["langswarm.telemetry.dropped", "error_rate", "llm.tokens"]
        assert metric_names(names) == ["error_rate", "llm.tokens", "langswarm.telemetry.dropped"]
        assert metric_names(names, show_sdk=False) == ["error_rate", "llm.tokens"]
        assert metric_names(["langswarm.telemetry.dropped"], show_sdk=False) == [
            "langswarm.telemetry.dropped"
        ]

    def test_metrics_page_has_the_toggle(self, monkeypatch, facts):
        at = _page(_app(monkeypatch, facts.root), "metrics")
        assert at.toggle(key="metric_sdk").value is False
        assert not at.selectbox(key="metric").value.startswith("langswarm.telemetry.")

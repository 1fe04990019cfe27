"""Figure functions: DataFrames from the query layer in, plotly figures out (checked on their data)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from explorer import figures, open_store, queries
from explorer.otlp_export import trace_to_otlp, trace_to_otlp_json
from tests.storegen import BIG_TRACE_SPANS, shared_store


@pytest.fixture(scope="module")
def facts():
    return shared_store()


@pytest.fixture(scope="module")
def store(facts):
    with open_store(facts.root) as opened:
        yield opened


def _bar_rows(figure) -> dict[str, list]:
    """The waterfall's bars from all its bar traces, put back in row (y) order."""
    rows = []
    for trace in figure.data:
        if trace.type != "bar":
            continue
        widths = trace.marker.line.width
        for i, y in enumerate(trace.y):
            rows.append((int(y), float(trace.base[i]), float(trace.x[i]), trace.name, float(widths[i])))
    rows.sort()
    return {
        "y": [r[0] for r in rows],
        "base": [r[1] for r in rows],
        "x": [r[2] for r in rows],
        "status": [r[3] for r in rows],
        "outline": [r[4] for r in rows],
    }


class TestWaterfall:
    def test_one_bar_per_span_at_true_offset_and_width(self, store, facts):
        """Every span is one bar (in one of at most three status traces): base = offset, x = duration, exact ms."""
        tree = queries.trace_tree(store, facts.checkout_trace_id)
        figure = figures.waterfall(tree)
        bars = [t for t in figure.data if t.type == "bar"]
        assert 1 <= len(bars) <= 3 and {b.name for b in bars} == {"ERROR", "UNSET"}
        rows = _bar_rows(figure)
        assert rows["y"] == [0, 1, 2, 3]
        assert rows["base"] == pytest.approx([0.0, 2.0, 2.3, 10.0], abs=1e-9)
        assert rows["x"] == pytest.approx([50.0, 7.0, 0.25, 35.0], abs=1e-9)
        assert rows["status"] == ["ERROR", "UNSET", "UNSET", "ERROR"]
        assert all(b.orientation == "h" for b in bars)
        assert next(b for b in bars if b.name == "ERROR").marker.color == figures.STATUS_COLORS["ERROR"]

    def test_sub_millisecond_spans_get_a_visible_tick(self, store, facts):
        """80 µs calls in a 198 ms trace (under a pixel wide) get a start tick at their exact offset."""
        tree = queries.trace_tree(store, facts.big_trace_id)
        ticks = [t for t in figures.waterfall(tree).data if t.type == "scatter"]
        calls = tree[tree.name == "llm.call"]
        assert len(ticks) == 1 and len(ticks[0].x) == len(calls)
        assert list(ticks[0].x) == pytest.approx(calls.offset_ms.tolist(), abs=1e-9)
        assert _bar_rows(figures.waterfall(tree))["x"][calls.index[0]] == pytest.approx(0.08, abs=1e-9)

    def test_critical_path_and_selection_are_outlined(self, store, facts):
        big = queries.trace_tree(store, facts.big_trace_id)
        figure = figures.waterfall(big, selected=big.span_id.iloc[5])
        rows = _bar_rows(figure)
        widths = np.asarray(rows["outline"])
        assert rows["y"] == list(range(BIG_TRACE_SPANS))
        assert (widths[big.critical.to_numpy()] > 0).all() and (
            widths[~big.critical.to_numpy()] == 0
        ).sum() > 0
        assert widths[5] == 3.5
        assert figure.layout.yaxis.range == (figures.WATERFALL_ROWS - 0.5, -0.5)

    def test_empty_trace_frame_gives_a_message(self):
        figure = figures.waterfall(queries.trace_tree.__globals__["pd"].DataFrame())
        assert figure.layout.annotations[0].text.startswith("No data")


class TestCharts:
    def test_histogram_steps_follow_the_bins(self, store):
        hist = queries.latency_histogram(store, operation="db.query", bins=5, log_scale=True)
        figure = figures.duration_histogram(hist, log_x=True)
        trace = figure.data[0]
        assert max(trace.y) == hist["count"].max() and figure.layout.xaxis.type == "log"
        assert trace.x[0] == pytest.approx(hist.lo_ms.iloc[0]) and trace.x[-1] == pytest.approx(
            hist.hi_ms.iloc[-1]
        )

    def test_side_by_side_groups(self, store):
        hist = queries.latency_histogram(store, service="frontend", group_by="version", bins=5)
        figure = figures.duration_histogram(hist, side_by_side=True)
        assert [t.name for t in figure.data] == ["1.0", "1.1"] and figure.data[1].xaxis == "x2"

    def test_icicle_uses_the_call_tree(self, store):
        tree = queries.call_tree(queries.profile_hotspots(store), queries.profile_edges(store))
        icicle = figures.icicle(tree).data[0]
        assert icicle.type == "icicle" and icicle.branchvalues == "remainder"
        assert list(icicle.ids) == tree.id.tolist()

    def test_alert_timeline_has_threshold_and_windows(self, store, facts):
        windows = queries.alert_windows(queries.alert_events(store), until=facts.end)
        series = queries.metric_series(store, name="error_rate")
        figure = figures.alert_timeline(windows, series, threshold=0.05, metric="error_rate")
        names = [t.name for t in figure.data]
        assert "threshold 0.05" in names and {"critical", "warning", "info"} <= set(names)
        critical = next(t for t in figure.data if t.name == "critical")
        assert list(critical.x) == [600_000.0]  # a ten-minute window, in ms on a date axis

    @pytest.mark.parametrize(
        "build",
        [
            lambda s: figures.red_chart(queries.red_summary(s)),
            lambda s: figures.percentile_lines(queries.percentiles_over_time(s)),
            lambda s: figures.hotspot_bars(queries.profile_hotspots(s)),
            lambda s: figures.metric_lines(queries.metric_series(s, name="llm.tokens", group_by=["model"])),
            lambda s: figures.histogram_heatmap(queries.histogram_buckets(s, name="llm.latency_seconds")),
            lambda s: figures.log_volume(queries.search_logs(s)),
        ],
    )
    def test_each_chart_has_data(self, store, build):
        figure = build(store)
        assert figure.data and json.loads(figure.to_json())["data"]


class TestOtlpExport:
    def test_trace_round_trips_through_the_otlp_protobuf_schema(self, store, facts):
        """The export parses as an ExportTraceServiceRequest; ids are hex, times exact, kinds and status as ints."""
        tree = queries.trace_tree(store, facts.checkout_trace_id)
        text = trace_to_otlp_json(tree)
        json_format.Parse(
            text, ExportTraceServiceRequest()
        )  # field names, enum ints, int64 strings are valid
        data = json.loads(text)
        spans = {s["name"]: s for rs in data["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]}
        assert len(spans) == 4
        root = spans["POST /checkout"]
        assert (
            root["traceId"] == facts.checkout_trace_id and root["spanId"] == facts.checkout_span_ids["root"]
        )
        assert "parentSpanId" not in root and root["kind"] == 2 and root["status"]["code"] == 2
        query = spans["db.query"]
        assert int(query["endTimeUnixNano"]) - int(query["startTimeUnixNano"]) == facts.db_query_ns
        charge = spans["payment.charge"]
        exception = next(e for e in charge["events"] if e["name"] == "exception")
        assert any(a["key"] == "exception.stacktrace" for a in exception["attributes"])
        assert root["links"][0]["attributes"] == [
            {"key": "link.reason", "value": {"stringValue": "retry of"}}
        ]
        services = {
            a["value"]["stringValue"]
            for rs in data["resourceSpans"]
            for a in rs["resource"]["attributes"]
            if a["key"] == "service.name"
        }
        assert services == {"frontend", "cart", "payment"}

    def test_unicode_and_huge_values_are_kept(self, store, facts):
        tree = queries.trace_tree(store, facts.unicode_trace_id)
        span = trace_to_otlp(tree)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
        values = {a["key"]: a["value"]["stringValue"] for a in span["attributes"]}
        assert (
            values["用户"] == "数据 ✓"
            and len(values["prompt"]) == 200_000
            and span["name"] == "検索 🔍 query"
        )

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
    """The waterfall's bars (NaN-separated segments of its per-service WebGL line traces), in row order."""
    rows = []
    for trace in figure.data:
        if trace.meta != "service":
            continue
        x, y = np.asarray(trace.x, dtype=float), np.asarray(trace.y, dtype=float)
        for start, end, row in zip(x[0::3], x[1::3], y[0::3], strict=True):
            rows.append((-int(row), float(start), float(end - start), trace.name))
    rows.sort()
    return {
        "y": [r[0] for r in rows],
        "base": [r[1] for r in rows],
        "x": [r[2] for r in rows],
        "service": [r[3] for r in rows],
    }


def _trace(figure, name: str):
    return next(t for t in figure.data if t.name == name)


class TestWaterfall:
    def test_one_bar_per_span_at_true_offset_and_width(self, store, facts):
        """Every span is one segment of its service's WebGL line trace: start = offset, length = duration."""
        tree = queries.trace_tree(store, facts.checkout_trace_id)
        figure = figures.waterfall(tree)
        services = [t for t in figure.data if t.meta == "service"]
        assert all(t.type == "scattergl" and t.mode == "lines" for t in services)
        assert {t.name for t in services} == set(tree.service_name)
        rows = _bar_rows(figure)
        assert rows["y"] == [0, 1, 2, 3]
        assert rows["base"] == pytest.approx([0.0, 2.0, 2.3, 10.0], abs=1e-9)
        assert rows["x"] == pytest.approx([50.0, 7.0, 0.25, 35.0], abs=1e-9)
        assert rows["service"] == tree.service_name.tolist()
        colors = figures.service_colors(tree.service_name)
        assert {t.line.color for t in services} == set(colors.values())
        assert "#d62728" not in colors.values()  # red is for errors only

    def test_errors_durations_and_click_targets(self, store, facts):
        """Error spans get a red ✕ at their start; the spans trace carries span ids and duration labels."""
        tree = queries.trace_tree(store, facts.checkout_trace_id)
        figure = figures.waterfall(tree)
        errors = _trace(figure, "error")
        failed = tree[tree.status_code == "ERROR"]
        assert list(-errors.y) == failed.index.tolist()  # row i is drawn at y = -i
        assert list(errors.x) == pytest.approx(failed.offset_ms.tolist())
        spans = _trace(figure, "spans")
        assert [row[0] for row in spans.customdata] == tree.span_id.tolist()
        assert "payment.charge" in spans.hovertext[3]
        assert list(_trace(figure, "durations").text) == ["50 ms", "7 ms", "250 µs", "35 ms"]
        # One hit column on a fixed hidden axis: the nearest point to a click is the row under it.
        assert set(spans.x) == {0.5} and spans.xaxis == "x2" and figure.layout.xaxis2.fixedrange
        assert figure.layout.clickmode == "event+select"

    def test_events_and_logs_are_ticks_on_their_bars(self, store, facts):
        tree = queries.trace_tree(store, facts.checkout_trace_id)
        marks = queries.trace_marks(tree, queries.trace_logs(store, facts.checkout_trace_id))
        charge = tree.index[tree.span_id == facts.checkout_span_ids["payment.charge"]][0]
        figure = figures.waterfall(tree, marks=marks)
        events = _trace(figure, "events")
        assert list(events.x) == pytest.approx([12.0, 40.0])  # trace offsets of card.validated, exception
        assert set(np.round(-np.asarray(events.y, dtype=float))) == {charge}
        logs = _trace(figure, "logs")
        assert len(logs.x) == int((marks.kind == "log").sum()) > 0
        assert list(logs.x) == pytest.approx([1.0, 41.0], abs=1e-3)  # exact ns columns, not µs stamps

    def test_sub_millisecond_spans_get_a_visible_tick(self, store, facts):
        """80 µs calls in a 198 ms trace (under a pixel wide) get a start tick at their exact offset."""
        tree = queries.trace_tree(store, facts.big_trace_id)
        figure = figures.waterfall(tree)
        ticks = _trace(figure, "short spans")
        calls = tree[tree.name == "llm.call"]
        assert len(ticks.x) == len(calls)
        assert list(ticks.x) == pytest.approx(calls.offset_ms.tolist(), abs=1e-9)
        assert _bar_rows(figure)["x"][calls.index[0]] == pytest.approx(0.08, abs=1e-9)

    def test_critical_path_and_selection_are_distinct(self, store, facts):
        """The critical path is its own thin line over only its spans; the selection one highlighted row."""
        big = queries.trace_tree(store, facts.big_trace_id)
        figure = figures.waterfall(big, selected=big.span_id.iloc[5])
        assert _bar_rows(figure)["y"] == list(range(BIG_TRACE_SPANS))
        path = _trace(figure, "critical path")
        rows = sorted({-int(v) for v in np.asarray(path.y, dtype=float) if not np.isnan(v)})
        assert rows == big.index[big.critical].tolist()
        (band,) = figure.layout.shapes
        assert (band.y0, band.y1) == (-5.5, -4.5)
        assert figure.layout.yaxis.range == (-(figures.WATERFALL_ROWS - 0.5), 0.5)

    def test_ten_thousand_spans_stay_a_handful_of_traces(self):
        """Trace count does not grow with spans: WebGL batches, not one SVG element per span."""
        import pandas as pd

        n = 10_000
        tree = pd.DataFrame(
            {
                "trace_id": "t" * 32,
                "span_id": [f"{i:016x}" for i in range(n)],
                "name": "step",
                "service_name": np.where(np.arange(n) % 2, "a", "b"),
                "status_code": "UNSET",
                "offset_ms": np.arange(n) * 0.01,
                "duration_ms": 1.0,
                "depth": 1,
                "critical": False,
            }
        )
        figure = figures.waterfall(tree)
        assert len(figure.data) <= 6
        assert all(t.type == "scattergl" for t in figure.data if t.name != "durations")
        assert len(_trace(figure, "durations").x) == figures.WATERFALL_ROWS * 4

    def test_empty_trace_frame_gives_a_message(self):
        figure = figures.waterfall(queries.trace_tree.__globals__["pd"].DataFrame())
        assert figure.layout.annotations[0].text.startswith("No data")


def test_one_point_metric_has_readable_axes():
    """A single stored point: a minute either side on the time axis and plain numbers on the value axis."""
    import pandas as pd

    at = pd.Timestamp("2026-12-05 10:00:58.0967", tz="UTC")
    series = pd.DataFrame({"timestamp": [at], "series": ["queue.depth"], "value": [58.0967100001]})
    figure = figures.metric_lines(series, title="queue.depth", unit="1")
    low, high = (pd.Timestamp(v) for v in figure.layout.xaxis.range)
    assert (low, high) == (at - pd.Timedelta(minutes=1), at + pd.Timedelta(minutes=1))
    assert figure.layout.yaxis.range == pytest.approx((0.0, 58.0967100001 * 1.1))
    assert figure.data[0].marker.size == 9


class TestWaterfallData:
    """The columns the app's canvas waterfall draws: the same rows, colours and marks as the figure."""

    def test_rows_offsets_colours_and_errors(self, store, facts):
        tree = queries.trace_tree(store, facts.checkout_trace_id)
        data = figures.waterfall_data(tree, selected=facts.checkout_span_ids["payment.charge"])
        assert data["rows"] == 4 and data["span_id"] == tree.span_id.tolist()
        assert data["offset"] == pytest.approx([0.0, 2.0, 2.3, 10.0], abs=1e-9)
        assert data["duration"] == pytest.approx([50.0, 7.0, 0.25, 35.0], abs=1e-9)
        assert data["duration_text"] == ["50 ms", "7 ms", "250 µs", "35 ms"]
        colors = figures.service_colors(tree.service_name)
        assert [data["colors"][i] for i in data["service"]] == [colors[s] for s in tree.service_name]
        assert data["error"] == [int(s == "ERROR") for s in tree.status_code]
        assert data["selected"] == 3 and "payment.charge" in data["label"][3]
        json.dumps(data)  # what the component receives

    def test_marks_critical_path_and_an_unknown_selection(self, store, facts):
        tree = queries.trace_tree(store, facts.checkout_trace_id)
        marks = queries.trace_marks(tree, queries.trace_logs(store, facts.checkout_trace_id))
        data = figures.waterfall_data(tree, marks=marks, selected="0" * 16)
        charge = int(tree.index[tree.span_id == facts.checkout_span_ids["payment.charge"]][0])
        events = [i for i, kind in enumerate(data["marks"]["kind"]) if kind == "event"]
        assert [data["marks"]["offset"][i] for i in events] == pytest.approx([12.0, 40.0])
        assert {data["marks"]["row"][i] for i in events} == {charge}
        assert data["marks"]["kind"].count("log") == int((marks.kind == "log").sum()) > 0
        assert data["critical"] == tree.critical.astype(int).tolist()
        assert figures.waterfall_data(tree, show_critical=False)["critical"] == [0, 0, 0, 0]
        assert data["selected"] == -1

    def test_empty_tree(self):
        data = figures.waterfall_data(queries.trace_tree.__globals__["pd"].DataFrame())
        assert (data["rows"], data["span_id"], data["selected"]) == (0, [], -1)


class TestCharts:
    def test_histogram_steps_follow_the_bins(self, store):
        hist = queries.latency_histogram(store, operation="db.query", bins=5, log_scale=True, group_by="all")
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


class TestIcicle:
    def test_boxes_coloured_by_package_with_self_and_cumulative_hover(self, store):
        hotspots = queries.profile_hotspots(store)
        tree = queries.call_tree(hotspots, queries.profile_edges(store))
        files = dict(zip(hotspots["function"].astype(str), hotspots["file"].astype(str), strict=True))
        (icicle,) = figures.icicle(tree, files=files).data
        assert len(set(icicle.marker.colors)) > 1  # not one colour
        assert "self" in icicle.hovertemplate and "cumulative" in icicle.hovertemplate
        assert icicle.insidetextfont.size >= 12

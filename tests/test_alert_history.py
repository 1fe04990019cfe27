"""Rules over history: thresholds replayed over metrics written by the real OTel SDK into a Parquet store."""

from __future__ import annotations

import time

import pandas as pd
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from explorer import open_store
from explorer.alert_history import COLUMNS, alert_history
from explorer.errors import QueryError
from ingest import AlertSeverity, ConfigurationError, ParquetMetricExporter
from ingest.sdk.alerts import Threshold


class Meter:
    """A real MeterProvider whose every ``collect()`` writes one Parquet file of metric points."""

    def __init__(self, root, service="agent-api", instance="i-1"):
        resource = Resource.create({"service.name": service, "service.instance.id": instance})
        self.provider = MeterProvider(
            resource=resource,
            metric_readers=[
                PeriodicExportingMetricReader(ParquetMetricExporter(root), export_interval_millis=3_600_000)
            ],
        )
        self.meter = self.provider.get_meter("tests.history")

    def collect(self):
        self.provider.force_flush()
        time.sleep(0.002)  # real time passes between points: each collection gets its own timestamp

    def close(self):
        self.provider.shutdown()


@pytest.fixture
def meter(tmp_path):
    m = Meter(tmp_path)
    yield m, tmp_path
    m.close()


def stored_points(root, name):
    return open_store(root).sql(
        "SELECT timestamp, attributes['queue'] AS queue, value FROM metrics "
        "WHERE name = ? ORDER BY timestamp",
        [name],
    )


class TestAlertHistory:
    def test_gauge_crossing_and_clearing_per_series(self, meter):
        """Each series fires when it crosses and resolves when it clears, at the stored points' times."""
        m, root = meter
        depth = m.meter.create_gauge("queue_depth")
        plan = [(3, 1), (12, 1), (15, 2), (4, 30), (20, 40), (2, 1)]
        for tools, llm in plan:
            depth.set(tools, {"queue": "tools"})
            depth.set(llm, {"queue": "llm"})
            m.collect()
        points = stored_points(root, "queue_depth")
        tools_times = points[points["queue"] == "tools"]["timestamp"].tolist()
        llm_times = points[points["queue"] == "llm"]["timestamp"].tolist()

        history = alert_history(open_store(root), [Threshold("queue_depth", 10, AlertSeverity.WARNING)])
        assert list(history.columns) == COLUMNS
        got = [
            (row.labels["queue"], row.state, row.timestamp, row.current_value) for row in history.itertuples()
        ]
        assert got == [
            ("tools", "firing", tools_times[1], 12.0),
            ("llm", "firing", llm_times[3], 30.0),
            ("tools", "resolved", tools_times[3], 4.0),
            ("tools", "firing", tools_times[4], 20.0),
            ("llm", "resolved", llm_times[5], 1.0),
            ("tools", "resolved", tools_times[5], 2.0),
        ]
        first = history.iloc[0]
        assert (
            first["severity"] == "warning" and first["threshold"] == 10.0 and first["comparison"] == "greater"
        )
        assert first["service_name"] == "agent-api" and first["instance"] == "i-1"
        assert first["title"] == "Metric threshold exceeded: queue_depth"
        assert first["description"] == "queue_depth{queue=tools} = 12 is above the threshold 10"
        resolved = history.iloc[2]
        assert resolved["alert_id"] == first["alert_id"]
        assert resolved["firing_duration_s"] == pytest.approx(
            (tools_times[3] - tools_times[1]).total_seconds()
        )
        assert pd.isna(first["firing_duration_s"])
        assert history.iloc[3]["alert_id"] != first["alert_id"]

    def test_labels_select_series_and_less_comparison(self, meter):
        """``labels`` restricts the rule to matching series; ``less`` fires below the threshold."""
        m, root = meter
        free = m.meter.create_gauge("free_workers")
        for tools, llm in [(5, 5), (0, 0), (3, 0)]:
            free.set(tools, {"queue": "tools"})
            free.set(llm, {"queue": "llm"})
            m.collect()
        rules = [
            {
                "metric_name": "free_workers",
                "threshold": 1,
                "severity": "critical",
                "comparison": "less",
                "labels": {"queue": "tools"},
            }
        ]
        history = alert_history(open_store(root), rules)
        assert [(r.labels["queue"], r.state, r.current_value) for r in history.itertuples()] == [
            ("tools", "firing", 0.0),
            ("tools", "resolved", 3.0),
        ]
        assert set(history["severity"]) == {"critical"}

    def test_cumulative_counter_fires_once_and_stays_firing(self, meter):
        """A counter's running total crosses once; with no resolved row it was still firing at the end."""
        m, root = meter
        errors = m.meter.create_counter("llm_errors_total")
        for n in (1, 2, 5, 1):
            errors.add(n)
            m.collect()
        history = alert_history(open_store(root), [Threshold("llm_errors_total", 5, AlertSeverity.ERROR)])
        assert history["state"].tolist() == ["firing"]
        assert history.iloc[0]["current_value"] == 8.0

    def test_histogram_mean_between_points_is_compared(self, meter):
        """A histogram is compared by the mean of the observations since its previous stored point."""
        m, root = meter
        latency = m.meter.create_histogram("llm_latency_seconds")
        latency.record(1.0)
        m.collect()
        latency.record(7.0)
        latency.record(9.0)  # interval mean 8.0 (cumulative mean would be 5.67)
        m.collect()
        m.collect()  # nothing observed: no value, the alert keeps firing
        latency.record(2.0)
        m.collect()
        history = alert_history(
            open_store(root), [Threshold("llm_latency_seconds", 6, AlertSeverity.WARNING)]
        )
        assert history["state"].tolist() == ["firing", "resolved"]
        assert history["current_value"].tolist() == [8.0, 2.0]

    def test_instances_are_separate_series_and_time_window(self, tmp_path):
        """Two instances of a service never resolve each other; ``since`` starts every series afresh."""
        a, b = Meter(tmp_path, instance="a"), Meter(tmp_path, instance="b")
        try:
            ga, gb = a.meter.create_gauge("cpu"), b.meter.create_gauge("cpu")
            ga.set(0.95)
            a.collect()
            gb.set(0.10)
            b.collect()
            ga.set(0.97)
            a.collect()
            gb.set(0.99)
            b.collect()
            ga.set(0.20)
            a.collect()
        finally:
            a.close()
            b.close()
        store = open_store(tmp_path)
        rule = Threshold("cpu", 0.9, AlertSeverity.CRITICAL)
        history = alert_history(store, [rule])
        assert [(r.instance, r.state) for r in history.itertuples()] == [
            ("a", "firing"),
            ("b", "firing"),
            ("a", "resolved"),
        ]
        second = store.sql("SELECT timestamp FROM metrics WHERE name = 'cpu' ORDER BY timestamp")[
            "timestamp"
        ][1]
        later = alert_history(store, [rule], since=second)
        assert [(r.instance, r.state) for r in later.itertuples()] == [
            ("a", "firing"),
            ("b", "firing"),
            ("a", "resolved"),
        ]
        assert later.iloc[0]["timestamp"] > history.iloc[0]["timestamp"]
        assert alert_history(store, [rule], service="other").empty
        assert alert_history(store, [rule], until=second)["state"].tolist() == ["firing"]

    def test_empty_store_gives_typed_empty_frame(self, tmp_path):
        """No metrics: no rows, the same columns."""
        history = alert_history(open_store(tmp_path), [Threshold("cpu", 1, AlertSeverity.INFO)])
        assert history.empty and list(history.columns) == COLUMNS

    def test_bad_thresholds_and_arguments_are_named(self, tmp_path):
        """A bad rule names its position and the allowed values; a bad limit or time is refused."""
        store = open_store(tmp_path)
        ok = Threshold("cpu", 1, AlertSeverity.INFO)
        with pytest.raises(
            ConfigurationError, match=r"thresholds\[1\].*comparison.*'greater', 'less', 'equal'"
        ):
            alert_history(
                store, [ok, {"metric_name": "cpu", "threshold": 1, "severity": "info", "comparison": ">"}]
            )
        with pytest.raises(ConfigurationError, match=r"thresholds\[0\] has unknown keys \['treshold'\]"):
            alert_history(store, [{"metric_name": "cpu", "treshold": 1, "severity": "info"}])
        with pytest.raises(ConfigurationError, match=r"thresholds\[0\] must be a Threshold"):
            alert_history(store, [42])
        with pytest.raises(QueryError, match="limit must be a positive integer"):
            alert_history(store, [ok], limit=0)
        with pytest.raises(QueryError, match="since must be a datetime"):
            alert_history(store, [ok], since="yesterday-ish")

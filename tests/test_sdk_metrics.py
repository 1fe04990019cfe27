"""V2Metrics: buckets, label rules, timers, cleanup of idle series, bad input."""

from __future__ import annotations

import asyncio
import time

import pytest

from explorer import open_store
from ingest.sdk.metrics import MetricError


def _latest(provider, name: str):
    return open_store(provider.store_writer.root).sql(
        "SELECT * FROM metrics WHERE name = ? AND timestamp = (SELECT max(timestamp) FROM metrics WHERE name = ?)",
        [name, name],
    )


class TestInstruments:
    def test_buckets_reach_the_store(self, make_provider):
        """create_histogram(buckets=), custom_buckets (exact and by name fragment) and the seconds default."""
        provider = make_provider(
            {"metrics": {"custom_buckets": {"payload_bytes": [10, 100], "size": [1, 2, 3]}}}
        )
        metrics = provider.get_metrics("m")
        metrics.create_histogram("explicit_ms", buckets=[5, 50, 500]).observe(42)
        metrics.record_histogram("payload_bytes", 7)
        metrics.record_histogram("response_size_total", 2)
        metrics.record_histogram("wait_seconds", 0.2)
        metrics.record_histogram("plain", 3)
        provider.shutdown()
        bounds = {
            name: list(_latest(provider, name)["explicit_bounds"][0])
            for name in ("explicit_ms", "payload_bytes", "response_size_total", "wait_seconds", "plain")
        }
        assert bounds["explicit_ms"] == [5.0, 50.0, 500.0]
        assert bounds["payload_bytes"] == [10.0, 100.0]
        assert bounds["response_size_total"] == [1.0, 2.0, 3.0]
        assert bounds["wait_seconds"][:3] == [0.005, 0.01, 0.025]
        assert bounds["plain"][:3] == [0.0, 5.0, 10.0]  # the OTel default
        explicit = _latest(provider, "explicit_ms").iloc[0]
        assert list(explicit["bucket_counts"]) == [0, 1, 0, 0] and explicit["min"] == explicit["max"] == 42

    def test_exclude_and_constant_labels(self, make_provider):
        """exclude_labels are removed before recording; kubernetes_labels are added to every series."""
        provider = make_provider(
            {
                "metrics": {
                    "exclude_labels": ["user_id", "session_id"],
                    "kubernetes_labels": {"namespace": "prod"},
                }
            }
        )
        metrics = provider.get_metrics()
        metrics.increment_counter(
            "logins_total", labels={"user_id": "u1", "session_id": "s", "method": "sso"}
        )
        metrics.increment_counter("logins_total", labels={"user_id": "u2", "method": "sso"})
        snapshot = asyncio.run(metrics.export_metrics())["logins_total"]
        assert snapshot["value"] == 2 and len(snapshot["series"]) == 1
        provider.shutdown()
        attrs = dict(_latest(provider, "logins_total")["attributes"][0])
        assert attrs == {"method": "sso", "namespace": "prod"}

    def test_timer_and_instrument_api(self, make_provider):
        """timer() observes seconds (also on error); gauges and counters created once are reused."""
        provider = make_provider()
        metrics = provider.get_metrics("m")
        hist = metrics.create_histogram("step_seconds", description="a step")
        with hist.timer(labels={"step": "a"}):
            time.sleep(0.01)
        with pytest.raises(RuntimeError), metrics.timer("step_seconds", labels={"step": "b"}):
            raise RuntimeError("fail")
        assert metrics.create_counter("c_total") is metrics.create_counter("c_total")
        gauge = metrics.create_gauge("temperature")
        gauge.set(20.5, labels={"room": "a"})
        snap = metrics.registry.histogram("step_seconds").snapshot()
        assert snap["count"] == 2 and snap["min"] >= 0 and snap["max"] >= 0.01
        assert snap["description"] == "a step"

    def test_bad_input_is_rejected_with_a_clear_error(self, make_provider):
        """Type conflicts, bad names, negative counter increments and bad buckets name the problem."""
        metrics = make_provider().get_metrics()
        metrics.increment_counter("x_total")
        with pytest.raises(MetricError, match="'x_total' is already a counter; it cannot also be a gauge"):
            metrics.set_gauge("x_total", 1)
        with pytest.raises(MetricError, match="metric name '1bad name' is not valid"):
            metrics.increment_counter("1bad name")
        with pytest.raises(MetricError, match="counter 'x_total' can only increase"):
            metrics.increment_counter("x_total", -1)
        with pytest.raises(ValueError, match="strictly increasing"):
            metrics.create_histogram("h", buckets=[1, 1, 2])

    def test_include_histograms_false(self, make_provider):
        """With include_histograms off, histograms are not exported (export_metrics still reports them)."""
        provider = make_provider({"metrics": {"include_histograms": False}})
        metrics = provider.get_metrics()
        metrics.record_histogram("lat_seconds", 1.0)
        assert asyncio.run(metrics.export_metrics())["lat_seconds"]["count"] == 1
        provider.shutdown()
        assert _latest(provider, "lat_seconds").empty


class TestCleanup:
    def test_idle_series_are_forgotten_everywhere(self, make_provider):
        """cleanup_old_data drops idle series from export_metrics and from the next store export."""
        provider = make_provider()
        metrics = provider.get_metrics()
        metrics.increment_counter("jobs_total", labels={"job": "old"})
        time.sleep(0.01)
        cutoff = time.time()
        time.sleep(0.01)
        metrics.increment_counter("jobs_total", labels={"job": "new"})
        provider.force_flush()
        before = _latest(provider, "jobs_total")
        assert sorted(dict(a)["job"] for a in before["attributes"]) == ["new", "old"]
        assert asyncio.run(metrics.cleanup_old_data(cutoff)) == 1
        current = asyncio.run(metrics.export_metrics())["jobs_total"]
        assert [s["labels"]["job"] for s in current["series"]] == ["new"] and current["value"] == 1
        provider.shutdown()
        after = _latest(provider, "jobs_total")
        assert [dict(a)["job"] for a in after["attributes"]] == ["new"]

"""AlertManager: thresholds over the real provider's metrics, state per series, store rows, logs, handlers."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest

from explorer import open_store
from explorer.alert_history import alert_history
from ingest import Alert, AlertManager, AlertSeverity, ConfigurationError
from ingest.sdk.alerts import AlertDeliveryError, Threshold, WebhookAlertHandler
from ingest.sdk.correlation import correlation_scope


@pytest.fixture
def alerting(make_provider, tmp_path):
    provider = make_provider()
    manager = AlertManager(provider)

    def read():
        provider.force_flush()
        return open_store(tmp_path / "store")

    yield provider, manager, read
    manager.stop()


class Receiver:
    """A real HTTP server on 127.0.0.1 that records the JSON bodies POSTed to it."""

    def __init__(self, status=200):
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.received = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                receiver.headers.append(dict(self.headers))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status < 400 else b"invalid_token")
                receiver.received.set()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def alert_rows(store):
    return store.sql("SELECT * FROM alerts ORDER BY timestamp")


class TestStateMachine:
    def test_crossing_and_back_gives_one_firing_and_one_resolved_row(self, alerting):
        """Many checks while over the threshold still give one firing row; clearing gives one resolved row."""
        provider, manager, read = alerting
        metrics = provider.get_metrics("queue")
        manager.add_threshold("queue_depth", 10, AlertSeverity.WARNING)
        seen: list[Alert] = []
        manager.add_alert_handler(seen.append)

        async def drive():
            transitions = []
            for value in (3, 12, 15, 18, 4, 2, 5):
                metrics.set_gauge("queue_depth", value)
                provider.force_flush()  # a stored metric point per value, for the history comparison
                transitions += await manager.check_metrics_and_alert()
                await asyncio.sleep(0.01)
            return transitions

        transitions = asyncio.run(drive())
        assert [(a.state, a.current_value) for a in transitions] == [("firing", 12.0), ("resolved", 4.0)]
        assert seen == transitions
        store = read()
        rows = alert_rows(store)
        assert rows["state"].tolist() == ["firing", "resolved"]
        assert rows["current_value"].tolist() == [12.0, 4.0]
        assert rows["alert_id"].nunique() == 1 and rows["alert_id"][0] == transitions[0].alert_id
        assert set(rows["severity"]) == {"warning"} and set(rows["threshold"]) == {10.0}
        assert set(rows["component"]) == {"alerting"} and set(rows["service_name"]) == {"test-service"}
        assert rows["title"][0] == "Metric threshold exceeded: queue_depth"
        assert rows["description"][1] == "queue_depth = 4 is no longer above the threshold 10"
        assert rows["timestamp"][1] > rows["timestamp"][0]
        assert manager.firing == []

        logs = store.sql(
            "SELECT body, severity_number, attributes FROM logs WHERE body LIKE 'ALERT %' ORDER BY timestamp"
        )
        assert logs["body"].tolist() == [
            "ALERT firing: Metric threshold exceeded: queue_depth",
            "ALERT resolved: Metric threshold cleared: queue_depth",
        ]
        assert set(logs["severity_number"]) == {13}  # WARNING
        assert dict(logs["attributes"][0])["alert_id"] == transitions[0].alert_id

        counted = store.sql(
            "SELECT attributes['state'] AS state, value FROM metrics WHERE name = 'alerts_generated_total' "
            "QUALIFY row_number() OVER (PARTITION BY attributes['state'] ORDER BY timestamp DESC) = 1 "
            "ORDER BY state"
        )
        assert counted.to_dict("records") == [
            {"state": "firing", "value": 1.0},
            {"state": "resolved", "value": 1.0},
        ]

        # The history evaluation over the stored points finds the same crossing, before each live check.
        history = alert_history(store, manager.thresholds)
        assert [(r.state, r.current_value) for r in history.itertuples()] == [
            ("firing", 12.0),
            ("resolved", 4.0),
        ]
        live = rows["timestamp"].dt.tz_localize(None) if rows["timestamp"].dt.tz else rows["timestamp"]
        stored = (
            history["timestamp"].dt.tz_localize(None) if history["timestamp"].dt.tz else history["timestamp"]
        )
        assert stored[0] <= live[0] < stored[1] <= live[1]

    def test_background_loop_with_real_time(self, alerting):
        """The loop started inside an event loop checks on its own; handlers see one firing, one resolved."""
        provider, manager, read = alerting
        metrics = provider.get_metrics()
        gauge = metrics.create_gauge("llm_error_rate")
        manager.add_threshold("llm_error_rate", 0.2, AlertSeverity.CRITICAL)
        events: list[str] = []

        async def scenario():
            changed = asyncio.Event()

            async def on_alert(alert):  # async handlers are awaited
                events.append(alert.state)
                changed.set()

            manager.add_alert_handler(on_alert)
            gauge.set(0.05)
            manager.start(interval_s=0.01)
            assert manager.running
            await asyncio.sleep(0.05)  # several quiet checks
            gauge.set(0.5)
            await changed.wait()
            changed.clear()
            await asyncio.sleep(0.05)  # still over the threshold: more checks, no new alert
            gauge.set(0.1)
            await changed.wait()
            manager.stop()
            await manager.wait_stopped()

        asyncio.run(scenario())
        assert events == ["firing", "resolved"]
        assert not manager.running
        rows = alert_rows(read())
        assert rows["state"].tolist() == ["firing", "resolved"]
        assert set(rows["severity"]) == {"critical"}
        logs = read().sql("SELECT severity_text, severity_number FROM logs WHERE body LIKE 'ALERT %'")
        assert set(logs["severity_number"]) == {21}  # CRITICAL (OTel FATAL)

    def test_background_thread_when_no_loop_is_running(self, alerting):
        """start() from plain sync code runs the loop on a thread; stop() joins it."""
        provider, manager, read = alerting
        metrics = provider.get_metrics()
        manager.add_threshold("free_workers", 1, "warning", comparison="less")
        fired = threading.Event()
        resolved = threading.Event()
        manager.add_alert_handler(lambda a: (fired if a.state == "firing" else resolved).set())
        metrics.set_gauge("free_workers", 4)
        manager.start(interval_s=0.01)
        metrics.set_gauge("free_workers", 0)
        assert fired.wait(60)
        metrics.set_gauge("free_workers", 3)
        assert resolved.wait(60)
        manager.stop()
        assert not manager.running
        assert alert_rows(read())["state"].tolist() == ["firing", "resolved"]

    def test_each_series_is_its_own_alert_and_labels_select(self, alerting):
        """Series alert independently; a labels filter watches only matching series."""
        provider, manager, read = alerting
        metrics = provider.get_metrics()
        manager.add_threshold("queue_depth", 10, AlertSeverity.WARNING)
        manager.add_threshold("queue_depth", 50, AlertSeverity.CRITICAL, labels={"queue": "llm"})

        async def check(tools, llm):
            metrics.set_gauge("queue_depth", tools, labels={"queue": "tools"})
            metrics.set_gauge("queue_depth", llm, labels={"queue": "llm"})
            return [
                (a.severity.value, a.labels["queue"], a.state)
                for a in await manager.check_metrics_and_alert()
            ]

        async def drive():
            return [await check(20, 5), await check(20, 60), await check(5, 60), await check(5, 5)]

        steps = asyncio.run(drive())
        assert steps[0] == [("warning", "tools", "firing")]
        assert sorted(steps[1]) == [("critical", "llm", "firing"), ("warning", "llm", "firing")]
        assert steps[2] == [("warning", "tools", "resolved")]
        assert sorted(steps[3]) == [("critical", "llm", "resolved"), ("warning", "llm", "resolved")]
        rows = alert_rows(read())
        assert len(rows) == 6
        assert {dict(labels)["queue"] for labels in rows["labels"]} == {"tools", "llm"}

    def test_equal_comparison_and_missing_metric(self, alerting):
        """``equal`` fires on the exact value; a metric with no data yet is skipped, not an error."""
        provider, manager, _ = alerting
        manager.add_threshold("replicas", 0, AlertSeverity.ERROR, comparison="equal")
        manager.add_threshold("never_recorded", 1, AlertSeverity.INFO)
        metrics = provider.get_metrics()

        async def drive():
            out = []
            for value in (2, 0, 0, 1):
                metrics.set_gauge("replicas", value)
                out += [(a.state, a.current_value) for a in await manager.check_metrics_and_alert()]
            return out

        assert asyncio.run(drive()) == [("firing", 0.0), ("resolved", 1.0)]

    def test_trace_and_correlation_ids_of_the_context_are_kept(self, alerting):
        """A check inside a span and a correlation scope records both on the alert row."""
        provider, manager, read = alerting
        provider.get_metrics().set_gauge("cpu", 0.99)
        manager.add_threshold("cpu", 0.9, AlertSeverity.ERROR)

        async def drive():
            with correlation_scope("req-42"), provider.get_tracer("ops").start_span("health-check") as span:
                await manager.check_metrics_and_alert()
                return span.trace_id

        trace_id = asyncio.run(drive())
        row = alert_rows(read()).iloc[0]
        assert row["trace_id"] == trace_id and row["correlation_id"] == "req-42"
        provider.get_metrics().set_gauge("cpu", 0.1)
        asyncio.run(manager.check_metrics_and_alert())
        resolved = alert_rows(read()).iloc[1]
        assert pd.isna(resolved["trace_id"]) and pd.isna(resolved["correlation_id"])


class TestHandlers:
    def test_webhook_posts_slack_json_and_failing_handlers_do_not_stop_others(self, alerting, receiver):
        """A raising handler is logged; the webhook after it still gets both transitions over real HTTP."""
        provider, manager, read = alerting
        metrics = provider.get_metrics()
        manager.add_threshold("tokens_per_minute", 1000, AlertSeverity.ERROR)
        delivered: list[str] = []

        def broken(alert):
            raise RuntimeError("pager service is down")

        manager.add_alert_handler(broken)
        manager.add_alert_handler(WebhookAlertHandler(receiver.url))
        manager.add_alert_handler(lambda alert: delivered.append(alert.state))

        async def drive():
            with correlation_scope("job-7"):
                metrics.set_gauge("tokens_per_minute", 1500, labels={"model": "gpt-4o"})
                await manager.check_metrics_and_alert()
                metrics.set_gauge("tokens_per_minute", 200, labels={"model": "gpt-4o"})
                await manager.check_metrics_and_alert()

        asyncio.run(drive())
        assert delivered == ["firing", "resolved"]
        assert manager.handler_failures == 2
        assert len(receiver.bodies) == 2
        firing, resolved = receiver.bodies
        assert receiver.headers[0]["Content-Type"].startswith("application/json")
        assert (
            firing["text"] == ":rotating_light: [ERROR] Metric threshold exceeded: tokens_per_minute (firing)"
        )
        attachment = firing["attachments"][0]
        assert attachment["text"] == "tokens_per_minute{model=gpt-4o} = 1500 is above the threshold 1000"
        fields = {f["title"]: f["value"] for f in attachment["fields"]}
        assert fields["Value"] == "1500" and fields["Threshold"] == "greater 1000"
        assert fields["Labels"] == "model=gpt-4o" and fields["Correlation id"] == "job-7"
        assert fields["Service"] == "test-service"
        assert resolved["text"].startswith(":white_check_mark: [ERROR] Metric threshold cleared")
        assert resolved["attachments"][0]["color"] == "#2eb886"
        assert isinstance(attachment["ts"], int)

        failures = read().sql(
            "SELECT attributes FROM logs WHERE body = 'Alert handler failed' ORDER BY timestamp"
        )
        assert len(failures) == 2
        failure = dict(failures["attributes"][0])
        assert failure["error_type"] == "RuntimeError" and failure["error_message"] == "pager service is down"
        assert failure["handler"].endswith("broken")
        assert alert_rows(read())["state"].tolist() == ["firing", "resolved"]

    def test_webhook_alert_payload_and_http_errors(self, alerting):
        """payload='alert' posts the alert's fields; an HTTP error answer raises AlertDeliveryError."""
        ok, refusing = Receiver(), Receiver(status=403)
        try:
            alert = Alert(
                severity=AlertSeverity.WARNING,
                title="Metric threshold exceeded: cpu",
                description="cpu = 0.95 is above the threshold 0.9",
                component="alerting",
                metric_name="cpu",
                current_value=0.95,
                threshold=0.9,
                timestamp=time.time(),
            )
            assert WebhookAlertHandler(ok.url, payload="alert", headers={"X-Token": "t"}).send(alert) == 200
            body = ok.bodies[0]
            assert body["alert_id"] == alert.alert_id and body["severity"] == "warning"
            assert body["state"] == "firing" and body["current_value"] == 0.95
            assert ok.headers[0]["X-Token"] == "t"
            with pytest.raises(AlertDeliveryError, match=r"answered HTTP 403 .*invalid_token"):
                WebhookAlertHandler(refusing.url).send(alert)
        finally:
            ok.close()
            refusing.close()
        with pytest.raises(AlertDeliveryError, match="unreachable"):
            WebhookAlertHandler(ok.url, timeout_s=5).send(alert)  # server closed: connection refused


class TestConfiguration:
    @pytest.mark.parametrize(
        ("args", "kwargs", "message"),
        [
            (
                ("cpu", 0.9, AlertSeverity.ERROR),
                {"comparison": ">"},
                (
                    r"comparison for metric 'cpu' must be one of 'greater', 'less', 'equal', got '>'; "
                    r"did you mean 'greater'\?"
                ),
            ),
            (("cpu", 0.9, AlertSeverity.ERROR), {"comparison": "greter"}, r"did you mean 'greater'\?"),
            (
                ("cpu", "ninety", AlertSeverity.ERROR),
                {},
                r"threshold for metric 'cpu' must be a number .* got 'ninety' of type str",
            ),
            (("cpu", True, AlertSeverity.ERROR), {}, r"threshold for metric 'cpu' must be a number"),
            (("cpu", float("nan"), AlertSeverity.ERROR), {}, r"not NaN"),
            (
                ("cpu", 1, "urgent"),
                {},
                r"severity for metric 'cpu' must be an AlertSeverity \(AlertSeverity.INFO, ",
            ),
            (("", 1, AlertSeverity.INFO), {}, r"metric_name must be a non-empty string"),
            (
                ("cpu", 1, AlertSeverity.INFO),
                {"labels": ["host"]},
                r"labels for metric 'cpu' must be a mapping",
            ),
        ],
    )
    def test_bad_threshold_arguments_are_named(self, alerting, args, kwargs, message):
        """Each bad argument raises ConfigurationError naming it and what is allowed."""
        _, manager, _ = alerting
        with pytest.raises(ConfigurationError, match=message):
            manager.add_threshold(*args, **kwargs)
        assert manager.thresholds == {}

    def test_same_rule_replaces_and_other_arguments_are_checked(self, alerting):
        """Re-adding a rule replaces its threshold; bad interval, handler, URL and payload are refused."""
        _, manager, _ = alerting
        manager.add_threshold("cpu", 0.8, AlertSeverity.WARNING)
        rule = manager.add_threshold("cpu", 0.9, AlertSeverity.WARNING)
        manager.add_threshold("cpu", 0.95, "critical")
        assert len(manager.thresholds) == 2 and manager.thresholds[rule.key].threshold == 0.9
        assert isinstance(rule, Threshold) and rule.severity is AlertSeverity.WARNING
        with pytest.raises(ConfigurationError, match="interval_s must be a positive number"):
            manager.start(interval_s=0)
        with pytest.raises(ConfigurationError, match="alert handler must be callable"):
            manager.add_alert_handler("slack")
        with pytest.raises(ConfigurationError, match="webhook url must be an http"):
            WebhookAlertHandler("ftp://example.invalid/hook")
        with pytest.raises(ConfigurationError, match="payload must be one of 'slack', 'alert'"):
            WebhookAlertHandler("http://127.0.0.1:9/hook", payload="teams")

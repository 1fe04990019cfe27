"""Threshold alerts over the SDK's metrics, with state: one ``firing`` and one ``resolved`` row per episode.

``AlertManager(provider)`` holds thresholds (:class:`Threshold`) and handlers. Each check reads the
current metric values (``await provider.get_metrics().export_metrics()``), evaluates every threshold
on every matching series, and acts only on transitions: a series that crosses its threshold fires one
:class:`Alert` (``state="firing"``); the same series back on the right side resolves it (one row with
``state="resolved"`` and the same ``alert_id``). A series with no data keeps its state. Each transition
is written to the store's ``alerts`` table, logged at the alert's severity, counted in
``alerts_generated_total`` and passed to every handler (sync or async; a failing one is logged and the
others still run). :class:`WebhookAlertHandler` posts alerts as Slack-compatible JSON.

``explorer.alert_history`` evaluates the same :class:`Threshold` objects over the metrics in a store.
"""

from __future__ import annotations

import asyncio
import difflib
import inspect
import json
import logging
import math
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from ingest.errors import AlertDeliveryError, ConfigurationError
from ingest.sdk.correlation import get_correlation_id
from ingest.store.encoding import attribute_text, map_column, table_from_columns

if TYPE_CHECKING:
    from ingest.sdk.provider import ObservabilityProvider

_log = logging.getLogger(__name__)


class AlertSeverity(Enum):
    """How bad an alert is; the value is the log level name in lower case."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


#: Comparison name -> test of ``value`` against ``threshold``; the alert fires while the test holds.
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "greater": lambda value, threshold: value > threshold,
    "less": lambda value, threshold: value < threshold,
    "equal": lambda value, threshold: value == threshold,
}
_COMPARISON_WORDS = {"greater": "above", "less": "below", "equal": "equal to"}
_COMPARISON_HINTS = {
    ">": "greater",
    "gt": "greater",
    "<": "less",
    "lt": "less",
    "==": "equal",
    "=": "equal",
    "eq": "equal",
}
STATES = ("firing", "resolved")


def _closest(value: str, allowed: Iterable[str]) -> str:
    hint = _COMPARISON_HINTS.get(value.strip().lower()) if isinstance(value, str) else None
    if hint is None and isinstance(value, str):
        close = difflib.get_close_matches(value, list(allowed), n=1)
        hint = close[0] if close else None
    return f"; did you mean {hint!r}?" if hint else ""


def _severity(value: Any, where: str) -> AlertSeverity:
    if isinstance(value, AlertSeverity):
        return value
    if isinstance(value, str):
        try:
            return AlertSeverity(value.lower())
        except ValueError:
            pass
    allowed = ", ".join(f"AlertSeverity.{s.name}" for s in AlertSeverity)
    msg = f"{where} must be an AlertSeverity ({allowed}) or its value as text, got {value!r}"
    raise ConfigurationError(msg)


@dataclass(frozen=True)
class Threshold:
    """One alerting rule: ``metric_name`` compared with ``threshold`` on every series matching ``labels``.

    ``labels`` selects series whose labels include all these pairs (None: every series of the metric);
    each selected series is its own alert instance. Invalid values raise :class:`ConfigurationError`.
    """

    metric_name: str
    threshold: float
    severity: AlertSeverity
    comparison: str = "greater"
    labels: Mapping[str, str] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.metric_name, str) or not self.metric_name:
            msg = f"metric_name must be a non-empty string, got {self.metric_name!r}"
            raise ConfigurationError(msg)
        value = self.threshold
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            msg = (
                f"threshold for metric {self.metric_name!r} must be a number (int or float, not NaN), "
                f"got {value!r} of type {type(value).__name__}"
            )
            raise ConfigurationError(msg)
        object.__setattr__(self, "threshold", float(value))
        object.__setattr__(
            self, "severity", _severity(self.severity, f"severity for metric {self.metric_name!r}")
        )
        if not isinstance(self.comparison, str) or self.comparison not in COMPARISONS:
            msg = (
                f"comparison for metric {self.metric_name!r} must be one of "
                f"{', '.join(map(repr, COMPARISONS))}, got {self.comparison!r}"
                f"{_closest(self.comparison, COMPARISONS)}"
            )
            raise ConfigurationError(msg)
        if self.labels is not None:
            if not isinstance(self.labels, Mapping) or not all(isinstance(k, str) for k in self.labels):
                msg = (
                    f"labels for metric {self.metric_name!r} must be a mapping of label name to value, "
                    f"got {self.labels!r}"
                )
                raise ConfigurationError(msg)
            object.__setattr__(self, "labels", {k: attribute_text(v) for k, v in sorted(self.labels.items())})

    @property
    def key(self) -> tuple[Any, ...]:
        """Identity of the rule: adding a threshold with the same key replaces the old one."""
        return (self.metric_name, self.severity.value, self.comparison, tuple((self.labels or {}).items()))

    def crossed(self, value: float) -> bool:
        """Whether ``value`` is on the alerting side of the threshold."""
        return COMPARISONS[self.comparison](value, self.threshold)

    def selects(self, labels: Mapping[str, Any]) -> bool:
        """Whether a series with ``labels`` is one this rule watches."""
        if not self.labels:
            return True
        return all(k in labels and attribute_text(labels[k]) == v for k, v in self.labels.items())


@dataclass
class Alert:
    """One alert transition (the guide's fields, plus its state, trace, labels and the episode's id)."""

    severity: AlertSeverity
    title: str
    description: str
    component: str
    metric_name: str
    current_value: float
    threshold: float
    timestamp: float
    correlation_id: str | None = None
    state: str = "firing"
    trace_id: str | None = None
    comparison: str = "greater"
    labels: dict[str, str] = field(default_factory=dict)
    alert_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    service_name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (severity as its text value)."""
        return {
            "alert_id": self.alert_id,
            "state": self.state,
            "severity": self.severity.value,
            "title": self.title,
            "description": self.description,
            "component": self.component,
            "metric_name": self.metric_name,
            "labels": dict(self.labels),
            "current_value": self.current_value,
            "threshold": self.threshold,
            "comparison": self.comparison,
            "timestamp": self.timestamp,
            "correlation_id": self.correlation_id,
            "trace_id": self.trace_id,
            "service_name": self.service_name,
        }


def describe(rule: Threshold, labels: Mapping[str, str], value: float, state: str) -> tuple[str, str]:
    """Title and description of a transition (shared with the history evaluation)."""
    series = rule.metric_name + (
        "{" + ", ".join(f"{k}={v}" for k, v in labels.items()) + "}" if labels else ""
    )
    word = _COMPARISON_WORDS[rule.comparison]
    if state == "firing":
        title = f"Metric threshold exceeded: {rule.metric_name}"
        text = f"{series} = {value:g} is {word} the threshold {rule.threshold:g}"
    else:
        title = f"Metric threshold cleared: {rule.metric_name}"
        text = f"{series} = {value:g} is no longer {word} the threshold {rule.threshold:g}"
    return title, text


def alerts_table(alerts: list[Alert]) -> Any:
    """The ``alerts`` store table of some alerts (one row each)."""
    columns = {
        "timestamp": [int(a.timestamp * 1e9) for a in alerts],
        "alert_id": [a.alert_id for a in alerts],
        "severity": [a.severity.value for a in alerts],
        "title": [a.title for a in alerts],
        "description": [a.description for a in alerts],
        "component": [a.component for a in alerts],
        "metric_name": [a.metric_name for a in alerts],
        "current_value": [float(a.current_value) for a in alerts],
        "threshold": [float(a.threshold) for a in alerts],
        "comparison": [a.comparison for a in alerts],
        "state": [a.state for a in alerts],
        "correlation_id": [a.correlation_id for a in alerts],
        "trace_id": [a.trace_id for a in alerts],
        "service_name": [a.service_name for a in alerts],
        "labels": map_column(a.labels for a in alerts),
    }
    return table_from_columns("alerts", columns, len(alerts))


def metric_series(entry: Mapping[str, Any]) -> list[tuple[dict[str, Any], float]]:
    """(labels, value) of each series of an ``export_metrics()`` entry; series with no value are skipped."""
    series = entry.get("series")
    points = series if series else [entry]
    out = []
    for point in points:
        value = point.get("value")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            continue
        out.append((dict(point.get("labels") or {}), float(value)))
    return out


def _current_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid else None


def _handler_name(handler: Any) -> str:
    return getattr(handler, "__qualname__", None) or repr(handler)


class AlertManager:
    """Threshold alerting over the provider's metrics, with firing/resolved state per series.

    The background loop (:meth:`start`) runs as an asyncio task when started inside a running event
    loop, else on a daemon thread with its own event loop; :meth:`stop` ends it after the current check.
    """

    def __init__(
        self,
        observability_provider: ObservabilityProvider,
        *,
        component: str = "alerting",
        metrics_source: Callable[[], Awaitable[Mapping[str, Any]]] | None = None,
    ) -> None:
        self.observability = observability_provider
        self.component = component
        self.logger = observability_provider.get_logger("alerts")
        self.metrics = observability_provider.get_metrics("alerts")
        self.service_name = getattr(observability_provider, "service_name", None)
        self._writer = observability_provider.store_writer
        self._source = metrics_source
        self.alert_handlers: list[Callable[[Alert], Any]] = []
        self.thresholds: dict[tuple[Any, ...], Threshold] = {}
        self.alerts_counter = self.metrics.create_counter(
            "alerts_generated_total", description="Alert transitions (firing and resolved)"
        )
        self._firing: dict[tuple[Any, ...], Alert] = {}
        self._lock = threading.Lock()
        #: Alert rows that could not be written to the store / handler calls that raised / failed checks.
        self.rows_dropped = 0
        self.handler_failures = 0
        self.check_failures = 0
        self._stopping = False
        self._wakeup: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None

    def add_threshold(
        self,
        metric_name: str,
        threshold: float,
        severity: AlertSeverity,
        comparison: str = "greater",
        labels: Mapping[str, str] | None = None,
    ) -> Threshold:
        """Alert when ``metric_name`` (series matching ``labels``) is ``comparison`` than ``threshold``."""
        rule = Threshold(metric_name, threshold, severity, comparison, labels)
        with self._lock:
            self.thresholds[rule.key] = rule
        self.logger.info(
            "Alert threshold configured",
            metric_name=metric_name,
            threshold=rule.threshold,
            severity=rule.severity.value,
            comparison=comparison,
        )
        return rule

    def add_alert_handler(self, handler: Callable[[Alert], Any]) -> None:
        """Call ``handler(alert)`` on every transition; it may be sync or return an awaitable."""
        if not callable(handler):
            msg = f"alert handler must be callable (a function taking an Alert), got {handler!r}"
            raise ConfigurationError(msg)
        self.alert_handlers.append(handler)

    @property
    def firing(self) -> list[Alert]:
        """The alerts firing now (one per rule and series)."""
        with self._lock:
            return list(self._firing.values())

    async def check_metrics_and_alert(self) -> list[Alert]:
        """Evaluate every threshold on the current metric values; returns the transitions it acted on."""
        if self._source is not None:
            current = await self._source()
        else:
            current = await self.observability.get_metrics().export_metrics()
        transitions = self.evaluate(current)
        for alert in transitions:
            await self._fire_alert(alert)
        return transitions

    def evaluate(self, current: Mapping[str, Mapping[str, Any]], now: float | None = None) -> list[Alert]:
        """Update alert states from ``{metric: export entry}``; returns new transitions, undispatched."""
        now = time.time() if now is None else now
        trace_id = _current_trace_id()
        correlation_id = get_correlation_id()
        out: list[Alert] = []
        with self._lock:
            for key, rule in self.thresholds.items():
                entry = current.get(rule.metric_name)
                if not entry:
                    continue
                for labels, value in metric_series(entry):
                    if not rule.selects(labels):
                        continue
                    text_labels = {k: attribute_text(v) for k, v in sorted(labels.items())}
                    instance = (key, tuple(text_labels.items()))
                    firing = self._firing.get(instance)
                    crossed = rule.crossed(value)
                    if crossed and firing is None:
                        title, text = describe(rule, text_labels, value, "firing")
                        alert = Alert(
                            severity=rule.severity,
                            title=title,
                            description=text,
                            component=self.component,
                            metric_name=rule.metric_name,
                            current_value=value,
                            threshold=rule.threshold,
                            timestamp=now,
                            correlation_id=correlation_id,
                            state="firing",
                            trace_id=trace_id,
                            comparison=rule.comparison,
                            labels=text_labels,
                            service_name=self.service_name,
                        )
                        self._firing[instance] = alert
                        out.append(alert)
                    elif not crossed and firing is not None:
                        title, text = describe(rule, text_labels, value, "resolved")
                        del self._firing[instance]
                        out.append(
                            replace(
                                firing,
                                title=title,
                                description=text,
                                current_value=value,
                                timestamp=now,
                                correlation_id=correlation_id,
                                trace_id=trace_id,
                                state="resolved",
                            )
                        )
        return out

    async def _fire_alert(self, alert: Alert) -> None:
        """Record one transition (store, log, counter) and hand it to every handler."""
        try:
            self._writer.write("alerts", alerts_table([alert]))
        except Exception:
            self.rows_dropped += 1
            _log.exception("could not write alert %s (%s) to the store", alert.alert_id, alert.state)
        self.logger.log(
            alert.severity.value.upper(),
            f"ALERT {alert.state}: {alert.title}",
            alert_id=alert.alert_id,
            alert_state=alert.state,
            alert_severity=alert.severity.value,
            metric_name=alert.metric_name,
            current_value=alert.current_value,
            threshold=alert.threshold,
            alert_component=alert.component,
        )
        self.alerts_counter.increment(
            labels={
                "severity": alert.severity.value,
                "metric": alert.metric_name,
                "component": alert.component,
                "state": alert.state,
            }
        )
        for handler in list(self.alert_handlers):
            try:
                result = handler(alert)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                self.handler_failures += 1
                self.logger.error(
                    "Alert handler failed",
                    handler=_handler_name(handler),
                    alert_id=alert.alert_id,
                    error_type=type(exc).__name__,
                    error_message=str(exc),
                )

    def start(self, interval_s: float = 15.0) -> None:
        """Check every ``interval_s`` seconds in the background until :meth:`stop` (no-op if running)."""
        if isinstance(interval_s, bool) or not isinstance(interval_s, (int, float)) or not interval_s > 0:
            msg = f"interval_s must be a positive number of seconds, got {interval_s!r}"
            raise ConfigurationError(msg)
        if self.running:
            return
        self._stopping = False
        self._wakeup = None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            self._task = loop.create_task(self._run(float(interval_s)), name="alert-manager")
        else:
            self._thread = threading.Thread(
                target=asyncio.run, args=(self._run(float(interval_s)),), name="alert-manager", daemon=True
            )
            self._thread.start()

    @property
    def running(self) -> bool:
        """Whether the background loop is running."""
        return (self._task is not None and not self._task.done()) or (
            self._thread is not None and self._thread.is_alive()
        )

    def stop(self, timeout_s: float = 30.0) -> None:
        """End the background loop after its current check; on a thread, wait up to ``timeout_s`` for it."""
        self._stopping = True
        loop, wakeup = self._loop, self._wakeup
        if loop is not None and wakeup is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(wakeup.set)
            except RuntimeError:  # the loop closed meanwhile: the runner is gone already
                pass
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)

    async def wait_stopped(self) -> None:
        """Wait until the background task (started inside an event loop) has finished."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def _run(self, interval_s: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        while not self._stopping:
            try:
                await self.check_metrics_and_alert()
            except Exception as exc:
                self.check_failures += 1
                self.logger.error("Alert check failed", error_type=type(exc).__name__, error_message=str(exc))
            if self._stopping:
                break
            try:
                await asyncio.wait_for(self._wakeup.wait(), interval_s)
            except TimeoutError:
                pass


_SLACK_COLORS = {
    AlertSeverity.INFO: "#439fe0",
    AlertSeverity.WARNING: "#daa038",
    AlertSeverity.ERROR: "#e01e5a",
    AlertSeverity.CRITICAL: "#a30200",
}
_RESOLVED_COLOR = "#2eb886"


class WebhookAlertHandler:
    """Alert handler that POSTs each alert as JSON to ``url``.

    ``payload="slack"`` sends a Slack incoming-webhook message (``text`` + one attachment with fields),
    which Mattermost and Rocket.Chat also accept; ``payload="alert"`` sends :meth:`Alert.to_dict`. As a
    handler it runs the blocking POST in a worker thread so the event loop keeps running; a non-2xx
    answer or a network error raises :class:`AlertDeliveryError` (the manager logs it).
    """

    PAYLOADS = ("slack", "alert")

    def __init__(
        self,
        url: str,
        *,
        payload: str = "slack",
        timeout_s: float = 5.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
            msg = f"webhook url must be an http:// or https:// URL, got {url!r}"
            raise ConfigurationError(msg)
        if payload not in self.PAYLOADS:
            msg = f"payload must be one of {', '.join(map(repr, self.PAYLOADS))}, got {payload!r}"
            raise ConfigurationError(msg)
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not timeout_s > 0:
            msg = f"timeout_s must be a positive number of seconds, got {timeout_s!r}"
            raise ConfigurationError(msg)
        self.url = url
        self.payload_format = payload
        self.timeout_s = float(timeout_s)
        self.headers = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}

    def __repr__(self) -> str:
        return f"WebhookAlertHandler({self.url!r}, payload={self.payload_format!r})"

    def payload(self, alert: Alert) -> dict[str, Any]:
        """The JSON body posted for ``alert``."""
        if self.payload_format == "alert":
            return alert.to_dict()
        resolved = alert.state == "resolved"
        icon = ":white_check_mark:" if resolved else ":rotating_light:"
        fields = [
            {"title": "Metric", "value": alert.metric_name, "short": True},
            {"title": "Value", "value": f"{alert.current_value:g}", "short": True},
            {"title": "Threshold", "value": f"{alert.comparison} {alert.threshold:g}", "short": True},
            {"title": "State", "value": alert.state, "short": True},
            {"title": "Component", "value": alert.component, "short": True},
        ]
        if alert.service_name:
            fields.append({"title": "Service", "value": alert.service_name, "short": True})
        if alert.labels:
            labels = ", ".join(f"{k}={v}" for k, v in alert.labels.items())
            fields.append({"title": "Labels", "value": labels, "short": False})
        if alert.trace_id:
            fields.append({"title": "Trace", "value": alert.trace_id, "short": False})
        if alert.correlation_id:
            fields.append({"title": "Correlation id", "value": alert.correlation_id, "short": False})
        return {
            "text": f"{icon} [{alert.severity.value.upper()}] {alert.title} ({alert.state})",
            "attachments": [
                {
                    "fallback": f"[{alert.severity.value.upper()}] {alert.title}: {alert.description}",
                    "color": _RESOLVED_COLOR if resolved else _SLACK_COLORS[alert.severity],
                    "title": alert.title,
                    "text": alert.description,
                    "fields": fields,
                    "footer": f"langswarm-observability alert {alert.alert_id}",
                    "ts": int(alert.timestamp),
                }
            ],
        }

    def send(self, alert: Alert) -> int:
        """POST ``alert`` now (blocking); returns the HTTP status or raises :class:`AlertDeliveryError`."""
        body = json.dumps(self.payload(alert)).encode("utf-8")
        request = urllib.request.Request(self.url, data=body, headers=self.headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            detail = exc.read(500).decode("utf-8", "replace")
            msg = f"webhook {self.url} answered HTTP {exc.code} to alert {alert.alert_id}: {detail}"
            raise AlertDeliveryError(msg) from exc
        except (urllib.error.URLError, OSError) as exc:
            msg = f"webhook {self.url} unreachable for alert {alert.alert_id}: {exc}"
            raise AlertDeliveryError(msg) from exc

    async def __call__(self, alert: Alert) -> None:
        await asyncio.to_thread(self.send, alert)

"""V2Metrics: the guide's counters, histograms and gauges on OpenTelemetry instruments.

Every measurement goes to an OTel SDK instrument of the provider's ``MeterProvider`` (exported to
the store's ``metrics`` table, Prometheus, OTLP, ...). Alongside, a small registry per provider
keeps each series' current value and last update so that ``await export_metrics()`` can answer
"what is the value now" (the AlertManager's question) without a collection cycle, and
``await cleanup_old_data(cutoff)`` can forget idle series — in the registry and in the SDK's own
aggregation storage, which the SDK never shrinks by itself.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from ingest.errors import MetricError
from ingest.sdk._values import scalar_value
from ingest.sdk.config import bucket_bounds

_log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-/]{0,254}$")
#: Prometheus' default buckets, used for histograms whose name ends in ``_seconds``.
SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        msg = (
            f"metric name {name!r} is not valid; use a letter then letters, digits, '_', '.', '-' or '/' "
            "(at most 255 characters), e.g. 'http_requests_total'"
        )
        raise MetricError(msg)
    return name


class _Series:
    __slots__ = ("count", "labels", "max", "min", "sum", "updated", "value")

    def __init__(self, labels: dict[str, Any]) -> None:
        self.labels = labels
        self.value = 0.0
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.updated = 0.0


class Instrument:
    """Base of the three instrument kinds: label handling and the per-series registry."""

    kind = "instrument"

    def __init__(self, registry: MetricRegistry, name: str, description: str, unit: str, otel: Any) -> None:
        self.registry = registry
        self.name = name
        self.description = description
        self.unit = unit
        self.otel = otel
        self.series: dict[tuple[Any, ...], _Series] = {}
        self._lock = threading.Lock()

    def _series(self, labels: Mapping[str, Any] | None) -> tuple[_Series, dict[str, Any]]:
        attrs = self.registry.labels(labels)
        key = tuple(sorted(attrs.items())) if attrs else ()
        series = self.series.get(key)
        if series is None:
            with self._lock:
                series = self.series.setdefault(key, _Series(attrs))
        return series, attrs

    def snapshot(self) -> dict[str, Any]:
        """This instrument's entry of :meth:`V2Metrics.export_metrics`."""
        with self._lock:
            series = sorted(self.series.values(), key=lambda s: s.updated)
            rows = [self._row(s) for s in series]
        entry = {
            "value": self._top(series),
            "type": self.kind,
            "labels": self._top_labels(series),
            "description": self.description,
            "unit": self.unit,
            "updated_at": series[-1].updated if series else None,
            "series": rows,
        }
        return entry

    def _row(self, s: _Series) -> dict[str, Any]:
        return {"labels": dict(s.labels), "value": s.value, "updated_at": s.updated}

    def _top(self, series: list[_Series]) -> float:
        """The top-level value: the most recent series' value (counters override with the sum)."""
        return series[-1].value if series else 0.0

    def _top_labels(self, series: list[_Series]) -> dict[str, Any]:
        """The labels of the series that gave the top-level value."""
        return dict(series[-1].labels) if series else {}

    def forget_before(self, cutoff: float) -> int:
        """Drop series last updated before ``cutoff`` (epoch seconds); returns how many."""
        with self._lock:
            stale = [k for k, s in self.series.items() if s.updated < cutoff]
            removed = [self.series.pop(k) for k in stale]
        if removed and self.otel is not None:
            forget_sdk_series(self.registry.meter_provider, self.otel, [s.labels for s in removed])
        return len(removed)


class Counter(Instrument):
    """A monotonic sum; ``increment(value=1, labels=None)``."""

    kind = "counter"

    def increment(self, value: float = 1, labels: Mapping[str, Any] | None = None) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or value != value:
            msg = f"counter {self.name!r} can only increase; got {value!r} (use a gauge for values that go down)"
            raise MetricError(msg)
        series, attrs = self._series(labels)
        series.value += value
        series.count += 1
        series.updated = time.time()
        if self.otel is not None:
            self.otel.add(value, attrs)

    inc = add = increment

    def _top(self, series: list[_Series]) -> float:
        return float(sum(s.value for s in series))

    def _top_labels(self, series: list[_Series]) -> dict[str, Any]:
        return _common_labels([s.labels for s in series])


class Gauge(Instrument):
    """The last value set; ``set(value, labels=None)``."""

    kind = "gauge"

    def set(self, value: float, labels: Mapping[str, Any] | None = None) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            msg = f"gauge {self.name!r} needs a number; got {value!r}"
            raise MetricError(msg)
        series, attrs = self._series(labels)
        series.value = float(value)
        series.count += 1
        series.updated = time.time()
        if self.otel is not None:
            self.otel.set(value, attrs)


class Histogram(Instrument):
    """A distribution with fixed buckets; ``observe(value, labels=None)`` and ``timer(labels=None)``."""

    kind = "histogram"

    def __init__(self, *args: Any, buckets: tuple[float, ...], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.buckets = buckets

    def observe(self, value: float, labels: Mapping[str, Any] | None = None) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            msg = f"histogram {self.name!r} needs a number; got {value!r}"
            raise MetricError(msg)
        series, attrs = self._series(labels)
        series.value = float(value)
        series.count += 1
        series.sum += value
        series.min = min(series.min, value)
        series.max = max(series.max, value)
        series.updated = time.time()
        if self.otel is not None:
            self.otel.record(value, attrs)

    record = observe

    @contextmanager
    def timer(self, labels: Mapping[str, Any] | None = None) -> Iterator[None]:
        """Observe the seconds the ``with`` block takes (also when it raises)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.observe(time.perf_counter() - start, labels)

    def _row(self, s: _Series) -> dict[str, Any]:
        row = super()._row(s)
        row.update(count=s.count, sum=s.sum, min=_finite(s.min), max=_finite(s.max))
        return row

    def snapshot(self) -> dict[str, Any]:
        entry = super().snapshot()
        rows = entry["series"]
        count = sum(r["count"] for r in rows)
        total = sum(r["sum"] for r in rows)
        mins = [r["min"] for r in rows if r["min"] is not None]
        maxs = [r["max"] for r in rows if r["max"] is not None]
        entry.update(
            count=count,
            sum=total,
            mean=total / count if count else None,
            min=min(mins) if mins else None,
            max=max(maxs) if maxs else None,
            buckets=list(self.buckets),
        )
        return entry


def _finite(value: float) -> float | None:
    return None if math.isinf(value) else value


def _common_labels(label_sets: list[dict[str, Any]]) -> dict[str, Any]:
    if not label_sets:
        return {}
    common = dict(label_sets[0])
    for labels in label_sets[1:]:
        for key in list(common):
            if labels.get(key, object()) != common[key]:
                del common[key]
    return common


class MetricRegistry:
    """Per-provider instruments by name, label rules (``exclude_labels``, ``kubernetes_labels``), buckets."""

    def __init__(
        self, meter_provider: Any, metrics_config: Mapping[str, Any], *, enabled: bool = True
    ) -> None:
        self.meter_provider = meter_provider
        self.meter = meter_provider.get_meter("langswarm") if enabled else None
        self.config = metrics_config
        self.enabled = enabled
        self.exclude = frozenset(metrics_config.get("exclude_labels", ()))
        self.constant = dict(metrics_config.get("kubernetes_labels", {}))
        self.custom_buckets: Mapping[str, tuple[float, ...]] = metrics_config.get("custom_buckets", {})
        self.include_histograms = metrics_config.get("include_histograms", True)
        self.instruments: dict[str, Instrument] = {}
        self._lock = threading.Lock()

    def labels(self, labels: Mapping[str, Any] | None) -> dict[str, Any]:
        """Labels as recorded: excluded keys removed, constant labels added, values made attribute-safe."""
        if not labels and not self.constant:
            return {}
        out = dict(self.constant)
        if labels:
            exclude = self.exclude
            for key, value in labels.items():
                if key in exclude:
                    continue
                out[str(key)] = scalar_value(value)
        return out

    def buckets_for(self, name: str, explicit: Sequence[float] | None) -> tuple[float, ...]:
        """Explicit buckets, else ``custom_buckets[name]``, else the longest key contained in the name."""
        if explicit is not None:
            return bucket_bounds(list(explicit), f"buckets of histogram {name!r}")
        if name in self.custom_buckets:
            return self.custom_buckets[name]
        matches = [key for key in self.custom_buckets if key in name]
        if matches:
            return self.custom_buckets[max(matches, key=len)]
        if name.endswith("_seconds"):
            return SECONDS_BUCKETS
        return ()

    def _get(self, name: str, kind: type[Instrument], make: Callable[[], Instrument]) -> Instrument:
        instrument = self.instruments.get(name)
        if instrument is None:
            with self._lock:
                instrument = self.instruments.get(name)
                if instrument is None:
                    instrument = self.instruments[name] = make()
        if type(instrument) is not kind:
            msg = (
                f"metric {name!r} is already a {instrument.kind}; it cannot also be a {kind.kind} "
                "(use another name)"
            )
            raise MetricError(msg)
        return instrument

    def counter(self, name: str, description: str = "", unit: str = "") -> Counter:
        _check_name(name)

        def make() -> Instrument:
            otel = self.meter.create_counter(name, unit=unit, description=description) if self.meter else None
            return Counter(self, name, description, unit, otel)

        return self._get(name, Counter, make)  # type: ignore[return-value]

    def gauge(self, name: str, description: str = "", unit: str = "") -> Gauge:
        _check_name(name)

        def make() -> Instrument:
            otel = self.meter.create_gauge(name, unit=unit, description=description) if self.meter else None
            return Gauge(self, name, description, unit, otel)

        return self._get(name, Gauge, make)  # type: ignore[return-value]

    def histogram(
        self, name: str, description: str = "", unit: str = "", buckets: Sequence[float] | None = None
    ) -> Histogram:
        _check_name(name)
        bounds = self.buckets_for(name, buckets)

        def make() -> Instrument:
            otel = None
            if self.meter is not None and self.include_histograms:
                otel = self.meter.create_histogram(
                    name,
                    unit=unit,
                    description=description,
                    explicit_bucket_boundaries_advisory=bounds or None,
                )
            return Histogram(self, name, description, unit, otel, buckets=bounds)

        return self._get(name, Histogram, make)  # type: ignore[return-value]


def forget_sdk_series(meter_provider: Any, instrument: Any, label_sets: list[dict[str, Any]]) -> int:
    """Remove series from the OTel SDK's per-reader aggregation storage; returns how many were removed.

    The SDK keeps every attribute set it has seen for the life of the process and has no public
    API to drop one, so this reaches into its storage (``MetricReaderStorage`` →
    ``_ViewInstrumentMatch._attributes_aggregation``). If those internals change, nothing is
    removed from the SDK, a warning is logged and the registry still forgets the series.
    """
    try:
        from opentelemetry.sdk.metrics._internal._view_instrument_match import _hash_attributes

        storages = meter_provider._measurement_consumer._reader_storages.values()
        removed = 0
        for storage in storages:
            for match in storage._instrument_view_instrument_matches.get(instrument, ()):
                with match._lock:
                    for labels in label_sets:
                        if match._attributes_aggregation.pop(_hash_attributes(labels), None) is not None:
                            removed += 1
        return removed
    except (AttributeError, ImportError, TypeError):
        _log.warning("cannot forget metric series in the OTel SDK storage: SDK internals changed")
        return 0


class V2Metrics:
    """The guide's metrics API for one component, over its provider's :class:`MetricRegistry`.

    Names are shared by every component of a provider (``component`` is only a default label
    source for callers); ``export_metrics()`` therefore shows all of the provider's metrics.
    """

    def __init__(self, registry: MetricRegistry, component: str | None = None) -> None:
        self.registry = registry
        self.component = component

    def increment_counter(self, name: str, value: float = 1, labels: Mapping[str, Any] | None = None) -> None:
        self.registry.counter(name).increment(value, labels)

    def record_histogram(self, name: str, value: float, labels: Mapping[str, Any] | None = None) -> None:
        self.registry.histogram(name).observe(value, labels)

    def set_gauge(self, name: str, value: float, labels: Mapping[str, Any] | None = None) -> None:
        self.registry.gauge(name).set(value, labels)

    def create_counter(self, name: str, description: str = "", unit: str = "") -> Counter:
        return self.registry.counter(name, description, unit)

    def create_histogram(
        self, name: str, description: str = "", unit: str = "", buckets: Sequence[float] | None = None
    ) -> Histogram:
        return self.registry.histogram(name, description, unit, buckets)

    def create_gauge(self, name: str, description: str = "", unit: str = "") -> Gauge:
        return self.registry.gauge(name, description, unit)

    @contextmanager
    def timer(self, name: str, labels: Mapping[str, Any] | None = None) -> Iterator[None]:
        """Observe the seconds a ``with`` block takes into histogram ``name``."""
        with self.registry.histogram(name).timer(labels):
            yield

    async def export_metrics(self) -> dict[str, dict[str, Any]]:
        """Current values: ``{name: {"value", "type", "labels", "series", ...}}``.

        ``value`` is the sum over series for a counter, the most recently set series for a gauge,
        and the most recent observation for a histogram (which also has ``count``, ``sum``,
        ``mean``, ``min``, ``max``, ``buckets`` over all series). ``labels`` are the labels every
        series shares for a counter, and those of the series that gave ``value`` otherwise;
        ``series`` lists each label set with its own value and ``updated_at``.
        """
        return self.snapshot()

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """The synchronous form of :meth:`export_metrics`."""
        return {name: inst.snapshot() for name, inst in list(self.registry.instruments.items())}

    async def cleanup_old_data(self, cutoff: float) -> int:
        """Forget series not updated since ``cutoff`` (epoch seconds); returns how many were forgotten."""
        return sum(inst.forget_before(cutoff) for inst in list(self.registry.instruments.values()))

"""OTel SDK metrics to the ``metrics`` table (one row per data point), and the row builder the OTLP
metric decoders share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from ingest.store import schema
from ingest.store.encoding.columns import MapColumn, encoded_pairs, table_from_columns


class MetricRows:
    """Column lists for the ``metrics`` table, filled one data point at a time."""

    def __init__(self) -> None:
        nanos = set(schema.NANO_COLUMNS["metrics"].values())  # derived from the timestamps at finish
        self.columns: dict[str, list[Any]] = {name: [] for name in schema.METRICS.names if name not in nanos}
        self.attributes = MapColumn()
        self.resources = MapColumn()
        self.num_rows = 0

    def add(
        self,
        *,
        attributes: Mapping[str, Any] | None,
        resource: tuple[list[str], list[str]],
        **values: Any,
    ) -> None:
        """Append one data point; ``values`` are column name → value, absent columns become NULL."""
        for name, column in self.columns.items():
            column.append(values.get(name))
        self.attributes.add(attributes)
        self.resources.add_encoded(*resource)
        self.num_rows += 1

    def finish(self) -> pa.Table:
        columns: dict[str, Any] = dict(self.columns)
        columns["attributes"] = self.attributes.finish()
        columns["resource_attributes"] = self.resources.finish()
        return table_from_columns("metrics", columns, self.num_rows)


_TEMPORALITY = {1: "delta", 2: "cumulative"}


def encode_metrics(metrics_data: Any) -> pa.Table:
    """Encode an OTel SDK ``MetricsData`` as a ``metrics`` table, one row per data point."""
    # Local import: the metrics SDK is heavy and only needed when metrics are exported.
    from opentelemetry.sdk.metrics.export import (
        ExponentialHistogram,
        ExponentialHistogramDataPoint,
        Gauge,
        Histogram,
        HistogramDataPoint,
        NumberDataPoint,
        Sum,
    )

    rows = MetricRows()
    p: NumberDataPoint | HistogramDataPoint | ExponentialHistogramDataPoint
    for resource_metrics in metrics_data.resource_metrics:
        resource = resource_metrics.resource
        resource_pairs = encoded_pairs(resource.attributes)
        service = resource.attributes.get("service.name")
        for scope_metrics in resource_metrics.scope_metrics:
            scope_name = scope_metrics.scope.name if scope_metrics.scope else None
            for metric in scope_metrics.metrics:
                data = metric.data
                common = {
                    "name": metric.name,
                    "description": metric.description or None,
                    "unit": metric.unit or None,
                    "service_name": service,
                    "scope_name": scope_name,
                }
                if isinstance(data, Sum):
                    kind = "counter" if data.is_monotonic else "gauge"
                    temporality = _TEMPORALITY.get(int(data.aggregation_temporality))
                    for p in data.data_points:
                        rows.add(
                            attributes=p.attributes,
                            resource=resource_pairs,
                            timestamp=p.time_unix_nano,
                            start_timestamp=p.start_time_unix_nano,
                            type=kind,
                            is_monotonic=data.is_monotonic,
                            temporality=temporality,
                            value=float(p.value),
                            **common,
                        )
                elif isinstance(data, Gauge):
                    for p in data.data_points:
                        rows.add(
                            attributes=p.attributes,
                            resource=resource_pairs,
                            timestamp=p.time_unix_nano,
                            start_timestamp=p.start_time_unix_nano or None,
                            type="gauge",
                            value=float(p.value),
                            **common,
                        )
                elif isinstance(data, Histogram):
                    temporality = _TEMPORALITY.get(int(data.aggregation_temporality))
                    for p in data.data_points:
                        rows.add(
                            attributes=p.attributes,
                            resource=resource_pairs,
                            timestamp=p.time_unix_nano,
                            start_timestamp=p.start_time_unix_nano,
                            type="histogram",
                            temporality=temporality,
                            count=p.count,
                            sum=float(p.sum),
                            bucket_counts=list(p.bucket_counts),
                            explicit_bounds=[float(b) for b in p.explicit_bounds],
                            min=_finite_or_none(p.min),
                            max=_finite_or_none(p.max),
                            **common,
                        )
                elif isinstance(data, ExponentialHistogram):
                    temporality = _TEMPORALITY.get(int(data.aggregation_temporality))
                    for p in data.data_points:
                        rows.add(
                            attributes=p.attributes,
                            resource=resource_pairs,
                            timestamp=p.time_unix_nano,
                            start_timestamp=p.start_time_unix_nano,
                            type="exponential_histogram",
                            temporality=temporality,
                            count=p.count,
                            sum=float(p.sum),
                            min=_finite_or_none(p.min),
                            max=_finite_or_none(p.max),
                            scale=p.scale,
                            zero_count=p.zero_count,
                            positive_offset=p.positive.offset,
                            positive_bucket_counts=list(p.positive.bucket_counts),
                            negative_offset=p.negative.offset,
                            negative_bucket_counts=list(p.negative.bucket_counts),
                            **common,
                        )
    return rows.finish()


def _finite_or_none(value: float | None) -> float | None:
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return None
    return float(value)

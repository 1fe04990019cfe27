"""``ExportMetricsServiceRequest`` to ``metrics`` rows, one per data point of the five point types."""

from __future__ import annotations

from typing import Any

from ingest.sources.otlp.columns import _resource_pairs
from ingest.sources.otlp.model import _INT64_MAX, Decoded
from ingest.sources.otlp.values import any_value
from ingest.store.encoding import MetricRows

_TEMPORALITY = {1: "delta", 2: "cumulative"}


def _point_attributes(point: Any) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in point.attributes}


def _optional(point: Any, name: str) -> float | None:
    return getattr(point, name) if point.HasField(name) else None


def decode_metrics(request: Any) -> Decoded:
    """Data points of an ``ExportMetricsServiceRequest``, one row each (all five metric types)."""
    rows = MetricRows()
    errors: list[str] = []
    rejected = 0
    for r, resource_metrics in enumerate(request.resource_metrics):
        rkeys, rvalues, service = _resource_pairs(resource_metrics.resource)
        resource = (rkeys, rvalues)
        for s, scope_metrics in enumerate(resource_metrics.scope_metrics):
            scope_name = scope_metrics.scope.name or None
            for m, metric in enumerate(scope_metrics.metrics):
                common = {
                    "name": metric.name,
                    "description": metric.description or None,
                    "unit": metric.unit or None,
                    "service_name": service,
                    "scope_name": scope_name,
                }
                kind = metric.WhichOneof("data")
                if kind is None:
                    # A metric with no data carries no point: nothing to store, nothing lost.
                    continue
                data = getattr(metric, kind)
                for p, point in enumerate(data.data_points):
                    if max(point.time_unix_nano, point.start_time_unix_nano) > _INT64_MAX:
                        rejected += 1
                        if len(errors) < 10:
                            errors.append(
                                f"resourceMetrics[{r}].scopeMetrics[{s}].metrics[{m}].dataPoints[{p}]: "
                                "timeUnixNano is past the year 2262"
                            )
                        continue
                    _add_point(rows, kind, data, point, resource, common)
    table = rows.finish() if rows.num_rows else None
    return Decoded("metrics", table, rejected, errors)


def _add_point(
    rows: MetricRows, kind: str, data: Any, point: Any, resource: tuple[list[str], list[Any]], common: dict
) -> None:
    base = {
        "timestamp": point.time_unix_nano or None,
        "start_timestamp": point.start_time_unix_nano or None,
    }
    if kind in ("gauge", "sum"):
        which = point.WhichOneof("value")
        value = None if which is None else float(getattr(point, which))
        if kind == "sum":
            rows.add(
                attributes=_point_attributes(point),
                resource=resource,
                type="counter" if data.is_monotonic else "gauge",
                is_monotonic=data.is_monotonic,
                temporality=_TEMPORALITY.get(data.aggregation_temporality),
                value=value,
                **base,
                **common,
            )
        else:
            rows.add(
                attributes=_point_attributes(point),
                resource=resource,
                type="gauge",
                value=value,
                **base,
                **common,
            )
    elif kind == "histogram":
        rows.add(
            attributes=_point_attributes(point),
            resource=resource,
            type="histogram",
            temporality=_TEMPORALITY.get(data.aggregation_temporality),
            count=point.count,
            sum=_optional(point, "sum"),
            bucket_counts=list(point.bucket_counts),
            explicit_bounds=list(point.explicit_bounds),
            min=_optional(point, "min"),
            max=_optional(point, "max"),
            **base,
            **common,
        )
    elif kind == "exponential_histogram":
        rows.add(
            attributes=_point_attributes(point),
            resource=resource,
            type="exponential_histogram",
            temporality=_TEMPORALITY.get(data.aggregation_temporality),
            count=point.count,
            sum=_optional(point, "sum"),
            min=_optional(point, "min"),
            max=_optional(point, "max"),
            scale=point.scale,
            zero_count=point.zero_count,
            positive_offset=point.positive.offset,
            positive_bucket_counts=list(point.positive.bucket_counts),
            negative_offset=point.negative.offset,
            negative_bucket_counts=list(point.negative.bucket_counts),
            **base,
            **common,
        )
    else:  # summary
        rows.add(
            attributes=_point_attributes(point),
            resource=resource,
            type="summary",
            count=point.count,
            sum=point.sum,
            quantiles=[{"quantile": q.quantile, "value": q.value} for q in point.quantile_values],
            **base,
            **common,
        )

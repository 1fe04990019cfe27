"""Rules over history: replay alert thresholds over the metric points already in a store.

For tuning thresholds after an incident: ``alert_history(store, thresholds)`` returns the transitions
an :class:`ingest.sdk.alerts.AlertManager` with those thresholds would have produced had it checked at every
stored data point — one ``firing`` row when a series crosses, one ``resolved`` row when it clears,
with the same columns as the store's ``alerts`` table. The state machine is the manager's: each series
(service, instance, labels) starts not firing, and the comparison is the same function.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from explorer.errors import QueryError
from explorer.store import Store
from ingest.errors import ConfigurationError
from ingest.sdk.alerts import Threshold, describe

#: Value a threshold is compared with, per metric row. Counters and gauges: their value. Histograms
#: (``value`` NULL in the store): the mean of the observations since the series' previous point —
#: ``Δsum / Δcount`` of cumulative points, ``sum / count`` of delta points or of a series' first point;
#: NULL (state unchanged) when nothing was observed in between. The live AlertManager compares a
#: histogram's latest observation, which the store does not keep; with one observation per export
#: interval the two agree.
VALUE_SQL = """
    CASE
        WHEN value IS NOT NULL THEN value
        WHEN count IS NULL OR count = 0 THEN NULL
        WHEN temporality = 'delta' OR prev_count IS NULL OR count < prev_count THEN sum / count
        WHEN count > prev_count THEN (sum - prev_sum) / (count - prev_count)
    END
"""
_COMPARE_SQL = {"greater": "value > ?", "less": "value < ?", "equal": "value = ?"}
_NAMESPACE = uuid.UUID("6c1c8c7e-8a8e-4b8f-9a61-0b5f1e0a7c42")

COLUMNS = [
    "timestamp",
    "alert_id",
    "state",
    "severity",
    "title",
    "description",
    "metric_name",
    "labels",
    "current_value",
    "threshold",
    "comparison",
    "service_name",
    "instance",
    "firing_duration_s",
]


def time_bound(value: Any, name: str) -> int | None:
    """Nanoseconds since the epoch of a ``since``/``until`` argument (naive times are taken as UTC).

    Bound as an integer against ``epoch_ns(timestamp)`` so nanosecond store times compare exactly.
    """
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        msg = f"{name} must be a datetime or an ISO 8601 time like '2025-01-31T12:00:00Z', got {value!r}"
        raise QueryError(msg) from exc
    if pd.isna(stamp):
        msg = f"{name} must be a time, got {value!r}"
        raise QueryError(msg)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.value)


def _rules(thresholds: Any) -> list[Threshold]:
    if isinstance(thresholds, (Threshold, str)) or (
        isinstance(thresholds, Mapping) and "metric_name" in thresholds
    ):
        thresholds = [thresholds]
    elif isinstance(thresholds, Mapping):  # e.g. AlertManager.thresholds: key -> Threshold
        thresholds = list(thresholds.values())
    if not isinstance(thresholds, Iterable):
        msg = f"thresholds must be Threshold objects or mappings of their fields, got {thresholds!r}"
        raise ConfigurationError(msg)
    rules = []
    for i, item in enumerate(thresholds):
        if isinstance(item, Threshold):
            rules.append(item)
            continue
        if not isinstance(item, Mapping):
            msg = (
                f"thresholds[{i}] must be a Threshold or a mapping with metric_name, threshold, severity "
                f"and optionally comparison and labels, got {item!r}"
            )
            raise ConfigurationError(msg)
        unknown = set(item) - {"metric_name", "threshold", "severity", "comparison", "labels"}
        if unknown:
            msg = (
                f"thresholds[{i}] has unknown keys {sorted(unknown)}; "
                "allowed: metric_name, threshold, severity, comparison, labels"
            )
            raise ConfigurationError(msg)
        try:
            rules.append(Threshold(**item))
        except TypeError as exc:
            msg = f"thresholds[{i}] needs metric_name, threshold and severity: {exc}"
            raise ConfigurationError(msg) from exc
        except ConfigurationError as exc:
            raise ConfigurationError(f"thresholds[{i}]: {exc}") from exc
    return rules


def _transitions(store: Store, rule: Threshold, where: str, params: list[Any]) -> pd.DataFrame:
    label_sql = "".join(" AND attributes[?] = ?" for _ in rule.labels or {})
    label_params = [part for pair in (rule.labels or {}).items() for part in pair]
    return store.sql(
        f"""
        WITH rows AS (
            SELECT timestamp, service_name, value, count, sum, temporality, attributes,
                   resource_attributes['service.instance.id'] AS instance,
                   CAST(list_sort(map_entries(attributes)) AS VARCHAR) AS series
            FROM metrics
            WHERE name = ?{label_sql}{where}
        ), points AS (
            SELECT timestamp, service_name, instance, series, attributes, {VALUE_SQL} AS value
            FROM (
                SELECT *,
                       lag(count) OVER w AS prev_count,
                       lag(sum) OVER w AS prev_sum
                FROM rows
                WINDOW w AS (PARTITION BY service_name, instance, series ORDER BY timestamp)
            )
        ), judged AS (
            SELECT *, ({_COMPARE_SQL[rule.comparison]}) AS crossed
            FROM points
            WHERE value IS NOT NULL AND NOT isnan(value)
        ), changes AS (
            SELECT *, lag(crossed, 1, false) OVER (
                PARTITION BY service_name, instance, series ORDER BY timestamp
            ) AS was_crossed
            FROM judged
        )
        SELECT timestamp, service_name, instance, series, attributes, value, crossed
        FROM changes
        WHERE crossed <> was_crossed
        ORDER BY timestamp, series
        """,
        [rule.metric_name, *label_params, *params, rule.threshold],
    )


def alert_history(
    store: Store,
    thresholds: Any,
    *,
    service: str | None = None,
    since: Any = None,
    until: Any = None,
    limit: int = 10_000,
) -> pd.DataFrame:
    """Alerts ``thresholds`` would have fired and resolved over the stored metrics, oldest first.

    Rows at the same time keep the thresholds' order, then the series' labels.

    ``thresholds``: :class:`ingest.sdk.alerts.Threshold` objects, mappings of their fields, or an
    ``AlertManager.thresholds`` dict. One row per transition with the ``alerts`` table's columns plus
    ``instance`` (service.instance.id) and ``firing_duration_s`` (on resolved rows). A firing row with no
    resolved row after it was still firing at the last stored point. Points before ``since`` are not
    read, so every series starts not firing at ``since``.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        msg = f"limit must be a positive integer, got {limit!r}"
        raise QueryError(msg)
    rules = _rules(thresholds)
    clauses: list[str] = []
    params: list[Any] = []
    if service is not None:
        clauses.append("service_name = ?")
        params.append(service)
    for name, op, value in (("since", ">=", since), ("until", "<", until)):
        bound = time_bound(value, name)
        if bound is not None:
            clauses.append(f"epoch_ns(timestamp) {op} ?")
            params.append(bound)
    where = "".join(f" AND {c}" for c in clauses)

    rows: list[dict[str, Any]] = []
    for rule in rules:
        changes = _transitions(store, rule, where, params)
        open_episodes: dict[tuple[Any, ...], tuple[str, pd.Timestamp]] = {}
        for change in changes.itertuples(index=False):
            labels = dict(change.attributes) if change.attributes is not None else {}
            state = "firing" if change.crossed else "resolved"
            series_key = (change.service_name, change.instance, change.series)
            title, description = describe(rule, labels, change.value, state)
            duration = None
            if state == "firing":
                name = f"{rule.key}|{series_key}|{change.timestamp.value}"
                alert_id = uuid.uuid5(_NAMESPACE, name).hex
                open_episodes[series_key] = (alert_id, change.timestamp)
            else:
                alert_id, fired_at = open_episodes.pop(series_key)
                duration = (change.timestamp - fired_at).total_seconds()
            rows.append(
                {
                    "timestamp": change.timestamp,
                    "alert_id": alert_id,
                    "state": state,
                    "severity": rule.severity.value,
                    "title": title,
                    "description": description,
                    "metric_name": rule.metric_name,
                    "labels": labels,
                    "current_value": change.value,
                    "threshold": rule.threshold,
                    "comparison": rule.comparison,
                    "service_name": change.service_name,
                    "instance": change.instance,
                    "firing_duration_s": duration,
                }
            )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    if frame.empty:
        frame["timestamp"] = pd.Series(dtype="datetime64[ns, UTC]")
        return frame
    frame = frame.sort_values("timestamp", kind="stable", ignore_index=True)
    return frame.head(limit)
